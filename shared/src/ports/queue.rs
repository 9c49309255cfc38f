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

#[derive(Debug, Error)]
pub enum QueueError {
    #[error("queue unavailable: {0}")]
    Unavailable(String),
}

/// The producer side of the work queue.
#[async_trait]
pub trait TaskQueue: Send + Sync {
    async fn enqueue(&self, tasks: Vec<Task>) -> Result<(), QueueError>;
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
