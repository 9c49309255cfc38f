//! The OpenAPI document stays in step with the code: the committed docs/openapi.json equals the
//! generated one, every documented operation is served (and no other method on its path), and
//! the document follows the API's conventions (auth, errors, ids).
//!
//! After changing a route or a body type, regenerate the committed file with
//! `UPDATE_OPENAPI=1 cargo test -p entryguard-api --test api openapi::`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use chrono::{TimeZone, Utc};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use entryguard::embedded::{
    simulated_app, EmbeddedQueue, EmbeddedStore, Kv, ManualClock, SeededIds, SimCloud,
    SimulatedFirewall,
};
use entryguard_api::openapi::{document_json, BEARER};
use entryguard_api::{router, ApiState};

const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];
/// Operations anyone may call.
const PUBLIC: [&str; 2] = ["/api/health", "/api/openapi.json"];

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json")
}

fn document() -> Value {
    serde_json::from_str(&document_json()).expect("the document is JSON")
}

/// Every (path, method, operation) of the document.
fn operations(doc: &Value) -> Vec<(String, &'static str, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                out.push((path.clone(), method, op.clone()));
            }
        }
        let known: BTreeSet<&str> = item
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        let unexpected: Vec<_> = known
            .iter()
            .filter(|k| !METHODS.contains(k) && **k != "parameters")
            .collect();
        assert!(
            unexpected.is_empty(),
            "{path}: unexpected keys {unexpected:?}"
        );
    }
    out
}

#[test]
fn the_committed_document_is_the_generated_one() {
    let generated = document_json();
    let path = committed_path();
    if std::env::var_os("UPDATE_OPENAPI").is_some_and(|v| v == "1") {
        std::fs::write(&path, &generated).expect("write docs/openapi.json");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != generated {
        let first = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(generated.lines().count()));
        let show = |text: &str| {
            text.lines()
                .skip(first.saturating_sub(2))
                .take(6)
                .collect::<Vec<_>>()
                .join("\n")
        };
        panic!(
            "docs/openapi.json is not the document the code generates (first difference at line \
             {}).\ncommitted:\n{}\ngenerated:\n{}\n\nIf the change is intended, regenerate it: \
             UPDATE_OPENAPI=1 cargo test -p entryguard-api --test api openapi::",
            first + 1,
            show(&committed),
            show(&generated)
        );
    }
}

#[test]
fn the_document_follows_the_api_conventions() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(
        doc["components"]["securitySchemes"][BEARER]["scheme"],
        "bearer"
    );
    let mut operation_ids = BTreeSet::new();
    let mut problems = Vec::new();
    for (path, method, op) in operations(&doc) {
        let what = format!("{} {path}", method.to_uppercase());
        assert!(path.starts_with("/api/"), "{what}: not under /api");
        assert!(
            !path.starts_with("/api/dev/"),
            "{what}: development routes are not part of the contract"
        );
        let id = op["operationId"].as_str().unwrap_or_default().to_owned();
        if id.is_empty() || !operation_ids.insert(id.clone()) {
            problems.push(format!("{what}: missing or duplicate operationId {id:?}"));
        }
        if op["tags"].as_array().is_none_or(|t| t.len() != 1) {
            problems.push(format!("{what}: needs exactly one tag"));
        }
        let security = op.get("security").and_then(Value::as_array);
        let bearer = security.is_some_and(|s| {
            s.len() == 1 && s[0].as_object().is_some_and(|r| r.keys().eq([BEARER]))
        });
        if PUBLIC.contains(&path.as_str()) {
            if security.is_some_and(|s| !s.is_empty()) {
                problems.push(format!("{what}: public, but has a security requirement"));
            }
        } else if !bearer {
            problems.push(format!(
                "{what}: needs `security((\"{BEARER}\" = []))` in its #[utoipa::path]"
            ));
        }
        let responses = op["responses"].as_object().expect("responses");
        if !responses.keys().any(|s| s.starts_with('2')) {
            problems.push(format!("{what}: no success response"));
        }
        for (status, response) in responses {
            let errorish = status.starts_with('4') || status.starts_with('5');
            let schema = &response["content"]["application/json"]["schema"]["$ref"];
            let shared = response["$ref"]
                .as_str()
                .is_some_and(|r| r.starts_with("#/components/responses/"));
            if errorish && !shared && schema != "#/components/schemas/Error" {
                problems.push(format!("{what}: {status} must use the Error body"));
            }
            if status == "204" && response.get("content").is_some() {
                problems.push(format!("{what}: 204 with a body"));
            }
        }
        if path.contains('{') {
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            let in_path = params.iter().filter(|p| p["in"] == "path").count();
            if in_path != path.matches('{').count() {
                problems.push(format!("{what}: path parameters are not all documented"));
            }
        }
    }
    // Every reference resolves.
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    for r in refs {
        let target = r
            .strip_prefix("#/")
            .map(|p| p.split('/').fold(&doc, |v, key| &v[key]));
        if target.is_none_or(Value::is_null) {
            problems.push(format!("dangling reference {r}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The error codes of error.rs are all listed.
    let codes = &doc["components"]["schemas"]["ErrorCode"]["enum"];
    for code in [
        "UNAUTHENTICATED",
        "VALIDATION_FAILED",
        "CONFLICT",
        "INTERNAL",
    ] {
        assert!(
            codes.as_array().unwrap().iter().any(|c| c == code),
            "{code} in {codes}"
        );
    }
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => collect_refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

fn state() -> ApiState {
    let kv = Kv::in_memory();
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap(),
    ));
    let ids = Arc::new(SeededIds::new(7));
    let sim = SimCloud::new(kv.clone());
    ApiState {
        app: simulated_app(
            Arc::new(EmbeddedStore::new(kv.clone())),
            Arc::new(EmbeddedQueue::new(kv, clock.clone(), ids.clone())),
            SimulatedFirewall::new(sim.clone()),
            &sim,
            clock,
            ids,
        ),
        dev: None,
        entryguard_principal: "arn:aws:iam::000000000000:root".into(),
        oidc: None,
        limits: Default::default(),
        signup_open: false,
    }
}

async fn call(method: &str, path: &str) -> (StatusCode, Value, Vec<u8>) {
    let request = Request::builder()
        .method(Method::from_bytes(method.to_uppercase().as_bytes()).unwrap())
        .uri(path)
        .body(Body::empty())
        .unwrap();
    let response = router(state()).oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, json, bytes.to_vec())
}

/// The router answers every documented method of every documented path (without a token: 401
/// where the document asks for one, 200 for the public routes), and 405 for the other methods
/// of those paths.
#[tokio::test]
async fn the_router_serves_exactly_the_documented_operations() {
    let doc = document();
    let mut documented: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    for (path, method, _) in operations(&doc) {
        documented.entry(path).or_default().insert(method);
    }
    let mut problems = Vec::new();
    for (path, methods) in &documented {
        let concrete = path.replace("{id}", "0b7b5a52-6a4e-4f4e-9d7e-2f1d3c4b5a69");
        for method in METHODS {
            let (status, body, _) = call(method, &concrete).await;
            let what = format!("{} {path}", method.to_uppercase());
            let want = if !methods.contains(method) {
                StatusCode::METHOD_NOT_ALLOWED
            } else if PUBLIC.contains(&path.as_str()) {
                StatusCode::OK
            } else {
                StatusCode::UNAUTHORIZED
            };
            if status != want {
                problems.push(format!("{what}: wanted {want}, got {status} {body}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[tokio::test]
async fn the_document_is_served_without_a_token() {
    let (status, _, bytes) = call("get", "/api/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(String::from_utf8(bytes).unwrap(), document_json());
}
