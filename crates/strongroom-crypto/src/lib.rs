//! The one door to cryptography: AEAD sealing, key wrapping, blind indexes, token hashing and
//! randomness. No other crate depends on a crypto library.
//!
//! Primitives come from `ring` (AES-256-GCM, HMAC-SHA-256, SHA-256, the system RNG), the same
//! provider rustls uses here, so the tree carries one crypto implementation.
#![forbid(unsafe_code)]

mod aead;
mod blind_index;
mod chunks;
mod error;
mod keys;
mod password;
mod random;
mod signing;
mod totp;

pub use aead::{Keyring, SEALED_FORMAT_VERSION, sealed_key_version};
pub use blind_index::BlindIndexKey;
pub use chunks::{CHUNK_OVERHEAD, ChunkOpener, ChunkSealer};
pub use error::CryptoError;
pub use keys::{DataKey, KEY_LENGTH, MasterKey, WrappedKeyPurpose};
pub use password::PasswordHashing;
pub use random::{Sha256Hasher, generate_token, hash_token, random_bytes_32, random_hex_id};
pub use signing::{AuditSigningKey, chain_hash, hmac_sha256, verify_signature};
pub use totp::{TOTP_STEP_SECONDS, TotpSecret};
