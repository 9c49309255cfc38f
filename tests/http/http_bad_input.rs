//! Bad input on every route that takes any: malformed, oversized or mistyped bodies, unknown
//! fields, invalid security-group ids, regions, ports, names, e-mails, durations the plan does
//! not offer, bad query parameters. Each is a 4xx with the standard error body, and none leaves
//! anything behind: after every rejection the organization, its lists, the sessions and the
//! admin audit log are exactly as before. (No route takes a CIDR: the client's address is
//! detected server-side, and a body that tries to name one is rejected for its unknown field.)

use reqwest::Method;
use serde_json::{json, Map, Value};

use entryguard_tests::server::{TestServer, ADMIN, MEMBER, REGION, SPARE_GROUPS};

/// Everything a rejected request could have half-written, as the API shows it.
async fn everything(s: &TestServer, admin: &str, member: &str) -> Value {
    let mut out = Map::new();
    for path in [
        "/api/admin/organization",
        "/api/admin/credentials",
        "/api/admin/resources",
        "/api/admin/roles",
        "/api/admin/users",
        "/api/admin/webhooks",
        // Admin changes are audited in the request that makes them.
        "/api/admin/audit-logs?type=admin.change&limit=200",
    ] {
        out.insert(path.into(), s.get(Some(admin), path).await.ok(200).clone());
    }
    out.insert(
        "member sessions".into(),
        s.get(Some(member), "/api/sessions").await.ok(200).clone(),
    );
    out.insert(
        "admin sessions".into(),
        s.get(Some(admin), "/api/sessions").await.ok(200).clone(),
    );
    Value::Object(out)
}

fn first_id(list: &Value) -> String {
    list[0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("empty list: {list}"))
        .to_owned()
}

/// The demo organization, with a member session ACTIVE so extensions can be tried.
struct World {
    s: TestServer,
    admin: String,
    member: String,
    credential: String,
    resource: String,
    role: String,
    member_id: String,
    admin_id: String,
    session: String,
    webhook: String,
}

impl World {
    async fn new() -> Self {
        let s = TestServer::start().await;
        let admin = s.login(ADMIN).await;
        let member = s.login(MEMBER).await;
        let session = s.settled_session(&member, 2, "ACTIVE").await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let credential = first_id(s.get(Some(&admin), "/api/admin/credentials").await.ok(200));
        let resource = first_id(s.get(Some(&admin), "/api/admin/resources").await.ok(200));
        let role = first_id(s.get(Some(&admin), "/api/admin/roles").await.ok(200));
        let member_id = s.find(&admin, "/api/admin/users", "email", MEMBER).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let admin_id = s.find(&admin, "/api/admin/users", "email", ADMIN).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let webhook = s
            .post(
                &admin,
                "/api/admin/webhooks",
                json!({"url": "https://hooks.example.com/a", "events": ["system.alert"]}),
            )
            .await
            .ok(201)["webhook"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        Self {
            s,
            admin,
            member,
            credential,
            resource,
            role,
            member_id,
            admin_id,
            session,
            webhook,
        }
    }

    async fn everything(&self) -> Value {
        everything(&self.s, &self.admin, &self.member).await
    }

    /// Every route with a JSON body: (who calls it, method, path, a body it accepts).
    fn body_routes(&self) -> Vec<(&str, Method, String, Value)> {
        vec![
            (
                &self.member,
                Method::POST,
                "/api/sessions".into(),
                json!({"durationHours": 2}),
            ),
            (
                &self.member,
                Method::POST,
                format!("/api/sessions/{}/extend", self.session),
                json!({"hours": 2}),
            ),
            (
                &self.admin,
                Method::PUT,
                "/api/admin/organization".into(),
                json!({"name": "Demo Org Renamed"}),
            ),
            (
                &self.admin,
                Method::POST,
                "/api/admin/credentials".into(),
                json!({"name": "c", "provider": "simulated", "region": REGION}),
            ),
            (
                &self.admin,
                Method::POST,
                "/api/admin/resources".into(),
                json!({
                    "name": "spare",
                    "credentialId": self.credential,
                    "securityGroupId": SPARE_GROUPS[0],
                    "region": REGION,
                    "ports": [{"protocol": "tcp", "fromPort": 8080, "toPort": 8081}],
                }),
            ),
            (
                &self.admin,
                Method::PATCH,
                format!("/api/admin/resources/{}", self.resource),
                json!({
                    "name": "renamed",
                    "credentialId": self.credential,
                    "securityGroupId": SPARE_GROUPS[1],
                    "region": "us-east-1",
                    "ports": [{"protocol": "udp", "fromPort": 53, "toPort": 53}],
                }),
            ),
            (
                &self.admin,
                Method::POST,
                "/api/admin/roles".into(),
                json!({
                    "name": "r",
                    "maxSessionDurationHours": 2,
                    "resourceIds": [self.resource],
                    "userIds": [self.member_id],
                }),
            ),
            (
                &self.admin,
                Method::PATCH,
                format!("/api/admin/roles/{}", self.role),
                json!({
                    "name": "renamed",
                    "maxSessionDurationHours": 1,
                    "resourceIds": [],
                    "userIds": [],
                }),
            ),
            (
                &self.admin,
                Method::POST,
                "/api/admin/users".into(),
                json!({"email": "new@example.com", "isAdmin": true, "resourceIds": [self.resource]}),
            ),
            (
                &self.admin,
                Method::PATCH,
                format!("/api/admin/users/{}", self.member_id),
                json!({"email": "renamed@example.com", "isAdmin": true, "resourceIds": []}),
            ),
            (
                &self.admin,
                Method::POST,
                "/api/admin/sessions/revoke-all".into(),
                json!({"resourceId": self.resource}),
            ),
            (
                &self.admin,
                Method::POST,
                "/api/admin/webhooks".into(),
                json!({"url": "https://hooks.example.com/b", "events": ["session.failed"], "format": "SLACK", "enabled": false}),
            ),
            (
                &self.admin,
                Method::PATCH,
                format!("/api/admin/webhooks/{}", self.webhook),
                json!({"url": "https://hooks.example.com/c", "events": ["rule.failed"], "format": "JSON", "enabled": false}),
            ),
        ]
    }

    async fn raw(
        &self,
        token: &str,
        method: &Method,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> entryguard_tests::server::Resp {
        let mut request = self
            .s
            .client
            .request(method.clone(), self.s.url(path))
            .bearer_auth(token)
            .body(body);
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        self.s.send(&format!("{method} {path}"), request).await
    }
}

/// A value of another JSON type than `valid`, for each such type (`null` too, unless the field
/// may be null).
fn wrong_types(valid: &Value, nullable: bool) -> Vec<Value> {
    let mut out = vec![
        json!(true),
        json!(7),
        json!(2.5),
        json!("x"),
        json!([]),
        json!({}),
    ];
    if !nullable {
        out.push(Value::Null);
    }
    out.retain(|v| match (v, valid) {
        (Value::Bool(_), Value::Bool(_)) | (Value::String(_), Value::String(_)) => false,
        (Value::Array(_), Value::Array(_)) | (Value::Object(_), Value::Object(_)) => false,
        // A whole number where a whole number goes is a range question, not a type one.
        (Value::Number(n), Value::Number(_)) => !n.is_i64(),
        _ => true,
    });
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_oversized_and_non_json_bodies_change_nothing() {
    let w = World::new().await;
    let before = w.everything().await;
    let mut deep = "{\"a\":".repeat(200);
    deep.push('1');
    deep.push_str(&"}".repeat(200));
    let malformed: Vec<(&str, Vec<u8>)> = vec![
        ("invalid JSON", b"{nope".to_vec()),
        // An optional body must not read whitespace as "no body" (that would revoke everything).
        ("only whitespace", b" \n\t".to_vec()),
        ("truncated", b"{\"name\": \"x\"".to_vec()),
        ("trailing characters", b"{} {}".to_vec()),
        ("an array", b"[1, 2]".to_vec()),
        ("a string", b"\"text\"".to_vec()),
        ("a number", b"42".to_vec()),
        ("null", b"null".to_vec()),
        ("nested 200 deep", deep.into_bytes()),
        ("invalid UTF-8", b"{\"name\": \"\xff\xfe\"}".to_vec()),
        ("a byte-order mark", b"\xef\xbb\xbf{}".to_vec()),
    ];
    let mut failures = Vec::new();
    for (token, method, path, valid) in w.body_routes() {
        for (what, body) in &malformed {
            let r = w
                .raw(
                    token,
                    &method,
                    &path,
                    Some("application/json"),
                    body.clone(),
                )
                .await;
            if r.status != 400 {
                failures.push(format!(
                    "{method} {path} with {what}: {} {}",
                    r.status, r.text
                ));
                continue;
            }
            r.err(400, "VALIDATION_FAILED");
        }
        // Duplicate keys: the second value would silently win.
        let key = valid.as_object().unwrap().keys().next().unwrap().clone();
        let duplicate = format!("{{{k}: {v}, {k}: {v}}}", k = json!(key), v = valid[&key]);
        let r = w
            .raw(
                token,
                &method,
                &path,
                Some("application/json"),
                duplicate.into_bytes(),
            )
            .await;
        r.err(400, "VALIDATION_FAILED");

        // Over 64 KiB, even if it would otherwise be valid.
        let mut big = valid.clone();
        big["padding"] = json!("x".repeat(70 * 1024));
        let r = w
            .raw(
                token,
                &method,
                &path,
                Some("application/json"),
                big.to_string().into_bytes(),
            )
            .await;
        r.err(413, "PAYLOAD_TOO_LARGE");

        // A valid body that is not declared as JSON.
        for content_type in [
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            None,
        ] {
            let r = w
                .raw(
                    token,
                    &method,
                    &path,
                    content_type,
                    valid.to_string().into_bytes(),
                )
                .await;
            r.err(415, "UNSUPPORTED_MEDIA_TYPE");
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(
        w.everything().await,
        before,
        "a rejected body changed something"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unknown_fields_and_wrong_types_name_the_field_and_change_nothing() {
    let w = World::new().await;
    let before = w.everything().await;
    let mut failures = Vec::new();
    for (token, method, path, valid) in w.body_routes() {
        let patch = method == Method::PATCH || path.ends_with("/extend");
        // An unknown field, next to valid ones. A client cannot name its own address either.
        for extra in ["color", "cidr", "ip", "orgId", "id"] {
            let mut body = valid.clone();
            body[extra] = json!("0.0.0.0/0");
            let r =
                w.s.call(method.clone(), Some(token), &path, Some(body))
                    .await;
            let message = r.err(400, "VALIDATION_FAILED")["message"].as_str().unwrap();
            if !message.contains(&format!("unknown field `{extra}`")) {
                failures.push(format!("{method} {path} +{extra}: {message}"));
            }
        }
        for (key, value) in valid.as_object().unwrap() {
            let nullable = patch
                || matches!(
                    key.as_str(),
                    "maxSessionDurationHours" | "roleArn" | "externalId"
                );
            for wrong in wrong_types(value, nullable) {
                let mut body = valid.clone();
                body[key] = wrong.clone();
                let r =
                    w.s.call(method.clone(), Some(token), &path, Some(body))
                        .await;
                let named = r.status == 400
                    && r.json["error"]["code"] == "VALIDATION_FAILED"
                    && r.json["error"]["fields"]
                        .as_object()
                        .is_some_and(|f| f.len() == 1 && f.keys().all(|k| k.starts_with(key)));
                if named {
                    r.err(400, "VALIDATION_FAILED");
                } else {
                    failures.push(format!(
                        "{method} {path} with {key} = {wrong}: {} {}",
                        r.status, r.text
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(
        w.everything().await,
        before,
        "a rejected body changed something"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invalid_values_are_rejected_whole_even_next_to_valid_ones() {
    let w = World::new().await;
    let s = &w.s;
    let before = w.everything().await;
    let unknown = uuid::Uuid::new_v4().to_string();
    let ranges = |n: u16| -> Value {
        (0..n)
            .map(|i| json!({"protocol": "tcp", "fromPort": 1000 + i, "toPort": 1000 + i}))
            .collect()
    };
    let port =
        |from: Value, to: Value| json!([{"protocol": "tcp", "fromPort": from, "toPort": to}]);
    let resource = format!("/api/admin/resources/{}", w.resource);
    let role = format!("/api/admin/roles/{}", w.role);
    let member = format!("/api/admin/users/{}", w.member_id);
    let new_resource = |key: &str, value: Value| {
        let mut body = json!({
            "name": "spare",
            "credentialId": w.credential,
            "securityGroupId": SPARE_GROUPS[0],
            "region": REGION,
            "ports": [{"protocol": "tcp", "fromPort": 22, "toPort": 22}],
        });
        body[key] = value;
        body
    };
    // (method, path, body, the field named in `fields`). Each body also holds valid changes,
    // which must not be applied either.
    let cases: Vec<(Method, String, Value, &str)> = vec![
        // Security group ids, regions, ports, names on a resource, created or patched.
        (
            Method::POST,
            "/api/admin/resources".into(),
            new_resource("securityGroupId", json!("sg-12345")),
            "securityGroupId",
        ),
        (
            Method::POST,
            "/api/admin/resources".into(),
            new_resource("securityGroupId", json!("sg-0123456789ABCDEF0")),
            "securityGroupId",
        ),
        (
            Method::POST,
            "/api/admin/resources".into(),
            new_resource("securityGroupId", json!(" sg-0e1a2b3c")),
            "securityGroupId",
        ),
        (
            Method::POST,
            "/api/admin/resources".into(),
            new_resource("region", json!("eu-west-1 ")),
            "region",
        ),
        (
            Method::POST,
            "/api/admin/resources".into(),
            new_resource("region", json!("EU-WEST-1")),
            "region",
        ),
        (
            Method::POST,
            "/api/admin/resources".into(),
            new_resource("ports", ranges(21)),
            "ports",
        ),
        (
            Method::POST,
            "/api/admin/resources".into(),
            new_resource("ports", port(json!(0), json!(65536))),
            "ports[0].toPort",
        ),
        (
            Method::POST,
            "/api/admin/resources".into(),
            new_resource("ports", port(json!(22.5), json!(23))),
            "ports[0].fromPort",
        ),
        (
            Method::POST,
            "/api/admin/resources".into(),
            new_resource("ports", json!([{"protocol": "tcp", "fromPort": 22}])),
            "ports[0].toPort",
        ),
        (
            Method::POST,
            "/api/admin/resources".into(),
            new_resource(
                "ports",
                json!([{"protocol": "tcp", "fromPort": 22, "toPort": 22, "cidr": "0.0.0.0/0"}]),
            ),
            "ports[0].cidr",
        ),
        (
            Method::POST,
            "/api/admin/resources".into(),
            new_resource("name", json!("n".repeat(101))),
            "name",
        ),
        (
            Method::POST,
            "/api/admin/resources".into(),
            new_resource("name", json!("tab\tinside")),
            "name",
        ),
        (
            Method::PATCH,
            resource.clone(),
            json!({"name": "renamed", "securityGroupId": "sg-xyz"}),
            "securityGroupId",
        ),
        (
            Method::PATCH,
            resource.clone(),
            json!({"name": "renamed", "region": "mars"}),
            "region",
        ),
        (
            Method::PATCH,
            resource.clone(),
            json!({"name": "renamed", "ports": port(json!(-1), json!(22))}),
            "ports[0].fromPort",
        ),
        (
            Method::PATCH,
            resource.clone(),
            json!({"name": "renamed", "ports": port(json!(90), json!(80))}),
            "ports[0]",
        ),
        (
            Method::PATCH,
            resource.clone(),
            json!({"name": "renamed", "ports": []}),
            "ports",
        ),
        (
            Method::PATCH,
            resource.clone(),
            json!({"name": "renamed", "ports": ranges(21)}),
            "ports",
        ),
        (
            Method::PATCH,
            resource.clone(),
            json!({"name": "renamed", "credentialId": unknown}),
            "credentialId",
        ),
        (
            Method::PATCH,
            resource.clone(),
            json!({"region": "us-east-1", "name": ""}),
            "name",
        ),
        // Roles.
        (
            Method::POST,
            "/api/admin/roles".into(),
            json!({"name": "r", "maxSessionDurationHours": 25}),
            "maxSessionDurationHours",
        ),
        (
            Method::POST,
            "/api/admin/roles".into(),
            json!({"name": "r", "resourceIds": ["not-a-uuid"]}),
            "resourceIds[0]",
        ),
        (
            Method::PATCH,
            role.clone(),
            json!({"name": "renamed", "userIds": [unknown]}),
            "userIds",
        ),
        (
            Method::PATCH,
            role.clone(),
            json!({"name": "renamed", "resourceIds": [unknown]}),
            "resourceIds",
        ),
        (
            Method::PATCH,
            role.clone(),
            json!({"name": "renamed", "maxSessionDurationHours": 0}),
            "maxSessionDurationHours",
        ),
        (
            Method::PATCH,
            role.clone(),
            json!({"maxSessionDurationHours": 1, "name": "\u{7}"}),
            "name",
        ),
        // Users.
        (
            Method::POST,
            "/api/admin/users".into(),
            json!({"email": "a b@example.com"}),
            "email",
        ),
        (
            Method::POST,
            "/api/admin/users".into(),
            json!({"email": "new@example.com", "resourceIds": [unknown]}),
            "resourceIds",
        ),
        (
            Method::PATCH,
            member.clone(),
            json!({"isAdmin": true, "email": "no-at-sign"}),
            "email",
        ),
        (
            Method::PATCH,
            member.clone(),
            json!({"isAdmin": true, "resourceIds": [unknown]}),
            "resourceIds",
        ),
        // The organization.
        (
            Method::PUT,
            "/api/admin/organization".into(),
            json!({"name": "Renamed", "tier": "team"}),
            "tier",
        ),
        (
            Method::PUT,
            "/api/admin/organization".into(),
            json!({"name": "   ", "tier": "FREE"}),
            "name",
        ),
        // Credentials.
        (
            Method::POST,
            "/api/admin/credentials".into(),
            json!({"name": "c", "provider": "simulated", "region": "moon-1"}),
            "region",
        ),
        (
            Method::POST,
            "/api/admin/credentials".into(),
            json!({"name": "c", "provider": "aws", "region": REGION, "accessKeyId": "akiaiosfodnn7example", "secretAccessKey": "s"}),
            "accessKeyId",
        ),
        (
            Method::POST,
            "/api/admin/credentials".into(),
            json!({"name": "c", "provider": "aws", "region": REGION, "roleArn": "arn:aws:iam::123456789012:role/X", "externalId": "x"}),
            "externalId",
        ),
        (
            Method::POST,
            "/api/admin/credentials".into(),
            json!({"name": "c", "provider": "aws", "region": REGION}),
            "roleArn",
        ),
        // Only a role is assumed with an external id: keys or a simulated credential cannot hold one.
        (
            Method::POST,
            "/api/admin/credentials".into(),
            json!({"name": "c", "provider": "aws", "region": REGION, "accessKeyId": "AKIAIOSFODNN7EXAMPLE", "secretAccessKey": "s", "externalId": "my-external-id"}),
            "externalId",
        ),
        (
            Method::POST,
            "/api/admin/credentials".into(),
            json!({"name": "c", "provider": "simulated", "region": REGION, "externalId": "my-external-id"}),
            "externalId",
        ),
        (
            Method::POST,
            "/api/admin/credentials".into(),
            json!({"name": "c", "provider": "simulated", "region": REGION, "roleArn": "arn:aws:iam::123456789012:role/X"}),
            "provider",
        ),
        (
            Method::POST,
            "/api/admin/credentials".into(),
            json!({"name": "c", "provider": "aws", "region": REGION, "accessKeyId": "AKIAIOSFODNN7EXAMPLE", "secretAccessKey": "s", "roleArn": "arn:aws:iam::123456789012:role/X"}),
            "roleArn",
        ),
        (
            Method::POST,
            "/api/admin/credentials".into(),
            json!({"name": "c", "provider": "aws", "region": REGION, "accessKeyId": "AKIAIOSFODNN7EXAMPLE"}),
            "secretAccessKey",
        ),
        (
            Method::POST,
            "/api/admin/credentials".into(),
            json!({"name": "c", "provider": "aws", "region": REGION, "roleArn": "arn:aws:iam::123456789012:user/X"}),
            "roleArn",
        ),
    ];
    let mut failures = Vec::new();
    for (method, path, body, field) in cases {
        let r = s
            .call(method.clone(), Some(&w.admin), &path, Some(body.clone()))
            .await;
        let named = r.status == 400
            && r.json["error"]["fields"]
                .as_object()
                .is_some_and(|f| f.keys().collect::<Vec<_>>() == vec![field]);
        if named {
            r.field_err(field);
        } else {
            failures.push(format!(
                "{method} {path} {body}: wanted fields.{field}, got {} {}",
                r.status, r.text
            ));
        }
    }
    // An admin's own change that also drops their admin rights is refused whole.
    let r = s
        .patch(
            &w.admin,
            &format!("/api/admin/users/{}", w.admin_id),
            json!({"email": "boss@example.com", "isAdmin": false}),
        )
        .await;
    r.err(409, "CONFLICT");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(
        w.everything().await,
        before,
        "a rejected change was partly applied"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_address_proofs_start_nothing() {
    let w = World::new().await;
    let s = &w.s;
    let before = w.everything().await;
    let start = |proofs: Value| {
        s.post(
            &w.member,
            "/api/sessions",
            json!({"durationHours": 2, "addressProofs": proofs}),
        )
    };
    for (proofs, field) in [
        (json!("a-proof"), "addressProofs"),
        (json!({"proof": "x"}), "addressProofs"),
        (json!(null), "addressProofs"),
        (json!([1]), "addressProofs[0]"),
        (json!([null]), "addressProofs[0]"),
        (json!(["x", "y", "z"]), "addressProofs"),
    ] {
        start(proofs).await.field_err(field);
    }
    for garbage in ["", ".", "x.y", "a.b.c", &"A".repeat(4000)] {
        start(json!([garbage]))
            .await
            .err(400, "ADDRESS_PROOF_INVALID");
    }
    // An address is never taken from the body.
    s.post(
        &w.member,
        "/api/sessions",
        json!({"durationHours": 2, "addresses": ["198.51.100.1"]}),
    )
    .await
    .err(400, "VALIDATION_FAILED");
    assert_eq!(w.everything().await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn durations_the_plan_does_not_offer_start_nothing() {
    let w = World::new().await;
    let s = &w.s;
    let before = w.everything().await;
    let start = |hours: Value| s.post(&w.member, "/api/sessions", json!({"durationHours": hours}));
    // TEAM offers 1, 2, 4, 8, 12, 16 and 24 hours.
    for hours in [3, 5, 6, 7, 9, 23] {
        let r = start(json!(hours)).await;
        assert_eq!(
            r.field_err("durationHours")["fields"]["durationHours"],
            "Duration must be one of 1, 2, 4, 8, 12, 16 or 24 hours",
            "{hours} h"
        );
    }
    for hours in [
        json!(0),
        json!(-2),
        json!(2.5),
        json!("2"),
        json!(4_294_967_296u64),
        json!(null),
    ] {
        start(hours).await.field_err("durationHours");
    }
    // FREE offers 1, 2 and 4 hours; more is beyond its maximum.
    s.set_plan(&w.admin, "FREE").await;
    let r = start(json!(3)).await;
    assert_eq!(
        r.field_err("durationHours")["fields"]["durationHours"],
        "Duration must be one of 1, 2 or 4 hours"
    );
    for hours in [8, 12, 24, 25] {
        start(json!(hours))
            .await
            .err(400, "DURATION_EXCEEDS_MAXIMUM");
    }
    // A role's maximum lowers what its members may ask for.
    s.set_plan(&w.admin, "TEAM").await;
    s.patch(
        &w.admin,
        &format!("/api/admin/roles/{}", w.role),
        json!({"maxSessionDurationHours": 4}),
    )
    .await
    .ok(200);
    for hours in [8, 24] {
        start(json!(hours))
            .await
            .err(400, "DURATION_EXCEEDS_MAXIMUM");
    }
    s.patch(
        &w.admin,
        &format!("/api/admin/roles/{}", w.role),
        json!({"maxSessionDurationHours": null}),
    )
    .await
    .ok(200);
    // Only the one ACTIVE session of the set-up exists; the changes above were the admin's.
    let after = w.everything().await;
    for key in [
        "member sessions",
        "admin sessions",
        "/api/admin/resources",
        "/api/admin/roles",
    ] {
        assert_eq!(after[key], before[key], "{key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_query_parameters_are_validation_errors() {
    let w = World::new().await;
    let s = &w.s;
    for field in ["from", "to", "type", "userId", "cursor", "limit"] {
        let r = s
            .get(Some(&w.admin), &format!("/api/admin/audit-logs?{field}="))
            .await;
        assert_eq!(
            r.field_err(field)["fields"][field],
            "must not be empty; leave the parameter out instead"
        );
    }
    for query in [
        "limit=1&limit=2",
        "limit=%FF",
        "type=admin.change&type=auth.login",
        "userId=1",
        "page=2",
    ] {
        s.get(Some(&w.admin), &format!("/api/admin/audit-logs?{query}"))
            .await
            .err(400, "VALIDATION_FAILED");
    }
    // The live-access filters: ids, not blanks or other words.
    for field in ["userId", "resourceId"] {
        let r = s
            .get(Some(&w.admin), &format!("/api/admin/sessions?{field}="))
            .await;
        assert_eq!(
            r.field_err(field)["fields"][field],
            "must not be empty; leave the parameter out instead"
        );
        s.get(Some(&w.admin), &format!("/api/admin/sessions?{field}=1"))
            .await
            .field_err(field);
    }
    s.get(Some(&w.admin), "/api/admin/sessions?status=ACTIVE")
        .await
        .err(400, "VALIDATION_FAILED");
    s.get(
        Some(&w.admin),
        &format!("/api/admin/sessions?userId={}", uuid::Uuid::new_v4()),
    )
    .await
    .err(404, "NOT_FOUND");
    // The IAM policy needs its credential, and only that.
    s.get(Some(&w.admin), "/api/admin/iam-policy")
        .await
        .field_err("credentialId");
    let r = s
        .get(
            Some(&w.admin),
            &format!(
                "/api/admin/iam-policy?credentialId={}&format=yaml",
                w.credential
            ),
        )
        .await;
    let message = r.err(400, "VALIDATION_FAILED")["message"].as_str().unwrap();
    assert!(message.contains("unknown field `format`"), "{message}");
    s.get(
        Some(&w.admin),
        &format!("/api/admin/iam-policy?credentialId={}", w.credential),
    )
    .await
    .ok(200);
}
