use crate::CryptoError;
use crate::aead::{open_with, seal_with};
use zeroize::{Zeroize, ZeroizeOnDrop};

pub const KEY_LENGTH: usize = 32;

/// Raw key bytes that are wiped on drop and never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
struct KeyBytes([u8; KEY_LENGTH]);

impl KeyBytes {
    fn from_slice(bytes: &[u8]) -> Result<Self, CryptoError> {
        let array: [u8; KEY_LENGTH] = bytes
            .try_into()
            .map_err(|_| CryptoError::BadKeyLength(bytes.len()))?;
        Ok(Self(array))
    }
}

/// The key-encryption key. It lives outside the data directory and only ever wraps data keys.
#[derive(Clone)]
pub struct MasterKey {
    bytes: KeyBytes,
}

/// A tenant's data-encryption key (one version of it).
#[derive(Clone)]
pub struct DataKey {
    bytes: KeyBytes,
}

/// What a wrapped key is for; bound into the wrap so one cannot stand in for the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WrappedKeyPurpose {
    Data,
    BlindIndex,
    /// The control plane's own key, which seals operator secrets.
    Control,
}

impl WrappedKeyPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            WrappedKeyPurpose::Data => "data",
            WrappedKeyPurpose::BlindIndex => "index",
            WrappedKeyPurpose::Control => "control",
        }
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "MasterKey(id={}, redacted)", self.key_id())
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("DataKey(redacted)")
    }
}

impl MasterKey {
    pub fn generate() -> Result<Self, CryptoError> {
        Ok(Self {
            bytes: KeyBytes(crate::random_bytes_32()?),
        })
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        Ok(Self {
            bytes: KeyBytes::from_slice(bytes)?,
        })
    }

    /// The raw bytes, for writing the key file. The only way out of this type.
    pub fn expose_bytes(&self) -> &[u8; KEY_LENGTH] {
        &self.bytes.0
    }

    /// A public fingerprint naming this key, so wrapped keys say which master key wraps them.
    pub fn key_id(&self) -> String {
        let mut context = ring::digest::Context::new(&ring::digest::SHA256);
        context.update(b"strongroom master key id v1\0");
        context.update(&self.bytes.0);
        hex::encode(&context.finish().as_ref()[..8])
    }

    /// Seals a data key. The tenant, purpose and version are associated data: a wrapped key
    /// copied to another tenant or version does not open.
    pub fn wrap(
        &self,
        key: &DataKey,
        tenant_id: &str,
        purpose: WrappedKeyPurpose,
        version: u32,
    ) -> Result<Vec<u8>, CryptoError> {
        seal_with(
            &self.bytes.0,
            0,
            &wrap_context(tenant_id, purpose, version),
            &key.bytes.0,
        )
    }

    pub fn unwrap(
        &self,
        wrapped: &[u8],
        tenant_id: &str,
        purpose: WrappedKeyPurpose,
        version: u32,
    ) -> Result<DataKey, CryptoError> {
        let plaintext = zeroize::Zeroizing::new(open_with(
            &self.bytes.0,
            wrapped,
            &wrap_context(tenant_id, purpose, version),
        )?);
        Ok(DataKey {
            bytes: KeyBytes::from_slice(&plaintext)?,
        })
    }
}

fn wrap_context(tenant_id: &str, purpose: WrappedKeyPurpose, version: u32) -> Vec<u8> {
    format!(
        "strongroom/wrap/v1\0{tenant_id}\0{}\0{version}",
        purpose.as_str()
    )
    .into_bytes()
}

impl DataKey {
    pub fn generate() -> Result<Self, CryptoError> {
        Ok(Self {
            bytes: KeyBytes(crate::random_bytes_32()?),
        })
    }

    pub(crate) fn bytes(&self) -> &[u8; KEY_LENGTH] {
        &self.bytes.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapped_keys_open_only_in_their_context() {
        let master = MasterKey::generate().unwrap();
        let key = DataKey::generate().unwrap();
        let wrapped = master.wrap(&key, "t1", WrappedKeyPurpose::Data, 1).unwrap();
        let opened = master
            .unwrap(&wrapped, "t1", WrappedKeyPurpose::Data, 1)
            .unwrap();
        assert_eq!(opened.bytes(), key.bytes());
        assert_eq!(
            master
                .unwrap(&wrapped, "t2", WrappedKeyPurpose::Data, 1)
                .unwrap_err(),
            CryptoError::Integrity
        );
        assert_eq!(
            master
                .unwrap(&wrapped, "t1", WrappedKeyPurpose::BlindIndex, 1)
                .unwrap_err(),
            CryptoError::Integrity
        );
        assert_eq!(
            master
                .unwrap(&wrapped, "t1", WrappedKeyPurpose::Data, 2)
                .unwrap_err(),
            CryptoError::Integrity
        );
        let other = MasterKey::generate().unwrap();
        assert_eq!(
            other
                .unwrap(&wrapped, "t1", WrappedKeyPurpose::Data, 1)
                .unwrap_err(),
            CryptoError::Integrity
        );
        assert_ne!(master.key_id(), other.key_id());
    }

    #[test]
    fn debug_never_shows_key_bytes() {
        let master = MasterKey::from_bytes(&[0xAB; 32]).unwrap();
        let text = format!("{master:?} {:?}", DataKey::generate().unwrap());
        assert!(!text.to_lowercase().contains("abab"));
        assert!(text.contains("redacted"));
    }
}
