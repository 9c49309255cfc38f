//! Deterministic simulation testing: the real use cases, worker and sweeper against the
//! embedded adapters behind fault-injecting wrappers, a manual clock and a hand-driven
//! executor, all from one seed — so any failure replays exactly from its seed.

pub mod exec;
pub mod faulty;
pub mod world;

pub use world::{run, Options, Stats};
