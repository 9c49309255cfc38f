//! The rule worker's handler: an SQS batch of tasks in, partial batch failures out. Messages to
//! retry get their visibility set to the retry delay first, so SQS redelivers them on the
//! product's schedule; messages that keep failing end in the dead-letter queue.

/// Every variable the rule worker binary reads; infra/template.yaml must set exactly these for it
/// (a test runs the binary with the template's environment and compares the names).
pub const ENVIRONMENT: &[&str] = &[
    entryguard_aws::env_names::TABLE_NAME,
    entryguard_aws::env_names::QUEUE_URL,
    entryguard_aws::env_names::KMS_KEY_ID,
    entryguard_aws::env_names::EC2_RATE_SHARE,
    entryguard_aws::env_names::WEB_APP_URL,
    entryguard_aws::env_names::RUST_LOG,
    entryguard_aws::env_names::METRICS_NAMESPACE,
];

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures::future::join_all;

use entryguard::app::worker::Outcome;
use entryguard::app::App;
use entryguard::ports::queue::{Redelivery, Task};

/// What happened to one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageResult {
    Done,
    Retry(std::time::Duration),
    /// Not a task EntryGuard understands; left to the redrive policy and the dead-letter queue.
    Malformed(String),
}

pub async fn handle_message(app: &App, body: &str) -> MessageResult {
    match serde_json::from_str::<Task>(body) {
        Ok(task) => match app.process_task(&task).await {
            Outcome::Done => MessageResult::Done,
            Outcome::RetryAfter(delay) => MessageResult::Retry(delay),
        },
        Err(e) => MessageResult::Malformed(e.to_string()),
    }
}

async fn handle_record(app: &App, redelivery: &dyn Redelivery, msg: &SqsMessage) -> bool {
    let id = msg.message_id.as_deref().unwrap_or("");
    let body = msg.body.as_deref().unwrap_or("");
    match handle_message(app, body).await {
        MessageResult::Done => true,
        MessageResult::Retry(delay) => {
            if let Some(receipt) = msg.receipt_handle.as_deref() {
                if let Err(error) = redelivery.retry_after(receipt, delay).await {
                    // The message still comes back after the queue's own visibility timeout.
                    tracing::warn!(%error, message_id = id, "could not set the retry delay");
                }
            }
            false
        }
        MessageResult::Malformed(error) => {
            tracing::error!(%error, message_id = id, "malformed task message");
            false
        }
    }
}

/// Processes a batch concurrently and reports the messages that must come back.
pub async fn handle_sqs_event(
    app: &App,
    redelivery: &dyn Redelivery,
    event: SqsEvent,
) -> SqsBatchResponse {
    let results = join_all(
        event
            .records
            .iter()
            .map(|msg| handle_record(app, redelivery, msg)),
    )
    .await;
    let mut response = SqsBatchResponse::default();
    for (msg, ok) in event.records.iter().zip(results) {
        if !ok {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = msg.message_id.clone().unwrap_or_default();
            response.batch_item_failures.push(failure);
        }
    }
    response
}
