//! Just enough of IAM's policy evaluation to check EntryGuard's generated policies as data:
//! Allow/Deny statements, `Action` and `Resource` with `*` and `?` wildcards, and
//! `StringEquals` conditions. An explicit Deny wins; otherwise some Allow must match.

use std::collections::BTreeMap;

use serde_json::Value;

/// One authorization IAM would make: an action on a resource, with the request's context keys.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Request {
    pub action: String,
    pub resource: String,
    pub context: BTreeMap<String, String>,
}

impl Request {
    pub fn new(action: &str, resource: &str) -> Self {
        Self {
            action: action.to_owned(),
            resource: resource.to_owned(),
            context: BTreeMap::new(),
        }
    }

    pub fn with(mut self, key: &str, value: &str) -> Self {
        self.context.insert(key.to_owned(), value.to_owned());
        self
    }
}

/// IAM's wildcard match: `*` any run of characters, `?` any one character.
pub fn wildcard(pattern: &str, text: &str, case_insensitive: bool) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = if case_insensitive {
        (
            pattern.to_lowercase().chars().collect(),
            text.to_lowercase().chars().collect(),
        )
    } else {
        (pattern.chars().collect(), text.chars().collect())
    };
    // Classic two-pointer glob match with backtracking to the last star.
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            pi += 1;
            mark = ti;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().expect("policy lists hold strings").to_owned())
            .collect(),
        other => panic!("expected a string or a list of strings, got {other}"),
    }
}

fn conditions_hold(statement: &Value, request: &Request) -> bool {
    let Some(condition) = statement.get("Condition") else {
        return true;
    };
    condition
        .as_object()
        .expect("Condition is an object")
        .iter()
        .all(|(operator, tests)| {
            assert_eq!(
                operator, "StringEquals",
                "this evaluator knows only StringEquals"
            );
            tests
                .as_object()
                .expect("condition tests are an object")
                .iter()
                .all(|(key, wanted)| {
                    request
                        .context
                        .get(key)
                        .is_some_and(|have| strings(wanted).contains(have))
                })
        })
}

fn matches(statement: &Value, request: &Request) -> bool {
    let actions = strings(&statement["Action"]);
    let resources = strings(&statement["Resource"]);
    actions.iter().any(|a| wildcard(a, &request.action, true))
        && resources
            .iter()
            .any(|r| wildcard(r, &request.resource, false))
        && conditions_hold(statement, request)
}

/// Whether `policy` allows `request`.
pub fn allows(policy: &Value, request: &Request) -> bool {
    let statements = policy["Statement"]
        .as_array()
        .expect("a policy has a Statement list");
    let denied = statements
        .iter()
        .any(|s| s["Effect"] == "Deny" && matches(s, request));
    let allowed = statements
        .iter()
        .any(|s| s["Effect"] == "Allow" && matches(s, request));
    allowed && !denied
}

/// Every action an Allow statement names.
pub fn allowed_actions(policy: &Value) -> Vec<String> {
    policy["Statement"]
        .as_array()
        .expect("a policy has a Statement list")
        .iter()
        .filter(|s| s["Effect"] == "Allow")
        .flat_map(|s| strings(&s["Action"]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wildcards() {
        assert!(wildcard("ec2:*", "ec2:RunInstances", true));
        assert!(wildcard(
            "EC2:describe*",
            "ec2:DescribeSecurityGroups",
            true
        ));
        assert!(!wildcard("ec2:Describe*", "sts:GetCallerIdentity", true));
        assert!(wildcard(
            "arn:aws:ec2:*:*:security-group/sg-1",
            "arn:aws:ec2:eu-west-1:1:security-group/sg-1",
            false
        ));
        assert!(!wildcard(
            "arn:aws:ec2:*:*:security-group/sg-1",
            "arn:aws:ec2:eu-west-1:1:security-group/sg-12",
            false
        ));
        assert!(wildcard("a?c", "abc", false));
        assert!(!wildcard("a?c", "ac", false));
        assert!(wildcard("*", "", false));
    }

    #[test]
    fn deny_wins_and_conditions_must_hold() {
        let policy = json!({"Statement": [
            {"Effect": "Allow", "Action": "ec2:CreateTags", "Resource": "*",
             "Condition": {"StringEquals": {"ec2:CreateAction": "AuthorizeSecurityGroupIngress"}}},
            {"Effect": "Allow", "Action": ["ec2:Describe*"], "Resource": "*"},
            {"Effect": "Deny", "Action": "ec2:DescribeInstances", "Resource": "*"},
        ]});
        assert!(allows(
            &policy,
            &Request::new("ec2:DescribeSecurityGroups", "*")
        ));
        assert!(!allows(
            &policy,
            &Request::new("ec2:DescribeInstances", "*")
        ));
        assert!(!allows(&policy, &Request::new("ec2:CreateTags", "x")));
        assert!(allows(
            &policy,
            &Request::new("ec2:CreateTags", "x")
                .with("ec2:CreateAction", "AuthorizeSecurityGroupIngress")
        ));
    }
}
