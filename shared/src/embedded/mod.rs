//! Embedded adapters: what EntryGuard needs to run in one process without AWS (the redb store,
//! queue and directory, the key-file sealer, the simulated cloud) and the stand-ins tests use
//! (manual clock, seeded ids, in-memory metrics). Nothing deployed to AWS depends on this module.

pub mod clock;
pub mod directory;
pub mod firewall;
pub mod ids;
pub mod kv;
pub mod metrics;
pub mod queue;
pub mod sealer;
pub mod store;
pub mod verifier;
pub mod wiring;

pub use clock::{ManualClock, OffsetClock};
pub use directory::{Invitation, LocalDirectory};
pub use firewall::{CallCounts, Fault, SimCloud, SimulatedFirewall};
pub use ids::SeededIds;
pub use kv::Kv;
pub use metrics::InMemoryMetrics;
pub use queue::EmbeddedQueue;
pub use sealer::LocalKeySealer;
pub use store::EmbeddedStore;
pub use verifier::SimulatedVerifier;
pub use wiring::simulated_app;
