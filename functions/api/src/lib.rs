//! The EntryGuard HTTP API: one axum router, served by the API Lambda (through lambda_http) and
//! by the local runner alike.

pub mod dto;
pub mod error;
pub mod extract;
pub mod lambda;
pub mod routes;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, patch, post};
use axum::{Json, Router};

use entryguard::app::App;
use entryguard::domain::ids::OrgId;
use entryguard::embedded::{OffsetClock, SimCloud};

use crate::error::ApiError;
use crate::routes::{admin, dev, sessions};

/// The largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Tools only the local runner has: the development login, the test clock, the simulated cloud.
pub struct DevTools {
    /// Organizations whose users the login picker lists.
    pub orgs: Vec<OrgId>,
    /// Present with `--test-clock`.
    pub clock: Option<Arc<OffsetClock>>,
    pub sim: Option<SimCloud>,
}

#[derive(Clone)]
pub struct ApiState {
    pub app: App,
    pub dev: Option<Arc<DevTools>>,
    /// The AWS principal customers trust in role credentials' trust policies.
    pub entryguard_principal: String,
}

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

async fn not_found() -> ApiError {
    ApiError::not_found("Route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        "This route does not accept that method",
    )
}

/// The API's routes. The host adds the layer that sets [`extract::ClientAddr`].
pub fn router(state: ApiState) -> Router {
    let mut api = Router::new()
        .route("/health", get(health))
        .route("/me", get(sessions::me))
        .route("/sessions", get(sessions::list).post(sessions::start))
        .route("/sessions/{id}", get(sessions::get))
        .route("/sessions/{id}/stop", post(sessions::stop))
        .route("/sessions/{id}/extend", post(sessions::extend))
        .route(
            "/admin/organization",
            get(admin::get_org).put(admin::put_org),
        )
        .route(
            "/admin/credentials",
            get(admin::list_credentials).post(admin::create_credential),
        )
        .route(
            "/admin/credentials/{id}",
            axum::routing::delete(admin::delete_credential),
        )
        .route("/admin/iam-policy", get(admin::iam_policy))
        .route(
            "/admin/resources",
            get(admin::list_resources).post(admin::create_resource),
        )
        .route(
            "/admin/resources/{id}",
            patch(admin::update_resource).delete(admin::delete_resource),
        )
        .route(
            "/admin/roles",
            get(admin::list_roles).post(admin::create_role),
        )
        .route(
            "/admin/roles/{id}",
            patch(admin::update_role).delete(admin::delete_role),
        )
        .route(
            "/admin/users",
            get(admin::list_users).post(admin::create_user),
        )
        .route(
            "/admin/users/{id}",
            patch(admin::update_user).delete(admin::delete_user),
        )
        .route("/admin/audit-logs", get(admin::audit_logs))
        .route(
            "/admin/dead-letters/redrive",
            post(admin::redrive_dead_letters),
        );
    if state.dev.is_some() {
        api = api
            .route("/dev/login", post(dev::login))
            .route("/dev/users", get(dev::users))
            .route("/dev/clock", post(dev::clock))
            .route("/dev/firewall", get(dev::firewall));
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
}
