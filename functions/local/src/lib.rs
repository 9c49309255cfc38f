//! The local runner: the API (the same router the API Lambda serves), the rule worker, the
//! expiry sweeper and the SPA in one process — on the embedded backend, or on DynamoDB, SQS and
//! EC2 (an emulator such as moto, or a real account) with `--backend aws`.

pub mod client_ip;
pub mod seed;

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

use entryguard::app::credential_check::VerifierByProvider;
use entryguard::app::firewall_router::FirewallByProvider;
use entryguard::app::worker::Outcome;
use entryguard::app::App;
use entryguard::domain::ids::OrgId;
use entryguard::domain::model::Email;
use entryguard::embedded::{
    EmbeddedQueue, EmbeddedStore, Kv, LocalKeySealer, OffsetClock, RandomIds, SimCloud,
    SimulatedFirewall, SimulatedVerifier, SystemClock,
};
use entryguard::ports::{Clock, IdSource};
use entryguard_api::oidc::{OidcConfig, OidcVerifier};
use entryguard_api::{ApiState, DevTools};
use entryguard_aws::{SdkOptions, SqsQueue};

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
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub sweep_interval: Duration,
    pub test_clock: bool,
    pub trusted_proxies: Vec<IpAddr>,
    pub web_dir: PathBuf,
    pub entryguard_principal: String,
    /// Also accept ID tokens from this OIDC provider.
    pub oidc: Option<OidcConfig>,
    pub backend: Backend,
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
        let ids: Arc<dyn IdSource> = Arc::new(RandomIds);
        let sim = SimCloud::new(kv.clone());
        let (app, tasks) = match &config.backend {
            Backend::Embedded => {
                let queue = EmbeddedQueue::new(kv.clone(), clock.clone(), ids.clone());
                let app = App {
                    store: Arc::new(EmbeddedStore::new(kv)),
                    queue: Arc::new(queue.clone()),
                    firewall: Arc::new(FirewallByProvider {
                        simulated: Some(Arc::new(SimulatedFirewall::new(sim.clone()))),
                        aws: None,
                    }),
                    clock,
                    ids,
                    sealer: Arc::new(LocalKeySealer::load_or_create(&config.data_dir)?),
                    verifier: Arc::new(VerifierByProvider {
                        simulated: Some(Arc::new(SimulatedVerifier::new(sim.clone()))),
                        aws: None,
                    }),
                };
                (app, TaskSource::Embedded(queue))
            }
            Backend::Aws(aws) => {
                let backend = if aws.provision {
                    entryguard_aws::provision_and_connect(&aws.sdk, &aws.names).await?
                } else {
                    entryguard_aws::connect_by_names(&aws.sdk, &aws.names).await?
                };
                let app = backend.app(clock, ids, Some(sim.clone()));
                (app, TaskSource::Sqs(backend.queue))
            }
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
            })),
            entryguard_principal: config.entryguard_principal.clone(),
            oidc: match &config.oidc {
                Some(c) => Some(Arc::new(OidcVerifier::new(c.clone())?)),
                None => None,
            },
        };
        Ok(Self {
            app,
            tasks,
            sim,
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

    /// The HTTP app: the API under `/api`, the SPA everywhere else.
    pub fn http(&self) -> Router {
        let index = self.config.web_dir.join("index.html");
        let spa = ServeDir::new(&self.config.web_dir).fallback(ServeFile::new(index));
        entryguard_api::router(self.state.clone())
            .fallback_service(spa)
            .layer(axum::middleware::from_fn_with_state(
                TrustedProxies(Arc::new(self.config.trusted_proxies.clone())),
                client_ip::client_addr,
            ))
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
        let background = self.spawn_background();
        let http = self.http();
        let result = axum::serve(
            listener,
            http.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await;
        for task in background {
            task.abort();
        }
        Ok(result?)
    }
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
    join_all(batch.into_iter().map(|delivery| async move {
        let result = match app.process_task(&delivery.task).await {
            Outcome::Done => queue.ack(&delivery.receipt),
            Outcome::RetryAfter(delay) => queue.retry_after(
                &delivery.receipt,
                chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::seconds(30)),
            ),
        };
        if let Err(error) = result {
            tracing::error!(%error, "queue update failed; the message will come back");
        }
    }))
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
