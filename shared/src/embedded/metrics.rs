//! The local runner's metrics: the same figures the Lambdas write for CloudWatch, summed in
//! memory since the process started (`GET /api/dev/metrics`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::ports::metrics::{Metric, Metrics};

/// One figure since the start: how many values were recorded and their sum, least and most.
/// For a count, `sum` is the total.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub unit: &'static str,
    pub samples: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
}

#[derive(Debug, Clone, Default)]
pub struct InMemoryMetrics {
    figures: Arc<Mutex<BTreeMap<&'static str, Summary>>>,
}

impl InMemoryMetrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every figure recorded so far, by name.
    pub fn snapshot(&self) -> BTreeMap<&'static str, Summary> {
        self.figures.lock().expect("metrics lock").clone()
    }
}

impl Metrics for InMemoryMetrics {
    fn record(&self, metric: Metric) {
        let mut figures = self.figures.lock().expect("metrics lock");
        for f in metric.figures() {
            let s = figures.entry(f.name).or_insert(Summary {
                unit: f.unit.as_str(),
                samples: 0,
                sum: 0.0,
                min: f.value,
                max: f.value,
            });
            s.samples += 1;
            s.sum += f.value;
            s.min = s.min.min(f.value);
            s.max = s.max.max(f.value);
            debug_assert_eq!(s.unit, f.unit.as_str(), "{} changed its unit", f.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::metrics::names;
    use std::time::Duration;

    #[test]
    fn sums_counts_and_summarizes_times() {
        let m = InMemoryMetrics::new();
        m.record(Metric::SessionStarted);
        m.record(Metric::SessionStarted);
        m.record(Metric::SessionActive {
            after: Duration::from_millis(250),
        });
        m.record(Metric::SessionActive {
            after: Duration::from_millis(750),
        });
        m.record(Metric::RuleCall { throttled: true });
        m.record(Metric::RuleCall { throttled: false });
        let s = m.snapshot();
        assert_eq!(s[names::SESSIONS_STARTED].sum, 2.0);
        assert_eq!(s[names::SESSIONS_ACTIVE].sum, 2.0);
        let latency = s[names::START_TO_ACTIVE];
        assert_eq!(latency.unit, "Milliseconds");
        assert_eq!(
            (latency.samples, latency.sum, latency.min, latency.max),
            (2, 1000.0, 250.0, 750.0)
        );
        assert_eq!(s[names::RULE_CALLS].sum, 2.0);
        assert_eq!(s[names::THROTTLES].sum, 1.0);
        assert!(
            !s.contains_key(names::RETRIES),
            "nothing recorded, nothing shown"
        );
    }
}
