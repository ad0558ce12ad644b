//! Collections: a sealed name and schema under a blind-index id, cached once opened.

use crate::journal::{JournalChange, sealer};
use crate::platform::Platform;
use crate::sealing::context;
use crate::tenant_context::TenantContext;
use crate::tenants::{Need, TokenPrincipal};
use crate::{CollectionView, PutOutcome, ServiceError};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use strongroom_domain::{CollectionName, CollectionSchema, Permission, Resource, Scope, Timestamp};
use strongroom_storage::{IndexEntry, PendingWrite, RecordOrder, RecordQuery, StoredCollection};

const REINDEX_BATCH: u32 = 500;

/// A collection's sealed definition. Format version inside; do not change a shipped version.
#[derive(Serialize, Deserialize)]
pub(crate) struct CollectionDefinition {
    pub format: u8,
    pub name: String,
    pub schema: CollectionSchema,
    /// True from a change of indexed fields until every record is re-indexed; equality
    /// filters are refused meanwhile, and an interrupted re-index resumes at the next start.
    #[serde(default)]
    pub index_pending: bool,
}

/// An opened collection.
pub(crate) struct LoadedCollection {
    pub id: Vec<u8>,
    pub name: String,
    pub schema: CollectionSchema,
    pub index_pending: bool,
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
        if let Ok(mut entries) = self.entries.write()
            && self.generation.load(Ordering::SeqCst) == generation_seen
        {
            entries.insert(name.to_owned(), loaded);
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

fn loaded(id: Vec<u8>, definition: CollectionDefinition) -> LoadedCollection {
    LoadedCollection {
        id,
        name: definition.name,
        schema: definition.schema,
        index_pending: definition.index_pending,
    }
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
    Ok(Some((stored, loaded(id, definition))))
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
    definition: CollectionDefinition,
    created_at: i64,
    updated_at: i64,
) -> Result<(StoredCollection, PendingWrite<()>), ServiceError> {
    let id = context.collection_id(&definition.name);
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
    if let Some(cache) = &context.collections {
        cache.invalidate(&definition.name);
    }
    let change = JournalChange::CollectionPut {
        name: definition.name,
        schema: definition.schema,
        index_pending: definition.index_pending,
        created_at,
        updated_at,
    };
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

/// Recomputes every record's blind-index tokens. A damaged record is skipped (and reported),
/// so one bad record cannot leave the whole index stale.
async fn reindex(
    platform: &Platform,
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
            let Ok(view) = platform.observe(
                context,
                crate::records::open_record(context, &collection.name, stored),
            ) else {
                continue;
            };
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

/// Re-indexes a collection marked pending, then clears the mark.
async fn finish_reindex(
    platform: &Platform,
    context: &TenantContext,
    collection: LoadedCollection,
    created_at: i64,
    updated_at: i64,
) -> Result<(), ServiceError> {
    reindex(platform, context, &collection).await?;
    let definition = CollectionDefinition {
        format: 1,
        name: collection.name,
        schema: collection.schema,
        index_pending: false,
    };
    write_collection(context, definition, created_at, updated_at)?
        .1
        .await?;
    Ok(())
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
        let context = self
            .tenant_context(principal, slug, Need::records_write(name.as_str()))
            .await?;
        let existing = load_collection(&context, name.as_str())?;
        let now = self.clock.now().unix_micros();
        // Strictly increasing, so a re-sealing job can never mistake this version for the last.
        let updated_at = existing
            .as_ref()
            .map_or(now, |(stored, _)| now.max(stored.updated_at + 1));
        let created_at = existing
            .as_ref()
            .map_or(now, |(stored, _)| stored.created_at);
        let index_pending = existing.as_ref().is_some_and(|(_, previous)| {
            previous.index_pending || indexed_fields(&previous.schema) != indexed_fields(&schema)
        });
        let definition = CollectionDefinition {
            format: 1,
            name: name.as_str().to_owned(),
            schema: schema.clone(),
            index_pending,
        };
        let (stored, pending) = write_collection(&context, definition, created_at, updated_at)?;
        pending.await?;
        if index_pending {
            let collection = LoadedCollection {
                id: stored.id.clone(),
                name: name.as_str().to_owned(),
                schema: schema.clone(),
                index_pending,
            };
            finish_reindex(self, &context, collection, created_at, updated_at + 1).await?;
        }
        let outcome = if existing.is_some() {
            PutOutcome::Updated
        } else {
            PutOutcome::Created
        };
        let definition = CollectionDefinition {
            format: 1,
            name: name.as_str().to_owned(),
            schema,
            index_pending: false,
        };
        Ok((collection_view(definition, &stored), outcome))
    }

    pub async fn list_collections(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
    ) -> Result<Vec<CollectionView>, ServiceError> {
        let context = self
            .tenant_context(principal, slug, Need::somewhere(Scope::RecordsRead))
            .await?;
        let listed = context
            .store
            .list_collections()?
            .iter()
            .map(|stored| Ok((open_collection(&context, stored)?, stored)))
            .filter(|opened| match opened {
                Ok((definition, _)) => principal.may(
                    Permission::RecordsRead,
                    Resource::Collection(&definition.name),
                ),
                Err(_) => true,
            })
            .map(|opened: Result<_, ServiceError>| {
                opened.map(|(definition, stored)| collection_view(definition, stored))
            })
            .collect();
        self.observe(&context, listed)
    }

    /// Finishes every re-index a crash interrupted; run at start.
    pub(crate) async fn resume_reindexing(&self, slug: &str) -> Result<(), ServiceError> {
        let runtime = self.tenant(slug).await?;
        let context = TenantContext::of(&runtime);
        for stored in context.store.list_collections()? {
            let definition = self.observe(&context, open_collection(&context, &stored))?;
            if definition.index_pending {
                tracing::info!(tenant_id = %context.tenant_id, "resuming an interrupted re-index");
                let collection = loaded(stored.id.clone(), definition);
                finish_reindex(
                    self,
                    &context,
                    collection,
                    stored.created_at,
                    stored.updated_at + 1,
                )
                .await?;
            }
        }
        Ok(())
    }
}
