//! Response bodies: the API's JSON shapes (docs/api.md), built from domain values.

use serde::Serialize;
use utoipa::ToSchema;

use entryguard::app::admin::{IamPolicyView, UserView};
use entryguard::domain::audit::{AuditEvent, AuditPage, AuditType};
use entryguard::domain::ids::{AuditId, CredentialId, ResourceId, RoleId, SessionId, UserId};
use entryguard::domain::model::{Credential, Email, Name, Resource, Role};
use entryguard::domain::net::{PortRange, Region, SecurityGroupId};
use entryguard::domain::tier::Hours;
use entryguard::domain::Timestamp;

pub use entryguard::wire::{
    EntryDto, IpDto, MeDto, OrganizationDto, SessionDto, StoppedByDto, UserSummary,
};

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
            provider: c.provider(),
            region: c.region.to_string(),
            access_key_id: c.access_key_id().map(ToString::to_string),
            role_arn: c.role_arn().map(ToString::to_string),
            external_id: c.external_id().map(ToString::to_string),
            has_secret: c.sealed_secret().is_some(),
            status: c.status,
            status_message: c.status_message.clone(),
            account_id: c.account_id.as_ref().map(ToString::to_string),
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

/// The caller's address as the server saw it, and a proof of it for a start request.
#[derive(Serialize, ToSchema)]
#[schema(as = Address)]
#[serde(rename_all = "camelCase")]
pub struct AddressDto {
    /// An IPv4 or IPv6 address, detected server-side.
    pub address: String,
    pub version: entryguard::domain::net::IpVersion,
    /// Opaque; valid for this user for two minutes. Send it in `addressProofs`.
    pub proof: String,
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
}

impl From<entryguard::domain::address_proof::SignedAddress> for AddressDto {
    fn from(s: entryguard::domain::address_proof::SignedAddress) -> Self {
        Self {
            address: s.address.to_string(),
            version: s.address.version(),
            proof: s.proof,
            expires_at: s.expires_at,
        }
    }
}
