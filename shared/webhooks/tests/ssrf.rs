//! The sender reaches only addresses it checked: private and metadata addresses are refused
//! whatever name leads to them, a name is resolved once and the connection goes to that
//! answer, redirects are not followed, and a slow endpoint is cut off by the timeout.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;

use entryguard::domain::webhook::{AddressPolicy, Refusal};
use entryguard::ports::webhooks::{SendError, WebhookRequest, WebhookSender};
use entryguard_webhooks::{HttpWebhookSender, Resolver};

/// Answers from a script, one per question (the last one repeated), counting the questions.
struct ScriptedResolver {
    answers: Vec<Vec<IpAddr>>,
    asked: AtomicUsize,
}

impl ScriptedResolver {
    fn new(answers: &[&[&str]]) -> Arc<Self> {
        Arc::new(Self {
            answers: answers
                .iter()
                .map(|a| a.iter().map(|ip| ip.parse().unwrap()).collect())
                .collect(),
            asked: AtomicUsize::new(0),
        })
    }
}

#[async_trait]
impl Resolver for ScriptedResolver {
    async fn resolve(&self, _: &str, _: u16) -> std::io::Result<Vec<IpAddr>> {
        let n = self.asked.fetch_add(1, Ordering::SeqCst);
        Ok(self.answers[n.min(self.answers.len() - 1)].clone())
    }
}

/// A receiver on 127.0.0.1 that records the Host header of each request and answers with
/// `status` (a redirect to `location` when given) after `delay`.
async fn receiver(
    status: StatusCode,
    location: Option<String>,
    delay: Duration,
) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let app = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap| {
            let record = record.clone();
            let location = location.clone();
            async move {
                let host = headers
                    .get("host")
                    .and_then(|h| h.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                record.lock().unwrap().push(host);
                tokio::time::sleep(delay).await;
                let mut out = HeaderMap::new();
                if let Some(l) = location {
                    out.insert("location", l.parse().unwrap());
                }
                (status, out)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, seen)
}

fn request(url: &str) -> WebhookRequest {
    WebhookRequest {
        url: url.parse().unwrap(),
        headers: vec![("Content-Type", "application/json".into())],
        body: b"{}".to_vec(),
    }
}

const DEV: AddressPolicy = AddressPolicy {
    allow_loopback: true,
};

#[tokio::test]
async fn private_loopback_and_metadata_addresses_are_refused() {
    let (addr, seen) = receiver(StatusCode::NO_CONTENT, None, Duration::ZERO).await;
    let strict = HttpWebhookSender::new(AddressPolicy::default());
    // Loopback without the development switch, even over https.
    for url in [
        format!("https://127.0.0.1:{}/hook", addr.port()),
        format!("https://[::ffff:127.0.0.1]:{}/hook", addr.port()),
        "https://169.254.169.254/latest/meta-data/".to_owned(),
        "https://10.0.0.1/hook".to_owned(),
        "https://[fd00:ec2::254]/hook".to_owned(),
    ] {
        let r = strict.send(request(&url)).await;
        assert!(matches!(r, Err(SendError::Refused(_))), "{url}: {r:?}");
    }
    // Names that resolve to such addresses, even when only one of the answers is bad.
    for answer in [
        &["10.1.2.3"][..],
        &["192.168.1.1"],
        &["169.254.169.254"],
        &["100.64.0.1"],
        &["0.0.0.0"],
        &["fe80::1"],
        &["127.0.0.1", "10.0.0.1"],
    ] {
        let sender = HttpWebhookSender::new(DEV).with_resolver(ScriptedResolver::new(&[answer]));
        let url = format!("http://hooks.test:{}/hook", addr.port());
        let r = sender.send(request(&url)).await;
        assert!(
            matches!(r, Err(SendError::Refused(Refusal::Address(..)))),
            "{answer:?}: {r:?}"
        );
    }
    // Plain http without the switch.
    let r = strict.send(request("http://hooks.example.com/hook")).await;
    assert!(
        matches!(r, Err(SendError::Refused(Refusal::NotHttps))),
        "{r:?}"
    );
    assert!(
        seen.lock().unwrap().is_empty(),
        "nothing reached the receiver"
    );
}

#[tokio::test]
async fn a_name_is_resolved_once_and_the_checked_address_is_used() {
    let (addr, seen) = receiver(StatusCode::NO_CONTENT, None, Duration::ZERO).await;
    // A rebinding name: the first answer passes the check, every later one is the metadata
    // service. The connection must go to the first.
    let resolver = ScriptedResolver::new(&[&["127.0.0.1"], &["169.254.169.254"]]);
    let sender = HttpWebhookSender::new(DEV).with_resolver(resolver.clone());
    let url = format!("http://rebind.test:{}/hook", addr.port());
    assert_eq!(sender.send(request(&url)).await.unwrap(), 204);
    assert_eq!(resolver.asked.load(Ordering::SeqCst), 1, "resolved once");
    assert_eq!(
        *seen.lock().unwrap(),
        [format!("rebind.test:{}", addr.port())],
        "the request went to the checked address, under the endpoint's name"
    );
    // The next delivery asks again and is refused on the new answer.
    let r = sender.send(request(&url)).await;
    assert!(matches!(r, Err(SendError::Refused(_))), "{r:?}");
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let (target, reached) = receiver(StatusCode::NO_CONTENT, None, Duration::ZERO).await;
    for location in [
        "http://10.0.0.1/hook".to_owned(),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        format!("http://127.0.0.1:{}/hook", target.port()),
    ] {
        let (addr, seen) =
            receiver(StatusCode::FOUND, Some(location.clone()), Duration::ZERO).await;
        let sender = HttpWebhookSender::new(DEV);
        let url = format!("http://127.0.0.1:{}/hook", addr.port());
        assert_eq!(sender.send(request(&url)).await.unwrap(), 302, "{location}");
        assert_eq!(seen.lock().unwrap().len(), 1);
    }
    assert!(
        reached.lock().unwrap().is_empty(),
        "no redirect was followed"
    );
}

#[tokio::test]
async fn a_slow_endpoint_times_out() {
    let (addr, _) = receiver(StatusCode::NO_CONTENT, None, Duration::from_secs(5)).await;
    let sender = HttpWebhookSender::new(DEV).with_timeout(Duration::from_millis(300));
    let url = format!("http://127.0.0.1:{}/hook", addr.port());
    let r = sender.send(request(&url)).await;
    assert!(
        matches!(&r, Err(SendError::Unreachable(m)) if m.contains("no answer within")),
        "{r:?}"
    );
}
