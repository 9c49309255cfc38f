//! The webhook sender: resolves the endpoint's host once, refuses the delivery unless every
//! address is one the [`AddressPolicy`] allows, then connects to the address it checked — the
//! HTTP client never resolves the name again, so an answer that changes between the check and
//! the connection (DNS rebinding) cannot redirect it. Redirects are never followed, proxies
//! from the environment are ignored, and every request has a short timeout.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use entryguard::domain::webhook::{AddressPolicy, Host, Refusal};
use entryguard::ports::webhooks::{SendError, WebhookRequest, WebhookSender};

/// How long one attempt may take, connection included: an endpoint that does not answer in
/// time is retried later rather than holding a worker.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Name resolution, replaceable so tests can answer differently on each question.
#[async_trait]
pub trait Resolver: Send + Sync {
    async fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<IpAddr>>;
}

/// The system's resolver.
pub struct SystemResolver;

#[async_trait]
impl Resolver for SystemResolver {
    async fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<IpAddr>> {
        Ok(tokio::net::lookup_host((host, port))
            .await?
            .map(|a| a.ip())
            .collect())
    }
}

/// Refuses every lookup: the client is given the checked address for the endpoint's host, so
/// any other name it tried to resolve would be a bug, never a connection.
struct NoLookups;

impl reqwest::dns::Resolve for NoLookups {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let name = name.as_str().to_owned();
        Box::pin(async move {
            Err(format!("{name} was not checked; webhooks resolve names only once").into())
        })
    }
}

pub struct HttpWebhookSender {
    policy: AddressPolicy,
    resolver: Arc<dyn Resolver>,
    timeout: Duration,
}

impl HttpWebhookSender {
    pub fn new(policy: AddressPolicy) -> Self {
        Self {
            policy,
            resolver: Arc::new(SystemResolver),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    pub fn with_resolver(mut self, resolver: Arc<dyn Resolver>) -> Self {
        self.resolver = resolver;
        self
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The one address this delivery may connect to.
    async fn checked_address(&self, host: &Host, port: u16) -> Result<IpAddr, SendError> {
        let addresses = match host {
            Host::Ip(ip) => vec![*ip],
            Host::Name(name) => self.resolver.resolve(name, port).await.map_err(|e| {
                SendError::Unreachable(format!("{name} could not be resolved: {e}"))
            })?,
        };
        for ip in &addresses {
            self.policy.check_ip(*ip)?;
        }
        addresses
            .first()
            .copied()
            .ok_or(SendError::Refused(Refusal::NoAddress))
    }
}

#[async_trait]
impl WebhookSender for HttpWebhookSender {
    fn policy(&self) -> AddressPolicy {
        self.policy
    }

    async fn send(&self, request: WebhookRequest) -> Result<u16, SendError> {
        self.policy.check_url(&request.url)?;
        let host = request.url.host().ok_or(Refusal::NoAddress)?;
        let port = request.url.port();
        let ip = self.checked_address(&host, port).await?;
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(self.timeout)
            .connect_timeout(self.timeout)
            .dns_resolver(Arc::new(NoLookups));
        if let Host::Name(name) = &host {
            builder = builder.resolve(name, SocketAddr::new(ip, port));
        }
        let client = builder
            .build()
            .map_err(|e| SendError::Unreachable(format!("no HTTP client: {e}")))?;
        let mut post = client.post(request.url.as_url().clone());
        for (name, value) in request.headers {
            post = post.header(name, value);
        }
        match post.body(request.body).send().await {
            Ok(response) => Ok(response.status().as_u16()),
            // Without the URL: a Slack webhook's URL is itself a secret.
            Err(e) if e.is_timeout() => Err(SendError::Unreachable(format!(
                "no answer within {} s",
                self.timeout.as_secs_f32()
            ))),
            Err(e) => Err(SendError::Unreachable(e.without_url().to_string())),
        }
    }
}
