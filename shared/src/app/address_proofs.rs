//! Signing and checking address proofs with the organization's key ring, which the store keeps
//! sealed (KMS on AWS, the local key file embedded) and which rotates itself.

use chrono::Duration;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::domain::address_proof::{
    AddressProof, ProofError, ProofKey, ProofKeys, SignedAddress, PROOF_KEY_LEN,
};
use crate::domain::ids::OrgId;
use crate::domain::model::{SealedSecret, Secret};
use crate::domain::net::ClientIp;
use crate::domain::Timestamp;
use crate::ports::secrets::{SealContext, SealError};
use crate::ports::store::{DocKind, StoreError};

use super::docs::Doc;
use super::{App, Identity};

/// How long a key signs before a new one takes over (it then verifies for one more period).
const ROTATE_AFTER_DAYS: i64 = 30;
/// How often one of several concurrent callers may write a new ring; also how long a writer
/// that died half-way holds the others up.
const RING_WRITE_EVERY_SECS: i64 = 60;
/// While another caller writes the first ring: how often and how long to look for it.
const RING_WAIT_TRIES: usize = 20;
const RING_WAIT_STEP: std::time::Duration = std::time::Duration::from_millis(50);

/// An organization's address-proof keys as stored: sealed, bound to the organization and key id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddressKeyRing {
    pub org_id: OrgId,
    pub current: StoredProofKey,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<StoredProofKey>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredProofKey {
    pub id: Uuid,
    pub created_at: Timestamp,
    pub sealed: SealedSecret,
}

impl Doc for AddressKeyRing {
    const KIND: DocKind = DocKind::AddressProofKeys;
    /// One ring per organization.
    fn uuid(&self) -> Uuid {
        *self.org_id.as_uuid()
    }
    fn org(&self) -> OrgId {
        self.org_id
    }
}

#[derive(Debug, Error)]
pub enum AddressProofError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Sealing(#[from] SealError),
}

impl App {
    /// A proof that the caller was seen at `ip` (the address of the request, detected server-side).
    pub async fn sign_address(
        &self,
        who: &Identity,
        ip: ClientIp,
    ) -> Result<SignedAddress, AddressProofError> {
        let keys = self.proof_keys(who.org.id, Use::Sign).await?;
        Ok(keys.sign(who.user.id, ip, self.now()))
    }

    /// Checks every proof a start request brought, for the caller; the first bad one refuses
    /// them all.
    pub async fn verify_address_proofs(
        &self,
        who: &Identity,
        proofs: &[String],
    ) -> Result<Result<Vec<AddressProof>, ProofError>, AddressProofError> {
        if proofs.is_empty() {
            return Ok(Ok(Vec::new()));
        }
        let keys = self.proof_keys(who.org.id, Use::Verify).await?;
        let now = self.now();
        Ok(proofs
            .iter()
            .map(|p| keys.verify(p, who.user.id, now))
            .collect())
    }

    /// The organization's keys, creating the ring on first use and rotating it when its current
    /// key is old. Only the caller that claims the write makes a key, so concurrent first calls
    /// (the web app probes both families at once) agree on one.
    async fn proof_keys(&self, org: OrgId, use_: Use) -> Result<ProofKeys, AddressProofError> {
        let now = self.now();
        let ring = self.get_doc::<AddressKeyRing>(org, *org.as_uuid()).await?;
        let stale = |r: &AddressKeyRing| now - r.current.created_at >= rotate_after();
        if ring.as_ref().is_some_and(|r| !stale(r)) {
            return self.open_ring(ring.expect("checked above"), use_).await;
        }
        let job = format!("address-proof-keys/{org}");
        if self
            .store
            .claim_run(&job, now, Duration::seconds(RING_WRITE_EVERY_SECS))
            .await?
        {
            // Read again under the claim: another caller may have rotated just before it.
            let latest = self.get_doc::<AddressKeyRing>(org, *org.as_uuid()).await?;
            if let Some(r) = latest.filter(|r| !stale(r)) {
                return self.open_ring(r, use_).await;
            }
            let ring = self.new_ring(org, ring, now).await?;
            self.put_doc(&ring).await?;
            tracing::info!(org_id = %org, key_id = %ring.current.id, "address-proof key rotated");
            return self.open_ring(ring, use_).await;
        }
        // Someone else is writing: a stale ring still verifies and signs for now.
        if let Some(r) = ring {
            return self.open_ring(r, use_).await;
        }
        for _ in 0..RING_WAIT_TRIES {
            self.timer.sleep(RING_WAIT_STEP).await;
            if let Some(r) = self.get_doc::<AddressKeyRing>(org, *org.as_uuid()).await? {
                return self.open_ring(r, use_).await;
            }
        }
        Err(StoreError::Unavailable("the address-proof key is being created".into()).into())
    }

    async fn new_ring(
        &self,
        org: OrgId,
        old: Option<AddressKeyRing>,
        now: Timestamp,
    ) -> Result<AddressKeyRing, AddressProofError> {
        let id = self.ids.uuid();
        let mut secret = Zeroizing::new([0u8; PROOF_KEY_LEN]);
        rand::rng().fill_bytes(&mut secret[..]);
        let sealed = self
            .sealer
            .seal(
                &Secret::new(hex::encode(&secret[..])),
                &SealContext::address_proof_key(org, id),
            )
            .await?;
        Ok(AddressKeyRing {
            org_id: org,
            current: StoredProofKey {
                id,
                created_at: now,
                sealed,
            },
            previous: old.map(|r| r.current),
        })
    }

    /// Opens what `use_` needs: each opening is a KMS call on AWS, and signing needs only the
    /// current key.
    async fn open_ring(
        &self,
        ring: AddressKeyRing,
        use_: Use,
    ) -> Result<ProofKeys, AddressProofError> {
        let current = self.open_key(ring.org_id, &ring.current).await?;
        let previous = match (&ring.previous, use_) {
            (Some(k), Use::Verify) => Some(self.open_key(ring.org_id, k).await?),
            _ => None,
        };
        Ok(ProofKeys { current, previous })
    }

    async fn open_key(
        &self,
        org: OrgId,
        key: &StoredProofKey,
    ) -> Result<ProofKey, AddressProofError> {
        let secret = self
            .sealer
            .open(&key.sealed, &SealContext::address_proof_key(org, key.id))
            .await?;
        let bytes = Zeroizing::new(
            hex::decode(secret.expose())
                .map_err(|_| SealError::CannotOpen("the address-proof key is not hex".into()))?,
        );
        let raw: [u8; PROOF_KEY_LEN] = bytes.as_slice().try_into().map_err(|_| {
            SealError::CannotOpen("the address-proof key has the wrong length".into())
        })?;
        Ok(ProofKey::new(key.id, raw))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Use {
    Sign,
    Verify,
}

fn rotate_after() -> Duration {
    Duration::days(ROTATE_AFTER_DAYS)
}
