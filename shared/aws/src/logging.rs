//! Logging for the Lambda functions. Each main calls [`init_lambda_logging`] once, so the three
//! functions log in the same shape; the local runner keeps its own human-readable setup.

use tracing_subscriber::EnvFilter;

/// JSON lines on stdout, so CloudWatch Logs Insights can query the structured fields; the level
/// comes from `RUST_LOG`. No ANSI colours: CloudWatch would show them as escape codes.
pub fn init_lambda_logging() {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(EnvFilter::from_default_env())
        .with_current_span(false)
        .with_ansi(false)
        .init();
}
