//! Webhook notifications: endpoints, the events they subscribe to, deliveries and their retry
//! schedule, the signature scheme, and which addresses a delivery may reach. Pure: sending is
//! the `WebhookSender` port's.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};

use super::ids::{DeliveryId, OrgId, SessionId, WebhookId};
use super::model::SealedSecret;
use super::Timestamp;

/// What happened. Serialized as the `type` of a delivery and the `X-EntryGuard-Event` header.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum WebhookEvent {
    #[serde(rename = "session.started")]
    SessionStarted,
    #[serde(rename = "session.active")]
    SessionActive,
    #[serde(rename = "session.partial")]
    SessionPartial,
    #[serde(rename = "session.failed")]
    SessionFailed,
    /// Ten minutes before a session ends, so its user can extend it in time.
    #[serde(rename = "session.expiring-soon")]
    SessionExpiringSoon,
    /// Stopped or expired, once every rule is removed.
    #[serde(rename = "session.ended")]
    SessionEnded,
    #[serde(rename = "rule.failed")]
    RuleFailed,
    /// The reconciliation pass put back or removed a rule someone changed in the cloud.
    #[serde(rename = "drift.corrected")]
    DriftCorrected,
    #[serde(rename = "system.alert")]
    SystemAlert,
    /// Sent only by "send test event"; an endpoint never subscribes to it.
    #[serde(rename = "webhook.test")]
    Test,
}

impl WebhookEvent {
    /// The events an endpoint may subscribe to.
    pub const SUBSCRIBABLE: [WebhookEvent; 9] = [
        Self::SessionStarted,
        Self::SessionActive,
        Self::SessionPartial,
        Self::SessionFailed,
        Self::SessionExpiringSoon,
        Self::SessionEnded,
        Self::RuleFailed,
        Self::DriftCorrected,
        Self::SystemAlert,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::SessionStarted => "session.started",
            Self::SessionActive => "session.active",
            Self::SessionPartial => "session.partial",
            Self::SessionFailed => "session.failed",
            Self::SessionExpiringSoon => "session.expiring-soon",
            Self::SessionEnded => "session.ended",
            Self::RuleFailed => "rule.failed",
            Self::DriftCorrected => "drift.corrected",
            Self::SystemAlert => "system.alert",
            Self::Test => "webhook.test",
        }
    }
}

/// How a delivery's body is written.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum WebhookFormat {
    /// EntryGuard's JSON event, for SIEMs and incident tools.
    #[default]
    Json,
    /// A Slack incoming-webhook message (`text` plus blocks) with a link to the session.
    Slack,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("must be an absolute https:// URL")]
    NotHttps,
    #[error("must be at most {} characters", WebhookUrl::MAX_LEN)]
    TooLong,
    #[error("must not contain a user name or password")]
    Credentials,
    #[error("is not a valid URL: {0}")]
    Malformed(String),
}

/// A parsed webhook URL. `http://` is parsed too, but only the development switch lets a
/// delivery use it (see [`AddressPolicy`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct WebhookUrl(url::Url);

impl WebhookUrl {
    pub const MAX_LEN: usize = 2048;

    pub fn as_url(&self) -> &url::Url {
        &self.0
    }
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
    pub fn is_https(&self) -> bool {
        self.0.scheme() == "https"
    }
    /// The host as written (a name or an address literal, without IPv6 brackets).
    pub fn host(&self) -> Option<Host> {
        match self.0.host()? {
            url::Host::Domain(d) => Some(Host::Name(d.to_owned())),
            url::Host::Ipv4(a) => Some(Host::Ip(IpAddr::V4(a))),
            url::Host::Ipv6(a) => Some(Host::Ip(IpAddr::V6(a))),
        }
    }
    pub fn port(&self) -> u16 {
        self.0.port_or_known_default().unwrap_or(443)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Name(String),
    Ip(IpAddr),
}

impl TryFrom<String> for WebhookUrl {
    type Error = UrlError;
    fn try_from(s: String) -> Result<Self, UrlError> {
        s.parse()
    }
}

impl std::str::FromStr for WebhookUrl {
    type Err = UrlError;
    fn from_str(s: &str) -> Result<Self, UrlError> {
        let s = s.trim();
        if s.len() > Self::MAX_LEN {
            return Err(UrlError::TooLong);
        }
        let url = url::Url::parse(s).map_err(|e| UrlError::Malformed(e.to_string()))?;
        if !matches!(url.scheme(), "https" | "http") || url.host().is_none() {
            return Err(UrlError::NotHttps);
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(UrlError::Credentials);
        }
        Ok(Self(url))
    }
}

impl From<WebhookUrl> for String {
    fn from(u: WebhookUrl) -> String {
        u.0.into()
    }
}

impl std::fmt::Display for WebhookUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a delivery may not go to an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("only https:// endpoints are delivered to")]
    NotHttps,
    #[error("{0} is a {1} address; webhooks go only to public addresses")]
    Address(IpAddr, &'static str),
    #[error("the host has no address")]
    NoAddress,
    #[error("redirects are not followed (to {0})")]
    Redirect(String),
}

/// Which addresses deliveries may reach. The default refuses everything that is not a public
/// unicast address, and plain http; `allow_loopback` (the local runner's development switch,
/// never set in the Lambdas) also admits 127.0.0.1 and ::1, and plain http, for tests with a
/// local receiver.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    pub allow_loopback: bool,
}

impl AddressPolicy {
    /// What can be decided without resolving the host: the scheme, and an address literal.
    pub fn check_url(&self, url: &WebhookUrl) -> Result<(), Refusal> {
        let literal = match url.host() {
            Some(Host::Ip(ip)) => Some(ip),
            Some(Host::Name(_)) => None,
            None => return Err(Refusal::NoAddress),
        };
        if let Some(ip) = literal {
            self.check_ip(ip)?;
        }
        // A local test receiver has no certificate; the addresses stay checked either way.
        if !url.is_https() && !self.allow_loopback {
            return Err(Refusal::NotHttps);
        }
        Ok(())
    }

    /// Every address a host resolves to must pass: one bad answer refuses the delivery.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Refusal> {
        match forbidden(ip) {
            Some("loopback") if self.allow_loopback => Ok(()),
            Some(kind) => Err(Refusal::Address(ip, kind)),
            None => Ok(()),
        }
    }
}

/// The kind of a non-public address, or `None` for a public unicast one.
pub fn forbidden(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(a) => forbidden_v4(a),
        IpAddr::V6(a) => forbidden_v6(a),
    }
}

fn in_v4(a: Ipv4Addr, net: [u8; 4], bits: u32) -> bool {
    let mask = if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits)
    };
    u32::from(a) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn forbidden_v4(a: Ipv4Addr) -> Option<&'static str> {
    let ranges: [([u8; 4], u32, &'static str); 16] = [
        ([0, 0, 0, 0], 8, "unspecified"),
        ([127, 0, 0, 0], 8, "loopback"),
        ([10, 0, 0, 0], 8, "private"),
        ([172, 16, 0, 0], 12, "private"),
        ([192, 168, 0, 0], 16, "private"),
        // 169.254.169.254 (instance metadata) is in here.
        ([169, 254, 0, 0], 16, "link-local"),
        ([100, 64, 0, 0], 10, "shared (CGNAT)"),
        ([192, 0, 0, 0], 24, "protocol-assignment"),
        ([192, 0, 2, 0], 24, "documentation"),
        ([198, 51, 100, 0], 24, "documentation"),
        ([203, 0, 113, 0], 24, "documentation"),
        ([198, 18, 0, 0], 15, "benchmarking"),
        ([192, 88, 99, 0], 24, "relay"),
        ([224, 0, 0, 0], 4, "multicast"),
        ([240, 0, 0, 0], 4, "reserved"),
        ([255, 255, 255, 255], 32, "broadcast"),
    ];
    ranges
        .iter()
        .find(|(net, bits, _)| in_v4(a, *net, *bits))
        .map(|(_, _, kind)| *kind)
}

fn in_v6(a: Ipv6Addr, net: [u16; 8], bits: u32) -> bool {
    let mask = if bits == 0 {
        0
    } else {
        u128::MAX << (128 - bits)
    };
    u128::from(a) & mask == u128::from(Ipv6Addr::from(net)) & mask
}

fn forbidden_v6(a: Ipv6Addr) -> Option<&'static str> {
    if a.is_unspecified() {
        return Some("unspecified");
    }
    if a.is_loopback() {
        return Some("loopback");
    }
    // Addresses that carry an IPv4 address reach IPv4 hosts; refused whatever they embed, so
    // ::ffff:127.0.0.1 or 64:ff9b::a9fe:a9fe cannot dodge the IPv4 checks.
    let ranges: [([u16; 8], u32, &'static str); 10] = [
        ([0, 0, 0, 0, 0, 0xffff, 0, 0], 96, "IPv4-mapped"),
        ([0, 0, 0, 0, 0, 0, 0, 0], 96, "IPv4-compatible"),
        ([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96, "NAT64"),
        ([0x2002, 0, 0, 0, 0, 0, 0, 0], 16, "6to4"),
        ([0x2001, 0, 0, 0, 0, 0, 0, 0], 32, "Teredo"),
        // fd00:ec2::254 (instance metadata over IPv6) is in here.
        ([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7, "unique-local"),
        ([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, "link-local"),
        ([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10, "site-local"),
        ([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, "multicast"),
        ([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32, "documentation"),
    ];
    ranges
        .iter()
        .find(|(net, bits, _)| in_v6(a, *net, *bits))
        .map(|(_, _, kind)| *kind)
}

/// An organization's webhook endpoint. The secret is stored sealed (like a credential's) and
/// shown once, when the endpoint is created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEndpoint {
    pub id: WebhookId,
    pub org_id: OrgId,
    pub url: WebhookUrl,
    pub events: BTreeSet<WebhookEvent>,
    pub format: WebhookFormat,
    pub enabled: bool,
    pub sealed_secret: SealedSecret,
    pub created_at: Timestamp,
}

impl WebhookEndpoint {
    pub fn wants(&self, event: WebhookEvent) -> bool {
        self.enabled && self.events.contains(&event)
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum DeliveryStatus {
    /// Waiting for its first attempt or a retry.
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Given up: a day of retries, a refused address, or the endpoint disabled or deleted.
    Failed,
}

/// What an event says, whichever format carries it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventFacts {
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<SessionId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub expires_at: Option<Timestamp>,
}

/// One event on its way to one endpoint, and the log of how that went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookDelivery {
    pub id: DeliveryId,
    pub org_id: OrgId,
    pub endpoint_id: WebhookId,
    pub event: WebhookEvent,
    pub facts: EventFacts,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub response_code: Option<u16>,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub next_attempt_at: Timestamp,
}

/// Retries after a failed attempt: quickly at first, then further apart, for a day.
pub const RETRY_BACKOFF: [Duration; 8] = [
    Duration::from_secs(30),
    Duration::from_secs(120),
    Duration::from_secs(600),
    Duration::from_secs(1800),
    Duration::from_secs(3600),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(4 * 3600),
    Duration::from_secs(8 * 3600),
];

/// How long a delivery is retried before it is marked failed.
pub const RETRY_FOR: chrono::Duration = chrono::Duration::hours(24);

impl WebhookDelivery {
    /// Records a failed attempt: schedules the next one, or gives up once the next would be
    /// more than a day after the event. Returns the wait before the next attempt.
    pub fn attempt_failed(
        &mut self,
        now: Timestamp,
        code: Option<u16>,
        error: String,
    ) -> Option<Duration> {
        self.attempts += 1;
        self.response_code = code;
        self.last_error = Some(error);
        self.updated_at = now;
        let step = (self.attempts as usize - 1).min(RETRY_BACKOFF.len() - 1);
        let wait = RETRY_BACKOFF[step];
        let next = now + chrono::Duration::from_std(wait).unwrap_or(RETRY_FOR);
        if next > self.created_at + RETRY_FOR {
            self.status = DeliveryStatus::Failed;
            return None;
        }
        self.next_attempt_at = next;
        Some(wait)
    }

    pub fn delivered(&mut self, now: Timestamp, code: u16) {
        self.attempts += 1;
        self.response_code = Some(code);
        self.last_error = None;
        self.updated_at = now;
        self.status = DeliveryStatus::Delivered;
    }

    /// Ends the delivery without (another) attempt.
    pub fn give_up(&mut self, now: Timestamp, error: String) {
        self.last_error = Some(error);
        self.updated_at = now;
        self.status = DeliveryStatus::Failed;
    }
}

pub const HEADER_EVENT: &str = "X-EntryGuard-Event";
pub const HEADER_DELIVERY: &str = "X-EntryGuard-Delivery";
pub const HEADER_TIMESTAMP: &str = "X-EntryGuard-Timestamp";
pub const HEADER_SIGNATURE: &str = "X-EntryGuard-Signature";

/// `v1=` and the hex HMAC-SHA256, keyed with the endpoint's secret, of the timestamp (Unix
/// seconds, as sent in `X-EntryGuard-Timestamp`), a `.`, and the body's bytes. Binding the
/// timestamp lets a receiver refuse replays of old deliveries.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2_011::Sha256>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// The JSON body of a delivery in the endpoint's format.
pub fn render(
    format: WebhookFormat,
    delivery: &WebhookDelivery,
    app_url: Option<&str>,
) -> serde_json::Value {
    // The web app routes by hash; the sessions page is where a session is seen and extended.
    let link = match (app_url, delivery.facts.session_id) {
        (Some(base), Some(id)) => Some(format!("{}/#/sessions/{id}", base.trim_end_matches('/'))),
        _ => None,
    };
    match format {
        WebhookFormat::Json => serde_json::json!({
            "id": delivery.id,
            "type": delivery.event.as_str(),
            "createdAt": delivery.created_at,
            "organizationId": delivery.org_id,
            "data": delivery.facts,
            "link": link,
        }),
        WebhookFormat::Slack => {
            let facts = &delivery.facts;
            let mut text = format!(
                "*EntryGuard* · `{}` — {}",
                delivery.event.as_str(),
                facts.message
            );
            if let Some(email) = &facts.user_email {
                text.push_str(&format!("\nUser: {email}"));
            }
            if let Some(at) = facts.expires_at {
                text.push_str(&format!("\nEnds at {}", at.format("%Y-%m-%d %H:%M UTC")));
            }
            if let Some(link) = &link {
                text.push_str(&format!("\n<{link}|Open the session>"));
            }
            serde_json::json!({
                "text": text,
                "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_public_unicast_addresses_pass() {
        let strict = AddressPolicy::default();
        for bad in [
            "127.0.0.1",
            "10.1.2.3",
            "172.31.255.255",
            "192.168.0.1",
            "169.254.169.254",
            "100.100.100.200",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:8.8.8.8",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(strict.check_ip(ip(bad)).is_err(), "{bad} must be refused");
        }
        for good in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
        ] {
            assert_eq!(strict.check_ip(ip(good)), Ok(()), "{good} must pass");
        }
    }

    #[test]
    fn the_development_switch_admits_loopback_only() {
        let dev = AddressPolicy {
            allow_loopback: true,
        };
        assert_eq!(dev.check_ip(ip("127.0.0.1")), Ok(()));
        assert_eq!(dev.check_ip(ip("::1")), Ok(()));
        assert!(dev.check_ip(ip("10.0.0.1")).is_err());
        assert!(dev.check_ip(ip("::ffff:127.0.0.1")).is_err());
        let local: WebhookUrl = "http://127.0.0.1:9000/hook".parse().unwrap();
        assert_eq!(dev.check_url(&local), Ok(()));
        assert_eq!(
            AddressPolicy::default().check_url(&local),
            Err(Refusal::Address(ip("127.0.0.1"), "loopback"))
        );
        let plain: WebhookUrl = "http://example.com/hook".parse().unwrap();
        assert_eq!(
            AddressPolicy::default().check_url(&plain),
            Err(Refusal::NotHttps)
        );
        let private: WebhookUrl = "http://10.0.0.1/hook".parse().unwrap();
        assert!(dev.check_url(&private).is_err());
    }

    #[test]
    fn urls_are_parsed() {
        assert!("https://hooks.example.com/a?b=c"
            .parse::<WebhookUrl>()
            .is_ok());
        assert_eq!(
            "ftp://x.example".parse::<WebhookUrl>(),
            Err(UrlError::NotHttps)
        );
        assert_eq!(
            "https://u:p@x.example/".parse::<WebhookUrl>(),
            Err(UrlError::Credentials)
        );
        assert!("not a url".parse::<WebhookUrl>().is_err());
        let long = format!("https://x.example/{}", "a".repeat(2048));
        assert_eq!(long.parse::<WebhookUrl>(), Err(UrlError::TooLong));
    }

    #[test]
    fn the_signature_binds_timestamp_and_body() {
        let s = signature("whsec_k", 1_700_000_000, b"{}");
        assert!(s.starts_with("v1=") && s.len() == 3 + 64);
        assert_ne!(s, signature("whsec_k", 1_700_000_001, b"{}"));
        assert_ne!(s, signature("whsec_k", 1_700_000_000, b"{ }"));
        assert_ne!(s, signature("whsec_j", 1_700_000_000, b"{}"));
        // RFC 4231 test case 2, with the message split as the scheme splits it.
        let mut mac = hmac::Hmac::<sha2_011::Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn bodies_carry_the_facts_and_a_link_to_the_session() {
        let t0 = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let session = SessionId::from_uuid(uuid::Uuid::from_u128(7));
        let mut d = delivery(t0);
        d.event = WebhookEvent::SessionFailed;
        d.facts.session_id = Some(session);
        d.facts.user_email = Some("dev@example.com".into());
        let json = render(WebhookFormat::Json, &d, Some("https://app.example.com/"));
        assert_eq!(json["type"], "session.failed");
        assert_eq!(json["data"]["userEmail"], "dev@example.com");
        let link = format!("https://app.example.com/#/sessions/{session}");
        assert_eq!(json["link"], link.as_str());
        let slack = render(WebhookFormat::Slack, &d, Some("https://app.example.com"));
        let text = slack["text"].as_str().unwrap();
        assert!(text.contains("`session.failed`") && text.contains("dev@example.com"));
        assert!(
            text.contains(&format!("<{link}|Open the session>")),
            "{text}"
        );
        assert_eq!(slack["blocks"][0]["text"]["text"], text);
        assert!(render(WebhookFormat::Json, &d, None)["link"].is_null());
    }

    fn delivery(t0: Timestamp) -> WebhookDelivery {
        WebhookDelivery {
            id: DeliveryId::from_uuid(uuid::Uuid::nil()),
            org_id: OrgId::from_uuid(uuid::Uuid::nil()),
            endpoint_id: WebhookId::from_uuid(uuid::Uuid::nil()),
            event: WebhookEvent::Test,
            facts: EventFacts {
                message: "m".into(),
                session_id: None,
                user_email: None,
                expires_at: None,
            },
            status: DeliveryStatus::Pending,
            attempts: 0,
            response_code: None,
            last_error: None,
            created_at: t0,
            updated_at: t0,
            next_attempt_at: t0,
        }
    }

    #[test]
    fn retries_stop_after_a_day() {
        let t0 = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let mut d = delivery(t0);
        let mut now = t0;
        let mut waits = vec![];
        while let Some(wait) = d.attempt_failed(now, Some(500), "HTTP 500".into()) {
            waits.push(wait.as_secs());
            now = d.next_attempt_at;
        }
        assert_eq!(waits, [30, 120, 600, 1800, 3600, 7200, 14400, 28800, 28800]);
        assert_eq!(d.status, DeliveryStatus::Failed);
        assert_eq!(d.attempts, 10);
        assert!(now - t0 < RETRY_FOR);
    }
}
