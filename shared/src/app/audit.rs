//! Writing audit events. A failed audit write never undoes the change it describes (the change
//! already happened in the cloud); events of rule changes are retried with their step instead.

use crate::domain::audit::{AuditEvent, AuditType, Outcome};
use crate::domain::ids::{AuditId, OrgId, ResourceId, SessionId};
use crate::domain::webhook::{EventFacts, WebhookEvent};

use super::{App, Identity};

/// The facts of one audit event; `App::audit` adds id and time.
#[derive(Debug, Clone)]
pub struct Audit {
    pub org_id: OrgId,
    pub kind: AuditType,
    pub actor: Option<(crate::domain::ids::UserId, String)>,
    pub ip: Option<String>,
    pub session_id: Option<SessionId>,
    pub resource_id: Option<ResourceId>,
    pub outcome: Outcome,
    pub message: String,
    /// The webhook event it also is, when its type alone does not say (drift corrections are
    /// `rule.applied` / `rule.removed` events).
    pub webhook: Option<WebhookEvent>,
}

impl Audit {
    pub fn by(who: &Identity, kind: AuditType, message: impl Into<String>) -> Self {
        Self {
            org_id: who.org.id,
            kind,
            actor: Some((who.user.id, who.user.email.to_string())),
            ip: who.ip.map(|ip| ip.to_string()),
            session_id: None,
            resource_id: None,
            outcome: Outcome::Success,
            message: message.into(),
            webhook: None,
        }
    }

    pub fn system(org_id: OrgId, kind: AuditType, message: impl Into<String>) -> Self {
        Self {
            org_id,
            kind,
            actor: None,
            ip: None,
            session_id: None,
            resource_id: None,
            outcome: Outcome::Success,
            message: message.into(),
            webhook: None,
        }
    }

    pub fn session(mut self, id: SessionId) -> Self {
        self.session_id = Some(id);
        self
    }

    pub fn resource(mut self, id: ResourceId) -> Self {
        self.resource_id = Some(id);
        self
    }

    /// Also a webhook event of this type.
    pub fn webhook(mut self, event: WebhookEvent) -> Self {
        self.webhook = Some(event);
        self
    }

    pub fn failed(mut self) -> Self {
        self.outcome = Outcome::Failure;
        self
    }
}

impl App {
    /// Writes an event; a failure is logged and otherwise ignored. For events that describe a
    /// change the user already has the outcome of (a start, a stop, an edit).
    pub async fn audit(&self, audit: Audit) {
        let kind = audit.kind;
        let org = audit.org_id;
        if let Err(error) = self.record(audit).await {
            tracing::error!(%error, kind = kind.as_str(), %org, "audit event could not be written");
        }
    }

    /// Writes an event and reports a failure, so a handler can retry the step it belongs to:
    /// for rule changes, whose events must not be lost.
    pub async fn record(&self, audit: Audit) -> Result<(), crate::ports::store::StoreError> {
        let (event, notice) = self.audit_event(audit);
        self.store.append_audit(&event).await?;
        self.send_notice(notice).await;
        Ok(())
    }

    /// The event `audit` describes, and the notice to send once it is written (for writes
    /// that go into a larger transaction: the group batch's commit).
    pub(crate) fn audit_event(&self, audit: Audit) -> (AuditEvent, Option<Notice>) {
        let webhook = audit.webhook.or(match audit.kind {
            AuditType::SessionStarted => Some(WebhookEvent::SessionStarted),
            AuditType::RuleFailed => Some(WebhookEvent::RuleFailed),
            AuditType::SystemAlert => Some(WebhookEvent::SystemAlert),
            _ => None,
        });
        let notice = webhook.map(|webhook| Notice {
            org: audit.org_id,
            webhook,
            facts: EventFacts {
                message: audit.message.clone(),
                session_id: audit.session_id,
                user_email: audit.actor.as_ref().map(|(_, email)| email.clone()),
                expires_at: None,
            },
        });
        let event = AuditEvent {
            id: AuditId::from_uuid(self.ids.uuid()),
            org_id: audit.org_id,
            time: self.now(),
            kind: audit.kind,
            actor_id: audit.actor.as_ref().map(|(id, _)| *id),
            actor_email: audit.actor.map(|(_, email)| email),
            ip: audit.ip,
            session_id: audit.session_id,
            resource_id: audit.resource_id,
            outcome: audit.outcome,
            message: audit.message,
        };
        (event, notice)
    }

    pub(crate) async fn send_notice(&self, notice: Option<Notice>) {
        if let Some(n) = notice {
            self.notify(n.org, n.webhook, n.facts).await;
        }
    }
}

/// A webhook notice an audit event also is, sent after the event is written.
pub(crate) struct Notice {
    org: OrgId,
    webhook: WebhookEvent,
    facts: EventFacts,
}
