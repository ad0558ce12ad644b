//! Chunked sealing for large content (documents). Each chunk is sealed on its own with
//! AES-256-GCM; its associated data binds the stream's context (tenant and a random stream id),
//! the chunk's index and whether it is the final chunk. So a truncated stream (no final chunk),
//! reordered chunks, or chunks swapped in from another stream all fail to open.
//!
//! Sealed chunk layout (do not change): `[nonce: 12][ciphertext][tag: 16]`.

use crate::aead::aead_key;
use crate::{CryptoError, Keyring};
use ring::aead::{Aad, LessSafeKey, NONCE_LEN, Nonce};

/// Bytes a sealed chunk adds to its plaintext.
pub const CHUNK_OVERHEAD: usize = NONCE_LEN + 16;

/// Seals the chunks of one stream with one key version.
pub struct ChunkSealer {
    key: LessSafeKey,
    key_version: u32,
    context: Vec<u8>,
}

/// Opens the chunks of one stream.
pub struct ChunkOpener {
    key: LessSafeKey,
    context: Vec<u8>,
}

fn chunk_aad(context: &[u8], index: u64, last: bool) -> Vec<u8> {
    let mut aad = Vec::with_capacity(context.len() + 9);
    aad.extend_from_slice(context);
    aad.extend_from_slice(&index.to_be_bytes());
    aad.push(u8::from(last));
    aad
}

impl Keyring {
    /// A sealer for a new stream under the current key version. `context` names the stream
    /// (tenant, random stream id and the stream header) and must be given again to open it.
    pub fn chunk_sealer(&self, context: &[u8]) -> ChunkSealer {
        let key_version = self.current_version();
        ChunkSealer {
            key: aead_key(
                self.key(key_version)
                    .expect("the current version is in the keyring")
                    .bytes(),
            ),
            key_version,
            context: context.to_vec(),
        }
    }

    pub fn chunk_opener(
        &self,
        key_version: u32,
        context: &[u8],
    ) -> Result<ChunkOpener, CryptoError> {
        let key = self
            .key(key_version)
            .ok_or(CryptoError::UnknownKeyVersion(key_version))?;
        Ok(ChunkOpener {
            key: aead_key(key.bytes()),
            context: context.to_vec(),
        })
    }
}

impl ChunkSealer {
    pub fn key_version(&self) -> u32 {
        self.key_version
    }

    /// Seals chunk `index`; `last` marks the stream's final chunk.
    pub fn seal(&self, index: u64, last: bool, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        crate::random::fill_nonce(&mut nonce)?;
        let mut sealed = Vec::with_capacity(plaintext.len() + CHUNK_OVERHEAD);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(plaintext);
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(chunk_aad(&self.context, index, last)),
                &mut sealed[NONCE_LEN..],
            )
            .map_err(|_| CryptoError::Integrity)?;
        sealed.extend_from_slice(tag.as_ref());
        Ok(sealed)
    }
}

impl ChunkOpener {
    /// Opens chunk `index`, which must be the final one exactly when `last` is true.
    pub fn open(&self, index: u64, last: bool, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < CHUNK_OVERHEAD {
            return Err(CryptoError::Integrity);
        }
        let nonce: [u8; NONCE_LEN] = sealed[..NONCE_LEN]
            .try_into()
            .map_err(|_| CryptoError::Integrity)?;
        let mut buffer = sealed[NONCE_LEN..].to_vec();
        let length = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(chunk_aad(&self.context, index, last)),
                &mut buffer,
            )
            .map_err(|_| CryptoError::Integrity)?
            .len();
        buffer.truncate(length);
        Ok(buffer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyring() -> Keyring {
        Keyring::new([(1, crate::DataKey::generate().unwrap())]).unwrap()
    }

    #[test]
    fn truncation_reordering_and_swapping_are_detected() {
        let keys = keyring();
        let sealer = keys.chunk_sealer(b"tenant/stream-a");
        let chunks: Vec<Vec<u8>> = (0..3u64)
            .map(|index| sealer.seal(index, index == 2, &[index as u8; 100]).unwrap())
            .collect();
        let opener = keys.chunk_opener(1, b"tenant/stream-a").unwrap();
        for (index, chunk) in chunks.iter().enumerate() {
            assert_eq!(
                opener.open(index as u64, index == 2, chunk).unwrap(),
                vec![index as u8; 100]
            );
        }
        assert_eq!(
            opener.open(1, true, &chunks[1]).unwrap_err(),
            CryptoError::Integrity,
            "truncated after chunk 1: it is not final"
        );
        assert_eq!(
            opener.open(1, false, &chunks[0]).unwrap_err(),
            CryptoError::Integrity,
            "chunk 0 moved to position 1"
        );
        let other = keys
            .chunk_sealer(b"tenant/stream-b")
            .seal(1, false, &[1; 100])
            .unwrap();
        assert_eq!(
            opener.open(1, false, &other).unwrap_err(),
            CryptoError::Integrity,
            "a chunk from another stream"
        );
        let mut flipped = chunks[0].clone();
        flipped[20] ^= 1;
        assert_eq!(
            opener.open(0, false, &flipped).unwrap_err(),
            CryptoError::Integrity
        );
        assert_eq!(
            opener.open(0, false, &[0; 5]).unwrap_err(),
            CryptoError::Integrity
        );
    }

    #[test]
    fn an_empty_final_chunk_is_valid() {
        let keys = keyring();
        let sealed = keys.chunk_sealer(b"x").seal(0, true, b"").unwrap();
        assert_eq!(sealed.len(), CHUNK_OVERHEAD);
        assert!(
            keys.chunk_opener(1, b"x")
                .unwrap()
                .open(0, true, &sealed)
                .unwrap()
                .is_empty()
        );
    }
}
