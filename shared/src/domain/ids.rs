//! Typed identifiers, so a session id can never be passed where a user id is expected.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            pub const fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }
            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

uuid_id!(
    /// An organization (tenant).
    OrgId
);
uuid_id!(
    /// A user of one organization.
    UserId
);
uuid_id!(
    /// A session: one time-bound grant of the caller's IP.
    SessionId
);
uuid_id!(
    /// A cloud resource (a security group plus the ports to open on it).
    ResourceId
);
uuid_id!(
    /// A role linking users to resources.
    RoleId
);
uuid_id!(
    /// A cloud credential.
    CredentialId
);
uuid_id!(
    /// An audit log event.
    AuditId
);
uuid_id!(
    /// A personal API token (its id, never its secret).
    TokenId
);
uuid_id!(
    /// A webhook endpoint of an organization.
    WebhookId
);
uuid_id!(
    /// One event on its way to one webhook endpoint.
    DeliveryId
);
