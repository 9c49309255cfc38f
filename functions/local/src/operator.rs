//! The operator's command (`entryguard-admin`): plans, suspension and the list of
//! organizations. It talks to the deployment's store directly — with the operator's AWS
//! credentials on AWS, or the runner's data directory locally — so it is authenticated by
//! whoever may reach that store, never by a token an organization holds.

use clap::Subcommand;
use serde_json::json;

use entryguard::app::App;
use entryguard::domain::ids::OrgId;
use entryguard::domain::tier::Tier;

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Lists every organization with its plan, status and number of users.
    Orgs,
    /// Sets an organization's plan. Running sessions keep going; new starts follow the plan.
    SetPlan {
        org: OrgId,
        #[arg(value_parser = parse_tier)]
        plan: Tier,
    },
    /// Suspends an organization: it starts and extends no sessions, and its live sessions end.
    Suspend {
        org: OrgId,
        /// Why, for the organization's audit log.
        #[arg(long)]
        reason: String,
    },
    /// Lifts a suspension.
    Resume { org: OrgId },
}

fn parse_tier(raw: &str) -> Result<Tier, String> {
    raw.parse()
        .map_err(|e: entryguard::domain::net::ParseError| e.to_string())
}

/// Runs one command as `operator` (the name the audit log records); returns what to print.
pub async fn run(
    app: &App,
    command: &Command,
    operator: &str,
    as_json: bool,
) -> anyhow::Result<String> {
    let out = match command {
        Command::Orgs => {
            let orgs = app.operator_list_organizations().await?;
            if as_json {
                serde_json::to_string_pretty(&orgs)?
            } else if orgs.is_empty() {
                "no organizations".to_owned()
            } else {
                let mut lines = vec![format!(
                    "{:<36}  {:<9}  {:<9}  {:>5}  NAME",
                    "ID", "PLAN", "STATUS", "USERS"
                )];
                lines.extend(orgs.iter().map(|o| {
                    format!(
                        "{:<36}  {:<9}  {:<9}  {:>5}  {}",
                        o.org.id, o.org.tier, o.org.status, o.users, o.org.name
                    )
                }));
                lines.join("\n")
            }
        }
        Command::SetPlan { org, plan } => {
            let org = app.operator_set_plan(*org, *plan, operator).await?;
            if as_json {
                serde_json::to_string_pretty(&org)?
            } else {
                format!("{} ({}) is on the {} plan", org.name, org.id, org.tier)
            }
        }
        Command::Suspend { org, reason } => {
            let reason = reason.trim();
            anyhow::ensure!(
                !reason.is_empty(),
                "say why with --reason: it goes to the organization's audit log"
            );
            let done = app.operator_suspend(*org, operator, reason).await?;
            if as_json {
                serde_json::to_string_pretty(&json!({
                    "id": org,
                    "status": "SUSPENDED",
                    "sessionsStopped": done.sessions_stopped,
                }))?
            } else {
                format!(
                    "{org} is suspended; {} live session(s) stopped (their rules are removed by the worker)",
                    done.sessions_stopped
                )
            }
        }
        Command::Resume { org } => {
            let org = app.operator_resume(*org, operator).await?;
            if as_json {
                serde_json::to_string_pretty(&org)?
            } else {
                format!("{} ({}) is active again", org.name, org.id)
            }
        }
    };
    Ok(out)
}
