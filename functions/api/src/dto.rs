//! Response bodies: the API's JSON shapes (docs/api.md), built from domain values.

use std::collections::BTreeSet;

use serde::Serialize;
use utoipa::ToSchema;

use entryguard::app::admin::{IamPolicyView, UserView};
use entryguard::app::sessions::MeView;
use entryguard::domain::audit::{AuditEvent, AuditPage, AuditType};
use entryguard::domain::ids::{
    AuditId, CredentialId, OrgId, ResourceId, RoleId, SessionId, UserId,
};
use entryguard::domain::model::{Credential, Email, Name, Organization, Resource, Role};
use entryguard::domain::net::{IpVersion, PortRange, Region, SecurityGroupId};
use entryguard::domain::session::{EntryStatus, Session, SessionStatus};
use entryguard::domain::tier::Hours;
use entryguard::domain::Timestamp;

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserSummary {
    #[schema(value_type = UserId)]
    pub id: String,
    #[schema(value_type = Email)]
    pub email: String,
    pub is_admin: bool,
}

#[derive(Serialize, ToSchema)]
#[schema(as = Organization)]
#[serde(rename_all = "camelCase")]
pub struct OrganizationDto {
    #[schema(value_type = OrgId)]
    pub id: String,
    #[schema(value_type = Name)]
    pub name: String,
    /// The plan; only the operator of the deployment changes it.
    pub tier: entryguard::domain::tier::Tier,
    /// A suspended organization starts and extends no sessions.
    pub status: entryguard::domain::model::OrgStatus,
}

impl From<&Organization> for OrganizationDto {
    fn from(o: &Organization) -> Self {
        Self {
            id: o.id.to_string(),
            name: o.name.to_string(),
            tier: o.tier,
            status: o.status,
        }
    }
}

#[derive(Serialize, ToSchema)]
#[schema(as = Me)]
#[serde(rename_all = "camelCase")]
pub struct MeDto {
    pub user: UserSummary,
    pub organization: OrganizationDto,
    /// The session durations the caller may choose, in hours.
    #[schema(value_type = Vec<Hours>)]
    pub allowed_durations_hours: Vec<u8>,
    /// The longest a session may last, extensions included: the most restrictive of the plan and
    /// the caller's roles.
    #[schema(value_type = Hours)]
    pub max_session_duration_hours: u8,
    /// `null`: unlimited.
    #[schema(minimum = 1)]
    #[schema(required)]
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

#[derive(Serialize, ToSchema)]
#[schema(as = IpAddress)]
#[serde(rename_all = "camelCase")]
pub struct IpDto {
    /// An IPv4 or IPv6 address, detected server-side.
    pub address: String,
    pub version: IpVersion,
}

#[derive(Serialize, ToSchema)]
#[schema(as = SessionResource)]
#[serde(rename_all = "camelCase")]
pub struct EntryDto {
    #[schema(value_type = ResourceId)]
    pub resource_id: String,
    #[schema(value_type = Name)]
    pub resource_name: String,
    /// The client address this entry opens the resource to.
    pub ip: String,
    pub status: EntryStatus,
    /// Why the entry FAILED, for a person.
    #[schema(required)]
    pub error: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = Session)]
#[serde(rename_all = "camelCase")]
pub struct SessionDto {
    #[schema(value_type = SessionId)]
    pub id: String,
    #[schema(value_type = UserId)]
    pub user_id: String,
    pub status: SessionStatus,
    pub ip_addresses: Vec<IpDto>,
    /// How many distinct resources the session covers.
    pub resource_count: usize,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    /// When the session was stopped or expired; `null` while it lasts.
    #[schema(required)]
    pub ended_at: Option<Timestamp>,
    /// One entry per resource × IP address.
    pub resources: Vec<EntryDto>,
    /// The administrator who stopped the session, when its own user did not; `null` otherwise.
    #[schema(required)]
    pub stopped_by: Option<StoppedByDto>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = StoppedBy)]
#[serde(rename_all = "camelCase")]
pub struct StoppedByDto {
    #[schema(value_type = UserId)]
    pub user_id: String,
    #[schema(value_type = Email)]
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

#[derive(Serialize, ToSchema)]
#[schema(as = Credential)]
#[serde(rename_all = "camelCase")]
pub struct CredentialDto {
    #[schema(value_type = CredentialId)]
    pub id: String,
    #[schema(value_type = Name)]
    pub name: String,
    pub provider: entryguard::domain::model::Provider,
    #[schema(value_type = Region)]
    pub region: String,
    #[schema(required)]
    pub access_key_id: Option<String>,
    #[schema(required)]
    pub role_arn: Option<String>,
    #[schema(required)]
    pub external_id: Option<String>,
    /// Whether a secret access key is stored; the secret itself is never returned.
    pub has_secret: bool,
    pub status: entryguard::domain::model::CredentialStatus,
    /// Why the last check found the credential INVALID.
    #[schema(required)]
    pub status_message: Option<String>,
    #[schema(required)]
    pub account_id: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[schema(required)]
    pub checked_at: Option<Timestamp>,
    #[schema(value_type = String, format = DateTime)]
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

#[derive(Serialize, ToSchema)]
#[schema(as = Resource)]
#[serde(rename_all = "camelCase")]
pub struct ResourceDto {
    #[schema(value_type = ResourceId)]
    pub id: String,
    #[schema(value_type = Name)]
    pub name: String,
    #[schema(value_type = CredentialId)]
    pub credential_id: String,
    #[schema(value_type = SecurityGroupId)]
    pub security_group_id: String,
    #[schema(value_type = Region)]
    pub region: String,
    pub ports: Vec<PortRange>,
    #[schema(value_type = String, format = DateTime)]
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

#[derive(Serialize, ToSchema)]
#[schema(as = Role)]
#[serde(rename_all = "camelCase")]
pub struct RoleDto {
    #[schema(value_type = RoleId)]
    pub id: String,
    #[schema(value_type = Name)]
    pub name: String,
    /// Lowers the plan's maximum for the role's members; `null`: the plan's maximum.
    #[schema(value_type = Option<Hours>)]
    #[schema(required)]
    pub max_session_duration_hours: Option<u8>,
    #[schema(value_type = Vec<ResourceId>)]
    pub resource_ids: Vec<String>,
    #[schema(value_type = Vec<UserId>)]
    pub user_ids: Vec<String>,
    #[schema(value_type = String, format = DateTime)]
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

#[derive(Serialize, ToSchema)]
#[schema(as = User)]
#[serde(rename_all = "camelCase")]
pub struct UserDto {
    #[schema(value_type = UserId)]
    pub id: String,
    #[schema(value_type = Email)]
    pub email: String,
    pub is_admin: bool,
    #[schema(value_type = Vec<ResourceId>)]
    pub resource_ids: Vec<String>,
    #[schema(value_type = Vec<RoleId>)]
    pub role_ids: Vec<String>,
    #[schema(value_type = String, format = DateTime)]
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

#[derive(Serialize, ToSchema)]
#[schema(as = AuditEvent)]
#[serde(rename_all = "camelCase")]
pub struct AuditEventDto {
    #[schema(value_type = AuditId)]
    pub id: String,
    #[schema(value_type = String, format = DateTime)]
    pub time: Timestamp,
    #[serde(rename = "type")]
    #[schema(value_type = AuditType)]
    pub kind: &'static str,
    #[schema(value_type = Option<UserId>)]
    #[schema(required)]
    pub actor_id: Option<String>,
    #[schema(required)]
    pub actor_email: Option<String>,
    #[schema(required)]
    pub ip: Option<String>,
    #[schema(value_type = Option<SessionId>)]
    #[schema(required)]
    pub session_id: Option<String>,
    #[schema(value_type = Option<ResourceId>)]
    #[schema(required)]
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

#[derive(Serialize, ToSchema)]
#[schema(as = AuditPage)]
#[serde(rename_all = "camelCase")]
pub struct AuditPageDto {
    pub items: Vec<AuditEventDto>,
    /// Pass as `cursor` for the next (older) page; `null` on the last page.
    #[schema(required)]
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

#[derive(Serialize, ToSchema)]
#[schema(as = IamPolicy)]
#[serde(rename_all = "camelCase")]
pub struct IamPolicyDto {
    #[schema(value_type = CredentialId)]
    pub credential_id: String,
    #[schema(value_type = Object)]
    /// The identity policy the credential needs (IAM policy JSON).
    pub policy: serde_json::Value,
    #[schema(value_type = Option<Object>)]
    /// For role credentials: the trust policy that lets EntryGuard assume the role; otherwise `null`.
    #[schema(required)]
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
