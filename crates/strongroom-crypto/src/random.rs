use crate::CryptoError;
use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};

/// Bytes of the operating system's randomness fetched at a time for nonces.
const NONCE_POOL_LENGTH: usize = 4096;

/// A thread's unread share of one fetch of the operating system's randomness.
struct NoncePool {
    bytes: [u8; NONCE_POOL_LENGTH],
    used: usize,
}

thread_local! {
    static NONCE_POOL: std::cell::RefCell<NoncePool> = const {
        std::cell::RefCell::new(NoncePool { bytes: [0; NONCE_POOL_LENGTH], used: NONCE_POOL_LENGTH })
    };
}

/// Fills `nonce` with random bytes no other call is handed. Nonces are public and need only
/// never repeat under a key, so one `getrandom` call serves hundreds of them: a system call
/// per sealed value was a tenth of the audit writer's time. Each byte is handed out once and
/// the pool is per thread, so no two callers share bytes; the process never forks without
/// exec, which would copy a pool.
pub(crate) fn fill_nonce(nonce: &mut [u8]) -> Result<(), CryptoError> {
    NONCE_POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        if nonce.len() > NONCE_POOL_LENGTH {
            return SystemRandom::new()
                .fill(nonce)
                .map_err(|_| CryptoError::Random);
        }
        if pool.used + nonce.len() > NONCE_POOL_LENGTH {
            SystemRandom::new()
                .fill(&mut pool.bytes)
                .map_err(|_| CryptoError::Random)?;
            pool.used = 0;
        }
        let start = pool.used;
        nonce.copy_from_slice(&pool.bytes[start..start + nonce.len()]);
        // Handed out bytes are wiped, so the pool holds only what is still to come.
        pool.bytes[start..start + nonce.len()].fill(0);
        pool.used += nonce.len();
        Ok(())
    })
}

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
    fn nonces_never_repeat_across_refills_and_threads() {
        let draw = || {
            (0..1000)
                .map(|_| {
                    let mut nonce = [0u8; 12];
                    fill_nonce(&mut nonce).unwrap();
                    nonce
                })
                .collect::<Vec<_>>()
        };
        // 1000 nonces of 12 bytes span three refills of the 4 KiB pool.
        let mut all = draw();
        all.extend(std::thread::spawn(draw).join().unwrap());
        let distinct: std::collections::HashSet<_> = all.iter().collect();
        assert_eq!(distinct.len(), 2000);
        assert!(all.iter().all(|nonce| nonce != &[0u8; 12]));
        let mut long = [0u8; NONCE_POOL_LENGTH + 1];
        fill_nonce(&mut long).unwrap();
        assert!(long.iter().any(|byte| *byte != 0));
    }

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
