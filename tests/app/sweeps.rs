//! The sweeper without a ceiling and expiry on time, through the use cases on the embedded
//! backend: bad records are skipped and reported, not fatal; any number of due sessions go in
//! one run, page by page, until the run's time is up; sessions due before the next run are
//! checked on their second by a delayed queue message, which leaves extended sessions alone.

use chrono::Duration;
use entryguard::app::sweeper::{SweepOptions, SWEEP_PAGE};
use entryguard::domain::audit::{AuditQuery, AuditType};
use entryguard::domain::ids::SessionId;
use entryguard::domain::net::PortRange;
use entryguard::domain::rule::{IngressRule, RuleKey};
use entryguard::domain::session::SessionStatus;
use entryguard::domain::tier::Tier;
use entryguard::embedded::kv;
use entryguard::keys::time_key;
use entryguard::ports::store::StoreError;
use entryguard::ports::Store;
use entryguard_tests::harness::{hours, ip, region, sg, Harness, OrgFixture};

async fn alerts(h: &Harness, f: &OrgFixture) -> Vec<String> {
    h.store
        .list_audit(
            f.org.id,
            &AuditQuery {
                from: None,
                to: None,
                kind: Some(AuditType::SystemAlert),
                user_id: None,
                cursor: None,
                limit: 100,
            },
        )
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|e| e.message)
        .collect()
}

#[tokio::test]
async fn a_bad_record_is_skipped_and_reported_once_while_the_other_sessions_expire() {
    let h = Harness::new(41);
    let (f, dev) = h.member_with_ssh_on_group_1(Tier::Team).await;
    let mut sessions = Vec::new();
    for n in 1..=3 {
        let s = h
            .app
            .start_session(&dev, ip(&format!("203.0.113.{n}")), hours(1))
            .await
            .unwrap();
        sessions.push(s.id);
    }
    h.drain().await;
    // An unreadable session, due before all the others, and an unreadable rule record that
    // the orphan pass would look at.
    let bad = SessionId::from_uuid(uuid::Uuid::from_u128(77));
    let bad_rule = RuleKey {
        region: region(),
        security_group_id: sg(1),
        rule: IngressRule {
            ports: PortRange::tcp(443),
            cidr: "198.51.100.9/32".parse().unwrap(),
        },
    };
    let now = h.app.now();
    h.kv.write(|t| {
        kv::put(
            t,
            &format!("session/{bad}"),
            &serde_json::json!({"not": "a session"}),
        )?;
        kv::put(t, &format!("due/{}/{bad}", time_key(now)), &bad)?;
        kv::put(
            t,
            &format!("rule/{}", bad_rule.storage_key()),
            &serde_json::json!({"broken": true}),
        )?;
        kv::put(
            t,
            &format!("unheld/{}", bad_rule.storage_key()),
            &bad_rule.storage_key(),
        )?;
        Ok::<_, StoreError>(())
    })
    .unwrap();

    h.advance(Duration::hours(1));
    let report = h.app.sweep().await.expect("a bad record is not fatal");
    assert_eq!(
        (report.due, report.expired, report.skipped),
        (4, 3, 1),
        "{report:?}"
    );
    h.drain().await;
    for id in &sessions {
        assert_eq!(h.session(*id).await.status(), SessionStatus::Expired);
    }
    let reported = alerts(&h, &f).await;
    assert_eq!(reported.len(), 1, "{reported:?}");
    assert!(
        reported[0].contains(&bad_rule.to_string()),
        "the alert names the rule: {}",
        reported[0]
    );
    // Reported once a day, however often the sweep meets it.
    h.app.sweep().await.unwrap();
    h.advance(Duration::minutes(1));
    h.app.sweep().await.unwrap();
    assert_eq!(alerts(&h, &f).await.len(), 1);
    h.advance(Duration::days(1));
    h.app.sweep().await.unwrap();
    assert_eq!(alerts(&h, &f).await.len(), 2);
}

#[tokio::test]
async fn one_sweep_expires_more_than_a_page_of_due_sessions() {
    let h = Harness::new(42);
    let (_, dev) = h.member_with_ssh_on_group_1(Tier::Team).await;
    let count = 2 * SWEEP_PAGE + 50;
    for n in 0..count {
        h.app
            .start_session(
                &dev,
                // A few addresses: the group's rule limit stays far, and each rule has many
                // holders.
                ip(&format!("198.18.0.{}", n % 9 + 1)),
                hours(1),
            )
            .await
            .unwrap();
    }
    h.drain().await;
    h.advance(Duration::hours(1));
    let report = h.app.sweep().await.unwrap();
    assert_eq!((report.due, report.expired), (count, count), "{report:?}");
    assert!(!report.unfinished);
    h.drain().await;
    let left = h.store.due_page(h.app.now(), None, 10).await.unwrap();
    assert!(left.is_empty(), "nothing left due: {left:?}");
    assert!(h.rules(1).is_empty());
}

#[tokio::test]
async fn a_sweep_whose_time_is_up_leaves_the_rest_to_the_next_run() {
    let h = Harness::new(43);
    let (_, dev) = h.member_with_ssh_on_group_1(Tier::Team).await;
    let s = h
        .app
        .start_session(&dev, ip("203.0.113.7"), hours(1))
        .await
        .unwrap();
    h.drain().await;
    h.advance(Duration::hours(1));
    let spent = SweepOptions {
        budget: Duration::zero(),
        ..SweepOptions::default()
    };
    let report = h.app.sweep_with(spent).await.unwrap();
    assert!(report.unfinished && report.expired == 0, "{report:?}");
    assert_eq!(h.session(s.id).await.status(), SessionStatus::Active);
    assert_eq!(h.app.sweep().await.unwrap().expired, 1);
}

#[tokio::test]
async fn a_session_expires_on_its_second_without_waiting_for_the_next_sweep() {
    let h = Harness::new(44);
    let (_, dev) = h.member_with_ssh_on_group_1(Tier::Team).await;
    let s = h
        .app
        .start_session(&dev, ip("203.0.113.7"), hours(1))
        .await
        .unwrap();
    h.drain().await;
    h.advance(Duration::minutes(59) + Duration::seconds(25));
    let report = h.app.sweep().await.unwrap();
    assert_eq!((report.expired, report.scheduled), (0, 1), "{report:?}");
    assert_eq!(h.queue.next_visible_at().unwrap(), Some(s.expires_at));
    // One second short: nothing happens yet.
    h.advance(Duration::seconds(34));
    h.drain().await;
    assert_eq!(h.session(s.id).await.status(), SessionStatus::Active);
    // On the second, the queue alone ends it: no sweep runs.
    h.advance(Duration::seconds(1));
    h.drain().await;
    assert_eq!(h.session(s.id).await.status(), SessionStatus::Expired);
    assert!(h.rules(1).is_empty());
}

#[tokio::test]
async fn a_session_extended_after_its_check_was_scheduled_does_not_end() {
    let h = Harness::new(45);
    let (_, dev) = h.member_with_ssh_on_group_1(Tier::Team).await;
    let s = h
        .app
        .start_session(&dev, ip("203.0.113.7"), hours(1))
        .await
        .unwrap();
    h.drain().await;
    h.advance(Duration::minutes(59) + Duration::seconds(30));
    assert_eq!(h.app.sweep().await.unwrap().scheduled, 1);
    h.app.extend_session(&dev, s.id, hours(2)).await.unwrap();
    h.advance(Duration::seconds(30));
    h.drain().await;
    assert_eq!(h.session(s.id).await.status(), SessionStatus::Active);
    assert_eq!(h.rules(1).len(), 1);
    assert!(
        h.queue.is_empty().unwrap(),
        "the check was handled, not retried"
    );
}

#[tokio::test]
async fn an_early_check_comes_back_on_its_second() {
    let h = Harness::new(46);
    let (_, dev) = h.member_with_ssh_on_group_1(Tier::Team).await;
    let s = h
        .app
        .start_session(&dev, ip("203.0.113.7"), hours(1))
        .await
        .unwrap();
    h.drain().await;
    // Delivered ahead of its time (a queue rounds delays; clocks differ): it waits.
    let early = entryguard::ports::queue::Task::CheckSession {
        session_id: s.id,
        at: s.expires_at,
    };
    h.advance(Duration::minutes(59) + Duration::seconds(57) + Duration::milliseconds(500));
    assert_eq!(
        h.app.process_task(&early).await,
        entryguard::app::worker::Outcome::RetryAfter(std::time::Duration::from_secs(3))
    );
    assert_eq!(h.session(s.id).await.status(), SessionStatus::Active);
    h.advance(Duration::seconds(3));
    assert_eq!(
        h.app.process_task(&early).await,
        entryguard::app::worker::Outcome::Done
    );
    assert_eq!(h.session(s.id).await.status(), SessionStatus::Expiring);
}

/// A held rule the cloud shows under another id than its record (re-created by a change whose
/// answer was lost): reconciliation takes the cloud's id, so the stop revokes by it.
#[tokio::test]
async fn reconciliation_takes_the_id_of_a_rule_recreated_under_another() {
    use entryguard::embedded::firewall::SimulatedFirewall;
    use entryguard::ports::Firewall;

    let h = Harness::new(46);
    let (_, dev) = h.member_with_ssh_on_group_1(Tier::Team).await;
    let s = h
        .app
        .start_session(&dev, ip("203.0.113.7"), hours(1))
        .await
        .unwrap();
    h.drain().await;
    let record = h.store.list_rules().await.unwrap().remove(0);
    let before = record
        .cloud_rule_id
        .clone()
        .expect("an id from the authorize");
    let other = SimulatedFirewall::new(h.sim.clone());
    other
        .revoke(&record.group, &record.key.rule, Some(&before))
        .await
        .unwrap();
    let after = other
        .authorize(&record.group, &record.key.rule)
        .await
        .unwrap()
        .expect("EntryGuard's own rule");
    assert_ne!(before, after);
    h.rules(1)
        .iter()
        .find(|r| r.id == after.as_str())
        .expect("the re-created rule");

    let report = h.app.reconcile().await.unwrap();
    assert_eq!(report.ids_refreshed, 1, "{report:?}");
    let record = h.store.get_rule(&record.key).await.unwrap().unwrap();
    assert_eq!(record.cloud_rule_id, Some(after));
    assert!(record.lease.is_none());
    assert_eq!(h.app.reconcile().await.unwrap().ids_refreshed, 0);

    h.app.stop_session(&dev, s.id).await.unwrap();
    h.drain().await;
    assert!(h.rules(1).is_empty());
}
