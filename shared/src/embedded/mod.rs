//! Embedded adapters: everything EntryGuard needs to run in one process without AWS.

pub mod clock;
pub mod firewall;
pub mod ids;
pub mod kv;
pub mod queue;
pub mod store;

pub use clock::{ManualClock, OffsetClock, SystemClock, TokioTimer};
pub use firewall::{CallCounts, Fault, SimCloud, SimulatedFirewall};
pub use ids::{RandomIds, SeededIds};
pub use kv::Kv;
pub use queue::EmbeddedQueue;
pub use store::EmbeddedStore;
