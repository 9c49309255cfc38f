//! Sealing with a local 256-bit key kept in a file: the embedded backend's `SecretSealer`. The
//! encryption itself is `crypto`'s, the same the KMS adapter performs with its data keys.

use std::io::Write;
use std::path::Path;

use async_trait::async_trait;
use rand::RngCore;
use sha2::{Digest, Sha256};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::crypto::{aead_open, aead_seal, secret_from_bytes, KEY_LEN};
use crate::domain::model::{SealedSecret, Secret};
use crate::ports::secrets::{SealContext, SealError, SecretSealer};

/// The name of the key file in the data directory.
pub const KEY_FILE: &str = "secret.key";

#[derive(Debug, Error)]
pub enum KeyFileError {
    #[error("could not read or create the key file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("the key file {0} is not {KEY_LEN} bytes long; restore it from a backup (deleting it makes every stored secret unreadable)")]
    BadLength(String),
}

/// AES-256-GCM under a key kept in a file. The key id (a hash of the key) is stored with every
/// sealed secret, so a secret sealed under another key file is told apart from a damaged one.
pub struct LocalKeySealer {
    key: Zeroizing<[u8; KEY_LEN]>,
    key_id: String,
}

impl LocalKeySealer {
    pub fn from_key(key: [u8; KEY_LEN]) -> Self {
        let digest = Sha256::new()
            .chain_update(b"entryguard local key id")
            .chain_update(key)
            .finalize();
        Self {
            key_id: format!("local:{}", hex::encode(&digest[..8])),
            key: Zeroizing::new(key),
        }
    }

    /// A sealer with a fresh random key that lives only in memory (tests, in-memory stores).
    pub fn ephemeral() -> Self {
        let mut key = [0u8; KEY_LEN];
        rand::rng().fill_bytes(&mut key);
        Self::from_key(key)
    }

    /// Loads `dir/secret.key`, creating it (readable by the owner only) on first start.
    pub fn load_or_create(dir: &Path) -> Result<Self, KeyFileError> {
        let path = dir.join(KEY_FILE);
        let io = |source| KeyFileError::Io {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read(&path) {
            Ok(bytes) => {
                let bytes = Zeroizing::new(bytes);
                let key: [u8; KEY_LEN] = bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| KeyFileError::BadLength(path.display().to_string()))?;
                warn_if_readable_by_others(&path);
                Ok(Self::from_key(key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; KEY_LEN];
                rand::rng().fill_bytes(&mut key);
                // Written aside and renamed, so a crash never leaves a short key file behind.
                let tmp = dir.join(format!("{KEY_FILE}.tmp"));
                let mut file = owner_only_file(&tmp).map_err(io)?;
                file.write_all(&key).map_err(io)?;
                file.sync_all().map_err(io)?;
                std::fs::rename(&tmp, &path).map_err(io)?;
                tracing::info!(path = %path.display(), "created the secret key file; back it up with the data directory");
                Ok(Self::from_key(key))
            }
            Err(e) => Err(io(e)),
        }
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }
}

#[cfg(unix)]
fn owner_only_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn owner_only_file(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(path = %path.display(), "the secret key file is readable by other users; chmod 600 it");
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

#[async_trait]
impl SecretSealer for LocalKeySealer {
    async fn seal(
        &self,
        secret: &Secret,
        context: &SealContext,
    ) -> Result<SealedSecret, SealError> {
        let (nonce, ciphertext) = aead_seal(
            &self.key,
            &context.associated_data(),
            secret.expose().as_bytes(),
        );
        Ok(SealedSecret {
            key_id: self.key_id.clone(),
            encrypted_data_key: None,
            nonce,
            ciphertext,
        })
    }

    async fn open(
        &self,
        sealed: &SealedSecret,
        context: &SealContext,
    ) -> Result<Secret, SealError> {
        if sealed.key_id != self.key_id {
            return Err(SealError::CannotOpen(format!(
                "it was sealed under key {}, and this deployment has key {}",
                sealed.key_id, self.key_id
            )));
        }
        let plain = aead_open(
            &self.key,
            &context.associated_data(),
            &sealed.nonce,
            &sealed.ciphertext,
        )?;
        secret_from_bytes(&plain)
    }
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::STANDARD as B64;
    use base64::Engine;

    use super::*;
    use crate::domain::ids::{CredentialId, OrgId};

    fn context() -> SealContext {
        SealContext {
            org_id: OrgId::from_uuid(uuid::Uuid::from_u128(1)),
            credential_id: CredentialId::from_uuid(uuid::Uuid::from_u128(2)),
            purpose: Default::default(),
        }
    }

    const PLAIN: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    #[tokio::test]
    async fn round_trip_and_no_plaintext_in_the_sealed_form() {
        let sealer = LocalKeySealer::ephemeral();
        let sealed = sealer
            .seal(&Secret::new(PLAIN.into()), &context())
            .await
            .unwrap();
        let json = serde_json::to_string(&sealed).unwrap();
        assert!(!json.contains(PLAIN) && !json.contains("wJalr"), "{json}");
        assert_eq!(sealed.key_id, sealer.key_id());
        assert_eq!(
            sealer.open(&sealed, &context()).await.unwrap().expose(),
            PLAIN
        );
        // A fresh nonce each time: sealing twice gives two ciphertexts.
        let again = sealer
            .seal(&Secret::new(PLAIN.into()), &context())
            .await
            .unwrap();
        assert_ne!(again.ciphertext, sealed.ciphertext);
        assert_ne!(again.nonce, sealed.nonce);
    }

    #[tokio::test]
    async fn another_key_another_record_or_a_changed_byte_fails_to_open() {
        let sealer = LocalKeySealer::from_key([7; KEY_LEN]);
        let sealed = sealer
            .seal(&Secret::new(PLAIN.into()), &context())
            .await
            .unwrap();

        // Another key, even when the blob claims to be for it.
        let other = LocalKeySealer::from_key([8; KEY_LEN]);
        let err = other.open(&sealed, &context()).await.unwrap_err();
        assert!(
            matches!(err, SealError::CannotOpen(ref m) if m.contains("another key") || m.contains("sealed under key")),
            "{err:?}"
        );
        let mut relabelled = sealed.clone();
        relabelled.key_id = other.key_id().to_owned();
        assert!(matches!(
            other.open(&relabelled, &context()).await,
            Err(SealError::CannotOpen(_))
        ));

        // Moved to another credential, or to another organization.
        let mut moved = context();
        moved.credential_id = CredentialId::from_uuid(uuid::Uuid::from_u128(3));
        assert!(matches!(
            sealer.open(&sealed, &moved).await,
            Err(SealError::CannotOpen(_))
        ));
        // A credential's secret never opens as a webhook secret of the same id.
        let mut moved = context();
        moved.purpose = crate::ports::secrets::SealPurpose::WebhookSecret;
        assert!(matches!(
            sealer.open(&sealed, &moved).await,
            Err(SealError::CannotOpen(_))
        ));
        let mut moved = context();
        moved.org_id = OrgId::from_uuid(uuid::Uuid::from_u128(4));
        assert!(matches!(
            sealer.open(&sealed, &moved).await,
            Err(SealError::CannotOpen(_))
        ));

        // One flipped bit.
        let mut bytes = B64.decode(&sealed.ciphertext).unwrap();
        bytes[0] ^= 1;
        let tampered = SealedSecret {
            ciphertext: B64.encode(bytes),
            ..sealed.clone()
        };
        assert!(matches!(
            sealer.open(&tampered, &context()).await,
            Err(SealError::CannotOpen(_))
        ));
        assert!(matches!(
            sealer
                .open(
                    &SealedSecret {
                        nonce: "not base64!".into(),
                        ..sealed.clone()
                    },
                    &context()
                )
                .await,
            Err(SealError::CannotOpen(_))
        ));
        // The original still opens.
        assert_eq!(
            sealer.open(&sealed, &context()).await.unwrap().expose(),
            PLAIN
        );
    }

    #[tokio::test]
    async fn the_key_file_is_created_owner_only_and_reused() {
        let dir = std::env::temp_dir().join(format!("eg-key-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let first = LocalKeySealer::load_or_create(&dir).unwrap();
        let path = dir.join(KEY_FILE);
        assert_eq!(std::fs::read(&path).unwrap().len(), KEY_LEN);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{mode:o}");
        }
        let sealed = first
            .seal(&Secret::new(PLAIN.into()), &context())
            .await
            .unwrap();
        // A restart reads the same key.
        let second = LocalKeySealer::load_or_create(&dir).unwrap();
        assert_eq!(second.key_id(), first.key_id());
        assert_eq!(
            second.open(&sealed, &context()).await.unwrap().expose(),
            PLAIN
        );
        // A damaged key file is refused, not replaced.
        std::fs::write(&path, b"short").unwrap();
        assert!(matches!(
            LocalKeySealer::load_or_create(&dir),
            Err(KeyFileError::BadLength(_))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
