//! Audit events: what happened, to what, by whom, from where, with what outcome.

use serde::{Deserialize, Serialize};

use super::ids::{AuditId, OrgId, ResourceId, SessionId, UserId};
use super::Timestamp;

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AuditType {
    #[serde(rename = "session.started")]
    SessionStarted,
    #[serde(rename = "session.stopped")]
    SessionStopped,
    #[serde(rename = "session.extended")]
    SessionExtended,
    #[serde(rename = "session.expired")]
    SessionExpired,
    #[serde(rename = "session.redriven")]
    SessionRedriven,
    #[serde(rename = "rule.applied")]
    RuleApplied,
    #[serde(rename = "rule.failed")]
    RuleFailed,
    #[serde(rename = "rule.removed")]
    RuleRemoved,
    #[serde(rename = "admin.change")]
    AdminChange,
    #[serde(rename = "auth.login")]
    Login,
    /// A personal API token was created or revoked.
    #[serde(rename = "auth.token")]
    Token,
    /// Something an administrator must look at: tasks in the dead-letter queue, a security
    /// group deleted in the cloud.
    #[serde(rename = "system.alert")]
    SystemAlert,
}

impl AuditType {
    pub const ALL: [AuditType; 12] = [
        Self::SessionStarted,
        Self::SessionStopped,
        Self::SessionExtended,
        Self::SessionExpired,
        Self::SessionRedriven,
        Self::RuleApplied,
        Self::RuleFailed,
        Self::RuleRemoved,
        Self::AdminChange,
        Self::Login,
        Self::Token,
        Self::SystemAlert,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::SessionStarted => "session.started",
            Self::SessionStopped => "session.stopped",
            Self::SessionExtended => "session.extended",
            Self::SessionExpired => "session.expired",
            Self::SessionRedriven => "session.redriven",
            Self::RuleApplied => "rule.applied",
            Self::RuleFailed => "rule.failed",
            Self::RuleRemoved => "rule.removed",
            Self::AdminChange => "admin.change",
            Self::Login => "auth.login",
            Self::Token => "auth.token",
            Self::SystemAlert => "system.alert",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Outcome {
    Success,
    Failure,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    pub id: AuditId,
    pub org_id: OrgId,
    pub time: chrono::DateTime<chrono::Utc>,
    #[serde(rename = "type")]
    pub kind: AuditType,
    /// The user who acted, or `None` for EntryGuard itself (worker, sweeper).
    pub actor_id: Option<UserId>,
    pub actor_email: Option<String>,
    pub ip: Option<String>,
    pub session_id: Option<SessionId>,
    pub resource_id: Option<ResourceId>,
    pub outcome: Outcome,
    pub message: String,
}

/// Filters for listing audit events, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub kind: Option<AuditType>,
    pub user_id: Option<UserId>,
    /// Opaque position returned by the previous page.
    pub cursor: Option<String>,
    pub limit: usize,
}

impl AuditQuery {
    pub fn matches(&self, e: &AuditEvent) -> bool {
        self.from.is_none_or(|f| e.time >= f)
            && self.to.is_none_or(|t| e.time <= t)
            && self.kind.is_none_or(|k| e.kind == k)
            && self.user_id.is_none_or(|u| e.actor_id == Some(u))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditPage {
    pub items: Vec<AuditEvent>,
    pub next_cursor: Option<String>,
}
