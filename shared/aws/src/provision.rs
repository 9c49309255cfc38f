//! Creates the table (with its indexes, TTL and point-in-time recovery), the queues (with the
//! dead-letter queue behind a redrive policy) and the KMS key that seals credential secrets
//! when they are missing. The SAM template
//! declares the same resources for deployed stacks; `schema` holds what both must agree on.

use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, CreateGlobalSecondaryIndexAction, GlobalSecondaryIndex,
    GlobalSecondaryIndexUpdate, KeySchemaElement, KeyType, PointInTimeRecoverySpecification,
    Projection, ProjectionType, ScalarAttributeType, SseSpecification, TableStatus,
    TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use thiserror::Error;

use crate::schema::{
    ResourceNames, DLQ_RETENTION_SECS, DUE_INDEX, DUE_PK, DUE_SK, GSI1, GSI1_PK, GSI1_SK,
    MAX_RECEIVE_COUNT, PK, QUEUE_RETENTION_SECS, QUEUE_VISIBILITY_TIMEOUT_SECS, SK, TTL_ATTRIBUTE,
    UNHELD_INDEX, UNHELD_PK, UNHELD_SK,
};
use crate::sdk_error::{facts, ErrorFacts};

/// How long a new table may take to become active.
const TABLE_READY_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, Error)]
pub enum ProvisionError {
    #[error("could not {action}: {}", .facts.describe())]
    Aws {
        action: &'static str,
        facts: ErrorFacts,
    },
    #[error("table {0} did not become active within {TABLE_READY_TIMEOUT:?}")]
    TableNotReady(String),
    #[error("{0}")]
    Unexpected(String),
}

fn aws<E>(
    action: &'static str,
) -> impl FnOnce(aws_sdk_dynamodb::error::SdkError<E>) -> ProvisionError
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    move |e| ProvisionError::Aws {
        action,
        facts: facts(&e),
    }
}

fn unexpected(e: impl std::fmt::Display) -> ProvisionError {
    ProvisionError::Unexpected(e.to_string())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provisioned {
    pub table_created: bool,
    pub queue_url: String,
    pub dead_letter_queue_url: String,
    /// The ARN of the key behind `ResourceNames::kms_alias`.
    pub kms_key_id: String,
}

/// Provisions everything a deployment needs; safe to run again on a provisioned account.
pub async fn provision(
    sdk: &SdkConfig,
    names: &ResourceNames,
) -> Result<Provisioned, ProvisionError> {
    let table_created = ensure_table(&aws_sdk_dynamodb::Client::new(sdk), &names.table).await?;
    let (queue_url, dead_letter_queue_url) =
        ensure_queues(&aws_sdk_sqs::Client::new(sdk), names).await?;
    let kms_key_id = ensure_kms_key(&aws_sdk_kms::Client::new(sdk), &names.kms_alias).await?;
    tracing::info!(table = %names.table, table_created, %queue_url, %dead_letter_queue_url, %kms_key_id, "provisioned");
    Ok(Provisioned {
        table_created,
        queue_url,
        dead_letter_queue_url,
        kms_key_id,
    })
}

fn key(name: &str, kind: KeyType) -> Result<KeySchemaElement, ProvisionError> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .map_err(unexpected)
}

fn string_attribute(name: &str) -> Result<AttributeDefinition, ProvisionError> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(unexpected)
}

fn index(
    name: &str,
    pk: &str,
    sk: &str,
    projection: ProjectionType,
) -> Result<GlobalSecondaryIndex, ProvisionError> {
    GlobalSecondaryIndex::builder()
        .index_name(name)
        .key_schema(key(pk, KeyType::Hash)?)
        .key_schema(key(sk, KeyType::Range)?)
        .projection(Projection::builder().projection_type(projection).build())
        .build()
        .map_err(unexpected)
}

/// Creates the table if it does not exist and makes sure TTL and point-in-time recovery are
/// on. Returns whether the table was created.
pub async fn ensure_table(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<bool, ProvisionError> {
    let created = match client.describe_table().table_name(table).send().await {
        Ok(out) => {
            let has_unheld = out
                .table()
                .map(|t| t.global_secondary_indexes())
                .unwrap_or_default()
                .iter()
                .any(|i| i.index_name() == Some(UNHELD_INDEX));
            if !has_unheld {
                // A table made before the unheld index: add it (the rules already stored are
                // covered by reconciliation's full pass meanwhile).
                client
                    .update_table()
                    .table_name(table)
                    .attribute_definitions(string_attribute(UNHELD_PK)?)
                    .attribute_definitions(string_attribute(UNHELD_SK)?)
                    .global_secondary_index_updates(
                        GlobalSecondaryIndexUpdate::builder()
                            .create(
                                CreateGlobalSecondaryIndexAction::builder()
                                    .index_name(UNHELD_INDEX)
                                    .key_schema(key(UNHELD_PK, KeyType::Hash)?)
                                    .key_schema(key(UNHELD_SK, KeyType::Range)?)
                                    .projection(
                                        Projection::builder()
                                            .projection_type(ProjectionType::All)
                                            .build(),
                                    )
                                    .build()
                                    .map_err(unexpected)?,
                            )
                            .build(),
                    )
                    .send()
                    .await
                    .map_err(aws("add the unheld-rules index"))?;
            }
            false
        }
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            let mut create = client
                .create_table()
                .table_name(table)
                .billing_mode(BillingMode::PayPerRequest)
                .key_schema(key(PK, KeyType::Hash)?)
                .key_schema(key(SK, KeyType::Range)?)
                .global_secondary_indexes(index(GSI1, GSI1_PK, GSI1_SK, ProjectionType::All)?)
                .global_secondary_indexes(index(
                    DUE_INDEX,
                    DUE_PK,
                    DUE_SK,
                    ProjectionType::KeysOnly,
                )?)
                .global_secondary_indexes(index(
                    UNHELD_INDEX,
                    UNHELD_PK,
                    UNHELD_SK,
                    ProjectionType::All,
                )?)
                .sse_specification(SseSpecification::builder().enabled(true).build());
            for name in [
                PK, SK, GSI1_PK, GSI1_SK, DUE_PK, DUE_SK, UNHELD_PK, UNHELD_SK,
            ] {
                create = create.attribute_definitions(string_attribute(name)?);
            }
            create.send().await.map_err(aws("create the table"))?;
            true
        }
        Err(e) => return Err(aws("describe the table")(e)),
    };
    wait_until_active(client, table).await?;

    let ttl = client
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await
        .map_err(aws("read the table's TTL setting"))?;
    let ttl_on = ttl
        .time_to_live_description()
        .and_then(|d| d.attribute_name())
        == Some(TTL_ATTRIBUTE);
    if !ttl_on {
        client
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(TTL_ATTRIBUTE)
                    .enabled(true)
                    .build()
                    .map_err(unexpected)?,
            )
            .send()
            .await
            .map_err(aws("enable TTL"))?;
    }
    client
        .update_continuous_backups()
        .table_name(table)
        .point_in_time_recovery_specification(
            PointInTimeRecoverySpecification::builder()
                .point_in_time_recovery_enabled(true)
                .build()
                .map_err(unexpected)?,
        )
        .send()
        .await
        .map_err(aws("enable point-in-time recovery"))?;
    Ok(created)
}

async fn wait_until_active(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<(), ProvisionError> {
    let deadline = tokio::time::Instant::now() + TABLE_READY_TIMEOUT;
    loop {
        let out = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(aws("describe the table"))?;
        let table_active = out.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active);
        let indexes_active = out
            .table()
            .map(|t| t.global_secondary_indexes())
            .unwrap_or_default()
            .iter()
            .all(|i| {
                i.index_status()
                    .is_none_or(|s| *s == aws_sdk_dynamodb::types::IndexStatus::Active)
            });
        if table_active && indexes_active {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ProvisionError::TableNotReady(table.to_owned()));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The main queue's redrive policy, as SQS wants it: JSON in a string attribute.
pub fn redrive_policy(dead_letter_queue_arn: &str) -> String {
    serde_json::json!({
        "deadLetterTargetArn": dead_letter_queue_arn,
        "maxReceiveCount": MAX_RECEIVE_COUNT,
    })
    .to_string()
}

/// The URL of an existing queue, for hosts that connect without provisioning.
pub async fn queue_url(client: &aws_sdk_sqs::Client, name: &str) -> Result<String, ProvisionError> {
    client
        .get_queue_url()
        .queue_name(name)
        .send()
        .await
        .map_err(aws("look up the queue"))?
        .queue_url
        .ok_or_else(|| unexpected(format!("GetQueueUrl returned no URL for {name}")))
}

async fn ensure_queue(
    client: &aws_sdk_sqs::Client,
    name: &str,
    attributes: &[(QueueAttributeName, String)],
) -> Result<String, ProvisionError> {
    let mut create = client.create_queue().queue_name(name);
    for (k, v) in attributes {
        create = create.attributes(k.clone(), v.clone());
    }
    match create.send().await {
        Ok(out) => out
            .queue_url
            .ok_or_else(|| unexpected(format!("CreateQueue returned no URL for {name}"))),
        // The queue exists with other settings: bring them in line.
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_queue_name_exists()) =>
        {
            let url = queue_url(client, name).await?;
            let mut set = client.set_queue_attributes().queue_url(&url);
            for (k, v) in attributes {
                set = set.attributes(k.clone(), v.clone());
            }
            set.send()
                .await
                .map_err(aws("update the queue's settings"))?;
            Ok(url)
        }
        Err(e) => Err(aws("create the queue")(e)),
    }
}

/// Creates the dead-letter queue, then the task queue that redrives into it. Returns their
/// URLs (task queue first).
pub async fn ensure_queues(
    client: &aws_sdk_sqs::Client,
    names: &ResourceNames,
) -> Result<(String, String), ProvisionError> {
    let dlq_url = ensure_queue(
        client,
        &names.dead_letter_queue,
        &[
            (
                QueueAttributeName::MessageRetentionPeriod,
                DLQ_RETENTION_SECS.to_string(),
            ),
            (QueueAttributeName::SqsManagedSseEnabled, "true".into()),
        ],
    )
    .await?;
    let dlq_arn = client
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(aws("read the dead-letter queue's ARN"))?
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .ok_or_else(|| unexpected("the dead-letter queue has no ARN"))?;
    let url = ensure_queue(
        client,
        &names.queue,
        &[
            (
                QueueAttributeName::VisibilityTimeout,
                QUEUE_VISIBILITY_TIMEOUT_SECS.to_string(),
            ),
            (
                QueueAttributeName::MessageRetentionPeriod,
                QUEUE_RETENTION_SECS.to_string(),
            ),
            (QueueAttributeName::RedrivePolicy, redrive_policy(&dlq_arn)),
            (QueueAttributeName::SqsManagedSseEnabled, "true".into()),
        ],
    )
    .await?;
    Ok((url, dlq_url))
}

/// Returns the ARN of the key named by `alias`, creating a symmetric key (with yearly rotation)
/// and the alias if there is none. A key is never replaced: secrets sealed under it would
/// become unreadable.
pub async fn ensure_kms_key(
    client: &aws_sdk_kms::Client,
    alias: &str,
) -> Result<String, ProvisionError> {
    match client.describe_key().key_id(alias).send().await {
        Ok(out) => {
            return out
                .key_metadata
                .map(|m| m.arn.unwrap_or(m.key_id))
                .ok_or_else(|| unexpected(format!("DescribeKey returned nothing for {alias}")))
        }
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_not_found_exception()) => {}
        Err(e) => return Err(aws("look up the secrets key")(e)),
    }
    let created = client
        .create_key()
        .description(format!(
            "EntryGuard: seals credential secrets ({alias}). Deleting it makes them unreadable."
        ))
        .key_usage(aws_sdk_kms::types::KeyUsageType::EncryptDecrypt)
        .key_spec(aws_sdk_kms::types::KeySpec::SymmetricDefault)
        .send()
        .await
        .map_err(aws("create the secrets key"))?
        .key_metadata
        .ok_or_else(|| unexpected("CreateKey returned no key"))?;
    client
        .enable_key_rotation()
        .key_id(&created.key_id)
        .send()
        .await
        .map_err(aws("enable rotation of the secrets key"))?;
    match client
        .create_alias()
        .alias_name(alias)
        .target_key_id(&created.key_id)
        .send()
        .await
    {
        Ok(_) => Ok(created.arn.unwrap_or(created.key_id)),
        // Another process created the alias first: use its key, and retire ours.
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_already_exists_exception()) =>
        {
            if let Err(error) = client
                .schedule_key_deletion()
                .key_id(&created.key_id)
                .pending_window_in_days(7)
                .send()
                .await
            {
                tracing::warn!(key = %created.key_id, error = %facts(&error).describe(), "could not retire an unused key");
            }
            let out = client
                .describe_key()
                .key_id(alias)
                .send()
                .await
                .map_err(aws("look up the secrets key"))?;
            out.key_metadata
                .map(|m| m.arn.unwrap_or(m.key_id))
                .ok_or_else(|| unexpected(format!("DescribeKey returned nothing for {alias}")))
        }
        Err(e) => Err(aws("create the secrets key's alias")(e)),
    }
}
