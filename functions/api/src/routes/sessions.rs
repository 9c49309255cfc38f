//! `/api/me` and `/api/sessions`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;

use entryguard::app::rate_limit::Action;
use entryguard::app::sessions::{SessionActionError, StartSessionError};
use entryguard::domain::ids::SessionId;
use entryguard::domain::tier::Hours;

use crate::dto::{AddressDto, MeDto, SessionDto};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Caller, ClientAddr, Id, JsonBody, OptionalJson};
use crate::ApiState;

/// The caller, their organization and the limits that apply to them.
#[utoipa::path(get, path = "/me", tag = "sessions", security(("bearer" = [])),
    responses((status = 200, description = "The caller and their limits", body = MeDto)))]
pub async fn me(State(s): State<ApiState>, Caller(who): Caller) -> Result<Json<MeDto>, ApiError> {
    Ok(Json(s.app.me(&who).await?.into()))
}

/// The caller's address as the server sees it, with a proof of it to send with a start request.
///
/// Call it on an IPv4-only and on an IPv6-only host name of the API: each answer proves one
/// family's address, and a start request sent over either family then covers both.
#[utoipa::path(get, path = "/address", tag = "sessions", security(("bearer" = [])),
    responses((status = 200, description = "The caller's address and its proof", body = AddressDto)))]
pub async fn address(
    State(s): State<ApiState>,
    Caller(who): Caller,
    ClientAddr(ip): ClientAddr,
) -> Result<Json<AddressDto>, ApiError> {
    Ok(Json(s.app.sign_address(&who, ip).await?.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StartBody {
    #[schema(schema_with = offered_durations)]
    duration_hours: u32,
    /// Proofs from `GET /api/address` (at most one per IP family): the session also opens to
    /// their addresses.
    #[serde(default)]
    #[schema(max_items = 2)]
    address_proofs: Vec<String>,
}

/// More proofs than families is a mistake, whatever they hold.
const MAX_ADDRESS_PROOFS: usize = 2;

/// Every duration some plan offers; the caller's plan and roles may allow fewer.
fn offered_durations() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Integer)
        .description(Some(
            "Hours; one of the durations `GET /api/me` lists for the caller.",
        ))
        .enum_values(Some(
            entryguard::domain::tier::Tier::Business
                .durations()
                .to_vec(),
        ))
        .build()
}

/// Starts a session.
///
/// Opens every resource the caller can reach to their IP address, detected server-side, and to
/// the address of each proof from `GET /api/address`; the rules are applied in the background.
#[utoipa::path(post, path = "/sessions", tag = "sessions", security(("bearer" = [])),
    request_body = StartBody,
    responses(
        (status = 202, description = "The session, PENDING", body = SessionDto),
        (status = 400, description = "VALIDATION_FAILED (a duration the plan does not offer, more \
            than two address proofs), DURATION_EXCEEDS_MAXIMUM, NO_ACCESSIBLE_RESOURCES, \
            ADDRESS_PROOF_INVALID, ADDRESS_PROOF_EXPIRED, ADDRESS_PROOF_OTHER_USER or \
            ADDRESS_PROOF_SAME_FAMILY", body = ErrorBody),
        (status = 403, description = "ORGANIZATION_SUSPENDED: the operator suspended the organization", body = ErrorBody),
        (status = 409, description = "CONCURRENT_SESSION_LIMIT: the plan's limit is reached", body = ErrorBody),
    ))]
pub async fn start(
    State(s): State<ApiState>,
    Caller(who): Caller,
    ClientAddr(ip): ClientAddr,
    JsonBody(body): JsonBody<StartBody>,
) -> Result<(StatusCode, Json<SessionDto>), ApiError> {
    s.within_rate(Action::SessionChange, &who).await?;
    let hours = match Hours::new(i64::from(body.duration_hours)) {
        Ok(h) => h,
        Err(_) if body.duration_hours > u32::from(Hours::MAX) => {
            return Err(StartSessionError::DurationExceedsMaximum {
                max_hours: Hours::MAX,
            }
            .into())
        }
        Err(e) => return Err(ApiError::field("durationHours", e.to_string())),
    };
    if body.address_proofs.len() > MAX_ADDRESS_PROOFS {
        return Err(ApiError::field(
            "addressProofs",
            format!("at most {MAX_ADDRESS_PROOFS} proofs, one per IP family"),
        ));
    }
    let session = s
        .app
        .start_session_with_proofs(&who, ip, &body.address_proofs, hours)
        .await?;
    Ok((StatusCode::ACCEPTED, Json((&session).into())))
}

/// The caller's sessions, newest first.
#[utoipa::path(get, path = "/sessions", tag = "sessions", security(("bearer" = [])),
    responses((status = 200, description = "The caller's sessions, newest first", body = Vec<SessionDto>)))]
pub async fn list(
    State(s): State<ApiState>,
    Caller(who): Caller,
) -> Result<Json<Vec<SessionDto>>, ApiError> {
    let sessions = s.app.list_sessions(&who).await?;
    Ok(Json(sessions.iter().map(Into::into).collect()))
}

/// One of the caller's sessions.
#[utoipa::path(get, path = "/sessions/{id}", tag = "sessions", security(("bearer" = [])),
    params(("id" = SessionId, Path, description = "The session's id")),
    responses((status = 200, description = "The session", body = SessionDto)))]
pub async fn get(
    State(s): State<ApiState>,
    Caller(who): Caller,
    Id(id): Id<SessionId>,
) -> Result<Json<SessionDto>, ApiError> {
    Ok(Json((&s.app.get_session(&who, id).await?).into()))
}

/// Stops a session: its rules are removed in the background.
#[utoipa::path(post, path = "/sessions/{id}/stop", tag = "sessions", security(("bearer" = [])),
    params(("id" = SessionId, Path, description = "The session's id")),
    responses(
        (status = 202, description = "The session, EXPIRING (or CANCELLED when nothing was applied yet)", body = SessionDto),
        (status = 409, description = "SESSION_NOT_STOPPABLE: the session is not ACTIVE, PENDING or PARTIAL", body = ErrorBody),
    ))]
pub async fn stop(
    State(s): State<ApiState>,
    Caller(who): Caller,
    Id(id): Id<SessionId>,
) -> Result<(StatusCode, Json<SessionDto>), ApiError> {
    s.within_rate(Action::SessionChange, &who).await?;
    let session = s.app.stop_session(&who, id).await?;
    Ok((StatusCode::ACCEPTED, Json((&session).into())))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExtendBody {
    /// Hours to add; absent or `null`: 2.
    #[schema(value_type = Option<Hours>)]
    hours: Option<u32>,
}

/// The extension the product offers by default ("+2h").
const DEFAULT_EXTENSION_HOURS: u32 = 2;

/// Extends a session. The body is optional: without one the session gains 2 hours.
#[utoipa::path(post, path = "/sessions/{id}/extend", tag = "sessions", security(("bearer" = [])),
    params(("id" = SessionId, Path, description = "The session's id")),
    request_body(content = Option<ExtendBody>, description = "Optional; without a body the session gains 2 hours"),
    responses(
        (status = 200, description = "The session with its new expiry", body = SessionDto),
        (status = 400, description = "VALIDATION_FAILED or EXTENSION_EXCEEDS_MAXIMUM: the session would pass \
            the maximum total duration", body = ErrorBody),
        (status = 403, description = "ORGANIZATION_SUSPENDED: the operator suspended the organization", body = ErrorBody),
        (status = 409, description = "SESSION_NOT_EXTENDABLE: the session is not ACTIVE or PARTIAL, or is past its expiry", body = ErrorBody),
    ))]
pub async fn extend(
    State(s): State<ApiState>,
    Caller(who): Caller,
    Id(id): Id<SessionId>,
    OptionalJson(body): OptionalJson<ExtendBody>,
) -> Result<Json<SessionDto>, ApiError> {
    s.within_rate(Action::SessionChange, &who).await?;
    let raw = body
        .and_then(|b| b.hours)
        .unwrap_or(DEFAULT_EXTENSION_HOURS);
    let hours = match Hours::new(i64::from(raw)) {
        Ok(h) => h,
        Err(_) if raw > u32::from(Hours::MAX) => {
            return Err(SessionActionError::ExtensionExceedsMaximum {
                max_hours: Hours::MAX,
            }
            .into())
        }
        Err(e) => return Err(ApiError::field("hours", e.to_string())),
    };
    Ok(Json((&s.app.extend_session(&who, id, hours).await?).into()))
}
