//! The real time and randomness a deployed process runs on: the clock, the timer and the id
//! source every host (Lambda mains, the local runner, the AWS adapters' pacing) uses outside tests.
//! Tests swap in `embedded::{ManualClock, SeededIds}` through the same ports.

use std::time::Duration as StdDuration;

use chrono::Utc;
use futures::future::BoxFuture;
use rand::RngCore;
use uuid::Uuid;

use crate::domain::Timestamp;
use crate::ports::{Clock, IdSource, Timer};

/// The real time.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Utc::now()
    }
}

/// Tokio's monotonic clock and sleep: the real `Timer`.
#[derive(Debug, Clone, Copy)]
pub struct TokioTimer {
    origin: tokio::time::Instant,
}

impl Default for TokioTimer {
    fn default() -> Self {
        Self {
            origin: tokio::time::Instant::now(),
        }
    }
}

impl Timer for TokioTimer {
    fn elapsed(&self) -> StdDuration {
        self.origin.elapsed()
    }

    fn sleep(&self, duration: StdDuration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// Ids and tokens from the operating system's random source.
#[derive(Debug, Default, Clone, Copy)]
pub struct RandomIds;

impl IdSource for RandomIds {
    fn uuid(&self) -> Uuid {
        Uuid::new_v4()
    }

    fn token(&self) -> String {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        hex::encode(bytes)
    }
}
