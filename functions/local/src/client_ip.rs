//! The client address for the local runner: the TCP peer, or — only when the peer is a
//! configured trusted proxy — the nearest untrusted address in `X-Forwarded-For`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use entryguard::domain::net::ClientIp;
use entryguard_api::extract::ClientAddr;

#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(pub Arc<Vec<IpAddr>>);

impl TrustedProxies {
    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ClientIp::new(ip).addr();
        self.0.iter().any(|t| ClientIp::new(*t).addr() == ip)
    }

    /// Walks `X-Forwarded-For` from the right, past the trusted hops, to the first address a
    /// trusted proxy vouches for. Anything unparsable falls back to the peer.
    pub fn client(&self, peer: IpAddr, forwarded_for: Option<&str>) -> ClientIp {
        if !self.trusts(peer) {
            return ClientIp::new(peer);
        }
        let Some(header) = forwarded_for else {
            return ClientIp::new(peer);
        };
        for hop in header.rsplit(',') {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) if self.trusts(ip) => continue,
                Ok(ip) => return ClientIp::new(ip),
                Err(_) => break,
            }
        }
        ClientIp::new(peer)
    }
}

pub async fn client_addr(
    State(trusted): State<TrustedProxies>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut req: Request,
    next: Next,
) -> Response {
    let forwarded = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let ip = trusted.client(peer.ip(), forwarded.as_deref());
    req.extensions_mut().insert(ClientAddr(ip));
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_for_is_ignored_without_a_trusted_proxy() {
        let none = TrustedProxies::default();
        assert_eq!(
            none.client(ip("127.0.0.1"), Some("6.6.6.6")).to_string(),
            "127.0.0.1"
        );
    }

    #[test]
    fn trusted_proxy_vouches_for_the_nearest_untrusted_hop() {
        let t = TrustedProxies(Arc::new(vec![ip("10.0.0.1"), ip("10.0.0.2")]));
        assert_eq!(
            t.client(ip("10.0.0.1"), Some("6.6.6.6, 203.0.113.7, 10.0.0.2"))
                .to_string(),
            "203.0.113.7"
        );
        assert_eq!(
            t.client(ip("10.0.0.1"), Some("garbage")).to_string(),
            "10.0.0.1"
        );
        assert_eq!(t.client(ip("10.0.0.1"), None).to_string(), "10.0.0.1");
        assert_eq!(
            t.client(ip("192.0.2.1"), Some("6.6.6.6")).to_string(),
            "192.0.2.1"
        );
    }
}
