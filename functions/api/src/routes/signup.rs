//! `POST /api/signup`: a person signed in with the identity provider, who belongs to no
//! organization, creates one on the Free plan — where the operator opened sign-up.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use entryguard::domain::model::Name;

use crate::dto::{OrganizationDto, UserSummary};
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::extract::{JsonBody, VerifiedPerson};
use crate::ApiState;

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignUpBody {
    #[schema(value_type = Name)]
    organization_name: Name,
}

#[derive(Serialize, ToSchema)]
#[schema(as = SignedUp)]
#[serde(rename_all = "camelCase")]
pub struct SignedUpDto {
    pub organization: OrganizationDto,
    pub user: UserSummary,
}

/// Creates an organization on the Free plan with the caller as its administrator.
///
/// The caller signs in with the identity provider (an ID token; EntryGuard's own tokens belong
/// to users already) and may not belong to any organization.
#[utoipa::path(post, path = "/signup", tag = "sessions", security(("bearer" = [])),
    request_body = SignUpBody,
    responses(
        (status = 201, description = "The new organization and its administrator", body = SignedUpDto),
        (status = 403, description = "FORBIDDEN: sign-up is closed on this deployment", body = ErrorBody),
        (status = 409, description = "CONFLICT: the e-mail already belongs to an organization", body = ErrorBody),
    ))]
pub async fn sign_up(
    State(s): State<ApiState>,
    person: VerifiedPerson,
    JsonBody(body): JsonBody<SignUpBody>,
) -> Result<(StatusCode, Json<SignedUpDto>), ApiError> {
    if !s.signup_open {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            "Sign-up is closed on this deployment; ask an administrator of your organization to invite you",
        ));
    }
    let (org, user) = s
        .app
        .sign_up(&person.email, body.organization_name, person.ip)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(SignedUpDto {
            organization: (&org).into(),
            user: UserSummary {
                id: user.id.to_string(),
                email: user.email.to_string(),
                is_admin: user.is_admin,
            },
        }),
    ))
}
