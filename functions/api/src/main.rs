//! The API Lambda: builds the AWS adapters once per cold start, then serves the router for
//! every API Gateway request.

use std::sync::Arc;

use entryguard::embedded::{RandomIds, SystemClock};
use entryguard_api::lambda::run_lambda;
use entryguard_api::ApiState;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    // JSON lines, so CloudWatch Logs Insights can query the structured fields.
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(EnvFilter::from_default_env())
        .with_current_span(false)
        .with_ansi(false)
        .init();
    let backend = entryguard_aws::connect_from_env().await?;
    let state = ApiState {
        app: backend.app(Arc::new(SystemClock), Arc::new(RandomIds), None),
        dev: None,
        entryguard_principal: std::env::var("ENTRYGUARD_PRINCIPAL").unwrap_or_default(),
    };
    run_lambda(state).await
}
