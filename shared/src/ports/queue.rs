use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::domain::ids::SessionId;

/// A unit of work for the rule worker. It names an entry, not an action: the worker reads the
/// entry and does whatever brings it to its goal, so duplicates and reordering are harmless.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Task {
    #[serde(rename_all = "camelCase")]
    ReconcileEntry { session_id: SessionId, entry: u32 },
}

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
