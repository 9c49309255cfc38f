use crate::domain::Timestamp;

/// The only source of the current time for the use cases, so time can be simulated.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}
