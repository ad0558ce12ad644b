//! A tenant at run time: its store, its keys, and the associated-data layout that binds every
//! sealed value to where it belongs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use strongroom_crypto::{BlindIndexKey, Keyring};
use strongroom_storage::TenantStore;

/// The keys of one tenant, swapped as a whole on rotation.
pub(crate) struct TenantKeys {
    pub keyring: Keyring,
    pub index_key: BlindIndexKey,
}

pub(crate) struct TenantRuntime {
    pub id: String,
    pub slug: String,
    pub store: Arc<dyn TenantStore>,
    pub blobs: Arc<dyn strongroom_storage::BlobStore>,
    /// Held from an upload's blob rename until its metadata commits, and while a purge removes
    /// blobs, so a purge never deletes a blob a commit is about to reference.
    pub blob_lock: Arc<tokio::sync::Mutex<()>>,
    pub collections: Arc<crate::collections::CollectionCache>,
    /// Serializes changes to the tenant's roles, groups, grants and firewall.
    pub access_lock: tokio::sync::Mutex<()>,
    /// The firewall rules, once read.
    firewall: RwLock<Option<Arc<strongroom_domain::firewall::FirewallRules>>>,
    keys: RwLock<Arc<TenantKeys>>,
    suspended: AtomicBool,
}

impl TenantRuntime {
    pub fn new(
        id: String,
        slug: String,
        stores: crate::platform::TenantStores,
        keys: TenantKeys,
        suspended: bool,
    ) -> Self {
        Self {
            id,
            slug,
            store: stores.store,
            blobs: stores.blobs,
            blob_lock: Arc::default(),
            collections: Arc::default(),
            access_lock: tokio::sync::Mutex::default(),
            firewall: RwLock::new(None),
            keys: RwLock::new(Arc::new(keys)),
            suspended: AtomicBool::new(suspended),
        }
    }

    pub fn cached_firewall(&self) -> Option<Arc<strongroom_domain::firewall::FirewallRules>> {
        self.firewall
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Caches rules a request read, unless a change cached newer ones meanwhile (a change
    /// stores, then caches: rules read before it must not overwrite its own).
    pub fn cache_firewall_if_empty(
        &self,
        rules: Arc<strongroom_domain::firewall::FirewallRules>,
    ) -> Arc<strongroom_domain::firewall::FirewallRules> {
        self.firewall
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get_or_insert(rules)
            .clone()
    }

    pub fn cache_firewall(&self, rules: Arc<strongroom_domain::firewall::FirewallRules>) {
        *self
            .firewall
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(rules);
    }

    pub fn keys(&self) -> Arc<TenantKeys> {
        self.keys
            .read()
            .map(|keys| keys.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    pub fn replace_keys(&self, keys: TenantKeys) {
        let mut slot = self
            .keys
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *slot = Arc::new(keys);
    }

    pub fn is_suspended(&self) -> bool {
        self.suspended.load(Ordering::SeqCst)
    }

    pub fn set_suspended(&self, suspended: bool) {
        self.suspended.store(suspended, Ordering::SeqCst);
    }
}

/// Associated data layouts. Do not change: stored values would stop opening.
pub(crate) mod context {
    pub fn collection(tenant_id: &str, collection_id: &[u8]) -> Vec<u8> {
        format!(
            "strongroom/collection/v1\0{tenant_id}\0{}",
            hex::encode(collection_id)
        )
        .into_bytes()
    }

    pub fn document_path(tenant_id: &str, document_id: &str) -> Vec<u8> {
        format!("strongroom/document-path/v1\0{tenant_id}\0{document_id}").into_bytes()
    }

    pub fn document_version(tenant_id: &str, document_id: &str, version: u64) -> Vec<u8> {
        format!("strongroom/document-version/v1\0{tenant_id}\0{document_id}\0{version}")
            .into_bytes()
    }

    /// The chunk context of a blob: the tenant and the blob's header (stream id included).
    pub fn blob(tenant_id: &str, header: &[u8]) -> Vec<u8> {
        let mut context = format!("strongroom/blob/v1\0{tenant_id}\0").into_bytes();
        context.extend_from_slice(header);
        context
    }

    pub fn record(tenant_id: &str, collection_id: &[u8], record_id: &str, version: u64) -> Vec<u8> {
        format!(
            "strongroom/record/v1\0{tenant_id}\0{}\0{record_id}\0{version}",
            hex::encode(collection_id)
        )
        .into_bytes()
    }

    pub fn journal(tenant_id: &str, sequence: u64) -> Vec<u8> {
        format!("strongroom/journal/v1\0{tenant_id}\0{sequence}").into_bytes()
    }
}

/// Blind-index domains. Do not change: stored indexes would stop matching.
pub(crate) mod index_domain {
    pub const COLLECTION_NAME: &str = "collection-name/v1";
    pub const FIELD_VALUE: &str = "field-value/v1";
    pub const DOCUMENT_PATH: &str = "document-path/v1";
    pub const DOCUMENT_PREFIX: &str = "document-prefix/v1";
    pub const BLOB_CONTENT: &str = "blob-content/v1";
    pub const SSO_SUBJECT: &str = "sso-subject/v1";
}
