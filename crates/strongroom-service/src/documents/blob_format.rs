//! The sealed blob file. Layout (do not change; add a format instead):
//! header `[b"SRB"][format: u8 = 1][key version: u32 BE][stream id: 16][chunk size: u32 BE]`,
//! then chunks of `chunk size` plaintext bytes (the last shorter, possibly empty), each sealed
//! as `[nonce][ciphertext][tag]` with the header bound into every chunk's associated data.

use crate::ServiceError;
use strongroom_crypto::CHUNK_OVERHEAD;

pub const HEADER_LENGTH: usize = 28;
pub const CHUNK_SIZE: usize = 64 * 1024;
const MAGIC: &[u8; 3] = b"SRB";
const FORMAT: u8 = 1;

pub struct BlobHeader {
    pub key_version: u32,
    pub bytes: [u8; HEADER_LENGTH],
}

impl BlobHeader {
    pub fn new(key_version: u32, stream_id: [u8; 16]) -> Self {
        let mut bytes = [0u8; HEADER_LENGTH];
        bytes[..3].copy_from_slice(MAGIC);
        bytes[3] = FORMAT;
        bytes[4..8].copy_from_slice(&key_version.to_be_bytes());
        bytes[8..24].copy_from_slice(&stream_id);
        bytes[24..28].copy_from_slice(&(CHUNK_SIZE as u32).to_be_bytes());
        Self { key_version, bytes }
    }

    pub fn stream_id_hex(&self) -> String {
        hex::encode(&self.bytes[8..24])
    }

    pub fn parse(bytes: [u8; HEADER_LENGTH], what: &str) -> Result<Self, ServiceError> {
        let chunk_size = u32::from_be_bytes([bytes[24], bytes[25], bytes[26], bytes[27]]);
        if &bytes[..3] != MAGIC || bytes[3] != FORMAT || chunk_size as usize != CHUNK_SIZE {
            return Err(ServiceError::Integrity {
                what: what.to_owned(),
            });
        }
        Ok(Self {
            key_version: u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
            bytes,
        })
    }
}

/// The stream id (hex) in the header of a stored blob.
pub fn stored_stream_id(
    context: &crate::tenant_context::TenantContext,
    blob_id: &str,
) -> Result<String, ServiceError> {
    let blob = context
        .blobs
        .open(blob_id)
        .map_err(|_| ServiceError::Integrity {
            what: format!("blob {blob_id}"),
        })?;
    let mut header = [0u8; HEADER_LENGTH];
    blob.read_exact_at(0, &mut header)
        .map_err(|_| ServiceError::Integrity {
            what: format!("blob {blob_id}"),
        })?;
    let header = BlobHeader::parse(header, &format!("blob {blob_id}"))?;
    Ok(header.stream_id_hex())
}

/// Chunks a plaintext of `size` bytes is sealed in (an empty file is one empty chunk).
pub fn chunk_count(size: u64) -> u64 {
    size.div_ceil(CHUNK_SIZE as u64).max(1)
}

/// The exact length of the sealed file; anything else is truncation or damage.
pub fn sealed_length(size: u64) -> u64 {
    HEADER_LENGTH as u64 + size + chunk_count(size) * CHUNK_OVERHEAD as u64
}

/// Where chunk `index` starts in the file and how many plaintext bytes it holds.
pub fn chunk_position(size: u64, index: u64) -> (u64, usize) {
    let offset = HEADER_LENGTH as u64 + index * (CHUNK_SIZE + CHUNK_OVERHEAD) as u64;
    let plaintext = size
        .saturating_sub(index * CHUNK_SIZE as u64)
        .min(CHUNK_SIZE as u64) as usize;
    (offset, plaintext)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry() {
        assert_eq!(chunk_count(0), 1);
        assert_eq!(chunk_count(CHUNK_SIZE as u64), 1);
        assert_eq!(chunk_count(CHUNK_SIZE as u64 + 1), 2);
        assert_eq!(sealed_length(0), 28 + 28);
        assert_eq!(
            chunk_position(CHUNK_SIZE as u64 + 10, 1),
            (28 + (CHUNK_SIZE + 28) as u64, 10)
        );
        assert!(
            BlobHeader::parse(BlobHeader::new(3, [7; 16]).bytes, "x")
                .is_ok_and(|header| header.key_version == 3)
        );
        assert!(BlobHeader::parse([0; HEADER_LENGTH], "x").is_err());
    }
}
