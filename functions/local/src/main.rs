use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use entryguard_api::oidc::OidcConfig;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

use entryguard::app::rate_limit::RateLimits;
use entryguard::domain::model::Email;
use entryguard_aws::{ResourceNames, SdkOptions};
use entryguard_local::{seed, AwsConfig, Backend, Config, Runner};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BackendKind {
    /// redb store and queue in --data-dir, simulated cloud: no AWS account needed.
    Embedded,
    /// DynamoDB, SQS and EC2 through the standard AWS configuration chain (AWS_ENDPOINT_URL,
    /// AWS_REGION, credentials): moto or a real account.
    Aws,
}

/// EntryGuard, locally: API + rule worker + expiry sweeper + web app in one process, on the
/// embedded backend (no AWS account needed).
#[derive(Debug, Parser)]
#[command(name = "entryguard-local", version)]
struct Args {
    /// Address to serve on (repeatable: e.g. 127.0.0.1:8080 and [::1]:8080 for dual-stack
    /// sessions).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: Vec<SocketAddr>,
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
    /// Where sessions and tasks live.
    #[arg(long, value_enum, default_value_t = BackendKind::Embedded)]
    backend: BackendKind,
    /// With --backend aws: the table is named PREFIX, the queues PREFIX-tasks and
    /// PREFIX-tasks-dlq.
    #[arg(long, default_value = "entryguard")]
    aws_prefix: String,
    /// With --backend aws: create the table (indexes, TTL) and the queues (DLQ, redrive) if
    /// they are missing.
    #[arg(long)]
    provision: bool,
    /// With --backend aws: create an organization with this admin when the table has none.
    #[arg(long, value_name = "EMAIL")]
    bootstrap_admin: Option<Email>,
    /// With --backend aws: when the table has no organization, seed the demo organization of
    /// the embedded backend (its admin is --bootstrap-admin, or admin@example.com).
    #[arg(long)]
    seed_demo: bool,
    /// Also accept ID tokens from this OIDC issuer (with --oidc-audience), besides the
    /// development login and API tokens.
    #[arg(long, value_name = "URL", requires = "oidc_audience")]
    oidc_issuer: Option<String>,
    /// The client id ID tokens must be issued to.
    #[arg(long, value_name = "CLIENT_ID", requires = "oidc_issuer")]
    oidc_audience: Option<String>,
    /// Multiplies every rate limit (docs/api.md lists them) by N, for load tests and fuzzing.
    /// Limits can be raised this way, never switched off.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    rate_limit_factor: u32,
    /// An origin the web app may fetch from besides its own and the OIDC issuer's (its
    /// Content-Security-Policy's connect-src), e.g. a token endpoint on another host
    /// (repeatable).
    #[arg(long = "web-connect-src", value_name = "ORIGIN", value_parser = parse_origin)]
    web_connect_src: Vec<String>,
    /// With --oidc-issuer: people the provider verified may create an organization on the Free
    /// plan (POST /api/signup). The development login always offers sign-up.
    #[arg(long)]
    allow_signup: bool,
    /// DEVELOPMENT ONLY: let webhooks reach 127.0.0.1 and ::1, over plain http too, for a
    /// receiver on this machine. Private, link-local and metadata addresses stay refused.
    #[arg(long, env = "ENTRYGUARD_DEV_WEBHOOKS_ALLOW_LOOPBACK")]
    dev_webhooks_allow_loopback: bool,
}

fn parse_origin(raw: &str) -> Result<String, String> {
    entryguard_api::headers::origin_of(raw)
        .ok_or_else(|| format!("{raw} is not an http(s) origin such as https://auth.example.com"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.backend != BackendKind::Aws
        && (args.provision || args.bootstrap_admin.is_some() || args.seed_demo)
    {
        use clap::CommandFactory;
        Args::command()
            .error(
                clap::error::ErrorKind::ArgumentConflict,
                "--provision, --bootstrap-admin and --seed-demo need --backend aws",
            )
            .exit();
    }
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
        oidc: args
            .oidc_issuer
            .zip(args.oidc_audience)
            .map(|(issuer, audience)| OidcConfig { issuer, audience }),
        rate_limits: RateLimits::default().scaled(args.rate_limit_factor),
        web_connect_src: args.web_connect_src,
        signup_open: args.allow_signup,
        webhooks_allow_loopback: args.dev_webhooks_allow_loopback,
        webhook_timeout: entryguard_webhooks::DEFAULT_TIMEOUT,
        backend: match args.backend {
            BackendKind::Embedded => Backend::Embedded,
            BackendKind::Aws => Backend::Aws(AwsConfig {
                sdk: SdkOptions::default(),
                names: ResourceNames::with_prefix(&args.aws_prefix),
                provision: args.provision,
                bootstrap_admin: args.bootstrap_admin,
                seed_demo: args.seed_demo,
            }),
        },
    };
    let runner = Runner::build(config).await?;
    let mut listeners = Vec::new();
    for address in &runner.config.listen {
        listeners.push(TcpListener::bind(address).await?);
    }
    let addr = listeners[0].local_addr()?;
    let also: Vec<String> = listeners[1..]
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .map(|a| format!(" and http://{a}/"))
        .collect();
    if !runner.config.web_dir.join("index.html").exists() {
        tracing::warn!(web_dir = %runner.config.web_dir.display(), "no built web app there; only the API is served (build it with: cd web && npm ci && npm run build)");
    }
    let (who, example) = match &runner.config.backend {
        Backend::Aws(AwsConfig {
            seed_demo: false,
            bootstrap_admin,
            ..
        }) => {
            let admin = bootstrap_admin
                .as_ref()
                .map_or_else(|| "you@example.com".to_owned(), |e| e.to_string());
            (format!("any user of the table, e.g. {admin}"), admin)
        }
        Backend::Aws(AwsConfig {
            bootstrap_admin, ..
        }) => {
            let admin = bootstrap_admin
                .as_ref()
                .map_or_else(|| seed::ADMIN_EMAIL.to_owned(), |e| e.to_string());
            (
                format!("{admin} (admin) or {} (member)", seed::MEMBER_EMAIL),
                seed::MEMBER_EMAIL.to_owned(),
            )
        }
        Backend::Embedded => (
            format!(
                "{} (admin) or {} (member)",
                seed::ADMIN_EMAIL,
                seed::MEMBER_EMAIL
            ),
            seed::MEMBER_EMAIL.to_owned(),
        ),
    };
    println!(
        "\nEntryGuard is running at http://{addr}/{also} ({backend})\n  \
         Sign in (development login) as {who}:\n    \
         curl -s -X POST http://{addr}/api/dev/login -H 'Content-Type: application/json' -d '{{\"email\":\"{example}\"}}'\n  \
         Data: {data}{clock}\n",
        backend = match args.backend {
            BackendKind::Embedded => "embedded backend",
            BackendKind::Aws => "AWS backend",
        },
        also = also.concat(),
        data = runner.config.data_dir.display(),
        clock = if runner.config.test_clock {
            "\n  Test clock on: POST /api/dev/clock {\"advanceSeconds\": n}"
        } else {
            ""
        },
    );
    runner
        .serve_all(listeners, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}
