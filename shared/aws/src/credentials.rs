//! Customer credentials: turning a stored credential record into AWS credentials (static keys,
//! opened from their sealed form only here, or a role assumed with the organization's external
//! id), caching the EC2 clients built from them, and checking a credential with
//! `sts:GetCallerIdentity`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_config::retry::RetryConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_config::SdkConfig;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use aws_sdk_ec2::config::Region as SdkRegion;

use entryguard::domain::credential::{AccountId, CredentialAccess};
use entryguard::domain::iam::RULES_QUOTA_CODE;
use entryguard::domain::ids::CredentialId;
use entryguard::domain::model::Credential;
use entryguard::domain::net::Region;
use entryguard::ports::firewall::FirewallError;
use entryguard::ports::secrets::{SealContext, SealError, SecretSealer};
use entryguard::ports::store::StoreError;
use entryguard::ports::verifier::CredentialVerifier;

use crate::dynamo::DynamoStore;
use crate::sdk_error::{classify_firewall, facts};

/// The session name EntryGuard's assumed-role sessions carry, visible in the customer's
/// CloudTrail.
pub const ROLE_SESSION_NAME: &str = "entryguard";

/// How long a built client is reused before the credential record is read again, so a
/// replaced or deleted credential stops being used within this time.
pub const CLIENT_TTL: Duration = Duration::from_secs(15 * 60);

/// Finds a credential by id alone.
#[async_trait]
pub trait CredentialSource: Send + Sync {
    async fn credential(&self, id: CredentialId) -> Result<Option<Credential>, StoreError>;
}

#[async_trait]
impl CredentialSource for DynamoStore {
    async fn credential(&self, id: CredentialId) -> Result<Option<Credential>, StoreError> {
        self.find_credential(id).await
    }
}

/// What a secret that cannot be opened means for the calls that needed it.
fn sealing_error(credential: &Credential, e: SealError) -> FirewallError {
    match e {
        SealError::CannotOpen(m) => FirewallError::InvalidCredential(format!(
            "the stored secret of credential {} cannot be decrypted ({m}); enter the credential again",
            credential.id
        )),
        // A key that is throttled, or missing permissions that may be granted shortly: the
        // credential itself may be fine.
        SealError::Unavailable(m) | SealError::KeyUnusable(m) => FirewallError::Unavailable(
            format!("could not decrypt the credential's secret: {m}"),
        ),
    }
}

/// The AWS credentials a credential record stands for. Role credentials are assumed through
/// `base`'s own credentials (the Lambda's role), with the organization's external id; static
/// keys are opened with `sealer`.
pub async fn credentials_provider(
    base: &SdkConfig,
    credential: &Credential,
    sealer: &dyn SecretSealer,
) -> Result<SharedCredentialsProvider, FirewallError> {
    match &credential.access {
        CredentialAccess::Simulated => Err(FirewallError::Rejected(format!(
            "credential {} is not an AWS credential",
            credential.id
        ))),
        CredentialAccess::AssumeRole {
            role_arn,
            external_id,
        } => {
            let mut builder = AssumeRoleProvider::builder(role_arn.as_str())
                .session_name(ROLE_SESSION_NAME)
                .region(SdkRegion::new(credential.region.as_str().to_owned()))
                .configure(base);
            if let Some(external_id) = external_id {
                builder = builder.external_id(external_id.as_str());
            }
            Ok(SharedCredentialsProvider::new(builder.build().await))
        }
        CredentialAccess::AccessKeys {
            access_key_id,
            sealed_secret,
        } => {
            let secret = sealer
                .open(sealed_secret, &SealContext::of(credential))
                .await
                .map_err(|e| sealing_error(credential, e))?;
            Ok(SharedCredentialsProvider::new(Credentials::new(
                access_key_id.as_str(),
                secret.expose().to_owned(),
                None,
                None,
                "entryguard-credential",
            )))
        }
    }
}

/// Checks a credential against AWS and returns the account it belongs to.
pub async fn validate_credential(
    base: &SdkConfig,
    credential: &Credential,
    sealer: &dyn SecretSealer,
) -> Result<AccountId, FirewallError> {
    let provider = credentials_provider(base, credential, sealer).await?;
    let config = aws_sdk_sts::config::Builder::from(base)
        .region(SdkRegion::new(credential.region.as_str().to_owned()))
        .credentials_provider(provider)
        .build();
    let client = aws_sdk_sts::Client::from_conf(config);
    match client.get_caller_identity().send().await {
        Ok(out) => {
            let account = out.account.ok_or_else(|| {
                FirewallError::Rejected("GetCallerIdentity answered without an account".into())
            })?;
            account.parse().map_err(|_| {
                FirewallError::Rejected(format!(
                    "GetCallerIdentity answered with '{account}', not a 12-digit account id"
                ))
            })
        }
        Err(e) => {
            let error = classify_firewall(&facts(&e), &credential.id.to_string());
            tracing::warn!(credential_id = %credential.id, %error, "credential check failed");
            Err(error)
        }
    }
}

/// The `CredentialVerifier` port on STS.
pub struct StsVerifier {
    base: SdkConfig,
    sealer: Arc<dyn SecretSealer>,
}

impl StsVerifier {
    pub fn new(base: SdkConfig, sealer: Arc<dyn SecretSealer>) -> Self {
        Self { base, sealer }
    }
}

#[async_trait]
impl CredentialVerifier for StsVerifier {
    async fn verify(&self, credential: &Credential) -> Result<AccountId, FirewallError> {
        validate_credential(&self.base, credential, self.sealer.as_ref()).await
    }
}

struct Cached {
    client: aws_sdk_ec2::Client,
    account: String,
    quotas: RuleQuota,
    built: Instant,
}

/// A client and the account its calls count against (EC2's request limits are per account and
/// region): the credential's checked account, or the credential itself until it is checked.
#[derive(Debug, Clone)]
pub struct Ec2Client {
    pub client: aws_sdk_ec2::Client,
    pub account: String,
    pub quotas: RuleQuota,
}

/// The account's quota of inbound rules per security group (Service Quotas `L-0EA8095F`), read
/// with the credential at most once per client, and only once a group is full.
#[derive(Debug, Clone)]
pub struct RuleQuota {
    client: aws_sdk_servicequotas::Client,
    value: Arc<tokio::sync::OnceCell<usize>>,
}

impl RuleQuota {
    /// The quota, or EC2's default of 60 where the credential may not read it (the generated
    /// policy allows it; older policies do not) or Service Quotas does not answer.
    pub async fn rules_per_group(&self) -> usize {
        *self
            .value
            .get_or_init(|| async {
                let read = self
                    .client
                    .get_service_quota()
                    .service_code("vpc")
                    .quota_code(RULES_QUOTA_CODE)
                    .send()
                    .await;
                let value = match read {
                    Ok(out) => out.quota().and_then(|q| q.value()),
                    Err(e) => {
                        let f = facts(&e);
                        tracing::warn!(code = ?f.code, message = %f.message, "could not read the rules-per-group quota; counting with EC2's default");
                        None
                    }
                };
                value
                    .filter(|v| v.is_finite() && *v >= 1.0)
                    .map_or(entryguard::batching::RULES_PER_GROUP, |v| v as usize)
            })
            .await
    }
}

/// EC2 clients per (credential, region), built once and reused: a client holds its
/// connection pool and its cached (possibly assumed) credentials.
pub struct Ec2Clients {
    base: SdkConfig,
    source: Arc<dyn CredentialSource>,
    sealer: Arc<dyn SecretSealer>,
    cache: Mutex<HashMap<(CredentialId, Region), Cached>>,
}

impl Ec2Clients {
    pub fn new(
        base: SdkConfig,
        source: Arc<dyn CredentialSource>,
        sealer: Arc<dyn SecretSealer>,
    ) -> Self {
        Self {
            base,
            source,
            sealer,
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub async fn client(
        &self,
        credential_id: CredentialId,
        region: &Region,
    ) -> Result<Ec2Client, FirewallError> {
        let key = (credential_id, region.clone());
        if let Some(c) = self.cache.lock().expect("client cache lock").get(&key) {
            if c.built.elapsed() < CLIENT_TTL {
                return Ok(Ec2Client {
                    client: c.client.clone(),
                    account: c.account.clone(),
                    quotas: c.quotas.clone(),
                });
            }
        }
        let credential = self
            .source
            .credential(credential_id)
            .await
            .map_err(|e| match e {
                // A record no reader understands will not read better on a retry.
                StoreError::Corrupt(m) => FirewallError::InvalidCredential(format!(
                    "credential {credential_id} cannot be read: {m}"
                )),
                e => FirewallError::Unavailable(format!("could not read the credential: {e}")),
            })?
            .ok_or_else(|| {
                FirewallError::InvalidCredential(format!(
                    "credential {credential_id} no longer exists"
                ))
            })?;
        let provider = credentials_provider(&self.base, &credential, self.sealer.as_ref()).await?;
        let quotas = RuleQuota {
            client: aws_sdk_servicequotas::Client::from_conf(
                aws_sdk_servicequotas::config::Builder::from(&self.base)
                    .region(SdkRegion::new(region.as_str().to_owned()))
                    .credentials_provider(provider.clone())
                    .build(),
            ),
            value: Arc::new(tokio::sync::OnceCell::new()),
        };
        let config = aws_sdk_ec2::config::Builder::from(&self.base)
            .region(SdkRegion::new(region.as_str().to_owned()))
            .credentials_provider(provider)
            // The firewall paces and retries its calls itself (token bucket, backoff with
            // jitter); SDK retries on top would multiply the attempts and hide them from it.
            .retry_config(RetryConfig::disabled())
            .build();
        let client = aws_sdk_ec2::Client::from_conf(config);
        let account = credential
            .account_id
            .as_ref()
            .map(|a| a.to_string())
            .unwrap_or_else(|| format!("credential {credential_id}"));
        tracing::debug!(%credential_id, %region, "built an EC2 client");
        // Two callers may build at once; either client is as good as the other.
        self.cache.lock().expect("client cache lock").insert(
            key,
            Cached {
                client: client.clone(),
                account: account.clone(),
                quotas: quotas.clone(),
                built: Instant::now(),
            },
        );
        Ok(Ec2Client {
            client,
            account,
            quotas,
        })
    }

    /// Drops a credential's clients, e.g. after AWS rejected it, so the next call reads the
    /// record again.
    pub fn forget(&self, credential_id: CredentialId) {
        self.cache
            .lock()
            .expect("client cache lock")
            .retain(|(id, _), _| *id != credential_id);
    }
}
