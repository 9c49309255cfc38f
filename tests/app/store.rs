//! The store port: both adapters held to one contract (the embedded store, and the DynamoDB
//! store on moto, provisioned by the same code as `--provision`), then what is particular to
//! DynamoDB.

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use uuid::Uuid;

use entryguard::domain::audit::{AuditEvent, AuditType, Outcome};
use entryguard::domain::credential::CredentialAccess;
use entryguard::domain::ids::{AuditId, CredentialId, OrgId, SessionId, UserId};
use entryguard::domain::model::{Credential, CredentialStatus, Provider, SealedSecret};
use entryguard::domain::session::Session;
use entryguard::domain::tier::Hours;
use entryguard::embedded::{EmbeddedStore, Kv};
use entryguard::ports::store::DocKind;
use entryguard::ports::Store;
use entryguard_aws::schema::{self, ResourceNames};
use entryguard_aws::sdk::dynamodb::types::{AttributeValue, ProjectionType};
use entryguard_aws::sdk::sqs::types::QueueAttributeName;
use entryguard_aws::AwsBackend;
use entryguard_tests::contract::run_store_contract;
use entryguard_tests::moto::Moto;

#[tokio::test]
async fn embedded_store_keeps_the_store_contract() {
    run_store_contract(Arc::new(EmbeddedStore::new(Kv::in_memory()))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_store_keeps_the_store_contract() {
    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    let names = ResourceNames::with_prefix("eg-contract");
    let provisioned = entryguard_aws::provision(&sdk, &names).await.unwrap();
    assert!(provisioned.table_created);
    let backend = AwsBackend::new(
        &sdk,
        &names.table,
        &provisioned.queue_url,
        &provisioned.kms_key_id,
    );
    run_store_contract(backend.store.clone()).await;
}

#[tokio::test]
async fn provisioning_is_idempotent_and_builds_the_documented_schema() {
    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    let names = ResourceNames::with_prefix("eg-provision");
    let first = entryguard_aws::provision(&sdk, &names).await.unwrap();
    let second = entryguard_aws::provision(&sdk, &names).await.unwrap();
    assert!(first.table_created && !second.table_created);
    assert_eq!(first.queue_url, second.queue_url);
    assert_eq!(first.dead_letter_queue_url, second.dead_letter_queue_url);

    let ddb = entryguard_aws::sdk::dynamodb::Client::new(&sdk);
    let table = ddb
        .describe_table()
        .table_name(&names.table)
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    let keys: Vec<_> = table
        .key_schema()
        .iter()
        .map(|k| k.attribute_name().to_owned())
        .collect();
    assert_eq!(keys, [schema::PK, schema::SK]);
    let mut indexes: Vec<(String, Vec<String>, Option<ProjectionType>)> = table
        .global_secondary_indexes()
        .iter()
        .map(|i| {
            (
                i.index_name().unwrap().to_owned(),
                i.key_schema()
                    .iter()
                    .map(|k| k.attribute_name().to_owned())
                    .collect(),
                i.projection().and_then(|p| p.projection_type().cloned()),
            )
        })
        .collect();
    indexes.sort();
    assert_eq!(
        indexes,
        vec![
            (
                schema::DUE_INDEX.to_owned(),
                vec![schema::DUE_PK.to_owned(), schema::DUE_SK.to_owned()],
                Some(ProjectionType::KeysOnly)
            ),
            (
                schema::GSI1.to_owned(),
                vec![schema::GSI1_PK.to_owned(), schema::GSI1_SK.to_owned()],
                Some(ProjectionType::All)
            ),
            (
                schema::UNHELD_INDEX.to_owned(),
                vec![schema::UNHELD_PK.to_owned(), schema::UNHELD_SK.to_owned()],
                Some(ProjectionType::All)
            ),
        ]
    );
    let ttl = ddb
        .describe_time_to_live()
        .table_name(&names.table)
        .send()
        .await
        .unwrap();
    let ttl = ttl.time_to_live_description().unwrap();
    assert_eq!(ttl.attribute_name(), Some(schema::TTL_ATTRIBUTE));
    assert_eq!(
        ttl.time_to_live_status().map(|s| s.as_str()),
        Some("ENABLED")
    );
    let backups = ddb
        .describe_continuous_backups()
        .table_name(&names.table)
        .send()
        .await
        .unwrap();
    let pitr = backups
        .continuous_backups_description()
        .and_then(|d| d.point_in_time_recovery_description())
        .and_then(|p| p.point_in_time_recovery_status())
        .map(|s| s.as_str().to_owned());
    assert_eq!(pitr.as_deref(), Some("ENABLED"));

    let sqs = entryguard_aws::sdk::sqs::Client::new(&sdk);
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&first.queue_url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    assert_eq!(
        attrs[&QueueAttributeName::VisibilityTimeout],
        schema::QUEUE_VISIBILITY_TIMEOUT_SECS.to_string()
    );
    let redrive: serde_json::Value =
        serde_json::from_str(&attrs[&QueueAttributeName::RedrivePolicy]).unwrap();
    assert!(redrive["deadLetterTargetArn"]
        .as_str()
        .unwrap()
        .ends_with(&names.dead_letter_queue));
    assert_eq!(
        redrive["maxReceiveCount"].to_string().trim_matches('"'),
        schema::MAX_RECEIVE_COUNT.to_string()
    );
}

fn t0() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap()
}

#[tokio::test]
async fn ttls_and_the_credential_index() {
    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    let names = ResourceNames::with_prefix("eg-items");
    let provisioned = entryguard_aws::provision(&sdk, &names).await.unwrap();
    let backend = AwsBackend::new(
        &sdk,
        &names.table,
        &provisioned.queue_url,
        &provisioned.kms_key_id,
    );
    let store = backend.store.clone();
    let ddb = entryguard_aws::sdk::dynamodb::Client::new(&sdk);
    let raw = |pk: String, sk: &'static str| {
        let ddb = ddb.clone();
        let table = names.table.clone();
        async move {
            ddb.get_item()
                .table_name(table)
                .key(schema::PK, AttributeValue::S(pk))
                .key(schema::SK, AttributeValue::S(sk.into()))
                .send()
                .await
                .unwrap()
                .item
                .unwrap()
        }
    };

    // A live session has no TTL; an ended one expires from the table after the retention.
    let user = UserId::from_uuid(Uuid::new_v4());
    let session = Session::new(
        SessionId::from_uuid(Uuid::new_v4()),
        OrgId::from_uuid(Uuid::new_v4()),
        user,
        "203.0.113.9".parse().unwrap(),
        t0(),
        Hours::new(1).unwrap(),
        vec![],
    );
    store.create_session(&session, Some(1)).await.unwrap();
    let pk = format!("SESSION#{}", session.id);
    let item = raw(pk.clone(), "SESSION").await;
    assert!(!item.contains_key(schema::TTL_ATTRIBUTE));
    assert!(item.contains_key(schema::DUE_PK));
    let mut ended = session.clone();
    ended.stop(t0() + Duration::minutes(5)).unwrap();
    ended.version = 1;
    store.update_session(&ended, 0, true).await.unwrap();
    let item = raw(pk, "SESSION").await;
    assert!(
        !item.contains_key(schema::DUE_PK),
        "ended sessions leave the due index"
    );
    let expected = (t0() + Duration::minutes(5) + Duration::days(schema::SESSION_RETENTION_DAYS))
        .timestamp()
        .to_string();
    assert_eq!(item[schema::TTL_ATTRIBUTE], AttributeValue::N(expected));

    let org = OrgId::from_uuid(Uuid::new_v4());
    let event = AuditEvent {
        id: AuditId::from_uuid(Uuid::new_v4()),
        org_id: org,
        time: t0(),
        kind: AuditType::Login,
        actor_id: Some(user),
        actor_email: Some("dev@example.com".into()),
        ip: None,
        session_id: None,
        resource_id: None,
        outcome: Outcome::Success,
        message: "signed in".into(),
    };
    store.append_audit(&event).await.unwrap();
    let out = ddb
        .query()
        .table_name(&names.table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(format!("AUDIT#{org}")))
        .send()
        .await
        .unwrap();
    let audit = &out.items()[0];
    let expected = (t0() + Duration::days(schema::AUDIT_RETENTION_DAYS)).timestamp();
    assert_eq!(
        audit[schema::TTL_ATTRIBUTE],
        AttributeValue::N(expected.to_string())
    );

    // Security groups name their credential, not its organization: the index finds it.
    let credential = Credential {
        id: CredentialId::from_uuid(Uuid::new_v4()),
        org_id: org,
        name: "prod".parse().unwrap(),
        region: "eu-west-1".parse().unwrap(),
        access: CredentialAccess::AccessKeys {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".parse().unwrap(),
            sealed_secret: SealedSecret {
                key_id: "arn:aws:kms:eu-west-1:123456789012:key/example".into(),
                encrypted_data_key: Some("ZWRr".into()),
                nonce: "bm9uY2U=".into(),
                ciphertext: "Y2lwaGVydGV4dA==".into(),
            },
        },
        status: CredentialStatus::Unverified,
        account_id: None,
        checked_at: None,
        status_message: None,
        created_at: t0(),
    };
    store
        .put_doc(
            DocKind::Credential,
            org,
            *credential.id.as_uuid(),
            serde_json::to_value(&credential).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        store.find_credential(credential.id).await.unwrap(),
        Some(credential.clone())
    );
    assert_eq!(
        store
            .find_credential(CredentialId::from_uuid(Uuid::new_v4()))
            .await
            .unwrap(),
        None
    );
    // A role credential written before a credential's access was one enum: four optional
    // fields, no `sealedSecret` or `statusMessage`. The index finds it and it reads.
    let old_id = CredentialId::from_uuid(Uuid::new_v4());
    let old = serde_json::json!({
        "id": old_id, "orgId": org, "name": "old role", "provider": "aws",
        "region": "eu-west-1", "accessKeyId": null,
        "roleArn": "arn:aws:iam::123456789012:role/EntryGuard", "externalId": "entryguard-old",
        "status": "VALID", "accountId": "123456789012", "checkedAt": t0(), "createdAt": t0(),
    });
    store
        .put_doc(DocKind::Credential, org, *old_id.as_uuid(), old)
        .await
        .unwrap();
    let found = store.find_credential(old_id).await.unwrap().unwrap();
    assert_eq!(
        found.role_arn().map(|a| a.as_str()),
        Some("arn:aws:iam::123456789012:role/EntryGuard")
    );
    assert_eq!(
        found.external_id().map(|e| e.as_str()),
        Some("entryguard-old")
    );
    assert_eq!(found.provider(), Provider::Aws);
    let _: Arc<dyn Store> = store;
}

/// A deployment from before the shards and the unheld index: re-provisioning adds the index,
/// and sessions and rules written to the old single partitions are still found.
#[tokio::test]
async fn a_table_from_before_the_shards_keeps_working() {
    use entryguard::domain::net::PortRange;
    use entryguard::domain::rule::{CloudState, GroupRef, IngressRule, RuleKey};
    use entryguard_aws::dynamo::items;
    use entryguard_aws::sdk::dynamodb::types::{
        DeleteGlobalSecondaryIndexAction, GlobalSecondaryIndexUpdate,
    };

    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    let names = ResourceNames::with_prefix("eg-legacy");
    let provisioned = entryguard_aws::provision(&sdk, &names).await.unwrap();
    let ddb = entryguard_aws::sdk::dynamodb::Client::new(&sdk);
    ddb.update_table()
        .table_name(&names.table)
        .global_secondary_index_updates(
            GlobalSecondaryIndexUpdate::builder()
                .delete(
                    DeleteGlobalSecondaryIndexAction::builder()
                        .index_name(schema::UNHELD_INDEX)
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let index_names = |t: &entryguard_aws::sdk::dynamodb::types::TableDescription| {
        t.global_secondary_indexes()
            .iter()
            .filter_map(|i| i.index_name().map(str::to_owned))
            .collect::<Vec<_>>()
    };
    let before = ddb
        .describe_table()
        .table_name(&names.table)
        .send()
        .await
        .unwrap();
    assert!(!index_names(before.table().unwrap()).contains(&schema::UNHELD_INDEX.to_owned()));
    entryguard_aws::provision(&sdk, &names).await.unwrap();
    let after = ddb
        .describe_table()
        .table_name(&names.table)
        .send()
        .await
        .unwrap();
    assert!(index_names(after.table().unwrap()).contains(&schema::UNHELD_INDEX.to_owned()));

    let backend = AwsBackend::new(
        &sdk,
        &names.table,
        &provisioned.queue_url,
        &provisioned.kms_key_id,
    );
    let t0 = Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap();
    let session = Session::new(
        SessionId::from_uuid(Uuid::new_v4()),
        OrgId::from_uuid(Uuid::new_v4()),
        UserId::from_uuid(Uuid::new_v4()),
        "203.0.113.9".parse().unwrap(),
        t0,
        Hours::new(1).unwrap(),
        Vec::new(),
    );
    let mut item = items::session_item(&session).unwrap();
    item.insert(
        schema::DUE_PK.to_owned(),
        AttributeValue::S(schema::DUE_PARTITION.to_owned()),
    );
    ddb.put_item()
        .table_name(&names.table)
        .set_item(Some(item))
        .send()
        .await
        .unwrap();
    let due = backend
        .store
        .due_sessions(t0 + Duration::hours(2), 10)
        .await
        .unwrap();
    assert_eq!(due, vec![session.id], "the old partition is still read");

    let key = RuleKey {
        region: "eu-west-1".parse().unwrap(),
        security_group_id: "sg-0123456789abcdef0".parse().unwrap(),
        rule: IngressRule {
            ports: PortRange::tcp(22),
            cidr: "203.0.113.9/32".parse().unwrap(),
        },
    };
    let group = GroupRef {
        credential_id: CredentialId::from_uuid(Uuid::new_v4()),
        provider: Provider::Aws,
        region: key.region.clone(),
        security_group_id: key.security_group_id.clone(),
    };
    let mut rule = items::key(items::keys::rule(&key), items::keys::RULE_SK);
    rule.insert(items::RULE_KEY.to_owned(), items::encode(&key).unwrap());
    rule.insert(items::GROUP.to_owned(), items::encode(&group).unwrap());
    rule.insert(
        items::CLOUD.to_owned(),
        items::encode(&CloudState::Present).unwrap(),
    );
    rule.insert(items::HOLDER_COUNT.to_owned(), items::n(0));
    rule.insert(
        schema::GSI1_PK.to_owned(),
        AttributeValue::S(items::keys::RULES.to_owned()),
    );
    rule.insert(
        schema::GSI1_SK.to_owned(),
        AttributeValue::S(key.storage_key()),
    );
    ddb.put_item()
        .table_name(&names.table)
        .set_item(Some(rule))
        .send()
        .await
        .unwrap();
    let listed = backend.store.list_rules().await.unwrap();
    assert_eq!(listed.len(), 1, "the old rule partition is still read");
    assert_eq!(listed[0].key, key);
    assert!(
        backend.store.unheld_rules().await.unwrap().is_empty(),
        "an old record is not in the unheld index: reconciliation's full pass covers it"
    );
}

/// Holders are items of their own: a rule with many holders keeps one small rule item, and a
/// record from before (holders in a set on the rule item, the count beside it) is read with
/// those holders and drains as they leave.
#[tokio::test]
async fn holders_are_items_and_a_holder_set_from_before_still_counts() {
    use entryguard::domain::net::PortRange;
    use entryguard::domain::rule::{CloudState, GroupRef, HolderId, IngressRule, RuleKey};
    use entryguard_aws::dynamo::items;

    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    let names = ResourceNames::with_prefix("eg-holders");
    let provisioned = entryguard_aws::provision(&sdk, &names).await.unwrap();
    let backend = AwsBackend::new(
        &sdk,
        &names.table,
        &provisioned.queue_url,
        &provisioned.kms_key_id,
    );
    let store = backend.store.clone();
    let ddb = entryguard_aws::sdk::dynamodb::Client::new(&sdk);
    let key = RuleKey {
        region: "eu-west-1".parse().unwrap(),
        security_group_id: "sg-0123456789abcdef0".parse().unwrap(),
        rule: IngressRule {
            ports: PortRange::tcp(22),
            cidr: "203.0.113.7/32".parse().unwrap(),
        },
    };
    let group = GroupRef {
        credential_id: CredentialId::from_uuid(Uuid::from_u128(1)),
        provider: Provider::Aws,
        region: key.region.clone(),
        security_group_id: key.security_group_id.clone(),
    };
    let holder = |n: u128| HolderId::new(SessionId::from_uuid(Uuid::from_u128(n)), 0);
    let rule_item = || async {
        ddb.get_item()
            .table_name(&names.table)
            .key(schema::PK, AttributeValue::S(items::keys::rule(&key)))
            .key(
                schema::SK,
                AttributeValue::S(items::keys::RULE_SK.to_owned()),
            )
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
            .unwrap()
    };

    for n in 10..40 {
        store
            .rule_add_holder(&key, &group, &holder(n))
            .await
            .unwrap();
    }
    let item = rule_item().await;
    assert!(!item.contains_key(items::HOLDERS), "{item:?}");
    assert_eq!(
        item.get(items::HOLDER_COUNT),
        Some(&AttributeValue::N("30".into()))
    );
    let size = items::item_size(&item);
    store
        .rule_add_holder(&key, &group, &holder(40))
        .await
        .unwrap();
    assert_eq!(
        items::item_size(&rule_item().await),
        size,
        "the rule item does not grow with its holders"
    );
    for n in 10..41 {
        store.rule_remove_holder(&key, &holder(n)).await.unwrap();
    }
    assert_eq!(store.get_rule(&key).await.unwrap(), None);

    // A record as the store wrote it before: holders in a set, the count in step with it.
    store
        .rule_add_holder(&key, &group, &holder(3))
        .await
        .unwrap();
    ddb.update_item()
        .table_name(&names.table)
        .key(schema::PK, AttributeValue::S(items::keys::rule(&key)))
        .key(
            schema::SK,
            AttributeValue::S(items::keys::RULE_SK.to_owned()),
        )
        .update_expression("ADD #holders :set, #count :two SET #cloud = :present")
        .expression_attribute_names("#holders", items::HOLDERS)
        .expression_attribute_names("#count", items::HOLDER_COUNT)
        .expression_attribute_names("#cloud", items::CLOUD)
        .expression_attribute_values(
            ":set",
            AttributeValue::Ss(vec![
                holder(1).as_str().to_owned(),
                holder(2).as_str().to_owned(),
            ]),
        )
        .expression_attribute_values(":two", AttributeValue::N("2".into()))
        .expression_attribute_values(":present", items::encode(&CloudState::Present).unwrap())
        .send()
        .await
        .unwrap();
    let read = store.get_rule(&key).await.unwrap().unwrap();
    assert_eq!((read.count(), read.cloud), (3, CloudState::Present));
    let mut all = vec![holder(1), holder(2), holder(3)];
    all.sort();
    assert_eq!(store.rule_holders(&key, None, 10).await.unwrap(), all);
    assert_eq!(
        store.rule_holders(&key, Some(&all[0]), 1).await.unwrap(),
        vec![all[1].clone()]
    );
    assert_eq!(
        store
            .rule_add_holder(&key, &group, &holder(1))
            .await
            .unwrap()
            .count(),
        3,
        "a holder in the set is already a holder"
    );
    for (n, left) in [(1, 2), (3, 1), (2, 0)] {
        let state = store
            .rule_remove_holder(&key, &holder(n))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(state.count(), left, "after removing holder {n}");
        let again = store
            .rule_remove_holder(&key, &holder(n))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(again.count(), left, "removing holder {n} twice");
    }
    assert!(store.rule_holders(&key, None, 10).await.unwrap().is_empty());
    let unheld: Vec<_> = store
        .unheld_rules()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.unwrap().key)
        .collect();
    assert_eq!(unheld, vec![key.clone()], "unheld, and still in the cloud");
}
