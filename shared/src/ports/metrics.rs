//! Operational figures: what the operators watch (sessions started and how they turned out,
//! cloud calls and throttling, retries, dead letters, sweeps, expiry lag). The use cases report
//! them at their boundaries; an adapter turns them into CloudWatch's embedded metric format in
//! the Lambdas, or keeps them in memory in the local runner.

use std::time::Duration;

/// The unit a figure is measured in (CloudWatch's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Unit {
    Count,
    Milliseconds,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

/// The figures' names, as the dashboard and the alarms in infra/template.yaml spell them.
pub mod names {
    pub const SESSIONS_STARTED: &str = "SessionsStarted";
    pub const SESSIONS_ACTIVE: &str = "SessionsActive";
    pub const SESSIONS_PARTIAL: &str = "SessionsPartial";
    pub const SESSIONS_FAILED: &str = "SessionsFailed";
    pub const START_TO_ACTIVE: &str = "StartToActive";
    pub const RULE_CALLS: &str = "RuleCalls";
    pub const THROTTLES: &str = "Throttles";
    pub const RETRIES: &str = "Retries";
    pub const DEAD_LETTERS: &str = "DeadLetters";
    pub const SWEEP_DURATION: &str = "SweepDuration";
    pub const EXPIRY_LAG: &str = "ExpiryLag";
}

/// Something worth counting or timing, reported where it happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// A session was recorded and its work queued.
    SessionStarted,
    /// A pending session's entries were all applied, `after` its start.
    SessionActive { after: Duration },
    /// A pending session ended its applying with some entries failed.
    SessionPartial,
    /// A pending session ended its applying with every entry failed.
    SessionFailed,
    /// One call to the cloud firewall (a rule change or a listing) and whether the cloud was
    /// still throttling it after the adapter's own backoff.
    RuleCall { throttled: bool },
    /// A task went back to the queue to be tried again later.
    Retry,
    /// Tasks seen in the dead-letter queue for the first time.
    DeadLetters(u64),
    /// One sweep's wall time.
    Sweep { took: Duration },
    /// How late a session was expired: from its expiry to the write that expired it.
    ExpiryLag(Duration),
}

/// One named value of a metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Figure {
    pub name: &'static str,
    pub unit: Unit,
    pub value: f64,
}

fn count(name: &'static str, value: u64) -> Figure {
    Figure {
        name,
        unit: Unit::Count,
        value: value as f64,
    }
}

fn millis(name: &'static str, d: Duration) -> Figure {
    Figure {
        name,
        unit: Unit::Milliseconds,
        // Microsecond resolution, in milliseconds.
        value: d.as_micros() as f64 / 1000.0,
    }
}

impl Metric {
    /// The figures this metric adds to: a count, a time, or both.
    pub fn figures(&self) -> Vec<Figure> {
        use names::*;
        match *self {
            Metric::SessionStarted => vec![count(SESSIONS_STARTED, 1)],
            Metric::SessionActive { after } => {
                vec![count(SESSIONS_ACTIVE, 1), millis(START_TO_ACTIVE, after)]
            }
            Metric::SessionPartial => vec![count(SESSIONS_PARTIAL, 1)],
            Metric::SessionFailed => vec![count(SESSIONS_FAILED, 1)],
            Metric::RuleCall { throttled } => {
                vec![count(RULE_CALLS, 1), count(THROTTLES, u64::from(throttled))]
            }
            Metric::Retry => vec![count(RETRIES, 1)],
            Metric::DeadLetters(n) => vec![count(DEAD_LETTERS, n)],
            Metric::Sweep { took } => vec![millis(SWEEP_DURATION, took)],
            Metric::ExpiryLag(lag) => vec![millis(EXPIRY_LAG, lag)],
        }
    }
}

/// Where metrics go. Recording never fails and never waits on I/O the caller would notice.
pub trait Metrics: Send + Sync {
    fn record(&self, metric: Metric);
}

/// Records nothing: for hosts and tests that do not watch figures.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoMetrics;

impl Metrics for NoMetrics {
    fn record(&self, _: Metric) {}
}
