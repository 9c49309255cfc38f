//! The one place the table's and the queues' shapes are defined. Provisioning builds them from
//! these constants, the adapters read and write through them, and a test checks that
//! `infra/template.yaml` declares the same names.

/// The table's partition and sort keys.
pub const PK: &str = "pk";
pub const SK: &str = "sk";
/// Every item says what it is, for people reading the table in the console.
pub const ITEM_TYPE: &str = "type";

/// The general-purpose index: organizations, an organization's users, a user's sessions, a
/// credential by id, every rule record.
pub const GSI1: &str = "gsi1";
pub const GSI1_PK: &str = "gsi1pk";
pub const GSI1_SK: &str = "gsi1sk";

/// The sweeper's index, keyed by next-check time. Sparse: a session that has ended carries no
/// `duePk`, so it drops out of the index.
pub const DUE_INDEX: &str = "due";
pub const DUE_PK: &str = "duePk";
pub const DUE_SK: &str = "dueSk";
/// The due index's partition before it was sharded; still read, so sessions written before
/// the change are not missed.
pub const DUE_PARTITION: &str = "DUE";
/// The due index is spread over this many partitions (`DUE#0` … `DUE#7`, by session id): one
/// partition takes about 1,000 writes a second, and a storm of starts or an expiry wave writes
/// every session's index entry. The sweeper reads them all in parallel.
pub const DUE_SHARDS: u32 = 8;

/// The index of rule records that have no holder. Sparse: `unheldPk` is set only while a rule
/// has no holder, so the sweeper's orphan pass reads the few rules it may act on, not every
/// rule. Partitioned like the rule list (`UNHELD#0` … `UNHELD#7`, by rule).
pub const UNHELD_INDEX: &str = "unheld";
pub const UNHELD_PK: &str = "unheldPk";
pub const UNHELD_SK: &str = "unheldSk";
/// Rule records are spread over this many partitions of the general index (`RULES#n`) and of
/// the unheld index, so adding holders in a storm does not load one partition.
pub const RULE_SHARDS: u32 = 8;

/// Epoch seconds after which DynamoDB may delete the item (audit events, ended sessions, tokens).
pub const TTL_ATTRIBUTE: &str = "ttl";

/// How long ended sessions stay listed before DynamoDB's TTL removes them.
pub const SESSION_RETENTION_DAYS: i64 = 90;
/// How long audit events are kept.
pub const AUDIT_RETENTION_DAYS: i64 = 365;
/// Tokens are deleted a day after they expire; they are rejected from their expiry on anyway.
pub const TOKEN_GRACE_DAYS: i64 = 1;

/// How long a received task stays invisible to other consumers. AWS recommends six times the
/// consuming function's timeout (30 s) for Lambda event sources.
pub const QUEUE_VISIBILITY_TIMEOUT_SECS: i32 = 180;
/// How long an unprocessed task is kept.
pub const QUEUE_RETENTION_SECS: i32 = 4 * 24 * 3600;
/// Receives before a task moves to the dead-letter queue (the embedded queue uses the same).
pub const MAX_RECEIVE_COUNT: u32 = entryguard::ports::queue::MAX_RECEIVE_COUNT;
/// Dead letters are kept for the maximum SQS allows, so an operator has time to look at them.
pub const DLQ_RETENTION_SECS: i32 = 14 * 24 * 3600;

/// The description EntryGuard puts on every rule it creates, in EC2 as in the simulated cloud.
pub use entryguard::ports::firewall::RULE_DESCRIPTION;
/// The tag on every security-group rule EntryGuard creates; EntryGuard revokes only rules that
/// carry it.
pub const MANAGED_TAG_KEY: &str = "entryguard:managed";
pub const MANAGED_TAG_VALUE: &str = "true";

/// The names of one deployment's table, queues and secrets key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceNames {
    pub table: String,
    pub queue: String,
    pub dead_letter_queue: String,
    /// The alias of the KMS key that seals credential secrets.
    pub kms_alias: String,
}

impl ResourceNames {
    /// The names for a deployment prefix, e.g. `entryguard` → table `entryguard`, queues
    /// `entryguard-tasks` and `entryguard-tasks-dlq`, key alias `alias/entryguard-secrets`
    /// (the SAM stack's alias is `alias/<stack name>-secrets`).
    pub fn with_prefix(prefix: &str) -> Self {
        Self {
            table: prefix.to_owned(),
            queue: format!("{prefix}-tasks"),
            dead_letter_queue: format!("{prefix}-tasks-dlq"),
            kms_alias: format!("alias/{prefix}-secrets"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SAM template must declare the same table and queue shape as provisioning creates.
    #[test]
    fn template_declares_the_same_schema() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../infra/template.yaml");
        let template = std::fs::read_to_string(path).expect("infra/template.yaml is readable");
        let has = |needle: &str| {
            assert!(
                template.contains(needle),
                "infra/template.yaml does not contain `{needle}`"
            )
        };
        for attribute in [
            PK, SK, GSI1_PK, GSI1_SK, DUE_PK, DUE_SK, UNHELD_PK, UNHELD_SK,
        ] {
            has(&format!("AttributeName: {attribute}"));
        }
        for index in [GSI1, DUE_INDEX, UNHELD_INDEX] {
            has(&format!("IndexName: {index}"));
        }
        has(&format!("AttributeName: {TTL_ATTRIBUTE}"));
        has(&format!(
            "VisibilityTimeout: {QUEUE_VISIBILITY_TIMEOUT_SECS}"
        ));
        has(&format!("MessageRetentionPeriod: {QUEUE_RETENTION_SECS}"));
        has(&format!("MessageRetentionPeriod: {DLQ_RETENTION_SECS}"));
        has(&format!("maxReceiveCount: {MAX_RECEIVE_COUNT}"));
        // The stack names its secrets key the way provisioning does, and hands it to the
        // functions in the variable `connect_from_env` reads.
        has(&format!(
            "AliasName: !Sub \"{}\"",
            ResourceNames::with_prefix("${AWS::StackName}").kms_alias
        ));
        has("KMS_KEY_ID: !GetAtt SecretsKey.Arn");
        // The due index is keys-only: the sweeper needs ids, not whole sessions.
        let due = template
            .split("IndexName: ")
            .find(|s| s.starts_with(DUE_INDEX))
            .expect("the due index is declared");
        let projection = due
            .split("ProjectionType: ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next());
        assert_eq!(projection, Some("KEYS_ONLY"));
        // The unheld index carries whole records: the orphan pass reads nothing else.
        let unheld = template
            .split("IndexName: ")
            .find(|s| s.starts_with(UNHELD_INDEX))
            .expect("the unheld index is declared");
        let projection = unheld
            .split("ProjectionType: ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next());
        assert_eq!(projection, Some("ALL"));
    }

    #[test]
    fn names_follow_the_prefix() {
        let n = ResourceNames::with_prefix("eg-test");
        assert_eq!(n.table, "eg-test");
        assert_eq!(n.queue, "eg-test-tasks");
        assert_eq!(n.dead_letter_queue, "eg-test-tasks-dlq");
        assert_eq!(n.kms_alias, "alias/eg-test-secrets");
    }
}
