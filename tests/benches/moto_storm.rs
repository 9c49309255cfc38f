//! A storm through the local runner on the AWS backend (`--backend aws`, DynamoDB, SQS and EC2 on
//! moto), as a new user would try it: an admin connects an account, adds `GROUPS` security
//! groups as resources and `USERS` members with access to all of them; every member starts a
//! session at once from an address of their own (127.0.1.n), then stops it. Printed: how long
//! until every session is ACTIVE and until every one is CANCELLED with its rules gone (moto's
//! time, not AWS's), EC2 authorize and revoke calls per security group, and every request moto
//! saw, per phase, by type, per session and per entry, with the cost per 1,000 sessions at
//! on-demand prices.
//!
//! `cargo test -p entryguard-tests --bench moto_storm` (`ENTRYGUARD_BENCH_USERS=N`, default 50).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::future::join_all;
use serde_json::{json, Value};

use entryguard_local::{AwsConfig, Backend};
use entryguard_tests::moto::{AwsFixture, RecordedRequest, REGION};
use entryguard_tests::requests::{ec2_calls_per_group, print_cost, Tally};
use entryguard_tests::server::TestServer;

const GROUPS: usize = 5;
const ADMIN: &str = "boss@storm.example";
/// How long a phase may take before the bench gives up and says so.
const PHASE_LIMIT: Duration = Duration::from_secs(900);

struct Member {
    token: String,
    /// A client whose requests come from the member's own address.
    client: reqwest::Client,
}

fn member_address(n: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        127,
        0,
        1 + (n / 250) as u8,
        1 + (n % 250) as u8,
    ))
}

/// Requests answered 503 (moto too slow for the SDK's timeouts) and sent again, as the error
/// body asks a client to.
static RETRIED: AtomicUsize = AtomicUsize::new(0);

async fn call(s: &TestServer, m: &Member, method: reqwest::Method, path: String) -> Value {
    let mut retried = false;
    for _ in 0..10 {
        let mut request = m
            .client
            .request(method.clone(), s.url(&path))
            .bearer_auth(&m.token);
        if method == reqwest::Method::POST && path == "/api/sessions" {
            request = request.json(&json!({"durationHours": 2}));
        }
        let r = request.send().await.expect("request sent");
        let status = r.status().as_u16();
        let text = r.text().await.expect("a body");
        if status == 503 {
            RETRIED.fetch_add(1, Ordering::Relaxed);
            retried = true;
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        // A stop sent again after a 503 whose first attempt had landed finds it stopping.
        let stopped_before = retried && status == 409 && path.ends_with("/stop");
        assert!(
            status < 300 || stopped_before,
            "{method} {path}: {status} {text}"
        );
        return serde_json::from_str(&text).unwrap_or(Value::Null);
    }
    panic!("{method} {path}: 503 ten times");
}

/// Waits (at most the phase limit) until the runner has counted `users` sessions settled —
/// ACTIVE, PARTIAL or FAILED — from its in-process metrics, which cost moto no request.
async fn wait_settled(s: &TestServer, users: usize) {
    let deadline = Instant::now() + PHASE_LIMIT;
    loop {
        let m = s.get(None, "/api/dev/metrics").await.ok(200).clone();
        let sum = |name: &str| m[name]["sum"].as_f64().unwrap_or(0.0) as usize;
        if sum("SessionsActive") + sum("SessionsPartial") + sum("SessionsFailed") >= users
            || Instant::now() > deadline
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits (at most the phase limit) until the task queue has nothing waiting or in flight twice
/// in a row. Its `GetQueueAttributes` calls are the bench's own and left out of the tally.
async fn wait_drained(fx: &AwsFixture) {
    let deadline = Instant::now() + PHASE_LIMIT;
    let mut empty = 0;
    while empty < 2 && Instant::now() < deadline {
        empty = if fx.queue_depth().await == (0, 0) {
            empty + 1
        } else {
            0
        };
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The system's requests: all moto recorded but the bench's own queue polling.
fn system_requests(fx: &AwsFixture) -> Vec<RecordedRequest> {
    fx.moto
        .recording()
        .into_iter()
        .filter(|r| {
            !r.headers.iter().any(|(k, v)| {
                k.eq_ignore_ascii_case("x-amz-target") && v.ends_with(".GetQueueAttributes")
            })
        })
        .collect()
}

/// Each session's status, by status.
async fn statuses(s: &TestServer, members: &[Member], ids: &[String]) -> BTreeMap<String, usize> {
    let mut by_status = BTreeMap::new();
    for (m, id) in members.iter().zip(ids) {
        let v = call(s, m, reqwest::Method::GET, format!("/api/sessions/{id}")).await;
        *by_status
            .entry(v["status"].as_str().unwrap_or("?").to_owned())
            .or_default() += 1;
    }
    by_status
}

async fn managed_rules(fx: &AwsFixture, groups: &[String]) -> usize {
    let mut managed = 0;
    for sg in groups {
        let rules = fx.rules(&sg.parse().unwrap()).await;
        managed += rules.iter().filter(|r| r.is_managed()).count();
    }
    managed
}

fn print_calls(what: &str, per_group: &BTreeMap<String, usize>) {
    let most = per_group.values().copied().max().unwrap_or(0);
    let total: usize = per_group.values().sum();
    println!("  {what}: {total} calls, at most {most} on one group ({per_group:?})");
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let users: usize = std::env::var("ENTRYGUARD_BENCH_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let fx = AwsFixture::start("eg-storm").await;
    let mut groups = Vec::new();
    for g in 0..GROUPS {
        groups.push(fx.security_group(&format!("storm-{g}")).await.to_string());
    }
    let s = TestServer::start_on(Backend::Aws(AwsConfig {
        sdk: fx.moto.options(),
        names: fx.names.clone(),
        provision: false,
        bootstrap_admin: Some(ADMIN.parse().unwrap()),
        seed_demo: false,
    }))
    .await;
    let admin = s.login(ADMIN).await;
    // Enough concurrent sessions and resources for the storm; plans are the operator's.
    s.set_plan(&admin, "BUSINESS").await;
    let credential = s
        .post(
            &admin,
            "/api/admin/credentials",
            json!({"name": "prod", "provider": "aws", "region": REGION,
                   "accessKeyId": "AKIAMOTOTEST0000", "secretAccessKey": "moto-secret"}),
        )
        .await;
    let credential_id = credential.ok(201)["id"].as_str().unwrap().to_owned();
    let mut resource_ids = Vec::new();
    for (g, sg) in groups.iter().enumerate() {
        let r = s
            .post(
                &admin,
                "/api/admin/resources",
                json!({"name": format!("service {g}"), "credentialId": credential_id,
                       "securityGroupId": sg, "region": REGION,
                       "ports": [{"protocol": "tcp", "fromPort": 22, "toPort": 22}]}),
            )
            .await;
        resource_ids.push(r.ok(201)["id"].as_str().unwrap().to_owned());
    }
    let mut members = Vec::new();
    for n in 0..users {
        let email = format!("user{n}@storm.example");
        s.post(
            &admin,
            "/api/admin/users",
            json!({"email": email, "isAdmin": false, "resourceIds": resource_ids}),
        )
        .await
        .ok(201);
        members.push(Member {
            token: s.login(&email).await,
            client: reqwest::Client::builder()
                .local_address(member_address(n))
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
        });
    }

    fx.moto.start_recording().await;
    let started = Instant::now();
    let sessions = join_all(
        members
            .iter()
            .map(|m| call(&s, m, reqwest::Method::POST, "/api/sessions".into())),
    )
    .await;
    let ids: Vec<String> = sessions
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_owned())
        .collect();
    wait_settled(&s, users).await;
    let apply_time = started.elapsed();
    let apply_recorded = system_requests(&fx);
    let apply = Tally::of(&apply_recorded);
    let after_start = statuses(&s, &members, &ids).await;
    let managed = managed_rules(&fx, &groups).await;

    fx.moto.start_recording().await;
    let stopping = Instant::now();
    join_all(members.iter().zip(&ids).map(|(m, id)| {
        call(
            &s,
            m,
            reqwest::Method::POST,
            format!("/api/sessions/{id}/stop"),
        )
    }))
    .await;
    wait_drained(&fx).await;
    let remove_time = stopping.elapsed();
    let remove_recorded = system_requests(&fx);
    let remove = Tally::of(&remove_recorded);
    let after_stop = statuses(&s, &members, &ids).await;
    let left = managed_rules(&fx, &groups).await;

    let entries = users * GROUPS;
    println!(
        "moto storm through the local runner (--backend aws): {users} users from {users} addresses x {GROUPS} groups = {entries} rules"
    );
    println!(
        "start: {after_start:?} after {:.1} s (moto's time); {managed} EntryGuard rules in the groups",
        apply_time.as_secs_f64()
    );
    print_calls(
        "AuthorizeSecurityGroupIngress",
        &ec2_calls_per_group(&apply_recorded, "AuthorizeSecurityGroupIngress"),
    );
    println!(
        "stop: {after_stop:?} and {left} EntryGuard rules left after {:.1} s",
        remove_time.as_secs_f64()
    );
    print_calls(
        "RevokeSecurityGroupIngress",
        &ec2_calls_per_group(&remove_recorded, "RevokeSecurityGroupIngress"),
    );
    apply.print(
        "start until settled (API + worker + a sweep every second)",
        users,
        entries,
    );
    remove.print(
        "stop until the queue is empty (API + worker + a sweep every second)",
        users,
        entries,
    );
    print_cost(&apply, &remove, users, GROUPS);
    println!(
        "requests answered 503 and sent again: {}",
        RETRIED.load(Ordering::Relaxed)
    );
    assert_eq!(
        after_start.get("ACTIVE"),
        Some(&users),
        "every session ACTIVE"
    );
    assert_eq!(
        after_stop.get("CANCELLED"),
        Some(&users),
        "every session CANCELLED"
    );
    assert_eq!(left, 0, "every rule gone after the stop");
}
