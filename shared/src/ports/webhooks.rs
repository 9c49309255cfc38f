//! Sending webhooks. The adapter resolves the endpoint's host, checks every address against
//! the [`AddressPolicy`] and connects only to an address it checked; the use cases decide what
//! to send, sign it, and what to do with the answer.

use async_trait::async_trait;
use thiserror::Error;

use crate::domain::webhook::{AddressPolicy, Refusal, WebhookUrl};

/// One signed POST.
#[derive(Debug, Clone)]
pub struct WebhookRequest {
    pub url: WebhookUrl,
    /// Header names and values, the signature among them.
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

#[derive(Debug, Error)]
pub enum SendError {
    /// The address is not one deliveries may reach; trying again does not help.
    #[error("refused: {0}")]
    Refused(#[from] Refusal),
    /// No answer in time, connection refused or reset, name not resolved: retried.
    #[error("{0}")]
    Unreachable(String),
}

#[async_trait]
pub trait WebhookSender: Send + Sync {
    /// The addresses this sender may reach (the API checks new endpoints against it too).
    fn policy(&self) -> AddressPolicy;
    /// Sends the request; any HTTP answer is `Ok` with its status code. Never follows a
    /// redirect: a 3xx is returned as it is.
    async fn send(&self, request: WebhookRequest) -> Result<u16, SendError>;
}

/// For processes that send nothing themselves (the API, the sweeper: deliveries go through the
/// queue to the worker) and for tests that do not deliver.
pub struct NoWebhookSender(pub AddressPolicy);

#[async_trait]
impl WebhookSender for NoWebhookSender {
    fn policy(&self) -> AddressPolicy {
        self.0
    }
    async fn send(&self, _: WebhookRequest) -> Result<u16, SendError> {
        Err(SendError::Unreachable(
            "this process does not send webhooks".into(),
        ))
    }
}
