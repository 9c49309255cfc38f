//! Dual-stack detection for the web app served by the runner: which of the runner's own
//! addresses the browser probes for an address of each IP family (`GET /api/address`), published
//! in `/config.json`, and the CORS answer that lets the page call the other family's origin.

use std::net::SocketAddr;

use axum::http::{header, HeaderValue, Method};
use serde_json::{Map, Value};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// The origins a browser may load the app from, given the addresses the runner is bound to.
/// An unspecified address (0.0.0.0, [::]) names no origin the browser could use.
pub fn origins(bound: &[SocketAddr]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for addr in bound.iter().filter(|a| !a.ip().is_unspecified()) {
        let mut names = vec![format!("http://{addr}")];
        if addr.ip().is_loopback() {
            names.push(format!("http://localhost:{}", addr.port()));
        }
        for name in names {
            if !out.contains(&name) {
                out.push(name);
            }
        }
    }
    out
}

/// What the web app's CSP `connect-src` must allow for the probes: the runner's origins, except
/// that CSP has no syntax for an IPv6 literal host (browsers drop `http://[::1]:8080` as
/// invalid), so an IPv6 address is allowed as any host on its port.
pub fn csp_sources(bound: &[SocketAddr]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for origin in origins(bound) {
        let source = match origin.strip_prefix("http://[") {
            Some(rest) => format!(
                "http://*:{}",
                rest.rsplit_once("]:").map_or("", |(_, port)| port)
            ),
            None => origin,
        };
        if !out.contains(&source) {
            out.push(source);
        }
    }
    out
}

/// `{"v4": "http://127.0.0.1:8080", "v6": "http://[::1]:8080"}`: the first usable bound address
/// of each family.
pub fn probe_urls(bound: &[SocketAddr]) -> Map<String, Value> {
    let mut out = Map::new();
    for addr in bound.iter().filter(|a| !a.ip().is_unspecified()) {
        let family = if addr.is_ipv4() { "v4" } else { "v6" };
        out.entry(family)
            .or_insert_with(|| Value::String(format!("http://{addr}")));
    }
    out
}

/// The web app's `config.json` (the built one, or the development default) with the probe URLs
/// added as `addressProbes`.
pub fn config_json(web_config: Option<&[u8]>, bound: &[SocketAddr]) -> Value {
    let mut config = web_config
        .and_then(|bytes| serde_json::from_slice::<Value>(bytes).ok())
        .filter(Value::is_object)
        .unwrap_or_else(|| serde_json::json!({"apiBaseUrl": "", "auth": {"mode": "dev"}}));
    config["addressProbes"] = Value::Object(probe_urls(bound));
    config
}

/// Lets a page from one of the runner's origins call the API on another (the probe of the
/// other family): GET with a bearer token, from those origins only.
pub fn cors(bound: &[SocketAddr]) -> CorsLayer {
    let allowed: Vec<HeaderValue> = origins(bound)
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(allowed))
        .allow_methods([Method::GET])
        .allow_headers([header::AUTHORIZATION])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn one_probe_per_family_from_usable_addresses() {
        let bound = addrs(&["0.0.0.0:8080", "127.0.0.1:8080", "[::1]:8080", "[::1]:9090"]);
        assert_eq!(
            Value::Object(probe_urls(&bound)),
            serde_json::json!({"v4": "http://127.0.0.1:8080", "v6": "http://[::1]:8080"})
        );
        assert_eq!(
            origins(&bound),
            vec![
                "http://127.0.0.1:8080",
                "http://localhost:8080",
                "http://[::1]:8080",
                "http://[::1]:9090",
                "http://localhost:9090",
            ]
        );
    }

    #[test]
    fn csp_sources_name_ipv6_hosts_by_port_only() {
        let bound = addrs(&["127.0.0.1:8080", "[::1]:8080"]);
        assert_eq!(
            csp_sources(&bound),
            vec![
                "http://127.0.0.1:8080",
                "http://localhost:8080",
                "http://*:8080"
            ]
        );
    }

    #[test]
    fn the_built_config_keeps_its_settings() {
        let bound = addrs(&["127.0.0.1:8080"]);
        let built = br#"{"apiBaseUrl":"","auth":{"mode":"oidc","issuer":"https://id.example.com","clientId":"c","redirectUri":"r"}}"#;
        let config = config_json(Some(built), &bound);
        assert_eq!(config["auth"]["mode"], "oidc");
        assert_eq!(
            config["addressProbes"],
            serde_json::json!({"v4": "http://127.0.0.1:8080"})
        );
        assert_eq!(
            config_json(Some(b"not json"), &bound)["auth"]["mode"],
            "dev"
        );
        assert_eq!(
            config_json(None, &[])["addressProbes"],
            serde_json::json!({})
        );
    }
}
