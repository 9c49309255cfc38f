//! Drift reconciliation: a periodic, rate-limited pass that compares each managed security
//! group's rules in the cloud with what the store says should be there. EntryGuard's rules that
//! no live session holds are removed (orphans), rules that live sessions hold but someone
//! deleted are put back, and rules EntryGuard did not make are never touched. Every correction
//! is recorded in the audit log; a group deleted in the cloud is reported to its organizations.
//! The pass also gives back holders left behind by crashed workers.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::Duration;

use crate::domain::audit::AuditType;
use crate::domain::ids::{CredentialId, OrgId, ResourceId, SessionId};
use crate::domain::model::{Credential, Resource};
use crate::domain::net::{Region, SecurityGroupId};
use crate::domain::rule::{CloudRuleId, CloudState, GroupRef, IngressRule, RuleKey, RuleState};
use crate::domain::webhook::WebhookEvent;
use crate::ports::firewall::FirewallError;
use crate::ports::store::StoreError;

use super::audit::Audit;
use super::rules::{Released, RuleError, HOLDER_PAGE};
use super::App;

/// How often the pass runs at most, whatever the sweeper's cadence and however many sweepers
/// run at once: one DescribeSecurityGroupRules per managed group each time.
pub const RECONCILE_EVERY_SECS: i64 = 300;
/// A deleted security group is reported once a day while resources still point at it.
pub const MISSING_GROUP_NOTICE_SECS: i64 = 24 * 3600;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReconcileReport {
    pub groups: usize,
    /// Rules live sessions hold that had been deleted outside EntryGuard, put back.
    pub reapplied: usize,
    /// EntryGuard's rules no live session holds, removed.
    pub orphans_removed: usize,
    /// Groups the cloud no longer has.
    pub missing_groups: usize,
    /// Holders of entries that had ended, given back.
    pub stale_holders: usize,
    /// Held rules whose record named a rule id the cloud no longer has (the rule was re-created
    /// by a change whose answer was lost), or kept a crashed worker's lease, set to what the
    /// cloud lists.
    pub ids_refreshed: usize,
    /// Groups or rules that could not be checked or corrected this time.
    pub errors: usize,
}

type GroupKey = (Region, SecurityGroupId);

/// Who uses which group: the organizations and resources behind the managed groups.
#[derive(Default)]
struct Directory {
    credentials: HashMap<CredentialId, Credential>,
    resources: Vec<Resource>,
    /// Per group: the organization and resource of every resource on it.
    users: BTreeMap<GroupKey, Vec<(OrgId, ResourceId, String)>>,
}

impl Directory {
    async fn load(app: &App) -> Result<Self, StoreError> {
        let mut d = Directory::default();
        for org in app.store.list_orgs().await? {
            for c in app.list_docs::<Credential>(org.id).await? {
                d.credentials.insert(c.id, c);
            }
            for r in app.list_docs::<Resource>(org.id).await? {
                d.users
                    .entry((r.region.clone(), r.security_group_id.clone()))
                    .or_default()
                    .push((org.id, r.id, r.name.to_string()));
                d.resources.push(r);
            }
        }
        Ok(d)
    }

    /// The group as its resources name it (credential and provider), for those still usable.
    fn group_refs(&self) -> Vec<GroupRef> {
        self.resources
            .iter()
            .filter_map(|r| {
                let c = self.credentials.get(&r.credential_id)?;
                Some(GroupRef {
                    credential_id: c.id,
                    provider: c.provider(),
                    region: r.region.clone(),
                    security_group_id: r.security_group_id.clone(),
                })
            })
            .collect()
    }

    /// One audit target per organization using the group (with one of its resources there).
    fn targets(&self, group: &GroupKey) -> Vec<(OrgId, ResourceId)> {
        let mut seen = BTreeSet::new();
        self.users
            .get(group)
            .into_iter()
            .flatten()
            .filter(|(org, _, _)| seen.insert(*org))
            .map(|(org, resource, _)| (*org, *resource))
            .collect()
    }
}

fn group_key(g: &GroupRef) -> GroupKey {
    (g.region.clone(), g.security_group_id.clone())
}

impl App {
    /// Runs the pass if none ran in the last `RECONCILE_EVERY_SECS` (any sweeper's).
    pub async fn reconcile_if_due(&self) -> Result<Option<ReconcileReport>, StoreError> {
        if !self
            .store
            .claim_run(
                "reconcile",
                self.now(),
                Duration::seconds(RECONCILE_EVERY_SECS),
            )
            .await?
        {
            return Ok(None);
        }
        self.reconcile().await.map(Some)
    }

    /// One reconciliation pass over every managed group.
    pub async fn reconcile(&self) -> Result<ReconcileReport, StoreError> {
        let mut report = ReconcileReport {
            stale_holders: self.release_stale_holders().await?,
            ..Default::default()
        };
        // The minute sweep reads only the unheld index; this reads every record, so an unheld
        // rule missing from the index (a record older than the index) is revoked here.
        let everything = self.store.list_rules().await?.into_iter().map(Ok).collect();
        report.orphans_removed += self
            .revoke_orphans(everything, chrono::DateTime::<chrono::Utc>::MAX_UTC)
            .await;
        let directory = Directory::load(self).await?;
        let records = self.store.list_rules().await?;
        // The groups to look at: every resource's, and every group a rule record names (a
        // resource may have been deleted while its rules live on). A record's group is the
        // one its rules were applied through, so it is preferred.
        let mut groups: BTreeMap<GroupKey, GroupRef> = BTreeMap::new();
        for r in &records {
            groups.entry(group_key(&r.group)).or_insert(r.group.clone());
        }
        for g in directory.group_refs() {
            groups.entry(group_key(&g)).or_insert(g);
        }
        let mut by_group: BTreeMap<GroupKey, Vec<RuleState>> = BTreeMap::new();
        for r in records {
            by_group
                .entry((r.key.region.clone(), r.key.security_group_id.clone()))
                .or_default()
                .push(r);
        }
        for (key, group) in groups {
            report.groups += 1;
            let records = by_group.remove(&key).unwrap_or_default();
            self.reconcile_group(&group, &records, &directory, &mut report)
                .await?;
        }
        if report.reapplied + report.orphans_removed + report.missing_groups + report.stale_holders
            > 0
            || report.errors > 0
        {
            tracing::warn!(?report, "reconciliation corrected drift");
        } else {
            tracing::info!(groups = report.groups, "reconciliation found no drift");
        }
        Ok(report)
    }

    async fn reconcile_group(
        &self,
        group: &GroupRef,
        records: &[RuleState],
        directory: &Directory,
        report: &mut ReconcileReport,
    ) -> Result<(), StoreError> {
        let listed = match self.firewall.ingress_rules(group).await {
            Ok(listed) => listed,
            Err(FirewallError::GroupNotFound(_)) => {
                report.missing_groups += 1;
                return self.report_missing_group(group, directory).await;
            }
            Err(error) => {
                report.errors += 1;
                tracing::warn!(security_group = %group.security_group_id, region = %group.region, %error, "could not list a group's rules; will try again at the next pass");
                return Ok(());
            }
        };
        let present: BTreeSet<IngressRule> = listed.iter().map(|l| l.rule).collect();
        let listed_ids: BTreeMap<IngressRule, &CloudRuleId> = listed
            .iter()
            .filter(|l| l.managed)
            .filter_map(|l| Some((l.rule, l.id.as_ref()?)))
            .collect();
        let ours: BTreeSet<IngressRule> = listed
            .iter()
            .filter(|l| l.managed)
            .map(|l| l.rule)
            .collect();
        let held: BTreeMap<IngressRule, &RuleState> = records
            .iter()
            .filter(|r| r.count() > 0)
            .map(|r| (r.key.rule, r))
            .collect();
        let targets = directory.targets(&group_key(group));

        // Held but gone from the group (an identical hand-made rule counts as there: EC2 keeps
        // only one of the two, and it grants the same access). A record still `Absent`, or
        // leased, belongs to a worker applying it right now.
        let now = self.now();
        for (rule, record) in &held {
            let in_flight = record.cloud == CloudState::Absent
                || record.lease.as_ref().is_some_and(|l| l.until > now);
            if in_flight {
                continue;
            }
            if let Some(id) = listed_ids.get(rule) {
                // A lease that ran out (its worker crashed) is tidied away with it.
                let stale = record.cloud != CloudState::Present
                    || record.cloud_rule_id.as_ref() != Some(*id)
                    || record.lease.is_some();
                if stale {
                    match self.adopt_listed_rule(record, id).await {
                        Ok(true) => report.ids_refreshed += 1,
                        Ok(false) | Err(RuleError::Busy | RuleError::OverBudget(_)) => {}
                        Err(RuleError::Store(e)) => return Err(e),
                        Err(RuleError::Firewall(error)) => {
                            report.errors += 1;
                            tracing::warn!(rule = %record.key, %error, "could not correct a rule's id; will try again");
                        }
                    }
                }
                continue;
            }
            if present.contains(rule) {
                continue;
            }
            // Held only by sessions that are gone: the holder check gives those back.
            let Some(note) = self.reapply_note(record, group).await? else {
                continue;
            };
            match self.reapply_if_held(&record.key, note).await {
                Ok(true) => report.reapplied += 1,
                Ok(false) | Err(RuleError::Busy | RuleError::OverBudget(_)) => {}
                Err(RuleError::Store(e)) => return Err(e),
                Err(RuleError::Firewall(error)) => {
                    report.errors += 1;
                    tracing::error!(rule = %record.key, %error, "a rule deleted outside EntryGuard could not be put back; will try again");
                    if let Some(org) = self.org_of_holders(record).await? {
                        self.audit(
                            Audit::system(
                                org.0,
                                AuditType::RuleFailed,
                                format!(
                                    "Could not re-apply {} on {} for {}: {error}",
                                    rule.ports, group.security_group_id, rule.cidr
                                ),
                            )
                            .session(org.1)
                            .failed(),
                        )
                        .await;
                    }
                }
            }
        }

        // EntryGuard's, but held by nobody.
        for rule in ours.iter().filter(|r| !held.contains_key(r)) {
            let key = RuleKey {
                region: group.region.clone(),
                security_group_id: group.security_group_id.clone(),
                rule: *rule,
            };
            self.store.rule_observed(&key, group).await?;
            let note = targets.first().map(|(org, resource)| {
                Audit::system(
                    *org,
                    AuditType::RuleRemoved,
                    format!(
                        "Removed {} on {} for {}: EntryGuard made it but no live session needs it",
                        rule.ports, group.security_group_id, rule.cidr
                    ),
                )
                .resource(*resource)
                .webhook(WebhookEvent::DriftCorrected)
            });
            if note.is_none() {
                tracing::error!(rule = %key, "an orphaned rule on a group no organization uses; removing it without an audit event");
            }
            match self.revoke_unheld(&key, note, true).await {
                Ok(Released::Revoked) => report.orphans_removed += 1,
                Ok(_) | Err(RuleError::Busy | RuleError::OverBudget(_)) => {}
                Err(RuleError::Store(e)) => return Err(e),
                Err(RuleError::Firewall(error)) => {
                    report.errors += 1;
                    tracing::error!(rule = %key, %error, "an orphaned rule could not be removed; the sweeper retries");
                }
            }
        }
        Ok(())
    }

    /// The event for putting back a held rule: in the organization of one of its holders.
    async fn reapply_note(
        &self,
        record: &RuleState,
        group: &GroupRef,
    ) -> Result<Option<Audit>, StoreError> {
        let message = format!(
            "Re-applied {} on {} for {}: it was missing from the group (deleted outside EntryGuard?) while {} live session entr{} needed it",
            record.key.rule.ports,
            group.security_group_id,
            record.key.rule.cidr,
            record.count(),
            if record.count() == 1 { "y" } else { "ies" }
        );
        Ok(self.org_of_holders(record).await?.map(|(org, session)| {
            Audit::system(org, AuditType::RuleApplied, message)
                .session(session)
                .webhook(WebhookEvent::DriftCorrected)
        }))
    }

    /// The organization and session of the first holder whose session still exists.
    async fn org_of_holders(
        &self,
        record: &RuleState,
    ) -> Result<Option<(OrgId, SessionId)>, StoreError> {
        let mut after = None;
        loop {
            let page = self
                .store
                .rule_holders(&record.key, after.as_ref(), HOLDER_PAGE)
                .await?;
            for holder in &page {
                if let Some((id, _)) = holder.entry() {
                    if let Some(s) = self.store.get_session(id).await? {
                        return Ok(Some((s.org_id, s.id)));
                    }
                }
            }
            if page.len() < HOLDER_PAGE {
                return Ok(None);
            }
            after = page.last().cloned();
        }
    }

    /// Tells each organization with resources on a group that the cloud no longer has, once a
    /// day: its resources can no longer be opened, and their rules went with the group.
    async fn report_missing_group(
        &self,
        group: &GroupRef,
        directory: &Directory,
    ) -> Result<(), StoreError> {
        let key = group_key(group);
        tracing::error!(security_group = %group.security_group_id, region = %group.region, "a managed security group no longer exists");
        let notice = format!("missing-group/{}/{}", group.region, group.security_group_id);
        if !self
            .store
            .claim_run(
                &notice,
                self.now(),
                Duration::seconds(MISSING_GROUP_NOTICE_SECS),
            )
            .await?
        {
            return Ok(());
        }
        let mut by_org: BTreeMap<OrgId, Vec<(ResourceId, String)>> = BTreeMap::new();
        for (org, resource, name) in directory.users.get(&key).into_iter().flatten() {
            by_org
                .entry(*org)
                .or_default()
                .push((*resource, name.clone()));
        }
        for (org, resources) in by_org {
            let names: Vec<&str> = resources.iter().map(|(_, n)| n.as_str()).collect();
            self.audit(
                Audit::system(
                    org,
                    AuditType::SystemAlert,
                    format!(
                        "Security group {} in {} no longer exists (deleted in the cloud, or the credential cannot see it). Sessions can no longer open {}: fix or remove {}.",
                        group.security_group_id,
                        group.region,
                        names.join(", "),
                        if names.len() == 1 { "this resource" } else { "these resources" }
                    ),
                )
                .resource(resources[0].0)
                .failed(),
            )
            .await;
        }
        Ok(())
    }
}
