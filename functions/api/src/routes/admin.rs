//! `/api/admin/*`: admins of the caller's organization only.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

use entryguard::app::admin::{
    NewCredential, NewResource, NewRole, NewUser, OrganizationInput, ResourcePatch, RolePatch,
    UserPatch,
};
use entryguard::app::rate_limit::Action;
use entryguard::domain::audit::{AuditQuery, AuditType};
use entryguard::domain::ids::{CredentialId, ResourceId, RoleId, UserId};

use crate::dto::{
    AuditPageDto, CredentialDto, IamPolicyDto, OrganizationDto, ResourceDto, RoleDto, UserDto,
};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Caller, Id, JsonBody};
use crate::ApiState;

type Created<T> = (StatusCode, Json<T>);

/// The caller's organization.
#[utoipa::path(get, path = "/admin/organization", tag = "admin", security(("bearer" = [])),
    responses((status = 200, description = "The organization", body = OrganizationDto)))]
pub async fn get_org(
    State(s): State<ApiState>,
    Caller(who): Caller,
) -> Result<Json<OrganizationDto>, ApiError> {
    Ok(Json((&s.app.get_organization(&who).await?).into()))
}

/// Renames the organization (its plan is the operator's to change).
#[utoipa::path(put, path = "/admin/organization", tag = "admin", security(("bearer" = [])),
    request_body = OrganizationInput,
    responses((status = 200, description = "The organization", body = OrganizationDto)))]
pub async fn put_org(
    State(s): State<ApiState>,
    Caller(who): Caller,
    JsonBody(body): JsonBody<OrganizationInput>,
) -> Result<Json<OrganizationDto>, ApiError> {
    who.require_admin()?;
    Ok(Json((&s.app.update_organization(&who, body).await?).into()))
}

/// The organization's cloud credentials (secrets are never returned).
#[utoipa::path(get, path = "/admin/credentials", tag = "admin", security(("bearer" = [])),
    responses((status = 200, description = "The credentials", body = Vec<CredentialDto>)))]
pub async fn list_credentials(
    State(s): State<ApiState>,
    Caller(who): Caller,
) -> Result<Json<Vec<CredentialDto>>, ApiError> {
    let list = s.app.list_credentials(&who).await?;
    Ok(Json(list.iter().map(Into::into).collect()))
}

/// Adds a cloud credential: `aws` with a role ARN (recommended) or an access key pair, or `simulated` with neither.
#[utoipa::path(post, path = "/admin/credentials", tag = "admin", security(("bearer" = [])),
    request_body = NewCredential,
    responses((status = 201, description = "The credential, UNVERIFIED", body = CredentialDto)))]
pub async fn create_credential(
    State(s): State<ApiState>,
    Caller(who): Caller,
    JsonBody(body): JsonBody<NewCredential>,
) -> Result<Created<CredentialDto>, ApiError> {
    who.require_admin()?;
    let c = s.app.create_credential(&who, body).await?;
    Ok((StatusCode::CREATED, Json((&c).into())))
}

/// Checks a credential with the cloud provider (`sts:GetCallerIdentity` on AWS) and records
/// VALID with the account id, or INVALID with the reason, and when.
#[utoipa::path(post, path = "/admin/credentials/{id}/validate", tag = "admin", security(("bearer" = [])),
    params(("id" = CredentialId, Path, description = "The credential's id")),
    responses(
        (status = 200, description = "The credential with the check's result", body = CredentialDto),
        (status = 403, description = "FORBIDDEN: the caller is not an admin; ORGANIZATION_SUSPENDED: the operator suspended the organization", body = ErrorBody),
        (status = 503, description = "PROVIDER_UNAVAILABLE: the provider could not be asked; nothing recorded changed", body = ErrorBody),
    ))]
pub async fn validate_credential(
    State(s): State<ApiState>,
    Caller(who): Caller,
    Id(id): Id<CredentialId>,
) -> Result<Json<CredentialDto>, ApiError> {
    who.require_admin()?;
    s.within_rate(Action::CredentialCheck, &who).await?;
    Ok(Json((&s.app.validate_credential(&who, id).await?).into()))
}

/// Deletes a credential no resource uses.
#[utoipa::path(delete, path = "/admin/credentials/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = CredentialId, Path, description = "The credential's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 409, description = "CONFLICT: resources still use the credential", body = ErrorBody),
    ))]
pub async fn delete_credential(
    State(s): State<ApiState>,
    Caller(who): Caller,
    Id(id): Id<CredentialId>,
) -> Result<StatusCode, ApiError> {
    s.app.delete_credential(&who, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct IamPolicyQuery {
    /// The credential the policy is for.
    #[param(value_type = CredentialId)]
    credential_id: String,
}

/// The least-privilege IAM policy a credential needs for the organization's resources.
#[utoipa::path(get, path = "/admin/iam-policy", tag = "admin", security(("bearer" = [])),
    params(IamPolicyQuery),
    responses(
        (status = 200, description = "The policies", body = IamPolicyDto),
        (status = 400, description = "VALIDATION_FAILED: no credentialId, or another parameter", body = ErrorBody),
        (status = 404, description = "NOT_FOUND: no such credential", body = ErrorBody),
    ))]
pub async fn iam_policy(
    State(s): State<ApiState>,
    Caller(who): Caller,
    query: Result<Query<IamPolicyQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<IamPolicyDto>, ApiError> {
    who.require_admin()?;
    let Query(q) = query.map_err(|e| {
        let text = e.body_text();
        if text.contains("missing field") {
            ApiError::field("credentialId", "is required")
        } else {
            ApiError::validation(text)
        }
    })?;
    let id: CredentialId = q
        .credential_id
        .parse()
        .map_err(|_| ApiError::not_found("Credential"))?;
    let view = s.app.iam_policy(&who, id, &s.entryguard_principal).await?;
    Ok(Json(view.into()))
}

/// The organization's resources.
#[utoipa::path(get, path = "/admin/resources", tag = "admin", security(("bearer" = [])),
    responses((status = 200, description = "The resources", body = Vec<ResourceDto>)))]
pub async fn list_resources(
    State(s): State<ApiState>,
    Caller(who): Caller,
) -> Result<Json<Vec<ResourceDto>>, ApiError> {
    let list = s.app.list_resources(&who).await?;
    Ok(Json(list.iter().map(Into::into).collect()))
}

/// Adds a resource: a security group and the ports a session opens on it.
#[utoipa::path(post, path = "/admin/resources", tag = "admin", security(("bearer" = [])),
    request_body = NewResource,
    responses((status = 201, description = "The resource", body = ResourceDto)))]
pub async fn create_resource(
    State(s): State<ApiState>,
    Caller(who): Caller,
    JsonBody(body): JsonBody<NewResource>,
) -> Result<Created<ResourceDto>, ApiError> {
    who.require_admin()?;
    let r = s.app.create_resource(&who, body).await?;
    Ok((StatusCode::CREATED, Json((&r).into())))
}

/// Changes any of a resource's fields; absent fields are kept.
#[utoipa::path(patch, path = "/admin/resources/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = ResourceId, Path, description = "The resource's id")),
    request_body = ResourcePatch,
    responses((status = 200, description = "The resource", body = ResourceDto)))]
pub async fn update_resource(
    State(s): State<ApiState>,
    Caller(who): Caller,
    Id(id): Id<ResourceId>,
    JsonBody(body): JsonBody<ResourcePatch>,
) -> Result<Json<ResourceDto>, ApiError> {
    who.require_admin()?;
    Ok(Json((&s.app.update_resource(&who, id, body).await?).into()))
}

/// Deletes a resource and unlinks it from roles and users.
#[utoipa::path(delete, path = "/admin/resources/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = ResourceId, Path, description = "The resource's id")),
    responses((status = 204, description = "Deleted")))]
pub async fn delete_resource(
    State(s): State<ApiState>,
    Caller(who): Caller,
    Id(id): Id<ResourceId>,
) -> Result<StatusCode, ApiError> {
    s.app.delete_resource(&who, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The organization's roles.
#[utoipa::path(get, path = "/admin/roles", tag = "admin", security(("bearer" = [])),
    responses((status = 200, description = "The roles", body = Vec<RoleDto>)))]
pub async fn list_roles(
    State(s): State<ApiState>,
    Caller(who): Caller,
) -> Result<Json<Vec<RoleDto>>, ApiError> {
    let list = s.app.list_roles(&who).await?;
    Ok(Json(list.iter().map(Into::into).collect()))
}

/// Adds a role linking users to resources.
#[utoipa::path(post, path = "/admin/roles", tag = "admin", security(("bearer" = [])),
    request_body = NewRole,
    responses((status = 201, description = "The role", body = RoleDto)))]
pub async fn create_role(
    State(s): State<ApiState>,
    Caller(who): Caller,
    JsonBody(body): JsonBody<NewRole>,
) -> Result<Created<RoleDto>, ApiError> {
    who.require_admin()?;
    let r = s.app.create_role(&who, body).await?;
    Ok((StatusCode::CREATED, Json((&r).into())))
}

/// Changes any of a role's fields; absent fields are kept.
#[utoipa::path(patch, path = "/admin/roles/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = RoleId, Path, description = "The role's id")),
    request_body = RolePatch,
    responses((status = 200, description = "The role", body = RoleDto)))]
pub async fn update_role(
    State(s): State<ApiState>,
    Caller(who): Caller,
    Id(id): Id<RoleId>,
    JsonBody(body): JsonBody<RolePatch>,
) -> Result<Json<RoleDto>, ApiError> {
    who.require_admin()?;
    Ok(Json((&s.app.update_role(&who, id, body).await?).into()))
}

/// Deletes a role.
#[utoipa::path(delete, path = "/admin/roles/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = RoleId, Path, description = "The role's id")),
    responses((status = 204, description = "Deleted")))]
pub async fn delete_role(
    State(s): State<ApiState>,
    Caller(who): Caller,
    Id(id): Id<RoleId>,
) -> Result<StatusCode, ApiError> {
    s.app.delete_role(&who, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The organization's users.
#[utoipa::path(get, path = "/admin/users", tag = "admin", security(("bearer" = [])),
    responses((status = 200, description = "The users", body = Vec<UserDto>)))]
pub async fn list_users(
    State(s): State<ApiState>,
    Caller(who): Caller,
) -> Result<Json<Vec<UserDto>>, ApiError> {
    let list = s.app.list_users(&who).await?;
    Ok(Json(list.iter().map(Into::into).collect()))
}

/// Adds a user; an e-mail already used is VALIDATION_FAILED on `fields.email`.
#[utoipa::path(post, path = "/admin/users", tag = "admin", security(("bearer" = [])),
    request_body = NewUser,
    responses((status = 201, description = "The user", body = UserDto)))]
pub async fn create_user(
    State(s): State<ApiState>,
    Caller(who): Caller,
    JsonBody(body): JsonBody<NewUser>,
) -> Result<Created<UserDto>, ApiError> {
    who.require_admin()?;
    let u = s.app.create_user(&who, body).await?;
    Ok((StatusCode::CREATED, Json((&u).into())))
}

/// Changes any of a user's fields; absent fields are kept.
#[utoipa::path(patch, path = "/admin/users/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = UserId, Path, description = "The user's id")),
    request_body = UserPatch,
    responses(
        (status = 200, description = "The user", body = UserDto),
        (status = 409, description = "CONFLICT: an admin cannot remove their own administrator rights", body = ErrorBody),
    ))]
pub async fn update_user(
    State(s): State<ApiState>,
    Caller(who): Caller,
    Id(id): Id<UserId>,
    JsonBody(body): JsonBody<UserPatch>,
) -> Result<Json<UserDto>, ApiError> {
    who.require_admin()?;
    Ok(Json((&s.app.update_user(&who, id, body).await?).into()))
}

/// Deletes a user, ends their live sessions and removes them from every role.
#[utoipa::path(delete, path = "/admin/users/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = UserId, Path, description = "The user's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 409, description = "CONFLICT: an admin cannot delete themself", body = ErrorBody),
    ))]
pub async fn delete_user(
    State(s): State<ApiState>,
    Caller(who): Caller,
    Id(id): Id<UserId>,
) -> Result<StatusCode, ApiError> {
    s.app.delete_user(&who, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Only events at or after this time.
    #[param(value_type = Option<String>, format = DateTime)]
    from: Option<String>,
    /// Only events before this time.
    #[param(value_type = Option<String>, format = DateTime)]
    to: Option<String>,
    /// Only events of this type.
    #[serde(rename = "type")]
    #[param(value_type = Option<AuditType>)]
    kind: Option<String>,
    /// Only events whose actor is this user.
    #[param(value_type = Option<UserId>)]
    user_id: Option<String>,
    /// The `nextCursor` of the previous page.
    #[param(min_length = 1, max_length = 200)]
    cursor: Option<String>,
    /// Page size (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 200)]
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
        // `?userId=` is neither a user id nor "any user": leaving the parameter out is.
        for (field, value) in [
            ("from", &self.from),
            ("to", &self.to),
            ("type", &self.kind),
            ("userId", &self.user_id),
            ("cursor", &self.cursor),
            ("limit", &self.limit),
        ] {
            if value.as_deref() == Some("") {
                return Err(ApiError::field(
                    field,
                    "must not be empty; leave the parameter out instead",
                ));
            }
        }
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

/// The audit log, newest first, one page at a time.
#[utoipa::path(get, path = "/admin/audit-logs", tag = "admin", security(("bearer" = [])),
    params(AuditParams),
    responses(
        (status = 200, description = "A page of events", body = AuditPageDto),
        (status = 400, description = "VALIDATION_FAILED: a query parameter is malformed or unknown", body = ErrorBody),
    ))]
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

#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = Redriven)]
#[serde(rename_all = "camelCase")]
pub struct RedrivenDto {
    pub redriven: usize,
}

/// Puts the organization's tasks in the dead-letter queue back on the work queue.
#[utoipa::path(post, path = "/admin/dead-letters/redrive", tag = "admin", security(("bearer" = [])),
    responses(
        (status = 200, description = "How many tasks went back on the work queue", body = RedrivenDto),
        (status = 403, description = "FORBIDDEN: the caller is not an admin; ORGANIZATION_SUSPENDED: the operator suspended the organization", body = ErrorBody),
    ))]
pub async fn redrive_dead_letters(
    State(s): State<ApiState>,
    Caller(who): Caller,
) -> Result<Json<RedrivenDto>, ApiError> {
    who.require_admin()?;
    s.within_rate(Action::Redrive, &who).await?;
    let done = s.app.redrive_dead_letters(&who).await?;
    Ok(Json(RedrivenDto {
        redriven: done.redriven,
    }))
}
