//! What a service call needs to act on one tenant's data: its id, keys, store and (for the
//! tenant's own store) the cache of opened collection definitions.

use crate::collections::CollectionCache;
use crate::sealing::{TenantKeys, TenantRuntime, index_domain};
use serde_json::Value;
use std::sync::Arc;
use strongroom_domain::{CollectionSchema, IndexedValue};
use strongroom_storage::TenantStore;

#[derive(Clone)]
pub(crate) struct TenantContext {
    pub tenant_id: String,
    pub keys: Arc<TenantKeys>,
    pub store: Arc<dyn TenantStore>,
    pub blobs: Arc<dyn strongroom_storage::BlobStore>,
    pub blob_lock: Arc<tokio::sync::Mutex<()>>,
    /// `None` for a store other than the tenant's own (a replay target).
    pub collections: Option<Arc<CollectionCache>>,
}

impl TenantContext {
    pub fn of(runtime: &TenantRuntime) -> Self {
        Self {
            tenant_id: runtime.id.clone(),
            keys: runtime.keys(),
            store: runtime.store.clone(),
            blobs: runtime.blobs.clone(),
            blob_lock: runtime.blob_lock.clone(),
            collections: Some(runtime.collections.clone()),
        }
    }

    /// The same tenant and keys acting on another store, without the cache.
    pub fn on_store(runtime: &TenantRuntime, store: Arc<dyn TenantStore>) -> Self {
        Self {
            tenant_id: runtime.id.clone(),
            keys: runtime.keys(),
            store,
            blobs: runtime.blobs.clone(),
            blob_lock: runtime.blob_lock.clone(),
            collections: None,
        }
    }

    /// A collection's id: the blind index of its name.
    pub fn collection_id(&self, name: &str) -> Vec<u8> {
        self.keys
            .index_key
            .token(index_domain::COLLECTION_NAME, &[name.as_bytes()])
    }

    pub fn field_token(&self, collection_id: &[u8], value: &IndexedValue) -> Vec<u8> {
        self.keys.index_key.token(
            index_domain::FIELD_VALUE,
            &[
                collection_id,
                value.field.as_bytes(),
                value.canonical.as_bytes(),
            ],
        )
    }

    pub fn index_tokens(
        &self,
        collection_id: &[u8],
        schema: &CollectionSchema,
        body: &Value,
    ) -> Vec<Vec<u8>> {
        schema
            .indexed_values(body)
            .iter()
            .map(|value| self.field_token(collection_id, value))
            .collect()
    }
}

impl crate::Platform {
    /// Authorizes the caller for what the route needs on the tenant and returns the context to act in.
    pub(crate) async fn tenant_context(
        &self,
        principal: &crate::TokenPrincipal,
        slug: &str,
        need: crate::tenants::Need<'_>,
    ) -> Result<TenantContext, crate::ServiceError> {
        let runtime = self.authorize(principal, slug, need).await?;
        Ok(TenantContext::of(&runtime))
    }

    /// Passes a result through, raising a security event when stored data failed its
    /// integrity check.
    pub(crate) fn observe<T>(
        &self,
        context: &TenantContext,
        result: Result<T, crate::ServiceError>,
    ) -> Result<T, crate::ServiceError> {
        if let Err(crate::ServiceError::Integrity { what }) = &result {
            self.security.raise(
                crate::SecurityEventKind::IntegrityFailure,
                Some(&context.tenant_id),
                &format!("{what} failed its integrity check"),
            );
        }
        result
    }
}
