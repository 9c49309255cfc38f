//! Tenant isolation over HTTP: another organization's ids look exactly like missing ones, never
//! show up in lists and cannot be referenced; a member cannot read another member's session.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{json, Value};

use entryguard::domain::tier::Tier;
use entryguard_tests::server::{TestServer, ADMIN, MEMBER, REGION, SPARE_GROUPS};

const OTHER_ADMIN: &str = "boss@other.example.com";
const OTHER_MEMBER: &str = "worker@other.example.com";

fn id(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id: {v}"))
        .to_owned()
}

/// Everything an admin can list, as raw JSON, to compare before and after.
async fn snapshot(s: &TestServer, admin: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for path in [
        "/api/admin/organization",
        "/api/admin/credentials",
        "/api/admin/resources",
        "/api/admin/roles",
        "/api/admin/users",
    ] {
        out.push(s.get(Some(admin), path).await.ok(200).clone());
    }
    out
}

struct Objects {
    credential: String,
    resource: String,
    role: String,
    user: String,
}

/// One of each kind of object, created by `admin` through the API.
async fn populate(s: &TestServer, admin: &str, tag: &str, group: &str) -> Objects {
    let r = s
        .post(
            admin,
            "/api/admin/credentials",
            json!({"name": format!("{tag} cloud"), "provider": "simulated", "region": REGION}),
        )
        .await;
    let credential = id(r.ok(201));
    let r = s
        .post(
            admin,
            "/api/admin/resources",
            json!({
                "name": format!("{tag} resource"),
                "credentialId": credential,
                "securityGroupId": group,
                "region": REGION,
                "ports": [{"protocol": "tcp", "fromPort": 22, "toPort": 22}],
            }),
        )
        .await;
    let resource = id(r.ok(201));
    let r = s
        .post(
            admin,
            "/api/admin/users",
            json!({"email": format!("{tag}-user@example.com"), "resourceIds": [resource]}),
        )
        .await;
    let user = id(r.ok(201));
    let r = s
        .post(
            admin,
            "/api/admin/roles",
            json!({"name": format!("{tag} role"), "resourceIds": [resource], "userIds": [user]}),
        )
        .await;
    let role = id(r.ok(201));
    Objects {
        credential,
        resource,
        role,
        user,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn another_organizations_ids_look_missing_and_never_show_up() {
    let s = TestServer::start().await;
    let other_org = s.create_org("Other Org", Tier::Business, OTHER_ADMIN).await;
    let a = s.login(ADMIN).await;
    let b = s.login(OTHER_ADMIN).await;

    let org_b = s.get(Some(&b), "/api/admin/organization").await;
    assert_eq!(
        org_b.ok(200),
        &json!({"id": other_org.to_string(), "name": "Other Org", "tier": "BUSINESS", "status": "ACTIVE",
            "ipv6Prefix": 128})
    );
    let a_objects = populate(&s, &a, "alpha", SPARE_GROUPS[0]).await;
    let b_objects = populate(&s, &b, "beta", SPARE_GROUPS[1]).await;

    // Lists show only one's own organization.
    let a_ids: BTreeSet<String> = [
        "/api/admin/credentials",
        "/api/admin/resources",
        "/api/admin/roles",
        "/api/admin/users",
    ]
    .iter()
    .map(|p| s.ids(&a, p))
    .collect::<futures::future::JoinAll<_>>()
    .await
    .into_iter()
    .flatten()
    .collect();
    let b_ids: BTreeSet<String> = [
        "/api/admin/credentials",
        "/api/admin/resources",
        "/api/admin/roles",
        "/api/admin/users",
    ]
    .iter()
    .map(|p| s.ids(&b, p))
    .collect::<futures::future::JoinAll<_>>()
    .await
    .into_iter()
    .flatten()
    .collect();
    assert!(a_ids.is_disjoint(&b_ids), "{a_ids:?} / {b_ids:?}");
    // B: its admin, its user, its credential, resource and role.
    assert_eq!(b_ids.len(), 5, "{b_ids:?}");
    for x in [
        &b_objects.credential,
        &b_objects.resource,
        &b_objects.role,
        &b_objects.user,
    ] {
        assert!(b_ids.contains(x));
    }
    let b_users = s.get(Some(&b), "/api/admin/users").await;
    let b_emails: BTreeSet<&str> = b_users
        .ok(200)
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(
        b_emails,
        BTreeSet::from([OTHER_ADMIN, "beta-user@example.com"])
    );

    // Every id of A — the seeded objects and the new ones — is missing for B.
    let a_before = snapshot(&s, &a).await;
    let seeded_a = |path: &'static str| {
        let s = &s;
        let a = &a;
        async move { s.ids(a, path).await }
    };
    let mut a_credentials = seeded_a("/api/admin/credentials").await;
    a_credentials.insert(a_objects.credential.clone());
    let a_resources = seeded_a("/api/admin/resources").await;
    let a_roles = seeded_a("/api/admin/roles").await;
    let a_users = seeded_a("/api/admin/users").await;
    assert!(a_resources.contains(&a_objects.resource));
    assert!(a_roles.contains(&a_objects.role));
    assert!(a_users.contains(&a_objects.user));

    for c in &a_credentials {
        s.delete(&b, &format!("/api/admin/credentials/{c}"))
            .await
            .err(404, "NOT_FOUND");
        s.get(Some(&b), &format!("/api/admin/iam-policy?credentialId={c}"))
            .await
            .err(404, "NOT_FOUND");
    }
    for r in &a_resources {
        let path = format!("/api/admin/resources/{r}");
        s.patch(&b, &path, json!({"name": "stolen"}))
            .await
            .err(404, "NOT_FOUND");
        s.delete(&b, &path).await.err(404, "NOT_FOUND");
    }
    for r in &a_roles {
        let path = format!("/api/admin/roles/{r}");
        s.patch(&b, &path, json!({"maxSessionDurationHours": 1}))
            .await
            .err(404, "NOT_FOUND");
        s.delete(&b, &path).await.err(404, "NOT_FOUND");
    }
    for u in &a_users {
        let path = format!("/api/admin/users/{u}");
        s.patch(&b, &path, json!({"isAdmin": true}))
            .await
            .err(404, "NOT_FOUND");
        s.delete(&b, &path).await.err(404, "NOT_FOUND");
    }

    // Nor can B point its own objects at A's.
    s.post(
        &b,
        "/api/admin/resources",
        json!({
            "name": "borrowed",
            "credentialId": a_objects.credential,
            "securityGroupId": SPARE_GROUPS[1],
            "region": REGION,
            "ports": [{"protocol": "tcp", "fromPort": 22, "toPort": 22}],
        }),
    )
    .await
    .field_err("credentialId");
    s.patch(
        &b,
        &format!("/api/admin/resources/{}", b_objects.resource),
        json!({"credentialId": a_objects.credential}),
    )
    .await
    .field_err("credentialId");
    s.post(
        &b,
        "/api/admin/roles",
        json!({"name": "borrowed", "resourceIds": [a_objects.resource]}),
    )
    .await
    .field_err("resourceIds");
    s.patch(
        &b,
        &format!("/api/admin/roles/{}", b_objects.role),
        json!({"userIds": [a_objects.user]}),
    )
    .await
    .field_err("userIds");
    s.patch(
        &b,
        &format!("/api/admin/users/{}", b_objects.user),
        json!({"resourceIds": [a_objects.resource]}),
    )
    .await
    .field_err("resourceIds");
    s.post(
        &b,
        "/api/admin/users",
        json!({"email": "x@other.example.com", "resourceIds": [a_objects.resource]}),
    )
    .await
    .field_err("resourceIds");

    // B changing its own organization leaves A's alone.
    s.put(
        &b,
        "/api/admin/organization",
        json!({"name": "Other Org Renamed"}),
    )
    .await
    .ok(200);

    // A is exactly as it was.
    assert_eq!(snapshot(&s, &a).await, a_before);

    // And the same the other way round: B's ids are missing for A.
    let path = format!("/api/admin/resources/{}", b_objects.resource);
    s.patch(&a, &path, json!({"name": "x"}))
        .await
        .err(404, "NOT_FOUND");
    s.delete(&a, &path).await.err(404, "NOT_FOUND");
    s.delete(&a, &format!("/api/admin/roles/{}", b_objects.role))
        .await
        .err(404, "NOT_FOUND");
    s.delete(&a, &format!("/api/admin/users/{}", b_objects.user))
        .await
        .err(404, "NOT_FOUND");
    s.delete(
        &a,
        &format!("/api/admin/credentials/{}", b_objects.credential),
    )
    .await
    .err(404, "NOT_FOUND");
    let b_resource = s
        .find(&b, "/api/admin/resources", "id", &b_objects.resource)
        .await;
    assert_eq!(b_resource["name"], "beta resource");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn audit_logs_and_sessions_stay_inside_their_organization() {
    let s = TestServer::start().await;
    let other_org = s.create_org("Other Org", Tier::Team, OTHER_ADMIN).await;
    s.create_user(other_org, OTHER_MEMBER, false).await;
    let a = s.login(ADMIN).await;
    let b = s.login(OTHER_ADMIN).await;
    let a_member = s.login(MEMBER).await;
    let b_member = s.login(OTHER_MEMBER).await;

    // B's member gets a resource of B's own and a session.
    let b_objects = populate(&s, &b, "beta", SPARE_GROUPS[1]).await;
    let b_member_id = id(&s.find(&b, "/api/admin/users", "email", OTHER_MEMBER).await);
    s.patch(
        &b,
        &format!("/api/admin/roles/{}", b_objects.role),
        json!({"userIds": [b_member_id]}),
    )
    .await
    .ok(200);
    let b_session = s.settled_session(&b_member, 2, "ACTIVE").await;
    assert_eq!(b_session["resourceCount"], json!(1));
    let a_session = s.settled_session(&a_member, 2, "ACTIVE").await;
    assert_eq!(a_session["resourceCount"], json!(3));
    let firewall = s.firewall().await;
    assert_eq!(
        firewall[SPARE_GROUPS[1]],
        vec![("tcp".to_owned(), 22, 22, "127.0.0.1/32".to_owned())]
    );

    // Neither member can see or act on the other's session, nor can the other admin.
    for (token, session) in [
        (&b_member, &a_session),
        (&b, &a_session),
        (&a_member, &b_session),
        (&a, &b_session),
    ] {
        let sid = id(session);
        for (method, path) in [
            (Method::GET, format!("/api/sessions/{sid}")),
            (Method::POST, format!("/api/sessions/{sid}/stop")),
            (Method::POST, format!("/api/sessions/{sid}/extend")),
        ] {
            let r = s.call(method, Some(token), &path, None).await;
            assert_eq!(r.err(404, "NOT_FOUND")["message"], "Session not found");
        }
    }
    for (token, own) in [(&a_member, &a_session), (&b_member, &b_session)] {
        let list = s.get(Some(token), "/api/sessions").await;
        let ids: Vec<String> = list.ok(200).as_array().unwrap().iter().map(id).collect();
        assert_eq!(ids, vec![id(own)]);
    }
    let still = s
        .get(
            Some(&a_member),
            &format!("/api/sessions/{}", id(&a_session)),
        )
        .await;
    assert_eq!(still.ok(200)["status"], "ACTIVE");
    assert_eq!(still.json["expiresAt"], a_session["expiresAt"]);

    // Each organization's audit log holds only its own events.
    let a_log = s.get(Some(&a), "/api/admin/audit-logs?limit=200").await;
    let b_log = s.get(Some(&b), "/api/admin/audit-logs?limit=200").await;
    let sessions_in = |log: &Value| -> BTreeSet<String> {
        log["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["sessionId"].as_str().map(str::to_owned))
            .collect()
    };
    assert_eq!(sessions_in(a_log.ok(200)), BTreeSet::from([id(&a_session)]));
    assert_eq!(sessions_in(b_log.ok(200)), BTreeSet::from([id(&b_session)]));
    let emails_in = |log: &Value| -> BTreeSet<String> {
        log["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["actorEmail"].as_str().map(str::to_owned))
            .collect()
    };
    assert_eq!(
        emails_in(&a_log.json),
        BTreeSet::from([ADMIN.to_owned(), MEMBER.to_owned()])
    );
    assert_eq!(
        emails_in(&b_log.json),
        BTreeSet::from([OTHER_ADMIN.to_owned(), OTHER_MEMBER.to_owned()])
    );
    // Filtering by a user of the other organization finds nothing.
    let a_member_id = id(&s.find(&a, "/api/admin/users", "email", MEMBER).await);
    let r = s
        .get(
            Some(&b),
            &format!("/api/admin/audit-logs?userId={a_member_id}"),
        )
        .await;
    assert_eq!(r.ok(200), &json!({"items": [], "nextCursor": null}));

    // Stopping B's session leaves A's rules alone.
    s.stop_and_wait(&b_member, &id(&b_session)).await;
    let firewall = s.firewall().await;
    assert!(firewall[SPARE_GROUPS[1]].is_empty());
    assert_eq!(
        firewall["sg-0e1a2b3c4d5e6f701"],
        vec![("tcp".to_owned(), 22, 22, "127.0.0.1/32".to_owned())]
    );
}
