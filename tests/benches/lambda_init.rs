//! What a Lambda's first call costs, cold and warmed, on moto. Each round builds the AWS
//! adapters afresh for the API and for the worker — as two cold starts do (the process start
//! itself is not measured) — optionally warms them (`AwsBackend::warm`, as the mains now do
//! during init), then times one session from the API call to ACTIVE: the API's start, then the
//! worker taking the message and authorizing the rule in (moto's) EC2. A second session on the
//! same adapters is the warm figure.
//!
//! What this cannot show: on moto every service is one plain-HTTP endpoint on 127.0.0.1, so
//! there is no TLS handshake and no DNS, which is most of a cold first call in AWS; what is
//! measured is the SDK's own first-call work (endpoint resolution, credentials, the
//! connector) and a loopback TCP connect.
//!
//! Run: `cargo test -p entryguard-tests --bench lambda_init` (debug build).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use entryguard::app::{App, Identity};
use entryguard::domain::ids::{OrgId, ResourceId, RoleId, UserId};
use entryguard::domain::model::{Organization, Resource, Role, User};
use entryguard::domain::net::PortRange;
use entryguard::domain::session::SessionStatus;
use entryguard::domain::tier::{Hours, Tier};
use entryguard::runtime::{RandomIds, SystemClock};
use entryguard_aws::{AwsBackend, ConnectOptions, Services};
use entryguard_tests::moto::{AwsFixture, REGION};

const ROUNDS: usize = 3;

struct Timing {
    init: Duration,
    start: Duration,
    to_active: Duration,
}

async fn backend(fx: &AwsFixture, warm: bool) -> (AwsBackend, Duration) {
    let began = Instant::now();
    let backend = entryguard_aws::connect(&ConnectOptions {
        sdk: fx.moto.options(),
        table_name: fx.names.table.clone(),
        queue_url: fx.backend.queue.url().to_owned(),
        kms_key_id: fx.names.kms_alias.clone(),
    })
    .await;
    if warm {
        backend
            .warm(Services {
                dynamodb: true,
                sqs: true,
                sts: true,
            })
            .await;
    }
    (backend, began.elapsed())
}

async fn to_active(
    api: &App,
    worker: &App,
    queue: &entryguard_aws::SqsQueue,
    who: &Identity,
    ip: &str,
) -> (Duration, Duration) {
    let began = Instant::now();
    let session = api
        .start_session(who, ip.parse().unwrap(), Hours::new(1).unwrap())
        .await
        .unwrap();
    let started = began.elapsed();
    loop {
        entryguard_aws::process_batch(worker, queue, Duration::from_millis(100))
            .await
            .unwrap();
        let s = worker.store.get_session(session.id).await.unwrap().unwrap();
        if s.status() == SessionStatus::Active {
            break;
        }
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "never ACTIVE: {s:?}"
        );
    }
    let active = began.elapsed();
    api.stop_session(who, session.id).await.unwrap();
    (started, active)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let fx = AwsFixture::start("eg-bench-init").await;
        let setup = fx.backend.app(Arc::new(SystemClock), Arc::new(RandomIds), None);
        let org = Organization::new(OrgId::from_uuid(uuid::Uuid::new_v4()), "Init Org".parse().unwrap(), Tier::Team, setup.now());
        setup.store.put_org(&org).await.unwrap();
        let credential = fx.credential(org.id).await;
        let user = User {
            id: UserId::from_uuid(uuid::Uuid::new_v4()),
            org_id: org.id,
            email: "init@example.com".parse().unwrap(),
            is_admin: false,
            resource_ids: BTreeSet::new(),
            created_at: setup.now(),
        };
        setup.store.create_user(&user).await.unwrap();
        let sg = fx.security_group("init").await;
        let resource = Resource {
            id: ResourceId::from_uuid(uuid::Uuid::new_v4()),
            org_id: org.id,
            name: "init".parse().unwrap(),
            credential_id: credential.id,
            security_group_id: sg,
            region: REGION.parse().unwrap(),
            ports: vec![PortRange::tcp(22)],
            created_at: setup.now(),
        };
        setup.put_doc(&resource).await.unwrap();
        setup
            .put_doc(&Role {
                id: RoleId::from_uuid(uuid::Uuid::new_v4()),
                org_id: org.id,
                name: "init".parse().unwrap(),
                max_session_duration_hours: None,
                resource_ids: [resource.id].into(),
                user_ids: [user.id].into(),
                created_at: setup.now(),
            })
            .await
            .unwrap();
        let who = Identity {
            user,
            org,
            ip: None,
        };
        println!(
            "start -> ACTIVE on moto (one resource; API and worker each on fresh adapters; \
             debug build; {ROUNDS} rounds, each figure the median):"
        );
        let mut n = 0;
        for warm in [false, true] {
            let mut first = Vec::new();
            let mut second = Vec::new();
            for _ in 0..ROUNDS {
                let (api_backend, api_init) = backend(&fx, warm).await;
                let (worker_backend, worker_init) = backend(&fx, warm).await;
                let api = api_backend.app(Arc::new(SystemClock), Arc::new(RandomIds), None);
                let worker = worker_backend.app(Arc::new(SystemClock), Arc::new(RandomIds), None);
                n += 1;
                let (start, active) =
                    to_active(&api, &worker, &worker_backend.queue, &who, &format!("198.18.0.{n}")).await;
                first.push(Timing {
                    init: api_init.max(worker_init),
                    start,
                    to_active: active,
                });
                n += 1;
                let (start, active) =
                    to_active(&api, &worker, &worker_backend.queue, &who, &format!("198.18.0.{n}")).await;
                second.push(Timing {
                    init: Duration::ZERO,
                    start,
                    to_active: active,
                });
            }
            let median = |v: &mut Vec<Timing>, f: fn(&Timing) -> Duration| {
                let mut xs: Vec<Duration> = v.iter().map(f).collect();
                xs.sort();
                ms(xs[xs.len() / 2])
            };
            let label = if warm { "warmed during init" } else { "not warmed (before)" };
            println!(
                "  {label}: init {:.0} ms; first session: API start {:.0} ms, ACTIVE after {:.0} ms; \
                 next session (warm): API start {:.0} ms, ACTIVE after {:.0} ms",
                median(&mut first, |t| t.init),
                median(&mut first, |t| t.start),
                median(&mut first, |t| t.to_active),
                median(&mut second, |t| t.start),
                median(&mut second, |t| t.to_active),
            );
        }
    });
}
