use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CryptoError {
    /// The ciphertext, its header or its associated data was altered, or the wrong key was used.
    #[error("integrity check failed: the sealed data was altered or does not belong here")]
    Integrity,
    #[error("sealed data uses format version {0}, which this build cannot read")]
    UnknownFormat(u8),
    #[error("sealed data names key version {0}, which this tenant's keyring does not hold")]
    UnknownKeyVersion(u32),
    #[error("a key must be exactly 32 bytes, got {0}")]
    BadKeyLength(usize),
    #[error("invalid password-hashing parameters")]
    BadParameters,
    #[error("the system random number generator failed")]
    Random,
}
