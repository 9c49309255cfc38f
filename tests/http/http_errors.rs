//! Every error code of docs/api.md, over HTTP, with its status and body shape
//! `{"error":{"code","message","fields"?}}`. No request may ever yield a 500 (the support code
//! fails the test on any 5xx).

use reqwest::Method;
use serde_json::{json, Value};

use entryguard_tests::server::{TestServer, ADMIN, MEMBER, REGION, SPARE_GROUPS};

/// Ids of the demo organization's objects, as the admin sees them.
struct Demo {
    credential: String,
    resource: String,
    role: String,
    member: String,
}

async fn demo(s: &TestServer, admin: &str) -> Demo {
    let first = |path: &'static str| async move {
        s.ids(admin, path)
            .await
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("nothing in {path}"))
    };
    Demo {
        credential: first("/api/admin/credentials").await,
        resource: first("/api/admin/resources").await,
        role: first("/api/admin/roles").await,
        member: s.find(admin, "/api/admin/users", "email", MEMBER).await["id"]
            .as_str()
            .unwrap()
            .to_owned(),
    }
}

fn resource_body(credential: &str) -> Value {
    json!({
        "name": "spare",
        "credentialId": credential,
        "securityGroupId": SPARE_GROUPS[0],
        "region": REGION,
        "ports": [{"protocol": "tcp", "fromPort": 8080, "toPort": 8080}],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unauthenticated_without_a_valid_bearer_token() {
    let s = TestServer::start().await;
    let token = s.login(MEMBER).await;
    let routes = [
        (Method::GET, "/api/me"),
        (Method::GET, "/api/sessions"),
        (Method::POST, "/api/sessions"),
        (Method::GET, "/api/admin/users"),
        (Method::GET, "/api/admin/organization"),
    ];
    let bad_headers = [
        None,
        Some("Bearer garbage".to_owned()),
        Some(format!("Basic {token}")),
        Some(format!("Token {token}")),
        Some(token.clone()),
        Some("Bearer ".to_owned()),
        Some("Bearer".to_owned()),
    ];
    for (method, path) in &routes {
        for header in &bad_headers {
            let mut request = s.client.request(method.clone(), s.url(path));
            if let Some(h) = header {
                request = request.header("authorization", h);
            }
            if *method == Method::POST {
                request = request.json(&json!({"durationHours": 2}));
            }
            let r = s
                .send(&format!("{method} {path} with {header:?}"), request)
                .await;
            let error = r.err(401, "UNAUTHENTICATED");
            assert_eq!(
                error["message"],
                "Authentication required: send a valid bearer token"
            );
            assert_eq!(
                r.headers
                    .get("www-authenticate")
                    .map(|v| v.to_str().unwrap()),
                Some("Bearer"),
                "{method} {path} with {header:?}"
            );
        }
    }
    // The scheme is case-insensitive: the same token works as `bearer`.
    let r = s
        .send(
            "lower-case scheme",
            s.client
                .get(s.url("/api/me"))
                .header("authorization", format!("bearer {token}")),
        )
        .await;
    assert_eq!(r.ok(200)["user"]["email"], MEMBER);
    // No session was started by the rejected POSTs.
    let list = s.get(Some(&token), "/api/sessions").await;
    assert_eq!(list.ok(200), &json!([]));

    // Login with an unknown e-mail.
    let r = s
        .call(
            Method::POST,
            None,
            "/api/dev/login",
            Some(json!({"email": "nobody@example.com"})),
        )
        .await;
    assert_eq!(
        r.err(401, "UNAUTHENTICATED")["message"],
        "No user with the e-mail nobody@example.com"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tokens_expire_after_twelve_hours() {
    let s = TestServer::start().await;
    let token = s.login(MEMBER).await;
    s.get(Some(&token), "/api/me").await.ok(200);
    s.advance_clock(12 * 3600 - 60).await;
    s.get(Some(&token), "/api/me").await.ok(200);
    s.advance_clock(61).await;
    s.get(Some(&token), "/api/me")
        .await
        .err(401, "UNAUTHENTICATED");
    // A fresh login works again.
    let token = s.login(MEMBER).await;
    s.get(Some(&token), "/api/me").await.ok(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_member_is_forbidden_on_every_admin_route() {
    let s = TestServer::start().await;
    let admin = s.login(ADMIN).await;
    let member = s.login(MEMBER).await;
    let d = demo(&s, &admin).await;
    let resources_before = s.get(Some(&admin), "/api/admin/resources").await.json;
    let roles_before = s.get(Some(&admin), "/api/admin/roles").await.json;
    let users_before = s.get(Some(&admin), "/api/admin/users").await.json;
    let credentials_before = s.get(Some(&admin), "/api/admin/credentials").await.json;

    let calls: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "/api/admin/organization".into(), None),
        (
            Method::PUT,
            "/api/admin/organization".into(),
            Some(json!({"name": "Mine", "tier": "FREE"})),
        ),
        (Method::GET, "/api/admin/credentials".into(), None),
        (
            Method::POST,
            "/api/admin/credentials".into(),
            Some(json!({"name": "x", "provider": "simulated", "region": REGION})),
        ),
        (
            Method::DELETE,
            format!("/api/admin/credentials/{}", d.credential),
            None,
        ),
        (
            Method::GET,
            format!("/api/admin/iam-policy?credentialId={}", d.credential),
            None,
        ),
        (Method::GET, "/api/admin/resources".into(), None),
        (
            Method::POST,
            "/api/admin/resources".into(),
            Some(resource_body(&d.credential)),
        ),
        (
            Method::PATCH,
            format!("/api/admin/resources/{}", d.resource),
            Some(json!({"name": "renamed"})),
        ),
        (
            Method::DELETE,
            format!("/api/admin/resources/{}", d.resource),
            None,
        ),
        (Method::GET, "/api/admin/roles".into(), None),
        (
            Method::POST,
            "/api/admin/roles".into(),
            Some(json!({"name": "mine", "maxSessionDurationHours": null})),
        ),
        (
            Method::PATCH,
            format!("/api/admin/roles/{}", d.role),
            Some(json!({"maxSessionDurationHours": 1})),
        ),
        (Method::DELETE, format!("/api/admin/roles/{}", d.role), None),
        (Method::GET, "/api/admin/users".into(), None),
        (
            Method::POST,
            "/api/admin/users".into(),
            Some(json!({"email": "friend@example.com", "isAdmin": true})),
        ),
        (
            Method::PATCH,
            format!("/api/admin/users/{}", d.member),
            Some(json!({"isAdmin": true})),
        ),
        (
            Method::DELETE,
            format!("/api/admin/users/{}", d.member),
            None,
        ),
        (Method::GET, "/api/admin/audit-logs".into(), None),
    ];
    for (method, path, body) in calls {
        let r = s.call(method.clone(), Some(&member), &path, body).await;
        let error = r.err(403, "FORBIDDEN");
        assert_eq!(
            error["message"], "You do not have permission to do this",
            "{method} {path}"
        );
    }
    // Nothing changed.
    let org = s.get(Some(&admin), "/api/admin/organization").await;
    assert_eq!(org.ok(200)["tier"], "TEAM");
    assert_eq!(org.json["name"], "Demo Org");
    for (path, before) in [
        ("/api/admin/resources", resources_before),
        ("/api/admin/roles", roles_before),
        ("/api/admin/users", users_before),
        ("/api/admin/credentials", credentials_before),
    ] {
        assert_eq!(s.get(Some(&admin), path).await.ok(200), &before, "{path}");
    }
    let me = s.get(Some(&member), "/api/me").await;
    assert_eq!(me.ok(200)["user"]["isAdmin"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn not_found_for_unknown_routes_and_ids_and_other_users_sessions() {
    let s = TestServer::start().await;
    let admin = s.login(ADMIN).await;
    let member = s.login(MEMBER).await;
    let unknown = uuid::Uuid::new_v4().to_string();

    // Unknown routes, with or without a token, whatever the method.
    for (method, path) in [
        (Method::GET, "/api/nope"),
        (Method::POST, "/api/nope"),
        (Method::GET, "/api/admin/nope"),
        (Method::GET, "/api/sessions/a/b/c"),
        (Method::DELETE, "/api/admin"),
        (Method::GET, "/api"),
        (Method::GET, "/api/me/"),
        (Method::GET, "/api/admin/users/"),
    ] {
        for token in [None, Some(member.as_str())] {
            let r = s.call(method.clone(), token, path, None).await;
            assert_eq!(
                r.err(404, "NOT_FOUND")["message"],
                "Route not found",
                "{method} {path}"
            );
        }
    }

    // Unknown and malformed ids.
    for id in [unknown.as_str(), "not-a-uuid", "123"] {
        for (method, path) in [
            (Method::GET, format!("/api/sessions/{id}")),
            (Method::POST, format!("/api/sessions/{id}/stop")),
            (Method::POST, format!("/api/sessions/{id}/extend")),
        ] {
            s.call(method, Some(&member), &path, None)
                .await
                .err(404, "NOT_FOUND");
        }
        for kind in ["resources", "roles", "users"] {
            s.patch(&admin, &format!("/api/admin/{kind}/{id}"), json!({}))
                .await
                .err(404, "NOT_FOUND");
            s.delete(&admin, &format!("/api/admin/{kind}/{id}"))
                .await
                .err(404, "NOT_FOUND");
        }
        s.delete(&admin, &format!("/api/admin/credentials/{id}"))
            .await
            .err(404, "NOT_FOUND");
        s.get(
            Some(&admin),
            &format!("/api/admin/iam-policy?credentialId={id}"),
        )
        .await
        .err(404, "NOT_FOUND");
    }
    let r = s
        .get(Some(&member), &format!("/api/sessions/{unknown}"))
        .await;
    assert_eq!(r.err(404, "NOT_FOUND")["message"], "Session not found");

    // Another member's session looks missing.
    let other = s
        .post(
            &admin,
            "/api/admin/users",
            json!({"email": "other@example.com", "isAdmin": false}),
        )
        .await;
    other.ok(201);
    let other = s.login("other@example.com").await;
    let active = s.settled_session(&member, 2, "ACTIVE").await;
    let id = active["id"].as_str().unwrap();
    for (method, path) in [
        (Method::GET, format!("/api/sessions/{id}")),
        (Method::POST, format!("/api/sessions/{id}/stop")),
        (Method::POST, format!("/api/sessions/{id}/extend")),
    ] {
        let r = s.call(method, Some(&other), &path, None).await;
        assert_eq!(r.err(404, "NOT_FOUND")["message"], "Session not found");
    }
    assert_eq!(
        s.get(Some(&other), "/api/sessions").await.ok(200),
        &json!([])
    );
    // Nothing happened to it: same expiry, still active.
    let still = s.get(Some(&member), &format!("/api/sessions/{id}")).await;
    assert_eq!(still.ok(200)["status"], "ACTIVE");
    assert_eq!(still.json["expiresAt"], active["expiresAt"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn method_not_allowed_on_known_paths() {
    let s = TestServer::start().await;
    let admin = s.login(ADMIN).await;
    let id = uuid::Uuid::new_v4();
    for (method, path) in [
        (Method::DELETE, "/api/sessions".to_owned()),
        (Method::PUT, "/api/me".to_owned()),
        (Method::POST, "/api/health".to_owned()),
        (Method::DELETE, format!("/api/sessions/{id}")),
        (Method::GET, format!("/api/sessions/{id}/stop")),
        (Method::GET, format!("/api/sessions/{id}/extend")),
        (Method::POST, "/api/admin/audit-logs".to_owned()),
        (Method::PATCH, "/api/admin/organization".to_owned()),
        (Method::GET, format!("/api/admin/credentials/{id}")),
        (Method::PUT, "/api/admin/resources".to_owned()),
        (Method::GET, format!("/api/admin/roles/{id}")),
        (Method::POST, format!("/api/admin/users/{id}")),
        (Method::DELETE, "/api/admin/iam-policy".to_owned()),
    ] {
        let r = s.call(method.clone(), Some(&admin), &path, None).await;
        assert_eq!(
            r.err(405, "METHOD_NOT_ALLOWED")["message"],
            "This route does not accept that method",
            "{method} {path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn validation_failures_on_session_bodies() {
    let s = TestServer::start().await;
    let member = s.login(MEMBER).await;
    let raw = |body: &'static str| {
        s.client
            .post(s.url("/api/sessions"))
            .bearer_auth(&member)
            .header("content-type", "application/json")
            .body(body)
    };

    let r = s.send("malformed JSON", raw("{nope")).await;
    let message = r.err(400, "VALIDATION_FAILED")["message"].as_str().unwrap();
    assert!(
        message.starts_with("The body is not valid JSON"),
        "{message}"
    );
    assert!(r.json["error"].get("fields").is_none(), "{}", r.text);

    let r = s
        .send("trailing characters", raw(r#"{"durationHours":2} x"#))
        .await;
    let message = r.err(400, "VALIDATION_FAILED")["message"].as_str().unwrap();
    assert!(message.contains("trailing"), "{message}");

    let r = s.send("empty body", raw("")).await;
    r.err(400, "VALIDATION_FAILED");

    let r = s
        .post(
            &member,
            "/api/sessions",
            json!({"durationHours": 2, "x": 1}),
        )
        .await;
    let message = r.err(400, "VALIDATION_FAILED")["message"].as_str().unwrap();
    assert!(message.contains("unknown field `x`"), "{message}");

    let r = s
        .post(&member, "/api/sessions", json!({"durationHours": "two"}))
        .await;
    r.field_err("durationHours");

    let r = s
        .post(&member, "/api/sessions", json!({"durationHours": -1}))
        .await;
    r.field_err("durationHours");

    let r = s
        .post(&member, "/api/sessions", json!({"durationHours": 0}))
        .await;
    r.field_err("durationHours");

    // A duration within the maximum that the plan does not offer.
    let r = s
        .post(&member, "/api/sessions", json!({"durationHours": 3}))
        .await;
    let error = r.field_err("durationHours");
    assert_eq!(
        error["fields"]["durationHours"],
        "Duration must be one of 1, 2, 4, 8, 12, 16 or 24 hours"
    );

    // Extension bodies.
    let active = s.settled_session(&member, 2, "ACTIVE").await;
    let path = format!("/api/sessions/{}/extend", active["id"].as_str().unwrap());
    s.post(&member, &path, json!({"hours": "two"}))
        .await
        .field_err("hours");
    s.post(&member, &path, json!({"hours": 0}))
        .await
        .field_err("hours");
    let r = s
        .post(&member, &path, json!({"hours": 2, "more": true}))
        .await;
    r.err(400, "VALIDATION_FAILED");
    let got = s
        .get(
            Some(&member),
            &format!("/api/sessions/{}", active["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(got.ok(200)["expiresAt"], active["expiresAt"], "no change");

    // None of the rejected starts created a session.
    let list = s.get(Some(&member), "/api/sessions").await;
    assert_eq!(list.ok(200).as_array().unwrap().len(), 1);

    // The development login validates its e-mail.
    let r = s
        .call(
            Method::POST,
            None,
            "/api/dev/login",
            Some(json!({"email": "not-an-email"})),
        )
        .await;
    r.field_err("email");

    // The clock route validates too.
    let r = s
        .call(
            Method::POST,
            None,
            "/api/dev/clock",
            Some(json!({"advanceSeconds": -1})),
        )
        .await;
    r.field_err("advanceSeconds");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn validation_failures_on_admin_bodies_name_the_field() {
    let s = TestServer::start().await;
    let admin = s.login(ADMIN).await;
    let d = demo(&s, &admin).await;
    let before = s.ids(&admin, "/api/admin/resources").await;
    let good = resource_body(&d.credential);
    let with = |key: &str, value: Value| {
        let mut body = good.clone();
        body[key] = value;
        body
    };
    let port =
        |from: Value, to: Value| json!([{"protocol": "tcp", "fromPort": from, "toPort": to}]);
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "out-of-range fromPort",
            with("ports", port(json!(70000), json!(80))),
            "ports[0].fromPort",
        ),
        (
            "out-of-range toPort",
            with("ports", port(json!(80), json!(65536))),
            "ports[0].toPort",
        ),
        (
            "negative port",
            with("ports", port(json!(-1), json!(80))),
            "ports[0].fromPort",
        ),
        (
            "port as text",
            with("ports", port(json!("22"), json!(22))),
            "ports[0].fromPort",
        ),
        (
            "reversed range",
            with("ports", port(json!(90), json!(80))),
            "ports[0]",
        ),
        (
            "unknown protocol",
            with(
                "ports",
                json!([{"protocol": "icmp", "fromPort": 1, "toPort": 1}]),
            ),
            "ports[0].protocol",
        ),
        ("no ports", with("ports", json!([])), "ports"),
        (
            "duplicate ports",
            with(
                "ports",
                json!([
                    {"protocol": "tcp", "fromPort": 22, "toPort": 22},
                    {"protocol": "tcp", "fromPort": 22, "toPort": 22}
                ]),
            ),
            "ports",
        ),
        (
            "bad sg id",
            with("securityGroupId", json!("sg-xyz")),
            "securityGroupId",
        ),
        (
            "upper-case sg id",
            with("securityGroupId", json!("sg-0E1A2B3C")),
            "securityGroupId",
        ),
        ("bad region", with("region", json!("mars")), "region"),
        ("region as number", with("region", json!(1)), "region"),
        ("empty name", with("name", json!("   ")), "name"),
        (
            "malformed credential id",
            with("credentialId", json!("nope")),
            "credentialId",
        ),
        (
            "unknown credential",
            with("credentialId", json!(uuid::Uuid::new_v4().to_string())),
            "credentialId",
        ),
    ];
    let mut failures = Vec::new();
    for (what, body, field) in cases {
        let r = s.post(&admin, "/api/admin/resources", body).await;
        if r.status != 400
            || r.json["error"]["code"] != "VALIDATION_FAILED"
            || r.json["error"]["fields"]
                .as_object()
                .is_none_or(|f| f.keys().collect::<Vec<_>>() != vec![field])
        {
            failures.push(format!(
                "{what}: wanted fields.{field}, got {} {}",
                r.status, r.text
            ));
        } else {
            r.field_err(field);
        }
    }
    // Unknown fields are rejected.
    let r = s
        .post(&admin, "/api/admin/resources", with("color", json!("red")))
        .await;
    let message = r.err(400, "VALIDATION_FAILED")["message"].as_str().unwrap();
    assert!(message.contains("unknown field `color`"), "{message}");
    assert_eq!(
        s.ids(&admin, "/api/admin/resources").await,
        before,
        "no invalid resource was created"
    );

    // Other admin bodies.
    let other: Vec<(&str, Method, String, Value, &str)> = vec![
        (
            "role hours too high",
            Method::POST,
            "/api/admin/roles".into(),
            json!({"name": "r", "maxSessionDurationHours": 25}),
            "maxSessionDurationHours",
        ),
        (
            "role hours zero",
            Method::PATCH,
            format!("/api/admin/roles/{}", d.role),
            json!({"maxSessionDurationHours": 0}),
            "maxSessionDurationHours",
        ),
        (
            "role with unknown resource",
            Method::POST,
            "/api/admin/roles".into(),
            json!({"name": "r", "resourceIds": [uuid::Uuid::new_v4().to_string()]}),
            "resourceIds",
        ),
        (
            "role with unknown user",
            Method::PATCH,
            format!("/api/admin/roles/{}", d.role),
            json!({"userIds": [uuid::Uuid::new_v4().to_string()]}),
            "userIds",
        ),
        (
            "bad e-mail",
            Method::POST,
            "/api/admin/users".into(),
            json!({"email": "not-an-email"}),
            "email",
        ),
        (
            "isAdmin as text",
            Method::PATCH,
            format!("/api/admin/users/{}", d.member),
            json!({"isAdmin": "yes"}),
            "isAdmin",
        ),
        (
            "unknown tier",
            Method::PUT,
            "/api/admin/organization".into(),
            json!({"name": "Demo Org", "tier": "GOLD"}),
            "tier",
        ),
        (
            "unknown provider",
            Method::POST,
            "/api/admin/credentials".into(),
            json!({"name": "c", "provider": "gcp", "region": REGION}),
            "provider",
        ),
        (
            "simulated credential with keys",
            Method::POST,
            "/api/admin/credentials".into(),
            json!({"name": "c", "provider": "simulated", "region": REGION, "roleArn": "arn:aws:iam::123456789012:role/X"}),
            "provider",
        ),
        (
            "aws key without secret",
            Method::POST,
            "/api/admin/credentials".into(),
            json!({"name": "c", "provider": "aws", "region": REGION, "accessKeyId": "AKIAIOSFODNN7EXAMPLE"}),
            "secretAccessKey",
        ),
        (
            "aws with a bad role ARN",
            Method::POST,
            "/api/admin/credentials".into(),
            json!({"name": "c", "provider": "aws", "region": REGION, "roleArn": "arn:aws:iam::1:role/X"}),
            "roleArn",
        ),
    ];
    for (what, method, path, body, field) in other {
        let r = s.call(method, Some(&admin), &path, Some(body)).await;
        if r.status != 400
            || r.json["error"]["fields"]
                .as_object()
                .is_none_or(|f| f.keys().collect::<Vec<_>>() != vec![field])
        {
            failures.push(format!(
                "{what}: wanted fields.{field}, got {} {}",
                r.status, r.text
            ));
        } else {
            r.field_err(field);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bodies_over_64_kib_are_too_large() {
    let s = TestServer::start().await;
    let admin = s.login(ADMIN).await;
    let member = s.login(MEMBER).await;
    let big = |size: usize| json!({"durationHours": 2, "padding": "x".repeat(size)}).to_string();

    let r = s
        .send(
            "a 70 KiB session body",
            s.client
                .post(s.url("/api/sessions"))
                .bearer_auth(&member)
                .header("content-type", "application/json")
                .body(big(70 * 1024)),
        )
        .await;
    assert_eq!(
        r.err(413, "PAYLOAD_TOO_LARGE")["message"],
        "The body is larger than 64 KiB"
    );
    // Just under the limit the body is read (and rejected for its unknown field).
    let r = s
        .send(
            "a 60 KiB session body",
            s.client
                .post(s.url("/api/sessions"))
                .bearer_auth(&member)
                .header("content-type", "application/json")
                .body(big(60 * 1024)),
        )
        .await;
    r.err(400, "VALIDATION_FAILED");

    // The optional extension body has the same limit.
    let active = s.settled_session(&member, 2, "ACTIVE").await;
    let id = active["id"].as_str().unwrap().to_owned();
    let r = s
        .send(
            "a 70 KiB extension body",
            s.client
                .post(s.url(&format!("/api/sessions/{id}/extend")))
                .bearer_auth(&member)
                .header("content-type", "application/json")
                .body(json!({"hours": 2, "padding": "x".repeat(70 * 1024)}).to_string()),
        )
        .await;
    r.err(413, "PAYLOAD_TOO_LARGE");
    let got = s.get(Some(&member), &format!("/api/sessions/{id}")).await;
    assert_eq!(got.ok(200)["expiresAt"], active["expiresAt"]);
    s.stop_and_wait(&member, &id).await;

    let body = json!({"name": "n".repeat(70 * 1024), "tier": "FREE"});
    let r = s.put(&admin, "/api/admin/organization", body).await;
    r.err(413, "PAYLOAD_TOO_LARGE");
    let org = s.get(Some(&admin), "/api/admin/organization").await;
    assert_eq!(org.ok(200)["tier"], "TEAM");
    assert_eq!(
        s.get(Some(&member), "/api/sessions")
            .await
            .ok(200)
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bodies_must_be_sent_as_json() {
    let s = TestServer::start().await;
    let admin = s.login(ADMIN).await;
    let member = s.login(MEMBER).await;
    let body = r#"{"durationHours":2}"#;
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let mut request = s
            .client
            .post(s.url("/api/sessions"))
            .bearer_auth(&member)
            .body(body);
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        let r = s.send(&format!("start as {content_type:?}"), request).await;
        assert_eq!(
            r.err(415, "UNSUPPORTED_MEDIA_TYPE")["message"],
            "Send the body as JSON with Content-Type: application/json",
        );
    }
    let r = s
        .send(
            "admin body as text",
            s.client
                .put(s.url("/api/admin/organization"))
                .bearer_auth(&admin)
                .header("content-type", "text/plain")
                .body(r#"{"name":"Demo Org","tier":"FREE"}"#),
        )
        .await;
    r.err(415, "UNSUPPORTED_MEDIA_TYPE");
    assert_eq!(
        s.get(Some(&member), "/api/sessions").await.ok(200),
        &json!([])
    );

    // JSON with parameters, and +json types, are JSON.
    let r = s
        .send(
            "start with a charset",
            s.client
                .post(s.url("/api/sessions"))
                .bearer_auth(&member)
                .header("content-type", "application/json; charset=utf-8")
                .body(body),
        )
        .await;
    let id = r.ok(202)["id"].as_str().unwrap().to_owned();
    s.wait_status(&member, &id, "ACTIVE").await;
    let r = s
        .send(
            "extend as +json",
            s.client
                .post(s.url(&format!("/api/sessions/{id}/extend")))
                .bearer_auth(&member)
                .header("content-type", "application/vnd.entryguard+json")
                .body(r#"{"hours":1}"#),
        )
        .await;
    r.ok(200);

    // A non-empty extension body without a content type.
    let r = s
        .send(
            "extend as text",
            s.client
                .post(s.url(&format!("/api/sessions/{id}/extend")))
                .bearer_auth(&member)
                .body(r#"{"hours":2}"#),
        )
        .await;
    r.err(415, "UNSUPPORTED_MEDIA_TYPE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn duration_exceeds_maximum_and_no_accessible_resources() {
    let s = TestServer::start().await;
    let admin = s.login(ADMIN).await;
    let member = s.login(MEMBER).await;

    // Beyond any plan.
    for hours in [25, 48, 1000] {
        let r = s
            .post(&member, "/api/sessions", json!({"durationHours": hours}))
            .await;
        assert_eq!(
            r.err(400, "DURATION_EXCEEDS_MAXIMUM")["message"],
            "Duration exceeds maximum allowed"
        );
    }
    // Beyond the FREE plan's 4 hours.
    s.set_plan(&admin, "FREE").await;
    for hours in [8, 24] {
        let r = s
            .post(&member, "/api/sessions", json!({"durationHours": hours}))
            .await;
        assert_eq!(
            r.err(400, "DURATION_EXCEEDS_MAXIMUM")["message"],
            "Duration exceeds maximum allowed"
        );
    }
    assert_eq!(
        s.get(Some(&member), "/api/sessions").await.ok(200),
        &json!([])
    );

    // The admin has no resources.
    let r = s
        .post(&admin, "/api/sessions", json!({"durationHours": 1}))
        .await;
    assert_eq!(
        r.err(400, "NO_ACCESSIBLE_RESOURCES")["message"],
        "User has no accessible cloud resources"
    );
    assert_eq!(
        s.get(Some(&admin), "/api/sessions").await.ok(200),
        &json!([])
    );
    let me = s.get(Some(&admin), "/api/me").await;
    assert_eq!(me.ok(200)["resourceCount"], json!(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_session_limit_and_session_state_conflicts() {
    let s = TestServer::start().await;
    let admin = s.login(ADMIN).await;
    let member = s.login(MEMBER).await;
    s.set_plan(&admin, "FREE").await;

    let first = s.start_session(&member, 2).await;
    let id = first["id"].as_str().unwrap().to_owned();
    let r = s
        .post(&member, "/api/sessions", json!({"durationHours": 1}))
        .await;
    assert_eq!(
        r.err(409, "CONCURRENT_SESSION_LIMIT")["message"],
        "You already have 1 active session(s), the most your plan allows. Stop one before starting another."
    );
    s.wait_status(&member, &id, "ACTIVE").await;
    s.post(&member, "/api/sessions", json!({"durationHours": 1}))
        .await
        .err(409, "CONCURRENT_SESSION_LIMIT");

    // EXTENSION_EXCEEDS_MAXIMUM: 2 h + 4 h passes the FREE plan's 4 h.
    let extend = format!("/api/sessions/{id}/extend");
    let r = s.post(&member, &extend, json!({"hours": 4})).await;
    assert_eq!(
        r.err(400, "EXTENSION_EXCEEDS_MAXIMUM")["message"],
        "The extension would exceed the maximum session duration of 4 hours"
    );
    let r = s.post(&member, &extend, json!({"hours": 25})).await;
    r.err(400, "EXTENSION_EXCEEDS_MAXIMUM");
    // Exactly up to the maximum is fine; one hour more is not.
    s.post(&member, &extend, json!({"hours": 2})).await.ok(200);
    s.call(Method::POST, Some(&member), &extend, None)
        .await
        .err(400, "EXTENSION_EXCEEDS_MAXIMUM");

    // Stopping frees the slot; a stopped session can neither be stopped nor extended.
    s.stop_and_wait(&member, &id).await;
    let r = s
        .call(
            Method::POST,
            Some(&member),
            &format!("/api/sessions/{id}/stop"),
            None,
        )
        .await;
    assert_eq!(
        r.err(409, "SESSION_NOT_STOPPABLE")["message"],
        "Only ACTIVE, PENDING or PARTIAL sessions can be stopped; this one is CANCELLED"
    );
    let r = s.call(Method::POST, Some(&member), &extend, None).await;
    assert_eq!(
        r.err(409, "SESSION_NOT_EXTENDABLE")["message"],
        "Only ACTIVE or PARTIAL sessions that have not expired can be extended; this one is CANCELLED"
    );
    let second = s.settled_session(&member, 4, "ACTIVE").await;
    let second_id = second["id"].as_str().unwrap();

    // Past its expiry (whether or not the sweeper got to it yet) a session cannot be extended.
    s.advance_clock(4 * 3600 + 1).await;
    let r = s
        .call(
            Method::POST,
            Some(&member),
            &format!("/api/sessions/{second_id}/extend"),
            None,
        )
        .await;
    r.err(409, "SESSION_NOT_EXTENDABLE");
    s.wait_status(&member, second_id, "EXPIRED").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conflicts_duplicate_email_credential_in_use_and_self_changes() {
    let s = TestServer::start().await;
    let admin = s.login(ADMIN).await;
    let d = demo(&s, &admin).await;
    let users_before = s.get(Some(&admin), "/api/admin/users").await.json;

    // A duplicate e-mail is reported on the `email` field (VALIDATION_FAILED, 400), whatever
    // its case.
    for email in [MEMBER, "DEV@Example.com", ADMIN] {
        let r = s
            .post(&admin, "/api/admin/users", json!({"email": email}))
            .await;
        let error = r.field_err("email");
        assert_eq!(
            error["fields"]["email"],
            "a user with this e-mail already exists"
        );
    }
    let r = s
        .patch(
            &admin,
            &format!("/api/admin/users/{}", d.member),
            json!({"email": ADMIN}),
        )
        .await;
    r.field_err("email");
    assert_eq!(
        s.get(Some(&admin), "/api/admin/users").await.ok(200),
        &users_before
    );

    // A credential still used by resources.
    let r = s
        .delete(&admin, &format!("/api/admin/credentials/{}", d.credential))
        .await;
    let message = r.err(409, "CONFLICT")["message"]
        .as_str()
        .unwrap()
        .to_owned();
    for name in [
        "Bastion host (SSH)",
        "Production database",
        "Internal admin console",
    ] {
        assert!(message.contains(name), "{message}");
    }
    assert!(s
        .ids(&admin, "/api/admin/credentials")
        .await
        .contains(&d.credential));

    // An admin cannot delete themself or drop their own admin rights.
    let me = s.get(Some(&admin), "/api/me").await;
    let admin_id = me.ok(200)["user"]["id"].as_str().unwrap().to_owned();
    let r = s
        .delete(&admin, &format!("/api/admin/users/{admin_id}"))
        .await;
    assert_eq!(
        r.err(409, "CONFLICT")["message"],
        "You cannot delete yourself"
    );
    let r = s
        .patch(
            &admin,
            &format!("/api/admin/users/{admin_id}"),
            json!({"isAdmin": false}),
        )
        .await;
    assert_eq!(
        r.err(409, "CONFLICT")["message"],
        "You cannot remove your own administrator rights"
    );
    assert_eq!(
        s.get(Some(&admin), "/api/admin/users").await.ok(200),
        &users_before
    );
    let me = s.get(Some(&admin), "/api/me").await;
    assert_eq!(me.ok(200)["user"]["isAdmin"], true);
}

/// docs/api.md: `fields` is present for validation errors that can be pinned to a field. A
/// missing required field can: the answer must name it in `fields`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_missing_required_field_is_named_in_fields() {
    let s = TestServer::start().await;
    let admin = s.login(ADMIN).await;
    let member = s.login(MEMBER).await;
    let d = demo(&s, &admin).await;
    let without = |key: &str| {
        let mut body = resource_body(&d.credential);
        body.as_object_mut().unwrap().remove(key);
        body
    };
    let cases: Vec<(&str, &str, Method, &str, Value)> = vec![
        (
            "durationHours",
            &member,
            Method::POST,
            "/api/sessions",
            json!({}),
        ),
        (
            "name",
            &admin,
            Method::POST,
            "/api/admin/resources",
            without("name"),
        ),
        (
            "ports",
            &admin,
            Method::POST,
            "/api/admin/resources",
            without("ports"),
        ),
        (
            "name",
            &admin,
            Method::PUT,
            "/api/admin/organization",
            json!({"tier": "TEAM"}),
        ),
        (
            "securityGroupId",
            &admin,
            Method::POST,
            "/api/admin/resources",
            without("securityGroupId"),
        ),
        (
            "email",
            &admin,
            Method::POST,
            "/api/admin/users",
            json!({"isAdmin": false}),
        ),
        (
            "name",
            &admin,
            Method::POST,
            "/api/admin/roles",
            json!({"resourceIds": []}),
        ),
        (
            "region",
            &admin,
            Method::POST,
            "/api/admin/credentials",
            json!({"name": "c", "provider": "simulated"}),
        ),
    ];
    let mut failures = Vec::new();
    for (field, token, method, path, body) in cases {
        let r = s.call(method.clone(), Some(token), path, Some(body)).await;
        r.err(400, "VALIDATION_FAILED");
        let message = r.json["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("missing field `{field}`")),
            "{message}"
        );
        let named = r.json["error"]["fields"]
            .as_object()
            .is_some_and(|f| f.keys().collect::<Vec<_>>() == vec![field]);
        if !named {
            failures.push(format!("{method} {path} without {field}: {}", r.text));
        }
    }
    assert!(
        failures.is_empty(),
        "`error.fields` does not name the missing field:\n{}",
        failures.join("\n")
    );
    // Nothing was created meanwhile.
    assert_eq!(
        s.get(Some(&member), "/api/sessions").await.ok(200),
        &json!([])
    );
    assert_eq!(s.ids(&admin, "/api/admin/resources").await.len(), 3);
}

/// A body must be a JSON object: an array holding the field values in order is the wrong type,
/// not another spelling of the object.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_json_array_is_not_accepted_in_place_of_an_object() {
    let s = TestServer::start().await;
    let admin = s.login(ADMIN).await;
    let member = s.login(MEMBER).await;
    let cases: Vec<(&str, Method, &str, Value)> = vec![
        (&member, Method::POST, "/api/sessions", json!([2])),
        (
            &admin,
            Method::PUT,
            "/api/admin/organization",
            json!(["Array Org", "FREE"]),
        ),
        (
            &admin,
            Method::POST,
            "/api/admin/users",
            json!(["array@example.com", true, []]),
        ),
    ];
    let mut failures = Vec::new();
    for (token, method, path, body) in cases {
        let r = s
            .call(method.clone(), Some(token), path, Some(body.clone()))
            .await;
        if r.status != 400 || r.json["error"]["code"] != "VALIDATION_FAILED" {
            failures.push(format!("{method} {path} {body}: {} {}", r.status, r.text));
        }
    }
    let org = s.get(Some(&admin), "/api/admin/organization").await;
    let users = s.get(Some(&admin), "/api/admin/users").await;
    let sessions = s.get(Some(&member), "/api/sessions").await;
    assert!(
        failures.is_empty(),
        "array bodies were accepted:\n{}\norganization now: {}\nusers now: {}\nsessions now: {}",
        failures.join("\n"),
        org.text,
        users.text,
        sessions.text
    );
    assert_eq!(org.ok(200)["tier"], "TEAM");
    assert_eq!(sessions.ok(200), &json!([]));
}

/// `/api/` is under the API: like any unknown API route it answers the JSON 404, and is never
/// handed to the web app (which would answer 200 with its index.html).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_api_root_with_a_trailing_slash_is_an_api_404_not_the_web_app() {
    let s = TestServer::start_with_web_app("<!doctype html><title>EntryGuard</title>").await;
    // The web app is served outside /api ...
    let r = s.get(None, "/some/page").await;
    assert_eq!(r.status, 200);
    assert!(r.text.contains("<title>EntryGuard</title>"));
    // ... while unknown API routes are JSON 404s.
    for path in ["/api", "/api/nope", "/api/me/", "/api/"] {
        let r = s.get(None, path).await;
        assert!(
            !r.text.contains("<title>"),
            "{path} served the web app: {} {}",
            r.status,
            r.text
        );
        assert_eq!(
            r.err(404, "NOT_FOUND")["message"],
            "Route not found",
            "{path}"
        );
    }
}
