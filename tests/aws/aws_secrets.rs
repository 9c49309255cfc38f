//! Credential secrets on the AWS backend, against moto: KMS envelope encryption, the key that
//! `--provision` creates, no plaintext in DynamoDB, the logs or any response, and credential
//! checks through STS.

use base64::Engine;
use reqwest::Method;
use serde_json::{json, Value};

use entryguard::domain::ids::{CredentialId, OrgId};
use entryguard::domain::model::{Credential, SealedSecret, Secret};
use entryguard::ports::{SealContext, SealError, SecretSealer};
use entryguard_aws::sdk::dynamodb::types::AttributeValue;
use entryguard_aws::KmsSealer;
use entryguard_local::{AwsConfig, Backend};
use entryguard_tests::logs;
use entryguard_tests::moto::{AwsFixture, REGION};
use entryguard_tests::server::{Resp, TestServer};

const SECRET: &str = "Hk2/plaintext+KMS+SECRET/a9F3EXAMPLEqR7wZpLm";
const ACCESS_KEY: &str = "AKIAKMSSEALEDTEST001";
/// The account moto answers GetCallerIdentity with.
const MOTO_ACCOUNT: &str = "123456789012";

fn context() -> SealContext {
    SealContext {
        org_id: OrgId::from_uuid(uuid::Uuid::new_v4()),
        credential_id: CredentialId::from_uuid(uuid::Uuid::new_v4()),
        purpose: Default::default(),
    }
}

fn assert_no_secret(what: &str, text: &str) {
    for needle in [SECRET, &SECRET[..12], &SECRET[SECRET.len() - 12..]] {
        assert!(
            !text.contains(needle),
            "{what} contains the secret ({needle})"
        );
    }
}

#[tokio::test]
async fn kms_envelope_sealing_round_trips_and_binds_the_record() {
    let fx = AwsFixture::start("eg-kms").await;
    let sealer = &fx.backend.sealer;
    let kms = entryguard_aws::sdk::kms::Client::new(&fx.sdk);

    // Provisioning made the key behind the alias, with rotation on, and finds it again.
    let described = kms
        .describe_key()
        .key_id(&fx.names.kms_alias)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    assert_eq!(Some(sealer.key_id()), described.arn.as_deref());
    let rotation = kms
        .get_key_rotation_status()
        .key_id(&described.key_id)
        .send()
        .await
        .unwrap();
    assert!(rotation.key_rotation_enabled);
    let again = entryguard_aws::provision(&fx.sdk, &fx.names).await.unwrap();
    assert_eq!(again.kms_key_id, sealer.key_id(), "the key is reused");

    let ctx = context();
    let sealed = sealer
        .seal(&Secret::new(SECRET.into()), &ctx)
        .await
        .unwrap();
    assert_eq!(sealed.key_id, sealer.key_id());
    let edk = sealed
        .encrypted_data_key
        .clone()
        .expect("an encrypted data key");
    assert!(!edk.is_empty());
    assert_no_secret("the sealed form", &serde_json::to_string(&sealed).unwrap());
    assert_eq!(sealer.open(&sealed, &ctx).await.unwrap().expose(), SECRET);
    // Through the alias too, as `--backend aws` without `--provision` uses it.
    let by_alias = KmsSealer::new(&fx.sdk, fx.names.kms_alias.clone());
    assert_eq!(by_alias.open(&sealed, &ctx).await.unwrap().expose(), SECRET);
    let other = by_alias
        .seal(&Secret::new(SECRET.into()), &ctx)
        .await
        .unwrap();
    assert_ne!(other.encrypted_data_key, sealed.encrypted_data_key);
    assert_ne!(other.ciphertext, sealed.ciphertext);

    // Moved to another credential or organization: KMS refuses the encryption context.
    for moved in [
        SealContext {
            credential_id: CredentialId::from_uuid(uuid::Uuid::new_v4()),
            ..ctx
        },
        SealContext {
            org_id: OrgId::from_uuid(uuid::Uuid::new_v4()),
            ..ctx
        },
    ] {
        let err = sealer.open(&sealed, &moved).await.unwrap_err();
        assert!(matches!(err, SealError::CannotOpen(_)), "{err:?}");
    }
    // An altered ciphertext fails the local AEAD.
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut bytes = b64.decode(&sealed.ciphertext).unwrap();
    bytes[3] ^= 0x40;
    let tampered = SealedSecret {
        ciphertext: b64.encode(bytes),
        ..sealed.clone()
    };
    assert!(matches!(
        sealer.open(&tampered, &ctx).await,
        Err(SealError::CannotOpen(_))
    ));
    // Claimed for another key: refused, and not as something to retry.
    let second = entryguard_aws::provision::ensure_kms_key(&kms, "alias/eg-kms-another")
        .await
        .unwrap();
    assert_ne!(second, sealer.key_id());
    let err = sealer
        .open(
            &SealedSecret {
                key_id: second,
                ..sealed.clone()
            },
            &ctx,
        )
        .await
        .unwrap_err();
    assert!(!err.is_transient(), "{err:?}");
    // Sealed by the local key file: no data key to decrypt.
    let local = entryguard::embedded::LocalKeySealer::ephemeral()
        .seal(&Secret::new(SECRET.into()), &ctx)
        .await
        .unwrap();
    assert!(matches!(
        sealer.open(&local, &ctx).await,
        Err(SealError::CannotOpen(_))
    ));
}

/// A secret opened again soon is opened with the data key KMS decrypted the first time; another
/// secret, or the same one for another record, still asks KMS.
#[tokio::test]
async fn a_secret_opened_again_soon_costs_no_second_decrypt() {
    let fx = AwsFixture::start("eg-kms-cache").await;
    let sealer = &fx.backend.sealer;
    let ctx = context();
    let sealed = sealer
        .seal(&Secret::new(SECRET.into()), &ctx)
        .await
        .unwrap();
    let other = sealer
        .seal(&Secret::new(SECRET.into()), &context())
        .await
        .unwrap();
    fx.moto.start_recording().await;
    for _ in 0..3 {
        assert_eq!(sealer.open(&sealed, &ctx).await.unwrap().expose(), SECRET);
    }
    let moved = SealContext {
        credential_id: CredentialId::from_uuid(uuid::Uuid::new_v4()),
        ..ctx
    };
    assert!(matches!(
        sealer.open(&sealed, &moved).await,
        Err(SealError::CannotOpen(_))
    ));
    assert!(
        sealer.open(&other, &ctx).await.is_err(),
        "another record's context"
    );
    let decrypts = fx
        .moto
        .recording()
        .iter()
        .filter(|r| {
            r.headers
                .iter()
                .any(|(k, v)| k.eq_ignore_ascii_case("x-amz-target") && v.ends_with(".Decrypt"))
        })
        .count();
    // One for the three opens, one each for the two that KMS refused.
    assert_eq!(decrypts, 3);
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

/// The runner on `--backend aws --provision`: a secret created through the API is sealed with
/// KMS, absent in plaintext from every DynamoDB item, every response and every log line, and
/// the credential checks out through STS.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_secret_created_through_the_api_is_not_in_dynamodb_the_logs_or_a_response() {
    let logs = logs::capture();
    let fx = AwsFixture::start("eg-secrets").await;
    let s = TestServer::start_on(Backend::Aws(AwsConfig {
        sdk: fx.moto.options(),
        names: fx.names.clone(),
        provision: true,
        bootstrap_admin: Some("boss@corp.example".parse().unwrap()),
        seed_demo: false,
    }))
    .await;
    let admin = s.login("boss@corp.example").await;
    let mut responses = Vec::new();

    let r = s
        .post(
            &admin,
            "/api/admin/credentials",
            json!({"name": "prod keys", "provider": "aws", "region": REGION,
                   "accessKeyId": ACCESS_KEY, "secretAccessKey": SECRET}),
        )
        .await;
    let keyed = r.ok(201).clone();
    responses.push(r.text);
    let keyed_id = keyed["id"].as_str().unwrap().to_owned();

    let r = validate(&s, &admin, &keyed_id).await;
    let checked = r.ok(200).clone();
    responses.push(r.text);
    assert_eq!(checked["status"], "VALID", "{checked}");
    assert_eq!(checked["accountId"], MOTO_ACCOUNT);
    assert!(checked["checkedAt"].is_string());
    assert_eq!(checked["statusMessage"], Value::Null);

    // The recommended kind: a role, assumed with the organization's external id.
    let r = s
        .post(
            &admin,
            "/api/admin/credentials",
            json!({"name": "prod role", "provider": "aws", "region": REGION,
                   "roleArn": format!("arn:aws:iam::{MOTO_ACCOUNT}:role/EntryGuard")}),
        )
        .await;
    let role = r.ok(201).clone();
    assert_eq!(role["hasSecret"], false);
    let r = validate(&s, &admin, role["id"].as_str().unwrap()).await;
    assert_eq!(r.ok(200)["status"], "VALID", "{}", r.text);
    assert_eq!(r.json["accountId"], MOTO_ACCOUNT);
    responses.push(r.text);

    for path in ["/api/admin/credentials", "/api/admin/audit-logs?limit=200"] {
        let r = s.get(Some(&admin), path).await;
        r.ok(200);
        responses.push(r.text);
    }
    for (i, text) in responses.iter().enumerate() {
        assert_no_secret(&format!("response {i}"), text);
    }

    // Every item of the table, every attribute.
    let ddb = entryguard_aws::sdk::dynamodb::Client::new(&fx.sdk);
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let out = ddb
            .scan()
            .table_name(&fx.names.table)
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        items.extend(out.items.unwrap_or_default());
        start = out.last_evaluated_key;
        if start.is_none() {
            break;
        }
    }
    let dump = format!("{items:?}");
    assert!(
        dump.contains(ACCESS_KEY) && dump.contains("encryptedDataKey"),
        "the scan sees the credential's record, sealed: {dump}"
    );
    assert_no_secret("the DynamoDB table", &dump);
    let credential_item = items
        .iter()
        .find(|i| matches!(i.get("sk"), Some(AttributeValue::S(sk)) if sk.ends_with(&keyed_id)))
        .expect("the credential's item");
    assert!(format!("{credential_item:?}").contains(fx.backend.sealer.key_id()));

    // Copied onto another credential, the sealed secret does not open: that one is INVALID.
    let org: OrgId = s.get(Some(&admin), "/api/admin/organization").await.ok(200)["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let original: Credential = s
        .app
        .get_doc(org, *keyed_id.parse::<CredentialId>().unwrap().as_uuid())
        .await
        .unwrap()
        .unwrap();
    let r = s
        .post(
            &admin,
            "/api/admin/credentials",
            json!({"name": "copy", "provider": "aws", "region": REGION,
                   "accessKeyId": ACCESS_KEY, "secretAccessKey": "another-secret-entirely"}),
        )
        .await;
    let copy_id = r.ok(201)["id"].as_str().unwrap().to_owned();
    let mut copy: Credential = s
        .app
        .get_doc(org, *copy_id.parse::<CredentialId>().unwrap().as_uuid())
        .await
        .unwrap()
        .unwrap();
    // The same access key id, the original's sealed secret.
    copy.access = original.access.clone();
    s.app.put_doc(&copy).await.unwrap();
    let r = validate(&s, &admin, &copy_id).await;
    let moved = r.ok(200);
    assert_eq!(moved["status"], "INVALID", "{}", r.text);
    assert!(
        moved["statusMessage"]
            .as_str()
            .is_some_and(|m| m.contains("cannot be decrypted")),
        "{}",
        r.text
    );
    // The original is untouched and still checks out.
    let r = validate(&s, &admin, &keyed_id).await;
    assert_eq!(r.ok(200)["status"], "VALID", "{}", r.text);

    let logged = logs.text();
    assert!(logged.contains("credential checked"), "the capture works");
    assert_no_secret("the logs", &logged);
}
