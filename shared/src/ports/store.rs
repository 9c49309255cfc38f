//! The store port: every persistent read and write, with the atomic semantics the use cases rely
//! on (conditional session versions, the per-user live-session counter, rule holders and leases).

use async_trait::async_trait;
use thiserror::Error;

use crate::domain::audit::{AuditEvent, AuditPage, AuditQuery};
use crate::domain::ids::{OrgId, SessionId, TokenId, UserId};
use crate::domain::model::{Email, Name, Organization, User};
use crate::domain::rate::WindowCounter;
use crate::domain::rule::{
    CloudRuleId, CloudState, GroupRef, HolderId, LeaseGrant, RuleKey, RuleState,
};
use crate::domain::session::Session;
use crate::domain::Timestamp;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("stored data could not be read: {0}")]
    Corrupt(String),
}

#[derive(Debug, Error)]
pub enum CreateError {
    #[error("already exists")]
    AlreadyExists,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Error)]
pub enum CreateSessionError {
    #[error("concurrent session limit reached")]
    LimitReached,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Error)]
pub enum UpdateError {
    #[error("the record changed since it was read")]
    Conflict,
    #[error("the record does not exist")]
    Missing,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Organization-scoped configuration kept as documents: roles, resources, credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocKind {
    Role,
    Resource,
    Credential,
    WebhookEndpoint,
    WebhookDelivery,
    AddressProofKeys,
}

impl DocKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DocKind::Role => "ROLE",
            DocKind::Resource => "RESOURCE",
            DocKind::Credential => "CREDENTIAL",
            // Not a prefix of each other: listings read a kind by its prefix.
            DocKind::WebhookEndpoint => "WEBHOOK",
            DocKind::WebhookDelivery => "WEBHOOK_DELIVERY",
            DocKind::AddressProofKeys => "ADDRESS_PROOF_KEYS",
        }
    }
}

/// A bearer token's record; only the SHA-256 of the token is stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenRecord {
    pub token_hash: String,
    pub user_id: UserId,
    pub created_at: Timestamp,
    /// `None`: valid until revoked (personal tokens only).
    pub expires_at: Option<Timestamp>,
    /// Present for personal API tokens; absent for sign-in tokens.
    #[serde(default)]
    pub personal: Option<PersonalToken>,
    #[serde(default)]
    pub last_used_at: Option<Timestamp>,
}

/// What a personal API token shows in its owner's list.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PersonalToken {
    pub id: TokenId,
    pub name: Name,
}

/// One place in the due index: a session and the time of its next check. Ordered as the index
/// is (time, then session), so the last one of a page is where the next page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DueEntry {
    pub at: Timestamp,
    pub session_id: SessionId,
}

/// One session entry's pending work, kept in its security group's backlog so the worker that
/// holds the group's lease sees every entry the group must serve, not only its own message's.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "camelCase")]
pub struct WorkItem {
    pub session_id: SessionId,
    pub entry: u32,
}

/// The work items a session write brings: each entry that has work to do now and had none (or
/// other work) before; with no `old`, each entry that has work. The stores write them with the session, so a group's backlog is whole
/// as soon as a session starts or ends, whichever message comes first (the worker also puts its
/// own entry's item, so a session with more entries than a transaction takes still works).
pub fn new_work(old: Option<&Session>, new: &Session) -> Vec<(GroupRef, WorkItem)> {
    new.entries
        .iter()
        .filter(|e| {
            let now = new.work_for(e.index).ok();
            let before = old.and_then(|o| o.work_for(e.index).ok());
            matches!(
                now,
                Some(crate::domain::session::EntryWork::Apply)
                    | Some(crate::domain::session::EntryWork::Remove)
            ) && now != before
        })
        .map(|e| {
            (
                e.group.clone(),
                WorkItem {
                    session_id: new.id,
                    entry: e.index,
                },
            )
        })
        .collect()
}

/// The work items a session write settles without a batch: entries that had work and have none
/// now (an untouched entry removed by a stop or an expiry); with no `old`, every ended entry of
/// an ended session. The stores delete them with the session.
pub fn work_done(old: Option<&Session>, new: &Session) -> Vec<(GroupRef, WorkItem)> {
    use crate::domain::session::EntryWork;
    new.entries
        .iter()
        .filter(|e| {
            let idle = new.work_for(e.index).ok() == Some(EntryWork::Nothing);
            match old {
                Some(o) => idle && o.work_for(e.index).is_ok_and(|w| w != EntryWork::Nothing),
                None => idle && new.end.is_some() && e.status.is_terminal(),
            }
        })
        .map(|e| {
            (
                e.group.clone(),
                WorkItem {
                    session_id: new.id,
                    entry: e.index,
                },
            )
        })
        .collect()
}

/// The result of asking for a security group's lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupGrant {
    /// The lease is ours. `stale` means an earlier holder's lease ran out without being given
    /// back (a crash between a cloud call and its commit), so what the rule records say of the
    /// cloud must be treated as unknown.
    Granted {
        stale: bool,
    },
    Busy,
}

/// One rule's part of a group commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleWrite {
    pub key: RuleKey,
    /// The holder count read when the batch was computed (`None`: there was no record); the
    /// commit fails with a conflict if it moved meanwhile.
    pub expected_count: Option<u64>,
    /// Holders added (none of them a holder yet) and removed (each a holder now).
    pub add: Vec<HolderId>,
    pub remove: Vec<HolderId>,
    /// What is now known of the rule in the cloud; its id when one is given (kept otherwise,
    /// and forgotten with an `Absent` rule).
    pub cloud: CloudState,
    pub rule_id: Option<CloudRuleId>,
}

/// One session written by a group commit, only if its stored version is still the one read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionWrite {
    /// The new state, its version `expected_version + 1`.
    pub session: Session,
    pub expected_version: u64,
    /// The user's live-session count drops by one in the same commit.
    pub release_slot: bool,
}

/// Everything one group batch changes, written together: holders and rule records, each
/// touched session once, the audit events, the work items done; the group's lease given back
/// last when `release` is set. Idle rule records (no holder, absent from the cloud) are
/// forgotten.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupCommit {
    pub group: GroupRef,
    /// The lease owner: nothing is written unless it still holds the group's lease.
    pub owner: String,
    pub release: bool,
    pub rules: Vec<RuleWrite>,
    pub sessions: Vec<SessionWrite>,
    pub audit: Vec<AuditEvent>,
    pub done: Vec<WorkItem>,
}

#[derive(Debug, Error)]
pub enum CommitError {
    /// A session's version or a rule's holders moved since the batch read them: re-read and
    /// compute the batch again. A commit too large for one store transaction may have written
    /// its first parts; what it wrote is what a re-read finds.
    #[error("a session or rule changed since the batch read it")]
    Conflict,
    /// The group's lease is no longer the caller's: nothing more may be written for the batch.
    #[error("the group's lease passed to another worker")]
    LeaseLost,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A stored record that could not be read. Listings return it in place of the record, so one
/// bad record never hides the others from the sweeper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRecord {
    /// The record's storage key, for the operators.
    pub key: String,
    /// The rule the key names, when the key itself is readable.
    pub rule: Option<RuleKey>,
    pub error: String,
}

#[async_trait]
pub trait Store: Send + Sync {
    // Organizations.
    async fn put_org(&self, org: &Organization) -> Result<(), StoreError>;
    async fn get_org(&self, id: OrgId) -> Result<Option<Organization>, StoreError>;
    /// Writes `org` (whose version is `expected_version + 1`) only if the stored version is
    /// `expected_version`.
    async fn update_org(
        &self,
        org: &Organization,
        expected_version: u64,
    ) -> Result<(), UpdateError>;
    async fn has_any_org(&self) -> Result<bool, StoreError>;
    /// Every organization (for the sweeper's passes over all tenants).
    async fn list_orgs(&self) -> Result<Vec<Organization>, StoreError>;

    // Users; e-mail addresses are unique across organizations.
    async fn create_user(&self, user: &User) -> Result<(), CreateError>;
    /// Replaces a user; fails with `AlreadyExists` if the new e-mail belongs to another user.
    async fn update_user(&self, user: &User) -> Result<(), CreateError>;
    async fn get_user(&self, id: UserId) -> Result<Option<User>, StoreError>;
    async fn find_user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError>;
    async fn list_users(&self, org: OrgId) -> Result<Vec<User>, StoreError>;
    async fn delete_user(&self, id: UserId) -> Result<bool, StoreError>;

    // Roles, resources, credentials: JSON documents keyed by (kind, org, id).
    async fn put_doc(
        &self,
        kind: DocKind,
        org: OrgId,
        id: uuid::Uuid,
        doc: serde_json::Value,
    ) -> Result<(), StoreError>;
    async fn get_doc(
        &self,
        kind: DocKind,
        org: OrgId,
        id: uuid::Uuid,
    ) -> Result<Option<serde_json::Value>, StoreError>;
    async fn list_docs(
        &self,
        kind: DocKind,
        org: OrgId,
    ) -> Result<Vec<serde_json::Value>, StoreError>;
    async fn delete_doc(
        &self,
        kind: DocKind,
        org: OrgId,
        id: uuid::Uuid,
    ) -> Result<bool, StoreError>;

    // Bearer tokens.
    async fn put_token(&self, token: &TokenRecord) -> Result<(), StoreError>;
    async fn get_token(&self, token_hash: &str) -> Result<Option<TokenRecord>, StoreError>;
    /// The user's personal API tokens, oldest first.
    async fn list_personal_tokens(&self, user: UserId) -> Result<Vec<TokenRecord>, StoreError>;
    /// Deletes one of the user's personal tokens; `false` if the user has no token with that id.
    async fn delete_personal_token(&self, user: UserId, id: TokenId) -> Result<bool, StoreError>;
    /// Records when a token was last used; does nothing if it was deleted meanwhile, so a
    /// revoked token never comes back.
    async fn touch_token(&self, token_hash: &str, at: Timestamp) -> Result<(), StoreError>;

    // Sessions.
    /// Stores a new session (version 0) and takes one of the user's live-session slots, atomically:
    /// if the user already holds `max_live` slots nothing is written.
    async fn create_session(
        &self,
        session: &Session,
        max_live: Option<u32>,
    ) -> Result<(), CreateSessionError>;
    async fn get_session(&self, id: SessionId) -> Result<Option<Session>, StoreError>;
    /// The user's sessions, newest first.
    async fn list_user_sessions(
        &self,
        user: UserId,
        limit: usize,
    ) -> Result<Vec<Session>, StoreError>;
    /// Writes `session` (whose version is `expected_version + 1`) only if the stored version is
    /// `expected_version`; with `release_slot` the user's live-session count drops by one in the
    /// same atomic write.
    async fn update_session(
        &self,
        session: &Session,
        expected_version: u64,
        release_slot: bool,
    ) -> Result<(), UpdateError>;
    /// Sessions whose `next_check_at` is at or before `now`, soonest first. Uses an index: the
    /// cost follows the number of due sessions, not of all sessions.
    async fn due_sessions(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<SessionId>, StoreError>;
    /// One page of the due index: entries whose check is at or before `upto`, strictly after
    /// `after` (the last entry of the previous page), in index order. Paging by position, not by
    /// re-reading from the start, so sessions that stay due (an unreadable one) cannot hold up
    /// the ones behind them.
    async fn due_page(
        &self,
        upto: Timestamp,
        after: Option<DueEntry>,
        limit: usize,
    ) -> Result<Vec<DueEntry>, StoreError>;
    /// The user's live-session count (for diagnostics and tests).
    async fn live_session_count(&self, user: UserId) -> Result<u32, StoreError>;

    // Rules: holders (reference counting) and leases.
    /// Adds `holder` to the rule (creating the record if needed); a no-op if already a holder.
    async fn rule_add_holder(
        &self,
        key: &RuleKey,
        group: &GroupRef,
        holder: &HolderId,
    ) -> Result<RuleState, StoreError>;
    /// Removes `holder` from the rule; a no-op if not a holder. `None` if there is no record.
    async fn rule_remove_holder(
        &self,
        key: &RuleKey,
        holder: &HolderId,
    ) -> Result<Option<RuleState>, StoreError>;
    /// Takes the rule's lease for `owner` until `until`, if it is free or has run out at `now`.
    async fn rule_lease(
        &self,
        key: &RuleKey,
        owner: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<LeaseGrant, StoreError>;
    /// Gives the lease back, recording what is now known of the rule in the cloud: its state,
    /// and its cloud id when one is given (kept otherwise, and forgotten with an `Absent` rule).
    /// Does nothing if `owner` no longer holds the lease. Forgets the record when it becomes idle.
    async fn rule_release_lease(
        &self,
        key: &RuleKey,
        owner: &str,
        cloud: CloudState,
        rule_id: Option<&CloudRuleId>,
    ) -> Result<(), StoreError>;
    /// Records that the rule was seen in the cloud: creates its record with no holders and the
    /// cloud state `Unknown` if there is none (so the orphan pass revokes it), and returns the
    /// record as it is.
    async fn rule_observed(&self, key: &RuleKey, group: &GroupRef)
        -> Result<RuleState, StoreError>;
    async fn get_rule(&self, key: &RuleKey) -> Result<Option<RuleState>, StoreError>;
    /// One page of the rule's holders, in order, strictly after `after`: at most `limit`. A
    /// rule may have thousands (one office address), so they are never read all at once.
    async fn rule_holders(
        &self,
        key: &RuleKey,
        after: Option<&HolderId>,
        limit: usize,
    ) -> Result<Vec<HolderId>, StoreError>;
    async fn list_rules(&self) -> Result<Vec<RuleState>, StoreError>;
    /// The rule records that have no holder (a sparse index: a held rule is not in it), so the
    /// sweeper's orphan pass reads what it may act on, not every rule. A record that cannot be
    /// read comes back as a `BadRecord`.
    async fn unheld_rules(&self) -> Result<Vec<Result<RuleState, BadRecord>>, StoreError>;

    // Security groups: one lease and one backlog per group, so a group's pending changes are
    // made together.
    /// Takes the group's lease for `owner` until `until`, if it is free or has run out at `now`
    /// (creating the group's record if needed).
    async fn group_lease(
        &self,
        group: &GroupRef,
        owner: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<GroupGrant, StoreError>;
    /// Gives the group's lease back; does nothing if `owner` no longer holds it.
    async fn group_release(&self, group: &GroupRef, owner: &str) -> Result<(), StoreError>;
    /// Puts a work item into the group's backlog (a no-op when it is there).
    async fn put_work(&self, group: &GroupRef, item: WorkItem) -> Result<(), StoreError>;
    /// Takes a work item out of the group's backlog (a no-op when it is not there).
    async fn remove_work(&self, group: &GroupRef, item: WorkItem) -> Result<(), StoreError>;
    /// The group's backlog, in order, at most `limit` (strongly consistent).
    async fn group_work(&self, group: &GroupRef, limit: usize)
        -> Result<Vec<WorkItem>, StoreError>;
    /// Whether `holder` holds the rule.
    async fn is_holder(&self, key: &RuleKey, holder: &HolderId) -> Result<bool, StoreError>;
    /// Writes a group batch's outcome (see `GroupCommit`).
    async fn commit_batch(&self, commit: &GroupCommit) -> Result<(), CommitError>;

    // Periodic jobs and one-off notices.
    /// Claims the run of `job` at `now` if its last claimed run was at least `every` ago (or
    /// there was none): exactly one of several concurrent callers gets `true`. Rate-limits
    /// periodic passes and keeps notices from repeating.
    async fn claim_run(
        &self,
        job: &str,
        now: Timestamp,
        every: chrono::Duration,
    ) -> Result<bool, StoreError>;

    // Rate limits.
    /// Counts one event on `counter` unless it already counted `counter.limit`, atomically: any
    /// number of concurrent callers, on any instance, never count past the limit. Returns the
    /// count including this event, or `None` when the limit was already reached (nothing is
    /// counted then, so refused callers do not push the count further). Counters whose window
    /// ended before `now` may be forgotten.
    async fn count_event(
        &self,
        counter: &WindowCounter,
        now: Timestamp,
    ) -> Result<Option<u32>, StoreError>;
    /// How many events `counter` has counted (0 when none).
    async fn event_count(&self, counter: &WindowCounter) -> Result<u32, StoreError>;

    // Audit log.
    async fn append_audit(&self, event: &AuditEvent) -> Result<(), StoreError>;
    async fn list_audit(&self, org: OrgId, query: &AuditQuery) -> Result<AuditPage, StoreError>;
}
