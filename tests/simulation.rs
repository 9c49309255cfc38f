//! Deterministic simulation: many seeded schedules of starts, stops, extensions, worker
//! deliveries (duplicated, delayed, reordered), sweeps (sometimes two at once), clock moves,
//! handler crashes at random port calls, injected store, queue and cloud errors, and
//! out-of-band changes to the cloud. After each schedule reaches quiescence the invariants are
//! checked (see `support/sim/world.rs`).
//!
//! `ENTRYGUARD_SIM_SEEDS=N` runs N schedules (default 1000), starting at `ENTRYGUARD_SIM_FIRST`
//! (default 0); `ENTRYGUARD_SIM_SEED=S` replays one schedule and prints its trace.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use entryguard_tests::sim::{run, Options, Stats};

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, not {v:?}"))
    })
}

fn play(seed: u64) -> (Result<(), String>, Stats, Vec<String>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime");
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(run(seed, Options::default()))
    }));
    outcome.unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panic".into());
        (
            Err(format!("panicked: {message}")),
            Stats::default(),
            vec![],
        )
    })
}

fn replay_command(seed: u64) -> String {
    format!("ENTRYGUARD_SIM_SEED={seed} cargo test -p entryguard-tests --test simulation -- --nocapture")
}

#[test]
fn simulated_schedules_keep_the_invariants() {
    if let Some(seed) = env_u64("ENTRYGUARD_SIM_SEED") {
        let (result, stats, trace) = play(seed);
        for line in &trace {
            println!("{line}");
        }
        println!("seed {seed}: {stats:?}");
        if let Err(e) = result {
            panic!("seed {seed} failed: {e}");
        }
        return;
    }
    let count = env_u64("ENTRYGUARD_SIM_SEEDS").unwrap_or(1000);
    let first = env_u64("ENTRYGUARD_SIM_FIRST").unwrap_or(0);
    let next = Arc::new(AtomicU64::new(first));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let totals = Arc::new(Mutex::new(Stats::default()));
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .min(8);
    let started = std::time::Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let (next, failures, totals) = (next.clone(), failures.clone(), totals.clone());
            scope.spawn(move || loop {
                let seed = next.fetch_add(1, Ordering::SeqCst);
                if seed >= first + count {
                    return;
                }
                let (result, stats, _) = play(seed);
                *totals.lock().unwrap() += stats;
                if let Err(e) = result {
                    failures.lock().unwrap().push((seed, e));
                }
            });
        }
    });
    let totals = *totals.lock().unwrap();
    println!(
        "{count} schedules (seeds {first}..{}) in {:.1?}: {totals:?}",
        first + count,
        started.elapsed()
    );
    let mut failures = failures.lock().unwrap().clone();
    failures.sort();
    for (seed, e) in &failures {
        eprintln!(
            "seed {seed} failed: {e}\n  replay: {}",
            replay_command(*seed)
        );
    }
    assert!(
        failures.is_empty(),
        "{} of {count} schedules broke an invariant; first: seed {} ({})",
        failures.len(),
        failures[0].0,
        failures[0].1
    );
}
