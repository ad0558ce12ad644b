//! Sealed format (do not change; add a new version instead):
//! `[format: u8 = 1][key_version: u32 big-endian][nonce: 12 bytes][ciphertext + 16-byte tag]`.
//! The header is part of the associated data, so a changed key version or format fails the tag.

use crate::{CryptoError, DataKey};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use std::collections::BTreeMap;

pub const SEALED_FORMAT_VERSION: u8 = 1;
const HEADER_LENGTH: usize = 1 + 4 + NONCE_LEN;
const TAG_LENGTH: usize = 16;

/// All versions of one tenant's data key. New data is sealed with the newest version; any
/// version still held opens old data.
#[derive(Clone, Debug)]
pub struct Keyring {
    keys: BTreeMap<u32, DataKey>,
}

impl Keyring {
    /// Builds a keyring; `None` when no key is given.
    pub fn new(keys: impl IntoIterator<Item = (u32, DataKey)>) -> Option<Self> {
        let keys: BTreeMap<u32, DataKey> = keys.into_iter().collect();
        (!keys.is_empty()).then_some(Self { keys })
    }

    pub fn current_version(&self) -> u32 {
        *self
            .keys
            .keys()
            .next_back()
            .expect("a keyring holds at least one key by construction")
    }

    pub(crate) fn key(&self, version: u32) -> Option<&DataKey> {
        self.keys.get(&version)
    }

    pub fn seal(&self, associated_data: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let version = self.current_version();
        seal_with(
            self.keys[&version].bytes(),
            version,
            associated_data,
            plaintext,
        )
    }

    pub fn open(&self, associated_data: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let version = sealed_key_version(sealed)?;
        let key = self
            .keys
            .get(&version)
            .ok_or(CryptoError::UnknownKeyVersion(version))?;
        open_with(key.bytes(), sealed, associated_data)
    }
}

/// Reads the key version from a sealed value's header without opening it.
pub fn sealed_key_version(sealed: &[u8]) -> Result<u32, CryptoError> {
    if sealed.len() < HEADER_LENGTH + TAG_LENGTH {
        return Err(CryptoError::Integrity);
    }
    if sealed[0] != SEALED_FORMAT_VERSION {
        return Err(CryptoError::UnknownFormat(sealed[0]));
    }
    Ok(u32::from_be_bytes([
        sealed[1], sealed[2], sealed[3], sealed[4],
    ]))
}

pub(crate) fn seal_with(
    key: &[u8; 32],
    key_version: u32,
    associated_data: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let mut nonce = [0u8; NONCE_LEN];
    crate::random::fill_nonce(&mut nonce)?;
    let mut sealed = Vec::with_capacity(HEADER_LENGTH + plaintext.len() + TAG_LENGTH);
    sealed.push(SEALED_FORMAT_VERSION);
    sealed.extend_from_slice(&key_version.to_be_bytes());
    sealed.extend_from_slice(&nonce);
    let aad = full_associated_data(&sealed[..HEADER_LENGTH], associated_data);
    // Sealed in place after the header: one copy of the plaintext, not two.
    sealed.extend_from_slice(plaintext);
    let tag = aead_key(key)
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut sealed[HEADER_LENGTH..],
        )
        .map_err(|_| CryptoError::Integrity)?;
    sealed.extend_from_slice(tag.as_ref());
    Ok(sealed)
}

pub(crate) fn open_with(
    key: &[u8; 32],
    sealed: &[u8],
    associated_data: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    sealed_key_version(sealed)?;
    let (header, body) = sealed.split_at(HEADER_LENGTH);
    let nonce: [u8; NONCE_LEN] = header[5..].try_into().map_err(|_| CryptoError::Integrity)?;
    let aad = full_associated_data(header, associated_data);
    let mut buffer = body.to_vec();
    let plaintext_length = aead_key(key)
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut buffer,
        )
        .map_err(|_| CryptoError::Integrity)?
        .len();
    buffer.truncate(plaintext_length);
    Ok(buffer)
}

fn full_associated_data(header: &[u8], associated_data: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(header.len() + associated_data.len());
    aad.extend_from_slice(header);
    aad.extend_from_slice(associated_data);
    aad
}

pub(crate) fn aead_key(key: &[u8; 32]) -> LessSafeKey {
    LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, key).expect("AES-256-GCM accepts every 32-byte key"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyring(versions: &[u32]) -> Keyring {
        Keyring::new(versions.iter().map(|v| (*v, DataKey::generate().unwrap()))).unwrap()
    }

    /// The stored layout, `[format][key version, big-endian][nonce][ciphertext][tag]` with the
    /// header ahead of the caller's associated data, checked by opening with ring directly.
    #[test]
    fn sealed_values_keep_the_stored_layout() {
        let key = [7u8; 32];
        let sealed = seal_with(&key, 3, b"record:1", b"hello layout").unwrap();
        assert_eq!(sealed.len(), HEADER_LENGTH + 12 + TAG_LENGTH);
        assert_eq!(sealed[0], SEALED_FORMAT_VERSION);
        assert_eq!(&sealed[1..5], &3u32.to_be_bytes());
        let nonce: [u8; NONCE_LEN] = sealed[5..HEADER_LENGTH].try_into().unwrap();
        let mut aad = sealed[..HEADER_LENGTH].to_vec();
        aad.extend_from_slice(b"record:1");
        let mut body = sealed[HEADER_LENGTH..].to_vec();
        let opened = aead_key(&key)
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut body,
            )
            .unwrap();
        assert_eq!(opened, b"hello layout");
    }

    #[test]
    fn seals_and_opens_with_the_newest_version() {
        let ring = keyring(&[1, 2]);
        let sealed = ring.seal(b"record:1", b"hello").unwrap();
        assert_eq!(sealed_key_version(&sealed).unwrap(), 2);
        assert_eq!(ring.open(b"record:1", &sealed).unwrap(), b"hello");
        assert!(!sealed.windows(5).any(|window| window == b"hello"));
    }

    #[test]
    fn every_flipped_bit_and_wrong_context_is_an_integrity_error() {
        let ring = keyring(&[1]);
        let sealed = ring.seal(b"ctx", b"secret body").unwrap();
        assert_eq!(
            ring.open(b"other", &sealed).unwrap_err(),
            CryptoError::Integrity
        );
        for index in 0..sealed.len() {
            let mut altered = sealed.clone();
            altered[index] ^= 0x01;
            assert!(
                ring.open(b"ctx", &altered).is_err(),
                "flip at {index} went unnoticed"
            );
        }
        assert!(ring.open(b"ctx", &sealed[..10]).is_err());
        assert!(ring.open(b"ctx", &[]).is_err());
    }

    #[test]
    fn old_versions_stay_readable_and_missing_ones_are_named() {
        let old = keyring(&[1]);
        let sealed = old.seal(b"x", b"v1 data").unwrap();
        let mut keys: Vec<(u32, DataKey)> = old.keys.clone().into_iter().collect();
        keys.push((2, DataKey::generate().unwrap()));
        let rotated = Keyring::new(keys).unwrap();
        assert_eq!(rotated.open(b"x", &sealed).unwrap(), b"v1 data");
        assert_eq!(
            keyring(&[3]).open(b"x", &sealed).unwrap_err(),
            CryptoError::UnknownKeyVersion(1)
        );
    }
}
