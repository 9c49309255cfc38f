//! The one place an `App` is put together on the simulated cloud for tests and benchmarks, so a
//! new port is wired once here rather than in every harness.

use std::sync::Arc;

use crate::adapters::{CloudAdapters, FirewallByProvider, VerifierByProvider};
use crate::app::notifications::Notifier;
use crate::app::App;
use crate::ports::{Clock, IdSource, NoMetrics, Store, TaskQueue};
use crate::runtime::TokioTimer;

use super::{Kv, LocalDirectory, LocalKeySealer, SimCloud, SimulatedFirewall, SimulatedVerifier};

/// An `App` whose cloud is `sim` (changed through `firewall`, which may be paced or slowed), with
/// a throwaway sealing key and directory, no webhook sender and no metrics.
pub fn simulated_app(
    store: Arc<dyn Store>,
    queue: Arc<dyn TaskQueue>,
    firewall: SimulatedFirewall,
    sim: &SimCloud,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdSource>,
) -> App {
    App {
        store,
        queue,
        firewall: Arc::new(FirewallByProvider {
            simulated: Some(Arc::new(firewall)),
            aws: None,
        }),
        clock,
        // Real time; a simulation that drives its own clock passes that clock as the timer.
        timer: Arc::new(TokioTimer::default()),
        ids,
        sealer: Arc::new(LocalKeySealer::ephemeral()),
        verifier: Arc::new(VerifierByProvider {
            simulated: Some(Arc::new(SimulatedVerifier::new(sim.clone()))),
            aws: None,
        }),
        directory: Arc::new(LocalDirectory::new(Kv::in_memory())),
        metrics: Arc::new(NoMetrics),
        notifier: Notifier::disabled(),
    }
}

impl SimCloud {
    /// The simulated provider's firewall and verifier, for a host that routes by provider (the
    /// local runner on AWS keeps its simulated credentials working this way).
    pub fn adapters(&self) -> CloudAdapters {
        CloudAdapters {
            firewall: Arc::new(SimulatedFirewall::new(self.clone())),
            verifier: Arc::new(SimulatedVerifier::new(self.clone())),
        }
    }
}
