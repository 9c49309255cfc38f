//! The events/ API Gateway fixtures through the Lambda router, on the embedded backend: each
//! sample request parses as an HTTP API (v2) event and reaches its route.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use http_body_util::BodyExt;
use tower::ServiceExt;

use entryguard::app::auth::hash_token;
use entryguard::domain::ids::{CredentialId, OrgId, ResourceId, RoleId, UserId};
use entryguard::domain::model::{Credential, Organization, Resource, Role, User};
use entryguard::domain::net::PortRange;
use entryguard::domain::tier::Tier;
use entryguard::embedded::{
    simulated_app, EmbeddedQueue, EmbeddedStore, Kv, ManualClock, SeededIds, SimCloud,
    SimulatedFirewall,
};
use entryguard::ports::store::TokenRecord;
use entryguard_api::lambda::lambda_router;
use entryguard_api::ApiState;

/// The bearer token the fixtures carry.
const FIXTURE_TOKEN: &str = "3f8a2c1d9b7e4f6a0c5d8e2b1a7f9c3e6d4b8a2f1c9e7d5b3a1f8c6e4d2b0a97";

async fn state() -> (ApiState, User) {
    let kv = Kv::in_memory();
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap(),
    ));
    let ids = Arc::new(SeededIds::new(3));
    let sim = SimCloud::new(kv.clone());
    let app = simulated_app(
        Arc::new(EmbeddedStore::new(kv.clone())),
        Arc::new(EmbeddedQueue::new(kv, clock.clone(), ids.clone())),
        SimulatedFirewall::new(sim.clone()),
        &sim,
        clock,
        ids,
    );
    let now = app.now();
    let org = Organization::new(
        OrgId::from_uuid(app.ids.uuid()),
        "Fixture Org".parse().unwrap(),
        Tier::Team,
        now,
    );
    app.store.put_org(&org).await.unwrap();
    let admin = User {
        id: UserId::from_uuid(app.ids.uuid()),
        org_id: org.id,
        email: "admin@example.com".parse().unwrap(),
        is_admin: true,
        resource_ids: BTreeSet::new(),
        created_at: now,
    };
    app.store.create_user(&admin).await.unwrap();
    app.store
        .put_token(&TokenRecord {
            token_hash: hash_token(FIXTURE_TOKEN),
            user_id: admin.id,
            created_at: now,
            expires_at: Some(now + Duration::hours(12)),
            personal: None,
            last_used_at: None,
        })
        .await
        .unwrap();
    let credential = Credential::simulated(
        CredentialId::from_uuid(app.ids.uuid()),
        org.id,
        "sim".parse().unwrap(),
        "eu-west-1".parse().unwrap(),
        now,
    );
    app.put_doc(&credential).await.unwrap();
    let sg = "sg-0a1b2c3d".parse().unwrap();
    sim.create_group(&credential.region, &sg, "bastion")
        .unwrap();
    let resource = Resource {
        id: ResourceId::from_uuid(app.ids.uuid()),
        org_id: org.id,
        name: "bastion".parse().unwrap(),
        credential_id: credential.id,
        security_group_id: sg,
        region: credential.region.clone(),
        ports: vec![PortRange::tcp(22)],
        created_at: now,
    };
    app.put_doc(&resource).await.unwrap();
    app.put_doc(&Role {
        id: RoleId::from_uuid(app.ids.uuid()),
        org_id: org.id,
        name: "admins".parse().unwrap(),
        max_session_duration_hours: None,
        resource_ids: [resource.id].into(),
        user_ids: [admin.id].into(),
        created_at: now,
    })
    .await
    .unwrap();
    (
        ApiState {
            app,
            dev: None,
            entryguard_principal: "arn:aws:iam::123456789012:root".into(),
            oidc: None,
            limits: Default::default(),
            signup_open: false,
        },
        admin,
    )
}

async fn invoke(state: &ApiState, fixture: &str) -> (u16, serde_json::Value) {
    let path = format!("{}/../../events/{fixture}.json", env!("CARGO_MANIFEST_DIR"));
    let raw = std::fs::read_to_string(&path).expect("the fixture is readable");
    let request = lambda_http::request::from_str(&raw)
        .unwrap_or_else(|e| panic!("{fixture} is not an API Gateway event: {e}"));
    let response = lambda_router(state.clone()).oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let json = if body.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&body).expect("a JSON body")
    };
    (status, json)
}

#[tokio::test]
async fn every_api_fixture_reaches_its_route() {
    let (state, admin) = state().await;

    assert_eq!(
        invoke(&state, "api-health").await,
        (200, serde_json::json!({"status": "ok"}))
    );

    let (status, me) = invoke(&state, "api-me").await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["user"]["email"], admin.email.as_str());

    // The caller's address is the one API Gateway saw, from the request context.
    let (status, session) = invoke(&state, "api-start-session").await;
    assert_eq!(status, 202, "{session}");
    assert!(session.to_string().contains("203.0.113.7"), "{session}");
    let sessions = state
        .app
        .store
        .list_user_sessions(admin.id, 10)
        .await
        .unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].ip_addresses[0].to_string(), "203.0.113.7");
    assert_eq!(
        sessions[0].expires_at - sessions[0].created_at,
        Duration::hours(2)
    );

    // The fixtures name a session of their own, which this caller does not have.
    for fixture in ["api-stop-session", "api-extend-session"] {
        let (status, body) = invoke(&state, fixture).await;
        assert_eq!(status, 404, "{fixture}: {body}");
        assert_eq!(body["error"]["code"], "NOT_FOUND", "{fixture}");
    }

    let (status, users) = invoke(&state, "api-admin-users").await;
    assert_eq!(status, 200, "{users}");
    assert!(users.to_string().contains("admin@example.com"), "{users}");
}
