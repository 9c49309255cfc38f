//! The ports: traits the use cases talk through. Adapters implement them for AWS and for the
//! embedded backend; nothing here names a cloud type.

pub mod clock;
pub mod directory;
pub mod firewall;
pub mod ids;
pub mod metrics;
pub mod queue;
pub mod secrets;
pub mod store;
pub mod timer;
pub mod verifier;
pub mod webhooks;

pub use clock::Clock;
pub use directory::{Directory, DirectoryError};
pub use firewall::{Firewall, FirewallError};
pub use ids::IdSource;
pub use metrics::{Metric, Metrics, NoMetrics};
pub use queue::{Task, TaskQueue};
pub use secrets::{SealContext, SealError, SecretSealer};
pub use store::Store;
pub use timer::Timer;
pub use verifier::CredentialVerifier;
pub use webhooks::{NoWebhookSender, WebhookSender};
