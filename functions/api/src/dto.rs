//! Response bodies: the API's JSON shapes (docs/api.md), built from domain values.

use std::collections::BTreeSet;

use serde::Serialize;

use entryguard::app::admin::{IamPolicyView, UserView};
use entryguard::app::sessions::MeView;
use entryguard::domain::audit::{AuditEvent, AuditPage};
use entryguard::domain::model::{Credential, Organization, Resource, Role};
use entryguard::domain::net::{IpVersion, PortRange};
use entryguard::domain::session::{EntryStatus, Session, SessionStatus};
use entryguard::domain::Timestamp;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserSummary {
    pub id: String,
    pub email: String,
    pub is_admin: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrganizationDto {
    pub id: String,
    pub name: String,
    pub tier: entryguard::domain::tier::Tier,
}

impl From<&Organization> for OrganizationDto {
    fn from(o: &Organization) -> Self {
        Self {
            id: o.id.to_string(),
            name: o.name.to_string(),
            tier: o.tier,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MeDto {
    pub user: UserSummary,
    pub organization: OrganizationDto,
    pub allowed_durations_hours: Vec<u8>,
    pub max_session_duration_hours: u8,
    pub max_concurrent_sessions: Option<u32>,
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

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IpDto {
    pub address: String,
    pub version: IpVersion,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EntryDto {
    pub resource_id: String,
    pub resource_name: String,
    pub ip: String,
    pub status: EntryStatus,
    pub error: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionDto {
    pub id: String,
    pub user_id: String,
    pub status: SessionStatus,
    pub ip_addresses: Vec<IpDto>,
    pub resource_count: usize,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub ended_at: Option<Timestamp>,
    pub resources: Vec<EntryDto>,
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
                    status: e.status,
                    error: e.error.clone(),
                })
                .collect(),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialDto {
    pub id: String,
    pub name: String,
    pub provider: entryguard::domain::model::Provider,
    pub region: String,
    pub access_key_id: Option<String>,
    pub role_arn: Option<String>,
    pub external_id: Option<String>,
    pub has_secret: bool,
    pub status: entryguard::domain::model::CredentialStatus,
    /// Why the last check found the credential INVALID.
    pub status_message: Option<String>,
    pub account_id: Option<String>,
    pub checked_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

impl From<&Credential> for CredentialDto {
    fn from(c: &Credential) -> Self {
        Self {
            id: c.id.to_string(),
            name: c.name.to_string(),
            provider: c.provider,
            region: c.region.to_string(),
            access_key_id: c.access_key_id.clone(),
            role_arn: c.role_arn.clone(),
            external_id: c.external_id.clone(),
            has_secret: c.sealed_secret.is_some(),
            status: c.status,
            status_message: c.status_message.clone(),
            account_id: c.account_id.clone(),
            checked_at: c.checked_at,
            created_at: c.created_at,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceDto {
    pub id: String,
    pub name: String,
    pub credential_id: String,
    pub security_group_id: String,
    pub region: String,
    pub ports: Vec<PortRange>,
    pub created_at: Timestamp,
}

impl From<&Resource> for ResourceDto {
    fn from(r: &Resource) -> Self {
        Self {
            id: r.id.to_string(),
            name: r.name.to_string(),
            credential_id: r.credential_id.to_string(),
            security_group_id: r.security_group_id.to_string(),
            region: r.region.to_string(),
            ports: r.ports.clone(),
            created_at: r.created_at,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleDto {
    pub id: String,
    pub name: String,
    pub max_session_duration_hours: Option<u8>,
    pub resource_ids: Vec<String>,
    pub user_ids: Vec<String>,
    pub created_at: Timestamp,
}

impl From<&Role> for RoleDto {
    fn from(r: &Role) -> Self {
        Self {
            id: r.id.to_string(),
            name: r.name.to_string(),
            max_session_duration_hours: r.max_session_duration_hours.map(|h| h.get()),
            resource_ids: r.resource_ids.iter().map(ToString::to_string).collect(),
            user_ids: r.user_ids.iter().map(ToString::to_string).collect(),
            created_at: r.created_at,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserDto {
    pub id: String,
    pub email: String,
    pub is_admin: bool,
    pub resource_ids: Vec<String>,
    pub role_ids: Vec<String>,
    pub created_at: Timestamp,
}

impl From<&UserView> for UserDto {
    fn from(v: &UserView) -> Self {
        Self {
            id: v.user.id.to_string(),
            email: v.user.email.to_string(),
            is_admin: v.user.is_admin,
            resource_ids: v
                .user
                .resource_ids
                .iter()
                .map(ToString::to_string)
                .collect(),
            role_ids: v.role_ids.iter().map(ToString::to_string).collect(),
            created_at: v.user.created_at,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEventDto {
    pub id: String,
    pub time: Timestamp,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub actor_id: Option<String>,
    pub actor_email: Option<String>,
    pub ip: Option<String>,
    pub session_id: Option<String>,
    pub resource_id: Option<String>,
    pub outcome: entryguard::domain::audit::Outcome,
    pub message: String,
}

impl From<&AuditEvent> for AuditEventDto {
    fn from(e: &AuditEvent) -> Self {
        Self {
            id: e.id.to_string(),
            time: e.time,
            kind: e.kind.as_str(),
            actor_id: e.actor_id.map(|i| i.to_string()),
            actor_email: e.actor_email.clone(),
            ip: e.ip.clone(),
            session_id: e.session_id.map(|i| i.to_string()),
            resource_id: e.resource_id.map(|i| i.to_string()),
            outcome: e.outcome,
            message: e.message.clone(),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditPageDto {
    pub items: Vec<AuditEventDto>,
    pub next_cursor: Option<String>,
}

impl From<&AuditPage> for AuditPageDto {
    fn from(p: &AuditPage) -> Self {
        Self {
            items: p.items.iter().map(Into::into).collect(),
            next_cursor: p.next_cursor.clone(),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IamPolicyDto {
    pub credential_id: String,
    pub policy: serde_json::Value,
    pub trust_policy: Option<serde_json::Value>,
}

impl From<IamPolicyView> for IamPolicyDto {
    fn from(v: IamPolicyView) -> Self {
        Self {
            credential_id: v.credential_id.to_string(),
            policy: v.policy,
            trust_policy: v.trust_policy,
        }
    }
}
