//! Network newtypes: client IPs, host CIDRs, security group ids, regions, protocols and ports.
//! Each is parsed once at the edge; holding one means it is valid.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct ParseError(pub String);

/// The caller's address as seen by the server. IPv4-mapped IPv6 addresses are folded to IPv4 so
/// the same client always yields the same rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ClientIp(IpAddr);

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum IpVersion {
    #[serde(rename = "v4")]
    V4,
    #[serde(rename = "v6")]
    V6,
}

impl ClientIp {
    pub fn new(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self(IpAddr::V4(v4)),
                None => Self(IpAddr::V6(v6)),
            },
            v4 => Self(v4),
        }
    }

    pub fn addr(&self) -> IpAddr {
        self.0
    }

    pub fn version(&self) -> IpVersion {
        match self.0 {
            IpAddr::V4(_) => IpVersion::V4,
            IpAddr::V6(_) => IpVersion::V6,
        }
    }

    /// The single-host network (/32 or /128) that a rule for this client opens.
    pub fn host_cidr(&self) -> IpNet {
        IpNet::from(self.0)
    }

    /// The network a rule for this client opens: the host for IPv4, and for IPv6 the host or
    /// its /64, as the organization chose.
    pub fn network(&self, ipv6: Ipv6Prefix) -> IpNet {
        match (self.0, ipv6) {
            (IpAddr::V6(v6), Ipv6Prefix::Subnet64) => IpNet::V6(
                ipnet::Ipv6Net::new(v6, 64)
                    .expect("64 is a valid IPv6 prefix length")
                    .trunc(),
            ),
            _ => self.host_cidr(),
        }
    }
}

/// How much of an IPv6 address a rule opens. Operating systems rotate IPv6 privacy addresses
/// (often daily), so a /128 rule can stop matching mid-session; a /64 covers every address of
/// the caller's network. IPv4 rules are always one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub enum Ipv6Prefix {
    /// /128: the one address the caller was seen at.
    #[default]
    Host,
    /// /64: the caller's whole IPv6 network.
    Subnet64,
}

impl Ipv6Prefix {
    pub fn is_host(&self) -> bool {
        *self == Self::Host
    }

    pub fn bits(self) -> u8 {
        match self {
            Self::Host => 128,
            Self::Subnet64 => 64,
        }
    }
}

impl TryFrom<u8> for Ipv6Prefix {
    type Error = ParseError;
    fn try_from(len: u8) -> Result<Self, Self::Error> {
        match len {
            128 => Ok(Self::Host),
            64 => Ok(Self::Subnet64),
            other => Err(ParseError(format!(
                "{other} is not an offered IPv6 prefix length (128 or 64)"
            ))),
        }
    }
}

impl From<Ipv6Prefix> for u8 {
    fn from(p: Ipv6Prefix) -> Self {
        p.bits()
    }
}

impl fmt::Display for ClientIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for ClientIp {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.trim()
            .parse::<IpAddr>()
            .map(Self::new)
            .map_err(|_| ParseError(format!("'{s}' is not an IP address")))
    }
}

impl TryFrom<String> for ClientIp {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<ClientIp> for String {
    fn from(ip: ClientIp) -> Self {
        ip.to_string()
    }
}

/// An EC2 security group id: `sg-` followed by 8 or 17 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SecurityGroupId(String);

impl SecurityGroupId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for SecurityGroupId {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = s.strip_prefix("sg-").is_some_and(|hex| {
            matches!(hex.len(), 8 | 17)
                && hex
                    .chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        });
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(ParseError(format!(
                "'{s}' is not a security group id (expected sg- followed by 8 or 17 hex digits)"
            )))
        }
    }
}

impl TryFrom<String> for SecurityGroupId {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<SecurityGroupId> for String {
    fn from(v: SecurityGroupId) -> Self {
        v.0
    }
}

impl fmt::Display for SecurityGroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An AWS region name such as `eu-west-1` or `us-gov-west-1`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Region(String);

impl Region {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Region {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split('-').collect();
        let lower = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase());
        let ok = parts.len() >= 3
            && parts.len() <= 4
            && parts[0].len() == 2
            && lower(parts[0])
            && parts[1..parts.len() - 1].iter().all(|p| lower(p))
            && parts[parts.len() - 1].len() <= 2
            && parts[parts.len() - 1].chars().all(|c| c.is_ascii_digit())
            && !parts[parts.len() - 1].is_empty();
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(ParseError(format!(
                "'{s}' is not an AWS region (expected a name like eu-west-1)"
            )))
        }
    }
}

impl TryFrom<String> for Region {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Region> for String {
    fn from(v: Region) -> Self {
        v.0
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    pub fn as_str(&self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A protocol and an inclusive port range with `from_port <= to_port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "RawPortRange", rename_all = "camelCase")]
pub struct PortRange {
    protocol: Protocol,
    from_port: u16,
    to_port: u16,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawPortRange {
    protocol: Protocol,
    from_port: u16,
    to_port: u16,
}

impl TryFrom<RawPortRange> for PortRange {
    type Error = ParseError;
    fn try_from(raw: RawPortRange) -> Result<Self, Self::Error> {
        PortRange::new(raw.protocol, raw.from_port, raw.to_port)
    }
}

impl PortRange {
    pub fn new(protocol: Protocol, from_port: u16, to_port: u16) -> Result<Self, ParseError> {
        if from_port > to_port {
            return Err(ParseError(format!(
                "fromPort ({from_port}) must not be greater than toPort ({to_port})"
            )));
        }
        Ok(Self {
            protocol,
            from_port,
            to_port,
        })
    }

    pub fn tcp(port: u16) -> Self {
        Self {
            protocol: Protocol::Tcp,
            from_port: port,
            to_port: port,
        }
    }

    pub fn protocol(&self) -> Protocol {
        self.protocol
    }
    pub fn from_port(&self) -> u16 {
        self.from_port
    }
    pub fn to_port(&self) -> u16 {
        self.to_port
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.from_port == self.to_port {
            write!(f, "{}/{}", self.protocol, self.from_port)
        } else {
            write!(f, "{}/{}-{}", self.protocol, self.from_port, self.to_port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_ipv6_folds_to_ipv4() {
        let ip: ClientIp = "::ffff:203.0.113.7".parse().unwrap();
        assert_eq!(ip.version(), IpVersion::V4);
        assert_eq!(ip.host_cidr().to_string(), "203.0.113.7/32");
        let v6: ClientIp = "2001:db8::1".parse().unwrap();
        assert_eq!(v6.host_cidr().to_string(), "2001:db8::1/128");
        assert!("not-an-ip".parse::<ClientIp>().is_err());
    }

    #[test]
    fn ipv6_rules_open_the_host_or_its_64() {
        let v6: ClientIp = "2001:db8:1:2:aaaa:bbbb:cccc:dddd".parse().unwrap();
        assert_eq!(
            v6.network(Ipv6Prefix::Host).to_string(),
            "2001:db8:1:2:aaaa:bbbb:cccc:dddd/128"
        );
        assert_eq!(
            v6.network(Ipv6Prefix::Subnet64).to_string(),
            "2001:db8:1:2::/64"
        );
        let v4: ClientIp = "203.0.113.7".parse().unwrap();
        assert_eq!(
            v4.network(Ipv6Prefix::Subnet64).to_string(),
            "203.0.113.7/32"
        );
        assert_eq!(serde_json::to_string(&Ipv6Prefix::Subnet64).unwrap(), "64");
        assert!(serde_json::from_str::<Ipv6Prefix>("96").is_err());
    }

    #[test]
    fn security_group_ids() {
        assert!("sg-0123abcd".parse::<SecurityGroupId>().is_ok());
        assert!("sg-0123456789abcdef0".parse::<SecurityGroupId>().is_ok());
        for bad in [
            "sg-",
            "sg-123",
            "sg-0123ABCD",
            "0123abcd",
            "sg-0123abcdg",
            "sg-0123456789abcdef",
        ] {
            assert!(bad.parse::<SecurityGroupId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn regions() {
        for good in ["eu-west-1", "us-east-2", "ap-southeast-2", "us-gov-west-1"] {
            assert!(good.parse::<Region>().is_ok(), "{good}");
        }
        for bad in [
            "",
            "eu",
            "EU-west-1",
            "eu-west",
            "eu-west-x",
            "e-west-1",
            "eu--1",
        ] {
            assert!(bad.parse::<Region>().is_err(), "{bad}");
        }
    }

    #[test]
    fn port_ranges() {
        assert!(PortRange::new(Protocol::Tcp, 22, 22).is_ok());
        assert!(PortRange::new(Protocol::Udp, 1000, 2000).is_ok());
        assert!(PortRange::new(Protocol::Tcp, 23, 22).is_err());
        let parsed: Result<PortRange, _> =
            serde_json::from_str(r#"{"protocol":"tcp","fromPort":70000,"toPort":1}"#);
        assert!(parsed.is_err());
        let parsed: PortRange =
            serde_json::from_str(r#"{"protocol":"tcp","fromPort":443,"toPort":443}"#).unwrap();
        assert_eq!(parsed.to_string(), "tcp/443");
    }
}
