//! Ingress rules and their reference counts.
//!
//! A rule is identified by (region, security group, protocol, port range, CIDR). Every live session
//! entry that needs a rule is one *holder* of it; the rule exists in the cloud while it has holders.
//! Holders are named, not merely counted, so adding or removing the same holder twice (a duplicate
//! message) cannot skew the count. The store keeps each holder as its own small record beside the
//! rule's, with the count on the rule: nothing grows with the number of holders, so thousands of
//! sessions behind one address (an office NAT) are thousands of small records and one number.

use std::fmt;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::ids::{CredentialId, SessionId};
use super::model::Provider;
use super::net::{PortRange, Region, SecurityGroupId};
use super::Timestamp;

/// Where a rule lives: the security group and the credential used to change it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupRef {
    pub credential_id: CredentialId,
    pub provider: Provider,
    pub region: Region,
    pub security_group_id: SecurityGroupId,
}

/// One ingress permission: a port range opened to a CIDR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressRule {
    pub ports: PortRange,
    pub cidr: IpNet,
}

impl fmt::Display for IngressRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} from {}", self.ports, self.cidr)
    }
}

/// One inbound rule of a security group as the cloud lists it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ListedRule {
    pub rule: IngressRule,
    /// Created by EntryGuard (tagged as such); only these are ever revoked.
    pub managed: bool,
    /// The cloud's id of the rule, where the cloud gives rules ids.
    pub id: Option<CloudRuleId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleKey {
    pub region: Region,
    pub security_group_id: SecurityGroupId,
    pub rule: IngressRule,
}

impl RuleKey {
    /// A stable string form, used as the storage key.
    pub fn storage_key(&self) -> String {
        format!(
            "{}|{}|{}|{}|{}|{}",
            self.region,
            self.security_group_id,
            self.rule.ports.protocol(),
            self.rule.ports.from_port(),
            self.rule.ports.to_port(),
            self.rule.cidr
        )
    }

    /// Reads a storage key back, so a record whose value cannot be read still says which rule
    /// (and so which group and organization) it was about.
    pub fn from_storage_key(raw: &str) -> Option<Self> {
        let parts: Vec<&str> = raw.split('|').collect();
        let [region, group, protocol, from, to, cidr] = parts.as_slice() else {
            return None;
        };
        let protocol = match *protocol {
            "tcp" => super::net::Protocol::Tcp,
            "udp" => super::net::Protocol::Udp,
            _ => return None,
        };
        Some(Self {
            region: region.parse().ok()?,
            security_group_id: group.parse().ok()?,
            rule: IngressRule {
                ports: PortRange::new(protocol, from.parse().ok()?, to.parse().ok()?).ok()?,
                cidr: cidr.parse().ok()?,
            },
        })
    }
}

impl fmt::Display for RuleKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}",
            self.region, self.security_group_id, self.rule
        )
    }
}

/// The name of one session entry as a holder of a rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct HolderId(String);

#[cfg(test)]
mod storage_key_tests {
    use super::*;

    #[test]
    fn a_storage_key_reads_back() {
        let key = RuleKey {
            region: "eu-west-1".parse().unwrap(),
            security_group_id: "sg-0123456789abcdef0".parse().unwrap(),
            rule: IngressRule {
                ports: PortRange::new(super::super::net::Protocol::Udp, 1000, 2000).unwrap(),
                cidr: "2001:db8::1/128".parse().unwrap(),
            },
        };
        assert_eq!(RuleKey::from_storage_key(&key.storage_key()), Some(key));
        assert_eq!(RuleKey::from_storage_key("eu-west-1|sg-1|tcp|22"), None);
    }

    #[test]
    fn cloud_rule_ids_parse() {
        assert!("sgr-0123456789abcdef0".parse::<CloudRuleId>().is_ok());
        for bad in ["", "sgr-", "sg-0123", "sgr-01 23", "sgr-../x"] {
            assert!(bad.parse::<CloudRuleId>().is_err(), "{bad}");
        }
    }
}

impl HolderId {
    pub fn new(session: SessionId, entry: u32) -> Self {
        Self(format!("{session}#{entry}"))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The session and entry this holder names.
    pub fn entry(&self) -> Option<(SessionId, u32)> {
        let (session, entry) = self.0.split_once('#')?;
        Some((session.parse().ok()?, entry.parse().ok()?))
    }
}

/// The cloud's own id of one rule (EC2's `sgr-…`), kept on the rule's record so it can be
/// revoked by id without listing the group first.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CloudRuleId(String);

impl CloudRuleId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CloudRuleId {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, String> {
        let ok = raw.strip_prefix("sgr-").is_some_and(|rest| {
            !rest.is_empty() && rest.len() <= 32 && rest.bytes().all(|b| b.is_ascii_alphanumeric())
        });
        if ok {
            Ok(Self(raw))
        } else {
            Err(format!("'{raw}' is not a security group rule id"))
        }
    }
}

impl std::str::FromStr for CloudRuleId {
    type Err = String;
    fn from_str(raw: &str) -> Result<Self, String> {
        Self::try_from(raw.to_owned())
    }
}

impl From<CloudRuleId> for String {
    fn from(id: CloudRuleId) -> Self {
        id.0
    }
}

impl fmt::Display for CloudRuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Exclusive permission to change one rule in the cloud, so an authorize and a revoke of the same
/// rule never race. It expires, so a crashed worker cannot hold it forever.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Lease {
    pub owner: String,
    pub until: Timestamp,
}

/// What the store knows about one rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleState {
    pub key: RuleKey,
    pub group: GroupRef,
    /// How many holders the rule has; the holders themselves are read page by page
    /// (`Store::rule_holders`), since there may be thousands.
    #[serde(default)]
    pub holder_count: u64,
    /// What EntryGuard knows of the rule in the cloud.
    pub cloud: CloudState,
    /// The cloud's id of the rule EntryGuard created, when known (revoked by it, no listing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_rule_id: Option<CloudRuleId>,
    pub lease: Option<Lease>,
}

/// Whether the rule exists in the cloud. `Unknown` follows a failed or interrupted change (a
/// timed-out call may still have taken effect): the next holder must not trust it either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum CloudState {
    Present,
    Absent,
    Unknown,
}

impl RuleState {
    pub fn new(key: RuleKey, group: GroupRef) -> Self {
        Self {
            key,
            group,
            holder_count: 0,
            cloud: CloudState::Absent,
            cloud_rule_id: None,
            lease: None,
        }
    }

    pub fn count(&self) -> usize {
        usize::try_from(self.holder_count).unwrap_or(usize::MAX)
    }

    /// Nothing held, nothing in the cloud, nobody working on it: the record can be forgotten.
    pub fn is_idle(&self) -> bool {
        self.holder_count == 0 && self.cloud == CloudState::Absent && self.lease.is_none()
    }
}

/// The result of asking for a rule's lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseGrant {
    /// The lease is ours. `stale` means an earlier holder's lease ran out mid-change, so `cloud`
    /// must be treated as `Unknown`.
    Granted {
        state: Box<RuleState>,
        stale: bool,
    },
    Busy,
}
