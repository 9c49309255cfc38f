//! The API's JSON shapes as the command line reads them: the API's own types.
//!
//! Only the error envelope is declared here (the API's carries its `ErrorCode` enum, which
//! lives with the HTTP mapping); the CLI reads its code as a string, so a code the API adds
//! later still reaches the user. tests/cli.rs round-trips real answers of the local runner
//! through these types.

use serde::{Deserialize, Serialize};

pub use entryguard::domain::session::{EntryStatus, SessionStatus};
pub use entryguard::domain::Timestamp;

/// The answers' types are the API's own (crate `entryguard-shared`, module `wire`): one
/// definition of the contract for both.
pub use entryguard::wire::{
    EntryDto as SessionResource, IpDto as IpAddress, MeDto as Me, OrganizationDto as Organization,
    SessionDto as Session, StoppedByDto as StoppedBy, UserSummary,
};

/// What the command line asks of a session.
pub trait SessionExt {
    /// Still holding (or about to hold) rules: it can be stopped.
    fn is_live(&self) -> bool;
    /// The entries that failed, for a person.
    fn failures(&self) -> impl Iterator<Item = &SessionResource>;
}

impl SessionExt for Session {
    fn is_live(&self) -> bool {
        matches!(
            self.status,
            SessionStatus::Pending | SessionStatus::Active | SessionStatus::Partial
        )
    }

    fn failures(&self) -> impl Iterator<Item = &SessionResource> {
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
