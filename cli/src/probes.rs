//! Address proofs for a start, gathered as the web app gathers them: one `GET /api/address` per
//! IP family, in parallel, each within [`PROBE_TIMEOUT`], whose signed answers go into the start
//! request's `addressProofs`. The server only ever trusts an address it saw, and one request
//! shows it one, so this is how one session covers a person's IPv4 and IPv6 addresses. A probe
//! that fails is a note for the person, never an error: the session still covers the address
//! the start request came from.
//!
//! Unlike a browser, the CLI can choose the family of a connection: each probe's socket is bound
//! to its family's unspecified address, so it reaches its probe host over that family or not at
//! all. A dual-stack API therefore serves as both probes when no probe host is configured.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use entryguard::domain::net::IpVersion;
use serde::Deserialize;
use serde_json::Value;

use crate::client::{error_chain, Client};

/// The web app's limit too: a network without one of the families usually fails fast, but a
/// black-holed one would otherwise hold the start for the HTTP client's full timeout.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub const ALL: [Family; 2] = [Family::V4, Family::V6];

    pub fn name(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }

    fn version(self) -> IpVersion {
        match self {
            Family::V4 => IpVersion::V4,
            Family::V6 => IpVersion::V6,
        }
    }

    /// A socket bound here can only connect to an address of this family.
    fn unspecified(self) -> IpAddr {
        match self {
            Family::V4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            Family::V6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        }
    }
}

/// Base URLs of the API to probe, per family; either may be unset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProbeUrls {
    pub v4: Option<String>,
    pub v6: Option<String>,
}

impl ProbeUrls {
    pub fn get(&self, family: Family) -> Option<&str> {
        match family {
            Family::V4 => self.v4.as_deref(),
            Family::V6 => self.v6.as_deref(),
        }
    }

    /// Each family's URL from `self`, or else from `fallback`.
    pub fn or(self, fallback: ProbeUrls) -> ProbeUrls {
        ProbeUrls {
            v4: self.v4.or(fallback.v4),
            v6: self.v6.or(fallback.v6),
        }
    }

    fn complete(&self) -> bool {
        self.v4.is_some() && self.v6.is_some()
    }

    /// The `addressProbes` of a web app's `config.json`; anything but http(s) URLs is ignored,
    /// as the web app ignores it.
    pub fn from_web_config(config: &Value) -> ProbeUrls {
        let url = |family: &str| {
            config["addressProbes"][family]
                .as_str()
                .filter(|u| is_http_url(u))
                .map(|u| u.trim_end_matches('/').to_owned())
        };
        ProbeUrls {
            v4: url("v4"),
            v6: url("v6"),
        }
    }
}

pub fn is_http_url(url: &str) -> bool {
    reqwest::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
}

/// Where each family is probed: the configured URL (flag, environment or profile), else the web
/// app's `config.json`, else the API itself.
pub fn choose(
    configured: &ProbeUrls,
    from_web_app: &ProbeUrls,
    api: &str,
) -> [(Family, String); 2] {
    Family::ALL.map(|family| {
        let url = configured
            .get(family)
            .or(from_web_app.get(family))
            .unwrap_or(api);
        (family, url.trim_end_matches('/').to_owned())
    })
}

/// What the probes found: the proofs to send, and a note for each family not found.
#[derive(Debug, Default)]
pub struct Detected {
    pub proofs: Vec<String>,
    pub notes: Vec<String>,
}

/// Probes both families for `client`'s caller, at the probe hosts it was configured with.
pub async fn detect(client: &Client) -> Detected {
    let configured = client.probes();
    let from_web_app = if configured.complete() {
        ProbeUrls::default()
    } else {
        web_app_probes(client.api()).await
    };
    let [(f4, u4), (f6, u6)] = choose(configured, &from_web_app, client.api());
    let (a4, a6) = tokio::join!(
        probe(f4, &u4, client.token()),
        probe(f6, &u6, client.token())
    );
    let mut detected = Detected::default();
    for (family, url, answer) in [(f4, u4, a4), (f6, u6, a6)] {
        match answer {
            Ok(proof) => detected.proofs.push(proof),
            Err(reason) => detected.notes.push(format!(
                "note: no {} address found at {url}/api/address ({reason})",
                family.name()
            )),
        }
    }
    detected
}

/// The probes a deployment's web app is configured with, from its `/config.json` beside the API
/// (the local runner serves one naming its own addresses). Not every deployment serves one
/// there: any failure means none.
async fn web_app_probes(api: &str) -> ProbeUrls {
    let Ok(http) = reqwest::Client::builder().timeout(PROBE_TIMEOUT).build() else {
        return ProbeUrls::default();
    };
    let answer = async {
        let response = http.get(format!("{api}/config.json")).send().await.ok()?;
        if !response.status().is_success() {
            return None;
        }
        response.json::<Value>().await.ok()
    };
    answer
        .await
        .map(|config| ProbeUrls::from_web_config(&config))
        .unwrap_or_default()
}

/// `GET /api/address`'s answer.
#[derive(Debug, Deserialize)]
struct AddressAnswer {
    version: IpVersion,
    proof: String,
}

async fn probe(family: Family, base: &str, token: &str) -> Result<String, String> {
    let http = reqwest::Client::builder()
        .timeout(PROBE_TIMEOUT)
        .local_address(family.unspecified())
        .user_agent(concat!("entryguard-cli/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| e.to_string())?;
    let response = http
        .get(format!("{base}/api/address"))
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| {
            if e.is_timeout() {
                format!("no answer within {} s", PROBE_TIMEOUT.as_secs())
            } else {
                reason(&e)
            }
        })?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("HTTP {status}"));
    }
    let answer: AddressAnswer = response
        .json()
        .await
        .map_err(|e| format!("unexpected answer: {}", reason(&e)))?;
    // Cannot happen over a socket of the family; checked all the same, as two proofs of one
    // family would refuse the start.
    if answer.version != family.version() {
        let other = match answer.version {
            IpVersion::V4 => Family::V4,
            IpVersion::V6 => Family::V6,
        };
        return Err(format!("it answered over {}", other.name()));
    }
    Ok(answer.proof)
}

/// reqwest's own message repeats the URL the note already names: its causes say what failed.
fn reason(e: &reqwest::Error) -> String {
    match std::error::Error::source(e) {
        Some(cause) => error_chain(cause),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn urls(v4: Option<&str>, v6: Option<&str>) -> ProbeUrls {
        ProbeUrls {
            v4: v4.map(str::to_owned),
            v6: v6.map(str::to_owned),
        }
    }

    #[test]
    fn configured_urls_come_first_then_the_web_app_s_then_the_api() {
        let api = "https://api.example.com";
        let web = urls(
            Some("https://v4.example.com"),
            Some("https://v6.example.com"),
        );
        assert_eq!(
            choose(&urls(None, Some("https://six.example.com/")), &web, api),
            [
                (Family::V4, "https://v4.example.com".to_owned()),
                (Family::V6, "https://six.example.com".to_owned()),
            ]
        );
        assert_eq!(
            choose(
                &ProbeUrls::default(),
                &urls(Some("https://v4.example.com"), None),
                api
            ),
            [
                (Family::V4, "https://v4.example.com".to_owned()),
                (Family::V6, api.to_owned()),
            ]
        );
        assert_eq!(
            choose(&ProbeUrls::default(), &ProbeUrls::default(), api),
            [(Family::V4, api.to_owned()), (Family::V6, api.to_owned())]
        );
    }

    #[test]
    fn the_web_app_config_gives_http_urls_only() {
        let config =
            json!({"addressProbes": {"v4": "http://127.0.0.1:8080/", "v6": "javascript:alert(1)"}});
        assert_eq!(
            ProbeUrls::from_web_config(&config),
            urls(Some("http://127.0.0.1:8080"), None)
        );
        assert_eq!(
            ProbeUrls::from_web_config(&json!({"addressProbes": "http://x"})),
            ProbeUrls::default()
        );
        assert_eq!(ProbeUrls::from_web_config(&json!([])), ProbeUrls::default());
        assert!(is_http_url("http://[::1]:8080"));
        assert!(!is_http_url("ftp://example.com"));
        assert!(!is_http_url("example.com"));
    }

    #[test]
    fn flags_and_profiles_combine_per_family() {
        let flags = urls(None, Some("https://v6.example.com"));
        let profile = urls(
            Some("https://v4.example.com"),
            Some("https://old.example.com"),
        );
        assert_eq!(
            flags.or(profile),
            urls(
                Some("https://v4.example.com"),
                Some("https://v6.example.com")
            )
        );
    }
}
