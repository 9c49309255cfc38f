//! Address proofs: a short-lived, signed statement "user U was seen at address A", so one start
//! request can carry the caller's address of the other IP family without ever taking an address
//! on the client's word. The server signs what it saw on one connection (`GET /api/address` on
//! an IPv4-only or IPv6-only host name) and verifies it when the start request brings it back.
//!
//! A proof is `base64url(payload) "." base64url(HMAC-SHA256(key, domain ‖ payload))`, the payload
//! naming the key it was signed with, so a rotated key keeps verifying the proofs it signed for as
//! long as it is kept as the previous key.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use chrono::Duration;
use hmac::{KeyInit, Mac};
use thiserror::Error;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::ids::UserId;
use super::net::{ClientIp, IpVersion, Ipv6Prefix};
use super::Timestamp;

/// How long a proof is good for: enough for two probes and the start request that follows them.
pub const PROOF_LIFETIME_SECS: i64 = 120;

/// The length of a signing key, in bytes.
pub const PROOF_KEY_LEN: usize = 32;

/// Separates these MACs from every other use of HMAC-SHA256 in the product.
const DOMAIN: &[u8] = b"entryguard/address-proof/v1\n";
const FORMAT: &str = "v1";

type HmacSha256 = hmac::Hmac<sha2_011::Sha256>;

/// One signing key and the id proofs name it by.
pub struct ProofKey {
    id: Uuid,
    secret: Zeroizing<[u8; PROOF_KEY_LEN]>,
}

impl ProofKey {
    pub fn new(id: Uuid, secret: [u8; PROOF_KEY_LEN]) -> Self {
        Self {
            id,
            secret: Zeroizing::new(secret),
        }
    }

    pub fn id(&self) -> Uuid {
        self.id
    }

    fn mac(&self, payload: &[u8]) -> HmacSha256 {
        let mut mac =
            HmacSha256::new_from_slice(&self.secret[..]).expect("HMAC takes a key of any length");
        mac.update(DOMAIN);
        mac.update(payload);
        mac
    }
}

impl std::fmt::Debug for ProofKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ProofKey({}, ***)", self.id)
    }
}

/// The keys in use: proofs are signed with the current one; the previous one still verifies, so
/// a rotation never breaks a proof in flight.
#[derive(Debug)]
pub struct ProofKeys {
    pub current: ProofKey,
    pub previous: Option<ProofKey>,
}

/// What `GET /api/address` hands out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedAddress {
    pub address: ClientIp,
    pub proof: String,
    pub expires_at: Timestamp,
}

/// An address proven to belong to the user it was checked for, and not yet expired when checked.
/// Only [`ProofKeys::verify`] makes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressProof {
    address: ClientIp,
}

impl AddressProof {
    pub fn address(&self) -> ClientIp {
        self.address
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProofError {
    /// Not made by this deployment with a key it still holds: malformed, altered or forged.
    #[error("An address proof is not valid: it was altered, forged or signed with a key that was retired")]
    Invalid,
    #[error("An address proof has expired; detect your addresses again and retry")]
    Expired,
    #[error("An address proof was issued to another user")]
    OtherUser,
}

struct Payload {
    key_id: Uuid,
    user_id: Uuid,
    address: ClientIp,
    expires_at: i64,
}

impl Payload {
    fn encode(&self) -> String {
        format!(
            "{FORMAT}\n{}\n{}\n{}\n{}",
            self.key_id.simple(),
            self.user_id.simple(),
            self.address,
            self.expires_at
        )
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut parts = text.split('\n');
        if parts.next()? != FORMAT {
            return None;
        }
        let payload = Self {
            key_id: Uuid::try_parse(parts.next()?).ok()?,
            user_id: Uuid::try_parse(parts.next()?).ok()?,
            address: parts.next()?.parse().ok()?,
            expires_at: parts.next()?.parse().ok()?,
        };
        parts.next().is_none().then_some(payload)
    }
}

impl ProofKeys {
    /// A proof that `user` was seen at `address` at `now`.
    pub fn sign(&self, user: UserId, address: ClientIp, now: Timestamp) -> SignedAddress {
        let expires_at = now + Duration::seconds(PROOF_LIFETIME_SECS);
        let payload = Payload {
            key_id: self.current.id,
            user_id: *user.as_uuid(),
            address,
            expires_at: expires_at.timestamp(),
        }
        .encode();
        let tag = self.current.mac(payload.as_bytes()).finalize().into_bytes();
        SignedAddress {
            address,
            proof: format!("{}.{}", B64.encode(payload), B64.encode(tag)),
            expires_at,
        }
    }

    /// Checks a proof for `user` at `now`: the signature first (in constant time), so nothing
    /// about an unsigned payload is ever trusted, then its owner and its expiry.
    pub fn verify(
        &self,
        proof: &str,
        user: UserId,
        now: Timestamp,
    ) -> Result<AddressProof, ProofError> {
        let (payload_b64, tag_b64) = proof.split_once('.').ok_or(ProofError::Invalid)?;
        let payload_bytes = B64.decode(payload_b64).map_err(|_| ProofError::Invalid)?;
        let tag = B64.decode(tag_b64).map_err(|_| ProofError::Invalid)?;
        let payload = Payload::decode(&payload_bytes).ok_or(ProofError::Invalid)?;
        let key = std::iter::once(&self.current)
            .chain(self.previous.as_ref())
            .find(|k| k.id == payload.key_id)
            .ok_or(ProofError::Invalid)?;
        key.mac(&payload_bytes)
            .verify_slice(&tag)
            .map_err(|_| ProofError::Invalid)?;
        if payload.user_id != *user.as_uuid() {
            return Err(ProofError::OtherUser);
        }
        if payload.expires_at <= now.timestamp() {
            return Err(ProofError::Expired);
        }
        Ok(AddressProof {
            address: payload.address,
        })
    }
}

/// A session's addresses: the start request's own, then at most one more of the other family;
/// and how much of an IPv6 one its rules open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionAddresses(Vec<ClientIp>, Ipv6Prefix);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("Two address proofs are for {}; send at most one per IP family", match .0 { IpVersion::V4 => "IPv4", IpVersion::V6 => "IPv6" })]
pub struct SecondProofOfFamily(pub IpVersion);

impl SessionAddresses {
    /// The request's own address always counts: a proof of its family adds nothing (the address
    /// the start request came from is the one the caller is using right now). Two proofs of one
    /// family are refused rather than one picked silently.
    pub fn new(own: ClientIp, proofs: &[AddressProof]) -> Result<Self, SecondProofOfFamily> {
        let mut addresses = vec![own];
        let mut proven: Vec<IpVersion> = Vec::new();
        for proof in proofs {
            let family = proof.address.version();
            if proven.contains(&family) {
                return Err(SecondProofOfFamily(family));
            }
            proven.push(family);
            if addresses.iter().all(|a| a.version() != family) {
                addresses.push(proof.address);
            }
        }
        Ok(Self(addresses, Ipv6Prefix::Host))
    }

    /// Rules for the IPv6 address open this much of it.
    pub fn with_ipv6_prefix(self, prefix: Ipv6Prefix) -> Self {
        Self(self.0, prefix)
    }

    pub fn ipv6_prefix(&self) -> Ipv6Prefix {
        self.1
    }

    pub fn as_slice(&self) -> &[ClientIp] {
        &self.0
    }

    pub fn into_vec(self) -> Vec<ClientIp> {
        self.0
    }
}

impl From<ClientIp> for SessionAddresses {
    fn from(ip: ClientIp) -> Self {
        Self(vec![ip], Ipv6Prefix::Host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(id: u128, byte: u8) -> ProofKey {
        ProofKey::new(Uuid::from_u128(id), [byte; PROOF_KEY_LEN])
    }

    fn ring() -> ProofKeys {
        ProofKeys {
            current: keys(2, 7),
            previous: Some(keys(1, 3)),
        }
    }

    fn t(secs: i64) -> Timestamp {
        chrono::DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    fn user(n: u128) -> UserId {
        UserId::from_uuid(Uuid::from_u128(n))
    }

    fn ip(s: &str) -> ClientIp {
        s.parse().unwrap()
    }

    #[test]
    fn a_proof_verifies_for_its_user_until_it_expires() {
        let signed = ring().sign(user(1), ip("2001:db8::7"), t(0));
        assert_eq!(signed.expires_at, t(PROOF_LIFETIME_SECS));
        let proof = ring().verify(&signed.proof, user(1), t(119)).unwrap();
        assert_eq!(proof.address(), ip("2001:db8::7"));
        assert_eq!(
            ring().verify(&signed.proof, user(1), t(120)),
            Err(ProofError::Expired)
        );
        assert_eq!(
            ring().verify(&signed.proof, user(2), t(1)),
            Err(ProofError::OtherUser)
        );
    }

    #[test]
    fn altered_or_foreign_proofs_are_invalid() {
        let signed = ring().sign(user(1), ip("203.0.113.9"), t(0));
        let (payload, tag) = signed.proof.split_once('.').unwrap();
        let text = String::from_utf8(B64.decode(payload).unwrap()).unwrap();
        // Another address under the original tag.
        let moved = B64.encode(text.replace("203.0.113.9", "203.0.113.10"));
        // A later expiry under the original tag.
        let later = B64.encode(text.replace(&t(120).timestamp().to_string(), "9999999999"));
        let other_key = ProofKeys {
            current: keys(2, 8),
            previous: None,
        }
        .sign(user(1), ip("203.0.113.9"), t(0));
        for bad in [
            format!("{moved}.{tag}"),
            format!("{later}.{tag}"),
            format!("{payload}.{}", B64.encode([0u8; 32])),
            format!("{payload}.{}", &tag[..tag.len() - 2]),
            other_key.proof,
            String::new(),
            "no-dot".into(),
            format!("{payload}."),
            "!!.??".into(),
        ] {
            assert_eq!(
                ring().verify(&bad, user(1), t(1)),
                Err(ProofError::Invalid),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_previous_key_still_verifies_and_a_retired_one_does_not() {
        let old = ProofKeys {
            current: keys(1, 3),
            previous: None,
        };
        let signed = old.sign(user(1), ip("203.0.113.9"), t(0));
        assert!(ring().verify(&signed.proof, user(1), t(1)).is_ok());
        let rotated_twice = ProofKeys {
            current: keys(3, 9),
            previous: Some(keys(2, 7)),
        };
        assert_eq!(
            rotated_twice.verify(&signed.proof, user(1), t(1)),
            Err(ProofError::Invalid)
        );
    }

    #[test]
    fn session_addresses_take_one_per_family() {
        let proof = |s: &str| AddressProof { address: ip(s) };
        let both = SessionAddresses::new(
            ip("203.0.113.9"),
            &[proof("2001:db8::1"), proof("203.0.113.9")],
        )
        .unwrap();
        assert_eq!(both.as_slice(), &[ip("203.0.113.9"), ip("2001:db8::1")]);
        // The request's own address wins over a proof of its family.
        let own = SessionAddresses::new(ip("203.0.113.9"), &[proof("198.51.100.1")]).unwrap();
        assert_eq!(own.as_slice(), &[ip("203.0.113.9")]);
        assert_eq!(
            SessionAddresses::new(
                ip("203.0.113.9"),
                &[proof("2001:db8::1"), proof("2001:db8::2")]
            ),
            Err(SecondProofOfFamily(IpVersion::V6))
        );
    }
}
