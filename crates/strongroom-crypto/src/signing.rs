//! Ed25519 signatures for the audit trail's checkpoints, and the chain hash that links its
//! events. The private key exists only as PKCS#8 bytes the caller seals; the public key is
//! given to tenants so they can check an exported trail without trusting the server.

use crate::CryptoError;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use zeroize::Zeroizing;

pub struct AuditSigningKey {
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for AuditSigningKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "AuditSigningKey(public={}, redacted)",
            hex::encode(self.public_key())
        )
    }
}

impl AuditSigningKey {
    /// A new key as PKCS#8 bytes, to seal and store.
    pub fn generate() -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let document = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
            .map_err(|_| CryptoError::Random)?;
        Ok(Zeroizing::new(document.as_ref().to_vec()))
    }

    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, CryptoError> {
        Ed25519KeyPair::from_pkcs8(pkcs8)
            .map(|pair| AuditSigningKey { pair })
            .map_err(|_| CryptoError::BadParameters)
    }

    pub fn public_key(&self) -> [u8; 32] {
        let mut public = [0u8; 32];
        public.copy_from_slice(self.pair.public_key().as_ref());
        public
    }

    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        let mut signature = [0u8; 64];
        signature.copy_from_slice(self.pair.sign(message).as_ref());
        signature
    }
}

/// Whether `signature` is `public_key`'s Ed25519 signature of `message`.
pub fn verify_signature(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    UnparsedPublicKey::new(&ED25519, public_key)
        .verify(message, signature)
        .is_ok()
}

/// The hash that links an audit event to the one before it:
/// SHA-256("strongroom/audit-chain/v1" ‖ previous hash ‖ sequence ‖ event bytes).
pub fn chain_hash(previous: &[u8; 32], sequence: u64, event: &[u8]) -> [u8; 32] {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    context.update(b"strongroom/audit-chain/v1\0");
    context.update(previous);
    context.update(&sequence.to_be_bytes());
    context.update(event);
    let mut hash = [0u8; 32];
    hash.copy_from_slice(context.finish().as_ref());
    hash
}

/// HMAC-SHA-256 of `message` under `key` (signing webhook deliveries).
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let mut tag = [0u8; 32];
    tag.copy_from_slice(ring::hmac::sign(&key, message).as_ref());
    tag
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_tampering_shows() {
        let pkcs8 = AuditSigningKey::generate().unwrap();
        let key = AuditSigningKey::from_pkcs8(&pkcs8).unwrap();
        let signature = key.sign(b"checkpoint");
        assert!(verify_signature(
            &key.public_key(),
            b"checkpoint",
            &signature
        ));
        assert!(!verify_signature(
            &key.public_key(),
            b"checkpoinT",
            &signature
        ));
        let other = AuditSigningKey::from_pkcs8(&AuditSigningKey::generate().unwrap()).unwrap();
        assert!(!verify_signature(
            &other.public_key(),
            b"checkpoint",
            &signature
        ));
        assert!(!format!("{key:?}").contains(&hex::encode(&pkcs8[..])));
    }

    #[test]
    fn the_chain_hash_covers_link_position_and_content() {
        let first = chain_hash(&[0; 32], 1, b"a");
        assert_ne!(first, chain_hash(&[1; 32], 1, b"a"));
        assert_ne!(first, chain_hash(&[0; 32], 2, b"a"));
        assert_ne!(first, chain_hash(&[0; 32], 1, b"b"));
        assert_eq!(first, chain_hash(&[0; 32], 1, b"a"));
    }
}
