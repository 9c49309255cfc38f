//! The API crate's integration tests, one binary (each file would link the whole tree again):
//! `cargo test -p entryguard-api --test api openapi::` runs the OpenAPI document's tests.

mod lambda_events;
mod openapi;
