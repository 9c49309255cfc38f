//! What a session costs in requests, counted on moto: `USERS` members (one address each) start
//! a session on the same `GROUPS` security groups through the AWS adapters, the worker runs
//! until everything is ACTIVE, then every session is stopped and the worker runs until every
//! rule is gone. moto's recorder gives every request; they are printed per phase and per
//! session by type (DynamoDB by operation, with write and read request units; EC2 by action),
//! with the cost of 1,000 sessions at DynamoDB on-demand prices.
//!
//! `cargo test -p entryguard-tests --bench moto_requests` (`ENTRYGUARD_BENCH_USERS=N`).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::{TimeZone, Utc};

use entryguard::app::{App, Identity};
use entryguard::domain::ids::{OrgId, ResourceId, RoleId, UserId};
use entryguard::domain::model::{Organization, Resource, Role, User};
use entryguard::domain::net::PortRange;
use entryguard::domain::session::SessionStatus;
use entryguard::domain::tier::{Hours, Tier};
use entryguard::embedded::{ManualClock, SeededIds};
use entryguard_tests::moto::{AwsFixture, REGION};
use entryguard_tests::requests::{print_cost, Tally};

const GROUPS: usize = 5;
#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let users: usize = std::env::var("ENTRYGUARD_BENCH_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let fx = AwsFixture::start("eg-bench-requests").await;
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 11, 29, 9, 0, 0).unwrap(),
    ));
    let app: App = fx
        .backend
        .app(clock.clone(), Arc::new(SeededIds::new(11)), None);
    let org = Organization::new(
        OrgId::from_uuid(app.ids.uuid()),
        "Bench Org".parse().unwrap(),
        Tier::Team,
        app.now(),
    );
    app.store.put_org(&org).await.unwrap();
    let credential = fx.credential(org.id).await;
    let mut resources = Vec::new();
    for g in 0..GROUPS {
        let sg = fx.security_group(&format!("bench-{g}")).await;
        let r = Resource {
            id: ResourceId::from_uuid(app.ids.uuid()),
            org_id: org.id,
            name: format!("resource {g}").parse().unwrap(),
            credential_id: credential.id,
            security_group_id: sg,
            region: REGION.parse().unwrap(),
            ports: vec![PortRange::tcp(22)],
            created_at: app.now(),
        };
        app.put_doc(&r).await.unwrap();
        resources.push(r);
    }
    let mut members = Vec::new();
    for u in 0..users {
        let user = User {
            id: UserId::from_uuid(app.ids.uuid()),
            org_id: org.id,
            email: format!("user{u}@example.com").parse().unwrap(),
            is_admin: false,
            resource_ids: BTreeSet::new(),
            created_at: app.now(),
        };
        app.store.create_user(&user).await.unwrap();
        members.push(Identity {
            user,
            org: org.clone(),
            ip: None,
        });
    }
    let role = Role {
        id: RoleId::from_uuid(app.ids.uuid()),
        org_id: org.id,
        name: "everyone".parse().unwrap(),
        max_session_duration_hours: None,
        resource_ids: resources.iter().map(|r| r.id).collect(),
        user_ids: members.iter().map(|m| m.user.id).collect(),
        created_at: app.now(),
    };
    app.put_doc(&role).await.unwrap();

    let settle = StdDuration::from_secs(900);
    fx.moto.start_recording().await;
    let started = Instant::now();
    let mut sessions = Vec::new();
    for (u, m) in members.iter().enumerate() {
        let ip = format!("203.0.113.{}", u + 1).parse().unwrap();
        sessions.push(
            app.start_session(m, ip, Hours::new(2).unwrap())
                .await
                .unwrap(),
        );
    }
    fx.settle(&app, settle).await;
    let apply_time = started.elapsed();
    let apply = Tally::of(&fx.moto.recording());
    for s in &sessions {
        let now = app.store.get_session(s.id).await.unwrap().unwrap();
        assert_eq!(now.status(), SessionStatus::Active, "{:?}", now.entries);
    }

    fx.moto.start_recording().await;
    let stopping = Instant::now();
    for (m, s) in members.iter().zip(&sessions) {
        app.stop_session(m, s.id).await.unwrap();
    }
    fx.settle(&app, settle).await;
    let remove_time = stopping.elapsed();
    let remove = Tally::of(&fx.moto.recording());
    for r in &resources {
        assert!(
            fx.rules(&r.security_group_id)
                .await
                .iter()
                .all(|c| !c.is_managed()),
            "every rule gone after stop"
        );
    }

    let entries = users * GROUPS;
    println!(
        "moto: {users} users x {GROUPS} groups; all ACTIVE after {:.1} s, all ended after {:.1} s (moto answers one request in ~50-80 ms)",
        apply_time.as_secs_f64(),
        remove_time.as_secs_f64()
    );
    apply.print("start until ACTIVE (API + worker)", users, entries);
    remove.print("stop until ended (API + worker)", users, entries);
    print_cost(&apply, &remove, users, GROUPS);
}
