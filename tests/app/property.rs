//! Random sequences of starts, stops, extensions, clock moves, worker steps, sweeps, faults,
//! lost and duplicated messages. After each sequence reaches quiescence: no rule without a live
//! session needing it, no live APPLIED entry without its rule, counts equal to their holders,
//! slots equal to live sessions; and once everything has expired, nothing is left open.

use std::collections::{BTreeMap, BTreeSet};

use chrono::Duration;
use proptest::prelude::*;

use entryguard::app::Identity;
use entryguard::domain::session::{EntryStatus, Session, SessionStatus};
use entryguard::domain::tier::Tier;
use entryguard::embedded::firewall::{Fault, FaultKind, Operation};
use entryguard::ports::Store;
use entryguard_tests::harness::{hours, ip, region, sg, Harness};

#[derive(Debug, Clone)]
enum Op {
    Start {
        user: usize,
        duration: usize,
    },
    Stop {
        user: usize,
        nth: usize,
    },
    Extend {
        user: usize,
        nth: usize,
    },
    Advance {
        secs: i64,
    },
    Work {
        messages: usize,
    },
    Sweep,
    Fault {
        group: u32,
        permanent: bool,
        times: u32,
    },
    LoseMessage,
    DuplicateMessage,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3usize, 0..4usize).prop_map(|(user, duration)| Op::Start { user, duration }),
        3 => (0..3usize, 0..4usize).prop_map(|(user, nth)| Op::Stop { user, nth }),
        1 => (0..3usize, 0..4usize).prop_map(|(user, nth)| Op::Extend { user, nth }),
        2 => (0..8000i64).prop_map(|secs| Op::Advance { secs }),
        5 => (1..6usize).prop_map(|messages| Op::Work { messages }),
        2 => Just(Op::Sweep),
        1 => (1..3u32, any::<bool>(), 1..4u32)
            .prop_map(|(group, permanent, times)| Op::Fault { group, permanent, times }),
        1 => Just(Op::LoseMessage),
        1 => Just(Op::DuplicateMessage),
    ]
}

struct World {
    h: Harness,
    users: Vec<Identity>,
    ips: Vec<&'static str>,
}

async fn world(seed: u64) -> World {
    let h = Harness::new(seed);
    let f = h.org(Tier::Starter).await;
    let mut users = Vec::new();
    for name in ["ann", "bob", "cid"] {
        users.push(h.member(&f, name).await);
    }
    // Resources 1 and 3 open the same port on the same group: two holders of one rule even
    // within a single session. Ann and Bob share an IP: holders across users.
    let r1 = h.resource(&f, 1, &[22], true).await;
    let r2 = h.resource(&f, 2, &[22, 443], true).await;
    let r3 = h.resource(&f, 1, &[22], true).await;
    let refs: Vec<&Identity> = users.iter().collect();
    h.role(&f, &refs, &[&r1, &r2, &r3], None).await;
    World {
        h,
        users,
        ips: vec!["203.0.113.1", "203.0.113.1", "203.0.113.2"],
    }
}

async fn user_session(w: &World, user: usize, nth: usize) -> Option<Session> {
    let list = w.h.app.list_sessions(&w.users[user]).await.unwrap();
    if list.is_empty() {
        None
    } else {
        Some(list[nth % list.len()].clone())
    }
}

async fn apply(w: &World, op: &Op) {
    let h = &w.h;
    match op {
        Op::Start { user, duration } => {
            let d = [1, 2, 4, 8][*duration];
            let _ = h
                .app
                .start_session(&w.users[*user], ip(w.ips[*user]), hours(d))
                .await;
        }
        Op::Stop { user, nth } => {
            if let Some(s) = user_session(w, *user, *nth).await {
                let _ = h.app.stop_session(&w.users[*user], s.id).await;
            }
        }
        Op::Extend { user, nth } => {
            if let Some(s) = user_session(w, *user, *nth).await {
                let _ = h.app.extend_session(&w.users[*user], s.id, hours(2)).await;
            }
        }
        Op::Advance { secs } => h.advance(Duration::seconds(*secs)),
        Op::Work { messages } => {
            for d in h.queue.receive(*messages, Duration::seconds(60)).unwrap() {
                match h.app.process_task(&d.task).await {
                    entryguard::app::worker::Outcome::Done => h.queue.ack(&d.receipt).unwrap(),
                    entryguard::app::worker::Outcome::RetryAfter(delay) => h
                        .queue
                        .retry_after(&d.receipt, Duration::from_std(delay).unwrap())
                        .unwrap(),
                }
            }
        }
        Op::Sweep => {
            h.app.sweep().await.unwrap();
        }
        Op::Fault {
            group,
            permanent,
            times,
        } => h.sim.inject(Fault {
            group: Some(sg(*group)),
            op: if *permanent {
                Some(Operation::Authorize)
            } else {
                None
            },
            kind: if *permanent {
                FaultKind::Unauthorized
            } else {
                FaultKind::Throttle
            },
            remaining: Some(*times),
        }),
        Op::LoseMessage => {
            for d in h.queue.receive(1, Duration::seconds(60)).unwrap() {
                h.queue.ack(&d.receipt).unwrap();
            }
        }
        Op::DuplicateMessage => {
            for d in h.queue.receive(1, Duration::seconds(60)).unwrap() {
                h.app.process_task(&d.task).await;
                h.app.process_task(&d.task).await;
                h.queue.ack(&d.receipt).unwrap();
            }
        }
    }
}

async fn all_sessions(w: &World) -> Vec<Session> {
    let mut out = Vec::new();
    for u in &w.users {
        out.extend(
            w.h.store
                .list_user_sessions(u.user.id, usize::MAX)
                .await
                .unwrap(),
        );
    }
    out
}

/// Works, sweeps and lets time pass until nothing is in flight (faults cleared first).
async fn quiesce(w: &World) {
    w.h.sim.clear_faults();
    for _ in 0..50 {
        w.h.settle().await;
        w.h.app.sweep().await.unwrap();
        w.h.settle().await;
        let busy = all_sessions(w)
            .await
            .iter()
            .any(|s| matches!(s.status(), SessionStatus::Pending | SessionStatus::Expiring));
        let orphans =
            w.h.store
                .list_rules()
                .await
                .unwrap()
                .iter()
                .any(|r| r.count() == 0);
        if !busy && !orphans && w.h.queue.is_empty().unwrap() {
            return;
        }
        // Past the stall timeout, so the sweeper resends lost work.
        w.h.advance(Duration::seconds(121));
    }
    panic!("never reached quiescence");
}

fn managed_rules(w: &World) -> BTreeSet<(u32, String, u16, u16)> {
    let mut out = BTreeSet::new();
    for g in [1u32, 2] {
        for r in w.h.sim.group(&region(), &sg(g)).unwrap().unwrap().rules {
            if r.is_managed() {
                out.insert((
                    g,
                    r.cidr.to_string(),
                    r.ports.from_port(),
                    r.ports.to_port(),
                ));
            }
        }
    }
    out
}

async fn check_invariants(w: &World) -> Result<(), TestCaseError> {
    let sessions = all_sessions(w).await;
    // What the live sessions need: rule -> holders.
    let mut needed: BTreeMap<(u32, String, u16, u16), usize> = BTreeMap::new();
    for s in sessions.iter().filter(|s| !s.status().is_terminal()) {
        prop_assert!(
            !matches!(s.status(), SessionStatus::Pending | SessionStatus::Expiring),
            "session {} still in flight: {:?}",
            s.id,
            s.status()
        );
        for e in s
            .entries
            .iter()
            .filter(|e| e.status == EntryStatus::Applied)
        {
            for k in e.rules() {
                let g = if k.security_group_id == sg(1) { 1 } else { 2 };
                *needed
                    .entry((
                        g,
                        k.rule.cidr.to_string(),
                        k.rule.ports.from_port(),
                        k.rule.ports.to_port(),
                    ))
                    .or_default() += 1;
            }
        }
    }
    let present = managed_rules(w);
    let needed_keys: BTreeSet<_> = needed.keys().cloned().collect();
    prop_assert_eq!(
        &present,
        &needed_keys,
        "rules in the cloud vs rules live sessions need"
    );
    let records = w.h.store.list_rules().await.unwrap();
    prop_assert_eq!(
        records.len(),
        needed.len(),
        "one record per needed rule, no leftovers"
    );
    for r in &records {
        let g = if r.key.security_group_id == sg(1) {
            1
        } else {
            2
        };
        let k = (
            g,
            r.key.rule.cidr.to_string(),
            r.key.rule.ports.from_port(),
            r.key.rule.ports.to_port(),
        );
        prop_assert_eq!(Some(&r.count()), needed.get(&k), "count of {}", r.key);
        prop_assert!(r.lease.is_none(), "lease left on {}", r.key);
    }
    for u in &w.users {
        let live = sessions
            .iter()
            .filter(|s| s.user_id == u.user.id && s.status().holds_slot())
            .count() as u32;
        prop_assert_eq!(w.h.store.live_session_count(u.user.id).await.unwrap(), live);
        prop_assert!(live <= 3, "Starter allows 3 concurrent sessions");
    }
    Ok(())
}

async fn run(seed: u64, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let w = world(seed).await;
    for op in &ops {
        apply(&w, op).await;
    }
    quiesce(&w).await;
    check_invariants(&w).await?;
    // Let everything expire: nothing may be left open.
    w.h.advance(Duration::hours(30));
    quiesce(&w).await;
    check_invariants(&w).await?;
    let sessions = all_sessions(&w).await;
    prop_assert!(sessions.iter().all(|s| s.status().is_terminal()));
    prop_assert!(managed_rules(&w).is_empty());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn no_rule_outlives_its_sessions(seed in any::<u64>(), ops in prop::collection::vec(op(), 1..40)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(run(seed, ops))?;
    }
}
