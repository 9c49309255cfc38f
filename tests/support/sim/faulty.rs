//! Fault-injecting wrappers around the embedded adapters. At every call the simulation's RNG
//! decides whether the calling handler yields, crashes (before or after the real call), or gets
//! a transient error (before the real call, or after it took effect — a timeout whose write went
//! through). The store wrapper also records every entry status ever written, for the audit checks.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use entryguard::domain::audit::{AuditEvent, AuditPage, AuditQuery};
use entryguard::domain::ids::{OrgId, SessionId, TokenId, UserId};
use entryguard::domain::model::{Email, Organization, User};
use entryguard::domain::rate::WindowCounter;
use entryguard::domain::rule::{
    CloudRuleId, CloudState, GroupRef, HolderId, IngressRule, LeaseGrant, ListedRule, RuleKey,
    RuleState,
};
use entryguard::domain::session::{EntryStatus, Session};
use entryguard::domain::Timestamp;
use entryguard::embedded::SimCloud;
use entryguard::ports::firewall::{BatchOutcome, Firewall, FirewallError, GroupBatch};
use entryguard::ports::queue::{DeadLetter, QueueError, Task, TaskQueue};
use entryguard::ports::store::{
    BadRecord, CommitError, CreateError, CreateSessionError, DocKind, DueEntry, GroupCommit,
    GroupGrant, Store, StoreError, TokenRecord, UpdateError, WorkItem,
};
use entryguard::ports::Clock;

use super::exec::{Control, Fate};

fn store_error<E: From<StoreError>>() -> E {
    E::from(StoreError::Unavailable(
        "injected: the store timed out".into(),
    ))
}

/// Every status each entry was ever stored with.
pub type EntryHistory = BTreeMap<(SessionId, u32), BTreeSet<EntryStatusKey>>;

/// `EntryStatus` with an order, for sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EntryStatusKey {
    Pending,
    Applying,
    Applied,
    Failed,
    Removing,
    Removed,
}

impl From<EntryStatus> for EntryStatusKey {
    fn from(s: EntryStatus) -> Self {
        match s {
            EntryStatus::Pending => Self::Pending,
            EntryStatus::Applying => Self::Applying,
            EntryStatus::Applied => Self::Applied,
            EntryStatus::Failed => Self::Failed,
            EntryStatus::Removing => Self::Removing,
            EntryStatus::Removed => Self::Removed,
        }
    }
}

pub struct FaultyStore {
    pub inner: Arc<dyn Store>,
    pub ctl: Control,
    pub history: Arc<Mutex<EntryHistory>>,
    /// Group leases taken over after running out (a worker paused or crashed holding one), and
    /// group commits refused because the lease had passed on: two batches of one group at once.
    pub overlaps: Arc<Mutex<[u64; 2]>>,
}

impl FaultyStore {
    fn record(&self, s: &Session) {
        let mut h = self.history.lock().expect("history lock");
        for e in &s.entries {
            h.entry((s.id, e.index))
                .or_default()
                .insert(e.status.into());
        }
    }
}

/// Runs one store call under the simulation's fate.
macro_rules! call {
    ($self:ident, $fail:expr, $body:expr) => {{
        $self.ctl.maybe_yield().await;
        match $self.ctl.fate($fail) {
            Fate::CrashBefore => {
                $self.ctl.crash().await;
                unreachable!()
            }
            Fate::FailBefore => return Err(store_error()),
            fate => {
                let out = $body;
                match fate {
                    Fate::CrashAfter => {
                        $self.ctl.crash().await;
                        unreachable!()
                    }
                    Fate::FailAfter => return Err(store_error()),
                    _ => out,
                }
            }
        }
    }};
}

#[async_trait]
impl Store for FaultyStore {
    async fn put_org(&self, org: &Organization) -> Result<(), StoreError> {
        call!(self, true, self.inner.put_org(org).await)
    }
    async fn get_org(&self, id: OrgId) -> Result<Option<Organization>, StoreError> {
        call!(self, true, self.inner.get_org(id).await)
    }
    async fn update_org(
        &self,
        org: &Organization,
        expected_version: u64,
    ) -> Result<(), UpdateError> {
        call!(
            self,
            true,
            self.inner.update_org(org, expected_version).await
        )
    }
    async fn has_any_org(&self) -> Result<bool, StoreError> {
        call!(self, true, self.inner.has_any_org().await)
    }
    async fn list_orgs(&self) -> Result<Vec<Organization>, StoreError> {
        call!(self, true, self.inner.list_orgs().await)
    }
    async fn create_user(&self, user: &User) -> Result<(), CreateError> {
        call!(self, true, self.inner.create_user(user).await)
    }
    async fn update_user(&self, user: &User) -> Result<(), CreateError> {
        call!(self, true, self.inner.update_user(user).await)
    }
    async fn get_user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        call!(self, true, self.inner.get_user(id).await)
    }
    async fn find_user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        call!(self, true, self.inner.find_user_by_email(email).await)
    }
    async fn list_users(&self, org: OrgId) -> Result<Vec<User>, StoreError> {
        call!(self, true, self.inner.list_users(org).await)
    }
    async fn delete_user(&self, id: UserId) -> Result<bool, StoreError> {
        call!(self, true, self.inner.delete_user(id).await)
    }
    async fn put_doc(
        &self,
        kind: DocKind,
        org: OrgId,
        id: uuid::Uuid,
        doc: serde_json::Value,
    ) -> Result<(), StoreError> {
        call!(self, true, self.inner.put_doc(kind, org, id, doc).await)
    }
    async fn get_doc(
        &self,
        kind: DocKind,
        org: OrgId,
        id: uuid::Uuid,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        call!(self, true, self.inner.get_doc(kind, org, id).await)
    }
    async fn list_docs(
        &self,
        kind: DocKind,
        org: OrgId,
    ) -> Result<Vec<serde_json::Value>, StoreError> {
        call!(self, true, self.inner.list_docs(kind, org).await)
    }
    async fn delete_doc(
        &self,
        kind: DocKind,
        org: OrgId,
        id: uuid::Uuid,
    ) -> Result<bool, StoreError> {
        call!(self, true, self.inner.delete_doc(kind, org, id).await)
    }
    async fn put_token(&self, token: &TokenRecord) -> Result<(), StoreError> {
        call!(self, true, self.inner.put_token(token).await)
    }
    async fn get_token(&self, token_hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        call!(self, true, self.inner.get_token(token_hash).await)
    }
    async fn list_personal_tokens(&self, user: UserId) -> Result<Vec<TokenRecord>, StoreError> {
        call!(self, true, self.inner.list_personal_tokens(user).await)
    }
    async fn delete_personal_token(&self, user: UserId, id: TokenId) -> Result<bool, StoreError> {
        call!(self, true, self.inner.delete_personal_token(user, id).await)
    }
    async fn touch_token(&self, token_hash: &str, at: Timestamp) -> Result<(), StoreError> {
        call!(self, true, self.inner.touch_token(token_hash, at).await)
    }
    async fn create_session(
        &self,
        session: &Session,
        max_live: Option<u32>,
    ) -> Result<(), CreateSessionError> {
        call!(self, true, {
            let r = self.inner.create_session(session, max_live).await;
            if r.is_ok() {
                self.record(session);
            }
            r
        })
    }
    async fn get_session(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
        call!(self, true, self.inner.get_session(id).await)
    }
    async fn list_user_sessions(
        &self,
        user: UserId,
        limit: usize,
    ) -> Result<Vec<Session>, StoreError> {
        call!(self, true, self.inner.list_user_sessions(user, limit).await)
    }
    async fn update_session(
        &self,
        session: &Session,
        expected_version: u64,
        release_slot: bool,
    ) -> Result<(), UpdateError> {
        call!(self, true, {
            let r = self
                .inner
                .update_session(session, expected_version, release_slot)
                .await;
            if r.is_ok() {
                self.record(session);
            }
            r
        })
    }
    async fn due_sessions(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<SessionId>, StoreError> {
        call!(self, true, self.inner.due_sessions(now, limit).await)
    }
    async fn due_page(
        &self,
        upto: Timestamp,
        after: Option<DueEntry>,
        limit: usize,
    ) -> Result<Vec<DueEntry>, StoreError> {
        call!(self, true, self.inner.due_page(upto, after, limit).await)
    }
    async fn live_session_count(&self, user: UserId) -> Result<u32, StoreError> {
        call!(self, true, self.inner.live_session_count(user).await)
    }
    async fn rule_add_holder(
        &self,
        key: &RuleKey,
        group: &GroupRef,
        holder: &HolderId,
    ) -> Result<RuleState, StoreError> {
        call!(
            self,
            true,
            self.inner.rule_add_holder(key, group, holder).await
        )
    }
    async fn rule_remove_holder(
        &self,
        key: &RuleKey,
        holder: &HolderId,
    ) -> Result<Option<RuleState>, StoreError> {
        call!(self, true, self.inner.rule_remove_holder(key, holder).await)
    }
    async fn rule_lease(
        &self,
        key: &RuleKey,
        owner: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<LeaseGrant, StoreError> {
        call!(
            self,
            true,
            self.inner.rule_lease(key, owner, now, until).await
        )
    }
    async fn group_lease(
        &self,
        group: &GroupRef,
        owner: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<GroupGrant, StoreError> {
        call!(self, true, {
            let r = self.inner.group_lease(group, owner, now, until).await;
            if let Ok(GroupGrant::Granted { stale: true }) = r {
                self.overlaps.lock().expect("overlaps lock")[0] += 1;
            }
            r
        })
    }
    async fn group_release(&self, group: &GroupRef, owner: &str) -> Result<(), StoreError> {
        call!(self, true, self.inner.group_release(group, owner).await)
    }
    async fn put_work(&self, group: &GroupRef, item: WorkItem) -> Result<(), StoreError> {
        call!(self, true, self.inner.put_work(group, item).await)
    }
    async fn remove_work(&self, group: &GroupRef, item: WorkItem) -> Result<(), StoreError> {
        call!(self, true, self.inner.remove_work(group, item).await)
    }
    async fn group_work(
        &self,
        group: &GroupRef,
        limit: usize,
    ) -> Result<Vec<WorkItem>, StoreError> {
        call!(self, true, self.inner.group_work(group, limit).await)
    }
    async fn is_holder(&self, key: &RuleKey, holder: &HolderId) -> Result<bool, StoreError> {
        call!(self, true, self.inner.is_holder(key, holder).await)
    }
    async fn commit_batch(&self, commit: &GroupCommit) -> Result<(), CommitError> {
        call!(self, true, {
            let r = self.inner.commit_batch(commit).await;
            if let Err(CommitError::LeaseLost) = r {
                self.overlaps.lock().expect("overlaps lock")[1] += 1;
            }
            if r.is_ok() {
                for w in &commit.sessions {
                    self.record(&w.session);
                }
            }
            r
        })
    }
    async fn rule_release_lease(
        &self,
        key: &RuleKey,
        owner: &str,
        cloud: CloudState,
        rule_id: Option<&CloudRuleId>,
    ) -> Result<(), StoreError> {
        call!(
            self,
            true,
            self.inner
                .rule_release_lease(key, owner, cloud, rule_id)
                .await
        )
    }
    async fn rule_observed(
        &self,
        key: &RuleKey,
        group: &GroupRef,
    ) -> Result<RuleState, StoreError> {
        call!(self, true, self.inner.rule_observed(key, group).await)
    }
    async fn claim_run(
        &self,
        job: &str,
        now: Timestamp,
        every: chrono::Duration,
    ) -> Result<bool, StoreError> {
        call!(self, true, self.inner.claim_run(job, now, every).await)
    }
    async fn count_event(
        &self,
        counter: &WindowCounter,
        now: Timestamp,
    ) -> Result<Option<u32>, StoreError> {
        call!(self, true, self.inner.count_event(counter, now).await)
    }
    async fn event_count(&self, counter: &WindowCounter) -> Result<u32, StoreError> {
        call!(self, true, self.inner.event_count(counter).await)
    }
    async fn get_rule(&self, key: &RuleKey) -> Result<Option<RuleState>, StoreError> {
        call!(self, true, self.inner.get_rule(key).await)
    }
    async fn rule_holders(
        &self,
        key: &RuleKey,
        after: Option<&HolderId>,
        limit: usize,
    ) -> Result<Vec<HolderId>, StoreError> {
        call!(self, true, self.inner.rule_holders(key, after, limit).await)
    }
    async fn list_rules(&self) -> Result<Vec<RuleState>, StoreError> {
        call!(self, true, self.inner.list_rules().await)
    }
    async fn unheld_rules(&self) -> Result<Vec<Result<RuleState, BadRecord>>, StoreError> {
        call!(self, true, self.inner.unheld_rules().await)
    }
    async fn append_audit(&self, event: &AuditEvent) -> Result<(), StoreError> {
        call!(self, true, self.inner.append_audit(event).await)
    }
    async fn list_audit(&self, org: OrgId, query: &AuditQuery) -> Result<AuditPage, StoreError> {
        call!(self, true, self.inner.list_audit(org, query).await)
    }
}

/// The work queue's producer side, which may lose a send (the use cases then rely on the
/// sweeper) or crash around it.
pub struct FaultyQueue {
    pub inner: Arc<dyn TaskQueue>,
    pub ctl: Control,
}

/// Runs one queue call under the simulation's fate.
macro_rules! queue_call {
    ($self:ident, $body:expr) => {{
        $self.ctl.maybe_yield().await;
        match $self.ctl.fate(true) {
            Fate::CrashBefore => {
                $self.ctl.crash().await;
                unreachable!()
            }
            Fate::FailBefore => Err(QueueError::Unavailable("injected".into())),
            fate => {
                let out = $body;
                match fate {
                    Fate::CrashAfter => {
                        $self.ctl.crash().await;
                        unreachable!()
                    }
                    Fate::FailAfter => Err(QueueError::Unavailable("injected".into())),
                    _ => out,
                }
            }
        }
    }};
}

#[async_trait]
impl TaskQueue for FaultyQueue {
    async fn enqueue(&self, tasks: Vec<Task>) -> Result<(), QueueError> {
        queue_call!(self, self.inner.enqueue(tasks).await)
    }
    async fn enqueue_delayed(
        &self,
        tasks: Vec<(Task, std::time::Duration)>,
    ) -> Result<(), QueueError> {
        queue_call!(self, self.inner.enqueue_delayed(tasks).await)
    }
    async fn dead_letters(&self, max: usize) -> Result<Vec<DeadLetter>, QueueError> {
        queue_call!(self, self.inner.dead_letters(max).await)
    }
    async fn redrive(&self, letter: &DeadLetter) -> Result<(), QueueError> {
        queue_call!(self, self.inner.redrive(letter).await)
    }
}

/// What the cloud did to one rule, and who asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudChange {
    pub created: bool,
    pub group: GroupRef,
    pub rule: IngressRule,
    /// The label of the handler that made the call.
    pub by: String,
}

/// Which faults the firewall may inject besides the control's crashes.
#[derive(Debug, Clone, Copy, Default)]
pub struct FirewallChaos {
    pub throttle: f64,
    /// A timeout, before the call or after it took effect.
    pub timeout: f64,
    pub denied: f64,
    /// Someone changes the group by hand around a batch call: makes a rule equal to one the
    /// batch creates (a duplicate inside the batch), fills the group so only half the batch
    /// fits, or deletes a rule the batch revokes.
    pub by_hand: f64,
}

/// Reads EntryGuard's rules in one group of the simulated cloud.
pub type Peek = Box<dyn Fn(&GroupRef) -> BTreeSet<IngressRule> + Send + Sync>;

/// The longest a simulated cloud call may take before the client gives up (the EC2 adapter's
/// operation timeout).
pub const CALL_TIMEOUT_SECS: i64 = 25;

pub struct FaultyFirewall {
    pub inner: Arc<dyn Firewall>,
    pub ctl: Control,
    pub clock: Arc<dyn Clock>,
    pub chaos: Mutex<FirewallChaos>,
    /// Reads the simulated cloud's rules for one group, to log what each call changed.
    pub peek: Peek,
    pub changes: Mutex<Vec<CloudChange>>,
    /// The simulated cloud, for the changes by hand around a batch.
    pub sim: SimCloud,
    /// Rules made by hand around batches and still there, for the world's record of rules
    /// EntryGuard must never touch.
    pub made_by_hand: Mutex<Vec<(GroupRef, IngressRule)>>,
    /// How often each change by hand happened (duplicate, group filled, rule deleted).
    pub by_hand_count: Mutex<[u64; 3]>,
}

/// Addresses of the rules that fill a group by hand: none of the simulation's users'.
const FILLER_PORT: u16 = 8080;

impl FaultyFirewall {
    fn injected(&self) -> Option<(bool, FirewallError)> {
        let chaos = *self.chaos.lock().expect("chaos lock");
        self.ctl.current()?;
        if self.ctl.chance(chaos.throttle) {
            return Some((
                false,
                FirewallError::Throttled("injected RequestLimitExceeded".into()),
            ));
        }
        if self.ctl.chance(chaos.timeout) {
            let after = self.ctl.chance(0.5);
            return Some((
                after,
                FirewallError::Unavailable("injected: request timed out".into()),
            ));
        }
        if self.ctl.chance(chaos.denied) {
            return Some((
                false,
                FirewallError::PermissionDenied("injected UnauthorizedOperation".into()),
            ));
        }
        None
    }

    /// One batch call under the simulation's fate: held up past the client's timeout, crashed
    /// before or after, refused by injected throttling or permissions, or timed out after it
    /// took effect. Every rule the batch changed in the cloud is logged.
    async fn run(&self, group: &GroupRef, batch: &GroupBatch) -> BatchOutcome {
        let started = self.clock.now();
        self.ctl.maybe_yield().await;
        if (self.clock.now() - started).num_seconds() > CALL_TIMEOUT_SECS {
            // The handler was held up so long that its call timed out without taking effect.
            return BatchOutcome::all_failed(
                batch,
                &FirewallError::Unavailable("simulated: the call timed out".into()),
            );
        }
        let fate = self.ctl.fate(false);
        if fate == Fate::CrashBefore {
            self.ctl.crash().await;
        }
        let injected = self.injected();
        if let Some((false, e)) = &injected {
            return BatchOutcome::all_failed(batch, e);
        }
        let fillers = self.by_hand(group, batch);
        let before = (self.peek)(group);
        let out = self.inner.apply_batch(group, batch).await;
        for rule in &fillers {
            self.sim
                .delete_by_hand(&group.region, &group.security_group_id, rule)
                .expect("the simulated cloud");
        }
        let after = (self.peek)(group);
        let by = self.ctl.current_label().unwrap_or_default();
        {
            let mut changes = self.changes.lock().expect("changes lock");
            for a in &batch.authorize {
                if !before.contains(&a.rule) && after.contains(&a.rule) {
                    changes.push(CloudChange {
                        created: true,
                        group: group.clone(),
                        rule: a.rule,
                        by: by.clone(),
                    });
                }
            }
            for r in &batch.revoke {
                if before.contains(&r.rule) && !after.contains(&r.rule) {
                    changes.push(CloudChange {
                        created: false,
                        group: group.clone(),
                        rule: r.rule,
                        by: by.clone(),
                    });
                }
            }
        }
        if fate == Fate::CrashAfter {
            self.ctl.crash().await;
        }
        if let Some((true, e)) = injected {
            return BatchOutcome::all_failed(batch, &e);
        }
        out
    }
}

impl FaultyFirewall {
    /// A change by hand just before a batch call, when chaos has one; answers the rules made
    /// only to fill the group, to be deleted again after the call.
    fn by_hand(&self, group: &GroupRef, batch: &GroupBatch) -> Vec<IngressRule> {
        let chaos = *self.chaos.lock().expect("chaos lock");
        if !self.ctl.chance(chaos.by_hand) {
            return Vec::new();
        }
        let (region, sg) = (&group.region, &group.security_group_id);
        let Ok(Some(current)) = self.sim.group(region, sg) else {
            return Vec::new();
        };
        match self.ctl.below(3) {
            0 if !batch.authorize.is_empty() => {
                let a = &batch.authorize[self.ctl.below(batch.authorize.len() as u64) as usize];
                if self
                    .sim
                    .add_by_hand(region, sg, &a.rule, "hand-made, same as EntryGuard's")
                    .expect("the simulated cloud")
                {
                    self.made_by_hand
                        .lock()
                        .expect("hand lock")
                        .push((group.clone(), a.rule));
                    self.by_hand_count.lock().expect("count lock")[0] += 1;
                }
                Vec::new()
            }
            1 if !batch.authorize.is_empty() => {
                let used = current
                    .rules
                    .iter()
                    .filter(|r| r.cidr.addr().is_ipv4())
                    .count();
                let wanted = batch
                    .authorize
                    .iter()
                    .filter(|a| a.rule.cidr.addr().is_ipv4())
                    .count();
                let room = wanted / 2;
                let fill = entryguard::batching::RULES_PER_GROUP.saturating_sub(used + room);
                let mut fillers = Vec::new();
                // Fewer than 60, so one /32 each in a documentation range.
                for i in 0..fill {
                    let rule = IngressRule {
                        ports: entryguard::domain::net::PortRange::tcp(FILLER_PORT),
                        cidr: format!("192.0.2.{i}/32").parse().expect("a cidr"),
                    };
                    if self
                        .sim
                        .add_by_hand(region, sg, &rule, "filler")
                        .expect("the simulated cloud")
                    {
                        fillers.push(rule);
                    }
                }
                self.by_hand_count.lock().expect("count lock")[1] += 1;
                fillers
            }
            2 if !batch.revoke.is_empty() => {
                let r = &batch.revoke[self.ctl.below(batch.revoke.len() as u64) as usize];
                let ours = current
                    .rules
                    .iter()
                    .any(|c| c.is_managed() && c.ports == r.rule.ports && c.cidr == r.rule.cidr);
                let theirs = current
                    .rules
                    .iter()
                    .any(|c| !c.is_managed() && c.ports == r.rule.ports && c.cidr == r.rule.cidr);
                if ours && !theirs {
                    self.sim
                        .delete_by_hand(region, sg, &r.rule)
                        .expect("the simulated cloud");
                    self.by_hand_count.lock().expect("count lock")[2] += 1;
                }
                Vec::new()
            }
            _ => Vec::new(),
        }
    }
}

#[async_trait]
impl Firewall for FaultyFirewall {
    async fn apply_batch(&self, group: &GroupRef, batch: &GroupBatch) -> BatchOutcome {
        self.run(group, batch).await
    }

    async fn ingress_rules(&self, group: &GroupRef) -> Result<Vec<ListedRule>, FirewallError> {
        self.ctl.maybe_yield().await;
        let fate = self.ctl.fate(false);
        if fate == Fate::CrashBefore {
            self.ctl.crash().await;
        }
        if let Some((_, e)) = self.injected() {
            return Err(e);
        }
        let out = self.inner.ingress_rules(group).await;
        if fate == Fate::CrashAfter {
            self.ctl.crash().await;
        }
        out
    }
}
