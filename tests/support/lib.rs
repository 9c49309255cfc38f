//! Shared helpers for EntryGuard's integration tests.

pub mod harness;
