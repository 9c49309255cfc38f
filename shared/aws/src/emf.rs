//! Metrics for CloudWatch without a single API call: each metric is one JSON line in CloudWatch's
//! embedded metric format on stdout, which Lambda sends to CloudWatch Logs, where CloudWatch
//! extracts the figures.
//!
//! Written by hand rather than with the `metrics` facade and `metrics_cloudwatch_embedded`: that
//! crate aggregates in a process-global recorder that must be flushed around every invocation
//! (a wrapper around each of the three handlers), while EntryGuard records a handful of figures
//! per session; a line per metric, written when it happens, needs no flush and cannot be lost
//! when Lambda freezes the process after the response.

use std::io::Write;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use entryguard::ports::metrics::{Metric, Metrics};

/// The namespace when the environment names none (`METRICS_NAMESPACE`).
pub const DEFAULT_NAMESPACE: &str = "EntryGuard";
/// The dimension that tells the functions apart; every figure is also published without it, so
/// the dashboard and the alarms read one series per figure whichever function recorded it.
pub const FUNCTION_DIMENSION: &str = "Function";

pub struct EmfMetrics {
    namespace: String,
    function: String,
    out: Mutex<Box<dyn Write + Send>>,
}

impl EmfMetrics {
    /// To stdout, where Lambda collects a function's logs.
    pub fn stdout(namespace: impl Into<String>, function: impl Into<String>) -> Self {
        Self::to_writer(namespace, function, Box::new(std::io::stdout()))
    }

    /// With the namespace from `METRICS_NAMESPACE` (the stack sets it), else the default.
    pub fn stdout_from_env(function: impl Into<String>) -> Self {
        let namespace = std::env::var(crate::env_names::METRICS_NAMESPACE)
            .ok()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned());
        Self::stdout(namespace, function)
    }

    pub fn to_writer(
        namespace: impl Into<String>,
        function: impl Into<String>,
        out: Box<dyn Write + Send>,
    ) -> Self {
        Self {
            namespace: namespace.into(),
            function: function.into(),
            out: Mutex::new(out),
        }
    }

    /// The EMF document for `metric` at `timestamp_ms` (milliseconds since the epoch).
    pub fn document(&self, metric: &Metric, timestamp_ms: u64) -> Value {
        let figures = metric.figures();
        let mut root = Map::new();
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": [[FUNCTION_DIMENSION], []],
                    "Metrics": figures
                        .iter()
                        .map(|f| json!({"Name": f.name, "Unit": f.unit.as_str()}))
                        .collect::<Vec<_>>(),
                }],
            }),
        );
        root.insert(FUNCTION_DIMENSION.into(), json!(self.function));
        for f in &figures {
            root.insert(f.name.into(), json!(f.value));
        }
        Value::Object(root)
    }
}

impl Metrics for EmfMetrics {
    fn record(&self, metric: Metric) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64;
        let mut line = self.document(&metric, now).to_string();
        line.push('\n');
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        // One write of the whole line, so it is not interleaved with the log lines beside it.
        if let Err(error) = out.write_all(line.as_bytes()).and_then(|()| out.flush()) {
            tracing::warn!(%error, "could not write a metric");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use entryguard::ports::metrics::names;
    use std::sync::Arc;
    use std::time::Duration;

    /// A writer whose lines the test reads back.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn recorded(metrics: &[Metric]) -> Vec<Value> {
        let lines = Lines::default();
        let emf = EmfMetrics::to_writer("EntryGuard/test", "rule-worker", Box::new(lines.clone()));
        for m in metrics {
            emf.record(*m);
        }
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).expect("each line is one JSON document"))
            .collect()
    }

    /// The figures a document declares, with their units and values, checked against the
    /// specification's rules: each declared metric has a member of its name at the top level,
    /// and so does each dimension.
    fn declared(doc: &Value) -> Vec<(String, String, f64)> {
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "EntryGuard/test");
        assert_eq!(directive["Dimensions"], json!([["Function"], []]));
        assert_eq!(doc["Function"], "rule-worker");
        assert!(doc["_aws"]["Timestamp"].as_u64().unwrap() > 1_600_000_000_000);
        directive["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                let name = m["Name"].as_str().unwrap().to_owned();
                let value = doc[&name]
                    .as_f64()
                    .expect("a value for each declared metric");
                (name, m["Unit"].as_str().unwrap().to_owned(), value)
            })
            .collect()
    }

    #[test]
    fn each_metric_is_one_parseable_line_with_namespace_dimensions_and_units() {
        let docs = recorded(&[
            Metric::SessionStarted,
            Metric::SessionActive {
                after: Duration::from_micros(1_234_500),
            },
            Metric::RuleCall { throttled: true },
            Metric::DeadLetters(3),
            Metric::Sweep {
                took: Duration::from_secs(2),
            },
            Metric::ExpiryLag(Duration::from_millis(400)),
        ]);
        let figures: Vec<_> = docs.iter().map(declared).collect();
        let f = |name: &str, unit: &str, value: f64| (name.to_owned(), unit.to_owned(), value);
        assert_eq!(
            figures,
            vec![
                vec![f(names::SESSIONS_STARTED, "Count", 1.0)],
                vec![
                    f(names::SESSIONS_ACTIVE, "Count", 1.0),
                    f(names::START_TO_ACTIVE, "Milliseconds", 1234.5)
                ],
                vec![
                    f(names::RULE_CALLS, "Count", 1.0),
                    f(names::THROTTLES, "Count", 1.0)
                ],
                vec![f(names::DEAD_LETTERS, "Count", 3.0)],
                vec![f(names::SWEEP_DURATION, "Milliseconds", 2000.0)],
                vec![f(names::EXPIRY_LAG, "Milliseconds", 400.0)],
            ]
        );
    }

    #[test]
    fn an_unthrottled_call_still_reports_zero_throttles() {
        // A zero keeps the throttle rate's denominator and numerator in the same periods.
        let docs = recorded(&[Metric::RuleCall { throttled: false }]);
        assert_eq!(docs[0][names::THROTTLES], json!(0.0));
    }
}
