use std::time::Duration;

use futures::future::BoxFuture;

/// Monotonic time and waiting, for adapters that pace their calls (rate limits, backoff). The
/// manual clock implements it too, so in a simulation those waits take simulated time.
pub trait Timer: Send + Sync {
    /// Time since a fixed origin; never goes backwards.
    fn elapsed(&self) -> Duration;
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;
}
