//! The admin surface: organization, credentials, resources, roles, users, audit log, IAM policy.
//! Every id is looked up inside the caller's organization, so another organization's ids look
//! exactly like missing ones.

use std::collections::BTreeSet;

use serde::{Deserialize, Deserializer};
use thiserror::Error;

use crate::domain::audit::{AuditPage, AuditQuery, AuditType};
use crate::domain::credential::{
    blank_or_parsed, AccessKeyId, CredentialAccess, ExternalId, RoleArn,
};
use crate::domain::iam;
use crate::domain::ids::{CredentialId, ResourceId, RoleId, UserId};
use crate::domain::model::{
    Credential, CredentialStatus, Email, Name, Organization, Provider, Resource, Role, Secret, User,
};
use crate::domain::net::{PortRange, Region, SecurityGroupId};
use crate::domain::tier::{Hours, Tier};
use crate::ports::directory::DirectoryError;
use crate::ports::secrets::{SealContext, SealError, SealPurpose};
use crate::ports::store::{CreateError, StoreError};

use super::audit::Audit;
use super::auth::AuthError;
use super::{App, Identity};

/// The most port ranges one resource may open.
pub const MAX_PORT_RANGES: usize = 20;

#[derive(Debug, Error)]
pub enum AdminError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("{message}")]
    Invalid { field: String, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Sealing(#[from] SealError),
    /// The sign-in directory could not invite or disable the person; nothing was changed.
    #[error("{0}; nothing was changed")]
    Directory(#[from] DirectoryError),
    #[error("Only ACTIVE, PENDING or PARTIAL sessions can be stopped; this one is {0}")]
    NotStoppable(crate::domain::session::SessionStatus),
    #[error("The plan ({current}) is changed only by the operator of this EntryGuard deployment; ask them to upgrade or downgrade it")]
    PlanIsOperators { current: Tier },
}

fn invalid(field: &str, message: impl Into<String>) -> AdminError {
    AdminError::Invalid {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// `null` and "absent" differ in a PATCH: `Some(None)` clears, `None` keeps.
fn double_option<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrganizationInput {
    pub name: Name,
    /// Read-only: the plan is changed by the operator of the deployment. Sending the current
    /// plan is accepted (so a form can send back what it read); any other plan is refused.
    #[serde(default)]
    pub tier: Option<Tier>,
    /// What IPv6 rules of sessions started from now on open: 128 (the address, the default) or
    /// 64 (its network, which survives privacy-address rotation). Kept when absent.
    #[serde(default)]
    pub ipv6_prefix: Option<crate::domain::net::Ipv6Prefix>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewCredential {
    pub name: Name,
    pub provider: Provider,
    pub region: Region,
    /// With provider `aws` and `secretAccessKey`: an access key id (16 to 128 upper-case letters
    /// and digits).
    #[serde(default, deserialize_with = "blank_or_parsed")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub access_key_id: Option<AccessKeyId>,
    /// Stored sealed, never returned.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub secret_access_key: Option<Secret>,
    /// With provider `aws`, instead of keys: an IAM role ARN such as
    /// `arn:aws:iam::123456789012:role/EntryGuard`.
    #[serde(default, deserialize_with = "blank_or_parsed")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub role_arn: Option<RoleArn>,
    /// 2 to 1224 characters; a role credential gets an organization-specific one when absent.
    #[serde(default, deserialize_with = "blank_or_parsed")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub external_id: Option<ExternalId>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewResource {
    pub name: Name,
    pub credential_id: CredentialId,
    pub security_group_id: SecurityGroupId,
    pub region: Region,
    #[cfg_attr(feature = "openapi", schema(schema_with = openapi::port_ranges))]
    pub ports: Vec<PortRange>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourcePatch {
    pub name: Option<Name>,
    pub credential_id: Option<CredentialId>,
    pub security_group_id: Option<SecurityGroupId>,
    pub region: Option<Region>,
    #[cfg_attr(feature = "openapi", schema(schema_with = openapi::optional_port_ranges))]
    pub ports: Option<Vec<PortRange>>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewRole {
    pub name: Name,
    /// Lowers the plan's maximum for the role's members; `null` or absent: no lower limit.
    #[serde(default)]
    pub max_session_duration_hours: Option<Hours>,
    /// Duplicates are ignored.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<ResourceId>))]
    #[serde(default)]
    pub resource_ids: BTreeSet<ResourceId>,
    /// Duplicates are ignored.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<UserId>))]
    #[serde(default)]
    pub user_ids: BTreeSet<UserId>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RolePatch {
    pub name: Option<Name>,
    /// `null` removes the role's limit; absent keeps it.
    #[serde(default, deserialize_with = "double_option")]
    pub max_session_duration_hours: Option<Option<Hours>>,
    /// Duplicates are ignored.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<ResourceId>>))]
    pub resource_ids: Option<BTreeSet<ResourceId>>,
    /// Duplicates are ignored.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<UserId>>))]
    pub user_ids: Option<BTreeSet<UserId>>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewUser {
    pub email: Email,
    #[serde(default)]
    pub is_admin: bool,
    /// Duplicates are ignored.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<ResourceId>))]
    #[serde(default)]
    pub resource_ids: BTreeSet<ResourceId>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserPatch {
    pub email: Option<Email>,
    pub is_admin: Option<bool>,
    /// Duplicates are ignored.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<ResourceId>>))]
    pub resource_ids: Option<BTreeSet<ResourceId>>,
}

/// A user as the admin pages show it: with the roles they are a member of.
#[derive(Debug, Clone)]
pub struct UserView {
    pub user: User,
    pub role_ids: BTreeSet<RoleId>,
}

/// `GET /api/admin/iam-policy`.
#[derive(Debug, Clone)]
pub struct IamPolicyView {
    pub credential_id: CredentialId,
    pub policy: serde_json::Value,
    pub trust_policy: Option<serde_json::Value>,
}

/// Schemas of the rules [`check_ports`] enforces.
#[cfg(feature = "openapi")]
mod openapi {
    use utoipa::openapi::schema::{ArrayBuilder, SchemaType, Type};
    use utoipa::openapi::{Array, Ref};

    fn ranges() -> ArrayBuilder {
        ArrayBuilder::new()
            .items(Ref::from_schema_name("PortRange"))
            .description(Some("1 to 20 distinct port ranges."))
            .min_items(Some(1))
            .max_items(Some(super::MAX_PORT_RANGES))
            .unique_items(true)
    }

    pub fn port_ranges() -> Array {
        ranges().build()
    }

    pub fn optional_port_ranges() -> Array {
        ranges()
            .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
            .build()
    }
}

fn check_ports(ports: &[PortRange]) -> Result<(), AdminError> {
    if ports.is_empty() {
        return Err(invalid("ports", "at least one port range is required"));
    }
    if ports.len() > MAX_PORT_RANGES {
        return Err(invalid(
            "ports",
            format!("at most {MAX_PORT_RANGES} port ranges per resource"),
        ));
    }
    let unique: BTreeSet<_> = ports.iter().collect();
    if unique.len() != ports.len() {
        return Err(invalid("ports", "the same port range is listed twice"));
    }
    Ok(())
}

impl App {
    async fn admin_change(&self, who: &Identity, message: String) {
        self.audit(Audit::by(who, AuditType::AdminChange, message))
            .await;
    }

    pub async fn get_organization(&self, who: &Identity) -> Result<Organization, AdminError> {
        who.require_admin()?;
        Ok(who.org.clone())
    }

    /// Renames the organization. The plan is the operator's: a different one is refused and
    /// nothing is written.
    pub async fn update_organization(
        &self,
        who: &Identity,
        input: OrganizationInput,
    ) -> Result<Organization, AdminError> {
        who.require_admin()?;
        let (before, after) = self
            .mutate_org(
                who.org.id,
                || AdminError::NotFound("Organization"),
                |org| match input.tier {
                    Some(tier) if tier != org.tier => {
                        Err(AdminError::PlanIsOperators { current: org.tier })
                    }
                    _ => {
                        org.name = input.name.clone();
                        if let Some(prefix) = input.ipv6_prefix {
                            org.ipv6_prefix = prefix;
                        }
                        Ok(())
                    }
                },
            )
            .await?;
        let Some(after) = after else {
            return Ok(before);
        };
        if before.name != after.name {
            self.admin_change(
                who,
                format!(
                    "Renamed the organization from '{}' to '{}'",
                    before.name, after.name
                ),
            )
            .await;
        }
        if before.ipv6_prefix != after.ipv6_prefix {
            self.admin_change(
                who,
                format!(
                    "IPv6 rules of new sessions now open a /{} (was /{})",
                    after.ipv6_prefix.bits(),
                    before.ipv6_prefix.bits()
                ),
            )
            .await;
        }
        Ok(after)
    }

    // Credentials.

    pub async fn list_credentials(&self, who: &Identity) -> Result<Vec<Credential>, AdminError> {
        who.require_admin()?;
        Ok(self.list_docs(who.org.id).await?)
    }

    pub async fn create_credential(
        &self,
        who: &Identity,
        input: NewCredential,
    ) -> Result<Credential, AdminError> {
        who.require_admin()?;
        let secret = input
            .secret_access_key
            .map(|s| Secret::new(s.expose().trim().to_owned()))
            .filter(|s| !s.expose().is_empty());
        // Chosen before the id is drawn, so a refused request uses none.
        enum Chosen {
            Simulated,
            Role(RoleArn, ExternalId),
            Keys(AccessKeyId, Secret),
        }
        let chosen = match input.provider {
            Provider::Simulated => {
                if input.access_key_id.is_some() || secret.is_some() || input.role_arn.is_some() {
                    return Err(invalid(
                        "provider",
                        "a simulated credential takes no keys or role",
                    ));
                }
                if input.external_id.is_some() {
                    return Err(invalid(
                        "externalId",
                        "only a role credential takes an external id",
                    ));
                }
                Chosen::Simulated
            }
            Provider::Aws => {
                match (input.access_key_id, secret, input.role_arn) {
                    (Some(access_key_id), Some(secret), None) => {
                        if input.external_id.is_some() {
                            return Err(invalid(
                            "externalId",
                            "only a role credential takes an external id; access keys need none",
                        ));
                        }
                        Chosen::Keys(access_key_id, secret)
                    }
                    // Role credentials get an organization-specific external id unless one is given.
                    (None, None, Some(role_arn)) => Chosen::Role(
                        role_arn,
                        input
                            .external_id
                            .unwrap_or_else(|| ExternalId::for_org(who.org.id)),
                    ),
                    (Some(_), None, _) => {
                        return Err(invalid(
                            "secretAccessKey",
                            "is required with an access key id",
                        ))
                    }
                    (None, Some(_), _) => {
                        return Err(invalid(
                            "accessKeyId",
                            "is required with a secret access key",
                        ))
                    }
                    (Some(_), Some(_), Some(_)) => {
                        return Err(invalid(
                            "roleArn",
                            "give either access keys or a role ARN, not both",
                        ))
                    }
                    (None, None, None) => return Err(invalid(
                        "roleArn",
                        "an AWS credential needs a role ARN (recommended) or an access key pair",
                    )),
                }
            }
        };
        let id = CredentialId::from_uuid(self.ids.uuid());
        let access = match chosen {
            Chosen::Simulated => CredentialAccess::Simulated,
            Chosen::Role(role_arn, external_id) => CredentialAccess::AssumeRole {
                role_arn,
                external_id: Some(external_id),
            },
            Chosen::Keys(access_key_id, secret) => {
                let context = SealContext {
                    org_id: who.org.id,
                    credential_id: id,
                    purpose: SealPurpose::CredentialSecret,
                };
                CredentialAccess::AccessKeys {
                    access_key_id,
                    sealed_secret: self.sealer.seal(&secret, &context).await?,
                }
            }
        };
        let credential = Credential {
            id,
            org_id: who.org.id,
            name: input.name,
            region: input.region,
            access,
            status: CredentialStatus::Unverified,
            account_id: None,
            checked_at: None,
            status_message: None,
            created_at: self.now(),
        };
        self.put_doc(&credential).await?;
        self.admin_change(who, format!("Created credential '{}'", credential.name))
            .await;
        Ok(credential)
    }

    pub async fn delete_credential(
        &self,
        who: &Identity,
        id: CredentialId,
    ) -> Result<(), AdminError> {
        who.require_admin()?;
        let credential: Credential = self
            .get_doc(who.org.id, *id.as_uuid())
            .await?
            .ok_or(AdminError::NotFound("Credential"))?;
        let users: Vec<Resource> = self.list_docs(who.org.id).await?;
        let using: Vec<String> = users
            .iter()
            .filter(|r| r.credential_id == id)
            .map(|r| r.name.to_string())
            .collect();
        if !using.is_empty() {
            return Err(AdminError::Conflict(format!(
                "The credential is used by resource(s) {}; move them to another credential first",
                using.join(", ")
            )));
        }
        self.delete_doc::<Credential>(who.org.id, *id.as_uuid())
            .await?;
        self.admin_change(who, format!("Deleted credential '{}'", credential.name))
            .await;
        Ok(())
    }

    pub async fn iam_policy(
        &self,
        who: &Identity,
        id: CredentialId,
        entryguard_principal: &str,
    ) -> Result<IamPolicyView, AdminError> {
        who.require_admin()?;
        let credential: Credential = self
            .get_doc(who.org.id, *id.as_uuid())
            .await?
            .ok_or(AdminError::NotFound("Credential"))?;
        let resources: Vec<Resource> = self.list_docs(who.org.id).await?;
        let refs: Vec<&Resource> = resources.iter().collect();
        Ok(IamPolicyView {
            credential_id: id,
            policy: iam::identity_policy(&credential, &refs),
            trust_policy: iam::trust_policy(&credential, entryguard_principal),
        })
    }

    // Resources.

    pub async fn list_resources(&self, who: &Identity) -> Result<Vec<Resource>, AdminError> {
        who.require_admin()?;
        Ok(self.list_docs(who.org.id).await?)
    }

    async fn check_credential(&self, who: &Identity, id: CredentialId) -> Result<(), AdminError> {
        match self
            .get_doc::<Credential>(who.org.id, *id.as_uuid())
            .await?
        {
            Some(_) => Ok(()),
            None => Err(invalid(
                "credentialId",
                "no such credential in this organization",
            )),
        }
    }

    pub async fn create_resource(
        &self,
        who: &Identity,
        input: NewResource,
    ) -> Result<Resource, AdminError> {
        who.require_admin()?;
        check_ports(&input.ports)?;
        self.check_credential(who, input.credential_id).await?;
        let resource = Resource {
            id: ResourceId::from_uuid(self.ids.uuid()),
            org_id: who.org.id,
            name: input.name,
            credential_id: input.credential_id,
            security_group_id: input.security_group_id,
            region: input.region,
            ports: input.ports,
            created_at: self.now(),
        };
        self.put_doc(&resource).await?;
        self.admin_change(
            who,
            format!(
                "Created resource '{}' ({})",
                resource.name, resource.security_group_id
            ),
        )
        .await;
        Ok(resource)
    }

    pub async fn update_resource(
        &self,
        who: &Identity,
        id: ResourceId,
        patch: ResourcePatch,
    ) -> Result<Resource, AdminError> {
        who.require_admin()?;
        let mut r: Resource = self
            .get_doc(who.org.id, *id.as_uuid())
            .await?
            .ok_or(AdminError::NotFound("Resource"))?;
        if let Some(ports) = patch.ports {
            check_ports(&ports)?;
            r.ports = ports;
        }
        if let Some(c) = patch.credential_id {
            self.check_credential(who, c).await?;
            r.credential_id = c;
        }
        if let Some(n) = patch.name {
            r.name = n;
        }
        if let Some(sg) = patch.security_group_id {
            r.security_group_id = sg;
        }
        if let Some(region) = patch.region {
            r.region = region;
        }
        self.put_doc(&r).await?;
        self.admin_change(who, format!("Updated resource '{}'", r.name))
            .await;
        Ok(r)
    }

    pub async fn delete_resource(&self, who: &Identity, id: ResourceId) -> Result<(), AdminError> {
        who.require_admin()?;
        let r: Resource = self
            .get_doc(who.org.id, *id.as_uuid())
            .await?
            .ok_or(AdminError::NotFound("Resource"))?;
        // Unlink it first, so no role or user ever points at a missing resource.
        for mut role in self.list_docs::<Role>(who.org.id).await? {
            if role.resource_ids.remove(&id) {
                self.put_doc(&role).await?;
            }
        }
        for mut user in self.store.list_users(who.org.id).await? {
            if user.resource_ids.remove(&id) {
                self.store.update_user(&user).await.map_err(create_error)?;
            }
        }
        self.delete_doc::<Resource>(who.org.id, *id.as_uuid())
            .await?;
        self.admin_change(who, format!("Deleted resource '{}'", r.name))
            .await;
        Ok(())
    }

    // Roles.

    pub async fn list_roles(&self, who: &Identity) -> Result<Vec<Role>, AdminError> {
        who.require_admin()?;
        Ok(self.list_docs(who.org.id).await?)
    }

    async fn check_refs(
        &self,
        who: &Identity,
        resources: Option<&BTreeSet<ResourceId>>,
        users: Option<&BTreeSet<UserId>>,
    ) -> Result<(), AdminError> {
        if let Some(ids) = resources {
            let known: BTreeSet<ResourceId> = self
                .list_docs::<Resource>(who.org.id)
                .await?
                .into_iter()
                .map(|r| r.id)
                .collect();
            if let Some(missing) = ids.iter().find(|id| !known.contains(id)) {
                return Err(invalid(
                    "resourceIds",
                    format!("no resource {missing} in this organization"),
                ));
            }
        }
        if let Some(ids) = users {
            let known: BTreeSet<UserId> = self
                .store
                .list_users(who.org.id)
                .await?
                .into_iter()
                .map(|u| u.id)
                .collect();
            if let Some(missing) = ids.iter().find(|id| !known.contains(id)) {
                return Err(invalid(
                    "userIds",
                    format!("no user {missing} in this organization"),
                ));
            }
        }
        Ok(())
    }

    pub async fn create_role(&self, who: &Identity, input: NewRole) -> Result<Role, AdminError> {
        who.require_admin()?;
        self.check_refs(who, Some(&input.resource_ids), Some(&input.user_ids))
            .await?;
        let role = Role {
            id: RoleId::from_uuid(self.ids.uuid()),
            org_id: who.org.id,
            name: input.name,
            max_session_duration_hours: input.max_session_duration_hours,
            resource_ids: input.resource_ids,
            user_ids: input.user_ids,
            created_at: self.now(),
        };
        self.put_doc(&role).await?;
        self.admin_change(who, format!("Created role '{}'", role.name))
            .await;
        Ok(role)
    }

    pub async fn update_role(
        &self,
        who: &Identity,
        id: RoleId,
        patch: RolePatch,
    ) -> Result<Role, AdminError> {
        who.require_admin()?;
        let mut role: Role = self
            .get_doc(who.org.id, *id.as_uuid())
            .await?
            .ok_or(AdminError::NotFound("Role"))?;
        self.check_refs(who, patch.resource_ids.as_ref(), patch.user_ids.as_ref())
            .await?;
        if let Some(n) = patch.name {
            role.name = n;
        }
        if let Some(max) = patch.max_session_duration_hours {
            role.max_session_duration_hours = max;
        }
        if let Some(r) = patch.resource_ids {
            role.resource_ids = r;
        }
        if let Some(u) = patch.user_ids {
            role.user_ids = u;
        }
        self.put_doc(&role).await?;
        self.admin_change(who, format!("Updated role '{}'", role.name))
            .await;
        Ok(role)
    }

    pub async fn delete_role(&self, who: &Identity, id: RoleId) -> Result<(), AdminError> {
        who.require_admin()?;
        let role: Role = self
            .get_doc(who.org.id, *id.as_uuid())
            .await?
            .ok_or(AdminError::NotFound("Role"))?;
        self.delete_doc::<Role>(who.org.id, *id.as_uuid()).await?;
        self.admin_change(who, format!("Deleted role '{}'", role.name))
            .await;
        Ok(())
    }

    // Users.

    async fn user_views(
        &self,
        who: &Identity,
        users: Vec<User>,
    ) -> Result<Vec<UserView>, AdminError> {
        let roles: Vec<Role> = self.list_docs(who.org.id).await?;
        Ok(users
            .into_iter()
            .map(|user| UserView {
                role_ids: roles
                    .iter()
                    .filter(|r| r.user_ids.contains(&user.id))
                    .map(|r| r.id)
                    .collect(),
                user,
            })
            .collect())
    }

    pub async fn list_users(&self, who: &Identity) -> Result<Vec<UserView>, AdminError> {
        who.require_admin()?;
        let users = self.store.list_users(who.org.id).await?;
        self.user_views(who, users).await
    }

    async fn org_user(&self, who: &Identity, id: UserId) -> Result<User, AdminError> {
        match self.store.get_user(id).await? {
            Some(u) if u.org_id == who.org.id => Ok(u),
            _ => Err(AdminError::NotFound("User")),
        }
    }

    pub async fn create_user(
        &self,
        who: &Identity,
        input: NewUser,
    ) -> Result<UserView, AdminError> {
        who.require_admin()?;
        self.check_refs(who, Some(&input.resource_ids), None)
            .await?;
        let user = User {
            id: UserId::from_uuid(self.ids.uuid()),
            org_id: who.org.id,
            email: input.email,
            is_admin: input.is_admin,
            resource_ids: input.resource_ids,
            created_at: self.now(),
        };
        self.store.create_user(&user).await.map_err(create_error)?;
        // The user exists first, so the e-mail is theirs alone before anyone is invited; a
        // failed invitation takes the user back.
        if let Err(error) = self.directory.invite(&user.email).await {
            tracing::warn!(%error, "invitation failed; the new user is taken back");
            self.store.delete_user(user.id).await?;
            return Err(error.into());
        }
        self.admin_change(
            who,
            format!("Created user {} and sent an invitation", user.email),
        )
        .await;
        Ok(UserView {
            user,
            role_ids: BTreeSet::new(),
        })
    }

    pub async fn update_user(
        &self,
        who: &Identity,
        id: UserId,
        patch: UserPatch,
    ) -> Result<UserView, AdminError> {
        who.require_admin()?;
        let mut user = self.org_user(who, id).await?;
        let old_email = user.email.clone();
        self.check_refs(who, patch.resource_ids.as_ref(), None)
            .await?;
        if id == who.user.id && patch.is_admin == Some(false) {
            return Err(AdminError::Conflict(
                "You cannot remove your own administrator rights".into(),
            ));
        }
        if let Some(e) = patch.email {
            user.email = e;
        }
        if let Some(a) = patch.is_admin {
            user.is_admin = a;
        }
        if let Some(r) = patch.resource_ids {
            user.resource_ids = r;
        }
        let new_email = (user.email != old_email).then(|| user.email.clone());
        if let Some(email) = &new_email {
            self.directory.invite(email).await?;
        }
        if let Err(e) = self.store.update_user(&user).await {
            if let Some(email) = &new_email {
                if let Err(error) = self.directory.disable(email).await {
                    tracing::error!(%error, "an invitation to an e-mail that was not saved could not be withdrawn");
                }
            }
            return Err(create_error(e));
        }
        if new_email.is_some() {
            // The old address no longer names anyone here, so it cannot sign in whatever the
            // directory answers; a failure only leaves a dormant account to tidy up.
            if let Err(error) = self.directory.disable(&old_email).await {
                tracing::warn!(%error, "the old e-mail's sign-in could not be disabled");
            }
        }
        self.admin_change(who, format!("Updated user {}", user.email))
            .await;
        Ok(self
            .user_views(who, vec![user])
            .await?
            .pop()
            .expect("one user in, one view out"))
    }

    /// Deletes a user, ends their live sessions and removes them from every role.
    pub async fn delete_user(&self, who: &Identity, id: UserId) -> Result<(), AdminError> {
        who.require_admin()?;
        if id == who.user.id {
            return Err(AdminError::Conflict("You cannot delete yourself".into()));
        }
        let user = self.org_user(who, id).await?;
        // Sign-in goes first: if the directory cannot disable it, nothing is deleted.
        self.directory.disable(&user.email).await?;
        for mut role in self.list_docs::<Role>(who.org.id).await? {
            if role.user_ids.remove(&id) {
                self.put_doc(&role).await?;
            }
        }
        let stopped = self.stop_all_sessions_of(id).await?;
        self.store.delete_user(id).await?;
        self.admin_change(
            who,
            format!(
                "Deleted user {} and stopped {stopped} live session(s)",
                user.email
            ),
        )
        .await;
        Ok(())
    }

    // Audit log.

    pub async fn list_audit(
        &self,
        who: &Identity,
        query: AuditQuery,
    ) -> Result<AuditPage, AdminError> {
        who.require_admin()?;
        Ok(self.store.list_audit(who.org.id, &query).await?)
    }

    // Dead letters.

    /// Puts the caller's organization's dead letters back on the work queue (other tenants'
    /// stay where they are). Safe to repeat: a task done twice changes nothing.
    pub async fn redrive_dead_letters(&self, who: &Identity) -> Result<Redriven, AdminError> {
        who.require_admin()?;
        who.require_active_org()?;
        let queue_error = |e: crate::ports::queue::QueueError| {
            AdminError::Store(StoreError::Unavailable(e.to_string()))
        };
        let letters = self
            .queue
            .dead_letters(REDRIVE_BATCH)
            .await
            .map_err(queue_error)?;
        let mut out = Redriven::default();
        for letter in &letters {
            let org = match &letter.task {
                Some(crate::ports::queue::Task::DeliverWebhook { org_id, .. }) => Some(*org_id),
                Some(task) => match task.session_id() {
                    Some(id) => self.store.get_session(id).await?.map(|s| s.org_id),
                    None => None,
                },
                None => None,
            };
            if org != Some(who.org.id) {
                continue;
            }
            self.queue.redrive(letter).await.map_err(queue_error)?;
            out.redriven += 1;
        }
        if out.redriven > 0 {
            self.audit(Audit::by(
                who,
                AuditType::AdminChange,
                format!(
                    "Redrove {} task(s) from the dead-letter queue",
                    out.redriven
                ),
            ))
            .await;
        }
        Ok(out)
    }
}

/// How many dead letters one redrive looks at.
pub const REDRIVE_BATCH: usize = 500;

/// What a redrive did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Redriven {
    pub redriven: usize,
}

fn create_error(e: CreateError) -> AdminError {
    match e {
        CreateError::AlreadyExists => AdminError::Invalid {
            field: "email".into(),
            message: "a user with this e-mail already exists".into(),
        },
        CreateError::Store(e) => AdminError::Store(e),
    }
}
