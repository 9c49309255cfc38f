//! One received task message, from its body to what its queue must do with it: the one mapping
//! from a task's [`Outcome`] to ack or retry, for the Lambda's SQS batches, the runner's SQS
//! polling and the embedded queue alike.

use crate::ports::queue::{Settle, Task};

use super::worker::Outcome;
use super::App;

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    /// Acknowledged: the task is finished.
    Done,
    /// To come back after this delay.
    Retry(std::time::Duration),
    /// Not a task EntryGuard understands; left alone, so the queue's redrive policy moves it to
    /// the dead-letter queue.
    Malformed(String),
}

impl Delivered {
    pub fn is_done(&self) -> bool {
        matches!(self, Delivered::Done)
    }
}

/// Parses a message body into its task, runs it and settles the message with `queue`.
pub async fn handle_message(
    app: &App,
    queue: &dyn Settle,
    message_id: &str,
    receipt: &str,
    body: &str,
) -> Delivered {
    match serde_json::from_str::<Task>(body) {
        Ok(task) => handle_task(app, queue, message_id, receipt, &task).await,
        Err(e) => {
            let error = e.to_string();
            tracing::error!(%error, message_id, "malformed task message");
            Delivered::Malformed(error)
        }
    }
}

/// Runs a received task and settles its message with `queue`. A failure to settle is only
/// logged: an unsettled message comes back after the queue's own visibility timeout, and the
/// task is idempotent.
pub async fn handle_task(
    app: &App,
    queue: &dyn Settle,
    message_id: &str,
    receipt: &str,
    task: &Task,
) -> Delivered {
    let (settled, delivered) = match app.process_task(task).await {
        Outcome::Done => (queue.ack(receipt).await, Delivered::Done),
        Outcome::RetryAfter(delay) => (
            queue.retry_after(receipt, delay).await,
            Delivered::Retry(delay),
        ),
    };
    if let Err(error) = settled {
        tracing::warn!(%error, message_id, "queue update failed; the message will come back");
    }
    delivered
}
