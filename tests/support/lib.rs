//! Shared helpers for EntryGuard's integration tests.

pub mod contract;
pub mod harness;
pub mod iam;
pub mod lambda_runtime;
pub mod logs;
pub mod moto;
pub mod oidc;
pub mod requests;
pub mod server;
pub mod sim;
pub mod template;
