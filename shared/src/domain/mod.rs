//! Pure domain types: nothing here performs I/O or reads the clock.

pub mod address_proof;
pub mod audit;
pub mod credential;
pub mod iam;
pub mod ids;
pub mod model;
pub mod net;
pub mod rate;
pub mod rule;
#[cfg(feature = "openapi")]
pub mod schema;
pub mod session;
pub mod tier;
pub mod webhook;

pub type Timestamp = chrono::DateTime<chrono::Utc>;
