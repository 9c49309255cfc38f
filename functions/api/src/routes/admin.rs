//! `/api/admin/*`: admins of the caller's organization only.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

use entryguard::app::admin::{
    NewCredential, NewResource, NewRole, NewUser, OrganizationInput, ResourcePatch, RolePatch,
    UserPatch,
};
use entryguard::domain::audit::{AuditQuery, AuditType};
use entryguard::domain::ids::{CredentialId, ResourceId, RoleId, UserId};

use crate::dto::{
    AuditPageDto, CredentialDto, IamPolicyDto, OrganizationDto, ResourceDto, RoleDto, UserDto,
};
use crate::error::ApiError;
use crate::extract::{Caller, Id, JsonBody};
use crate::ApiState;

type Created<T> = (StatusCode, Json<T>);

pub async fn get_org(
    State(s): State<ApiState>,
    Caller(who): Caller,
) -> Result<Json<OrganizationDto>, ApiError> {
    Ok(Json((&s.app.get_organization(&who).await?).into()))
}

pub async fn put_org(
    State(s): State<ApiState>,
    Caller(who): Caller,
    JsonBody(body): JsonBody<OrganizationInput>,
) -> Result<Json<OrganizationDto>, ApiError> {
    who.require_admin()?;
    Ok(Json((&s.app.update_organization(&who, body).await?).into()))
}

pub async fn list_credentials(
    State(s): State<ApiState>,
    Caller(who): Caller,
) -> Result<Json<Vec<CredentialDto>>, ApiError> {
    let list = s.app.list_credentials(&who).await?;
    Ok(Json(list.iter().map(Into::into).collect()))
}

pub async fn create_credential(
    State(s): State<ApiState>,
    Caller(who): Caller,
    JsonBody(body): JsonBody<NewCredential>,
) -> Result<Created<CredentialDto>, ApiError> {
    who.require_admin()?;
    let c = s.app.create_credential(&who, body).await?;
    Ok((StatusCode::CREATED, Json((&c).into())))
}

pub async fn delete_credential(
    State(s): State<ApiState>,
    Caller(who): Caller,
    Id(id): Id<CredentialId>,
) -> Result<StatusCode, ApiError> {
    s.app.delete_credential(&who, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IamPolicyQuery {
    credential_id: String,
}

pub async fn iam_policy(
    State(s): State<ApiState>,
    Caller(who): Caller,
    query: Result<Query<IamPolicyQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<IamPolicyDto>, ApiError> {
    who.require_admin()?;
    let Query(q) = query.map_err(|_| ApiError::field("credentialId", "is required"))?;
    let id: CredentialId = q
        .credential_id
        .parse()
        .map_err(|_| ApiError::not_found("Credential"))?;
    let view = s.app.iam_policy(&who, id, &s.entryguard_principal).await?;
    Ok(Json(view.into()))
}

pub async fn list_resources(
    State(s): State<ApiState>,
    Caller(who): Caller,
) -> Result<Json<Vec<ResourceDto>>, ApiError> {
    let list = s.app.list_resources(&who).await?;
    Ok(Json(list.iter().map(Into::into).collect()))
}

pub async fn create_resource(
    State(s): State<ApiState>,
    Caller(who): Caller,
    JsonBody(body): JsonBody<NewResource>,
) -> Result<Created<ResourceDto>, ApiError> {
    who.require_admin()?;
    let r = s.app.create_resource(&who, body).await?;
    Ok((StatusCode::CREATED, Json((&r).into())))
}

pub async fn update_resource(
    State(s): State<ApiState>,
    Caller(who): Caller,
    Id(id): Id<ResourceId>,
    JsonBody(body): JsonBody<ResourcePatch>,
) -> Result<Json<ResourceDto>, ApiError> {
    who.require_admin()?;
    Ok(Json((&s.app.update_resource(&who, id, body).await?).into()))
}

pub async fn delete_resource(
    State(s): State<ApiState>,
    Caller(who): Caller,
    Id(id): Id<ResourceId>,
) -> Result<StatusCode, ApiError> {
    s.app.delete_resource(&who, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_roles(
    State(s): State<ApiState>,
    Caller(who): Caller,
) -> Result<Json<Vec<RoleDto>>, ApiError> {
    let list = s.app.list_roles(&who).await?;
    Ok(Json(list.iter().map(Into::into).collect()))
}

pub async fn create_role(
    State(s): State<ApiState>,
    Caller(who): Caller,
    JsonBody(body): JsonBody<NewRole>,
) -> Result<Created<RoleDto>, ApiError> {
    who.require_admin()?;
    let r = s.app.create_role(&who, body).await?;
    Ok((StatusCode::CREATED, Json((&r).into())))
}

pub async fn update_role(
    State(s): State<ApiState>,
    Caller(who): Caller,
    Id(id): Id<RoleId>,
    JsonBody(body): JsonBody<RolePatch>,
) -> Result<Json<RoleDto>, ApiError> {
    who.require_admin()?;
    Ok(Json((&s.app.update_role(&who, id, body).await?).into()))
}

pub async fn delete_role(
    State(s): State<ApiState>,
    Caller(who): Caller,
    Id(id): Id<RoleId>,
) -> Result<StatusCode, ApiError> {
    s.app.delete_role(&who, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_users(
    State(s): State<ApiState>,
    Caller(who): Caller,
) -> Result<Json<Vec<UserDto>>, ApiError> {
    let list = s.app.list_users(&who).await?;
    Ok(Json(list.iter().map(Into::into).collect()))
}

pub async fn create_user(
    State(s): State<ApiState>,
    Caller(who): Caller,
    JsonBody(body): JsonBody<NewUser>,
) -> Result<Created<UserDto>, ApiError> {
    who.require_admin()?;
    let u = s.app.create_user(&who, body).await?;
    Ok((StatusCode::CREATED, Json((&u).into())))
}

pub async fn update_user(
    State(s): State<ApiState>,
    Caller(who): Caller,
    Id(id): Id<UserId>,
    JsonBody(body): JsonBody<UserPatch>,
) -> Result<Json<UserDto>, ApiError> {
    who.require_admin()?;
    Ok(Json((&s.app.update_user(&who, id, body).await?).into()))
}

pub async fn delete_user(
    State(s): State<ApiState>,
    Caller(who): Caller,
    Id(id): Id<UserId>,
) -> Result<StatusCode, ApiError> {
    s.app.delete_user(&who, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuditParams {
    from: Option<String>,
    to: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    user_id: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

/// Page size bounds for the audit log.
const AUDIT_DEFAULT_LIMIT: usize = 50;
const AUDIT_MAX_LIMIT: usize = 200;

fn parse_time(
    field: &str,
    raw: Option<String>,
) -> Result<Option<entryguard::domain::Timestamp>, ApiError> {
    raw.filter(|s| !s.is_empty())
        .map(|s| {
            chrono::DateTime::parse_from_rfc3339(&s)
                .map(|t| t.with_timezone(&chrono::Utc))
                .map_err(|_| {
                    ApiError::field(
                        field,
                        "must be an RFC 3339 time such as 2026-11-22T10:00:00Z",
                    )
                })
        })
        .transpose()
}

impl AuditParams {
    fn into_query(self) -> Result<AuditQuery, ApiError> {
        let kind = self
            .kind
            .filter(|s| !s.is_empty())
            .map(|k| {
                AuditType::parse(&k).ok_or_else(|| {
                    let known: Vec<&str> = AuditType::ALL.iter().map(|t| t.as_str()).collect();
                    ApiError::field("type", format!("must be one of {}", known.join(", ")))
                })
            })
            .transpose()?;
        let user_id = self
            .user_id
            .filter(|s| !s.is_empty())
            .map(|u| {
                u.parse::<UserId>()
                    .map_err(|_| ApiError::field("userId", "must be a user id"))
            })
            .transpose()?;
        let limit = match self.limit.filter(|s| !s.is_empty()) {
            None => AUDIT_DEFAULT_LIMIT,
            Some(l) => l
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=AUDIT_MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    ApiError::field("limit", format!("must be between 1 and {AUDIT_MAX_LIMIT}"))
                })?,
        };
        let cursor = self.cursor.filter(|s| !s.is_empty());
        if cursor
            .as_ref()
            .is_some_and(|c| c.len() > 200 || c.contains('\u{10FFFF}'))
        {
            return Err(ApiError::field(
                "cursor",
                "is not a cursor this API returned",
            ));
        }
        Ok(AuditQuery {
            from: parse_time("from", self.from)?,
            to: parse_time("to", self.to)?,
            kind,
            user_id,
            cursor,
            limit,
        })
    }
}

pub async fn audit_logs(
    State(s): State<ApiState>,
    Caller(who): Caller,
    params: Result<Query<AuditParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AuditPageDto>, ApiError> {
    who.require_admin()?;
    let Query(params) = params.map_err(|e| ApiError::validation(e.body_text()))?;
    let page = s.app.list_audit(&who, params.into_query()?).await?;
    Ok(Json((&page).into()))
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RedrivenDto {
    pub redriven: usize,
}

/// Puts the organization's tasks in the dead-letter queue back on the work queue.
pub async fn redrive_dead_letters(
    State(s): State<ApiState>,
    Caller(who): Caller,
) -> Result<Json<RedrivenDto>, ApiError> {
    who.require_admin()?;
    let done = s.app.redrive_dead_letters(&who).await?;
    Ok(Json(RedrivenDto {
        redriven: done.redriven,
    }))
}
