//! The embedded work queue: messages persisted in the embedded database, with delays,
//! visibility timeouts and receive counts like SQS, so a restart loses no work. Messages are
//! indexed by the time they become visible, so a receive reads what it returns, not the whole
//! queue: ten thousand waiting messages cost no more per receive than ten.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Duration;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use super::kv::{self, Kv};
use crate::domain::Timestamp;
use crate::keys::time_key;
use crate::ports::queue::{
    DeadLetter, QueueError, Settle, Task, TaskQueue, MAX_DELAY, MAX_RECEIVE_COUNT,
};
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

/// The visibility index: `qvis/<visible at>/<id>`, soonest first.
fn visible_key(at: Timestamp, id: &str) -> String {
    format!("qvis/{}/{id}", time_key(at))
}

/// Set once the visibility index covers every message (databases from before it get it on
/// first open).
const INDEXED: &str = "qvis-built";

/// Writes a message and its index entry; `was` is the visibility it had, if it was stored.
fn put_message(
    t: &mut kv::KvTable<'_>,
    m: &Message,
    was: Option<Timestamp>,
) -> Result<(), StoreError> {
    if let Some(at) = was {
        kv::delete(t, &visible_key(at, &m.id))?;
    }
    kv::put(t, &visible_key(m.visible_at, &m.id), &m.id)?;
    kv::put(t, &key(&m.id), m)
}

fn delete_message(t: &mut kv::KvTable<'_>, m: &Message) -> Result<(), StoreError> {
    kv::delete(t, &visible_key(m.visible_at, &m.id))?;
    kv::delete(t, &key(&m.id)).map(|_| ())
}

fn queue_error(e: StoreError) -> QueueError {
    QueueError::Unavailable(e.to_string())
}

impl EmbeddedQueue {
    pub fn new(kv: Kv, clock: Arc<dyn Clock>, ids: Arc<dyn IdSource>) -> Self {
        if let Err(error) = Self::index_existing(&kv) {
            tracing::error!(%error, "could not index the queue's messages");
        }
        Self {
            kv,
            clock,
            ids,
            notify: Arc::new(Notify::new()),
        }
    }

    /// Indexes the messages of a database written before the visibility index existed.
    fn index_existing(kv: &Kv) -> Result<(), StoreError> {
        kv.write(|t| {
            if kv::get::<bool>(t, INDEXED)?.is_some() {
                return Ok(());
            }
            let all: Vec<(String, Message)> = kv::scan_range(
                t,
                "queue/",
                "queue/",
                &kv::prefix_end("queue/"),
                false,
                usize::MAX,
            )?;
            for (_, m) in all {
                kv::put(t, &visible_key(m.visible_at, &m.id), &m.id)?;
            }
            kv::put(t, INDEXED, &true)
        })
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
        let upper = format!("qvis/{}~", time_key(now));
        self.kv
            .write(|t| {
                let mut out = Vec::with_capacity(max);
                let mut from = "qvis/".to_owned();
                // Read the index in chunks: messages moved to the dead-letter queue do not
                // count towards `max`, so one chunk may not be enough.
                'chunks: while out.len() < max {
                    let chunk: Vec<(String, String)> =
                        kv::scan_range(t, "qvis/", &from, &upper, false, max.max(16))?;
                    if chunk.is_empty() {
                        break;
                    }
                    for (index_key, id) in chunk {
                        from = format!("{index_key}\u{0}");
                        let Some(mut m) = kv::get::<Message>(t, &key(&id))? else {
                            kv::delete(t, &index_key)?;
                            continue;
                        };
                        if m.receive_count >= MAX_RECEIVE_COUNT {
                            delete_message(t, &m)?;
                            kv::put(t, &dead_key(&m.id), &m)?;
                            tracing::error!(message_id = %m.id, task = ?m.task, "a task failed too often and went to the dead-letter queue");
                            continue;
                        }
                        let was = m.visible_at;
                        m.receive_count += 1;
                        m.visible_at = now + visibility;
                        put_message(t, &m, Some(was))?;
                        out.push(Delivery {
                            receipt: format!("{}:{}", m.id, m.receive_count),
                            task: m.task,
                            receive_count: m.receive_count,
                        });
                        if out.len() >= max {
                            break 'chunks;
                        }
                    }
                }
                Ok(out)
            })
            .map_err(queue_error)
    }

    fn with_receipt(
        &self,
        receipt: &str,
        f: impl FnOnce(&mut kv::KvTable<'_>, Message) -> Result<(), StoreError>,
    ) -> Result<(), QueueError> {
        let Some((id, count)) = receipt.rsplit_once(':') else {
            return Ok(());
        };
        self.kv
            .write(|t| match kv::get::<Message>(t, &key(id))? {
                Some(m) if m.receive_count.to_string() == count => f(t, m),
                _ => Ok(()),
            })
            .map_err(queue_error)
    }

    /// Deletes a processed message.
    pub fn ack(&self, receipt: &str) -> Result<(), QueueError> {
        self.with_receipt(receipt, |t, m| delete_message(t, &m))
    }

    /// Makes a message visible again after `delay` (SQS: ChangeMessageVisibility).
    pub fn retry_after(&self, receipt: &str, delay: Duration) -> Result<(), QueueError> {
        let at = self.clock.now() + delay;
        self.with_receipt(receipt, |t, mut m| {
            let was = m.visible_at;
            m.visible_at = at;
            put_message(t, &m, Some(was))
        })?;
        self.notify.notify_one();
        Ok(())
    }

    /// When the next hidden message becomes visible, if any message is waiting.
    pub fn next_visible_at(&self) -> Result<Option<Timestamp>, QueueError> {
        let first = self
            .kv
            .scan::<String>("qvis/", false, 1)
            .map_err(queue_error)?;
        let Some((index_key, _)) = first.first() else {
            return Ok(None);
        };
        let time = index_key
            .strip_prefix("qvis/")
            .and_then(|rest| rest.rsplit_once('/'))
            .map(|(time, _)| time)
            .unwrap_or_default();
        chrono::DateTime::parse_from_rfc3339(time)
            .map(|t| Some(t.with_timezone(&chrono::Utc)))
            .map_err(|e| QueueError::Unavailable(format!("queue index key {index_key}: {e}")))
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
                    put_message(t, m, None)?;
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
                put_message(t, &m, None)
            })
            .map_err(queue_error)?;
        self.notify.notify_one();
        Ok(())
    }
}

#[async_trait]
impl Settle for EmbeddedQueue {
    async fn ack(&self, receipt: &str) -> Result<(), QueueError> {
        EmbeddedQueue::ack(self, receipt)
    }

    async fn retry_after(
        &self,
        receipt: &str,
        delay: std::time::Duration,
    ) -> Result<(), QueueError> {
        // Only a delay past chrono's range (hundreds of millions of years) fails to convert.
        let delay = Duration::from_std(delay).unwrap_or(Duration::seconds(30));
        EmbeddedQueue::retry_after(self, receipt, delay)
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
    async fn messages_stored_before_the_visibility_index_are_indexed_on_open() {
        let clock = Arc::new(ManualClock::new(chrono::Utc.timestamp_opt(0, 0).unwrap()));
        let kv = Kv::in_memory();
        let old = Message {
            id: "old".into(),
            task: task(7),
            visible_at: clock.now(),
            receive_count: 0,
        };
        kv.write(|t| kv::put(t, &key(&old.id), &old)).unwrap();
        let q = EmbeddedQueue::new(kv.clone(), clock.clone(), Arc::new(SeededIds::new(4)));
        assert_eq!(q.next_visible_at().unwrap(), Some(old.visible_at));
        let got = q.receive(10, Duration::seconds(60)).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].task, task(7));
        // Opening again does not index twice.
        let again = EmbeddedQueue::new(kv, clock.clone(), Arc::new(SeededIds::new(5)));
        assert!(again.receive(10, Duration::seconds(60)).unwrap().is_empty());
        clock.advance(Duration::seconds(60));
        assert_eq!(again.receive(10, Duration::seconds(60)).unwrap().len(), 1);
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
