//! The local runner: the API (the same router the API Lambda serves), the rule worker, the
//! expiry sweeper and the SPA in one process — on the embedded backend, or on DynamoDB, SQS and
//! EC2 (an emulator such as moto, or a real account) with `--backend aws`.

pub mod client_ip;
pub mod operator;
pub mod probes;
pub mod seed;

use std::future::IntoFuture;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use futures::future::join_all;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::trace::TraceLayer;

use entryguard::adapters::{FirewallByProvider, MeteredFirewall, VerifierByProvider};
use entryguard::app::delivery::handle_task;
use entryguard::app::notifications::Notifier;
use entryguard::app::rate_limit::RateLimits;
use entryguard::app::App;
use entryguard::domain::ids::OrgId;
use entryguard::domain::model::Email;
use entryguard::domain::webhook::AddressPolicy;
use entryguard::embedded::{
    EmbeddedQueue, EmbeddedStore, InMemoryMetrics, Kv, LocalDirectory, LocalKeySealer, OffsetClock,
    SimCloud,
};
use entryguard::ports::{Clock, Directory, IdSource, Metrics};
use entryguard::runtime::{RandomIds, SystemClock};
use entryguard_api::headers::WebHeaders;
use entryguard_api::oidc::{OidcConfig, OidcVerifier};
use entryguard_api::{ApiState, DevTools};
use entryguard_aws::{SdkOptions, SqsQueue};
use entryguard_webhooks::HttpWebhookSender;

use crate::client_ip::TrustedProxies;

/// How long a received message stays hidden while the worker handles it.
const VISIBILITY_SECS: i64 = 60;
/// Messages handled concurrently per batch, as in a Lambda SQS batch.
const WORKER_BATCH: usize = 10;
/// How often an idle worker looks for delayed messages that became visible.
const WORKER_IDLE_POLL: Duration = Duration::from_millis(250);
/// How long one SQS receive waits for messages (long polling).
const SQS_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct Config {
    /// Where to serve, in order (the first is the address links point to): e.g. 127.0.0.1 and
    /// [::1] together, so one browser can prove an address of each family.
    pub listen: Vec<SocketAddr>,
    pub data_dir: PathBuf,
    pub sweep_interval: Duration,
    pub test_clock: bool,
    pub trusted_proxies: Vec<IpAddr>,
    pub web_dir: PathBuf,
    pub entryguard_principal: String,
    /// Also accept ID tokens from this OIDC provider.
    pub oidc: Option<OidcConfig>,
    pub backend: Backend,
    /// The application's rate limits: the documented defaults, or scaled up.
    pub rate_limits: RateLimits,
    /// Origins the web app may fetch from besides its own and the OIDC issuer's (e.g. an
    /// identity provider's token endpoint on another host).
    pub web_connect_src: Vec<String>,
    /// People the OIDC provider verified may create organizations (`POST /api/signup`).
    pub signup_open: bool,
    /// Development only: webhooks may go to 127.0.0.1 and ::1 (over plain http too), so tests
    /// can run a receiver on loopback. Every other non-public address stays refused.
    pub webhooks_allow_loopback: bool,
    /// How long one webhook attempt may take.
    pub webhook_timeout: Duration,
}

impl Config {
    /// The embedded backend in `data_dir`, serving only the API on an ephemeral loopback port
    /// with the default limits: the runner as a library embeds or tests it.
    pub fn headless(data_dir: PathBuf) -> Self {
        Self {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 0))],
            data_dir,
            sweep_interval: Duration::from_secs(60),
            test_clock: false,
            trusted_proxies: vec![],
            web_dir: PathBuf::from("/nonexistent"),
            entryguard_principal: "arn:aws:iam::000000000000:root".into(),
            oidc: None,
            backend: Backend::Embedded,
            rate_limits: Default::default(),
            web_connect_src: vec![],
            signup_open: false,
            webhooks_allow_loopback: false,
            webhook_timeout: entryguard_webhooks::DEFAULT_TIMEOUT,
        }
    }

    /// Where the web app may `fetch` from besides its own origin: the OIDC issuer (discovery)
    /// and whatever was added.
    pub fn web_connect_origins(&self) -> Vec<String> {
        let mut origins: Vec<String> = self
            .oidc
            .iter()
            .filter_map(|o| entryguard_api::headers::origin_of(&o.issuer))
            .collect();
        for origin in &self.web_connect_src {
            if !origins.contains(origin) {
                origins.push(origin.clone());
            }
        }
        origins
    }
}

/// Where the store and the queue live. The simulated cloud is always there (in the data
/// directory), so credentials of the `simulated` provider keep working on either backend.
// Built once at start-up, so the size of the AWS variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Default)]
pub enum Backend {
    #[default]
    Embedded,
    Aws(AwsConfig),
}

#[derive(Debug, Clone)]
pub struct AwsConfig {
    /// Endpoint, region and credentials; unset parts come from the standard AWS chain.
    pub sdk: SdkOptions,
    pub names: entryguard_aws::ResourceNames,
    /// Create the table and queues if they are missing.
    pub provision: bool,
    /// Create an organization with this admin when the table has none.
    pub bootstrap_admin: Option<Email>,
    /// Seed the demo organization (as on the embedded backend) when the table has none.
    pub seed_demo: bool,
}

/// Where the worker takes its tasks from.
#[derive(Clone)]
pub enum TaskSource {
    Embedded(EmbeddedQueue),
    Sqs(Arc<SqsQueue>),
}

/// Everything built at start-up.
pub struct Runner {
    pub app: App,
    pub tasks: TaskSource,
    pub sim: SimCloud,
    /// The stand-in sign-in directory.
    pub directory: LocalDirectory,
    pub state: ApiState,
    pub config: Config,
}

impl Runner {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&config.data_dir)?;
        let kv = Kv::open(&config.data_dir.join("entryguard.redb"))?;
        let test_clock = config.test_clock.then(|| Arc::new(OffsetClock::default()));
        let clock: Arc<dyn Clock> = match &test_clock {
            Some(c) => c.clone(),
            None => Arc::new(SystemClock),
        };
        let sim = SimCloud::new(kv.clone());
        let directory = LocalDirectory::new(kv.clone());
        let metrics = InMemoryMetrics::new();
        let (mut app, tasks) = build_app(
            &config.backend,
            &config.data_dir,
            kv,
            &sim,
            clock,
            Arc::new(directory.clone()),
            Arc::new(metrics.clone()),
        )
        .await?;
        app.notifier = Notifier {
            sender: Arc::new(
                HttpWebhookSender::new(AddressPolicy {
                    allow_loopback: config.webhooks_allow_loopback,
                })
                .with_timeout(config.webhook_timeout),
            ),
            app_url: config.listen.first().map(|a| format!("http://{a}")),
        };
        let mut seeds = seed::read_seed_file(&config.data_dir)?;
        if let Some(org) = first_start(&app, &sim, &config.backend).await? {
            seeds.orgs.push(org);
            seed::write_seed_file(&config.data_dir, &seeds)?;
        }
        let state = ApiState {
            app: app.clone(),
            dev: Some(Arc::new(DevTools {
                orgs: seeds.orgs,
                clock: test_clock,
                sim: Some(sim.clone()),
                directory: Some(directory.clone()),
                metrics: Some(metrics),
            })),
            entryguard_principal: config.entryguard_principal.clone(),
            oidc: match &config.oidc {
                Some(c) => Some(Arc::new(OidcVerifier::new(c.clone())?)),
                None => None,
            },
            limits: config.rate_limits,
            signup_open: config.signup_open,
        };
        Ok(Self {
            app,
            tasks,
            sim,
            directory,
            state,
            config,
        })
    }

    /// The embedded queue, when the runner uses one.
    pub fn embedded_queue(&self) -> Option<&EmbeddedQueue> {
        match &self.tasks {
            TaskSource::Embedded(queue) => Some(queue),
            TaskSource::Sqs(_) => None,
        }
    }

    /// The HTTP app: the API under `/api`, the SPA everywhere else, each with its security
    /// headers (the web app's the same as CloudFront sends). `bound` are the addresses it is
    /// served on: the web app probes them for the caller's address of each IP family.
    pub fn http(&self, bound: &[SocketAddr]) -> Router {
        let index = self.config.web_dir.join("index.html");
        let spa = ServeDir::new(&self.config.web_dir).fallback(ServeFile::new(index));
        let mut connect = self.config.web_connect_origins();
        // On one address the page probes its own origin ('self'); on several it also calls
        // the others.
        if bound.len() > 1 {
            for origin in probes::csp_sources(bound) {
                if !connect.contains(&origin) {
                    connect.push(origin);
                }
            }
        }
        let web_headers = WebHeaders::new(&connect);
        let built = std::fs::read(self.config.web_dir.join("config.json")).ok();
        let config = probes::config_json(built.as_deref(), bound);
        entryguard_api::router(self.state.clone())
            .route(
                "/config.json",
                axum::routing::get(move || {
                    let config = config.clone();
                    async move {
                        (
                            [(axum::http::header::CACHE_CONTROL, "no-store")],
                            axum::Json(config),
                        )
                    }
                }),
            )
            .fallback_service(spa)
            .layer(axum::middleware::map_response(move |mut response| {
                web_headers.apply(&mut response);
                std::future::ready(response)
            }))
            .layer(axum::middleware::from_fn_with_state(
                TrustedProxies(Arc::new(self.config.trusted_proxies.clone())),
                client_ip::client_addr,
            ))
            .layer(probes::cors(bound))
            .layer(TraceLayer::new_for_http())
    }

    /// Starts the worker and the sweeper in the background.
    pub fn spawn_background(&self) -> Vec<JoinHandle<()>> {
        vec![
            tokio::spawn(worker_loop(self.app.clone(), self.tasks.clone())),
            tokio::spawn(sweeper_loop(self.app.clone(), self.config.sweep_interval)),
        ]
    }

    /// Serves until `shutdown` resolves.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        self.serve_all(vec![listener], shutdown).await
    }

    /// Serves the same app on every listener (e.g. one per IP family) until `shutdown` resolves.
    pub async fn serve_all(
        self,
        listeners: Vec<TcpListener>,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let bound: Vec<SocketAddr> = listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect();
        let background = self.spawn_background();
        let http = self.http(&bound);
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let relay = tokio::spawn(async move {
            shutdown.await;
            let _ = stop.send(true);
        });
        let servers = listeners.into_iter().map(|listener| {
            let mut stopped = stopped.clone();
            axum::serve(
                listener,
                http.clone()
                    .into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async move {
                let _ = stopped.wait_for(|s| *s).await;
            })
            .into_future()
        });
        let result = futures::future::try_join_all(servers).await;
        relay.abort();
        for task in background {
            task.abort();
        }
        result?;
        Ok(())
    }
}

/// The use cases wired to the backend: the embedded store and queue in `data_dir`, or DynamoDB
/// and SQS. The simulated cloud is there either way.
async fn build_app(
    backend: &Backend,
    data_dir: &std::path::Path,
    kv: Kv,
    sim: &SimCloud,
    clock: Arc<dyn Clock>,
    directory: Arc<dyn Directory>,
    metrics: Arc<dyn Metrics>,
) -> anyhow::Result<(App, TaskSource)> {
    let ids: Arc<dyn IdSource> = Arc::new(RandomIds);
    Ok(match backend {
        Backend::Embedded => {
            let queue = EmbeddedQueue::new(kv.clone(), clock.clone(), ids.clone());
            let cloud = sim.adapters();
            let app = App {
                store: Arc::new(EmbeddedStore::new(kv)),
                queue: Arc::new(queue.clone()),
                firewall: Arc::new(MeteredFirewall::new(
                    Arc::new(FirewallByProvider {
                        simulated: Some(cloud.firewall),
                        aws: None,
                    }),
                    metrics.clone(),
                )),
                clock,
                timer: Arc::new(entryguard::runtime::TokioTimer::default()),
                ids,
                sealer: Arc::new(LocalKeySealer::load_or_create(data_dir)?),
                verifier: Arc::new(VerifierByProvider {
                    simulated: Some(cloud.verifier),
                    aws: None,
                }),
                directory,
                metrics,
                notifier: Notifier::disabled(),
            };
            (app, TaskSource::Embedded(queue))
        }
        Backend::Aws(aws) => {
            let backend = if aws.provision {
                entryguard_aws::provision_and_connect(&aws.sdk, &aws.names).await?
            } else {
                entryguard_aws::connect_by_names(&aws.sdk, &aws.names).await?
            };
            let backend = backend.with_metrics(metrics);
            let mut app = backend.app(clock, ids, Some(sim.adapters()));
            // No user pool runs locally: the stand-in records the invitations.
            app.directory = directory;
            (app, TaskSource::Sqs(backend.queue))
        }
    })
}

/// Opens the runner's data directory for the operator's command: the same wiring as the
/// runner, without seeding or serving. The runner must not be running on it (its database
/// allows one process at a time).
pub async fn operator_app(backend: &Backend, data_dir: &std::path::Path) -> anyhow::Result<App> {
    let kv = match backend {
        // The operator of an AWS deployment has no data directory: nothing here touches the
        // simulated cloud.
        Backend::Aws(_) => Kv::in_memory(),
        Backend::Embedded => {
            let db = data_dir.join("entryguard.redb");
            if !db.exists() {
                anyhow::bail!(
                    "no EntryGuard data in {}: start the runner once, or name its --data-dir",
                    data_dir.display()
                );
            }
            Kv::open(&db).map_err(|e| {
                anyhow::anyhow!(
                    "cannot open {} ({e}); if the runner is using it, stop the runner first",
                    db.display()
                )
            })?
        }
    };
    let sim = SimCloud::new(kv.clone());
    let directory = Arc::new(LocalDirectory::new(kv.clone()));
    let (app, _) = build_app(
        backend,
        data_dir,
        kv,
        &sim,
        Arc::new(SystemClock),
        directory,
        // The operator's command is no service: nobody reads its figures.
        Arc::new(entryguard::ports::NoMetrics),
    )
    .await?;
    Ok(app)
}

/// Handles one batch of visible messages; returns how many there were.
pub async fn drain_once(app: &App, queue: &EmbeddedQueue) -> usize {
    let batch = match queue.receive(WORKER_BATCH, chrono::Duration::seconds(VISIBILITY_SECS)) {
        Ok(batch) => batch,
        Err(error) => {
            tracing::error!(%error, "queue receive failed");
            return 0;
        }
    };
    let count = batch.len();
    join_all(
        batch
            .iter()
            .map(|d| handle_task(app, queue, &d.receipt, &d.receipt, &d.task)),
    )
    .await;
    count
}

async fn worker_loop(app: App, tasks: TaskSource) {
    match tasks {
        TaskSource::Embedded(queue) => loop {
            if drain_once(&app, &queue).await == 0 {
                tokio::select! {
                    _ = queue.notified() => {}
                    _ = tokio::time::sleep(WORKER_IDLE_POLL) => {}
                }
            }
        },
        TaskSource::Sqs(queue) => loop {
            if let Err(error) = entryguard_aws::process_batch(&app, &queue, SQS_WAIT).await {
                tracing::error!(%error, "queue receive failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        },
    }
}

/// What a fresh store gets: the demo organization on the embedded backend; on AWS, what the
/// flags ask for. Returns the organization created, if any.
async fn first_start(
    app: &App,
    sim: &SimCloud,
    backend: &Backend,
) -> anyhow::Result<Option<OrgId>> {
    if app.store.has_any_org().await? {
        return Ok(None);
    }
    let org = match backend {
        Backend::Embedded => seed::seed_demo(app, sim, &seed::admin_email()).await?,
        Backend::Aws(AwsConfig {
            seed_demo: true,
            bootstrap_admin,
            ..
        }) => {
            let admin = bootstrap_admin.clone().unwrap_or_else(seed::admin_email);
            seed::seed_demo(app, sim, &admin).await?
        }
        Backend::Aws(AwsConfig {
            bootstrap_admin: Some(admin),
            ..
        }) => seed::bootstrap(app, admin).await?,
        Backend::Aws(_) => {
            tracing::warn!("the table has no organization yet; start with --bootstrap-admin EMAIL to create one");
            return Ok(None);
        }
    };
    tracing::info!(%org, "created the first organization");
    Ok(Some(org))
}

async fn sweeper_loop(app: App, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let options = entryguard::app::sweeper::SweepOptions::every(
        chrono::Duration::from_std(every).unwrap_or(chrono::Duration::seconds(60)),
    );
    loop {
        ticker.tick().await;
        if let Err(error) = app.sweep_with(options).await {
            tracing::error!(%error, "sweep failed; retrying at the next interval");
        }
    }
}
