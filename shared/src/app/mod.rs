//! Use cases. They depend only on the ports, so the same code runs in the Lambdas, the local
//! runner and the tests.

pub mod address_proofs;
pub mod admin;
pub mod audit;
pub mod auth;
pub mod bootstrap;
pub mod credential_check;
pub mod delivery;
pub mod docs;
pub mod group_batch;
pub mod live_access;
pub mod notifications;
pub mod operator;
pub mod rate_limit;
pub mod reconcile;
pub mod rules;
pub mod sessions;
pub mod sweeper;
pub mod tokens;
pub mod worker;

use std::sync::Arc;

use crate::domain::session::{Session, TransitionError};
use crate::domain::{ids::SessionId, Timestamp};
use crate::ports::store::{StoreError, UpdateError};
use crate::ports::{
    Clock, CredentialVerifier, Directory, Firewall, IdSource, Metric, Metrics, SecretSealer, Store,
    TaskQueue, Timer,
};

pub use auth::Identity;

/// Everything the use cases need, built once per process (or Lambda cold start).
#[derive(Clone)]
pub struct App {
    pub store: Arc<dyn Store>,
    pub queue: Arc<dyn TaskQueue>,
    pub firewall: Arc<dyn Firewall>,
    pub clock: Arc<dyn Clock>,
    /// Waits in the application's time, so a simulation's waits follow its clock.
    pub timer: Arc<dyn Timer>,
    pub ids: Arc<dyn IdSource>,
    /// Encrypts credential secrets before they are stored.
    pub sealer: Arc<dyn SecretSealer>,
    /// Checks credentials with their cloud provider.
    pub verifier: Arc<dyn CredentialVerifier>,
    /// The people's sign-in accounts, kept in step with the users.
    pub directory: Arc<dyn Directory>,
    /// Where the operational figures go (CloudWatch in the Lambdas, memory locally).
    pub metrics: Arc<dyn Metrics>,
    /// Webhook deliveries (the worker sends them; everyone else only queues them).
    pub notifier: notifications::Notifier,
}

/// Why a read-modify-write of a session did not happen.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MutateError<E> {
    #[error("session not found")]
    Missing,
    #[error(transparent)]
    Rejected(E),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How many times a conditional session write is retried when another writer got there first.
const MAX_CAS_ATTEMPTS: usize = 50;

impl App {
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Reads a session, applies `change` and writes it back only if nobody else wrote in between,
    /// retrying on conflicts. Releases the user's concurrent-session slot in the same write when
    /// the change ends the session's claim to one.
    pub(crate) async fn mutate_session<T, E>(
        &self,
        id: SessionId,
        mut change: impl FnMut(&mut Session, Timestamp) -> Result<T, E>,
    ) -> Result<(Session, T), MutateError<E>> {
        for _ in 0..MAX_CAS_ATTEMPTS {
            let Some(current) = self.store.get_session(id).await? else {
                return Err(MutateError::Missing);
            };
            let mut next = current.clone();
            let out = change(&mut next, self.now()).map_err(MutateError::Rejected)?;
            if next == current {
                return Ok((next, out));
            }
            next.version = current.version + 1;
            let release = current.status().holds_slot() && !next.status().holds_slot();
            match self
                .store
                .update_session(&next, current.version, release)
                .await
            {
                Ok(()) => {
                    self.record_transition(&current, &next);
                    self.notify_status_change(current.status(), &next).await;
                    return Ok((next, out));
                }
                Err(UpdateError::Conflict) => continue,
                Err(UpdateError::Missing) => return Err(MutateError::Missing),
                Err(UpdateError::Store(e)) => return Err(MutateError::Store(e)),
            }
        }
        Err(MutateError::Store(StoreError::Unavailable(format!(
            "session {id} kept changing under {MAX_CAS_ATTEMPTS} attempts"
        ))))
    }
}

impl App {
    /// Every stored session change passes here once, after its write: the one place that sees
    /// a session reach its outcome or be expired.
    fn record_transition(&self, before: &Session, after: &Session) {
        use crate::domain::session::{EndReason, SessionStatus};
        let since = |t: Timestamp| (self.now() - t).to_std().unwrap_or_default();
        if before.status() == SessionStatus::Pending {
            match after.status() {
                SessionStatus::Active => self.metrics.record(Metric::SessionActive {
                    after: since(after.created_at),
                }),
                SessionStatus::Partial => self.metrics.record(Metric::SessionPartial),
                SessionStatus::Failed => self.metrics.record(Metric::SessionFailed),
                _ => {}
            }
        }
        if before.end.is_none() && after.end == Some(EndReason::Expired) {
            self.metrics
                .record(Metric::ExpiryLag(since(after.expires_at)));
        }
    }
}

impl From<MutateError<TransitionError>> for StoreError {
    fn from(e: MutateError<TransitionError>) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}
