//! The rule worker under a throttling storm: 50 users (and then 200) start a session at the same
//! moment, each on 5 security groups, against a simulated EC2 that enforces its request limit (a
//! token bucket of 50, refilled at 5 per second, per account and region) and answers each call
//! after 100–300 ms (drawn from a seed). Two workers consume the queue as the Lambda does (at
//! most two at once, ten messages each). Last, one user on 10 groups, to see how close a single
//! session comes to one EC2 round trip. Printed per scenario: how long until every session is
//! ACTIVE, in simulated seconds, what it cost in EC2 calls (and authorize calls on the busiest
//! group), and the most rule changes that reached EC2 in one minute — held under the
//! credential's cloud budget (`CLOUD_CHANGES_PER_MINUTE`), so the customer's own tooling keeps
//! the rest of the bucket.
//!
//! Run: `cargo test -p entryguard-tests --bench throttling` (a debug build is fine: the time
//! measured is simulated).

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};

use entryguard::app::rate_limit::CLOUD_CHANGES_PER_MINUTE;
use entryguard::app::worker::Outcome;
use entryguard::app::{App, Identity};
use entryguard::domain::ids::{CredentialId, OrgId, ResourceId, RoleId, SessionId, UserId};
use entryguard::domain::model::{Credential, CredentialStatus, Organization, Resource, Role, User};
use entryguard::domain::net::{PortRange, Region, SecurityGroupId};
use entryguard::domain::session::SessionStatus;
use entryguard::domain::tier::{Hours, Tier};
use entryguard::embedded::firewall::Operation;
use entryguard::embedded::{
    simulated_app, EmbeddedQueue, EmbeddedStore, Kv, ManualClock, SeededIds, SimCloud,
    SimulatedFirewall,
};
use entryguard::pacing::{BucketSpec, Pacer, PacerConfig, PacerStats};
use entryguard::ports::{Clock, Store, TaskQueue};
use entryguard_tests::sim::exec::{Control, Executor, Step};

/// EC2's answer time per call, drawn evenly between these bounds.
const LATENCY_MS: (u64, u64) = (100, 300);
/// Users sharing the same security groups.
const COHORT: usize = 50;
const WORKERS: usize = 2;
const BATCH: usize = 10;
const VISIBILITY_SECS: i64 = 180;

#[derive(Clone, Copy)]
enum Pacing {
    /// Every worker paces its calls with its share of the limit.
    TokenBucket,
    /// No client-side pacing: throttling is found by errors and retried on the queue.
    ErrorsOnly,
}

struct Figures {
    seconds_to_active: Option<f64>,
    active: usize,
    failed_entries: usize,
    calls: u64,
    throttled: u64,
    /// The most authorize calls that reached one security group.
    most_authorize_per_group: u64,
    pacing: PacerStats,
    deliveries: u64,
    /// The most times one message was received (the dead-letter queue takes it at 10).
    most_receives: u32,
    /// The most mutating EC2 calls in one minute of the budget's windows, and in any 60 s.
    max_per_minute: usize,
    max_per_60s: usize,
}

/// The most arrivals in one aligned minute, and in any 60 seconds.
fn per_minute(arrivals: &[std::time::Duration]) -> (usize, usize) {
    let mut minutes = std::collections::BTreeMap::<u64, usize>::new();
    for a in arrivals {
        *minutes.entry(a.as_secs() / 60).or_default() += 1;
    }
    let aligned = minutes.values().copied().max().unwrap_or(0);
    let mut sorted = arrivals.to_vec();
    sorted.sort();
    let mut sliding = 0;
    let mut first = 0;
    for (last, t) in sorted.iter().enumerate() {
        while *t - sorted[first] >= std::time::Duration::from_secs(60) {
            first += 1;
        }
        sliding = sliding.max(last + 1 - first);
    }
    (aligned, sliding)
}

fn region() -> Region {
    "eu-west-1".parse().unwrap()
}

fn sg(n: u32) -> SecurityGroupId {
    format!("sg-{n:08x}").parse().unwrap()
}

async fn setup(
    app: &App,
    store: &EmbeddedStore,
    sim: &SimCloud,
    users: usize,
    groups: u32,
) -> Vec<Identity> {
    let now = app.now();
    let org = Organization::new(
        OrgId::from_uuid(app.ids.uuid()),
        "Storm Org".parse().unwrap(),
        Tier::Team,
        now,
    );
    store.put_org(&org).await.unwrap();
    let credential = Credential {
        status: CredentialStatus::Valid,
        ..Credential::simulated(
            CredentialId::from_uuid(app.ids.uuid()),
            org.id,
            "sim".parse().unwrap(),
            region(),
            now,
        )
    };
    app.put_doc(&credential).await.unwrap();
    // A security group holds at most 60 rules: each cohort of 50 users has groups of its own.
    let cohorts = users.div_ceil(COHORT);
    let mut people = Vec::new();
    for cohort in 0..cohorts {
        let mut resources = BTreeSet::new();
        for g in (cohort as u32 * groups + 1)..=((cohort as u32 + 1) * groups) {
            sim.create_group(&region(), &sg(g), &format!("group-{g}"))
                .unwrap();
            let r = Resource {
                id: ResourceId::from_uuid(app.ids.uuid()),
                org_id: org.id,
                name: format!("service-{g}").parse().unwrap(),
                credential_id: credential.id,
                security_group_id: sg(g),
                region: region(),
                ports: vec![PortRange::tcp(22)],
                created_at: now,
            };
            app.put_doc(&r).await.unwrap();
            resources.insert(r.id);
        }
        let mut members = Vec::new();
        for n in cohort * COHORT..users.min((cohort + 1) * COHORT) {
            let user = User {
                id: UserId::from_uuid(app.ids.uuid()),
                org_id: org.id,
                email: format!("user{n}@example.com").parse().unwrap(),
                is_admin: false,
                resource_ids: BTreeSet::new(),
                created_at: now,
            };
            store.create_user(&user).await.unwrap();
            members.push(user.id);
            people.push(Identity {
                user,
                org: org.clone(),
                ip: None,
            });
        }
        let role = Role {
            id: RoleId::from_uuid(app.ids.uuid()),
            org_id: org.id,
            name: format!("cohort-{cohort}").parse().unwrap(),
            max_session_duration_hours: None,
            resource_ids: resources,
            user_ids: members.into_iter().collect(),
            created_at: now,
        };
        app.put_doc(&role).await.unwrap();
    }
    people
}

enum Done {
    Handled {
        worker: usize,
        receipt: String,
        outcome: Outcome,
    },
    Swept,
}

async fn storm(pacing: Pacing, users: usize, groups: u32) -> Figures {
    let kv = Kv::in_memory();
    let start = Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let ids = Arc::new(SeededIds::new(7));
    let sim = SimCloud::new(kv.clone());
    sim.limit_requests(
        BucketSpec::EC2_MUTATING,
        BucketSpec::EC2_DESCRIBE,
        clock.clone(),
    );
    sim.set_latency_between(
        std::time::Duration::from_millis(LATENCY_MS.0),
        std::time::Duration::from_millis(LATENCY_MS.1),
        5,
    );
    let queue = EmbeddedQueue::new(kv.clone(), clock.clone(), ids.clone());
    let store = Arc::new(EmbeddedStore::new(kv));
    // One app per worker: each worker process has its own pacer, with its share of the limit.
    let mut pacers = Vec::new();
    let apps: Vec<App> = (0..WORKERS)
        .map(|w| {
            let firewall = match pacing {
                Pacing::TokenBucket => {
                    let pacer = Arc::new(Pacer::new(
                        clock.clone(),
                        PacerConfig::ec2(WORKERS as u32),
                        Some(w as u64),
                    ));
                    pacers.push(pacer.clone());
                    SimulatedFirewall::paced(sim.clone(), pacer)
                }
                Pacing::ErrorsOnly => SimulatedFirewall::new(sim.clone()),
            };
            simulated_app(
                store.clone(),
                Arc::new(queue.clone()),
                firewall,
                &sim,
                clock.clone(),
                ids.clone(),
            )
        })
        .collect();
    let users = setup(&apps[0], &store, &sim, users, groups).await;
    let mut sessions: Vec<SessionId> = Vec::new();
    for (n, who) in users.iter().enumerate() {
        let ip = format!("198.51.{}.{}", 100 + n / 200, 1 + n % 200)
            .parse()
            .unwrap();
        let s = apps[0]
            .start_session(who, ip, Hours::new(8).unwrap())
            .await
            .unwrap();
        sessions.push(s.id);
    }
    let ctl = Control::new(11);
    let mut exec: Executor<Done> = Executor::new(ctl);
    let mut busy = [0usize; WORKERS];
    let mut next_sweep = start + Duration::seconds(60);
    let mut deliveries = 0;
    let mut most_receives = 0;
    let mut settled_at = None;
    for _ in 0..1_000_000 {
        // Idle workers take a batch, as the event source invokes a free Lambda.
        for (w, app) in apps.iter().enumerate() {
            if busy[w] > 0 {
                continue;
            }
            for d in queue
                .receive(BATCH, Duration::seconds(VISIBILITY_SECS))
                .unwrap()
            {
                busy[w] += 1;
                deliveries += 1;
                most_receives = most_receives.max(d.receive_count);
                let app = app.clone();
                exec.spawn(format!("worker {w}"), async move {
                    let outcome = app.process_task(&d.task).await;
                    Done::Handled {
                        worker: w,
                        receipt: d.receipt,
                        outcome,
                    }
                });
            }
        }
        if clock.now() >= next_sweep {
            let app = apps[0].clone();
            exec.spawn("sweep".into(), async move {
                let _ = app.sweep().await;
                Done::Swept
            });
            next_sweep += Duration::seconds(60);
        }
        match exec.step() {
            Step::Done(
                _,
                Done::Handled {
                    worker,
                    receipt,
                    outcome,
                },
            ) => {
                busy[worker] -= 1;
                match outcome {
                    Outcome::Done => queue.ack(&receipt).unwrap(),
                    Outcome::RetryAfter(delay) => queue
                        .retry_after(&receipt, Duration::from_std(delay).unwrap())
                        .unwrap(),
                }
                continue;
            }
            Step::Done(_, Done::Swept) | Step::Pending => continue,
            Step::Crashed(..) => unreachable!("no chaos here"),
            Step::Idle => {}
        }
        // Nothing ready: everything settled, or time must pass.
        let mut statuses = Vec::new();
        for id in &sessions {
            statuses.push(store.get_session(*id).await.unwrap().unwrap().status());
        }
        if settled_at.is_none() && statuses.iter().all(|s| *s != SessionStatus::Pending) {
            settled_at = Some(clock.now());
        }
        if settled_at.is_some() && exec.is_empty() && queue.is_empty().unwrap() {
            break;
        }
        let wake = [
            clock.next_wake(),
            queue.next_visible_at().unwrap(),
            Some(next_sweep),
        ]
        .into_iter()
        .flatten()
        .filter(|t| *t > clock.now())
        .min()
        .unwrap();
        clock.set(wake);
    }
    let mut active = 0;
    let mut failed_entries = 0;
    for id in &sessions {
        let s = store.get_session(*id).await.unwrap().unwrap();
        if s.status() == SessionStatus::Active {
            active += 1;
        }
        failed_entries += s
            .entries
            .iter()
            .filter(|e| e.status == entryguard::domain::session::EntryStatus::Failed)
            .count();
    }
    let counts = sim.counts();
    let mut pacing_stats = PacerStats::default();
    for p in &pacers {
        let s = p.stats();
        pacing_stats.calls += s.calls;
        pacing_stats.waited += s.waited;
        pacing_stats.retries += s.retries;
        pacing_stats.gave_up += s.gave_up;
    }
    assert!(queue.dead_letters(1).await.unwrap().is_empty());
    let (max_per_minute, max_per_60s) = per_minute(&sim.mutating_arrivals());
    Figures {
        most_receives,
        max_per_minute,
        max_per_60s,
        seconds_to_active: (active == users.len())
            .then(|| (settled_at.unwrap() - start).num_milliseconds() as f64 / 1000.0),
        active,
        failed_entries,
        calls: counts.calls,
        throttled: counts.throttled,
        most_authorize_per_group: sim
            .calls_per_group(Operation::Authorize)
            .into_values()
            .max()
            .unwrap_or(0),
        pacing: pacing_stats,
        deliveries,
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    println!(
        "simulated EC2 limit: burst {}, {}/s; each call answered in {}-{} ms; {WORKERS} workers x {BATCH} messages; cloud budget {CLOUD_CHANGES_PER_MINUTE} changes per credential and minute",
        BucketSpec::EC2_MUTATING.burst,
        BucketSpec::EC2_MUTATING.per_second,
        LATENCY_MS.0,
        LATENCY_MS.1
    );
    for (name, pacing, users, groups) in [
        (
            "token bucket (each worker: burst 25, 2.5/s)",
            Pacing::TokenBucket,
            50,
            5,
        ),
        (
            "no client-side pacing (errors and queue retries)",
            Pacing::ErrorsOnly,
            50,
            5,
        ),
        (
            "token bucket, a storm four times larger",
            Pacing::TokenBucket,
            200,
            5,
        ),
        ("token bucket, one user", Pacing::TokenBucket, 1, 10),
    ] {
        let f = rt.block_on(storm(pacing, users, groups));
        let round_trip = (LATENCY_MS.0 + LATENCY_MS.1) as f64 / 2000.0;
        let time = match f.seconds_to_active {
            Some(s) => format!(
                "all ACTIVE after {s:.1} s (simulated; {:.1} mean EC2 round trips)",
                s / round_trip
            ),
            None => format!(
                "only {}/{users} sessions ACTIVE ({} entries FAILED)",
                f.active, f.failed_entries
            ),
        };
        println!(
            "{name}, {users} users x {groups} groups = {} rules:\n  {time}\n  EC2 calls {} (throttled {}; at most {} authorize calls on one group), queue deliveries {} (at most {} of one message), waits for a token {}, in-call retries {}, gave up {}\n  rule changes reaching EC2: at most {} in one budget minute, {} in any 60 s",
            users * groups as usize,
            f.calls, f.throttled, f.most_authorize_per_group, f.deliveries, f.most_receives, f.pacing.waited, f.pacing.retries, f.pacing.gave_up,
            f.max_per_minute, f.max_per_60s
        );
    }
}
