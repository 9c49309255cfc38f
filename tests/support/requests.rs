//! Counting what moto's recorder saw: requests by service and operation, DynamoDB request units,
//! EC2 calls per security group, and what that costs at on-demand prices. Shared by the benches
//! that measure a session's cost.

use std::collections::BTreeMap;

use crate::moto::RecordedRequest;

/// us-east-1 on-demand, per million request units (check the current price list).
pub const WRITE_PRICE: f64 = 0.625;
pub const READ_PRICE: f64 = 0.125;

#[derive(Default)]
pub struct Tally {
    /// Requests by service and operation.
    pub requests: BTreeMap<String, usize>,
    pub write_units: usize,
    pub read_units: usize,
}

impl Tally {
    pub fn of(recorded: &[RecordedRequest]) -> Self {
        let mut t = Tally::default();
        for r in recorded {
            let body = String::from_utf8_lossy(&r.body_bytes()).into_owned();
            let target = r
                .headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("x-amz-target"))
                .map(|(_, v)| v.clone());
            let name = match target {
                Some(t) if t.starts_with("DynamoDB_") => {
                    format!("dynamodb {}", t.split('.').nth(1).unwrap_or("?"))
                }
                Some(t) if t.starts_with("AmazonSQS") => {
                    format!("sqs {}", t.split('.').nth(1).unwrap_or("?"))
                }
                Some(t) => t,
                None => match body.split('&').find_map(|kv| kv.strip_prefix("Action=")) {
                    Some(a) => format!("ec2/sts {a}"),
                    None => continue,
                },
            };
            // Items of 1 KB or less: a transaction bills two units per item.
            let items = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["TransactItems"].as_array().map(Vec::len))
                .unwrap_or(1);
            match name.as_str() {
                "dynamodb TransactWriteItems" => t.write_units += 2 * items,
                "dynamodb PutItem" | "dynamodb UpdateItem" | "dynamodb DeleteItem" => {
                    t.write_units += 1
                }
                "dynamodb BatchWriteItem" => {
                    t.write_units += serde_json::from_str::<serde_json::Value>(&body)
                        .ok()
                        .and_then(|v| {
                            v["RequestItems"].as_object().map(|o| {
                                o.values().filter_map(|a| a.as_array()).map(Vec::len).sum()
                            })
                        })
                        .unwrap_or(1)
                }
                n if n.starts_with("dynamodb ") => t.read_units += 1,
                _ => {}
            }
            *t.requests.entry(name).or_default() += 1;
        }
        t
    }

    pub fn print(&self, phase: &str, sessions: usize, entries: usize) {
        println!("\n{phase}: {sessions} sessions, {entries} entries");
        println!("| request | total | per session | per entry |");
        println!("|---|---|---|---|");
        for (name, n) in &self.requests {
            println!(
                "| {name} | {n} | {:.2} | {:.2} |",
                *n as f64 / sessions as f64,
                *n as f64 / entries as f64
            );
        }
        let writes: usize = self
            .requests
            .iter()
            .filter(|(k, _)| {
                [
                    "TransactWriteItems",
                    "PutItem",
                    "UpdateItem",
                    "DeleteItem",
                    "BatchWriteItem",
                ]
                .iter()
                .any(|w| k.as_str() == format!("dynamodb {w}"))
            })
            .map(|(_, n)| n)
            .sum();
        println!(
            "DynamoDB write requests per entry: {:.2}; write units per entry: {:.2}; read units per entry: {:.2}",
            writes as f64 / entries as f64,
            self.write_units as f64 / entries as f64,
            self.read_units as f64 / entries as f64
        );
    }
}

/// EC2 calls of `action` (e.g. `AuthorizeSecurityGroupIngress`) per security group.
pub fn ec2_calls_per_group(recorded: &[RecordedRequest], action: &str) -> BTreeMap<String, usize> {
    let mut per_group = BTreeMap::new();
    for r in recorded {
        let body = r.body_bytes();
        let params: BTreeMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
        if params.get("Action").map(String::as_str) != Some(action) {
            continue;
        }
        let group = params
            .get("GroupId")
            .cloned()
            .unwrap_or_else(|| "(no GroupId)".into());
        *per_group.entry(group).or_default() += 1;
    }
    per_group
}

/// Prints the request units of both phases per 1,000 sessions and their on-demand price.
pub fn print_cost(apply: &Tally, remove: &Tally, sessions: usize, entries_per_session: usize) {
    let units_write = (apply.write_units + remove.write_units) as f64 / sessions as f64;
    let units_read = (apply.read_units + remove.read_units) as f64 / sessions as f64;
    println!(
        "\nper 1,000 sessions of {entries_per_session} entries: {:.0} write units, {:.0} read units: ${:.4} at ${WRITE_PRICE}/M writes and ${READ_PRICE}/M reads",
        units_write * 1000.0,
        units_read * 1000.0,
        units_write * 1000.0 * WRITE_PRICE / 1e6 + units_read * 1000.0 * READ_PRICE / 1e6
    );
}
