//! Clocks for tests and the local runner's `--test-clock`: one that moves only when told, and
//! one that runs in real time from an offset that can be advanced. The real clock is
//! `runtime::SystemClock`.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use futures::future::BoxFuture;

use crate::domain::Timestamp;
use crate::ports::{Clock, Timer};

/// Real time plus an offset that can be advanced: the local runner's `--test-clock`, so expiry
/// can be seen in seconds while everything else keeps running in real time.
#[derive(Debug, Default)]
pub struct OffsetClock {
    offset: Mutex<Duration>,
}

impl OffsetClock {
    pub fn advance(&self, by: Duration) -> Timestamp {
        let mut offset = self.offset.lock().expect("clock lock");
        *offset += by;
        Utc::now() + *offset
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> Timestamp {
        Utc::now() + *self.offset.lock().expect("clock lock")
    }
}

/// A clock that moves only when told to: for tests and simulations. It is also a `Timer`: a
/// sleep ends when the clock is moved past its deadline, and `next_wake` tells a simulation
/// how far to move it when everything waits.
#[derive(Debug)]
pub struct ManualClock {
    inner: Arc<Mutex<Manual>>,
}

#[derive(Debug)]
struct Manual {
    now: Timestamp,
    sleepers: BTreeMap<u64, (Timestamp, Waker)>,
    next_sleeper: u64,
}

impl Manual {
    fn wake_due(&mut self) {
        let now = self.now;
        self.sleepers.retain(|_, (at, waker)| {
            if *at <= now {
                waker.wake_by_ref();
                false
            } else {
                true
            }
        });
    }
}

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Manual {
                now: start,
                sleepers: BTreeMap::new(),
                next_sleeper: 0,
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Manual> {
        self.inner.lock().expect("clock lock")
    }

    pub fn advance(&self, by: Duration) -> Timestamp {
        let mut m = self.lock();
        m.now += by;
        m.wake_due();
        m.now
    }

    pub fn set(&self, to: Timestamp) {
        let mut m = self.lock();
        m.now = to;
        m.wake_due();
    }

    /// When the earliest pending sleep ends, if anything sleeps.
    pub fn next_wake(&self) -> Option<Timestamp> {
        self.lock().sleepers.values().map(|(at, _)| *at).min()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        self.lock().now
    }
}

impl Timer for ManualClock {
    fn elapsed(&self) -> StdDuration {
        (self.now() - DateTime::UNIX_EPOCH)
            .to_std()
            .unwrap_or_default()
    }

    fn sleep(&self, duration: StdDuration) -> BoxFuture<'static, ()> {
        let until = self.now() + Duration::from_std(duration).unwrap_or(Duration::MAX);
        Box::pin(ManualSleep {
            clock: self.inner.clone(),
            until,
            id: None,
        })
    }
}

struct ManualSleep {
    clock: Arc<Mutex<Manual>>,
    until: Timestamp,
    id: Option<u64>,
}

impl Future for ManualSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let clock = self.clock.clone();
        let mut m = clock.lock().expect("clock lock");
        if m.now >= self.until {
            if let Some(id) = self.id.take() {
                m.sleepers.remove(&id);
            }
            return Poll::Ready(());
        }
        let id = match self.id {
            Some(id) => id,
            None => {
                m.next_sleeper += 1;
                m.next_sleeper
            }
        };
        self.id = Some(id);
        m.sleepers.insert(id, (self.until, cx.waker().clone()));
        Poll::Pending
    }
}

impl Drop for ManualSleep {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            if let Ok(mut m) = self.clock.lock() {
                m.sleepers.remove(&id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn manual_sleeps_end_when_the_clock_passes_them() {
        let clock = ManualClock::new(Utc.timestamp_opt(1_000, 0).unwrap());
        let mut short = clock.sleep(StdDuration::from_secs(5));
        let mut long = clock.sleep(StdDuration::from_secs(60));
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(short.as_mut().poll(&mut cx).is_pending());
        assert!(long.as_mut().poll(&mut cx).is_pending());
        assert_eq!(
            clock.next_wake(),
            Some(Utc.timestamp_opt(1_005, 0).unwrap())
        );
        clock.advance(Duration::seconds(5));
        assert!(short.as_mut().poll(&mut cx).is_ready());
        assert_eq!(
            clock.next_wake(),
            Some(Utc.timestamp_opt(1_060, 0).unwrap())
        );
        drop(long);
        assert_eq!(clock.next_wake(), None, "a dropped sleep wakes nobody");
        assert_eq!(clock.elapsed(), StdDuration::from_secs(1_005));
    }
}
