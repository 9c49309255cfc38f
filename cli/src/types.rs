//! The API's JSON shapes as the command line reads them.
//!
//! The enums come from the domain crate the API serializes them from; the structs mirror
//! functions/api/src/dto.rs field for field. tests/drift.rs round-trips real answers of the
//! local runner through these types and fails when a field is missing, renamed or retyped, so
//! this copy cannot drift from the API unnoticed.

use serde::{Deserialize, Serialize};

pub use entryguard::domain::model::OrgStatus;
pub use entryguard::domain::net::IpVersion;
pub use entryguard::domain::session::{EntryStatus, SessionStatus};
pub use entryguard::domain::tier::Tier;
pub use entryguard::domain::Timestamp;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserSummary {
    pub id: String,
    pub email: String,
    pub is_admin: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Organization {
    pub id: String,
    pub name: String,
    pub tier: Tier,
    pub status: OrgStatus,
}

/// `GET /api/me`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Me {
    pub user: UserSummary,
    pub organization: Organization,
    pub allowed_durations_hours: Vec<u8>,
    pub max_session_duration_hours: u8,
    pub max_concurrent_sessions: Option<u32>,
    pub resource_count: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IpAddress {
    pub address: String,
    pub version: IpVersion,
}

/// One resource × address of a session.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionResource {
    pub resource_id: String,
    pub resource_name: String,
    pub ip: String,
    pub status: EntryStatus,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoppedBy {
    pub user_id: String,
    pub email: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    pub id: String,
    pub user_id: String,
    pub status: SessionStatus,
    pub ip_addresses: Vec<IpAddress>,
    pub resource_count: usize,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub ended_at: Option<Timestamp>,
    pub resources: Vec<SessionResource>,
    pub stopped_by: Option<StoppedBy>,
}

impl Session {
    /// Still holding (or about to hold) rules: it can be stopped.
    pub fn is_live(&self) -> bool {
        matches!(
            self.status,
            SessionStatus::Pending | SessionStatus::Active | SessionStatus::Partial
        )
    }

    /// The entries that failed, for a person.
    pub fn failures(&self) -> impl Iterator<Item = &SessionResource> {
        self.resources
            .iter()
            .filter(|e| e.status == EntryStatus::Failed)
    }
}

/// Every error answer: `{"error": {...}}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub fields: std::collections::BTreeMap<String, String>,
}

/// A status as the API spells it (`ACTIVE`, `APPLIED`): what people see in the web app too.
pub fn wire<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        other => format!("{other:?}"),
    }
}
