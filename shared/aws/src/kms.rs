//! The `SecretSealer` port on KMS, by envelope encryption: each secret gets its own AES-256
//! data key from `GenerateDataKey`, is encrypted with it locally (AES-256-GCM), and is stored
//! with the data key as KMS encrypted it. Opening asks KMS to `Decrypt` the data key. The
//! credential and organization ids are the encryption context (and the AEAD's associated
//! data), so a sealed secret only opens for the record it was sealed for. A data key KMS
//! decrypted is kept in memory for a few minutes, keyed by everything KMS was asked (the key,
//! the encrypted data key and the context), so a secret opened again soon (every address proof
//! checks the organization's key) costs no `Decrypt`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use zeroize::Zeroizing;

use entryguard::crypto::{aead_open, aead_seal, secret_from_bytes, KEY_LEN};
use entryguard::domain::model::{SealedSecret, Secret};
use entryguard::ports::secrets::{SealContext, SealError, SecretSealer};

use crate::sdk_error::{facts, is_server_code, is_throttling_code, ErrorFacts, Stage};

/// Classifies a failed KMS call.
pub fn classify(f: &ErrorFacts) -> SealError {
    let message = f.describe();
    match f.stage {
        Stage::Timeout | Stage::Dispatch | Stage::Response => {
            return SealError::Unavailable(message)
        }
        Stage::Construction => return SealError::KeyUnusable(message),
        Stage::Service => {}
    }
    match f.code() {
        Some(code) if is_throttling_code(code) || is_server_code(code) => {
            SealError::Unavailable(message)
        }
        Some("KMSInternalException" | "DependencyTimeoutException" | "KeyUnavailableException") => {
            SealError::Unavailable(message)
        }
        Some("InvalidCiphertextException" | "IncorrectKeyException") => {
            SealError::CannotOpen(message)
        }
        _ if f.is_server_fault() => SealError::Unavailable(message),
        // NotFoundException, DisabledException, KMSInvalidStateException, AccessDenied…
        _ => SealError::KeyUnusable(message),
    }
}

/// How long a decrypted data key is reused. Access to the key taken away in KMS stops a running
/// function from opening secrets within this time.
const DATA_KEY_TTL: Duration = Duration::from_secs(300);
/// How many decrypted data keys are kept (one per sealed secret opened recently).
const DATA_KEY_CACHE: usize = 1024;

/// What KMS was asked to decrypt: the key, the encrypted data key, the encryption context.
type DecryptRequest = (String, Vec<u8>, Vec<(String, String)>);

#[derive(Clone)]
struct Decrypted {
    key: Arc<Zeroizing<[u8; KEY_LEN]>>,
    at: Instant,
}

pub struct KmsSealer {
    client: aws_sdk_kms::Client,
    key_id: String,
    data_keys: quick_cache::sync::Cache<DecryptRequest, Decrypted>,
}

impl KmsSealer {
    /// `key_id`: a key id, key ARN, alias name (`alias/…`) or alias ARN.
    pub fn new(sdk: &SdkConfig, key_id: impl Into<String>) -> Self {
        Self {
            client: aws_sdk_kms::Client::new(sdk),
            key_id: key_id.into(),
            data_keys: quick_cache::sync::Cache::new(DATA_KEY_CACHE),
        }
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }
}

fn context_map(context: &SealContext) -> std::collections::HashMap<String, String> {
    context.encryption_context().into_iter().collect()
}

/// The plaintext data key of a KMS answer, wiped from memory when dropped.
fn data_key(plaintext: Option<Blob>, call: &str) -> Result<Zeroizing<[u8; KEY_LEN]>, SealError> {
    let bytes = Zeroizing::new(plaintext.map(Blob::into_inner).unwrap_or_default());
    let key: [u8; KEY_LEN] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| SealError::KeyUnusable(format!("{call} returned no 256-bit data key")))?;
    Ok(Zeroizing::new(key))
}

#[async_trait]
impl SecretSealer for KmsSealer {
    async fn seal(
        &self,
        secret: &Secret,
        context: &SealContext,
    ) -> Result<SealedSecret, SealError> {
        let out = self
            .client
            .generate_data_key()
            .key_id(&self.key_id)
            .key_spec(DataKeySpec::Aes256)
            .set_encryption_context(Some(context_map(context)))
            .send()
            .await
            .map_err(|e| classify(&facts(&e)))?;
        let data_key = data_key(out.plaintext, "GenerateDataKey")?;
        let encrypted_key = out.ciphertext_blob.ok_or_else(|| {
            SealError::KeyUnusable("GenerateDataKey returned no encrypted key".into())
        })?;
        let (nonce, ciphertext) = aead_seal(
            &data_key,
            &context.associated_data(),
            secret.expose().as_bytes(),
        );
        Ok(SealedSecret {
            // The key's ARN, so a later change of alias does not hide which key sealed it.
            key_id: out.key_id.unwrap_or_else(|| self.key_id.clone()),
            encrypted_data_key: Some(B64.encode(encrypted_key.as_ref())),
            nonce,
            ciphertext,
        })
    }

    async fn open(
        &self,
        sealed: &SealedSecret,
        context: &SealContext,
    ) -> Result<Secret, SealError> {
        let encrypted_key = sealed
            .encrypted_data_key
            .as_deref()
            .and_then(|k| B64.decode(k).ok())
            .ok_or_else(|| {
                SealError::CannotOpen(format!(
                    "it was not sealed with KMS (key {}), or its data key is damaged",
                    sealed.key_id
                ))
            })?;
        let data_key = self
            .decrypt_data_key(&sealed.key_id, encrypted_key, context)
            .await?;
        let plain = aead_open(
            &data_key,
            &context.associated_data(),
            &sealed.nonce,
            &sealed.ciphertext,
        )?;
        secret_from_bytes(&plain)
    }
}

impl KmsSealer {
    /// KMS's `Decrypt` of a data key, or its answer to the same question a moment ago.
    async fn decrypt_data_key(
        &self,
        key_id: &str,
        encrypted_key: Vec<u8>,
        context: &SealContext,
    ) -> Result<Arc<Zeroizing<[u8; KEY_LEN]>>, SealError> {
        let mut pairs: Vec<(String, String)> = context.encryption_context().into_iter().collect();
        pairs.sort();
        let request: DecryptRequest = (key_id.to_owned(), encrypted_key, pairs);
        if let Some(hit) = self.data_keys.get(&request) {
            if hit.at.elapsed() < DATA_KEY_TTL {
                return Ok(hit.key);
            }
        }
        let out = self
            .client
            .decrypt()
            .key_id(key_id)
            .ciphertext_blob(Blob::new(request.1.clone()))
            .set_encryption_context(Some(context_map(context)))
            .send()
            .await
            .map_err(|e| classify(&facts(&e)))?;
        let key = Arc::new(data_key(out.plaintext, "Decrypt")?);
        self.data_keys.insert(
            request,
            Decrypted {
                key: key.clone(),
                at: Instant::now(),
            },
        );
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kms_failures_are_classified() {
        let service = |code: &str, status: u16| classify(&ErrorFacts::service(code, status, "m"));
        for (code, status) in [
            ("ThrottlingException", 400),
            ("KMSInternalException", 500),
            ("DependencyTimeoutException", 503),
            ("KeyUnavailableException", 500),
            ("SomethingNew", 502),
        ] {
            let e = service(code, status);
            assert!(e.is_transient(), "{code}: {e:?}");
        }
        for code in ["InvalidCiphertextException", "IncorrectKeyException"] {
            assert!(
                matches!(service(code, 400), SealError::CannotOpen(_)),
                "{code}"
            );
        }
        for code in [
            "NotFoundException",
            "DisabledException",
            "KMSInvalidStateException",
            "AccessDeniedException",
        ] {
            assert!(
                matches!(service(code, 400), SealError::KeyUnusable(_)),
                "{code}"
            );
        }
        let timeout = ErrorFacts {
            stage: Stage::Timeout,
            code: None,
            status: None,
            message: "timed out".into(),
            credentials: None,
        };
        assert!(classify(&timeout).is_transient());
    }
}
