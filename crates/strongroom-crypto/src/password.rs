//! Password hashing with Argon2id, a random 128-bit salt per password, stored as a PHC string
//! (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`) so the parameters can be raised later and old
//! hashes upgraded at the next successful login.

use crate::CryptoError;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

/// Argon2id cost. The default is OWASP's minimum: 19 MiB, 2 passes, 1 lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordHashing {
    pub memory_kib: u32,
    pub passes: u32,
    pub lanes: u32,
}

impl Default for PasswordHashing {
    fn default() -> Self {
        Self {
            memory_kib: 19 * 1024,
            passes: 2,
            lanes: 1,
        }
    }
}

impl PasswordHashing {
    fn argon2(&self) -> Result<Argon2<'static>, CryptoError> {
        let params = Params::new(self.memory_kib, self.passes, self.lanes, None)
            .map_err(|_| CryptoError::BadParameters)?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }

    /// Hashes a password with a fresh salt; returns the PHC string.
    pub fn hash(&self, password: &str) -> Result<String, CryptoError> {
        let salt: [u8; 16] = crate::random_bytes_32()?[..16]
            .try_into()
            .map_err(|_| CryptoError::Random)?;
        let hash = self
            .argon2()?
            .hash_password_with_salt(password.as_bytes(), &salt)
            .map_err(|_| CryptoError::BadParameters)?;
        Ok(hash.to_string())
    }

    /// Whether `password` matches the PHC string (with the parameters stored in it).
    pub fn verify(&self, password: &str, phc: &str) -> bool {
        Argon2::default()
            .verify_password(password.as_bytes(), phc)
            .is_ok()
    }

    /// True when the stored hash is not Argon2id with at least these parameters.
    pub fn needs_upgrade(&self, phc: &str) -> bool {
        let parts: Vec<&str> = phc.split('$').collect();
        let [_, "argon2id", "v=19", params, _, _] = parts.as_slice() else {
            return true;
        };
        let value = |name: &str| {
            params
                .split(',')
                .find_map(|pair| {
                    pair.strip_prefix(name)?
                        .strip_prefix('=')?
                        .parse::<u32>()
                        .ok()
                })
                .unwrap_or(0)
        };
        value("m") < self.memory_kib || value("t") < self.passes || value("p") < self.lanes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cheap parameters for tests; the defaults are tested once below.
    const FAST: PasswordHashing = PasswordHashing {
        memory_kib: 64,
        passes: 1,
        lanes: 1,
    };

    #[test]
    fn hashes_verify_and_are_salted() {
        let first = FAST.hash("correct horse battery staple").unwrap();
        let second = FAST.hash("correct horse battery staple").unwrap();
        assert_ne!(first, second, "a random salt per password");
        assert!(first.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        assert!(FAST.verify("correct horse battery staple", &first));
        assert!(!FAST.verify("correct horse battery stapl", &first));
        assert!(!FAST.verify("x", "not a phc string"));
        let long = "é".repeat(200);
        let hash = FAST.hash(&long).unwrap();
        assert!(!FAST.verify(&"é".repeat(199), &hash), "no truncation");
    }

    #[test]
    fn weaker_hashes_are_marked_for_upgrade() {
        let weak = FAST.hash("password").unwrap();
        assert!(PasswordHashing::default().needs_upgrade(&weak));
        assert!(!FAST.needs_upgrade(&weak));
        assert!(FAST.needs_upgrade("$2b$12$bcrypt"));
    }

    #[test]
    fn the_default_is_owasp_argon2id() {
        let hash = PasswordHashing::default()
            .hash("a long enough password")
            .unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(PasswordHashing::default().verify("a long enough password", &hash));
    }
}
