//! Development-only routes, mounted by the local runner and never by the Lambda.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};

use entryguard::domain::model::Email;
use entryguard::embedded::firewall::SimGroup;

use crate::error::ApiError;
use crate::extract::{ClientAddr, JsonBody};
use crate::ApiState;

fn dev(s: &ApiState) -> Result<&crate::DevTools, ApiError> {
    s.dev.as_deref().ok_or_else(|| ApiError::not_found("Route"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    email: Email,
}

#[derive(Serialize)]
pub struct TokenDto {
    token: String,
}

pub async fn login(
    State(s): State<ApiState>,
    ClientAddr(ip): ClientAddr,
    JsonBody(body): JsonBody<LoginBody>,
) -> Result<Json<TokenDto>, ApiError> {
    dev(&s)?;
    let token = s
        .app
        .dev_login(&body.email, Some(ip))
        .await
        .map_err(|e| match e {
            entryguard::app::auth::AuthError::Unauthenticated => ApiError {
                message: format!("No user with the e-mail {}", body.email),
                ..ApiError::unauthenticated()
            },
            other => other.into(),
        })?;
    Ok(Json(TokenDto { token }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignUpBody {
    email: Email,
    organization_name: entryguard::domain::model::Name,
}

/// The development login's sign-up: the e-mail stands in for one an identity provider
/// verified; answers a sign-in token for the new administrator.
pub async fn sign_up(
    State(s): State<ApiState>,
    ClientAddr(ip): ClientAddr,
    JsonBody(body): JsonBody<SignUpBody>,
) -> Result<(axum::http::StatusCode, Json<TokenDto>), ApiError> {
    dev(&s)?;
    s.app
        .sign_up(&body.email, body.organization_name, Some(ip))
        .await?;
    let token = s.app.dev_login(&body.email, Some(ip)).await?;
    Ok((axum::http::StatusCode::CREATED, Json(TokenDto { token })))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DevUserDto {
    email: String,
    is_admin: bool,
    organization_name: String,
}

pub async fn users(State(s): State<ApiState>) -> Result<Json<Vec<DevUserDto>>, ApiError> {
    let tools = dev(&s)?;
    let mut out = Vec::new();
    for org_id in &tools.orgs {
        let Some(org) = s.app.store.get_org(*org_id).await? else {
            continue;
        };
        for u in s.app.store.list_users(org.id).await? {
            out.push(DevUserDto {
                email: u.email.to_string(),
                is_admin: u.is_admin,
                organization_name: org.name.to_string(),
            });
        }
    }
    out.sort_by(|a, b| (!a.is_admin, &a.email).cmp(&(!b.is_admin, &b.email)));
    Ok(Json(out))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClockBody {
    advance_seconds: i64,
}

#[derive(Serialize)]
pub struct ClockDto {
    now: entryguard::domain::Timestamp,
}

/// At most 30 days per call: enough to pass any expiry.
const MAX_ADVANCE_SECS: i64 = 30 * 24 * 3600;

pub async fn clock(
    State(s): State<ApiState>,
    JsonBody(body): JsonBody<ClockBody>,
) -> Result<Json<ClockDto>, ApiError> {
    let clock = dev(&s)?
        .clock
        .as_ref()
        .ok_or_else(|| ApiError::not_found("Route"))?;
    if !(0..=MAX_ADVANCE_SECS).contains(&body.advance_seconds) {
        return Err(ApiError::field(
            "advanceSeconds",
            format!("must be between 0 and {MAX_ADVANCE_SECS}"),
        ));
    }
    let now = clock.advance(chrono::Duration::seconds(body.advance_seconds));
    Ok(Json(ClockDto { now }))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SimRuleDto {
    protocol: &'static str,
    from_port: u16,
    to_port: u16,
    cidr: String,
    description: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SimGroupDto {
    security_group_id: String,
    region: String,
    name: String,
    rules: Vec<SimRuleDto>,
}

impl From<SimGroup> for SimGroupDto {
    fn from(g: SimGroup) -> Self {
        Self {
            security_group_id: g.security_group_id.to_string(),
            region: g.region.to_string(),
            name: g.name,
            rules: g
                .rules
                .into_iter()
                .map(|r| SimRuleDto {
                    protocol: r.ports.protocol().as_str(),
                    from_port: r.ports.from_port(),
                    to_port: r.ports.to_port(),
                    cidr: r.cidr.to_string(),
                    description: r.description,
                })
                .collect(),
        }
    }
}

/// The stand-in directory's people: who was invited (and how often) and who is disabled.
pub async fn directory(
    State(s): State<ApiState>,
) -> Result<Json<Vec<entryguard::embedded::Invitation>>, ApiError> {
    let directory = dev(&s)?
        .directory
        .as_ref()
        .ok_or_else(|| ApiError::not_found("Route"))?;
    let people = directory.people().map_err(|e| {
        tracing::error!(error = %e, "stand-in directory unreadable");
        ApiError::internal()
    })?;
    Ok(Json(people))
}

pub async fn firewall(State(s): State<ApiState>) -> Result<Json<Vec<SimGroupDto>>, ApiError> {
    let sim = dev(&s)?
        .sim
        .as_ref()
        .ok_or_else(|| ApiError::not_found("Route"))?;
    let groups = sim.groups().map_err(|e| {
        tracing::error!(error = %e, "simulated cloud unreadable");
        ApiError::internal()
    })?;
    Ok(Json(groups.into_iter().map(Into::into).collect()))
}

/// The operational figures since the runner started, by name: what the Lambdas write as
/// CloudWatch embedded metrics (infra/README.md lists them).
pub async fn metrics(
    State(s): State<ApiState>,
) -> Result<
    Json<std::collections::BTreeMap<&'static str, entryguard::embedded::metrics::Summary>>,
    ApiError,
> {
    let metrics = dev(&s)?
        .metrics
        .as_ref()
        .ok_or_else(|| ApiError::not_found("Route"))?;
    Ok(Json(metrics.snapshot()))
}
