//! Adapters built from other adapters: they route a port's calls to the adapter for a
//! credential's provider, or count them, and know no cloud of their own. Every host wires its
//! firewall and verifier through them.

pub mod by_provider;
pub mod metered_firewall;

pub use by_provider::{CloudAdapters, FirewallByProvider, VerifierByProvider};
pub use metered_firewall::MeteredFirewall;
