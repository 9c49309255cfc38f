//! A stand-in OIDC provider on 127.0.0.1: it publishes its discovery document and JWKS (the
//! test key of `tests/fixtures`) and signs ID tokens the way Cognito shapes them.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use tokio::net::TcpListener;

pub const AUDIENCE: &str = "entryguard-web-client";
pub const KEY_ID: &str = "test-key-1";

const TEST_KEY: &[u8] = include_bytes!("../fixtures/oidc-test-key.pem");
const ATTACKER_KEY: &[u8] = include_bytes!("../fixtures/oidc-attacker-key.pem");
const JWKS: &str = include_str!("../fixtures/oidc-test-jwks.json");

/// Which private key signs a token.
#[derive(Debug, Clone, Copy)]
pub enum Signer {
    /// The provider's published key.
    Provider,
    /// A key the provider never published.
    Attacker,
}

pub struct Issuer {
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Issuer {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let discovery = json!({
            "issuer": url,
            "jwks_uri": format!("{url}/.well-known/jwks.json"),
            "authorization_endpoint": format!("{url}/oauth2/authorize"),
            "token_endpoint": format!("{url}/oauth2/token"),
        });
        let jwks: Value = serde_json::from_str(JWKS).expect("fixture JWKS");
        let app = axum::Router::new()
            .route(
                "/.well-known/openid-configuration",
                axum::routing::get(move || async move { axum::Json(discovery) }),
            )
            .route(
                "/.well-known/jwks.json",
                axum::routing::get(move || async move { axum::Json(jwks) }),
            );
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("issuer serves");
        });
        Self { url, task }
    }

    /// The claims of a valid ID token for `email`, issued at `now` (epoch seconds) for an hour.
    pub fn claims(&self, email: &str, now: i64) -> Value {
        json!({
            "iss": self.url,
            "aud": AUDIENCE,
            "sub": format!("sub-{email}"),
            "email": email,
            "email_verified": true,
            "token_use": "id",
            "iat": now,
            "exp": now + 3600,
        })
    }
}

impl Drop for Issuer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An RS256 token over `claims`, naming the provider's key id.
pub fn sign(claims: &Value, signer: Signer) -> String {
    sign_with(claims, signer, Header::new(Algorithm::RS256))
}

pub fn sign_with(claims: &Value, signer: Signer, mut header: Header) -> String {
    if header.kid.is_none() {
        header.kid = Some(KEY_ID.into());
    }
    let pem = match signer {
        Signer::Provider => TEST_KEY,
        Signer::Attacker => ATTACKER_KEY,
    };
    let key = EncodingKey::from_rsa_pem(pem).expect("test key");
    jsonwebtoken::encode(&header, claims, &key).expect("token signs")
}
