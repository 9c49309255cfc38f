//! The API's session-facing JSON shapes (docs/api.md): what `GET /api/me` and `/api/sessions*`
//! answer. They live here, serializable both ways and free of the HTTP stack, so that the API
//! (functions/api re-exports them) and the command line (cli/) share one definition of the
//! contract; the `openapi` feature adds their schemas for the API's document.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::app::sessions::MeView;
use crate::domain::model::Organization;
use crate::domain::net::IpVersion;
use crate::domain::session::{EntryStatus, Session, SessionStatus};
use crate::domain::Timestamp;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct UserSummary {
    #[cfg_attr(feature = "openapi", schema(value_type = crate::domain::ids::UserId))]
    pub id: String,
    #[cfg_attr(feature = "openapi", schema(value_type = crate::domain::model::Email))]
    pub email: String,
    pub is_admin: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = Organization))]
#[serde(rename_all = "camelCase")]
pub struct OrganizationDto {
    #[cfg_attr(feature = "openapi", schema(value_type = crate::domain::ids::OrgId))]
    pub id: String,
    #[cfg_attr(feature = "openapi", schema(value_type = crate::domain::model::Name))]
    pub name: String,
    /// The plan; only the operator of the deployment changes it.
    pub tier: crate::domain::tier::Tier,
    /// A suspended organization starts and extends no sessions.
    pub status: crate::domain::model::OrgStatus,
    /// What IPv6 rules of new sessions open: 128 (the address) or 64 (its network).
    #[serde(default)]
    pub ipv6_prefix: crate::domain::net::Ipv6Prefix,
}

impl From<&Organization> for OrganizationDto {
    fn from(o: &Organization) -> Self {
        Self {
            id: o.id.to_string(),
            name: o.name.to_string(),
            tier: o.tier,
            status: o.status,
            ipv6_prefix: o.ipv6_prefix,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = Me))]
#[serde(rename_all = "camelCase")]
pub struct MeDto {
    pub user: UserSummary,
    pub organization: OrganizationDto,
    /// The session durations the caller may choose, in hours.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<crate::domain::tier::Hours>))]
    pub allowed_durations_hours: Vec<u8>,
    /// The longest a session may last, extensions included: the most restrictive of the plan and
    /// the caller's roles.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::domain::tier::Hours))]
    pub max_session_duration_hours: u8,
    /// `null`: unlimited.
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    #[cfg_attr(feature = "openapi", schema(required))]
    pub max_concurrent_sessions: Option<u32>,
    /// How many resources the caller can reach.
    pub resource_count: usize,
}

impl From<MeView> for MeDto {
    fn from(me: MeView) -> Self {
        let user = &me.identity.user;
        Self {
            user: UserSummary {
                id: user.id.to_string(),
                email: user.email.to_string(),
                is_admin: user.is_admin,
            },
            organization: (&me.identity.org).into(),
            allowed_durations_hours: me.policy.allowed_durations,
            max_session_duration_hours: me.policy.max_session_hours,
            max_concurrent_sessions: me.policy.max_concurrent_sessions,
            resource_count: me.resource_count,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = IpAddress))]
#[serde(rename_all = "camelCase")]
pub struct IpDto {
    /// An IPv4 or IPv6 address, detected server-side.
    pub address: String,
    pub version: IpVersion,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = SessionResource))]
#[serde(rename_all = "camelCase")]
pub struct EntryDto {
    #[cfg_attr(feature = "openapi", schema(value_type = crate::domain::ids::ResourceId))]
    pub resource_id: String,
    #[cfg_attr(feature = "openapi", schema(value_type = crate::domain::model::Name))]
    pub resource_name: String,
    /// The client address this entry opens the resource to.
    pub ip: String,
    /// The network its rules open: the address as /32 or /128, or its IPv6 /64.
    #[serde(default)]
    pub cidr: String,
    pub status: EntryStatus,
    /// Why the entry FAILED, for a person.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = Session))]
#[serde(rename_all = "camelCase")]
pub struct SessionDto {
    #[cfg_attr(feature = "openapi", schema(value_type = crate::domain::ids::SessionId))]
    pub id: String,
    #[cfg_attr(feature = "openapi", schema(value_type = crate::domain::ids::UserId))]
    pub user_id: String,
    pub status: SessionStatus,
    pub ip_addresses: Vec<IpDto>,
    /// How many distinct resources the session covers.
    pub resource_count: usize,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub expires_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    /// When the session was stopped or expired; `null` while it lasts.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub ended_at: Option<Timestamp>,
    /// One entry per resource × IP address.
    pub resources: Vec<EntryDto>,
    /// The administrator who stopped the session, when its own user did not; `null` otherwise.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub stopped_by: Option<StoppedByDto>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = StoppedBy))]
#[serde(rename_all = "camelCase")]
pub struct StoppedByDto {
    #[cfg_attr(feature = "openapi", schema(value_type = crate::domain::ids::UserId))]
    pub user_id: String,
    #[cfg_attr(feature = "openapi", schema(value_type = crate::domain::model::Email))]
    pub email: String,
}

impl From<&Session> for SessionDto {
    fn from(s: &Session) -> Self {
        Self {
            id: s.id.to_string(),
            user_id: s.user_id.to_string(),
            status: s.status(),
            ip_addresses: s
                .ip_addresses
                .iter()
                .map(|ip| IpDto {
                    address: ip.to_string(),
                    version: ip.version(),
                })
                .collect(),
            resource_count: s
                .entries
                .iter()
                .map(|e| e.resource_id)
                .collect::<BTreeSet<_>>()
                .len(),
            created_at: s.created_at,
            expires_at: s.expires_at,
            ended_at: s.ended_at,
            resources: s
                .entries
                .iter()
                .map(|e| EntryDto {
                    resource_id: e.resource_id.to_string(),
                    resource_name: e.resource_name.to_string(),
                    ip: e.ip.to_string(),
                    cidr: e.ip.network(e.ipv6_prefix).to_string(),
                    status: e.status,
                    error: e.error.clone(),
                })
                .collect(),
            stopped_by: s.stopped_by.as_ref().map(|b| StoppedByDto {
                user_id: b.user_id.to_string(),
                email: b.email.clone(),
            }),
        }
    }
}
