use std::sync::Mutex;

use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use uuid::Uuid;

use crate::ports::IdSource;

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
