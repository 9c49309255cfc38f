//! Authenticated encryption of secrets (AES-256-GCM) under a 256-bit key: what the embedded
//! sealer does with its key file and the KMS sealer with each data key, so both seal the same way.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rand::RngCore;
use zeroize::Zeroizing;

use crate::domain::model::Secret;
use crate::ports::secrets::SealError;

pub const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;

/// Encrypts `plaintext` under `key` with a fresh random nonce; returns (nonce, ciphertext with
/// tag), base64.
pub fn aead_seal(key: &[u8; KEY_LEN], aad: &[u8], plaintext: &[u8]) -> (String, String) {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rng().fill_bytes(&mut nonce);
    let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key));
    let ciphertext = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .expect("AES-GCM encrypts any input under 64 GiB");
    (B64.encode(nonce), B64.encode(ciphertext))
}

/// Decrypts what [`aead_seal`] made with the same key and associated data.
pub fn aead_open(
    key: &[u8; KEY_LEN],
    aad: &[u8],
    nonce: &str,
    ciphertext: &str,
) -> Result<Zeroizing<Vec<u8>>, SealError> {
    let nonce = B64
        .decode(nonce)
        .ok()
        .filter(|n| n.len() == NONCE_LEN)
        .ok_or_else(|| SealError::CannotOpen("the nonce is malformed".into()))?;
    let ciphertext = B64
        .decode(ciphertext)
        .map_err(|_| SealError::CannotOpen("the ciphertext is malformed".into()))?;
    let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key));
    cipher
        .decrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: &ciphertext,
                aad,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| {
            SealError::CannotOpen(
                "authentication failed: another key, another credential, or altered data".into(),
            )
        })
}

/// Turns opened bytes into a secret.
pub fn secret_from_bytes(bytes: &[u8]) -> Result<Secret, SealError> {
    std::str::from_utf8(bytes)
        .map(|s| Secret::new(s.to_owned()))
        .map_err(|_| SealError::CannotOpen("the opened secret is not UTF-8".into()))
}
