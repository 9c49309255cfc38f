//! The three Lambda binaries themselves — their mains, environment, and event decoding through
//! `lambda_http` / `aws_lambda_events` — run under a stand-in Lambda Runtime API, with the
//! environment infra/template.yaml gives them and moto behind the AWS endpoints. The test plays
//! API Gateway (events from `events/`), the SQS event source mapping (receive, invoke with an
//! `SqsEvent`, delete all but the reported failures) and the schedule.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use entryguard::app::tokens::NewApiToken;
use entryguard::app::{App, Identity};
use entryguard::domain::ids::{OrgId, ResourceId, RoleId, SessionId, UserId};
use entryguard::domain::model::{Organization, Resource, Role, User};
use entryguard::domain::net::{PortRange, SecurityGroupId};
use entryguard::domain::session::SessionStatus;
use entryguard::domain::tier::Tier;
use entryguard::embedded::ManualClock;
use entryguard::runtime::{RandomIds, SystemClock};
use entryguard_aws::sdk::sqs::types::QueueAttributeName;
use entryguard_tests::lambda_runtime::{
    build_function_binaries, LambdaProcess, Outcome, RuntimeApi,
};
use entryguard_tests::moto::{AwsFixture, REGION};
use entryguard_tests::oidc::{self, Issuer, Signer};
use entryguard_tests::template::{Deployment, Template};

const API: &str = "entryguard-api";
const WORKER: &str = "entryguard-rule-worker";
const SWEEPER: &str = "entryguard-expiry-sweeper";
const ACCOUNT: &str = "123456789012";
/// The stack name the template's `${AWS::StackName}` stands for.
const STACK: &str = "entryguard-test";
/// The address API Gateway reports in the recorded events.
const CLIENT: &str = "203.0.113.7";
/// How long the played event source mapping may take to bring a session to where it is going.
const SETTLE: Duration = Duration::from_secs(90);

fn event(name: &str) -> Value {
    let path = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("the event file")).unwrap()
}

/// The recorded API Gateway v2 event, re-addressed to `path` with `bearer` and `body`.
fn api_event(file: &str, method: &str, path: &str, bearer: &str, body: Option<Value>) -> Value {
    let mut e = event(file);
    e["rawPath"] = json!(path);
    e["requestContext"]["http"]["path"] = json!(path);
    e["requestContext"]["http"]["method"] = json!(method);
    e["pathParameters"]["proxy"] = json!(path.trim_start_matches("/api/"));
    let headers = e["headers"].as_object_mut().unwrap();
    headers.insert("authorization".into(), json!(format!("Bearer {bearer}")));
    match body {
        Some(body) => {
            let body = body.to_string();
            headers.insert("content-type".into(), json!("application/json"));
            headers.insert("content-length".into(), json!(body.len().to_string()));
            e["body"] = json!(body);
        }
        None => {
            headers.remove("content-type");
            headers.remove("content-length");
            e.as_object_mut().unwrap().remove("body");
        }
    }
    e
}

/// One function's binary and its Runtime API.
struct Function {
    runtime: RuntimeApi,
    process: LambdaProcess,
}

impl Function {
    async fn invoke(&mut self, payload: Value) -> Outcome {
        self.runtime.invoke(&mut self.process, payload).await
    }

    async fn respond(&mut self, payload: Value) -> Value {
        match self.invoke(payload).await {
            Outcome::Response(v) => v,
            Outcome::Error(e) => panic!(
                "{} failed: {e}; its log:\n{}",
                self.process.name,
                self.process.log()
            ),
        }
    }
}

/// An HTTP answer of the API function, as API Gateway reads the Lambda's response.
fn http(response: &Value) -> (u16, Value) {
    let status = response["statusCode"].as_u64().expect("a statusCode") as u16;
    let body = response["body"].as_str().unwrap_or("");
    (
        status,
        serde_json::from_str(body).unwrap_or(Value::String(body.into())),
    )
}

struct Deployed {
    fx: AwsFixture,
    app: App,
    issuer: Issuer,
    api: Function,
    worker: Function,
    sweeper: Function,
    queue_arn: String,
}

impl Deployed {
    async fn start() -> Self {
        let binaries = build_function_binaries(&[API, WORKER, SWEEPER]);
        let fx = AwsFixture::start("eg-lambda").await;
        let issuer = Issuer::start().await;
        let app = fx
            .backend
            .app(Arc::new(SystemClock), Arc::new(RandomIds), None);
        let sqs = entryguard_aws::sdk::sqs::Client::new(&fx.sdk);
        let queue_arn = sqs
            .get_queue_attributes()
            .queue_url(fx.backend.queue.url())
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap()[&QueueAttributeName::QueueArn]
            .clone();

        let template = Template::load();
        let mut refs = template.parameter_defaults();
        refs.extend(
            [
                ("AWS::Region", REGION),
                ("AWS::AccountId", ACCOUNT),
                ("AWS::Partition", "aws"),
                ("AWS::URLSuffix", "amazonaws.com"),
                ("AWS::StackName", STACK),
                ("Table", fx.names.table.as_str()),
                ("TaskQueue", fx.backend.queue.url()),
                ("UserPool", "eu-west-1_EntryGuard"),
                ("WebAppClient", oidc::AUDIENCE),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        );
        let deployment = Deployment {
            refs,
            attributes: [
                ("SecretsKey.Arn".to_owned(), fx.kms_key_id.clone()),
                // Only in links of webhook messages, which this test sends none of.
                (
                    "WebDistribution.DomainName".to_owned(),
                    "d111111abcdef8.cloudfront.net".to_owned(),
                ),
            ]
            .into(),
        };
        let functions = template.functions();
        let declared: BTreeMap<&str, &[&str]> = [
            (API, entryguard_api::environment::ENVIRONMENT),
            (WORKER, entryguard_rule_worker::ENVIRONMENT),
            (SWEEPER, entryguard_expiry_sweeper::ENVIRONMENT),
        ]
        .into();
        assert_eq!(
            functions
                .values()
                .map(String::as_str)
                .collect::<BTreeSet<_>>(),
            declared.keys().copied().collect(),
            "the template's functions and the binaries differ"
        );
        // What Lambda sets in every execution environment, and the endpoint that sends the SDK to
        // moto instead of AWS.
        let aws: BTreeMap<String, String> = [
            ("AWS_REGION", REGION),
            ("AWS_DEFAULT_REGION", REGION),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_SESSION_TOKEN", "test"),
            ("AWS_ENDPOINT_URL", &fx.moto.endpoint()),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .into();

        let mut started = BTreeMap::new();
        for (logical_id, binary) in &functions {
            let mut env = template.environment(logical_id, &deployment);
            let names: BTreeSet<&str> = env.keys().map(String::as_str).collect();
            let reads: BTreeSet<&str> = declared[binary.as_str()].iter().copied().collect();
            assert_eq!(
                names, reads,
                "{logical_id} in infra/template.yaml sets these variables; {binary} reads these"
            );
            if let Some(issuer_url) = env.get_mut(entryguard_api::oidc::ISSUER_ENV) {
                // Cognito's issuer is not reachable from the test: the stand-in provider is.
                *issuer_url = issuer.url.clone();
            }
            let runtime = RuntimeApi::start().await;
            let process = LambdaProcess::spawn(&binaries[binary], &runtime, &env, &aws);
            started.insert(binary.clone(), Function { runtime, process });
        }
        let mut take = |b: &str| started.remove(b).unwrap();
        Self {
            api: take(API),
            worker: take(WORKER),
            sweeper: take(SWEEPER),
            fx,
            app,
            issuer,
            queue_arn,
        }
    }

    /// Plays the SQS event source mapping once: up to ten messages to the worker; what it does
    /// not report as failed is deleted, the failures wait out their visibility timeout.
    async fn poll_once(&mut self) -> usize {
        let sqs = entryguard_aws::sdk::sqs::Client::new(&self.fx.sdk);
        let url = self.fx.backend.queue.url().to_owned();
        let received = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_system_attribute_names(
                entryguard_aws::sdk::sqs::types::MessageSystemAttributeName::All,
            )
            .send()
            .await
            .expect("ReceiveMessage")
            .messages
            .unwrap_or_default();
        if received.is_empty() {
            return 0;
        }
        let records: Vec<Value> = received
            .iter()
            .map(|m| {
                let attributes: BTreeMap<String, String> = m
                    .attributes
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k.as_str().to_owned(), v))
                    .collect();
                json!({
                    "messageId": m.message_id,
                    "receiptHandle": m.receipt_handle,
                    "body": m.body,
                    "attributes": attributes,
                    "messageAttributes": {},
                    "md5OfBody": m.md5_of_body,
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self.queue_arn,
                    "awsRegion": REGION,
                })
            })
            .collect();
        let response = self.worker.respond(json!({ "Records": records })).await;
        let failed: BTreeSet<&str> = response["batchItemFailures"]
            .as_array()
            .expect("a partial batch response")
            .iter()
            .map(|f| f["itemIdentifier"].as_str().expect("an itemIdentifier"))
            .collect();
        for m in &received {
            if !failed.contains(m.message_id().unwrap()) {
                sqs.delete_message()
                    .queue_url(&url)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .expect("DeleteMessage");
            }
        }
        received.len()
    }

    /// Polls until `id` reaches `status`.
    async fn settle(&mut self, id: SessionId, status: SessionStatus) {
        let deadline = Instant::now() + SETTLE;
        loop {
            let session = self.app.store.get_session(id).await.unwrap().unwrap();
            if session.status() == status {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "session {id} is {:?}, not {status:?}, after {SETTLE:?}; the worker's log:\n{}",
                session.status(),
                self.worker.process.log()
            );
            self.poll_once().await;
        }
    }

    async fn managed_rules(&self, sg: &SecurityGroupId) -> Vec<(u16, String)> {
        let mut rules: Vec<_> = self
            .fx
            .rules(sg)
            .await
            .into_iter()
            .filter(|r| r.is_managed())
            .filter_map(|r| r.ingress_rule())
            .map(|r| (r.ports.from_port(), r.cidr.to_string()))
            .collect();
        rules.sort();
        rules
    }

    /// An organization whose member may open `sg` on port 22.
    async fn organization(&self, app: &App, sg: &SecurityGroupId) -> Identity {
        let org = Organization::new(
            OrgId::from_uuid(app.ids.uuid()),
            "Lambda Org".parse().unwrap(),
            Tier::Team,
            app.now(),
        );
        app.store.put_org(&org).await.unwrap();
        let credential = self.fx.credential(org.id).await;
        let user = User {
            id: UserId::from_uuid(app.ids.uuid()),
            org_id: org.id,
            email: format!("dev-{}@example.com", org.id).parse().unwrap(),
            is_admin: false,
            resource_ids: BTreeSet::new(),
            created_at: app.now(),
        };
        app.store.create_user(&user).await.unwrap();
        let resource = Resource {
            id: ResourceId::from_uuid(app.ids.uuid()),
            org_id: org.id,
            name: format!("bastion {sg}").parse().unwrap(),
            credential_id: credential.id,
            security_group_id: sg.clone(),
            region: REGION.parse().unwrap(),
            ports: vec![PortRange::tcp(22)],
            created_at: app.now(),
        };
        app.put_doc(&resource).await.unwrap();
        let role = Role {
            id: RoleId::from_uuid(app.ids.uuid()),
            org_id: org.id,
            name: "engineers".parse().unwrap(),
            max_session_duration_hours: None,
            resource_ids: [resource.id].into(),
            user_ids: [user.id].into(),
            created_at: app.now(),
        };
        app.put_doc(&role).await.unwrap();
        Identity {
            user,
            org,
            ip: None,
        }
    }
}

/// A whole session through the binaries: signed in through the OIDC provider, started and
/// stopped through API Gateway events, applied and removed by the worker fed as the event source
/// mapping feeds it, and a past-due session expired by the sweeper on its schedule event.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_session_runs_through_the_lambda_binaries() {
    let mut d = Deployed::start().await;
    let sg = d.fx.security_group("lambda-bastion").await;
    let dev = d.organization(&d.app, &sg).await;

    // Signed in with an ID token from the identity provider.
    let now = chrono::Utc::now().timestamp();
    let id_token = oidc::sign(
        &d.issuer.claims(dev.user.email.as_str(), now),
        Signer::Provider,
    );
    let started = d
        .api
        .respond(api_event(
            "api-start-session.json",
            "POST",
            "/api/sessions",
            &id_token,
            Some(json!({"durationHours": 1})),
        ))
        .await;
    let (status, body) = http(&started);
    assert_eq!(status, 202, "{body}");
    let id: SessionId = body["id"].as_str().unwrap().parse().unwrap();
    d.settle(id, SessionStatus::Active).await;
    assert_eq!(
        d.managed_rules(&sg).await,
        vec![(22, format!("{CLIENT}/32"))]
    );

    // Stopped with a personal API token.
    let token = d
        .app
        .create_api_token(
            &dev,
            NewApiToken {
                name: "lambda test".parse().unwrap(),
                expires_in_days: None,
            },
        )
        .await
        .unwrap()
        .token;
    let path = format!("/api/sessions/{id}/stop");
    let stopped = d
        .api
        .respond(api_event(
            "api-stop-session.json",
            "POST",
            &path,
            &token,
            None,
        ))
        .await;
    let (status, body) = http(&stopped);
    assert!(status == 200 || status == 202, "{status}: {body}");
    d.settle(id, SessionStatus::Cancelled).await;
    assert!(d.managed_rules(&sg).await.is_empty());

    // A session started three hours ago for one hour: due, and left for the sweeper.
    let other = d.fx.security_group("lambda-expiring").await;
    let past = Arc::new(ManualClock::new(
        chrono::Utc::now() - chrono::Duration::hours(3),
    ));
    let earlier = d.fx.backend.app(past, Arc::new(RandomIds), None);
    let late = d.organization(&earlier, &other).await;
    let overdue = earlier
        .start_session(
            &late,
            CLIENT.parse().unwrap(),
            entryguard::domain::tier::Hours::new(1).unwrap(),
        )
        .await
        .unwrap();
    let summary = d.sweeper.respond(event("schedule-sweep.json")).await;
    assert!(summary.is_object(), "the sweep's summary: {summary}");
    d.settle(overdue.id, SessionStatus::Expired).await;
    assert!(d.managed_rules(&other).await.is_empty());

    // Each binary wrote its figures as CloudWatch embedded metrics, in the stack's namespace.
    let mut seen: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in [&d.api, &d.worker, &d.sweeper] {
        for doc in emf_documents(&f.process.log()) {
            let directive = &doc["_aws"]["CloudWatchMetrics"][0];
            assert_eq!(
                directive["Namespace"],
                format!("EntryGuard/{STACK}"),
                "{doc}"
            );
            assert_eq!(directive["Dimensions"], json!([["Function"], []]), "{doc}");
            let function = doc["Function"].as_str().expect("a Function dimension");
            for m in directive["Metrics"].as_array().unwrap() {
                let name = m["Name"].as_str().unwrap();
                assert!(doc[name].is_number(), "no value for {name}: {doc}");
                seen.entry(name.to_owned())
                    .or_default()
                    .insert(function.to_owned());
            }
        }
    }
    let by = |name: &str| {
        seen.get(name)
            .unwrap_or_else(|| panic!("no {name} in any function's metrics: {seen:?}"))
            .clone()
    };
    assert_eq!(by("SessionsStarted"), ["api".to_owned()].into());
    assert_eq!(by("SessionsActive"), ["rule-worker".to_owned()].into());
    assert_eq!(by("StartToActive"), ["rule-worker".to_owned()].into());
    assert!(by("RuleCalls").contains("rule-worker"), "{seen:?}");
    assert!(by("SweepDuration").contains("expiry-sweeper"), "{seen:?}");
    // Expired by the sweep, or by its delayed check in the worker.
    assert!(!by("ExpiryLag").is_empty());
}

/// The lines of a function's output that are embedded-metric-format documents.
fn emf_documents(log: &str) -> Vec<Value> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("_aws").is_some())
        .collect()
}

/// An event a function cannot decode is answered on the Runtime API's error route, and the
/// binary keeps taking events.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_malformed_event_gets_an_error_not_a_crash() {
    let mut d = Deployed::start().await;
    for (function, payload) in [
        (&mut d.api, json!({"not": "an API Gateway event"})),
        (&mut d.worker, json!({"Records": "not a list"})),
        (&mut d.sweeper, json!([1, 2, 3])),
    ] {
        match function.invoke(payload).await {
            Outcome::Error(e) => assert!(
                e["errorMessage"].as_str().is_some_and(|m| !m.is_empty()),
                "{}: {e}",
                function.process.name
            ),
            Outcome::Response(r) => {
                panic!("{} accepted a malformed event: {r}", function.process.name)
            }
        }
    }
    // Still serving: a well-formed event after the bad ones.
    let health = d.api.respond(event("api-health.json")).await;
    assert_eq!(http(&health).0, 200, "{health}");
    let empty = d.worker.respond(json!({"Records": []})).await;
    assert_eq!(empty["batchItemFailures"], json!([]));
    d.sweeper.respond(event("schedule-sweep.json")).await;
    for f in [&mut d.api, &mut d.worker, &mut d.sweeper] {
        f.process.assert_running(&f.runtime.init_errors());
        assert!(f.runtime.init_errors().is_empty());
    }
}
