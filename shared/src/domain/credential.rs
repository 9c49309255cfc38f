//! A cloud credential: how EntryGuard signs in to a provider for one organization. What it signs
//! in with is one of three shapes ([`CredentialAccess`]), so a role beside keys, keys without
//! their secret, or keys on a simulated credential cannot be built, only refused while parsing.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

use super::ids::{CredentialId, OrgId};
use super::model::{CredentialStatus, Name, Provider, SealedSecret};
use super::net::{ParseError, Region};
use super::Timestamp;

/// Declares a string newtype that can only hold what its `parse` accepts, (de)serialized as
/// the plain string.
macro_rules! parsed_string {
    ($(#[$doc:meta])* $name:ident, $parse:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = ParseError;
            fn from_str(s: &str) -> Result<Self, ParseError> {
                let check: fn(&str) -> Result<(), ParseError> = $parse;
                check(s)?;
                Ok(Self(s.to_owned()))
            }
        }

        impl TryFrom<String> for $name {
            type Error = ParseError;
            fn try_from(s: String) -> Result<Self, ParseError> {
                s.parse()
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> Self {
                v.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

fn is_account(s: &str) -> bool {
    s.len() == 12 && s.chars().all(|c| c.is_ascii_digit())
}

parsed_string!(
    /// An IAM role's ARN: `arn:aws:iam::<12-digit account>:role/<name>`.
    RoleArn,
    |s| {
        let ok = s.strip_prefix("arn:aws:iam::").is_some_and(|rest| {
            rest.split_once(":role/")
                .is_some_and(|(account, name)| is_account(account) && !name.is_empty())
        });
        if ok {
            Ok(())
        } else {
            Err(ParseError(
                "must be an IAM role ARN like arn:aws:iam::123456789012:role/EntryGuard".into(),
            ))
        }
    }
);

parsed_string!(
    /// The external id EntryGuard passes when it assumes a customer's role: 2 to 1224 characters.
    ExternalId,
    |s| {
        if (2..=1224).contains(&s.len()) {
            Ok(())
        } else {
            Err(ParseError("must be 2 to 1224 characters".into()))
        }
    }
);

parsed_string!(
    /// An AWS access key id: 16 to 128 upper-case letters and digits.
    AccessKeyId,
    |s| {
        if (16..=128).contains(&s.len())
            && s.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        {
            Ok(())
        } else {
            Err(ParseError(
                "must be an AWS access key id (16 to 128 upper-case letters and digits)".into(),
            ))
        }
    }
);

parsed_string!(
    /// A 12-digit AWS account id.
    AccountId,
    |s| {
        if is_account(s) {
            Ok(())
        } else {
            Err(ParseError("must be a 12-digit AWS account id".into()))
        }
    }
);

impl ExternalId {
    /// The external id a role credential gets when its admin gives none: one per organization,
    /// so another organization that learns the role's ARN cannot have EntryGuard assume it.
    pub fn for_org(org: OrgId) -> Self {
        Self(format!("entryguard-{org}"))
    }
}

/// What a credential signs in with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialAccess {
    /// The in-process simulated cloud: nothing to sign in with.
    Simulated,
    /// AWS, through a role EntryGuard assumes with its own identity.
    AssumeRole {
        role_arn: RoleArn,
        /// Credentials created through the API always have one; the trust policy requires it.
        external_id: Option<ExternalId>,
    },
    /// AWS, with an IAM user's key pair; the secret is stored only sealed.
    AccessKeys {
        access_key_id: AccessKeyId,
        sealed_secret: SealedSecret,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "CredentialRecord", into = "CredentialRecord")]
pub struct Credential {
    pub id: CredentialId,
    pub org_id: OrgId,
    pub name: Name,
    pub region: Region,
    pub access: CredentialAccess,
    pub status: CredentialStatus,
    /// The account the last successful check found.
    pub account_id: Option<AccountId>,
    pub checked_at: Option<Timestamp>,
    /// Why the last check found the credential INVALID.
    pub status_message: Option<String>,
    pub created_at: Timestamp,
}

impl Credential {
    /// A credential of the in-process simulated cloud: not yet checked.
    pub fn simulated(
        id: CredentialId,
        org_id: OrgId,
        name: Name,
        region: Region,
        created_at: Timestamp,
    ) -> Self {
        Self {
            id,
            org_id,
            name,
            region,
            access: CredentialAccess::Simulated,
            status: CredentialStatus::Unverified,
            account_id: None,
            checked_at: None,
            status_message: None,
            created_at,
        }
    }

    pub fn provider(&self) -> Provider {
        match self.access {
            CredentialAccess::Simulated => Provider::Simulated,
            CredentialAccess::AssumeRole { .. } | CredentialAccess::AccessKeys { .. } => {
                Provider::Aws
            }
        }
    }

    pub fn role_arn(&self) -> Option<&RoleArn> {
        match &self.access {
            CredentialAccess::AssumeRole { role_arn, .. } => Some(role_arn),
            _ => None,
        }
    }

    pub fn external_id(&self) -> Option<&ExternalId> {
        match &self.access {
            CredentialAccess::AssumeRole { external_id, .. } => external_id.as_ref(),
            _ => None,
        }
    }

    pub fn access_key_id(&self) -> Option<&AccessKeyId> {
        match &self.access {
            CredentialAccess::AccessKeys { access_key_id, .. } => Some(access_key_id),
            _ => None,
        }
    }

    pub fn sealed_secret(&self) -> Option<&SealedSecret> {
        match &self.access {
            CredentialAccess::AccessKeys { sealed_secret, .. } => Some(sealed_secret),
            _ => None,
        }
    }
}

/// The stored shape of a credential: the flat record every store has always held, so records
/// written before [`CredentialAccess`] existed read back unchanged.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CredentialRecord {
    id: CredentialId,
    org_id: OrgId,
    name: Name,
    provider: Provider,
    region: Region,
    access_key_id: Option<AccessKeyId>,
    #[serde(default)]
    sealed_secret: Option<SealedSecret>,
    role_arn: Option<RoleArn>,
    external_id: Option<ExternalId>,
    status: CredentialStatus,
    account_id: Option<AccountId>,
    checked_at: Option<Timestamp>,
    #[serde(default)]
    status_message: Option<String>,
    created_at: Timestamp,
}

impl TryFrom<CredentialRecord> for Credential {
    type Error = ParseError;
    fn try_from(r: CredentialRecord) -> Result<Self, ParseError> {
        // Older records may carry an external id beside keys or on a simulated credential (the
        // API once accepted one there); it never had any effect, so it is dropped. A role
        // always won over keys, and the API never stored both.
        let access = match (r.provider, r.role_arn, r.access_key_id, r.sealed_secret) {
            (Provider::Simulated, ..) => CredentialAccess::Simulated,
            (Provider::Aws, Some(role_arn), ..) => CredentialAccess::AssumeRole {
                role_arn,
                external_id: r.external_id,
            },
            (Provider::Aws, None, Some(access_key_id), Some(sealed_secret)) => {
                CredentialAccess::AccessKeys {
                    access_key_id,
                    sealed_secret,
                }
            }
            (Provider::Aws, None, ..) => {
                return Err(ParseError(format!(
                    "credential {} has neither a role ARN nor an access key pair",
                    r.id
                )))
            }
        };
        Ok(Self {
            id: r.id,
            org_id: r.org_id,
            name: r.name,
            region: r.region,
            access,
            status: r.status,
            account_id: r.account_id,
            checked_at: r.checked_at,
            status_message: r.status_message,
            created_at: r.created_at,
        })
    }
}

impl From<Credential> for CredentialRecord {
    fn from(c: Credential) -> Self {
        let provider = c.provider();
        let (role_arn, external_id, access_key_id, sealed_secret) = match c.access {
            CredentialAccess::Simulated => (None, None, None, None),
            CredentialAccess::AssumeRole {
                role_arn,
                external_id,
            } => (Some(role_arn), external_id, None, None),
            CredentialAccess::AccessKeys {
                access_key_id,
                sealed_secret,
            } => (None, None, Some(access_key_id), Some(sealed_secret)),
        };
        Self {
            id: c.id,
            org_id: c.org_id,
            name: c.name,
            provider,
            region: c.region,
            access_key_id,
            sealed_secret,
            role_arn,
            external_id,
            status: c.status,
            account_id: c.account_id,
            checked_at: c.checked_at,
            status_message: c.status_message,
            created_at: c.created_at,
        }
    }
}

/// For optional request fields: absent, `null`, empty or blank is `None`; anything else is
/// trimmed and parsed, and a bad value names its field.
pub fn blank_or_parsed<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr<Err = ParseError>,
{
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) if s.trim().is_empty() => Ok(None),
        Some(s) => s.trim().parse().map(Some).map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(extra: serde_json::Value) -> serde_json::Value {
        let mut v = json!({
            "id": "00000000-0000-0000-0000-000000000001",
            "orgId": "00000000-0000-0000-0000-000000000002",
            "name": "prod",
            "provider": "aws",
            "region": "eu-west-1",
            "accessKeyId": null,
            "sealedSecret": null,
            "roleArn": null,
            "externalId": null,
            "status": "VALID",
            "accountId": "123456789012",
            "checkedAt": "2026-01-02T03:04:05Z",
            "statusMessage": null,
            "createdAt": "2026-01-01T00:00:00Z",
        });
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        v
    }

    fn sealed() -> serde_json::Value {
        json!({"keyId": "local", "nonce": "bm9uY2U=", "ciphertext": "Y2lwaGVy"})
    }

    #[test]
    fn records_of_every_old_shape_read_back() {
        let role: Credential = serde_json::from_value(record(json!({
            "roleArn": "arn:aws:iam::123456789012:role/EntryGuard",
            "externalId": "entryguard-x",
        })))
        .unwrap();
        assert_eq!(role.provider(), Provider::Aws);
        assert_eq!(
            role.role_arn().map(RoleArn::as_str),
            Some("arn:aws:iam::123456789012:role/EntryGuard")
        );
        assert_eq!(
            role.external_id().map(ExternalId::as_str),
            Some("entryguard-x")
        );
        assert_eq!(
            role.account_id.as_ref().map(AccountId::as_str),
            Some("123456789012")
        );

        let keys: Credential = serde_json::from_value(record(json!({
            "accessKeyId": "AKIAIOSFODNN7EXAMPLE",
            "sealedSecret": sealed(),
            // Accepted beside keys once, with no effect.
            "externalId": "ignored",
        })))
        .unwrap();
        assert_eq!(
            keys.access_key_id().map(AccessKeyId::as_str),
            Some("AKIAIOSFODNN7EXAMPLE")
        );
        assert!(keys.sealed_secret().is_some());
        assert_eq!(keys.external_id(), None);

        // Written before `sealedSecret` and `statusMessage` existed.
        let mut old = record(json!({"provider": "simulated", "externalId": "ignored"}));
        old.as_object_mut().unwrap().remove("sealedSecret");
        old.as_object_mut().unwrap().remove("statusMessage");
        let simulated: Credential = serde_json::from_value(old).unwrap();
        assert_eq!(simulated.access, CredentialAccess::Simulated);
        assert_eq!(simulated.provider(), Provider::Simulated);
    }

    #[test]
    fn a_credential_is_stored_in_the_flat_shape_and_reads_back_equal() {
        let keys: Credential = serde_json::from_value(record(json!({
            "accessKeyId": "AKIAIOSFODNN7EXAMPLE",
            "sealedSecret": sealed(),
        })))
        .unwrap();
        let stored = serde_json::to_value(&keys).unwrap();
        assert_eq!(
            stored,
            record(json!({"accessKeyId": "AKIAIOSFODNN7EXAMPLE", "sealedSecret": sealed()}))
        );
        assert_eq!(serde_json::from_value::<Credential>(stored).unwrap(), keys);
    }

    #[test]
    fn impossible_records_are_refused() {
        for bad in [
            json!({}),
            json!({"accessKeyId": "AKIAIOSFODNN7EXAMPLE"}),
            json!({"sealedSecret": sealed()}),
            json!({"roleArn": "arn:aws:iam::12345:role/X"}),
            json!({"accountId": "not-an-account"}),
        ] {
            assert!(
                serde_json::from_value::<Credential>(record(bad.clone())).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_newtypes_parse() {
        assert!("arn:aws:iam::123456789012:role/a/b"
            .parse::<RoleArn>()
            .is_ok());
        for bad in [
            "arn:aws:iam::123456789012:role/",
            "arn:aws:iam::1234567890123:role/X",
            "arn:aws:iam::123456789012:user/X",
        ] {
            assert!(bad.parse::<RoleArn>().is_err(), "{bad}");
        }
        assert!("AKIAIOSFODNN7EXAMPLE".parse::<AccessKeyId>().is_ok());
        assert!("akiaiosfodnn7example".parse::<AccessKeyId>().is_err());
        assert!("AKIA".parse::<AccessKeyId>().is_err());
        assert!("x".parse::<ExternalId>().is_err());
        assert!("xy".parse::<ExternalId>().is_ok());
        assert!("x".repeat(1225).parse::<ExternalId>().is_err());
        assert!("123456789012".parse::<AccountId>().is_ok());
        assert!("12345678901a".parse::<AccountId>().is_err());
    }
}
