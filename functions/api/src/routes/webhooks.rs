//! `/api/admin/webhooks/*`: an organization's webhook endpoints and their delivery logs, for
//! its admins only (a member gets 403 and learns nothing of them).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use entryguard::app::notifications::{NewWebhook, WebhookPatch};
use entryguard::domain::ids::{DeliveryId, WebhookId};
use entryguard::domain::webhook::{
    DeliveryStatus, EventFacts, WebhookDelivery, WebhookEndpoint, WebhookEvent, WebhookFormat,
};
use entryguard::domain::Timestamp;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{Caller, Id, JsonBody};
use crate::ApiState;

#[derive(Serialize, ToSchema)]
#[schema(as = Webhook)]
#[serde(rename_all = "camelCase")]
pub struct WebhookDto {
    #[schema(value_type = WebhookId)]
    pub id: String,
    pub url: String,
    pub events: Vec<WebhookEvent>,
    pub format: WebhookFormat,
    pub enabled: bool,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

impl From<&WebhookEndpoint> for WebhookDto {
    fn from(e: &WebhookEndpoint) -> Self {
        Self {
            id: e.id.to_string(),
            url: e.url.to_string(),
            events: e.events.iter().copied().collect(),
            format: e.format,
            enabled: e.enabled,
            created_at: e.created_at,
        }
    }
}

/// A new endpoint with its signing secret: the only time the secret is shown.
#[derive(Serialize, ToSchema)]
#[schema(as = CreatedWebhook)]
#[serde(rename_all = "camelCase")]
pub struct CreatedWebhookDto {
    pub webhook: WebhookDto,
    /// `whsec_` and 64 hex digits: the HMAC-SHA256 key of `X-EntryGuard-Signature`. Shown once.
    pub secret: String,
}

#[derive(Serialize, ToSchema)]
#[schema(as = WebhookDelivery)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryDto {
    #[schema(value_type = DeliveryId)]
    pub id: String,
    #[schema(value_type = WebhookId)]
    pub endpoint_id: String,
    pub event: WebhookEvent,
    pub facts: EventFacts,
    pub status: DeliveryStatus,
    pub attempts: u32,
    /// The HTTP status of the last attempt, when there was an answer.
    #[schema(required)]
    pub response_code: Option<u16>,
    #[schema(required)]
    pub last_error: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    /// When a PENDING delivery is next attempted.
    #[schema(value_type = String, format = DateTime)]
    pub next_attempt_at: Timestamp,
}

impl From<&WebhookDelivery> for DeliveryDto {
    fn from(d: &WebhookDelivery) -> Self {
        Self {
            id: d.id.to_string(),
            endpoint_id: d.endpoint_id.to_string(),
            event: d.event,
            facts: d.facts.clone(),
            status: d.status,
            attempts: d.attempts,
            response_code: d.response_code,
            last_error: d.last_error.clone(),
            created_at: d.created_at,
            updated_at: d.updated_at,
            next_attempt_at: d.next_attempt_at,
        }
    }
}

/// The organization's webhook endpoints (secrets are never returned).
#[utoipa::path(get, path = "/admin/webhooks", tag = "admin", security(("bearer" = [])),
    responses(
        (status = 200, description = "The endpoints, oldest first", body = Vec<WebhookDto>),
        (status = 403, description = "FORBIDDEN: the caller is not an admin", body = ErrorBody),
    ))]
pub async fn list_webhooks(
    State(s): State<ApiState>,
    Caller(who): Caller,
) -> Result<Json<Vec<WebhookDto>>, ApiError> {
    let list = s.app.list_webhooks(&who).await?;
    Ok(Json(list.iter().map(Into::into).collect()))
}

/// Adds an endpoint. The answer carries its signing secret, shown this once.
#[utoipa::path(post, path = "/admin/webhooks", tag = "admin", security(("bearer" = [])),
    request_body = NewWebhook,
    responses(
        (status = 201, description = "The endpoint and its secret", body = CreatedWebhookDto),
        (status = 400, description = "VALIDATION_FAILED: not an https URL, a private or loopback address, no events", body = ErrorBody),
        (status = 403, description = "FORBIDDEN: the caller is not an admin", body = ErrorBody),
        (status = 409, description = "CONFLICT: the organization has the most endpoints allowed", body = ErrorBody),
    ))]
pub async fn create_webhook(
    State(s): State<ApiState>,
    Caller(who): Caller,
    JsonBody(body): JsonBody<NewWebhook>,
) -> Result<(StatusCode, Json<CreatedWebhookDto>), ApiError> {
    let created = s.app.create_webhook(&who, body).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedWebhookDto {
            webhook: (&created.endpoint).into(),
            secret: created.secret.expose().to_owned(),
        }),
    ))
}

/// Changes an endpoint's URL, events, format, or enables or disables it; absent fields are
/// kept. A disabled endpoint gets nothing, and its pending deliveries end FAILED.
#[utoipa::path(patch, path = "/admin/webhooks/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = WebhookId, Path, description = "The endpoint's id")),
    request_body = WebhookPatch,
    responses(
        (status = 200, description = "The endpoint", body = WebhookDto),
        (status = 404, description = "NOT_FOUND", body = ErrorBody),
    ))]
pub async fn update_webhook(
    State(s): State<ApiState>,
    Caller(who): Caller,
    Id(id): Id<WebhookId>,
    JsonBody(body): JsonBody<WebhookPatch>,
) -> Result<Json<WebhookDto>, ApiError> {
    Ok(Json((&s.app.update_webhook(&who, id, body).await?).into()))
}

/// Deletes an endpoint and its delivery log.
#[utoipa::path(delete, path = "/admin/webhooks/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = WebhookId, Path, description = "The endpoint's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "NOT_FOUND", body = ErrorBody),
    ))]
pub async fn delete_webhook(
    State(s): State<ApiState>,
    Caller(who): Caller,
    Id(id): Id<WebhookId>,
) -> Result<StatusCode, ApiError> {
    s.app.delete_webhook(&who, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The endpoint's most recent deliveries (up to 100), newest first.
#[utoipa::path(get, path = "/admin/webhooks/{id}/deliveries", tag = "admin", security(("bearer" = [])),
    params(("id" = WebhookId, Path, description = "The endpoint's id")),
    responses(
        (status = 200, description = "The delivery log", body = Vec<DeliveryDto>),
        (status = 404, description = "NOT_FOUND", body = ErrorBody),
    ))]
pub async fn list_webhook_deliveries(
    State(s): State<ApiState>,
    Caller(who): Caller,
    Id(id): Id<WebhookId>,
) -> Result<Json<Vec<DeliveryDto>>, ApiError> {
    let list = s.app.list_webhook_deliveries(&who, id).await?;
    Ok(Json(list.iter().map(Into::into).collect()))
}

/// Queues a `webhook.test` event for the endpoint; the worker delivers it like any other.
#[utoipa::path(post, path = "/admin/webhooks/{id}/test", tag = "admin", security(("bearer" = [])),
    params(("id" = WebhookId, Path, description = "The endpoint's id")),
    responses(
        (status = 202, description = "The delivery, PENDING", body = DeliveryDto),
        (status = 404, description = "NOT_FOUND", body = ErrorBody),
        (status = 409, description = "CONFLICT: the endpoint is disabled", body = ErrorBody),
    ))]
pub async fn send_test_webhook(
    State(s): State<ApiState>,
    Caller(who): Caller,
    Id(id): Id<WebhookId>,
) -> Result<(StatusCode, Json<DeliveryDto>), ApiError> {
    let d = s.app.send_test_webhook(&who, id).await?;
    Ok((StatusCode::ACCEPTED, Json((&d).into())))
}
