//! The `Store` port's contract: every semantic the use cases rely on, as one suite that every
//! adapter must pass (the embedded store, and DynamoDB on moto: `tests/app/store.rs`). It needs an
//! empty store and panics at the first violation. It lives with the tests, not in the library
//! every Lambda links.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use uuid::Uuid;

use entryguard::domain::audit::{AuditEvent, AuditQuery, AuditType, Outcome};
use entryguard::domain::credential::{Credential, CredentialAccess};
use entryguard::domain::ids::{
    AuditId, CredentialId, OrgId, ResourceId, SessionId, TokenId, UserId,
};
use entryguard::domain::model::{OrgStatus, Organization, Provider, User};
use entryguard::domain::net::{PortRange, Region};
use entryguard::domain::rate::RateLimit;
use entryguard::domain::rule::{
    CloudRuleId, CloudState, GroupRef, HolderId, IngressRule, Lease, LeaseGrant, RuleKey,
};
use entryguard::domain::session::{EntryTarget, Session, SessionStatus};
use entryguard::domain::tier::{Hours, Tier};
use entryguard::domain::Timestamp;
use entryguard::keys::time_key;
use entryguard::ports::store::{
    CommitError, CreateError, CreateSessionError, DocKind, DueEntry, GroupCommit, GroupGrant,
    PersonalToken, RuleWrite, SessionWrite, Store, TokenRecord, UpdateError, WorkItem,
};

/// Runs every check against `store`, which must start empty.
pub async fn run_store_contract(store: Arc<dyn Store>) {
    let s = &*store;
    orgs(s).await;
    users(s).await;
    docs(s).await;
    webhook_docs(s).await;
    address_proof_keys(s).await;
    tokens(s).await;
    session_limits(s).await;
    concurrent_creates(store.clone()).await;
    session_updates(s).await;
    released_slots_saturate_at_zero(s).await;
    user_sessions_newest_first(s).await;
    due_sessions(s).await;
    due_pages(s).await;
    rule_holders(s).await;
    many_holders(s).await;
    rule_leases(s).await;
    group_leases(s).await;
    work_items(s).await;
    group_commits(s).await;
    observed_rules(s).await;
    unheld_index(s).await;
    claimed_runs(s).await;
    rate_counters(store.clone()).await;
    audit_log(s).await;
    credential_records_from_before_the_access_enum(s).await;
}

fn t0() -> Timestamp {
    Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap()
}

fn id() -> Uuid {
    Uuid::new_v4()
}

fn org(name: &str) -> Organization {
    Organization::new(
        OrgId::from_uuid(id()),
        name.parse().unwrap(),
        Tier::Team,
        t0(),
    )
}

fn user(org: OrgId, email: &str) -> User {
    User {
        id: UserId::from_uuid(id()),
        org_id: org,
        email: email.parse().unwrap(),
        is_admin: false,
        resource_ids: [ResourceId::from_uuid(id())].into(),
        created_at: t0(),
    }
}

fn region() -> Region {
    "eu-west-1".parse().unwrap()
}

fn group(n: u32) -> GroupRef {
    GroupRef {
        credential_id: CredentialId::from_uuid(Uuid::from_u128(u128::from(n) + 1000)),
        provider: Provider::Aws,
        region: region(),
        security_group_id: format!("sg-{n:08x}").parse().unwrap(),
    }
}

fn target(n: u32) -> EntryTarget {
    EntryTarget {
        resource_id: ResourceId::from_uuid(id()),
        resource_name: format!("resource {n}").parse().unwrap(),
        group: group(n),
        ports: vec![PortRange::tcp(22), PortRange::tcp(443)],
    }
}

/// A new session of `user` (one entry per target, PENDING) created at `at`.
fn session(user: &User, at: Timestamp, entries: u32) -> Session {
    Session::new(
        SessionId::from_uuid(id()),
        user.org_id,
        user.id,
        "203.0.113.7".parse().unwrap(),
        at,
        Hours::new(2).unwrap(),
        (0..entries).map(target).collect(),
    )
}

/// `s` after `change`, with the version bumped as the use cases do.
fn changed(s: &Session, change: impl FnOnce(&mut Session)) -> Session {
    let mut next = s.clone();
    change(&mut next);
    next.version = s.version + 1;
    next
}

fn ids(users: &[User]) -> BTreeSet<UserId> {
    users.iter().map(|u| u.id).collect()
}

async fn orgs(s: &dyn Store) {
    assert!(
        !s.has_any_org().await.unwrap(),
        "a fresh store has no organization"
    );
    assert!(s.list_orgs().await.unwrap().is_empty());
    let mut a = org("Org A");
    assert_eq!(s.get_org(a.id).await.unwrap(), None);
    s.put_org(&a).await.unwrap();
    assert_eq!(s.get_org(a.id).await.unwrap(), Some(a.clone()));
    assert!(s.has_any_org().await.unwrap());
    let b = org("Org B");
    s.put_org(&b).await.unwrap();
    let listed: BTreeSet<OrgId> = s.list_orgs().await.unwrap().iter().map(|o| o.id).collect();
    assert_eq!(listed, [a.id, b.id].into());
    a.name = "Org A renamed".parse().unwrap();
    a.tier = Tier::Business;
    s.put_org(&a).await.unwrap();
    assert_eq!(
        s.get_org(a.id).await.unwrap(),
        Some(a.clone()),
        "put_org replaces"
    );
    assert_eq!(s.get_org(OrgId::from_uuid(id())).await.unwrap(), None);

    // Conditional updates: only over the version they read, so two writers never lose a change.
    let mut renamed = a.clone();
    renamed.name = "Org A again".parse().unwrap();
    renamed.version = a.version + 1;
    s.update_org(&renamed, a.version).await.unwrap();
    assert_eq!(s.get_org(a.id).await.unwrap(), Some(renamed.clone()));
    let mut stale = a.clone();
    stale.tier = Tier::Free;
    stale.version = a.version + 1;
    assert!(
        matches!(
            s.update_org(&stale, a.version).await,
            Err(UpdateError::Conflict)
        ),
        "a write over a version that changed is refused"
    );
    assert_eq!(s.get_org(a.id).await.unwrap(), Some(renamed.clone()));
    let mut suspended = renamed.clone();
    suspended.status = OrgStatus::Suspended;
    suspended.version = renamed.version + 1;
    s.update_org(&suspended, renamed.version).await.unwrap();
    assert!(s.get_org(a.id).await.unwrap().unwrap().is_suspended());
    let ghost = org("Ghost");
    assert!(matches!(
        s.update_org(&ghost, 0).await,
        Err(UpdateError::Missing)
    ));
    assert_eq!(s.get_org(ghost.id).await.unwrap(), None);
}

async fn users(s: &dyn Store) {
    let (a, b) = (OrgId::from_uuid(id()), OrgId::from_uuid(id()));
    let alice = user(a, "alice@example.com");
    s.create_user(&alice).await.unwrap();
    assert_eq!(s.get_user(alice.id).await.unwrap(), Some(alice.clone()));
    assert_eq!(
        s.find_user_by_email(&alice.email).await.unwrap(),
        Some(alice.clone())
    );

    // The same address for another user, in any organization, is refused and writes nothing.
    let twin = user(b, "alice@example.com");
    assert!(matches!(
        s.create_user(&twin).await,
        Err(CreateError::AlreadyExists)
    ));
    assert_eq!(s.get_user(twin.id).await.unwrap(), None);
    assert_eq!(
        s.find_user_by_email(&alice.email).await.unwrap(),
        Some(alice.clone())
    );
    // The same id with another address is refused too.
    let mut same_id = alice.clone();
    same_id.email = "alice2@example.com".parse().unwrap();
    assert!(matches!(
        s.create_user(&same_id).await,
        Err(CreateError::AlreadyExists)
    ));
    assert_eq!(s.find_user_by_email(&same_id.email).await.unwrap(), None);
    assert_eq!(s.get_user(alice.id).await.unwrap(), Some(alice.clone()));

    let bob = user(b, "bob@example.com");
    s.create_user(&bob).await.unwrap();
    assert_eq!(
        ids(&s.list_users(a).await.unwrap()),
        BTreeSet::from([alice.id])
    );
    assert_eq!(
        ids(&s.list_users(b).await.unwrap()),
        BTreeSet::from([bob.id])
    );
    assert!(s
        .list_users(OrgId::from_uuid(id()))
        .await
        .unwrap()
        .is_empty());

    // A new address frees the old one.
    let mut renamed = alice.clone();
    renamed.email = "alice.new@example.com".parse().unwrap();
    s.update_user(&renamed).await.unwrap();
    assert_eq!(s.get_user(alice.id).await.unwrap(), Some(renamed.clone()));
    assert_eq!(
        s.find_user_by_email(&renamed.email).await.unwrap(),
        Some(renamed.clone())
    );
    assert_eq!(s.find_user_by_email(&alice.email).await.unwrap(), None);

    // Taking another user's address is refused and changes nothing.
    let mut thief = bob.clone();
    thief.email = renamed.email.clone();
    assert!(matches!(
        s.update_user(&thief).await,
        Err(CreateError::AlreadyExists)
    ));
    assert_eq!(s.get_user(bob.id).await.unwrap(), Some(bob.clone()));
    assert_eq!(
        s.find_user_by_email(&bob.email).await.unwrap(),
        Some(bob.clone())
    );
    assert_eq!(
        s.find_user_by_email(&renamed.email).await.unwrap(),
        Some(renamed.clone())
    );

    // Keeping one's own address is fine.
    let mut promoted = renamed.clone();
    promoted.is_admin = true;
    s.update_user(&promoted).await.unwrap();
    assert_eq!(s.get_user(alice.id).await.unwrap(), Some(promoted.clone()));
    assert_eq!(
        s.find_user_by_email(&promoted.email).await.unwrap(),
        Some(promoted.clone())
    );

    let carol = user(a, "alice@example.com");
    s.create_user(&carol).await.unwrap();
    assert_eq!(
        ids(&s.list_users(a).await.unwrap()),
        BTreeSet::from([promoted.id, carol.id])
    );
    let listed = s.list_users(a).await.unwrap();
    assert!(listed.contains(&promoted) && listed.contains(&carol));

    assert!(s.delete_user(alice.id).await.unwrap());
    assert_eq!(s.get_user(alice.id).await.unwrap(), None);
    assert_eq!(s.find_user_by_email(&promoted.email).await.unwrap(), None);
    assert!(!s.delete_user(alice.id).await.unwrap());
    assert_eq!(
        ids(&s.list_users(a).await.unwrap()),
        BTreeSet::from([carol.id])
    );
    let reuse = user(a, "alice.new@example.com");
    s.create_user(&reuse).await.unwrap();
    assert!(!s.delete_user(UserId::from_uuid(id())).await.unwrap());
}

fn sorted(mut docs: Vec<serde_json::Value>) -> Vec<serde_json::Value> {
    docs.sort_by_key(|d| d.to_string());
    docs
}

async fn docs(s: &dyn Store) {
    let (a, b) = (OrgId::from_uuid(id()), OrgId::from_uuid(id()));
    let (id1, id2, id3, id4) = (id(), id(), id(), id());
    let d1 = serde_json::json!({
        "id": id1, "name": "ops", "maxSessionDurationHours": 8,
        "resourceIds": [id(), id()], "userIds": [], "nested": {"flag": true, "none": null, "text": ""}
    });
    let d2 = serde_json::json!({"id": id2, "name": "dev", "maxSessionDurationHours": null});
    let d3 = serde_json::json!({"id": id3, "ports": [{"protocol": "tcp", "fromPort": 22, "toPort": 22}]});
    let d4 = serde_json::json!({"id": id4, "name": "other org"});
    s.put_doc(DocKind::Role, a, id1, d1.clone()).await.unwrap();
    assert_eq!(
        s.get_doc(DocKind::Role, a, id1).await.unwrap(),
        Some(d1.clone())
    );
    assert_eq!(
        s.get_doc(DocKind::Role, b, id1).await.unwrap(),
        None,
        "another org's doc is invisible"
    );
    assert_eq!(
        s.get_doc(DocKind::Resource, a, id1).await.unwrap(),
        None,
        "kinds are separate"
    );
    s.put_doc(DocKind::Role, a, id2, d2.clone()).await.unwrap();
    s.put_doc(DocKind::Resource, a, id3, d3.clone())
        .await
        .unwrap();
    s.put_doc(DocKind::Role, b, id4, d4.clone()).await.unwrap();
    assert_eq!(
        sorted(s.list_docs(DocKind::Role, a).await.unwrap()),
        sorted(vec![d1.clone(), d2.clone()])
    );
    assert_eq!(
        s.list_docs(DocKind::Resource, a).await.unwrap(),
        vec![d3.clone()]
    );
    assert_eq!(
        s.list_docs(DocKind::Role, b).await.unwrap(),
        vec![d4.clone()]
    );
    assert!(s
        .list_docs(DocKind::Credential, a)
        .await
        .unwrap()
        .is_empty());

    let d1b = serde_json::json!({"id": id1, "name": "ops renamed"});
    s.put_doc(DocKind::Role, a, id1, d1b.clone()).await.unwrap();
    assert_eq!(
        s.get_doc(DocKind::Role, a, id1).await.unwrap(),
        Some(d1b.clone())
    );
    assert_eq!(s.list_docs(DocKind::Role, a).await.unwrap().len(), 2);

    assert!(
        !s.delete_doc(DocKind::Role, b, id1).await.unwrap(),
        "not through another org"
    );
    assert!(s.delete_doc(DocKind::Role, a, id1).await.unwrap());
    assert!(!s.delete_doc(DocKind::Role, a, id1).await.unwrap());
    assert_eq!(s.get_doc(DocKind::Role, a, id1).await.unwrap(), None);
    assert_eq!(s.list_docs(DocKind::Role, a).await.unwrap(), vec![d2]);
    assert_eq!(s.list_docs(DocKind::Role, b).await.unwrap(), vec![d4]);
}

/// An organization's address-proof key ring: one document keyed by the organization's own id,
/// apart from every other kind (a credential with the same id never collides with it).
async fn address_proof_keys(s: &dyn Store) {
    let a = OrgId::from_uuid(id());
    let ring = serde_json::json!({
        "orgId": a.to_string(),
        "current": {"id": id(), "createdAt": "2026-11-22T10:00:00Z",
            "sealed": {"keyId": "local:abc", "nonce": "bm9uY2U=", "ciphertext": "c2VhbGVk"}},
    });
    let same_id = serde_json::json!({"id": a.to_string(), "name": "a credential"});
    s.put_doc(DocKind::AddressProofKeys, a, *a.as_uuid(), ring.clone())
        .await
        .unwrap();
    s.put_doc(DocKind::Credential, a, *a.as_uuid(), same_id.clone())
        .await
        .unwrap();
    assert_eq!(
        s.get_doc(DocKind::AddressProofKeys, a, *a.as_uuid())
            .await
            .unwrap(),
        Some(ring.clone())
    );
    assert_eq!(
        s.list_docs(DocKind::AddressProofKeys, a).await.unwrap(),
        vec![ring.clone()]
    );
    assert_eq!(
        s.list_docs(DocKind::Credential, a).await.unwrap(),
        vec![same_id]
    );
    let rotated = serde_json::json!({"orgId": a.to_string(), "current": {"id": id()}, "previous": ring["current"]});
    s.put_doc(DocKind::AddressProofKeys, a, *a.as_uuid(), rotated.clone())
        .await
        .unwrap();
    assert_eq!(
        s.get_doc(DocKind::AddressProofKeys, a, *a.as_uuid())
            .await
            .unwrap(),
        Some(rotated)
    );
}

/// Webhook endpoints and their deliveries are two kinds whose names share a beginning
/// (`WEBHOOK`, `WEBHOOK_DELIVERY`): a listing of one never returns the other.
async fn webhook_docs(s: &dyn Store) {
    let a = OrgId::from_uuid(id());
    let (endpoint, delivery, other) = (id(), id(), id());
    let e =
        serde_json::json!({"id": endpoint, "url": "https://hooks.example.com/x", "enabled": true});
    let d = serde_json::json!({"id": delivery, "endpointId": endpoint, "status": "PENDING", "attempts": 0});
    s.put_doc(DocKind::WebhookEndpoint, a, endpoint, e.clone())
        .await
        .unwrap();
    s.put_doc(DocKind::WebhookDelivery, a, delivery, d.clone())
        .await
        .unwrap();
    assert_eq!(
        s.list_docs(DocKind::WebhookEndpoint, a).await.unwrap(),
        vec![e.clone()]
    );
    assert_eq!(
        s.list_docs(DocKind::WebhookDelivery, a).await.unwrap(),
        vec![d.clone()]
    );
    assert_eq!(
        s.get_doc(DocKind::WebhookEndpoint, a, delivery)
            .await
            .unwrap(),
        None
    );
    // An attempt rewrites the delivery in place.
    let d2 = serde_json::json!({"id": delivery, "endpointId": endpoint, "status": "DELIVERED", "attempts": 1, "responseCode": 204});
    s.put_doc(DocKind::WebhookDelivery, a, delivery, d2.clone())
        .await
        .unwrap();
    assert_eq!(
        s.get_doc(DocKind::WebhookDelivery, a, delivery)
            .await
            .unwrap(),
        Some(d2)
    );
    assert!(s
        .list_docs(DocKind::WebhookDelivery, OrgId::from_uuid(other))
        .await
        .unwrap()
        .is_empty());
    assert!(s
        .delete_doc(DocKind::WebhookEndpoint, a, endpoint)
        .await
        .unwrap());
    assert!(s
        .list_docs(DocKind::WebhookEndpoint, a)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        s.list_docs(DocKind::WebhookDelivery, a)
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn tokens(s: &dyn Store) {
    let mut record = TokenRecord {
        token_hash: "ab".repeat(32),
        user_id: UserId::from_uuid(id()),
        created_at: t0(),
        expires_at: Some(t0() + Duration::hours(12)),
        personal: None,
        last_used_at: None,
    };
    assert_eq!(s.get_token(&record.token_hash).await.unwrap(), None);
    s.put_token(&record).await.unwrap();
    assert_eq!(
        s.get_token(&record.token_hash).await.unwrap(),
        Some(record.clone())
    );
    assert_eq!(s.get_token(&"cd".repeat(32)).await.unwrap(), None);
    record.expires_at = Some(t0() + Duration::hours(1));
    s.put_token(&record).await.unwrap();
    assert_eq!(
        s.get_token(&record.token_hash).await.unwrap(),
        Some(record.clone())
    );
    // Sign-in tokens are not personal tokens.
    assert!(s
        .list_personal_tokens(record.user_id)
        .await
        .unwrap()
        .is_empty());
    s.touch_token(&record.token_hash, t0() + Duration::minutes(5))
        .await
        .unwrap();
    assert_eq!(
        s.get_token(&record.token_hash)
            .await
            .unwrap()
            .unwrap()
            .last_used_at,
        Some(t0() + Duration::minutes(5))
    );
    personal_tokens(s).await;
}

async fn personal_tokens(s: &dyn Store) {
    let owner = UserId::from_uuid(id());
    let other = UserId::from_uuid(id());
    let personal = |user: UserId, n: i64, name: &str, expires: Option<Timestamp>| TokenRecord {
        token_hash: format!("{n:064x}"),
        user_id: user,
        created_at: t0() + Duration::minutes(n),
        expires_at: expires,
        personal: Some(PersonalToken {
            id: TokenId::from_uuid(id()),
            name: name.parse().unwrap(),
        }),
        last_used_at: None,
    };
    let second = personal(owner, 2, "deploy", None);
    let first = personal(owner, 1, "laptop", Some(t0() + Duration::days(30)));
    let theirs = personal(other, 3, "theirs", None);
    for t in [&second, &first, &theirs] {
        s.put_token(t).await.unwrap();
    }
    assert_eq!(
        s.list_personal_tokens(owner).await.unwrap(),
        vec![first.clone(), second.clone()],
        "oldest first, only the owner's"
    );
    let first_id = first.personal.as_ref().unwrap().id;
    let theirs_id = theirs.personal.as_ref().unwrap().id;
    assert!(
        !s.delete_personal_token(owner, theirs_id).await.unwrap(),
        "another user's token cannot be deleted"
    );
    assert!(s.get_token(&theirs.token_hash).await.unwrap().is_some());
    assert!(s.delete_personal_token(owner, first_id).await.unwrap());
    assert!(!s.delete_personal_token(owner, first_id).await.unwrap());
    assert_eq!(s.get_token(&first.token_hash).await.unwrap(), None);
    assert_eq!(
        s.list_personal_tokens(owner).await.unwrap(),
        vec![second.clone()]
    );
    // A use recorded after the token was revoked must not bring it back.
    s.touch_token(&first.token_hash, t0() + Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(s.get_token(&first.token_hash).await.unwrap(), None);
    s.touch_token(&second.token_hash, t0() + Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(
        s.list_personal_tokens(owner).await.unwrap()[0].last_used_at,
        Some(t0() + Duration::hours(1))
    );
}

async fn session_limits(s: &dyn Store) {
    let u = user(OrgId::from_uuid(id()), "limits@example.com");
    let other = user(u.org_id, "other@example.com");
    assert_eq!(s.live_session_count(u.id).await.unwrap(), 0);
    let s1 = session(&u, t0(), 2);
    s.create_session(&s1, Some(2)).await.unwrap();
    assert_eq!(s.live_session_count(u.id).await.unwrap(), 1);
    assert_eq!(s.get_session(s1.id).await.unwrap(), Some(s1.clone()));
    let s2 = session(&u, t0(), 1);
    s.create_session(&s2, Some(2)).await.unwrap();
    assert_eq!(s.live_session_count(u.id).await.unwrap(), 2);

    let s3 = session(&u, t0(), 1);
    assert!(matches!(
        s.create_session(&s3, Some(2)).await,
        Err(CreateSessionError::LimitReached)
    ));
    assert_eq!(
        s.get_session(s3.id).await.unwrap(),
        None,
        "a refused session is not stored"
    );
    assert_eq!(s.live_session_count(u.id).await.unwrap(), 2);
    // No limit: always stored, still counted.
    s.create_session(&s3, None).await.unwrap();
    assert_eq!(s.live_session_count(u.id).await.unwrap(), 3);

    // The same create again (the SDK retrying a request whose first attempt landed) is done
    // and takes no second slot; another session under the same id is an error.
    s.create_session(&s1, None).await.unwrap();
    assert_eq!(s.live_session_count(u.id).await.unwrap(), 3);
    let mut clash = session(&u, t0(), 3);
    clash.id = s1.id;
    assert!(matches!(
        s.create_session(&clash, None).await,
        Err(CreateSessionError::Store(_))
    ));
    assert_eq!(s.live_session_count(u.id).await.unwrap(), 3);
    assert_eq!(s.get_session(s1.id).await.unwrap(), Some(s1));

    let none = session(&other, t0(), 1);
    assert!(matches!(
        s.create_session(&none, Some(0)).await,
        Err(CreateSessionError::LimitReached)
    ));
    assert_eq!(s.get_session(none.id).await.unwrap(), None);
    assert_eq!(
        s.live_session_count(other.id).await.unwrap(),
        0,
        "counts are per user"
    );
}

async fn concurrent_creates(store: Arc<dyn Store>) {
    let u = user(OrgId::from_uuid(id()), "racer@example.com");
    let sessions: Vec<Session> = (0..10).map(|_| session(&u, t0(), 1)).collect();
    let tasks: Vec<_> = sessions
        .iter()
        .cloned()
        .map(|sess| {
            let store = store.clone();
            tokio::spawn(async move { store.create_session(&sess, Some(1)).await })
        })
        .collect();
    let mut created = 0;
    let mut refused = 0;
    for task in tasks {
        match task.await.expect("the create task finished") {
            Ok(()) => created += 1,
            Err(CreateSessionError::LimitReached) => refused += 1,
            Err(e) => panic!("a concurrent create failed instead of being refused: {e}"),
        }
    }
    assert_eq!(
        (created, refused),
        (1, 9),
        "exactly one of ten concurrent creates wins"
    );
    assert_eq!(store.live_session_count(u.id).await.unwrap(), 1);
    let mut stored = 0;
    for sess in &sessions {
        if store.get_session(sess.id).await.unwrap().is_some() {
            stored += 1;
        }
    }
    assert_eq!(stored, 1);
}

async fn session_updates(s: &dyn Store) {
    let u = user(OrgId::from_uuid(id()), "updates@example.com");
    let first = session(&u, t0(), 1);
    s.create_session(&first, None).await.unwrap();
    let applying = changed(&first, |x| {
        x.entry_applying(0, t0() + Duration::seconds(5)).unwrap()
    });
    s.update_session(&applying, 0, false).await.unwrap();
    assert_eq!(
        s.get_session(first.id).await.unwrap(),
        Some(applying.clone())
    );
    assert_eq!(s.live_session_count(u.id).await.unwrap(), 1);

    // A writer that read version 0 lost: nothing changes.
    let stale = changed(&applying, |x| {
        x.entry_failed(0, "boom".into(), t0()).unwrap()
    });
    assert!(matches!(
        s.update_session(&stale, 0, true).await,
        Err(UpdateError::Conflict)
    ));
    assert_eq!(
        s.get_session(first.id).await.unwrap(),
        Some(applying.clone())
    );
    assert_eq!(
        s.live_session_count(u.id).await.unwrap(),
        1,
        "a conflict releases no slot"
    );

    // An unknown session is missing, and updating it does not create it.
    let ghost = changed(&session(&u, t0(), 1), |_| {});
    assert!(matches!(
        s.update_session(&ghost, 0, false).await,
        Err(UpdateError::Missing)
    ));
    assert!(matches!(
        s.update_session(&ghost, 0, true).await,
        Err(UpdateError::Missing)
    ));
    assert_eq!(s.get_session(ghost.id).await.unwrap(), None);
    assert_eq!(s.live_session_count(u.id).await.unwrap(), 1);

    let stopped = changed(&applying, |x| {
        x.stop(t0() + Duration::seconds(10)).unwrap();
    });
    assert_eq!(stopped.status(), SessionStatus::Expiring);
    s.update_session(&stopped, 1, true).await.unwrap();
    assert_eq!(
        s.get_session(first.id).await.unwrap(),
        Some(stopped.clone())
    );
    assert_eq!(
        s.live_session_count(u.id).await.unwrap(),
        0,
        "release_slot gives the slot back"
    );
    // Without release_slot the count does not move.
    let second = session(&u, t0(), 1);
    s.create_session(&second, None).await.unwrap();
    // The same write again (a retry whose first attempt landed) is done, not a conflict, and
    // gives no second slot back.
    s.update_session(&stopped, 1, true).await.unwrap();
    assert_eq!(s.live_session_count(u.id).await.unwrap(), 1);
    let touched = changed(&stopped, |x| {
        x.entry_applied(0, t0() + Duration::seconds(20))
            .map(|_| ())
            .unwrap()
    });
    s.update_session(&touched, 2, false).await.unwrap();
    assert_eq!(s.live_session_count(u.id).await.unwrap(), 1);
    assert_eq!(s.get_session(first.id).await.unwrap().unwrap().version, 3);
}

async fn released_slots_saturate_at_zero(s: &dyn Store) {
    let u = user(OrgId::from_uuid(id()), "saturate@example.com");
    let a = session(&u, t0(), 1);
    s.create_session(&a, Some(1)).await.unwrap();
    let a1 = changed(&a, |x| {
        x.stop(t0()).unwrap();
    });
    s.update_session(&a1, 0, true).await.unwrap();
    assert_eq!(s.live_session_count(u.id).await.unwrap(), 0);
    // A second release finds nothing to give back; the session is still written.
    let a2 = changed(&a1, |x| x.updated_at = t0() + Duration::seconds(1));
    s.update_session(&a2, 1, true).await.unwrap();
    assert_eq!(s.get_session(a.id).await.unwrap(), Some(a2));
    assert_eq!(s.live_session_count(u.id).await.unwrap(), 0);
    // The count is exactly zero, not below: one slot is free, and only one.
    s.create_session(&session(&u, t0(), 1), Some(1))
        .await
        .unwrap();
    assert_eq!(s.live_session_count(u.id).await.unwrap(), 1);
    assert!(matches!(
        s.create_session(&session(&u, t0(), 1), Some(1)).await,
        Err(CreateSessionError::LimitReached)
    ));
}

async fn user_sessions_newest_first(s: &dyn Store) {
    let u = user(OrgId::from_uuid(id()), "lister@example.com");
    let other = user(u.org_id, "nobody@example.com");
    let a = session(&u, t0(), 1);
    let b = session(&u, t0() + Duration::minutes(1), 1);
    let c = session(&u, t0() + Duration::minutes(2), 1);
    for x in [&b, &a, &c] {
        s.create_session(x, None).await.unwrap();
    }
    let listed = |v: Vec<Session>| v.into_iter().map(|x| x.id).collect::<Vec<_>>();
    assert_eq!(
        listed(s.list_user_sessions(u.id, 10).await.unwrap()),
        vec![c.id, b.id, a.id]
    );
    assert_eq!(
        listed(s.list_user_sessions(u.id, 2).await.unwrap()),
        vec![c.id, b.id]
    );
    assert!(s.list_user_sessions(other.id, 10).await.unwrap().is_empty());
    // The list shows sessions as they are now.
    let b1 = changed(&b, |x| {
        x.entry_applying(0, t0() + Duration::minutes(3)).unwrap()
    });
    s.update_session(&b1, 0, false).await.unwrap();
    assert_eq!(s.list_user_sessions(u.id, 10).await.unwrap()[1], b1);
}

async fn due_sessions(s: &dyn Store) {
    // Years before every other check's sessions, so theirs are never due here.
    let base = Utc.with_ymd_and_hms(2020, 1, 1, 0, 0, 0).unwrap();
    let at = |secs: i64| base + Duration::seconds(secs);
    let u = user(OrgId::from_uuid(id()), "due@example.com");
    let s1 = session(&u, at(0), 1); // due at +120 s (stall check while pending)
    let s2 = session(&u, at(30), 1); // +150 s
    let s3 = session(&u, at(60), 1); // +180 s
    let s4 = session(&u, at(0), 0); // nothing to apply: active, due at expiry (+2 h)
    assert_eq!(s1.next_check_at(), Some(at(120)));
    assert_eq!(s4.next_check_at(), Some(at(7200)));
    for x in [&s3, &s1, &s4, &s2] {
        s.create_session(x, None).await.unwrap();
    }
    assert!(s.due_sessions(at(119), 10).await.unwrap().is_empty());
    assert_eq!(
        s.due_sessions(at(120), 10).await.unwrap(),
        vec![s1.id],
        "due at exactly now"
    );
    assert_eq!(
        s.due_sessions(at(180), 10).await.unwrap(),
        vec![s1.id, s2.id, s3.id],
        "soonest first"
    );
    assert_eq!(
        s.due_sessions(at(180), 2).await.unwrap(),
        vec![s1.id, s2.id]
    );

    // An ended session leaves the index.
    let s2_ended = changed(&s2, |x| {
        x.stop(at(100)).unwrap();
    });
    assert!(s2_ended.next_check_at().is_none());
    s.update_session(&s2_ended, 0, true).await.unwrap();
    assert_eq!(
        s.due_sessions(at(180), 10).await.unwrap(),
        vec![s1.id, s3.id]
    );

    // A change moves a session in the index.
    let s3_later = changed(&s3, |x| x.entry_applying(0, at(170)).unwrap());
    assert_eq!(s3_later.next_check_at(), Some(at(290)));
    s.update_session(&s3_later, 0, false).await.unwrap();
    assert_eq!(s.due_sessions(at(180), 10).await.unwrap(), vec![s1.id]);
    assert_eq!(
        s.due_sessions(at(290), 10).await.unwrap(),
        vec![s1.id, s3.id]
    );
    assert_eq!(
        s.due_sessions(at(3 * 3600), 10).await.unwrap(),
        vec![s1.id, s3.id, s4.id]
    );
}

async fn due_pages(s: &dyn Store) {
    // A year before the other checks' sessions, so only these are ever in range.
    let base = Utc.with_ymd_and_hms(2019, 1, 1, 0, 0, 0).unwrap();
    let at = |secs: i64| base + Duration::seconds(secs);
    let u = user(OrgId::from_uuid(id()), "pages@example.com");
    let mut expected = Vec::new();
    // Pairs of sessions share a due time: pages must split such pairs correctly too.
    for i in 0..25 {
        let x = session(&u, at(i / 2), 1);
        s.create_session(&x, None).await.unwrap();
        expected.push(DueEntry {
            at: x.next_check_at().unwrap(),
            session_id: x.id,
        });
    }
    expected.sort();
    let upto = at(3600);
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = s.due_page(upto, after, 7).await.unwrap();
        assert!(page.len() <= 7);
        if page.is_empty() {
            break;
        }
        after = page.last().copied();
        seen.extend(page);
    }
    assert_eq!(seen, expected, "every entry once, in index order");
    let cut = expected[9].at;
    let firsts = s.due_page(cut, None, 100).await.unwrap();
    assert!(
        firsts.len() >= 10 && firsts.iter().all(|e| e.at <= cut),
        "only entries due by `upto`"
    );
    assert!(s
        .due_page(upto, expected.last().copied(), 10)
        .await
        .unwrap()
        .is_empty());
    assert!(s.due_page(upto, None, 0).await.unwrap().is_empty());
}

fn rule_key(sg: u32, port: u16) -> RuleKey {
    RuleKey {
        region: region(),
        security_group_id: group(sg).security_group_id,
        rule: IngressRule {
            ports: PortRange::tcp(port),
            cidr: "203.0.113.7/32".parse().unwrap(),
        },
    }
}

fn holder(n: u32) -> HolderId {
    HolderId::new(SessionId::from_uuid(Uuid::from_u128(u128::from(n))), n)
}

/// Every holder of a rule, read in small pages (so paging itself is exercised).
async fn holders_of(s: &dyn Store, key: &RuleKey) -> Vec<HolderId> {
    let mut all: Vec<HolderId> = Vec::new();
    loop {
        let page = s.rule_holders(key, all.last(), 2).await.unwrap();
        assert!(page.len() <= 2, "a page is at most its limit");
        let done = page.len() < 2;
        all.extend(page);
        if done {
            return all;
        }
    }
}

/// Many holders of one rule (one office address behind many sessions): each is its own
/// record, the count follows them exactly, and they page in order with nothing missed or
/// repeated.
async fn many_holders(s: &dyn Store) {
    let k = rule_key(11, 22);
    let holders: Vec<HolderId> = (100..130).map(holder).collect();
    for h in &holders {
        s.rule_add_holder(&k, &group(11), h).await.unwrap();
    }
    // A duplicate add in the middle changes nothing.
    s.rule_add_holder(&k, &group(11), &holders[7])
        .await
        .unwrap();
    let mut sorted = holders.clone();
    sorted.sort();
    assert_eq!(s.get_rule(&k).await.unwrap().unwrap().count(), 30);
    assert_eq!(s.rule_holders(&k, None, 1000).await.unwrap(), sorted);
    let mut paged = Vec::new();
    loop {
        let page = s.rule_holders(&k, paged.last(), 7).await.unwrap();
        let done = page.len() < 7;
        paged.extend(page);
        if done {
            break;
        }
    }
    assert_eq!(paged, sorted, "pages of 7 give every holder once, in order");
    for (i, h) in holders.iter().enumerate() {
        let left = s.rule_remove_holder(&k, h).await.unwrap();
        if i + 1 < holders.len() {
            assert_eq!(left.unwrap().count(), holders.len() - i - 1);
        }
    }
    assert_eq!(
        s.get_rule(&k).await.unwrap(),
        None,
        "idle once the last left"
    );
    assert!(s.rule_holders(&k, None, 10).await.unwrap().is_empty());
}

async fn rule_holders(s: &dyn Store) {
    let (k1, k2) = (rule_key(1, 22), rule_key(1, 443));
    let (h1, h2, h3) = (holder(1), holder(2), holder(3));
    assert_eq!(s.get_rule(&k1).await.unwrap(), None);
    assert!(s.list_rules().await.unwrap().is_empty());
    assert_eq!(s.rule_remove_holder(&k1, &h1).await.unwrap(), None);
    assert_eq!(
        s.get_rule(&k1).await.unwrap(),
        None,
        "removing creates no record"
    );

    let first = s.rule_add_holder(&k1, &group(1), &h1).await.unwrap();
    assert_eq!(first.key, k1);
    assert_eq!(first.group, group(1));
    assert_eq!(holders_of(s, &k1).await, vec![h1.clone()]);
    assert_eq!(
        (first.count(), first.cloud, first.lease.clone()),
        (1, CloudState::Absent, None)
    );
    let again = s.rule_add_holder(&k1, &group(1), &h1).await.unwrap();
    assert_eq!(again, first, "adding a holder twice is a no-op");
    // The first holder's group stays the rule's group.
    let two = s.rule_add_holder(&k1, &group(2), &h2).await.unwrap();
    assert_eq!(holders_of(s, &k1).await, [h1.clone(), h2.clone()]);
    assert_eq!(two.count(), 2);
    assert_eq!(two.group, group(1));
    assert_eq!(s.get_rule(&k1).await.unwrap(), Some(two.clone()));

    s.rule_add_holder(&k2, &group(1), &h1).await.unwrap();
    let keys = |v: Vec<entryguard::domain::rule::RuleState>| {
        v.into_iter().map(|r| r.key).collect::<BTreeSet<_>>()
    };
    assert_eq!(
        keys(s.list_rules().await.unwrap()),
        [k1.clone(), k2.clone()].into()
    );

    assert_eq!(
        s.rule_remove_holder(&k1, &h3).await.unwrap(),
        Some(two.clone()),
        "not a holder: no-op"
    );
    let one = s.rule_remove_holder(&k1, &h1).await.unwrap().unwrap();
    assert_eq!(holders_of(s, &k1).await, vec![h2.clone()]);
    assert_eq!(one.count(), 1);
    assert_eq!(
        s.rule_remove_holder(&k1, &h1).await.unwrap(),
        Some(one.clone())
    );
    assert_eq!(s.get_rule(&k1).await.unwrap(), Some(one));
    let none = s.rule_remove_holder(&k1, &h2).await.unwrap().unwrap();
    assert_eq!(none.count(), 0);
    assert_eq!(
        s.get_rule(&k1).await.unwrap(),
        None,
        "an idle record is forgotten"
    );
    assert_eq!(keys(s.list_rules().await.unwrap()), [k2.clone()].into());
    s.rule_remove_holder(&k2, &h1).await.unwrap();
    assert!(s.list_rules().await.unwrap().is_empty());
}

/// A group's lease: one owner at a time until it runs out; a lease taken over after running
/// out (never given back) is stale; giving back is the owner's alone.
async fn group_leases(s: &dyn Store) {
    let at = |secs: i64| t0() + Duration::seconds(secs);
    let g = group(40);
    let fresh = GroupGrant::Granted { stale: false };
    assert_eq!(s.group_lease(&g, "w1", at(0), at(60)).await.unwrap(), fresh);
    assert_eq!(
        s.group_lease(&g, "w2", at(10), at(70)).await.unwrap(),
        GroupGrant::Busy
    );
    assert_eq!(
        s.group_lease(&group(41), "w2", at(10), at(70))
            .await
            .unwrap(),
        fresh,
        "each group has its own lease"
    );
    assert_eq!(
        s.group_lease(&g, "w1", at(20), at(80)).await.unwrap(),
        fresh,
        "the owner may renew"
    );
    s.group_release(&g, "w2").await.unwrap();
    assert_eq!(
        s.group_lease(&g, "w2", at(30), at(90)).await.unwrap(),
        GroupGrant::Busy,
        "only the owner gives the lease back"
    );
    assert_eq!(
        s.group_lease(&g, "w2", at(80), at(140)).await.unwrap(),
        GroupGrant::Granted { stale: true },
        "run out without being given back"
    );
    s.group_release(&g, "w2").await.unwrap();
    assert_eq!(
        s.group_lease(&g, "w3", at(81), at(141)).await.unwrap(),
        fresh
    );
    s.group_release(&g, "w3").await.unwrap();
    s.group_release(&group(41), "w2").await.unwrap();
}

/// A group's backlog: idempotent puts, read in order, apart from other groups'.
async fn work_items(s: &dyn Store) {
    let (g, other) = (group(42), group(43));
    assert!(s.group_work(&g, 10).await.unwrap().is_empty());
    let item = |n: u128, entry: u32| WorkItem {
        session_id: SessionId::from_uuid(Uuid::from_u128(n)),
        entry,
    };
    for w in [item(2, 10), item(1, 0), item(2, 9), item(1, 0)] {
        s.put_work(&g, w).await.unwrap();
    }
    s.put_work(&other, item(3, 0)).await.unwrap();
    assert_eq!(
        s.group_work(&g, 10).await.unwrap(),
        vec![item(1, 0), item(2, 9), item(2, 10)],
        "once each, by session then entry number"
    );
    assert_eq!(s.group_work(&g, 2).await.unwrap().len(), 2);
    assert_eq!(s.group_work(&other, 10).await.unwrap(), vec![item(3, 0)]);
    s.remove_work(&g, item(2, 9)).await.unwrap();
    s.remove_work(&g, item(2, 9)).await.unwrap();
    s.remove_work(&g, item(3, 0)).await.unwrap();
    assert_eq!(
        s.group_work(&g, 10).await.unwrap(),
        vec![item(1, 0), item(2, 10)],
        "removed from its own group only, once"
    );
    assert_eq!(s.group_work(&other, 10).await.unwrap(), vec![item(3, 0)]);
}

/// One group batch's outcome, written together or not at all (one transaction's worth).
async fn group_commits(s: &dyn Store) {
    let at = |secs: i64| t0() + Duration::seconds(secs);
    let o = org("Commit Co");
    s.put_org(&o).await.unwrap();
    let u = user(o.id, "commit@example.com");
    s.create_user(&u).await.unwrap();
    let sess = session(&u, at(0), 1);
    s.create_session(&sess, Some(3)).await.unwrap();
    assert_eq!(s.live_session_count(u.id).await.unwrap(), 1);
    // A new session's entries are in their groups' backlogs at once; so are the entries a
    // stop leaves to remove.
    let in_backlog = |sess: &Session, entry: u32| {
        let item = WorkItem {
            session_id: sess.id,
            entry,
        };
        let g = sess.entries[entry as usize].group.clone();
        async move { s.group_work(&g, 10_000).await.unwrap().contains(&item) }
    };
    assert!(in_backlog(&sess, 0).await);
    let other = session(&u, at(0), 2);
    s.create_session(&other, Some(3)).await.unwrap();
    assert!(in_backlog(&other, 1).await);
    for entry in [0, 1] {
        let item = WorkItem {
            session_id: other.id,
            entry,
        };
        s.remove_work(&group(entry), item).await.unwrap();
    }
    let picked = changed(&other, |x| {
        x.entry_applying(0, at(1)).unwrap();
        x.entry_applying(1, at(1)).unwrap();
    });
    s.update_session(&picked, 0, false).await.unwrap();
    let stopped = changed(&picked, |x| {
        x.stop(at(2)).unwrap();
    });
    s.update_session(&stopped, 1, false).await.unwrap();
    assert!(in_backlog(&stopped, 0).await && in_backlog(&stopped, 1).await);
    let g = group(44);
    let (k1, k2) = (rule_key(44, 22), rule_key(44, 443));
    let (h1, h2) = (holder(1), holder(2));
    let work = WorkItem {
        session_id: sess.id,
        entry: 0,
    };
    s.put_work(&g, work).await.unwrap();
    assert_eq!(
        s.group_lease(&g, "w1", at(0), at(60)).await.unwrap(),
        GroupGrant::Granted { stale: false }
    );
    let rid: CloudRuleId = "sgr-0a1".parse().unwrap();
    let applied = changed(&sess, |x| {
        x.entry_applying(0, at(1)).unwrap();
        x.entry_applied(0, at(1)).unwrap();
    });
    let event = AuditEvent {
        id: AuditId::from_uuid(id()),
        org_id: o.id,
        time: at(1),
        kind: AuditType::RuleApplied,
        actor_id: None,
        actor_email: None,
        ip: None,
        session_id: Some(sess.id),
        resource_id: None,
        outcome: Outcome::Success,
        message: "Opened tcp/22".into(),
    };
    let commit =
        |owner: &str, rules: Vec<RuleWrite>, sessions: Vec<SessionWrite>, release| GroupCommit {
            group: g.clone(),
            owner: owner.into(),
            release,
            rules,
            sessions,
            audit: vec![],
            done: vec![],
        };
    let write =
        |key: &RuleKey, expected, add: Vec<HolderId>, remove: Vec<HolderId>, cloud| RuleWrite {
            key: key.clone(),
            expected_count: expected,
            add,
            remove,
            cloud,
            rule_id: None,
        };
    let first = GroupCommit {
        audit: vec![event.clone()],
        done: vec![work],
        ..commit(
            "w1",
            vec![
                RuleWrite {
                    rule_id: Some(rid.clone()),
                    ..write(
                        &k1,
                        None,
                        vec![h1.clone(), h2.clone()],
                        vec![],
                        CloudState::Present,
                    )
                },
                write(&k2, None, vec![], vec![], CloudState::Unknown),
            ],
            vec![SessionWrite {
                session: applied.clone(),
                expected_version: 0,
                release_slot: false,
            }],
            false,
        )
    };

    // Not the lease's owner: nothing is written.
    assert!(matches!(
        s.commit_batch(&GroupCommit {
            owner: "w9".into(),
            ..first.clone()
        })
        .await,
        Err(CommitError::LeaseLost)
    ));
    assert_eq!(s.get_rule(&k1).await.unwrap(), None);
    assert_eq!(s.group_work(&g, 10).await.unwrap(), vec![work]);
    // A session version that moved: nothing is written.
    assert!(matches!(
        s.commit_batch(&GroupCommit {
            sessions: vec![SessionWrite {
                session: changed(&applied, |_| {}),
                expected_version: 1,
                release_slot: false,
            }],
            ..first.clone()
        })
        .await,
        Err(CommitError::Conflict)
    ));
    assert_eq!(s.get_rule(&k1).await.unwrap(), None);
    assert_eq!(s.get_session(sess.id).await.unwrap().unwrap().version, 0);

    s.commit_batch(&first).await.unwrap();
    let r1 = s.get_rule(&k1).await.unwrap().unwrap();
    assert_eq!(
        (
            r1.count(),
            r1.cloud,
            r1.cloud_rule_id.clone(),
            r1.group.clone()
        ),
        (2, CloudState::Present, Some(rid.clone()), g.clone())
    );
    assert_eq!(holders_of(s, &k1).await, vec![h1.clone(), h2.clone()]);
    assert!(s.is_holder(&k1, &h1).await.unwrap());
    assert!(!s.is_holder(&k2, &h1).await.unwrap());
    assert_eq!(
        unheld_of(s, std::slice::from_ref(&k2)).await,
        vec![(k2.clone(), 0, CloudState::Unknown)],
        "a rule recorded before its creation is unheld"
    );
    assert_eq!(s.get_session(sess.id).await.unwrap().unwrap(), applied);
    assert!(s.group_work(&g, 10).await.unwrap().is_empty());
    let audit = s
        .list_audit(
            o.id,
            &AuditQuery {
                from: None,
                to: None,
                kind: None,
                user_id: None,
                cursor: None,
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(audit.items, vec![event]);
    assert_eq!(
        s.group_lease(&g, "w2", at(1), at(61)).await.unwrap(),
        GroupGrant::Busy,
        "kept: the commit did not give it back"
    );

    // A holder count that moved since the batch read it: nothing is written.
    assert!(matches!(
        s.commit_batch(&commit(
            "w1",
            vec![
                write(&k2, Some(0), vec![h1.clone()], vec![], CloudState::Present),
                write(&k1, Some(1), vec![], vec![h1.clone()], CloudState::Present),
            ],
            vec![],
            true,
        ))
        .await,
        Err(CommitError::Conflict)
    ));
    assert_eq!(
        s.get_rule(&k2).await.unwrap().unwrap().cloud,
        CloudState::Unknown
    );
    assert_eq!(s.get_rule(&k1).await.unwrap().unwrap().count(), 2);

    // The last holders leave: the rule is unheld while it may be in the cloud, forgotten once
    // absent; the id is kept until then. The session ends and gives its slot back; the lease
    // is given back with the commit.
    let ended = changed(&applied, |x| {
        x.stop(at(2)).unwrap();
        x.entry_removed(0, at(2)).unwrap();
    });
    assert!(!ended.status().holds_slot());
    s.commit_batch(&commit(
        "w1",
        vec![
            write(
                &k1,
                Some(2),
                vec![],
                vec![h1.clone(), h2.clone()],
                CloudState::Unknown,
            ),
            write(&k2, Some(0), vec![], vec![], CloudState::Absent),
        ],
        vec![SessionWrite {
            session: ended.clone(),
            expected_version: 1,
            release_slot: true,
        }],
        true,
    ))
    .await
    .unwrap();
    assert_eq!(s.get_rule(&k2).await.unwrap(), None, "idle: forgotten");
    let r1 = s.get_rule(&k1).await.unwrap().unwrap();
    assert_eq!(
        (r1.count(), r1.cloud, r1.cloud_rule_id),
        (0, CloudState::Unknown, Some(rid))
    );
    assert!(holders_of(s, &k1).await.is_empty());
    assert_eq!(
        unheld_of(s, std::slice::from_ref(&k1)).await,
        vec![(k1.clone(), 0, CloudState::Unknown)]
    );
    assert_eq!(
        s.live_session_count(u.id).await.unwrap(),
        1,
        "the other session still holds its slot"
    );
    assert_eq!(s.get_session(sess.id).await.unwrap().unwrap(), ended);
    assert_eq!(
        s.group_lease(&g, "w2", at(3), at(63)).await.unwrap(),
        GroupGrant::Granted { stale: false },
        "given back by the commit"
    );
    s.commit_batch(&commit(
        "w2",
        vec![write(&k1, Some(0), vec![], vec![], CloudState::Absent)],
        vec![],
        true,
    ))
    .await
    .unwrap();
    assert_eq!(s.get_rule(&k1).await.unwrap(), None);
    assert!(unheld_of(s, std::slice::from_ref(&k1)).await.is_empty());

    // Larger than one DynamoDB transaction (100 items): written in parts, each rule with its
    // holders in one part, the lease given back by the last.
    let keys: Vec<RuleKey> = (1000..1003).map(|port| rule_key(44, port)).collect();
    let holders: Vec<HolderId> = (200..240).map(holder).collect();
    let items: Vec<WorkItem> = (0..30)
        .map(|entry| WorkItem {
            session_id: sess.id,
            entry,
        })
        .collect();
    for w in &items {
        s.put_work(&g, *w).await.unwrap();
    }
    assert!(matches!(
        s.group_lease(&g, "w3", at(4), at(64)).await.unwrap(),
        GroupGrant::Granted { .. }
    ));
    s.commit_batch(&GroupCommit {
        done: items,
        ..commit(
            "w3",
            keys.iter()
                .map(|k| write(k, None, holders.clone(), vec![], CloudState::Present))
                .collect(),
            vec![],
            true,
        )
    })
    .await
    .unwrap();
    for k in &keys {
        assert_eq!(s.get_rule(k).await.unwrap().unwrap().count(), 40);
        assert_eq!(s.rule_holders(k, None, 100).await.unwrap().len(), 40);
    }
    assert!(s.group_work(&g, 100).await.unwrap().is_empty());
    assert_eq!(
        s.group_lease(&g, "w4", at(5), at(65)).await.unwrap(),
        GroupGrant::Granted { stale: false }
    );
    s.group_release(&g, "w4").await.unwrap();
}

fn granted(g: LeaseGrant) -> (entryguard::domain::rule::RuleState, bool) {
    match g {
        LeaseGrant::Granted { state, stale } => (*state, stale),
        LeaseGrant::Busy => panic!("expected the lease to be granted"),
    }
}

async fn rule_leases(s: &dyn Store) {
    let at = |secs: i64| t0() + Duration::seconds(secs);
    let k = rule_key(3, 22);
    let (h1, h2) = (holder(1), holder(2));
    assert!(
        s.rule_lease(&rule_key(9, 22), "w1", at(0), at(60))
            .await
            .is_err(),
        "a lease needs a rule record"
    );
    assert_eq!(s.get_rule(&rule_key(9, 22)).await.unwrap(), None);
    s.rule_add_holder(&k, &group(3), &h1).await.unwrap();

    let (state, stale) = granted(s.rule_lease(&k, "w1", at(0), at(60)).await.unwrap());
    assert!(!stale);
    let lease = |owner: &str, until: i64| {
        Some(Lease {
            owner: owner.into(),
            until: at(until),
        })
    };
    assert_eq!(state.lease, lease("w1", 60));
    assert_eq!(state.count(), 1);
    assert_eq!(holders_of(s, &k).await, vec![h1.clone()]);
    assert_eq!(state.cloud, CloudState::Absent);
    assert_eq!(
        s.get_rule(&k).await.unwrap().unwrap().lease,
        lease("w1", 60)
    );

    assert_eq!(
        s.rule_lease(&k, "w2", at(10), at(70)).await.unwrap(),
        LeaseGrant::Busy
    );
    assert_eq!(
        s.get_rule(&k).await.unwrap().unwrap().lease,
        lease("w1", 60)
    );
    let (state, stale) = granted(s.rule_lease(&k, "w1", at(20), at(80)).await.unwrap());
    assert!(!stale, "renewing one's own lease is not stale");
    assert_eq!(state.lease, lease("w1", 80));
    // Expired at exactly its end: free, and stale because someone else had it.
    let (state, stale) = granted(s.rule_lease(&k, "w2", at(80), at(140)).await.unwrap());
    assert!(stale);
    assert_eq!(state.lease, lease("w2", 140));

    s.rule_release_lease(&k, "w1", CloudState::Present, None)
        .await
        .unwrap();
    let now = s.get_rule(&k).await.unwrap().unwrap();
    assert_eq!(
        (now.lease.clone(), now.cloud),
        (lease("w2", 140), CloudState::Absent),
        "only the owner releases"
    );

    let with_two = s.rule_add_holder(&k, &group(3), &h2).await.unwrap();
    assert_eq!(
        with_two.lease,
        lease("w2", 140),
        "adding a holder keeps the lease"
    );
    let id: CloudRuleId = "sgr-0123456789abcdef0".parse().unwrap();
    s.rule_release_lease(&k, "w2", CloudState::Present, Some(&id))
        .await
        .unwrap();
    let now = s.get_rule(&k).await.unwrap().unwrap();
    assert_eq!(
        (now.lease.clone(), now.cloud, now.count()),
        (None, CloudState::Present, 2)
    );
    assert_eq!(
        now.cloud_rule_id,
        Some(id.clone()),
        "the cloud's id is kept"
    );

    s.rule_remove_holder(&k, &h1).await.unwrap();
    let last = s.rule_remove_holder(&k, &h2).await.unwrap().unwrap();
    assert_eq!((last.count(), last.cloud), (0, CloudState::Present));
    assert!(
        s.get_rule(&k).await.unwrap().is_some(),
        "a rule still in the cloud is remembered"
    );
    let (state, stale) = granted(s.rule_lease(&k, "w3", at(200), at(260)).await.unwrap());
    assert!(!stale);
    assert_eq!((state.count(), state.cloud), (0, CloudState::Present));
    s.rule_release_lease(&k, "w3", CloudState::Unknown, None)
        .await
        .unwrap();
    let now = s.get_rule(&k).await.unwrap().unwrap();
    assert_eq!(now.cloud, CloudState::Unknown);
    assert_eq!(
        now.cloud_rule_id,
        Some(id.clone()),
        "a release without an id keeps the one known"
    );
    granted(s.rule_lease(&k, "w4", at(300), at(360)).await.unwrap());
    s.rule_release_lease(&k, "w4", CloudState::Absent, None)
        .await
        .unwrap();
    assert_eq!(
        s.get_rule(&k).await.unwrap(),
        None,
        "idle once revoked and unleased"
    );
    s.rule_release_lease(&k, "w4", CloudState::Present, None)
        .await
        .unwrap();
    assert_eq!(
        s.get_rule(&k).await.unwrap(),
        None,
        "releasing a forgotten rule creates nothing"
    );
}

async fn observed_rules(s: &dyn Store) {
    let k = rule_key(5, 22);
    let seen = s.rule_observed(&k, &group(5)).await.unwrap();
    assert_eq!(
        (seen.count(), seen.cloud, seen.lease.clone()),
        (0, CloudState::Unknown, None),
        "a rule seen in the cloud with no record is recorded as possibly there"
    );
    assert_eq!(seen.group, group(5));
    assert_eq!(s.get_rule(&k).await.unwrap(), Some(seen.clone()));
    assert_eq!(s.rule_observed(&k, &group(6)).await.unwrap(), seen);
    // It is an ordinary record from then on: holders come and go, the lease works.
    let held = s.rule_add_holder(&k, &group(5), &holder(1)).await.unwrap();
    assert_eq!((held.count(), held.cloud), (1, CloudState::Unknown));
    assert_eq!(
        s.rule_observed(&k, &group(5)).await.unwrap(),
        held,
        "an existing record is left as it is"
    );
    s.rule_remove_holder(&k, &holder(1)).await.unwrap();
    granted(
        s.rule_lease(&k, "w1", t0(), t0() + Duration::seconds(60))
            .await
            .unwrap(),
    );
    s.rule_release_lease(&k, "w1", CloudState::Absent, None)
        .await
        .unwrap();
    assert_eq!(s.get_rule(&k).await.unwrap(), None, "idle once revoked");
}

async fn unheld_index(s: &dyn Store) {
    let (k, k2) = (rule_key(7, 22), rule_key(7, 443));
    let ks = [k.clone(), k2.clone()];
    let unheld = || unheld_of(s, &ks);
    assert!(unheld().await.is_empty());
    s.rule_add_holder(&k, &group(7), &holder(1)).await.unwrap();
    s.rule_add_holder(&k, &group(7), &holder(2)).await.unwrap();
    assert!(unheld().await.is_empty(), "a held rule is not in the index");
    granted(
        s.rule_lease(&k, "w1", t0(), t0() + Duration::seconds(60))
            .await
            .unwrap(),
    );
    s.rule_release_lease(&k, "w1", CloudState::Present, None)
        .await
        .unwrap();
    s.rule_remove_holder(&k, &holder(1)).await.unwrap();
    assert!(unheld().await.is_empty(), "one holder is left");
    s.rule_remove_holder(&k, &holder(2)).await.unwrap();
    assert_eq!(
        unheld().await,
        vec![(k.clone(), 0, CloudState::Present)],
        "the last holder gone, the rule still in the cloud"
    );
    s.rule_remove_holder(&k, &holder(2)).await.unwrap();
    assert_eq!(
        unheld().await.len(),
        1,
        "a repeated removal changes nothing"
    );
    s.rule_add_holder(&k, &group(7), &holder(3)).await.unwrap();
    assert!(unheld().await.is_empty(), "held again");
    s.rule_remove_holder(&k, &holder(3)).await.unwrap();
    assert_eq!(unheld().await.len(), 1);
    granted(
        s.rule_lease(&k, "w2", t0(), t0() + Duration::seconds(60))
            .await
            .unwrap(),
    );
    s.rule_release_lease(&k, "w2", CloudState::Absent, None)
        .await
        .unwrap();
    assert!(unheld().await.is_empty(), "revoked and forgotten");

    s.rule_observed(&k2, &group(7)).await.unwrap();
    assert_eq!(
        unheld().await,
        vec![(k2.clone(), 0, CloudState::Unknown)],
        "a rule seen in the cloud without a record is unheld"
    );
    s.rule_add_holder(&k2, &group(7), &holder(4)).await.unwrap();
    s.rule_observed(&k2, &group(7)).await.unwrap();
    assert!(
        unheld().await.is_empty(),
        "observing a held rule keeps it held"
    );
    s.rule_remove_holder(&k2, &holder(4)).await.unwrap();
    granted(
        s.rule_lease(&k2, "w3", t0(), t0() + Duration::seconds(60))
            .await
            .unwrap(),
    );
    s.rule_release_lease(&k2, "w3", CloudState::Absent, None)
        .await
        .unwrap();
    assert!(unheld().await.is_empty());
    assert_eq!(s.get_rule(&k2).await.unwrap(), None);
}

/// The unheld index's records among `keys`: key, holder count, cloud state.
async fn unheld_of(s: &dyn Store, keys: &[RuleKey]) -> Vec<(RuleKey, usize, CloudState)> {
    s.unheld_rules()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.expect("every record reads"))
        .filter(|r| keys.contains(&r.key))
        .map(|r| (r.key.clone(), r.count(), r.cloud))
        .collect()
}

async fn claimed_runs(s: &dyn Store) {
    let at = |secs: i64| t0() + Duration::seconds(secs);
    let every = Duration::seconds(300);
    assert!(s.claim_run("reconcile", at(0), every).await.unwrap());
    assert!(!s.claim_run("reconcile", at(0), every).await.unwrap());
    assert!(!s.claim_run("reconcile", at(299), every).await.unwrap());
    assert!(
        s.claim_run("other", at(1), every).await.unwrap(),
        "jobs are independent"
    );
    assert!(s.claim_run("reconcile", at(300), every).await.unwrap());
    assert!(!s.claim_run("reconcile", at(301), every).await.unwrap());
    let claims =
        futures::future::join_all((0..8).map(|_| s.claim_run("reconcile", at(900), every))).await;
    assert_eq!(
        claims.into_iter().filter(|c| *c.as_ref().unwrap()).count(),
        1,
        "one of several concurrent callers wins"
    );
}

async fn rate_counters(store: Arc<dyn Store>) {
    let s = &*store;
    let limit = RateLimit::per_minute(3);
    let now = t0();
    let c = limit.counter("contract/user", now);
    assert_eq!(s.event_count(&c).await.unwrap(), 0, "no counter yet");
    for expected in 1..=3 {
        assert_eq!(s.count_event(&c, now).await.unwrap(), Some(expected));
    }
    assert_eq!(
        s.count_event(&c, now).await.unwrap(),
        None,
        "over the limit"
    );
    assert_eq!(
        s.event_count(&c).await.unwrap(),
        3,
        "a refused event is not counted"
    );
    let other = limit.counter("contract/other", now);
    assert_eq!(
        s.count_event(&other, now).await.unwrap(),
        Some(1),
        "subjects are independent"
    );
    let later = now + Duration::seconds(60);
    let next = limit.counter("contract/user", later);
    assert_eq!(
        s.count_event(&next, later).await.unwrap(),
        Some(1),
        "the next window starts again"
    );

    // Concurrent callers never count past the limit: exactly `max` of them get through.
    let racing = RateLimit::per_minute(4).counter("contract/race", now);
    let tasks: Vec<_> = (0..12)
        .map(|_| {
            let store = store.clone();
            let c = racing.clone();
            tokio::spawn(async move { store.count_event(&c, now).await })
        })
        .collect();
    let mut counted = BTreeSet::new();
    let mut refused = 0;
    for task in tasks {
        match task.await.expect("the count task finished").unwrap() {
            Some(n) => assert!(counted.insert(n), "count {n} given twice"),
            None => refused += 1,
        }
    }
    assert_eq!(counted, (1..=4).collect(), "every count given exactly once");
    assert_eq!(refused, 8);
    assert_eq!(s.event_count(&racing).await.unwrap(), 4);
}

fn event(org: OrgId, time: Timestamp, kind: AuditType, actor: Option<UserId>) -> AuditEvent {
    AuditEvent {
        id: AuditId::from_uuid(id()),
        org_id: org,
        time,
        kind,
        actor_id: actor,
        actor_email: actor.map(|a| format!("{a}@example.com")),
        ip: Some("203.0.113.7".into()),
        session_id: Some(SessionId::from_uuid(id())),
        resource_id: None,
        outcome: Outcome::Success,
        message: format!("{} at {time}", kind.as_str()),
    }
}

async fn audit_log(s: &dyn Store) {
    let (a, b) = (OrgId::from_uuid(id()), OrgId::from_uuid(id()));
    let (u1, u2) = (UserId::from_uuid(id()), UserId::from_uuid(id()));
    let m = |n: i64| t0() + Duration::minutes(n);
    let e = [
        event(a, m(0), AuditType::SessionStarted, Some(u1)),
        event(a, m(1), AuditType::RuleApplied, None),
        event(a, m(2), AuditType::SessionStopped, Some(u1)),
        event(a, m(2), AuditType::SessionStarted, Some(u2)),
        event(a, m(3), AuditType::Login, Some(u2)),
        event(a, m(4), AuditType::SessionStarted, Some(u1)),
    ];
    let other = event(b, m(1), AuditType::SessionStarted, Some(u1));
    for i in [3, 0, 5, 1, 4, 2] {
        s.append_audit(&e[i]).await.unwrap();
    }
    s.append_audit(&other).await.unwrap();

    // Newest first; events of the same instant in a fixed order.
    let mut newest_first: Vec<AuditEvent> = e.to_vec();
    newest_first.sort_by_key(|x| (time_key(x.time), x.id.to_string()));
    newest_first.reverse();
    let expect = |pred: &dyn Fn(&AuditEvent) -> bool| -> Vec<AuditEvent> {
        newest_first.iter().filter(|x| pred(x)).cloned().collect()
    };
    let q = |from, to, kind, user_id| AuditQuery {
        from,
        to,
        kind,
        user_id,
        cursor: None,
        limit: 100,
    };
    let page = s.list_audit(a, &q(None, None, None, None)).await.unwrap();
    assert_eq!(page.items, newest_first);
    assert_eq!(page.next_cursor, None);
    assert_eq!(
        s.list_audit(b, &q(None, None, None, None))
            .await
            .unwrap()
            .items,
        vec![other]
    );
    assert!(s
        .list_audit(OrgId::from_uuid(id()), &q(None, None, None, None))
        .await
        .unwrap()
        .items
        .is_empty());

    let started = s
        .list_audit(a, &q(None, None, Some(AuditType::SessionStarted), None))
        .await
        .unwrap();
    assert_eq!(
        started.items,
        expect(&|x| x.kind == AuditType::SessionStarted)
    );
    assert_eq!(started.items.len(), 3);
    let by_u1 = s
        .list_audit(a, &q(None, None, None, Some(u1)))
        .await
        .unwrap();
    assert_eq!(by_u1.items, expect(&|x| x.actor_id == Some(u1)));
    let both = s
        .list_audit(a, &q(None, None, Some(AuditType::SessionStarted), Some(u2)))
        .await
        .unwrap();
    assert_eq!(both.items, vec![e[3].clone()]);
    let window = s
        .list_audit(a, &q(Some(m(1)), Some(m(2)), None, None))
        .await
        .unwrap();
    assert_eq!(
        window.items,
        expect(&|x| x.time >= m(1) && x.time <= m(2)),
        "bounds are inclusive"
    );
    assert_eq!(window.items.len(), 3);
    assert_eq!(
        s.list_audit(a, &q(Some(m(2)), None, None, None))
            .await
            .unwrap()
            .items,
        expect(&|x| x.time >= m(2))
    );
    assert_eq!(
        s.list_audit(a, &q(None, Some(m(1)), None, None))
            .await
            .unwrap()
            .items,
        expect(&|x| x.time <= m(1))
    );
    assert!(s
        .list_audit(a, &q(Some(m(3)), Some(m(2)), None, None))
        .await
        .unwrap()
        .items
        .is_empty());

    // Pages of two follow each other without gaps or repeats.
    let mut query = AuditQuery {
        limit: 2,
        ..Default::default()
    };
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let page = s.list_audit(a, &query).await.unwrap();
        assert!(page.items.len() <= 2);
        pages += 1;
        seen.extend(page.items);
        match page.next_cursor {
            Some(cursor) => query.cursor = Some(cursor),
            None => break,
        }
        assert!(pages < 10, "pagination does not end");
    }
    assert_eq!(seen, newest_first);

    let mut query = AuditQuery {
        kind: Some(AuditType::SessionStarted),
        limit: 2,
        ..Default::default()
    };
    let first = s.list_audit(a, &query).await.unwrap();
    assert_eq!(
        first.items,
        expect(&|x| x.kind == AuditType::SessionStarted)[..2].to_vec()
    );
    query.cursor = Some(first.next_cursor.expect("a full page has a cursor"));
    let second = s.list_audit(a, &query).await.unwrap();
    assert_eq!(
        second.items,
        expect(&|x| x.kind == AuditType::SessionStarted)[2..].to_vec()
    );
    assert_eq!(second.next_cursor, None);
}

/// Credential records as every store held them before a credential's access was one enum
/// (four optional fields; an external id the API once took beside keys; no `sealedSecret` or
/// `statusMessage` at all in the oldest) come back as written and read as credentials.
async fn credential_records_from_before_the_access_enum(s: &dyn Store) {
    let o = OrgId::from_uuid(id());
    let record = |id: Uuid, fields: serde_json::Value| {
        let mut v = serde_json::json!({
            "id": id, "orgId": o, "name": "old", "provider": "aws", "region": "eu-west-1",
            "accessKeyId": null, "roleArn": null, "externalId": null, "status": "VALID",
            "accountId": "123456789012", "checkedAt": t0(), "createdAt": t0(),
        });
        v.as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        v
    };
    let (keys, role, simulated) = (id(), id(), id());
    let written = [
        record(
            keys,
            serde_json::json!({
                "accessKeyId": "AKIAIOSFODNN7EXAMPLE", "externalId": "no-effect",
                "sealedSecret": {"keyId": "k", "nonce": "bm9uY2U=", "ciphertext": "Yw=="},
                "statusMessage": null,
            }),
        ),
        record(
            role,
            serde_json::json!({
                "roleArn": "arn:aws:iam::123456789012:role/EntryGuard",
                "externalId": "entryguard-old", "sealedSecret": null,
            }),
        ),
        record(simulated, serde_json::json!({"provider": "simulated"})),
    ];
    for (doc_id, doc) in [keys, role, simulated].into_iter().zip(&written) {
        s.put_doc(DocKind::Credential, o, doc_id, doc.clone())
            .await
            .unwrap();
        let back = s.get_doc(DocKind::Credential, o, doc_id).await.unwrap();
        assert_eq!(back.as_ref(), Some(doc), "written as it was");
    }
    let read = |doc_id: Uuid| async move {
        let doc = s.get_doc(DocKind::Credential, o, doc_id).await.unwrap();
        serde_json::from_value::<Credential>(doc.unwrap()).expect("an old record reads")
    };
    let k = read(keys).await;
    assert!(
        matches!(&k.access, CredentialAccess::AccessKeys { access_key_id, sealed_secret }
            if access_key_id.as_str() == "AKIAIOSFODNN7EXAMPLE" && sealed_secret.key_id == "k"),
        "{k:?}"
    );
    assert_eq!(
        k.account_id.map(|a| a.to_string()).as_deref(),
        Some("123456789012")
    );
    let r = read(role).await;
    assert!(
        matches!(&r.access, CredentialAccess::AssumeRole { role_arn, external_id: Some(e) }
            if role_arn.as_str() == "arn:aws:iam::123456789012:role/EntryGuard"
                && e.as_str() == "entryguard-old"),
        "{r:?}"
    );
    assert_eq!(read(simulated).await.access, CredentialAccess::Simulated);
    let listed = s.list_docs(DocKind::Credential, o).await.unwrap();
    assert_eq!(listed.len(), 3);
    for doc in listed {
        serde_json::from_value::<Credential>(doc).expect("every listed old record reads");
    }
}
