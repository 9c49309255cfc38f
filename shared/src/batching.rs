//! One security group's changes in as few cloud calls as the cloud allows: one call creates
//! every missing rule, one deletes every unheld rule by id. The cloud refuses such a call as a
//! whole when one rule in it is a duplicate, already gone, or over the group's rule limit; then
//! one listing of the group tells which, and one retry goes without the offenders. Rules that
//! do not fit in the group fail with the rule-limit error; the others go through. Both
//! firewall adapters (EC2 and the simulated cloud) run this same algorithm over their calls.

use std::collections::BTreeMap;

use async_trait::async_trait;
use ipnet::IpNet;

use crate::domain::net::SecurityGroupId;
use crate::domain::rule::{CloudRuleId, IngressRule};
use crate::ports::firewall::{
    Authorization, BatchOutcome, FirewallError, GroupBatch, Revocation, RuleOutcome,
};

/// EC2's default quota of inbound rules per security group, counted apart for IPv4 and IPv6.
pub const RULES_PER_GROUP: usize = 60;

/// EC2's limit on a rule's description.
pub const DESCRIPTION_MAX: usize = 255;

/// `raw` as EC2 accepts a rule description: its characters only (`a-zA-Z0-9. _-:/()#,@[]+=&;{}!$*`,
/// anything else becomes `_`), at most 255 of them.
pub fn cloud_description(raw: &str) -> String {
    const ALLOWED: &str = ". _-:/()#,@[]+=&;{}!$*";
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ALLOWED.contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(DESCRIPTION_MAX)
        .collect()
}

/// Why the cloud refused a batch call as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A rule to create exists already.
    Duplicate,
    /// A rule to delete does not exist.
    NotFound,
    /// The rules to create do not all fit in the group.
    RuleLimit,
    Failed(FirewallError),
}

/// One inbound rule of a group as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// `None` for rules EntryGuard cannot have made (another group or a prefix list as source);
    /// they still count against the group's quota.
    pub rule: Option<IngressRule>,
    pub ipv6: bool,
    /// Tagged as EntryGuard's.
    pub managed: bool,
    pub id: Option<CloudRuleId>,
    pub description: Option<String>,
}

/// The calls of one cloud on one group.
#[async_trait]
pub trait GroupCalls: Send + Sync {
    /// Creates every rule, tagged as EntryGuard's, or none; answers the created rules' ids.
    async fn create(
        &self,
        rules: &[Authorization],
    ) -> Result<Vec<(IngressRule, CloudRuleId)>, Refusal>;
    /// Deletes every rule by id, or none.
    async fn delete(&self, ids: &[CloudRuleId]) -> Result<(), Refusal>;
    /// The group's inbound rules; `GroupNotFound` when the group does not exist.
    async fn list(&self) -> Result<Vec<Listed>, FirewallError>;
    /// How many inbound rules of one address family fit in the group. Asked only when a call
    /// was refused for the rule limit, so reading the real quota costs nothing otherwise.
    async fn rule_limit(&self) -> usize {
        RULES_PER_GROUP
    }
}

/// The group changed under a retry (someone else's change in between): the rules concerned are
/// tried again later, on the retry schedule.
fn changed_meanwhile(sg: &SecurityGroupId) -> FirewallError {
    FirewallError::Unavailable(format!(
        "security group {sg} changed while EntryGuard was changing it"
    ))
}

fn refusal_error(r: Refusal, sg: &SecurityGroupId) -> FirewallError {
    match r {
        Refusal::Failed(e) => e,
        Refusal::RuleLimit => FirewallError::RuleLimitExceeded(sg.to_string()),
        Refusal::Duplicate | Refusal::NotFound => changed_meanwhile(sg),
    }
}

/// Makes every change of `batch`: deletions first (they free room), then creations.
pub async fn apply(
    calls: &dyn GroupCalls,
    sg: &SecurityGroupId,
    batch: &GroupBatch,
) -> BatchOutcome {
    let revoked = revoke(calls, sg, &batch.revoke).await;
    let authorized = authorize(calls, sg, &batch.authorize).await;
    BatchOutcome {
        authorized: batch
            .authorize
            .iter()
            .map(|a| (a.rule, authorized[&a.rule].clone()))
            .collect(),
        revoked: batch
            .revoke
            .iter()
            .map(|r| (r.rule, revoked[&r.rule].clone()))
            .collect(),
    }
}

/// The ids of EntryGuard's rules in `listing` that are `rule`.
fn ours(listing: &[Listed], rule: &IngressRule) -> Vec<CloudRuleId> {
    listing
        .iter()
        .filter(|l| l.managed && l.rule.as_ref() == Some(rule))
        .filter_map(|l| l.id.clone())
        .collect()
}

async fn revoke(
    calls: &dyn GroupCalls,
    sg: &SecurityGroupId,
    wanted: &[Revocation],
) -> BTreeMap<IngressRule, RuleOutcome> {
    let mut out = BTreeMap::new();
    if wanted.is_empty() {
        return out;
    }
    let mut ids: BTreeMap<IngressRule, Vec<CloudRuleId>> = BTreeMap::new();
    let mut listed = false;
    if wanted.iter().any(|r| r.rule_id.is_none()) {
        // Records from before ids were kept, or after a call whose answer was lost: one
        // listing for the whole batch.
        let listing = match calls.list().await {
            Ok(l) => l,
            Err(e) => return fail_all(wanted.iter().map(|r| r.rule), &e),
        };
        listed = true;
        for r in wanted {
            ids.insert(r.rule, ours(&listing, &r.rule));
        }
    } else {
        for r in wanted {
            ids.entry(r.rule).or_default().extend(r.rule_id.clone());
        }
    }
    for _ in 0..2 {
        let to_delete: Vec<CloudRuleId> = ids.values().flatten().cloned().collect();
        for (rule, rule_ids) in &ids {
            if rule_ids.is_empty() {
                out.insert(*rule, RuleOutcome::Absent);
            }
        }
        if to_delete.is_empty() {
            return out;
        }
        match calls.delete(&to_delete).await {
            Ok(()) => {
                for rule in ids.keys() {
                    out.insert(*rule, RuleOutcome::Absent);
                }
                return out;
            }
            Err(Refusal::NotFound) if !listed => {
                // Deleted by hand, or re-created with another id: the listing says which.
                let listing = match calls.list().await {
                    Ok(l) => l,
                    Err(e) => return fail_all(ids.keys().copied(), &e),
                };
                listed = true;
                for (rule, rule_ids) in ids.iter_mut() {
                    *rule_ids = ours(&listing, rule);
                }
            }
            Err(r) => {
                let e = refusal_error(r, sg);
                for rule in ids.keys() {
                    out.insert(*rule, RuleOutcome::Failed(e.clone()));
                }
                return out;
            }
        }
    }
    out
}

async fn authorize(
    calls: &dyn GroupCalls,
    sg: &SecurityGroupId,
    wanted: &[Authorization],
) -> BTreeMap<IngressRule, RuleOutcome> {
    let mut out = BTreeMap::new();
    let mut todo: Vec<Authorization> = Vec::new();
    for a in wanted {
        if !todo.iter().any(|t| t.rule == a.rule) {
            todo.push(a.clone());
        }
    }
    if todo.is_empty() {
        return out;
    }
    let refusal = match calls.create(&todo).await {
        Ok(created) => {
            record_created(&mut out, &todo, created);
            fill_missing_ids(calls, &mut out, &todo).await;
            return out;
        }
        Err(Refusal::Failed(e)) => return fail_all(todo.iter().map(|a| a.rule), &e),
        Err(r) => r,
    };
    tracing::info!(security_group = %sg, ?refusal, rules = todo.len(), "batch refused; listing the group once");
    let listing = match calls.list().await {
        Ok(l) => l,
        Err(e) => return fail_all(todo.iter().map(|a| a.rule), &e),
    };
    let mut used_v4 = listing.iter().filter(|l| !l.ipv6).count();
    let mut used_v6 = listing.iter().filter(|l| l.ipv6).count();
    let limit = calls.rule_limit().await;
    let mut retry = Vec::new();
    for a in todo {
        let there: Vec<&Listed> = listing
            .iter()
            .filter(|l| l.rule.as_ref() == Some(&a.rule))
            .collect();
        if let Some(found) = there.first() {
            // Ours (by tag, or by the very description just sent, for a cloud that applied part
            // of a refused call), or an identical rule someone else made, which stays theirs.
            let ours = found.managed || found.description.as_deref() == Some(&a.description);
            out.insert(
                a.rule,
                RuleOutcome::Present(if ours { found.id.clone() } else { None }),
            );
            continue;
        }
        let used = if matches!(a.rule.cidr, IpNet::V6(_)) {
            &mut used_v6
        } else {
            &mut used_v4
        };
        if *used >= limit {
            out.insert(
                a.rule,
                RuleOutcome::Failed(FirewallError::RuleLimitExceeded(sg.to_string())),
            );
            continue;
        }
        *used += 1;
        retry.push(a);
    }
    if retry.is_empty() {
        return out;
    }
    match calls.create(&retry).await {
        Ok(created) => {
            record_created(&mut out, &retry, created);
            fill_missing_ids(calls, &mut out, &retry).await;
        }
        Err(r) => {
            let e = refusal_error(r, sg);
            for a in &retry {
                out.insert(a.rule, RuleOutcome::Failed(e.clone()));
            }
        }
    }
    out
}

/// A created rule the answer did not list (moto answers only part of a call with several
/// permissions; EC2 lists them all): one listing finds its id, so it can be revoked by id.
async fn fill_missing_ids(
    calls: &dyn GroupCalls,
    out: &mut BTreeMap<IngressRule, RuleOutcome>,
    asked: &[Authorization],
) {
    let missing = |out: &BTreeMap<IngressRule, RuleOutcome>, a: &Authorization| {
        out.get(&a.rule) == Some(&RuleOutcome::Present(None))
    };
    if !asked.iter().any(|a| missing(out, a)) {
        return;
    }
    // Without the listing the rule is still there; its id is then found when it is revoked.
    let Ok(listing) = calls.list().await else {
        return;
    };
    for a in asked {
        if missing(out, a) {
            if let Some(id) = ours(&listing, &a.rule).into_iter().next() {
                out.insert(a.rule, RuleOutcome::Present(Some(id)));
            }
        }
    }
}

fn record_created(
    out: &mut BTreeMap<IngressRule, RuleOutcome>,
    asked: &[Authorization],
    created: Vec<(IngressRule, CloudRuleId)>,
) {
    let ids: BTreeMap<IngressRule, CloudRuleId> = created.into_iter().collect();
    for a in asked {
        out.insert(a.rule, RuleOutcome::Present(ids.get(&a.rule).cloned()));
    }
}

fn fail_all(
    rules: impl Iterator<Item = IngressRule>,
    e: &FirewallError,
) -> BTreeMap<IngressRule, RuleOutcome> {
    rules.map(|r| (r, RuleOutcome::Failed(e.clone()))).collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::domain::net::PortRange;

    /// A group whose account allows `limit` rules per family, all-or-nothing as EC2 is.
    struct Group {
        limit: usize,
        rules: Mutex<Vec<IngressRule>>,
        creates: Mutex<usize>,
    }

    fn rule(i: u32) -> IngressRule {
        IngressRule {
            ports: PortRange::tcp(22),
            cidr: format!("10.0.{}.{}/32", i / 256, i % 256).parse().unwrap(),
        }
    }

    #[async_trait]
    impl GroupCalls for Group {
        async fn create(
            &self,
            rules: &[Authorization],
        ) -> Result<Vec<(IngressRule, CloudRuleId)>, Refusal> {
            *self.creates.lock().unwrap() += 1;
            let mut have = self.rules.lock().unwrap();
            if have.len() + rules.len() > self.limit {
                return Err(Refusal::RuleLimit);
            }
            have.extend(rules.iter().map(|a| a.rule));
            Ok(vec![])
        }
        async fn delete(&self, _: &[CloudRuleId]) -> Result<(), Refusal> {
            Ok(())
        }
        async fn list(&self) -> Result<Vec<Listed>, FirewallError> {
            Ok(self
                .rules
                .lock()
                .unwrap()
                .iter()
                .map(|r| Listed {
                    rule: Some(*r),
                    ipv6: false,
                    managed: false,
                    id: None,
                    description: None,
                })
                .collect())
        }
        async fn rule_limit(&self) -> usize {
            self.limit
        }
    }

    #[tokio::test]
    async fn a_raised_quota_is_counted_not_the_default() {
        let group = Group {
            limit: 100,
            rules: Mutex::new((0..90).map(rule).collect()),
            creates: Mutex::new(0),
        };
        let batch = GroupBatch {
            authorize: (1000..1020)
                .map(|i| Authorization {
                    rule: rule(i),
                    description: "EntryGuard".into(),
                })
                .collect(),
            revoke: vec![],
        };
        let out = apply(&group, &"sg-00000001".parse().unwrap(), &batch).await;
        let failed = out
            .authorized
            .iter()
            .filter(|(_, o)| matches!(o, RuleOutcome::Failed(FirewallError::RuleLimitExceeded(_))))
            .count();
        // 10 of the 20 fit under a quota of 100: the refused call, one listing, one retry.
        assert_eq!((failed, out.authorized.len() - failed), (10, 10));
        assert_eq!(group.rules.lock().unwrap().len(), 100);
        assert_eq!(*group.creates.lock().unwrap(), 2);
    }

    #[test]
    fn descriptions_keep_to_ec2s_charset_and_length() {
        assert_eq!(
            cloud_description("EntryGuard dev@example.com until 2026-11-29T23:00:00Z"),
            "EntryGuard dev@example.com until 2026-11-29T23:00:00Z"
        );
        assert_eq!(cloud_description("a\"b<c>é"), "a_b_c__");
        assert_eq!(cloud_description(&"x".repeat(300)).len(), DESCRIPTION_MAX);
    }
}
