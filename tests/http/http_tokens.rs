//! Personal API tokens over HTTP: shown once, stored only as a hash, listed without their
//! secret, revocable, expiring, with the time of last use; one user's tokens are invisible to
//! everyone else.

use reqwest::Method;
use serde_json::{json, Value};

use entryguard_tests::server::{TestServer, ADMIN, MEMBER};

async fn create(s: &TestServer, session: &str, body: Value) -> Value {
    s.post(session, "/api/me/tokens", body)
        .await
        .ok(201)
        .clone()
}

async fn list(s: &TestServer, session: &str) -> Vec<Value> {
    let r = s.get(Some(session), "/api/me/tokens").await;
    r.ok(200)["tokens"]
        .as_array()
        .unwrap_or_else(|| panic!("no tokens list: {}", r.text))
        .clone()
}

/// Every file under `dir`, as bytes.
fn files(dir: &std::path::Path) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.extend(bytes);
        }
    }
    out
}

fn time(v: &Value) -> chrono::DateTime<chrono::Utc> {
    serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("not a time: {v}: {e}"))
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn a_token_is_shown_once_works_like_a_sign_in_and_stops_when_revoked() {
    let s = TestServer::start().await;
    let session = s.login(MEMBER).await;
    assert!(list(&s, &session).await.is_empty());

    let created = create(&s, &session, json!({"name": "  CI pipeline  "})).await;
    let token = created["token"].as_str().unwrap().to_owned();
    assert!(
        token.starts_with("egt_") && token.len() == 4 + 64,
        "{token}"
    );
    assert_eq!(created["name"], json!("CI pipeline"));
    assert_eq!(created["expiresAt"], Value::Null);
    assert_eq!(created["lastUsedAt"], Value::Null);
    let keys: Vec<&str> = created
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys.iter()
            .copied()
            .collect::<std::collections::BTreeSet<_>>(),
        [
            "createdAt",
            "expiresAt",
            "id",
            "lastUsedAt",
            "name",
            "token"
        ]
        .into()
    );

    // Listed without its secret.
    let listed = list(&s, &session).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], created["id"]);
    assert!(listed[0].get("token").is_none(), "{}", listed[0]);
    assert!(!listed[0].to_string().contains(&token));

    // It signs in like the user, and its use is recorded.
    let me = s.get(Some(&token), "/api/me").await;
    assert_eq!(me.ok(200)["user"]["email"], json!(MEMBER));
    s.post(&token, "/api/sessions", json!({"durationHours": 1}))
        .await
        .ok(202);
    let used = list(&s, &session).await;
    let last_used = time(&used[0]["lastUsedAt"]);
    assert!(time(&created["createdAt"]) <= last_used && last_used <= s.app.now());

    // The store holds only its hash: the plaintext is nowhere in the data directory.
    assert!(!contains(&files(s.data_dir()), &token));
    assert!(!contains(&files(s.data_dir()), &token["egt_".len()..]));

    // Revoked: the token stops working at once; revoking again is a 404.
    let id = created["id"].as_str().unwrap();
    let path = format!("/api/me/tokens/{id}");
    let r = s.call(Method::DELETE, Some(&session), &path, None).await;
    assert_eq!(r.status, 204, "{}", r.text);
    s.get(Some(&token), "/api/me")
        .await
        .err(401, "UNAUTHENTICATED");
    s.delete(&session, &path).await.err(404, "NOT_FOUND");
    assert!(list(&s, &session).await.is_empty());

    // Creating and revoking are audited, without the secret.
    let admin = s.login(ADMIN).await;
    let events = s.wait_audit(&admin, "?type=auth.token", 2).await;
    for e in &events {
        assert_eq!(e["actorEmail"], json!(MEMBER), "{e}");
        assert!(!e.to_string().contains(&token));
    }
}

#[tokio::test]
async fn tokens_expire_after_the_days_asked_for() {
    let s = TestServer::start().await;
    let session = s.login(MEMBER).await;
    let created = create(&s, &session, json!({"name": "laptop", "expiresInDays": 1})).await;
    let token = created["token"].as_str().unwrap().to_owned();
    assert_eq!(
        time(&created["expiresAt"]) - time(&created["createdAt"]),
        chrono::Duration::days(1)
    );
    s.get(Some(&token), "/api/me").await.ok(200);
    // The test clock keeps running in real time too, hence the minute of margin.
    s.advance_clock(24 * 3600 - 60).await;
    s.get(Some(&token), "/api/me").await.ok(200);
    s.advance_clock(61).await;
    s.get(Some(&token), "/api/me")
        .await
        .err(401, "UNAUTHENTICATED");
}

#[tokio::test]
async fn one_users_tokens_are_invisible_to_everyone_else() {
    let s = TestServer::start().await;
    let member = s.login(MEMBER).await;
    let admin = s.login(ADMIN).await;
    let mine = create(&s, &member, json!({"name": "mine"})).await;
    let id = mine["id"].as_str().unwrap();
    assert!(
        list(&s, &admin).await.is_empty(),
        "an admin does not see members' tokens"
    );
    // Not even an admin of the same organization can revoke it: it looks missing.
    s.delete(&admin, &format!("/api/me/tokens/{id}"))
        .await
        .err(404, "NOT_FOUND");
    s.get(Some(mine["token"].as_str().unwrap()), "/api/me")
        .await
        .ok(200);
}

#[tokio::test]
async fn bad_token_requests_are_rejected_and_write_nothing() {
    let s = TestServer::start().await;
    let session = s.login(MEMBER).await;
    let cases = [
        (json!({}), "name"),
        (json!({"name": ""}), "name"),
        (json!({"name": "   "}), "name"),
        (json!({"name": "x".repeat(101)}), "name"),
        (json!({"name": 7}), "name"),
        (json!({"name": "ok", "expiresInDays": 0}), "expiresInDays"),
        (json!({"name": "ok", "expiresInDays": 366}), "expiresInDays"),
        (json!({"name": "ok", "expiresInDays": -3}), "expiresInDays"),
        (json!({"name": "ok", "expiresInDays": 1.5}), "expiresInDays"),
        (
            json!({"name": "ok", "expiresInDays": "30"}),
            "expiresInDays",
        ),
        (json!({"name": "ok", "scope": "admin"}), "scope"),
    ];
    for (body, field) in cases {
        let r = s.post(&session, "/api/me/tokens", body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text);
        r.field_err(field);
    }
    let r = s
        .send(
            "POST /api/me/tokens (array)",
            s.client
                .post(s.url("/api/me/tokens"))
                .bearer_auth(&session)
                .json(&json!(["name"])),
        )
        .await;
    r.err(400, "VALIDATION_FAILED");
    assert!(list(&s, &session).await.is_empty());
    s.delete(&session, "/api/me/tokens/not-a-uuid")
        .await
        .err(404, "NOT_FOUND");
    s.get(None, "/api/me/tokens")
        .await
        .err(401, "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_user_holds_at_most_fifty_tokens() {
    let s = TestServer::start().await;
    let session = s.login(MEMBER).await;
    for i in 0..50 {
        create(&s, &session, json!({"name": format!("t{i}")})).await;
    }
    let r = s
        .post(&session, "/api/me/tokens", json!({"name": "one too many"}))
        .await;
    r.err(409, "TOKEN_LIMIT_REACHED");
    assert_eq!(list(&s, &session).await.len(), 50);
}
