//! Acquiring and releasing rules: the reference counting.
//!
//! A holder is added or removed in the store first; the cloud is changed only by whoever holds
//! the rule's lease, so an authorize and a revoke of the same rule never race. The cloud rule is
//! created when the first holder arrives and revoked only when the last one leaves.

use chrono::Duration;
use thiserror::Error;

use crate::domain::audit::AuditType;
use crate::domain::rule::{CloudRuleId, CloudState, GroupRef, LeaseGrant, RuleKey, RuleState};
use crate::domain::Timestamp;
use crate::ports::firewall::FirewallError;
use crate::ports::store::{GroupGrant, StoreError};

use super::audit::Audit;
use super::App;

/// Longer than any single cloud call takes, short enough that a crashed worker's lease frees
/// the rule well within the retry schedule.
pub const LEASE_SECS: i64 = 60;

/// The longest one firewall call may take, waits for the rate limit and retries included. A
/// cloud change is started only while at least this much of the lease is left, so a worker that
/// was paused (or slowed down) never changes a rule after its lease passed to someone else.
pub const CALL_BUDGET_SECS: i64 = 30;

/// Holders read per request when a pass goes through a rule's holders (there may be thousands).
pub const HOLDER_PAGE: usize = 500;

#[derive(Debug, Error)]
pub enum RuleError {
    /// Another worker is changing this rule right now; try again shortly.
    #[error("the rule is being changed by another worker")]
    Busy,
    /// The credential's cloud budget for this minute is spent: the change waits this long. Not
    /// a failure — nothing was tried.
    #[error("the credential's cloud budget is spent for now")]
    OverBudget(std::time::Duration),
    #[error(transparent)]
    Firewall(#[from] FirewallError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a release did in the cloud.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Released {
    /// Other holders remain, or the rule was already gone: nothing changed in the cloud.
    Kept,
    Revoked,
    /// The security group no longer exists, so neither does the rule.
    GroupGone,
}

/// A rule's lease, taken for one cloud change.
struct Leased {
    owner: String,
    until: Timestamp,
    state: RuleState,
    /// What is known of the rule in the cloud.
    known: CloudState,
}

impl App {
    /// Revokes the rule if it has no holders and may exist in the cloud. The sweeper also calls
    /// this for rules whose last removal failed, so no rule outlives its sessions for long.
    pub async fn revoke_if_unheld(&self, key: &RuleKey) -> Result<Released, RuleError> {
        self.revoke_unheld(key, None, false).await
    }

    /// Revokes an unheld rule. `note` is recorded once the revoke succeeded and before the lease
    /// is given back, so a crash in between makes the next attempt revoke and record again: the
    /// sweeper's revokes, made on nobody's behalf, are never missing from the audit log.
    /// `observed` says the rule was just seen in the cloud, whatever the record believes.
    pub(crate) async fn revoke_unheld(
        &self,
        key: &RuleKey,
        note: Option<Audit>,
        observed: bool,
    ) -> Result<Released, RuleError> {
        let Leased {
            owner,
            until,
            state,
            known: cloud,
        } = self.take_lease(key).await?;
        if state.count() > 0 || (cloud == CloudState::Absent && !observed) {
            // Someone took the rule again meanwhile: it stays, and it is theirs to keep.
            self.release_lease(key, &state.group, &owner, cloud, None)
                .await?;
            return Ok(Released::Kept);
        }
        if !self.lease_allows_call(until) {
            self.release_lease(key, &state.group, &owner, cloud, None)
                .await?;
            return Err(RuleError::Busy);
        }
        self.within_cloud_budget(key, &owner, &state, cloud).await?;
        // Recorded first, as for a re-apply: a removal is logged even if this worker dies right
        // after the call (whoever takes over finds the rule gone, with nothing left to say). A
        // removal that then fails for good says so in an event of its own.
        if let Some(note) = &note {
            self.record(note.clone()).await?;
        }
        // By the id kept on the record: no listing of the group for each revoke.
        match self
            .firewall
            .revoke(&state.group, &key.rule, state.cloud_rule_id.as_ref())
            .await
        {
            Ok(()) => {
                self.release_lease(key, &state.group, &owner, CloudState::Absent, None)
                    .await?;
                Ok(Released::Revoked)
            }
            Err(FirewallError::GroupNotFound(_)) => {
                self.release_lease(key, &state.group, &owner, CloudState::Absent, None)
                    .await?;
                Ok(Released::GroupGone)
            }
            Err(e) => {
                let cloud = if e.is_transient() {
                    CloudState::Unknown
                } else {
                    if let Some(note) = note {
                        self.record(Self::removal_failed(note, key, &e)).await?;
                    }
                    cloud
                };
                self.release_lease(key, &state.group, &owner, cloud, None)
                    .await?;
                Err(e.into())
            }
        }
    }

    /// The event that takes back a removal recorded ahead of its call.
    fn removal_failed(note: Audit, key: &RuleKey, error: &FirewallError) -> Audit {
        let mut failed = Audit::system(
            note.org_id,
            AuditType::RuleFailed,
            format!(
                "Could not remove {} on {} for {}: {error}",
                key.rule.ports, key.security_group_id, key.rule.cidr
            ),
        )
        .failed();
        failed.session_id = note.session_id;
        failed.resource_id = note.resource_id;
        failed
    }

    /// Authorizes a rule again that still has holders but was found missing from the cloud
    /// (deleted by hand). `note` is recorded first: a correction is logged even if the pass
    /// dies right after it. Answers whether the rule was re-applied.
    pub(crate) async fn reapply_if_held(
        &self,
        key: &RuleKey,
        note: Audit,
    ) -> Result<bool, RuleError> {
        let Leased {
            owner,
            until,
            state,
            known,
        } = self.take_lease(key).await?;
        if state.count() == 0 || !self.lease_allows_call(until) {
            self.release_lease(key, &state.group, &owner, known, None)
                .await?;
            return Ok(false);
        }
        self.within_cloud_budget(key, &owner, &state, known).await?;
        self.record(note).await?;
        match self.firewall.authorize(&state.group, &key.rule).await {
            Ok(id) => {
                self.release_lease(key, &state.group, &owner, CloudState::Present, id.as_ref())
                    .await?;
                Ok(true)
            }
            Err(e) => {
                // It was seen missing, and may still be: whoever comes next checks again.
                self.release_lease(key, &state.group, &owner, CloudState::Unknown, None)
                    .await?;
                Err(e.into())
            }
        }
    }

    /// The cloud lists a held rule as EntryGuard's under `id` while its record names another id
    /// or is unsure the rule is there: a change whose answer was lost re-created it. The record
    /// follows the cloud, unless the record moved since `seen` was read (then the listing may be
    /// older than the change that moved it, and the next pass looks again). Answers whether the
    /// record was corrected.
    pub(crate) async fn adopt_listed_rule(
        &self,
        seen: &RuleState,
        id: &CloudRuleId,
    ) -> Result<bool, RuleError> {
        let Leased {
            owner,
            state,
            known,
            ..
        } = self.take_lease(&seen.key).await?;
        let unmoved = state.count() > 0
            && state.cloud == seen.cloud
            && state.cloud_rule_id == seen.cloud_rule_id;
        let (cloud, rule_id) = if unmoved {
            (CloudState::Present, Some(id))
        } else {
            (known, None)
        };
        self.release_lease(&seen.key, &state.group, &owner, cloud, rule_id)
            .await?;
        Ok(unmoved)
    }

    /// Spends one change of the credential's cloud budget, or gives the lease back unchanged and
    /// says how long the change must wait.
    async fn within_cloud_budget(
        &self,
        key: &RuleKey,
        owner: &str,
        state: &RuleState,
        known: CloudState,
    ) -> Result<(), RuleError> {
        if let Err(wait) = self.spend_cloud_budget(&state.group).await? {
            self.release_lease(key, &state.group, owner, known, None)
                .await?;
            return Err(RuleError::OverBudget(wait));
        }
        Ok(())
    }

    /// Takes the rule's lease for one cloud change, and its group's first: a group batch and
    /// a change of one rule never touch the same group at once.
    async fn take_lease(&self, key: &RuleKey) -> Result<Leased, RuleError> {
        let owner = self.ids.token();
        let now = self.now();
        let until = now + Duration::seconds(LEASE_SECS);
        let Some(record) = self.store.get_rule(key).await? else {
            return Err(StoreError::Corrupt(format!("no rule record for {key}")).into());
        };
        let group_stale = match self
            .store
            .group_lease(&record.group, &owner, now, until)
            .await?
        {
            GroupGrant::Busy => return Err(RuleError::Busy),
            GroupGrant::Granted { stale } => stale,
        };
        let (state, stale) = match self.store.rule_lease(key, &owner, now, until).await {
            Ok(LeaseGrant::Granted { state, stale }) => (*state, stale || group_stale),
            Ok(LeaseGrant::Busy) => {
                self.store.group_release(&record.group, &owner).await?;
                return Err(RuleError::Busy);
            }
            Err(e) => {
                self.store.group_release(&record.group, &owner).await?;
                return Err(e.into());
            }
        };
        // A lease that ran out mid-change says nothing reliable about the cloud.
        let known = if stale {
            CloudState::Unknown
        } else {
            state.cloud
        };
        Ok(Leased {
            owner,
            until,
            state,
            known,
        })
    }

    /// Gives the rule's lease back with what is now known of the rule, then its group's.
    async fn release_lease(
        &self,
        key: &RuleKey,
        group: &GroupRef,
        owner: &str,
        cloud: CloudState,
        rule_id: Option<&CloudRuleId>,
    ) -> Result<(), StoreError> {
        self.store
            .rule_release_lease(key, owner, cloud, rule_id)
            .await?;
        self.store.group_release(group, owner).await
    }

    /// Whether a cloud call started now would end well within a lease that runs until `until`.
    fn lease_allows_call(&self, until: Timestamp) -> bool {
        let ok = self.now() + Duration::seconds(CALL_BUDGET_SECS) <= until;
        if !ok {
            tracing::warn!(
                "a worker was paused while holding a rule's lease; leaving the change to the next"
            );
        }
        ok
    }
}
