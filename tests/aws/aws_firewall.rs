//! The EC2 firewall adapter against moto's security groups.

use entryguard::domain::credential::CredentialAccess;
use entryguard::domain::ids::{CredentialId, OrgId};
use entryguard::domain::model::{Credential, Provider};
use entryguard::domain::net::{PortRange, Protocol, SecurityGroupId};
use entryguard::domain::rule::{GroupRef, IngressRule};
use std::collections::BTreeMap;

use entryguard::ports::firewall::{
    Authorization, BatchOutcome, Firewall, FirewallError, GroupBatch, Revocation, RuleOutcome,
};
use entryguard_aws::schema::{MANAGED_TAG_KEY, MANAGED_TAG_VALUE, RULE_DESCRIPTION};
use entryguard_tests::moto::{AwsFixture, REGION};
use uuid::Uuid;

fn group(credential: &Credential, sg: &SecurityGroupId) -> GroupRef {
    GroupRef {
        credential_id: credential.id,
        provider: Provider::Aws,
        region: REGION.parse().unwrap(),
        security_group_id: sg.clone(),
    }
}

fn ssh_from(ip: &str) -> IngressRule {
    IngressRule {
        ports: PortRange::tcp(22),
        cidr: format!("{ip}/32").parse().unwrap(),
    }
}

#[tokio::test]
async fn authorize_and_revoke_are_idempotent_and_leave_other_rules_alone() {
    let fx = AwsFixture::start("eg-fw").await;
    let credential = fx.credential(OrgId::from_uuid(Uuid::new_v4())).await;
    let sg = fx.security_group("web").await;
    let g = group(&credential, &sg);
    let fw = fx.backend.firewall.clone();
    let rule = ssh_from("203.0.113.7");
    fx.hand_made_rule(&sg, "10.0.0.0/8", 80).await;

    fw.authorize(&g, &rule).await.unwrap();
    let rules = fx.rules(&sg).await;
    assert_eq!(rules.len(), 2);
    let ours: Vec<_> = rules.iter().filter(|r| r.is_managed()).collect();
    assert_eq!(ours.len(), 1);
    assert_eq!(ours[0].ingress_rule(), Some(rule));
    assert_eq!(ours[0].description.as_deref(), Some(RULE_DESCRIPTION));
    assert_eq!(
        ours[0].tags.get(MANAGED_TAG_KEY).map(String::as_str),
        Some(MANAGED_TAG_VALUE)
    );
    assert_eq!(ours[0].group_id, sg.as_str());

    // A duplicate authorize succeeds and adds nothing.
    fw.authorize(&g, &rule).await.unwrap();
    assert_eq!(fx.rules(&sg).await.len(), 2);
    assert_eq!(fx.backend.firewall.list_rules(&g).await.unwrap().len(), 2);

    fw.revoke(&g, &rule, None).await.unwrap();
    let left = fx.rules(&sg).await;
    assert_eq!(left.len(), 1);
    assert!(!left[0].is_managed());
    assert_eq!(left[0].from_port, Some(80));
    // Revoking what is gone succeeds.
    fw.revoke(&g, &rule, None).await.unwrap();
    assert_eq!(fx.rules(&sg).await, left);
}

#[tokio::test]
async fn a_hand_made_rule_for_the_same_address_is_never_revoked() {
    let fx = AwsFixture::start("eg-fw-hand").await;
    let credential = fx.credential(OrgId::from_uuid(Uuid::new_v4())).await;
    let sg = fx.security_group("db").await;
    let g = group(&credential, &sg);
    fx.hand_made_rule(&sg, "198.51.100.4/32", 22).await;
    let before = fx.rules(&sg).await;
    // EC2 reports the rule as a duplicate: it exists, which is all EntryGuard needs.
    fx.backend
        .firewall
        .authorize(&g, &ssh_from("198.51.100.4"))
        .await
        .unwrap();
    fx.backend
        .firewall
        .revoke(&g, &ssh_from("198.51.100.4"), None)
        .await
        .unwrap();
    assert_eq!(fx.rules(&sg).await, before);
}

#[tokio::test]
async fn ipv6_and_udp_rules() {
    let fx = AwsFixture::start("eg-fw-v6").await;
    let credential = fx.credential(OrgId::from_uuid(Uuid::new_v4())).await;
    let sg = fx.security_group("v6").await;
    let g = group(&credential, &sg);
    let rule = IngressRule {
        ports: PortRange::new(Protocol::Udp, 51820, 51830).unwrap(),
        cidr: "2001:db8::7/128".parse().unwrap(),
    };
    fx.backend.firewall.authorize(&g, &rule).await.unwrap();
    let rules = fx.rules(&sg).await;
    assert_eq!(rules.len(), 1);
    assert!(rules[0].is_managed());
    assert_eq!(rules[0].ingress_rule(), Some(rule));
    fx.backend.firewall.revoke(&g, &rule, None).await.unwrap();
    assert!(fx.rules(&sg).await.is_empty());
}

#[tokio::test]
async fn a_missing_group_is_reported_as_such() {
    let fx = AwsFixture::start("eg-fw-missing").await;
    let credential = fx.credential(OrgId::from_uuid(Uuid::new_v4())).await;
    let sg: SecurityGroupId = "sg-0123456789abcdef0".parse().unwrap();
    let g = group(&credential, &sg);
    let err = fx
        .backend
        .firewall
        .authorize(&g, &ssh_from("203.0.113.7"))
        .await
        .unwrap_err();
    assert_eq!(err, FirewallError::GroupNotFound(sg.to_string()));
    assert!(!err.is_transient());
    let message = err.to_string();
    assert!(
        message.contains("sg-0123456789abcdef0") && message.contains("was not found"),
        "{message}"
    );
    assert_eq!(
        fx.backend
            .firewall
            .revoke(&g, &ssh_from("203.0.113.7"), None)
            .await
            .unwrap_err(),
        FirewallError::GroupNotFound(sg.to_string())
    );
}

#[tokio::test]
async fn a_full_group_reports_the_rule_limit() {
    let fx = AwsFixture::start("eg-fw-full").await;
    let credential = fx.credential(OrgId::from_uuid(Uuid::new_v4())).await;
    let sg = fx.security_group("full").await;
    let g = group(&credential, &sg);
    fx.hand_made_rules(&sg, 60).await;
    assert_eq!(fx.rules(&sg).await.len(), 60);
    let err = fx
        .backend
        .firewall
        .authorize(&g, &ssh_from("203.0.113.7"))
        .await
        .unwrap_err();
    assert_eq!(err, FirewallError::RuleLimitExceeded(sg.to_string()));
    assert!(err.to_string().contains("rule limit"));
    assert_eq!(fx.rules(&sg).await.len(), 60);
}

#[tokio::test]
async fn credentials_missing_static_or_assumed() {
    let fx = AwsFixture::start("eg-fw-creds").await;
    let org = OrgId::from_uuid(Uuid::new_v4());
    let sg = fx.security_group("creds").await;

    // A group whose credential record does not exist.
    let mut ghost = fx.credential(org).await;
    ghost.id = CredentialId::from_uuid(Uuid::new_v4());
    let err = fx
        .backend
        .firewall
        .authorize(&group(&ghost, &sg), &ssh_from("203.0.113.7"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, FirewallError::InvalidCredential(ref m) if m.contains("no longer exists")),
        "{err:?}"
    );

    // Neither keys nor a role: a record no credential can be read from (only a hand-edited
    // one; the API never writes it).
    let empty = fx.credential(org).await;
    let mut record = serde_json::to_value(&empty).unwrap();
    record["accessKeyId"] = serde_json::Value::Null;
    record["sealedSecret"] = serde_json::Value::Null;
    {
        use entryguard::ports::Store;
        fx.backend
            .store
            .put_doc(
                entryguard::ports::store::DocKind::Credential,
                org,
                *empty.id.as_uuid(),
                record,
            )
            .await
            .unwrap();
    }
    let err = fx
        .backend
        .firewall
        .authorize(&group(&empty, &sg), &ssh_from("203.0.113.7"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, FirewallError::InvalidCredential(_)),
        "{err:?}"
    );

    // Static keys: STS names the account.
    let keys = fx.credential(org).await;
    let account = entryguard_aws::validate_credential(&fx.sdk, &keys, fx.backend.sealer.as_ref())
        .await
        .unwrap()
        .to_string();
    assert_eq!(account.len(), 12, "{account}");
    assert!(account.chars().all(|c| c.is_ascii_digit()));

    // A role assumed with the external id, through the base configuration's credentials.
    let mut role = fx.credential(org).await;
    role.access = CredentialAccess::AssumeRole {
        role_arn: format!("arn:aws:iam::{account}:role/EntryGuardAccess")
            .parse()
            .unwrap(),
        external_id: Some("eg-external-id".parse().unwrap()),
    };
    fx.put_credential(&role).await;
    assert!(
        entryguard_aws::validate_credential(&fx.sdk, &role, fx.backend.sealer.as_ref())
            .await
            .is_ok()
    );
    let g = group(&role, &sg);
    fx.backend
        .firewall
        .authorize(&g, &ssh_from("203.0.113.8"))
        .await
        .unwrap();
    assert_eq!(
        fx.rules(&sg)
            .await
            .iter()
            .filter(|r| r.is_managed())
            .count(),
        1
    );
    fx.backend
        .firewall
        .revoke(&g, &ssh_from("203.0.113.8"), None)
        .await
        .unwrap();
    assert!(fx.rules(&sg).await.is_empty());
}

fn authorizations(ports: std::ops::RangeInclusive<u16>, ip: &str) -> Vec<Authorization> {
    ports
        .map(|p| Authorization {
            rule: IngressRule {
                ports: PortRange::tcp(p),
                cidr: format!("{ip}/32").parse().unwrap(),
            },
            description: format!("EntryGuard dev@example.com until 2026-11-29T23:00:00Z #{p}"),
        })
        .collect()
}

/// The EC2 calls moto received since recording started, by action.
fn actions(fx: &AwsFixture) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for r in fx.moto.recording() {
        let body = String::from_utf8_lossy(&r.body_bytes()).into_owned();
        if let Some(action) = body.split('&').find_map(|kv| kv.strip_prefix("Action=")) {
            *out.entry(action.to_owned()).or_default() += 1;
        }
    }
    out
}

fn ids_of(out: &BatchOutcome) -> Vec<Revocation> {
    out.authorized
        .iter()
        .map(|(rule, o)| Revocation {
            rule: *rule,
            rule_id: match o {
                RuleOutcome::Present(id) => id.clone(),
                other => panic!("{rule}: {other:?}"),
            },
        })
        .collect()
}

/// Five rules in one AuthorizeSecurityGroupIngress, each range with its own description and
/// EntryGuard's tag; then one RevokeSecurityGroupIngress by their ids, with no listing.
#[tokio::test]
async fn a_batch_is_one_authorize_and_one_revoke_by_id() {
    let fx = AwsFixture::start("eg-fw-batch").await;
    let credential = fx.credential(OrgId::from_uuid(Uuid::new_v4())).await;
    let sg = fx.security_group("batch").await;
    let g = group(&credential, &sg);
    let fw = fx.backend.firewall.clone();
    fx.moto.start_recording().await;
    let batch = GroupBatch {
        authorize: authorizations(8000..=8004, "203.0.113.7"),
        revoke: vec![],
    };
    let out = fw.apply_batch(&g, &batch).await;
    let revoke = ids_of(&out);
    assert!(revoke.iter().all(|r| r.rule_id.is_some()), "{out:?}");
    let calls = actions(&fx);
    assert_eq!(
        calls.get("AuthorizeSecurityGroupIngress"),
        Some(&1),
        "{calls:?}"
    );
    // moto's answer lists only the last permission's rules (EC2's lists all), so the ids of
    // the others cost one listing here.
    assert!(
        calls.get("DescribeSecurityGroupRules") <= Some(&1),
        "{calls:?}"
    );
    let rules = fx.rules(&sg).await;
    assert_eq!(rules.len(), 5);
    assert!(rules.iter().all(|r| r.is_managed()));
    assert!(rules.iter().any(|r| r.description.as_deref()
        == Some("EntryGuard dev@example.com until 2026-11-29T23:00:00Z #8002")));
    fx.moto.start_recording().await;
    let out = fw
        .apply_batch(
            &g,
            &GroupBatch {
                authorize: vec![],
                revoke,
            },
        )
        .await;
    let calls = actions(&fx);
    assert_eq!(
        calls.get("RevokeSecurityGroupIngress"),
        Some(&1),
        "{calls:?}"
    );
    assert_eq!(calls.get("DescribeSecurityGroupRules"), None, "{calls:?}");
    assert!(out.revoked.iter().all(|(_, o)| *o == RuleOutcome::Absent));
    assert!(fx.rules(&sg).await.is_empty());
}

/// An identical hand-made rule inside a batch: the call is refused as a duplicate, one
/// listing and one retry create the rest, and the hand-made rule is never revoked.
#[tokio::test]
async fn a_duplicate_in_a_batch_costs_one_listing_and_one_retry() {
    let fx = AwsFixture::start("eg-fw-dup").await;
    let credential = fx.credential(OrgId::from_uuid(Uuid::new_v4())).await;
    let sg = fx.security_group("dup").await;
    let g = group(&credential, &sg);
    let fw = fx.backend.firewall.clone();
    fx.hand_made_rule(&sg, "203.0.113.7/32", 8002).await;
    fx.moto.start_recording().await;
    let out = fw
        .apply_batch(
            &g,
            &GroupBatch {
                authorize: authorizations(8000..=8004, "203.0.113.7"),
                revoke: vec![],
            },
        )
        .await;
    let revoke = ids_of(&out);
    for r in &revoke {
        assert_eq!(
            r.rule_id.is_none(),
            r.rule.ports.from_port() == 8002,
            "only the hand-made rule has no id of ours: {r:?}"
        );
    }
    let calls = actions(&fx);
    assert_eq!(fx.rules(&sg).await.len(), 5);
    // One listing for the duplicate; a second only because moto's answer lists the last
    // permission's rules alone (EC2's lists them all).
    assert!(
        calls.get("DescribeSecurityGroupRules") <= Some(&2),
        "{calls:?}"
    );
    assert!(
        calls.get("AuthorizeSecurityGroupIngress") <= Some(&2),
        "{calls:?}"
    );
    fw.apply_batch(
        &g,
        &GroupBatch {
            authorize: vec![],
            revoke: revoke.into_iter().filter(|r| r.rule_id.is_some()).collect(),
        },
    )
    .await;
    let left = fx.rules(&sg).await;
    assert_eq!(left.len(), 1);
    assert!(!left[0].is_managed());
    assert_eq!(left[0].from_port, Some(8002));
}

/// A rule deleted by hand between its creation and the revoke: the revoke by ids is refused
/// as a whole, one listing shows which is gone, and the retry removes the others.
#[tokio::test]
async fn a_rule_deleted_by_hand_before_a_batch_revoke() {
    let fx = AwsFixture::start("eg-fw-gone").await;
    let credential = fx.credential(OrgId::from_uuid(Uuid::new_v4())).await;
    let sg = fx.security_group("gone").await;
    let g = group(&credential, &sg);
    let fw = fx.backend.firewall.clone();
    let out = fw
        .apply_batch(
            &g,
            &GroupBatch {
                authorize: authorizations(8000..=8002, "203.0.113.7"),
                revoke: vec![],
            },
        )
        .await;
    let revoke = ids_of(&out);
    fx.ec2
        .revoke_security_group_ingress()
        .group_id(sg.as_str())
        .security_group_rule_ids(revoke[1].rule_id.clone().unwrap().as_str())
        .send()
        .await
        .unwrap();
    fx.moto.start_recording().await;
    let out = fw
        .apply_batch(
            &g,
            &GroupBatch {
                authorize: vec![],
                revoke,
            },
        )
        .await;
    assert!(
        out.revoked.iter().all(|(_, o)| *o == RuleOutcome::Absent),
        "{out:?}"
    );
    let calls = actions(&fx);
    assert!(fx.rules(&sg).await.is_empty());
    assert_eq!(
        calls.get("RevokeSecurityGroupIngress"),
        Some(&2),
        "{calls:?}"
    );
    assert_eq!(
        calls.get("DescribeSecurityGroupRules"),
        Some(&1),
        "{calls:?}"
    );
}

/// A group two rules short of its quota: two of a batch of five are created, the other three
/// fail with the rule-limit message, and nothing else is touched.
#[tokio::test]
async fn a_nearly_full_group_takes_what_fits() {
    let fx = AwsFixture::start("eg-fw-nearly").await;
    let credential = fx.credential(OrgId::from_uuid(Uuid::new_v4())).await;
    let sg = fx.security_group("nearly").await;
    let g = group(&credential, &sg);
    fx.hand_made_rules(&sg, 58).await;
    let out = fx
        .backend
        .firewall
        .apply_batch(
            &g,
            &GroupBatch {
                authorize: authorizations(8000..=8004, "203.0.113.7"),
                revoke: vec![],
            },
        )
        .await;
    let created = out
        .authorized
        .iter()
        .filter(|(_, o)| matches!(o, RuleOutcome::Present(Some(_))))
        .count();
    let full: Vec<&FirewallError> = out
        .authorized
        .iter()
        .filter_map(|(_, o)| match o {
            RuleOutcome::Failed(e) => Some(e),
            _ => None,
        })
        .collect();
    assert_eq!((created, full.len()), (2, 3), "{out:?}");
    for e in full {
        assert_eq!(*e, FirewallError::RuleLimitExceeded(sg.to_string()));
        assert!(e.to_string().contains("rule limit"));
    }
    assert_eq!(fx.rules(&sg).await.len(), 60);
}
