//! The edges of the HTTP surface: security headers on the web app and the API, and the rate
//! limits at their production numbers — a looping member is refused while a colleague still
//! starts a session, the organization's limit, and failed bearer-token attempts per address.

use reqwest::Method;
use serde_json::{json, Value};

use entryguard::app::rate_limit::RateLimits;
use entryguard::domain::audit::{AuditQuery, AuditType};
use entryguard::domain::model::Email;
use entryguard::domain::rate::RateLimit;
use entryguard_tests::server::{Resp, TestServer, ADMIN, MEMBER};

/// Moves the test clock to one second past the start of the next minute, so a burst of
/// requests lands in one rate-limit window however long the machine takes.
async fn start_of_a_window(s: &TestServer) {
    let now = s.advance_clock(0).await;
    let now = chrono::DateTime::parse_from_rfc3339(now.as_str().unwrap()).unwrap();
    let into_minute = now.timestamp().rem_euclid(60);
    s.advance_clock(60 - into_minute + 1).await;
}

#[track_caller]
fn assert_rate_limited(r: &Resp) -> u64 {
    r.err(429, "RATE_LIMITED");
    let secs: u64 = r
        .headers
        .get("retry-after")
        .unwrap_or_else(|| panic!("no Retry-After on a 429: {:?}", r.headers))
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After is whole seconds");
    assert!((1..=60).contains(&secs), "Retry-After {secs}");
    secs
}

#[track_caller]
fn header<'r>(r: &'r Resp, name: &str) -> &'r str {
    r.headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header: {:?}", r.headers))
        .to_str()
        .unwrap()
}

#[track_caller]
fn csp_directive<'r>(r: &'r Resp, directive: &str) -> &'r str {
    header(r, "content-security-policy")
        .split(';')
        .map(str::trim)
        .find(|d| d.split_whitespace().next() == Some(directive))
        .unwrap_or_else(|| panic!("no {directive} in {}", header(r, "content-security-policy")))
}

#[tokio::test]
async fn the_web_app_and_the_api_carry_security_headers() {
    let s = TestServer::start_with_web_app("<!doctype html><title>EntryGuard</title>").await;
    let token = s.login(MEMBER).await;
    let pages = [
        s.get(None, "/").await,
        s.get(None, "/sessions").await,
        s.get(None, "/admin/credentials/123").await,
    ];
    let api = [
        s.get(None, "/api/health").await,
        s.get(Some(&token), "/api/me").await,
        s.get(Some(&token), "/api/nope").await,
        s.get(None, "/api/me").await,
    ];
    for r in pages.iter().chain(&api) {
        assert_eq!(header(r, "x-content-type-options"), "nosniff");
        assert_eq!(header(r, "x-frame-options"), "DENY");
        assert_eq!(header(r, "referrer-policy"), "no-referrer");
        assert!(header(r, "strict-transport-security").starts_with("max-age="));
        assert!(header(r, "permissions-policy").contains("camera=()"));
        assert_eq!(
            csp_directive(r, "frame-ancestors"),
            "frame-ancestors 'none'"
        );
        assert!(
            !header(r, "content-security-policy").contains("unsafe-"),
            "{:?}",
            r.headers
        );
    }
    for page in &pages {
        assert_eq!(page.status, 200, "the SPA answers every route");
        assert!(page.text.contains("EntryGuard"));
        assert_eq!(csp_directive(page, "default-src"), "default-src 'self'");
        assert_eq!(csp_directive(page, "script-src"), "script-src 'self'");
        assert_eq!(csp_directive(page, "object-src"), "object-src 'none'");
        assert_eq!(csp_directive(page, "base-uri"), "base-uri 'none'");
        assert_eq!(csp_directive(page, "connect-src"), "connect-src 'self'");
    }
    for r in &api {
        assert_eq!(header(r, "cache-control"), "no-store");
        assert_eq!(csp_directive(r, "default-src"), "default-src 'none'");
    }
}

/// A second member of the demo organization with the demo resources.
async fn colleague(s: &TestServer) -> String {
    let admin = s.login(ADMIN).await;
    let resources: Vec<Value> = s
        .get(Some(&admin), "/api/admin/resources")
        .await
        .ok(200)
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].clone())
        .collect();
    s.post(
        &admin,
        "/api/admin/users",
        json!({"email": "colleague@example.com", "resourceIds": resources}),
    )
    .await
    .ok(201);
    s.login("colleague@example.com").await
}

#[tokio::test]
async fn a_start_stop_loop_is_refused_while_a_colleague_still_starts_a_session() {
    let limits = RateLimits::default();
    let s = TestServer::start_with_limits(limits).await;
    let looper = s.login(MEMBER).await;
    let other = colleague(&s).await;
    start_of_a_window(&s).await;

    let allowed = limits.session_changes.per_user.max;
    let mut changes = 0;
    let refused = loop {
        let r = s
            .post(&looper, "/api/sessions", json!({"durationHours": 1}))
            .await;
        if r.status == 429 {
            break r;
        }
        let id = r.ok(202)["id"].as_str().unwrap().to_owned();
        changes += 1;
        let r = s
            .call(
                Method::POST,
                Some(&looper),
                &format!("/api/sessions/{id}/stop"),
                None,
            )
            .await;
        if r.status == 429 {
            break r;
        }
        r.ok(202);
        changes += 1;
        assert!(changes <= allowed, "the loop was never refused");
    };
    assert_eq!(
        changes, allowed,
        "refused exactly after the documented number"
    );
    let error = refused.err(429, "RATE_LIMITED");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("You are making"),
        "{error}"
    );
    assert_rate_limited(&refused);
    // Refused attempts are not counted: the loop stays refused, and nothing else changes.
    for _ in 0..5 {
        let r = s
            .post(&looper, "/api/sessions", json!({"durationHours": 1}))
            .await;
        assert_rate_limited(&r);
    }
    // Reading is not limited.
    s.get(Some(&looper), "/api/sessions").await.ok(200);

    // The colleague is not held back by the looper.
    s.post(&other, "/api/sessions", json!({"durationHours": 2}))
        .await
        .ok(202);

    // The next window lets the looper in again.
    s.advance_clock(60).await;
    s.post(&looper, "/api/sessions", json!({"durationHours": 1}))
        .await
        .ok(202);
}

#[tokio::test]
async fn an_organization_has_a_limit_of_its_own() {
    let mut limits = RateLimits::default();
    limits.session_changes.per_user = RateLimit::per_minute(3);
    limits.session_changes.per_org = RateLimit::per_minute(5);
    let s = TestServer::start_with_limits(limits).await;
    let member = s.login(MEMBER).await;
    let other = colleague(&s).await;
    start_of_a_window(&s).await;

    let start = |token: String| {
        let s = &s;
        async move {
            s.post(&token, "/api/sessions", json!({"durationHours": 1}))
                .await
        }
    };
    for _ in 0..3 {
        start(member.clone()).await.ok(202);
    }
    let mine = start(member.clone()).await;
    assert!(mine.text.contains("You are making"), "{}", mine.text);
    assert_rate_limited(&mine);
    for _ in 0..2 {
        start(other.clone()).await.ok(202);
    }
    let theirs = start(other.clone()).await;
    assert!(
        theirs.text.contains("Your organization is making"),
        "{}",
        theirs.text
    );
    assert_rate_limited(&theirs);
}

#[tokio::test]
async fn credential_checks_token_creation_and_redrive_are_limited() {
    let limits = RateLimits::default();
    let s = TestServer::start_with_limits(limits).await;
    let admin = s.login(ADMIN).await;
    start_of_a_window(&s).await;
    let credential = s.get(Some(&admin), "/api/admin/credentials").await.ok(200)[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/admin/credentials/{credential}/validate");
    for _ in 0..limits.credential_checks.per_user.max {
        s.call(Method::POST, Some(&admin), &path, None)
            .await
            .ok(200);
    }
    assert_rate_limited(&s.call(Method::POST, Some(&admin), &path, None).await);

    for n in 0..limits.token_creation.per_user.max {
        s.post(&admin, "/api/me/tokens", json!({"name": format!("t{n}")}))
            .await
            .ok(201);
    }
    assert_rate_limited(
        &s.post(&admin, "/api/me/tokens", json!({"name": "one more"}))
            .await,
    );

    let redrive = "/api/admin/dead-letters/redrive";
    for _ in 0..limits.redrives.per_user.max {
        s.call(Method::POST, Some(&admin), redrive, None)
            .await
            .ok(200);
    }
    assert_rate_limited(&s.call(Method::POST, Some(&admin), redrive, None).await);

    // A member's call to an admin route stays FORBIDDEN: it is refused before it is counted.
    let member = s.login(MEMBER).await;
    for _ in 0..limits.redrives.per_user.max + 1 {
        s.call(Method::POST, Some(&member), redrive, None)
            .await
            .err(403, "FORBIDDEN");
    }
}

async fn alerts(s: &TestServer) -> Vec<String> {
    let member: Email = MEMBER.parse().unwrap();
    let org = s
        .app
        .store
        .find_user_by_email(&member)
        .await
        .unwrap()
        .unwrap()
        .org_id;
    s.app
        .store
        .list_audit(
            org,
            &AuditQuery {
                from: None,
                to: None,
                kind: Some(AuditType::SystemAlert),
                user_id: None,
                cursor: None,
                limit: 100,
            },
        )
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|e| e.message)
        .collect()
}

#[tokio::test]
async fn failed_bearer_attempts_lock_the_address_out_and_are_reported() {
    let limits = RateLimits::default();
    let allowed = limits.failed_auth_per_address.max;
    let s = TestServer::start_with_limits(limits).await;
    let expired = s.login(MEMBER).await;
    // Sign-in tokens last 12 hours.
    s.advance_clock(13 * 3600).await;
    let valid = s.login(MEMBER).await;
    start_of_a_window(&s).await;

    // Unknown tokens only: the operators are told (in the log), no organization is.
    for n in 0..allowed {
        s.get(Some(&format!("guess-{n}")), "/api/me")
            .await
            .err(401, "UNAUTHENTICATED");
    }
    let r = s.get(Some("guess-more"), "/api/me").await;
    assert_rate_limited(&r);
    assert!(r.text.contains("failed sign-in attempts"), "{}", r.text);
    // Locked out whatever the token: guessing right gains nothing until the window ends.
    assert_rate_limited(&s.get(Some(&valid), "/api/me").await);
    // Routes without a token are not bearer attempts.
    s.get(None, "/api/health").await.ok(200);
    assert!(
        alerts(&s).await.is_empty(),
        "unknown tokens name no organization"
    );

    // The next window: the address may try again. The attempt that uses up the allowance is
    // an expired token of the demo organization, so its audit log gets one alert.
    s.advance_clock(60).await;
    s.get(Some(&valid), "/api/me").await.ok(200);
    for n in 0..allowed - 1 {
        s.get(Some(&format!("guess-{n}")), "/api/me")
            .await
            .err(401, "UNAUTHENTICATED");
    }
    s.get(Some(&expired), "/api/me")
        .await
        .err(401, "UNAUTHENTICATED");
    assert_rate_limited(&s.get(Some(&expired), "/api/me").await);
    let alerts = alerts(&s).await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(
        alerts[0].contains(&format!("{allowed} failed sign-in attempts from 127.0.0.1")),
        "{alerts:?}"
    );
}
