//! A simulated cloud: security groups kept in the embedded database with EC2's semantics
//! (60 inbound rules per group, duplicate and not-found errors), plus injectable faults and
//! latency. `SimulatedFirewall` is the `Firewall` adapter over it, classifying its errors the
//! way the EC2 adapter classifies EC2's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use ipnet::IpNet;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::kv::{self, Kv};
use crate::batching::{self, GroupCalls, Listed, Refusal};
use crate::domain::net::{PortRange, Region, SecurityGroupId};
use crate::domain::rule::{CloudRuleId, GroupRef, IngressRule, ListedRule};
use crate::pacing::{BucketSpec, CallKind, Pacer, TokenBucket};
use crate::ports::firewall::{
    Authorization, BatchOutcome, Firewall, FirewallError, GroupBatch, RULE_DESCRIPTION,
};
#[cfg(test)]
use crate::ports::firewall::{Revocation, RuleOutcome};
use crate::ports::store::StoreError;
use crate::ports::Timer;

/// EC2's inbound rule quota per security group (for each address family).
pub use crate::batching::RULES_PER_GROUP;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimRule {
    pub ports: PortRange,
    pub cidr: IpNet,
    pub description: String,
    /// The rule's id (`sgr-…`), as EC2 gives every rule one.
    #[serde(default)]
    pub id: String,
    /// Tagged as EntryGuard's when it was created.
    #[serde(default)]
    pub managed: bool,
}

impl SimRule {
    /// Made by EntryGuard: tagged so, or (rules from before tags) carrying its description.
    pub fn is_managed(&self) -> bool {
        self.managed || self.description == RULE_DESCRIPTION
    }
}

/// Whether one more rule of `cidr`'s address family fits in `group` (the quota counts IPv4
/// and IPv6 rules apart).
fn fits(group: &SimGroup, cidr: &IpNet, adding: usize) -> bool {
    let family = |c: &IpNet| matches!(c, IpNet::V6(_));
    let used = group
        .rules
        .iter()
        .filter(|r| family(&r.cidr) == family(cidr))
        .count();
    used + adding < RULES_PER_GROUP
}

/// The next rule id, from a counter kept with the groups (so a seeded run repeats exactly).
fn next_rule_id(t: &mut kv::KvTable<'_>) -> Result<String, SimError> {
    let n: u64 = kv::get(t, "simseq/rule-id")?.unwrap_or(0) + 1;
    kv::put(t, "simseq/rule-id", &n)?;
    Ok(format!("sgr-{n:017x}"))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimGroup {
    pub region: Region,
    pub security_group_id: SecurityGroupId,
    pub name: String,
    pub rules: Vec<SimRule>,
}

/// The simulated cloud's own errors, named after EC2's error codes.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SimError {
    #[error("InvalidPermission.Duplicate")]
    Duplicate,
    #[error("InvalidPermission.NotFound")]
    PermissionNotFound,
    #[error("InvalidSecurityGroupRuleId.NotFound")]
    RuleIdNotFound,
    #[error("InvalidGroup.NotFound: the security group '{0}' does not exist")]
    GroupNotFound(String),
    #[error("RulesPerSecurityGroupLimitExceeded: the maximum number of rules per security group has been reached")]
    RuleLimit,
    #[error("RequestLimitExceeded: request limit exceeded")]
    Throttled,
    #[error("request timed out")]
    Timeout,
    #[error("UnauthorizedOperation: you are not authorized to perform this operation")]
    Unauthorized,
    #[error("simulated cloud storage failed: {0}")]
    Storage(String),
}

impl From<StoreError> for SimError {
    fn from(e: StoreError) -> Self {
        SimError::Storage(e.to_string())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    Throttle,
    Timeout,
    Unauthorized,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operation {
    Authorize,
    Revoke,
    Describe,
}

/// A fault to inject: for one group or all, one operation or both, a number of times or forever.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub group: Option<SecurityGroupId>,
    pub op: Option<Operation>,
    pub kind: FaultKind,
    pub remaining: Option<u32>,
}

/// EC2's request limit, modelled: a token bucket per region and kind of call.
struct ApiLimits {
    timer: Arc<dyn Timer>,
    mutating: BucketSpec,
    describe: BucketSpec,
    buckets: HashMap<(Region, bool), TokenBucket>,
    /// When each mutating call arrived (time since the timer's start), throttled or not: what
    /// a benchmark needs to show how many changes one client made per minute.
    mutating_arrivals: Vec<Duration>,
}

#[derive(Default)]
struct Injected {
    faults: Vec<Fault>,
    latency: Duration,
    /// Latency drawn per call between two bounds (seeded), instead of `latency`.
    latency_between: Option<(Duration, Duration, StdRng)>,
    calls: u64,
    calls_by: HashMap<(Operation, SecurityGroupId), u64>,
    /// What every credential check answers instead of an account id, while set.
    credential_fault: Option<FaultKind>,
    throttled: u64,
    limits: Option<ApiLimits>,
}

/// What the simulated cloud answered, in numbers.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CallCounts {
    /// Every API call that reached the cloud (authorize, revoke, describe).
    pub calls: u64,
    /// Calls refused by the modelled request limit.
    pub throttled: u64,
}

#[derive(Clone)]
pub struct SimCloud {
    kv: Kv,
    injected: Arc<Mutex<Injected>>,
}

fn group_key(region: &Region, sg: &SecurityGroupId) -> String {
    format!("sim/{region}|{sg}")
}

impl SimCloud {
    pub fn new(kv: Kv) -> Self {
        Self {
            kv,
            injected: Default::default(),
        }
    }

    pub fn create_group(
        &self,
        region: &Region,
        sg: &SecurityGroupId,
        name: &str,
    ) -> Result<(), SimError> {
        let key = group_key(region, sg);
        self.kv.write(|t| {
            if kv::get::<SimGroup>(t, &key)?.is_none() {
                kv::put(
                    t,
                    &key,
                    &SimGroup {
                        region: region.clone(),
                        security_group_id: sg.clone(),
                        name: name.to_owned(),
                        rules: vec![],
                    },
                )?;
            }
            Ok(())
        })
    }

    pub fn delete_group(&self, region: &Region, sg: &SecurityGroupId) -> Result<bool, SimError> {
        Ok(self.kv.write(|t| kv::delete(t, &group_key(region, sg)))?)
    }

    pub fn groups(&self) -> Result<Vec<SimGroup>, SimError> {
        Ok(self
            .kv
            .scan("sim/", false, usize::MAX)?
            .into_iter()
            .map(|(_, g)| g)
            .collect())
    }

    pub fn group(
        &self,
        region: &Region,
        sg: &SecurityGroupId,
    ) -> Result<Option<SimGroup>, SimError> {
        Ok(self.kv.get(&group_key(region, sg))?)
    }

    pub fn inject(&self, fault: Fault) {
        self.injected.lock().expect("fault lock").faults.push(fault);
    }

    pub fn clear_faults(&self) {
        self.injected.lock().expect("fault lock").faults.clear();
    }

    pub fn set_latency(&self, latency: Duration) {
        self.injected.lock().expect("fault lock").latency = latency;
    }

    /// Delays every call by a latency drawn evenly between `min` and `max` (from `seed`, so a
    /// run repeats). With [`SimCloud::limit_requests`] the wait is on its timer (simulated time
    /// under a manual clock).
    pub fn set_latency_between(&self, min: Duration, max: Duration, seed: u64) {
        self.injected.lock().expect("fault lock").latency_between =
            Some((min, max, StdRng::seed_from_u64(seed)));
    }

    /// Calls of `op` that reached the cloud, per security group (throttled ones included).
    pub fn calls_per_group(&self, op: Operation) -> HashMap<SecurityGroupId, u64> {
        self.injected
            .lock()
            .expect("fault lock")
            .calls_by
            .iter()
            .filter(|((o, _), _)| *o == op)
            .map(|((_, sg), n)| (sg.clone(), *n))
            .collect()
    }

    /// Makes every credential check fail this way (`Unauthorized`: the credential is rejected),
    /// or succeed again with `None`.
    pub fn set_credential_fault(&self, fault: Option<FaultKind>) {
        self.injected.lock().expect("fault lock").credential_fault = fault;
    }

    pub fn credential_fault(&self) -> Option<FaultKind> {
        self.injected.lock().expect("fault lock").credential_fault
    }

    /// How many API calls reached the simulated cloud.
    pub fn calls(&self) -> u64 {
        self.injected.lock().expect("fault lock").calls
    }

    pub fn counts(&self) -> CallCounts {
        let i = self.injected.lock().expect("fault lock");
        CallCounts {
            calls: i.calls,
            throttled: i.throttled,
        }
    }

    /// Models EC2's request limit from now on: calls beyond the buckets are refused with
    /// `RequestLimitExceeded`.
    pub fn limit_requests(
        &self,
        mutating: BucketSpec,
        describe: BucketSpec,
        timer: Arc<dyn Timer>,
    ) {
        self.injected.lock().expect("fault lock").limits = Some(ApiLimits {
            timer,
            mutating,
            describe,
            buckets: HashMap::new(),
            mutating_arrivals: Vec::new(),
        });
    }

    /// When each mutating call arrived since [`SimCloud::limit_requests`] (time since the
    /// timer's start, throttled calls included).
    pub fn mutating_arrivals(&self) -> Vec<Duration> {
        self.injected
            .lock()
            .expect("fault lock")
            .limits
            .as_ref()
            .map(|l| l.mutating_arrivals.clone())
            .unwrap_or_default()
    }

    /// A call reaching the simulated cloud: throttled or failed as configured, else delayed by
    /// the configured latency.
    async fn arrive(
        &self,
        region: &Region,
        sg: &SecurityGroupId,
        op: Operation,
    ) -> Result<(), SimError> {
        let (latency, timer) = self.before_call(region, sg, op)?;
        if !latency.is_zero() {
            match timer {
                Some(timer) => timer.sleep(latency).await,
                None => tokio::time::sleep(latency).await,
            }
        }
        Ok(())
    }

    /// Counts the call, applies the request limit and the faults; answers the call's latency and
    /// the timer to wait it on (none: real time).
    fn before_call(
        &self,
        region: &Region,
        sg: &SecurityGroupId,
        op: Operation,
    ) -> Result<(Duration, Option<Arc<dyn Timer>>), SimError> {
        let mut injected = self.injected.lock().expect("fault lock");
        injected.calls += 1;
        *injected.calls_by.entry((op, sg.clone())).or_default() += 1;
        let timer = injected.limits.as_ref().map(|l| l.timer.clone());
        if let Some(limits) = injected.limits.as_mut() {
            let mutating = op != Operation::Describe;
            let spec = if mutating {
                limits.mutating
            } else {
                limits.describe
            };
            let now = limits.timer.elapsed();
            if mutating {
                limits.mutating_arrivals.push(now);
            }
            let bucket = limits
                .buckets
                .entry((region.clone(), mutating))
                .or_insert_with(|| TokenBucket::new(spec, now));
            if bucket.try_take(now).is_err() {
                injected.throttled += 1;
                return Err(SimError::Throttled);
            }
        }
        let latency = match injected.latency_between.as_mut() {
            Some((min, max, rng)) => rng.random_range(*min..=*max),
            None => injected.latency,
        };
        let hit = injected.faults.iter_mut().find(|f| {
            f.group.as_ref().is_none_or(|g| g == sg)
                && f.op.is_none_or(|o| o == op)
                && f.remaining != Some(0)
        });
        if let Some(fault) = hit {
            if let Some(n) = fault.remaining.as_mut() {
                *n -= 1;
            }
            return Err(match fault.kind {
                FaultKind::Throttle => SimError::Throttled,
                FaultKind::Timeout => SimError::Timeout,
                FaultKind::Unauthorized => SimError::Unauthorized,
            });
        }
        Ok((latency, timer))
    }

    /// EC2 AuthorizeSecurityGroupIngress for one permission.
    pub async fn authorize_ingress(
        &self,
        region: &Region,
        sg: &SecurityGroupId,
        rule: &IngressRule,
        description: &str,
    ) -> Result<(), SimError> {
        self.arrive(region, sg, Operation::Authorize).await?;
        let key = group_key(region, sg);
        self.kv.write(|t| {
            let Some(mut group) = kv::get::<SimGroup>(t, &key)? else {
                return Err(SimError::GroupNotFound(sg.to_string()));
            };
            if group
                .rules
                .iter()
                .any(|r| r.ports == rule.ports && r.cidr == rule.cidr)
            {
                return Err(SimError::Duplicate);
            }
            if !fits(&group, &rule.cidr, 0) {
                return Err(SimError::RuleLimit);
            }
            group.rules.push(SimRule {
                ports: rule.ports,
                cidr: rule.cidr,
                description: description.to_owned(),
                id: next_rule_id(t)?,
                managed: description == RULE_DESCRIPTION,
            });
            kv::put(t, &key, &group)?;
            Ok(())
        })
    }

    /// EC2 AuthorizeSecurityGroupIngress with many permissions and TagSpecifications: every
    /// rule is created, tagged as EntryGuard's, or none (a duplicate anywhere, or one rule over
    /// the quota, refuses the whole call). Answers the created rules' ids.
    pub async fn authorize_rules(
        &self,
        region: &Region,
        sg: &SecurityGroupId,
        rules: &[(IngressRule, String)],
    ) -> Result<Vec<(IngressRule, String)>, SimError> {
        self.arrive(region, sg, Operation::Authorize).await?;
        let key = group_key(region, sg);
        self.kv.write(|t| {
            let Some(mut group) = kv::get::<SimGroup>(t, &key)? else {
                return Err(SimError::GroupNotFound(sg.to_string()));
            };
            let mut created = Vec::with_capacity(rules.len());
            for (n, (rule, description)) in rules.iter().enumerate() {
                let duplicate = group
                    .rules
                    .iter()
                    .any(|r| r.ports == rule.ports && r.cidr == rule.cidr)
                    || rules[..n].iter().any(|(r, _)| r == rule);
                if duplicate {
                    return Err(SimError::Duplicate);
                }
                if !fits(&group, &rule.cidr, 0) {
                    return Err(SimError::RuleLimit);
                }
                let id = next_rule_id(t)?;
                group.rules.push(SimRule {
                    ports: rule.ports,
                    cidr: rule.cidr,
                    description: description.clone(),
                    id: id.clone(),
                    managed: true,
                });
                created.push((*rule, id));
            }
            kv::put(t, &key, &group)?;
            Ok(created)
        })
    }

    /// EC2 RevokeSecurityGroupIngress by SecurityGroupRuleIds: every rule or none (an id that
    /// is not in the group refuses the whole call).
    pub async fn revoke_rule_ids(
        &self,
        region: &Region,
        sg: &SecurityGroupId,
        ids: &[String],
    ) -> Result<(), SimError> {
        self.arrive(region, sg, Operation::Revoke).await?;
        let key = group_key(region, sg);
        self.kv.write(|t| {
            let Some(mut group) = kv::get::<SimGroup>(t, &key)? else {
                return Err(SimError::GroupNotFound(sg.to_string()));
            };
            if ids
                .iter()
                .any(|id| !group.rules.iter().any(|r| &r.id == id))
            {
                return Err(SimError::RuleIdNotFound);
            }
            group.rules.retain(|r| !ids.contains(&r.id));
            kv::put(t, &key, &group)?;
            Ok(())
        })
    }

    /// EC2 RevokeSecurityGroupIngress for the rule with this permission and description (as
    /// EntryGuard revokes by the ids of its own tagged rules: a rule with another description is
    /// "not found").
    pub async fn revoke_ingress(
        &self,
        region: &Region,
        sg: &SecurityGroupId,
        rule: &IngressRule,
        description: &str,
    ) -> Result<(), SimError> {
        self.arrive(region, sg, Operation::Revoke).await?;
        let key = group_key(region, sg);
        self.kv.write(|t| {
            let Some(mut group) = kv::get::<SimGroup>(t, &key)? else {
                return Err(SimError::GroupNotFound(sg.to_string()));
            };
            let before = group.rules.len();
            group.rules.retain(|r| {
                !(r.ports == rule.ports && r.cidr == rule.cidr && r.description == description)
            });
            if group.rules.len() == before {
                return Err(SimError::PermissionNotFound);
            }
            kv::put(t, &key, &group)?;
            Ok(())
        })
    }

    /// EC2 DescribeSecurityGroupRules for one group: its inbound rules.
    pub async fn describe_ingress(
        &self,
        region: &Region,
        sg: &SecurityGroupId,
    ) -> Result<Vec<SimRule>, SimError> {
        self.arrive(region, sg, Operation::Describe).await?;
        match self.group(region, sg)? {
            Some(g) => Ok(g.rules),
            None => Err(SimError::GroupNotFound(sg.to_string())),
        }
    }

    /// Someone adds a rule in the console: no API call of EntryGuard's, no limit, no fault.
    pub fn add_by_hand(
        &self,
        region: &Region,
        sg: &SecurityGroupId,
        rule: &IngressRule,
        description: &str,
    ) -> Result<bool, SimError> {
        let key = group_key(region, sg);
        self.kv.write(|t| {
            let Some(mut group) = kv::get::<SimGroup>(t, &key)? else {
                return Err(SimError::GroupNotFound(sg.to_string()));
            };
            if group
                .rules
                .iter()
                .any(|r| r.ports == rule.ports && r.cidr == rule.cidr)
            {
                return Ok(false);
            }
            group.rules.push(SimRule {
                ports: rule.ports,
                cidr: rule.cidr,
                description: description.to_owned(),
                id: next_rule_id(t)?,
                managed: false,
            });
            kv::put(t, &key, &group)?;
            Ok(true)
        })
    }

    /// Someone deletes a rule in the console, EntryGuard's or not.
    pub fn delete_by_hand(
        &self,
        region: &Region,
        sg: &SecurityGroupId,
        rule: &IngressRule,
    ) -> Result<bool, SimError> {
        let key = group_key(region, sg);
        self.kv.write(|t| {
            let Some(mut group) = kv::get::<SimGroup>(t, &key)? else {
                return Ok(false);
            };
            let before = group.rules.len();
            group
                .rules
                .retain(|r| !(r.ports == rule.ports && r.cidr == rule.cidr));
            let deleted = group.rules.len() != before;
            kv::put(t, &key, &group)?;
            Ok(deleted)
        })
    }
}

/// The `Firewall` port over the simulated cloud, optionally pacing its calls the way the EC2
/// adapter does.
#[derive(Clone)]
pub struct SimulatedFirewall {
    cloud: SimCloud,
    pacer: Option<Arc<Pacer<Region>>>,
}

impl SimulatedFirewall {
    pub fn new(cloud: SimCloud) -> Self {
        Self { cloud, pacer: None }
    }

    /// Calls paced per region by `pacer` (a token bucket, and backoff on throttling).
    pub fn paced(cloud: SimCloud, pacer: Arc<Pacer<Region>>) -> Self {
        Self {
            cloud,
            pacer: Some(pacer),
        }
    }

    async fn run<T, F, Fut>(
        &self,
        region: &Region,
        kind: CallKind,
        op: F,
    ) -> Result<T, FirewallError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, FirewallError>>,
    {
        match &self.pacer {
            Some(p) => p.call(region, kind, p.deadline(), op).await,
            None => {
                let mut op = op;
                op().await
            }
        }
    }
}

fn classify(e: SimError, sg: &SecurityGroupId) -> FirewallError {
    match e {
        SimError::Throttled => FirewallError::Throttled(e.to_string()),
        SimError::Timeout | SimError::Storage(_) => FirewallError::Unavailable(e.to_string()),
        SimError::Unauthorized => FirewallError::PermissionDenied(e.to_string()),
        SimError::GroupNotFound(_) => FirewallError::GroupNotFound(sg.to_string()),
        SimError::RuleLimit => FirewallError::RuleLimitExceeded(sg.to_string()),
        SimError::Duplicate | SimError::PermissionNotFound | SimError::RuleIdNotFound => {
            FirewallError::Rejected(e.to_string())
        }
    }
}

/// The simulated cloud's calls on one group, paced like the EC2 adapter's.
struct SimCalls<'a> {
    fw: &'a SimulatedFirewall,
    group: &'a GroupRef,
}

/// A refusal of the whole call is an answer, not a failure: it goes back to the batch.
fn refusal_of(e: SimError, sg: &SecurityGroupId) -> Result<Refusal, FirewallError> {
    match e {
        SimError::Duplicate => Ok(Refusal::Duplicate),
        SimError::RuleIdNotFound | SimError::PermissionNotFound => Ok(Refusal::NotFound),
        SimError::RuleLimit => Ok(Refusal::RuleLimit),
        e => Err(classify(e, sg)),
    }
}

fn sim_rule_id(raw: String) -> Result<CloudRuleId, Refusal> {
    CloudRuleId::try_from(raw).map_err(|e| Refusal::Failed(FirewallError::Rejected(e)))
}

#[async_trait]
impl GroupCalls for SimCalls<'_> {
    async fn create(
        &self,
        rules: &[Authorization],
    ) -> Result<Vec<(IngressRule, CloudRuleId)>, Refusal> {
        let sg = &self.group.security_group_id;
        let asked: Vec<(IngressRule, String)> = rules
            .iter()
            .map(|a| (a.rule, a.description.clone()))
            .collect();
        let answer = self
            .fw
            .run(&self.group.region, CallKind::Mutating, || async {
                match self
                    .fw
                    .cloud
                    .authorize_rules(&self.group.region, sg, &asked)
                    .await
                {
                    Ok(created) => Ok(Ok(created)),
                    Err(e) => refusal_of(e, sg).map(Err),
                }
            })
            .await
            .map_err(Refusal::Failed)??;
        answer
            .into_iter()
            .map(|(rule, id)| Ok((rule, sim_rule_id(id)?)))
            .collect()
    }

    async fn delete(&self, ids: &[CloudRuleId]) -> Result<(), Refusal> {
        let sg = &self.group.security_group_id;
        let ids: Vec<String> = ids.iter().map(|i| i.as_str().to_owned()).collect();
        self.fw
            .run(&self.group.region, CallKind::Mutating, || async {
                match self
                    .fw
                    .cloud
                    .revoke_rule_ids(&self.group.region, sg, &ids)
                    .await
                {
                    Ok(()) => Ok(Ok(())),
                    Err(e) => refusal_of(e, sg).map(Err),
                }
            })
            .await
            .map_err(Refusal::Failed)?
    }

    async fn list(&self) -> Result<Vec<Listed>, FirewallError> {
        let sg = &self.group.security_group_id;
        let rules = self
            .fw
            .run(&self.group.region, CallKind::Describe, || async {
                self.fw
                    .cloud
                    .describe_ingress(&self.group.region, sg)
                    .await
                    .map_err(|e| classify(e, sg))
            })
            .await?;
        Ok(rules
            .into_iter()
            .map(|r| Listed {
                rule: Some(IngressRule {
                    ports: r.ports,
                    cidr: r.cidr,
                }),
                ipv6: matches!(r.cidr, IpNet::V6(_)),
                managed: r.is_managed(),
                id: CloudRuleId::try_from(r.id.clone()).ok(),
                description: Some(r.description),
            })
            .collect())
    }
}

#[async_trait]
impl Firewall for SimulatedFirewall {
    async fn apply_batch(&self, group: &GroupRef, batch: &GroupBatch) -> BatchOutcome {
        let calls = SimCalls { fw: self, group };
        batching::apply(&calls, &group.security_group_id, batch).await
    }

    async fn ingress_rules(&self, group: &GroupRef) -> Result<Vec<ListedRule>, FirewallError> {
        let sg = &group.security_group_id;
        self.run(&group.region, CallKind::Describe, || async {
            match self.cloud.describe_ingress(&group.region, sg).await {
                Ok(rules) => Ok(rules
                    .into_iter()
                    .map(|r| ListedRule {
                        rule: IngressRule {
                            ports: r.ports,
                            cidr: r.cidr,
                        },
                        managed: r.is_managed(),
                        id: CloudRuleId::try_from(r.id).ok(),
                    })
                    .collect()),
                Err(e) => Err(classify(e, sg)),
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::CredentialId;
    use crate::domain::model::Provider;

    fn group(sg: &str) -> GroupRef {
        GroupRef {
            credential_id: CredentialId::from_uuid(uuid::Uuid::nil()),
            provider: Provider::Simulated,
            region: "eu-west-1".parse().unwrap(),
            security_group_id: sg.parse().unwrap(),
        }
    }

    fn rule(port: u16) -> IngressRule {
        IngressRule {
            ports: PortRange::tcp(port),
            cidr: "203.0.113.7/32".parse().unwrap(),
        }
    }

    #[tokio::test]
    async fn ec2_semantics() {
        let cloud = SimCloud::new(Kv::in_memory());
        let g = group("sg-0000000a");
        cloud
            .create_group(&g.region, &g.security_group_id, "web")
            .unwrap();
        let fw = SimulatedFirewall::new(cloud.clone());
        fw.authorize(&g, &rule(22)).await.unwrap();
        // Raw duplicate is an error; through the adapter it is success.
        assert_eq!(
            cloud
                .authorize_ingress(&g.region, &g.security_group_id, &rule(22), "x")
                .await,
            Err(SimError::Duplicate)
        );
        fw.authorize(&g, &rule(22)).await.unwrap();
        fw.revoke(&g, &rule(22), None).await.unwrap();
        fw.revoke(&g, &rule(22), None).await.unwrap();
        assert!(matches!(
            fw.authorize(&group("sg-0000000b"), &rule(22)).await,
            Err(FirewallError::GroupNotFound(_))
        ));
        for p in 0..RULES_PER_GROUP as u16 {
            fw.authorize(&g, &rule(1000 + p)).await.unwrap();
        }
        let err = fw.authorize(&g, &rule(9999)).await.unwrap_err();
        assert!(matches!(err, FirewallError::RuleLimitExceeded(_)));
        assert!(!err.is_transient());
    }

    #[tokio::test]
    async fn injected_faults_are_classified() {
        let cloud = SimCloud::new(Kv::in_memory());
        let g = group("sg-0000000a");
        cloud
            .create_group(&g.region, &g.security_group_id, "web")
            .unwrap();
        cloud.inject(Fault {
            group: None,
            op: Some(Operation::Authorize),
            kind: FaultKind::Throttle,
            remaining: Some(1),
        });
        let fw = SimulatedFirewall::new(cloud.clone());
        let err = fw.authorize(&g, &rule(22)).await.unwrap_err();
        assert!(err.is_transient());
        fw.authorize(&g, &rule(22)).await.unwrap();
        cloud.inject(Fault {
            group: Some(g.security_group_id.clone()),
            op: None,
            kind: FaultKind::Unauthorized,
            remaining: None,
        });
        assert!(matches!(
            fw.revoke(&g, &rule(22), None).await,
            Err(FirewallError::PermissionDenied(_))
        ));
        assert_eq!(cloud.calls(), 3);
    }

    #[tokio::test]
    async fn listing_marks_entryguards_rules_and_revoke_leaves_hand_made_ones() {
        let cloud = SimCloud::new(Kv::in_memory());
        let g = group("sg-0000000a");
        cloud
            .create_group(&g.region, &g.security_group_id, "web")
            .unwrap();
        let fw = SimulatedFirewall::new(cloud.clone());
        assert!(cloud
            .add_by_hand(&g.region, &g.security_group_id, &rule(22), "office")
            .unwrap());
        fw.authorize(&g, &rule(443)).await.unwrap();
        // The same permission by hand exists: EntryGuard's authorize is a duplicate.
        fw.authorize(&g, &rule(22)).await.unwrap();
        let mut listed = fw.ingress_rules(&g).await.unwrap();
        listed.sort();
        assert!(listed.iter().all(|l| l.id.is_some()), "{listed:?}");
        let seen: Vec<(IngressRule, bool)> = listed.iter().map(|l| (l.rule, l.managed)).collect();
        assert_eq!(seen, vec![(rule(22), false), (rule(443), true)]);
        fw.revoke(&g, &rule(22), None).await.unwrap();
        fw.revoke(&g, &rule(443), None).await.unwrap();
        let left = cloud
            .group(&g.region, &g.security_group_id)
            .unwrap()
            .unwrap();
        assert_eq!(left.rules.len(), 1, "the hand-made rule stays");
        assert_eq!(left.rules[0].description, "office");
        assert!(cloud
            .delete_by_hand(&g.region, &g.security_group_id, &rule(22))
            .unwrap());
        assert!(fw.ingress_rules(&g).await.unwrap().is_empty());
        cloud.delete_group(&g.region, &g.security_group_id).unwrap();
        assert!(matches!(
            fw.ingress_rules(&g).await,
            Err(FirewallError::GroupNotFound(_))
        ));
    }

    #[tokio::test]
    async fn the_modelled_request_limit_throttles_beyond_the_bucket() {
        let cloud = SimCloud::new(Kv::in_memory());
        let g = group("sg-0000000a");
        cloud
            .create_group(&g.region, &g.security_group_id, "web")
            .unwrap();
        let clock = Arc::new(crate::embedded::ManualClock::new(
            chrono::DateTime::UNIX_EPOCH,
        ));
        let spec = BucketSpec {
            burst: 3,
            per_second: 1.0,
        };
        cloud.limit_requests(spec, spec, clock.clone());
        let fw = SimulatedFirewall::new(cloud.clone());
        for p in 0..3 {
            fw.authorize(&g, &rule(1000 + p)).await.unwrap();
        }
        assert!(matches!(
            fw.authorize(&g, &rule(2000)).await,
            Err(FirewallError::Throttled(_))
        ));
        clock.advance(chrono::Duration::seconds(1));
        fw.authorize(&g, &rule(2000)).await.unwrap();
        // Describe calls have their own bucket.
        fw.ingress_rules(&g).await.unwrap();
        assert_eq!(
            cloud.counts(),
            CallCounts {
                calls: 6,
                throttled: 1
            }
        );
    }

    fn authorization(port: u16) -> Authorization {
        Authorization {
            rule: rule(port),
            description: format!("EntryGuard dev@example.com port {port}"),
        }
    }

    fn setup() -> (SimCloud, SimulatedFirewall, GroupRef) {
        let cloud = SimCloud::new(Kv::in_memory());
        let g = group("sg-0000000a");
        cloud
            .create_group(&g.region, &g.security_group_id, "test")
            .unwrap();
        (cloud.clone(), SimulatedFirewall::new(cloud), g)
    }

    /// One call creates every rule of a batch, each with its own description and id, and one
    /// call deletes them by id: no listing.
    #[tokio::test]
    async fn a_batch_is_one_call_each_way() {
        let (cloud, fw, g) = setup();
        let batch = GroupBatch {
            authorize: (1..=5).map(authorization).collect(),
            revoke: vec![],
        };
        let out = fw.apply_batch(&g, &batch).await;
        assert_eq!(cloud.calls(), 1);
        let ids: Vec<CloudRuleId> = out
            .authorized
            .iter()
            .map(|(_, o)| match o {
                RuleOutcome::Present(Some(id)) => id.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        let listed = cloud
            .group(&g.region, &g.security_group_id)
            .unwrap()
            .unwrap();
        assert_eq!(listed.rules.len(), 5);
        assert!(listed.rules.iter().all(|r| r.managed));
        assert_eq!(
            listed.rules[2].description,
            "EntryGuard dev@example.com port 3"
        );
        let revoke = GroupBatch {
            authorize: vec![],
            revoke: (1..=5)
                .zip(&ids)
                .map(|(p, id)| Revocation {
                    rule: rule(p),
                    rule_id: Some(id.clone()),
                })
                .collect(),
        };
        let out = fw.apply_batch(&g, &revoke).await;
        assert!(out.revoked.iter().all(|(_, o)| *o == RuleOutcome::Absent));
        assert_eq!(cloud.calls(), 2, "revoked by id, without a listing");
        assert!(cloud
            .group(&g.region, &g.security_group_id)
            .unwrap()
            .unwrap()
            .rules
            .is_empty());
    }

    /// A duplicate inside a batch (an identical hand-made rule) refuses the whole call; one
    /// listing and one retry create the rest, and the hand-made rule is reported present but
    /// not EntryGuard's (no id: it is never revoked).
    #[tokio::test]
    async fn a_duplicate_costs_one_listing_and_one_retry() {
        let (cloud, fw, g) = setup();
        cloud
            .add_by_hand(&g.region, &g.security_group_id, &rule(3), "office")
            .unwrap();
        let batch = GroupBatch {
            authorize: (1..=5).map(authorization).collect(),
            revoke: vec![],
        };
        let out = fw.apply_batch(&g, &batch).await;
        assert_eq!(cloud.calls(), 3, "refused call, listing, retry");
        for (r, o) in &out.authorized {
            match (r.ports.from_port(), o) {
                (3, RuleOutcome::Present(None)) => {}
                (_, RuleOutcome::Present(Some(_))) => {}
                other => panic!("{other:?}"),
            }
        }
        let rules = cloud
            .group(&g.region, &g.security_group_id)
            .unwrap()
            .unwrap()
            .rules;
        assert_eq!(rules.len(), 5);
        assert_eq!(rules.iter().filter(|r| !r.managed).count(), 1);
    }

    /// A group two rules short of its quota takes two of a batch of five; only the other three
    /// fail, with the rule-limit error.
    #[tokio::test]
    async fn a_full_group_fails_only_what_does_not_fit() {
        let (cloud, fw, g) = setup();
        for n in 0..RULES_PER_GROUP - 2 {
            let r = IngressRule {
                ports: PortRange::tcp(10_000 + n as u16),
                cidr: "198.51.100.1/32".parse().unwrap(),
            };
            cloud
                .add_by_hand(&g.region, &g.security_group_id, &r, "office")
                .unwrap();
        }
        // An IPv6 rule still fits: the quota counts the families apart.
        let mut authorize: Vec<Authorization> = (1..=5).map(authorization).collect();
        authorize.push(Authorization {
            rule: IngressRule {
                ports: PortRange::tcp(22),
                cidr: "2001:db8::7/128".parse().unwrap(),
            },
            description: "v6".into(),
        });
        let batch = GroupBatch {
            authorize,
            revoke: vec![],
        };
        let out = fw.apply_batch(&g, &batch).await;
        let present = out
            .authorized
            .iter()
            .filter(|(_, o)| matches!(o, RuleOutcome::Present(Some(_))))
            .count();
        let full: Vec<_> = out
            .authorized
            .iter()
            .filter(|(_, o)| matches!(o, RuleOutcome::Failed(FirewallError::RuleLimitExceeded(_))))
            .collect();
        assert_eq!((present, full.len()), (3, 3), "{out:?}");
        assert_eq!(cloud.calls(), 3);
        assert!(FirewallError::RuleLimitExceeded("sg-0000000a".into())
            .to_string()
            .contains("rule limit"));
    }

    /// A rule deleted by hand since its id was recorded: the revoke by ids is refused as a
    /// whole, one listing shows it gone, and the retry deletes the others.
    #[tokio::test]
    async fn a_rule_deleted_by_hand_before_the_revoke() {
        let (cloud, fw, g) = setup();
        let batch = GroupBatch {
            authorize: (1..=3).map(authorization).collect(),
            revoke: vec![],
        };
        let out = fw.apply_batch(&g, &batch).await;
        let revoke = GroupBatch {
            authorize: vec![],
            revoke: out
                .authorized
                .iter()
                .map(|(r, o)| Revocation {
                    rule: *r,
                    rule_id: match o {
                        RuleOutcome::Present(id) => id.clone(),
                        _ => None,
                    },
                })
                .collect(),
        };
        cloud
            .delete_by_hand(&g.region, &g.security_group_id, &rule(2))
            .unwrap();
        let before = cloud.calls();
        let out = fw.apply_batch(&g, &revoke).await;
        assert!(
            out.revoked.iter().all(|(_, o)| *o == RuleOutcome::Absent),
            "{out:?}"
        );
        assert_eq!(cloud.calls() - before, 3, "refused call, listing, retry");
        assert!(cloud
            .group(&g.region, &g.security_group_id)
            .unwrap()
            .unwrap()
            .rules
            .is_empty());
    }
}
