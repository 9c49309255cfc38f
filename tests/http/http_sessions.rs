//! The session lifecycle over HTTP against the real local runner: start, apply, stop, expiry,
//! extension, reference counting, a failing resource and concurrent starts.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, FixedOffset};
use reqwest::Method;
use serde_json::{json, Value};

use entryguard::domain::ids::SessionId;
use entryguard::domain::session::SessionStatus;
use entryguard_tests::server::{TestServer, ADMIN, DEMO_GROUPS, MEMBER, REGION, SPARE_GROUPS};

type Firewall = BTreeMap<String, Vec<(String, u64, u64, String)>>;

fn time(v: &Value) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a time: {v}")))
        .unwrap_or_else(|e| panic!("not an RFC 3339 time: {v}: {e}"))
}

fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect()
}

fn statuses(session: &Value) -> Vec<&str> {
    session["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect()
}

/// The demo groups with the member's rule on each, the spare groups untouched.
fn opened_for_localhost(baseline: &Firewall) -> Firewall {
    let mut expected = baseline.clone();
    for (sg, port) in DEMO_GROUPS.iter().zip([22u64, 5432, 443]) {
        expected
            .get_mut(*sg)
            .unwrap()
            .push(("tcp".into(), port, port, "127.0.0.1/32".into()));
    }
    expected
}

async fn empty_baseline(s: &TestServer) -> Firewall {
    let baseline = s.firewall().await;
    let groups: BTreeSet<&str> = baseline.keys().map(String::as_str).collect();
    let expected: BTreeSet<&str> = DEMO_GROUPS.iter().chain(&SPARE_GROUPS).copied().collect();
    assert_eq!(groups, expected);
    assert!(baseline.values().all(Vec::is_empty), "{baseline:?}");
    baseline
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn member_walk_through_start_apply_stop_restores_the_firewall() {
    let s = TestServer::start().await;
    let baseline = empty_baseline(&s).await;
    let token = s.login(MEMBER).await;

    let me = s.get(Some(&token), "/api/me").await;
    let me = me.ok(200).clone();
    assert_eq!(
        keys(&me),
        BTreeSet::from([
            "user",
            "organization",
            "allowedDurationsHours",
            "maxSessionDurationHours",
            "maxConcurrentSessions",
            "resourceCount"
        ])
    );
    assert_eq!(
        keys(&me["user"]),
        BTreeSet::from(["id", "email", "isAdmin"])
    );
    assert_eq!(me["user"]["email"], "dev@example.com");
    assert_eq!(me["user"]["isAdmin"], false);
    assert_eq!(
        keys(&me["organization"]),
        BTreeSet::from(["id", "name", "tier", "status", "ipv6Prefix"])
    );
    assert_eq!(me["organization"]["name"], "Demo Org");
    assert_eq!(me["organization"]["status"], "ACTIVE");
    assert_eq!(me["organization"]["tier"], "TEAM");
    assert_eq!(me["allowedDurationsHours"], json!([1, 2, 4, 8, 12, 16, 24]));
    assert_eq!(me["maxSessionDurationHours"], json!(24));
    assert_eq!(me["maxConcurrentSessions"], Value::Null);
    assert_eq!(me["resourceCount"], json!(3));
    let user_id = me["user"]["id"].as_str().unwrap().to_owned();
    uuid::Uuid::parse_str(&user_id).expect("user id is a uuid");

    let r = s
        .post(&token, "/api/sessions", json!({"durationHours": 2}))
        .await;
    let started = r.ok(202).clone();
    assert_eq!(
        keys(&started),
        BTreeSet::from([
            "id",
            "userId",
            "status",
            "ipAddresses",
            "resourceCount",
            "createdAt",
            "expiresAt",
            "endedAt",
            "resources",
            "stoppedBy"
        ])
    );
    assert_eq!(started["status"], "PENDING");
    assert_eq!(started["stoppedBy"], Value::Null);
    assert_eq!(started["userId"], json!(user_id));
    assert_eq!(
        started["ipAddresses"],
        json!([{"address": "127.0.0.1", "version": "v4"}])
    );
    assert_eq!(started["resourceCount"], json!(3));
    assert_eq!(started["endedAt"], Value::Null);
    assert_eq!(
        time(&started["expiresAt"]) - time(&started["createdAt"]),
        Duration::hours(2)
    );
    let entries = started["resources"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    let names: BTreeSet<&str> = entries
        .iter()
        .map(|e| e["resourceName"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "Bastion host (SSH)",
            "Production database",
            "Internal admin console"
        ])
    );
    for e in entries {
        assert_eq!(
            keys(e),
            BTreeSet::from([
                "resourceId",
                "resourceName",
                "ip",
                "cidr",
                "status",
                "error"
            ])
        );
        assert_eq!(e["ip"], "127.0.0.1");
        assert_eq!(e["cidr"], "127.0.0.1/32");
        assert_eq!(e["status"], "PENDING");
        assert_eq!(e["error"], Value::Null);
    }
    let id = started["id"].as_str().unwrap().to_owned();

    let active = s.wait_status(&token, &id, "ACTIVE").await;
    assert_eq!(statuses(&active), vec!["APPLIED"; 3]);
    assert!(active["resources"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["error"].is_null()));
    assert_eq!(active["createdAt"], started["createdAt"]);
    assert_eq!(active["expiresAt"], started["expiresAt"]);
    assert_eq!(s.firewall().await, opened_for_localhost(&baseline));
    // Every rule EntryGuard creates names whom it is for and until when (to the minute).
    let until = &active["expiresAt"].as_str().unwrap()[..16];
    let raw = s.get(None, "/api/dev/firewall").await;
    for g in raw.ok(200).as_array().unwrap() {
        for rule in g["rules"].as_array().unwrap() {
            assert_eq!(
                rule["description"],
                format!("EntryGuard {MEMBER} until {until}Z")
            );
        }
    }

    let list = s.get(Some(&token), "/api/sessions").await;
    let list = list.ok(200).as_array().unwrap().clone();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["id"], json!(id));
    assert_eq!(list[0]["status"], "ACTIVE");

    let stop = s
        .call(
            Method::POST,
            Some(&token),
            &format!("/api/sessions/{id}/stop"),
            None,
        )
        .await;
    let stopping = stop.ok(202);
    assert_eq!(stopping["id"], json!(id));
    assert_eq!(stopping["status"], "EXPIRING", "{}", stop.text);
    let cancelled = s.wait_status(&token, &id, "CANCELLED").await;
    assert_eq!(statuses(&cancelled), vec!["REMOVED"; 3]);
    assert!(!cancelled["endedAt"].is_null());
    s.wait_firewall("the rules to be removed", &baseline).await;
    assert_eq!(s.firewall().await, baseline);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_session_past_its_expiry_ends_expired_and_its_rules_are_removed() {
    let s = TestServer::start().await;
    let baseline = empty_baseline(&s).await;
    let token = s.login(MEMBER).await;
    let active = s.settled_session(&token, 2, "ACTIVE").await;
    let id = active["id"].as_str().unwrap().to_owned();
    assert_eq!(s.firewall().await, opened_for_localhost(&baseline));

    // A minute short of the expiry nothing happens.
    s.advance_clock(2 * 3600 - 60).await;
    let still = s.get(Some(&token), &format!("/api/sessions/{id}")).await;
    assert_eq!(still.ok(200)["status"], "ACTIVE");

    s.advance_clock(61).await;
    let expired = s.wait_status(&token, &id, "EXPIRED").await;
    assert_eq!(statuses(&expired), vec!["REMOVED"; 3]);
    assert!(!expired["endedAt"].is_null());
    s.wait_firewall("the expired session's rules to be removed", &baseline)
        .await;

    // The sweeper recorded the expiry.
    let admin = s.login(ADMIN).await;
    let items = s
        .wait_audit(&admin, "?type=session.expired&limit=200", 1)
        .await;
    assert_eq!(items[0]["sessionId"], json!(id));
    assert_eq!(items[0]["actorId"], Value::Null);

    // An expired session can neither be stopped nor extended.
    let stop = s
        .call(
            Method::POST,
            Some(&token),
            &format!("/api/sessions/{id}/stop"),
            None,
        )
        .await;
    stop.err(409, "SESSION_NOT_STOPPABLE");
    let extend = s
        .call(
            Method::POST,
            Some(&token),
            &format!("/api/sessions/{id}/extend"),
            None,
        )
        .await;
    extend.err(409, "SESSION_NOT_EXTENDABLE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn extend_moves_the_expiry_by_two_hours_with_and_without_a_body() {
    let s = TestServer::start().await;
    let token = s.login(MEMBER).await;
    let active = s.settled_session(&token, 2, "ACTIVE").await;
    let id = active["id"].as_str().unwrap().to_owned();
    let path = format!("/api/sessions/{id}/extend");
    let created = time(&active["createdAt"]);
    let mut expires = time(&active["expiresAt"]);

    // No body at all: the default +2 h.
    let r = s.call(Method::POST, Some(&token), &path, None).await;
    let extended = r.ok(200).clone();
    assert_eq!(time(&extended["expiresAt"]) - expires, Duration::hours(2));
    assert_eq!(time(&extended["createdAt"]), created);
    assert_eq!(extended["status"], "ACTIVE");
    expires = time(&extended["expiresAt"]);

    // An empty body that says it is JSON: also the default.
    let r = s
        .send(
            "extend with an empty JSON body",
            s.client
                .post(s.url(&path))
                .bearer_auth(&token)
                .header("content-type", "application/json"),
        )
        .await;
    assert_eq!(time(&r.ok(200)["expiresAt"]) - expires, Duration::hours(2));
    expires = time(&r.json["expiresAt"]);

    // An explicit {"hours": 2}.
    let r = s.post(&token, &path, json!({"hours": 2})).await;
    assert_eq!(time(&r.ok(200)["expiresAt"]) - expires, Duration::hours(2));
    expires = time(&r.json["expiresAt"]);

    // `{}`: hours defaults to 2.
    let r = s.post(&token, &path, json!({})).await;
    assert_eq!(time(&r.ok(200)["expiresAt"]) - expires, Duration::hours(2));
    expires = time(&r.json["expiresAt"]);
    assert_eq!(expires - created, Duration::hours(10));

    // The session as stored agrees.
    let got = s.get(Some(&token), &format!("/api/sessions/{id}")).await;
    assert_eq!(time(&got.ok(200)["expiresAt"]), expires);
    assert_eq!(got.json["status"], "ACTIVE");

    // Up to exactly the 24 h maximum, then no further.
    let r = s.post(&token, &path, json!({"hours": 14})).await;
    assert_eq!(time(&r.ok(200)["expiresAt"]) - created, Duration::hours(24));
    let r = s.post(&token, &path, json!({"hours": 1})).await;
    r.err(400, "EXTENSION_EXCEEDS_MAXIMUM");
    let got = s.get(Some(&token), &format!("/api/sessions/{id}")).await;
    assert_eq!(
        time(&got.ok(200)["expiresAt"]) - created,
        Duration::hours(24)
    );

    // The audit log has one session.extended per extension.
    let admin = s.login(ADMIN).await;
    let audit = s
        .get(
            Some(&admin),
            "/api/admin/audit-logs?type=session.extended&limit=200",
        )
        .await;
    assert_eq!(audit.ok(200)["items"].as_array().unwrap().len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_sessions_of_one_member_share_one_rule_per_group() {
    let s = TestServer::start().await;
    let baseline = empty_baseline(&s).await;
    let token = s.login(MEMBER).await;
    let opened = opened_for_localhost(&baseline);

    let first = s.settled_session(&token, 2, "ACTIVE").await;
    let second = s.settled_session(&token, 4, "ACTIVE").await;
    assert_ne!(first["id"], second["id"]);
    assert_eq!(s.firewall().await, opened, "one rule per group, not two");

    let first_id = first["id"].as_str().unwrap();
    let second_id = second["id"].as_str().unwrap();
    let stopped = s.stop_and_wait(&token, first_id).await;
    assert_eq!(statuses(&stopped), vec!["REMOVED"; 3]);
    assert_eq!(
        s.firewall().await,
        opened,
        "the second session still holds the rules"
    );
    let still = s
        .get(Some(&token), &format!("/api/sessions/{second_id}"))
        .await;
    assert_eq!(still.ok(200)["status"], "ACTIVE");
    assert_eq!(statuses(&still.json), vec!["APPLIED"; 3]);

    s.stop_and_wait(&token, second_id).await;
    s.wait_firewall("the last holder to remove the rules", &baseline)
        .await;

    // Newest first.
    let list = s.get(Some(&token), "/api/sessions").await;
    let ids: Vec<&str> = list
        .ok(200)
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![second_id, first_id]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_resource_on_a_missing_security_group_makes_the_session_partial() {
    let s = TestServer::start().await;
    let baseline = empty_baseline(&s).await;
    let admin = s.login(ADMIN).await;
    let member = s.login(MEMBER).await;
    let credential = s
        .find(&admin, "/api/admin/credentials", "name", "Simulated cloud")
        .await;
    let r = s
        .post(
            &admin,
            "/api/admin/resources",
            json!({
                "name": "ghost",
                "credentialId": credential["id"],
                "securityGroupId": "sg-0123456789abcdef0",
                "region": REGION,
                "ports": [{"protocol": "tcp", "fromPort": 8443, "toPort": 8443}],
            }),
        )
        .await;
    let ghost = r.ok(201)["id"].as_str().unwrap().to_owned();
    let role = s
        .find(&admin, "/api/admin/roles", "name", "Developers")
        .await;
    let mut resource_ids: Vec<Value> = role["resourceIds"].as_array().unwrap().clone();
    resource_ids.push(json!(ghost));
    let r = s
        .patch(
            &admin,
            &format!("/api/admin/roles/{}", role["id"].as_str().unwrap()),
            json!({"resourceIds": resource_ids}),
        )
        .await;
    assert_eq!(r.ok(200)["resourceIds"].as_array().unwrap().len(), 4);
    let me = s.get(Some(&member), "/api/me").await;
    assert_eq!(me.ok(200)["resourceCount"], json!(4));

    let started = s.start_session(&member, 2).await;
    assert_eq!(started["resourceCount"], json!(4));
    let id = started["id"].as_str().unwrap().to_owned();
    let partial = s.wait_status(&member, &id, "PARTIAL").await;
    let m = s.get(None, "/api/dev/metrics").await.ok(200).clone();
    assert_eq!(m["SessionsPartial"]["sum"], json!(1.0), "{m}");
    assert!(m.get("SessionsActive").is_none(), "{m}");
    let mut seen = 0;
    for e in partial["resources"].as_array().unwrap() {
        if e["resourceId"] == json!(ghost) {
            seen += 1;
            assert_eq!(e["status"], "FAILED", "{partial}");
            assert_eq!(e["resourceName"], "ghost");
            let error = e["error"].as_str().expect("the failure is explained");
            assert!(
                error.contains("sg-0123456789abcdef0") && error.contains("not found"),
                "{error}"
            );
        } else {
            assert_eq!(e["status"], "APPLIED", "{partial}");
            assert_eq!(e["error"], Value::Null);
        }
    }
    assert_eq!(seen, 1);
    assert_eq!(
        s.firewall().await,
        opened_for_localhost(&baseline),
        "the other resources are open; no group appeared"
    );

    let items = s.wait_audit(&admin, "?type=rule.failed", 1).await;
    assert_eq!(items[0]["resourceId"], json!(ghost));
    assert_eq!(items[0]["sessionId"], json!(id));
    assert_eq!(items[0]["outcome"], "FAILURE");

    // A partial session can be extended ...
    let r = s
        .call(
            Method::POST,
            Some(&member),
            &format!("/api/sessions/{id}/extend"),
            None,
        )
        .await;
    assert_eq!(
        time(&r.ok(200)["expiresAt"]) - time(&partial["expiresAt"]),
        Duration::hours(2)
    );
    assert_eq!(r.json["status"], "PARTIAL");

    // ... and stopped; the failed entry stays failed.
    let cancelled = s.stop_and_wait(&member, &id).await;
    for e in cancelled["resources"].as_array().unwrap() {
        let want = if e["resourceId"] == json!(ghost) {
            "FAILED"
        } else {
            "REMOVED"
        };
        assert_eq!(e["status"], want, "{cancelled}");
    }
    s.wait_firewall("the applied rules to be removed", &baseline)
        .await;
}

async fn concurrent_starts(tier: &str, expected_winners: usize) {
    let s = TestServer::start().await;
    let admin = s.login(ADMIN).await;
    s.set_plan(&admin, tier).await;
    let member = s.login(MEMBER).await;

    let attempts = (0..8).map(|_| async {
        // A client per request: eight connections, so the requests really overlap.
        let client = reqwest::Client::new();
        s.send(
            "concurrent start",
            client
                .post(s.url("/api/sessions"))
                .bearer_auth(&member)
                .json(&json!({"durationHours": 2})),
        )
        .await
    });
    let answers = futures::future::join_all(attempts).await;
    let mut winners = Vec::new();
    for a in &answers {
        if a.status == 202 {
            assert_eq!(a.json["status"], "PENDING");
            winners.push(a.json["id"].as_str().unwrap().to_owned());
        } else {
            a.err(409, "CONCURRENT_SESSION_LIMIT");
        }
    }
    assert_eq!(
        winners.len(),
        expected_winners,
        "{:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    let list = s.get(Some(&member), "/api/sessions").await;
    let listed: BTreeSet<String> = list
        .ok(200)
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, winners.iter().cloned().collect());

    // The slots are given back when the sessions end.
    for id in &winners {
        s.wait_status(&member, id, "ACTIVE").await;
        s.stop_and_wait(&member, id).await;
    }
    s.start_session(&member, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_simultaneous_starts_on_the_free_tier_yield_exactly_one_session() {
    concurrent_starts("FREE", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_simultaneous_starts_on_the_starter_tier_yield_exactly_three_sessions() {
    concurrent_starts("STARTER", 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleting_a_user_with_a_live_session_stops_it_and_removes_its_rules() {
    let s = TestServer::start().await;
    let baseline = empty_baseline(&s).await;
    let admin = s.login(ADMIN).await;
    let member = s.login(MEMBER).await;
    let active = s.settled_session(&member, 8, "ACTIVE").await;
    let id = active["id"].as_str().unwrap().to_owned();
    assert_eq!(s.firewall().await, opened_for_localhost(&baseline));
    let user = s.find(&admin, "/api/admin/users", "email", MEMBER).await;
    let user_id = user["id"].as_str().unwrap().to_owned();

    let r = s
        .delete(&admin, &format!("/api/admin/users/{user_id}"))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(r.text.is_empty());
    s.wait_firewall("the deleted user's rules to be removed", &baseline)
        .await;

    let session_id: SessionId = id.parse().unwrap();
    let stored = s.eventually("the session to be cancelled", || async {
        let session = s
            .app
            .store
            .get_session(session_id)
            .await
            .unwrap()
            .expect("the session record is kept");
        if session.status() == SessionStatus::Cancelled {
            Ok(session)
        } else {
            Err(format!("{:?}", session.status()))
        }
    });
    let stored = stored.await;
    assert!(stored.ended_at.is_some());

    // The user is gone: from the list, from the role, and their token no longer works.
    assert!(!s.ids(&admin, "/api/admin/users").await.contains(&user_id));
    let role = s
        .find(&admin, "/api/admin/roles", "name", "Developers")
        .await;
    assert_eq!(role["userIds"], json!([]));
    let me = s.get(Some(&member), "/api/me").await;
    me.err(401, "UNAUTHENTICATED");
    let again = s
        .delete(&admin, &format!("/api/admin/users/{user_id}"))
        .await;
    again.err(404, "NOT_FOUND");
    let audit = s
        .get(Some(&admin), "/api/admin/audit-logs?type=admin.change")
        .await;
    let messages: Vec<&str> = audit.ok(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert!(
        messages.contains(&"Deleted user dev@example.com and stopped 1 live session(s)"),
        "{messages:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simultaneous_stops_of_one_session_succeed_exactly_once() {
    let s = TestServer::start().await;
    let baseline = empty_baseline(&s).await;
    let token = s.login(MEMBER).await;
    let active = s.settled_session(&token, 2, "ACTIVE").await;
    let id = active["id"].as_str().unwrap().to_owned();
    let path = format!("/api/sessions/{id}/stop");
    let answers = futures::future::join_all((0..8).map(|_| async {
        let client = reqwest::Client::new();
        s.send(
            "concurrent stop",
            client.post(s.url(&path)).bearer_auth(&token),
        )
        .await
    }))
    .await;
    let accepted = answers.iter().filter(|a| a.status == 202).count();
    assert_eq!(
        accepted,
        1,
        "{:?}",
        answers.iter().map(|a| &a.text).collect::<Vec<_>>()
    );
    for a in answers.iter().filter(|a| a.status != 202) {
        a.err(409, "SESSION_NOT_STOPPABLE");
    }
    s.wait_status(&token, &id, "CANCELLED").await;
    s.wait_firewall("the rules to be removed", &baseline).await;
    let admin = s.login(ADMIN).await;
    let audit = s
        .get(Some(&admin), "/api/admin/audit-logs?type=session.stopped")
        .await;
    assert_eq!(audit.ok(200)["items"].as_array().unwrap().len(), 1);
    s.wait_audit(&admin, "?type=rule.removed", 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simultaneous_extensions_never_pass_the_maximum() {
    let s = TestServer::start().await;
    let admin = s.login(ADMIN).await;
    s.set_plan(&admin, "FREE").await;
    let token = s.login(MEMBER).await;
    let active = s.settled_session(&token, 1, "ACTIVE").await;
    let id = active["id"].as_str().unwrap().to_owned();
    let path = format!("/api/sessions/{id}/extend");
    let answers = futures::future::join_all((0..8).map(|_| async {
        let client = reqwest::Client::new();
        s.send(
            "concurrent extend",
            client
                .post(s.url(&path))
                .bearer_auth(&token)
                .json(&json!({"hours": 1})),
        )
        .await
    }))
    .await;
    // 1 h + three 1 h extensions reach the FREE plan's 4 h; the rest are refused.
    let accepted = answers.iter().filter(|a| a.status == 200).count();
    assert_eq!(
        accepted,
        3,
        "{:?}",
        answers.iter().map(|a| &a.text).collect::<Vec<_>>()
    );
    for a in answers.iter().filter(|a| a.status != 200) {
        a.err(400, "EXTENSION_EXCEEDS_MAXIMUM");
    }
    let got = s.get(Some(&token), &format!("/api/sessions/{id}")).await;
    assert_eq!(
        time(&got.ok(200)["expiresAt"]) - time(&got.json["createdAt"]),
        Duration::hours(4)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stopping_a_session_while_its_rules_are_being_applied_leaves_no_rule_behind() {
    let s = TestServer::start().await;
    let baseline = empty_baseline(&s).await;
    let token = s.login(MEMBER).await;
    s.sim.set_latency(std::time::Duration::from_millis(700));
    let started = s.start_session(&token, 2).await;
    let id = started["id"].as_str().unwrap().to_owned();
    // Wait until the worker is in the middle of applying.
    s.eventually("an entry to be APPLYING", || async {
        let r = s.get(Some(&token), &format!("/api/sessions/{id}")).await;
        let session = r.ok(200).clone();
        if statuses(&session).contains(&"APPLYING") {
            Ok(())
        } else {
            Err(r.text)
        }
    })
    .await;
    let pending = s.get(Some(&token), &format!("/api/sessions/{id}")).await;
    assert_eq!(pending.ok(200)["status"], "PENDING");
    // Not extendable while pending.
    let r = s
        .call(
            Method::POST,
            Some(&token),
            &format!("/api/sessions/{id}/extend"),
            None,
        )
        .await;
    assert_eq!(
        r.err(409, "SESSION_NOT_EXTENDABLE")["message"],
        "Only ACTIVE or PARTIAL sessions that have not expired can be extended; this one is PENDING"
    );
    let stop = s
        .call(
            Method::POST,
            Some(&token),
            &format!("/api/sessions/{id}/stop"),
            None,
        )
        .await;
    assert_eq!(stop.ok(202)["status"], "EXPIRING", "{}", stop.text);
    let cancelled = s.wait_status(&token, &id, "CANCELLED").await;
    assert!(statuses(&cancelled).iter().all(|st| *st == "REMOVED"));
    s.wait_firewall("every rule applied after the stop to be removed", &baseline)
        .await;
    s.sim.set_latency(std::time::Duration::ZERO);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_session_whose_every_resource_fails_ends_failed_and_frees_its_slot() {
    let s = TestServer::start().await;
    let baseline = empty_baseline(&s).await;
    let admin = s.login(ADMIN).await;
    s.set_plan(&admin, "FREE").await;
    let credential = s
        .find(&admin, "/api/admin/credentials", "name", "Simulated cloud")
        .await;
    let r = s
        .post(
            &admin,
            "/api/admin/resources",
            json!({
                "name": "ghost",
                "credentialId": credential["id"],
                "securityGroupId": "sg-0123456789abcdef0",
                "region": REGION,
                "ports": [{"protocol": "tcp", "fromPort": 22, "toPort": 22}],
            }),
        )
        .await;
    let ghost = r.ok(201)["id"].clone();
    s.post(
        &admin,
        "/api/admin/users",
        json!({"email": "unlucky@example.com", "resourceIds": [ghost]}),
    )
    .await
    .ok(201);
    let token = s.login("unlucky@example.com").await;
    let failed = s.settled_session(&token, 1, "FAILED").await;
    assert_eq!(statuses(&failed), vec!["FAILED"]);
    assert!(!failed["endedAt"].is_null());
    let id = failed["id"].as_str().unwrap();
    s.call(
        Method::POST,
        Some(&token),
        &format!("/api/sessions/{id}/stop"),
        None,
    )
    .await
    .err(409, "SESSION_NOT_STOPPABLE");
    s.call(
        Method::POST,
        Some(&token),
        &format!("/api/sessions/{id}/extend"),
        None,
    )
    .await
    .err(409, "SESSION_NOT_EXTENDABLE");
    // A failed session does not count against the FREE plan's single slot.
    let again = s.settled_session(&token, 1, "FAILED").await;
    assert_ne!(again["id"], failed["id"]);
    assert_eq!(s.firewall().await, baseline);
    // Both counted once as FAILED, neither as ACTIVE or PARTIAL.
    let m = s.get(None, "/api/dev/metrics").await.ok(200).clone();
    assert_eq!(m["SessionsFailed"]["sum"], json!(2.0), "{m}");
    assert_eq!(m["SessionsStarted"]["sum"], json!(2.0), "{m}");
    assert!(
        m.get("SessionsActive").is_none() && m.get("SessionsPartial").is_none(),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_client_address_is_the_tcp_peer_not_a_forwarded_header() {
    let s = TestServer::start().await;
    let baseline = empty_baseline(&s).await;
    let token = s.login(MEMBER).await;
    let r = s
        .send(
            "start with a forged X-Forwarded-For",
            s.client
                .post(s.url("/api/sessions"))
                .bearer_auth(&token)
                .header("x-forwarded-for", "6.6.6.6")
                .header("x-real-ip", "6.6.6.6")
                .json(&json!({"durationHours": 1})),
        )
        .await;
    let started = r.ok(202).clone();
    assert_eq!(
        started["ipAddresses"],
        json!([{"address": "127.0.0.1", "version": "v4"}])
    );
    let id = started["id"].as_str().unwrap();
    s.wait_status(&token, id, "ACTIVE").await;
    assert_eq!(s.firewall().await, opened_for_localhost(&baseline));
    assert!(!format!("{:?}", s.firewall().await).contains("6.6.6.6"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admin_edits_during_a_live_session_do_not_strand_its_rules() {
    let s = TestServer::start().await;
    let baseline = empty_baseline(&s).await;
    let admin = s.login(ADMIN).await;
    let token = s.login(MEMBER).await;
    let active = s.settled_session(&token, 2, "ACTIVE").await;
    let id = active["id"].as_str().unwrap().to_owned();
    assert_eq!(s.firewall().await, opened_for_localhost(&baseline));

    // Move the bastion to another port and delete the database resource meanwhile.
    let bastion = s
        .find(&admin, "/api/admin/resources", "name", "Bastion host (SSH)")
        .await;
    s.patch(
        &admin,
        &format!("/api/admin/resources/{}", bastion["id"].as_str().unwrap()),
        json!({"ports": [{"protocol": "tcp", "fromPort": 2222, "toPort": 2222}]}),
    )
    .await
    .ok(200);
    let database = s
        .find(
            &admin,
            "/api/admin/resources",
            "name",
            "Production database",
        )
        .await;
    let r = s
        .delete(
            &admin,
            &format!("/api/admin/resources/{}", database["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);

    // The session keeps what it opened, and closes exactly that.
    let still = s.get(Some(&token), &format!("/api/sessions/{id}")).await;
    assert_eq!(still.ok(200)["status"], "ACTIVE");
    assert_eq!(still.json["resourceCount"], json!(3));
    let cancelled = s.stop_and_wait(&token, &id).await;
    assert_eq!(statuses(&cancelled), vec!["REMOVED"; 3]);
    s.wait_firewall("the session's original rules to be removed", &baseline)
        .await;
}

/// The local runner's `GET /api/dev/metrics` reports the figures the Lambdas write as CloudWatch
/// embedded metrics, after a real session from start to expiry.
#[tokio::test]
async fn the_runner_reports_the_operational_figures_of_a_session() {
    let s = TestServer::start().await;
    let token = s.login(MEMBER).await;
    let before = s.get(None, "/api/dev/metrics").await;
    // The first sweep may have run (and listed the groups); no session has.
    assert!(
        before.ok(200).get("SessionsStarted").is_none(),
        "{}",
        before.text
    );

    let session = s.settled_session(&token, 1, "ACTIVE").await;
    let id = session["id"].as_str().unwrap();
    // 100 s past its expiry.
    s.advance_clock(3700).await;
    s.wait_status(&token, id, "EXPIRED").await;

    let figures = s
        .eventually("a sweep after the expiry to be counted", || async {
            let r = s.get(None, "/api/dev/metrics").await;
            let m = r.ok(200).clone();
            if m["SweepDuration"]["samples"].as_u64() >= Some(2) {
                Ok(m)
            } else {
                Err(r.text)
            }
        })
        .await;
    let sum = |name: &str| {
        figures[name]["sum"]
            .as_f64()
            .unwrap_or_else(|| panic!("no {name}: {figures}"))
    };
    assert_eq!(sum("SessionsStarted"), 1.0, "{figures}");
    assert_eq!(sum("SessionsActive"), 1.0, "{figures}");
    assert!(figures.get("SessionsPartial").is_none(), "{figures}");
    assert!(figures.get("SessionsFailed").is_none(), "{figures}");
    let latency = &figures["StartToActive"];
    assert_eq!(latency["unit"], "Milliseconds");
    assert_eq!(latency["samples"], 1);
    assert!(latency["max"].as_f64().unwrap() < 10_000.0, "{figures}");
    // Three rules applied and three removed, besides the reconciliation pass's listings.
    let before_calls = before.json["RuleCalls"]["sum"].as_f64().unwrap_or(0.0);
    assert!(sum("RuleCalls") >= before_calls + 6.0, "{figures}");
    assert_eq!(sum("Throttles"), 0.0, "{figures}");
    assert_eq!(figures["RuleCalls"]["unit"], "Count");
    let lag = &figures["ExpiryLag"];
    assert_eq!(lag["samples"], 1, "one expiry: {figures}");
    // The clock jumped 100 s past the expiry before anything could notice.
    let lag_ms = lag["min"].as_f64().unwrap();
    assert!((100_000.0..130_000.0).contains(&lag_ms), "{figures}");
    assert_eq!(figures["SweepDuration"]["unit"], "Milliseconds");
}
