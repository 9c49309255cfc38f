//! `/api/me` and `/api/sessions`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

use entryguard::app::sessions::{SessionActionError, StartSessionError};
use entryguard::domain::ids::SessionId;
use entryguard::domain::tier::Hours;

use crate::dto::{MeDto, SessionDto};
use crate::error::ApiError;
use crate::extract::{Caller, ClientAddr, Id, JsonBody, OptionalJson};
use crate::ApiState;

pub async fn me(State(s): State<ApiState>, Caller(who): Caller) -> Result<Json<MeDto>, ApiError> {
    Ok(Json(s.app.me(&who).await?.into()))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StartBody {
    duration_hours: u32,
}

pub async fn start(
    State(s): State<ApiState>,
    Caller(who): Caller,
    ClientAddr(ip): ClientAddr,
    JsonBody(body): JsonBody<StartBody>,
) -> Result<(StatusCode, Json<SessionDto>), ApiError> {
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
    let session = s.app.start_session(&who, ip, hours).await?;
    Ok((StatusCode::ACCEPTED, Json((&session).into())))
}

pub async fn list(
    State(s): State<ApiState>,
    Caller(who): Caller,
) -> Result<Json<Vec<SessionDto>>, ApiError> {
    let sessions = s.app.list_sessions(&who).await?;
    Ok(Json(sessions.iter().map(Into::into).collect()))
}

pub async fn get(
    State(s): State<ApiState>,
    Caller(who): Caller,
    Id(id): Id<SessionId>,
) -> Result<Json<SessionDto>, ApiError> {
    Ok(Json((&s.app.get_session(&who, id).await?).into()))
}

pub async fn stop(
    State(s): State<ApiState>,
    Caller(who): Caller,
    Id(id): Id<SessionId>,
) -> Result<(StatusCode, Json<SessionDto>), ApiError> {
    let session = s.app.stop_session(&who, id).await?;
    Ok((StatusCode::ACCEPTED, Json((&session).into())))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExtendBody {
    hours: Option<u32>,
}

/// The extension the product offers by default ("+2h").
const DEFAULT_EXTENSION_HOURS: u32 = 2;

pub async fn extend(
    State(s): State<ApiState>,
    Caller(who): Caller,
    Id(id): Id<SessionId>,
    OptionalJson(body): OptionalJson<ExtendBody>,
) -> Result<Json<SessionDto>, ApiError> {
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
