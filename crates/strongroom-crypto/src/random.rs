use crate::CryptoError;
use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};

pub fn random_bytes_32() -> Result<[u8; 32], CryptoError> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| CryptoError::Random)?;
    Ok(bytes)
}

/// A random identifier of 128 bits, as 32 lowercase hex characters.
pub fn random_hex_id() -> Result<String, CryptoError> {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| CryptoError::Random)?;
    Ok(hex::encode(bytes))
}

/// A bearer token of 256 random bits. The prefix names its kind, which helps secret scanners
/// and people, and carries no secret.
pub fn generate_token(prefix: &str) -> Result<String, CryptoError> {
    let bytes = random_bytes_32()?;
    Ok(format!(
        "{prefix}_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

/// Tokens carry 256 random bits, so a fast hash is enough: there is nothing to brute-force.
pub fn hash_token(token: &str) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut hash = [0u8; 32];
    hash.copy_from_slice(digest.as_ref());
    hash
}

/// A streaming SHA-256 of plaintext, reported to clients as a checksum.
pub struct Sha256Hasher {
    context: ring::digest::Context,
}

impl Default for Sha256Hasher {
    fn default() -> Self {
        Self {
            context: ring::digest::Context::new(&ring::digest::SHA256),
        }
    }
}

impl Sha256Hasher {
    pub fn update(&mut self, bytes: &[u8]) {
        self.context.update(bytes);
    }

    pub fn finish(self) -> [u8; 32] {
        let mut digest = [0u8; 32];
        digest.copy_from_slice(self.context.finish().as_ref());
        digest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_and_long() {
        let first = generate_token("srt").unwrap();
        let second = generate_token("srt").unwrap();
        assert_ne!(first, second);
        assert_eq!(first.len(), 4 + 43);
        assert_ne!(hash_token(&first), hash_token(&second));
        assert_eq!(random_hex_id().unwrap().len(), 32);
    }
}
