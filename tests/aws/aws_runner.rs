//! The local runner on the AWS backend (`--backend aws`), against moto: provisioning, the first
//! organization, and the README's walk-through through DynamoDB, SQS and EC2.

use std::collections::BTreeMap;

use serde_json::json;

use entryguard::domain::model::Email;
use entryguard::ports::Store;
use entryguard_aws::{DynamoStore, ResourceNames};
use entryguard_local::{AwsConfig, Backend};
use entryguard_tests::moto::{AwsFixture, Moto, REGION};
use entryguard_tests::server::{TestServer, ADMIN, DEMO_GROUPS, MEMBER};

fn email(s: &str) -> Email {
    s.parse().unwrap()
}

/// `--backend aws --provision --seed-demo`: the README's curl walk-through, unchanged, with the
/// sessions in DynamoDB and the tasks on SQS.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_walk_through_runs_on_dynamodb_and_sqs() {
    let moto = Moto::start();
    let names = ResourceNames::with_prefix("eg-runner");
    let s = TestServer::start_on(Backend::Aws(AwsConfig {
        sdk: moto.options(),
        names: names.clone(),
        provision: true,
        bootstrap_admin: None,
        seed_demo: true,
    }))
    .await;
    let member = s.login(MEMBER).await;
    let me = s.get(Some(&member), "/api/me").await;
    assert_eq!(me.ok(200)["resourceCount"], 3, "{}", me.text);

    let started = s.start_session(&member, 2).await;
    let id = started["id"].as_str().unwrap().to_owned();
    let active = s.wait_status(&member, &id, "ACTIVE").await;
    let entries = active["resources"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    assert!(entries.iter().all(|e| e["status"] == "APPLIED"), "{active}");
    let firewall = s.firewall().await;
    for sg in DEMO_GROUPS {
        assert_eq!(firewall[sg].len(), 1, "{firewall:?}");
    }

    // The session lives in DynamoDB, not in the data directory.
    let sdk = moto.sdk_config().await;
    let table = DynamoStore::new(
        entryguard_aws::sdk::dynamodb::Client::new(&sdk),
        &names.table,
    );
    let stored = table
        .get_session(id.parse().unwrap())
        .await
        .unwrap()
        .expect("the session is in the table");
    assert_eq!(stored.id.to_string(), id);

    let extended = s
        .call(
            reqwest::Method::POST,
            Some(&member),
            &format!("/api/sessions/{id}/extend"),
            None,
        )
        .await;
    extended.ok(200);
    s.stop_and_wait(&member, &id).await;
    let empty: BTreeMap<_, _> = s
        .firewall()
        .await
        .into_keys()
        .map(|k| (k, vec![]))
        .collect();
    s.wait_firewall("every rule removed", &empty).await;

    // Expiry through the sweeper's index query.
    let short = s.start_session(&member, 1).await;
    let short_id = short["id"].as_str().unwrap();
    s.wait_status(&member, short_id, "ACTIVE").await;
    s.advance_clock(3700).await;
    s.wait_status(&member, short_id, "EXPIRED").await;
    s.wait_firewall("the expired session's rules removed", &empty)
        .await;
}

/// The admin connects the moto account (an access-key credential), adds a resource on `sg`
/// opening `port`, and adds eng@corp.example with direct access to it.
async fn connect_account_for_an_engineer(s: &TestServer, admin: &str, sg: &str, port: u16) {
    let credential = s
        .post(
            admin,
            "/api/admin/credentials",
            json!({"name": "prod", "provider": "aws", "region": REGION,
                   "accessKeyId": "AKIAMOTOTEST0000", "secretAccessKey": "moto-secret"}),
        )
        .await;
    let credential_id = credential.ok(201)["id"].as_str().unwrap().to_owned();
    let resource = s
        .post(
            admin,
            "/api/admin/resources",
            json!({"name": "service", "credentialId": credential_id,
                   "securityGroupId": sg, "region": REGION,
                   "ports": [{"protocol": "tcp", "fromPort": port, "toPort": port}]}),
        )
        .await;
    let resource_id = resource.ok(201)["id"].as_str().unwrap().to_owned();
    s.post(
        admin,
        "/api/admin/users",
        json!({"email": "eng@corp.example", "isAdmin": false, "resourceIds": [resource_id]}),
    )
    .await
    .ok(201);
}

/// `--backend aws --bootstrap-admin EMAIL` on a provisioned account: one organization with that
/// admin and nothing else; the admin connects an AWS account and a member's session opens and
/// closes a real (emulated) security-group rule.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bootstrapped_admin_connects_an_account_and_a_member_gets_access() {
    let fx = AwsFixture::start("eg-boot").await;
    let sg = fx.security_group("web").await;
    let backend = |admin: &str| {
        Backend::Aws(AwsConfig {
            sdk: fx.moto.options(),
            names: fx.names.clone(),
            provision: false,
            bootstrap_admin: Some(email(admin)),
            seed_demo: false,
        })
    };
    let s = TestServer::start_on(backend("boss@corp.example")).await;
    let admin = s.login("boss@corp.example").await;
    let me = s.get(Some(&admin), "/api/me").await;
    assert_eq!(me.ok(200)["user"]["isAdmin"], true, "{}", me.text);
    // No demo data on a real deployment.
    let demo = s
        .call(
            reqwest::Method::POST,
            None,
            "/api/dev/login",
            Some(json!({"email": ADMIN})),
        )
        .await;
    demo.err(401, "UNAUTHENTICATED");
    let users = s.get(Some(&admin), "/api/admin/users").await;
    assert_eq!(users.ok(200).as_array().unwrap().len(), 1);

    connect_account_for_an_engineer(&s, &admin, &sg.to_string(), 22).await;

    let eng = s.login("eng@corp.example").await;
    let session = s.settled_session(&eng, 2, "ACTIVE").await;
    let rules = fx.rules(&sg).await;
    assert_eq!(rules.len(), 1, "{rules:?}");
    assert_eq!(
        rules[0].cidr.map(|c| c.to_string()).as_deref(),
        Some("127.0.0.1/32")
    );
    let until = &session["expiresAt"].as_str().unwrap()[..16];
    assert_eq!(
        rules[0].description,
        Some(format!("EntryGuard eng@corp.example until {until}Z"))
    );

    s.stop_and_wait(&eng, session["id"].as_str().unwrap()).await;
    assert!(fx.rules(&sg).await.is_empty());
    drop(s);

    // A second start with another bootstrap admin finds the organization and adds nothing.
    let again = TestServer::start_on(backend("someone@else.example")).await;
    let other = again
        .call(
            reqwest::Method::POST,
            None,
            "/api/dev/login",
            Some(json!({"email": "someone@else.example"})),
        )
        .await;
    other.err(401, "UNAUTHENTICATED");
    assert!(fx.backend.store.has_any_org().await.unwrap());
    again.login("boss@corp.example").await;
}

/// The operator's command on an AWS deployment: it reaches the table and queue with the
/// operator's own AWS credentials, names them in the audit log, and a suspension ends a live
/// session whose rule then leaves the (emulated) security group.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_operator_suspends_an_organization_on_dynamodb() {
    let fx = AwsFixture::start("eg-operator").await;
    let sg = fx.security_group("db").await;
    let backend = Backend::Aws(AwsConfig {
        sdk: fx.moto.options(),
        names: fx.names.clone(),
        provision: false,
        bootstrap_admin: Some(email("boss@corp.example")),
        seed_demo: false,
    });
    let s = TestServer::start_on(backend.clone()).await;
    let admin = s.login("boss@corp.example").await;
    connect_account_for_an_engineer(&s, &admin, &sg.to_string(), 5432).await;
    let eng = s.login("eng@corp.example").await;
    let session = s.settled_session(&eng, 2, "ACTIVE").await;
    assert_eq!(fx.rules(&sg).await.len(), 1);

    let operator = entryguard_aws::caller_arn(&fx.moto.options())
        .await
        .unwrap();
    assert!(operator.starts_with("arn:aws:"), "{operator}");
    let ops = entryguard_local::operator_app(&backend, std::path::Path::new("/nonexistent"))
        .await
        .unwrap();
    let orgs = ops.operator_list_organizations().await.unwrap();
    assert_eq!(orgs.len(), 1);
    let org = orgs[0].org.id;
    ops.operator_set_plan(org, entryguard::domain::tier::Tier::Free, &operator)
        .await
        .unwrap();
    let done = ops.operator_suspend(org, &operator, "abuse").await.unwrap();
    assert_eq!(done.sessions_stopped, 1);

    s.wait_status(&eng, session["id"].as_str().unwrap(), "CANCELLED")
        .await;
    assert!(fx.rules(&sg).await.is_empty());
    s.post(&eng, "/api/sessions", json!({"durationHours": 1}))
        .await
        .err(403, "ORGANIZATION_SUSPENDED");
    let me = s.get(Some(&admin), "/api/me").await;
    assert_eq!(me.ok(200)["organization"]["tier"], "FREE");
    assert_eq!(me.json["organization"]["status"], "SUSPENDED");
    let log = s
        .get(Some(&admin), "/api/admin/audit-logs?type=admin.change")
        .await;
    let messages: Vec<String> = log.ok(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        messages.contains(&format!(
            "The operator ({operator}) suspended the organization: abuse"
        )),
        "{messages:?}"
    );
}

/// The Cognito directory on moto's user pool: an invitation creates an enabled account,
/// removal disables it, adding the person again enables it, and repeats are harmless.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cognito_directory_invites_and_disables() {
    use entryguard::ports::Directory;
    use entryguard_aws::sdk::cognito;

    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    let client = cognito::Client::new(&sdk);
    let pool = client
        .create_user_pool()
        .pool_name("eg-directory")
        .send()
        .await
        .unwrap()
        .user_pool
        .unwrap()
        .id
        .unwrap();
    let directory = entryguard_aws::CognitoDirectory::new(client.clone(), &pool);
    let enabled = |email: &'static str| {
        let client = client.clone();
        let pool = pool.clone();
        async move {
            let user = client
                .admin_get_user()
                .user_pool_id(&pool)
                .username(email)
                .send()
                .await
                .unwrap();
            let verified = user
                .user_attributes()
                .iter()
                .any(|a| a.name() == "email_verified" && a.value() == Some("true"));
            assert!(verified, "{user:?}");
            user.enabled()
        }
    };
    let eng = email("eng@corp.example");

    directory.invite(&eng).await.unwrap();
    assert!(enabled("eng@corp.example").await);
    directory.invite(&eng).await.unwrap();
    directory.disable(&eng).await.unwrap();
    assert!(!enabled("eng@corp.example").await);
    directory.disable(&eng).await.unwrap();
    directory.invite(&eng).await.unwrap();
    assert!(enabled("eng@corp.example").await);
    directory
        .disable(&email("nobody@corp.example"))
        .await
        .expect("someone without an account cannot sign in already");

    let missing = entryguard_aws::CognitoDirectory::new(client, "eu-west-1_doesnotexist");
    assert!(matches!(
        missing.invite(&eng).await,
        Err(entryguard::ports::DirectoryError::Rejected(_))
    ));
}
