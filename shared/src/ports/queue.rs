use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::domain::ids::{DeliveryId, OrgId, SessionId};
use crate::domain::Timestamp;

/// A unit of work for the rule worker. It names an entry, not an action: the worker reads the
/// entry and does whatever brings it to its goal, so duplicates and reordering are harmless.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Task {
    #[serde(rename_all = "camelCase")]
    ReconcileEntry { session_id: SessionId, entry: u32 },
    /// Check the session at `at` — expire it or resend its stalled work — as a sweep would.
    /// Sent by the sweeper, delayed to that second, for sessions due before its next run; a
    /// session changed meanwhile (extended, stopped, ended) is left alone.
    #[serde(rename_all = "camelCase")]
    CheckSession {
        session_id: SessionId,
        at: Timestamp,
    },
    /// Attempt a webhook delivery (a no-op once it is delivered or failed; sent again,
    /// delayed, for each retry).
    #[serde(rename_all = "camelCase")]
    DeliverWebhook {
        org_id: OrgId,
        delivery_id: DeliveryId,
    },
}

impl Task {
    /// The session the task works on, if it works on one.
    pub fn session_id(&self) -> Option<SessionId> {
        match self {
            Task::ReconcileEntry { session_id, .. } | Task::CheckSession { session_id, .. } => {
                Some(*session_id)
            }
            Task::DeliverWebhook { .. } => None,
        }
    }
}

/// The longest a message can be delayed (SQS's `DelaySeconds` limit; the embedded queue keeps
/// to it too).
pub const MAX_DELAY: std::time::Duration = std::time::Duration::from_secs(900);

/// Receives before a task is set aside in the dead-letter queue (SQS's redrive policy). High
/// because a lease-busy retry also counts as a receive, on top of the three scheduled retries
/// of a transient failure.
pub const MAX_RECEIVE_COUNT: u32 = 10;

/// A task set aside after failing too often: nothing retries it until it is redriven.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Stable for as long as the message exists.
    pub id: String,
    /// What `redrive` needs to move this message (valid for a short while).
    pub receipt: String,
    pub body: String,
    /// The task, if the body is one.
    pub task: Option<Task>,
}

#[derive(Debug, Error)]
pub enum QueueError {
    #[error("queue unavailable: {0}")]
    Unavailable(String),
}

/// The producer side of the work queue, and its dead-letter queue.
#[async_trait]
pub trait TaskQueue: Send + Sync {
    async fn enqueue(&self, tasks: Vec<Task>) -> Result<(), QueueError>;
    /// Sends each task to become visible only after its delay (at most `MAX_DELAY`; longer
    /// delays are cut to it).
    async fn enqueue_delayed(
        &self,
        tasks: Vec<(Task, std::time::Duration)>,
    ) -> Result<(), QueueError>;
    /// Up to `max` dead letters, left in the dead-letter queue.
    async fn dead_letters(&self, max: usize) -> Result<Vec<DeadLetter>, QueueError>;
    /// Moves a dead letter back onto the work queue. Sending twice is harmless (tasks are
    /// idempotent), so a crash between the send and the delete loses nothing.
    async fn redrive(&self, letter: &DeadLetter) -> Result<(), QueueError>;
}

/// The consumer side's retry control: make a received message visible again after `delay`
/// (SQS: ChangeMessageVisibility on the receipt handle).
#[async_trait]
pub trait Redelivery: Send + Sync {
    async fn retry_after(
        &self,
        receipt: &str,
        delay: std::time::Duration,
    ) -> Result<(), QueueError>;
}

/// The consumer side's verdict on a received message, once its task has run: a finished task's
/// message goes, a task to run again comes back after its delay.
#[async_trait]
pub trait Settle: Send + Sync {
    async fn ack(&self, receipt: &str) -> Result<(), QueueError>;
    async fn retry_after(
        &self,
        receipt: &str,
        delay: std::time::Duration,
    ) -> Result<(), QueueError>;
}
