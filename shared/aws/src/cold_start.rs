//! What each Lambda does once per cold start, before its first event, so the three mains differ
//! only in what they serve.

use std::sync::Arc;

use crate::{connect_from_env, init_lambda_logging, AwsBackend, EmfMetrics, EnvError, Services};

/// JSON logs; the adapters from the template's environment; metrics as embedded-metric-format
/// lines on stdout named for `function` (CloudWatch extracts them from the logs, no API calls);
/// and the `services` clients warmed during init, because the TLS handshake is most of a cold
/// first call.
pub async fn cold_start(function: &str, services: Services) -> Result<AwsBackend, EnvError> {
    init_lambda_logging();
    let backend = connect_from_env()
        .await?
        .with_metrics(Arc::new(EmfMetrics::stdout_from_env(function)));
    backend.warm(services).await;
    Ok(backend)
}
