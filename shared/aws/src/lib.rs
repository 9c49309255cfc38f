//! EntryGuard's AWS adapters: the store on DynamoDB, the work queue on SQS, the firewall on EC2
//! security groups, credentials through STS, secrets sealed with KMS, and the provisioning of
//! the table, queues and key.
//! AWS types stay in this crate: everything it exposes to the use cases is a port.

pub mod cognito;
pub mod cold_start;
pub mod credentials;
pub mod dynamo;
pub mod ec2;
pub mod emf;
pub mod kms;
pub mod logging;
pub mod provision;
pub mod schema;
pub mod sdk_error;
pub mod sqs;
pub mod warm;

use std::sync::Arc;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use thiserror::Error;

use entryguard::adapters::{
    CloudAdapters, FirewallByProvider, MeteredFirewall, VerifierByProvider,
};
use entryguard::app::App;
use entryguard::ports::{Clock, Directory, IdSource, Metrics, NoMetrics};

pub use cognito::{CognitoDirectory, NoDirectory};
pub use cold_start::cold_start;
pub use credentials::{validate_credential, CredentialSource, StsVerifier};
pub use dynamo::DynamoStore;
pub use ec2::{CloudRule, Ec2Firewall};
pub use emf::EmfMetrics;
pub use kms::KmsSealer;
pub use logging::init_lambda_logging;
pub use provision::{provision, ProvisionError, Provisioned};
pub use schema::ResourceNames;
pub use sqs::{process_batch, SqsQueue};
pub use warm::{Services, Warmed};

/// The SDK crates, for hosts and tests that need to talk to AWS beyond the ports (e.g. to set
/// up fixtures in an emulator).
pub mod sdk {
    pub use aws_config;
    pub use aws_credential_types;
    pub use aws_sdk_cognitoidentityprovider as cognito;
    pub use aws_sdk_dynamodb as dynamodb;
    pub use aws_sdk_ec2 as ec2;
    pub use aws_sdk_kms as kms;
    pub use aws_sdk_sqs as sqs;
    pub use aws_sdk_sts as sts;
}

/// Where and as whom to reach AWS. Everything left `None` comes from the environment (the
/// Lambda's role and region, or the developer's profile).
#[derive(Debug, Clone, Default)]
pub struct SdkOptions {
    /// Another endpoint for every service, e.g. an emulator on 127.0.0.1.
    pub endpoint_url: Option<String>,
    pub region: Option<String>,
    /// Fixed access keys instead of the default credential chain (emulators take any).
    pub static_credentials: Option<(String, String)>,
}

/// Every call gets these bounds, so a hung connection cannot eat a Lambda's whole run.
fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(10))
        .operation_timeout(Duration::from_secs(25))
        .build()
}

pub async fn sdk_config(opts: &SdkOptions) -> SdkConfig {
    use aws_smithy_http_client::proxy::ProxyConfig;
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    use aws_smithy_http_client::{Builder, ConnectorBuilder};
    // The SDK's default HTTPS client (hyper 1, rustls on aws-lc, proxies from the
    // environment), built once here. Left to the SDK, every service client — and every
    // customer credential's EC2 and STS client — gets a connection pool of its own and pays
    // its own TLS handshakes; this way they share one pool (per timeout setting), so the
    // connections warmed during a Lambda's init are the ones later calls use.
    let https = Builder::new().build_with_connector_fn(|settings, components| {
        let mut connector =
            ConnectorBuilder::default().tls_provider(Provider::Rustls(CryptoMode::AwsLc));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    });
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(https)
        .timeout_config(timeouts())
        .retry_config(RetryConfig::standard().with_max_attempts(3));
    if let Some(url) = &opts.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    if let Some(region) = &opts.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some((key, secret)) = &opts.static_credentials {
        loader = loader.credentials_provider(Credentials::new(
            key.clone(),
            secret.clone(),
            None,
            None,
            "entryguard-static",
        ));
    }
    loader.load().await
}

/// The AWS adapters, built once per process (or Lambda cold start).
#[derive(Clone)]
pub struct AwsBackend {
    pub sdk: SdkConfig,
    pub store: Arc<DynamoStore>,
    /// Producer, redelivery control and consumer of the task queue.
    pub queue: Arc<SqsQueue>,
    pub firewall: Arc<Ec2Firewall>,
    /// Seals credential secrets under the deployment's KMS key.
    pub sealer: Arc<KmsSealer>,
    pub verifier: Arc<StsVerifier>,
    /// The user pool people sign in with, when this host manages users (the API function).
    pub directory: Arc<dyn Directory>,
    /// Where the use cases' figures go (EMF lines in the Lambdas).
    pub metrics: Arc<dyn Metrics>,
}

impl AwsBackend {
    /// `kms_key_id`: the key that seals credential secrets (id, ARN or `alias/…`).
    pub fn new(sdk: &SdkConfig, table: &str, queue_url: &str, kms_key_id: &str) -> Self {
        let store = Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), table));
        // Long polling waits up to 20 s, longer than the default attempt timeout.
        let sqs_config = aws_sdk_sqs::config::Builder::from(sdk)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .operation_attempt_timeout(Duration::from_secs(25))
                    .operation_timeout(Duration::from_secs(60))
                    .build(),
            )
            .build();
        let queue = Arc::new(SqsQueue::new(
            aws_sdk_sqs::Client::from_conf(sqs_config),
            queue_url,
        ));
        let sealer = Arc::new(KmsSealer::new(sdk, kms_key_id));
        let firewall = Arc::new(Ec2Firewall::new(sdk.clone(), store.clone(), sealer.clone()));
        let verifier = Arc::new(StsVerifier::new(sdk.clone(), sealer.clone()));
        Self {
            sdk: sdk.clone(),
            store,
            queue,
            firewall,
            sealer,
            verifier,
            directory: Arc::new(NoDirectory),
            metrics: Arc::new(NoMetrics),
        }
    }

    /// Reports the use cases' figures to `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<dyn Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// The use cases on these adapters. Credentials of the simulated provider go to
    /// `simulated` when given (the local runner keeps its simulated cloud), AWS ones to EC2
    /// and STS.
    pub fn app(
        &self,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdSource>,
        simulated: Option<CloudAdapters>,
    ) -> App {
        App {
            store: self.store.clone(),
            queue: self.queue.clone(),
            firewall: Arc::new(MeteredFirewall::new(
                Arc::new(FirewallByProvider {
                    simulated: simulated.as_ref().map(|cloud| cloud.firewall.clone()),
                    aws: Some(self.firewall.clone()),
                }),
                self.metrics.clone(),
            )),
            clock,
            timer: Arc::new(entryguard::runtime::TokioTimer::default()),
            ids,
            sealer: self.sealer.clone(),
            verifier: Arc::new(VerifierByProvider {
                simulated: simulated.map(|cloud| cloud.verifier),
                aws: Some(self.verifier.clone()),
            }),
            directory: self.directory.clone(),
            metrics: self.metrics.clone(),
            notifier: entryguard::app::notifications::Notifier::disabled(),
        }
    }
}

/// What a host needs to reach an existing deployment.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    pub sdk: SdkOptions,
    pub table_name: String,
    pub queue_url: String,
    pub kms_key_id: String,
}

pub async fn connect(opts: &ConnectOptions) -> AwsBackend {
    let sdk = sdk_config(&opts.sdk).await;
    AwsBackend::new(&sdk, &opts.table_name, &opts.queue_url, &opts.kms_key_id)
}

/// The environment variables `connect_from_env` reads. Each function's crate lists the ones its
/// deployment sets (`ENVIRONMENT`); a test compares those lists with infra/template.yaml.
pub mod env_names {
    pub const TABLE_NAME: &str = "TABLE_NAME";
    pub const QUEUE_URL: &str = "QUEUE_URL";
    pub const KMS_KEY_ID: &str = "KMS_KEY_ID";
    pub const USER_POOL_ID: &str = "USER_POOL_ID";
    pub const EC2_RATE_SHARE: &str = "EC2_RATE_SHARE";
    /// The CloudWatch namespace of the functions' metrics (`EntryGuard/<stack name>`).
    pub const METRICS_NAMESPACE: &str = "METRICS_NAMESPACE";
    /// Read by tracing's `EnvFilter::from_default_env` in every main.
    pub const RUST_LOG: &str = "RUST_LOG";
    /// The web app's address, for links in webhook messages (rule worker).
    pub const WEB_APP_URL: &str = "WEB_APP_URL";
}

#[derive(Debug, Error)]
pub enum EnvError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
}

/// The Lambdas' configuration: `TABLE_NAME`, `QUEUE_URL` and `KMS_KEY_ID`, everything else
/// from the function's environment (region, role). `EC2_RATE_SHARE` (default 1) is how many
/// processes may call EC2 at once — the rule worker's maximum concurrency — so each keeps to its
/// share of EC2's request limit. `USER_POOL_ID` (the API function only) is the user pool that
/// people are invited to and disabled in.
pub async fn connect_from_env() -> Result<AwsBackend, EnvError> {
    let var = |name: &'static str| std::env::var(name).map_err(|_| EnvError::Missing(name));
    let mut backend = connect(&ConnectOptions {
        sdk: SdkOptions::default(),
        table_name: var(env_names::TABLE_NAME)?,
        queue_url: var(env_names::QUEUE_URL)?,
        kms_key_id: var(env_names::KMS_KEY_ID)?,
    })
    .await;
    if let Ok(pool) = std::env::var(env_names::USER_POOL_ID) {
        backend.directory = Arc::new(CognitoDirectory::new(
            aws_sdk_cognitoidentityprovider::Client::new(&backend.sdk),
            pool,
        ));
    }
    let share = std::env::var(env_names::EC2_RATE_SHARE)
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(1);
    if share > 1 {
        backend.firewall = Arc::new(Ec2Firewall::with_pacing(
            backend.sdk.clone(),
            backend.store.clone(),
            backend.sealer.clone(),
            entryguard::pacing::PacerConfig::ec2(share),
        ));
    }
    Ok(backend)
}

#[derive(Debug, Error)]
#[error("the AWS credentials could not be identified: {0}")]
pub struct CallerIdentityError(#[from] aws_sdk_sts::Error);

/// Whose AWS credentials these are (an ARN): the operator's name in the audit log.
pub async fn caller_arn(opts: &SdkOptions) -> Result<String, CallerIdentityError> {
    let config = sdk_config(opts).await;
    let answer = aws_sdk_sts::Client::new(&config)
        .get_caller_identity()
        .send()
        .await
        .map_err(aws_sdk_sts::Error::from)?;
    Ok(answer
        .arn
        .unwrap_or_else(|| "an unnamed AWS principal".to_owned()))
}

/// Provisions (if needed) and connects: the local runner's `--provision`.
pub async fn provision_and_connect(
    sdk: &SdkOptions,
    names: &ResourceNames,
) -> Result<AwsBackend, ProvisionError> {
    let config = sdk_config(sdk).await;
    let provisioned = provision(&config, names).await?;
    Ok(AwsBackend::new(
        &config,
        &names.table,
        &provisioned.queue_url,
        &provisioned.kms_key_id,
    ))
}

/// Connects to a deployment's existing table, queue and key by their names (the queue's URL is
/// looked up; the key is used through its alias): the local runner's `--backend aws` without
/// `--provision`.
pub async fn connect_by_names(
    sdk: &SdkOptions,
    names: &ResourceNames,
) -> Result<AwsBackend, ProvisionError> {
    let config = sdk_config(sdk).await;
    let url = provision::queue_url(&aws_sdk_sqs::Client::new(&config), &names.queue).await?;
    Ok(AwsBackend::new(
        &config,
        &names.table,
        &url,
        &names.kms_alias,
    ))
}
