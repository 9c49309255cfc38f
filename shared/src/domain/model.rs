//! The organization's configuration: users, roles, credentials and resources.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use super::credential::Credential;
use super::ids::{CredentialId, OrgId, ResourceId, RoleId, UserId};
use super::net::{ParseError, PortRange, Region, SecurityGroupId};
use super::tier::{Hours, Tier};
use super::Timestamp;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Organization {
    pub id: OrgId,
    pub name: Name,
    /// The plan; only the operator of the deployment changes it.
    pub tier: Tier,
    pub created_at: Timestamp,
    /// Records written before suspension existed are active.
    #[serde(default)]
    pub status: OrgStatus,
    /// Bumped by every change, so a rename by an admin and a plan change by the operator made
    /// at the same moment cannot overwrite each other.
    #[serde(default)]
    pub version: u64,
    /// What an IPv6 rule opens: the caller's address (default) or its /64.
    #[serde(default)]
    pub ipv6_prefix: crate::domain::net::Ipv6Prefix,
}

impl Organization {
    /// A new, active organization.
    pub fn new(id: OrgId, name: Name, tier: Tier, created_at: Timestamp) -> Self {
        Self {
            id,
            name,
            tier,
            created_at,
            status: OrgStatus::Active,
            version: 0,
            ipv6_prefix: Default::default(),
        }
    }

    pub fn is_suspended(&self) -> bool {
        self.status == OrgStatus::Suspended
    }
}

/// Whether an organization may use EntryGuard; the operator suspends and resumes.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum OrgStatus {
    #[default]
    Active,
    /// Starts no sessions and extends none; its live sessions were ended when it was suspended.
    Suspended,
}

impl fmt::Display for OrgStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OrgStatus::Active => "ACTIVE",
            OrgStatus::Suspended => "SUSPENDED",
        })
    }
}

/// A display name: trimmed, 1 to 100 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Name(String);

impl Name {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Name {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if t.is_empty() {
            return Err(ParseError("must not be empty".into()));
        }
        if t.chars().count() > 100 {
            return Err(ParseError("must be at most 100 characters".into()));
        }
        if t.chars().any(char::is_control) {
            return Err(ParseError("must not contain control characters".into()));
        }
        Ok(Self(t.to_owned()))
    }
}

impl TryFrom<String> for Name {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Name> for String {
    fn from(n: Name) -> Self {
        n.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An e-mail address, lower-cased so that look-ups are case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Email {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().to_ascii_lowercase();
        let valid = t.len() <= 254
            && !t.chars().any(|c| c.is_whitespace() || c.is_control())
            && matches!(t.split_once('@'), Some((local, domain))
                if !local.is_empty() && domain.contains('.') && !domain.starts_with('.')
                    && !domain.ends_with('.') && !domain.contains('@'));
        if valid {
            Ok(Self(t))
        } else {
            Err(ParseError(format!("'{s}' is not an e-mail address")))
        }
    }
}

impl TryFrom<String> for Email {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Email> for String {
    fn from(e: Email) -> Self {
        e.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: UserId,
    pub org_id: OrgId,
    pub email: Email,
    pub is_admin: bool,
    /// Resources assigned directly to the user, besides those of their roles.
    pub resource_ids: BTreeSet<ResourceId>,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Role {
    pub id: RoleId,
    pub org_id: OrgId,
    pub name: Name,
    pub max_session_duration_hours: Option<Hours>,
    pub resource_ids: BTreeSet<ResourceId>,
    pub user_ids: BTreeSet<UserId>,
    pub created_at: Timestamp,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// Real AWS EC2 security groups.
    Aws,
    /// The in-process simulated cloud used by the local runner and tests.
    Simulated,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum CredentialStatus {
    Unverified,
    Valid,
    Invalid,
}

/// A secret in plaintext: it never appears in logs or `Debug` output, cannot be serialized (it
/// is stored only sealed, as a [`SealedSecret`]), and its memory is wiped when it is dropped.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Self {
        Self(s)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

/// A secret encrypted by a `SecretSealer` for one credential of one organization: opaque
/// base64 fields that only the sealer that made them can open. `encrypted_data_key` is present
/// for envelope encryption (the data key, encrypted under `key_id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SealedSecret {
    pub key_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted_data_key: Option<String>,
    pub nonce: String,
    pub ciphertext: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    pub id: ResourceId,
    pub org_id: OrgId,
    pub name: Name,
    pub credential_id: CredentialId,
    pub security_group_id: SecurityGroupId,
    pub region: Region,
    pub ports: Vec<PortRange>,
    pub created_at: Timestamp,
}

/// The resources a user can reach: those of all their roles plus direct assignments.
pub fn accessible_resource_ids<'a>(
    user: &User,
    roles: impl IntoIterator<Item = &'a Role>,
) -> BTreeSet<ResourceId> {
    let mut ids = user.resource_ids.clone();
    for role in roles {
        if role.user_ids.contains(&user.id) {
            ids.extend(role.resource_ids.iter().copied());
        }
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_case_insensitive_and_checked() {
        assert_eq!(
            "Dev@Example.COM".parse::<Email>().unwrap().as_str(),
            "dev@example.com"
        );
        for bad in [
            "",
            "dev",
            "dev@",
            "@example.com",
            "dev@example",
            "a b@example.com",
        ] {
            assert!(bad.parse::<Email>().is_err(), "{bad}");
        }
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(" bastion ".parse::<Name>().unwrap().as_str(), "bastion");
        assert!("  ".parse::<Name>().is_err());
        assert!("x".repeat(101).parse::<Name>().is_err());
    }

    #[test]
    fn secrets_do_not_leak_through_debug() {
        let s = Secret::new("hunter2".into());
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
