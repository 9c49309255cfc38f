//! The least-privilege IAM policy a credential needs, generated from the resources that use it.

use serde_json::{json, Value};

use super::model::{Credential, Resource};

/// The actions EntryGuard performs, and nothing else.
pub const INGRESS_ACTIONS: [&str; 2] = [
    "ec2:AuthorizeSecurityGroupIngress",
    "ec2:RevokeSecurityGroupIngress",
];
pub const DESCRIBE_ACTIONS: [&str; 2] = [
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSecurityGroupRules",
];

/// The account's quota of inbound rules per security group: read where allowed.
pub const QUOTA_ACTION: &str = "servicequotas:GetServiceQuota";
/// Service Quotas' code for "Inbound or outbound rules per security group".
pub const RULES_QUOTA_CODE: &str = "L-0EA8095F";

/// The identity policy for `credential`. Ingress changes are scoped to the ARNs of the security
/// groups its resources use; describe calls cannot be scoped by resource in IAM.
pub fn identity_policy(credential: &Credential, resources: &[&Resource]) -> Value {
    let account = credential.account_id.as_ref().map_or("*", |a| a.as_str());
    let mut group_arns: Vec<String> = resources
        .iter()
        .filter(|r| r.credential_id == credential.id)
        .map(|r| {
            format!(
                "arn:aws:ec2:{}:{account}:security-group/{}",
                r.region, r.security_group_id
            )
        })
        .collect();
    group_arns.sort();
    group_arns.dedup();
    let mut rule_arns: Vec<String> = resources
        .iter()
        .filter(|r| r.credential_id == credential.id)
        .map(|r| format!("arn:aws:ec2:{}:{account}:security-group-rule/*", r.region))
        .collect();
    rule_arns.sort();
    rule_arns.dedup();
    let mut statements = Vec::new();
    if !group_arns.is_empty() {
        statements.push(json!({
            "Sid": "EntryGuardManageIngress",
            "Effect": "Allow",
            "Action": INGRESS_ACTIONS,
            "Resource": group_arns,
        }));
        statements.push(json!({
            "Sid": "EntryGuardTagOwnRules",
            "Effect": "Allow",
            "Action": "ec2:CreateTags",
            "Resource": rule_arns,
            "Condition": {"StringEquals": {"ec2:CreateAction": "AuthorizeSecurityGroupIngress"}},
        }));
    }
    statements.push(json!({
        "Sid": "EntryGuardDescribe",
        "Effect": "Allow",
        "Action": DESCRIBE_ACTIONS,
        "Resource": "*",
    }));
    // Read only when a group is full, so that exactly the rules that do not fit fail.
    statements.push(json!({
        "Sid": "EntryGuardReadRuleQuota",
        "Effect": "Allow",
        "Action": QUOTA_ACTION,
        "Resource": format!("arn:aws:servicequotas:*:{account}:vpc/{RULES_QUOTA_CODE}"),
    }));
    statements.push(json!({
        "Sid": "EntryGuardVerifyCredential",
        "Effect": "Allow",
        "Action": "sts:GetCallerIdentity",
        "Resource": "*",
    }));
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// For role credentials: the trust policy that lets EntryGuard's principal assume the role, only
/// with the organization's external id.
pub fn trust_policy(credential: &Credential, entryguard_principal: &str) -> Option<Value> {
    let external_id = credential.external_id()?.as_str();
    Some(json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"AWS": entryguard_principal},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": external_id}},
        }],
    }))
}
