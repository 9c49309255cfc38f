//! The rule worker: brings one session entry to its goal — its rules applied while the session
//! lives, removed once it ends. Safe to run twice, concurrently or after a crash at any step:
//! holders are named (idempotent), the cloud calls are idempotent, and every session change is a
//! conditional write of a legal transition.

use std::time::Duration;

use crate::domain::audit::AuditType;
use crate::domain::ids::SessionId;
use crate::domain::rule::{HolderId, RuleKey};
use crate::domain::session::{EntryStatus, EntryWork, Session, TransitionError};
use crate::ports::firewall::FirewallError;
use crate::ports::queue::Task;
use crate::ports::store::StoreError;

use super::audit::Audit;
use super::rules::{Released, RuleError};
use super::{App, MutateError};

/// The product's retry schedule for transient failures: after 30 s, 1 min, 2 min; the fourth
/// failure is final. Each delay gets up to `RETRY_JITTER` of itself added at random, so entries
/// throttled together do not all come back in the same second.
pub const RETRY_DELAYS: [Duration; 3] = [
    Duration::from_secs(30),
    Duration::from_secs(60),
    Duration::from_secs(120),
];

/// The largest share of a retry delay added as jitter (never taken off: a retry is never
/// sooner than the documented schedule).
pub const RETRY_JITTER: f64 = 0.25;

/// When another worker holds a rule's lease: retry soon, without counting a failed attempt.
pub const BUSY_DELAY: Duration = Duration::from_secs(2);

/// When the store itself fails: the message is delivered again later.
pub const STORE_RETRY_DELAY: Duration = Duration::from_secs(10);

/// What the queue should do with the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    RetryAfter(Duration),
}

enum Step {
    Finished,
    Again,
    Retry(Duration),
}

fn from_rule_failure(e: RuleError) -> Result<FirewallError, Step> {
    match e {
        RuleError::Busy => Err(Step::Retry(BUSY_DELAY)),
        RuleError::OverBudget(wait) => Err(Step::Retry(wait)),
        RuleError::Store(error) => {
            tracing::warn!(%error, "store failed while changing a rule");
            Err(Step::Retry(STORE_RETRY_DELAY))
        }
        RuleError::Firewall(e) => Ok(e),
    }
}

impl App {
    pub async fn process_task(&self, task: &Task) -> Outcome {
        let outcome = match task {
            Task::ReconcileEntry { session_id, entry } => {
                self.reconcile_entry(*session_id, *entry).await
            }
            Task::CheckSession { session_id, at } => self.scheduled_check(*session_id, *at).await,
            Task::DeliverWebhook {
                org_id,
                delivery_id,
            } => self.deliver_webhook(*org_id, *delivery_id).await,
        };
        // The queue's retry decision: every task that goes back to the queue counts.
        if let Outcome::RetryAfter(_) = outcome {
            self.metrics.record(crate::ports::Metric::Retry);
        }
        outcome
    }

    /// A check the sweeper scheduled for `at`. Early (a queue's delay is rounded, clocks
    /// differ a little): comes back at `at`. On time: does what a sweep would, which is nothing
    /// if the session was extended, stopped or already handled meanwhile.
    async fn scheduled_check(&self, id: SessionId, at: crate::domain::Timestamp) -> Outcome {
        if let Ok(early) = (at - self.now()).to_std() {
            if !early.is_zero() {
                // Whole seconds, rounded up: SQS would make a shorter wait no wait at all.
                let secs = early.as_secs() + u64::from(early.subsec_nanos() > 0);
                return Outcome::RetryAfter(
                    Duration::from_secs(secs).min(crate::ports::queue::MAX_DELAY),
                );
            }
        }
        match self.check_session(id).await {
            Ok(_) => Outcome::Done,
            // A record that cannot be handled: the sweep skips and reports it; retrying here
            // would only fill the dead-letter queue.
            Err(StoreError::Corrupt(error)) => {
                tracing::error!(%error, session_id = %id, "scheduled check of a session whose record cannot be handled");
                Outcome::Done
            }
            Err(error) => {
                tracing::warn!(%error, session_id = %id, "scheduled check failed; will retry");
                Outcome::RetryAfter(STORE_RETRY_DELAY)
            }
        }
    }

    async fn reconcile_entry(&self, session_id: SessionId, index: u32) -> Outcome {
        // Each pass either finishes or observes a newer session state; a few suffice.
        for _ in 0..8 {
            let step = match self.reconcile_step(session_id, index).await {
                Ok(step) => step,
                Err(error) => {
                    tracing::warn!(%error, %session_id, entry = index, "store failed; will retry");
                    Step::Retry(STORE_RETRY_DELAY)
                }
            };
            match step {
                Step::Finished => return Outcome::Done,
                Step::Retry(after) => return Outcome::RetryAfter(after),
                Step::Again => continue,
            }
        }
        Outcome::RetryAfter(BUSY_DELAY)
    }

    async fn reconcile_step(&self, id: SessionId, index: u32) -> Result<Step, StoreError> {
        let Some(session) = self.store.get_session(id).await? else {
            tracing::warn!(session_id = %id, "task for a session that does not exist");
            return Ok(Step::Finished);
        };
        let work = match session.work_for(index) {
            Ok(work) => work,
            Err(error) => {
                tracing::warn!(%error, session_id = %id, "task for an entry that does not exist");
                return Ok(Step::Finished);
            }
        };
        match work {
            // An ended entry holds nothing, but a crash or a lost race may have left its holders
            // behind; a redelivered message gives them back (a no-op when there are none).
            EntryWork::Nothing if session.entry(index).is_ok_and(|e| e.status.is_terminal()) => {
                let rules = session.entry(index).map_err(store_bug)?.rules();
                self.give_back(id, index, &rules).await
            }
            EntryWork::Nothing => Ok(Step::Finished),
            EntryWork::Apply => self.apply_entry(session, index).await,
            EntryWork::Remove => self.remove_entry(session, index).await,
        }
    }

    /// Applies a change to the session, answering `Again` when the entry moved on meanwhile.
    async fn change<T>(
        &self,
        id: SessionId,
        change: impl FnMut(&mut Session, crate::domain::Timestamp) -> Result<T, TransitionError>,
    ) -> Result<Option<(Session, T)>, StoreError> {
        match self.mutate_session(id, change).await {
            Ok(done) => Ok(Some(done)),
            Err(MutateError::Rejected(_)) | Err(MutateError::Missing) => Ok(None),
            Err(MutateError::Store(e)) => Err(e),
        }
    }

    async fn apply_entry(&self, session: Session, index: u32) -> Result<Step, StoreError> {
        let entry = session.entry(index).map_err(store_bug)?.clone();
        if entry.status == EntryStatus::Pending
            && self
                .change(session.id, |s, now| s.entry_applying(index, now))
                .await?
                .is_none()
        {
            return Ok(Step::Again);
        }
        let holder = session.holder(index);
        let rules = entry.rules();
        for key in &rules {
            if let Err(e) = self.acquire_rule(key, &entry.group, &holder).await {
                let failure = match from_rule_failure(e) {
                    Ok(failure) => failure,
                    Err(step) => return Ok(step),
                };
                return self
                    .entry_failure(&session, index, &rules, failure, "apply")
                    .await;
            }
        }
        // Written before the entry is marked APPLIED: a crash in between makes the next delivery
        // apply again and write it again, so no applied entry ever lacks its event.
        self.record(
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
        )
        .await?;
        match self
            .change(session.id, |s, now| s.entry_applied(index, now))
            .await?
        {
            Some((_, EntryStatus::Applied)) => Ok(Step::Finished),
            // The session ended while we were applying: undo at once.
            Some(_) => Ok(Step::Again),
            None => self.after_lost_race(session.id, index, &rules).await,
        }
    }

    /// The entry moved on while this handler was adding its holders: a duplicate delivery or a
    /// stale one finished it first. If it has ended (removed or failed), the holders just added
    /// are nobody's, and leaving them would keep the rules open for good.
    async fn after_lost_race(
        &self,
        id: SessionId,
        index: u32,
        rules: &[RuleKey],
    ) -> Result<Step, StoreError> {
        let ended = match self.store.get_session(id).await? {
            None => true,
            Some(s) => s.entry(index).map_or(true, |e| e.status.is_terminal()),
        };
        if !ended {
            return Ok(Step::Again);
        }
        self.give_back(id, index, rules).await
    }

    /// Removes the entry as a holder of its rules (a no-op where it is none).
    async fn give_back(
        &self,
        id: SessionId,
        index: u32,
        rules: &[RuleKey],
    ) -> Result<Step, StoreError> {
        let holder = HolderId::new(id, index);
        for key in rules {
            if let Err(e) = self.release_rule(key, &holder).await {
                tracing::warn!(error = %e, session_id = %id, entry = index, "could not give back a rule of an ended entry; will retry");
                return Ok(Step::Retry(match e {
                    RuleError::OverBudget(wait) => wait,
                    _ => BUSY_DELAY,
                }));
            }
        }
        Ok(Step::Finished)
    }

    async fn remove_entry(&self, session: Session, index: u32) -> Result<Step, StoreError> {
        let entry = session.entry(index).map_err(store_bug)?.clone();
        if entry.status != EntryStatus::Removing
            && self
                .change(session.id, |s, now| s.entry_applied(index, now))
                .await?
                .is_none()
        {
            return Ok(Step::Again);
        }
        let holder = session.holder(index);
        let rules = entry.rules();
        let mut group_gone = false;
        for key in &rules {
            match self.release_rule(key, &holder).await {
                Ok(Released::GroupGone) => group_gone = true,
                Ok(_) => {}
                Err(e) => {
                    let failure = match from_rule_failure(e) {
                        Ok(failure) => failure,
                        Err(step) => return Ok(step),
                    };
                    return self
                        .entry_failure(&session, index, &rules, failure, "remove")
                        .await;
                }
            }
        }
        let note = if group_gone {
            " (the security group no longer exists)"
        } else {
            ""
        };
        // Before the entry is marked REMOVED, for the same reason as on apply.
        self.record(
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
        )
        .await?;
        if self
            .change(session.id, |s, now| s.entry_removed(index, now))
            .await?
            .is_none()
        {
            return Ok(Step::Again);
        }
        Ok(Step::Finished)
    }

    /// A firewall failure while applying or removing: retried on the schedule when transient,
    /// final at once when permanent or after the last retry.
    async fn entry_failure(
        &self,
        session: &Session,
        index: u32,
        rules: &[RuleKey],
        failure: FirewallError,
        phase: &str,
    ) -> Result<Step, StoreError> {
        let entry = session.entry(index).map_err(store_bug)?;
        let message = failure.to_string();
        if failure.is_transient() && (entry.attempts as usize) < RETRY_DELAYS.len() {
            let delay = self.jittered(RETRY_DELAYS[entry.attempts as usize]);
            let recorded = self
                .change(session.id, |s, now| {
                    s.entry_retrying(index, format!("{message} (retrying)"), now)
                })
                .await?;
            tracing::info!(session_id = %session.id, entry = index, phase, error = %message, retry_in_secs = delay.as_secs(), "transient firewall failure");
            return Ok(match recorded {
                Some(_) => Step::Retry(delay),
                None => Step::Again,
            });
        }
        let what = if phase == "apply" {
            "Rule application failed"
        } else {
            "Rule removal failed"
        };
        let error = format!("{what}: {message}");
        tracing::warn!(session_id = %session.id, entry = index, phase, error = %message, "entry failed");
        self.record(
            Audit::system(session.org_id, AuditType::RuleFailed, error.clone())
                .session(session.id)
                .resource(entry.resource_id)
                .failed(),
        )
        .await?;
        // The entry is marked FAILED before its holders are given back: a duplicate delivery
        // may have applied it meanwhile, and then the holders are its, not ours to release.
        if self
            .change(session.id, |s, now| {
                s.entry_failed(index, error.clone(), now)
            })
            .await?
            .is_none()
        {
            return Ok(Step::Again);
        }
        if phase == "apply" {
            // Give back whatever this entry acquired before the failure. After a crash here the
            // next delivery (or the sweeper's holder check) gives them back.
            return self.give_back(session.id, index, rules).await;
        }
        Ok(Step::Finished)
    }
}

impl App {
    /// `base` plus a random share of it below `RETRY_JITTER`, from the id source (seeded in
    /// tests and simulations).
    fn jittered(&self, base: Duration) -> Duration {
        // The low 53 bits of a random UUID are random (its version and variant bits are higher).
        let bits = self.ids.uuid().as_u128() as u64 & ((1u64 << 53) - 1);
        let unit = bits as f64 / (1u64 << 53) as f64;
        base + base.mul_f64(RETRY_JITTER * unit)
    }
}

fn describe_ports(ports: &[crate::domain::net::PortRange]) -> String {
    ports
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn store_bug(e: TransitionError) -> StoreError {
    StoreError::Corrupt(e.to_string())
}
