//! The use cases, sweeps, store contract, webhooks and restarts, mostly on the embedded
//! backend (the DynamoDB store on moto), one test binary: every file is a module, so the suite
//! links the AWS SDK and axum once instead of once per file. `cargo test -p entryguard-tests
//! --test app sessions::` runs one of them.

mod property;
mod restart;
mod sessions;
mod store;
mod sweeps;
mod webhooks;
