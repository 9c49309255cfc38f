//! The embedded work queue: messages persisted in the embedded database, with delays,
//! visibility timeouts and receive counts like SQS, so a restart loses no work.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Duration;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use super::kv::{self, Kv};
use crate::domain::Timestamp;
use crate::ports::queue::{DeadLetter, QueueError, Task, TaskQueue, MAX_DELAY, MAX_RECEIVE_COUNT};
use crate::ports::store::StoreError;
use crate::ports::{Clock, IdSource};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Message {
    id: String,
    task: Task,
    visible_at: Timestamp,
    receive_count: u32,
}

/// A received message. The receipt is valid only until the message is received again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub receipt: String,
    pub task: Task,
    pub receive_count: u32,
}

#[derive(Clone)]
pub struct EmbeddedQueue {
    kv: Kv,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdSource>,
    notify: Arc<Notify>,
}

fn key(id: &str) -> String {
    format!("queue/{id}")
}

fn dead_key(id: &str) -> String {
    format!("dlq/{id}")
}

fn queue_error(e: StoreError) -> QueueError {
    QueueError::Unavailable(e.to_string())
}

impl EmbeddedQueue {
    pub fn new(kv: Kv, clock: Arc<dyn Clock>, ids: Arc<dyn IdSource>) -> Self {
        Self {
            kv,
            clock,
            ids,
            notify: Arc::new(Notify::new()),
        }
    }

    /// Resolves when something may have been enqueued since the last call.
    pub async fn notified(&self) {
        self.notify.notified().await
    }

    /// Up to `max` visible messages, hidden for `visibility` after this receive. A message
    /// already received `MAX_RECEIVE_COUNT` times goes to the dead-letter queue instead, as
    /// SQS's redrive policy does.
    pub fn receive(&self, max: usize, visibility: Duration) -> Result<Vec<Delivery>, QueueError> {
        let now = self.clock.now();
        self.kv
            .write(|t| {
                let mut visible: Vec<(String, Message)> = kv::scan_range(
                    t,
                    "queue/",
                    "queue/",
                    &kv::prefix_end("queue/"),
                    false,
                    usize::MAX,
                )?
                .into_iter()
                .filter(|(_, m): &(String, Message)| m.visible_at <= now)
                .collect();
                visible.sort_by_key(|(_, m)| m.visible_at);
                let mut out = Vec::with_capacity(max.min(visible.len()));
                for (k, mut m) in visible {
                    if out.len() >= max {
                        break;
                    }
                    if m.receive_count >= MAX_RECEIVE_COUNT {
                        kv::delete(t, &k)?;
                        kv::put(t, &dead_key(&m.id), &m)?;
                        tracing::error!(message_id = %m.id, task = ?m.task, "a task failed too often and went to the dead-letter queue");
                        continue;
                    }
                    m.receive_count += 1;
                    m.visible_at = now + visibility;
                    kv::put(t, &k, &m)?;
                    out.push(Delivery {
                        receipt: format!("{}:{}", m.id, m.receive_count),
                        task: m.task,
                        receive_count: m.receive_count,
                    });
                }
                Ok(out)
            })
            .map_err(queue_error)
    }

    fn with_receipt(
        &self,
        receipt: &str,
        f: impl FnOnce(&mut kv::KvTable<'_>, String, Message) -> Result<(), StoreError>,
    ) -> Result<(), QueueError> {
        let Some((id, count)) = receipt.rsplit_once(':') else {
            return Ok(());
        };
        self.kv
            .write(|t| match kv::get::<Message>(t, &key(id))? {
                Some(m) if m.receive_count.to_string() == count => f(t, key(id), m),
                _ => Ok(()),
            })
            .map_err(queue_error)
    }

    /// Deletes a processed message.
    pub fn ack(&self, receipt: &str) -> Result<(), QueueError> {
        self.with_receipt(receipt, |t, k, _| kv::delete(t, &k).map(|_| ()))
    }

    /// Makes a message visible again after `delay` (SQS: ChangeMessageVisibility).
    pub fn retry_after(&self, receipt: &str, delay: Duration) -> Result<(), QueueError> {
        let at = self.clock.now() + delay;
        self.with_receipt(receipt, |t, k, mut m| {
            m.visible_at = at;
            kv::put(t, &k, &m)
        })?;
        self.notify.notify_one();
        Ok(())
    }

    /// When the next hidden message becomes visible, if any message is waiting.
    pub fn next_visible_at(&self) -> Result<Option<Timestamp>, QueueError> {
        Ok(self
            .kv
            .scan::<Message>("queue/", false, usize::MAX)
            .map_err(queue_error)?
            .into_iter()
            .map(|(_, m)| m.visible_at)
            .min())
    }

    pub fn len(&self) -> Result<usize, QueueError> {
        Ok(self
            .kv
            .scan::<serde_json::Value>("queue/", false, usize::MAX)
            .map_err(queue_error)?
            .len())
    }

    pub fn is_empty(&self) -> Result<bool, QueueError> {
        Ok(self.len()? == 0)
    }

    /// How many messages are in the dead-letter queue.
    pub fn dead_letter_count(&self) -> Result<usize, QueueError> {
        Ok(self
            .kv
            .scan::<serde_json::Value>("dlq/", false, usize::MAX)
            .map_err(queue_error)?
            .len())
    }
}

#[async_trait]
impl TaskQueue for EmbeddedQueue {
    async fn enqueue(&self, tasks: Vec<Task>) -> Result<(), QueueError> {
        self.enqueue_delayed(
            tasks
                .into_iter()
                .map(|t| (t, std::time::Duration::ZERO))
                .collect(),
        )
        .await
    }

    async fn enqueue_delayed(
        &self,
        tasks: Vec<(Task, std::time::Duration)>,
    ) -> Result<(), QueueError> {
        if tasks.is_empty() {
            return Ok(());
        }
        let now = self.clock.now();
        let messages: Vec<Message> = tasks
            .into_iter()
            .map(|(task, delay)| Message {
                id: self.ids.uuid().to_string(),
                task,
                // Persisted with the message, so a restart keeps the delay.
                visible_at: now
                    + Duration::from_std(delay.min(MAX_DELAY)).unwrap_or(Duration::zero()),
                receive_count: 0,
            })
            .collect();
        self.kv
            .write(|t| {
                for m in &messages {
                    kv::put(t, &key(&m.id), m)?;
                }
                Ok(())
            })
            .map_err(queue_error)?;
        self.notify.notify_one();
        Ok(())
    }

    async fn dead_letters(&self, max: usize) -> Result<Vec<DeadLetter>, QueueError> {
        Ok(self
            .kv
            .scan::<Message>("dlq/", false, max)
            .map_err(queue_error)?
            .into_iter()
            .map(|(_, m)| DeadLetter {
                receipt: m.id.clone(),
                body: serde_json::to_string(&m.task).unwrap_or_default(),
                id: m.id,
                task: Some(m.task),
            })
            .collect())
    }

    async fn redrive(&self, letter: &DeadLetter) -> Result<(), QueueError> {
        let now = self.clock.now();
        self.kv
            .write(|t| {
                let Some(mut m) = kv::get::<Message>(t, &dead_key(&letter.receipt))? else {
                    return Ok(());
                };
                kv::delete(t, &dead_key(&m.id))?;
                m.receive_count = 0;
                m.visible_at = now;
                kv::put(t, &key(&m.id), &m)
            })
            .map_err(queue_error)?;
        self.notify.notify_one();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::SessionId;
    use crate::embedded::{ManualClock, SeededIds};
    use chrono::TimeZone;

    fn task(n: u32) -> Task {
        Task::ReconcileEntry {
            session_id: SessionId::from_uuid(uuid::Uuid::from_u128(1)),
            entry: n,
        }
    }

    #[tokio::test]
    async fn visibility_retry_and_ack() {
        let clock = Arc::new(ManualClock::new(chrono::Utc.timestamp_opt(0, 0).unwrap()));
        let q = EmbeddedQueue::new(Kv::in_memory(), clock.clone(), Arc::new(SeededIds::new(1)));
        q.enqueue(vec![task(1), task(2)]).await.unwrap();
        let got = q.receive(10, Duration::seconds(60)).unwrap();
        assert_eq!(got.len(), 2);
        assert!(q.receive(10, Duration::seconds(60)).unwrap().is_empty());
        q.ack(&got[0].receipt).unwrap();
        q.retry_after(&got[1].receipt, Duration::seconds(30))
            .unwrap();
        clock.advance(Duration::seconds(29));
        assert!(q.receive(10, Duration::seconds(60)).unwrap().is_empty());
        clock.advance(Duration::seconds(1));
        let again = q.receive(10, Duration::seconds(60)).unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].receive_count, 2);
        // A stale receipt from the first delivery no longer acts on the message.
        q.ack(&got[1].receipt).unwrap();
        assert_eq!(q.len().unwrap(), 1);
        q.ack(&again[0].receipt).unwrap();
        assert!(q.is_empty().unwrap());
    }

    #[tokio::test]
    async fn a_delayed_message_waits_its_delay_capped_at_the_sqs_limit() {
        let clock = Arc::new(ManualClock::new(chrono::Utc.timestamp_opt(0, 0).unwrap()));
        let q = EmbeddedQueue::new(Kv::in_memory(), clock.clone(), Arc::new(SeededIds::new(3)));
        q.enqueue_delayed(vec![
            (task(1), std::time::Duration::from_secs(5)),
            (task(2), std::time::Duration::from_secs(5000)),
        ])
        .await
        .unwrap();
        assert_eq!(
            q.next_visible_at().unwrap(),
            Some(chrono::Utc.timestamp_opt(5, 0).unwrap())
        );
        clock.advance(Duration::seconds(4));
        assert!(q.receive(10, Duration::seconds(60)).unwrap().is_empty());
        clock.advance(Duration::seconds(1));
        let got = q.receive(10, Duration::seconds(60)).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].task, task(1));
        q.ack(&got[0].receipt).unwrap();
        clock.advance(Duration::seconds(894));
        assert!(q.receive(10, Duration::seconds(60)).unwrap().is_empty());
        clock.advance(Duration::seconds(1));
        let capped = q.receive(10, Duration::seconds(60)).unwrap();
        assert_eq!(capped.len(), 1, "a longer delay is cut to 900 s");
        assert_eq!(capped[0].task, task(2));
    }

    #[tokio::test]
    async fn a_message_received_too_often_goes_to_the_dead_letter_queue_and_back() {
        let clock = Arc::new(ManualClock::new(chrono::Utc.timestamp_opt(0, 0).unwrap()));
        let q = EmbeddedQueue::new(Kv::in_memory(), clock.clone(), Arc::new(SeededIds::new(2)));
        q.enqueue(vec![task(1)]).await.unwrap();
        for n in 1..=MAX_RECEIVE_COUNT {
            let got = q.receive(10, Duration::seconds(60)).unwrap();
            assert_eq!(got.len(), 1);
            assert_eq!(got[0].receive_count, n);
            clock.advance(Duration::seconds(60));
        }
        assert!(q.receive(10, Duration::seconds(60)).unwrap().is_empty());
        assert!(q.is_empty().unwrap());
        assert_eq!(q.dead_letter_count().unwrap(), 1);
        let dead = q.dead_letters(10).await.unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].task, Some(task(1)));
        q.redrive(&dead[0]).await.unwrap();
        q.redrive(&dead[0]).await.unwrap();
        assert_eq!(q.dead_letter_count().unwrap(), 0);
        let back = q.receive(10, Duration::seconds(60)).unwrap();
        assert_eq!(back.len(), 1, "redriven once, however often asked");
        assert_eq!((back[0].task.clone(), back[0].receive_count), (task(1), 1));
    }
}
