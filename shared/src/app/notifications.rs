//! Webhook notifications: the admin's endpoints, events turned into deliveries, and the
//! worker's delivery attempts. A delivery is a stored record plus a queue message; requests and
//! sweeps only record and enqueue, the worker sends, so a slow or hostile endpoint never holds
//! up a request and a restart loses nothing.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::domain::audit::AuditType;
use crate::domain::ids::{DeliveryId, OrgId, WebhookId};
use crate::domain::model::Secret;
use crate::domain::session::{Session, SessionStatus};
use crate::domain::webhook::{
    self, AddressPolicy, DeliveryStatus, EventFacts, WebhookDelivery, WebhookEndpoint,
    WebhookEvent, WebhookFormat, WebhookUrl,
};
use crate::domain::Timestamp;
use crate::ports::queue::{Task, MAX_DELAY};
use crate::ports::secrets::SealContext;
use crate::ports::store::StoreError;
use crate::ports::webhooks::{NoWebhookSender, SendError, WebhookRequest, WebhookSender};

use super::admin::AdminError;
use super::audit::Audit;
use super::worker::{Outcome, STORE_RETRY_DELAY};
use super::{App, Identity};

/// The most endpoints one organization may have.
pub const MAX_ENDPOINTS: usize = 10;
/// The delivery log shows this many of an endpoint's most recent deliveries.
pub const DELIVERY_LOG_LEN: usize = 100;
/// One finished delivery in this many trims its endpoint's log back to `DELIVERY_LOG_LEN`:
/// reading the whole log on every event would cost far more than the few extra records kept.
const TRIM_ONE_IN: u128 = 16;
/// How long before a session's end its `session.expiring-soon` event is sent.
pub const EXPIRING_SOON: chrono::Duration = chrono::Duration::minutes(10);
/// A pending delivery this long past its attempt time has lost its queue message (a failed
/// send, a message gone to the dead-letter queue): the sweeper sends it again.
pub const LOST_AFTER: chrono::Duration = chrono::Duration::minutes(5);
/// How often the sweeper looks for lost deliveries (claimed in the store: one sweeper does it).
const RESEND_EVERY: chrono::Duration = chrono::Duration::minutes(5);

/// How this process sends webhooks, and where the web app is (for links in messages).
#[derive(Clone)]
pub struct Notifier {
    pub sender: Arc<dyn WebhookSender>,
    /// The web app's address, e.g. `https://d111111abcdef8.cloudfront.net`.
    pub app_url: Option<String>,
}

impl Notifier {
    /// Sends nothing and accepts only public https endpoints: for processes that never deliver.
    pub fn disabled() -> Self {
        Self {
            sender: Arc::new(NoWebhookSender(AddressPolicy::default())),
            app_url: None,
        }
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewWebhook {
    /// https:// only.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub url: WebhookUrl,
    /// At least one; `webhook.test` is not subscribable (every endpoint gets test events).
    pub events: BTreeSet<WebhookEvent>,
    #[serde(default)]
    pub format: WebhookFormat,
    /// Default true.
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
}

fn enabled_by_default() -> bool {
    true
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookPatch {
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub url: Option<WebhookUrl>,
    pub events: Option<BTreeSet<WebhookEvent>>,
    pub format: Option<WebhookFormat>,
    pub enabled: Option<bool>,
}

/// A new endpoint and its signing secret, which is shown this once.
pub struct CreatedWebhook {
    pub endpoint: WebhookEndpoint,
    pub secret: Secret,
}

fn invalid(field: &str, message: impl Into<String>) -> AdminError {
    AdminError::Invalid {
        field: field.to_owned(),
        message: message.into(),
    }
}

fn check_events(events: &BTreeSet<WebhookEvent>) -> Result<(), AdminError> {
    if events.is_empty() {
        return Err(invalid("events", "subscribe to at least one event"));
    }
    if events.contains(&WebhookEvent::Test) {
        return Err(invalid(
            "events",
            "webhook.test is sent to every endpoint on request; it is not subscribed to",
        ));
    }
    Ok(())
}

impl App {
    fn check_webhook_url(&self, url: &WebhookUrl) -> Result<(), AdminError> {
        self.notifier
            .sender
            .policy()
            .check_url(url)
            .map_err(|e| invalid("url", e.to_string()))
    }

    async fn endpoint(&self, who: &Identity, id: WebhookId) -> Result<WebhookEndpoint, AdminError> {
        who.require_admin()?;
        self.get_doc(who.org.id, *id.as_uuid())
            .await?
            .ok_or(AdminError::NotFound("Webhook endpoint"))
    }

    pub async fn list_webhooks(&self, who: &Identity) -> Result<Vec<WebhookEndpoint>, AdminError> {
        who.require_admin()?;
        let mut list: Vec<WebhookEndpoint> = self.list_docs(who.org.id).await?;
        list.sort_by_key(|e| e.created_at);
        Ok(list)
    }

    pub async fn create_webhook(
        &self,
        who: &Identity,
        input: NewWebhook,
    ) -> Result<CreatedWebhook, AdminError> {
        who.require_admin()?;
        self.check_webhook_url(&input.url)?;
        check_events(&input.events)?;
        let existing: Vec<WebhookEndpoint> = self.list_docs(who.org.id).await?;
        if existing.len() >= MAX_ENDPOINTS {
            return Err(AdminError::Conflict(format!(
                "An organization has at most {MAX_ENDPOINTS} webhook endpoints; delete one first"
            )));
        }
        let id = WebhookId::from_uuid(self.ids.uuid());
        let secret = Secret::new(format!("whsec_{}", self.ids.token()));
        let sealed_secret = self
            .sealer
            .seal(&secret, &SealContext::webhook(who.org.id, id))
            .await?;
        let endpoint = WebhookEndpoint {
            id,
            org_id: who.org.id,
            url: input.url,
            events: input.events,
            format: input.format,
            enabled: input.enabled,
            sealed_secret,
            created_at: self.now(),
        };
        self.put_doc(&endpoint).await?;
        self.audit(Audit::by(
            who,
            AuditType::AdminChange,
            format!("Added webhook endpoint {} ({})", endpoint.url, endpoint.id),
        ))
        .await;
        Ok(CreatedWebhook { endpoint, secret })
    }

    pub async fn update_webhook(
        &self,
        who: &Identity,
        id: WebhookId,
        patch: WebhookPatch,
    ) -> Result<WebhookEndpoint, AdminError> {
        let mut endpoint = self.endpoint(who, id).await?;
        let mut changes = vec![];
        if let Some(url) = patch.url {
            self.check_webhook_url(&url)?;
            changes.push(format!("URL {} → {url}", endpoint.url));
            endpoint.url = url;
        }
        if let Some(events) = patch.events {
            check_events(&events)?;
            changes.push("events".to_owned());
            endpoint.events = events;
        }
        if let Some(format) = patch.format {
            changes.push(format!("format {format:?}"));
            endpoint.format = format;
        }
        if let Some(enabled) = patch.enabled {
            changes.push(if enabled { "enabled" } else { "disabled" }.to_owned());
            endpoint.enabled = enabled;
        }
        self.put_doc(&endpoint).await?;
        self.audit(Audit::by(
            who,
            AuditType::AdminChange,
            format!(
                "Changed webhook endpoint {} ({}): {}",
                endpoint.url,
                endpoint.id,
                changes.join(", ")
            ),
        ))
        .await;
        Ok(endpoint)
    }

    pub async fn delete_webhook(&self, who: &Identity, id: WebhookId) -> Result<(), AdminError> {
        let endpoint = self.endpoint(who, id).await?;
        self.delete_doc::<WebhookEndpoint>(who.org.id, *id.as_uuid())
            .await?;
        // Its log goes with it; a pending delivery finds no endpoint and ends.
        for d in self.deliveries_of(who.org.id, id).await? {
            self.delete_doc::<WebhookDelivery>(who.org.id, *d.id.as_uuid())
                .await?;
        }
        self.audit(Audit::by(
            who,
            AuditType::AdminChange,
            format!(
                "Deleted webhook endpoint {} ({})",
                endpoint.url, endpoint.id
            ),
        ))
        .await;
        Ok(())
    }

    /// The endpoint's most recent deliveries, newest first.
    pub async fn list_webhook_deliveries(
        &self,
        who: &Identity,
        id: WebhookId,
    ) -> Result<Vec<WebhookDelivery>, AdminError> {
        self.endpoint(who, id).await?;
        let mut list = self.deliveries_of(who.org.id, id).await?;
        list.truncate(DELIVERY_LOG_LEN);
        Ok(list)
    }

    /// Deletes the endpoint's deliveries beyond the most recent `DELIVERY_LOG_LEN`.
    async fn trim_log(&self, org: OrgId, endpoint: WebhookId) -> Result<(), StoreError> {
        let list = self.deliveries_of(org, endpoint).await?;
        for d in list.iter().skip(DELIVERY_LOG_LEN) {
            self.delete_doc::<WebhookDelivery>(org, *d.id.as_uuid())
                .await?;
        }
        Ok(())
    }

    /// Queues a `webhook.test` event for the endpoint, whatever it subscribes to.
    pub async fn send_test_webhook(
        &self,
        who: &Identity,
        id: WebhookId,
    ) -> Result<WebhookDelivery, AdminError> {
        let endpoint = self.endpoint(who, id).await?;
        if !endpoint.enabled {
            return Err(AdminError::Conflict(
                "The endpoint is disabled; enable it to send it a test event".into(),
            ));
        }
        let facts = EventFacts {
            message: format!("A test event sent by {}", who.user.email),
            session_id: None,
            user_email: Some(who.user.email.to_string()),
            expires_at: None,
        };
        Ok(self
            .queue_delivery(&endpoint, WebhookEvent::Test, facts)
            .await?)
    }

    async fn deliveries_of(
        &self,
        org: OrgId,
        endpoint: WebhookId,
    ) -> Result<Vec<WebhookDelivery>, StoreError> {
        let mut list: Vec<WebhookDelivery> = self
            .list_docs::<WebhookDelivery>(org)
            .await?
            .into_iter()
            .filter(|d| d.endpoint_id == endpoint)
            .collect();
        list.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(list)
    }

    /// Records a delivery and sends its message.
    async fn queue_delivery(
        &self,
        endpoint: &WebhookEndpoint,
        event: WebhookEvent,
        facts: EventFacts,
    ) -> Result<WebhookDelivery, StoreError> {
        let now = self.now();
        let delivery = WebhookDelivery {
            id: DeliveryId::from_uuid(self.ids.uuid()),
            org_id: endpoint.org_id,
            endpoint_id: endpoint.id,
            event,
            facts,
            status: DeliveryStatus::Pending,
            attempts: 0,
            response_code: None,
            last_error: None,
            created_at: now,
            updated_at: now,
            next_attempt_at: now,
        };
        self.put_doc(&delivery).await?;
        self.queue
            .enqueue(vec![Task::DeliverWebhook {
                org_id: delivery.org_id,
                delivery_id: delivery.id,
            }])
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(delivery)
    }

    /// Queues a delivery of `event` to every enabled endpoint of the organization that wants
    /// it. Never fails the change it reports: a failure is logged.
    pub async fn notify(&self, org: OrgId, event: WebhookEvent, facts: EventFacts) {
        if let Err(error) = self.try_notify(org, event, || async { Ok(facts) }).await {
            tracing::warn!(%error, %org, event = event.as_str(), "webhook event could not be queued");
        }
    }

    async fn try_notify<F, Fut>(
        &self,
        org: OrgId,
        event: WebhookEvent,
        facts: F,
    ) -> Result<(), StoreError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<EventFacts, StoreError>>,
    {
        let endpoints: Vec<WebhookEndpoint> = self
            .list_docs::<WebhookEndpoint>(org)
            .await?
            .into_iter()
            .filter(|e| e.wants(event))
            .collect();
        if endpoints.is_empty() {
            return Ok(());
        }
        let facts = facts().await?;
        for endpoint in &endpoints {
            self.queue_delivery(endpoint, event, facts.clone()).await?;
        }
        Ok(())
    }

    /// A session event; the user's e-mail is looked up only when some endpoint wants it.
    pub async fn notify_session(&self, session: &Session, event: WebhookEvent, message: String) {
        let result = self
            .try_notify(session.org_id, event, || async {
                let email = self
                    .store
                    .get_user(session.user_id)
                    .await?
                    .map(|u| u.email.to_string());
                Ok(EventFacts {
                    message,
                    session_id: Some(session.id),
                    user_email: email,
                    expires_at: Some(session.expires_at),
                })
            })
            .await;
        if let Err(error) = result {
            tracing::warn!(%error, session_id = %session.id, event = event.as_str(), "webhook event could not be queued");
        }
    }

    /// The event of a session status change, if it is one endpoints hear of.
    pub(crate) async fn notify_status_change(&self, before: SessionStatus, after: &Session) {
        let status = after.status();
        if status == before {
            return;
        }
        let (event, message) = match status {
            SessionStatus::Active => (
                WebhookEvent::SessionActive,
                "The session is active: every rule is in place",
            ),
            SessionStatus::Partial => (
                WebhookEvent::SessionPartial,
                "The session is partial: some resources could not be opened",
            ),
            SessionStatus::Failed => (
                WebhookEvent::SessionFailed,
                "The session failed: nothing could be opened",
            ),
            SessionStatus::Cancelled => (
                WebhookEvent::SessionEnded,
                "The session was stopped and every rule removed",
            ),
            SessionStatus::Expired => (
                WebhookEvent::SessionEnded,
                "The session expired and every rule was removed",
            ),
            SessionStatus::Pending | SessionStatus::Expiring => return,
        };
        self.notify_session(after, event, message.to_owned()).await;
    }

    /// The worker's part: one attempt of a delivery, or a wait until its time.
    pub(crate) async fn deliver_webhook(&self, org: OrgId, id: DeliveryId) -> Outcome {
        match self.try_deliver(org, id).await {
            Ok(outcome) => outcome,
            Err(error) => {
                tracing::warn!(%error, delivery_id = %id, "webhook delivery could not be handled; will retry");
                Outcome::RetryAfter(STORE_RETRY_DELAY)
            }
        }
    }

    /// Sends the delivery's message again, delayed by `wait` (cut to the queue's limit: an
    /// early message sends itself on). A new message, not a longer invisibility, so the hours
    /// of a day's retries never count towards the dead-letter queue's receive limit.
    async fn deliver_later(&self, d: &WebhookDelivery, wait: Duration) -> Outcome {
        let task = Task::DeliverWebhook {
            org_id: d.org_id,
            delivery_id: d.id,
        };
        match self
            .queue
            .enqueue_delayed(vec![(task, wait.min(MAX_DELAY))])
            .await
        {
            Ok(()) => Outcome::Done,
            Err(error) => {
                tracing::warn!(%error, delivery_id = %d.id, "could not schedule the next attempt");
                Outcome::RetryAfter(wait.min(MAX_DELAY))
            }
        }
    }

    async fn try_deliver(&self, org: OrgId, id: DeliveryId) -> Result<Outcome, StoreError> {
        let Some(mut d) = self.get_doc::<WebhookDelivery>(org, *id.as_uuid()).await? else {
            return Ok(Outcome::Done);
        };
        if d.status != DeliveryStatus::Pending {
            return Ok(Outcome::Done);
        }
        let now = self.now();
        if let Ok(early) = (d.next_attempt_at - now).to_std() {
            if !early.is_zero() {
                let secs = early.as_secs() + u64::from(early.subsec_nanos() > 0);
                return Ok(self.deliver_later(&d, Duration::from_secs(secs)).await);
            }
        }
        let endpoint = self
            .get_doc::<WebhookEndpoint>(org, *d.endpoint_id.as_uuid())
            .await?;
        let endpoint = match endpoint {
            Some(e) if e.enabled => e,
            Some(_) => {
                d.give_up(now, "the endpoint was disabled".into());
                self.put_doc(&d).await?;
                return Ok(Outcome::Done);
            }
            None => return Ok(Outcome::Done),
        };
        let secret = match self
            .sealer
            .open(
                &endpoint.sealed_secret,
                &SealContext::webhook(org, endpoint.id),
            )
            .await
        {
            Ok(secret) => secret,
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, delivery_id = %id, "the key service is unavailable");
                return Ok(Outcome::RetryAfter(STORE_RETRY_DELAY));
            }
            Err(e) => {
                d.give_up(now, format!("the endpoint's secret cannot be opened: {e}"));
                self.put_doc(&d).await?;
                return Ok(Outcome::Done);
            }
        };
        let body = webhook::render(endpoint.format, &d, self.notifier.app_url.as_deref());
        let body = serde_json::to_vec(&body).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let timestamp = now.timestamp();
        let request = WebhookRequest {
            url: endpoint.url.clone(),
            headers: vec![
                ("Content-Type", "application/json".to_owned()),
                ("User-Agent", "EntryGuard-Webhooks/1".to_owned()),
                (webhook::HEADER_EVENT, d.event.as_str().to_owned()),
                (webhook::HEADER_DELIVERY, d.id.to_string()),
                (webhook::HEADER_TIMESTAMP, timestamp.to_string()),
                (
                    webhook::HEADER_SIGNATURE,
                    webhook::signature(secret.expose(), timestamp, &body),
                ),
            ],
            body,
        };
        drop(secret);
        let result = self.notifier.sender.send(request).await;
        let now = self.now();
        let retry = match result {
            Ok(code) if (200..300).contains(&code) => {
                d.delivered(now, code);
                None
            }
            Ok(code) if (300..400).contains(&code) => d.attempt_failed(
                now,
                Some(code),
                format!("HTTP {code}: redirects are not followed"),
            ),
            Ok(code) => d.attempt_failed(now, Some(code), format!("HTTP {code}")),
            Err(SendError::Refused(reason)) => {
                d.attempts += 1;
                d.give_up(now, format!("refused: {reason}"));
                None
            }
            Err(SendError::Unreachable(error)) => d.attempt_failed(now, None, error),
        };
        tracing::info!(
            delivery_id = %d.id,
            endpoint_id = %d.endpoint_id,
            event = d.event.as_str(),
            attempts = d.attempts,
            status = ?d.status,
            code = ?d.response_code,
            "webhook attempt"
        );
        self.put_doc(&d).await?;
        if retry.is_none() && d.id.as_uuid().as_u128() % TRIM_ONE_IN == 0 {
            if let Err(error) = self.trim_log(org, d.endpoint_id).await {
                tracing::warn!(%error, endpoint_id = %d.endpoint_id, "could not trim a delivery log");
            }
        }
        Ok(match retry {
            Some(wait) => self.deliver_later(&d, wait).await,
            None => Outcome::Done,
        })
    }

    /// Queues `session.expiring-soon` for live sessions ending in five to ten minutes (a window
    /// several one-minute sweeps overlap, so a late or missed sweep loses none), once per
    /// session and expiry time: an extended session is told again before its new end. Reads
    /// the due index, where a settled session waits for its expiry.
    pub(crate) async fn notify_expiring_soon(&self, page: usize) {
        let now = self.now();
        let mut after = Some(crate::ports::store::DueEntry {
            at: now + EXPIRING_SOON / 2,
            session_id: crate::domain::ids::SessionId::from_uuid(uuid::Uuid::max()),
        });
        loop {
            let entries = match self.store.due_page(now + EXPIRING_SOON, after, page).await {
                Ok(entries) => entries,
                Err(error) => {
                    tracing::warn!(%error, "could not read the due index for expiring-soon events");
                    return;
                }
            };
            let full = entries.len() == page;
            after = entries.last().copied();
            for entry in entries {
                if let Err(error) = self.expiring_soon(entry.session_id, now).await {
                    tracing::warn!(%error, session_id = %entry.session_id, "expiring-soon event not queued");
                }
            }
            if !full {
                return;
            }
        }
    }

    async fn expiring_soon(
        &self,
        id: crate::domain::ids::SessionId,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let Some(session) = self.store.get_session(id).await? else {
            return Ok(());
        };
        let ends_soon = session.end.is_none()
            && session.expires_at > now
            && session.expires_at - now <= EXPIRING_SOON;
        if !ends_soon {
            return Ok(());
        }
        let wanted = self
            .list_docs::<WebhookEndpoint>(session.org_id)
            .await?
            .iter()
            .any(|e| e.wants(WebhookEvent::SessionExpiringSoon));
        if !wanted {
            return Ok(());
        }
        let notice = format!(
            "webhook-expiring/{}/{}",
            session.id,
            session.expires_at.timestamp()
        );
        if !self
            .store
            .claim_run(&notice, now, chrono::Duration::days(1))
            .await?
        {
            return Ok(());
        }
        let minutes = ((session.expires_at - now).num_seconds() + 59) / 60;
        self.notify_session(
            &session,
            WebhookEvent::SessionExpiringSoon,
            format!("The session ends in {minutes} min; extend it now to keep access"),
        )
        .await;
        Ok(())
    }

    /// Sends again the messages of pending deliveries well past their time, at most every
    /// five minutes across all sweepers. Reads only organizations that have endpoints.
    /// Returns how many were sent.
    pub async fn resend_lost_deliveries(&self) -> Result<usize, StoreError> {
        let now = self.now();
        if !self
            .store
            .claim_run("webhook-resend", now, RESEND_EVERY)
            .await?
        {
            return Ok(0);
        }
        let mut tasks = vec![];
        for org in self.store.list_orgs().await? {
            if self.list_docs::<WebhookEndpoint>(org.id).await?.is_empty() {
                continue;
            }
            for d in self.list_docs::<WebhookDelivery>(org.id).await? {
                if d.status == DeliveryStatus::Pending && d.next_attempt_at + LOST_AFTER < now {
                    tasks.push(Task::DeliverWebhook {
                        org_id: d.org_id,
                        delivery_id: d.id,
                    });
                }
            }
        }
        let count = tasks.len();
        if count > 0 {
            tracing::warn!(
                count,
                "resending webhook deliveries whose messages were lost"
            );
            self.queue
                .enqueue(tasks)
                .await
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        }
        Ok(count)
    }
}
