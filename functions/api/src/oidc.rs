//! Verifies the ID tokens browser users bring from the OIDC provider (Cognito when deployed):
//! the signature against the issuer's published keys (JWKS), the issuer, the audience (our app
//! client), and expiry against the application's clock.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use thiserror::Error;

use entryguard::domain::model::Email;
use entryguard::domain::Timestamp;

/// Unknown key ids trigger a fresh read of the JWKS (the provider rotated its keys), but not
/// more often than this, so forged tokens with random key ids cannot make us hammer it.
const JWKS_REFRESH_FLOOR: Duration = Duration::from_secs(60);
/// Tolerated difference between our clock and the provider's.
const CLOCK_LEEWAY_SECS: i64 = 60;
/// How long a fetch of the provider's documents may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcConfig {
    /// The `iss` of accepted tokens, e.g. `https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc`.
    pub issuer: String,
    /// The `aud` of accepted tokens: the app client id.
    pub audience: String,
}

#[derive(Debug, Error)]
pub enum OidcError {
    /// The token is not one we accept: the reason is logged, never returned to the caller.
    #[error("token rejected: {0}")]
    Rejected(String),
    /// We could not read the issuer's keys; the caller may try again.
    #[error("the identity provider could not be reached: {0}")]
    ProviderUnavailable(String),
    #[error("invalid OIDC configuration: {0}")]
    Config(String),
}

/// What a verified ID token says about its bearer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedUser {
    pub email: Email,
    pub subject: String,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    exp: i64,
    #[serde(default)]
    nbf: Option<i64>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    email_verified: Option<serde_json::Value>,
    /// Cognito says which of its tokens this is; only ID tokens carry the e-mail and our audience.
    #[serde(default)]
    token_use: Option<String>,
}

pub struct OidcVerifier {
    config: OidcConfig,
    http: reqwest::Client,
    keys: tokio::sync::Mutex<Option<JwkSet>>,
    last_refresh: Mutex<Option<Instant>>,
}

/// Issuers must be HTTPS, except on loopback addresses (tests and local providers).
fn check_issuer_url(issuer: &str) -> Result<(), OidcError> {
    let url = reqwest::Url::parse(issuer)
        .map_err(|e| OidcError::Config(format!("issuer '{issuer}' is not a URL: {e}")))?;
    let host = url.host_str().unwrap_or("");
    let loopback = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(OidcError::Config(format!(
            "issuer '{issuer}' must be an https URL"
        ))),
    }
}

/// The environment variables the API function reads its OIDC settings from.
pub const ISSUER_ENV: &str = "ENTRYGUARD_OIDC_ISSUER";
pub const AUDIENCE_ENV: &str = "ENTRYGUARD_OIDC_AUDIENCE";

impl OidcConfig {
    /// Both variables, or neither (then browser sign-in is off and only API tokens work).
    pub fn from_env() -> Result<Option<Self>, OidcError> {
        let read = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        match (read(ISSUER_ENV), read(AUDIENCE_ENV)) {
            (Some(issuer), Some(audience)) => Ok(Some(Self { issuer, audience })),
            (None, None) => Ok(None),
            _ => Err(OidcError::Config(format!(
                "set both {ISSUER_ENV} and {AUDIENCE_ENV}, or neither"
            ))),
        }
    }
}

impl OidcVerifier {
    pub fn new(config: OidcConfig) -> Result<Self, OidcError> {
        check_issuer_url(&config.issuer)?;
        if config.audience.trim().is_empty() {
            return Err(OidcError::Config(
                "the audience (client id) is empty".into(),
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .build()
            .map_err(|e| OidcError::Config(e.to_string()))?;
        Ok(Self {
            config,
            http,
            keys: tokio::sync::Mutex::new(None),
            last_refresh: Mutex::new(None),
        })
    }

    /// Reads the provider's keys now — during a Lambda's init — instead of on the first
    /// signed-in request, which would otherwise wait for two HTTPS round trips to the provider.
    pub async fn prefetch(&self) -> Result<(), OidcError> {
        let mut keys = self.keys.lock().await;
        *self.last_refresh.lock().expect("refresh lock") = Some(Instant::now());
        let set = self.fetch_keys().await?;
        tracing::info!(keys = set.keys.len(), "read the identity provider's keys");
        *keys = Some(set);
        Ok(())
    }

    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    /// Whether a bearer token is shaped like a JWT (three base64url parts), as opposed to one
    /// of our opaque tokens.
    pub fn looks_like_jwt(token: &str) -> bool {
        token.split('.').count() == 3 && token.starts_with("ey")
    }

    pub async fn verify(&self, token: &str, now: Timestamp) -> Result<VerifiedUser, OidcError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| OidcError::Rejected(format!("malformed header: {e}")))?;
        if header.alg != Algorithm::RS256 {
            return Err(OidcError::Rejected(format!(
                "algorithm {:?} is not accepted",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| OidcError::Rejected("the token names no key".into()))?;
        let key = self.key(&kid).await?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.audience]);
        // Expiry is checked below against the application's clock, so time can be simulated.
        validation.validate_exp = false;
        validation.required_spec_claims = ["exp", "iss", "aud", "sub"]
            .into_iter()
            .map(str::to_owned)
            .collect();
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map_err(|e| OidcError::Rejected(e.to_string()))?
            .claims;
        let now = now.timestamp();
        if claims.exp + CLOCK_LEEWAY_SECS <= now {
            return Err(OidcError::Rejected("the token has expired".into()));
        }
        if claims.nbf.is_some_and(|nbf| nbf - CLOCK_LEEWAY_SECS > now) {
            return Err(OidcError::Rejected("the token is not valid yet".into()));
        }
        if claims.token_use.as_deref().is_some_and(|u| u != "id") {
            return Err(OidcError::Rejected("only ID tokens are accepted".into()));
        }
        let verified = match &claims.email_verified {
            None => true,
            Some(serde_json::Value::Bool(b)) => *b,
            // Some providers send the flag as a string.
            Some(serde_json::Value::String(s)) => s == "true",
            Some(_) => false,
        };
        if !verified {
            return Err(OidcError::Rejected(
                "the e-mail address is not verified".into(),
            ));
        }
        let email = claims
            .email
            .ok_or_else(|| OidcError::Rejected("the token has no e-mail claim".into()))?
            .parse::<Email>()
            .map_err(|e| OidcError::Rejected(format!("e-mail claim: {e}")))?;
        Ok(VerifiedUser {
            email,
            subject: claims.sub,
        })
    }

    async fn key(&self, kid: &str) -> Result<DecodingKey, OidcError> {
        let mut keys = self.keys.lock().await;
        if let Some(jwk) = keys.as_ref().and_then(|set| set.find(kid)) {
            return DecodingKey::from_jwk(jwk).map_err(|e| OidcError::Rejected(e.to_string()));
        }
        let may_refresh = self
            .last_refresh
            .lock()
            .expect("refresh lock")
            .is_none_or(|at| at.elapsed() >= JWKS_REFRESH_FLOOR);
        if !may_refresh {
            return Err(OidcError::Rejected(format!("unknown key id '{kid}'")));
        }
        *self.last_refresh.lock().expect("refresh lock") = Some(Instant::now());
        let set = self.fetch_keys().await?;
        tracing::info!(keys = set.keys.len(), "read the identity provider's keys");
        let found = set.find(kid).cloned();
        *keys = Some(set);
        let jwk = found.ok_or_else(|| OidcError::Rejected(format!("unknown key id '{kid}'")))?;
        DecodingKey::from_jwk(&jwk).map_err(|e| OidcError::Rejected(e.to_string()))
    }

    async fn fetch_keys(&self) -> Result<JwkSet, OidcError> {
        let discovery_url = format!(
            "{}/.well-known/openid-configuration",
            self.config.issuer.trim_end_matches('/')
        );
        let discovery: Discovery = self.get_json(&discovery_url).await?;
        if discovery.issuer != self.config.issuer {
            return Err(OidcError::Config(format!(
                "the provider calls itself '{}', not '{}'",
                discovery.issuer, self.config.issuer
            )));
        }
        check_issuer_url(&discovery.jwks_uri)?;
        self.get_json(&discovery.jwks_uri).await
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, OidcError> {
        let unavailable = |e: reqwest::Error| OidcError::ProviderUnavailable(format!("{url}: {e}"));
        self.http
            .get(url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(unavailable)?
            .json()
            .await
            .map_err(unavailable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuers_must_be_https_except_on_loopback() {
        assert!(
            check_issuer_url("https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_x").is_ok()
        );
        assert!(check_issuer_url("http://127.0.0.1:9000").is_ok());
        assert!(check_issuer_url("http://localhost:9000").is_ok());
        assert!(check_issuer_url("http://idp.example.com").is_err());
        assert!(check_issuer_url("ftp://idp.example.com").is_err());
        assert!(check_issuer_url("not a url").is_err());
    }

    #[test]
    fn jwts_are_told_apart_from_opaque_tokens() {
        assert!(OidcVerifier::looks_like_jwt("eyJhbGciOi.eyJzdWIi.c2ln"));
        assert!(!OidcVerifier::looks_like_jwt("egt_0123abcd"));
        assert!(!OidcVerifier::looks_like_jwt(&"ab".repeat(32)));
    }
}
