//! Signed-in callers, cached briefly so a session read costs about what an API-token read
//! does. Any change that can affect a session (sign-out, password, roles, disabling,
//! removal, second factor, policy) empties the cache at once, so no change waits for expiry.

use crate::tenants::TokenPrincipal;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// How long a cached caller is trusted before the store is asked again (and the session's
/// last-seen time refreshed).
const CACHE_MICROS: i64 = 15 * 1_000_000;
const ENTRIES_MAX: usize = 50_000;

#[derive(Default)]
pub(crate) struct SessionCache {
    generation: AtomicU64,
    entries: RwLock<HashMap<[u8; 32], CachedCaller>>,
}

/// Every entry is of the current generation: `insert` refuses a caller loaded before the
/// cache was emptied, and emptying it bumps the generation under the same lock.
struct CachedCaller {
    principal: Arc<TokenPrincipal>,
    cached_at: i64,
}

impl SessionCache {
    pub fn get(&self, key: &[u8; 32], now: i64) -> Option<Arc<TokenPrincipal>> {
        let entries = self.entries.read().ok()?;
        let cached = entries.get(key)?;
        (0..CACHE_MICROS)
            .contains(&(now - cached.cached_at))
            .then(|| cached.principal.clone())
    }

    /// The generation to pass to `insert`: read it before loading what will be cached.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Caches a caller loaded at `generation`; if the cache was emptied since, the caller may
    /// be stale and is not kept.
    pub fn insert(&self, key: [u8; 32], principal: Arc<TokenPrincipal>, now: i64, generation: u64) {
        if let Ok(mut entries) = self.entries.write() {
            if self.generation.load(Ordering::SeqCst) != generation {
                return;
            }
            if entries.len() >= ENTRIES_MAX {
                entries.clear();
            }
            entries.insert(
                key,
                CachedCaller {
                    principal,
                    cached_at: now,
                },
            );
        }
    }

    /// Forgets every cached caller.
    pub fn invalidate(&self) {
        if let Ok(mut entries) = self.entries.write() {
            self.generation.fetch_add(1, Ordering::SeqCst);
            entries.clear();
        }
    }
}

impl crate::Platform {
    /// Ends sessions and empties the cache of signed-in callers, so an ended session stops
    /// working at once. Every service path that ends sessions goes through here.
    pub(crate) async fn end_sessions(
        &self,
        context: &crate::tenant_context::TenantContext,
        user_id: &str,
        selection: strongroom_storage::SessionSelection,
    ) -> Result<u64, crate::ServiceError> {
        let ended = context.store.end_sessions(user_id, selection).await?;
        self.sessions.invalidate();
        Ok(ended)
    }
}
