//! What a session costs in requests, counted on moto: `USERS` members (one address each) start
//! a session on the same `GROUPS` security groups through the AWS adapters, the worker runs
//! until everything is ACTIVE, then every session is stopped and the worker runs until every
//! rule is gone. moto's recorder gives every request; they are printed per phase and per
//! session by type (DynamoDB by operation, with write and read request units; EC2 by action),
//! with the cost of 1,000 sessions at DynamoDB on-demand prices.
//!
//! `cargo test -p entryguard-tests --bench moto_requests` (`ENTRYGUARD_BENCH_USERS=N`).

use std::collections::{BTreeMap, BTreeSet};
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
use entryguard_tests::moto::{AwsFixture, RecordedRequest, REGION};

const GROUPS: usize = 5;
/// us-east-1 on-demand, per million request units (check the current price list).
const WRITE_PRICE: f64 = 0.625;
const READ_PRICE: f64 = 0.125;

#[derive(Default)]
struct Tally {
    /// Requests by service and operation.
    requests: BTreeMap<String, usize>,
    write_units: usize,
    read_units: usize,
}

impl Tally {
    fn of(recorded: &[RecordedRequest]) -> Self {
        let mut t = Tally::default();
        for r in recorded {
            let body = String::from_utf8_lossy(&r.body_bytes()).into_owned();
            let target = r
                .headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("x-amz-target"))
                .map(|(_, v)| v.clone());
            let name = match target {
                Some(t) if t.starts_with("DynamoDB_") => {
                    format!("dynamodb {}", t.split('.').nth(1).unwrap_or("?"))
                }
                Some(t) if t.starts_with("AmazonSQS") => {
                    format!("sqs {}", t.split('.').nth(1).unwrap_or("?"))
                }
                Some(t) => t,
                None => match body.split('&').find_map(|kv| kv.strip_prefix("Action=")) {
                    Some(a) => format!("ec2/sts {a}"),
                    None => continue,
                },
            };
            // Items of 1 KB or less: a transaction bills two units per item.
            let items = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["TransactItems"].as_array().map(Vec::len))
                .unwrap_or(1);
            match name.as_str() {
                "dynamodb TransactWriteItems" => t.write_units += 2 * items,
                "dynamodb PutItem" | "dynamodb UpdateItem" | "dynamodb DeleteItem" => {
                    t.write_units += 1
                }
                "dynamodb BatchWriteItem" => {
                    t.write_units += serde_json::from_str::<serde_json::Value>(&body)
                        .ok()
                        .and_then(|v| {
                            v["RequestItems"].as_object().map(|o| {
                                o.values().filter_map(|a| a.as_array()).map(Vec::len).sum()
                            })
                        })
                        .unwrap_or(1)
                }
                n if n.starts_with("dynamodb ") => t.read_units += 1,
                _ => {}
            }
            *t.requests.entry(name).or_default() += 1;
        }
        t
    }

    fn print(&self, phase: &str, sessions: usize, entries: usize) {
        println!("\n{phase}: {sessions} sessions, {entries} entries");
        println!("| request | total | per session | per entry |");
        println!("|---|---|---|---|");
        for (name, n) in &self.requests {
            println!(
                "| {name} | {n} | {:.2} | {:.2} |",
                *n as f64 / sessions as f64,
                *n as f64 / entries as f64
            );
        }
        let writes: usize = self
            .requests
            .iter()
            .filter(|(k, _)| {
                [
                    "TransactWriteItems",
                    "PutItem",
                    "UpdateItem",
                    "DeleteItem",
                    "BatchWriteItem",
                ]
                .iter()
                .any(|w| k.as_str() == format!("dynamodb {w}"))
            })
            .map(|(_, n)| n)
            .sum();
        println!(
            "DynamoDB write requests per entry: {:.2}; write units per entry: {:.2}; read units per entry: {:.2}",
            writes as f64 / entries as f64,
            self.write_units as f64 / entries as f64,
            self.read_units as f64 / entries as f64
        );
    }
}

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
    let units_write = (apply.write_units + remove.write_units) as f64 / users as f64;
    let units_read = (apply.read_units + remove.read_units) as f64 / users as f64;
    println!(
        "\nper 1,000 sessions of {GROUPS} entries: {:.0} write units, {:.0} read units: ${:.4} at ${WRITE_PRICE}/M writes and ${READ_PRICE}/M reads",
        units_write * 1000.0,
        units_read * 1000.0,
        units_write * 1000.0 * WRITE_PRICE / 1e6 + units_read * 1000.0 * READ_PRICE / 1e6
    );
}
