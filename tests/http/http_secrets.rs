//! Credential secrets on the embedded backend, over HTTP: sealed at rest under the data
//! directory's key file, never in a response or a log line; and
//! `POST /api/admin/credentials/{id}/validate`.

use std::path::Path;

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde_json::{json, Value};

use entryguard::domain::ids::CredentialId;
use entryguard::domain::model::{Credential, SealedSecret};
use entryguard::embedded::firewall::FaultKind;
use entryguard::embedded::sealer::KEY_FILE;
use entryguard::embedded::LocalKeySealer;
use entryguard::ports::{SealContext, SecretSealer};
use entryguard_tests::logs;
use entryguard_tests::server::{Resp, TestServer, ADMIN, MEMBER, REGION};

const SECRET: &str = "Zq8/plaintext+SECRET/kT3vNw9EXAMPLEp0Xy7uLm";
const ACCESS_KEY: &str = "AKIAEMBEDDEDTEST0001";

fn id(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id: {v}"))
        .to_owned()
}

/// Every byte of every file under `dir`.
fn files_under(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("the data directory") {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push((path.display().to_string(), std::fs::read(&path).unwrap()));
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// What a person could see of the secret: all of it, or a recognizable piece of it.
fn assert_no_secret(what: &str, bytes: &[u8]) {
    for needle in [SECRET, &SECRET[..12], &SECRET[SECRET.len() - 12..]] {
        assert!(
            !contains(bytes, needle.as_bytes()),
            "{what} contains the secret ({needle})"
        );
    }
}

async fn validate(s: &TestServer, token: &str, credential: &str) -> Resp {
    s.call(
        Method::POST,
        Some(token),
        &format!("/api/admin/credentials/{credential}/validate"),
        None,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_secret_created_through_the_api_is_nowhere_in_plaintext() {
    let logs = logs::capture();
    let s = TestServer::start().await;
    let admin = s.login(ADMIN).await;
    let mut responses: Vec<String> = Vec::new();

    // A rejected request that carries the secret: the error names the bad field, not the secret.
    let r = s
        .post(
            &admin,
            "/api/admin/credentials",
            json!({"name": "bad", "provider": "aws", "region": REGION,
                   "accessKeyId": "not-a-key", "secretAccessKey": SECRET}),
        )
        .await;
    r.field_err("accessKeyId");
    responses.push(r.text);

    let r = s
        .post(
            &admin,
            "/api/admin/credentials",
            json!({"name": "Production keys", "provider": "aws", "region": REGION,
                   "accessKeyId": ACCESS_KEY, "secretAccessKey": format!("  {SECRET} ")}),
        )
        .await;
    let created = r.ok(201).clone();
    assert_eq!(created["hasSecret"], true);
    responses.push(r.text);
    let credential = id(&created);

    let r = s.get(Some(&admin), "/api/admin/credentials").await;
    r.ok(200);
    responses.push(r.text);
    let r = validate(&s, &admin, &credential).await;
    // The embedded backend cannot reach AWS: the check says so instead of guessing.
    let checked = r.ok(200).clone();
    assert_eq!(checked["status"], "INVALID", "{}", r.text);
    assert!(
        checked["statusMessage"]
            .as_str()
            .is_some_and(|m| m.contains("no aws cloud")),
        "{}",
        r.text
    );
    responses.push(r.text);
    let r = s
        .get(
            Some(&admin),
            &format!("/api/admin/iam-policy?credentialId={credential}"),
        )
        .await;
    r.ok(200);
    responses.push(r.text);
    let r = s.get(Some(&admin), "/api/admin/audit-logs?limit=200").await;
    r.ok(200);
    responses.push(r.text);
    for (i, text) in responses.iter().enumerate() {
        assert_no_secret(&format!("response {i}"), text.as_bytes());
    }

    // The record holds the secret sealed under the data directory's key, bound to it.
    let org = s.get(Some(&admin), "/api/admin/organization").await;
    let org_id = id(org.ok(200)).parse().unwrap();
    let doc: Credential = s
        .app
        .get_doc(
            org_id,
            *credential.parse::<CredentialId>().unwrap().as_uuid(),
        )
        .await
        .unwrap()
        .expect("the credential is stored");
    let sealed: SealedSecret = doc.sealed_secret().cloned().expect("a sealed secret");
    assert!(sealed.key_id.starts_with("local:"), "{sealed:?}");
    assert_eq!(sealed.encrypted_data_key, None);
    let key_file = s.data_dir().join(KEY_FILE);
    assert_eq!(std::fs::read(&key_file).unwrap().len(), 32);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{mode:o}");
    }
    let sealer = LocalKeySealer::load_or_create(s.data_dir()).unwrap();
    let opened = sealer
        .open(&sealed, &SealContext::of(&doc))
        .await
        .expect("the key file opens it");
    assert_eq!(opened.expose(), SECRET, "stored trimmed, and intact");

    // Copied into another credential's record, it does not open.
    let mut other = doc.clone();
    other.id = CredentialId::from_uuid(uuid::Uuid::new_v4());
    assert!(sealer
        .open(&sealed, &SealContext::of(&other))
        .await
        .is_err());

    // Not in any file of the data directory (the redb database, the queue, the seed file).
    let files = files_under(s.data_dir());
    // The scan does see stored records: the access key id (not a secret) is there in clear.
    assert!(
        files
            .iter()
            .any(|(name, bytes)| name.ends_with(".redb") && contains(bytes, ACCESS_KEY.as_bytes())),
        "the database stores the credential's record"
    );
    for (name, bytes) in &files {
        assert_no_secret(name, bytes);
    }
    // Nor in anything logged, at any level.
    let logged = logs.text();
    assert!(
        logged.contains("credential checked"),
        "the capture sees the server's logs"
    );
    assert_no_secret("the logs", logged.as_bytes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn validating_records_status_account_and_time() {
    let s = TestServer::start().await;
    let admin = s.login(ADMIN).await;
    let member = s.login(MEMBER).await;
    let listed = s
        .find(&admin, "/api/admin/credentials", "name", "Simulated cloud")
        .await;
    let credential = id(&listed);
    assert_eq!(listed["status"], "UNVERIFIED");

    let before: DateTime<Utc> = serde_json::from_value(s.advance_clock(0).await).unwrap();
    let r = validate(&s, &admin, &credential).await;
    let valid = r.ok(200).clone();
    let after: DateTime<Utc> = serde_json::from_value(s.advance_clock(0).await).unwrap();
    assert_eq!(valid["status"], "VALID", "{}", r.text);
    assert_eq!(valid["statusMessage"], Value::Null);
    let account = valid["accountId"].as_str().unwrap().to_owned();
    assert!(
        account.len() == 12 && account.chars().all(|c| c.is_ascii_digit()),
        "{account}"
    );
    let checked: DateTime<Utc> = serde_json::from_value(valid["checkedAt"].clone()).unwrap();
    assert!(before <= checked && checked <= after, "{checked}");
    // The answer is the list item, as it is stored now.
    assert_eq!(
        s.find(&admin, "/api/admin/credentials", "id", &credential)
            .await,
        valid
    );
    // The simulated account is the credential's, every time.
    s.advance_clock(60).await;
    let again = validate(&s, &admin, &credential).await.ok(200).clone();
    assert_eq!(again["accountId"], json!(account));
    assert_ne!(again["checkedAt"], valid["checkedAt"]);

    // Throttled or unreachable: 503, and the recorded status stays as it was.
    for fault in [FaultKind::Throttle, FaultKind::Timeout] {
        s.sim.set_credential_fault(Some(fault));
        let (status, body) = s
            .call_expecting_5xx(
                Method::POST,
                &admin,
                &format!("/api/admin/credentials/{credential}/validate"),
                None,
            )
            .await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["error"]["code"], "PROVIDER_UNAVAILABLE", "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("status is unchanged"),
            "{body}"
        );
        assert_eq!(
            s.find(&admin, "/api/admin/credentials", "id", &credential)
                .await,
            again
        );
    }

    // Rejected by the cloud: INVALID, with why, when, and no account.
    s.sim.set_credential_fault(Some(FaultKind::Unauthorized));
    s.advance_clock(60).await;
    let r = validate(&s, &admin, &credential).await;
    let invalid = r.ok(200).clone();
    assert_eq!(invalid["status"], "INVALID");
    assert_eq!(invalid["accountId"], Value::Null);
    assert!(
        invalid["statusMessage"]
            .as_str()
            .is_some_and(|m| m.contains("InvalidClientTokenId")),
        "{}",
        r.text
    );
    assert_ne!(invalid["checkedAt"], again["checkedAt"]);
    assert_eq!(
        s.find(&admin, "/api/admin/credentials", "id", &credential)
            .await,
        invalid
    );

    // Fixed: VALID again, the reason gone.
    s.sim.set_credential_fault(None);
    let fixed = validate(&s, &admin, &credential).await.ok(200).clone();
    assert_eq!(fixed["status"], "VALID");
    assert_eq!(fixed["statusMessage"], Value::Null);
    assert_eq!(fixed["accountId"], json!(account));

    // Every check is in the audit log, newest first, with its outcome.
    let log = s
        .get(
            Some(&admin),
            "/api/admin/audit-logs?type=admin.change&limit=200",
        )
        .await;
    let checks: Vec<(String, String)> = log.ok(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            let m = e["message"].as_str().unwrap();
            m.contains("credential 'Simulated cloud'") || m.contains("Credential 'Simulated cloud'")
        })
        .map(|e| {
            (
                e["outcome"].as_str().unwrap().to_owned(),
                e["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let outcomes: Vec<&str> = checks.iter().map(|(o, _)| o.as_str()).collect();
    assert_eq!(
        outcomes,
        ["SUCCESS", "FAILURE", "FAILURE", "FAILURE", "SUCCESS", "SUCCESS"],
        "{checks:?}"
    );
    assert!(checks[0].1.contains(&account), "{checks:?}");
    assert!(checks[1].1.contains("is invalid"), "{checks:?}");
    assert!(checks[2].1.starts_with("Could not check"), "{checks:?}");

    // Admins only; ids of other organizations, unknown and malformed ids look missing.
    validate(&s, &member, &credential)
        .await
        .err(403, "FORBIDDEN");
    s.create_org(
        "Other",
        entryguard::domain::tier::Tier::Team,
        "boss@other.example.com",
    )
    .await;
    let other_admin = s.login("boss@other.example.com").await;
    let r = s
        .post(
            &other_admin,
            "/api/admin/credentials",
            json!({"name": "theirs", "provider": "simulated", "region": REGION}),
        )
        .await;
    let theirs = id(r.ok(201));
    validate(&s, &admin, &theirs).await.err(404, "NOT_FOUND");
    validate(&s, &other_admin, &credential)
        .await
        .err(404, "NOT_FOUND");
    validate(&s, &admin, &uuid::Uuid::new_v4().to_string())
        .await
        .err(404, "NOT_FOUND");
    validate(&s, &admin, "nope").await.err(404, "NOT_FOUND");
    validate(&s, &other_admin, &theirs).await.ok(200);
    s.call(
        Method::GET,
        Some(&admin),
        &format!("/api/admin/credentials/{credential}/validate"),
        None,
    )
    .await
    .err(405, "METHOD_NOT_ALLOWED");
}
