//! Sessions and their per-resource entries: the state machine of the product docs' lifecycle.
//!
//! The session status is never stored as a free field: it is derived from the entries and from
//! whether an end (stop or expiry) has been requested, so the two can never disagree. Every change
//! goes through a method here that rejects transitions the lifecycle does not have.

use chrono::Duration;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::address_proof::SessionAddresses;
use super::ids::{OrgId, ResourceId, SessionId, UserId};
use super::model::Name;
use super::net::{ClientIp, Ipv6Prefix, PortRange};
use super::rule::{GroupRef, HolderId, IngressRule, RuleKey};
use super::tier::Hours;
use super::Timestamp;

/// How long a session may sit with work in flight before the sweeper sends its messages again.
pub const STALL_TIMEOUT_SECS: i64 = 120;

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum SessionStatus {
    Pending,
    Active,
    Partial,
    Failed,
    Expiring,
    Expired,
    Cancelled,
}

impl SessionStatus {
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Failed | Self::Expired | Self::Cancelled)
    }

    /// Counts against the plan's concurrent-session limit.
    pub fn holds_slot(self) -> bool {
        matches!(self, Self::Pending | Self::Active | Self::Partial)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Active => "ACTIVE",
            Self::Partial => "PARTIAL",
            Self::Failed => "FAILED",
            Self::Expiring => "EXPIRING",
            Self::Expired => "EXPIRED",
            Self::Cancelled => "CANCELLED",
        }
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum EntryStatus {
    Pending,
    Applying,
    Applied,
    Failed,
    Removing,
    Removed,
}

impl EntryStatus {
    pub fn is_settled(self) -> bool {
        matches!(self, Self::Applied | Self::Failed | Self::Removed)
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Failed | Self::Removed)
    }

    /// The only entry transitions there are.
    fn may_become(self, next: EntryStatus) -> bool {
        use EntryStatus::*;
        matches!(
            (self, next),
            (Pending, Applying)
                | (Pending, Removed)
                | (Applying, Applied)
                | (Applying, Failed)
                | (Applying, Removing)
                | (Applied, Removing)
                | (Removing, Removed)
                | (Removing, Failed)
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum EndReason {
    Stopped,
    Expired,
}

/// One resource × one IP of a session. It keeps a snapshot of the resource's group and ports, so
/// the rules it removes are exactly the ones it applied even if an admin edits the resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub index: u32,
    pub resource_id: ResourceId,
    pub resource_name: Name,
    pub group: GroupRef,
    pub ports: Vec<PortRange>,
    pub ip: ClientIp,
    /// How much of an IPv6 `ip` the entry opens, fixed when the session started (entries from
    /// before the setting opened the host).
    #[serde(default, skip_serializing_if = "Ipv6Prefix::is_host")]
    pub ipv6_prefix: Ipv6Prefix,
    pub status: EntryStatus,
    /// Transient failures in the current phase (apply or remove).
    pub attempts: u32,
    pub error: Option<String>,
    /// After a transient failure: not tried again before this time (the retry schedule is the
    /// entry's, whichever message or batch comes by first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<Timestamp>,
}

impl Entry {
    pub fn rules(&self) -> Vec<RuleKey> {
        self.ports
            .iter()
            .map(|ports| RuleKey {
                region: self.group.region.clone(),
                security_group_id: self.group.security_group_id.clone(),
                rule: IngressRule {
                    ports: *ports,
                    cidr: self.ip.network(self.ipv6_prefix),
                },
            })
            .collect()
    }
}

/// A resource as the session snapshots it.
#[derive(Debug, Clone)]
pub struct EntryTarget {
    pub resource_id: ResourceId,
    pub resource_name: Name,
    pub group: GroupRef,
    pub ports: Vec<PortRange>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    pub id: SessionId,
    pub org_id: OrgId,
    pub user_id: UserId,
    pub ip_addresses: Vec<ClientIp>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub updated_at: Timestamp,
    pub ended_at: Option<Timestamp>,
    pub end: Option<EndReason>,
    pub entries: Vec<Entry>,
    /// Optimistic-concurrency version: every stored change increments it by one.
    pub version: u64,
    /// The administrator who stopped the session, when it was not its own user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_by: Option<StoppedBy>,
}

/// Who ended someone else's session, so its user sees why it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoppedBy {
    pub user_id: UserId,
    pub email: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TransitionError {
    #[error("session {status:?} cannot be stopped")]
    NotStoppable { status: SessionStatus },
    #[error("session {status:?} cannot be extended")]
    NotExtendable { status: SessionStatus },
    #[error("session cannot be extended past its maximum total duration of {max_hours} hours")]
    ExtensionExceedsMaximum { max_hours: u8 },
    #[error("session is not due to expire")]
    NotDue,
    #[error("session has no entry {0}")]
    NoSuchEntry(u32),
    #[error("entry cannot go from {from:?} to {to:?}")]
    IllegalEntryTransition { from: EntryStatus, to: EntryStatus },
}

/// What the worker must do next for an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryWork {
    /// Acquire the entry's rules.
    Apply,
    /// Release the entry's rules.
    Remove,
    /// Nothing: the entry is settled.
    Nothing,
}

impl Session {
    /// A session for one address.
    pub fn new(
        id: SessionId,
        org_id: OrgId,
        user_id: UserId,
        ip: ClientIp,
        now: Timestamp,
        duration: Hours,
        targets: Vec<EntryTarget>,
    ) -> Self {
        Self::for_addresses(id, org_id, user_id, ip.into(), now, duration, targets)
    }

    /// One entry per resource × address, resource by resource.
    pub fn for_addresses(
        id: SessionId,
        org_id: OrgId,
        user_id: UserId,
        addresses: SessionAddresses,
        now: Timestamp,
        duration: Hours,
        targets: Vec<EntryTarget>,
    ) -> Self {
        let ipv6_prefix = addresses.ipv6_prefix();
        let addresses = addresses.into_vec();
        let entries = targets
            .into_iter()
            .flat_map(|t| addresses.iter().map(move |ip| (t.clone(), *ip)))
            .enumerate()
            .map(|(i, (t, ip))| Entry {
                index: i as u32,
                resource_id: t.resource_id,
                resource_name: t.resource_name,
                group: t.group,
                ports: t.ports,
                ip,
                ipv6_prefix,
                status: EntryStatus::Pending,
                attempts: 0,
                error: None,
                retry_at: None,
            })
            .collect();
        Self {
            id,
            org_id,
            user_id,
            ip_addresses: addresses,
            created_at: now,
            expires_at: now + duration.as_duration(),
            updated_at: now,
            ended_at: None,
            end: None,
            entries,
            version: 0,
            stopped_by: None,
        }
    }

    pub fn status(&self) -> SessionStatus {
        let all = |s: EntryStatus| self.entries.iter().all(|e| e.status == s);
        match self.end {
            Some(reason) => {
                if self.entries.iter().all(|e| e.status.is_terminal()) {
                    match reason {
                        EndReason::Stopped => SessionStatus::Cancelled,
                        EndReason::Expired => SessionStatus::Expired,
                    }
                } else {
                    SessionStatus::Expiring
                }
            }
            None => {
                if !self.entries.iter().all(|e| e.status.is_settled()) {
                    SessionStatus::Pending
                } else if all(EntryStatus::Applied) {
                    SessionStatus::Active
                } else if all(EntryStatus::Failed) {
                    SessionStatus::Failed
                } else {
                    SessionStatus::Partial
                }
            }
        }
    }

    pub fn entry(&self, index: u32) -> Result<&Entry, TransitionError> {
        self.entries
            .get(index as usize)
            .ok_or(TransitionError::NoSuchEntry(index))
    }

    fn entry_mut(&mut self, index: u32) -> Result<&mut Entry, TransitionError> {
        self.entries
            .get_mut(index as usize)
            .ok_or(TransitionError::NoSuchEntry(index))
    }

    pub fn holder(&self, index: u32) -> HolderId {
        HolderId::new(self.id, index)
    }

    /// When the sweeper should next look at this session: at expiry, or, while work is in
    /// flight, when that work would count as stalled. `None` once the session has ended.
    pub fn next_check_at(&self) -> Option<Timestamp> {
        let status = self.status();
        if status.is_terminal() {
            return None;
        }
        let stall = self.updated_at + Duration::seconds(STALL_TIMEOUT_SECS);
        let in_flight = !self.entries.iter().all(|e| e.status.is_settled())
            || status == SessionStatus::Expiring;
        match (self.end.is_some(), in_flight) {
            (false, false) => Some(self.expires_at),
            (false, true) => Some(self.expires_at.min(stall)),
            (true, _) => Some(stall),
        }
    }

    /// Entries whose work is unfinished: the ones to (re)send to the worker.
    pub fn unsettled_entries(&self) -> Vec<u32> {
        self.entries
            .iter()
            .filter(|e| match e.status {
                EntryStatus::Pending | EntryStatus::Applying | EntryStatus::Removing => true,
                EntryStatus::Applied => self.end.is_some(),
                EntryStatus::Failed | EntryStatus::Removed => false,
            })
            .map(|e| e.index)
            .collect()
    }

    /// The sweeper found the session's work stalled (a lost message, a crashed worker): it resends
    /// the unfinished entries and restarts the stall timer.
    pub fn redrive(&mut self, now: Timestamp) -> Result<Vec<u32>, TransitionError> {
        let stalled = self.next_check_at().is_some_and(|at| at <= now)
            && (self.end.is_some() || !self.entries.iter().all(|e| e.status.is_settled()));
        if !stalled {
            return Err(TransitionError::NotDue);
        }
        self.touch(now);
        Ok(self.unsettled_entries())
    }

    /// Manual stop. Returns the entries the worker must now remove.
    pub fn stop(&mut self, now: Timestamp) -> Result<Vec<u32>, TransitionError> {
        let status = self.status();
        if !status.holds_slot() {
            return Err(TransitionError::NotStoppable { status });
        }
        Ok(self.begin_end(EndReason::Stopped, now))
    }

    /// Expiry by the sweeper. Returns the entries the worker must now remove.
    pub fn expire(&mut self, now: Timestamp) -> Result<Vec<u32>, TransitionError> {
        if !self.status().holds_slot() || now < self.expires_at {
            return Err(TransitionError::NotDue);
        }
        Ok(self.begin_end(EndReason::Expired, now))
    }

    fn begin_end(&mut self, reason: EndReason, now: Timestamp) -> Vec<u32> {
        self.end = Some(reason);
        for e in &mut self.entries {
            match e.status {
                // Never picked up by the worker: nothing was applied, nothing to undo.
                EntryStatus::Pending => e.status = EntryStatus::Removed,
                EntryStatus::Applied => {
                    e.status = EntryStatus::Removing;
                    e.attempts = 0;
                }
                // An Applying entry is finished by the worker, which then sees the end and undoes it.
                _ => {}
            }
        }
        self.touch(now);
        self.unsettled_entries()
    }

    pub fn extend(
        &mut self,
        hours: Hours,
        max_total: Duration,
        max_hours: u8,
        now: Timestamp,
    ) -> Result<(), TransitionError> {
        let status = self.status();
        if !matches!(status, SessionStatus::Active | SessionStatus::Partial)
            || now >= self.expires_at
        {
            return Err(TransitionError::NotExtendable { status });
        }
        let new_expiry = self.expires_at + hours.as_duration();
        if new_expiry - self.created_at > max_total {
            return Err(TransitionError::ExtensionExceedsMaximum { max_hours });
        }
        self.expires_at = new_expiry;
        self.touch(now);
        Ok(())
    }

    /// What the worker should do for an entry, given the session's state.
    pub fn work_for(&self, index: u32) -> Result<EntryWork, TransitionError> {
        let entry = self.entry(index)?;
        let ending = self.end.is_some();
        Ok(match entry.status {
            EntryStatus::Pending if ending => EntryWork::Nothing,
            EntryStatus::Pending | EntryStatus::Applying => {
                if ending {
                    EntryWork::Remove
                } else {
                    EntryWork::Apply
                }
            }
            EntryStatus::Applied if ending => EntryWork::Remove,
            EntryStatus::Removing => EntryWork::Remove,
            EntryStatus::Applied | EntryStatus::Failed | EntryStatus::Removed => EntryWork::Nothing,
        })
    }

    fn set_entry(&mut self, index: u32, to: EntryStatus) -> Result<&mut Entry, TransitionError> {
        let entry = self.entry_mut(index)?;
        if entry.status != to {
            if !entry.status.may_become(to) {
                return Err(TransitionError::IllegalEntryTransition {
                    from: entry.status,
                    to,
                });
            }
            entry.status = to;
        }
        Ok(entry)
    }

    /// The worker has started applying the entry.
    pub fn entry_applying(&mut self, index: u32, now: Timestamp) -> Result<(), TransitionError> {
        self.set_entry(index, EntryStatus::Applying)?;
        self.touch(now);
        Ok(())
    }

    /// All the entry's rules are in place. If the session was ended meanwhile, the entry goes on
    /// to removal instead; returns the status it took.
    pub fn entry_applied(
        &mut self,
        index: u32,
        now: Timestamp,
    ) -> Result<EntryStatus, TransitionError> {
        let to = if self.end.is_some() {
            EntryStatus::Removing
        } else {
            EntryStatus::Applied
        };
        let entry = self.set_entry(index, to)?;
        entry.attempts = 0;
        entry.error = None;
        entry.retry_at = None;
        self.touch(now);
        Ok(to)
    }

    /// A transient failure that will be retried at `retry_at`; returns the number of attempts
    /// so far.
    pub fn entry_retrying(
        &mut self,
        index: u32,
        error: String,
        retry_at: Timestamp,
        now: Timestamp,
    ) -> Result<u32, TransitionError> {
        let entry = self.entry_mut(index)?;
        if !matches!(entry.status, EntryStatus::Applying | EntryStatus::Removing) {
            return Err(TransitionError::IllegalEntryTransition {
                from: entry.status,
                to: entry.status,
            });
        }
        entry.attempts += 1;
        entry.error = Some(error);
        entry.retry_at = Some(retry_at);
        let attempts = entry.attempts;
        self.touch(now);
        Ok(attempts)
    }

    pub fn entry_failed(
        &mut self,
        index: u32,
        error: String,
        now: Timestamp,
    ) -> Result<(), TransitionError> {
        let entry = self.set_entry(index, EntryStatus::Failed)?;
        entry.error = Some(error);
        entry.retry_at = None;
        self.touch(now);
        Ok(())
    }

    pub fn entry_removed(&mut self, index: u32, now: Timestamp) -> Result<(), TransitionError> {
        let entry = self.set_entry(index, EntryStatus::Removed)?;
        entry.attempts = 0;
        entry.retry_at = None;
        self.touch(now);
        Ok(())
    }

    fn touch(&mut self, now: Timestamp) {
        self.updated_at = now;
        if self.status().is_terminal() && self.ended_at.is_none() {
            self.ended_at = Some(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::CredentialId;
    use crate::domain::model::Provider;
    use chrono::TimeZone;
    use uuid::Uuid;

    fn t0() -> Timestamp {
        chrono::Utc
            .with_ymd_and_hms(2026, 11, 22, 10, 0, 0)
            .unwrap()
    }

    fn target(n: u8) -> EntryTarget {
        EntryTarget {
            resource_id: ResourceId::from_uuid(Uuid::from_u128(n as u128)),
            resource_name: format!("res-{n}").parse().unwrap(),
            group: GroupRef {
                credential_id: CredentialId::from_uuid(Uuid::from_u128(99)),
                provider: Provider::Simulated,
                region: "eu-west-1".parse().unwrap(),
                security_group_id: format!("sg-0000000{n}").parse().unwrap(),
            },
            ports: vec![PortRange::tcp(22)],
        }
    }

    fn session(n: u8) -> Session {
        Session::new(
            SessionId::from_uuid(Uuid::from_u128(1)),
            OrgId::from_uuid(Uuid::from_u128(2)),
            UserId::from_uuid(Uuid::from_u128(3)),
            "203.0.113.7".parse().unwrap(),
            t0(),
            Hours::new(2).unwrap(),
            (0..n).map(target).collect(),
        )
    }

    fn apply_all(s: &mut Session) {
        for i in 0..s.entries.len() as u32 {
            s.entry_applying(i, t0()).unwrap();
            s.entry_applied(i, t0()).unwrap();
        }
    }

    #[test]
    fn new_session_is_pending_and_expires_after_duration() {
        let s = session(2);
        assert_eq!(s.status(), SessionStatus::Pending);
        assert_eq!(s.expires_at - s.created_at, Duration::hours(2));
        assert_eq!(
            s.entries[1].rules()[0].rule.cidr.to_string(),
            "203.0.113.7/32"
        );
    }

    #[test]
    fn a_dual_stack_session_has_an_entry_per_resource_and_address() {
        use crate::domain::address_proof::{ProofKey, ProofKeys, SessionAddresses};
        let keys = ProofKeys {
            current: ProofKey::new(Uuid::from_u128(5), [1; 32]),
            previous: None,
        };
        let user = UserId::from_uuid(Uuid::from_u128(3));
        let v4: ClientIp = "203.0.113.7".parse().unwrap();
        let v6: ClientIp = "2001:db8::7".parse().unwrap();
        let signed = keys.sign(user, v6, t0());
        let proof = keys.verify(&signed.proof, user, t0()).unwrap();
        let s = Session::for_addresses(
            SessionId::from_uuid(Uuid::from_u128(1)),
            OrgId::from_uuid(Uuid::from_u128(2)),
            user,
            SessionAddresses::new(v4, &[proof]).unwrap(),
            t0(),
            Hours::new(2).unwrap(),
            (0..2).map(target).collect(),
        );
        assert_eq!(s.ip_addresses, vec![v4, v6]);
        let cells: Vec<(u32, String, String)> = s
            .entries
            .iter()
            .map(|e| {
                (
                    e.index,
                    e.resource_name.to_string(),
                    e.rules()[0].rule.cidr.to_string(),
                )
            })
            .collect();
        assert_eq!(
            cells,
            vec![
                (0, "res-0".into(), "203.0.113.7/32".into()),
                (1, "res-0".into(), "2001:db8::7/128".into()),
                (2, "res-1".into(), "203.0.113.7/32".into()),
                (3, "res-1".into(), "2001:db8::7/128".into()),
            ]
        );
    }

    #[test]
    fn pending_to_active_partial_failed() {
        let mut s = session(2);
        apply_all(&mut s);
        assert_eq!(s.status(), SessionStatus::Active);

        let mut s = session(2);
        s.entry_applying(0, t0()).unwrap();
        s.entry_applied(0, t0()).unwrap();
        assert_eq!(s.status(), SessionStatus::Pending);
        s.entry_applying(1, t0()).unwrap();
        s.entry_failed(1, "boom".into(), t0()).unwrap();
        assert_eq!(s.status(), SessionStatus::Partial);

        let mut s = session(2);
        for i in 0..2 {
            s.entry_applying(i, t0()).unwrap();
            s.entry_failed(i, "denied".into(), t0()).unwrap();
        }
        assert_eq!(s.status(), SessionStatus::Failed);
        assert!(s.ended_at.is_some());
        assert!(s.next_check_at().is_none());
    }

    #[test]
    fn stop_active_goes_expiring_then_cancelled() {
        let mut s = session(2);
        apply_all(&mut s);
        let work = s.stop(t0()).unwrap();
        assert_eq!(work, vec![0, 1]);
        assert_eq!(s.status(), SessionStatus::Expiring);
        s.entry_removed(0, t0()).unwrap();
        assert_eq!(s.status(), SessionStatus::Expiring);
        s.entry_removed(1, t0()).unwrap();
        assert_eq!(s.status(), SessionStatus::Cancelled);
        assert!(s.ended_at.is_some());
    }

    #[test]
    fn stop_pending_cancels_untouched_entries_at_once() {
        let mut s = session(2);
        let work = s.stop(t0()).unwrap();
        assert!(work.is_empty());
        assert_eq!(s.status(), SessionStatus::Cancelled);
    }

    #[test]
    fn stop_pending_undoes_rules_applied_after_the_stop() {
        let mut s = session(1);
        s.entry_applying(0, t0()).unwrap();
        assert_eq!(s.stop(t0()).unwrap(), vec![0]);
        assert_eq!(s.status(), SessionStatus::Expiring);
        assert_eq!(s.work_for(0).unwrap(), EntryWork::Remove);
        // The worker finishes applying after the stop: the entry goes straight on to removal.
        assert_eq!(s.entry_applied(0, t0()).unwrap(), EntryStatus::Removing);
        s.entry_removed(0, t0()).unwrap();
        assert_eq!(s.status(), SessionStatus::Cancelled);
    }

    #[test]
    fn stop_partial_and_not_from_terminal_or_expiring() {
        let mut s = session(2);
        s.entry_applying(0, t0()).unwrap();
        s.entry_applied(0, t0()).unwrap();
        s.entry_applying(1, t0()).unwrap();
        s.entry_failed(1, "x".into(), t0()).unwrap();
        assert_eq!(s.stop(t0()).unwrap(), vec![0]);
        assert_eq!(
            s.stop(t0()),
            Err(TransitionError::NotStoppable {
                status: SessionStatus::Expiring
            })
        );
        s.entry_removed(0, t0()).unwrap();
        assert_eq!(s.status(), SessionStatus::Cancelled);
        assert!(s.stop(t0()).is_err());
    }

    #[test]
    fn expiry_only_when_due_and_ends_expired() {
        let mut s = session(1);
        apply_all(&mut s);
        assert_eq!(s.expire(t0()), Err(TransitionError::NotDue));
        let later = t0() + Duration::hours(2);
        assert_eq!(s.next_check_at(), Some(s.expires_at));
        assert_eq!(s.expire(later).unwrap(), vec![0]);
        assert_eq!(s.status(), SessionStatus::Expiring);
        s.entry_removed(0, later).unwrap();
        assert_eq!(s.status(), SessionStatus::Expired);
    }

    #[test]
    fn extend_only_active_or_partial_within_maximum() {
        let mut s = session(1);
        let two = Hours::new(2).unwrap();
        assert!(matches!(
            s.extend(two, Duration::hours(4), 4, t0()),
            Err(TransitionError::NotExtendable { .. })
        ));
        apply_all(&mut s);
        s.extend(two, Duration::hours(4), 4, t0()).unwrap();
        assert_eq!(s.expires_at - s.created_at, Duration::hours(4));
        assert_eq!(
            s.extend(two, Duration::hours(4), 4, t0()),
            Err(TransitionError::ExtensionExceedsMaximum { max_hours: 4 })
        );
        let past = s.expires_at;
        assert!(matches!(
            s.extend(Hours::new(1).unwrap(), Duration::hours(24), 24, past),
            Err(TransitionError::NotExtendable { .. })
        ));
    }

    #[test]
    fn illegal_entry_transitions_are_rejected() {
        let mut s = session(1);
        assert!(matches!(
            s.entry_applied(0, t0()),
            Err(TransitionError::IllegalEntryTransition { .. })
        ));
        assert!(s.entry_removed(0, t0()).is_ok()); // Pending -> Removed is the untouched stop
        assert!(s.entry_applying(0, t0()).is_err());
        assert!(s.entry_retrying(0, "x".into(), t0(), t0()).is_err());
        assert!(matches!(s.entry(7), Err(TransitionError::NoSuchEntry(7))));
    }

    #[test]
    fn stalled_work_is_due_for_a_recheck() {
        let s = session(1);
        assert_eq!(
            s.next_check_at(),
            Some(t0() + Duration::seconds(STALL_TIMEOUT_SECS))
        );
        assert_eq!(s.unsettled_entries(), vec![0]);
    }
}
