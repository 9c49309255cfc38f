//! A simulated cloud: security groups kept in the embedded database with EC2's semantics
//! (60 inbound rules per group, duplicate and not-found errors), plus injectable faults and
//! latency. `SimulatedFirewall` is the `Firewall` adapter over it, classifying its errors the
//! way the EC2 adapter classifies EC2's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::kv::{self, Kv};
use crate::domain::net::{PortRange, Region, SecurityGroupId};
use crate::domain::rule::{GroupRef, IngressRule, ListedRule};
use crate::pacing::{BucketSpec, CallKind, Pacer, TokenBucket};
use crate::ports::firewall::{Firewall, FirewallError};
use crate::ports::store::StoreError;
use crate::ports::Timer;

/// EC2's inbound rule quota per security group.
pub const RULES_PER_GROUP: usize = 60;

/// The description EntryGuard puts on every rule it creates.
pub const RULE_DESCRIPTION: &str = "Managed by EntryGuard";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimRule {
    pub ports: PortRange,
    pub cidr: IpNet,
    pub description: String,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    calls: u64,
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

    fn before_call(
        &self,
        region: &Region,
        sg: &SecurityGroupId,
        op: Operation,
    ) -> Result<Duration, SimError> {
        let mut injected = self.injected.lock().expect("fault lock");
        injected.calls += 1;
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
        let latency = injected.latency;
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
        Ok(latency)
    }

    /// EC2 AuthorizeSecurityGroupIngress for one permission.
    pub async fn authorize_ingress(
        &self,
        region: &Region,
        sg: &SecurityGroupId,
        rule: &IngressRule,
        description: &str,
    ) -> Result<(), SimError> {
        let latency = self.before_call(region, sg, Operation::Authorize)?;
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
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
            if group.rules.len() >= RULES_PER_GROUP {
                return Err(SimError::RuleLimit);
            }
            group.rules.push(SimRule {
                ports: rule.ports,
                cidr: rule.cidr,
                description: description.to_owned(),
            });
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
        let latency = self.before_call(region, sg, Operation::Revoke)?;
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
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
        let latency = self.before_call(region, sg, Operation::Describe)?;
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
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
        SimError::Duplicate | SimError::PermissionNotFound => {
            FirewallError::Rejected(e.to_string())
        }
    }
}

#[async_trait]
impl Firewall for SimulatedFirewall {
    async fn authorize(&self, group: &GroupRef, rule: &IngressRule) -> Result<(), FirewallError> {
        let sg = &group.security_group_id;
        self.run(&group.region, CallKind::Mutating, || async {
            match self
                .cloud
                .authorize_ingress(&group.region, sg, rule, RULE_DESCRIPTION)
                .await
            {
                Ok(()) | Err(SimError::Duplicate) => Ok(()),
                Err(e) => Err(classify(e, sg)),
            }
        })
        .await
    }

    async fn revoke(&self, group: &GroupRef, rule: &IngressRule) -> Result<(), FirewallError> {
        let sg = &group.security_group_id;
        self.run(&group.region, CallKind::Mutating, || async {
            match self
                .cloud
                .revoke_ingress(&group.region, sg, rule, RULE_DESCRIPTION)
                .await
            {
                Ok(()) | Err(SimError::PermissionNotFound) => Ok(()),
                Err(e) => Err(classify(e, sg)),
            }
        })
        .await
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
                        managed: r.description == RULE_DESCRIPTION,
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
        fw.revoke(&g, &rule(22)).await.unwrap();
        fw.revoke(&g, &rule(22)).await.unwrap();
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
            fw.revoke(&g, &rule(22)).await,
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
        assert_eq!(
            listed,
            vec![
                ListedRule {
                    rule: rule(22),
                    managed: false
                },
                ListedRule {
                    rule: rule(443),
                    managed: true
                }
            ]
        );
        fw.revoke(&g, &rule(22)).await.unwrap();
        fw.revoke(&g, &rule(443)).await.unwrap();
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
}
