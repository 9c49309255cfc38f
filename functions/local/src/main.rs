use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

use entryguard_local::{seed, Config, Runner};

/// EntryGuard, locally: API + rule worker + expiry sweeper + web app in one process, on the
/// embedded backend (no AWS account needed).
#[derive(Debug, Parser)]
#[command(name = "entryguard-local", version)]
struct Args {
    /// Address to serve on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Where the embedded database lives; created if missing.
    #[arg(long, default_value = ".entryguard-data")]
    data_dir: PathBuf,
    /// Seconds between expiry sweeps.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    sweep_interval_secs: u64,
    /// Enables POST /api/dev/clock {"advanceSeconds": n} to move time forward.
    #[arg(long)]
    test_clock: bool,
    /// A proxy whose X-Forwarded-For is trusted (repeatable). Without one the header is ignored.
    #[arg(long = "trusted-proxy")]
    trusted_proxies: Vec<IpAddr>,
    /// The built web app to serve at /.
    #[arg(long, default_value = "web/dist")]
    web_dir: PathBuf,
    /// The AWS principal shown in generated trust policies.
    #[arg(
        long,
        default_value = "arn:aws:iam::000000000000:root",
        env = "ENTRYGUARD_PRINCIPAL"
    )]
    entryguard_principal: String,
    /// Log as JSON lines instead of text.
    #[arg(long)]
    log_json: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,tower_http=warn"));
    if args.log_json {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    let config = Config {
        listen: args.listen,
        data_dir: args.data_dir,
        sweep_interval: Duration::from_secs(args.sweep_interval_secs),
        test_clock: args.test_clock,
        trusted_proxies: args.trusted_proxies,
        web_dir: args.web_dir,
        entryguard_principal: args.entryguard_principal,
    };
    let runner = Runner::build(config).await?;
    let listener = TcpListener::bind(runner.config.listen).await?;
    let addr = listener.local_addr()?;
    if !runner.config.web_dir.join("index.html").exists() {
        tracing::warn!(web_dir = %runner.config.web_dir.display(), "no built web app there; only the API is served (build it with: cd web && npm ci && npm run build)");
    }
    println!(
        "\nEntryGuard is running at http://{addr}/\n  \
         Sign in (development login) as {admin} (admin) or {member} (member):\n    \
         curl -s -X POST http://{addr}/api/dev/login -H 'Content-Type: application/json' -d '{{\"email\":\"{member}\"}}'\n  \
         Data: {data}{clock}\n",
        admin = seed::ADMIN_EMAIL,
        member = seed::MEMBER_EMAIL,
        data = runner.config.data_dir.display(),
        clock = if runner.config.test_clock {
            "\n  Test clock on: POST /api/dev/clock {\"advanceSeconds\": n}"
        } else {
            ""
        },
    );
    runner
        .serve(listener, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}
