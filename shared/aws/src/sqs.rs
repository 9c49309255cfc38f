//! The work queue on SQS: the producer (`TaskQueue`), the retry control (`Redelivery`), and a
//! consumer with a batch loop for hosts that poll the queue themselves (the local runner with
//! `--backend aws`, and the tests); in AWS the Lambda event source polls instead.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::error::SdkError;
use aws_sdk_sqs::types::{
    MessageSystemAttributeName, QueueAttributeName, SendMessageBatchRequestEntry,
};
use futures::future::join_all;
use tokio::sync::OnceCell;

use entryguard::app::delivery::handle_message;
use entryguard::app::App;
use entryguard::ports::queue::{
    DeadLetter, QueueError, Redelivery, Settle, Task, TaskQueue, MAX_DELAY,
};

use crate::sdk_error::{facts, is_server_code, is_throttling_code, ErrorFacts, Stage};

/// SendMessageBatch takes at most ten messages.
pub const BATCH_SIZE: usize = 10;
/// SQS refuses visibility timeouts over twelve hours.
const MAX_VISIBILITY_SECS: u64 = 12 * 3600;
/// Batches sent at once by one enqueue.
const SEND_CONCURRENCY: usize = 8;
/// A batch entry failing for SQS's own reasons is sent again this many times.
const SEND_ATTEMPTS: usize = 3;
/// SQS's answers to acting on a receipt that has become stale: the message was received again
/// by someone else or is already gone. The embedded queue ignores stale receipts too.
const STALE_RECEIPT: [&str; 4] = [
    "ReceiptHandleIsInvalid",
    "AWS.SimpleQueueService.MessageNotInflight",
    "MessageNotInflight",
    "InvalidParameterValue",
];

/// How an SQS failure is to be treated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqsFailure {
    /// The receipt no longer names an in-flight message.
    StaleReceipt,
    /// Worth trying again later.
    Transient(String),
    /// A request SQS will never accept (bad queue URL, missing permission).
    Permanent(String),
}

pub fn classify(f: &ErrorFacts) -> SqsFailure {
    match f.stage {
        Stage::Timeout | Stage::Dispatch | Stage::Response => {
            return SqsFailure::Transient(f.describe())
        }
        Stage::Construction => return SqsFailure::Permanent(f.describe()),
        Stage::Service => {}
    }
    match f.code() {
        Some(code) if STALE_RECEIPT.contains(&code) => SqsFailure::StaleReceipt,
        Some(code) if is_throttling_code(code) || is_server_code(code) => {
            SqsFailure::Transient(f.describe())
        }
        _ if f.is_server_fault() => SqsFailure::Transient(f.describe()),
        _ => SqsFailure::Permanent(f.describe()),
    }
}

fn from_sdk<E>(e: SdkError<E>) -> SqsFailure
where
    E: aws_sdk_sqs::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    classify(&facts(&e))
}

impl From<SqsFailure> for QueueError {
    fn from(f: SqsFailure) -> Self {
        QueueError::Unavailable(match f {
            SqsFailure::StaleReceipt => "the receipt handle is no longer valid".to_owned(),
            SqsFailure::Transient(m) => m,
            SqsFailure::Permanent(m) => format!("request refused: {m}"),
        })
    }
}

/// A received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub message_id: String,
    pub receipt: String,
    pub body: String,
    pub receive_count: u32,
}

#[derive(Clone)]
pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    url: String,
    /// The dead-letter queue's URL, found through the task queue's redrive policy.
    dead_letter_url: Arc<OnceCell<String>>,
}

impl SqsQueue {
    pub fn new(client: aws_sdk_sqs::Client, url: impl Into<String>) -> Self {
        Self {
            client,
            url: url.into(),
            dead_letter_url: Arc::new(OnceCell::new()),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The cheapest call that opens a connection to the queue's endpoint and resolves the
    /// credentials: reading the queue's ARN.
    pub async fn warm_up(&self) -> Result<(), QueueError> {
        self.client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(from_sdk)?;
        Ok(())
    }

    /// The dead-letter queue's URL: named by the task queue's redrive policy, so nothing has
    /// to be configured twice.
    pub async fn dead_letter_url(&self) -> Result<&str, QueueError> {
        self.dead_letter_url
            .get_or_try_init(|| async {
                let attributes = self
                    .client
                    .get_queue_attributes()
                    .queue_url(&self.url)
                    .attribute_names(QueueAttributeName::RedrivePolicy)
                    .send()
                    .await
                    .map_err(from_sdk)?
                    .attributes
                    .unwrap_or_default();
                let policy = attributes
                    .get(&QueueAttributeName::RedrivePolicy)
                    .ok_or_else(|| {
                        QueueError::Unavailable("the task queue has no redrive policy".into())
                    })?;
                let arn = serde_json::from_str::<serde_json::Value>(policy)
                    .ok()
                    .and_then(|p| p["deadLetterTargetArn"].as_str().map(str::to_owned))
                    .ok_or_else(|| {
                        QueueError::Unavailable(format!("unreadable redrive policy {policy}"))
                    })?;
                // arn:aws:sqs:region:account:name
                let parts: Vec<&str> = arn.split(':').collect();
                let (account, name) = match parts.as_slice() {
                    [_, _, _, _, account, name] => (*account, *name),
                    _ => return Err(QueueError::Unavailable(format!("not a queue ARN: {arn}"))),
                };
                let url = self
                    .client
                    .get_queue_url()
                    .queue_name(name)
                    .queue_owner_aws_account_id(account)
                    .send()
                    .await
                    .map_err(from_sdk)?
                    .queue_url
                    .unwrap_or_default();
                Ok::<String, QueueError>(url)
            })
            .await
            .map(String::as_str)
    }

    /// Up to `max` (1–10) messages, waiting up to `wait` (long polling, at most 20 s) for the
    /// first. Received messages stay invisible for the queue's visibility timeout.
    pub async fn receive(&self, max: i32, wait: Duration) -> Result<Vec<Received>, QueueError> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max.clamp(1, 10))
            .wait_time_seconds(i32::try_from(wait.as_secs().min(20)).unwrap_or(20))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(from_sdk)?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .map(|m| Received {
                receive_count: m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(1),
                message_id: m.message_id.unwrap_or_default(),
                receipt: m.receipt_handle.unwrap_or_default(),
                body: m.body.unwrap_or_default(),
            })
            .collect())
    }

    /// Deletes a handled message; a stale receipt is not an error (someone else has it now).
    pub async fn delete(&self, receipt: &str) -> Result<(), QueueError> {
        match self
            .client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(from_sdk)
        {
            Ok(_) | Err(SqsFailure::StaleReceipt) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Makes a received message visible again after `delay`.
    pub async fn change_visibility(
        &self,
        receipt: &str,
        delay: Duration,
    ) -> Result<(), QueueError> {
        let secs = delay.as_secs().min(MAX_VISIBILITY_SECS);
        match self
            .client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .visibility_timeout(i32::try_from(secs).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(from_sdk)
        {
            Ok(_) | Err(SqsFailure::StaleReceipt) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Sends `(batch entry id, body, delay in seconds)` entries; answers the ids to send again.
    async fn send_batch(
        &self,
        bodies: &[(String, String, i32)],
    ) -> Result<Vec<String>, QueueError> {
        let entries = bodies
            .iter()
            .map(|(id, body, delay)| {
                SendMessageBatchRequestEntry::builder()
                    .id(id)
                    .message_body(body)
                    .set_delay_seconds((*delay > 0).then_some(*delay))
                    .build()
                    .map_err(|e| QueueError::Unavailable(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out = self
            .client
            .send_message_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(from_sdk)?;
        let mut retry = Vec::new();
        for failed in out.failed() {
            if failed.sender_fault() {
                return Err(QueueError::Unavailable(format!(
                    "SQS refused task {}: {}: {}",
                    failed.id(),
                    failed.code(),
                    failed.message().unwrap_or_default()
                )));
            }
            tracing::warn!(
                entry = failed.id(),
                code = failed.code(),
                "SQS failed one message of a batch"
            );
            retry.push(failed.id().to_owned());
        }
        Ok(retry)
    }
}

impl SqsQueue {
    /// Sends up to ten tasks in one batch, sending again the ones SQS failed for its own reasons.
    async fn send_chunk(&self, chunk: &[(Task, Duration)]) -> Result<(), QueueError> {
        let mut pending = chunk
            .iter()
            .enumerate()
            .map(|(i, (task, delay))| {
                // SQS counts whole seconds: round up, so a message is never early.
                let secs = delay.min(&MAX_DELAY).as_secs_f64().ceil() as i32;
                serde_json::to_string(task)
                    .map(|body| (i.to_string(), body, secs))
                    .map_err(|e| QueueError::Unavailable(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        for attempt in 1..=SEND_ATTEMPTS {
            let failed = self.send_batch(&pending).await?;
            pending.retain(|(id, _, _)| failed.contains(id));
            if pending.is_empty() {
                break;
            }
            if attempt == SEND_ATTEMPTS {
                return Err(QueueError::Unavailable(format!(
                    "SQS did not accept {} task(s) after {SEND_ATTEMPTS} attempts",
                    pending.len()
                )));
            }
        }
        Ok(())
    }
}

#[async_trait]
impl TaskQueue for SqsQueue {
    async fn enqueue(&self, tasks: Vec<Task>) -> Result<(), QueueError> {
        self.enqueue_delayed(tasks.into_iter().map(|t| (t, Duration::ZERO)).collect())
            .await
    }

    async fn enqueue_delayed(&self, tasks: Vec<(Task, Duration)>) -> Result<(), QueueError> {
        // Batches go out a few at once: a sweep may schedule thousands of checks.
        let chunks: Vec<&[(Task, Duration)]> = tasks.chunks(BATCH_SIZE).collect();
        for wave in chunks.chunks(SEND_CONCURRENCY) {
            let mut sends = Vec::with_capacity(wave.len());
            for chunk in wave {
                sends.push(self.send_chunk(chunk));
            }
            for sent in join_all(sends).await {
                sent?;
            }
        }
        Ok(())
    }

    async fn dead_letters(&self, max: usize) -> Result<Vec<DeadLetter>, QueueError> {
        let url = self.dead_letter_url().await?.to_owned();
        let mut out: Vec<DeadLetter> = Vec::new();
        // Received with a zero visibility timeout: looking hides nothing from the next reader
        // (an admin's redrive right after a sweep). SQS samples, so receive until a batch
        // brings nothing new.
        for _ in 0..(max / 10 + 5) {
            if out.len() >= max {
                break;
            }
            let batch = self
                .client
                .receive_message()
                .queue_url(&url)
                .max_number_of_messages(10)
                .visibility_timeout(0)
                .wait_time_seconds(0)
                .send()
                .await
                .map_err(from_sdk)?
                .messages
                .unwrap_or_default();
            let mut new = 0;
            for m in batch {
                let id = m.message_id.unwrap_or_default();
                let receipt = m.receipt_handle.unwrap_or_default();
                if let Some(seen) = out.iter_mut().find(|l| l.id == id) {
                    // Only the latest receipt deletes the message.
                    seen.receipt = receipt;
                    continue;
                }
                new += 1;
                let body = m.body.unwrap_or_default();
                out.push(DeadLetter {
                    id,
                    receipt,
                    task: serde_json::from_str(&body).ok(),
                    body,
                });
            }
            if new == 0 {
                break;
            }
        }
        out.truncate(max);
        Ok(out)
    }

    async fn redrive(&self, letter: &DeadLetter) -> Result<(), QueueError> {
        let url = self.dead_letter_url().await?.to_owned();
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(&letter.body)
            .send()
            .await
            .map_err(from_sdk)?;
        match self
            .client
            .delete_message()
            .queue_url(&url)
            .receipt_handle(&letter.receipt)
            .send()
            .await
            .map_err(from_sdk)
        {
            Ok(_) | Err(SqsFailure::StaleReceipt) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

#[async_trait]
impl Redelivery for SqsQueue {
    async fn retry_after(&self, receipt: &str, delay: Duration) -> Result<(), QueueError> {
        self.change_visibility(receipt, delay).await
    }
}

/// For a consumer that receives by itself (no Lambda event source to delete what succeeded).
#[async_trait]
impl Settle for SqsQueue {
    async fn ack(&self, receipt: &str) -> Result<(), QueueError> {
        self.delete(receipt).await
    }

    async fn retry_after(&self, receipt: &str, delay: Duration) -> Result<(), QueueError> {
        self.change_visibility(receipt, delay).await
    }
}

/// Receives one batch (waiting up to `wait` for it), handles its tasks concurrently, deletes
/// the finished ones and schedules the retries. Returns how many messages there were.
/// Malformed messages are left alone: they come back until the redrive policy moves them to
/// the dead-letter queue.
pub async fn process_batch(
    app: &App,
    queue: &SqsQueue,
    wait: Duration,
) -> Result<usize, QueueError> {
    let batch = queue.receive(BATCH_SIZE as i32, wait).await?;
    let count = batch.len();
    join_all(
        batch
            .iter()
            .map(|m| handle_message(app, queue, &m.message_id, &m.receipt, &m.body)),
    )
    .await;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let c = |code: &str, status: u16| classify(&ErrorFacts::service(code, status, "m"));
        assert_eq!(c("ReceiptHandleIsInvalid", 400), SqsFailure::StaleReceipt);
        assert_eq!(
            c("AWS.SimpleQueueService.MessageNotInflight", 400),
            SqsFailure::StaleReceipt
        );
        assert!(matches!(
            c("RequestThrottled", 403),
            SqsFailure::Transient(_)
        ));
        assert!(matches!(c("InternalError", 500), SqsFailure::Transient(_)));
        assert!(matches!(
            c("AWS.SimpleQueueService.NonExistentQueue", 400),
            SqsFailure::Permanent(_)
        ));
        assert!(matches!(c("AccessDenied", 403), SqsFailure::Permanent(_)));
    }
}
