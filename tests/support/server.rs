//! A real local runner (API + worker + sweeper) on 127.0.0.1, for HTTP-level tests.
//!
//! Every server gets a fresh data directory (seeded with the demo organization) and the test
//! clock; it is shut down and its directory removed when the [`TestServer`] is dropped.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use entryguard::app::rate_limit::RateLimits;
use entryguard::app::App;
use entryguard::domain::ids::{OrgId, UserId};
use entryguard::domain::model::{Organization, User};
use entryguard::domain::tier::Tier;
use entryguard::embedded::{LocalDirectory, SimCloud};
pub use entryguard_api::oidc::OidcConfig;
use entryguard_local::{Backend, Config, Runner};

pub const ADMIN: &str = "admin@example.com";
pub const MEMBER: &str = "dev@example.com";
pub const REGION: &str = "eu-west-1";
/// The security groups of the three demo resources.
pub const DEMO_GROUPS: [&str; 3] = [
    "sg-0e1a2b3c4d5e6f701",
    "sg-0e1a2b3c4d5e6f702",
    "sg-0e1a2b3c4d5e6f703",
];
/// Simulated groups that no demo resource uses.
pub const SPARE_GROUPS: [&str; 2] = ["sg-0e1a2b3c4d5e6f704", "sg-0e1a2b3c4d5e6f705"];
/// How long any asynchronous change may take before a test gives up.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// An HTTP answer. Building one fails the test on any 500: no request may ever yield one.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Resp {
    async fn read(what: &str, r: reqwest::Response) -> Self {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.expect("response body");
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert!(
            status < 500,
            "{what} answered {status} (no request may yield a 5xx): {text}"
        );
        Self {
            status,
            headers,
            text,
            json,
        }
    }

    /// Asserts the status and returns the JSON body.
    #[track_caller]
    pub fn ok(&self, status: u16) -> &Value {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        &self.json
    }

    /// Asserts an error answer: the status, the code, and the exact body shape
    /// `{"error":{"code","message","fields"?}}` with a non-empty message. Returns `error`.
    #[track_caller]
    pub fn err(&self, status: u16, code: &str) -> &Value {
        assert_eq!(
            self.status, status,
            "unexpected status (wanted {code}); body: {}",
            self.text
        );
        let top = self
            .json
            .as_object()
            .unwrap_or_else(|| panic!("error body is not a JSON object: {}", self.text));
        assert_eq!(
            top.keys().collect::<Vec<_>>(),
            vec!["error"],
            "body: {}",
            self.text
        );
        let error = self.json["error"]
            .as_object()
            .unwrap_or_else(|| panic!("`error` is not an object: {}", self.text));
        for key in error.keys() {
            assert!(
                ["code", "message", "fields"].contains(&key.as_str()),
                "unexpected key {key} in {}",
                self.text
            );
        }
        assert_eq!(error["code"], json!(code), "body: {}", self.text);
        let message = error["message"]
            .as_str()
            .unwrap_or_else(|| panic!("message is not a string: {}", self.text));
        assert!(!message.trim().is_empty(), "empty message: {}", self.text);
        if let Some(fields) = error.get("fields") {
            let fields = fields
                .as_object()
                .unwrap_or_else(|| panic!("fields is not an object: {}", self.text));
            assert!(
                !fields.is_empty(),
                "fields present but empty: {}",
                self.text
            );
            assert_eq!(
                code, "VALIDATION_FAILED",
                "fields on a {code}: {}",
                self.text
            );
        }
        &self.json["error"]
    }

    /// Asserts a VALIDATION_FAILED error whose `fields` names `field` (and only it).
    #[track_caller]
    pub fn field_err(&self, field: &str) -> &Value {
        let error = self.err(400, "VALIDATION_FAILED");
        let fields = error["fields"]
            .as_object()
            .unwrap_or_else(|| panic!("no `fields` naming {field}: {}", self.text));
        assert_eq!(
            fields.keys().collect::<Vec<_>>(),
            vec![field],
            "body: {}",
            self.text
        );
        assert!(
            fields[field].as_str().is_some_and(|m| !m.is_empty()),
            "{}",
            self.text
        );
        error
    }
}

/// The production limits scaled up: tests of other things send hundreds of requests a minute
/// from one address (the attacker matrix alone fails authentication hundreds of times), and
/// must not be refused for it. tests/http/http_hardening.rs tests the production numbers.
pub fn test_limits() -> RateLimits {
    RateLimits::default().scaled(1_000)
}

pub struct TestServer {
    pub base: String,
    /// The same server on [::1], when started with [`TestServer::start_dual_stack`].
    pub base_v6: Option<String>,
    pub app: App,
    pub sim: SimCloud,
    /// The stand-in sign-in directory the runner invites people to.
    pub directory: LocalDirectory,
    pub client: reqwest::Client,
    dir: PathBuf,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<Result<(), String>>>,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(None, Backend::Embedded, None, test_limits(), false).await
    }

    /// A server on 127.0.0.1 and [::1] at once, as `--listen` twice runs it.
    pub async fn start_dual_stack(backend: Backend) -> Self {
        Self::start_serving(None, backend, None, test_limits(), false, true).await
    }

    /// A server that also accepts ID tokens from this OIDC provider, with sign-up open.
    pub async fn start_with_oidc_signup(oidc: OidcConfig) -> Self {
        Self::start_with(None, Backend::Embedded, Some(oidc), test_limits(), true).await
    }

    /// A server that also accepts ID tokens from this OIDC provider.
    pub async fn start_with_oidc(oidc: OidcConfig) -> Self {
        Self::start_with(None, Backend::Embedded, Some(oidc), test_limits(), false).await
    }

    /// A server that also serves a web app whose `index.html` is `index_html`.
    pub async fn start_with_web_app(index_html: &str) -> Self {
        Self::start_with(
            Some(index_html),
            Backend::Embedded,
            None,
            test_limits(),
            false,
        )
        .await
    }

    /// A server on another backend (e.g. DynamoDB + SQS on moto).
    pub async fn start_on(backend: Backend) -> Self {
        Self::start_with(None, backend, None, test_limits(), false).await
    }

    /// A server with these rate limits (the others have [`test_limits`]).
    pub async fn start_with_limits(limits: RateLimits) -> Self {
        Self::start_with(None, Backend::Embedded, None, limits, false).await
    }

    async fn start_with(
        index_html: Option<&str>,
        backend: Backend,
        oidc: Option<OidcConfig>,
        rate_limits: RateLimits,
        signup_open: bool,
    ) -> Self {
        Self::start_serving(index_html, backend, oidc, rate_limits, signup_open, false).await
    }

    async fn start_serving(
        index_html: Option<&str>,
        backend: Backend,
        oidc: Option<OidcConfig>,
        rate_limits: RateLimits,
        signup_open: bool,
        dual_stack: bool,
    ) -> Self {
        let dir = std::env::temp_dir().join(format!("entryguard-http-{}", uuid::Uuid::new_v4()));
        let web_dir = dir.join("web");
        if let Some(html) = index_html {
            std::fs::create_dir_all(&web_dir).expect("web dir");
            std::fs::write(web_dir.join("index.html"), html).expect("index.html");
        }
        let config = Config {
            listen: vec!["127.0.0.1:0".parse().unwrap()],
            data_dir: dir.clone(),
            sweep_interval: Duration::from_secs(1),
            test_clock: true,
            trusted_proxies: vec![],
            web_dir,
            entryguard_principal: "arn:aws:iam::000000000000:root".into(),
            oidc,
            backend,
            rate_limits,
            web_connect_src: vec![],
            signup_open,
            // The tests' receivers listen on 127.0.0.1.
            webhooks_allow_loopback: true,
            webhook_timeout: Duration::from_secs(2),
        };
        let runner = Runner::build(config).await.expect("runner builds");
        let app = runner.app.clone();
        let sim = runner.sim.clone();
        let directory = runner.directory.clone();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().unwrap();
        let mut listeners = vec![listener];
        let mut base_v6 = None;
        if dual_stack {
            let v6 = TcpListener::bind("[::1]:0").await.expect("bind [::1]");
            base_v6 = Some(format!("http://{}", v6.local_addr().unwrap()));
            listeners.push(v6);
        }
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            runner
                .serve_all(listeners, async move {
                    let _ = rx.await;
                })
                .await
                .map_err(|e| e.to_string())
        });
        let server = Self {
            base: format!("http://{addr}"),
            base_v6,
            app,
            sim,
            directory,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            dir,
            shutdown: Some(tx),
            handle: Some(handle),
        };
        let health = server.get(None, "/api/health").await;
        assert_eq!(health.ok(200), &json!({"status": "ok"}));
        server
    }

    /// The runner's data directory (the embedded store, the key file).
    pub fn data_dir(&self) -> &std::path::Path {
        &self.dir
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A call whose 5xx answer is the point of the test (the other helpers refuse any 5xx):
    /// (status, body).
    pub async fn call_expecting_5xx(
        &self,
        method: reqwest::Method,
        token: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .client
            .request(method, self.url(path))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let r = request.send().await.expect("the request is answered");
        let status = r.status().as_u16();
        (status, r.json().await.expect("a JSON body"))
    }

    /// Sends a prepared request and reads the answer (failing on any 5xx).
    pub async fn send(&self, what: &str, request: reqwest::RequestBuilder) -> Resp {
        let response = request.send().await.expect("request sent");
        Resp::read(what, response).await
    }

    /// A request with an optional bearer token and an optional JSON body.
    pub async fn call(
        &self,
        method: Method,
        token: Option<&str>,
        path: &str,
        body: Option<Value>,
    ) -> Resp {
        let what = format!("{method} {path}");
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.send(&what, request).await
    }

    pub async fn get(&self, token: Option<&str>, path: &str) -> Resp {
        self.call(Method::GET, token, path, None).await
    }

    pub async fn post(&self, token: &str, path: &str, body: Value) -> Resp {
        self.call(Method::POST, Some(token), path, Some(body)).await
    }

    pub async fn put(&self, token: &str, path: &str, body: Value) -> Resp {
        self.call(Method::PUT, Some(token), path, Some(body)).await
    }

    pub async fn patch(&self, token: &str, path: &str, body: Value) -> Resp {
        self.call(Method::PATCH, Some(token), path, Some(body))
            .await
    }

    pub async fn delete(&self, token: &str, path: &str) -> Resp {
        self.call(Method::DELETE, Some(token), path, None).await
    }

    /// A token from the development login.
    pub async fn login(&self, email: &str) -> String {
        let r = self
            .call(
                Method::POST,
                None,
                "/api/dev/login",
                Some(json!({"email": email})),
            )
            .await;
        r.ok(200)["token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token: {}", r.text))
            .to_owned()
    }

    pub async fn advance_clock(&self, seconds: i64) -> Value {
        let r = self
            .call(
                Method::POST,
                None,
                "/api/dev/clock",
                Some(json!({"advanceSeconds": seconds})),
            )
            .await;
        r.ok(200)["now"].clone()
    }

    /// The simulated cloud: security group id → its rules as `(protocol, from, to, cidr)`.
    pub async fn firewall(&self) -> BTreeMap<String, Vec<(String, u64, u64, String)>> {
        let r = self.get(None, "/api/dev/firewall").await;
        r.ok(200)
            .as_array()
            .unwrap_or_else(|| panic!("firewall is not a list: {}", r.text))
            .iter()
            .map(|g| {
                let rules = g["rules"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| {
                        (
                            r["protocol"].as_str().unwrap().to_owned(),
                            r["fromPort"].as_u64().unwrap(),
                            r["toPort"].as_u64().unwrap(),
                            r["cidr"].as_str().unwrap().to_owned(),
                        )
                    })
                    .collect();
                (g["securityGroupId"].as_str().unwrap().to_owned(), rules)
            })
            .collect()
    }

    /// Polls `check` until it returns `Some`, for at most [`DEADLINE`].
    pub async fn eventually<T, F, Fut>(&self, what: &str, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, String>>,
    {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            match check().await {
                Ok(v) => return v,
                Err(last) => {
                    if tokio::time::Instant::now() >= deadline {
                        panic!(
                            "timed out after {DEADLINE:?} waiting for {what}; last seen: {last}"
                        );
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the session has the status `status` and returns it.
    pub async fn wait_status(&self, token: &str, id: &str, status: &str) -> Value {
        let path = format!("/api/sessions/{id}");
        self.eventually(&format!("session {id} to be {status}"), || async {
            let r = self.get(Some(token), &path).await;
            let s = r.ok(200).clone();
            if s["status"] == json!(status) {
                Ok(s)
            } else {
                Err(r.text)
            }
        })
        .await
    }

    /// Waits until `GET /api/admin/audit-logs{query}` lists exactly `count` events (audit events
    /// are written just after the change they describe) and returns them.
    pub async fn wait_audit(&self, admin: &str, query: &str, count: usize) -> Vec<Value> {
        let path = format!("/api/admin/audit-logs{query}");
        self.eventually(&format!("{count} audit events for {query}"), || async {
            let r = self.get(Some(admin), &path).await;
            let items = r.ok(200)["items"]
                .as_array()
                .unwrap_or_else(|| panic!("no items: {}", r.text))
                .clone();
            if items.len() == count {
                Ok(items)
            } else {
                Err(r.text)
            }
        })
        .await
    }

    /// Waits until the firewall equals `expected` and returns it.
    pub async fn wait_firewall(
        &self,
        what: &str,
        expected: &BTreeMap<String, Vec<(String, u64, u64, String)>>,
    ) {
        self.eventually(what, || async {
            let now = self.firewall().await;
            if &now == expected {
                Ok(())
            } else {
                Err(format!("{now:?}"))
            }
        })
        .await
    }

    /// Starts a session and asserts the 202; returns its JSON.
    pub async fn start_session(&self, token: &str, hours: u32) -> Value {
        let r = self
            .post(token, "/api/sessions", json!({"durationHours": hours}))
            .await;
        let s = r.ok(202).clone();
        assert_eq!(s["status"], "PENDING", "{}", r.text);
        s
    }

    /// Starts a session and waits for it to settle in `status`.
    pub async fn settled_session(&self, token: &str, hours: u32, status: &str) -> Value {
        let s = self.start_session(token, hours).await;
        self.wait_status(token, s["id"].as_str().unwrap(), status)
            .await
    }

    /// Stops a session (asserting the 202) and waits for it to be CANCELLED.
    pub async fn stop_and_wait(&self, token: &str, id: &str) -> Value {
        let r = self
            .call(
                Method::POST,
                Some(token),
                &format!("/api/sessions/{id}/stop"),
                None,
            )
            .await;
        let s = r.ok(202);
        assert!(
            ["EXPIRING", "CANCELLED"].contains(&s["status"].as_str().unwrap()),
            "{}",
            r.text
        );
        self.wait_status(token, id, "CANCELLED").await
    }

    /// The ids of the admin list at `path` (e.g. `/api/admin/resources`).
    pub async fn ids(&self, token: &str, path: &str) -> BTreeSet<String> {
        let r = self.get(Some(token), path).await;
        r.ok(200)
            .as_array()
            .unwrap_or_else(|| panic!("{path} is not a list: {}", r.text))
            .iter()
            .map(|v| v["id"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Finds the item of an admin list whose `key` equals `value`.
    pub async fn find(&self, token: &str, path: &str, key: &str, value: &str) -> Value {
        let r = self.get(Some(token), path).await;
        r.ok(200)
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v[key] == json!(value))
            .unwrap_or_else(|| panic!("no item with {key} = {value} in {path}: {}", r.text))
            .clone()
    }

    /// Sets the plan of the admin's organization as the operator does: no route can.
    pub async fn set_plan(&self, admin: &str, tier: &str) {
        let org = self.get(Some(admin), "/api/admin/organization").await;
        let id: OrgId = org.ok(200)["id"].as_str().unwrap().parse().unwrap();
        self.app
            .operator_set_plan(id, tier.parse().unwrap(), "the tests' operator")
            .await
            .expect("plan set");
    }

    /// A second organization, created straight in the store, with one admin; returns its id.
    pub async fn create_org(&self, name: &str, tier: Tier, admin_email: &str) -> OrgId {
        let now = self.app.now();
        let org = Organization::new(
            OrgId::from_uuid(uuid::Uuid::new_v4()),
            name.parse().unwrap(),
            tier,
            now,
        );
        self.app.store.put_org(&org).await.unwrap();
        self.create_user(org.id, admin_email, true).await;
        org.id
    }

    pub async fn create_user(&self, org: OrgId, email: &str, is_admin: bool) -> UserId {
        let user = User {
            id: UserId::from_uuid(uuid::Uuid::new_v4()),
            org_id: org,
            email: email.parse().unwrap(),
            is_admin,
            resource_ids: BTreeSet::new(),
            created_at: self.app.now(),
        };
        self.app
            .store
            .create_user(&user)
            .await
            .expect("user created");
        user.id
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle.abort();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
