//! `entryguard-admin`: the operator's command. See `entryguard_local::operator`.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

use entryguard_aws::{ResourceNames, SdkOptions};
use entryguard_local::operator::{self, Command};
use entryguard_local::{operator_app, AwsConfig, Backend};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BackendKind {
    /// The local runner's data directory (stop the runner first).
    Embedded,
    /// The deployment's DynamoDB table and SQS queue, with the operator's AWS credentials from
    /// the standard chain.
    Aws,
}

/// Operator commands for an EntryGuard deployment: plans, suspension, organizations. Only the
/// operator, who can reach the deployment's store, can run them.
#[derive(Debug, Parser)]
#[command(name = "entryguard-admin", version)]
struct Args {
    #[arg(long, value_enum, default_value_t = BackendKind::Embedded, global = true)]
    backend: BackendKind,
    /// With the embedded backend: the runner's data directory.
    #[arg(long, default_value = ".entryguard-data", global = true)]
    data_dir: PathBuf,
    /// With --backend aws: the prefix the table and queues were named with (the runner's
    /// --aws-prefix).
    #[arg(long, default_value = "entryguard", global = true)]
    aws_prefix: String,
    /// With --backend aws: the table's name (the stack's TableName output), instead of the
    /// prefix's.
    #[arg(long, global = true)]
    table: Option<String>,
    /// With --backend aws: the task queue's name (the last part of the stack's QueueUrl).
    #[arg(long, global = true)]
    queue: Option<String>,
    /// Print JSON.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if let Err(error) = run(args).await {
        eprintln!("entryguard-admin: {error:#}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let (backend, operator) = match args.backend {
        BackendKind::Embedded => {
            let user = std::env::var("USER").unwrap_or_else(|_| "unknown".to_owned());
            (Backend::Embedded, format!("local operator {user}"))
        }
        BackendKind::Aws => {
            let sdk = SdkOptions::default();
            let mut names = ResourceNames::with_prefix(&args.aws_prefix);
            if let Some(table) = args.table {
                names.table = table;
            }
            if let Some(queue) = args.queue {
                names.queue = queue;
            }
            let operator = entryguard_aws::caller_arn(&sdk).await?;
            let aws = AwsConfig {
                sdk,
                names,
                provision: false,
                bootstrap_admin: None,
                seed_demo: false,
            };
            (Backend::Aws(aws), operator)
        }
    };
    let app = operator_app(&backend, &args.data_dir).await?;
    println!(
        "{}",
        operator::run(&app, &args.command, &operator, args.json).await?
    );
    Ok(())
}
