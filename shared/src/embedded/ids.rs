//! Ids for tests and simulations; the real source is `runtime::RandomIds`.

use std::sync::Mutex;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

use crate::ports::IdSource;

/// Reproducible ids for tests and simulations.
#[derive(Debug)]
pub struct SeededIds {
    rng: Mutex<StdRng>,
}

impl SeededIds {
    pub fn new(seed: u64) -> Self {
        Self {
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
        }
    }
}

impl IdSource for SeededIds {
    fn uuid(&self) -> Uuid {
        uuid::Builder::from_random_bytes(self.rng.lock().expect("rng lock").random()).into_uuid()
    }

    fn token(&self) -> String {
        let bytes: [u8; 32] = self.rng.lock().expect("rng lock").random();
        hex::encode(bytes)
    }
}
