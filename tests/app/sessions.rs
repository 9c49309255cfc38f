//! Session scenarios through the use cases on the embedded backend: every lifecycle transition,
//! the tier and role limits, reference counting, retries and failures, concurrency.

use std::time::Duration as StdDuration;

use chrono::Duration;
use entryguard::app::rate_limit::{cloud_budget_counter, CLOUD_CHANGES_PER_MINUTE};
use entryguard::app::sessions::{SessionActionError, StartSessionError};
use entryguard::app::worker::{RETRY_DELAYS, RETRY_JITTER};
use entryguard::domain::audit::{AuditQuery, AuditType};
use entryguard::domain::session::{EntryStatus, SessionStatus};
use entryguard::domain::tier::Tier;
use entryguard::embedded::firewall::{Fault, FaultKind, Operation};
use entryguard::ports::Store;
use entryguard_tests::harness::{hours, ip, sg, Harness};

fn statuses(s: &entryguard::domain::session::Session) -> Vec<EntryStatus> {
    s.entries.iter().map(|e| e.status).collect()
}

#[tokio::test]
async fn start_applies_every_resource_then_stop_cancels_and_restores_groups() {
    let h = Harness::new(1);
    let f = h.org(Tier::Team).await;
    let dev = h.member(&f, "dev").await;
    let a = h.resource(&f, 1, &[22], true).await;
    let b = h.resource(&f, 2, &[5432, 443], true).await;
    h.role(&f, &[&dev], &[&a, &b], None).await;
    // A rule someone made by hand must survive everything EntryGuard does.
    h.sim
        .authorize_ingress(
            &entryguard_tests::harness::region(),
            &sg(1),
            &entryguard::domain::rule::IngressRule {
                ports: entryguard::domain::net::PortRange::tcp(80),
                cidr: "10.0.0.0/8".parse().unwrap(),
            },
            "hand-made",
        )
        .await
        .unwrap();
    let before = (h.rules(1), h.rules(2));

    let s = h
        .app
        .start_session(&dev, ip("203.0.113.7"), hours(2))
        .await
        .unwrap();
    assert_eq!(s.status(), SessionStatus::Pending);
    assert_eq!(s.expires_at - s.created_at, Duration::hours(2));
    h.drain().await;
    let s = h.session(s.id).await;
    assert_eq!(s.status(), SessionStatus::Active);
    assert_eq!(statuses(&s), vec![EntryStatus::Applied; 2]);
    assert_eq!(h.rules(1).len(), 2);
    assert_eq!(h.rules(2).len(), 2);
    assert!(h
        .rules(2)
        .iter()
        .all(|r| r.cidr.to_string() == "203.0.113.7/32"));

    let stopped = h.app.stop_session(&dev, s.id).await.unwrap();
    assert_eq!(stopped.status(), SessionStatus::Expiring);
    h.drain().await;
    let s = h.session(s.id).await;
    assert_eq!(s.status(), SessionStatus::Cancelled);
    assert_eq!(statuses(&s), vec![EntryStatus::Removed; 2]);
    assert!(s.ended_at.is_some());
    assert_eq!((h.rules(1), h.rules(2)), before);
    assert_eq!(h.store.live_session_count(dev.user.id).await.unwrap(), 0);
    assert!(h.store.list_rules().await.unwrap().is_empty());
}

#[tokio::test]
async fn sweeper_expires_due_sessions_only() {
    let h = Harness::new(2);
    let (_, dev) = h.member_with_ssh_on_group_1(Tier::Team).await;
    let short = h
        .app
        .start_session(&dev, ip("203.0.113.7"), hours(1))
        .await
        .unwrap();
    let long = h
        .app
        .start_session(&dev, ip("203.0.113.8"), hours(4))
        .await
        .unwrap();
    h.drain().await;
    h.advance(Duration::minutes(59));
    assert_eq!(h.app.sweep().await.unwrap().expired, 0);
    h.advance(Duration::minutes(1));
    let report = h.app.sweep().await.unwrap();
    assert_eq!((report.due, report.expired), (1, 1));
    assert_eq!(h.session(short.id).await.status(), SessionStatus::Expiring);
    h.drain().await;
    assert_eq!(h.session(short.id).await.status(), SessionStatus::Expired);
    assert_eq!(h.session(long.id).await.status(), SessionStatus::Active);
    assert_eq!(h.rules(1).len(), 1);
    // A second sweeper run changes nothing.
    assert_eq!(h.app.sweep().await.unwrap().expired, 0);
}

#[tokio::test]
async fn stopping_a_pending_session_before_the_worker_runs_cancels_at_once() {
    let h = Harness::new(3);
    let (_, dev) = h.member_with_ssh_on_group_1(Tier::Team).await;
    let s = h
        .app
        .start_session(&dev, ip("203.0.113.7"), hours(2))
        .await
        .unwrap();
    let stopped = h.app.stop_session(&dev, s.id).await.unwrap();
    assert_eq!(stopped.status(), SessionStatus::Cancelled);
    h.drain().await;
    assert!(h.rules(1).is_empty());
    assert_eq!(h.session(s.id).await.status(), SessionStatus::Cancelled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_a_pending_session_undoes_rules_applied_after_the_stop() {
    let h = Harness::new(4);
    let (_, dev) = h.member_with_ssh_on_group_1(Tier::Team).await;
    h.sim.set_latency(StdDuration::from_millis(500));
    let s = h
        .app
        .start_session(&dev, ip("203.0.113.7"), hours(2))
        .await
        .unwrap();
    let app = h.app.clone();
    let queue = h.queue.clone();
    let worker = tokio::spawn(async move { entryguard_local::drain_once(&app, &queue).await });
    // Wait until the worker has picked the entry up and is inside the cloud call.
    for _ in 0..200 {
        if h.session(s.id).await.entries[0].status == EntryStatus::Applying {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(5)).await;
    }
    assert_eq!(
        h.session(s.id).await.entries[0].status,
        EntryStatus::Applying
    );
    let stopped = h.app.stop_session(&dev, s.id).await.unwrap();
    assert_eq!(stopped.status(), SessionStatus::Expiring);
    worker.await.unwrap();
    h.sim.set_latency(StdDuration::ZERO);
    h.settle().await;
    let s = h.session(s.id).await;
    assert_eq!(s.status(), SessionStatus::Cancelled);
    assert_eq!(statuses(&s), vec![EntryStatus::Removed]);
    assert!(
        h.rules(1).is_empty(),
        "the rule applied after the stop was undone"
    );
}

#[tokio::test]
async fn two_sessions_from_one_ip_share_the_rule_until_the_last_ends() {
    let h = Harness::new(5);
    let (_, dev) = h.member_with_ssh_on_group_1(Tier::Team).await;
    let one = h
        .app
        .start_session(&dev, ip("203.0.113.7"), hours(2))
        .await
        .unwrap();
    let two = h
        .app
        .start_session(&dev, ip("203.0.113.7"), hours(4))
        .await
        .unwrap();
    h.drain().await;
    assert_eq!(h.rules(1).len(), 1);
    let key = &h.session(one.id).await.entries[0].rules()[0];
    assert_eq!(h.store.get_rule(key).await.unwrap().unwrap().count(), 2);

    h.app.stop_session(&dev, one.id).await.unwrap();
    h.drain().await;
    assert_eq!(h.session(one.id).await.status(), SessionStatus::Cancelled);
    assert_eq!(
        h.rules(1).len(),
        1,
        "the other session still needs the rule"
    );
    assert_eq!(h.session(two.id).await.status(), SessionStatus::Active);
    assert_eq!(h.store.get_rule(key).await.unwrap().unwrap().count(), 1);

    h.app.stop_session(&dev, two.id).await.unwrap();
    h.drain().await;
    assert!(h.rules(1).is_empty());
    assert!(h.store.get_rule(key).await.unwrap().is_none());
}

#[tokio::test]
async fn one_good_and_one_missing_group_is_partial_with_a_readable_error() {
    let h = Harness::new(6);
    let f = h.org(Tier::Team).await;
    let dev = h.member(&f, "dev").await;
    let good = h.resource(&f, 1, &[22], true).await;
    let gone = h.resource(&f, 2, &[22], false).await;
    h.role(&f, &[&dev], &[&good, &gone], None).await;
    let s = h
        .app
        .start_session(&dev, ip("203.0.113.7"), hours(2))
        .await
        .unwrap();
    h.drain().await;
    let s = h.session(s.id).await;
    assert_eq!(s.status(), SessionStatus::Partial);
    let failed = s
        .entries
        .iter()
        .find(|e| e.status == EntryStatus::Failed)
        .unwrap();
    let error = failed.error.as_deref().unwrap();
    assert!(error.contains("was not found"), "{error}");
    assert!(error.contains(&sg(2).to_string()), "{error}");
    // A partial session can be extended and stopped.
    h.app.extend_session(&dev, s.id, hours(2)).await.unwrap();
    h.app.stop_session(&dev, s.id).await.unwrap();
    h.drain().await;
    let s = h.session(s.id).await;
    assert_eq!(s.status(), SessionStatus::Cancelled);
    assert!(h.rules(1).is_empty());
}

#[tokio::test]
async fn all_failed_is_failed_and_frees_the_slot() {
    let h = Harness::new(7);
    let f = h.org(Tier::Free).await;
    let dev = h.member(&f, "dev").await;
    let gone = h.resource(&f, 2, &[22], false).await;
    h.role(&f, &[&dev], &[&gone], None).await;
    let s = h
        .app
        .start_session(&dev, ip("203.0.113.7"), hours(2))
        .await
        .unwrap();
    h.drain().await;
    let s = h.session(s.id).await;
    assert_eq!(s.status(), SessionStatus::Failed);
    assert!(s.ended_at.is_some());
    assert!(matches!(
        h.app.stop_session(&dev, s.id).await,
        Err(SessionActionError::NotStoppable(SessionStatus::Failed))
    ));
    assert_eq!(h.store.live_session_count(dev.user.id).await.unwrap(), 0);
    // The free tier's single slot is free again.
    h.app
        .start_session(&dev, ip("203.0.113.7"), hours(1))
        .await
        .unwrap();
    let failures = h
        .store
        .list_audit(
            f.org.id,
            &AuditQuery {
                kind: Some(AuditType::RuleFailed),
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(failures.items.len(), 1);
}

#[tokio::test]
async fn permanent_errors_fail_at_once_with_messages_a_person_understands() {
    let h = Harness::new(8);
    let f = h.org(Tier::Team).await;
    let dev = h.member(&f, "dev").await;
    let full = h.resource(&f, 1, &[22], true).await;
    let denied = h.resource(&f, 2, &[22], true).await;
    h.role(&f, &[&dev], &[&full, &denied], None).await;
    for p in 0..60u16 {
        h.sim
            .authorize_ingress(
                &entryguard_tests::harness::region(),
                &sg(1),
                &entryguard::domain::rule::IngressRule {
                    ports: entryguard::domain::net::PortRange::tcp(1000 + p),
                    cidr: "10.0.0.0/8".parse().unwrap(),
                },
                "hand-made",
            )
            .await
            .unwrap();
    }
    h.sim.inject(Fault {
        group: Some(sg(2)),
        op: Some(Operation::Authorize),
        kind: FaultKind::Unauthorized,
        remaining: None,
    });
    let s = h
        .app
        .start_session(&dev, ip("203.0.113.7"), hours(2))
        .await
        .unwrap();
    h.drain().await;
    assert!(
        h.queue.is_empty().unwrap(),
        "permanent errors are not retried"
    );
    let s = h.session(s.id).await;
    assert_eq!(s.status(), SessionStatus::Failed);
    let errors: Vec<&str> = s
        .entries
        .iter()
        .map(|e| e.error.as_deref().unwrap())
        .collect();
    assert!(errors[0].contains("rule limit"), "{}", errors[0]);
    assert!(errors[1].contains("Permission denied"), "{}", errors[1]);
    assert!(errors[1].contains("IAM policy"), "{}", errors[1]);
}

#[tokio::test]
async fn a_spent_cloud_budget_delays_a_change_to_the_next_minute_without_failing_it() {
    let h = Harness::new(12);
    let (_, dev) = h.member_with_ssh_on_group_1(Tier::Team).await;
    let s = h
        .app
        .start_session(&dev, ip("203.0.113.7"), hours(2))
        .await
        .unwrap();
    // Other sessions of the same credential used this minute's budget.
    let now = h.app.now();
    let budget = cloud_budget_counter(&h.session(s.id).await.entries[0].group, now);
    for _ in 0..CLOUD_CHANGES_PER_MINUTE {
        h.store.count_event(&budget, now).await.unwrap().unwrap();
    }
    let calls = h.sim.calls();
    assert_eq!(h.drain().await, 1);
    let waiting = h.session(s.id).await;
    assert_eq!(waiting.status(), SessionStatus::Pending);
    assert_eq!(waiting.entries[0].attempts, 0, "not a failed attempt");
    assert_eq!(waiting.entries[0].error, None);
    assert_eq!(h.sim.calls(), calls, "nothing reached the cloud");
    let next = h.queue.next_visible_at().unwrap().unwrap();
    assert!(
        budget.ends_at <= next && next < budget.ends_at + Duration::seconds(15),
        "back at the next minute ({}), not {next}",
        budget.ends_at
    );
    h.clock.set(next);
    assert_eq!(h.drain().await, 1);
    assert_eq!(h.session(s.id).await.status(), SessionStatus::Active);
    assert_eq!(h.rules(1).len(), 1);
}

#[tokio::test]
async fn transient_errors_retry_after_30s_1min_2min_then_fail() {
    let h = Harness::new(9);
    let (f, dev) = h.member_with_ssh_on_group_1(Tier::Team).await;
    h.sim.inject(Fault {
        group: None,
        op: Some(Operation::Authorize),
        kind: FaultKind::Throttle,
        remaining: None,
    });
    let s = h
        .app
        .start_session(&dev, ip("203.0.113.7"), hours(2))
        .await
        .unwrap();
    for (attempt, delay) in RETRY_DELAYS.iter().enumerate() {
        let started = h.app.now();
        assert_eq!(h.drain().await, 1);
        let now = h.session(s.id).await;
        assert_eq!(now.status(), SessionStatus::Pending);
        assert_eq!(now.entries[0].status, EntryStatus::Applying);
        assert_eq!(now.entries[0].attempts, attempt as u32 + 1);
        assert!(now.entries[0]
            .error
            .as_deref()
            .unwrap()
            .contains("throttling"));
        let next = h.queue.next_visible_at().unwrap().unwrap();
        // The documented delay, plus jitter of at most a quarter of it, never less.
        let waited = (next - started).to_std().unwrap();
        assert!(
            *delay <= waited && waited < delay.mul_f64(1.0 + RETRY_JITTER),
            "retry {attempt} after {waited:?}, not within [{delay:?}, +25%)"
        );
        h.clock.set(next);
    }
    assert_eq!(h.drain().await, 1);
    let s = h.session(s.id).await;
    assert_eq!(s.status(), SessionStatus::Failed);
    assert!(h.queue.is_empty().unwrap());
    assert!(s.entries[0]
        .error
        .as_deref()
        .unwrap()
        .starts_with("Rule application failed"));
    let failures = h
        .store
        .list_audit(
            f.org.id,
            &AuditQuery {
                kind: Some(AuditType::RuleFailed),
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(failures.items.len(), 1);
    assert!(h.store.list_rules().await.unwrap().is_empty());
}

#[tokio::test]
async fn transient_errors_that_clear_end_active() {
    let h = Harness::new(10);
    let (_, dev) = h.member_with_ssh_on_group_1(Tier::Team).await;
    h.sim.inject(Fault {
        group: None,
        op: None,
        kind: FaultKind::Timeout,
        remaining: Some(2),
    });
    let s = h
        .app
        .start_session(&dev, ip("203.0.113.7"), hours(2))
        .await
        .unwrap();
    h.settle().await;
    let s = h.session(s.id).await;
    assert_eq!(s.status(), SessionStatus::Active);
    assert_eq!(s.entries[0].error, None);
    assert_eq!(h.rules(1).len(), 1);
    // Removal retries too.
    h.sim.inject(Fault {
        group: None,
        op: Some(Operation::Revoke),
        kind: FaultKind::Throttle,
        remaining: Some(1),
    });
    h.app.stop_session(&dev, s.id).await.unwrap();
    h.settle().await;
    assert_eq!(h.session(s.id).await.status(), SessionStatus::Cancelled);
    assert!(h.rules(1).is_empty());
}

#[tokio::test]
async fn extend_adds_hours_within_the_maximum_only() {
    let h = Harness::new(11);
    let (f, dev) = h.member_with_ssh_on_group_1(Tier::Free).await;
    let s = h
        .app
        .start_session(&dev, ip("203.0.113.7"), hours(2))
        .await
        .unwrap();
    assert!(matches!(
        h.app.extend_session(&dev, s.id, hours(2)).await,
        Err(SessionActionError::NotExtendable(SessionStatus::Pending))
    ));
    h.drain().await;
    let extended = h.app.extend_session(&dev, s.id, hours(2)).await.unwrap();
    assert_eq!(
        extended.expires_at - extended.created_at,
        Duration::hours(4)
    );
    assert!(matches!(
        h.app.extend_session(&dev, s.id, hours(1)).await,
        Err(SessionActionError::ExtensionExceedsMaximum { max_hours: 4 })
    ));
    let other = h.member(&f, "other").await;
    assert!(matches!(
        h.app.extend_session(&other, s.id, hours(1)).await,
        Err(SessionActionError::NotFound)
    ));
    h.advance(Duration::hours(4));
    assert!(matches!(
        h.app.extend_session(&dev, s.id, hours(1)).await,
        Err(SessionActionError::NotExtendable(_))
    ));
}

#[tokio::test]
async fn tier_and_role_limits_the_most_restrictive_wins() {
    let h = Harness::new(12);
    let f = h.org(Tier::Team).await;
    let dev = h.member(&f, "dev").await;
    let a = h.resource(&f, 1, &[22], true).await;
    h.role(&f, &[&dev], &[&a], Some(12)).await;
    h.role(&f, &[&dev], &[], Some(8)).await;
    let me = h.app.me(&dev).await.unwrap();
    assert_eq!(me.policy.allowed_durations, vec![1, 2, 4, 8]);
    assert_eq!(me.policy.max_session_hours, 8);
    assert_eq!(me.resource_count, 1);
    assert!(matches!(
        h.app
            .start_session(&dev, ip("203.0.113.7"), hours(12))
            .await,
        Err(StartSessionError::DurationExceedsMaximum { max_hours: 8 })
    ));
    assert!(matches!(
        h.app.start_session(&dev, ip("203.0.113.7"), hours(3)).await,
        Err(StartSessionError::DurationNotOffered { .. })
    ));
    h.app
        .start_session(&dev, ip("203.0.113.7"), hours(8))
        .await
        .unwrap();

    let free = h.org(Tier::Free).await;
    let fdev = h.member(&free, "dev").await;
    let fr = h.resource(&free, 3, &[22], true).await;
    h.role(&free, &[&fdev], &[&fr], Some(24)).await;
    let me = h.app.me(&fdev).await.unwrap();
    assert_eq!(me.policy.allowed_durations, vec![1, 2, 4]);
    assert_eq!(me.policy.max_concurrent_sessions, Some(1));
    assert!(matches!(
        h.app
            .start_session(&fdev, ip("203.0.113.7"), hours(8))
            .await,
        Err(StartSessionError::DurationExceedsMaximum { max_hours: 4 })
    ));
}

#[tokio::test]
async fn resources_come_from_all_roles_and_direct_assignments() {
    let h = Harness::new(13);
    let f = h.org(Tier::Team).await;
    let mut dev = h.member(&f, "dev").await;
    assert!(matches!(
        h.app.start_session(&dev, ip("203.0.113.7"), hours(1)).await,
        Err(StartSessionError::NoAccessibleResources)
    ));
    let a = h.resource(&f, 1, &[22], true).await;
    let b = h.resource(&f, 2, &[22], true).await;
    let c = h.resource(&f, 3, &[22], true).await;
    let _unrelated = h.resource(&f, 4, &[22], true).await;
    h.role(&f, &[&dev], &[&a, &b], None).await;
    h.role(&f, &[&dev], &[&b], None).await;
    dev.user.resource_ids.insert(c.id);
    h.store.update_user(&dev.user).await.unwrap();
    let s = h
        .app
        .start_session(&dev, ip("203.0.113.7"), hours(1))
        .await
        .unwrap();
    let mut names: Vec<String> = s
        .entries
        .iter()
        .map(|e| e.resource_name.to_string())
        .collect();
    names.sort();
    assert_eq!(names, vec!["resource-1", "resource-2", "resource-3"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_concurrent_session_limit_holds_under_simultaneous_starts() {
    let h = Harness::new(14);
    for (tier, limit) in [(Tier::Free, 1usize), (Tier::Starter, 3)] {
        let f = h.org(tier).await;
        let dev = h.member(&f, "dev").await;
        let a = h.resource(&f, 1, &[22], true).await;
        h.role(&f, &[&dev], &[&a], None).await;
        let starts = (0..10).map(|i| {
            let app = h.app.clone();
            let dev = dev.clone();
            tokio::spawn(async move {
                app.start_session(&dev, ip(&format!("203.0.113.{i}")), hours(1))
                    .await
            })
        });
        let results = futures::future::join_all(starts).await;
        let ok = results
            .iter()
            .filter(|r| r.as_ref().unwrap().is_ok())
            .count();
        let limited = results
            .iter()
            .filter(|r| {
                matches!(
                    r.as_ref().unwrap(),
                    Err(StartSessionError::ConcurrentSessionLimit { .. })
                )
            })
            .count();
        assert_eq!((ok, limited), (limit, 10 - limit), "{tier:?}");
        assert_eq!(
            h.store.live_session_count(dev.user.id).await.unwrap(),
            limit as u32
        );
        // Stopping one frees a slot.
        let first = h.app.list_sessions(&dev).await.unwrap().remove(0);
        h.app.stop_session(&dev, first.id).await.unwrap();
        h.app
            .start_session(&dev, ip("198.51.100.1"), hours(1))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_lost_message_is_resent_by_the_sweeper() {
    let h = Harness::new(15);
    let (_, dev) = h.member_with_ssh_on_group_1(Tier::Team).await;
    let s = h
        .app
        .start_session(&dev, ip("203.0.113.7"), hours(2))
        .await
        .unwrap();
    // The message vanishes (as if the queue lost it).
    for d in h.queue.receive(10, Duration::seconds(60)).unwrap() {
        h.queue.ack(&d.receipt).unwrap();
    }
    assert_eq!(h.app.sweep().await.unwrap().redriven, 0);
    h.advance(Duration::seconds(121));
    assert_eq!(h.app.sweep().await.unwrap().redriven, 1);
    h.drain().await;
    assert_eq!(h.session(s.id).await.status(), SessionStatus::Active);
    // Once settled, the session is due only at its expiry.
    h.advance(Duration::seconds(300));
    assert_eq!(h.app.sweep().await.unwrap().due, 0);
}

#[tokio::test]
async fn duplicate_deliveries_do_not_double_count() {
    let h = Harness::new(16);
    let (_, dev) = h.member_with_ssh_on_group_1(Tier::Team).await;
    let s = h
        .app
        .start_session(&dev, ip("203.0.113.7"), hours(2))
        .await
        .unwrap();
    let task = entryguard::ports::queue::Task::ReconcileEntry {
        session_id: s.id,
        entry: 0,
    };
    for _ in 0..3 {
        h.app.process_task(&task).await;
    }
    h.drain().await;
    let key = &h.session(s.id).await.entries[0].rules()[0];
    assert_eq!(h.store.get_rule(key).await.unwrap().unwrap().count(), 1);
    h.app.stop_session(&dev, s.id).await.unwrap();
    for _ in 0..3 {
        h.app.process_task(&task).await;
    }
    h.drain().await;
    assert_eq!(h.session(s.id).await.status(), SessionStatus::Cancelled);
    assert!(h.rules(1).is_empty());
}

#[tokio::test]
async fn the_audit_log_records_the_session_story() {
    let h = Harness::new(17);
    let (f, dev) = h.member_with_ssh_on_group_1(Tier::Team).await;
    // Events are ordered by time; the manual clock moves between steps as real time would.
    let s = h
        .app
        .start_session(&dev, ip("203.0.113.7"), hours(1))
        .await
        .unwrap();
    h.advance(Duration::seconds(1));
    h.drain().await;
    h.advance(Duration::seconds(1));
    h.app.extend_session(&dev, s.id, hours(1)).await.unwrap();
    h.advance(Duration::seconds(1));
    h.app.stop_session(&dev, s.id).await.unwrap();
    h.advance(Duration::seconds(1));
    h.drain().await;
    let page = h
        .store
        .list_audit(
            f.org.id,
            &AuditQuery {
                limit: 50,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut kinds: Vec<&str> = page.items.iter().map(|e| e.kind.as_str()).collect();
    kinds.reverse();
    assert_eq!(
        kinds,
        vec![
            "session.started",
            "rule.applied",
            "session.extended",
            "session.stopped",
            "rule.removed"
        ]
    );
    assert!(page.items.iter().all(|e| e.session_id == Some(s.id)));
}

#[tokio::test]
async fn a_rule_whose_removal_failed_is_revoked_by_a_later_sweep() {
    let h = Harness::new(18);
    let (_, dev) = h.member_with_ssh_on_group_1(Tier::Team).await;
    let s = h
        .app
        .start_session(&dev, ip("203.0.113.7"), hours(2))
        .await
        .unwrap();
    h.drain().await;
    h.sim.inject(Fault {
        group: None,
        op: Some(Operation::Revoke),
        kind: FaultKind::Unauthorized,
        remaining: None,
    });
    h.app.stop_session(&dev, s.id).await.unwrap();
    h.settle().await;
    let ended = h.session(s.id).await;
    assert_eq!(ended.status(), SessionStatus::Cancelled);
    assert_eq!(ended.entries[0].status, EntryStatus::Failed);
    assert!(ended.entries[0]
        .error
        .as_deref()
        .unwrap()
        .starts_with("Rule removal failed"));
    assert_eq!(h.rules(1).len(), 1, "the revoke was denied");
    assert_eq!(
        h.app.sweep().await.unwrap().orphans_revoked,
        0,
        "still denied"
    );
    h.sim.clear_faults();
    assert_eq!(h.app.sweep().await.unwrap().orphans_revoked, 1);
    assert!(h.rules(1).is_empty());
    assert!(h.store.list_rules().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_suspended_organization_starts_nothing_and_its_live_sessions_end() {
    let h = Harness::new(41);
    let (f, dev) = h.member_with_ssh_on_group_1(Tier::Team).await;
    let before = h.rules(1);
    let live = h
        .app
        .start_session(&dev, ip("203.0.113.7"), hours(2))
        .await
        .unwrap();
    h.drain().await;
    assert_eq!(h.session(live.id).await.status(), SessionStatus::Active);

    let done = h
        .app
        .operator_suspend(f.org.id, "ops@example.com", "unpaid invoice")
        .await
        .unwrap();
    assert_eq!(done.sessions_stopped, 1);
    h.settle().await;
    assert_eq!(h.session(live.id).await.status(), SessionStatus::Cancelled);
    assert_eq!(
        h.rules(1),
        before,
        "the suspended organization's rules are gone"
    );
    assert_eq!(h.store.live_session_count(dev.user.id).await.unwrap(), 0);

    // The caller's identity is read per request, so the next one carries the suspension.
    let mut dev = dev;
    dev.org = h.store.get_org(f.org.id).await.unwrap().unwrap();
    assert!(matches!(
        h.app.start_session(&dev, ip("203.0.113.7"), hours(1)).await,
        Err(StartSessionError::OrganizationSuspended)
    ));
    assert!(matches!(
        h.app.extend_session(&dev, live.id, hours(1)).await,
        Err(SessionActionError::OrganizationSuspended)
    ));
    assert_eq!(h.app.list_sessions(&dev).await.unwrap().len(), 1);

    // Suspending again is harmless; resuming lets the organization start sessions again.
    let again = h
        .app
        .operator_suspend(f.org.id, "ops@example.com", "still unpaid")
        .await
        .unwrap();
    assert_eq!(again.sessions_stopped, 0);
    h.app
        .operator_resume(f.org.id, "ops@example.com")
        .await
        .unwrap();
    dev.org = h.store.get_org(f.org.id).await.unwrap().unwrap();
    h.app
        .start_session(&dev, ip("203.0.113.7"), hours(1))
        .await
        .unwrap();

    let events = h
        .store
        .list_audit(
            f.org.id,
            &AuditQuery {
                kind: Some(AuditType::AdminChange),
                limit: 100,
                ..AuditQuery::default()
            },
        )
        .await
        .unwrap();
    let messages: Vec<&str> = events.items.iter().map(|e| e.message.as_str()).collect();
    assert!(messages
        .contains(&"The operator (ops@example.com) suspended the organization: unpaid invoice"));
    assert!(messages.contains(&"The operator (ops@example.com) resumed the organization"));
}

#[tokio::test]
async fn a_start_that_races_a_suspension_takes_itself_back() {
    let h = Harness::new(42);
    let (f, dev) = h.member_with_ssh_on_group_1(Tier::Team).await;
    let before = h.rules(1);
    // `dev` was authenticated while the organization was active; the suspension lands before
    // the session is written.
    h.app
        .operator_suspend(f.org.id, "ops@example.com", "abuse")
        .await
        .unwrap();
    assert!(!dev.org.is_suspended());
    assert!(matches!(
        h.app.start_session(&dev, ip("203.0.113.7"), hours(1)).await,
        Err(StartSessionError::OrganizationSuspended)
    ));
    h.settle().await;
    let sessions = h.app.list_sessions(&dev).await.unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].status(), SessionStatus::Cancelled);
    assert_eq!(h.rules(1), before);
    assert_eq!(h.store.live_session_count(dev.user.id).await.unwrap(), 0);
}

#[tokio::test]
async fn the_operator_sets_plans_and_running_sessions_keep_going() {
    let h = Harness::new(43);
    let (f, dev) = h.member_with_ssh_on_group_1(Tier::Starter).await;
    let mut dev = dev;
    let long = h
        .app
        .start_session(&dev, ip("203.0.113.7"), hours(8))
        .await
        .unwrap();
    h.drain().await;

    let org = h
        .app
        .operator_set_plan(f.org.id, Tier::Free, "ops@example.com")
        .await
        .unwrap();
    assert_eq!(org.tier, Tier::Free);
    assert_eq!(org.version, f.org.version + 1);
    dev.org = org;
    // The 8 h session started on Starter goes on; new starts follow Free's limits.
    assert_eq!(h.session(long.id).await.status(), SessionStatus::Active);
    assert!(matches!(
        h.app.start_session(&dev, ip("203.0.113.8"), hours(8)).await,
        Err(StartSessionError::DurationExceedsMaximum { max_hours: 4 })
    ));
    assert!(matches!(
        h.app.start_session(&dev, ip("203.0.113.8"), hours(1)).await,
        Err(StartSessionError::ConcurrentSessionLimit { limit: 1 })
    ));
    // Setting the plan it has changes nothing and records nothing.
    let same = h
        .app
        .operator_set_plan(f.org.id, Tier::Free, "ops@example.com")
        .await
        .unwrap();
    assert_eq!(same.version, f.org.version + 1);
    let listed = h.app.operator_list_organizations().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].org.tier, Tier::Free);
    assert_eq!(listed[0].users, 2);
    let unknown = entryguard::domain::ids::OrgId::from_uuid(uuid::Uuid::new_v4());
    assert!(matches!(
        h.app
            .operator_set_plan(unknown, Tier::Business, "ops@example.com")
            .await,
        Err(entryguard::app::operator::OperatorError::NotFound(_))
    ));
}

/// A worker that died holding the lease of a rule it had just removed leaves a record with no
/// holder, the rule absent and a lease nobody gives back; a sweep after the lease ran out
/// revokes it (the dead worker may have been mid-change) and forgets the record.
#[tokio::test]
async fn a_dead_workers_leftover_rule_record_is_forgotten() {
    use entryguard::domain::ids::SessionId;
    use entryguard::domain::rule::{CloudState, HolderId, RuleKey};
    let h = Harness::new(19);
    let (_, dev) = h.member_with_ssh_on_group_1(Tier::Team).await;
    let s = h
        .app
        .start_session(&dev, ip("203.0.113.7"), hours(2))
        .await
        .unwrap();
    h.drain().await;
    let live = h.store.list_rules().await.unwrap()[0].clone();
    h.app.stop_session(&dev, s.id).await.unwrap();
    h.settle().await;
    assert!(h.store.list_rules().await.unwrap().is_empty());

    let mut key: RuleKey = live.key.clone();
    key.rule.cidr = "198.51.100.9/32".parse().unwrap();
    let holder = HolderId::new(SessionId::from_uuid(uuid::Uuid::from_u128(5)), 0);
    let now = h.app.now();
    h.store
        .rule_add_holder(&key, &live.group, &holder)
        .await
        .unwrap();
    h.store
        .rule_lease(&key, "w1", now, now + Duration::seconds(60))
        .await
        .unwrap();
    h.store
        .rule_release_lease(&key, "w1", CloudState::Absent, None)
        .await
        .unwrap();
    h.store
        .rule_lease(&key, "dead", now, now + Duration::seconds(60))
        .await
        .unwrap();
    h.store.rule_remove_holder(&key, &holder).await.unwrap();
    let left = h.store.get_rule(&key).await.unwrap().expect("the leftover");
    assert_eq!((left.count(), left.cloud), (0, CloudState::Absent));
    assert!(left.lease.is_some());

    h.app.sweep().await.unwrap();
    assert!(
        h.store.get_rule(&key).await.unwrap().is_some(),
        "its lease still runs"
    );
    h.advance(Duration::seconds(61));
    assert_eq!(h.app.sweep().await.unwrap().orphans_revoked, 1);
    assert_eq!(h.store.get_rule(&key).await.unwrap(), None);
    assert!(h.rules(1).is_empty());
}
