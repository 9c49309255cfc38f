//! `/api/admin/sessions*`: who can reach the organization's resources right now, and closing
//! that access (admins only).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use entryguard::app::live_access::{LiveFilter, ACTIVITY_DAYS};
use entryguard::app::rate_limit::Action;
use entryguard::domain::ids::{ResourceId, SessionId, UserId};

use crate::dto::{SessionDto, UserSummary};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Caller, Id, OptionalJson};
use crate::ApiState;

#[derive(Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LiveParams {
    /// Only this user's sessions.
    #[param(value_type = Option<UserId>)]
    user_id: Option<String>,
    /// Only sessions that reach this resource.
    #[param(value_type = Option<ResourceId>)]
    resource_id: Option<String>,
}

fn parse_param<T: std::str::FromStr>(
    field: &str,
    raw: Option<String>,
    what: &str,
) -> Result<Option<T>, ApiError> {
    match raw.as_deref() {
        None => Ok(None),
        Some("") => Err(ApiError::field(
            field,
            "must not be empty; leave the parameter out instead",
        )),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| ApiError::field(field, format!("must be a {what} id"))),
    }
}

/// A live session and whose it is.
#[derive(Serialize, ToSchema)]
#[schema(as = LiveSession)]
#[serde(rename_all = "camelCase")]
pub struct LiveSessionDto {
    pub user: UserSummary,
    pub session: SessionDto,
}

/// Every session of the organization that is not over (PENDING, ACTIVE, PARTIAL, EXPIRING),
/// soonest expiry first.
#[utoipa::path(get, path = "/admin/sessions", tag = "admin", security(("bearer" = [])),
    params(LiveParams),
    responses(
        (status = 200, description = "The live sessions", body = Vec<LiveSessionDto>),
        (status = 400, description = "VALIDATION_FAILED: a query parameter is malformed or unknown", body = ErrorBody),
        (status = 404, description = "NOT_FOUND: the user or resource is not the organization's", body = ErrorBody),
    ))]
pub async fn list_live_sessions(
    State(s): State<ApiState>,
    Caller(who): Caller,
    params: Result<Query<LiveParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<LiveSessionDto>>, ApiError> {
    who.require_admin()?;
    let Query(params) = params.map_err(|e| ApiError::validation(e.body_text()))?;
    let filter = LiveFilter {
        user: parse_param("userId", params.user_id, "user")?,
        resource: parse_param("resourceId", params.resource_id, "resource")?,
    };
    let live = s.app.live_sessions(&who, filter).await?;
    Ok(Json(
        live.iter()
            .map(|l| LiveSessionDto {
                user: UserSummary {
                    id: l.user.id.to_string(),
                    email: l.user.email.to_string(),
                    is_admin: l.user.is_admin,
                },
                session: (&l.session).into(),
            })
            .collect(),
    ))
}

/// Stops any session of the organization; its user sees who stopped it.
#[utoipa::path(post, path = "/admin/sessions/{id}/stop", tag = "admin", security(("bearer" = [])),
    params(("id" = SessionId, Path, description = "The session's id")),
    responses(
        (status = 202, description = "The session, EXPIRING (or CANCELLED when nothing was applied yet)", body = SessionDto),
        (status = 409, description = "SESSION_NOT_STOPPABLE: the session is not ACTIVE, PENDING or PARTIAL", body = ErrorBody),
    ))]
pub async fn stop_any_session(
    State(s): State<ApiState>,
    Caller(who): Caller,
    Id(id): Id<SessionId>,
) -> Result<(StatusCode, Json<SessionDto>), ApiError> {
    who.require_admin()?;
    s.within_rate(Action::SessionChange, &who).await?;
    let session = s.app.admin_stop_session(&who, id).await?;
    Ok((StatusCode::ACCEPTED, Json((&session).into())))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RevokeAllBody {
    /// Only the sessions that reach this resource. To revoke everything, send no body: a
    /// `null` here is refused rather than read as "everything".
    #[schema(value_type = ResourceId)]
    resource_id: ResourceId,
}

#[derive(Serialize, ToSchema)]
#[schema(as = Revoked)]
#[serde(rename_all = "camelCase")]
pub struct RevokedDto {
    /// How many live sessions were stopped.
    pub stopped: usize,
}

/// Revokes all access now: stops every live session of the organization, or every one that
/// reaches one resource. Their rules are removed in the background.
#[utoipa::path(post, path = "/admin/sessions/revoke-all", tag = "admin", security(("bearer" = [])),
    request_body(content = Option<RevokeAllBody>, description = "Optional: with one, the sessions that reach its resource; without one, every live session"),
    responses(
        (status = 200, description = "How many sessions were stopped", body = RevokedDto),
        (status = 404, description = "NOT_FOUND: the resource is not the organization's", body = ErrorBody),
    ))]
pub async fn revoke_all(
    State(s): State<ApiState>,
    Caller(who): Caller,
    OptionalJson(body): OptionalJson<RevokeAllBody>,
) -> Result<Json<RevokedDto>, ApiError> {
    who.require_admin()?;
    s.within_rate(Action::SessionChange, &who).await?;
    let resource = body.map(|b| b.resource_id);
    let stopped = s.app.revoke_all(&who, resource).await?;
    Ok(Json(RevokedDto { stopped }))
}

#[derive(Serialize, ToSchema)]
#[schema(as = DayActivity)]
#[serde(rename_all = "camelCase")]
pub struct DayActivityDto {
    /// The day (UTC), `YYYY-MM-DD`.
    #[schema(value_type = String, format = Date)]
    pub date: String,
    /// Sessions started that day.
    pub started: u32,
    /// Of those, how many could not grant all their access (FAILED or PARTIAL).
    pub failed: u32,
}

#[derive(Serialize, ToSchema)]
#[schema(as = SessionActivity)]
#[serde(rename_all = "camelCase")]
pub struct ActivityDto {
    /// The last 30 days, oldest first.
    pub days: Vec<DayActivityDto>,
    /// Failed ÷ started over the whole window; 0 when nothing was started.
    pub failure_rate: f64,
}

/// Sessions started per day over the last 30 days, and how many of them failed.
#[utoipa::path(get, path = "/admin/sessions/activity", tag = "admin", security(("bearer" = [])),
    responses((status = 200, description = "The last 30 days", body = ActivityDto)))]
pub async fn session_activity(
    State(s): State<ApiState>,
    Caller(who): Caller,
) -> Result<Json<ActivityDto>, ApiError> {
    let days = s.app.session_activity(&who).await?;
    debug_assert_eq!(days.len() as i64, ACTIVITY_DAYS);
    let started: u32 = days.iter().map(|d| d.started).sum();
    let failed: u32 = days.iter().map(|d| d.failed).sum();
    Ok(Json(ActivityDto {
        days: days
            .iter()
            .map(|d| DayActivityDto {
                date: d.date.format("%Y-%m-%d").to_string(),
                started: d.started,
                failed: d.failed,
            })
            .collect(),
        failure_rate: if started == 0 {
            0.0
        } else {
            f64::from(failed) / f64::from(started)
        },
    }))
}
