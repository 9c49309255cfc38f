//! The SQS adapter against moto, and the rule-worker and sweeper handlers fed the events/
//! fixtures while running on the AWS adapters.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{Duration, TimeZone, Utc};

use entryguard::app::{App, Identity};
use entryguard::domain::ids::{OrgId, ResourceId, RoleId, SessionId, UserId};
use entryguard::domain::model::{Organization, Resource, Role, User};
use entryguard::domain::net::PortRange;
use entryguard::domain::session::SessionStatus;
use entryguard::domain::tier::{Hours, Tier};
use entryguard::embedded::{ManualClock, SeededIds};
use entryguard::ports::queue::{Redelivery, Task, TaskQueue};
use entryguard_aws::schema::MAX_RECEIVE_COUNT;
use entryguard_aws::SqsQueue;
use entryguard_tests::moto::{AwsFixture, REGION};

fn task(entry: u32) -> Task {
    Task::ReconcileEntry {
        session_id: SessionId::from_uuid(uuid::Uuid::from_u128(7)),
        entry,
    }
}

async fn receive_all(queue: &SqsQueue, expected: usize) -> Vec<entryguard_aws::sqs::Received> {
    let mut got = Vec::new();
    for _ in 0..20 {
        got.extend(
            queue
                .receive(10, StdDuration::from_millis(500))
                .await
                .unwrap(),
        );
        if got.len() >= expected {
            break;
        }
    }
    got
}

fn fixture(name: &str) -> serde_json::Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../events/").to_owned() + name;
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture is readable"))
        .expect("fixture is JSON")
}

#[tokio::test]
async fn tasks_go_out_in_batches_and_retries_come_back() {
    let fx = AwsFixture::start("eg-queue").await;
    let queue = fx.backend.queue.clone();
    let tasks: Vec<Task> = (0..23).map(task).collect();
    queue.enqueue(tasks.clone()).await.unwrap();
    queue.enqueue(Vec::new()).await.unwrap();
    let got = receive_all(&queue, 23).await;
    let bodies: BTreeSet<u32> = got
        .iter()
        .map(|m| match serde_json::from_str::<Task>(&m.body).unwrap() {
            Task::ReconcileEntry { entry, .. } => entry,
            other => panic!("not sent: {other:?}"),
        })
        .collect();
    assert_eq!(bodies, (0..23).collect());
    assert_eq!(got.len(), 23);
    assert!(got.iter().all(|m| m.receive_count == 1));
    assert_eq!(fx.queue_depth().await, (0, 23));

    // A retry after zero seconds is visible at once; a later one only after its delay.
    queue
        .retry_after(&got[0].receipt, StdDuration::ZERO)
        .await
        .unwrap();
    let again = receive_all(&queue, 1).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].message_id, got[0].message_id);
    assert_eq!(again[0].receive_count, 2);
    queue
        .retry_after(&again[0].receipt, StdDuration::from_secs(2))
        .await
        .unwrap();
    assert!(queue
        .receive(10, StdDuration::ZERO)
        .await
        .unwrap()
        .is_empty());
    tokio::time::sleep(StdDuration::from_millis(2500)).await;
    let later = receive_all(&queue, 1).await;
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].receive_count, 3);

    queue.delete(&later[0].receipt).await.unwrap();
    for m in &got[1..] {
        queue.delete(&m.receipt).await.unwrap();
    }
    assert_eq!(fx.queue_depth().await, (0, 0));
}

#[tokio::test]
async fn poison_messages_move_to_the_dead_letter_queue() {
    let fx = AwsFixture::start("eg-dlq").await;
    let sqs = entryguard_aws::sdk::sqs::Client::new(&fx.sdk);
    let queue = fx.backend.queue.clone();
    sqs.send_message()
        .queue_url(queue.url())
        .message_body("this is not a task")
        .send()
        .await
        .unwrap();
    // Every failed delivery counts; after the policy's count the next receive finds the
    // message gone to the dead-letter queue.
    for delivery in 1..=MAX_RECEIVE_COUNT {
        let got = queue
            .receive(10, StdDuration::from_millis(500))
            .await
            .unwrap();
        assert_eq!(got.len(), 1, "delivery {delivery}");
        assert_eq!(got[0].receive_count, delivery);
        queue
            .retry_after(&got[0].receipt, StdDuration::ZERO)
            .await
            .unwrap();
    }
    tokio::time::sleep(StdDuration::from_millis(100)).await;
    assert!(queue
        .receive(10, StdDuration::from_millis(500))
        .await
        .unwrap()
        .is_empty());
    let dlq_url = sqs
        .get_queue_url()
        .queue_name(&fx.names.dead_letter_queue)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let dead = SqsQueue::new(sqs.clone(), dlq_url)
        .receive(10, StdDuration::from_millis(500))
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body, "this is not a task");
}

struct Setup {
    fx: AwsFixture,
    app: App,
    clock: Arc<ManualClock>,
    dev: Identity,
}

/// An organization whose member can open two security groups.
async fn setup(prefix: &str) -> (Setup, Vec<entryguard::domain::net::SecurityGroupId>) {
    let fx = AwsFixture::start(prefix).await;
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap(),
    ));
    let app = fx
        .backend
        .app(clock.clone(), Arc::new(SeededIds::new(9)), None);
    let org = Organization::new(
        OrgId::from_uuid(app.ids.uuid()),
        "Handlers".parse().unwrap(),
        Tier::Team,
        app.now(),
    );
    app.store.put_org(&org).await.unwrap();
    let credential = fx.credential(org.id).await;
    let user = User {
        id: UserId::from_uuid(app.ids.uuid()),
        org_id: org.id,
        email: "dev@example.com".parse().unwrap(),
        is_admin: false,
        resource_ids: BTreeSet::new(),
        created_at: app.now(),
    };
    app.store.create_user(&user).await.unwrap();
    let mut groups = Vec::new();
    let mut resources = BTreeSet::new();
    for name in ["api", "db"] {
        let sg = fx.security_group(name).await;
        let r = Resource {
            id: ResourceId::from_uuid(app.ids.uuid()),
            org_id: org.id,
            name: name.parse().unwrap(),
            credential_id: credential.id,
            security_group_id: sg.clone(),
            region: REGION.parse().unwrap(),
            ports: vec![PortRange::tcp(22)],
            created_at: app.now(),
        };
        app.put_doc(&r).await.unwrap();
        resources.insert(r.id);
        groups.push(sg);
    }
    app.put_doc(&Role {
        id: RoleId::from_uuid(app.ids.uuid()),
        org_id: org.id,
        name: "devs".parse().unwrap(),
        max_session_duration_hours: None,
        resource_ids: resources,
        user_ids: [user.id].into(),
        created_at: app.now(),
    })
    .await
    .unwrap();
    let dev = Identity {
        user,
        org,
        ip: None,
    };
    (
        Setup {
            fx,
            app,
            clock,
            dev,
        },
        groups,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rule_worker_handler_applies_the_fixture_batch() {
    let (s, groups) = setup("eg-handler-worker").await;
    let session = s
        .app
        .start_session(
            &s.dev,
            "203.0.113.7".parse().unwrap(),
            Hours::new(2).unwrap(),
        )
        .await
        .unwrap();
    // The fixture names a session of its own; point its tasks at the one just started.
    let mut event = fixture("sqs-reconcile-batch.json");
    for record in event["Records"].as_array_mut().unwrap() {
        let body = record["body"].as_str().unwrap().replace(
            "6f1c2b9e-3a47-4d8e-9b2f-1c5e7a9d3b21",
            &session.id.to_string(),
        );
        record["body"] = body.into();
    }
    let mut poison = event["Records"][0].clone();
    poison["messageId"] = "poison-1".into();
    poison["body"] = "{\"type\":\"somethingElse\"}".into();
    event["Records"].as_array_mut().unwrap().push(poison);

    let response = entryguard_rule_worker::handle_sqs_event(
        &s.app,
        &*s.fx.backend.queue,
        serde_json::from_value(event).expect("the fixture is an SQS event"),
    )
    .await;
    let failures: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    assert_eq!(failures, vec!["poison-1".to_owned()]);
    let stored = s.app.store.get_session(session.id).await.unwrap().unwrap();
    assert_eq!(stored.status(), SessionStatus::Active);
    for sg in &groups {
        let rules = s.fx.rules(sg).await;
        assert_eq!(rules.len(), 1);
        assert!(rules[0].is_managed());
    }
}

#[tokio::test]
async fn delayed_tasks_stay_hidden_for_their_delay() {
    let fx = AwsFixture::start("eg-queue-delay").await;
    let queue = &fx.backend.queue;
    let check = Task::CheckSession {
        session_id: SessionId::from_uuid(uuid::Uuid::from_u128(5)),
        at: Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap(),
    };
    // More than one batch, each message with its own delay (a fraction rounds up).
    let mut tasks: Vec<(Task, StdDuration)> = (0..12)
        .map(|n| (task(n), StdDuration::from_millis(1500)))
        .collect();
    tasks.push((check.clone(), StdDuration::ZERO));
    queue.enqueue_delayed(tasks).await.unwrap();
    let now = queue.receive(10, StdDuration::ZERO).await.unwrap();
    let bodies: Vec<Task> = now
        .iter()
        .map(|m| serde_json::from_str(&m.body).unwrap())
        .collect();
    assert_eq!(
        bodies,
        vec![check],
        "only the undelayed task is visible at once"
    );
    tokio::time::sleep(StdDuration::from_millis(2100)).await;
    assert_eq!(receive_all(queue, 12).await.len(), 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweeper_handler_expires_sessions_on_the_schedule_fixture() {
    let (s, groups) = setup("eg-handler-sweep").await;
    let session = s
        .app
        .start_session(
            &s.dev,
            "203.0.113.8".parse().unwrap(),
            Hours::new(1).unwrap(),
        )
        .await
        .unwrap();
    s.fx.settle(&s.app, StdDuration::from_secs(60)).await;
    let event = fixture("schedule-sweep.json");
    let options = entryguard_expiry_sweeper::options_for(StdDuration::from_secs(55));
    let summary = entryguard_expiry_sweeper::handle_schedule(
        &s.app,
        serde_json::from_value(event.clone()).expect("the fixture is an EventBridge event"),
        options,
    )
    .await
    .unwrap();
    assert_eq!(summary.expired, 0);
    s.clock.advance(Duration::hours(1));
    let summary = entryguard_expiry_sweeper::handle_schedule(
        &s.app,
        serde_json::from_value(event).unwrap(),
        options,
    )
    .await
    .unwrap();
    assert_eq!((summary.due, summary.expired), (1, 1));
    s.fx.settle(&s.app, StdDuration::from_secs(60)).await;
    let stored = s.app.store.get_session(session.id).await.unwrap().unwrap();
    assert_eq!(stored.status(), SessionStatus::Expired);
    for sg in &groups {
        assert!(s.fx.rules(sg).await.is_empty());
    }
}
