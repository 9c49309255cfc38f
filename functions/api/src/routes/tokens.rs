//! `/api/me/tokens`: the caller's personal API tokens.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;

use entryguard::app::tokens::{ApiTokenView, NewApiToken};
use entryguard::domain::ids::TokenId;
use entryguard::domain::Timestamp;

use crate::error::ApiError;
use crate::extract::{Caller, Id, JsonBody};
use crate::ApiState;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiTokenDto {
    pub id: String,
    pub name: String,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
}

impl From<&ApiTokenView> for ApiTokenDto {
    fn from(t: &ApiTokenView) -> Self {
        Self {
            id: t.id.to_string(),
            name: t.name.to_string(),
            created_at: t.created_at,
            expires_at: t.expires_at,
            last_used_at: t.last_used_at,
        }
    }
}

/// The answer to creating a token: the only response that ever carries its secret.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedTokenDto {
    #[serde(flatten)]
    pub token_info: ApiTokenDto,
    pub token: String,
}

#[derive(Serialize)]
pub struct TokenListDto {
    pub tokens: Vec<ApiTokenDto>,
}

pub async fn create(
    State(s): State<ApiState>,
    Caller(who): Caller,
    JsonBody(body): JsonBody<NewApiToken>,
) -> Result<(StatusCode, Json<CreatedTokenDto>), ApiError> {
    let created = s.app.create_api_token(&who, body).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedTokenDto {
            token_info: (&created.view).into(),
            token: created.token,
        }),
    ))
}

pub async fn list(
    State(s): State<ApiState>,
    Caller(who): Caller,
) -> Result<Json<TokenListDto>, ApiError> {
    let tokens = s.app.list_api_tokens(&who).await?;
    Ok(Json(TokenListDto {
        tokens: tokens.iter().map(Into::into).collect(),
    }))
}

pub async fn revoke(
    State(s): State<ApiState>,
    Caller(who): Caller,
    Id(id): Id<TokenId>,
) -> Result<StatusCode, ApiError> {
    s.app.revoke_api_token(&who, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
