//! The ports: traits the use cases talk through. Adapters implement them for AWS and for the
//! embedded backend; nothing here names a cloud type.

pub mod clock;
pub mod firewall;
pub mod ids;
pub mod queue;
pub mod store;
pub mod timer;

pub use clock::Clock;
pub use firewall::{Firewall, FirewallError};
pub use ids::IdSource;
pub use queue::{Task, TaskQueue};
pub use store::Store;
pub use timer::Timer;
