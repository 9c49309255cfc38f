//! Keys, attribute names and item encodings of the single-table design (see infra/README.md).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Duration, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;

use entryguard::domain::audit::AuditEvent;
use entryguard::domain::ids::{OrgId, SessionId, UserId};
use entryguard::domain::model::{Email, Organization, User};
use entryguard::domain::rule::{CloudState, GroupRef, HolderId, Lease, RuleKey, RuleState};
use entryguard::domain::session::Session;
use entryguard::domain::Timestamp;
use entryguard::keys::{audit_key, time_key};
use entryguard::ports::store::{DocKind, PersonalToken, TokenRecord, WorkItem};

use super::error::DynamoError;
use crate::schema::{
    AUDIT_RETENTION_DAYS, DUE_PK, DUE_SHARDS, DUE_SK, GSI1_PK, GSI1_SK, ITEM_TYPE, PK, RULE_SHARDS,
    SESSION_RETENTION_DAYS, SK, TOKEN_GRACE_DAYS, TTL_ATTRIBUTE,
};

pub type Item = HashMap<String, AttributeValue>;

/// DynamoDB refuses items over 400 KB. Sessions embed their entries, so a session with very
/// many resources could reach it; it is refused below the limit with room to spare for the
/// attributes a later update adds (errors, attempts), about 600 entries in practice.
pub const MAX_ITEM_BYTES: usize = 350 * 1024;

// Attribute names besides the keys.
pub const DATA: &str = "data";
pub const VERSION: &str = "version";
pub const USER_ID: &str = "userId";
pub const EMAIL: &str = "email";
pub const LIVE: &str = "live";
pub const DOC: &str = "doc";
pub const RULE_KEY: &str = "ruleKey";
pub const GROUP: &str = "group";
/// The holders of a record written before holders became items of their own (read, and
/// drained by removals; never written).
pub const HOLDERS: &str = "holders";
pub const HOLDER_COUNT: &str = "holderCount";
pub const CLOUD: &str = "cloud";
/// The cloud's id of the rule (`sgr-…`), when known.
pub const CLOUD_RULE_ID: &str = "cloudRuleId";
pub const LEASE_OWNER: &str = "leaseOwner";
pub const LEASE_UNTIL: &str = "leaseUntil";
pub const EVENT_TYPE: &str = "eventType";
pub const ACTOR_ID: &str = "actorId";
pub const TOKEN_HASH: &str = "tokenHash";
/// When a periodic job or notice last ran.
pub const LAST_RUN: &str = "lastRun";
/// A rate counter's count.
pub const EVENTS: &str = "events";

pub mod keys {
    use super::*;

    pub const ORG_SK: &str = "ORG";
    pub const USER_SK: &str = "USER";
    pub const LIVE_SK: &str = "LIVE";
    pub const EMAIL_SK: &str = "EMAIL";
    pub const TOKEN_SK: &str = "TOKEN";
    pub const SESSION_SK: &str = "SESSION";
    pub const RULE_SK: &str = "RULE";
    pub const RUN_SK: &str = "RUN";
    /// The GSI1 partition listing every organization.
    pub const ORGS: &str = "ORGS";
    /// The GSI1 partition that listed every rule record before the list was sharded (still
    /// read, for records written before).
    pub const RULES: &str = "RULES";
    pub const SESSION_PREFIX: &str = "SESSION#";

    pub fn org(id: OrgId) -> String {
        format!("ORG#{id}")
    }
    pub fn org_users(org: OrgId) -> String {
        format!("ORG#{org}#USERS")
    }
    pub fn user(id: UserId) -> String {
        format!("USER#{id}")
    }
    pub fn user_sessions(user: UserId) -> String {
        format!("USER#{user}#SESSIONS")
    }
    pub fn email(e: &Email) -> String {
        format!("EMAIL#{e}")
    }
    pub fn doc_prefix(kind: DocKind) -> String {
        format!("DOC#{}#", kind.as_str())
    }
    pub fn doc(kind: DocKind, id: uuid::Uuid) -> String {
        format!("{}{id}", doc_prefix(kind))
    }
    pub fn credential(id: uuid::Uuid) -> String {
        format!("CREDENTIAL#{id}")
    }
    pub fn token(hash: &str) -> String {
        format!("TOKEN#{hash}")
    }
    /// Personal tokens are listed from their owner's partition, oldest first.
    pub const PERSONAL_TOKEN_PREFIX: &str = "PTOKEN#";
    pub fn personal_token(t: &TokenRecord, p: &PersonalToken) -> String {
        format!("{PERSONAL_TOKEN_PREFIX}{}#{}", time_key(t.created_at), p.id)
    }
    pub fn session(id: SessionId) -> String {
        format!("{SESSION_PREFIX}{id}")
    }
    pub fn rule(key: &RuleKey) -> String {
        format!("RULE#{}", key.storage_key())
    }
    pub fn audit(org: OrgId) -> String {
        format!("AUDIT#{org}")
    }
    /// The sort keys of a rule's holder items, in the rule's partition.
    pub const HOLDER_PREFIX: &str = "HOLDER#";
    /// Just past every holder sort key ('$' follows '#').
    pub const HOLDER_END: &str = "HOLDER$";
    pub fn holder(h: &HolderId) -> String {
        format!("{HOLDER_PREFIX}{}", h.as_str())
    }
    pub fn run(job: &str) -> String {
        format!("RUN#{job}")
    }
    pub const RATE_SK: &str = "RATE";
    pub fn rate(counter: &str) -> String {
        format!("RATE#{counter}")
    }
    /// Newest-first listing of a user's sessions sorts on this.
    pub fn session_order(s: &Session) -> String {
        format!("{}#{}", time_key(s.created_at), s.id)
    }
    /// The due index sorts on this; the id keeps keys of simultaneous checks apart.
    pub fn due(at: Timestamp, id: SessionId) -> String {
        format!("{}#{id}", time_key(at))
    }
    /// The due-index partition of a session: its id spreads sessions evenly over the shards.
    pub fn due_shard(id: SessionId) -> String {
        due_partition((id.as_uuid().as_u128() % u128::from(DUE_SHARDS)) as u32)
    }
    pub fn due_partition(shard: u32) -> String {
        format!("DUE#{shard}")
    }
    /// Which of the rule partitions a rule belongs to: a fixed hash (FNV-1a) of its key, the
    /// same in every process and release.
    pub fn rule_shard(key: &RuleKey) -> u32 {
        let hash = key
            .storage_key()
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
            });
        // The high half: FNV's low bits depend only on the low bits of each byte.
        ((hash >> 32) % u64::from(RULE_SHARDS)) as u32
    }
    /// The GSI1 partition listing the rule records of one shard.
    pub fn rules(shard: u32) -> String {
        format!("RULES#{shard}")
    }
    /// The unheld index's partition for one shard.
    pub fn unheld(shard: u32) -> String {
        format!("UNHELD#{shard}")
    }
    pub const RULE_PREFIX: &str = "RULE#";
    /// A security group's partition: its record (lease) and its backlog of work items.
    pub fn group(g: &GroupRef) -> String {
        format!("GROUP#{}#{}", g.region, g.security_group_id)
    }
    pub const GROUP_SK: &str = "GROUP";
    pub const WORK_PREFIX: &str = "WORK#";
    /// Fixed-width entry numbers keep the backlog in (session, entry) order.
    pub fn work(item: &WorkItem) -> String {
        format!("{WORK_PREFIX}{}#{:010}", item.session_id, item.entry)
    }
    /// Also the audit list's cursor, as in the embedded store.
    pub fn audit_sk(e: &AuditEvent) -> String {
        audit_key(e)
    }
}

pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub fn key(pk: String, sk: &str) -> Item {
    HashMap::from([(PK.to_owned(), s(pk)), (SK.to_owned(), s(sk))])
}

fn base(pk: String, sk: &str, item_type: &str) -> Item {
    let mut item = key(pk, sk);
    item.insert(ITEM_TYPE.to_owned(), s(item_type));
    item
}

pub fn encode<T: Serialize>(v: &T) -> Result<AttributeValue, DynamoError> {
    serde_dynamo::to_attribute_value(v).map_err(|e| DynamoError::Corrupt(e.to_string()))
}

pub fn decode<T: DeserializeOwned>(item: &Item, attr: &str) -> Result<T, DynamoError> {
    let value = item
        .get(attr)
        .ok_or_else(|| DynamoError::Corrupt(format!("{} lacks '{attr}'", describe(item))))?;
    serde_dynamo::from_attribute_value(value.clone())
        .map_err(|e| DynamoError::Corrupt(format!("{} '{attr}': {e}", describe(item))))
}

pub fn string<'a>(item: &'a Item, attr: &str) -> Result<&'a str, DynamoError> {
    match item.get(attr) {
        Some(AttributeValue::S(v)) => Ok(v),
        _ => Err(DynamoError::Corrupt(format!(
            "{} has no string '{attr}'",
            describe(item)
        ))),
    }
}

pub fn number(item: &Item, attr: &str) -> Result<Option<i64>, DynamoError> {
    match item.get(attr) {
        None => Ok(None),
        Some(AttributeValue::N(v)) => v
            .parse()
            .map(Some)
            .map_err(|e| DynamoError::Corrupt(format!("{} '{attr}': {e}", describe(item)))),
        Some(_) => Err(DynamoError::Corrupt(format!(
            "{} '{attr}' is not a number",
            describe(item)
        ))),
    }
}

/// The item's keys, for error messages.
fn describe(item: &Item) -> String {
    let get = |k: &str| match item.get(k) {
        Some(AttributeValue::S(v)) => v.as_str(),
        _ => "?",
    };
    format!("item {}/{}", get(PK), get(SK))
}

pub fn ttl(at: Timestamp) -> AttributeValue {
    n(at.timestamp())
}

pub fn parse_time(raw: &str) -> Result<Timestamp, DynamoError> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| DynamoError::Corrupt(format!("time '{raw}': {e}")))
}

pub fn org_item(org: &Organization) -> Result<Item, DynamoError> {
    let mut item = base(keys::org(org.id), keys::ORG_SK, "ORG");
    item.insert(DATA.into(), encode(org)?);
    item.insert(VERSION.into(), n(org.version));
    item.insert(GSI1_PK.into(), s(keys::ORGS));
    item.insert(GSI1_SK.into(), s(keys::org(org.id)));
    Ok(item)
}

pub fn user_item(user: &User) -> Result<Item, DynamoError> {
    let mut item = base(keys::user(user.id), keys::USER_SK, "USER");
    item.insert(DATA.into(), encode(user)?);
    item.insert(EMAIL.into(), s(user.email.as_str()));
    item.insert(GSI1_PK.into(), s(keys::org_users(user.org_id)));
    item.insert(GSI1_SK.into(), s(keys::user(user.id)));
    Ok(item)
}

/// The item that makes an e-mail address unique: only one can exist per address.
pub fn email_item(email: &Email, user: UserId) -> Item {
    let mut item = base(keys::email(email), keys::EMAIL_SK, "EMAIL");
    item.insert(USER_ID.into(), s(user.to_string()));
    item
}

pub fn doc_item(
    kind: DocKind,
    org: OrgId,
    id: uuid::Uuid,
    doc: &serde_json::Value,
) -> Result<Item, DynamoError> {
    let mut item = base(keys::org(org), &keys::doc(kind, id), kind.as_str());
    // Kept as JSON text: the store promises the exact document back, and DynamoDB numbers
    // would not keep the difference between 1 and 1.0.
    let json = serde_json::to_string(doc).map_err(|e| DynamoError::Corrupt(e.to_string()))?;
    item.insert(DOC.into(), s(json));
    if kind == DocKind::Credential {
        // The firewall finds a credential by id alone (a group names no organization).
        item.insert(GSI1_PK.into(), s(keys::credential(id)));
        item.insert(GSI1_SK.into(), s(keys::org(org)));
    }
    Ok(item)
}

pub fn doc_of(item: &Item) -> Result<serde_json::Value, DynamoError> {
    serde_json::from_str(string(item, DOC)?).map_err(|e| DynamoError::Corrupt(e.to_string()))
}

pub fn token_item(t: &TokenRecord) -> Result<Item, DynamoError> {
    let mut item = base(keys::token(&t.token_hash), keys::TOKEN_SK, "TOKEN");
    item.insert(DATA.into(), encode(t)?);
    if let Some(expires_at) = t.expires_at {
        item.insert(
            TTL_ATTRIBUTE.into(),
            ttl(expires_at + Duration::days(TOKEN_GRACE_DAYS)),
        );
    }
    Ok(item)
}

/// The entry under the owner's partition that lists a personal token; it names the token's hash.
pub fn personal_token_item(t: &TokenRecord, p: &PersonalToken) -> Item {
    let mut item = base(
        keys::user(t.user_id),
        &keys::personal_token(t, p),
        "PERSONAL_TOKEN",
    );
    item.insert(TOKEN_HASH.into(), s(&t.token_hash));
    if let Some(expires_at) = t.expires_at {
        item.insert(
            TTL_ATTRIBUTE.into(),
            ttl(expires_at + Duration::days(TOKEN_GRACE_DAYS)),
        );
    }
    item
}

pub fn session_item(session: &Session) -> Result<Item, DynamoError> {
    let mut item = base(keys::session(session.id), keys::SESSION_SK, "SESSION");
    item.insert(DATA.into(), encode(session)?);
    item.insert(VERSION.into(), n(session.version));
    item.insert(USER_ID.into(), s(session.user_id.to_string()));
    item.insert(GSI1_PK.into(), s(keys::user_sessions(session.user_id)));
    item.insert(GSI1_SK.into(), s(keys::session_order(session)));
    match session.next_check_at() {
        Some(at) => {
            item.insert(DUE_PK.into(), s(keys::due_shard(session.id)));
            item.insert(DUE_SK.into(), s(keys::due(at, session.id)));
        }
        None => {
            if let Some(ended) = session.ended_at {
                item.insert(
                    TTL_ATTRIBUTE.into(),
                    ttl(ended + Duration::days(SESSION_RETENTION_DAYS)),
                );
            }
        }
    }
    let size = item_size(&item);
    if size > MAX_ITEM_BYTES {
        return Err(DynamoError::Corrupt(format!(
            "session {} with {} entries needs {size} bytes, more than the {MAX_ITEM_BYTES} a stored session may use; give the user fewer resources",
            session.id,
            session.entries.len()
        )));
    }
    Ok(item)
}

/// The due-index entry an index item stands for (its sort key is `<time>#<session>`).
pub fn due_entry_of(item: &Item) -> Result<entryguard::ports::store::DueEntry, DynamoError> {
    let raw = string(item, DUE_SK)?;
    let (time, _) = raw
        .rsplit_once('#')
        .ok_or_else(|| DynamoError::Corrupt(format!("'{raw}' is not a due key")))?;
    Ok(entryguard::ports::store::DueEntry {
        at: parse_time(time)?,
        session_id: session_id_of(item)?,
    })
}

pub fn session_id_of(item: &Item) -> Result<SessionId, DynamoError> {
    let pk = string(item, PK)?;
    pk.strip_prefix(keys::SESSION_PREFIX)
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| DynamoError::Corrupt(format!("'{pk}' is not a session key")))
}

pub fn audit_item(e: &AuditEvent) -> Result<Item, DynamoError> {
    let mut item = base(keys::audit(e.org_id), &keys::audit_sk(e), "AUDIT");
    item.insert(DATA.into(), encode(e)?);
    item.insert(EVENT_TYPE.into(), s(e.kind.as_str()));
    if let Some(actor) = e.actor_id {
        item.insert(ACTOR_ID.into(), s(actor.to_string()));
    }
    item.insert(
        TTL_ATTRIBUTE.into(),
        ttl(e.time + Duration::days(AUDIT_RETENTION_DAYS)),
    );
    Ok(item)
}

/// One entry's pending work, in its security group's partition.
pub fn work_item(group: &GroupRef, w: &WorkItem) -> Result<Item, DynamoError> {
    let mut item = base(keys::group(group), &keys::work(w), "WORK");
    item.insert(DATA.into(), encode(w)?);
    Ok(item)
}

fn holder_of(raw: &str) -> Result<HolderId, DynamoError> {
    serde_json::from_value(serde_json::Value::String(raw.to_owned()))
        .map_err(|e| DynamoError::Corrupt(e.to_string()))
}

/// A holder: an item of its own in the rule's partition, so no item grows with the number of
/// holders.
pub fn holder_item(key: &RuleKey, holder: &HolderId) -> Item {
    base(keys::rule(key), &keys::holder(holder), "HOLDER")
}

/// The holder a holder item's sort key names.
pub fn holder_of_item(item: &Item) -> Result<HolderId, DynamoError> {
    let sk = string(item, SK)?;
    let raw = sk
        .strip_prefix(keys::HOLDER_PREFIX)
        .ok_or_else(|| DynamoError::Corrupt(format!("'{sk}' is not a holder key")))?;
    holder_of(raw)
}

/// The holders a record from before keeps in its own set.
pub fn legacy_holders(item: &Item) -> Result<std::collections::BTreeSet<HolderId>, DynamoError> {
    match item.get(HOLDERS) {
        None => Ok(Default::default()),
        Some(AttributeValue::Ss(v)) => v.iter().map(|h| holder_of(h)).collect(),
        Some(_) => Err(DynamoError::Corrupt(format!(
            "{} '{HOLDERS}' is not a string set",
            describe(item)
        ))),
    }
}

pub fn rule_state(item: &Item) -> Result<RuleState, DynamoError> {
    let legacy = legacy_holders(item)?;
    // Records from before kept the count in step with their set; one without a count at all
    // counts its set.
    let holder_count = match number(item, HOLDER_COUNT)? {
        Some(count) => u64::try_from(count).unwrap_or(0),
        None => legacy.len() as u64,
    };
    let lease = match (item.get(LEASE_OWNER), item.get(LEASE_UNTIL)) {
        (None, None) => None,
        (Some(AttributeValue::S(owner)), Some(AttributeValue::S(until))) => Some(Lease {
            owner: owner.clone(),
            until: parse_time(until)?,
        }),
        _ => {
            return Err(DynamoError::Corrupt(format!(
                "{} has half a lease",
                describe(item)
            )))
        }
    };
    Ok(RuleState {
        key: decode(item, RULE_KEY)?,
        group: decode(item, GROUP)?,
        holder_count,
        cloud: decode::<CloudState>(item, CLOUD)?,
        cloud_rule_id: match item.get(CLOUD_RULE_ID) {
            None => None,
            Some(AttributeValue::S(raw)) => {
                Some(raw.parse().map_err(|e: String| {
                    DynamoError::Corrupt(format!("{}: {e}", describe(item)))
                })?)
            }
            Some(_) => {
                return Err(DynamoError::Corrupt(format!(
                    "{} '{CLOUD_RULE_ID}' is not a string",
                    describe(item)
                )))
            }
        },
        lease,
    })
}

/// An item's size as DynamoDB counts it (names plus values), close enough to stay under the
/// limit.
pub fn item_size(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + value_size(v)).sum()
}

fn value_size(v: &AttributeValue) -> usize {
    match v {
        AttributeValue::S(s) | AttributeValue::N(s) => s.len(),
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::Ss(v) | AttributeValue::Ns(v) => v.iter().map(String::len).sum(),
        AttributeValue::Bs(v) => v.iter().map(|b| b.as_ref().len()).sum(),
        AttributeValue::L(l) => 3 + l.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        AttributeValue::M(m) => {
            3 + m
                .iter()
                .map(|(k, v)| 1 + k.len() + value_size(v))
                .sum::<usize>()
        }
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use entryguard::domain::ids::CredentialId;
    use entryguard::domain::model::Provider;
    use entryguard::domain::net::PortRange;
    use entryguard::domain::rule::GroupRef;
    use entryguard::domain::session::EntryTarget;
    use entryguard::domain::tier::Hours;
    use uuid::Uuid;

    fn session(entries: usize) -> Session {
        let t0 = Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap();
        let targets = (0..entries)
            .map(|i| EntryTarget {
                resource_id: entryguard::domain::ids::ResourceId::from_uuid(Uuid::from_u128(
                    i as u128,
                )),
                resource_name: format!("resource number {i}").parse().unwrap(),
                group: GroupRef {
                    credential_id: CredentialId::from_uuid(Uuid::from_u128(7)),
                    provider: Provider::Aws,
                    region: "eu-west-1".parse().unwrap(),
                    security_group_id: "sg-0123456789abcdef0".parse().unwrap(),
                },
                ports: vec![PortRange::tcp(22), PortRange::tcp(443)],
            })
            .collect();
        Session::new(
            SessionId::from_uuid(Uuid::from_u128(1)),
            OrgId::from_uuid(Uuid::from_u128(2)),
            UserId::from_uuid(Uuid::from_u128(3)),
            "203.0.113.7".parse().unwrap(),
            t0,
            Hours::new(2).unwrap(),
            targets,
        )
    }

    #[test]
    fn a_session_round_trips_through_its_item() {
        let s = session(3);
        let item = session_item(&s).unwrap();
        assert_eq!(decode::<Session>(&item, DATA).unwrap(), s);
        assert_eq!(session_id_of(&item).unwrap(), s.id);
        assert_eq!(number(&item, VERSION).unwrap(), Some(0));
        // Live: in the due index, no TTL yet.
        assert_eq!(item.get(DUE_PK), Some(&s_(&keys::due_shard(s.id))));
        assert_eq!(due_entry_of(&item).unwrap().at, s.next_check_at().unwrap());
        assert!(!item.contains_key(TTL_ATTRIBUTE));
    }

    fn s_(v: &str) -> AttributeValue {
        AttributeValue::S(v.into())
    }

    #[test]
    fn an_ended_session_leaves_the_due_index_and_gets_a_ttl() {
        let mut s = session(1);
        s.stop(s.created_at).unwrap();
        assert!(s.next_check_at().is_none());
        let item = session_item(&s).unwrap();
        assert!(!item.contains_key(DUE_PK) && !item.contains_key(DUE_SK));
        let ttl = number(&item, TTL_ATTRIBUTE).unwrap().unwrap();
        assert_eq!(
            ttl,
            (s.ended_at.unwrap() + Duration::days(SESSION_RETENTION_DAYS)).timestamp()
        );
    }

    #[test]
    fn oversized_sessions_are_refused() {
        assert!(session_item(&session(300)).is_ok());
        let err = session_item(&session(2000)).unwrap_err();
        assert!(
            matches!(&err, DynamoError::Corrupt(m) if m.contains("2000 entries")),
            "{err}"
        );
    }

    #[test]
    fn documents_keep_their_exact_json() {
        let doc = serde_json::json!({"a": 1.0, "b": 1, "c": [null, "", {"d": false}]});
        let id = Uuid::from_u128(5);
        let item = doc_item(DocKind::Credential, OrgId::from_uuid(id), id, &doc).unwrap();
        assert_eq!(doc_of(&item).unwrap(), doc);
        assert_eq!(item.get(GSI1_PK), Some(&s_(&keys::credential(id))));
        let role = doc_item(DocKind::Role, OrgId::from_uuid(id), id, &doc).unwrap();
        assert!(!role.contains_key(GSI1_PK));
    }

    #[test]
    fn due_keys_sort_by_time() {
        let a = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        let b = a + Duration::nanoseconds(1);
        let id = SessionId::from_uuid(Uuid::from_u128(u128::MAX));
        let id0 = SessionId::from_uuid(Uuid::from_u128(0));
        assert!(keys::due(a, id) < keys::due(b, id0));
        assert!(keys::due(a, id) < format!("{}~", time_key(a)));
        assert_eq!(parse_time(&time_key(b)).unwrap(), b);
    }

    #[test]
    fn shards_are_fixed_and_spread() {
        let shards: std::collections::BTreeSet<u32> = (0..200u16)
            .map(|port| {
                keys::rule_shard(&RuleKey {
                    region: "eu-west-1".parse().unwrap(),
                    security_group_id: "sg-0123456789abcdef0".parse().unwrap(),
                    rule: entryguard::domain::rule::IngressRule {
                        ports: PortRange::tcp(port + 1),
                        cidr: "203.0.113.7/32".parse().unwrap(),
                    },
                })
            })
            .collect();
        assert_eq!(shards.len(), RULE_SHARDS as usize, "every shard is used");
        let id = SessionId::from_uuid(Uuid::from_u128(13));
        assert_eq!(keys::due_shard(id), "DUE#5");
    }
}
