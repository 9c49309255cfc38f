//! Shared helpers for EntryGuard's integration tests.

pub mod harness;
pub mod moto;
pub mod server;
pub mod sim;
