//! The EntryGuard HTTP API: one axum router, served by the API Lambda (through lambda_http) and
//! by the local runner alike.

pub mod dto;
pub mod environment;
pub mod error;
pub mod extract;
pub mod headers;
pub mod lambda;
pub mod oidc;
pub mod openapi;
pub mod routes;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::{Json, Router};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use entryguard::app::rate_limit::{Action, RateLimits};
use entryguard::app::{App, Identity};
use entryguard::domain::ids::OrgId;
use entryguard::embedded::{InMemoryMetrics, LocalDirectory, OffsetClock, SimCloud};

use crate::error::ApiError;
use crate::routes::{admin, dev, live, sessions, signup, tokens, webhooks};

/// The largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Tools only the local runner has: the development login, the test clock, the simulated cloud.
pub struct DevTools {
    /// Organizations whose users the login picker lists.
    pub orgs: Vec<OrgId>,
    /// Present with `--test-clock`.
    pub clock: Option<Arc<OffsetClock>>,
    pub sim: Option<SimCloud>,
    /// The stand-in sign-in directory: who was invited and disabled.
    pub directory: Option<LocalDirectory>,
    /// The figures the Lambdas would send to CloudWatch, kept in memory.
    pub metrics: Option<InMemoryMetrics>,
}

#[derive(Clone)]
pub struct ApiState {
    pub app: App,
    pub dev: Option<Arc<DevTools>>,
    /// The AWS principal customers trust in role credentials' trust policies.
    pub entryguard_principal: String,
    /// Verifies browser users' ID tokens; without it only EntryGuard's own tokens are accepted.
    pub oidc: Option<Arc<oidc::OidcVerifier>>,
    /// The application's rate limits (the documented defaults, or scaled up).
    pub limits: RateLimits,
    /// Whether a person the identity provider vouches for may create an organization.
    pub signup_open: bool,
}

impl ApiState {
    /// Counts one request of `action` against the caller's and their organization's limits.
    pub async fn within_rate(&self, action: Action, who: &Identity) -> Result<(), ApiError> {
        Ok(self.app.within_rate(&self.limits, action, who).await?)
    }
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Health {
    #[schema(value_type = String, pattern = "^ok$")]
    status: &'static str,
}

/// Liveness: answers without touching the store.
#[utoipa::path(get, path = "/health", tag = "meta",
    responses((status = 200, description = "The API is up", body = Health)))]
async fn health() -> Json<Health> {
    Json(Health { status: "ok" })
}

async fn not_found() -> ApiError {
    ApiError::not_found("Route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        crate::error::ErrorCode::MethodNotAllowed,
        "This route does not accept that method",
    )
}

/// Every documented route, relative to `/api`. Routes are added only here and only through
/// `routes!`, which takes each handler's path and method from its `#[utoipa::path]`
/// annotation, so the router and the OpenAPI document ([`openapi::document`]) cannot drift.
/// One `routes!` call per path (handlers of one path together).
pub(crate) fn api_routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(openapi::serve))
        .routes(routes!(sessions::me))
        .routes(routes!(sessions::address))
        .routes(routes!(signup::sign_up))
        .routes(routes!(tokens::list, tokens::create))
        .routes(routes!(tokens::revoke))
        .routes(routes!(sessions::list, sessions::start))
        .routes(routes!(sessions::get))
        .routes(routes!(sessions::stop))
        .routes(routes!(sessions::extend))
        .routes(routes!(admin::get_org, admin::put_org))
        .routes(routes!(admin::list_credentials, admin::create_credential))
        .routes(routes!(admin::delete_credential))
        .routes(routes!(admin::validate_credential))
        .routes(routes!(admin::iam_policy))
        .routes(routes!(admin::list_resources, admin::create_resource))
        .routes(routes!(admin::update_resource, admin::delete_resource))
        .routes(routes!(admin::list_roles, admin::create_role))
        .routes(routes!(admin::update_role, admin::delete_role))
        .routes(routes!(admin::list_users, admin::create_user))
        .routes(routes!(admin::update_user, admin::delete_user))
        .routes(routes!(admin::audit_logs))
        .routes(routes!(admin::redrive_dead_letters))
        .routes(routes!(webhooks::list_webhooks, webhooks::create_webhook))
        .routes(routes!(webhooks::update_webhook, webhooks::delete_webhook))
        .routes(routes!(webhooks::list_webhook_deliveries))
        .routes(routes!(webhooks::send_test_webhook))
        .routes(routes!(live::list_live_sessions))
        .routes(routes!(live::stop_any_session))
        .routes(routes!(live::revoke_all))
        .routes(routes!(live::session_activity))
}

/// The local runner's development routes: not part of the API contract, so not in the
/// document (and never mounted by the Lambda).
fn dev_routes() -> Router<ApiState> {
    Router::new()
        .route("/dev/login", post(dev::login))
        .route("/dev/users", get(dev::users))
        .route("/dev/directory", get(dev::directory))
        .route("/dev/signup", post(dev::sign_up))
        .route("/dev/clock", post(dev::clock))
        .route("/dev/firewall", get(dev::firewall))
        .route("/dev/metrics", get(dev::metrics))
}

/// The API's routes. The host adds the layer that sets [`extract::ClientAddr`].
pub fn router(state: ApiState) -> Router {
    let (mut api, _) = api_routes().split_for_parts();
    if state.dev.is_some() {
        api = api.merge(dev_routes());
    }
    let api = api
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state);
    // The nested router does not see "/api/" itself; without this it would fall through to the
    // host's fallback (the SPA in the local runner).
    Router::new()
        .route("/api/", axum::routing::any(not_found))
        .nest("/api", api)
        .layer(axum::middleware::map_response(headers::api_headers))
}
