//! The use cases on the embedded adapters, with a manual clock and a worker driven step by step.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};

use entryguard::app::{App, Identity};
use entryguard::domain::ids::{CredentialId, OrgId, ResourceId, RoleId, SessionId, UserId};
use entryguard::domain::model::{Credential, Organization, Resource, Role, User};
use entryguard::domain::net::{ClientIp, PortRange, Region, SecurityGroupId};
use entryguard::domain::session::Session;
use entryguard::domain::tier::{Hours, Tier};
use entryguard::embedded::firewall::SimRule;
use entryguard::embedded::{
    simulated_app, EmbeddedQueue, EmbeddedStore, Kv, ManualClock, SeededIds, SimCloud,
    SimulatedFirewall,
};
use entryguard::ports::Store;

pub const REGION: &str = "eu-west-1";

pub struct Harness {
    pub app: App,
    pub queue: EmbeddedQueue,
    pub sim: SimCloud,
    pub clock: Arc<ManualClock>,
    pub store: Arc<EmbeddedStore>,
    /// The database under the store and queue, for tests that plant records by hand.
    pub kv: Kv,
}

/// An organization with an admin and a simulated credential.
#[derive(Clone)]
pub struct OrgFixture {
    pub org: Organization,
    pub admin: Identity,
    pub credential: Credential,
}

pub fn region() -> Region {
    REGION.parse().unwrap()
}

pub fn sg(n: u32) -> SecurityGroupId {
    format!("sg-{n:08x}").parse().unwrap()
}

pub fn ip(s: &str) -> ClientIp {
    s.parse().unwrap()
}

pub fn hours(n: i64) -> Hours {
    Hours::new(n).unwrap()
}

impl Harness {
    pub fn new(seed: u64) -> Self {
        let kv = Kv::in_memory();
        let clock = Arc::new(ManualClock::new(
            Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap(),
        ));
        let ids = Arc::new(SeededIds::new(seed));
        let sim = SimCloud::new(kv.clone());
        let queue = EmbeddedQueue::new(kv.clone(), clock.clone(), ids.clone());
        let store = Arc::new(EmbeddedStore::new(kv.clone()));
        let app = simulated_app(
            store.clone(),
            Arc::new(queue.clone()),
            SimulatedFirewall::new(sim.clone()),
            &sim,
            clock.clone(),
            ids,
        );
        Self {
            app,
            queue,
            sim,
            clock,
            store,
            kv,
        }
    }

    pub async fn org(&self, tier: Tier) -> OrgFixture {
        let now = self.app.now();
        let org = Organization::new(
            OrgId::from_uuid(self.app.ids.uuid()),
            "Test Org".parse().unwrap(),
            tier,
            now,
        );
        self.store.put_org(&org).await.unwrap();
        let admin = User {
            id: UserId::from_uuid(self.app.ids.uuid()),
            org_id: org.id,
            email: format!("admin-{}@example.com", org.id).parse().unwrap(),
            is_admin: true,
            resource_ids: BTreeSet::new(),
            created_at: now,
        };
        self.store.create_user(&admin).await.unwrap();
        let credential = Credential::simulated(
            CredentialId::from_uuid(self.app.ids.uuid()),
            org.id,
            "sim".parse().unwrap(),
            region(),
            now,
        );
        self.app.put_doc(&credential).await.unwrap();
        OrgFixture {
            admin: Identity {
                user: admin,
                org: org.clone(),
                ip: None,
            },
            org,
            credential,
        }
    }

    /// The common scenario: an organization on `tier` whose member "dev" reaches one resource
    /// (SSH on simulated group 1) through a role.
    pub async fn member_with_ssh_on_group_1(&self, tier: Tier) -> (OrgFixture, Identity) {
        let f = self.org(tier).await;
        let dev = self.member(&f, "dev").await;
        let a = self.resource(&f, 1, &[22], true).await;
        self.role(&f, &[&dev], &[&a], None).await;
        (f, dev)
    }

    pub async fn member(&self, f: &OrgFixture, name: &str) -> Identity {
        let user = User {
            id: UserId::from_uuid(self.app.ids.uuid()),
            org_id: f.org.id,
            email: format!("{name}-{}@example.com", f.org.id).parse().unwrap(),
            is_admin: false,
            resource_ids: BTreeSet::new(),
            created_at: self.app.now(),
        };
        self.store.create_user(&user).await.unwrap();
        Identity {
            user,
            org: f.org.clone(),
            ip: None,
        }
    }

    /// A resource on security group `group` (created in the simulated cloud when `exists`).
    pub async fn resource(
        &self,
        f: &OrgFixture,
        group: u32,
        ports: &[u16],
        exists: bool,
    ) -> Resource {
        if exists {
            self.sim
                .create_group(&region(), &sg(group), &format!("group-{group}"))
                .unwrap();
        }
        let r = Resource {
            id: ResourceId::from_uuid(self.app.ids.uuid()),
            org_id: f.org.id,
            name: format!("resource-{group}").parse().unwrap(),
            credential_id: f.credential.id,
            security_group_id: sg(group),
            region: region(),
            ports: ports.iter().map(|p| PortRange::tcp(*p)).collect(),
            created_at: self.app.now(),
        };
        self.app.put_doc(&r).await.unwrap();
        r
    }

    pub async fn role(
        &self,
        f: &OrgFixture,
        users: &[&Identity],
        resources: &[&Resource],
        max_hours: Option<i64>,
    ) -> Role {
        let role = Role {
            id: RoleId::from_uuid(self.app.ids.uuid()),
            org_id: f.org.id,
            name: "role".parse().unwrap(),
            max_session_duration_hours: max_hours.map(hours),
            resource_ids: resources.iter().map(|r| r.id).collect(),
            user_ids: users.iter().map(|u| u.user.id).collect(),
            created_at: self.app.now(),
        };
        self.app.put_doc(&role).await.unwrap();
        role
    }

    /// Handles every message that is visible now, repeatedly, until none is.
    pub async fn drain(&self) -> usize {
        let mut total = 0;
        loop {
            let n = entryguard_local::drain_once(&self.app, &self.queue).await;
            if n == 0 {
                return total;
            }
            total += n;
        }
    }

    /// Drains, then jumps the clock to each delayed message until the queue is empty.
    pub async fn settle(&self) {
        for _ in 0..1000 {
            self.drain().await;
            match self.queue.next_visible_at().unwrap() {
                None => return,
                Some(at) => {
                    if at > self.app.now() {
                        self.clock.set(at);
                    }
                }
            }
        }
        panic!("the queue never emptied");
    }

    pub async fn session(&self, id: SessionId) -> Session {
        self.store.get_session(id).await.unwrap().unwrap()
    }

    pub fn rules(&self, group: u32) -> Vec<SimRule> {
        self.sim
            .group(&region(), &sg(group))
            .unwrap()
            .map(|g| g.rules)
            .unwrap_or_default()
    }

    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }
}
