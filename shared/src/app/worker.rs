//! The rule worker: brings one session entry to its goal — its rules applied while the session
//! lives, removed once it ends. Safe to run twice, concurrently or after a crash at any step:
//! holders are named (idempotent), the cloud calls are idempotent, and every session change is a
//! conditional write of a legal transition.

use std::time::Duration;

use crate::domain::ids::SessionId;
use crate::domain::session::EntryWork;
use crate::ports::queue::Task;
use crate::ports::store::{GroupGrant, StoreError, WorkItem};

use super::group_batch::GroupRun;
use super::rules::LEASE_SECS;
use super::App;

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

/// When another worker holds the group's lease: it serves this entry's work item with the rest
/// of the group's backlog, so this message comes back only to see that done. Long enough that a
/// storm's messages do not use up their receives (ten before the dead-letter queue) while one
/// group is busy.
pub const GROUP_BUSY_DELAY: Duration = Duration::from_secs(10);

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
        for pass in 0..8 {
            let step = match self.reconcile_step(session_id, index, pass == 0).await {
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

    /// Puts the entry's work into its group's backlog and serves the backlog under the group's
    /// lease; a busy group comes back shortly, usually to find the entry done by the batch of
    /// whoever held the lease.
    async fn reconcile_step(
        &self,
        id: SessionId,
        index: u32,
        first_pass: bool,
    ) -> Result<Step, StoreError> {
        let Some(session) = self.store.get_session(id).await? else {
            tracing::warn!(session_id = %id, "task for a session that does not exist");
            return Ok(Step::Finished);
        };
        let (work, entry) = match session
            .work_for(index)
            .and_then(|w| Ok((w, session.entry(index)?)))
        {
            Ok(found) => found,
            Err(error) => {
                tracing::warn!(%error, session_id = %id, "task for an entry that does not exist");
                return Ok(Step::Finished);
            }
        };
        match work {
            // An ended entry holds nothing, but a crash or a lost race may have left its holders
            // behind; a redelivered message gives them back.
            EntryWork::Nothing if entry.status.is_terminal() => {
                let holder = session.holder(index);
                let mut held = false;
                for key in entry.rules() {
                    if self.store.is_holder(&key, &holder).await? {
                        held = true;
                        break;
                    }
                }
                if !held {
                    // A work item put by a message that died before its batch would otherwise
                    // wait for the group's next batch.
                    self.store
                        .remove_work(
                            &entry.group,
                            WorkItem {
                                session_id: id,
                                entry: index,
                            },
                        )
                        .await?;
                    return Ok(Step::Finished);
                }
            }
            EntryWork::Nothing => return Ok(Step::Finished),
            EntryWork::Apply | EntryWork::Remove => {}
        }
        if let Some(wait) = entry
            .retry_at
            .and_then(|at| (at - self.now()).to_std().ok())
        {
            if !wait.is_zero() {
                return Ok(Step::Retry(wait));
            }
        }
        let group = entry.group.clone();
        if !first_pass {
            // The session's own write put the work item; a batch that ran meanwhile without
            // serving this entry (the item lost to a race, a session too large for one
            // transaction) means it must be put now.
            self.store
                .put_work(
                    &group,
                    WorkItem {
                        session_id: id,
                        entry: index,
                    },
                )
                .await?;
        }
        let owner = self.ids.token();
        let now = self.now();
        let until = now + chrono::Duration::seconds(LEASE_SECS);
        let stale = match self.store.group_lease(&group, &owner, now, until).await? {
            GroupGrant::Busy => return Ok(Step::Retry(self.jittered(GROUP_BUSY_DELAY))),
            GroupGrant::Granted { stale } => stale,
        };
        Ok(match self.run_group(&group, &owner, until, stale).await? {
            GroupRun::Finished => Step::Again,
            GroupRun::Retry(after) => Step::Retry(after),
        })
    }
}

impl App {
    /// `base` plus a random share of it below `RETRY_JITTER`, from the id source (seeded in
    /// tests and simulations).
    pub(super) fn jittered(&self, base: Duration) -> Duration {
        // The low 53 bits of a random UUID are random (its version and variant bits are higher).
        let bits = self.ids.uuid().as_u128() as u64 & ((1u64 << 53) - 1);
        let unit = bits as f64 / (1u64 << 53) as f64;
        base + base.mul_f64(RETRY_JITTER * unit)
    }
}

pub(super) fn describe_ports(ports: &[crate::domain::net::PortRange]) -> String {
    ports
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
