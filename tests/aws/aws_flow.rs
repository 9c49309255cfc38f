//! The use cases on the AWS adapters against moto: sessions start, share, fail, expire and stop
//! through DynamoDB, SQS and EC2, with the worker fed from the real queue.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{Duration, TimeZone, Utc};

use entryguard::app::sessions::StartSessionError;
use entryguard::app::{App, Identity};
use entryguard::domain::ids::{OrgId, ResourceId, RoleId, UserId};
use entryguard::domain::model::{Credential, Organization, Resource, Role, User};
use entryguard::domain::net::{ClientIp, PortRange, SecurityGroupId};
use entryguard::domain::session::{EntryStatus, SessionStatus};
use entryguard::domain::tier::{Hours, Tier};
use entryguard::embedded::{ManualClock, SeededIds};
use entryguard_tests::moto::{AwsFixture, REGION};

/// Retries wait in real time on SQS (a busy lease comes back after 2 s).
const SETTLE: StdDuration = StdDuration::from_secs(90);

struct Flow {
    fx: AwsFixture,
    app: App,
    clock: Arc<ManualClock>,
}

struct OrgSetup {
    org: Organization,
    credential: Credential,
}

impl Flow {
    async fn start(prefix: &str, seed: u64) -> Self {
        let fx = AwsFixture::start(prefix).await;
        let clock = Arc::new(ManualClock::new(
            Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap(),
        ));
        let app = fx
            .backend
            .app(clock.clone(), Arc::new(SeededIds::new(seed)), None);
        Self { fx, app, clock }
    }

    async fn org(&self, tier: Tier) -> OrgSetup {
        let org = Organization::new(
            OrgId::from_uuid(self.app.ids.uuid()),
            "Moto Org".parse().unwrap(),
            tier,
            self.app.now(),
        );
        self.app.store.put_org(&org).await.unwrap();
        let credential = self.fx.credential(org.id).await;
        OrgSetup { org, credential }
    }

    async fn member(&self, o: &OrgSetup, name: &str) -> Identity {
        let user = User {
            id: UserId::from_uuid(self.app.ids.uuid()),
            org_id: o.org.id,
            email: format!("{name}-{}@example.com", o.org.id).parse().unwrap(),
            is_admin: false,
            resource_ids: BTreeSet::new(),
            created_at: self.app.now(),
        };
        self.app.store.create_user(&user).await.unwrap();
        Identity {
            user,
            org: o.org.clone(),
            ip: None,
        }
    }

    async fn resource(&self, o: &OrgSetup, sg: &SecurityGroupId, ports: &[u16]) -> Resource {
        let r = Resource {
            id: ResourceId::from_uuid(self.app.ids.uuid()),
            org_id: o.org.id,
            name: format!("resource {sg}").parse().unwrap(),
            credential_id: o.credential.id,
            security_group_id: sg.clone(),
            region: REGION.parse().unwrap(),
            ports: ports.iter().map(|p| PortRange::tcp(*p)).collect(),
            created_at: self.app.now(),
        };
        self.app.put_doc(&r).await.unwrap();
        r
    }

    async fn role(&self, o: &OrgSetup, users: &[&Identity], resources: &[&Resource]) {
        let role = Role {
            id: RoleId::from_uuid(self.app.ids.uuid()),
            org_id: o.org.id,
            name: "engineers".parse().unwrap(),
            max_session_duration_hours: None,
            resource_ids: resources.iter().map(|r| r.id).collect(),
            user_ids: users.iter().map(|u| u.user.id).collect(),
            created_at: self.app.now(),
        };
        self.app.put_doc(&role).await.unwrap();
    }

    async fn settle(&self) {
        self.fx.settle(&self.app, SETTLE).await;
    }

    async fn status(&self, id: entryguard::domain::ids::SessionId) -> SessionStatus {
        self.app
            .store
            .get_session(id)
            .await
            .unwrap()
            .unwrap()
            .status()
    }

    /// EntryGuard's rules in the group, as (port, cidr).
    async fn managed(&self, sg: &SecurityGroupId) -> Vec<(u16, String)> {
        let mut rules: Vec<_> = self
            .fx
            .rules(sg)
            .await
            .into_iter()
            .filter(|r| r.is_managed())
            .filter_map(|r| r.ingress_rule())
            .map(|r| (r.ports.from_port(), r.cidr.to_string()))
            .collect();
        rules.sort();
        rules
    }
}

fn ip(s: &str) -> ClientIp {
    s.parse().unwrap()
}

fn hours(n: i64) -> Hours {
    Hours::new(n).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_applies_rules_and_stop_removes_them() {
    let f = Flow::start("eg-flow-basic", 1).await;
    let o = f.org(Tier::Team).await;
    let dev = f.member(&o, "dev").await;
    let sg = f.fx.security_group("bastion").await;
    let r = f.resource(&o, &sg, &[22, 443]).await;
    f.role(&o, &[&dev], &[&r]).await;

    let s = f
        .app
        .start_session(&dev, ip("203.0.113.7"), hours(2))
        .await
        .unwrap();
    assert_eq!(s.status(), SessionStatus::Pending);
    f.settle().await;
    assert_eq!(f.status(s.id).await, SessionStatus::Active);
    assert_eq!(
        f.managed(&sg).await,
        vec![
            (22, "203.0.113.7/32".into()),
            (443, "203.0.113.7/32".into())
        ]
    );
    assert_eq!(
        f.app.store.live_session_count(dev.user.id).await.unwrap(),
        1
    );

    let stopped = f.app.stop_session(&dev, s.id).await.unwrap();
    assert_eq!(stopped.status(), SessionStatus::Expiring);
    f.settle().await;
    let s = f.app.store.get_session(s.id).await.unwrap().unwrap();
    assert_eq!(s.status(), SessionStatus::Cancelled);
    assert!(s.entries.iter().all(|e| e.status == EntryStatus::Removed));
    assert!(f.fx.rules(&sg).await.is_empty());
    assert_eq!(
        f.app.store.live_session_count(dev.user.id).await.unwrap(),
        0
    );
    assert!(f.app.store.list_rules().await.unwrap().is_empty());
    assert!(f
        .app
        .store
        .due_sessions(f.app.now() + Duration::days(1), 10)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sessions_from_one_address_share_one_rule_until_the_last_ends() {
    let f = Flow::start("eg-flow-shared", 2).await;
    let o = f.org(Tier::Team).await;
    let alice = f.member(&o, "alice").await;
    let bob = f.member(&o, "bob").await;
    let sg = f.fx.security_group("shared").await;
    let r = f.resource(&o, &sg, &[22]).await;
    f.role(&o, &[&alice, &bob], &[&r]).await;
    let office = ip("198.51.100.20");

    let a = f.app.start_session(&alice, office, hours(2)).await.unwrap();
    let b = f.app.start_session(&bob, office, hours(2)).await.unwrap();
    f.settle().await;
    assert_eq!(f.status(a.id).await, SessionStatus::Active);
    assert_eq!(f.status(b.id).await, SessionStatus::Active);
    assert_eq!(f.managed(&sg).await, vec![(22, "198.51.100.20/32".into())]);
    let key = &a.entries[0].rules()[0];
    assert_eq!(f.app.store.get_rule(key).await.unwrap().unwrap().count(), 2);

    f.app.stop_session(&alice, a.id).await.unwrap();
    f.settle().await;
    assert_eq!(f.status(a.id).await, SessionStatus::Cancelled);
    assert_eq!(
        f.managed(&sg).await,
        vec![(22, "198.51.100.20/32".into())],
        "bob still needs it"
    );
    assert_eq!(f.app.store.get_rule(key).await.unwrap().unwrap().count(), 1);

    f.app.stop_session(&bob, b.id).await.unwrap();
    f.settle().await;
    assert_eq!(f.status(b.id).await, SessionStatus::Cancelled);
    assert!(f.managed(&sg).await.is_empty());
    assert_eq!(f.app.store.get_rule(key).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_group_fails_and_a_mix_is_partial() {
    let f = Flow::start("eg-flow-fail", 3).await;
    let o = f.org(Tier::Team).await;
    let dev = f.member(&o, "dev").await;
    let ops = f.member(&o, "ops").await;
    let gone: SecurityGroupId = "sg-0fedcba987654321f".parse().unwrap();
    let sg = f.fx.security_group("good").await;
    let bad = f.resource(&o, &gone, &[22]).await;
    let good = f.resource(&o, &sg, &[22]).await;
    f.role(&o, &[&dev], &[&bad]).await;
    f.role(&o, &[&ops], &[&bad, &good]).await;

    let failed = f
        .app
        .start_session(&dev, ip("203.0.113.30"), hours(1))
        .await
        .unwrap();
    let partial = f
        .app
        .start_session(&ops, ip("203.0.113.31"), hours(1))
        .await
        .unwrap();
    f.settle().await;

    let failed = f.app.store.get_session(failed.id).await.unwrap().unwrap();
    assert_eq!(failed.status(), SessionStatus::Failed);
    let error = failed.entries[0].error.clone().unwrap();
    assert!(
        error.contains("sg-0fedcba987654321f") && error.contains("was not found"),
        "{error}"
    );
    assert_eq!(
        f.app.store.live_session_count(dev.user.id).await.unwrap(),
        0
    );

    let partial = f.app.store.get_session(partial.id).await.unwrap().unwrap();
    assert_eq!(partial.status(), SessionStatus::Partial);
    let by_resource = |id: ResourceId| {
        partial
            .entries
            .iter()
            .find(|e| e.resource_id == id)
            .unwrap()
            .status
    };
    assert_eq!(by_resource(bad.id), EntryStatus::Failed);
    assert_eq!(by_resource(good.id), EntryStatus::Applied);
    assert_eq!(f.managed(&sg).await, vec![(22, "203.0.113.31/32".into())]);
    // Nothing is held for the group that does not exist.
    assert_eq!(f.app.store.list_rules().await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_free_tier_allows_one_session_even_under_concurrent_starts() {
    let f = Flow::start("eg-flow-free", 4).await;
    let o = f.org(Tier::Free).await;
    let dev = f.member(&o, "dev").await;
    let sg = f.fx.security_group("free").await;
    let r = f.resource(&o, &sg, &[22]).await;
    f.role(&o, &[&dev], &[&r]).await;

    let starts: Vec<_> = (0..6)
        .map(|i| {
            let app = f.app.clone();
            let dev = dev.clone();
            tokio::spawn(async move {
                app.start_session(&dev, ip(&format!("203.0.113.{}", 40 + i)), hours(1))
                    .await
            })
        })
        .collect();
    let mut started = Vec::new();
    let mut refused = 0;
    for s in starts {
        match s.await.unwrap() {
            Ok(session) => started.push(session),
            Err(StartSessionError::ConcurrentSessionLimit { limit: 1 }) => refused += 1,
            Err(e) => panic!("unexpected start failure: {e}"),
        }
    }
    assert_eq!((started.len(), refused), (1, 5));
    assert_eq!(
        f.app.store.live_session_count(dev.user.id).await.unwrap(),
        1
    );
    assert_eq!(
        f.app
            .store
            .list_user_sessions(dev.user.id, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    f.settle().await;
    assert_eq!(f.status(started[0].id).await, SessionStatus::Active);
    assert_eq!(f.managed(&sg).await.len(), 1);

    // Once it ends, the slot is free again.
    f.app.stop_session(&dev, started[0].id).await.unwrap();
    f.settle().await;
    f.app
        .start_session(&dev, ip("203.0.113.50"), hours(1))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweeper_expires_due_sessions_through_the_index() {
    let f = Flow::start("eg-flow-sweep", 5).await;
    let o = f.org(Tier::Team).await;
    let dev = f.member(&o, "dev").await;
    let sg = f.fx.security_group("sweep").await;
    let r = f.resource(&o, &sg, &[22]).await;
    f.role(&o, &[&dev], &[&r]).await;
    let short = f
        .app
        .start_session(&dev, ip("203.0.113.60"), hours(1))
        .await
        .unwrap();
    let long = f
        .app
        .start_session(&dev, ip("203.0.113.61"), hours(4))
        .await
        .unwrap();
    f.settle().await;
    assert_eq!(f.managed(&sg).await.len(), 2);

    f.clock.advance(Duration::minutes(59));
    let report = f.app.sweep().await.unwrap();
    assert_eq!((report.due, report.expired), (0, 0));
    f.clock.advance(Duration::minutes(1));
    let report = f.app.sweep().await.unwrap();
    assert_eq!((report.due, report.expired), (1, 1));
    assert_eq!(f.status(short.id).await, SessionStatus::Expiring);
    f.settle().await;
    assert_eq!(f.status(short.id).await, SessionStatus::Expired);
    assert_eq!(f.status(long.id).await, SessionStatus::Active);
    assert_eq!(f.managed(&sg).await, vec![(22, "203.0.113.61/32".into())]);
    assert_eq!(
        f.app.sweep().await.unwrap().expired,
        0,
        "a second sweep changes nothing"
    );

    f.clock.advance(Duration::hours(3));
    assert_eq!(f.app.sweep().await.unwrap().expired, 1);
    f.settle().await;
    assert_eq!(f.status(long.id).await, SessionStatus::Expired);
    assert!(f.managed(&sg).await.is_empty());
    assert_eq!(
        f.app.store.live_session_count(dev.user.id).await.unwrap(),
        0
    );
}
