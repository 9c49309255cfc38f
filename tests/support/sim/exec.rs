//! A deterministic executor for the simulation: every handler is a future polled by hand, one
//! at a time, in an order chosen by the seeded RNG. The fault-injecting adapters yield at their
//! calls, so handlers interleave at port-call granularity, and can "crash" a handler: it never
//! resumes and the executor drops it, as if the process had died between two steps.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Identifies one running handler.
pub type TaskId = u64;

/// How likely each injected event is at one port call. All zero: a calm world.
#[derive(Debug, Clone, Copy, Default)]
pub struct Chaos {
    /// The handler dies at this call (before or after the real call, equally likely).
    pub crash: f64,
    /// The call returns a transient error (before or after taking effect, equally likely).
    pub error: f64,
    /// The handler yields to the others before the call.
    pub yield_: f64,
}

/// What a port call must do, decided by the RNG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    Proceed,
    CrashBefore,
    CrashAfter,
    FailBefore,
    FailAfter,
}

struct State {
    rng: StdRng,
    chaos: Chaos,
    current: Option<TaskId>,
    crashed: Vec<TaskId>,
    /// What each task is, for the crash log.
    labels: BTreeMap<TaskId, String>,
    crashes: u64,
    errors: u64,
}

/// Shared by the executor and the fault-injecting adapters (which must be `Send + Sync`).
#[derive(Clone)]
pub struct Control(Arc<Mutex<State>>);

impl Control {
    pub fn new(seed: u64) -> Self {
        Self(Arc::new(Mutex::new(State {
            rng: StdRng::seed_from_u64(seed),
            chaos: Chaos::default(),
            current: None,
            crashed: Vec::new(),
            labels: BTreeMap::new(),
            crashes: 0,
            errors: 0,
        })))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().expect("simulation control lock")
    }

    pub fn set_chaos(&self, chaos: Chaos) {
        self.lock().chaos = chaos;
    }

    /// A uniform draw in `0..n` from the simulation's one RNG.
    pub fn below(&self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        self.lock().rng.random_range(0..n)
    }

    pub fn chance(&self, p: f64) -> bool {
        p > 0.0 && self.lock().rng.random_bool(p.min(1.0))
    }

    pub fn current(&self) -> Option<TaskId> {
        self.lock().current
    }

    pub fn current_label(&self) -> Option<String> {
        let s = self.lock();
        s.current.and_then(|id| s.labels.get(&id).cloned())
    }

    /// Decides the fate of one port call made by the current task. Calls made outside a task
    /// (set-up, checks) always proceed.
    pub fn fate(&self, can_fail: bool) -> Fate {
        let mut s = self.lock();
        if s.current.is_none() {
            return Fate::Proceed;
        }
        let chaos = s.chaos;
        if chaos.crash > 0.0 && s.rng.random_bool(chaos.crash) {
            s.crashes += 1;
            return if s.rng.random_bool(0.5) {
                Fate::CrashBefore
            } else {
                Fate::CrashAfter
            };
        }
        if can_fail && chaos.error > 0.0 && s.rng.random_bool(chaos.error) {
            s.errors += 1;
            return if s.rng.random_bool(0.5) {
                Fate::FailBefore
            } else {
                Fate::FailAfter
            };
        }
        Fate::Proceed
    }

    /// A yield point: maybe lets the other handlers run first.
    pub async fn maybe_yield(&self) {
        let yields = {
            let mut s = self.lock();
            if s.current.is_none() || s.chaos.yield_ <= 0.0 {
                0
            } else {
                let p = s.chaos.yield_;
                let mut n = 0;
                while n < 4 && s.rng.random_bool(p) {
                    n += 1;
                }
                n
            }
        };
        for _ in 0..yields {
            YieldOnce(false).await;
        }
    }

    /// The current handler dies here: it never resumes, and the executor drops it.
    pub async fn crash(&self) {
        {
            let mut s = self.lock();
            if let Some(id) = s.current {
                s.crashed.push(id);
            }
        }
        std::future::pending::<()>().await
    }

    pub fn counts(&self) -> (u64, u64) {
        let s = self.lock();
        (s.crashes, s.errors)
    }
}

struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

type Boxed<T> = Pin<Box<dyn Future<Output = T>>>;

struct Task<T> {
    id: TaskId,
    fut: Boxed<T>,
    ready: Arc<Flag>,
}

/// What polling one task led to.
pub enum Step<T> {
    /// Nothing was ready.
    Idle,
    Pending,
    Done(TaskId, T),
    Crashed(TaskId, String),
}

/// The set of running handlers. Single-threaded: futures need not be `Send`.
pub struct Executor<T> {
    ctl: Control,
    tasks: Vec<Task<T>>,
    next_id: TaskId,
}

impl<T> Executor<T> {
    pub fn new(ctl: Control) -> Self {
        Self {
            ctl,
            tasks: Vec::new(),
            next_id: 1,
        }
    }

    pub fn spawn(&mut self, label: String, fut: impl Future<Output = T> + 'static) -> TaskId {
        let id = self.next_id;
        self.next_id += 1;
        self.ctl.lock().labels.insert(id, label);
        self.tasks.push(Task {
            id,
            fut: Box::pin(fut),
            ready: Arc::new(Flag(AtomicBool::new(true))),
        });
        id
    }

    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    pub fn any_ready(&self) -> bool {
        self.tasks.iter().any(|t| t.ready.0.load(Ordering::SeqCst))
    }

    /// Polls one ready task, chosen at random.
    pub fn step(&mut self) -> Step<T> {
        let ready: Vec<usize> = (0..self.tasks.len())
            .filter(|&i| self.tasks[i].ready.0.load(Ordering::SeqCst))
            .collect();
        if ready.is_empty() {
            return Step::Idle;
        }
        let i = ready[self.ctl.below(ready.len() as u64) as usize];
        let id = self.tasks[i].id;
        self.tasks[i].ready.0.store(false, Ordering::SeqCst);
        let waker = Waker::from(self.tasks[i].ready.clone());
        let mut cx = Context::from_waker(&waker);
        self.ctl.lock().current = Some(id);
        let polled = self.tasks[i].fut.as_mut().poll(&mut cx);
        let crashed = {
            let mut s = self.ctl.lock();
            s.current = None;
            let crashed = s.crashed.contains(&id);
            s.crashed.retain(|c| *c != id);
            crashed
        };
        match polled {
            Poll::Ready(out) => {
                self.tasks.swap_remove(i);
                self.ctl.lock().labels.remove(&id);
                Step::Done(id, out)
            }
            Poll::Pending if crashed => {
                self.tasks.swap_remove(i);
                let label = self.ctl.lock().labels.remove(&id).unwrap_or_default();
                Step::Crashed(id, label)
            }
            Poll::Pending => Step::Pending,
        }
    }
}
