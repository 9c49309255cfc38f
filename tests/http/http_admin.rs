//! The admin API over HTTP: tier and role limits, CRUD for credentials, resources, roles, users
//! and the organization, the audit log and the generated IAM policy.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{json, Value};

use entryguard_tests::server::{TestServer, ADMIN, DEMO_GROUPS, MEMBER, REGION, SPARE_GROUPS};

fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect()
}

fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|x| x.as_str().unwrap().to_owned())
        .collect()
}

/// Percent-encodes a query-string value.
fn enc(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn id(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id: {v}"))
        .to_owned()
}

async fn limits(s: &TestServer, token: &str) -> (Value, Value, Value) {
    let me = s.get(Some(token), "/api/me").await;
    let me = me.ok(200);
    (
        me["allowedDurationsHours"].clone(),
        me["maxSessionDurationHours"].clone(),
        me["maxConcurrentSessions"].clone(),
    )
}

async fn member_id(s: &TestServer, admin: &str) -> String {
    id(&s.find(admin, "/api/admin/users", "email", MEMBER).await)
}

async fn seed_credential(s: &TestServer, admin: &str) -> String {
    id(&s
        .find(admin, "/api/admin/credentials", "name", "Simulated cloud")
        .await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tier_limits_follow_the_organization() {
    let s = TestServer::start().await;
    let admin = s.login(ADMIN).await;
    let member = s.login(MEMBER).await;
    let paid = json!([1, 2, 4, 8, 12, 16, 24]);
    assert_eq!(
        limits(&s, &member).await,
        (paid.clone(), json!(24), Value::Null)
    );

    let cases = [
        ("FREE", json!([1, 2, 4]), json!(4), json!(1)),
        ("STARTER", paid.clone(), json!(24), json!(3)),
        ("BUSINESS", paid.clone(), json!(24), Value::Null),
        ("TEAM", paid.clone(), json!(24), Value::Null),
    ];
    for (tier, durations, max, concurrent) in cases {
        s.set_plan(&admin, tier).await;
        assert_eq!(
            limits(&s, &member).await,
            (durations, max, concurrent),
            "{tier}"
        );
        let me = s.get(Some(&member), "/api/me").await;
        assert_eq!(me.ok(200)["organization"]["tier"], tier);
    }

    // FREE: a 4 h session is the longest.
    s.set_plan(&admin, "FREE").await;
    s.post(&member, "/api/sessions", json!({"durationHours": 8}))
        .await
        .err(400, "DURATION_EXCEEDS_MAXIMUM");
    s.start_session(&member, 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn role_limits_only_lower_and_the_most_restrictive_wins() {
    let s = TestServer::start().await;
    let admin = s.login(ADMIN).await;
    let member = s.login(MEMBER).await;
    let dev = member_id(&s, &admin).await;

    let r = s
        .post(
            &admin,
            "/api/admin/roles",
            json!({"name": "Short", "maxSessionDurationHours": 2, "userIds": [dev]}),
        )
        .await;
    let short = id(r.ok(201));
    assert_eq!(
        limits(&s, &member).await,
        (json!([1, 2]), json!(2), Value::Null)
    );
    // The role has no resources: the member still reaches the three of Developers.
    let me = s.get(Some(&member), "/api/me").await;
    assert_eq!(me.ok(200)["resourceCount"], json!(3));
    let r = s
        .post(&member, "/api/sessions", json!({"durationHours": 4}))
        .await;
    assert_eq!(
        r.err(400, "DURATION_EXCEEDS_MAXIMUM")["message"],
        "Duration exceeds maximum allowed"
    );

    // A looser second role changes nothing: the most restrictive applies.
    let r = s
        .post(
            &admin,
            "/api/admin/roles",
            json!({"name": "Medium", "maxSessionDurationHours": 8, "userIds": [dev]}),
        )
        .await;
    let medium = id(r.ok(201));
    assert_eq!(
        limits(&s, &member).await,
        (json!([1, 2]), json!(2), Value::Null)
    );

    // A role limit that is not one of the offered durations: 3 h allows 1 and 2, max 3.
    let r = s
        .patch(
            &admin,
            &format!("/api/admin/roles/{short}"),
            json!({"maxSessionDurationHours": 3}),
        )
        .await;
    assert_eq!(r.ok(200)["maxSessionDurationHours"], json!(3));
    assert_eq!(
        limits(&s, &member).await,
        (json!([1, 2]), json!(3), Value::Null)
    );

    // Clearing the short role's limit with null leaves the medium one.
    let r = s
        .patch(
            &admin,
            &format!("/api/admin/roles/{short}"),
            json!({"maxSessionDurationHours": null}),
        )
        .await;
    assert_eq!(r.ok(200)["maxSessionDurationHours"], Value::Null);
    assert_eq!(r.json["name"], "Short");
    assert_eq!(
        limits(&s, &member).await,
        (json!([1, 2, 4, 8]), json!(8), Value::Null)
    );
    let started = s.start_session(&member, 8).await;
    assert_eq!(started["resourceCount"], json!(3));

    // A patch that does not mention the limit keeps it.
    let r = s
        .patch(
            &admin,
            &format!("/api/admin/roles/{medium}"),
            json!({"name": "Medium renamed"}),
        )
        .await;
    assert_eq!(r.ok(200)["maxSessionDurationHours"], json!(8));

    // A role only lowers: 12 h on the FREE tier is still 4 h.
    s.patch(
        &admin,
        &format!("/api/admin/roles/{medium}"),
        json!({"maxSessionDurationHours": 12}),
    )
    .await
    .ok(200);
    s.set_plan(&admin, "FREE").await;
    assert_eq!(
        limits(&s, &member).await,
        (json!([1, 2, 4]), json!(4), json!(1))
    );
    s.patch(
        &admin,
        &format!("/api/admin/roles/{short}"),
        json!({"maxSessionDurationHours": 2}),
    )
    .await
    .ok(200);
    assert_eq!(
        limits(&s, &member).await,
        (json!([1, 2]), json!(2), json!(1))
    );

    // Deleting the roles restores the tier's limits.
    for role in [&short, &medium] {
        let r = s.delete(&admin, &format!("/api/admin/roles/{role}")).await;
        assert_eq!(r.status, 204, "{}", r.text);
    }
    assert_eq!(
        limits(&s, &member).await,
        (json!([1, 2, 4]), json!(4), json!(1))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn credentials_crud_never_returns_the_secret() {
    let s = TestServer::start().await;
    let admin = s.login(ADMIN).await;
    let org = s.get(Some(&admin), "/api/admin/organization").await;
    let org_id = id(org.ok(200));
    let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    let r = s
        .post(
            &admin,
            "/api/admin/credentials",
            json!({
                "name": "Production keys",
                "provider": "aws",
                "region": "us-east-1",
                "accessKeyId": "AKIAIOSFODNN7EXAMPLE",
                "secretAccessKey": secret,
            }),
        )
        .await;
    let keyed = r.ok(201).clone();
    assert!(!r.text.contains(secret), "{}", r.text);
    assert!(!r.text.contains("wJalrXUtnFEMI"), "{}", r.text);
    assert_eq!(
        keys(&keyed),
        BTreeSet::from([
            "id",
            "name",
            "provider",
            "region",
            "accessKeyId",
            "roleArn",
            "externalId",
            "hasSecret",
            "status",
            "statusMessage",
            "accountId",
            "checkedAt",
            "createdAt"
        ])
    );
    assert_eq!(keyed["name"], "Production keys");
    assert_eq!(keyed["provider"], "aws");
    assert_eq!(keyed["region"], "us-east-1");
    assert_eq!(keyed["accessKeyId"], "AKIAIOSFODNN7EXAMPLE");
    assert_eq!(keyed["hasSecret"], true);
    assert_eq!(keyed["roleArn"], Value::Null);
    assert_eq!(keyed["externalId"], Value::Null);
    assert_eq!(keyed["status"], "UNVERIFIED");
    assert_eq!(keyed["statusMessage"], Value::Null);
    assert_eq!(keyed["accountId"], Value::Null);
    assert_eq!(keyed["checkedAt"], Value::Null);

    let r = s
        .post(
            &admin,
            "/api/admin/credentials",
            json!({
                "name": "Cross-account role",
                "provider": "aws",
                "region": "eu-west-1",
                "roleArn": "arn:aws:iam::123456789012:role/EntryGuard",
            }),
        )
        .await;
    let role = r.ok(201).clone();
    assert_eq!(role["hasSecret"], false);
    assert_eq!(role["accessKeyId"], Value::Null);
    assert_eq!(role["roleArn"], "arn:aws:iam::123456789012:role/EntryGuard");
    assert_eq!(role["externalId"], json!(format!("entryguard-{org_id}")));

    let r = s
        .post(
            &admin,
            "/api/admin/credentials",
            json!({
                "name": "Role with own external id",
                "provider": "aws",
                "region": "eu-west-1",
                "roleArn": "arn:aws:iam::123456789012:role/Other",
                "externalId": "my-external-id",
            }),
        )
        .await;
    let own = r.ok(201).clone();
    assert_eq!(own["externalId"], "my-external-id");

    // The list never shows the secret either.
    let list = s.get(Some(&admin), "/api/admin/credentials").await;
    assert!(!list.text.contains(secret), "{}", list.text);
    assert_eq!(list.ok(200).as_array().unwrap().len(), 4);
    let listed = s
        .find(&admin, "/api/admin/credentials", "name", "Production keys")
        .await;
    assert_eq!(listed, keyed);

    // The role credential's trust policy names the principal and the external id.
    let r = s
        .get(
            Some(&admin),
            &format!("/api/admin/iam-policy?credentialId={}", id(&role)),
        )
        .await;
    let trust = &r.ok(200)["trustPolicy"];
    assert_eq!(
        trust["Statement"][0]["Principal"]["AWS"],
        "arn:aws:iam::000000000000:root"
    );
    assert_eq!(trust["Statement"][0]["Action"], "sts:AssumeRole");
    assert_eq!(
        trust["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"],
        json!(format!("entryguard-{org_id}"))
    );
    let r = s
        .get(
            Some(&admin),
            &format!("/api/admin/iam-policy?credentialId={}", id(&keyed)),
        )
        .await;
    assert_eq!(r.ok(200)["trustPolicy"], Value::Null);
    assert!(!r.text.contains(secret));

    // Unused credentials can be deleted, once.
    for c in [&keyed, &role, &own] {
        let path = format!("/api/admin/credentials/{}", id(c));
        let r = s.delete(&admin, &path).await;
        assert_eq!(r.status, 204, "{}", r.text);
        assert!(r.text.is_empty());
        s.delete(&admin, &path).await.err(404, "NOT_FOUND");
    }
    let left = s.get(Some(&admin), "/api/admin/credentials").await;
    let left = left.ok(200).as_array().unwrap().clone();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["name"], "Simulated cloud");
    assert_eq!(left[0]["provider"], "simulated");
    assert_eq!(left[0]["hasSecret"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn resources_crud_and_a_deleted_resource_leaves_roles_and_users() {
    let s = TestServer::start().await;
    let admin = s.login(ADMIN).await;
    let member = s.login(MEMBER).await;
    let credential = seed_credential(&s, &admin).await;
    let dev = member_id(&s, &admin).await;

    let r = s
        .post(
            &admin,
            "/api/admin/resources",
            json!({
                "name": "  Web servers  ",
                "credentialId": credential,
                "securityGroupId": SPARE_GROUPS[0],
                "region": REGION,
                "ports": [
                    {"protocol": "tcp", "fromPort": 8080, "toPort": 8090},
                    {"protocol": "udp", "fromPort": 53, "toPort": 53}
                ],
            }),
        )
        .await;
    let created = r.ok(201).clone();
    assert_eq!(
        keys(&created),
        BTreeSet::from([
            "id",
            "name",
            "credentialId",
            "securityGroupId",
            "region",
            "ports",
            "createdAt"
        ])
    );
    assert_eq!(created["name"], "Web servers", "names are trimmed");
    assert_eq!(created["credentialId"], json!(credential));
    assert_eq!(created["securityGroupId"], SPARE_GROUPS[0]);
    assert_eq!(created["region"], REGION);
    assert_eq!(
        created["ports"],
        json!([
            {"protocol": "tcp", "fromPort": 8080, "toPort": 8090},
            {"protocol": "udp", "fromPort": 53, "toPort": 53}
        ])
    );
    let rid = id(&created);
    assert!(s.ids(&admin, "/api/admin/resources").await.contains(&rid));

    // PATCH changes only what it names.
    let path = format!("/api/admin/resources/{rid}");
    let r = s
        .patch(
            &admin,
            &path,
            json!({"name": "Web", "ports": [{"protocol": "tcp", "fromPort": 443, "toPort": 443}]}),
        )
        .await;
    let patched = r.ok(200).clone();
    assert_eq!(patched["name"], "Web");
    assert_eq!(
        patched["ports"],
        json!([{"protocol": "tcp", "fromPort": 443, "toPort": 443}])
    );
    assert_eq!(patched["securityGroupId"], SPARE_GROUPS[0]);
    assert_eq!(patched["createdAt"], created["createdAt"]);
    let r = s
        .patch(&admin, &path, json!({"securityGroupId": SPARE_GROUPS[1]}))
        .await;
    assert_eq!(r.ok(200)["securityGroupId"], SPARE_GROUPS[1]);
    assert_eq!(r.json["name"], "Web");
    let r = s.patch(&admin, &path, json!({})).await;
    let unchanged = r.ok(200).clone();
    assert_eq!(
        s.find(&admin, "/api/admin/resources", "id", &rid).await,
        unchanged
    );

    // Give it to the member through the role and directly; their session opens it.
    let developers = s
        .find(&admin, "/api/admin/roles", "name", "Developers")
        .await;
    let mut role_resources = developers["resourceIds"].as_array().unwrap().clone();
    role_resources.push(json!(rid));
    s.patch(
        &admin,
        &format!("/api/admin/roles/{}", id(&developers)),
        json!({"resourceIds": role_resources}),
    )
    .await
    .ok(200);
    let r = s
        .patch(
            &admin,
            &format!("/api/admin/users/{dev}"),
            json!({"resourceIds": [rid]}),
        )
        .await;
    assert_eq!(r.ok(200)["resourceIds"], json!([rid]));
    let me = s.get(Some(&member), "/api/me").await;
    assert_eq!(me.ok(200)["resourceCount"], json!(4), "counted once");
    let active = s.settled_session(&member, 1, "ACTIVE").await;
    assert_eq!(active["resourceCount"], json!(4));
    let firewall = s.firewall().await;
    assert_eq!(
        firewall[SPARE_GROUPS[1]],
        vec![("tcp".to_owned(), 443, 443, "127.0.0.1/32".to_owned())]
    );
    s.stop_and_wait(&member, &id(&active)).await;

    // Delete: gone from the list, the role and the user.
    let r = s.delete(&admin, &path).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(!s.ids(&admin, "/api/admin/resources").await.contains(&rid));
    let developers = s
        .find(&admin, "/api/admin/roles", "name", "Developers")
        .await;
    assert_eq!(developers["resourceIds"].as_array().unwrap().len(), 3);
    assert!(!strings(&developers["resourceIds"]).contains(&rid));
    let user = s.find(&admin, "/api/admin/users", "id", &dev).await;
    assert_eq!(user["resourceIds"], json!([]));
    let me = s.get(Some(&member), "/api/me").await;
    assert_eq!(me.ok(200)["resourceCount"], json!(3));
    s.delete(&admin, &path).await.err(404, "NOT_FOUND");
    s.patch(&admin, &path, json!({"name": "again"}))
        .await
        .err(404, "NOT_FOUND");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn roles_crud() {
    let s = TestServer::start().await;
    let admin = s.login(ADMIN).await;
    let dev = member_id(&s, &admin).await;
    let resources: Vec<String> = s
        .ids(&admin, "/api/admin/resources")
        .await
        .into_iter()
        .collect();

    let r = s
        .post(
            &admin,
            "/api/admin/roles",
            json!({
                "name": "On-call",
                "maxSessionDurationHours": 4,
                "resourceIds": [resources[0]],
                "userIds": [dev],
            }),
        )
        .await;
    let role = r.ok(201).clone();
    assert_eq!(
        keys(&role),
        BTreeSet::from([
            "id",
            "name",
            "maxSessionDurationHours",
            "resourceIds",
            "userIds",
            "createdAt"
        ])
    );
    assert_eq!(role["name"], "On-call");
    assert_eq!(role["maxSessionDurationHours"], json!(4));
    assert_eq!(role["resourceIds"], json!([resources[0]]));
    assert_eq!(role["userIds"], json!([dev]));
    let rid = id(&role);
    let path = format!("/api/admin/roles/{rid}");

    // Defaults: no limit, nobody, nothing.
    let r = s
        .post(&admin, "/api/admin/roles", json!({"name": "Empty"}))
        .await;
    let empty = r.ok(201).clone();
    assert_eq!(empty["maxSessionDurationHours"], Value::Null);
    assert_eq!(empty["resourceIds"], json!([]));
    assert_eq!(empty["userIds"], json!([]));

    let user = s.find(&admin, "/api/admin/users", "id", &dev).await;
    assert!(strings(&user["roleIds"]).contains(&rid));

    let r = s
        .patch(
            &admin,
            &path,
            json!({"name": "On-call (nights)", "resourceIds": resources.clone()}),
        )
        .await;
    let patched = r.ok(200).clone();
    assert_eq!(patched["name"], "On-call (nights)");
    assert_eq!(patched["maxSessionDurationHours"], json!(4));
    assert_eq!(
        strings(&patched["resourceIds"]),
        resources.iter().cloned().collect()
    );
    assert_eq!(patched["userIds"], json!([dev]));

    let r = s
        .patch(&admin, &path, json!({"maxSessionDurationHours": null}))
        .await;
    assert_eq!(r.ok(200)["maxSessionDurationHours"], Value::Null);
    let r = s.patch(&admin, &path, json!({"userIds": []})).await;
    assert_eq!(r.ok(200)["userIds"], json!([]));
    let listed = s.find(&admin, "/api/admin/roles", "id", &rid).await;
    assert_eq!(listed, r.json);
    let user = s.find(&admin, "/api/admin/users", "id", &dev).await;
    assert!(!strings(&user["roleIds"]).contains(&rid));

    let r = s.delete(&admin, &path).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let ids = s.ids(&admin, "/api/admin/roles").await;
    assert!(!ids.contains(&rid));
    assert!(ids.contains(&id(&empty)));
    s.delete(&admin, &path).await.err(404, "NOT_FOUND");
    s.patch(&admin, &path, json!({"name": "x"}))
        .await
        .err(404, "NOT_FOUND");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn users_crud_and_admins_cannot_demote_or_delete_themselves() {
    let s = TestServer::start().await;
    let admin = s.login(ADMIN).await;
    let resource = s
        .ids(&admin, "/api/admin/resources")
        .await
        .into_iter()
        .next()
        .unwrap();

    let r = s
        .post(
            &admin,
            "/api/admin/users",
            json!({"email": "  New.Person@Example.COM ", "isAdmin": false, "resourceIds": [resource]}),
        )
        .await;
    let user = r.ok(201).clone();
    assert_eq!(
        keys(&user),
        BTreeSet::from([
            "id",
            "email",
            "isAdmin",
            "resourceIds",
            "roleIds",
            "createdAt"
        ])
    );
    assert_eq!(user["email"], "new.person@example.com");
    assert_eq!(user["isAdmin"], false);
    assert_eq!(user["resourceIds"], json!([resource]));
    assert_eq!(user["roleIds"], json!([]));
    let uid = id(&user);
    let path = format!("/api/admin/users/{uid}");
    assert_eq!(s.find(&admin, "/api/admin/users", "id", &uid).await, user);

    // The new user can sign in and sees their one resource.
    let token = s.login("new.person@example.com").await;
    let me = s.get(Some(&token), "/api/me").await;
    assert_eq!(me.ok(200)["resourceCount"], json!(1));
    assert_eq!(me.json["user"]["id"], json!(uid));
    s.get(Some(&token), "/api/admin/users")
        .await
        .err(403, "FORBIDDEN");

    // Promote, rename.
    let r = s.patch(&admin, &path, json!({"isAdmin": true})).await;
    assert_eq!(r.ok(200)["isAdmin"], true);
    assert_eq!(r.json["email"], "new.person@example.com");
    s.get(Some(&token), "/api/admin/users").await.ok(200);
    let r = s
        .patch(&admin, &path, json!({"email": "renamed@example.com"}))
        .await;
    assert_eq!(r.ok(200)["email"], "renamed@example.com");
    assert_eq!(r.json["isAdmin"], true);
    assert_eq!(r.json["resourceIds"], json!([resource]));
    // The old e-mail is free again, the new one logs in.
    s.login("renamed@example.com").await;
    let r = s
        .call(
            Method::POST,
            None,
            "/api/dev/login",
            Some(json!({"email": "new.person@example.com"})),
        )
        .await;
    r.err(401, "UNAUTHENTICATED");

    // An admin may demote another admin.
    let r = s.patch(&admin, &path, json!({"isAdmin": false})).await;
    assert_eq!(r.ok(200)["isAdmin"], false);

    // Delete.
    let r = s.delete(&admin, &path).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(!s.ids(&admin, "/api/admin/users").await.contains(&uid));
    s.get(Some(&token), "/api/me")
        .await
        .err(401, "UNAUTHENTICATED");
    s.delete(&admin, &path).await.err(404, "NOT_FOUND");
    s.patch(&admin, &path, json!({"isAdmin": true}))
        .await
        .err(404, "NOT_FOUND");
    // The e-mail can be used again.
    s.post(
        &admin,
        "/api/admin/users",
        json!({"email": "renamed@example.com"}),
    )
    .await
    .ok(201);

    // The admin cannot delete themself or drop their own admin flag; setting it to true is fine.
    let me = s.get(Some(&admin), "/api/me").await;
    let admin_id = me.ok(200)["user"]["id"].as_str().unwrap().to_owned();
    let own = format!("/api/admin/users/{admin_id}");
    s.delete(&admin, &own).await.err(409, "CONFLICT");
    s.patch(&admin, &own, json!({"isAdmin": false}))
        .await
        .err(409, "CONFLICT");
    let r = s.patch(&admin, &own, json!({"isAdmin": true})).await;
    assert_eq!(r.ok(200)["isAdmin"], true);
    let me = s.get(Some(&admin), "/api/me").await;
    assert_eq!(me.ok(200)["user"]["isAdmin"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn organization_get_and_put() {
    let s = TestServer::start().await;
    let admin = s.login(ADMIN).await;
    let member = s.login(MEMBER).await;
    let r = s.get(Some(&admin), "/api/admin/organization").await;
    let org = r.ok(200).clone();
    assert_eq!(
        keys(&org),
        BTreeSet::from(["id", "name", "tier", "status", "ipv6Prefix"])
    );
    assert_eq!(org["name"], "Demo Org");
    assert_eq!(org["tier"], "TEAM");
    assert_eq!(org["status"], "ACTIVE");
    let me = s.get(Some(&member), "/api/me").await;
    assert_eq!(me.ok(200)["organization"], org);

    // The plan is the operator's: an admin who asks for another is refused, and nothing of
    // the request is applied, not even the new name.
    for tier in ["BUSINESS", "FREE", "STARTER"] {
        let r = s
            .put(
                &admin,
                "/api/admin/organization",
                json!({"name": "Upgraded Org", "tier": tier}),
            )
            .await;
        let error = r.err(403, "FORBIDDEN");
        assert_eq!(
            error["message"],
            "The plan (TEAM) is changed only by the operator of this EntryGuard deployment; ask them to upgrade or downgrade it"
        );
    }
    assert_eq!(
        s.get(Some(&admin), "/api/admin/organization").await.ok(200),
        &org
    );

    // Renaming works, with the current plan sent back or without a plan.
    let r = s
        .put(
            &admin,
            "/api/admin/organization",
            json!({"name": " Renamed Org ", "tier": "TEAM"}),
        )
        .await;
    assert_eq!(
        r.ok(200),
        &json!({"id": org["id"], "name": "Renamed Org", "tier": "TEAM", "status": "ACTIVE",
            "ipv6Prefix": 128})
    );
    let r = s
        .put(
            &admin,
            "/api/admin/organization",
            json!({"name": "Renamed Again"}),
        )
        .await;
    assert_eq!(r.ok(200)["name"], "Renamed Again");
    let again = s.get(Some(&admin), "/api/admin/organization").await;
    assert_eq!(again.ok(200), &r.json);
    let me = s.get(Some(&member), "/api/me").await;
    assert_eq!(me.ok(200)["organization"], r.json);

    s.put(
        &admin,
        "/api/admin/organization",
        json!({"name": "", "tier": "TEAM"}),
    )
    .await
    .field_err("name");
    s.put(
        &admin,
        "/api/admin/organization",
        json!({"name": "x".repeat(101)}),
    )
    .await
    .field_err("name");
    s.put(
        &admin,
        "/api/admin/organization",
        json!({"name": "Org", "tier": "team"}),
    )
    .await
    .field_err("tier");
    let after = s.get(Some(&admin), "/api/admin/organization").await;
    assert_eq!(after.ok(200), &r.json, "rejected updates change nothing");

    // The audit log names who did what: the admin's renames, never a plan change.
    let page = s
        .get(Some(&admin), "/api/admin/audit-logs?type=admin.change")
        .await;
    let messages: Vec<&str> = page.ok(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        messages[..2],
        [
            "Renamed the organization from 'Renamed Org' to 'Renamed Again'",
            "Renamed the organization from 'Demo Org' to 'Renamed Org'",
        ]
    );
}

/// Runs a member session from start to CANCELLED and an admin change; returns the session id.
async fn some_history(s: &TestServer, admin: &str, member: &str) -> String {
    s.put(
        admin,
        "/api/admin/organization",
        json!({"name": "Demo Org Ltd"}),
    )
    .await
    .ok(200);
    let active = s.settled_session(member, 2, "ACTIVE").await;
    let sid = id(&active);
    s.stop_and_wait(member, &sid).await;
    s.wait_audit(admin, "?type=rule.applied", 3).await;
    s.wait_audit(admin, "?type=rule.removed", 3).await;
    sid
}

async fn audit(s: &TestServer, admin: &str, query: &str) -> Value {
    let r = s
        .get(Some(admin), &format!("/api/admin/audit-logs{query}"))
        .await;
    r.ok(200).clone()
}

fn items(page: &Value) -> Vec<Value> {
    page["items"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn audit_log_records_the_lifecycle_and_admin_changes() {
    let s = TestServer::start().await;
    let admin = s.login(ADMIN).await;
    let member = s.login(MEMBER).await;
    let dev = member_id(&s, &admin).await;
    let me = s.get(Some(&admin), "/api/me").await;
    let admin_id = me.ok(200)["user"]["id"].as_str().unwrap().to_owned();
    let sid = some_history(&s, &admin, &member).await;
    let demo_resources = s.ids(&admin, "/api/admin/resources").await;

    let page = audit(&s, &admin, "?limit=200").await;
    assert_eq!(keys(&page), BTreeSet::from(["items", "nextCursor"]));
    assert_eq!(page["nextCursor"], Value::Null);
    let all = items(&page);
    for e in &all {
        assert_eq!(
            keys(e),
            BTreeSet::from([
                "id",
                "time",
                "type",
                "actorId",
                "actorEmail",
                "ip",
                "sessionId",
                "resourceId",
                "outcome",
                "message"
            ])
        );
    }
    // Newest first.
    let times: Vec<chrono::DateTime<chrono::FixedOffset>> = all
        .iter()
        .map(|e| chrono::DateTime::parse_from_rfc3339(e["time"].as_str().unwrap()).unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
    let of = |kind: &str| -> Vec<&Value> { all.iter().filter(|e| e["type"] == kind).collect() };

    let started = of("session.started");
    assert_eq!(started.len(), 1);
    assert_eq!(started[0]["actorId"], json!(dev));
    assert_eq!(started[0]["actorEmail"], MEMBER);
    assert_eq!(started[0]["ip"], "127.0.0.1");
    assert_eq!(started[0]["sessionId"], json!(sid));
    assert_eq!(started[0]["outcome"], "SUCCESS");
    assert_eq!(
        started[0]["message"],
        "Started a 2 h session from 127.0.0.1 on 3 resource(s)"
    );

    for kind in ["rule.applied", "rule.removed"] {
        let events = of(kind);
        assert_eq!(events.len(), 3, "{kind}");
        let resources: BTreeSet<String> = events
            .iter()
            .map(|e| e["resourceId"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(resources, demo_resources, "{kind}");
        for e in events {
            assert_eq!(e["sessionId"], json!(sid));
            assert_eq!(e["actorId"], Value::Null, "done by EntryGuard itself");
            assert_eq!(e["outcome"], "SUCCESS");
        }
    }
    let stopped = of("session.stopped");
    assert_eq!(stopped.len(), 1);
    assert_eq!(stopped[0]["actorId"], json!(dev));
    assert_eq!(stopped[0]["sessionId"], json!(sid));
    let changes = of("admin.change");
    // Newest first: the organization update, then the organization's creation with its admin.
    assert_eq!(changes.len(), 2);
    assert!(
        changes[1]["message"]
            .as_str()
            .unwrap()
            .starts_with("Created the organization 'Demo Org' with administrator"),
        "{}",
        changes[1]
    );
    assert_eq!(changes[0]["actorId"], json!(admin_id));
    assert_eq!(changes[0]["actorEmail"], ADMIN);
    assert_eq!(
        changes[0]["message"],
        "Renamed the organization from 'Demo Org' to 'Demo Org Ltd'"
    );
    assert_eq!(of("auth.login").len(), 2);
    assert!(of("rule.failed").is_empty());
    assert_eq!(all.len(), 1 + 3 + 1 + 3 + 2 + 2);

    // Filter by type.
    for kind in [
        "session.started",
        "rule.applied",
        "session.stopped",
        "rule.removed",
        "admin.change",
        "session.expired",
    ] {
        let filtered = items(&audit(&s, &admin, &format!("?type={kind}&limit=200")).await);
        let expected: Vec<Value> = of(kind).into_iter().cloned().collect();
        assert_eq!(filtered, expected, "{kind}");
    }

    // Filter by user (the actor).
    for user in [&dev, &admin_id] {
        let filtered = items(&audit(&s, &admin, &format!("?userId={user}&limit=200")).await);
        let expected: Vec<Value> = all
            .iter()
            .filter(|e| e["actorId"] == json!(user))
            .cloned()
            .collect();
        assert!(!expected.is_empty());
        assert_eq!(filtered, expected);
    }
    let nobody = audit(&s, &admin, &format!("?userId={}", uuid::Uuid::new_v4())).await;
    assert_eq!(nobody, json!({"items": [], "nextCursor": null}));

    // Filter by time: `from` and `to` are inclusive.
    let middle = all[all.len() / 2]["time"].as_str().unwrap().to_owned();
    let t = chrono::DateTime::parse_from_rfc3339(&middle).unwrap();
    let from = items(&audit(&s, &admin, &format!("?from={}&limit=200", enc(&middle))).await);
    let to = items(&audit(&s, &admin, &format!("?to={}&limit=200", enc(&middle))).await);
    let at_t = all.iter().filter(|e| e["time"] == json!(middle)).count();
    assert!(at_t >= 1);
    let time_of =
        |e: &Value| chrono::DateTime::parse_from_rfc3339(e["time"].as_str().unwrap()).unwrap();
    assert!(from.iter().all(|e| time_of(e) >= t));
    assert!(to.iter().all(|e| time_of(e) <= t));
    assert_eq!(from.len(), all.iter().filter(|e| time_of(e) >= t).count());
    assert_eq!(to.len(), all.iter().filter(|e| time_of(e) <= t).count());
    assert_eq!(from.len() + to.len(), all.len() + at_t);
    let future = audit(&s, &admin, "?from=2099-01-01T00:00:00Z").await;
    assert_eq!(future, json!({"items": [], "nextCursor": null}));
    let past = audit(&s, &admin, "?to=2000-01-01T00:00:00Z").await;
    assert_eq!(past, json!({"items": [], "nextCursor": null}));

    // Filters combine.
    let combined = items(
        &audit(
            &s,
            &admin,
            &format!("?type=session.started&userId={admin_id}"),
        )
        .await,
    );
    assert!(combined.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn audit_log_pages_with_a_cursor_and_rejects_bad_parameters() {
    let s = TestServer::start().await;
    let admin = s.login(ADMIN).await;
    let member = s.login(MEMBER).await;
    some_history(&s, &admin, &member).await;
    let all = items(&audit(&s, &admin, "?limit=200").await);
    // The history above, after the organization's creation.
    assert_eq!(all.len(), 12);

    let mut walked: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..all.len() + 2 {
        let query = match &cursor {
            Some(c) => format!("?limit=2&cursor={}", enc(c)),
            None => "?limit=2".to_owned(),
        };
        let page = audit(&s, &admin, &query).await;
        let page_items = items(&page);
        assert!(page_items.len() <= 2, "{page}");
        walked.extend(page_items);
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => {
                cursor = None;
                break;
            }
        }
    }
    assert!(cursor.is_none(), "the pages never ended");
    assert_eq!(walked, all, "every event exactly once, newest first");

    // Paging works with a filter too.
    let applied = items(&audit(&s, &admin, "?type=rule.applied").await);
    let first = audit(&s, &admin, "?type=rule.applied&limit=2").await;
    assert_eq!(items(&first), applied[..2].to_vec());
    let next = first["nextCursor"].as_str().unwrap().to_owned();
    let second = audit(
        &s,
        &admin,
        &format!("?type=rule.applied&limit=2&cursor={}", enc(&next)),
    )
    .await;
    assert_eq!(items(&second), applied[2..].to_vec());
    assert_eq!(second["nextCursor"], Value::Null);

    // The default page is 50, the maximum 200.
    let page = audit(&s, &admin, "").await;
    assert_eq!(items(&page), all);
    assert_eq!(items(&audit(&s, &admin, "?limit=200").await), all);

    for bad in ["0", "201", "-1", "abc", "1.5"] {
        let r = s
            .get(Some(&admin), &format!("/api/admin/audit-logs?limit={bad}"))
            .await;
        assert_eq!(
            r.field_err("limit")["fields"]["limit"],
            "must be between 1 and 200",
            "limit={bad}"
        );
    }
    s.get(Some(&admin), "/api/admin/audit-logs?type=session.exploded")
        .await
        .field_err("type");
    s.get(Some(&admin), "/api/admin/audit-logs?userId=nope")
        .await
        .field_err("userId");
    s.get(Some(&admin), "/api/admin/audit-logs?from=yesterday")
        .await
        .field_err("from");
    s.get(Some(&admin), "/api/admin/audit-logs?to=2026-13-01")
        .await
        .field_err("to");
    s.get(Some(&admin), "/api/admin/audit-logs?sort=asc")
        .await
        .err(400, "VALIDATION_FAILED");
    let long_cursor = "x".repeat(201);
    s.get(
        Some(&admin),
        &format!("/api/admin/audit-logs?cursor={long_cursor}"),
    )
    .await
    .field_err("cursor");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn iam_policy_lists_the_credentials_groups_and_actions() {
    let s = TestServer::start().await;
    let admin = s.login(ADMIN).await;
    let credential = seed_credential(&s, &admin).await;
    let path = format!("/api/admin/iam-policy?credentialId={credential}");

    let r = s.get(Some(&admin), &path).await;
    let view = r.ok(200).clone();
    assert_eq!(
        keys(&view),
        BTreeSet::from(["credentialId", "policy", "trustPolicy"])
    );
    assert_eq!(view["credentialId"], json!(credential));
    assert_eq!(view["trustPolicy"], Value::Null);
    let policy = &view["policy"];
    assert_eq!(policy["Version"], "2012-10-17");
    let arns = |policy: &Value| -> Vec<String> {
        let statements = policy["Statement"].as_array().unwrap();
        let ingress = statements
            .iter()
            .find(|st| st["Sid"] == "EntryGuardManageIngress")
            .unwrap_or_else(|| panic!("no ingress statement: {policy}"));
        assert_eq!(
            ingress["Action"],
            json!([
                "ec2:AuthorizeSecurityGroupIngress",
                "ec2:RevokeSecurityGroupIngress"
            ])
        );
        assert_eq!(ingress["Effect"], "Allow");
        ingress["Resource"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_owned())
            .collect()
    };
    let expected: Vec<String> = DEMO_GROUPS
        .iter()
        .map(|sg| format!("arn:aws:ec2:{REGION}:*:security-group/{sg}"))
        .collect();
    assert_eq!(arns(policy), expected);

    let mut actions = BTreeSet::new();
    for st in policy["Statement"].as_array().unwrap() {
        match &st["Action"] {
            Value::String(a) => {
                actions.insert(a.clone());
            }
            Value::Array(list) => {
                actions.extend(list.iter().map(|a| a.as_str().unwrap().to_owned()));
            }
            other => panic!("unexpected Action {other}"),
        }
    }
    for action in [
        "ec2:AuthorizeSecurityGroupIngress",
        "ec2:RevokeSecurityGroupIngress",
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeSecurityGroupRules",
        "sts:GetCallerIdentity",
        "servicequotas:GetServiceQuota",
    ] {
        assert!(actions.contains(action), "{action} missing from {policy}");
    }
    assert!(
        actions.iter().all(|a| a.starts_with("ec2:")
            || a.starts_with("sts:")
            || a == "servicequotas:GetServiceQuota"),
        "{actions:?}"
    );

    // A new resource on the credential adds its group.
    let r = s
        .post(
            &admin,
            "/api/admin/resources",
            json!({
                "name": "spare",
                "credentialId": credential,
                "securityGroupId": SPARE_GROUPS[0],
                "region": "us-east-2",
                "ports": [{"protocol": "tcp", "fromPort": 80, "toPort": 80}],
            }),
        )
        .await;
    r.ok(201);
    let r = s.get(Some(&admin), &path).await;
    let mut expected = expected;
    expected.push(format!(
        "arn:aws:ec2:us-east-2:*:security-group/{}",
        SPARE_GROUPS[0]
    ));
    expected.sort();
    assert_eq!(arns(&r.ok(200)["policy"]), expected);

    // A credential without resources gets no ingress statement at all.
    let r = s
        .post(
            &admin,
            "/api/admin/credentials",
            json!({"name": "unused", "provider": "simulated", "region": REGION}),
        )
        .await;
    let unused = id(r.ok(201));
    let r = s
        .get(
            Some(&admin),
            &format!("/api/admin/iam-policy?credentialId={unused}"),
        )
        .await;
    let statements = r.ok(200)["policy"]["Statement"].as_array().unwrap().clone();
    assert!(statements
        .iter()
        .all(|st| st["Sid"] != "EntryGuardManageIngress"));
    assert!(!r.text.contains("security-group/"), "{}", r.text);

    // Unknown, malformed and missing credential ids.
    let r = s
        .get(
            Some(&admin),
            &format!(
                "/api/admin/iam-policy?credentialId={}",
                uuid::Uuid::new_v4()
            ),
        )
        .await;
    assert_eq!(r.err(404, "NOT_FOUND")["message"], "Credential not found");
    s.get(Some(&admin), "/api/admin/iam-policy?credentialId=nope")
        .await
        .err(404, "NOT_FOUND");
    s.get(Some(&admin), "/api/admin/iam-policy")
        .await
        .field_err("credentialId");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simultaneous_creations_of_one_email_create_one_user() {
    let s = TestServer::start().await;
    let admin = s.login(ADMIN).await;
    let before = s.ids(&admin, "/api/admin/users").await.len();
    let answers = futures::future::join_all((0..8).map(|i| {
        let s = &s;
        let admin = &admin;
        async move {
            let client = reqwest::Client::new();
            // Different spellings of the same address.
            let email = if i % 2 == 0 {
                "twin@example.com"
            } else {
                "TWIN@Example.com"
            };
            s.send(
                "concurrent user creation",
                client
                    .post(s.url("/api/admin/users"))
                    .bearer_auth(admin)
                    .json(&json!({"email": email})),
            )
            .await
        }
    }))
    .await;
    let created = answers.iter().filter(|a| a.status == 201).count();
    assert_eq!(
        created,
        1,
        "{:?}",
        answers.iter().map(|a| &a.text).collect::<Vec<_>>()
    );
    for a in answers.iter().filter(|a| a.status != 201) {
        a.field_err("email");
    }
    assert_eq!(s.ids(&admin, "/api/admin/users").await.len(), before + 1);
    s.login("twin@example.com").await;
}

/// Who can reach production right now, and closing it: the live list with its filters, an
/// admin stopping a member's session (the member sees who), revoking all access to one
/// resource and then to everything, and the 30-day activity figures.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn live_access_lists_stops_and_revokes() {
    let s = TestServer::start().await;
    let admin = s.login(ADMIN).await;
    let member = s.login(MEMBER).await;
    let dev = member_id(&s, &admin).await;
    let baseline = s.firewall().await;
    // The admin reaches the same resources directly, to have sessions of their own.
    let resources: Vec<String> = s
        .get(Some(&admin), "/api/admin/resources")
        .await
        .ok(200)
        .as_array()
        .unwrap()
        .iter()
        .map(id)
        .collect();
    let admin_id = id(&s.find(&admin, "/api/admin/users", "email", ADMIN).await);
    s.patch(
        &admin,
        &format!("/api/admin/users/{admin_id}"),
        json!({"resourceIds": resources}),
    )
    .await
    .ok(200);

    let r = s.get(Some(&admin), "/api/admin/sessions").await;
    assert_eq!(r.ok(200), &json!([]));
    let first = id(&s.settled_session(&member, 2, "ACTIVE").await);
    let second = id(&s.settled_session(&member, 4, "ACTIVE").await);
    let own = id(&s.settled_session(&admin, 1, "ACTIVE").await);

    let live = s.get(Some(&admin), "/api/admin/sessions").await;
    let live = live.ok(200).as_array().unwrap().clone();
    let order: Vec<String> = live.iter().map(|l| id(&l["session"])).collect();
    assert_eq!(
        order,
        [own.clone(), first.clone(), second.clone()],
        "soonest expiry first"
    );
    assert_eq!(keys(&live[1]), BTreeSet::from(["user", "session"]));
    assert_eq!(live[1]["user"]["email"], MEMBER);
    assert_eq!(live[1]["session"]["status"], "ACTIVE");
    assert_eq!(live[1]["session"]["stoppedBy"], Value::Null);
    let mine = s
        .get(Some(&admin), &format!("/api/admin/sessions?userId={dev}"))
        .await;
    assert_eq!(mine.ok(200).as_array().unwrap().len(), 2);

    // An admin stops a member's session; the member sees who did.
    let r = s
        .post(
            &admin,
            &format!("/api/admin/sessions/{first}/stop"),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let ended = s.wait_status(&member, &first, "CANCELLED").await;
    assert_eq!(ended["stoppedBy"]["email"], ADMIN);
    s.post(
        &admin,
        &format!("/api/admin/sessions/{first}/stop"),
        json!({}),
    )
    .await
    .err(409, "SESSION_NOT_STOPPABLE");
    // The member's own stop records no one else.
    let r = s
        .post(&admin, &format!("/api/sessions/{own}/stop"), json!({}))
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(
        s.wait_status(&admin, &own, "CANCELLED").await["stoppedBy"],
        Value::Null
    );

    // Revoke all access to one resource: the sessions reaching it end, the list empties.
    let resource = id(&s.get(Some(&admin), "/api/admin/resources").await.ok(200)[0]);
    let reaching = s
        .get(
            Some(&admin),
            &format!("/api/admin/sessions?resourceId={resource}"),
        )
        .await;
    assert_eq!(reaching.ok(200).as_array().unwrap().len(), 1);
    let r = s
        .post(
            &admin,
            "/api/admin/sessions/revoke-all",
            json!({"resourceId": resource}),
        )
        .await;
    assert_eq!(r.ok(200), &json!({"stopped": 1}));
    s.wait_status(&member, &second, "CANCELLED").await;
    s.wait_firewall("every rule removed", &baseline).await;

    // Revoke everything: two new sessions end at once.
    let a = id(&s.settled_session(&member, 1, "ACTIVE").await);
    let b = id(&s.settled_session(&admin, 1, "ACTIVE").await);
    let r = s
        .call(
            Method::POST,
            Some(&admin),
            "/api/admin/sessions/revoke-all",
            None,
        )
        .await;
    assert_eq!(r.ok(200), &json!({"stopped": 2}));
    s.wait_status(&member, &a, "CANCELLED").await;
    s.wait_status(&admin, &b, "CANCELLED").await;
    s.wait_firewall("every rule removed again", &baseline).await;
    let r = s.get(Some(&admin), "/api/admin/sessions").await;
    assert_eq!(r.ok(200), &json!([]));

    let stops = s
        .get(Some(&admin), "/api/admin/audit-logs?type=session.stopped")
        .await;
    let messages: Vec<&str> = stops.ok(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert!(
        messages.contains(&"Stopped dev@example.com's session"),
        "{messages:?}"
    );
    assert!(
        messages.contains(
            &format!("Revoked all access to resource {resource}: stopped 1 live session(s)")
                .as_str()
        ),
        "{messages:?}"
    );
    assert!(
        messages.contains(&"Revoked all access to every resource: stopped 2 live session(s)"),
        "{messages:?}"
    );

    let activity = s.get(Some(&admin), "/api/admin/sessions/activity").await;
    let activity = activity.ok(200);
    let days = activity["days"].as_array().unwrap();
    assert_eq!(days.len(), 30);
    let today = days.last().unwrap();
    assert_eq!(today["started"], 5);
    assert_eq!(today["failed"], 0);
    assert_eq!(activity["failureRate"], 0.0);
    assert!(days[..29].iter().all(|d| d["started"] == 0));
}

/// Adding a person is one act: the user and their invitation to the sign-in directory, or
/// neither. Removing them disables their sign-in before anything is deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn users_are_invited_and_disabled_in_the_directory_or_nothing_changes() {
    let s = TestServer::start().await;
    let admin = s.login(ADMIN).await;
    let users_before = s
        .get(Some(&admin), "/api/admin/users")
        .await
        .ok(200)
        .clone();
    let person = |email: &str| s.directory.person(&email.parse().unwrap()).unwrap();

    // An outage or a refusal: clear errors, and no user is left behind.
    for (unavailable, status, code) in [
        (true, 503, "DIRECTORY_UNAVAILABLE"),
        (false, 502, "DIRECTORY_REFUSED"),
    ] {
        s.directory.fail(unavailable);
        let (got, body) = s
            .call_expecting_5xx(
                Method::POST,
                &admin,
                "/api/admin/users",
                Some(json!({"email": "new@example.com", "isAdmin": false})),
            )
            .await;
        assert_eq!((got, body["error"]["code"].as_str()), (status, Some(code)));
        let error = &body["error"];
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("nothing was changed"),
            "{error}"
        );
        assert_eq!(
            s.get(Some(&admin), "/api/admin/users").await.ok(200),
            &users_before
        );
    }
    s.directory.recover();

    let r = s
        .post(
            &admin,
            "/api/admin/users",
            json!({"email": "new@example.com", "isAdmin": false}),
        )
        .await;
    let new_id = id(r.ok(201));
    let invited = person("new@example.com").expect("invited");
    assert!(invited.enabled);
    assert_eq!(invited.invitations, 1);
    let new_token = s.login("new@example.com").await;

    // A new e-mail is invited and the old one disabled.
    s.patch(
        &admin,
        &format!("/api/admin/users/{new_id}"),
        json!({"email": "renamed@example.com"}),
    )
    .await
    .ok(200);
    assert!(person("renamed@example.com").unwrap().enabled);
    assert!(!person("new@example.com").unwrap().enabled);

    // Removing during an outage changes nothing; afterwards the sign-in is disabled.
    s.directory.fail(true);
    let (got, body) = s
        .call_expecting_5xx(
            Method::DELETE,
            &admin,
            &format!("/api/admin/users/{new_id}"),
            None,
        )
        .await;
    assert_eq!(
        (got, body["error"]["code"].as_str()),
        (503, Some("DIRECTORY_UNAVAILABLE"))
    );
    s.find(&admin, "/api/admin/users", "email", "renamed@example.com")
        .await;
    s.directory.recover();
    let r = s
        .delete(&admin, &format!("/api/admin/users/{new_id}"))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(!person("renamed@example.com").unwrap().enabled);
    s.get(Some(&new_token), "/api/me")
        .await
        .err(401, "UNAUTHENTICATED");

    // Added again, the person's account comes back with a second invitation.
    s.post(
        &admin,
        "/api/admin/users",
        json!({"email": "renamed@example.com", "isAdmin": false}),
    )
    .await
    .ok(201);
    let again = person("renamed@example.com").unwrap();
    assert!(again.enabled);
    assert_eq!(again.invitations, 2);
    let events = s
        .get(Some(&admin), "/api/admin/audit-logs?type=admin.change")
        .await;
    assert_eq!(
        events.ok(200)["items"][0]["message"],
        "Created user renamed@example.com and sent an invitation"
    );
}

/// The development login's sign-up: a new organization on the Free plan with its first admin,
/// an empty start with a hint, and no second organization for an address already taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_development_login_signs_up_a_new_organization() {
    let s = TestServer::start().await;
    let signup = |email: &str, name: &str| {
        s.call(
            Method::POST,
            None,
            "/api/dev/signup",
            Some(json!({"email": email, "organizationName": name})),
        )
    };
    let r = signup("founder@startup.example", "Startup").await;
    let token = r.ok(201)["token"].as_str().unwrap().to_owned();
    let me = s.get(Some(&token), "/api/me").await;
    assert_eq!(me.ok(200)["organization"]["name"], "Startup");
    assert_eq!(me.json["organization"]["tier"], "FREE");
    assert_eq!(me.json["user"]["isAdmin"], true);
    assert_eq!(me.json["resourceCount"], 0);
    let log = s
        .get(Some(&token), "/api/admin/audit-logs?type=admin.change")
        .await;
    assert_eq!(
        log.ok(200)["items"][0]["message"],
        "founder@startup.example signed up and created the organization 'Startup' on the Free plan"
    );
    for email in ["founder@startup.example", MEMBER] {
        signup(email, "Again").await.err(409, "CONFLICT");
    }
}
