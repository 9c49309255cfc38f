//! What can go wrong, and the exit code each failure gives.

use crate::types::{ErrorDetail, Session, SessionExt};

/// The documented exit codes (README, "Command line").
pub mod exit {
    pub const OK: u8 = 0;
    pub const ERROR: u8 = 1;
    /// clap's own code for a bad command line.
    pub const USAGE: u8 = 2;
    pub const PARTIAL: u8 = 3;
    pub const FAILED: u8 = 4;
    pub const UNAUTHENTICATED: u8 = 5;
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("not signed in{}: run `entryguard login --api URL`", profile_suffix(.0))]
    NotSignedIn(String),
    #[error("the token{} was refused (expired or revoked): run `entryguard login` again ({message})", profile_suffix(.profile))]
    TokenRefused { profile: String, message: String },
    #[error("{} ({})", .0.message, .0.code)]
    Api(ErrorDetail),
    #[error("cannot reach {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("unexpected answer from {url}: {reason}")]
    BadAnswer { url: String, reason: String },
    #[error("{0}")]
    Local(String),
    #[error("session {id} is PARTIAL: {}", failures(.session))]
    Partial { id: String, session: Box<Session> },
    #[error("session {id} FAILED: {}", failures(.session))]
    Failed { id: String, session: Box<Session> },
}

fn profile_suffix(profile: &str) -> String {
    if profile == crate::config::DEFAULT_PROFILE {
        String::new()
    } else {
        format!(" (profile {profile})")
    }
}

fn failures(session: &Session) -> String {
    let list: Vec<String> = session
        .failures()
        .map(|e| {
            format!(
                "{} ({}): {}",
                e.resource_name,
                e.ip,
                e.error.as_deref().unwrap_or("no reason given")
            )
        })
        .collect();
    if list.is_empty() {
        "no resource could be opened".into()
    } else {
        list.join("; ")
    }
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::NotSignedIn(_) | Self::TokenRefused { .. } => exit::UNAUTHENTICATED,
            Self::Partial { .. } => exit::PARTIAL,
            Self::Failed { .. } => exit::FAILED,
            _ => exit::ERROR,
        }
    }

    /// The machine-readable code `--json` prints.
    pub fn code(&self) -> String {
        match self {
            Self::NotSignedIn(_) => "NOT_SIGNED_IN".into(),
            Self::TokenRefused { .. } => "UNAUTHENTICATED".into(),
            Self::Api(detail) => detail.code.clone(),
            Self::Unreachable { .. } => "UNREACHABLE".into(),
            Self::BadAnswer { .. } => "BAD_ANSWER".into(),
            Self::Local(_) => "LOCAL_ERROR".into(),
            Self::Partial { .. } => "SESSION_PARTIAL".into(),
            Self::Failed { .. } => "SESSION_FAILED".into(),
        }
    }

    /// `{"error": {"code", "message", "session"?}}`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut error = serde_json::json!({"code": self.code(), "message": self.to_string()});
        if let Self::Partial { session, .. } | Self::Failed { session, .. } = self {
            error["session"] = serde_json::to_value(session).expect("a session serializes");
        }
        serde_json::json!({ "error": error })
    }
}
