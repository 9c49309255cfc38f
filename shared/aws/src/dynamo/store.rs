//! The `Store` port on one DynamoDB table. Every atomic promise of the port is kept by a
//! condition expression or a `TransactWriteItems`, never by reading first and hoping.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, Put, ReturnValue, TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;
use futures::future::join_all;
use rand::Rng;
use uuid::Uuid;

use entryguard::audit_paging::AuditPager;
use entryguard::domain::audit::{AuditEvent, AuditPage, AuditQuery};
use entryguard::domain::ids::{CredentialId, OrgId, SessionId, TokenId, UserId};
use entryguard::domain::model::{Credential, Email, Organization, User};
use entryguard::domain::rate::WindowCounter;
use entryguard::domain::rule::{
    CloudRuleId, CloudState, GroupRef, HolderId, Lease, LeaseGrant, RuleKey, RuleState,
};
use entryguard::domain::session::Session;
use entryguard::domain::Timestamp;
use entryguard::keys::time_key;
use entryguard::ports::store::{
    new_work, work_done, BadRecord, CommitError, CreateError, CreateSessionError, DocKind,
    DueEntry, GroupCommit, GroupGrant, RuleWrite, Store, StoreError, TokenRecord, UpdateError,
    WorkItem,
};

use super::error::{from_sdk, from_transact, DynamoError};
use super::items::{self, keys, n, s, Item};
use crate::schema::{
    DUE_INDEX, DUE_PARTITION, DUE_PK, DUE_SHARDS, DUE_SK, GSI1, GSI1_PK, GSI1_SK, PK, RULE_SHARDS,
    SK, UNHELD_INDEX, UNHELD_PK, UNHELD_SK,
};

/// DynamoDB's limit on the items of one `TransactWriteItems`.
const TRANSACTION_ITEMS: usize = 100;

/// Transactions that lose a race with another transaction on the same item are tried again
/// this many times before the store reports itself unavailable.
const TRANSACTION_ATTEMPTS: u32 = 8;
/// Read-modify-write loops (user updates and deletes) give up after this many lost races.
const RMW_ATTEMPTS: u32 = 10;
/// Items read per request when a query filters or pages.
const PAGE: i32 = 200;

#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: Arc<str>,
}

fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> DynamoError {
    DynamoError::Rejected(e.to_string())
}

fn limit_i32(limit: usize) -> i32 {
    i32::try_from(limit).unwrap_or(i32::MAX)
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: Arc::from(table.into()),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// The cheapest call that opens a connection to the table's endpoint and resolves the
    /// credentials: a read of an item that does not exist (half a read unit).
    pub async fn warm_up(&self) -> Result<(), StoreError> {
        self.get(keys::run("warm-up"), keys::RUN_SK).await?;
        Ok(())
    }

    async fn get(&self, pk: String, sk: &str) -> Result<Option<Item>, DynamoError> {
        let out = self
            .client
            .get_item()
            .table_name(&*self.table)
            .set_key(Some(items::key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(from_sdk)?;
        Ok(out.item)
    }

    async fn get_data<T: serde::de::DeserializeOwned>(
        &self,
        pk: String,
        sk: &str,
    ) -> Result<Option<T>, StoreError> {
        match self.get(pk, sk).await? {
            Some(item) => Ok(Some(items::decode(&item, items::DATA)?)),
            None => Ok(None),
        }
    }

    async fn put(&self, item: Item) -> Result<(), DynamoError> {
        self.client
            .put_item()
            .table_name(&*self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(from_sdk)?;
        Ok(())
    }

    /// Runs a transaction, trying again when it lost a race with another transaction (which
    /// DynamoDB reports as a cancellation, not as a failed condition).
    async fn transact(&self, actions: Vec<TransactWriteItem>) -> Result<(), DynamoError> {
        let mut attempt = 0;
        loop {
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(actions.clone()))
                .send()
                .await
                .map_err(from_transact);
            match result {
                Err(e) if e.is_transaction_conflict() && attempt + 1 < TRANSACTION_ATTEMPTS => {
                    attempt += 1;
                    let base = 10u64 << attempt.min(6);
                    let jitter = rand::rng().random_range(0..=base);
                    tracing::debug!(attempt, "transaction conflict; trying again");
                    tokio::time::sleep(StdDuration::from_millis(base + jitter)).await;
                }
                other => return other.map(|_| ()),
            }
        }
    }

    fn put_action(
        &self,
        item: Item,
        condition: &str,
        names: &[(&str, &str)],
        values: &[(&str, AttributeValue)],
    ) -> Result<TransactWriteItem, DynamoError> {
        let mut put = Put::builder()
            .table_name(&*self.table)
            .set_item(Some(item))
            .condition_expression(condition);
        for (k, v) in names {
            put = put.expression_attribute_names(*k, *v);
        }
        for (k, v) in values {
            put = put.expression_attribute_values(*k, v.clone());
        }
        Ok(TransactWriteItem::builder()
            .put(put.build().map_err(build_error)?)
            .build())
    }

    fn delete_action(
        &self,
        key: Item,
        condition: &str,
        names: &[(&str, &str)],
        values: &[(&str, AttributeValue)],
    ) -> Result<TransactWriteItem, DynamoError> {
        let mut delete = Delete::builder()
            .table_name(&*self.table)
            .set_key(Some(key))
            .condition_expression(condition);
        for (k, v) in names {
            delete = delete.expression_attribute_names(*k, *v);
        }
        for (k, v) in values {
            delete = delete.expression_attribute_values(*k, v.clone());
        }
        Ok(TransactWriteItem::builder()
            .delete(delete.build().map_err(build_error)?)
            .build())
    }

    fn update_action(
        &self,
        key: Item,
        update: &str,
        condition: Option<&str>,
        names: &[(&str, &str)],
        values: &[(&str, AttributeValue)],
    ) -> Result<TransactWriteItem, DynamoError> {
        let mut u = Update::builder()
            .table_name(&*self.table)
            .set_key(Some(key))
            .update_expression(update)
            .set_condition_expression(condition.map(str::to_owned));
        for (k, v) in names {
            u = u.expression_attribute_names(*k, *v);
        }
        for (k, v) in values {
            u = u.expression_attribute_values(*k, v.clone());
        }
        Ok(TransactWriteItem::builder()
            .update(u.build().map_err(build_error)?)
            .build())
    }

    /// Runs a query to the end or until `limit` items, following DynamoDB's pages.
    async fn query(&self, q: QueryFluentBuilder, limit: usize) -> Result<Vec<Item>, DynamoError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = q
                .clone()
                .set_exclusive_start_key(start)
                .limit(limit_i32(limit - out.len()).min(PAGE.max(1)))
                .send()
                .await
                .map_err(from_sdk)?;
            out.extend(page.items.unwrap_or_default());
            start = page.last_evaluated_key;
            if start.is_none() || out.len() >= limit {
                out.truncate(limit);
                return Ok(out);
            }
        }
    }

    /// A strongly consistent query for the items of one partition whose sort key starts with
    /// `prefix`, in sort-key order.
    fn partition_prefix(&self, pk: String, prefix: &str) -> QueryFluentBuilder {
        self.client
            .query()
            .table_name(&*self.table)
            .consistent_read(true)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":prefix", s(prefix))
    }

    /// The index entries of a user's personal tokens, oldest first (strongly consistent).
    async fn personal_token_index(&self, user: UserId) -> Result<Vec<Item>, DynamoError> {
        self.query(
            self.partition_prefix(keys::user(user), keys::PERSONAL_TOKEN_PREFIX),
            usize::MAX,
        )
        .await
    }

    fn gsi1(&self, pk: String) -> QueryFluentBuilder {
        self.client
            .query()
            .table_name(&*self.table)
            .index_name(GSI1)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", GSI1_PK)
            .expression_attribute_values(":pk", s(pk))
    }

    /// A credential found by id alone: security groups name their credential, not its
    /// organization. Reads the credential index (eventually consistent, so a credential
    /// created a moment ago may take a second to appear).
    pub async fn find_credential(
        &self,
        id: CredentialId,
    ) -> Result<Option<Credential>, StoreError> {
        let found = self
            .query(self.gsi1(keys::credential(*id.as_uuid())), 1)
            .await?;
        match found.first() {
            Some(item) => Ok(Some(
                serde_json::from_value(items::doc_of(item)?)
                    .map_err(|e| StoreError::Corrupt(format!("credential {id}: {e}")))?,
            )),
            None => Ok(None),
        }
    }

    /// After a failed version condition: was the session missing, or changed by someone else?
    /// After a session write's condition failed. The SDK retries a request whose answer was
    /// lost (a timeout, a 5xx); when the first attempt landed, the retry's condition fails
    /// against our own write, and the stored session equals the one we wrote: done.
    async fn landed_or_conflict(&self, session: &Session) -> Result<(), UpdateError> {
        match self.get_session(session.id).await {
            Ok(None) => Err(UpdateError::Missing),
            Ok(Some(stored)) if stored == *session => Ok(()),
            Ok(Some(_)) => Err(UpdateError::Conflict),
            Err(e) => Err(UpdateError::Store(e)),
        }
    }

    async fn get_rule_item(&self, key: &RuleKey) -> Result<Option<RuleState>, DynamoError> {
        self.get(keys::rule(key), keys::RULE_SK)
            .await?
            .map(|item| items::rule_state(&item))
            .transpose()
    }

    /// Forgets a rule record that is idle — unless someone took it again in the meantime.
    async fn forget_if_idle(&self, key: &RuleKey) -> Result<(), DynamoError> {
        let result = self
            .client
            .delete_item()
            .table_name(&*self.table)
            .set_key(Some(items::key(keys::rule(key), keys::RULE_SK)))
            .condition_expression(
                "#count = :zero AND #cloud = :absent AND attribute_not_exists(#owner)",
            )
            .expression_attribute_names("#count", items::HOLDER_COUNT)
            .expression_attribute_names("#cloud", items::CLOUD)
            .expression_attribute_names("#owner", items::LEASE_OWNER)
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":absent", items::encode(&CloudState::Absent)?)
            .send()
            .await
            .map_err(from_sdk);
        match result {
            Ok(_) | Err(DynamoError::ConditionFailed) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The work items of `session`'s entries that have work to do (at most `room`), as
    /// transaction items written with the session: a group's backlog is whole as soon as a
    /// session starts or ends. Idempotent puts; entries past `room` are put by their messages.
    fn work_puts(
        &self,
        session: &Session,
        room: usize,
    ) -> Result<Vec<TransactWriteItem>, DynamoError> {
        let puts = new_work(None, session).into_iter().map(|(group, w)| {
            let put = Put::builder()
                .table_name(&*self.table)
                .set_item(Some(items::work_item(&group, &w)?))
                .build()
                .map_err(build_error)?;
            Ok(TransactWriteItem::builder().put(put).build())
        });
        // An ended session's untouched entries (removed by the stop itself) leave the backlog.
        let deletes = work_done(None, session).into_iter().map(|(group, w)| {
            let delete = Delete::builder()
                .table_name(&*self.table)
                .set_key(Some(items::key(keys::group(&group), &keys::work(&w))))
                .build()
                .map_err(build_error)?;
            Ok(TransactWriteItem::builder().delete(delete).build())
        });
        puts.chain(deletes).take(room).collect()
    }

    /// The condition that the group's lease is still `owner`'s, as a transaction item.
    fn lease_check(&self, group: &GroupRef, owner: &str) -> Result<TransactWriteItem, DynamoError> {
        let check = ConditionCheck::builder()
            .table_name(&*self.table)
            .set_key(Some(items::key(keys::group(group), keys::GROUP_SK)))
            .condition_expression("#owner = :owner")
            .expression_attribute_names("#owner", items::LEASE_OWNER)
            .expression_attribute_values(":owner", s(owner))
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }

    /// The group's lease given back, as a transaction item (only while `owner` holds it).
    fn lease_release(
        &self,
        group: &GroupRef,
        owner: &str,
    ) -> Result<TransactWriteItem, DynamoError> {
        self.update_action(
            items::key(keys::group(group), keys::GROUP_SK),
            "REMOVE #owner, #until",
            Some("#owner = :owner"),
            &[
                ("#owner", items::LEASE_OWNER),
                ("#until", items::LEASE_UNTIL),
            ],
            &[(":owner", s(owner))],
        )
    }

    /// One rule's holder items and record, to be written in one transaction.
    async fn rule_actions(
        &self,
        group: &GroupRef,
        w: &RuleWrite,
    ) -> Result<Vec<TransactWriteItem>, DynamoError> {
        let key = &w.key;
        let legacy = if w.remove.is_empty() {
            Default::default()
        } else {
            match self.get(keys::rule(key), keys::RULE_SK).await? {
                Some(item) => items::legacy_holders(&item)?,
                None => Default::default(),
            }
        };
        let mut actions = Vec::new();
        for h in &w.add {
            actions.push(self.put_action(
                items::holder_item(key, h),
                "attribute_not_exists(#pk)",
                &[("#pk", PK)],
                &[],
            )?);
        }
        let mut from_set = Vec::new();
        for h in &w.remove {
            if legacy.contains(h) {
                from_set.push(h.as_str().to_owned());
            } else {
                actions.push(self.delete_action(
                    items::key(keys::rule(key), &keys::holder(h)),
                    "attribute_exists(#pk)",
                    &[("#pk", PK)],
                    &[],
                )?);
            }
        }
        let expected = w.expected_count.unwrap_or(0);
        let count = (expected + w.add.len() as u64).saturating_sub(w.remove.len() as u64);
        let rule = items::key(keys::rule(key), keys::RULE_SK);
        let mut names = vec![("#pk", PK), ("#count", items::HOLDER_COUNT)];
        let mut values = Vec::new();
        if w.expected_count.is_some() {
            values.push((":expected", n(expected)));
        }
        let condition = match w.expected_count {
            None => "attribute_not_exists(#pk)",
            Some(_) => "attribute_exists(#pk) AND #count = :expected",
        };
        if count == 0 && w.cloud == CloudState::Absent {
            // Idle: forgotten. The group's lease covers every rule of the group, so a rule
            // lease left on the record by a crashed per-rule change goes with it.
            if w.expected_count.is_some() {
                actions.push(self.delete_action(rule, condition, &names, &values)?);
            }
            return Ok(actions);
        }
        let shard = keys::rule_shard(key);
        let mut set = vec![
            "#key = if_not_exists(#key, :key)",
            "#group = if_not_exists(#group, :group)",
            "#type = :type",
            "#g1pk = :rules",
            "#g1sk = :order",
            "#cloud = :cloud",
            "#count = :count",
        ];
        let mut remove = Vec::new();
        names.extend([
            ("#key", items::RULE_KEY),
            ("#group", items::GROUP),
            ("#type", crate::schema::ITEM_TYPE),
            ("#g1pk", GSI1_PK),
            ("#g1sk", GSI1_SK),
            ("#cloud", items::CLOUD),
            ("#upk", UNHELD_PK),
            ("#usk", UNHELD_SK),
        ]);
        values.extend([
            (":key", items::encode(key)?),
            (":group", items::encode(group)?),
            (":type", s("RULE")),
            (":rules", s(keys::rules(shard))),
            (":order", s(key.storage_key())),
            (":cloud", items::encode(&w.cloud)?),
            (":count", n(count)),
        ]);
        if count == 0 {
            set.extend(["#upk = :upk", "#usk = :usk"]);
            values.extend([
                (":upk", s(keys::unheld(shard))),
                (":usk", s(key.storage_key())),
            ]);
        } else {
            remove.extend(["#upk", "#usk"]);
        }
        match (&w.rule_id, w.cloud) {
            (Some(id), _) => {
                set.push("#rid = :rid");
                names.push(("#rid", items::CLOUD_RULE_ID));
                values.push((":rid", s(id.as_str())));
            }
            (None, CloudState::Absent) => {
                remove.push("#rid");
                names.push(("#rid", items::CLOUD_RULE_ID));
            }
            (None, _) => {}
        }
        let mut update = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            update.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        if !from_set.is_empty() {
            update.push_str(" DELETE #holders :set");
            names.push(("#holders", items::HOLDERS));
            values.push((":set", AttributeValue::Ss(from_set)));
        }
        actions.push(self.update_action(rule, &update, Some(condition), &names, &values)?);
        Ok(actions)
    }

    /// Runs one part of a group commit, with the lease check (or release) as its first item.
    async fn commit_part(&self, actions: Vec<TransactWriteItem>) -> Result<(), CommitError> {
        match self.transact(actions).await {
            Ok(()) => Ok(()),
            Err(e) => {
                let failed = e.failed_conditions();
                if failed.contains(&0) {
                    Err(CommitError::LeaseLost)
                } else if !failed.is_empty() {
                    Err(CommitError::Conflict)
                } else {
                    Err(CommitError::Store(e.into()))
                }
            }
        }
    }

    fn user_of(item: &Item) -> Result<User, DynamoError> {
        items::decode(item, items::DATA)
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn put_org(&self, org: &Organization) -> Result<(), StoreError> {
        Ok(self.put(items::org_item(org)?).await?)
    }

    async fn get_org(&self, id: OrgId) -> Result<Option<Organization>, StoreError> {
        self.get_data(keys::org(id), keys::ORG_SK).await
    }

    async fn update_org(
        &self,
        org: &Organization,
        expected_version: u64,
    ) -> Result<(), UpdateError> {
        let item = items::org_item(org).map_err(StoreError::from)?;
        // Records written before organizations had versions carry no version attribute.
        let condition = if expected_version == 0 {
            "attribute_exists(#pk) AND (attribute_not_exists(#v) OR #v = :expected)"
        } else {
            "attribute_exists(#pk) AND #v = :expected"
        };
        let result = self
            .client
            .put_item()
            .table_name(&*self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .expression_attribute_names("#v", items::VERSION)
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":expected", n(expected_version))
            .send()
            .await
            .map_err(from_sdk);
        match result {
            Ok(_) => Ok(()),
            Err(DynamoError::ConditionFailed) => {
                match self.get(keys::org(org.id), keys::ORG_SK).await {
                    Ok(None) => Err(UpdateError::Missing),
                    Ok(Some(_)) => Err(UpdateError::Conflict),
                    Err(e) => Err(UpdateError::Store(e.into())),
                }
            }
            Err(e) => Err(StoreError::from(e).into()),
        }
    }

    async fn list_orgs(&self) -> Result<Vec<Organization>, StoreError> {
        self.query(self.gsi1(keys::ORGS.to_owned()), usize::MAX)
            .await?
            .iter()
            .map(|item| items::decode(item, items::DATA).map_err(StoreError::from))
            .collect()
    }

    async fn has_any_org(&self) -> Result<bool, StoreError> {
        Ok(!self
            .query(self.gsi1(keys::ORGS.to_owned()), 1)
            .await?
            .is_empty())
    }

    async fn create_user(&self, user: &User) -> Result<(), CreateError> {
        let absent = "attribute_not_exists(#pk)";
        let names = [("#pk", PK)];
        let actions = vec![
            self.put_action(items::email_item(&user.email, user.id), absent, &names, &[])?,
            self.put_action(items::user_item(user)?, absent, &names, &[])?,
        ];
        match self.transact(actions).await {
            Ok(()) => Ok(()),
            Err(e) if !e.failed_conditions().is_empty() => Err(CreateError::AlreadyExists),
            Err(e) => Err(CreateError::Store(e.into())),
        }
    }

    async fn update_user(&self, user: &User) -> Result<(), CreateError> {
        for _ in 0..RMW_ATTEMPTS {
            let old = match self.get(keys::user(user.id), keys::USER_SK).await? {
                Some(item) => Some(Self::user_of(&item)?),
                None => None,
            };
            let me = s(user.id.to_string());
            let mut actions = vec![self.put_action(
                items::email_item(&user.email, user.id),
                "attribute_not_exists(#pk) OR #uid = :me",
                &[("#pk", PK), ("#uid", items::USER_ID)],
                &[(":me", me.clone())],
            )?];
            // The user must still have the e-mail we are about to free.
            actions.push(match &old {
                Some(old) => self.put_action(
                    items::user_item(user)?,
                    "#email = :old",
                    &[("#email", items::EMAIL)],
                    &[(":old", s(old.email.as_str()))],
                )?,
                None => self.put_action(
                    items::user_item(user)?,
                    "attribute_not_exists(#pk)",
                    &[("#pk", PK)],
                    &[],
                )?,
            });
            if let Some(old) = old.as_ref().filter(|o| o.email != user.email) {
                actions.push(self.delete_action(
                    items::key(keys::email(&old.email), keys::EMAIL_SK),
                    "#uid = :me",
                    &[("#uid", items::USER_ID)],
                    &[(":me", me)],
                )?);
            }
            match self.transact(actions).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    let failed = e.failed_conditions();
                    if failed.contains(&0) {
                        return Err(CreateError::AlreadyExists);
                    }
                    if failed.contains(&2) {
                        return Err(CreateError::Store(StoreError::Corrupt(format!(
                            "the e-mail record of user {} belongs to someone else",
                            user.id
                        ))));
                    }
                    if !failed.contains(&1) {
                        return Err(CreateError::Store(e.into()));
                    }
                    // The user changed between our read and our write: read again.
                }
            }
        }
        Err(CreateError::Store(StoreError::Unavailable(format!(
            "user {} kept changing under {RMW_ATTEMPTS} attempts",
            user.id
        ))))
    }

    async fn get_user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        self.get_data(keys::user(id), keys::USER_SK).await
    }

    async fn find_user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        let Some(item) = self.get(keys::email(email), keys::EMAIL_SK).await? else {
            return Ok(None);
        };
        let id: UserId = items::string(&item, items::USER_ID)?
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("e-mail record of {email}: {e}")))?;
        self.get_user(id).await
    }

    async fn list_users(&self, org: OrgId) -> Result<Vec<User>, StoreError> {
        self.query(self.gsi1(keys::org_users(org)), usize::MAX)
            .await?
            .iter()
            .map(|item| Self::user_of(item).map_err(StoreError::from))
            .collect()
    }

    async fn delete_user(&self, id: UserId) -> Result<bool, StoreError> {
        for _ in 0..RMW_ATTEMPTS {
            let Some(item) = self.get(keys::user(id), keys::USER_SK).await? else {
                return Ok(false);
            };
            let user = Self::user_of(&item)?;
            let actions = vec![
                self.delete_action(
                    items::key(keys::user(id), keys::USER_SK),
                    "#email = :email",
                    &[("#email", items::EMAIL)],
                    &[(":email", s(user.email.as_str()))],
                )?,
                self.delete_action(
                    items::key(keys::email(&user.email), keys::EMAIL_SK),
                    "#uid = :me",
                    &[("#uid", items::USER_ID)],
                    &[(":me", s(id.to_string()))],
                )?,
            ];
            match self.transact(actions).await {
                Ok(()) => return Ok(true),
                Err(e) if e.failed_conditions() == [0] => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Unavailable(format!(
            "user {id} kept changing under {RMW_ATTEMPTS} attempts"
        )))
    }

    async fn put_doc(
        &self,
        kind: DocKind,
        org: OrgId,
        id: Uuid,
        doc: serde_json::Value,
    ) -> Result<(), StoreError> {
        Ok(self.put(items::doc_item(kind, org, id, &doc)?).await?)
    }

    async fn get_doc(
        &self,
        kind: DocKind,
        org: OrgId,
        id: Uuid,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        match self.get(keys::org(org), &keys::doc(kind, id)).await? {
            Some(item) => Ok(Some(items::doc_of(&item)?)),
            None => Ok(None),
        }
    }

    async fn list_docs(
        &self,
        kind: DocKind,
        org: OrgId,
    ) -> Result<Vec<serde_json::Value>, StoreError> {
        self.query(
            self.partition_prefix(keys::org(org), &keys::doc_prefix(kind)),
            usize::MAX,
        )
        .await?
        .iter()
        .map(|item| items::doc_of(item).map_err(StoreError::from))
        .collect()
    }

    async fn delete_doc(&self, kind: DocKind, org: OrgId, id: Uuid) -> Result<bool, StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&*self.table)
            .set_key(Some(items::key(keys::org(org), &keys::doc(kind, id))))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(from_sdk)?;
        Ok(out.attributes.is_some_and(|a| !a.is_empty()))
    }

    async fn put_token(&self, token: &TokenRecord) -> Result<(), StoreError> {
        let Some(personal) = &token.personal else {
            return Ok(self.put(items::token_item(token)?).await?);
        };
        // A personal token is written once, at creation.
        let new = "attribute_not_exists(#pk)";
        let names = [("#pk", PK)];
        let actions = vec![
            self.put_action(items::token_item(token)?, new, &names, &[])?,
            self.put_action(
                items::personal_token_item(token, personal),
                new,
                &names,
                &[],
            )?,
        ];
        Ok(self.transact(actions).await?)
    }

    async fn get_token(&self, token_hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        self.get_data(keys::token(token_hash), keys::TOKEN_SK).await
    }

    async fn list_personal_tokens(&self, user: UserId) -> Result<Vec<TokenRecord>, StoreError> {
        let mut out = Vec::new();
        for index in self.personal_token_index(user).await? {
            let hash = items::string(&index, items::TOKEN_HASH)?;
            // Absent when deleted between the two reads.
            if let Some(record) = self.get_token(hash).await? {
                out.push(record);
            }
        }
        Ok(out)
    }

    async fn delete_personal_token(&self, user: UserId, id: TokenId) -> Result<bool, StoreError> {
        let suffix = format!("#{id}");
        let index = self.personal_token_index(user).await?;
        let Some(entry) = index
            .iter()
            .find(|item| items::string(item, SK).is_ok_and(|sk| sk.ends_with(&suffix)))
        else {
            return Ok(false);
        };
        let hash = items::string(entry, items::TOKEN_HASH)?;
        let sk = items::string(entry, SK)?;
        let exists = "attribute_exists(#pk)";
        let names = [("#pk", PK)];
        let actions = vec![
            self.delete_action(items::key(keys::user(user), sk), exists, &names, &[])?,
            self.delete_action(
                items::key(keys::token(hash), keys::TOKEN_SK),
                exists,
                &names,
                &[],
            )?,
        ];
        match self.transact(actions).await {
            Ok(()) => Ok(true),
            // Someone else deleted it first.
            Err(e) if !e.failed_conditions().is_empty() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn touch_token(&self, token_hash: &str, at: Timestamp) -> Result<(), StoreError> {
        let Some(mut record) = self.get_token(token_hash).await? else {
            return Ok(());
        };
        record.last_used_at = Some(at);
        let result = self
            .client
            .put_item()
            .table_name(&*self.table)
            .set_item(Some(items::token_item(&record)?))
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .send()
            .await
            .map_err(from_sdk);
        match result {
            Ok(_) | Err(DynamoError::ConditionFailed) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn create_session(
        &self,
        session: &Session,
        max_live: Option<u32>,
    ) -> Result<(), CreateSessionError> {
        if max_live == Some(0) {
            return Err(CreateSessionError::LimitReached);
        }
        let item = items::session_item(session)?;
        let counter = items::key(keys::user(session.user_id), keys::LIVE_SK);
        let mut values = vec![(":one", n(1)), (":type", s("LIVE"))];
        if let Some(max) = max_live {
            values.push((":max", n(max)));
        }
        let mut actions = vec![
            self.put_action(item, "attribute_not_exists(#pk)", &[("#pk", PK)], &[])?,
            self.update_action(
                counter,
                "SET #type = :type ADD #live :one",
                max_live.map(|_| "attribute_not_exists(#live) OR #live < :max"),
                &[("#type", crate::schema::ITEM_TYPE), ("#live", items::LIVE)],
                &values,
            )?,
        ];
        actions.extend(self.work_puts(session, TRANSACTION_ITEMS - actions.len())?);
        match self.transact(actions).await {
            Ok(()) => Ok(()),
            Err(e) => {
                let failed = e.failed_conditions();
                if failed.contains(&0) {
                    match self.get_session(session.id).await? {
                        // A retried create whose first attempt landed (with its slot).
                        Some(stored) if stored == *session => Ok(()),
                        _ => Err(StoreError::Corrupt(format!(
                            "session {} already exists",
                            session.id
                        ))
                        .into()),
                    }
                } else if failed.contains(&1) {
                    Err(CreateSessionError::LimitReached)
                } else {
                    Err(StoreError::from(e).into())
                }
            }
        }
    }

    async fn get_session(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
        self.get_data(keys::session(id), keys::SESSION_SK).await
    }

    async fn list_user_sessions(
        &self,
        user: UserId,
        limit: usize,
    ) -> Result<Vec<Session>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let q = self
            .gsi1(keys::user_sessions(user))
            .scan_index_forward(false);
        self.query(q, limit)
            .await?
            .iter()
            .map(|item| items::decode(item, items::DATA).map_err(StoreError::from))
            .collect()
    }

    async fn update_session(
        &self,
        session: &Session,
        expected_version: u64,
        release_slot: bool,
    ) -> Result<(), UpdateError> {
        let item = items::session_item(session).map_err(StoreError::from)?;
        let condition = "#v = :expected";
        let names = [("#v", items::VERSION)];
        let values = [(":expected", n(expected_version))];
        let work = self.work_puts(session, TRANSACTION_ITEMS - 2)?;
        if !release_slot && !work.is_empty() {
            let mut actions = vec![self.put_action(item.clone(), condition, &names, &values)?];
            actions.extend(work.clone());
            return match self.transact(actions).await {
                Ok(()) => Ok(()),
                Err(e) if e.failed_conditions().contains(&0) => {
                    self.landed_or_conflict(session).await
                }
                Err(e) => Err(StoreError::from(e).into()),
            };
        }
        if release_slot {
            let mut actions = vec![
                self.put_action(item.clone(), condition, &names, &values)?,
                self.update_action(
                    items::key(keys::user(session.user_id), keys::LIVE_SK),
                    "SET #live = #live - :one",
                    Some("#live > :zero"),
                    &[("#live", items::LIVE)],
                    &[(":one", n(1)), (":zero", n(0))],
                )?,
            ];
            actions.extend(work);
            match self.transact(actions).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    let failed = e.failed_conditions();
                    if failed.contains(&0) {
                        return self.landed_or_conflict(session).await;
                    }
                    if !failed.contains(&1) {
                        return Err(StoreError::from(e).into());
                    }
                    // The count is already zero: it stays there, as a saturating decrement
                    // would leave it; the session itself is still written below.
                }
            }
        }
        let result = self
            .client
            .put_item()
            .table_name(&*self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .expression_attribute_names("#v", items::VERSION)
            .expression_attribute_values(":expected", n(expected_version))
            .send()
            .await
            .map_err(from_sdk);
        match result {
            Ok(_) => Ok(()),
            Err(DynamoError::ConditionFailed) => self.landed_or_conflict(session).await,
            Err(e) => Err(StoreError::from(e).into()),
        }
    }

    async fn due_sessions(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<SessionId>, StoreError> {
        Ok(self
            .due_page(now, None, limit)
            .await?
            .into_iter()
            .map(|e| e.session_id)
            .collect())
    }

    async fn due_page(
        &self,
        upto: Timestamp,
        after: Option<DueEntry>,
        limit: usize,
    ) -> Result<Vec<DueEntry>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        // Every key of a check at or before `upto` sorts below `<upto>~`.
        let upper = format!("{}~", time_key(upto));
        let lower = after.map(|e| keys::due(e.at, e.session_id));
        if lower.as_ref().is_some_and(|l| *l >= upper) {
            return Ok(Vec::new());
        }
        // Each shard in parallel, from just where the last page ended; the first `limit` of
        // their merge is the page (every shard's own first `limit` covers it).
        let partitions = (0..DUE_SHARDS)
            .map(keys::due_partition)
            .chain([DUE_PARTITION.to_owned()]);
        let queries = partitions.map(|partition| {
            let mut q = self
                .client
                .query()
                .table_name(&*self.table)
                .index_name(DUE_INDEX)
                .expression_attribute_names("#pk", DUE_PK)
                .expression_attribute_names("#sk", DUE_SK)
                .expression_attribute_values(":due", s(partition))
                .expression_attribute_values(":upper", s(upper.clone()))
                .scan_index_forward(true);
            q = match &lower {
                // BETWEEN is inclusive: the previous page's last entry is dropped below.
                Some(lower) => q
                    .key_condition_expression("#pk = :due AND #sk BETWEEN :lower AND :upper")
                    .expression_attribute_values(":lower", s(lower.clone())),
                None => q.key_condition_expression("#pk = :due AND #sk <= :upper"),
            };
            self.query(q, limit + 1)
        });
        let mut entries = Vec::new();
        for found in join_all(queries).await {
            for item in found? {
                let entry = items::due_entry_of(&item)?;
                if Some(entry) != after {
                    entries.push(entry);
                }
            }
        }
        entries.sort();
        entries.dedup();
        entries.truncate(limit);
        Ok(entries)
    }

    async fn live_session_count(&self, user: UserId) -> Result<u32, StoreError> {
        let Some(item) = self.get(keys::user(user), keys::LIVE_SK).await? else {
            return Ok(0);
        };
        let live = items::number(&item, items::LIVE)?.unwrap_or(0);
        Ok(u32::try_from(live.max(0)).unwrap_or(u32::MAX))
    }

    async fn rule_add_holder(
        &self,
        key: &RuleKey,
        group: &GroupRef,
        holder: &HolderId,
    ) -> Result<RuleState, StoreError> {
        for _ in 0..RMW_ATTEMPTS {
            // The holder item and the count move together; an existing holder item (or a
            // holder in the set of a record from before) cancels both, so the count never moves
            // twice for one holder.
            let actions = vec![
                self.put_action(
                    items::holder_item(key, holder),
                    "attribute_not_exists(#pk)",
                    &[("#pk", PK)],
                    &[],
                )?,
                self.update_action(
                    items::key(keys::rule(key), keys::RULE_SK),
                    "SET #key = if_not_exists(#key, :key), #group = if_not_exists(#group, :group), \
                     #cloud = if_not_exists(#cloud, :absent), #type = :type, #g1pk = :rules, \
                     #g1sk = :order ADD #count :one REMOVE #upk, #usk",
                    Some("NOT contains(#holders, :h)"),
                    &[
                        ("#key", items::RULE_KEY),
                        ("#group", items::GROUP),
                        ("#cloud", items::CLOUD),
                        ("#type", crate::schema::ITEM_TYPE),
                        ("#g1pk", GSI1_PK),
                        ("#g1sk", GSI1_SK),
                        ("#holders", items::HOLDERS),
                        ("#count", items::HOLDER_COUNT),
                        ("#upk", UNHELD_PK),
                        ("#usk", UNHELD_SK),
                    ],
                    &[
                        (":key", items::encode(key)?),
                        (":group", items::encode(group)?),
                        (":absent", items::encode(&CloudState::Absent)?),
                        (":type", s("RULE")),
                        (":rules", s(keys::rules(keys::rule_shard(key)))),
                        (":order", s(key.storage_key())),
                        (":h", s(holder.as_str())),
                        (":one", n(1)),
                    ],
                )?,
            ];
            match self.transact(actions).await {
                Ok(()) => {}
                // Already a holder: nothing changes.
                Err(e) if !e.failed_conditions().is_empty() => {}
                Err(e) => return Err(e.into()),
            }
            if let Some(state) = self.get_rule_item(key).await? {
                return Ok(state);
            }
            // Forgotten between our write and our read: add again.
        }
        Err(StoreError::Unavailable(format!(
            "rule {key} kept changing under {RMW_ATTEMPTS} attempts"
        )))
    }

    async fn rule_remove_holder(
        &self,
        key: &RuleKey,
        holder: &HolderId,
    ) -> Result<Option<RuleState>, StoreError> {
        for _ in 0..RMW_ATTEMPTS {
            let Some(item) = self.get(keys::rule(key), keys::RULE_SK).await? else {
                return Ok(None);
            };
            let state = items::rule_state(&item)?;
            let in_set = items::legacy_holders(&item)?.contains(holder);
            // The last holder's removal also puts the record into the unheld index, in the
            // same write: the count read picks the form, and a condition on it catches a race.
            let last = state.holder_count <= 1;
            let (update, count) = if last {
                (
                    "ADD #count :minus SET #upk = :upk, #usk = :usk",
                    "#count = :one",
                )
            } else {
                ("ADD #count :minus", "#count > :one")
            };
            let mut names = vec![("#count", items::HOLDER_COUNT)];
            let mut values = vec![(":minus", n(-1)), (":one", n(1))];
            if last {
                names.extend([("#upk", UNHELD_PK), ("#usk", UNHELD_SK)]);
                values.extend([
                    (":upk", s(keys::unheld(keys::rule_shard(key)))),
                    (":usk", s(key.storage_key())),
                ]);
            }
            let rule = items::key(keys::rule(key), keys::RULE_SK);
            let actions = if in_set {
                // A holder from before leaves the record's set (which only ever shrinks).
                names.push(("#holders", items::HOLDERS));
                values.push((
                    ":holder",
                    AttributeValue::Ss(vec![holder.as_str().to_owned()]),
                ));
                values.push((":h", s(holder.as_str())));
                vec![self.update_action(
                    rule,
                    &format!("DELETE #holders :holder {update}"),
                    Some(&format!("contains(#holders, :h) AND {count}")),
                    &names,
                    &values,
                )?]
            } else {
                vec![
                    self.delete_action(
                        items::key(keys::rule(key), &keys::holder(holder)),
                        "attribute_exists(#pk)",
                        &[("#pk", PK)],
                        &[],
                    )?,
                    self.update_action(rule, update, Some(count), &names, &values)?,
                ]
            };
            match self.transact(actions).await {
                Ok(()) => {
                    let now = self.get_rule_item(key).await?;
                    if now.as_ref().is_some_and(RuleState::is_idle) {
                        self.forget_if_idle(key).await?;
                    }
                    return Ok(now);
                }
                // Not a holder (no holder item, and the set only ever shrinks): nothing changes.
                Err(e) if !in_set && e.failed_conditions().contains(&0) => return Ok(Some(state)),
                // The count moved since we read it (or the set did): read again.
                Err(e) if !e.failed_conditions().is_empty() => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Unavailable(format!(
            "rule {key} kept changing under {RMW_ATTEMPTS} attempts"
        )))
    }

    async fn rule_lease(
        &self,
        key: &RuleKey,
        owner: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<LeaseGrant, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&*self.table)
            .set_key(Some(items::key(keys::rule(key), keys::RULE_SK)))
            .update_expression("SET #owner = :owner, #until = :until")
            // Lease times are fixed-width UTC strings, so they compare as times.
            .condition_expression(
                "attribute_exists(#pk) AND (attribute_not_exists(#owner) OR #owner = :owner OR #until <= :now)",
            )
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#owner", items::LEASE_OWNER)
            .expression_attribute_names("#until", items::LEASE_UNTIL)
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":until", s(time_key(until)))
            .expression_attribute_values(":now", s(time_key(now)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(from_sdk);
        match result {
            Ok(out) => {
                let mut state = items::rule_state(&out.attributes.unwrap_or_default())?;
                let stale = state.lease.as_ref().is_some_and(|l| l.owner != owner);
                state.lease = Some(Lease {
                    owner: owner.to_owned(),
                    until,
                });
                Ok(LeaseGrant::Granted {
                    state: Box::new(state),
                    stale,
                })
            }
            Err(DynamoError::ConditionFailed) => match self.get_rule_item(key).await? {
                Some(_) => Ok(LeaseGrant::Busy),
                None => Err(StoreError::Corrupt(format!("no rule record for {key}"))),
            },
            Err(e) => Err(e.into()),
        }
    }

    async fn rule_release_lease(
        &self,
        key: &RuleKey,
        owner: &str,
        cloud: CloudState,
        rule_id: Option<&CloudRuleId>,
    ) -> Result<(), StoreError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&*self.table)
            .set_key(Some(items::key(keys::rule(key), keys::RULE_SK)));
        update = match (rule_id, cloud) {
            (Some(id), _) => update
                .update_expression("SET #cloud = :cloud, #rid = :rid REMOVE #owner, #until")
                .expression_attribute_names("#rid", items::CLOUD_RULE_ID)
                .expression_attribute_values(":rid", s(id.as_str())),
            (None, CloudState::Absent) => update
                .update_expression("SET #cloud = :cloud REMOVE #owner, #until, #rid")
                .expression_attribute_names("#rid", items::CLOUD_RULE_ID),
            (None, _) => update.update_expression("SET #cloud = :cloud REMOVE #owner, #until"),
        };
        let result = update
            .condition_expression("#owner = :owner")
            .expression_attribute_names("#cloud", items::CLOUD)
            .expression_attribute_names("#owner", items::LEASE_OWNER)
            .expression_attribute_names("#until", items::LEASE_UNTIL)
            .expression_attribute_values(":cloud", items::encode(&cloud)?)
            .expression_attribute_values(":owner", s(owner))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(from_sdk);
        match result {
            Ok(out) => {
                if items::rule_state(&out.attributes.unwrap_or_default())?.is_idle() {
                    self.forget_if_idle(key).await?;
                }
                Ok(())
            }
            // Someone else holds the lease now, or the record is gone: not ours to change.
            Err(DynamoError::ConditionFailed) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn rule_observed(
        &self,
        key: &RuleKey,
        group: &GroupRef,
    ) -> Result<RuleState, StoreError> {
        for _ in 0..RMW_ATTEMPTS {
            // A new record has no holder, so it goes into the unheld index; an existing record
            // stays exactly as it is.
            let shard = keys::rule_shard(key);
            let mut item = items::key(keys::rule(key), keys::RULE_SK);
            item.insert(items::RULE_KEY.to_owned(), items::encode(key)?);
            item.insert(items::GROUP.to_owned(), items::encode(group)?);
            item.insert(
                items::CLOUD.to_owned(),
                items::encode(&CloudState::Unknown)?,
            );
            item.insert(items::HOLDER_COUNT.to_owned(), n(0));
            item.insert(crate::schema::ITEM_TYPE.to_owned(), s("RULE"));
            item.insert(GSI1_PK.to_owned(), s(keys::rules(shard)));
            item.insert(GSI1_SK.to_owned(), s(key.storage_key()));
            item.insert(UNHELD_PK.to_owned(), s(keys::unheld(shard)));
            item.insert(UNHELD_SK.to_owned(), s(key.storage_key()));
            let created = self
                .client
                .put_item()
                .table_name(&*self.table)
                .set_item(Some(item.clone()))
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PK)
                .send()
                .await
                .map_err(from_sdk);
            match created {
                Ok(_) => return Ok(items::rule_state(&item)?),
                Err(DynamoError::ConditionFailed) => {
                    if let Some(state) = self.get_rule_item(key).await? {
                        return Ok(state);
                    }
                    // Forgotten between our write and our read: create it.
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Unavailable(format!(
            "rule {key} kept changing under {RMW_ATTEMPTS} attempts"
        )))
    }

    async fn group_lease(
        &self,
        group: &GroupRef,
        owner: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<GroupGrant, StoreError> {
        // A lease another worker holds is seen with a read, not a refused write: in a storm most
        // attempts find their group busy, and a refused conditional write is billed as a write.
        let held = self
            .client
            .get_item()
            .table_name(&*self.table)
            .set_key(Some(items::key(keys::group(group), keys::GROUP_SK)))
            .consistent_read(true)
            .projection_expression("#owner, #until")
            .expression_attribute_names("#owner", items::LEASE_OWNER)
            .expression_attribute_names("#until", items::LEASE_UNTIL)
            .send()
            .await
            .map_err(from_sdk)?
            .item;
        if let Some(item) = held {
            let field = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
            if let (Some(other), Some(lease_until)) =
                (field(items::LEASE_OWNER), field(items::LEASE_UNTIL))
            {
                if other != owner && lease_until > time_key(now) {
                    return Ok(GroupGrant::Busy);
                }
            }
        }
        let result = self
            .client
            .update_item()
            .table_name(&*self.table)
            .set_key(Some(items::key(keys::group(group), keys::GROUP_SK)))
            .update_expression("SET #owner = :owner, #until = :until, #type = :type")
            // Lease times are fixed-width UTC strings, so they compare as times.
            .condition_expression(
                "attribute_not_exists(#owner) OR #owner = :owner OR #until <= :now",
            )
            .expression_attribute_names("#owner", items::LEASE_OWNER)
            .expression_attribute_names("#until", items::LEASE_UNTIL)
            .expression_attribute_names("#type", crate::schema::ITEM_TYPE)
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":until", s(time_key(until)))
            .expression_attribute_values(":now", s(time_key(now)))
            .expression_attribute_values(":type", s("GROUP"))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(from_sdk);
        match result {
            Ok(out) => {
                let stale = out
                    .attributes
                    .as_ref()
                    .and_then(|a| a.get(items::LEASE_OWNER))
                    .is_some_and(|o| o.as_s().map_or(true, |o| o != owner));
                Ok(GroupGrant::Granted { stale })
            }
            Err(DynamoError::ConditionFailed) => Ok(GroupGrant::Busy),
            Err(e) => Err(e.into()),
        }
    }

    async fn group_release(&self, group: &GroupRef, owner: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&*self.table)
            .set_key(Some(items::key(keys::group(group), keys::GROUP_SK)))
            .update_expression("REMOVE #owner, #until")
            .condition_expression("#owner = :owner")
            .expression_attribute_names("#owner", items::LEASE_OWNER)
            .expression_attribute_names("#until", items::LEASE_UNTIL)
            .expression_attribute_values(":owner", s(owner))
            .send()
            .await
            .map_err(from_sdk);
        match result {
            Ok(_) | Err(DynamoError::ConditionFailed) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn put_work(&self, group: &GroupRef, item: WorkItem) -> Result<(), StoreError> {
        Ok(self.put(items::work_item(group, &item)?).await?)
    }

    async fn remove_work(&self, group: &GroupRef, item: WorkItem) -> Result<(), StoreError> {
        // A read first: a delete costs a write unit even when there is nothing to delete, and
        // most callers find the item already gone.
        if self
            .get(keys::group(group), &keys::work(&item))
            .await?
            .is_none()
        {
            return Ok(());
        }
        self.client
            .delete_item()
            .table_name(&*self.table)
            .set_key(Some(items::key(keys::group(group), &keys::work(&item))))
            .send()
            .await
            .map_err(from_sdk)?;
        Ok(())
    }

    async fn group_work(
        &self,
        group: &GroupRef,
        limit: usize,
    ) -> Result<Vec<WorkItem>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.query(
            self.partition_prefix(keys::group(group), keys::WORK_PREFIX),
            limit,
        )
        .await?
        .iter()
        .map(|item| items::decode(item, items::DATA).map_err(StoreError::from))
        .collect()
    }

    async fn is_holder(&self, key: &RuleKey, holder: &HolderId) -> Result<bool, StoreError> {
        if self
            .get(keys::rule(key), &keys::holder(holder))
            .await?
            .is_some()
        {
            return Ok(true);
        }
        Ok(match self.get(keys::rule(key), keys::RULE_SK).await? {
            Some(item) => items::legacy_holders(&item)?.contains(holder),
            None => false,
        })
    }

    async fn commit_batch(&self, commit: &GroupCommit) -> Result<(), CommitError> {
        // Parts that must be written together: a rule's holders with its record; the rest one
        // item each. They go in as few transactions as the item limit allows, each checking
        // the lease first; the last gives it back.
        let mut units: Vec<Vec<TransactWriteItem>> = Vec::new();
        for w in &commit.rules {
            let unit = self.rule_actions(&commit.group, w).await?;
            if !unit.is_empty() {
                units.push(unit);
            }
        }
        for e in &commit.audit {
            units.push(vec![self.put_action(
                items::audit_item(e)?,
                "attribute_not_exists(#pk)",
                &[("#pk", PK)],
                &[],
            )?]);
        }
        // Sessions that give a slot back go through `update_session` after the transactions:
        // the user's counter may be one item for several of them.
        let mut releasing = Vec::new();
        for w in &commit.sessions {
            if w.release_slot {
                releasing.push(w);
                continue;
            }
            units.push(vec![self.put_action(
                items::session_item(&w.session)?,
                "#v = :expected",
                &[("#v", items::VERSION)],
                &[(":expected", n(w.expected_version))],
            )?]);
        }
        for item in &commit.done {
            let delete = Delete::builder()
                .table_name(&*self.table)
                .set_key(Some(items::key(
                    keys::group(&commit.group),
                    &keys::work(item),
                )))
                .build()
                .map_err(build_error)?;
            units.push(vec![TransactWriteItem::builder().delete(delete).build()]);
        }
        let release_last = commit.release && releasing.is_empty();
        let mut parts: Vec<Vec<TransactWriteItem>> = Vec::new();
        for unit in units {
            if unit.len() + 1 > TRANSACTION_ITEMS {
                return Err(StoreError::Unavailable(format!(
                    "a group commit part of {} items does not fit in one transaction",
                    unit.len()
                ))
                .into());
            }
            match parts.last_mut() {
                Some(part) if part.len() + unit.len() <= TRANSACTION_ITEMS => part.extend(unit),
                _ => {
                    let mut part = vec![self.lease_check(&commit.group, &commit.owner)?];
                    part.extend(unit);
                    parts.push(part);
                }
            }
        }
        if release_last {
            let release = self.lease_release(&commit.group, &commit.owner)?;
            match parts.last_mut() {
                Some(part) => part[0] = release,
                None => parts.push(vec![release]),
            }
        }
        for part in parts {
            self.commit_part(part).await?;
        }
        for w in releasing {
            match self
                .update_session(&w.session, w.expected_version, true)
                .await
            {
                Ok(()) => {}
                Err(UpdateError::Conflict | UpdateError::Missing) => {
                    return Err(CommitError::Conflict)
                }
                Err(UpdateError::Store(e)) => return Err(e.into()),
            }
        }
        if commit.release && !release_last {
            self.group_release(&commit.group, &commit.owner).await?;
        }
        Ok(())
    }

    async fn claim_run(
        &self,
        job: &str,
        now: Timestamp,
        every: chrono::Duration,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&*self.table)
            .set_item(Some({
                let mut item = items::key(keys::run(job), keys::RUN_SK);
                item.insert(crate::schema::ITEM_TYPE.to_owned(), s("RUN"));
                item.insert(items::LAST_RUN.to_owned(), s(time_key(now)));
                // Forgotten a day after it stops mattering.
                item.insert(
                    crate::schema::TTL_ATTRIBUTE.to_owned(),
                    items::ttl(now + every + chrono::Duration::days(1)),
                );
                item
            }))
            // Run times are fixed-width UTC strings, so they compare as times.
            .condition_expression("attribute_not_exists(#pk) OR #last <= :due")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#last", items::LAST_RUN)
            .expression_attribute_values(":due", s(time_key(now - every)))
            .send()
            .await
            .map_err(from_sdk);
        match result {
            Ok(_) => Ok(true),
            Err(DynamoError::ConditionFailed) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn count_event(
        &self,
        counter: &WindowCounter,
        _now: Timestamp,
    ) -> Result<Option<u32>, StoreError> {
        // One conditional ADD: the count never passes the limit, whoever races. The key names
        // the window, and TTL removes the item some time after the window ended (TTL deletes
        // lazily; a stale item is never read again, so how late does not matter).
        let result = self
            .client
            .update_item()
            .table_name(&*self.table)
            .set_key(Some(items::key(keys::rate(&counter.key), keys::RATE_SK)))
            .update_expression("ADD #events :one SET #type = :type, #ttl = :ttl")
            .condition_expression("attribute_not_exists(#events) OR #events < :limit")
            .expression_attribute_names("#events", items::EVENTS)
            .expression_attribute_names("#type", crate::schema::ITEM_TYPE)
            .expression_attribute_names("#ttl", crate::schema::TTL_ATTRIBUTE)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":type", s("RATE"))
            .expression_attribute_values(
                ":ttl",
                items::ttl(counter.ends_at + chrono::Duration::hours(1)),
            )
            .expression_attribute_values(":limit", n(counter.limit))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(from_sdk);
        match result {
            Ok(out) => {
                let count = items::number(&out.attributes.unwrap_or_default(), items::EVENTS)
                    .map_err(StoreError::from)?
                    .unwrap_or(0);
                Ok(Some(u32::try_from(count).unwrap_or(u32::MAX)))
            }
            Err(DynamoError::ConditionFailed) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn event_count(&self, counter: &WindowCounter) -> Result<u32, StoreError> {
        let item = self
            .get(keys::rate(&counter.key), keys::RATE_SK)
            .await?
            .unwrap_or_default();
        let count = items::number(&item, items::EVENTS)
            .map_err(StoreError::from)?
            .unwrap_or(0);
        Ok(u32::try_from(count).unwrap_or(u32::MAX))
    }

    async fn rule_holders(
        &self,
        key: &RuleKey,
        after: Option<&HolderId>,
        limit: usize,
    ) -> Result<Vec<HolderId>, StoreError> {
        let legacy = match self.get(keys::rule(key), keys::RULE_SK).await? {
            Some(item) => items::legacy_holders(&item)?,
            None => Default::default(),
        };
        let from = match after {
            Some(h) => keys::holder(h),
            None => keys::HOLDER_PREFIX.to_owned(),
        };
        let q = self
            .client
            .query()
            .table_name(&*self.table)
            .consistent_read(true)
            .key_condition_expression("#pk = :pk AND #sk BETWEEN :from AND :to")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":pk", s(keys::rule(key)))
            .expression_attribute_values(":from", s(from))
            .expression_attribute_values(":to", s(keys::HOLDER_END));
        let mut out: Vec<HolderId> = legacy
            .into_iter()
            .filter(|h| after.is_none_or(|a| h > a))
            .take(limit)
            .collect();
        for item in self.query(q, limit.saturating_add(1)).await? {
            let h = items::holder_of_item(&item)?;
            if Some(&h) != after {
                out.push(h);
            }
        }
        out.sort();
        out.dedup();
        out.truncate(limit);
        Ok(out)
    }

    async fn get_rule(&self, key: &RuleKey) -> Result<Option<RuleState>, StoreError> {
        Ok(self.get_rule_item(key).await?)
    }

    async fn list_rules(&self) -> Result<Vec<RuleState>, StoreError> {
        let partitions = (0..RULE_SHARDS)
            .map(keys::rules)
            .chain([keys::RULES.to_owned()]);
        let pages = join_all(partitions.map(|p| self.query(self.gsi1(p), usize::MAX))).await;
        let mut out = Vec::new();
        for found in pages {
            for item in found? {
                out.push(items::rule_state(&item)?);
            }
        }
        Ok(out)
    }

    async fn unheld_rules(&self) -> Result<Vec<Result<RuleState, BadRecord>>, StoreError> {
        let queries = (0..RULE_SHARDS).map(|shard| {
            let q = self
                .client
                .query()
                .table_name(&*self.table)
                .index_name(UNHELD_INDEX)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", UNHELD_PK)
                .expression_attribute_values(":pk", s(keys::unheld(shard)));
            self.query(q, usize::MAX)
        });
        let mut out = Vec::new();
        for found in join_all(queries).await {
            for item in found? {
                out.push(items::rule_state(&item).map_err(|e| {
                    let key = items::string(&item, PK).unwrap_or("?").to_owned();
                    BadRecord {
                        rule: key
                            .strip_prefix(keys::RULE_PREFIX)
                            .and_then(RuleKey::from_storage_key),
                        key,
                        error: e.to_string(),
                    }
                }));
            }
        }
        Ok(out)
    }

    async fn append_audit(&self, event: &AuditEvent) -> Result<(), StoreError> {
        Ok(self.put(items::audit_item(event)?).await?)
    }

    async fn list_audit(&self, org: OrgId, query: &AuditQuery) -> Result<AuditPage, StoreError> {
        let mut page = AuditPager::new(query);
        let Some((lower, upper)) = page.range() else {
            return Ok(page.finish());
        };
        let mut q = self
            .client
            .query()
            .table_name(&*self.table)
            .consistent_read(true)
            .scan_index_forward(false)
            .key_condition_expression("#pk = :pk AND #sk BETWEEN :lower AND :upper")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":pk", s(keys::audit(org)))
            .expression_attribute_values(":lower", s(lower))
            .expression_attribute_values(":upper", s(upper))
            .limit(PAGE);
        let mut filters = Vec::new();
        if let Some(kind) = query.kind {
            filters.push("#kind = :kind");
            q = q
                .expression_attribute_names("#kind", items::EVENT_TYPE)
                .expression_attribute_values(":kind", s(kind.as_str()));
        }
        if let Some(user) = query.user_id {
            filters.push("#actor = :actor");
            q = q
                .expression_attribute_names("#actor", items::ACTOR_ID)
                .expression_attribute_values(":actor", s(user.to_string()));
        }
        if !filters.is_empty() {
            q = q.filter_expression(filters.join(" AND "));
        }
        // BETWEEN includes the upper bound, which may be the cursor: the pager leaves it out.
        let mut start = None;
        'pages: loop {
            let answer = q
                .clone()
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(from_sdk)?;
            for item in answer.items.unwrap_or_default() {
                let sk = items::string(&item, SK)?;
                if !page.push(sk, items::decode::<AuditEvent>(&item, items::DATA)?) {
                    break 'pages;
                }
            }
            start = answer.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        Ok(page.finish())
    }
}

impl From<DynamoError> for CommitError {
    fn from(e: DynamoError) -> Self {
        CommitError::Store(e.into())
    }
}

impl From<DynamoError> for CreateError {
    fn from(e: DynamoError) -> Self {
        CreateError::Store(e.into())
    }
}

impl From<DynamoError> for CreateSessionError {
    fn from(e: DynamoError) -> Self {
        CreateSessionError::Store(e.into())
    }
}

impl From<DynamoError> for UpdateError {
    fn from(e: DynamoError) -> Self {
        UpdateError::Store(e.into())
    }
}
