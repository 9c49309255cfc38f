//! The expiry sweeper: every minute, the sessions the due index names — expired ones go to
//! EXPIRING with their removals queued; ones whose work has stalled (a lost message, a crash)
//! get their work sent again. Sessions due before the next run are sent as queue messages
//! delayed to their exact second, so expiry does not wait for the next sweep. It also revokes
//! rules whose last revoke failed, tells admins about tasks in the dead-letter queue, and every
//! few minutes runs drift reconciliation.
//!
//! A sweep has no ceiling: it pages through the due index with bounded concurrency until it
//! is done or its time is up (the rest waits for the next run). A record it cannot read is
//! logged, skipped and reported, never fatal to the sweep.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::Duration;
use futures::StreamExt;

use crate::domain::audit::AuditType;
use crate::domain::ids::{OrgId, ResourceId, SessionId};
use crate::domain::model::{Credential, Resource};
use crate::domain::net::{Region, SecurityGroupId};
use crate::domain::rule::CloudState;
use crate::domain::rule::{GroupRef, RuleState};
use crate::domain::session::Session;
use crate::domain::Timestamp;
use crate::ports::queue::{Task, MAX_DELAY, MAX_RECEIVE_COUNT};
use crate::ports::store::{BadRecord, DueEntry, StoreError};

use super::rules::{Released, RuleError, HOLDER_PAGE};

use super::audit::Audit;
use super::reconcile::ReconcileReport;
use super::{App, MutateError};

/// Due-index entries read per page.
pub const SWEEP_PAGE: usize = 200;
/// Due sessions handled at once: enough to hide store latency, few enough to stay polite to
/// the store and the queue.
pub const SWEEP_CONCURRENCY: usize = 16;
/// How many dead letters one sweep looks at.
pub const DEAD_LETTER_PEEK: usize = 100;
/// A dead letter is reported once while it is kept (SQS keeps them fourteen days).
pub const DEAD_LETTER_NOTICE_SECS: i64 = 14 * 24 * 3600;
/// A record that cannot be read is reported to its organization once a day while it stays bad.
pub const BAD_RECORD_NOTICE_SECS: i64 = 24 * 3600;
/// The schedule's period in AWS (EventBridge `rate(1 minute)`) and the local runner's default.
pub const SWEEP_INTERVAL_SECS: i64 = 60;
/// The look-ahead overlaps the next run by this much, so a run that starts a little late
/// leaves no gap (a session sent twice is checked twice, harmlessly).
pub const LOOKAHEAD_OVERLAP_SECS: i64 = 10;

/// How long one sweep may work and how far it looks ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepOptions {
    /// No new session is started after this much time; the rest waits for the next run.
    pub budget: Duration,
    /// Sessions due within this much from now are sent as delayed check messages.
    pub lookahead: Duration,
}

impl SweepOptions {
    /// For a sweep that runs every `interval`: it looks ahead to just past the next run and
    /// works for at most most of an interval, so runs do not pile up.
    pub fn every(interval: Duration) -> Self {
        Self {
            budget: interval - interval / 6,
            lookahead: interval + Duration::seconds(LOOKAHEAD_OVERLAP_SECS),
        }
    }
}

impl Default for SweepOptions {
    fn default() -> Self {
        Self::every(Duration::seconds(SWEEP_INTERVAL_SECS))
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    pub due: usize,
    pub expired: usize,
    pub redriven: usize,
    /// Sessions due before the next run, sent as delayed check messages.
    pub scheduled: usize,
    /// Records that could not be read or written, skipped (and reported).
    pub skipped: usize,
    /// The time ran out with due sessions left for the next run.
    pub unfinished: bool,
    /// Rules nobody holds any more that were revoked on this pass.
    pub orphans_revoked: usize,
    /// Dead letters seen for the first time (and reported to their organizations).
    pub new_dead_letters: usize,
    /// The reconciliation pass, when this sweep ran it.
    pub reconciled: Option<ReconcileReport>,
}

/// What checking one session did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    Expired,
    Redriven,
    /// Not due (extended, changed or ended meanwhile), or gone.
    Nothing,
}

enum Action {
    Expired(Vec<u32>),
    Redriven(Vec<u32>),
}

/// One due session's fate in a sweep.
enum Swept {
    Done(Checked),
    Skipped,
    Deferred,
}

impl App {
    /// One sweep with the default options (a one-minute schedule).
    pub async fn sweep(&self) -> Result<SweepReport, StoreError> {
        self.sweep_with(SweepOptions::default()).await
    }

    /// One sweep. Fails only when the due index cannot be read at all; everything else that
    /// goes wrong is logged, skipped and left to the next run.
    pub async fn sweep_with(&self, options: SweepOptions) -> Result<SweepReport, StoreError> {
        let started = self.now();
        let deadline = started + options.budget;
        let mut report = SweepReport::default();
        self.sweep_due(deadline, options.lookahead, &mut report)
            .await?;
        if self.now() < deadline {
            self.notify_expiring_soon(SWEEP_PAGE).await;
            if let Err(error) = self.resend_lost_deliveries().await {
                tracing::warn!(%error, "could not look for lost webhook deliveries");
            }
        }
        if self.now() < deadline {
            match self.store.unheld_rules().await {
                Ok(rules) => report.orphans_revoked = self.revoke_orphans(rules, deadline).await,
                Err(error) => tracing::warn!(%error, "could not read the unheld rules"),
            }
        }
        match self.notice_dead_letters().await {
            Ok(n) => report.new_dead_letters = n,
            Err(error) => tracing::warn!(%error, "could not report the dead letters"),
        }
        if self.now() < deadline {
            match self.reconcile_if_due().await {
                Ok(r) => report.reconciled = r,
                Err(error) => tracing::warn!(%error, "the reconciliation pass failed"),
            }
        }
        if report.due > 0
            || report.orphans_revoked > 0
            || report.new_dead_letters > 0
            || report.skipped > 0
        {
            tracing::info!(
                due = report.due,
                expired = report.expired,
                redriven = report.redriven,
                scheduled = report.scheduled,
                skipped = report.skipped,
                unfinished = report.unfinished,
                orphans_revoked = report.orphans_revoked,
                new_dead_letters = report.new_dead_letters,
                "sweep finished"
            );
        }
        self.metrics.record(crate::ports::Metric::Sweep {
            took: (self.now() - started).to_std().unwrap_or_default(),
        });
        if report.new_dead_letters > 0 {
            self.metrics.record(crate::ports::Metric::DeadLetters(
                report.new_dead_letters as u64,
            ));
        }
        Ok(report)
    }

    /// Pages through the due index up to `now + lookahead`: what is due now is handled, what
    /// falls due before the next run is sent as a delayed check message.
    async fn sweep_due(
        &self,
        deadline: Timestamp,
        lookahead: Duration,
        report: &mut SweepReport,
    ) -> Result<(), StoreError> {
        let now = self.now();
        let horizon = now + lookahead.max(Duration::zero());
        let mut after: Option<DueEntry> = None;
        let mut first = true;
        loop {
            if self.now() >= deadline {
                report.unfinished = true;
                return Ok(());
            }
            let page = match self.store.due_page(horizon, after, SWEEP_PAGE).await {
                Ok(page) => page,
                // Nothing at all could be read: the run failed, and says so.
                Err(e) if first => return Err(e),
                Err(error) => {
                    tracing::warn!(%error, "could not read the rest of the due index");
                    report.unfinished = true;
                    return Ok(());
                }
            };
            first = false;
            let Some(last) = page.last().copied() else {
                return Ok(());
            };
            after = Some(last);
            let full = page.len() == SWEEP_PAGE;
            let (due, later): (Vec<DueEntry>, Vec<DueEntry>) =
                page.into_iter().partition(|e| e.at <= now);
            self.schedule_checks(&later, now, report).await;
            report.due += due.len();
            let results: Vec<Swept> = futures::stream::iter(due)
                .map(|e| self.sweep_one(e.session_id, deadline))
                .buffer_unordered(SWEEP_CONCURRENCY)
                .collect()
                .await;
            for r in results {
                match r {
                    Swept::Done(Checked::Expired) => report.expired += 1,
                    Swept::Done(Checked::Redriven) => report.redriven += 1,
                    Swept::Done(Checked::Nothing) => {}
                    Swept::Skipped => report.skipped += 1,
                    Swept::Deferred => report.unfinished = true,
                }
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// Sends each session due before the next run a check message delayed to its due second.
    async fn schedule_checks(&self, later: &[DueEntry], now: Timestamp, report: &mut SweepReport) {
        let tasks: Vec<(Task, std::time::Duration)> = later
            .iter()
            .filter_map(|e| {
                let delay = (e.at - now).to_std().ok()?;
                (delay <= MAX_DELAY).then_some((
                    Task::CheckSession {
                        session_id: e.session_id,
                        at: e.at,
                    },
                    delay,
                ))
            })
            .collect();
        if tasks.is_empty() {
            return;
        }
        let count = tasks.len();
        match self.queue.enqueue_delayed(tasks).await {
            Ok(()) => report.scheduled += count,
            // The next sweep still finds them, up to a minute late.
            Err(error) => tracing::warn!(%error, count, "could not schedule expiry checks"),
        }
    }

    async fn sweep_one(&self, id: SessionId, deadline: Timestamp) -> Swept {
        if self.now() >= deadline {
            return Swept::Deferred;
        }
        match self.check_session(id).await {
            Ok(checked) => Swept::Done(checked),
            Err(error) => {
                self.bad_session(id, error).await;
                Swept::Skipped
            }
        }
    }

    /// Expires the session if its time has come, or resends its work if it has stalled —
    /// whatever a sweep would do for it now. Safe to repeat: a session changed meanwhile
    /// (extended, stopped, ended, already handled) is left alone.
    pub async fn check_session(&self, id: SessionId) -> Result<Checked, StoreError> {
        let result = self
            .mutate_session(id, |s, now| {
                if s.expire(now).is_ok() {
                    return Ok(Action::Expired(s.unsettled_entries()));
                }
                s.redrive(now).map(Action::Redriven)
            })
            .await;
        match result {
            Ok((session, Action::Expired(work))) => {
                self.send_work(&session, work).await;
                self.audit(
                    Audit::system(
                        session.org_id,
                        AuditType::SessionExpired,
                        "The session reached its expiry time",
                    )
                    .session(session.id),
                )
                .await;
                Ok(Checked::Expired)
            }
            Ok((session, Action::Redriven(work))) => {
                tracing::warn!(session_id = %session.id, entries = work.len(), "stalled session; resending its work");
                self.send_work(&session, work).await;
                Ok(Checked::Redriven)
            }
            // Another sweeper or a user got there first, or it ended meanwhile.
            Err(MutateError::Rejected(_)) | Err(MutateError::Missing) => Ok(Checked::Nothing),
            Err(MutateError::Store(e)) => Err(e),
        }
    }

    /// A due session that could not be handled: logged and left for the next run; an
    /// unreadable or unwritable record is also reported to its organization, once a day.
    async fn bad_session(&self, id: SessionId, error: StoreError) {
        match error {
            StoreError::Unavailable(error) => {
                tracing::warn!(session_id = %id, %error, "could not check a due session; the next sweep will");
            }
            StoreError::Corrupt(error) => {
                // A session too big to write back still reads, and so names its organization.
                let org = match self.store.get_session(id).await {
                    Ok(Some(s)) => Some(s.org_id),
                    _ => None,
                };
                let what = format!("session {id}");
                self.report_bad_record(&format!("session/{id}"), org, &what, &error)
                    .await;
            }
        }
    }

    /// Logs a record that cannot be read or written, and tells its organization (when the
    /// record says which) once a day, through the claim so concurrent sweepers tell it once.
    async fn report_bad_record(&self, key: &str, org: Option<OrgId>, what: &str, error: &str) {
        tracing::error!(record = key, %error, "skipped a stored record that cannot be handled");
        let claimed = self
            .store
            .claim_run(
                &format!("bad-record/{key}"),
                self.now(),
                Duration::seconds(BAD_RECORD_NOTICE_SECS),
            )
            .await
            .unwrap_or(false);
        let Some(org) = org.filter(|_| claimed) else {
            return;
        };
        self.audit(
            Audit::system(
                org,
                AuditType::SystemAlert,
                format!(
                    "The stored record of {what} cannot be handled and is skipped until it is repaired ({error}). Other sessions are not affected."
                ),
            )
            .failed(),
        )
        .await;
    }

    /// Rules left without holders whose revoke failed (e.g. permission denied at the time): tried
    /// again every sweep until they are gone, so a failed removal never leaves a door open.
    /// Reads only unheld rules; a bad record among them is skipped and reported.
    pub(crate) async fn revoke_orphans(
        &self,
        rules: Vec<Result<RuleState, BadRecord>>,
        deadline: Timestamp,
    ) -> usize {
        let now = self.now();
        let mut revoked = 0;
        for rule in rules {
            if self.now() >= deadline {
                break;
            }
            let rule = match rule {
                Ok(rule) => rule,
                Err(bad) => {
                    let org = match &bad.rule {
                        Some(key) => self
                            .org_of_security_group(&key.region, &key.security_group_id)
                            .await
                            .ok()
                            .flatten(),
                        None => None,
                    };
                    let what = match &bad.rule {
                        Some(key) => format!("the rule {key}"),
                        None => format!("the rule record {}", bad.key),
                    };
                    self.report_bad_record(&bad.key, org, &what, &bad.error)
                        .await;
                    continue;
                }
            };
            let unheld = rule.count() == 0 && rule.cloud != CloudState::Absent;
            // A worker that died holding the lease of a rule it had just removed leaves a record
            // nothing else clears. Its run-out lease makes the cloud state unknown (the worker
            // may have died mid-change), so it is revoked like any orphan (a no-op if it is
            // gone) and the record forgotten.
            let leftover =
                rule.count() == 0 && rule.cloud == CloudState::Absent && rule.lease.is_some();
            let free = rule.lease.as_ref().is_none_or(|l| l.until <= now);
            if !((unheld || leftover) && free) {
                continue;
            }
            match self.revoke_orphan(&rule).await {
                Ok(true) => revoked += 1,
                Ok(false) => {}
                Err(RuleError::Store(error)) => {
                    // Forgotten since it was listed (another worker finished it): nothing to do.
                    if matches!(self.store.get_rule(&rule.key).await, Ok(None)) {
                        continue;
                    }
                    match error {
                        StoreError::Corrupt(e) => {
                            let org = self.org_of_group(&rule.group).await.ok().flatten();
                            self.report_bad_record(
                                &format!("rule/{}", rule.key.storage_key()),
                                org.map(|(o, _)| o),
                                &format!("the rule {}", rule.key),
                                &e,
                            )
                            .await;
                        }
                        StoreError::Unavailable(error) => {
                            tracing::warn!(rule = %rule.key, %error, "store failed while revoking an unheld rule; will retry");
                        }
                    }
                }
                Err(RuleError::Busy | RuleError::OverBudget(_)) => {}
                Err(RuleError::Firewall(error)) => {
                    tracing::error!(rule = %rule.key, %error, "a rule no session holds could not be revoked; will retry");
                }
            }
        }
        revoked
    }

    async fn revoke_orphan(&self, rule: &RuleState) -> Result<bool, RuleError> {
        let note = self.org_of_group(&rule.group).await?.map(|(org, resource)| {
            let audit = Audit::system(
                org,
                AuditType::RuleRemoved,
                format!(
                    "Removed {} on {} for {}: no live session needs it, and an earlier removal had failed",
                    rule.key.rule.ports, rule.key.security_group_id, rule.key.rule.cidr
                ),
            );
            match resource {
                Some(r) => audit.resource(r),
                None => audit,
            }
        });
        match self.revoke_unheld(&rule.key, note, false).await? {
            Released::Revoked | Released::GroupGone => {
                tracing::warn!(rule = %rule.key, "revoked a rule no session holds any more");
                Ok(true)
            }
            Released::Kept => Ok(false),
        }
    }

    /// The first organization with a resource on the group (for reports about a rule record
    /// whose group reference cannot be read).
    async fn org_of_security_group(
        &self,
        region: &Region,
        group: &SecurityGroupId,
    ) -> Result<Option<OrgId>, StoreError> {
        for org in self.store.list_orgs().await? {
            let found = self
                .list_docs::<Resource>(org.id)
                .await?
                .iter()
                .any(|r| &r.security_group_id == group && &r.region == region);
            if found {
                return Ok(Some(org.id));
            }
        }
        Ok(None)
    }

    /// The organization whose credential a group is changed with, and one of its resources on
    /// the group.
    pub(crate) async fn org_of_group(
        &self,
        group: &GroupRef,
    ) -> Result<Option<(OrgId, Option<ResourceId>)>, StoreError> {
        for org in self.store.list_orgs().await? {
            let credentials = self.list_docs::<Credential>(org.id).await?;
            if !credentials.iter().any(|c| c.id == group.credential_id) {
                continue;
            }
            let resource = self
                .list_docs::<Resource>(org.id)
                .await?
                .into_iter()
                .find(|r| {
                    r.security_group_id == group.security_group_id && r.region == group.region
                })
                .map(|r| r.id);
            return Ok(Some((org.id, resource)));
        }
        Ok(None)
    }

    /// Tasks that failed too often sit in the dead-letter queue, retried by nobody (their
    /// sessions are still driven on by the stall check). Each is reported once to the
    /// organization of its session, which can redrive it once the cause is fixed; the
    /// CloudWatch alarm on the queue's depth tells the operators.
    async fn notice_dead_letters(&self) -> Result<usize, StoreError> {
        let letters = match self.queue.dead_letters(DEAD_LETTER_PEEK).await {
            Ok(letters) => letters,
            Err(error) => {
                tracing::warn!(%error, "could not look at the dead-letter queue");
                return Ok(0);
            }
        };
        if letters.is_empty() {
            return Ok(0);
        }
        tracing::error!(
            count = letters.len(),
            "tasks are waiting in the dead-letter queue"
        );
        let now = self.now();
        let mut by_org: BTreeMap<OrgId, Vec<SessionId>> = BTreeMap::new();
        let mut new = 0;
        for letter in &letters {
            let notice = format!("dead-letter/{}", letter.id);
            if !self
                .store
                .claim_run(&notice, now, Duration::seconds(DEAD_LETTER_NOTICE_SECS))
                .await?
            {
                continue;
            }
            new += 1;
            if let Some(Task::DeliverWebhook { delivery_id, .. }) = &letter.task {
                // Its delivery stays PENDING in the endpoint's log until the letter is redriven.
                tracing::error!(message_id = %letter.id, %delivery_id, "a webhook delivery is in the dead-letter queue");
                continue;
            }
            let Some(session_id) = letter.task.as_ref().and_then(Task::session_id) else {
                tracing::error!(message_id = %letter.id, body = %letter.body, "a malformed message is in the dead-letter queue");
                continue;
            };
            match self.store.get_session(session_id).await? {
                Some(s) => by_org.entry(s.org_id).or_default().push(s.id),
                None => {
                    tracing::error!(message_id = %letter.id, %session_id, "a dead letter names a session that no longer exists")
                }
            }
        }
        for (org, sessions) in by_org {
            let distinct: BTreeSet<SessionId> = sessions.iter().copied().collect();
            let list: Vec<String> = distinct.iter().map(ToString::to_string).collect();
            let mut audit = Audit::system(
                org,
                AuditType::SystemAlert,
                format!(
                    "{} task(s) failed {MAX_RECEIVE_COUNT} times and were set aside in the dead-letter queue (session(s) {}). Once the cause is fixed, redrive them with POST /api/admin/dead-letters/redrive.",
                    sessions.len(),
                    list.join(", ")
                ),
            )
            .failed();
            if distinct.len() == 1 {
                audit = audit.session(sessions[0]);
            }
            self.audit(audit).await;
        }
        Ok(new)
    }

    /// Holders whose entry has ended (removed or failed) or whose session is gone. A worker that
    /// crashed between its steps, or lost a race to a duplicate delivery, can leave one behind,
    /// and each keeps its rule open; this gives them back, revoking rules left with no holder.
    pub(crate) async fn release_stale_holders(&self) -> Result<usize, StoreError> {
        let mut sessions: HashMap<SessionId, Option<Session>> = HashMap::new();
        let mut released = 0;
        for rule in self.store.list_rules().await? {
            let mut after = None;
            loop {
                let page = self
                    .store
                    .rule_holders(&rule.key, after.as_ref(), HOLDER_PAGE)
                    .await?;
                after = page.last().cloned();
                let more = page.len() == HOLDER_PAGE;
                for holder in &page {
                    let Some((id, index)) = holder.entry() else {
                        tracing::error!(rule = %rule.key, holder = holder.as_str(), "a rule holder that names no entry");
                        continue;
                    };
                    let session = match sessions.get(&id) {
                        Some(s) => s.clone(),
                        None => {
                            let s = self.store.get_session(id).await?;
                            sessions.insert(id, s.clone());
                            s
                        }
                    };
                    let ended = session
                        .as_ref()
                        .is_none_or(|s| s.entry(index).map_or(true, |e| e.status.is_terminal()));
                    if !ended {
                        continue;
                    }
                    released += 1;
                    tracing::warn!(rule = %rule.key, holder = holder.as_str(), "giving back the rule of an entry that had ended");
                    let Some(state) = self.store.rule_remove_holder(&rule.key, holder).await?
                    else {
                        continue;
                    };
                    if state.count() > 0
                        || (state.cloud == CloudState::Absent && state.lease.is_none())
                    {
                        continue;
                    }
                    let mut note = match &session {
                    Some(s) => Some((s.org_id, s.entry(index).ok().map(|e| e.resource_id))),
                    None => self.org_of_group(&rule.group).await?,
                }
                .map(|(org, resource)| {
                    let audit = Audit::system(
                        org,
                        AuditType::RuleRemoved,
                        format!(
                            "Closed {} on {} for {}: its session entry had ended while still holding it",
                            rule.key.rule.ports, rule.key.security_group_id, rule.key.rule.cidr
                        ),
                    );
                    match resource {
                        Some(r) => audit.resource(r),
                        None => audit,
                    }
                });
                    if let (Some(n), Some(s)) = (note.take(), &session) {
                        note = Some(n.session(s.id));
                    }
                    match self.revoke_unheld(&rule.key, note, false).await {
                        Ok(_) | Err(RuleError::Busy | RuleError::OverBudget(_)) => {}
                        Err(RuleError::Store(e)) => return Err(e),
                        // Now an orphan: the sweeper retries the revoke.
                        Err(RuleError::Firewall(error)) => {
                            tracing::error!(rule = %rule.key, %error, "an ended entry's rule could not be revoked; will retry");
                        }
                    }
                }
                if !more {
                    break;
                }
            }
        }
        Ok(released)
    }
}
