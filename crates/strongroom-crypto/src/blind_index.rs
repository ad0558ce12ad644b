use crate::DataKey;
use ring::hmac;

/// Keyed hashes for equality lookups over encrypted values. Equal inputs in one tenant give
/// equal tokens; without the tenant's key nothing can be learned or linked across tenants.
#[derive(Clone)]
pub struct BlindIndexKey {
    key: hmac::Key,
}

impl std::fmt::Debug for BlindIndexKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("BlindIndexKey(redacted)")
    }
}

/// Length of a blind-index token in bytes. Do not change: stored indexes would stop matching.
pub const TOKEN_LENGTH: usize = 16;

impl BlindIndexKey {
    pub fn new(key: &DataKey) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, key.bytes()),
        }
    }

    /// A token for `parts` under a domain label. Parts are length-prefixed so that
    /// ("ab","c") and ("a","bc") never collide.
    pub fn token(&self, domain: &str, parts: &[&[u8]]) -> Vec<u8> {
        let mut context = hmac::Context::with_key(&self.key);
        context.update(&(domain.len() as u64).to_be_bytes());
        context.update(domain.as_bytes());
        for part in parts {
            context.update(&(part.len() as u64).to_be_bytes());
            context.update(part);
        }
        context.sign().as_ref()[..TOKEN_LENGTH].to_vec()
    }
}

impl BlindIndexKey {
    /// A 256-bit keyed id for content, from the content's SHA-256 digest: equal content in
    /// one tenant gets the same id, and ids of two tenants cannot be linked.
    pub fn content_id(&self, domain: &str, digest: &[u8; 32]) -> String {
        let mut context = hmac::Context::with_key(&self.key);
        context.update(&(domain.len() as u64).to_be_bytes());
        context.update(domain.as_bytes());
        context.update(digest);
        hex::encode(context.sign().as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_depend_on_key_domain_and_boundaries() {
        let key = BlindIndexKey::new(&DataKey::generate().unwrap());
        let other = BlindIndexKey::new(&DataKey::generate().unwrap());
        let token = key.token("field", &[b"ab", b"c"]);
        assert_eq!(token, key.token("field", &[b"ab", b"c"]));
        assert_ne!(token, key.token("field", &[b"a", b"bc"]));
        assert_ne!(token, key.token("name", &[b"ab", b"c"]));
        assert_ne!(token, other.token("field", &[b"ab", b"c"]));
        assert_eq!(token.len(), TOKEN_LENGTH);
    }
}
