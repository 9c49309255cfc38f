//! EntryGuard's core: the domain (sessions, entries, rules, tiers), the ports it talks through
//! (store, queue, firewall, clock, ids), the use cases, the real clock and id source
//! (`runtime`), and the embedded adapters that let the whole product run in one process without
//! AWS.

pub mod adapters;
pub mod app;
pub mod audit_paging;
pub mod batching;
pub mod crypto;
pub mod domain;
pub mod embedded;
pub mod keys;
pub mod pacing;
pub mod ports;
pub mod runtime;
pub mod wire;

pub use chrono;
pub use ipnet;
pub use uuid;
