//! Every route, called the way an attacker would: with no token, a malformed one, an expired
//! sign-in, a revoked or expired API token, an ID token with a bad signature, a member's token
//! on admin routes, and another organization's admin token on this organization's ids. Each is
//! refused with the standard error body, and afterwards the victim's data is exactly as before.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{json, Value};

use entryguard::domain::tier::Tier;
use entryguard_tests::oidc::{sign, Issuer, Signer, AUDIENCE};
use entryguard_tests::server::{OidcConfig, TestServer, ADMIN, MEMBER, REGION, SPARE_GROUPS};

const OTHER_ADMIN: &str = "boss@other.example.com";
const SECOND_MEMBER: &str = "second@example.com";

/// One route, with a body that would be accepted from its rightful caller.
struct Route {
    method: Method,
    path: String,
    body: Option<Value>,
    admin: bool,
    /// Names one object of the victim (so another organization must get a 404).
    names_an_id: bool,
}

fn route(method: Method, path: String, body: Option<Value>) -> Route {
    Route {
        admin: path.starts_with("/api/admin/"),
        names_an_id: path
            .split(['/', '='])
            .any(|part| part.parse::<uuid::Uuid>().is_ok()),
        method,
        path,
        body,
    }
}

/// Ids of the victim organization's objects.
struct Victim {
    session: String,
    token_id: String,
    credential: String,
    resource: String,
    role: String,
    user: String,
    webhook: String,
}

fn routes(v: &Victim) -> Vec<Route> {
    use Method as M;
    let port = json!([{"protocol": "tcp", "fromPort": 22, "toPort": 22}]);
    vec![
        route(M::GET, "/api/me".into(), None),
        route(M::GET, "/api/address".into(), None),
        route(M::GET, "/api/sessions".into(), None),
        route(
            M::POST,
            "/api/signup".into(),
            Some(json!({"organizationName": "Mallory Inc"})),
        ),
        route(
            M::POST,
            "/api/sessions".into(),
            Some(json!({"durationHours": 1})),
        ),
        route(M::GET, format!("/api/sessions/{}", v.session), None),
        route(M::POST, format!("/api/sessions/{}/stop", v.session), None),
        route(M::POST, format!("/api/sessions/{}/extend", v.session), None),
        route(M::GET, "/api/me/tokens".into(), None),
        route(M::POST, "/api/me/tokens".into(), Some(json!({"name": "x"}))),
        route(M::DELETE, format!("/api/me/tokens/{}", v.token_id), None),
        route(M::GET, "/api/admin/organization".into(), None),
        route(
            M::PUT,
            "/api/admin/organization".into(),
            Some(json!({"name": "Pwned", "tier": "FREE"})),
        ),
        route(M::GET, "/api/admin/credentials".into(), None),
        route(
            M::POST,
            "/api/admin/credentials".into(),
            Some(json!({"name": "c", "provider": "simulated", "region": REGION})),
        ),
        route(
            M::DELETE,
            format!("/api/admin/credentials/{}", v.credential),
            None,
        ),
        route(
            M::POST,
            format!("/api/admin/credentials/{}/validate", v.credential),
            None,
        ),
        route(
            M::GET,
            format!("/api/admin/iam-policy?credentialId={}", v.credential),
            None,
        ),
        route(M::GET, "/api/admin/resources".into(), None),
        route(
            M::POST,
            "/api/admin/resources".into(),
            Some(json!({"name": "r", "credentialId": v.credential,
                "securityGroupId": SPARE_GROUPS[0], "region": REGION, "ports": port})),
        ),
        route(
            M::PATCH,
            format!("/api/admin/resources/{}", v.resource),
            Some(json!({"name": "stolen"})),
        ),
        route(
            M::DELETE,
            format!("/api/admin/resources/{}", v.resource),
            None,
        ),
        route(M::GET, "/api/admin/roles".into(), None),
        route(
            M::POST,
            "/api/admin/roles".into(),
            Some(json!({"name": "r"})),
        ),
        route(
            M::PATCH,
            format!("/api/admin/roles/{}", v.role),
            Some(json!({"maxSessionDurationHours": 1})),
        ),
        route(M::DELETE, format!("/api/admin/roles/{}", v.role), None),
        route(M::GET, "/api/admin/users".into(), None),
        route(
            M::POST,
            "/api/admin/users".into(),
            Some(json!({"email": "mallory@example.com", "isAdmin": true})),
        ),
        route(
            M::PATCH,
            format!("/api/admin/users/{}", v.user),
            Some(json!({"isAdmin": true})),
        ),
        route(M::DELETE, format!("/api/admin/users/{}", v.user), None),
        route(M::GET, "/api/admin/audit-logs".into(), None),
        route(M::POST, "/api/admin/dead-letters/redrive".into(), None),
        route(
            M::GET,
            format!("/api/admin/sessions?userId={}", v.user),
            None,
        ),
        route(
            M::GET,
            format!("/api/admin/sessions?resourceId={}", v.resource),
            None,
        ),
        route(
            M::POST,
            format!("/api/admin/sessions/{}/stop", v.session),
            None,
        ),
        route(
            M::POST,
            "/api/admin/sessions/revoke-all".into(),
            Some(json!({"resourceId": v.resource})),
        ),
        route(M::POST, "/api/admin/sessions/revoke-all".into(), None),
        route(M::GET, "/api/admin/sessions/activity".into(), None),
        route(M::GET, "/api/admin/webhooks".into(), None),
        route(
            M::POST,
            "/api/admin/webhooks".into(),
            Some(json!({"url": "https://mallory.example.com/hook", "events": ["session.started"]})),
        ),
        route(
            M::PATCH,
            format!("/api/admin/webhooks/{}", v.webhook),
            Some(json!({"url": "https://mallory.example.com/hook", "enabled": false})),
        ),
        route(
            M::DELETE,
            format!("/api/admin/webhooks/{}", v.webhook),
            None,
        ),
        route(
            M::GET,
            format!("/api/admin/webhooks/{}/deliveries", v.webhook),
            None,
        ),
        route(
            M::POST,
            format!("/api/admin/webhooks/{}/test", v.webhook),
            None,
        ),
    ]
}

/// Everything the victim organization holds, as its admin and member see it.
async fn snapshot(s: &TestServer, admin: &str, member: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for path in [
        "/api/admin/organization",
        "/api/admin/credentials",
        "/api/admin/resources",
        "/api/admin/roles",
        "/api/admin/users",
        "/api/admin/webhooks",
    ] {
        out.push(s.get(Some(admin), path).await.ok(200).clone());
    }
    for path in ["/api/sessions", "/api/me/tokens", "/api/me"] {
        out.push(s.get(Some(member), path).await.ok(200).clone());
    }
    out
}

/// The table's routes as `METHOD /path/{id}` templates.
fn templates(table: &[Route]) -> BTreeSet<String> {
    table
        .iter()
        .map(|r| {
            let path = r.path.split('?').next().unwrap();
            let template: Vec<&str> = path
                .split('/')
                .map(|part| {
                    if part.parse::<uuid::Uuid>().is_ok() {
                        "{id}"
                    } else {
                        part
                    }
                })
                .collect();
            format!("{} {}", r.method, template.join("/"))
        })
        .collect()
}

/// Every operation of the served OpenAPI document that requires a token.
async fn secured_operations(s: &TestServer) -> BTreeSet<String> {
    let doc = s.get(None, "/api/openapi.json").await.ok(200).clone();
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("a path item") {
            let secured = op
                .get("security")
                .and_then(Value::as_array)
                .is_some_and(|s| !s.is_empty());
            if secured {
                out.insert(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    out
}

fn id_of(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id: {v}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_route_refuses_every_kind_of_attacker() {
    let issuer = Issuer::start().await;
    let s = TestServer::start_with_oidc(OidcConfig {
        issuer: issuer.url.clone(),
        audience: AUDIENCE.into(),
    })
    .await;

    // Tokens that once worked: a sign-in that has since expired, an API token past its expiry.
    let stale_login = s.login(MEMBER).await;
    let short = s
        .post(
            &stale_login,
            "/api/me/tokens",
            json!({"name": "short", "expiresInDays": 1}),
        )
        .await
        .ok(201)["token"]
        .as_str()
        .unwrap()
        .to_owned();
    s.advance_clock(2 * 24 * 3600).await;

    let admin = s.login(ADMIN).await;
    let member = s.login(MEMBER).await;
    let demo_org = s
        .app
        .store
        .find_user_by_email(&ADMIN.parse().unwrap())
        .await
        .unwrap()
        .expect("the demo admin exists")
        .org_id;
    s.create_user(demo_org, SECOND_MEMBER, false).await;
    let second = s.login(SECOND_MEMBER).await;
    s.create_org("Other Org", Tier::Business, OTHER_ADMIN).await;
    let other_admin = s.login(OTHER_ADMIN).await;

    // The victim's objects.
    let session = id_of(&s.settled_session(&member, 1, "ACTIVE").await);
    let kept = s
        .post(&member, "/api/me/tokens", json!({"name": "kept"}))
        .await
        .ok(201)
        .clone();
    let revoked = s
        .post(&member, "/api/me/tokens", json!({"name": "revoked"}))
        .await
        .ok(201)
        .clone();
    s.delete(&member, &format!("/api/me/tokens/{}", id_of(&revoked)))
        .await
        .ok(204);
    let victim = Victim {
        session,
        token_id: id_of(&kept),
        credential: id_of(&s.get(Some(&admin), "/api/admin/credentials").await.ok(200)[0]),
        resource: id_of(&s.get(Some(&admin), "/api/admin/resources").await.ok(200)[0]),
        role: id_of(&s.get(Some(&admin), "/api/admin/roles").await.ok(200)[0]),
        user: id_of(&s.find(&admin, "/api/admin/users", "email", MEMBER).await),
        webhook: id_of(
            &s.post(
                &admin,
                "/api/admin/webhooks",
                json!({"url": "https://hooks.example.com/victim", "events": ["system.alert"]}),
            )
            .await
            .ok(201)["webhook"],
        ),
    };
    let before = snapshot(&s, &admin, &member).await;
    let table = routes(&victim);
    assert_eq!(
        templates(&table),
        secured_operations(&s).await,
        "the matrix must cover exactly the operations the OpenAPI document says need a token"
    );

    let forged = sign(
        &issuer.claims(ADMIN, s.app.now().timestamp()),
        Signer::Attacker,
    );
    let unauthenticated: Vec<(&str, Option<String>)> = vec![
        ("no token", None),
        ("a malformed token", Some("not-a-token".into())),
        ("an empty bearer", Some(" ".into())),
        ("an expired sign-in", Some(stale_login.clone())),
        ("an expired API token", Some(short.clone())),
        (
            "a revoked API token",
            Some(revoked["token"].as_str().unwrap().to_owned()),
        ),
        ("an ID token with a bad signature", Some(forged)),
    ];
    for r in &table {
        for (who, token) in &unauthenticated {
            let resp = s
                .call(r.method.clone(), token.as_deref(), &r.path, r.body.clone())
                .await;
            assert_eq!(
                resp.status, 401,
                "{} {} with {who}: {}",
                r.method, r.path, resp.text
            );
            resp.err(401, "UNAUTHENTICATED");
        }
        if r.admin {
            for (who, token) in [("a member", &member), ("another member", &second)] {
                let resp = s
                    .call(r.method.clone(), Some(token), &r.path, r.body.clone())
                    .await;
                assert_eq!(
                    resp.status, 403,
                    "{} {} as {who}: {}",
                    r.method, r.path, resp.text
                );
                resp.err(403, "FORBIDDEN");
            }
        }
        if r.names_an_id {
            // Another organization's admin, and for a member's own objects another member.
            let mut outsiders = vec![("another organization's admin", &other_admin)];
            if !r.admin {
                outsiders.push(("another member", &second));
                outsiders.push(("the organization's own admin", &admin));
            }
            for (who, token) in outsiders {
                let resp = s
                    .call(r.method.clone(), Some(token), &r.path, r.body.clone())
                    .await;
                assert_eq!(
                    resp.status, 404,
                    "{} {} as {who}: {}",
                    r.method, r.path, resp.text
                );
                resp.err(404, "NOT_FOUND");
            }
        }
    }
    assert_eq!(snapshot(&s, &admin, &member).await, before);
    // The rightful owner's token still works.
    s.get(Some(kept["token"].as_str().unwrap()), "/api/me")
        .await
        .ok(200);
}

/// An address proof is worth nothing outside its user: one from another organization's admin
/// (another key ring) is invalid, one of a colleague is another user's, and neither starts
/// anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn address_proofs_of_others_open_nothing() {
    let s = TestServer::start().await;
    let admin = s.login(ADMIN).await;
    let member = s.login(MEMBER).await;
    s.create_org("Other Org", Tier::Free, OTHER_ADMIN).await;
    let other_admin = s.login(OTHER_ADMIN).await;
    let before = snapshot(&s, &admin, &member).await;
    let firewall = s.firewall().await;
    let s = &s;
    let proof_of = |token: String| async move {
        s.get(Some(&token), "/api/address").await.ok(200)["proof"].clone()
    };
    let foreign = proof_of(other_admin.clone()).await;
    let colleague = proof_of(admin.clone()).await;
    let start = |proof: Value| {
        s.post(
            &member,
            "/api/sessions",
            json!({"durationHours": 1, "addressProofs": [proof]}),
        )
    };
    start(foreign.clone())
        .await
        .err(400, "ADDRESS_PROOF_INVALID");
    start(colleague).await.err(400, "ADDRESS_PROOF_OTHER_USER");
    // Nor does the other organization's admin get anywhere with the member's proof.
    let members = proof_of(member.clone()).await;
    s.post(
        &other_admin,
        "/api/sessions",
        json!({"durationHours": 1, "addressProofs": [members]}),
    )
    .await
    .err(400, "ADDRESS_PROOF_INVALID");
    assert_eq!(snapshot(s, &admin, &member).await, before);
    assert_eq!(s.firewall().await, firewall);
}

/// Nothing a token holder sends raises their own limits: an admin asking for another plan is
/// refused and nothing changes, in their organization or any other.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_admin_can_change_a_plan() {
    let s = TestServer::start().await;
    let admin = s.login(ADMIN).await;
    let member = s.login(MEMBER).await;
    s.create_org("Other Org", Tier::Free, OTHER_ADMIN).await;
    let other_admin = s.login(OTHER_ADMIN).await;
    let before = snapshot(&s, &admin, &member).await;
    let other_before = s.get(Some(&other_admin), "/api/me").await.ok(200).clone();

    for tier in ["FREE", "STARTER", "BUSINESS"] {
        s.put(
            &admin,
            "/api/admin/organization",
            json!({"name": "Demo Org", "tier": tier}),
        )
        .await
        .err(403, "FORBIDDEN");
    }
    for tier in ["STARTER", "TEAM", "BUSINESS"] {
        s.put(
            &other_admin,
            "/api/admin/organization",
            json!({"name": "Other Org", "tier": tier}),
        )
        .await
        .err(403, "FORBIDDEN");
    }
    assert_eq!(snapshot(&s, &admin, &member).await, before);
    let other_after = s.get(Some(&other_admin), "/api/me").await;
    assert_eq!(other_after.ok(200), &other_before);
    assert_eq!(other_before["organization"]["tier"], "FREE");
    assert_eq!(other_before["maxConcurrentSessions"], 1);
}

/// A suspended organization's tokens still sign in and read, but start, extend, validate and
/// redrive nothing; its live sessions were ended and their rules removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_suspended_organization_can_reach_nothing() {
    let s = TestServer::start().await;
    let admin = s.login(ADMIN).await;
    let member = s.login(MEMBER).await;
    let baseline = s.firewall().await;
    let live = id_of(&s.settled_session(&member, 2, "ACTIVE").await);
    let org_id = s.get(Some(&admin), "/api/admin/organization").await.ok(200)["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let done = s
        .app
        .operator_suspend(org_id, "the tests' operator", "a test")
        .await
        .unwrap();
    assert_eq!(done.sessions_stopped, 1);
    s.wait_status(&member, &live, "CANCELLED").await;
    s.wait_firewall("the suspended organization's rules to go", &baseline)
        .await;

    let me = s.get(Some(&member), "/api/me").await;
    assert_eq!(me.ok(200)["organization"]["status"], "SUSPENDED");
    let before = snapshot(&s, &admin, &member).await;
    let credential = id_of(&s.get(Some(&admin), "/api/admin/credentials").await.ok(200)[0]);
    let refused = [
        (
            &member,
            "/api/sessions".to_owned(),
            json!({"durationHours": 1}),
        ),
        (
            &admin,
            "/api/sessions".to_owned(),
            json!({"durationHours": 1}),
        ),
        (&member, format!("/api/sessions/{live}/extend"), json!({})),
        (
            &admin,
            format!("/api/admin/credentials/{credential}/validate"),
            json!({}),
        ),
        (
            &admin,
            "/api/admin/dead-letters/redrive".to_owned(),
            json!({}),
        ),
    ];
    for (token, path, body) in refused {
        let r = s.post(token, &path, body).await;
        assert_eq!(
            r.err(403, "ORGANIZATION_SUSPENDED")["message"],
            "Your organization is suspended: sessions cannot be started or extended. Contact the operator of this EntryGuard deployment.",
            "{path}"
        );
    }
    assert_eq!(snapshot(&s, &admin, &member).await, before);

    s.app
        .operator_resume(org_id, "the tests' operator")
        .await
        .unwrap();
    s.settled_session(&member, 1, "ACTIVE").await;
}
