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

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use futures::future::join_all;

use entryguard::app::delivery;
use entryguard::app::App;
use entryguard::ports::queue::{QueueError, Redelivery, Settle};

/// Settles messages the way the SQS event source mapping expects: it deletes every message the
/// function does not report as failed, so an ack is nothing to do here; a retry gets its delay
/// as the message's visibility, then is reported failed.
struct EventSourceMapping<'a>(&'a dyn Redelivery);

#[async_trait]
impl Settle for EventSourceMapping<'_> {
    async fn ack(&self, _receipt: &str) -> Result<(), QueueError> {
        Ok(())
    }

    async fn retry_after(
        &self,
        receipt: &str,
        delay: std::time::Duration,
    ) -> Result<(), QueueError> {
        // A message without a receipt still comes back after the queue's visibility timeout.
        if receipt.is_empty() {
            return Ok(());
        }
        self.0.retry_after(receipt, delay).await
    }
}

/// Processes a batch concurrently and reports the messages that must come back.
pub async fn handle_sqs_event(
    app: &App,
    redelivery: &dyn Redelivery,
    event: SqsEvent,
) -> SqsBatchResponse {
    let settle = EventSourceMapping(redelivery);
    let results = join_all(event.records.iter().map(|msg| {
        delivery::handle_message(
            app,
            &settle,
            msg.message_id.as_deref().unwrap_or(""),
            msg.receipt_handle.as_deref().unwrap_or(""),
            msg.body.as_deref().unwrap_or(""),
        )
    }))
    .await;
    let mut response = SqsBatchResponse::default();
    for (msg, result) in event.records.iter().zip(results) {
        if !result.is_done() {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = msg.message_id.clone().unwrap_or_default();
            response.batch_item_failures.push(failure);
        }
    }
    response
}
