//! `/api/me/tokens`: the caller's personal API tokens.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use entryguard::app::rate_limit::Action;
use entryguard::app::tokens::{ApiTokenView, NewApiToken};
use entryguard::domain::ids::TokenId;
use entryguard::domain::Timestamp;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{Caller, Id, JsonBody};
use crate::ApiState;

#[derive(Serialize, ToSchema)]
#[schema(as = ApiToken)]
#[serde(rename_all = "camelCase")]
pub struct ApiTokenDto {
    #[schema(value_type = TokenId)]
    pub id: String,
    pub name: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// Null: valid until revoked.
    #[schema(value_type = Option<String>, format = DateTime)]
    #[schema(required)]
    pub expires_at: Option<Timestamp>,
    /// Null: never used. Updated at most once a minute.
    #[schema(value_type = Option<String>, format = DateTime)]
    #[schema(required)]
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
#[derive(Serialize, ToSchema)]
#[schema(as = CreatedApiToken)]
#[serde(rename_all = "camelCase")]
pub struct CreatedTokenDto {
    #[serde(flatten)]
    pub token_info: ApiTokenDto,
    /// The secret: `egt_` and 64 hex digits. Shown only in this answer.
    #[schema(pattern = "^egt_[0-9a-f]{64}$")]
    pub token: String,
}

#[derive(Serialize, ToSchema)]
#[schema(as = ApiTokenList)]
pub struct TokenListDto {
    pub tokens: Vec<ApiTokenDto>,
}

/// Creates a personal API token; its secret is in this answer only.
#[utoipa::path(post, path = "/me/tokens", tag = "tokens", operation_id = "create_api_token", security(("bearer" = [])),
    request_body = NewApiToken,
    responses(
        (status = 201, description = "The token, with its secret", body = CreatedTokenDto),
        (status = 409, description = "TOKEN_LIMIT_REACHED: the caller holds 50 tokens", body = ErrorBody),
    ))]
pub async fn create(
    State(s): State<ApiState>,
    Caller(who): Caller,
    JsonBody(body): JsonBody<NewApiToken>,
) -> Result<(StatusCode, Json<CreatedTokenDto>), ApiError> {
    s.within_rate(Action::TokenCreation, &who).await?;
    let created = s.app.create_api_token(&who, body).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedTokenDto {
            token_info: (&created.view).into(),
            token: created.token,
        }),
    ))
}

/// The caller's personal API tokens, oldest first, without their secrets.
#[utoipa::path(get, path = "/me/tokens", tag = "tokens", operation_id = "list_api_tokens", security(("bearer" = [])),
    responses((status = 200, description = "The caller's tokens", body = TokenListDto)))]
pub async fn list(
    State(s): State<ApiState>,
    Caller(who): Caller,
) -> Result<Json<TokenListDto>, ApiError> {
    let tokens = s.app.list_api_tokens(&who).await?;
    Ok(Json(TokenListDto {
        tokens: tokens.iter().map(Into::into).collect(),
    }))
}

/// Revokes one of the caller's tokens; it stops working at once.
#[utoipa::path(delete, path = "/me/tokens/{id}", tag = "tokens", operation_id = "revoke_api_token", security(("bearer" = [])),
    params(("id" = TokenId, Path, description = "The token's id")),
    responses((status = 204, description = "Revoked")))]
pub async fn revoke(
    State(s): State<ApiState>,
    Caller(who): Caller,
    Id(id): Id<TokenId>,
) -> Result<StatusCode, ApiError> {
    s.app.revoke_api_token(&who, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
