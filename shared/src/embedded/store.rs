//! The embedded store: the `Store` port on redb. Every operation is one redb write transaction,
//! which gives the same atomicity the DynamoDB adapter gets from conditions and transactions.

use std::collections::BTreeSet;

use async_trait::async_trait;
use uuid::Uuid;

use super::kv::{self, Kv, KvTable};
use crate::audit_paging::AuditPager;
use crate::domain::audit::{AuditEvent, AuditPage, AuditQuery};
use crate::domain::ids::{OrgId, SessionId, TokenId, UserId};
use crate::domain::model::{Email, Organization, User};
use crate::domain::rate::WindowCounter;
use crate::domain::rule::{
    CloudRuleId, CloudState, GroupRef, HolderId, Lease, LeaseGrant, RuleKey, RuleState,
};
use crate::domain::session::Session;
use crate::domain::Timestamp;
use crate::keys::{audit_key, time_key};
use crate::ports::store::{
    new_work, work_done, BadRecord, CommitError, CreateError, CreateSessionError, DocKind,
    DueEntry, GroupCommit, GroupGrant, PersonalToken, Store, StoreError, TokenRecord, UpdateError,
    WorkItem,
};

#[derive(Clone)]
pub struct EmbeddedStore {
    kv: Kv,
}

impl EmbeddedStore {
    pub fn new(kv: Kv) -> Self {
        Self { kv }
    }
}

fn org_key(id: OrgId) -> String {
    format!("org/{id}")
}
fn user_key(id: UserId) -> String {
    format!("user/{id}")
}
fn email_key(e: &Email) -> String {
    format!("email/{e}")
}
fn org_user_key(org: OrgId, id: UserId) -> String {
    format!("orguser/{org}/{id}")
}
fn doc_key(kind: DocKind, org: OrgId, id: Uuid) -> String {
    format!("doc/{}/{org}/{id}", kind.as_str())
}
fn token_key(hash: &str) -> String {
    format!("token/{hash}")
}
fn user_tokens_prefix(user: UserId) -> String {
    format!("utoken/{user}/")
}
/// Indexes a personal token under its owner, oldest first; the value is the token's hash.
fn user_token_key(t: &TokenRecord, p: &PersonalToken) -> String {
    format!(
        "{}{}/{}",
        user_tokens_prefix(t.user_id),
        time_key(t.created_at),
        p.id
    )
}
/// A user's personal-token index entries, oldest first: (index key, token hash).
fn personal_index(
    t: &impl redb::ReadableTable<&'static str, &'static [u8]>,
    user: UserId,
) -> Result<Vec<(String, String)>, StoreError> {
    let prefix = user_tokens_prefix(user);
    kv::scan_range(
        t,
        &prefix,
        &prefix,
        &kv::prefix_end(&prefix),
        false,
        usize::MAX,
    )
}
fn session_key(id: SessionId) -> String {
    format!("session/{id}")
}
fn user_session_key(s: &Session) -> String {
    format!("usess/{}/{}/{}", s.user_id, time_key(s.created_at), s.id)
}
fn due_key(at: Timestamp, id: SessionId) -> String {
    format!("due/{}/{id}", time_key(at))
}
fn live_key(user: UserId) -> String {
    format!("live/{user}")
}
fn rule_key(key: &RuleKey) -> String {
    format!("rule/{}", key.storage_key())
}
fn rate_key(counter: &WindowCounter) -> String {
    format!("rate/{}", counter.key)
}
/// Rate counters by the end of their window, so ended ones can be found and forgotten.
fn rate_end_key(counter: &WindowCounter) -> String {
    format!("rateend/{}/{}", time_key(counter.ends_at), counter.key)
}
/// Ended counters forgotten per counted event: more than are created per event, so they never
/// pile up, and few enough that no single request pays for a long cleanup.
const RATE_CLEANUP_BATCH: usize = 8;
/// The sparse index of rule records without holders: the sweeper's orphan pass reads only these.
fn unheld_key(key: &RuleKey) -> String {
    format!("unheld/{}", key.storage_key())
}

/// A holder is a record of its own beside the rule's (the rule keeps only the count), so no
/// record grows with the number of holders.
fn holders_prefix(key: &RuleKey) -> String {
    format!("holder/{}/", key.storage_key())
}
fn holder_key(key: &RuleKey, holder: &HolderId) -> String {
    format!("{}{}", holders_prefix(key), holder.as_str())
}

/// A security group's record: its lease. Its backlog lives under `work/<group>/`.
fn group_key(group: &GroupRef) -> String {
    format!("group/{}/{}", group.region, group.security_group_id)
}
fn work_prefix(group: &GroupRef) -> String {
    format!("work/{}/{}/", group.region, group.security_group_id)
}
fn work_key(group: &GroupRef, item: &WorkItem) -> String {
    // Fixed-width entry numbers keep the backlog in (session, entry) order.
    format!(
        "{}{}#{:010}",
        work_prefix(group),
        item.session_id,
        item.entry
    )
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct GroupRecord {
    lease: Option<Lease>,
}

/// A rule record as stored: records written before holders had records of their own keep them
/// in a set, read as holders until the next write moves them out.
#[derive(serde::Deserialize)]
struct StoredRule {
    #[serde(flatten)]
    state: RuleState,
    #[serde(default)]
    holders: BTreeSet<HolderId>,
}

impl StoredRule {
    /// The rule as the port shows it: the set's holders counted with the others.
    fn into_state(self) -> RuleState {
        let mut state = self.state;
        state.holder_count += self.holders.len() as u64;
        state
    }
}

/// Reads a rule record for a write, moving a set of holders from before into holder records.
fn load_rule(t: &mut KvTable<'_>, key: &RuleKey) -> Result<Option<RuleState>, StoreError> {
    let Some(stored) = kv::get::<StoredRule>(t, &rule_key(key))? else {
        return Ok(None);
    };
    if stored.holders.is_empty() {
        return Ok(Some(stored.state));
    }
    for holder in &stored.holders {
        kv::put(t, &holder_key(key, holder), &())?;
    }
    let state = stored.into_state();
    put_rule(t, &state)?;
    Ok(Some(state))
}

/// Writes a rule record and keeps the unheld index in step with it.
fn put_rule(t: &mut KvTable<'_>, state: &RuleState) -> Result<(), StoreError> {
    if state.holder_count == 0 {
        kv::put(t, &unheld_key(&state.key), &state.key.storage_key())?;
    } else {
        kv::delete(t, &unheld_key(&state.key))?;
    }
    kv::put(t, &rule_key(&state.key), state)
}

fn delete_rule(t: &mut KvTable<'_>, key: &RuleKey) -> Result<(), StoreError> {
    kv::delete(t, &unheld_key(key))?;
    kv::delete(t, &rule_key(key)).map(|_| ())
}

/// Reads a due-index key (`due/<time>/<session>`) back into its entry.
fn due_entry(key: &str) -> Result<DueEntry, StoreError> {
    let bad = || StoreError::Corrupt(format!("due index key {key}"));
    let (time, id) = key
        .strip_prefix("due/")
        .and_then(|rest| rest.rsplit_once('/'))
        .ok_or_else(bad)?;
    Ok(DueEntry {
        at: chrono::DateTime::parse_from_rfc3339(time)
            .map_err(|_| bad())?
            .with_timezone(&chrono::Utc),
        session_id: id.parse().map_err(|_| bad())?,
    })
}
fn audit_prefix(org: OrgId) -> String {
    format!("audit/{org}/")
}

/// Where an audit event is stored: its organization's range, then the shared sort key.
fn audit_storage_key(event: &AuditEvent) -> String {
    format!("{}{}", audit_prefix(event.org_id), audit_key(event))
}

/// Gives the group's lease back if `owner` holds it; answers whether it did.
fn release_group(t: &mut KvTable<'_>, group: &GroupRef, owner: &str) -> Result<bool, StoreError> {
    let Some(mut record) = kv::get::<GroupRecord>(t, &group_key(group))? else {
        return Ok(false);
    };
    if record.lease.as_ref().is_none_or(|l| l.owner != owner) {
        return Ok(false);
    }
    record.lease = None;
    kv::put(t, &group_key(group), &record)?;
    Ok(true)
}

fn write_session_indexes(
    t: &mut KvTable<'_>,
    old: Option<&Session>,
    new: &Session,
) -> Result<(), StoreError> {
    if let Some(at) = old.and_then(Session::next_check_at) {
        kv::delete(t, &due_key(at, new.id))?;
    }
    if let Some(at) = new.next_check_at() {
        kv::put(t, &due_key(at, new.id), &new.id)?;
    }
    for (group, item) in new_work(old, new) {
        kv::put(t, &work_key(&group, &item), &item)?;
    }
    for (group, item) in work_done(old, new) {
        kv::delete(t, &work_key(&group, &item))?;
    }
    kv::put(t, &session_key(new.id), new)
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn put_org(&self, org: &Organization) -> Result<(), StoreError> {
        self.kv.write(|t| kv::put(t, &org_key(org.id), org))
    }

    async fn get_org(&self, id: OrgId) -> Result<Option<Organization>, StoreError> {
        self.kv.get(&org_key(id))
    }

    async fn update_org(
        &self,
        org: &Organization,
        expected_version: u64,
    ) -> Result<(), UpdateError> {
        self.kv.write(|t| {
            let Some(old) = kv::get::<Organization>(t, &org_key(org.id))? else {
                return Err(UpdateError::Missing);
            };
            if old.version != expected_version {
                return Err(UpdateError::Conflict);
            }
            Ok(kv::put(t, &org_key(org.id), org)?)
        })
    }

    async fn list_orgs(&self) -> Result<Vec<Organization>, StoreError> {
        Ok(self
            .kv
            .scan("org/", false, usize::MAX)?
            .into_iter()
            .map(|(_, o)| o)
            .collect())
    }

    async fn has_any_org(&self) -> Result<bool, StoreError> {
        Ok(!self
            .kv
            .scan::<serde_json::Value>("org/", false, 1)?
            .is_empty())
    }

    async fn create_user(&self, user: &User) -> Result<(), CreateError> {
        self.kv.write(|t| {
            if kv::get::<UserId>(t, &email_key(&user.email))?.is_some()
                || kv::get::<User>(t, &user_key(user.id))?.is_some()
            {
                return Err(CreateError::AlreadyExists);
            }
            kv::put(t, &email_key(&user.email), &user.id)?;
            kv::put(t, &org_user_key(user.org_id, user.id), &user.id)?;
            kv::put(t, &user_key(user.id), user)?;
            Ok(())
        })
    }

    async fn update_user(&self, user: &User) -> Result<(), CreateError> {
        self.kv.write(|t| {
            let old: Option<User> = kv::get(t, &user_key(user.id))?;
            if let Some(owner) = kv::get::<UserId>(t, &email_key(&user.email))? {
                if owner != user.id {
                    return Err(CreateError::AlreadyExists);
                }
            }
            if let Some(old) = old {
                kv::delete(t, &email_key(&old.email))?;
            }
            kv::put(t, &email_key(&user.email), &user.id)?;
            kv::put(t, &org_user_key(user.org_id, user.id), &user.id)?;
            kv::put(t, &user_key(user.id), user)?;
            Ok(())
        })
    }

    async fn get_user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        self.kv.get(&user_key(id))
    }

    async fn find_user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        match self.kv.get::<UserId>(&email_key(email))? {
            Some(id) => self.kv.get(&user_key(id)),
            None => Ok(None),
        }
    }

    async fn list_users(&self, org: OrgId) -> Result<Vec<User>, StoreError> {
        let ids = self
            .kv
            .scan::<UserId>(&format!("orguser/{org}/"), false, usize::MAX)?;
        let mut users = Vec::with_capacity(ids.len());
        for (_, id) in ids {
            if let Some(u) = self.kv.get(&user_key(id))? {
                users.push(u);
            }
        }
        Ok(users)
    }

    async fn delete_user(&self, id: UserId) -> Result<bool, StoreError> {
        self.kv.write(|t| {
            let Some(user) = kv::get::<User>(t, &user_key(id))? else {
                return Ok(false);
            };
            kv::delete(t, &email_key(&user.email))?;
            kv::delete(t, &org_user_key(user.org_id, id))?;
            kv::delete(t, &user_key(id))
        })
    }

    async fn put_doc(
        &self,
        kind: DocKind,
        org: OrgId,
        id: Uuid,
        doc: serde_json::Value,
    ) -> Result<(), StoreError> {
        self.kv.write(|t| kv::put(t, &doc_key(kind, org, id), &doc))
    }

    async fn get_doc(
        &self,
        kind: DocKind,
        org: OrgId,
        id: Uuid,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        self.kv.get(&doc_key(kind, org, id))
    }

    async fn list_docs(
        &self,
        kind: DocKind,
        org: OrgId,
    ) -> Result<Vec<serde_json::Value>, StoreError> {
        let prefix = format!("doc/{}/{org}/", kind.as_str());
        Ok(self
            .kv
            .scan(&prefix, false, usize::MAX)?
            .into_iter()
            .map(|(_, v)| v)
            .collect())
    }

    async fn delete_doc(&self, kind: DocKind, org: OrgId, id: Uuid) -> Result<bool, StoreError> {
        self.kv.write(|t| kv::delete(t, &doc_key(kind, org, id)))
    }

    async fn put_token(&self, token: &TokenRecord) -> Result<(), StoreError> {
        self.kv.write(|t| {
            kv::put(t, &token_key(&token.token_hash), token)?;
            if let Some(p) = &token.personal {
                kv::put(t, &user_token_key(token, p), &token.token_hash)?;
            }
            Ok(())
        })
    }

    async fn get_token(&self, token_hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        self.kv.get(&token_key(token_hash))
    }

    async fn list_personal_tokens(&self, user: UserId) -> Result<Vec<TokenRecord>, StoreError> {
        self.kv.read(|t| {
            let hashes = personal_index(t, user)?;
            let mut out = Vec::with_capacity(hashes.len());
            for (_, hash) in hashes {
                if let Some(record) = kv::get::<TokenRecord>(t, &token_key(&hash))? {
                    out.push(record);
                }
            }
            Ok(out)
        })
    }

    async fn delete_personal_token(&self, user: UserId, id: TokenId) -> Result<bool, StoreError> {
        self.kv.write(|t| {
            let entries = personal_index(t, user)?;
            let suffix = format!("/{id}");
            let Some((index_key, hash)) = entries.into_iter().find(|(k, _)| k.ends_with(&suffix))
            else {
                return Ok(false);
            };
            kv::delete(t, &index_key)?;
            kv::delete(t, &token_key(&hash))?;
            Ok(true)
        })
    }

    async fn touch_token(&self, token_hash: &str, at: Timestamp) -> Result<(), StoreError> {
        self.kv.write(|t| {
            let key = token_key(token_hash);
            if let Some(mut record) = kv::get::<TokenRecord>(t, &key)? {
                record.last_used_at = Some(at);
                kv::put(t, &key, &record)?;
            }
            Ok(())
        })
    }

    async fn create_session(
        &self,
        session: &Session,
        max_live: Option<u32>,
    ) -> Result<(), CreateSessionError> {
        self.kv.write(|t| {
            if let Some(stored) = kv::get::<Session>(t, &session_key(session.id))? {
                // The same create again (a retry whose first attempt landed): already done.
                if stored == *session {
                    return Ok(());
                }
                return Err(
                    StoreError::Corrupt(format!("session {} already exists", session.id)).into(),
                );
            }
            let live: u32 = kv::get(t, &live_key(session.user_id))?.unwrap_or(0);
            if max_live.is_some_and(|max| live >= max) {
                return Err(CreateSessionError::LimitReached);
            }
            kv::put(t, &live_key(session.user_id), &(live + 1))?;
            kv::put(t, &user_session_key(session), &session.id)?;
            write_session_indexes(t, None, session)?;
            Ok(())
        })
    }

    async fn get_session(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
        self.kv.get(&session_key(id))
    }

    async fn list_user_sessions(
        &self,
        user: UserId,
        limit: usize,
    ) -> Result<Vec<Session>, StoreError> {
        let ids = self
            .kv
            .scan::<SessionId>(&format!("usess/{user}/"), true, limit)?;
        let mut out = Vec::with_capacity(ids.len());
        for (_, id) in ids {
            if let Some(s) = self.kv.get(&session_key(id))? {
                out.push(s);
            }
        }
        Ok(out)
    }

    async fn update_session(
        &self,
        session: &Session,
        expected_version: u64,
        release_slot: bool,
    ) -> Result<(), UpdateError> {
        self.kv.write(|t| {
            let Some(old) = kv::get::<Session>(t, &session_key(session.id))? else {
                return Err(UpdateError::Missing);
            };
            if old.version != expected_version {
                // The same write again (a retry whose first attempt landed) is done, not a
                // conflict: the slot was released with it.
                if old == *session {
                    return Ok(());
                }
                return Err(UpdateError::Conflict);
            }
            if release_slot {
                let live: u32 = kv::get(t, &live_key(session.user_id))?.unwrap_or(0);
                kv::put(t, &live_key(session.user_id), &live.saturating_sub(1))?;
            }
            write_session_indexes(t, Some(&old), session)?;
            Ok(())
        })
    }

    async fn due_sessions(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<SessionId>, StoreError> {
        let txn_end = format!("due/{}~", time_key(now));
        self.kv.read(|t| {
            Ok(
                kv::scan_range::<SessionId>(t, "due/", "due/", &txn_end, false, limit)?
                    .into_iter()
                    .map(|(_, id)| id)
                    .collect(),
            )
        })
    }

    async fn due_page(
        &self,
        upto: Timestamp,
        after: Option<DueEntry>,
        limit: usize,
    ) -> Result<Vec<DueEntry>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        // Just past the previous page's last key: keys are unique, so nothing sorts between.
        let from = match after {
            Some(e) => format!("{}\u{0}", due_key(e.at, e.session_id)),
            None => "due/".to_owned(),
        };
        let to = format!("due/{}~", time_key(upto));
        self.kv.read(|t| {
            kv::scan_range::<SessionId>(t, "due/", &from, &to, false, limit)?
                .into_iter()
                .map(|(k, _)| due_entry(&k))
                .collect()
        })
    }

    async fn live_session_count(&self, user: UserId) -> Result<u32, StoreError> {
        Ok(self.kv.get(&live_key(user))?.unwrap_or(0))
    }

    async fn rule_add_holder(
        &self,
        key: &RuleKey,
        group: &GroupRef,
        holder: &HolderId,
    ) -> Result<RuleState, StoreError> {
        self.kv.write(|t| {
            let mut state =
                load_rule(t, key)?.unwrap_or_else(|| RuleState::new(key.clone(), group.clone()));
            if kv::get::<()>(t, &holder_key(key, holder))?.is_none() {
                kv::put(t, &holder_key(key, holder), &())?;
                state.holder_count += 1;
                put_rule(t, &state)?;
            }
            Ok(state)
        })
    }

    async fn rule_remove_holder(
        &self,
        key: &RuleKey,
        holder: &HolderId,
    ) -> Result<Option<RuleState>, StoreError> {
        self.kv.write(|t| {
            let Some(mut state) = load_rule(t, key)? else {
                return Ok(None);
            };
            if kv::delete(t, &holder_key(key, holder))? {
                state.holder_count = state.holder_count.saturating_sub(1);
                if state.is_idle() {
                    delete_rule(t, key)?;
                } else {
                    put_rule(t, &state)?;
                }
            }
            Ok(Some(state))
        })
    }

    async fn rule_lease(
        &self,
        key: &RuleKey,
        owner: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<LeaseGrant, StoreError> {
        self.kv.write(|t| {
            let Some(mut state) = load_rule(t, key)? else {
                return Err(StoreError::Corrupt(format!("no rule record for {key}")));
            };
            let stale = match &state.lease {
                Some(lease) if lease.until > now && lease.owner != owner => {
                    return Ok(LeaseGrant::Busy)
                }
                Some(lease) => lease.owner != owner,
                None => false,
            };
            state.lease = Some(Lease {
                owner: owner.to_owned(),
                until,
            });
            put_rule(t, &state)?;
            Ok(LeaseGrant::Granted {
                state: Box::new(state),
                stale,
            })
        })
    }

    async fn rule_release_lease(
        &self,
        key: &RuleKey,
        owner: &str,
        cloud: CloudState,
        rule_id: Option<&CloudRuleId>,
    ) -> Result<(), StoreError> {
        self.kv.write(|t| {
            let Some(mut state) = load_rule(t, key)? else {
                return Ok(());
            };
            if state.lease.as_ref().is_none_or(|l| l.owner != owner) {
                return Ok(());
            }
            state.lease = None;
            state.cloud = cloud;
            if let Some(id) = rule_id {
                state.cloud_rule_id = Some(id.clone());
            } else if cloud == CloudState::Absent {
                state.cloud_rule_id = None;
            }
            if state.is_idle() {
                delete_rule(t, key)?;
            } else {
                put_rule(t, &state)?;
            }
            Ok(())
        })
    }

    async fn rule_observed(
        &self,
        key: &RuleKey,
        group: &GroupRef,
    ) -> Result<RuleState, StoreError> {
        self.kv.write(|t| {
            if let Some(state) = load_rule(t, key)? {
                return Ok(state);
            }
            let mut state = RuleState::new(key.clone(), group.clone());
            state.cloud = CloudState::Unknown;
            put_rule(t, &state)?;
            Ok(state)
        })
    }

    async fn group_lease(
        &self,
        group: &GroupRef,
        owner: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<GroupGrant, StoreError> {
        self.kv.write(|t| {
            let mut record = kv::get::<GroupRecord>(t, &group_key(group))?.unwrap_or_default();
            let stale = match &record.lease {
                Some(lease) if lease.until > now && lease.owner != owner => {
                    return Ok(GroupGrant::Busy)
                }
                Some(lease) => lease.owner != owner,
                None => false,
            };
            record.lease = Some(Lease {
                owner: owner.to_owned(),
                until,
            });
            kv::put(t, &group_key(group), &record)?;
            Ok(GroupGrant::Granted { stale })
        })
    }

    async fn group_release(&self, group: &GroupRef, owner: &str) -> Result<(), StoreError> {
        self.kv
            .write(|t| release_group(t, group, owner).map(|_| ()))
    }

    async fn put_work(&self, group: &GroupRef, item: WorkItem) -> Result<(), StoreError> {
        self.kv
            .write(|t| kv::put(t, &work_key(group, &item), &item))
    }

    async fn remove_work(&self, group: &GroupRef, item: WorkItem) -> Result<(), StoreError> {
        self.kv
            .write(|t| kv::delete(t, &work_key(group, &item)).map(|_| ()))
    }

    async fn group_work(
        &self,
        group: &GroupRef,
        limit: usize,
    ) -> Result<Vec<WorkItem>, StoreError> {
        Ok(self
            .kv
            .scan::<WorkItem>(&work_prefix(group), false, limit)?
            .into_iter()
            .map(|(_, item)| item)
            .collect())
    }

    async fn is_holder(&self, key: &RuleKey, holder: &HolderId) -> Result<bool, StoreError> {
        self.kv.read(|t| {
            if kv::get::<()>(t, &holder_key(key, holder))?.is_some() {
                return Ok(true);
            }
            Ok(kv::get::<StoredRule>(t, &rule_key(key))?
                .is_some_and(|r| r.holders.contains(holder)))
        })
    }

    async fn commit_batch(&self, commit: &GroupCommit) -> Result<(), CommitError> {
        self.kv.write(|t| {
            let leased = kv::get::<GroupRecord>(t, &group_key(&commit.group))?
                .and_then(|r| r.lease)
                .is_some_and(|l| l.owner == commit.owner);
            if !leased {
                return Err(CommitError::LeaseLost);
            }
            for write in &commit.rules {
                let current = load_rule(t, &write.key)?;
                if current.as_ref().map(|r| r.holder_count) != write.expected_count {
                    return Err(CommitError::Conflict);
                }
                let mut state = current
                    .unwrap_or_else(|| RuleState::new(write.key.clone(), commit.group.clone()));
                for holder in &write.add {
                    if kv::get::<()>(t, &holder_key(&write.key, holder))?.is_some() {
                        return Err(CommitError::Conflict);
                    }
                    kv::put(t, &holder_key(&write.key, holder), &())?;
                    state.holder_count += 1;
                }
                for holder in &write.remove {
                    if !kv::delete(t, &holder_key(&write.key, holder))? {
                        return Err(CommitError::Conflict);
                    }
                    state.holder_count = state.holder_count.saturating_sub(1);
                }
                state.cloud = write.cloud;
                if let Some(id) = &write.rule_id {
                    state.cloud_rule_id = Some(id.clone());
                } else if write.cloud == CloudState::Absent {
                    state.cloud_rule_id = None;
                }
                // The group's lease covers every rule of the group: a rule lease left by a
                // crashed per-rule change is stale here, and an idle record goes with it.
                if state.holder_count == 0 && state.cloud == CloudState::Absent {
                    delete_rule(t, &write.key)?;
                } else {
                    put_rule(t, &state)?;
                }
            }
            for write in &commit.sessions {
                let session = &write.session;
                let Some(old) = kv::get::<Session>(t, &session_key(session.id))? else {
                    return Err(CommitError::Conflict);
                };
                if old.version != write.expected_version {
                    return Err(CommitError::Conflict);
                }
                if write.release_slot {
                    let live: u32 = kv::get(t, &live_key(session.user_id))?.unwrap_or(0);
                    kv::put(t, &live_key(session.user_id), &live.saturating_sub(1))?;
                }
                write_session_indexes(t, Some(&old), session)?;
            }
            for event in &commit.audit {
                kv::put(t, &audit_storage_key(event), event)?;
            }
            for item in &commit.done {
                kv::delete(t, &work_key(&commit.group, item))?;
            }
            if commit.release {
                release_group(t, &commit.group, &commit.owner)?;
            }
            Ok(())
        })
    }

    async fn claim_run(
        &self,
        job: &str,
        now: Timestamp,
        every: chrono::Duration,
    ) -> Result<bool, StoreError> {
        let key = format!("run/{job}");
        self.kv.write(|t| {
            if let Some(last) = kv::get::<Timestamp>(t, &key)? {
                if now < last + every {
                    return Ok(false);
                }
            }
            kv::put(t, &key, &now)?;
            Ok(true)
        })
    }

    async fn get_rule(&self, key: &RuleKey) -> Result<Option<RuleState>, StoreError> {
        Ok(self
            .kv
            .get::<StoredRule>(&rule_key(key))?
            .map(StoredRule::into_state))
    }

    async fn rule_holders(
        &self,
        key: &RuleKey,
        after: Option<&HolderId>,
        limit: usize,
    ) -> Result<Vec<HolderId>, StoreError> {
        let prefix = holders_prefix(key);
        let from = match after {
            Some(h) => format!("{}\u{0}", holder_key(key, h)),
            None => prefix.clone(),
        };
        self.kv.read(|t| {
            let legacy = kv::get::<StoredRule>(t, &rule_key(key))?
                .map(|r| r.holders)
                .unwrap_or_default();
            let mut out: Vec<HolderId> = legacy
                .into_iter()
                .filter(|h| after.is_none_or(|a| h > a))
                .take(limit)
                .collect();
            for (k, ()) in
                kv::scan_range::<()>(t, &prefix, &from, &kv::prefix_end(&prefix), false, limit)?
            {
                let raw = &k[prefix.len()..];
                out.push(
                    serde_json::from_value(serde_json::Value::String(raw.to_owned()))
                        .map_err(|e| StoreError::Corrupt(format!("{k}: {e}")))?,
                );
            }
            out.sort();
            out.dedup();
            out.truncate(limit);
            Ok(out)
        })
    }

    async fn list_rules(&self) -> Result<Vec<RuleState>, StoreError> {
        Ok(self
            .kv
            .scan::<StoredRule>("rule/", false, usize::MAX)?
            .into_iter()
            .map(|(_, v)| v.into_state())
            .collect())
    }

    async fn count_event(
        &self,
        counter: &WindowCounter,
        now: Timestamp,
    ) -> Result<Option<u32>, StoreError> {
        self.kv.write(|t| {
            let ended = kv::scan_range::<String>(
                t,
                "rateend/",
                "rateend/",
                &format!("rateend/{}", time_key(now)),
                false,
                RATE_CLEANUP_BATCH,
            )?;
            for (index, key) in ended {
                kv::delete(t, &format!("rate/{key}"))?;
                kv::delete(t, &index)?;
            }
            let count: u32 = kv::get(t, &rate_key(counter))?.unwrap_or(0);
            if count >= counter.limit {
                return Ok(None);
            }
            if count == 0 {
                kv::put(t, &rate_end_key(counter), &counter.key)?;
            }
            kv::put(t, &rate_key(counter), &(count + 1))?;
            Ok(Some(count + 1))
        })
    }

    async fn event_count(&self, counter: &WindowCounter) -> Result<u32, StoreError> {
        Ok(self.kv.get(&rate_key(counter))?.unwrap_or(0))
    }

    async fn unheld_rules(&self) -> Result<Vec<Result<RuleState, BadRecord>>, StoreError> {
        let index = self.kv.scan::<String>("unheld/", false, usize::MAX)?;
        let mut out = Vec::with_capacity(index.len());
        for (_, storage_key) in index {
            let key = format!("rule/{storage_key}");
            match self.kv.get::<StoredRule>(&key) {
                Ok(Some(stored)) => out.push(Ok(stored.into_state())),
                // Forgotten since the index was read.
                Ok(None) => {}
                Err(StoreError::Corrupt(error)) => out.push(Err(BadRecord {
                    key,
                    rule: RuleKey::from_storage_key(&storage_key),
                    error,
                })),
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    async fn append_audit(&self, event: &AuditEvent) -> Result<(), StoreError> {
        let key = audit_storage_key(event);
        self.kv.write(|t| kv::put(t, &key, event))
    }

    async fn list_audit(&self, org: OrgId, query: &AuditQuery) -> Result<AuditPage, StoreError> {
        const CHUNK: usize = 200;
        let mut page = AuditPager::new(query);
        let Some((lower, upper)) = page.range() else {
            return Ok(page.finish());
        };
        let prefix = audit_prefix(org);
        let lower = format!("{prefix}{lower}");
        let mut upper = format!("{prefix}{upper}");
        self.kv.read(|t| {
            // Filters other than time are applied after reading, so read in chunks until full.
            loop {
                let chunk = kv::scan_range::<AuditEvent>(t, &prefix, &lower, &upper, true, CHUNK)?;
                let exhausted = chunk.len() < CHUNK;
                for (key, event) in chunk {
                    if !page.push(&key[prefix.len()..], event) {
                        return Ok(());
                    }
                    upper = key;
                }
                if exhausted {
                    return Ok(());
                }
            }
        })?;
        Ok(page.finish())
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone, Utc};

    use super::*;
    use crate::domain::rate::RateLimit;

    /// DynamoDB's TTL removes ended counters; here each new count removes a few, so counters of
    /// addresses seen once do not pile up in the file.
    #[tokio::test]
    async fn ended_rate_counters_are_forgotten() {
        let kv = Kv::in_memory();
        let store = EmbeddedStore::new(kv.clone());
        let t0 = Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap();
        let limit = RateLimit::per_minute(5);
        for n in 0..RATE_CLEANUP_BATCH * 2 {
            let c = limit.counter(&format!("auth-failures/192.0.2.{n}"), t0);
            store.count_event(&c, t0).await.unwrap();
        }
        let stored = |prefix: &str| {
            kv.scan::<serde_json::Value>(prefix, false, usize::MAX)
                .unwrap()
                .len()
        };
        assert_eq!(stored("rate/"), RATE_CLEANUP_BATCH * 2);
        let later = t0 + Duration::minutes(5);
        for _ in 0..2 {
            let c = limit.counter("auth-failures/198.51.100.1", later);
            store.count_event(&c, later).await.unwrap();
        }
        assert_eq!(stored("rate/"), 1, "only the live counter is left");
        assert_eq!(stored("rateend/"), 1);
    }

    /// A rule record from before holders had records of their own keeps them in a set: it
    /// reads with those holders, the next write moves them out, and removals work either way.
    #[tokio::test]
    async fn a_rule_record_with_a_holder_set_is_read_and_migrated() {
        use crate::domain::ids::{CredentialId, SessionId};
        use crate::domain::model::Provider;
        use crate::domain::net::PortRange;
        use crate::domain::rule::IngressRule;

        let kv = Kv::in_memory();
        let store = EmbeddedStore::new(kv.clone());
        let key = RuleKey {
            region: "eu-west-1".parse().unwrap(),
            security_group_id: "sg-0123456789abcdef0".parse().unwrap(),
            rule: IngressRule {
                ports: PortRange::tcp(22),
                cidr: "203.0.113.7/32".parse().unwrap(),
            },
        };
        let group = GroupRef {
            credential_id: CredentialId::from_uuid(Uuid::from_u128(1)),
            provider: Provider::Aws,
            region: key.region.clone(),
            security_group_id: key.security_group_id.clone(),
        };
        let holder = |n: u128| HolderId::new(SessionId::from_uuid(Uuid::from_u128(n)), 0);
        let mut old = serde_json::to_value(RuleState::new(key.clone(), group.clone())).unwrap();
        let obj = old.as_object_mut().unwrap();
        obj.remove("holderCount");
        obj.insert("holders".into(), serde_json::json!([holder(1), holder(2)]));
        obj.insert("cloud".into(), serde_json::json!("PRESENT"));
        kv.write(|t| kv::put(t, &rule_key(&key), &old)).unwrap();

        let read = store.get_rule(&key).await.unwrap().unwrap();
        assert_eq!((read.count(), read.cloud), (2, CloudState::Present));
        assert_eq!(
            store.rule_holders(&key, None, 10).await.unwrap(),
            vec![holder(1), holder(2)]
        );
        assert_eq!(
            store
                .rule_holders(&key, Some(&holder(1)), 10)
                .await
                .unwrap(),
            vec![holder(2)]
        );
        // An add moves the set out: three holder records, the count on the rule, no set.
        let added = store
            .rule_add_holder(&key, &group, &holder(3))
            .await
            .unwrap();
        assert_eq!(added.count(), 3);
        let raw: serde_json::Value = kv.get(&rule_key(&key)).unwrap().unwrap();
        assert!(raw.get("holders").is_none(), "{raw}");
        assert_eq!(raw["holderCount"], 3);
        // Adding a holder from the set again changes nothing.
        assert_eq!(
            store
                .rule_add_holder(&key, &group, &holder(1))
                .await
                .unwrap()
                .count(),
            3
        );
        for (n, left) in [(1, 2), (2, 1), (3, 0)] {
            let state = store
                .rule_remove_holder(&key, &holder(n))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(state.count(), left);
        }
        assert!(store.rule_holders(&key, None, 10).await.unwrap().is_empty());
        let unheld = store.unheld_rules().await.unwrap();
        assert_eq!(unheld.len(), 1, "unheld and still in the cloud");
    }
}
