//! The API Lambda: builds the AWS adapters once per cold start, then serves the router for
//! every API Gateway request.

use std::sync::Arc;

use entryguard::domain::model::Email;
use entryguard::runtime::{RandomIds, SystemClock};
use entryguard_api::lambda::run_lambda;
use entryguard_api::oidc::{OidcConfig, OidcVerifier};
use entryguard_api::ApiState;

use entryguard_api::environment::{BOOTSTRAP_ADMIN_ENV, PRINCIPAL_ENV, SIGNUP_ENV};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let backend = entryguard_aws::cold_start(
        "api",
        entryguard_aws::Services {
            dynamodb: true,
            sqs: true,
            sts: false,
        },
    )
    .await?;
    let app = backend.app(Arc::new(SystemClock), Arc::new(RandomIds), None);
    if let Some(admin) = std::env::var(BOOTSTRAP_ADMIN_ENV)
        .ok()
        .filter(|v| !v.is_empty())
    {
        let admin: Email = admin.parse()?;
        app.bootstrap_organization("EntryGuard".parse()?, &admin)
            .await?;
    }
    let oidc = match OidcConfig::from_env()? {
        Some(config) => {
            let verifier = OidcVerifier::new(config)?;
            if let Err(error) = verifier.prefetch().await {
                // The first sign-in fetches them instead.
                tracing::warn!(%error, "could not read the identity provider's keys at start");
            }
            Some(Arc::new(verifier))
        }
        None => {
            tracing::warn!("no OIDC issuer configured: only API tokens are accepted");
            None
        }
    };
    let state = ApiState {
        app,
        dev: None,
        entryguard_principal: std::env::var(PRINCIPAL_ENV).unwrap_or_default(),
        oidc,
        limits: Default::default(),
        signup_open: std::env::var(SIGNUP_ENV).is_ok_and(|v| v == "true"),
    };
    run_lambda(state).await
}
