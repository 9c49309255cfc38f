//! Browser sign-in: ID tokens from the OIDC provider are verified (signature against the
//! provider's JWKS, issuer, audience, expiry against the application's clock) and mapped to the
//! EntryGuard user with the same e-mail. Every way a token can be wrong is a plain 401.

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use entryguard_tests::oidc::{sign, sign_with, Issuer, Signer, AUDIENCE};
use entryguard_tests::server::{OidcConfig, TestServer, ADMIN, MEMBER};

async fn server(issuer: &Issuer) -> TestServer {
    TestServer::start_with_oidc(OidcConfig {
        issuer: issuer.url.clone(),
        audience: AUDIENCE.into(),
    })
    .await
}

fn now(s: &TestServer) -> i64 {
    s.app.now().timestamp()
}

async fn me(s: &TestServer, token: &str) -> entryguard_tests::server::Resp {
    s.get(Some(token), "/api/me").await
}

fn b64(v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

#[tokio::test]
async fn a_valid_id_token_signs_in_the_user_with_that_email() {
    let issuer = Issuer::start().await;
    let s = server(&issuer).await;
    let token = sign(&issuer.claims(MEMBER, now(&s)), Signer::Provider);
    let r = me(&s, &token).await;
    assert_eq!(r.ok(200)["user"]["email"], json!(MEMBER));
    assert_eq!(r.json["user"]["isAdmin"], json!(false));

    let admin = sign(&issuer.claims(ADMIN, now(&s)), Signer::Provider);
    let r = s.get(Some(&admin), "/api/admin/users").await;
    r.ok(200);

    // The same sign-in works for every route, e.g. starting a session.
    let started = s
        .post(&token, "/api/sessions", json!({"durationHours": 1}))
        .await;
    started.ok(202);

    // E-mail addresses compare case-insensitively, as EntryGuard stores them.
    let shouting = sign(
        &issuer.claims(&MEMBER.to_uppercase(), now(&s)),
        Signer::Provider,
    );
    me(&s, &shouting).await.ok(200);
}

#[tokio::test]
async fn every_kind_of_bad_id_token_is_rejected_alike() {
    let issuer = Issuer::start().await;
    let s = server(&issuer).await;
    let t = now(&s);
    let valid = issuer.claims(MEMBER, t);
    let with = |key: &str, value: Value| {
        let mut c = valid.clone();
        c[key] = value;
        c
    };
    let without = |key: &str| {
        let mut c = valid.clone();
        c.as_object_mut().unwrap().remove(key);
        c
    };
    let good = sign(&valid, Signer::Provider);
    let (head, rest) = good.split_once('.').unwrap();
    let (_, signature) = rest.split_once('.').unwrap();
    let tampered = format!("{head}.{}.{signature}", b64(&with("email", json!(ADMIN))));
    let unsigned = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT", "kid": "test-key-1"})),
        b64(&valid)
    );
    // HS256 keyed with the provider's public key: the classic algorithm-confusion forgery.
    let jwks = include_str!("../fixtures/oidc-test-jwks.json");
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some("test-key-1".into());
    let confused =
        jsonwebtoken::encode(&hs, &valid, &EncodingKey::from_secret(jwks.as_bytes())).unwrap();
    let mut unknown_kid = Header::new(Algorithm::RS256);
    unknown_kid.kid = Some("rotated-away".into());

    let cases: Vec<(&str, String)> = vec![
        (
            "signed by a key the issuer never published",
            sign(&valid, Signer::Attacker),
        ),
        ("payload changed after signing", tampered),
        ("alg none", unsigned),
        ("HS256 with the public key as secret", confused),
        (
            "unknown key id",
            sign_with(&valid, Signer::Provider, unknown_kid),
        ),
        (
            "expired",
            sign(&with("exp", json!(t - 3600)), Signer::Provider),
        ),
        (
            "not valid yet",
            sign(&with("nbf", json!(t + 3600)), Signer::Provider),
        ),
        ("no expiry", sign(&without("exp"), Signer::Provider)),
        (
            "another audience",
            sign(&with("aud", json!("someone-else")), Signer::Provider),
        ),
        (
            "another issuer",
            sign(
                &with("iss", json!("https://evil.example.com")),
                Signer::Provider,
            ),
        ),
        (
            "an access token",
            sign(&with("token_use", json!("access")), Signer::Provider),
        ),
        (
            "unverified e-mail",
            sign(&with("email_verified", json!(false)), Signer::Provider),
        ),
        ("no e-mail", sign(&without("email"), Signer::Provider)),
        (
            "an e-mail no EntryGuard user has",
            sign(
                &with("email", json!("stranger@example.com")),
                Signer::Provider,
            ),
        ),
        (
            "garbage shaped like a JWT",
            "eyJhbGciOiJSUzI1NiJ9.e30.AAAA".to_owned(),
        ),
    ];
    for (what, token) in cases {
        let r = me(&s, &token).await;
        assert_eq!(r.status, 401, "{what}: {}", r.text);
        r.err(401, "UNAUTHENTICATED");
        assert_eq!(
            r.headers
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap()),
            Some("Bearer"),
            "{what}"
        );
    }
    // The valid token still works after all that (no key cache poisoning).
    me(&s, &good).await.ok(200);
}

#[tokio::test]
async fn id_tokens_expire_on_the_application_clock() {
    let issuer = Issuer::start().await;
    let s = server(&issuer).await;
    let token = sign(&issuer.claims(MEMBER, now(&s)), Signer::Provider);
    me(&s, &token).await.ok(200);
    // One hour of validity plus the minute of tolerated clock skew.
    s.advance_clock(3600 + 61).await;
    me(&s, &token).await.err(401, "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_deleted_user_cannot_sign_in_with_a_still_valid_id_token() {
    let issuer = Issuer::start().await;
    let s = server(&issuer).await;
    let member = sign(&issuer.claims(MEMBER, now(&s)), Signer::Provider);
    me(&s, &member).await.ok(200);
    let admin = s.login(ADMIN).await;
    let user = s.find(&admin, "/api/admin/users", "email", MEMBER).await;
    let id = user["id"].as_str().unwrap();
    s.delete(&admin, &format!("/api/admin/users/{id}"))
        .await
        .ok(204);
    me(&s, &member).await.err(401, "UNAUTHENTICATED");
}

/// Sign-up: a person the provider verified, who belongs to no organization, creates one on the
/// Free plan and is its admin; nobody else can, and it is closed unless the operator opens it.
#[tokio::test]
async fn a_verified_newcomer_signs_up_once_on_the_free_plan() {
    let issuer = Issuer::start().await;
    let s = TestServer::start_with_oidc_signup(OidcConfig {
        issuer: issuer.url.clone(),
        audience: AUDIENCE.into(),
    })
    .await;
    let founder = sign(
        &issuer.claims("founder@startup.example", now(&s)),
        Signer::Provider,
    );
    me(&s, &founder).await.err(401, "UNAUTHENTICATED");

    let r = s
        .post(
            &founder,
            "/api/signup",
            json!({"organizationName": "Startup"}),
        )
        .await;
    let created = r.ok(201);
    assert_eq!(created["organization"]["name"], "Startup");
    assert_eq!(created["organization"]["tier"], "FREE");
    assert_eq!(created["user"]["isAdmin"], true);
    let r = me(&s, &founder).await;
    assert_eq!(r.ok(200)["user"]["email"], "founder@startup.example");
    assert_eq!(r.json["maxConcurrentSessions"], 1);
    assert_eq!(r.json["resourceCount"], 0);
    let users = s.get(Some(&founder), "/api/admin/users").await;
    assert_eq!(users.ok(200).as_array().unwrap().len(), 1);

    // Nobody signs up twice, and a member of another organization cannot found a second one.
    for email in ["founder@startup.example", MEMBER, ADMIN] {
        let token = sign(&issuer.claims(email, now(&s)), Signer::Provider);
        s.post(&token, "/api/signup", json!({"organizationName": "Again"}))
            .await
            .err(409, "CONFLICT");
    }
    // Only a verified ID token: not an unverified address, not EntryGuard's own tokens.
    let mut unverified = issuer.claims("new@startup.example", now(&s));
    unverified["email_verified"] = json!(false);
    let unverified = sign(&unverified, Signer::Provider);
    let api_token = s.login(MEMBER).await;
    for token in [unverified.as_str(), api_token.as_str()] {
        s.post(token, "/api/signup", json!({"organizationName": "Nope"}))
            .await
            .err(401, "UNAUTHENTICATED");
    }
    s.post(&founder, "/api/signup", json!({"organizationName": ""}))
        .await
        .field_err("organizationName");
    let orgs = s.app.store.list_orgs().await.unwrap();
    assert_eq!(orgs.len(), 2, "the demo organization and Startup only");
}

#[tokio::test]
async fn sign_up_is_closed_unless_the_operator_opens_it() {
    let issuer = Issuer::start().await;
    let s = server(&issuer).await;
    let newcomer = sign(
        &issuer.claims("new@startup.example", now(&s)),
        Signer::Provider,
    );
    s.post(
        &newcomer,
        "/api/signup",
        json!({"organizationName": "Startup"}),
    )
    .await
    .err(403, "FORBIDDEN");
    assert_eq!(s.app.store.list_orgs().await.unwrap().len(), 1);
}
