//! The generated IAM policy, checked as data against what EntryGuard really does: every request
//! EntryGuard sends to EC2, STS and Service Quotas with a customer's credential is recorded by moto, turned into
//! the authorizations IAM would make, and evaluated against the policy the API generated for
//! that credential (once validated, so its ARNs name the account). Everything EntryGuard did
//! must be allowed, every permission in the policy must have been used, and nothing around it
//! (other groups, other regions, other actions) is allowed.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use entryguard_local::{AwsConfig, Backend};
use entryguard_tests::iam::{allowed_actions, allows, Request};
use entryguard_tests::moto::{AwsFixture, RecordedRequest, REGION};
use entryguard_tests::server::TestServer;

/// The account moto puts everything in.
const ACCOUNT: &str = "123456789012";
const ACCESS_KEY: &str = "AKIAIAMPOLICYCHECK01";

/// One AWS API call: the service, its action and its query parameters.
#[derive(Debug)]
struct Call {
    service: String,
    region: String,
    action: String,
    params: Vec<(String, String)>,
}

impl Call {
    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The calls signed with `access_key` (the customer's credential, not EntryGuard's own).
fn calls_signed_by(recording: &[RecordedRequest], access_key: &str) -> Vec<Call> {
    let needle = format!("Credential={access_key}/");
    recording
        .iter()
        .filter_map(|r| {
            let auth = r
                .headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
                .map(|(_, v)| v.as_str())?;
            let scope = auth.split(&needle).nth(1)?;
            // <date>/<region>/<service>/aws4_request
            let mut parts = scope.split('/');
            let (_date, region, service) = (parts.next()?, parts.next()?, parts.next()?);
            let body = r.body_bytes();
            // JSON-protocol services (Service Quotas) name the action in a header, as
            // `<Service>.<Action>`; query-protocol ones (EC2, STS) in the form body.
            let target = r
                .headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("x-amz-target"))
                .and_then(|(_, v)| v.rsplit('.').next());
            let params: Vec<(String, String)> = match target {
                Some(_) => serde_json::from_slice::<serde_json::Map<String, Value>>(&body)
                    .expect("a JSON-protocol body")
                    .into_iter()
                    .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_owned()))
                    .collect(),
                None => form_urlencoded::parse(&body)
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect(),
            };
            let action = target
                .map(str::to_owned)
                .or_else(|| {
                    params
                        .iter()
                        .find(|(k, _)| k == "Action")
                        .map(|(_, v)| v.clone())
                })
                .unwrap_or_else(|| panic!("a call without an action: {r:?}"));
            Some(Call {
                service: service.to_owned(),
                region: region.to_owned(),
                action,
                params,
            })
        })
        .collect()
}

/// The authorizations IAM makes for one call.
fn authorizations(call: &Call) -> Vec<Request> {
    let action = format!("{}:{}", call.service, call.action);
    let group_arn = || {
        let group = call
            .param("GroupId")
            .unwrap_or_else(|| panic!("{action} without a GroupId: {call:?}"));
        format!(
            "arn:aws:ec2:{}:{ACCOUNT}:security-group/{group}",
            call.region
        )
    };
    match action.as_str() {
        "ec2:AuthorizeSecurityGroupIngress" => {
            let mut out = vec![Request::new(&action, &group_arn())];
            // Tags given at creation are authorized as ec2:CreateTags on the new rule, with
            // the creating action as context.
            let tags_rule = call.params.iter().any(|(k, v)| {
                k.starts_with("TagSpecification.")
                    && k.ends_with(".ResourceType")
                    && v == "security-group-rule"
            });
            if tags_rule {
                out.push(
                    Request::new(
                        "ec2:CreateTags",
                        &format!(
                            "arn:aws:ec2:{}:{ACCOUNT}:security-group-rule/sgr-0new",
                            call.region
                        ),
                    )
                    .with("ec2:CreateAction", "AuthorizeSecurityGroupIngress"),
                );
            }
            out
        }
        "ec2:RevokeSecurityGroupIngress" => vec![Request::new(&action, &group_arn())],
        "servicequotas:GetServiceQuota" => vec![Request::new(
            &action,
            &format!(
                "arn:aws:servicequotas:{}:{ACCOUNT}:{}/{}",
                call.region,
                call.param("ServiceCode").expect("a service code"),
                call.param("QuotaCode").expect("a quota code")
            ),
        )],
        // Describe calls and GetCallerIdentity are not resource-scoped in IAM.
        _ => vec![Request::new(&action, "*")],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_generated_policy_allows_exactly_what_entryguard_does() {
    let fx = AwsFixture::start("eg-iam").await;
    let managed = fx.security_group("managed").await;
    let unrelated = fx.security_group("unrelated").await;
    let s = TestServer::start_on(Backend::Aws(AwsConfig {
        sdk: fx.moto.options(),
        names: fx.names.clone(),
        provision: false,
        bootstrap_admin: Some("boss@corp.example".parse().unwrap()),
        seed_demo: false,
    }))
    .await;
    let admin = s.login("boss@corp.example").await;
    let credential = s
        .post(
            &admin,
            "/api/admin/credentials",
            json!({"name": "prod", "provider": "aws", "region": REGION,
                   "accessKeyId": ACCESS_KEY, "secretAccessKey": "moto-secret"}),
        )
        .await
        .ok(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let resource = s
        .post(
            &admin,
            "/api/admin/resources",
            json!({"name": "db", "credentialId": credential,
                   "securityGroupId": managed.to_string(), "region": REGION,
                   "ports": [{"protocol": "tcp", "fromPort": 5432, "toPort": 5432}]}),
        )
        .await
        .ok(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    s.post(
        &admin,
        "/api/admin/users",
        json!({"email": "eng@corp.example", "resourceIds": [resource]}),
    )
    .await
    .ok(201);

    // Everything EntryGuard does with the credential: open, extend, close.
    fx.moto.start_recording().await;
    let eng = s.login("eng@corp.example").await;
    let session = s.settled_session(&eng, 2, "ACTIVE").await;
    let id = session["id"].as_str().unwrap();
    s.stop_and_wait(&eng, id).await;
    assert!(fx.rules(&managed).await.is_empty());
    // A rule someone removed by hand: the revoke finds nothing of ours and checks the group.
    let again = s.settled_session(&eng, 1, "ACTIVE").await;
    for rule in fx.rules(&managed).await {
        fx.ec2
            .revoke_security_group_ingress()
            .group_id(managed.to_string())
            .security_group_rule_ids(rule.rule_id)
            .send()
            .await
            .expect("a hand-made revoke");
    }
    s.stop_and_wait(&eng, again["id"].as_str().unwrap()).await;
    // A full group: the refused authorize has EntryGuard read the account's rule quota, to
    // tell which rules still fit.
    fx.hand_made_rules(&managed, 60).await;
    let failed = s.settled_session(&eng, 1, "FAILED").await;
    assert!(failed.to_string().contains("rule limit"), "{failed:#}");
    let checked = s
        .call(
            reqwest::Method::POST,
            Some(&admin),
            &format!("/api/admin/credentials/{credential}/validate"),
            None,
        )
        .await;
    assert_eq!(
        checked.ok(200)["status"],
        json!("VALID"),
        "{}",
        checked.text
    );
    assert_eq!(checked.json["accountId"], json!(ACCOUNT));

    let policy: Value = s
        .get(
            Some(&admin),
            &format!("/api/admin/iam-policy?credentialId={credential}"),
        )
        .await
        .ok(200)["policy"]
        .clone();
    assert!(
        policy
            .to_string()
            .contains(&format!(":{ACCOUNT}:security-group/{managed}")),
        "{policy:#}"
    );
    let calls = calls_signed_by(&fx.moto.recording(), ACCESS_KEY);
    let done: Vec<Request> = calls.iter().flat_map(authorizations).collect();
    let actions: BTreeSet<&str> = done.iter().map(|r| r.action.as_str()).collect();
    assert!(
        actions.contains("ec2:AuthorizeSecurityGroupIngress")
            && actions.contains("ec2:RevokeSecurityGroupIngress"),
        "the recording misses the rule changes: {actions:?}"
    );

    // Everything EntryGuard did is allowed...
    for request in &done {
        assert!(
            allows(&policy, request),
            "{request:?} is not allowed by {policy:#}"
        );
    }
    // ...and every permission granted was needed.
    for granted in allowed_actions(&policy) {
        assert!(
            actions.contains(granted.as_str()),
            "{granted} is granted but EntryGuard never used it (used: {actions:?})"
        );
    }

    // Nothing around it is allowed.
    let arn = |kind: &str, id: &str| format!("arn:aws:ec2:{REGION}:{ACCOUNT}:{kind}/{id}");
    let refused = [
        Request::new(
            "ec2:AuthorizeSecurityGroupIngress",
            &arn("security-group", &unrelated.to_string()),
        ),
        Request::new(
            "ec2:RevokeSecurityGroupIngress",
            &arn("security-group", &unrelated.to_string()),
        ),
        Request::new(
            "ec2:AuthorizeSecurityGroupIngress",
            &format!("arn:aws:ec2:us-east-1:{ACCOUNT}:security-group/{managed}"),
        ),
        Request::new(
            "ec2:AuthorizeSecurityGroupEgress",
            &arn("security-group", &managed.to_string()),
        ),
        Request::new(
            "ec2:DeleteSecurityGroup",
            &arn("security-group", &managed.to_string()),
        ),
        Request::new(
            "ec2:ModifySecurityGroupRules",
            &arn("security-group", &managed.to_string()),
        ),
        Request::new(
            "ec2:CreateTags",
            &arn("security-group", &managed.to_string()),
        )
        .with("ec2:CreateAction", "AuthorizeSecurityGroupIngress"),
        Request::new(
            "ec2:CreateTags",
            &arn("security-group-rule", "sgr-0handmade"),
        ),
        Request::new(
            "ec2:DeleteTags",
            &arn("security-group-rule", "sgr-0handmade"),
        ),
        Request::new(
            "servicequotas:GetServiceQuota",
            &format!("arn:aws:servicequotas:{REGION}:{ACCOUNT}:ec2/L-1216C47A"),
        ),
        Request::new("servicequotas:RequestServiceQuotaIncrease", "*"),
        Request::new("ec2:RunInstances", "*"),
        Request::new("iam:CreateUser", "*"),
        Request::new("sts:AssumeRole", "*"),
    ];
    for request in refused {
        assert!(
            !allows(&policy, &request),
            "{request:?} is allowed by {policy:#}"
        );
    }
}
