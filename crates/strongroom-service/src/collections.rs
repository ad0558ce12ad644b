//! Collections: a sealed name and schema under a blind-index id, cached once opened.

use crate::journal::{JournalChange, sealer};
use crate::platform::Platform;
use crate::sealing::context;
use crate::tenant_context::TenantContext;
use crate::tenants::TokenPrincipal;
use crate::{CollectionView, PutOutcome, ServiceError};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use strongroom_domain::{CollectionName, CollectionSchema, Scope, Timestamp};
use strongroom_storage::{IndexEntry, PendingWrite, RecordOrder, RecordQuery, StoredCollection};

const REINDEX_BATCH: u32 = 500;

/// A collection's sealed definition. Format version inside; do not change a shipped version.
#[derive(Serialize, Deserialize)]
pub(crate) struct CollectionDefinition {
    pub format: u8,
    pub name: String,
    pub schema: CollectionSchema,
}

/// An opened collection.
pub(crate) struct LoadedCollection {
    pub id: Vec<u8>,
    pub name: String,
    pub schema: CollectionSchema,
}

/// Opened collection definitions of one tenant. A generation counter keeps a reader that
/// loaded a definition before a concurrent change from caching the old one.
#[derive(Default)]
pub(crate) struct CollectionCache {
    generation: AtomicU64,
    entries: RwLock<HashMap<String, Arc<LoadedCollection>>>,
}

impl CollectionCache {
    fn get(&self, name: &str) -> Option<Arc<LoadedCollection>> {
        self.entries.read().ok()?.get(name).cloned()
    }

    fn insert_if_unchanged(&self, name: &str, loaded: Arc<LoadedCollection>, generation_seen: u64) {
        if let Ok(mut entries) = self.entries.write() {
            if self.generation.load(Ordering::SeqCst) == generation_seen {
                entries.insert(name.to_owned(), loaded);
            }
        }
    }

    fn invalidate(&self, name: &str) {
        if let Ok(mut entries) = self.entries.write() {
            self.generation.fetch_add(1, Ordering::SeqCst);
            entries.remove(name);
        }
    }
}

pub(crate) fn open_collection(
    context: &TenantContext,
    stored: &StoredCollection,
) -> Result<CollectionDefinition, ServiceError> {
    let integrity = || ServiceError::Integrity {
        what: "a collection definition".into(),
    };
    let plaintext = context
        .keys
        .keyring
        .open(
            &context::collection(&context.tenant_id, &stored.id),
            &stored.sealed,
        )
        .map_err(|_| integrity())?;
    serde_json::from_slice(&plaintext).map_err(|_| integrity())
}

fn load_collection(
    context: &TenantContext,
    name: &str,
) -> Result<Option<(StoredCollection, LoadedCollection)>, ServiceError> {
    let id = context.collection_id(name);
    let Some(stored) = context.store.collection(&id)? else {
        return Ok(None);
    };
    let definition = open_collection(context, &stored)?;
    Ok(Some((
        stored,
        LoadedCollection {
            id,
            name: definition.name,
            schema: definition.schema,
        },
    )))
}

/// The opened collection `name`, from the cache when possible; not found is an error.
pub(crate) fn require_collection(
    context: &TenantContext,
    name: &str,
) -> Result<Arc<LoadedCollection>, ServiceError> {
    if let Some(cached) = context
        .collections
        .as_ref()
        .and_then(|cache| cache.get(name))
    {
        return Ok(cached);
    }
    let generation_seen = context
        .collections
        .as_ref()
        .map(|cache| cache.generation.load(Ordering::SeqCst));
    let (_, loaded) =
        load_collection(context, name)?.ok_or(ServiceError::NotFound("collection"))?;
    let loaded = Arc::new(loaded);
    if let (Some(cache), Some(generation)) = (&context.collections, generation_seen) {
        cache.insert_if_unchanged(name, loaded.clone(), generation);
    }
    Ok(loaded)
}

/// Writes a collection definition and its journal entry. Shared by the API path and replay.
pub(crate) fn write_collection(
    context: &TenantContext,
    name: &str,
    schema: CollectionSchema,
    created_at: i64,
    updated_at: i64,
) -> Result<(StoredCollection, PendingWrite<()>), ServiceError> {
    let id = context.collection_id(name);
    let definition = CollectionDefinition {
        format: 1,
        name: name.to_owned(),
        schema: schema.clone(),
    };
    let plaintext = serde_json::to_vec(&definition)
        .map_err(|error| ServiceError::Internal(error.to_string()))?;
    let stored = StoredCollection {
        sealed: context
            .keys
            .keyring
            .seal(&context::collection(&context.tenant_id, &id), &plaintext)?,
        key_version: context.keys.keyring.current_version(),
        id,
        created_at,
        updated_at,
    };
    let change = JournalChange::CollectionPut {
        name: name.to_owned(),
        schema,
        created_at,
        updated_at,
    };
    if let Some(cache) = &context.collections {
        cache.invalidate(name);
    }
    let pending = context.store.put_collection(
        stored.clone(),
        sealer(&context.tenant_id, &context.keys, change),
    );
    Ok((stored, pending))
}

fn indexed_fields(schema: &CollectionSchema) -> Vec<(String, strongroom_domain::FieldType)> {
    schema
        .fields
        .iter()
        .filter(|(_, spec)| spec.indexed)
        .map(|(field, spec)| (field.clone(), spec.field_type))
        .collect()
}

/// After a change of indexed fields, recomputes every record's blind-index tokens.
async fn reindex(
    context: &TenantContext,
    collection: &LoadedCollection,
) -> Result<u64, ServiceError> {
    let mut query = RecordQuery {
        collection_id: collection.id.clone(),
        order: RecordOrder::Created,
        after: None,
        updated_after: None,
        index_tokens: vec![],
        limit: REINDEX_BATCH,
    };
    let mut reindexed = 0;
    loop {
        let page = context.store.list_records(&query)?;
        let Some(last) = page.last() else {
            return Ok(reindexed);
        };
        query.after = Some((last.created_at, last.id.clone()));
        let mut entries = Vec::with_capacity(page.len());
        for stored in &page {
            let view = crate::records::open_record(context, &collection.name, stored)?;
            entries.push(IndexEntry {
                record_id: view.id,
                version: view.version,
                tokens: context.index_tokens(&collection.id, &collection.schema, &view.body),
            });
        }
        reindexed += context
            .store
            .replace_index_tokens(&collection.id, entries)
            .await?;
    }
}

fn collection_view(definition: CollectionDefinition, stored: &StoredCollection) -> CollectionView {
    CollectionView {
        name: definition.name,
        schema: definition.schema,
        created_at: Timestamp::from_unix_micros(stored.created_at),
        updated_at: Timestamp::from_unix_micros(stored.updated_at),
    }
}

impl Platform {
    pub async fn put_collection(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
        name: &str,
        schema: CollectionSchema,
    ) -> Result<(CollectionView, PutOutcome), ServiceError> {
        let name = CollectionName::parse(name)?;
        schema.validate()?;
        let now = self.clock.now().unix_micros();
        let context = self
            .tenant_context(principal, slug, Scope::RecordsWrite)
            .await?;
        let existing = load_collection(&context, name.as_str())?;
        let created_at = existing
            .as_ref()
            .map_or(now, |(stored, _)| stored.created_at);
        let (stored, pending) =
            write_collection(&context, name.as_str(), schema.clone(), created_at, now)?;
        pending.await?;
        let loaded = LoadedCollection {
            id: stored.id.clone(),
            name: name.as_str().to_owned(),
            schema: schema.clone(),
        };
        if let Some((_, previous)) = &existing {
            if indexed_fields(&previous.schema) != indexed_fields(&schema) {
                self.observe(&context, reindex(&context, &loaded).await)?;
            }
        }
        if let Some(cache) = &context.collections {
            cache.invalidate(name.as_str());
        }
        let outcome = if existing.is_some() {
            PutOutcome::Updated
        } else {
            PutOutcome::Created
        };
        let definition = CollectionDefinition {
            format: 1,
            name: loaded.name,
            schema,
        };
        Ok((collection_view(definition, &stored), outcome))
    }

    pub async fn list_collections(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
    ) -> Result<Vec<CollectionView>, ServiceError> {
        let context = self
            .tenant_context(principal, slug, Scope::RecordsRead)
            .await?;
        let listed = context
            .store
            .list_collections()?
            .iter()
            .map(|stored| Ok(collection_view(open_collection(&context, stored)?, stored)))
            .collect();
        self.observe(&context, listed)
    }
}
