//! Drift reconciliation on the AWS adapters against moto: a rule deleted by hand is put back
//! within one pass while its session lives, EntryGuard's rules no live session needs are
//! removed, rules made by hand are never touched, a deleted group is reported, and tasks in the
//! dead-letter queue are reported and can be redriven.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{TimeZone, Utc};

use entryguard::app::{App, Identity};
use entryguard::domain::audit::{AuditEvent, AuditQuery, AuditType};
use entryguard::domain::ids::{OrgId, ResourceId, RoleId, UserId};
use entryguard::domain::model::{Credential, Organization, Provider, Resource, Role, User};
use entryguard::domain::net::{PortRange, SecurityGroupId};
use entryguard::domain::rule::{GroupRef, IngressRule};
use entryguard::domain::session::SessionStatus;
use entryguard::domain::tier::{Hours, Tier};
use entryguard::embedded::{ManualClock, SeededIds};
use entryguard::ports::queue::Task;
use entryguard::ports::{Firewall, TaskQueue};
use entryguard_aws::sdk::dynamodb::types::AttributeValue;
use entryguard_aws::CloudRule;
use entryguard_tests::moto::{AwsFixture, REGION};

const SETTLE: StdDuration = StdDuration::from_secs(90);

struct Setup {
    fx: AwsFixture,
    app: App,
    org: Organization,
    admin: Identity,
    dev: Identity,
    credential: Credential,
    sg: SecurityGroupId,
    resource: Resource,
}

impl Setup {
    async fn new(prefix: &str, seed: u64) -> Self {
        let fx = AwsFixture::start(prefix).await;
        let clock = Arc::new(ManualClock::new(
            Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap(),
        ));
        let app = fx
            .backend
            .app(clock.clone(), Arc::new(SeededIds::new(seed)), None);
        let now = app.now();
        let org = Organization::new(
            OrgId::from_uuid(app.ids.uuid()),
            "Drift Org".parse().unwrap(),
            Tier::Team,
            now,
        );
        app.store.put_org(&org).await.unwrap();
        let credential = fx.credential(org.id).await;
        let mut identities = Vec::new();
        for (name, is_admin) in [("admin", true), ("dev", false)] {
            let user = User {
                id: UserId::from_uuid(app.ids.uuid()),
                org_id: org.id,
                email: format!("{name}-{}@example.com", org.id).parse().unwrap(),
                is_admin,
                resource_ids: BTreeSet::new(),
                created_at: now,
            };
            app.store.create_user(&user).await.unwrap();
            identities.push(Identity {
                user,
                org: org.clone(),
                ip: None,
            });
        }
        let sg = fx.security_group("drift").await;
        let resource = Resource {
            id: ResourceId::from_uuid(app.ids.uuid()),
            org_id: org.id,
            name: "bastion".parse().unwrap(),
            credential_id: credential.id,
            security_group_id: sg.clone(),
            region: REGION.parse().unwrap(),
            ports: vec![PortRange::tcp(22)],
            created_at: now,
        };
        app.put_doc(&resource).await.unwrap();
        let role = Role {
            id: RoleId::from_uuid(app.ids.uuid()),
            org_id: org.id,
            name: "engineers".parse().unwrap(),
            max_session_duration_hours: None,
            resource_ids: [resource.id].into(),
            user_ids: [identities[1].user.id].into(),
            created_at: now,
        };
        app.put_doc(&role).await.unwrap();
        let dev = identities.pop().unwrap();
        let admin = identities.pop().unwrap();
        Self {
            fx,
            app,
            org,
            admin,
            dev,
            credential,
            sg,
            resource,
        }
    }

    fn group(&self) -> GroupRef {
        GroupRef {
            credential_id: self.credential.id,
            provider: Provider::Aws,
            region: REGION.parse().unwrap(),
            security_group_id: self.sg.clone(),
        }
    }

    async fn rules(&self) -> Vec<CloudRule> {
        self.fx.rules(&self.sg).await
    }

    /// EntryGuard's rules in the group, as (port, cidr).
    async fn managed(&self) -> Vec<(u16, String)> {
        let mut v: Vec<_> = self
            .rules()
            .await
            .into_iter()
            .filter(CloudRule::is_managed)
            .filter_map(|r| r.ingress_rule())
            .map(|r| (r.ports.from_port(), r.cidr.to_string()))
            .collect();
        v.sort();
        v
    }

    /// A rule made in the console: no EntryGuard tag.
    async fn hand_made(&self, cidr: &str, port: i32) {
        self.fx.hand_made_rule(&self.sg, cidr, port).await;
    }

    /// Deletes a rule in the console, by its id.
    async fn delete_by_hand(&self, rule: &CloudRule) {
        self.fx
            .ec2
            .revoke_security_group_ingress()
            .group_id(self.sg.as_str())
            .security_group_rule_ids(&rule.rule_id)
            .send()
            .await
            .unwrap();
    }

    async fn events(&self, kind: AuditType) -> Vec<AuditEvent> {
        self.app
            .store
            .list_audit(
                self.org.id,
                &AuditQuery {
                    kind: Some(kind),
                    limit: 100,
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .items
    }

    async fn active_session(&self, ip: &str) -> entryguard::domain::ids::SessionId {
        let s = self
            .app
            .start_session(&self.dev, ip.parse().unwrap(), Hours::new(2).unwrap())
            .await
            .unwrap();
        self.fx.settle(&self.app, SETTLE).await;
        let status = self
            .app
            .store
            .get_session(s.id)
            .await
            .unwrap()
            .unwrap()
            .status();
        assert_eq!(status, SessionStatus::Active);
        s.id
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_deleted_by_hand_is_put_back_within_one_pass_and_hand_made_rules_stay() {
    let s = Setup::new("eg-drift-reapply", 1).await;
    s.hand_made("10.0.0.0/8", 80).await;
    s.active_session("203.0.113.7").await;
    assert_eq!(s.managed().await, vec![(22, "203.0.113.7/32".into())]);

    let ours = s
        .rules()
        .await
        .into_iter()
        .find(CloudRule::is_managed)
        .unwrap();
    s.delete_by_hand(&ours).await;
    assert!(s.managed().await.is_empty());

    let report = s.app.reconcile().await.unwrap();
    assert_eq!(report.reapplied, 1, "{report:?}");
    assert_eq!((report.orphans_removed, report.missing_groups), (0, 0));
    assert_eq!(s.managed().await, vec![(22, "203.0.113.7/32".into())]);
    let hand: Vec<_> = s
        .rules()
        .await
        .into_iter()
        .filter(|r| !r.is_managed())
        .collect();
    assert_eq!(hand.len(), 1);
    assert_eq!(
        (hand[0].from_port, hand[0].cidr.map(|c| c.to_string())),
        (Some(80), Some("10.0.0.0/8".into()))
    );
    let applied = s.events(AuditType::RuleApplied).await;
    assert!(
        applied.iter().any(|e| e.message.starts_with("Re-applied")
            && e.message.contains(s.sg.as_str())
            && e.message.contains("203.0.113.7")),
        "{applied:?}"
    );

    // Nothing left to correct: a second pass changes nothing.
    let again = s.app.reconcile().await.unwrap();
    assert_eq!((again.reapplied, again.orphans_removed), (0, 0));
    assert_eq!(s.rules().await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphaned_entryguard_rules_are_removed_and_hand_made_ones_are_not() {
    let s = Setup::new("eg-drift-orphans", 2).await;
    let session = s.active_session("203.0.113.8").await;
    // The session's records vanish (say, a restore from an old backup): its rule is an orphan.
    entryguard_aws::sdk::dynamodb::Client::new(&s.fx.sdk)
        .delete_item()
        .table_name(&s.fx.names.table)
        .key("pk", AttributeValue::S(format!("SESSION#{session}")))
        .key("sk", AttributeValue::S("SESSION".into()))
        .send()
        .await
        .unwrap();
    // A tagged rule no record knows about, as a crash or a bug could leave.
    let stray = IngressRule {
        ports: PortRange::tcp(22),
        cidr: "198.51.100.9/32".parse().unwrap(),
    };
    s.fx.backend
        .firewall
        .authorize(&s.group(), &stray)
        .await
        .unwrap();
    // Rules made by hand, one of them for the orphan's very address and another port.
    s.hand_made("203.0.113.8/32", 443).await;
    s.hand_made("192.0.2.0/24", 22).await;
    assert_eq!(
        s.managed().await,
        vec![
            (22, "198.51.100.9/32".into()),
            (22, "203.0.113.8/32".into())
        ]
    );

    let report = s.app.reconcile().await.unwrap();
    assert_eq!(report.stale_holders, 1, "{report:?}");
    assert_eq!(report.reapplied, 0, "{report:?}");
    // The session's rule went when its holder was given back, the stray one as an orphan.
    assert!(s.managed().await.is_empty());
    let left: BTreeSet<(Option<i32>, String)> = s
        .rules()
        .await
        .iter()
        .map(|r| (r.from_port, r.cidr.unwrap().to_string()))
        .collect();
    assert_eq!(
        left,
        [
            (Some(22), "192.0.2.0/24".to_owned()),
            (Some(443), "203.0.113.8/32".to_owned())
        ]
        .into()
    );
    assert!(s.app.store.list_rules().await.unwrap().is_empty());
    let removed = s.events(AuditType::RuleRemoved).await;
    assert!(
        removed
            .iter()
            .any(|e| e.message.contains("198.51.100.9") && e.resource_id == Some(s.resource.id)),
        "{removed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_group_is_reported_once() {
    let s = Setup::new("eg-drift-gone", 3).await;
    s.fx.ec2
        .delete_security_group()
        .group_id(s.sg.as_str())
        .send()
        .await
        .unwrap();
    let report = s.app.reconcile().await.unwrap();
    assert_eq!(report.missing_groups, 1, "{report:?}");
    s.app.reconcile().await.unwrap();
    let alerts = s.events(AuditType::SystemAlert).await;
    assert_eq!(
        alerts.len(),
        1,
        "reported once a day, not every pass: {alerts:?}"
    );
    assert!(
        alerts[0].message.contains(s.sg.as_str()),
        "{}",
        alerts[0].message
    );
    assert!(alerts[0].message.contains("no longer exists"));
    assert_eq!(alerts[0].resource_id, Some(s.resource.id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_reported_and_redriven() {
    let s = Setup::new("eg-drift-dlq", 4).await;
    let session = s.active_session("203.0.113.9").await;
    // Park a task of the session in the dead-letter queue, as ten failed receives would.
    let sqs = entryguard_aws::sdk::sqs::Client::new(&s.fx.sdk);
    let dlq =
        s.fx.backend
            .queue
            .dead_letter_url()
            .await
            .unwrap()
            .to_owned();
    let task = Task::ReconcileEntry {
        session_id: session,
        entry: 0,
    };
    sqs.send_message()
        .queue_url(&dlq)
        .message_body(serde_json::to_string(&task).unwrap())
        .send()
        .await
        .unwrap();

    let letters = s.fx.backend.queue.dead_letters(10).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].task, Some(task.clone()));
    // Looking hides nothing: the sweep sees it too.
    let report = s.app.sweep().await.unwrap();
    assert_eq!(report.new_dead_letters, 1, "{report:?}");
    let alerts = s.events(AuditType::SystemAlert).await;
    assert_eq!(alerts.len(), 1);
    assert!(
        alerts[0].message.contains(&session.to_string()),
        "{}",
        alerts[0].message
    );
    assert!(alerts[0].message.contains("dead-letter queue"));

    let done = s.app.redrive_dead_letters(&s.admin).await.unwrap();
    assert_eq!(done.redriven, 1);
    s.fx.settle(&s.app, SETTLE).await;
    assert!(s
        .fx
        .backend
        .queue
        .dead_letters(10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(s.managed().await, vec![(22, "203.0.113.9/32".into())]);
    // A member may not redrive.
    assert!(s.app.redrive_dead_letters(&s.dev).await.is_err());
}
