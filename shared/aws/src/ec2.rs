//! The `Firewall` port on EC2 security groups. Every rule EntryGuard creates carries its
//! description and its tag; revokes go by the ids of tagged rules only, so a rule someone made
//! by hand is never touched, even when it opens the same ports to the same address. Calls are
//! paced per account and region by a token bucket at EC2's documented limits, and throttling
//! or timeouts are retried with exponential backoff and jitter within a fixed budget.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_ec2::types::{
    Filter, IpPermission, IpRange, Ipv6Range, ResourceType, Tag, TagSpecification,
};
use ipnet::IpNet;

use entryguard::batching::{self, cloud_description, GroupCalls, Listed, Refusal};
use entryguard::domain::net::{PortRange, Protocol, Region, SecurityGroupId};
use entryguard::domain::rule::{CloudRuleId, GroupRef, IngressRule, ListedRule};
use entryguard::pacing::{CallKind, Pacer, PacerConfig, PacerStats};
use entryguard::ports::firewall::{
    Authorization, BatchOutcome, Firewall, FirewallError, GroupBatch, RuleOutcome,
};
use entryguard::ports::secrets::SecretSealer;
use entryguard::runtime::TokioTimer;

use crate::credentials::{CredentialSource, Ec2Clients, RuleQuota};
#[cfg(test)]
use crate::schema::RULE_DESCRIPTION;
use crate::schema::{MANAGED_TAG_KEY, MANAGED_TAG_VALUE};
use crate::sdk_error::{classify_firewall, facts, RULE_LIMIT};

/// EC2's answer to authorizing a rule that exists: the rule is there, which is what we wanted.
const DUPLICATE: &str = "InvalidPermission.Duplicate";
/// EC2's answers to revoking a rule that does not exist: it is gone, which is what we wanted.
const NOT_FOUND: [&str; 2] = [
    "InvalidPermission.NotFound",
    "InvalidSecurityGroupRuleId.NotFound",
];

/// The permissions of one AuthorizeSecurityGroupIngress: one per protocol and port range, with
/// every address range under it, each carrying its own description.
fn permissions(rules: &[Authorization]) -> Vec<IpPermission> {
    let mut by_ports: BTreeMap<PortRange, Vec<&Authorization>> = BTreeMap::new();
    for a in rules {
        by_ports.entry(a.rule.ports).or_default().push(a);
    }
    by_ports
        .into_iter()
        .map(|(ports, ranges)| {
            let mut p = IpPermission::builder()
                .ip_protocol(ports.protocol().as_str())
                .from_port(i32::from(ports.from_port()))
                .to_port(i32::from(ports.to_port()));
            for a in ranges {
                let description = cloud_description(&a.description);
                p = match a.rule.cidr {
                    IpNet::V4(_) => p.ip_ranges(
                        IpRange::builder()
                            .cidr_ip(a.rule.cidr.to_string())
                            .description(description)
                            .build(),
                    ),
                    IpNet::V6(_) => p.ipv6_ranges(
                        Ipv6Range::builder()
                            .cidr_ipv6(a.rule.cidr.to_string())
                            .description(description)
                            .build(),
                    ),
                };
            }
            p.build()
        })
        .collect()
}

#[cfg(test)]
fn permission(rule: &IngressRule) -> IpPermission {
    permissions(&[Authorization {
        rule: *rule,
        description: RULE_DESCRIPTION.to_owned(),
    }])
    .remove(0)
}

fn managed_tag() -> TagSpecification {
    TagSpecification::builder()
        .resource_type(ResourceType::SecurityGroupRule)
        .tags(
            Tag::builder()
                .key(MANAGED_TAG_KEY)
                .value(MANAGED_TAG_VALUE)
                .build(),
        )
        .build()
}

/// One inbound rule of a security group as EC2 describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudRule {
    pub rule_id: String,
    pub group_id: String,
    /// `tcp`, `udp`, `icmp`, `-1` (all) or a protocol number.
    pub protocol: String,
    pub from_port: Option<i32>,
    pub to_port: Option<i32>,
    /// `None` for rules that name a security group or a prefix list instead of addresses.
    pub cidr: Option<IpNet>,
    pub description: Option<String>,
    pub tags: BTreeMap<String, String>,
}

impl CloudRule {
    /// Created by EntryGuard.
    pub fn is_managed(&self) -> bool {
        self.tags.get(MANAGED_TAG_KEY).map(String::as_str) == Some(MANAGED_TAG_VALUE)
    }

    /// The rule in EntryGuard's terms, if it is one EntryGuard could have made.
    pub fn ingress_rule(&self) -> Option<IngressRule> {
        let protocol = match self.protocol.as_str() {
            "tcp" | "6" => Protocol::Tcp,
            "udp" | "17" => Protocol::Udp,
            _ => return None,
        };
        let from = u16::try_from(self.from_port?).ok()?;
        let to = u16::try_from(self.to_port?).ok()?;
        Some(IngressRule {
            ports: PortRange::new(protocol, from, to).ok()?,
            cidr: self.cidr?,
        })
    }
}

/// Every inbound rule of a group, EntryGuard's and everyone else's (reconciliation compares
/// these with the rule records). An empty list for a group that does not exist: EC2 filters,
/// it does not check.
pub async fn list_ingress_rules(
    client: &aws_sdk_ec2::Client,
    group: &SecurityGroupId,
) -> Result<Vec<CloudRule>, FirewallError> {
    let mut rules = Vec::new();
    let mut next_token = None;
    loop {
        let (page, next) = rules_page(client, group, next_token).await?;
        rules.extend(page);
        next_token = next;
        if next_token.is_none() {
            return Ok(rules);
        }
    }
}

fn cloud_rule(r: &aws_sdk_ec2::types::SecurityGroupRule, group: &SecurityGroupId) -> CloudRule {
    CloudRule {
        rule_id: r.security_group_rule_id().unwrap_or_default().to_owned(),
        group_id: r.group_id().unwrap_or(group.as_str()).to_owned(),
        protocol: r.ip_protocol().unwrap_or_default().to_owned(),
        from_port: r.from_port(),
        to_port: r.to_port(),
        cidr: r
            .cidr_ipv4()
            .or(r.cidr_ipv6())
            .and_then(|c| c.parse::<IpNet>().ok()),
        description: r.description().map(str::to_owned),
        tags: r
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
            .collect(),
    }
}

/// One page of DescribeSecurityGroupRules for a group, and the token of the next.
async fn rules_page(
    client: &aws_sdk_ec2::Client,
    group: &SecurityGroupId,
    next_token: Option<String>,
) -> Result<(Vec<CloudRule>, Option<String>), FirewallError> {
    let out = client
        .describe_security_group_rules()
        .filters(
            Filter::builder()
                .name("group-id")
                .values(group.as_str())
                .build(),
        )
        .set_next_token(next_token)
        .send()
        .await
        .map_err(|e| classify_firewall(&facts(&e), group.as_str()))?;
    let rules = out
        .security_group_rules()
        .iter()
        .filter(|r| r.is_egress() != Some(true))
        .map(|r| cloud_rule(r, group))
        .collect();
    let next = out.next_token.filter(|t| !t.is_empty());
    Ok((rules, next))
}

/// Where EC2's request limits apply: an account (or an unchecked credential) in a region.
pub type LimitKey = (String, Region);

pub struct Ec2Firewall {
    clients: Arc<Ec2Clients>,
    pacer: Pacer<LimitKey>,
}

/// The client for one group, and the pacing key its calls count against.
struct Target {
    client: aws_sdk_ec2::Client,
    key: LimitKey,
    deadline: Duration,
    quotas: RuleQuota,
}

impl Ec2Firewall {
    /// `base` carries the endpoint, timeouts and retry settings; each customer credential
    /// brings its own credentials and the group its region. Calls are paced to EC2's limits.
    /// `sealer` opens the static keys of credentials that have them.
    pub fn new(
        base: SdkConfig,
        credentials: Arc<dyn CredentialSource>,
        sealer: Arc<dyn SecretSealer>,
    ) -> Self {
        Self::with_pacing(base, credentials, sealer, PacerConfig::ec2(1))
    }

    /// With the request limits shared differently (e.g. by several concurrent workers).
    pub fn with_pacing(
        base: SdkConfig,
        credentials: Arc<dyn CredentialSource>,
        sealer: Arc<dyn SecretSealer>,
        pacing: PacerConfig,
    ) -> Self {
        Self {
            clients: Arc::new(Ec2Clients::new(base, credentials, sealer)),
            pacer: Pacer::new(Arc::new(TokioTimer::default()), pacing, None),
        }
    }

    /// What the pacer has done so far.
    pub fn pacing_stats(&self) -> PacerStats {
        self.pacer.stats()
    }

    async fn target(&self, group: &GroupRef) -> Result<Target, FirewallError> {
        let deadline = self.pacer.deadline();
        let c = self
            .clients
            .client(group.credential_id, &group.region)
            .await?;
        Ok(Target {
            client: c.client,
            key: (c.account, group.region.clone()),
            deadline,
            quotas: c.quotas,
        })
    }

    /// A rejected credential may have been fixed by the next call: read it again then.
    fn after<T>(
        &self,
        group: &GroupRef,
        result: Result<T, FirewallError>,
    ) -> Result<T, FirewallError> {
        if let Err(FirewallError::InvalidCredential(_)) = &result {
            self.clients.forget(group.credential_id);
        }
        result
    }

    /// The group's inbound rules.
    pub async fn list_rules(&self, group: &GroupRef) -> Result<Vec<CloudRule>, FirewallError> {
        let t = self.target(group).await?;
        self.list_paced(&t, &group.security_group_id).await
    }

    async fn list_paced(
        &self,
        t: &Target,
        group: &SecurityGroupId,
    ) -> Result<Vec<CloudRule>, FirewallError> {
        let mut rules = Vec::new();
        let mut next_token: Option<String> = None;
        loop {
            let (page, next) = self
                .pacer
                .call(&t.key, CallKind::Describe, t.deadline, || {
                    rules_page(&t.client, group, next_token.clone())
                })
                .await?;
            rules.extend(page);
            next_token = next;
            if next_token.is_none() {
                return Ok(rules);
            }
        }
    }

    /// Whether the group exists (a filtered listing cannot tell).
    async fn check_group(&self, t: &Target, sg: &str) -> Result<(), FirewallError> {
        self.pacer
            .call(&t.key, CallKind::Describe, t.deadline, || async {
                t.client
                    .describe_security_groups()
                    .group_ids(sg)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| classify_firewall(&facts(&e), sg))
            })
            .await
    }

    async fn ingress_rules_inner(
        &self,
        group: &GroupRef,
    ) -> Result<Vec<ListedRule>, FirewallError> {
        let t = self.target(group).await?;
        let rules = self.list_paced(&t, &group.security_group_id).await?;
        if rules.is_empty() {
            self.check_group(&t, group.security_group_id.as_str())
                .await?;
        }
        Ok(rules
            .iter()
            .filter_map(|r| {
                Some(ListedRule {
                    rule: r.ingress_rule()?,
                    managed: r.is_managed(),
                    id: CloudRuleId::try_from(r.rule_id.clone()).ok(),
                })
            })
            .collect())
    }
}

/// EC2's calls on one group, paced.
struct Ec2Calls<'a> {
    fw: &'a Ec2Firewall,
    t: &'a Target,
    group: &'a GroupRef,
}

#[async_trait]
impl GroupCalls for Ec2Calls<'_> {
    async fn create(
        &self,
        rules: &[Authorization],
    ) -> Result<Vec<(IngressRule, CloudRuleId)>, Refusal> {
        let sg = self.group.security_group_id.as_str();
        let perms = permissions(rules);
        let created = self
            .fw
            .pacer
            .call(&self.t.key, CallKind::Mutating, self.t.deadline, || async {
                match self
                    .t
                    .client
                    .authorize_security_group_ingress()
                    .group_id(sg)
                    .set_ip_permissions(Some(perms.clone()))
                    .tag_specifications(managed_tag())
                    .send()
                    .await
                {
                    Ok(out) => Ok(Ok(out
                        .security_group_rules()
                        .iter()
                        .map(|r| cloud_rule(r, &self.group.security_group_id))
                        .collect::<Vec<_>>())),
                    Err(e) => {
                        let f = facts(&e);
                        match f.code() {
                            // Also the answer to a retry of a timed-out call that went through.
                            Some(DUPLICATE) => Ok(Err(Refusal::Duplicate)),
                            Some(RULE_LIMIT) => Ok(Err(Refusal::RuleLimit)),
                            _ => Err(classify_firewall(&f, sg)),
                        }
                    }
                }
            })
            .await
            .map_err(Refusal::Failed)??;
        tracing::info!(security_group = sg, region = %self.group.region, rules = rules.len(), "authorized ingress");
        Ok(created
            .iter()
            .filter_map(|r| Some((r.ingress_rule()?, r.rule_id.parse().ok()?)))
            .collect())
    }

    async fn delete(&self, ids: &[CloudRuleId]) -> Result<(), Refusal> {
        let sg = self.group.security_group_id.as_str();
        let ids: Vec<String> = ids.iter().map(|i| i.as_str().to_owned()).collect();
        self.fw
            .pacer
            .call(&self.t.key, CallKind::Mutating, self.t.deadline, || async {
                match self
                    .t
                    .client
                    .revoke_security_group_ingress()
                    .group_id(sg)
                    .set_security_group_rule_ids(Some(ids.clone()))
                    .send()
                    .await
                {
                    Ok(_) => Ok(Ok(())),
                    Err(e) => {
                        let f = facts(&e);
                        if f.code().is_some_and(|c| NOT_FOUND.contains(&c)) {
                            return Ok(Err(Refusal::NotFound));
                        }
                        Err(classify_firewall(&f, sg))
                    }
                }
            })
            .await
            .map_err(Refusal::Failed)??;
        tracing::info!(security_group = sg, region = %self.group.region, rules = ids.len(), "revoked ingress");
        Ok(())
    }

    async fn rule_limit(&self) -> usize {
        self.t.quotas.rules_per_group().await
    }

    async fn list(&self) -> Result<Vec<Listed>, FirewallError> {
        let sg = &self.group.security_group_id;
        let rules = self.fw.list_paced(self.t, sg).await?;
        if rules.is_empty() {
            // A filtered listing of a missing group is merely empty.
            self.fw.check_group(self.t, sg.as_str()).await?;
        }
        Ok(rules
            .into_iter()
            .map(|r| Listed {
                rule: r.ingress_rule(),
                ipv6: matches!(r.cidr, Some(IpNet::V6(_))),
                managed: r.is_managed(),
                id: r.rule_id.parse().ok(),
                description: r.description,
            })
            .collect())
    }
}

#[async_trait]
impl Firewall for Ec2Firewall {
    async fn apply_batch(&self, group: &GroupRef, batch: &GroupBatch) -> BatchOutcome {
        let t = match self.target(group).await {
            Ok(t) => t,
            Err(e) => {
                let _ = self.after(group, Err::<(), _>(e.clone()));
                return BatchOutcome::all_failed(batch, &e);
            }
        };
        let calls = Ec2Calls {
            fw: self,
            t: &t,
            group,
        };
        let outcome = batching::apply(&calls, &group.security_group_id, batch).await;
        let rejected =
            outcome
                .authorized
                .iter()
                .chain(&outcome.revoked)
                .find_map(|(_, o)| match o {
                    RuleOutcome::Failed(e @ FirewallError::InvalidCredential(_)) => Some(e.clone()),
                    _ => None,
                });
        if let Some(e) = rejected {
            let _ = self.after(group, Err::<(), _>(e));
        }
        outcome
    }

    async fn ingress_rules(&self, group: &GroupRef) -> Result<Vec<ListedRule>, FirewallError> {
        let result = self.ingress_rules_inner(group).await;
        self.after(group, result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_carry_the_description_and_the_address_family() {
        let v4 = IngressRule {
            ports: PortRange::tcp(22),
            cidr: "203.0.113.7/32".parse().unwrap(),
        };
        let p = permission(&v4);
        assert_eq!(p.ip_protocol(), Some("tcp"));
        assert_eq!((p.from_port(), p.to_port()), (Some(22), Some(22)));
        assert_eq!(p.ip_ranges()[0].cidr_ip(), Some("203.0.113.7/32"));
        assert_eq!(p.ip_ranges()[0].description(), Some(RULE_DESCRIPTION));
        assert!(p.ipv6_ranges().is_empty());
        let v6 = IngressRule {
            ports: PortRange::new(Protocol::Udp, 1000, 2000).unwrap(),
            cidr: "2001:db8::1/128".parse().unwrap(),
        };
        let p = permission(&v6);
        assert_eq!(p.ip_protocol(), Some("udp"));
        assert_eq!(p.ipv6_ranges()[0].cidr_ipv6(), Some("2001:db8::1/128"));
        assert!(p.ip_ranges().is_empty());
    }

    #[test]
    fn cloud_rules_map_back_to_ingress_rules() {
        let mut r = CloudRule {
            rule_id: "sgr-1".into(),
            group_id: "sg-0123abcd".into(),
            protocol: "tcp".into(),
            from_port: Some(443),
            to_port: Some(443),
            cidr: Some("198.51.100.1/32".parse().unwrap()),
            description: None,
            tags: BTreeMap::new(),
        };
        assert!(!r.is_managed());
        assert_eq!(
            r.ingress_rule(),
            Some(IngressRule {
                ports: PortRange::tcp(443),
                cidr: "198.51.100.1/32".parse().unwrap()
            })
        );
        r.tags
            .insert(MANAGED_TAG_KEY.into(), MANAGED_TAG_VALUE.into());
        assert!(r.is_managed());
        r.protocol = "-1".into();
        assert_eq!(r.ingress_rule(), None);
    }
}
