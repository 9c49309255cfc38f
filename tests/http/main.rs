//! The HTTP surface against the real local runner (embedded backend), one test binary: every
//! file is a module, so the suite links the AWS SDK and axum once instead of once per file.
//! `cargo test -p entryguard-tests --test http http_sessions::` runs one of them.

mod http_address_proofs;
mod http_admin;
mod http_attacker;
mod http_bad_input;
mod http_errors;
mod http_hardening;
mod http_isolation;
mod http_oidc;
mod http_secrets;
mod http_sessions;
mod http_tokens;
