//! Rate limits on what costs the customer cloud calls or secrets — per user and per
//! organization —, on failed bearer-token attempts per address, and the cloud budget per
//! credential and region. Every count lives in the store (one atomic conditional write), so all
//! API instances and workers share it.
//!
//! The limits are generous for a person clicking and tight for a loop: a person starts, stops or
//! extends a session a few times an hour; a script doing it as fast as the API answers reaches
//! the per-user limit within seconds, and the per-organization limit keeps a handful of such
//! scripts from taking the organization's share of the customer's EC2 request budget.

use std::time::Duration;

use thiserror::Error;

use crate::domain::audit::AuditType;
use crate::domain::ids::OrgId;
use crate::domain::net::ClientIp;
use crate::domain::rate::{RateLimit, WindowCounter};
use crate::domain::rule::GroupRef;
use crate::ports::store::StoreError;

use super::audit::Audit;
use super::auth::hash_token;
use super::{App, Identity};

/// Rule changes (authorize or revoke) per credential and region per minute. EC2 gives each
/// account and region one bucket for mutating calls: 50 at once, refilled at 5 a second
/// (300 a minute). EntryGuard takes at most half of the refill, so the customer's own
/// infrastructure tooling always keeps the other half and the burst.
pub const CLOUD_CHANGES_PER_MINUTE: u32 = 150;
// At most half of EC2's refill of 5 a second.
const _: () = assert!(CLOUD_CHANGES_PER_MINUTE <= 5 * 60 / 2);

/// The routes that cost cloud calls or secrets, each with its own limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Starting, stopping or extending a session (EC2 calls for every resource).
    SessionChange,
    /// Validating a credential (an STS call, and a KMS decrypt for access keys).
    CredentialCheck,
    /// Creating a personal API token (a secret).
    TokenCreation,
    /// Redriving dead letters (SQS calls).
    Redrive,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Self::SessionChange => "sessions",
            Self::CredentialCheck => "credential-checks",
            Self::TokenCreation => "token-creation",
            Self::Redrive => "redrive",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActionLimits {
    pub per_user: RateLimit,
    pub per_org: RateLimit,
}

/// Every application rate limit. The defaults are the documented production numbers
/// (docs/api.md); deployments and tests may only scale them up ([`RateLimits::scaled`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    pub session_changes: ActionLimits,
    pub credential_checks: ActionLimits,
    pub token_creation: ActionLimits,
    pub redrives: ActionLimits,
    /// Failed bearer-token attempts per client address.
    pub failed_auth_per_address: RateLimit,
}

impl Default for RateLimits {
    fn default() -> Self {
        let limits = |user, org| ActionLimits {
            per_user: RateLimit::per_minute(user),
            per_org: RateLimit::per_minute(org),
        };
        Self {
            session_changes: limits(20, 200),
            credential_checks: limits(10, 30),
            token_creation: limits(10, 50),
            redrives: limits(5, 10),
            failed_auth_per_address: RateLimit::per_minute(30),
        }
    }
}

impl RateLimits {
    /// Every limit multiplied by `factor` (at least 1: limits can be raised, never switched off).
    pub fn scaled(self, factor: u32) -> Self {
        let factor = factor.max(1);
        let scale = |l: RateLimit| RateLimit {
            max: l.max.saturating_mul(factor),
            ..l
        };
        let both = |a: ActionLimits| ActionLimits {
            per_user: scale(a.per_user),
            per_org: scale(a.per_org),
        };
        Self {
            session_changes: both(self.session_changes),
            credential_checks: both(self.credential_checks),
            token_creation: both(self.token_creation),
            redrives: both(self.redrives),
            failed_auth_per_address: scale(self.failed_auth_per_address),
        }
    }

    fn of(&self, action: Action) -> ActionLimits {
        match action {
            Action::SessionChange => self.session_changes,
            Action::CredentialCheck => self.credential_checks,
            Action::TokenCreation => self.token_creation,
            Action::Redrive => self.redrives,
        }
    }
}

/// Whose allowance ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitScope {
    User,
    Organization,
    Address,
}

#[derive(Debug, Error)]
pub enum RateLimitError {
    #[error("{}; try again in {retry_after_secs} s", scope_message(*.scope))]
    Limited {
        scope: LimitScope,
        retry_after_secs: u64,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn scope_message(scope: LimitScope) -> &'static str {
    match scope {
        LimitScope::User => "You are making this request too often",
        LimitScope::Organization => "Your organization is making this request too often",
        LimitScope::Address => "Too many failed sign-in attempts from your address",
    }
}

impl App {
    /// Counts one request of `action` for the caller, against their own limit and then their
    /// organization's. A refused request is not counted, so a loop that keeps being refused
    /// does not push its wait further out.
    pub async fn within_rate(
        &self,
        limits: &RateLimits,
        action: Action,
        who: &Identity,
    ) -> Result<(), RateLimitError> {
        let limits = limits.of(action);
        let now = self.now();
        let user = limits
            .per_user
            .counter(&format!("{}/user/{}", action.as_str(), who.user.id), now);
        if self.store.count_event(&user, now).await?.is_none() {
            tracing::info!(action = action.as_str(), user_id = %who.user.id, org_id = %who.org.id, "rate limited (user)");
            return Err(limited(LimitScope::User, &user, now));
        }
        let org = limits
            .per_org
            .counter(&format!("{}/org/{}", action.as_str(), who.org.id), now);
        if self.store.count_event(&org, now).await?.is_none() {
            tracing::warn!(action = action.as_str(), user_id = %who.user.id, org_id = %who.org.id, "rate limited (organization)");
            return Err(limited(LimitScope::Organization, &org, now));
        }
        Ok(())
    }

    /// Refuses bearer-token authentication from an address whose failed attempts used up this
    /// window's allowance — whatever the token, so guessing gains nothing until the window ends.
    pub async fn sign_in_allowed(
        &self,
        limit: RateLimit,
        ip: ClientIp,
    ) -> Result<(), RateLimitError> {
        let now = self.now();
        let counter = failed_auth_counter(limit, ip, now);
        if self.store.event_count(&counter).await? >= counter.limit {
            return Err(limited(LimitScope::Address, &counter, now));
        }
        Ok(())
    }

    /// Counts a failed bearer-token attempt from `ip`. The attempt that uses up the allowance is
    /// reported: always to the operators (a warning in the log), and to the organization whose
    /// token it was when the token names one (an expired token of a known user) — an unknown
    /// token names no organization, and writing it into some organization's log would tell
    /// that organization about traffic that is not theirs.
    pub async fn sign_in_failed(&self, limit: RateLimit, ip: ClientIp, bearer: &str) {
        let now = self.now();
        let counter = failed_auth_counter(limit, ip, now);
        match self.store.count_event(&counter, now).await {
            Ok(Some(count)) if count == counter.limit => {
                tracing::warn!(client_ip = %ip, attempts = count, window_secs = limit.window.num_seconds(), "failed bearer-token attempts from one address reached the limit; refusing it until the window ends");
                if let Some(org) = self.org_of_token(bearer).await {
                    let mut audit = Audit::system(
                        org,
                        AuditType::SystemAlert,
                        format!(
                            "{count} failed sign-in attempts from {ip} within {} s, one with an expired token of this organization; further attempts from that address are refused until the window ends",
                            limit.window.num_seconds()
                        ),
                    )
                    .failed();
                    audit.ip = Some(ip.to_string());
                    self.audit(audit).await;
                }
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "could not count a failed sign-in attempt"),
        }
    }

    async fn org_of_token(&self, bearer: &str) -> Option<OrgId> {
        let record = self.store.get_token(&hash_token(bearer)).await.ok()??;
        let user = self.store.get_user(record.user_id).await.ok()??;
        Some(user.org_id)
    }

    /// Takes one rule change from the credential's budget in the group's region; when it is
    /// used up, says how long the change must wait. The changes refused in one window are
    /// counted too, and the n-th is sent `(n - 1) / budget` windows further on: a backlog comes
    /// back spread over the windows that can take it, instead of all at the next window's start
    /// to be refused again (each refusal is one more delivery of its task).
    pub(crate) async fn spend_cloud_budget(
        &self,
        group: &GroupRef,
    ) -> Result<Result<(), Duration>, StoreError> {
        let now = self.now();
        let counter = cloud_budget_counter(group, now);
        if self.store.count_event(&counter, now).await?.is_some() {
            return Ok(Ok(()));
        }
        let waiting = WindowCounter {
            key: format!("{}/waiting", counter.key),
            limit: u32::MAX,
            ..counter.clone()
        };
        let position = self
            .store
            .count_event(&waiting, now)
            .await?
            .unwrap_or(u32::MAX);
        let windows_ahead = ((position - 1) / CLOUD_CHANGES_PER_MINUTE).min(MAX_WINDOWS_AHEAD);
        // Up to a quarter of a window into the chosen one, drawn from the id source (seeded in
        // tests and simulations), so the changes of one window do not all come back at once.
        let bits = self.ids.uuid().as_u128() as u64 & ((1u64 << 53) - 1);
        let spread = Duration::from_secs(15).mul_f64(bits as f64 / (1u64 << 53) as f64);
        let window = Duration::from_secs(60);
        let wait =
            Duration::from_secs(counter.retry_after_secs(now)) + window * windows_ahead + spread;
        tracing::info!(credential_id = %group.credential_id, region = %group.region, wait_secs = wait.as_secs(), "the credential's cloud budget for this minute is spent; the change waits");
        Ok(Err(wait))
    }
}

/// The counter of the credential's rule changes in the group's region, in the minute of `now`.
pub fn cloud_budget_counter(group: &GroupRef, now: crate::domain::Timestamp) -> WindowCounter {
    RateLimit::per_minute(CLOUD_CHANGES_PER_MINUTE).counter(
        &format!("cloud/{}/{}", group.credential_id, group.region),
        now,
    )
}

/// The furthest a change is sent ahead for the cloud budget; past it, it simply tries again.
const MAX_WINDOWS_AHEAD: u32 = 10;

fn failed_auth_counter(
    limit: RateLimit,
    ip: ClientIp,
    now: crate::domain::Timestamp,
) -> WindowCounter {
    limit.counter(&format!("auth-failures/{ip}"), now)
}

fn limited(
    scope: LimitScope,
    counter: &WindowCounter,
    now: crate::domain::Timestamp,
) -> RateLimitError {
    RateLimitError::Limited {
        scope,
        retry_after_secs: counter.retry_after_secs(now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_scale_up_only() {
        let d = RateLimits::default();
        assert_eq!(d.scaled(0), d, "0 cannot switch them off");
        assert_eq!(d.scaled(1), d);
        let big = d.scaled(100);
        assert_eq!(big.session_changes.per_user.max, 2_000);
        assert_eq!(big.failed_auth_per_address.max, 3_000);
        assert_eq!(big.redrives.per_org.window, d.redrives.per_org.window);
    }

    #[test]
    fn a_user_runs_out_before_their_organization() {
        let d = RateLimits::default();
        for a in [
            d.session_changes,
            d.credential_checks,
            d.token_creation,
            d.redrives,
        ] {
            assert!(a.per_user.max < a.per_org.max, "{a:?}");
        }
    }
}
