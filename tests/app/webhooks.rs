//! Webhooks end to end, with a receiver on 127.0.0.1 (the test server turns on the runner's
//! development switch for loopback): deliveries signed as documented, retried after a 500 and
//! after a timeout, kept across a restart, never sent to a disabled endpoint; Slack messages;
//! the expiring-soon event; private and metadata addresses refused when an endpoint is added.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use hmac::{KeyInit, Mac};
use serde_json::{json, Value};

use entryguard_local::{Config, Runner};
use entryguard_tests::server::{TestServer, ADMIN, MEMBER};

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    event: String,
    delivery: String,
    timestamp: String,
    signature: String,
    body: Bytes,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    /// The verification the docs show receivers: HMAC-SHA256 of `timestamp.body`.
    fn verify(&self, secret: &str) {
        let mut mac = hmac::Hmac::<sha2_011::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(self.timestamp.as_bytes());
        mac.update(b".");
        mac.update(&self.body);
        let expected = format!("v1={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(self.signature, expected, "signature of {}", self.event);
        assert!(self.timestamp.parse::<i64>().is_ok());
    }
}

/// Answers each request with the next scripted (status, delay), then 204 at once.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<VecDeque<(u16, Duration)>>>,
}

impl Receiver {
    async fn start() -> (Self, SocketAddr) {
        let rx = Self::default();
        let state = rx.clone();
        let app = Router::new().route(
            "/hook",
            post(move |headers: HeaderMap, body: Bytes| {
                let state = state.clone();
                async move {
                    let h = |name: &str| {
                        headers
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned()
                    };
                    state.got.lock().unwrap().push(Received {
                        event: h("x-entryguard-event"),
                        delivery: h("x-entryguard-delivery"),
                        timestamp: h("x-entryguard-timestamp"),
                        signature: h("x-entryguard-signature"),
                        body,
                    });
                    let (status, delay) = state
                        .script
                        .lock()
                        .unwrap()
                        .pop_front()
                        .unwrap_or((204, Duration::ZERO));
                    tokio::time::sleep(delay).await;
                    StatusCode::from_u16(status).unwrap()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (rx, addr)
    }

    fn of(&self, event: &str) -> Vec<Received> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.event == event)
            .cloned()
            .collect()
    }

    fn events(&self) -> Vec<String> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.event.clone())
            .collect()
    }
}

async fn wait_received(s: &TestServer, rx: &Receiver, event: &str, count: usize) -> Vec<Received> {
    s.eventually(&format!("{count} {event} deliveries"), || async {
        let got = rx.of(event);
        if got.len() >= count {
            Ok(got)
        } else {
            Err(format!("{:?}", rx.events()))
        }
    })
    .await
}

/// Waits until the endpoint's newest delivery satisfies `check`, and returns it.
async fn wait_log(
    s: &TestServer,
    admin: &str,
    endpoint: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let path = format!("/api/admin/webhooks/{endpoint}/deliveries");
    s.eventually(what, || async {
        let r = s.get(Some(admin), &path).await;
        let newest = r.ok(200)[0].clone();
        if check(&newest) {
            Ok(newest)
        } else {
            Err(r.text)
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deliveries_are_signed_retried_and_never_sent_to_disabled_endpoints() {
    let s = TestServer::start().await;
    let (rx, addr) = Receiver::start().await;
    let (slack, slack_addr) = Receiver::start().await;
    let admin = s.login(ADMIN).await;
    let member = s.login(MEMBER).await;

    let created = s
        .post(
            &admin,
            "/api/admin/webhooks",
            json!({"url": format!("http://{addr}/hook"),
                "events": ["session.started", "session.active", "session.expiring-soon", "session.ended"]}),
        )
        .await
        .ok(201)
        .clone();
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_") && secret.len() == 6 + 64);
    let endpoint = created["webhook"]["id"].as_str().unwrap().to_owned();
    let slack_endpoint = s
        .post(
            &admin,
            "/api/admin/webhooks",
            json!({"url": format!("http://{slack_addr}/hook"), "events": ["session.ended"], "format": "SLACK"}),
        )
        .await
        .ok(201)["webhook"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // The secret is shown once: never in a listing. Members see nothing of the endpoints.
    let listed = s.get(Some(&admin), "/api/admin/webhooks").await;
    assert_eq!(listed.ok(200).as_array().unwrap().len(), 2);
    assert!(!listed.text.contains(&secret) && !listed.text.contains("sealed"));
    s.get(Some(&member), "/api/admin/webhooks")
        .await
        .err(403, "FORBIDDEN");
    let audit = s.get(Some(&admin), "/api/admin/audit-logs").await;
    assert!(
        audit.text.contains("Added webhook endpoint"),
        "{}",
        audit.text
    );

    // Session events, signed with the endpoint's secret over timestamp and body.
    let session = s.settled_session(&member, 1, "ACTIVE").await;
    let session_id = session["id"].as_str().unwrap().to_owned();
    for event in ["session.started", "session.active"] {
        let got = wait_received(&s, &rx, event, 1).await;
        got[0].verify(&secret);
        let body = got[0].json();
        assert_eq!(body["type"], event);
        assert_eq!(body["id"], json!(got[0].delivery));
        assert_eq!(body["data"]["sessionId"], json!(session_id));
        assert_eq!(body["data"]["userEmail"], json!(MEMBER));
    }
    let tampered = Received {
        body: Bytes::from_static(b"{\"type\":\"session.failed\"}"),
        ..rx.of("session.active")[0].clone()
    };
    assert!(std::panic::catch_unwind(|| tampered.verify(&secret)).is_err());

    // A 500 is retried after 30 s (the test clock moves; the queue keeps the delay).
    rx.script.lock().unwrap().push_back((500, Duration::ZERO));
    let test = s
        .post(
            &admin,
            &format!("/api/admin/webhooks/{endpoint}/test"),
            json!({}),
        )
        .await
        .ok(202)
        .clone();
    assert_eq!(test["status"], "PENDING");
    wait_log(&s, &admin, &endpoint, "a failed first attempt", |d| {
        d["attempts"] == 1 && d["responseCode"] == 500 && d["status"] == "PENDING"
    })
    .await;
    s.advance_clock(31).await;
    let delivered = wait_log(&s, &admin, &endpoint, "the retry", |d| {
        d["status"] == "DELIVERED"
    })
    .await;
    assert_eq!(delivered["attempts"], 2);
    assert_eq!(delivered["responseCode"], 204);
    let tests = rx.of("webhook.test");
    assert_eq!(tests.len(), 2);
    assert_eq!(
        tests[0].delivery, tests[1].delivery,
        "one delivery, two attempts"
    );
    tests[1].verify(&secret);

    // No answer within the timeout (2 s in the test server) is retried the same way.
    rx.script
        .lock()
        .unwrap()
        .push_back((204, Duration::from_secs(4)));
    s.post(
        &admin,
        &format!("/api/admin/webhooks/{endpoint}/test"),
        json!({}),
    )
    .await
    .ok(202);
    let timed_out = wait_log(&s, &admin, &endpoint, "a timed-out attempt", |d| {
        d["attempts"] == 1 && d["status"] == "PENDING"
    })
    .await;
    assert!(
        timed_out["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("no answer")),
        "{timed_out}"
    );
    s.advance_clock(31).await;
    wait_log(&s, &admin, &endpoint, "the retry after the timeout", |d| {
        d["status"] == "DELIVERED" && d["attempts"] == 2
    })
    .await;

    // Ten minutes before the end: expiring soon (the one-second sweeps of the test server).
    s.advance_clock(3600 - 8 * 60 - 62).await;
    let soon = wait_received(&s, &rx, "session.expiring-soon", 1).await;
    soon[0].verify(&secret);
    assert_eq!(soon[0].json()["data"]["sessionId"], json!(session_id));

    // Disabled: no test event, and nothing of the session's end, which the Slack endpoint gets.
    s.patch(
        &admin,
        &format!("/api/admin/webhooks/{endpoint}"),
        json!({"enabled": false}),
    )
    .await
    .ok(200);
    s.post(
        &admin,
        &format!("/api/admin/webhooks/{endpoint}/test"),
        json!({}),
    )
    .await
    .err(409, "CONFLICT");
    let before = rx.events().len();
    s.stop_and_wait(&member, &session_id).await;
    let ended = wait_received(&s, &slack, "session.ended", 1).await;
    let text = ended[0].json()["text"].as_str().unwrap().to_owned();
    assert!(text.contains("session.ended"), "{text}");
    assert!(
        text.contains(&format!("/#/sessions/{session_id}")),
        "a link: {text}"
    );
    assert!(ended[0].json()["blocks"].is_array());
    // The disabled endpoint's deliveries would have gone in the same worker batch.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(rx.events().len(), before, "{:?}", rx.events());
    let log = s
        .get(
            Some(&admin),
            &format!("/api/admin/webhooks/{slack_endpoint}/deliveries"),
        )
        .await;
    assert_eq!(log.ok(200)[0]["status"], "DELIVERED");

    // Deleting an endpoint takes its log with it.
    s.delete(&admin, &format!("/api/admin/webhooks/{endpoint}"))
        .await
        .ok(204);
    s.get(
        Some(&admin),
        &format!("/api/admin/webhooks/{endpoint}/deliveries"),
    )
    .await
    .err(404, "NOT_FOUND");
}

#[tokio::test]
async fn private_loopback_and_metadata_endpoints_are_refused() {
    let s = TestServer::start().await;
    let admin = s.login(ADMIN).await;
    for url in [
        "https://10.0.0.1/hook",
        "https://192.168.1.10/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://[fd00:ec2::254]/",
        "https://[::ffff:10.0.0.1]/hook",
        "https://100.64.0.1/hook",
        "https://0.0.0.0/hook",
        "ftp://hooks.example.com/",
        "https://user:pass@hooks.example.com/",
        "not a url",
    ] {
        s.post(
            &admin,
            "/api/admin/webhooks",
            json!({"url": url, "events": ["session.failed"]}),
        )
        .await
        .field_err("url");
    }
    s.post(
        &admin,
        "/api/admin/webhooks",
        json!({"url": "https://hooks.example.com/x", "events": []}),
    )
    .await
    .field_err("events");
    s.post(
        &admin,
        "/api/admin/webhooks",
        json!({"url": "https://hooks.example.com/x", "events": ["webhook.test"]}),
    )
    .await
    .field_err("events");
    assert_eq!(
        s.get(Some(&admin), "/api/admin/webhooks").await.ok(200),
        &json!([])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_delivery_survives_a_restart() {
    let dir = std::env::temp_dir().join(format!("entryguard-webhooks-{}", uuid::Uuid::new_v4()));
    let config = || Config {
        webhooks_allow_loopback: true,
        ..Config::headless(dir.clone())
    };
    let (rx, addr) = Receiver::start().await;
    let admin: entryguard::domain::model::Email = ADMIN.parse().unwrap();

    let secret = {
        let runner = Runner::build(config()).await.unwrap();
        let token = runner.app.dev_login(&admin, None).await.unwrap();
        let who = runner.app.authenticate(&token, None).await.unwrap();
        let created = runner
            .app
            .create_webhook(
                &who,
                serde_json::from_value(
                    json!({"url": format!("http://{addr}/hook"), "events": ["session.failed"]}),
                )
                .unwrap(),
            )
            .await
            .unwrap();
        runner
            .app
            .send_test_webhook(&who, created.endpoint.id)
            .await
            .unwrap();
        // Stopped before the worker ran.
        assert_eq!(runner.embedded_queue().unwrap().len().unwrap(), 1);
        created.secret.expose().to_owned()
    };

    let runner = Runner::build(config()).await.unwrap();
    assert!(rx.events().is_empty());
    while entryguard_local::drain_once(&runner.app, runner.embedded_queue().unwrap()).await > 0 {}
    let got = rx.of("webhook.test");
    assert_eq!(got.len(), 1, "{:?}", rx.events());
    got[0].verify(&secret);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Answers every lookup of any name with the given addresses.
struct FixedResolver(Vec<std::net::IpAddr>);

#[async_trait::async_trait]
impl entryguard_webhooks::Resolver for FixedResolver {
    async fn resolve(&self, _: &str, _: u16) -> std::io::Result<Vec<std::net::IpAddr>> {
        Ok(self.0.clone())
    }
}

/// Checked at delivery, not only when the endpoint is added: a name that later resolves to a
/// private address fails the delivery at once (no retry, nothing sent); a redirect to one is
/// not followed and counts as a failed attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn addresses_are_checked_at_every_delivery() {
    use entryguard::app::notifications::Notifier;
    use entryguard::domain::webhook::{AddressPolicy, DeliveryStatus};
    use entryguard_webhooks::HttpWebhookSender;

    let dir = std::env::temp_dir().join(format!("entryguard-webhooks-{}", uuid::Uuid::new_v4()));
    let runner = Runner::build(Config {
        webhooks_allow_loopback: true,
        ..Config::headless(dir.clone())
    })
    .await
    .unwrap();
    let admin: entryguard::domain::model::Email = ADMIN.parse().unwrap();
    let token = runner.app.dev_login(&admin, None).await.unwrap();
    let who = runner.app.authenticate(&token, None).await.unwrap();
    let queue = runner.embedded_queue().unwrap();
    let mut app = runner.app.clone();
    let dev = AddressPolicy {
        allow_loopback: true,
    };

    // Added while the name looked harmless; it now points at the metadata service.
    let rebound = runner
        .app
        .create_webhook(
            &who,
            serde_json::from_value(
                json!({"url": "https://hooks.example.com/x", "events": ["session.failed"]}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    app.notifier = Notifier {
        sender: Arc::new(
            HttpWebhookSender::new(dev).with_resolver(Arc::new(FixedResolver(vec![
                "169.254.169.254".parse().unwrap(),
            ]))),
        ),
        app_url: None,
    };
    let d = app
        .send_test_webhook(&who, rebound.endpoint.id)
        .await
        .unwrap();
    while entryguard_local::drain_once(&app, queue).await > 0 {}
    let log = app
        .list_webhook_deliveries(&who, rebound.endpoint.id)
        .await
        .unwrap();
    assert_eq!(log[0].id, d.id);
    assert_eq!(log[0].status, DeliveryStatus::Failed, "{:?}", log[0]);
    assert_eq!(log[0].attempts, 1);
    assert!(
        log[0]
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("link-local")),
        "{:?}",
        log[0]
    );
    assert_eq!(queue.len().unwrap(), 0, "no retry is scheduled");

    // A receiver on loopback that redirects to a private address.
    let redirector = Router::new().route(
        "/hook",
        post(|| async {
            (
                StatusCode::FOUND,
                [("location", "http://10.0.0.1/internal")],
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, redirector).await.unwrap() });
    app.notifier = Notifier {
        sender: Arc::new(HttpWebhookSender::new(dev)),
        app_url: None,
    };
    let redirecting = app
        .create_webhook(
            &who,
            serde_json::from_value(
                json!({"url": format!("http://{addr}/hook"), "events": ["session.failed"]}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    app.send_test_webhook(&who, redirecting.endpoint.id)
        .await
        .unwrap();
    entryguard_local::drain_once(&app, queue).await;
    let log = app
        .list_webhook_deliveries(&who, redirecting.endpoint.id)
        .await
        .unwrap();
    assert_eq!(log[0].status, DeliveryStatus::Pending, "{:?}", log[0]);
    assert_eq!(log[0].response_code, Some(302));
    assert!(log[0]
        .last_error
        .as_deref()
        .is_some_and(|e| e.contains("redirects are not followed")));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_log_shows_the_most_recent_deliveries() {
    let dir = std::env::temp_dir().join(format!("entryguard-webhooks-{}", uuid::Uuid::new_v4()));
    let runner = Runner::build(Config::headless(dir.clone())).await.unwrap();
    let admin: entryguard::domain::model::Email = ADMIN.parse().unwrap();
    let token = runner.app.dev_login(&admin, None).await.unwrap();
    let who = runner.app.authenticate(&token, None).await.unwrap();
    let endpoint = runner
        .app
        .create_webhook(
            &who,
            serde_json::from_value(
                json!({"url": "https://hooks.example.com/x", "events": ["system.alert"]}),
            )
            .unwrap(),
        )
        .await
        .unwrap()
        .endpoint;
    let mut sent = vec![];
    for _ in 0..entryguard::app::notifications::DELIVERY_LOG_LEN + 5 {
        sent.push(
            runner
                .app
                .send_test_webhook(&who, endpoint.id)
                .await
                .unwrap()
                .id,
        );
    }
    let log = runner
        .app
        .list_webhook_deliveries(&who, endpoint.id)
        .await
        .unwrap();
    assert_eq!(log.len(), entryguard::app::notifications::DELIVERY_LOG_LEN);
    let mut newest: Vec<_> = log.iter().map(|d| d.id).collect();
    newest.sort();
    let mut expected = sent[5..].to_vec();
    expected.sort();
    assert_eq!(newest, expected, "the oldest five are the ones left out");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A delivery whose queue message is lost is sent again by the sweeper once overdue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_message_is_sent_again_by_the_sweeper() {
    let dir = std::env::temp_dir().join(format!("entryguard-webhooks-{}", uuid::Uuid::new_v4()));
    let runner = Runner::build(Config {
        webhooks_allow_loopback: true,
        test_clock: true,
        ..Config::headless(dir.clone())
    })
    .await
    .unwrap();
    let (rx, addr) = Receiver::start().await;
    let admin: entryguard::domain::model::Email = ADMIN.parse().unwrap();
    let token = runner.app.dev_login(&admin, None).await.unwrap();
    let who = runner.app.authenticate(&token, None).await.unwrap();
    let endpoint = runner
        .app
        .create_webhook(
            &who,
            serde_json::from_value(
                json!({"url": format!("http://{addr}/hook"), "events": ["session.failed"]}),
            )
            .unwrap(),
        )
        .await
        .unwrap()
        .endpoint;
    let d = runner
        .app
        .send_test_webhook(&who, endpoint.id)
        .await
        .unwrap();
    // The message is lost: received and deleted without being handled.
    let queue = runner.embedded_queue().unwrap();
    for m in queue.receive(10, chrono::Duration::seconds(60)).unwrap() {
        queue.ack(&m.receipt).unwrap();
    }
    assert_eq!(
        runner.app.resend_lost_deliveries().await.unwrap(),
        0,
        "not overdue yet"
    );
    let clock = runner.state.dev.as_ref().unwrap().clock.clone().unwrap();
    clock.advance(chrono::Duration::minutes(6));
    runner.app.sweep().await.unwrap();
    while entryguard_local::drain_once(&runner.app, queue).await > 0 {}
    let got = rx.of("webhook.test");
    assert_eq!(got.len(), 1, "{:?}", rx.events());
    assert_eq!(got[0].delivery, d.id.to_string());
    let log = runner
        .app
        .list_webhook_deliveries(&who, endpoint.id)
        .await
        .unwrap();
    assert_eq!(
        log[0].status,
        entryguard::domain::webhook::DeliveryStatus::Delivered
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// On the AWS backend: endpoints and deliveries in DynamoDB, the secret sealed by KMS, the
/// deliveries carried by SQS (moto).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deliveries_run_on_dynamodb_sqs_and_kms() {
    use entryguard_local::{AwsConfig, Backend};
    let moto = entryguard_tests::moto::Moto::start();
    let s = TestServer::start_on(Backend::Aws(AwsConfig {
        sdk: moto.options(),
        names: entryguard_aws::ResourceNames::with_prefix("eg-webhooks"),
        provision: true,
        bootstrap_admin: None,
        seed_demo: true,
    }))
    .await;
    let (rx, addr) = Receiver::start().await;
    let admin = s.login(ADMIN).await;
    let member = s.login(MEMBER).await;
    let created = s
        .post(
            &admin,
            "/api/admin/webhooks",
            json!({"url": format!("http://{addr}/hook"), "events": ["session.started", "session.active"]}),
        )
        .await
        .ok(201)
        .clone();
    let secret = created["secret"].as_str().unwrap().to_owned();
    let endpoint = created["webhook"]["id"].as_str().unwrap().to_owned();
    let session = s.settled_session(&member, 1, "ACTIVE").await;
    for event in ["session.started", "session.active"] {
        let got = wait_received(&s, &rx, event, 1).await;
        got[0].verify(&secret);
        assert_eq!(got[0].json()["data"]["sessionId"], session["id"]);
    }
    s.post(
        &admin,
        &format!("/api/admin/webhooks/{endpoint}/test"),
        json!({}),
    )
    .await
    .ok(202);
    wait_received(&s, &rx, "webhook.test", 1).await[0].verify(&secret);
    wait_log(&s, &admin, &endpoint, "the test delivery logged", |d| {
        d["event"] == "webhook.test" && d["status"] == "DELIVERED"
    })
    .await;
}
