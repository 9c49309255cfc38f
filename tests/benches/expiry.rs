//! Expiry at scale. Printed, not asserted:
//!
//! 1. **Expiry lag** — 600 one-hour sessions whose expiries are spread over half an hour, swept
//!    every 60 s at a phase unrelated to them, with a worker taking every visible message at
//!    once. Per session: how long after `expiresAt` it started ending (EXPIRING, removals
//!    queued) and when it was EXPIRED (rules gone), p50 / p99 / max, on a simulated clock in
//!    250 ms steps — with the sweeper's delayed check messages and without them (the sweep
//!    alone, as before).
//! 2. **10,000 sessions due at once** on the embedded store (100 organizations, one group each,
//!    100 sessions per group from 50 addresses): how many sweep runs and how much wall-clock
//!    time until every session is EXPIRING, then until the worker has made every one EXPIRED.
//!    The clock is real time (plus an offset), so each run's time budget is real.
//! 3. **The same on DynamoDB (moto)**, smaller (`ENTRYGUARD_BENCH_MOTO_SESSIONS`, default
//!    500: moto slows down as its table grows) and with sessions that have no entries, so the figure is the sweep's own: paging
//!    the sharded due index and one conditional write plus one audit event per session. Set
//!    `ENTRYGUARD_BENCH_MOTO_SESSIONS=0` to skip it.
//!
//! Run: `cargo test -p entryguard-tests --bench expiry` (a debug build: wall-clock figures are
//! of a debug build on this machine, and say so).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use chrono::{Duration, TimeZone, Utc};

use entryguard::app::sweeper::SweepOptions;
use entryguard::app::worker::Outcome;
use entryguard::app::{App, Identity};
use entryguard::domain::ids::{CredentialId, OrgId, ResourceId, RoleId, SessionId, UserId};
use entryguard::domain::model::{Credential, CredentialStatus, Organization, Resource, Role, User};
use entryguard::domain::net::{PortRange, Region, SecurityGroupId};
use entryguard::domain::session::{Session, SessionStatus};
use entryguard::domain::tier::{Hours, Tier};
use entryguard::domain::Timestamp;
use entryguard::embedded::{
    simulated_app, EmbeddedQueue, EmbeddedStore, Kv, ManualClock, OffsetClock, SeededIds, SimCloud,
    SimulatedFirewall,
};
use entryguard::ports::{Clock, Store};
use entryguard::runtime::RandomIds;
use entryguard_tests::moto::AwsFixture;

fn region() -> Region {
    "eu-west-1".parse().unwrap()
}

fn sg(n: u32) -> SecurityGroupId {
    format!("sg-{n:08x}").parse().unwrap()
}

struct Embedded {
    app: App,
    queue: EmbeddedQueue,
    sim: SimCloud,
    store: Arc<EmbeddedStore>,
}

fn embedded(clock: Arc<dyn Clock>, seed: u64) -> Embedded {
    let kv = Kv::in_memory();
    let ids = Arc::new(SeededIds::new(seed));
    let sim = SimCloud::new(kv.clone());
    let queue = EmbeddedQueue::new(kv.clone(), clock.clone(), ids.clone());
    let store = Arc::new(EmbeddedStore::new(kv));
    let app = simulated_app(
        store.clone(),
        Arc::new(queue.clone()),
        SimulatedFirewall::new(sim.clone()),
        &sim,
        clock,
        ids,
    );
    Embedded {
        app,
        queue,
        sim,
        store,
    }
}

/// An organization with one simulated security group, a resource on it, and a member whose
/// role gives it that resource.
async fn org_with_group(e: &Embedded, n: u32) -> Identity {
    let app = &e.app;
    let now = app.now();
    let org = Organization::new(
        OrgId::from_uuid(app.ids.uuid()),
        format!("Org {n}").parse().unwrap(),
        Tier::Team,
        now,
    );
    e.store.put_org(&org).await.unwrap();
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
    e.sim
        .create_group(&region(), &sg(n), &format!("group-{n}"))
        .unwrap();
    let resource = Resource {
        id: ResourceId::from_uuid(app.ids.uuid()),
        org_id: org.id,
        name: format!("service-{n}").parse().unwrap(),
        credential_id: credential.id,
        security_group_id: sg(n),
        region: region(),
        ports: vec![PortRange::tcp(22)],
        created_at: now,
    };
    app.put_doc(&resource).await.unwrap();
    let user = User {
        id: UserId::from_uuid(app.ids.uuid()),
        org_id: org.id,
        email: format!("user{n}@example.com").parse().unwrap(),
        is_admin: false,
        resource_ids: BTreeSet::new(),
        created_at: now,
    };
    e.store.create_user(&user).await.unwrap();
    let role = Role {
        id: RoleId::from_uuid(app.ids.uuid()),
        org_id: org.id,
        name: "everyone".parse().unwrap(),
        max_session_duration_hours: None,
        resource_ids: [resource.id].into(),
        user_ids: [user.id].into(),
        created_at: now,
    };
    app.put_doc(&role).await.unwrap();
    Identity {
        user,
        org,
        ip: None,
    }
}

/// Handles every visible message until none is, as the worker does; answers how many.
async fn drain(e: &Embedded) -> usize {
    let mut total = 0;
    loop {
        let batch = e.queue.receive(10, Duration::seconds(180)).unwrap();
        if batch.is_empty() {
            return total;
        }
        total += batch.len();
        let outcomes = futures::future::join_all(
            batch
                .iter()
                .map(|d| async { (d.receipt.clone(), e.app.process_task(&d.task).await) }),
        )
        .await;
        for (receipt, outcome) in outcomes {
            match outcome {
                Outcome::Done => e.queue.ack(&receipt).unwrap(),
                Outcome::RetryAfter(delay) => e
                    .queue
                    .retry_after(&receipt, Duration::from_std(delay).unwrap())
                    .unwrap(),
            }
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn summary(mut v: Vec<f64>) -> String {
    v.sort_by(f64::total_cmp);
    format!(
        "p50 {:5.2} s  p99 {:5.2} s  max {:5.2} s  (n = {})",
        percentile(&v, 50.0),
        percentile(&v, 99.0),
        v.last().copied().unwrap_or(f64::NAN),
        v.len()
    )
}

const LAG_SESSIONS: usize = 600;
const LAG_GROUPS: u32 = 20;

/// Scenario 1: the lag between `expiresAt` and the session ending, with or without the
/// sweeper's delayed check messages.
async fn lag(with_checks: bool) -> (Vec<f64>, Vec<f64>) {
    let t0 = Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap();
    let clock = Arc::new(ManualClock::new(t0));
    let e = embedded(clock.clone(), 7);
    let mut members = Vec::new();
    for g in 1..=LAG_GROUPS {
        members.push(org_with_group(&e, g).await);
    }
    let mut sessions: Vec<(Timestamp, SessionId)> = Vec::new();
    for j in 0..LAG_SESSIONS {
        // One start every three seconds and a bit, so expiries fall on every phase of the
        // sweep's minute and between whole seconds.
        clock.set(t0 + Duration::milliseconds(j as i64 * 3000 + (j as i64 * 7919) % 1000));
        let g = j % LAG_GROUPS as usize;
        let ip = format!("198.18.{}.{}", g, j / LAG_GROUPS as usize + 1);
        let s = e
            .app
            .start_session(&members[g], ip.parse().unwrap(), Hours::new(1).unwrap())
            .await
            .unwrap();
        sessions.push((s.expires_at, s.id));
        drain(&e).await;
    }
    sessions.sort();
    let options = if with_checks {
        SweepOptions::default()
    } else {
        SweepOptions {
            lookahead: Duration::zero(),
            ..SweepOptions::default()
        }
    };
    let step = Duration::milliseconds(250);
    let mut now = t0 + Duration::minutes(55) + Duration::seconds(17);
    let mut next_sweep = now;
    let end = sessions.last().unwrap().0 + Duration::minutes(3);
    let (mut started, mut gone) = (Vec::new(), Vec::new());
    let mut next = 0;
    let mut waiting_start: Vec<(Timestamp, SessionId)> = Vec::new();
    let mut waiting_gone: Vec<(Timestamp, SessionId)> = Vec::new();
    while now <= end {
        clock.set(now);
        if now >= next_sweep {
            e.app.sweep_with(options).await.unwrap();
            next_sweep += Duration::seconds(60);
        }
        drain(&e).await;
        while next < sessions.len() && sessions[next].0 <= now {
            waiting_start.push(sessions[next]);
            waiting_gone.push(sessions[next]);
            next += 1;
        }
        let secs = |at: Timestamp| (now - at).num_milliseconds() as f64 / 1000.0;
        let mut still = Vec::new();
        for (at, id) in waiting_start.drain(..) {
            let s = e.store.get_session(id).await.unwrap().unwrap();
            if s.end.is_some() {
                started.push(secs(at));
            } else {
                still.push((at, id));
            }
        }
        waiting_start = still;
        let mut still = Vec::new();
        for (at, id) in waiting_gone.drain(..) {
            let s = e.store.get_session(id).await.unwrap().unwrap();
            if s.status() == SessionStatus::Expired {
                gone.push(secs(at));
            } else {
                still.push((at, id));
            }
        }
        waiting_gone = still;
        now += step;
    }
    assert!(
        waiting_start.is_empty() && waiting_gone.is_empty(),
        "every session ended"
    );
    (started, gone)
}

const STORM_ORGS: u32 = 100;
const STORM_PER_ORG: usize = 100;

/// Scenario 2: 10,000 sessions due at once on the embedded store.
async fn storm_embedded() {
    let clock = Arc::new(OffsetClock::default());
    let e = embedded(clock.clone(), 11);
    let setup = Instant::now();
    let mut ids = Vec::new();
    for o in 1..=STORM_ORGS {
        let member = org_with_group(&e, o).await;
        for k in 0..STORM_PER_ORG {
            let ip = format!("198.18.{}.{}", o, k % 50 + 1);
            let s = e
                .app
                .start_session(&member, ip.parse().unwrap(), Hours::new(1).unwrap())
                .await
                .unwrap();
            ids.push(s.id);
        }
        drain(&e).await;
    }
    let total = ids.len();
    println!(
        "  set-up: {total} sessions ACTIVE in {:.1} s",
        setup.elapsed().as_secs_f64()
    );
    clock.advance(Duration::hours(1) + Duration::seconds(1));
    let started = Instant::now();
    let mut runs = 0;
    let mut expired = 0;
    loop {
        runs += 1;
        let run = Instant::now();
        let r = e.app.sweep_with(SweepOptions::default()).await.unwrap();
        expired += r.expired;
        println!(
            "  sweep run {runs}: due {} expired {} in {:.1} s{}",
            r.due,
            r.expired,
            run.elapsed().as_secs_f64(),
            if r.unfinished {
                " (time up, the rest left to the next run)"
            } else {
                ""
            }
        );
        if !r.unfinished || runs >= 30 {
            break;
        }
    }
    let swept = started.elapsed().as_secs_f64();
    let worker = Instant::now();
    let handled = drain(&e).await;
    let worked = worker.elapsed().as_secs_f64();
    let mut done = 0;
    for id in &ids {
        if e.store.get_session(*id).await.unwrap().unwrap().status() == SessionStatus::Expired {
            done += 1;
        }
    }
    println!(
        "  {expired} of {total} EXPIRING after {runs} sweep run(s), {swept:.1} s; the worker then \
         handled {handled} removal tasks in {worked:.1} s: {done} of {total} EXPIRED, \
         {:.1} s after they fell due",
        started.elapsed().as_secs_f64()
    );
}

const MOTO_USERS: usize = 100;
/// moto keeps the table in memory and slows down as it grows (past a few thousand items a
/// transaction takes seconds), so this is far below the embedded figure.
const MOTO_SESSIONS: usize = 500;

/// Scenario 3: the sweep itself on DynamoDB (moto).
async fn storm_moto(n: usize) {
    let fx = AwsFixture::start("eg-bench-expiry").await;
    let clock = Arc::new(OffsetClock::default());
    let app = fx.backend.app(clock.clone(), Arc::new(RandomIds), None);
    let now = app.now();
    let org = Organization::new(
        OrgId::from_uuid(uuid::Uuid::new_v4()),
        "Moto Org".parse().unwrap(),
        Tier::Team,
        now,
    );
    app.store.put_org(&org).await.unwrap();
    // Many users: every start also counts the user's live sessions, one item per user, and
    // concurrent transactions on one item would only measure moto's conflicts.
    let mut users = Vec::new();
    for u in 0..MOTO_USERS {
        let user = User {
            id: UserId::from_uuid(uuid::Uuid::new_v4()),
            org_id: org.id,
            email: format!("moto{u}@example.com").parse().unwrap(),
            is_admin: false,
            resource_ids: BTreeSet::new(),
            created_at: now,
        };
        app.store.create_user(&user).await.unwrap();
        users.push(user.id);
    }
    let setup = Instant::now();
    let sessions: Vec<Session> = (0..n)
        .map(|k| {
            Session::new(
                SessionId::from_uuid(uuid::Uuid::new_v4()),
                org.id,
                users[k % users.len()],
                format!("198.18.{}.{}", k / 250, k % 250 + 1)
                    .parse()
                    .unwrap(),
                now,
                Hours::new(1).unwrap(),
                Vec::new(),
            )
        })
        .collect();
    // One at a time: moto serializes requests anyway, and concurrent transactions there
    // report conflicts a real table would not.
    let mut odd = 0;
    for s in &sessions {
        if let Err(error) = app.store.create_session(s, None).await {
            // moto now and then answers a transaction that went through as cancelled; what
            // counts here is that the session is stored.
            assert!(
                app.store.get_session(s.id).await.unwrap().is_some(),
                "{error}"
            );
            odd += 1;
        }
    }
    if odd > 0 {
        println!("  ({odd} creates answered 'already exists' by moto, though stored)");
    }
    println!(
        "  set-up: {n} sessions (no entries) written in {:.1} s",
        setup.elapsed().as_secs_f64()
    );
    clock.advance(Duration::hours(1) + Duration::seconds(1));
    let started = Instant::now();
    let mut runs = 0;
    loop {
        runs += 1;
        let run = Instant::now();
        let r = app.sweep_with(SweepOptions::default()).await.unwrap();
        println!(
            "  sweep run {runs}: due {} expired {} in {:.1} s{}",
            r.due,
            r.expired,
            run.elapsed().as_secs_f64(),
            if r.unfinished { " (time up)" } else { "" }
        );
        if !r.unfinished || runs >= 30 {
            break;
        }
    }
    let mut done = 0;
    for s in &sessions {
        if app.store.get_session(s.id).await.unwrap().unwrap().status() == SessionStatus::Expired {
            done += 1;
        }
    }
    println!(
        "  {done} of {n} EXPIRED after {runs} sweep run(s), {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // `ENTRYGUARD_BENCH_MOTO_ONLY=1` runs only scenario 3.
    let moto_only = std::env::var("ENTRYGUARD_BENCH_MOTO_ONLY").is_ok_and(|v| v == "1");
    rt.block_on(async {
        if !moto_only {
            embedded_scenarios().await;
        }
        let moto: usize = std::env::var("ENTRYGUARD_BENCH_MOTO_SESSIONS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(MOTO_SESSIONS);
        if moto > 0 {
            println!(
                "{moto} sessions due at once, DynamoDB on moto (sessions without entries: the \
                 sweep's own cost; debug build, wall clock):"
            );
            storm_moto(moto).await;
        }
    });
}

async fn embedded_scenarios() {
    {
        println!(
            "Expiry lag: {LAG_SESSIONS} sessions, expiries spread over 30 min, sweep every 60 s \
             (simulated clock, 250 ms steps; the worker takes messages as soon as visible)"
        );
        for (name, with_checks) in [
            ("sweep only (before)", false),
            ("sweep + delayed check messages", true),
        ] {
            let (started, gone) = lag(with_checks).await;
            println!("  {name}:");
            println!("    start ending (EXPIRING): {}", summary(started));
            println!("    rules gone (EXPIRED):    {}", summary(gone));
        }
        println!(
            "10,000 sessions due at once, embedded store ({STORM_ORGS} organizations x \
             {STORM_PER_ORG} sessions, debug build, wall clock):"
        );
        storm_embedded().await;
    }
}
