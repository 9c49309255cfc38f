//! The HTTP calls, with the API's error answers turned into [`CliError`]s.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::error::CliError;
use crate::probes::ProbeUrls;
use crate::types::{ErrorBody, Me, Session};

pub struct Client {
    http: reqwest::Client,
    api: String,
    token: String,
    /// Named in the message when the token is refused.
    profile: String,
    /// The address probe hosts set by flag, environment or profile.
    probes: ProbeUrls,
}

impl Client {
    pub fn new(api: &str, token: String, profile: &str) -> Result<Self, CliError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("entryguard-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CliError::Local(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            http,
            api: api.trim_end_matches('/').to_owned(),
            token,
            profile: profile.to_owned(),
            probes: ProbeUrls::default(),
        })
    }

    pub fn with_probes(self, probes: ProbeUrls) -> Self {
        Self { probes, ..self }
    }

    pub fn api(&self) -> &str {
        &self.api
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    pub fn probes(&self) -> &ProbeUrls {
        &self.probes
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<T, CliError> {
        let url = format!("{}/api{path}", self.api);
        let mut request = self.http.request(method, &url).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| CliError::Unreachable {
            url: url.clone(),
            reason: error_chain(&e),
        })?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| CliError::Unreachable {
            url: url.clone(),
            reason: error_chain(&e),
        })?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| CliError::BadAnswer {
                url,
                reason: e.to_string(),
            });
        }
        let detail = match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(body) => body.error,
            Err(_) => {
                return Err(CliError::BadAnswer {
                    url,
                    reason: format!("HTTP {status} without an error body"),
                })
            }
        };
        if status == StatusCode::UNAUTHORIZED {
            return Err(CliError::TokenRefused {
                profile: self.profile.clone(),
                message: detail.message,
            });
        }
        Err(CliError::Api(detail))
    }

    pub async fn me(&self) -> Result<Me, CliError> {
        self.call(Method::GET, "/me", None).await
    }

    pub async fn sessions(&self) -> Result<Vec<Session>, CliError> {
        self.call(Method::GET, "/sessions", None).await
    }

    pub async fn session(&self, id: &str) -> Result<Session, CliError> {
        self.call(Method::GET, &format!("/sessions/{id}"), None)
            .await
    }

    /// `address_proofs` from [`crate::probes::detect`] add the addresses they prove.
    pub async fn start(&self, hours: u32, address_proofs: &[String]) -> Result<Session, CliError> {
        let body = if address_proofs.is_empty() {
            json!({ "durationHours": hours })
        } else {
            json!({ "durationHours": hours, "addressProofs": address_proofs })
        };
        self.call(Method::POST, "/sessions", Some(body)).await
    }

    pub async fn stop(&self, id: &str) -> Result<Session, CliError> {
        self.call(Method::POST, &format!("/sessions/{id}/stop"), None)
            .await
    }

    pub async fn extend(&self, id: &str, hours: Option<u32>) -> Result<Session, CliError> {
        self.call(
            Method::POST,
            &format!("/sessions/{id}/extend"),
            Some(json!({ "hours": hours })),
        )
        .await
    }
}

/// reqwest's own message is often just "error sending request"; the cause is further down.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    parts.join(": ")
}
