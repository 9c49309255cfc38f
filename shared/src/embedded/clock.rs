use std::sync::Mutex;

use chrono::{Duration, Utc};

use crate::domain::Timestamp;
use crate::ports::Clock;

/// The real time.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Utc::now()
    }
}

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

/// A clock that moves only when told to: for tests and simulations.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<Timestamp>,
}

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        Self {
            now: Mutex::new(start),
        }
    }

    pub fn advance(&self, by: Duration) -> Timestamp {
        let mut now = self.now.lock().expect("clock lock");
        *now += by;
        *now
    }

    pub fn set(&self, to: Timestamp) {
        *self.now.lock().expect("clock lock") = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.now.lock().expect("clock lock")
    }
}
