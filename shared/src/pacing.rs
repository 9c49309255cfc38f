//! Client-side pacing of cloud calls: a token bucket per (account, region) and kind of call
//! keeps a worker under the cloud's request limit instead of finding it by errors, and the
//! throttling and timeouts that still happen are retried with exponential backoff and full
//! jitter — all within a fixed time budget, so a call never outlives the rule lease it runs
//! under. Time comes from a `Timer`, so simulations pace in simulated time.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::ports::firewall::FirewallError;
use crate::ports::Timer;

/// A bucket's shape: how many calls may go at once, and how fast it refills.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BucketSpec {
    pub burst: u32,
    pub per_second: f64,
}

impl BucketSpec {
    /// EC2's documented limit for mutating actions (AuthorizeSecurityGroupIngress,
    /// RevokeSecurityGroupIngress), per account and region.
    pub const EC2_MUTATING: Self = Self {
        burst: 50,
        per_second: 5.0,
    };
    /// EC2's documented limit for non-mutating actions (Describe*), per account and region.
    pub const EC2_DESCRIBE: Self = Self {
        burst: 100,
        per_second: 20.0,
    };

    /// This limit shared by `clients` processes that each keep their own bucket.
    pub fn shared_by(self, clients: u32) -> Self {
        let clients = clients.max(1);
        Self {
            burst: (self.burst / clients).max(1),
            per_second: self.per_second / f64::from(clients),
        }
    }
}

/// A token bucket on an external clock: `now` is the time since any fixed origin.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    spec: BucketSpec,
    tokens: f64,
    at: Duration,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(spec: BucketSpec, now: Duration) -> Self {
        Self {
            spec,
            tokens: f64::from(spec.burst),
            at: now,
        }
    }

    fn refill(&mut self, now: Duration) {
        if now > self.at {
            let gained = (now - self.at).as_secs_f64() * self.spec.per_second;
            self.tokens = (self.tokens + gained).min(f64::from(self.spec.burst));
            self.at = now;
        }
    }

    /// Tokens available at `now`.
    pub fn available(&mut self, now: Duration) -> f64 {
        self.refill(now);
        self.tokens
    }

    /// Takes a token, or says how long until one is there.
    pub fn try_take(&mut self, now: Duration) -> Result<(), Duration> {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Ok(());
        }
        if self.spec.per_second <= 0.0 {
            return Err(Duration::MAX);
        }
        let missing = 1.0 - self.tokens;
        // Rounded up to the microsecond, so waiting that long always suffices.
        let micros = (missing / self.spec.per_second * 1e6).ceil();
        Err(Duration::from_micros(micros as u64))
    }
}

/// Which of the cloud's limits a call counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallKind {
    Mutating,
    Describe,
}

/// How retries of throttled or timed-out calls are spaced: the n-th retry waits a uniformly
/// random time below `min(cap, base × 2ⁿ)` ("full jitter"), so throttled workers spread out
/// instead of retrying in step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// Tries in all, the first included.
    pub attempts: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl Backoff {
    /// `unit` is a uniform draw in `[0, 1)`.
    pub fn delay(&self, retry: u32, unit: f64) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32.checked_shl(retry).unwrap_or(u32::MAX))
            .min(self.cap);
        ceiling.mul_f64(unit.clamp(0.0, 1.0))
    }
}

/// Everything a pacer is configured with.
#[derive(Debug, Clone, Copy)]
pub struct PacerConfig {
    pub mutating: BucketSpec,
    pub describe: BucketSpec,
    pub backoff: Backoff,
    /// How long after its start a port operation (one or a few cloud calls) may still begin
    /// an attempt; with the attempt's own timeout this bounds the operation, which must end well
    /// within the rule lease it runs under.
    pub budget: Duration,
}

impl PacerConfig {
    /// EC2's limits, shared by `clients` concurrent processes.
    pub fn ec2(clients: u32) -> Self {
        Self {
            mutating: BucketSpec::EC2_MUTATING.shared_by(clients),
            describe: BucketSpec::EC2_DESCRIBE.shared_by(clients),
            backoff: Backoff {
                attempts: 4,
                base: Duration::from_millis(500),
                cap: Duration::from_secs(4),
            },
            // Plus one attempt's timeout (10 s) stays within the 30 s a rule change may take.
            budget: Duration::from_secs(15),
        }
    }
}

/// What a pacer did, for logs and the throttling benchmark.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PacerStats {
    pub calls: u64,
    /// Calls that had to wait for a token first.
    pub waited: u64,
    pub retries: u64,
    /// Calls given up because the budget ran out waiting for a token.
    pub gave_up: u64,
}

/// Paces the calls for each key (an account or credential, and a region).
pub struct Pacer<K> {
    timer: Arc<dyn Timer>,
    config: PacerConfig,
    buckets: Mutex<HashMap<(K, CallKind), TokenBucket>>,
    rng: Mutex<StdRng>,
    calls: AtomicU64,
    waited: AtomicU64,
    retries: AtomicU64,
    gave_up: AtomicU64,
}

fn retryable(e: &FirewallError) -> bool {
    e.is_transient()
}

impl<K: Eq + Hash + Clone> Pacer<K> {
    /// `seed` drives the jitter; `None` seeds it from the operating system.
    pub fn new(timer: Arc<dyn Timer>, config: PacerConfig, seed: Option<u64>) -> Self {
        let rng = match seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        Self {
            timer,
            config,
            buckets: Mutex::new(HashMap::new()),
            rng: Mutex::new(rng),
            calls: AtomicU64::new(0),
            waited: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            gave_up: AtomicU64::new(0),
        }
    }

    pub fn stats(&self) -> PacerStats {
        PacerStats {
            calls: self.calls.load(Ordering::Relaxed),
            waited: self.waited.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            gave_up: self.gave_up.load(Ordering::Relaxed),
        }
    }

    fn try_take(&self, key: &K, kind: CallKind) -> Result<(), Duration> {
        let now = self.timer.elapsed();
        let spec = match kind {
            CallKind::Mutating => self.config.mutating,
            CallKind::Describe => self.config.describe,
        };
        self.buckets
            .lock()
            .expect("pacer lock")
            .entry((key.clone(), kind))
            .or_insert_with(|| TokenBucket::new(spec, now))
            .try_take(now)
    }

    /// The deadline of an operation starting now: no attempt of it begins later.
    pub fn deadline(&self) -> Duration {
        self.timer.elapsed() + self.config.budget
    }

    fn left(&self, deadline: Duration) -> Duration {
        deadline.saturating_sub(self.timer.elapsed())
    }

    /// Waits for a token, unless that would take longer than the deadline allows.
    async fn take(&self, key: &K, kind: CallKind, deadline: Duration) -> Result<(), FirewallError> {
        let mut waited = false;
        loop {
            match self.try_take(key, kind) {
                Ok(()) => {
                    if waited {
                        self.waited.fetch_add(1, Ordering::Relaxed);
                    }
                    return Ok(());
                }
                Err(wait) if wait < self.left(deadline) => {
                    waited = true;
                    self.timer.sleep(wait).await;
                }
                Err(wait) => {
                    self.gave_up.fetch_add(1, Ordering::Relaxed);
                    return Err(FirewallError::Throttled(format!(
                        "EntryGuard's own rate limit for this account and region is exhausted (next call possible in {:.1} s)",
                        wait.as_secs_f64()
                    )));
                }
            }
        }
    }

    /// Runs `op` when the bucket allows, retrying throttling and timeouts with backoff; no
    /// attempt begins after `deadline` (from `Pacer::deadline`).
    pub async fn call<T, F, Fut>(
        &self,
        key: &K,
        kind: CallKind,
        deadline: Duration,
        mut op: F,
    ) -> Result<T, FirewallError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, FirewallError>>,
    {
        let mut retry = 0;
        loop {
            self.take(key, kind, deadline).await?;
            if self.timer.elapsed() > deadline {
                // Held up past the budget (a paused process): the rule lease this call runs
                // under may be someone else's by now.
                return Err(FirewallError::Unavailable(
                    "the call's time budget ran out before it could be made".into(),
                ));
            }
            self.calls.fetch_add(1, Ordering::Relaxed);
            match op().await {
                Err(e) if retryable(&e) && retry + 1 < self.config.backoff.attempts => {
                    let unit = self.rng.lock().expect("pacer rng lock").random::<f64>();
                    let delay = self.config.backoff.delay(retry, unit);
                    if delay >= self.left(deadline) {
                        return Err(e);
                    }
                    tracing::debug!(error = %e, retry, delay_ms = delay.as_millis() as u64, "retrying a cloud call");
                    self.retries.fetch_add(1, Ordering::Relaxed);
                    self.timer.sleep(delay).await;
                    retry += 1;
                }
                other => return other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedded::ManualClock;
    use crate::ports::Clock;
    use chrono::TimeZone;
    use std::sync::atomic::AtomicU32;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let mut b = TokenBucket::new(BucketSpec::EC2_MUTATING, secs(100.0));
        for _ in 0..50 {
            b.try_take(secs(100.0)).unwrap();
        }
        assert_eq!(b.try_take(secs(100.0)), Err(secs(0.2)));
        assert_eq!(b.try_take(secs(100.1)), Err(secs(0.1)));
        b.try_take(secs(100.2)).unwrap();
        // Ten seconds refill fifty tokens and no more.
        assert!((b.available(secs(110.2)) - 50.0).abs() < 1e-9);
        assert!((b.available(secs(1000.0)) - 50.0).abs() < 1e-9);
        // Time going backwards (another thread's reading) takes nothing away.
        assert!((b.available(secs(50.0)) - 50.0).abs() < 1e-9);
    }

    #[test]
    fn over_a_minute_a_bucket_allows_burst_plus_rate() {
        let mut b = TokenBucket::new(BucketSpec::EC2_MUTATING, Duration::ZERO);
        let mut granted = 0;
        let mut t = Duration::ZERO;
        while t <= secs(60.0) {
            while b.try_take(t).is_ok() {
                granted += 1;
            }
            t += Duration::from_millis(10);
        }
        assert_eq!(granted, 50 + 300);
    }

    #[test]
    fn shared_limits_split_the_burst_and_the_rate() {
        let half = BucketSpec::EC2_MUTATING.shared_by(2);
        assert_eq!(half.burst, 25);
        assert!((half.per_second - 2.5).abs() < 1e-9);
        assert_eq!(
            BucketSpec::EC2_MUTATING.shared_by(0),
            BucketSpec::EC2_MUTATING
        );
    }

    #[test]
    fn backoff_is_exponential_capped_and_jittered() {
        let b = Backoff {
            attempts: 4,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(4),
        };
        assert_eq!(
            b.delay(0, 0.999_999),
            Duration::from_millis(500).mul_f64(0.999_999)
        );
        assert_eq!(b.delay(2, 0.5), Duration::from_secs(1));
        assert_eq!(b.delay(3, 1.0), Duration::from_secs(4));
        assert_eq!(b.delay(10, 1.0), Duration::from_secs(4));
        assert_eq!(b.delay(40, 1.0), Duration::from_secs(4));
        assert_eq!(b.delay(1, 0.0), Duration::ZERO);
    }

    fn run<T>(clock: &ManualClock, fut: impl Future<Output = T>) -> T {
        // Drives `fut`, moving the manual clock to the next sleep's end whenever it waits.
        let waker = futures::task::noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        let mut fut = std::pin::pin!(fut);
        loop {
            if let std::task::Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
                return out;
            }
            let at = clock.next_wake().expect("waiting on nothing");
            clock.set(at);
        }
    }

    fn config() -> PacerConfig {
        PacerConfig {
            mutating: BucketSpec {
                burst: 2,
                per_second: 1.0,
            },
            describe: BucketSpec {
                burst: 1,
                per_second: 1.0,
            },
            backoff: Backoff {
                attempts: 3,
                base: Duration::from_secs(1),
                cap: Duration::from_secs(4),
            },
            budget: Duration::from_secs(10),
        }
    }

    #[test]
    fn calls_wait_for_tokens_per_key_and_kind() {
        let clock = Arc::new(ManualClock::new(chrono::Utc.timestamp_opt(0, 0).unwrap()));
        let pacer: Pacer<&str> = Pacer::new(clock.clone(), config(), Some(1));
        let start = clock.now();
        for _ in 0..4 {
            run(
                &clock,
                pacer.call(&"a", CallKind::Mutating, pacer.deadline(), || async {
                    Ok(())
                }),
            )
            .unwrap();
        }
        // Two at once, then one a second.
        assert_eq!(clock.now() - start, chrono::Duration::seconds(2));
        // Another key and another kind have buckets of their own.
        run(
            &clock,
            pacer.call(&"b", CallKind::Mutating, pacer.deadline(), || async {
                Ok(())
            }),
        )
        .unwrap();
        run(
            &clock,
            pacer.call(&"a", CallKind::Describe, pacer.deadline(), || async {
                Ok(())
            }),
        )
        .unwrap();
        assert_eq!(clock.now() - start, chrono::Duration::seconds(2));
        assert_eq!(pacer.stats().calls, 6);
        assert_eq!(pacer.stats().waited, 2);
    }

    #[test]
    fn throttling_is_retried_with_backoff_until_it_clears() {
        let clock = Arc::new(ManualClock::new(chrono::Utc.timestamp_opt(0, 0).unwrap()));
        let pacer: Pacer<&str> = Pacer::new(clock.clone(), config(), Some(7));
        let tries = AtomicU32::new(0);
        let out = run(
            &clock,
            pacer.call(&"a", CallKind::Mutating, pacer.deadline(), || {
                let n = tries.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n < 2 {
                        Err(FirewallError::Throttled("RequestLimitExceeded".into()))
                    } else {
                        Ok(n)
                    }
                }
            }),
        );
        assert_eq!(out, Ok(2));
        assert_eq!(pacer.stats().retries, 2);
        // Permanent errors are not retried.
        let denied = run(
            &clock,
            pacer.call(&"a", CallKind::Mutating, pacer.deadline(), || async {
                Err::<(), _>(FirewallError::PermissionDenied("no".into()))
            }),
        );
        assert!(matches!(denied, Err(FirewallError::PermissionDenied(_))));
        assert_eq!(pacer.stats().retries, 2);
    }

    #[test]
    fn retries_stop_at_the_attempt_limit_and_waits_at_the_budget() {
        let clock = Arc::new(ManualClock::new(chrono::Utc.timestamp_opt(0, 0).unwrap()));
        let pacer: Pacer<&str> = Pacer::new(clock.clone(), config(), Some(3));
        let tries = AtomicU32::new(0);
        let out = run(
            &clock,
            pacer.call(&"a", CallKind::Mutating, pacer.deadline(), || {
                tries.fetch_add(1, Ordering::SeqCst);
                async { Err::<(), _>(FirewallError::Unavailable("timeout".into())) }
            }),
        );
        assert!(matches!(out, Err(FirewallError::Unavailable(_))));
        assert_eq!(tries.load(Ordering::SeqCst), 3);

        let slow = PacerConfig {
            mutating: BucketSpec {
                burst: 1,
                per_second: 0.01,
            },
            ..config()
        };
        let pacer: Pacer<&str> = Pacer::new(clock.clone(), slow, Some(3));
        run(
            &clock,
            pacer.call(&"a", CallKind::Mutating, pacer.deadline(), || async {
                Ok(())
            }),
        )
        .unwrap();
        let start = clock.now();
        let out = run(
            &clock,
            pacer.call(&"a", CallKind::Mutating, pacer.deadline(), || async {
                Ok(())
            }),
        );
        assert!(
            matches!(out, Err(FirewallError::Throttled(m)) if m.contains("EntryGuard's own rate limit"))
        );
        assert_eq!(
            clock.now(),
            start,
            "a wait longer than the budget is not even begun"
        );
        assert_eq!(pacer.stats().gave_up, 1);
    }
}
