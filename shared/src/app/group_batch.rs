//! The group batch: every pending change of one security group made together, under the
//! group's lease — one authorize for every rule missing, one revoke for every rule nobody holds
//! any more — and recorded in one commit (holders, rule records, each touched session once,
//! the audit events, the work items done).
//!
//! A storm's messages for one group coalesce: the worker that holds the lease serves the whole
//! backlog, the others come back shortly and find their entry done. Crash safety: rules about to
//! be created are first recorded as `Unknown`, and a lease that ran out without being given back
//! (a crash between the cloud call and the commit) makes the next holder trust no record of the
//! rules it touches; their cloud calls are idempotent (a duplicate or a missing rule costs one
//! listing).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::batching::cloud_description;
use crate::domain::audit::AuditType;
use crate::domain::ids::SessionId;
use crate::domain::rule::{CloudRuleId, CloudState, GroupRef, HolderId, RuleKey, RuleState};
use crate::domain::session::{EntryStatus, EntryWork, Session, TransitionError};
use crate::domain::Timestamp;
use crate::ports::firewall::{
    Authorization, BatchOutcome, FirewallError, GroupBatch, Revocation, RuleOutcome,
};
use crate::ports::store::{
    CommitError, GroupCommit, GroupGrant, RuleWrite, SessionWrite, StoreError, WorkItem,
};

use super::audit::{Audit, Notice};
use super::rules::{CALL_BUDGET_SECS, LEASE_SECS};
use super::worker::{describe_ports, BUSY_DELAY, RETRY_DELAYS};
use super::App;

/// Entries one batch serves at most: its commit stays a few store transactions, its cloud
/// calls a few hundred address ranges.
pub const MAX_BATCH_ENTRIES: usize = 40;

/// Batches one lease runs at most (what arrived meanwhile, a conflict re-read, the rules a
/// failed entry left unheld) before the message gives the group back.
const MAX_ROUNDS: usize = 4;

/// What the lease holder knows of rules it changed in the cloud: newer than their records until
/// its commit is written.
type Known = BTreeMap<RuleKey, (CloudState, Option<CloudRuleId>)>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Job {
    Apply,
    Remove,
    /// An ended entry that still holds rules (a crash, a lost race): give them back.
    Release,
}

struct Planned {
    item: WorkItem,
    job: Job,
    holder: HolderId,
    rules: Vec<RuleKey>,
    /// Whether the entry holds each of `rules` now.
    held: Vec<bool>,
}

struct RulePlan {
    /// The holder count read (`None`: no record).
    expected: Option<u64>,
    /// What the record says of the cloud.
    recorded: CloudState,
    /// What this batch believes of the cloud: the record's word, unless this lease changed the
    /// rule since or an earlier lease ran out mid-change.
    known: CloudState,
    rule_id: Option<CloudRuleId>,
}

#[derive(Default)]
struct Plan {
    sessions: BTreeMap<SessionId, Session>,
    emails: BTreeMap<SessionId, String>,
    entries: Vec<Planned>,
    rules: BTreeMap<RuleKey, RulePlan>,
    /// Work items with nothing left to do (their entry is settled, or gone).
    stale: Vec<WorkItem>,
    batch: GroupBatch,
}

impl Plan {
    fn is_idle(&self) -> bool {
        self.entries.is_empty() && self.stale.is_empty() && self.batch == GroupBatch::default()
    }
}

/// What one entry of a batch came to.
enum Settled {
    Done,
    Retrying,
}

/// How the lease was given up.
pub(super) enum GroupRun {
    /// Every batch committed; the caller looks at its entry again.
    Finished,
    /// Come back later (the lease passed on, the cloud budget is spent).
    Retry(Duration),
}

impl App {
    /// Serves `group`'s backlog under the lease `owner` took until `until`. A store failure
    /// gives the lease back unless a cloud call's outcome is still unrecorded (then it runs out,
    /// and the next holder trusts no record it touches).
    pub(super) async fn run_group(
        &self,
        group: &GroupRef,
        owner: &str,
        until: Timestamp,
        stale: bool,
    ) -> Result<GroupRun, StoreError> {
        let mut dirty = false;
        let result = self
            .serve_group(group, owner, until, stale, &mut dirty)
            .await;
        if result.is_err() && !dirty {
            if let Err(error) = self.store.group_release(group, owner).await {
                tracing::warn!(%error, group = %group.security_group_id, "could not give a group's lease back; it runs out");
            }
        }
        result
    }

    async fn serve_group(
        &self,
        group: &GroupRef,
        owner: &str,
        mut until: Timestamp,
        stale: bool,
        dirty: &mut bool,
    ) -> Result<GroupRun, StoreError> {
        let mut known = Known::new();
        let mut leased = true;
        for _ in 0..MAX_ROUNDS {
            if !leased {
                // Given back by the last commit, and more work arrived meanwhile.
                let now = self.now();
                let next = now + chrono::Duration::seconds(LEASE_SECS);
                match self.store.group_lease(group, owner, now, next).await? {
                    GroupGrant::Busy => return Ok(GroupRun::Finished),
                    GroupGrant::Granted { .. } => until = next,
                }
                leased = true;
            }
            let mut plan = self.plan_batch(group, &known, stale).await?;
            if plan.is_idle() {
                self.store.group_release(group, owner).await?;
                return Ok(GroupRun::Finished);
            }
            let mut outcome = BatchOutcome::default();
            if plan.batch != GroupBatch::default() {
                if self.now() + chrono::Duration::seconds(CALL_BUDGET_SECS) > until {
                    tracing::warn!(group = %group.security_group_id, "a worker was paused while holding a group's lease; leaving the batch to the next");
                    if !*dirty {
                        self.store.group_release(group, owner).await?;
                    }
                    return Ok(GroupRun::Retry(BUSY_DELAY));
                }
                if let Err(wait) = self.spend_cloud_budget(group).await? {
                    if !*dirty {
                        self.store.group_release(group, owner).await?;
                    }
                    return Ok(GroupRun::Retry(wait));
                }
                match self.record_intent(group, owner, &mut plan).await {
                    Ok(()) => {}
                    Err(CommitError::Conflict) => continue,
                    Err(CommitError::LeaseLost) => return Ok(GroupRun::Retry(BUSY_DELAY)),
                    Err(CommitError::Store(e)) => return Err(e),
                }
                *dirty = true;
                outcome = self.firewall.apply_batch(group, &plan.batch).await;
                learn(&mut known, group, &outcome);
            }
            let (mut commit, effects) = self.settle(group, owner, &plan, &outcome, &known)?;
            let again = followups(&commit, &known);
            commit.release = again.is_empty();
            match self.store.commit_batch(&commit).await {
                Ok(()) => {
                    effects.apply(self).await;
                    // The records now say what the cloud has; only rules left unheld in the
                    // cloud are carried to the next round, to be revoked.
                    known.retain(|k, _| again.contains(k));
                    *dirty = false;
                    leased = !commit.release;
                }
                Err(CommitError::Conflict) => {
                    tracing::info!(group = %group.security_group_id, "a session or rule changed under the batch; computing it again");
                }
                Err(CommitError::LeaseLost) => return Ok(GroupRun::Retry(BUSY_DELAY)),
                Err(CommitError::Store(e)) => return Err(e),
            }
            if !leased && self.store.group_work(group, 1).await?.is_empty() {
                return Ok(GroupRun::Finished);
            }
        }
        if leased && !*dirty {
            self.store.group_release(group, owner).await?;
        }
        // With a call not recorded, the lease runs out instead: the next holder trusts no
        // record it touches.
        Ok(GroupRun::Finished)
    }

    /// Reads the group's backlog, the sessions and rules it names, and computes the batch.
    async fn plan_batch(
        &self,
        group: &GroupRef,
        known: &Known,
        stale: bool,
    ) -> Result<Plan, StoreError> {
        let now = self.now();
        let mut plan = Plan::default();
        let items = self.store.group_work(group, MAX_BATCH_ENTRIES).await?;
        let mut missing = BTreeSet::new();
        for item in &items {
            if plan.sessions.contains_key(&item.session_id) || missing.contains(&item.session_id) {
                continue;
            }
            match self.store.get_session(item.session_id).await? {
                Some(s) => {
                    let email = match self.store.get_user(s.user_id).await? {
                        Some(u) => u.email.to_string(),
                        None => s.user_id.to_string(),
                    };
                    plan.emails.insert(s.id, email);
                    plan.sessions.insert(s.id, s);
                }
                None => {
                    missing.insert(item.session_id);
                }
            }
        }
        for item in items {
            let Some(session) = plan.sessions.get(&item.session_id) else {
                plan.stale.push(item);
                continue;
            };
            let Ok(entry) = session.entry(item.entry) else {
                plan.stale.push(item);
                continue;
            };
            if entry.group.region != group.region
                || entry.group.security_group_id != group.security_group_id
            {
                plan.stale.push(item);
                continue;
            }
            if entry.retry_at.is_some_and(|at| at > now) {
                // Waiting for its retry: the schedule is the entry's.
                continue;
            }
            let job = match session.work_for(item.entry).map_err(store_bug)? {
                EntryWork::Apply => Job::Apply,
                EntryWork::Remove => Job::Remove,
                EntryWork::Nothing if entry.status.is_terminal() => Job::Release,
                EntryWork::Nothing => {
                    plan.stale.push(item);
                    continue;
                }
            };
            let holder = session.holder(item.entry);
            let rules = entry.rules();
            let mut held = Vec::with_capacity(rules.len());
            for key in &rules {
                held.push(self.store.is_holder(key, &holder).await?);
            }
            if job == Job::Release && !held.iter().any(|h| *h) {
                plan.stale.push(item);
                continue;
            }
            plan.entries.push(Planned {
                item,
                job,
                holder,
                rules,
                held,
            });
        }
        let touched: BTreeSet<RuleKey> = plan
            .entries
            .iter()
            .flat_map(|e| e.rules.iter().cloned())
            .chain(known.keys().cloned())
            .collect();
        for key in touched {
            let state = self.store.get_rule(&key).await?;
            let (known_state, rule_id) = match known.get(&key) {
                Some((cloud, id)) => (*cloud, id.clone()),
                None => match &state {
                    Some(s) if stale => (CloudState::Unknown, s.cloud_rule_id.clone()),
                    Some(s) => (s.cloud, s.cloud_rule_id.clone()),
                    None => (CloudState::Absent, None),
                },
            };
            plan.rules.insert(
                key,
                RulePlan {
                    expected: state.as_ref().map(|s: &RuleState| s.holder_count),
                    recorded: state.as_ref().map_or(CloudState::Absent, |s| s.cloud),
                    known: known_state,
                    rule_id,
                },
            );
        }
        for (key, rule) in &plan.rules {
            let count = final_count(&plan, key, rule);
            if count > 0 && rule.known != CloudState::Present {
                let description = plan
                    .entries
                    .iter()
                    .find(|e| e.job == Job::Apply && e.rules.contains(key))
                    .map(|e| {
                        let s = &plan.sessions[&e.item.session_id];
                        cloud_description(&format!(
                            "EntryGuard {} until {}",
                            plan.emails[&s.id],
                            s.expires_at.format("%Y-%m-%dT%H:%MZ")
                        ))
                    })
                    .unwrap_or_else(|| crate::ports::firewall::RULE_DESCRIPTION.to_owned());
                plan.batch.authorize.push(Authorization {
                    rule: key.rule,
                    description,
                });
            } else if count == 0 && rule.known != CloudState::Absent {
                plan.batch.revoke.push(Revocation {
                    rule: key.rule,
                    rule_id: rule.rule_id.clone(),
                });
            }
        }
        Ok(plan)
    }

    /// Before the call: the rules about to be created are recorded as `Unknown` (a crash
    /// before the commit leaves unheld records that the next batch or the sweeper clears up),
    /// and the entries picked up go from PENDING to APPLYING (so a stop meanwhile knows they
    /// may have rules in the cloud, and the user sees them being applied).
    async fn record_intent(
        &self,
        group: &GroupRef,
        owner: &str,
        plan: &mut Plan,
    ) -> Result<(), CommitError> {
        let creating: Vec<RuleKey> = plan
            .batch
            .authorize
            .iter()
            .map(|a| rule_key(group, a.rule))
            .filter(|k| plan.rules[k].known == CloudState::Absent)
            .collect();
        let mut picked: BTreeMap<SessionId, Session> = BTreeMap::new();
        for e in &plan.entries {
            let session = &plan.sessions[&e.item.session_id];
            let pending = session
                .entry(e.item.entry)
                .is_ok_and(|x| x.status == EntryStatus::Pending);
            if e.job == Job::Apply && pending {
                let next = picked.entry(session.id).or_insert_with(|| session.clone());
                next.entry_applying(e.item.entry, self.now())
                    .map_err(|e| CommitError::Store(store_bug(e)))?;
            }
        }
        if creating.is_empty() && picked.is_empty() {
            return Ok(());
        }
        let rules = creating
            .iter()
            .map(|k| RuleWrite {
                key: k.clone(),
                expected_count: plan.rules[k].expected,
                add: vec![],
                remove: vec![],
                cloud: CloudState::Unknown,
                rule_id: None,
            })
            .collect();
        let sessions: Vec<SessionWrite> = picked
            .into_values()
            .map(|mut next| {
                let before = &plan.sessions[&next.id];
                next.version = before.version + 1;
                SessionWrite {
                    expected_version: before.version,
                    release_slot: before.status().holds_slot() && !next.status().holds_slot(),
                    session: next,
                }
            })
            .collect();
        self.store
            .commit_batch(&GroupCommit {
                group: group.clone(),
                owner: owner.to_owned(),
                release: false,
                rules,
                sessions: sessions.clone(),
                audit: vec![],
                done: vec![],
            })
            .await?;
        for k in creating {
            let rule = plan.rules.get_mut(&k).expect("planned rule");
            rule.expected = Some(rule.expected.unwrap_or(0));
            rule.recorded = CloudState::Unknown;
        }
        for w in sessions {
            plan.sessions.insert(w.session.id, w.session);
        }
        Ok(())
    }

    /// The batch's outcome as one commit: each entry applied, removed, retrying or failed.
    fn settle(
        &self,
        group: &GroupRef,
        owner: &str,
        plan: &Plan,
        outcome: &BatchOutcome,
        known: &Known,
    ) -> Result<(GroupCommit, Effects), StoreError> {
        let now = self.now();
        let results: BTreeMap<RuleKey, &RuleOutcome> = outcome
            .authorized
            .iter()
            .chain(&outcome.revoked)
            .map(|(rule, o)| (rule_key(group, *rule), o))
            .collect();
        let mut adds: BTreeMap<RuleKey, Vec<HolderId>> = BTreeMap::new();
        let mut removes: BTreeMap<RuleKey, Vec<HolderId>> = BTreeMap::new();
        let mut sessions = plan.sessions.clone();
        let mut audits = Vec::new();
        let mut done = plan.stale.clone();
        for e in &plan.entries {
            let session = sessions
                .get_mut(&e.item.session_id)
                .expect("planned session");
            let index = e.item.entry;
            let entry = session.entry(index).map_err(store_bug)?.clone();
            let failure = e.rules.iter().find_map(|k| match results.get(k) {
                Some(RuleOutcome::Failed(FirewallError::GroupNotFound(_)))
                    if e.job != Job::Apply =>
                {
                    None
                }
                Some(RuleOutcome::Failed(err)) => Some(err.clone()),
                _ => None,
            });
            let group_gone = e.rules.iter().any(|k| {
                matches!(
                    results.get(k),
                    Some(RuleOutcome::Failed(FirewallError::GroupNotFound(_)))
                )
            });
            // Holders: an applied entry holds all its rules; anything else holds none.
            let holds = e.job == Job::Apply && failure.is_none();
            for (k, held) in e.rules.iter().zip(&e.held) {
                if holds && !held {
                    adds.entry(k.clone()).or_default().push(e.holder.clone());
                } else if !holds && *held {
                    removes.entry(k.clone()).or_default().push(e.holder.clone());
                }
            }
            if e.job == Job::Release {
                done.push(e.item);
                continue;
            }
            let what = match e.job {
                Job::Apply => "apply",
                _ => "remove",
            };
            let settled = match failure {
                None => {
                    if e.job == Job::Apply {
                        if entry.status == EntryStatus::Pending {
                            session.entry_applying(index, now).map_err(store_bug)?;
                        }
                        session.entry_applied(index, now).map_err(store_bug)?;
                        audits.push(
                            Audit::system(
                                session.org_id,
                                AuditType::RuleApplied,
                                format!(
                                    "Opened {} on {} for {}",
                                    describe_ports(&entry.ports),
                                    entry.group.security_group_id,
                                    entry.ip
                                ),
                            )
                            .session(session.id)
                            .resource(entry.resource_id),
                        );
                    } else {
                        if entry.status != EntryStatus::Removing {
                            session.entry_applied(index, now).map_err(store_bug)?;
                        }
                        session.entry_removed(index, now).map_err(store_bug)?;
                        let note = if group_gone {
                            " (the security group no longer exists)"
                        } else {
                            ""
                        };
                        audits.push(
                            Audit::system(
                                session.org_id,
                                AuditType::RuleRemoved,
                                format!(
                                    "Closed {} on {} for {}{note}",
                                    describe_ports(&entry.ports),
                                    entry.group.security_group_id,
                                    entry.ip
                                ),
                            )
                            .session(session.id)
                            .resource(entry.resource_id),
                        );
                    }
                    Settled::Done
                }
                Some(failure) => {
                    if entry.status == EntryStatus::Pending {
                        session.entry_applying(index, now).map_err(store_bug)?;
                    }
                    if e.job == Job::Remove
                        && session.entry(index).map_err(store_bug)?.status != EntryStatus::Removing
                    {
                        session.entry_applied(index, now).map_err(store_bug)?;
                    }
                    let message = failure.to_string();
                    let attempts = entry.attempts as usize;
                    if failure.is_transient() && attempts < RETRY_DELAYS.len() {
                        let delay = self.jittered(RETRY_DELAYS[attempts]);
                        let at = now
                            + chrono::Duration::from_std(delay)
                                .unwrap_or(chrono::Duration::seconds(30));
                        tracing::info!(session_id = %session.id, entry = index, phase = what, error = %message, retry_in_secs = delay.as_secs(), "transient firewall failure");
                        session
                            .entry_retrying(index, format!("{message} (retrying)"), at, now)
                            .map_err(store_bug)?;
                        Settled::Retrying
                    } else {
                        let head = if e.job == Job::Apply {
                            "Rule application failed"
                        } else {
                            "Rule removal failed"
                        };
                        let error = format!("{head}: {message}");
                        tracing::warn!(session_id = %session.id, entry = index, phase = what, error = %message, "entry failed");
                        session
                            .entry_failed(index, error.clone(), now)
                            .map_err(store_bug)?;
                        audits.push(
                            Audit::system(session.org_id, AuditType::RuleFailed, error)
                                .session(session.id)
                                .resource(entry.resource_id)
                                .failed(),
                        );
                        Settled::Done
                    }
                }
            };
            if let Settled::Done = settled {
                done.push(e.item);
            }
        }
        let mut rules = Vec::new();
        for (key, rule) in &plan.rules {
            let add = adds.remove(key).unwrap_or_default();
            let remove = removes.remove(key).unwrap_or_default();
            let learned = known.get(key);
            if add.is_empty() && remove.is_empty() && learned.is_none() {
                continue;
            }
            let (cloud, rule_id) = match learned {
                Some((cloud, id)) => (*cloud, id.clone()),
                None => (rule.recorded, None),
            };
            rules.push(RuleWrite {
                key: key.clone(),
                expected_count: rule.expected,
                add,
                remove,
                cloud,
                rule_id,
            });
        }
        let mut writes = Vec::new();
        let mut changed = Vec::new();
        for (id, after) in sessions {
            let before = &plan.sessions[&id];
            if after == *before {
                continue;
            }
            let mut after = after;
            after.version = before.version + 1;
            writes.push(SessionWrite {
                release_slot: before.status().holds_slot() && !after.status().holds_slot(),
                session: after.clone(),
                expected_version: before.version,
            });
            changed.push((before.clone(), after));
        }
        let mut events = Vec::new();
        let mut notices = Vec::new();
        for a in audits {
            let (event, notice) = self.audit_event(a);
            events.push(event);
            notices.push(notice);
        }
        Ok((
            GroupCommit {
                group: group.clone(),
                owner: owner.to_owned(),
                release: true,
                rules,
                sessions: writes,
                audit: events,
                done,
            },
            Effects { changed, notices },
        ))
    }
}

/// What follows a written commit: metrics and notifications of the sessions it changed.
struct Effects {
    changed: Vec<(Session, Session)>,
    notices: Vec<Option<Notice>>,
}

impl Effects {
    async fn apply(self, app: &App) {
        for (before, after) in &self.changed {
            app.record_transition(before, after);
            app.notify_status_change(before.status(), after).await;
        }
        for notice in self.notices {
            app.send_notice(notice).await;
        }
    }
}

/// The holder count `key` will have once the plan's entries are settled, if every entry to
/// apply succeeds.
fn final_count(plan: &Plan, key: &RuleKey, rule: &RulePlan) -> u64 {
    let mut count = rule.expected.unwrap_or(0);
    for e in &plan.entries {
        for (k, held) in e.rules.iter().zip(&e.held) {
            if k != key {
                continue;
            }
            match (e.job, held) {
                (Job::Apply, false) => count += 1,
                (Job::Remove | Job::Release, true) => count = count.saturating_sub(1),
                _ => {}
            }
        }
    }
    count
}

/// Whether the committed batch leaves a rule this lease created without a holder (an entry
/// failed after its rule was created): then another round revokes it under the same lease.
fn followups(commit: &GroupCommit, known: &Known) -> BTreeSet<RuleKey> {
    commit
        .rules
        .iter()
        .filter(|w| {
            let count = (w.expected_count.unwrap_or(0) + w.add.len() as u64)
                .saturating_sub(w.remove.len() as u64);
            count == 0 && w.cloud != CloudState::Absent && known.contains_key(&w.key)
        })
        .map(|w| w.key.clone())
        .collect()
}

/// What the cloud's answers say of each rule of the batch.
fn learn(known: &mut Known, group: &GroupRef, outcome: &BatchOutcome) {
    for (rule, o) in outcome.authorized.iter().chain(&outcome.revoked) {
        let key = rule_key(group, *rule);
        match o {
            RuleOutcome::Present(id) => {
                known.insert(key, (CloudState::Present, id.clone()));
            }
            RuleOutcome::Absent | RuleOutcome::Failed(FirewallError::GroupNotFound(_)) => {
                known.insert(key, (CloudState::Absent, None));
            }
            // A timed-out call may have taken effect.
            RuleOutcome::Failed(e) if e.is_transient() => {
                known.insert(key, (CloudState::Unknown, None));
            }
            // A clean refusal leaves the rule as it was.
            RuleOutcome::Failed(_) => {}
        }
    }
}

fn rule_key(group: &GroupRef, rule: crate::domain::rule::IngressRule) -> RuleKey {
    RuleKey {
        region: group.region.clone(),
        security_group_id: group.security_group_id.clone(),
        rule,
    }
}

fn store_bug(e: TransitionError) -> StoreError {
    StoreError::Corrupt(e.to_string())
}
