//! Collections and records: validated, sealed with the tenant key, indexed through blind
//! indexes, written together with their journal entry.

use crate::journal::{JournalChange, sealer};
use crate::platform::{Platform, blocking};
use crate::sealing::{TenantKeys, TenantRuntime, context, index_domain};
use crate::security::SecurityEventKind;
use crate::tenants::TokenPrincipal;
use crate::{CollectionView, ListedRecord, PutOutcome, RecordPage, RecordView, ServiceError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use strongroom_domain::{
    CollectionName, CollectionSchema, Cursor, ListOrder, ListQuery, Scope, Timestamp,
    apply_merge_patch,
};
use strongroom_storage::{
    IndexEntry, RecordOrder, RecordQuery, StorageError, StoredCollection, StoredRecord, TenantStore,
};

/// How many times a PATCH without If-Match retries when a concurrent write wins the race.
const PATCH_RETRIES_MAX: usize = 5;
const REINDEX_BATCH: u32 = 500;

/// A tenant's keys and the store to act on (its own, or a replay target).
pub(crate) struct TenantContext {
    pub tenant_id: String,
    pub keys: Arc<TenantKeys>,
    pub store: Arc<dyn TenantStore>,
}

impl TenantContext {
    fn of(runtime: &TenantRuntime) -> Self {
        Self {
            tenant_id: runtime.id.clone(),
            keys: runtime.keys(),
            store: runtime.store.clone(),
        }
    }

    fn collection_id(&self, name: &str) -> Vec<u8> {
        self.keys
            .index_key
            .token(index_domain::COLLECTION_NAME, &[name.as_bytes()])
    }

    fn index_tokens(
        &self,
        collection_id: &[u8],
        schema: &CollectionSchema,
        body: &Value,
    ) -> Vec<Vec<u8>> {
        schema
            .indexed_values(body)
            .iter()
            .map(|value| {
                self.keys.index_key.token(
                    index_domain::FIELD_VALUE,
                    &[
                        collection_id,
                        value.field.as_bytes(),
                        value.canonical.as_bytes(),
                    ],
                )
            })
            .collect()
    }
}

/// A collection's sealed definition. Format version inside; do not change a shipped version.
#[derive(Serialize, Deserialize)]
struct CollectionDefinition {
    format: u8,
    name: String,
    schema: CollectionSchema,
}

pub(crate) struct LoadedCollection {
    id: Vec<u8>,
    name: String,
    schema: CollectionSchema,
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

fn open_collection(
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

pub(crate) fn require_collection(
    context: &TenantContext,
    name: &str,
) -> Result<LoadedCollection, ServiceError> {
    load_collection(context, name)?
        .map(|(_, loaded)| loaded)
        .ok_or(ServiceError::NotFound("collection"))
}

/// Writes a collection definition and its journal entry. Shared by the API path and replay.
pub(crate) fn write_collection(
    context: &TenantContext,
    name: &str,
    schema: CollectionSchema,
    created_at: i64,
    updated_at: i64,
) -> Result<StoredCollection, ServiceError> {
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
    context.store.put_collection(
        stored.clone(),
        sealer(&context.tenant_id, &context.keys, change),
    )?;
    Ok(stored)
}

fn seal_record(
    context: &TenantContext,
    collection_id: &[u8],
    id: &str,
    version: u64,
    created_at: i64,
    updated_at: i64,
    body: &Value,
) -> Result<StoredRecord, ServiceError> {
    let plaintext =
        serde_json::to_vec(body).map_err(|error| ServiceError::Internal(error.to_string()))?;
    Ok(StoredRecord {
        collection_id: collection_id.to_vec(),
        id: id.to_owned(),
        version,
        created_at,
        updated_at,
        key_version: context.keys.keyring.current_version(),
        sealed_body: context.keys.keyring.seal(
            &context::record(&context.tenant_id, collection_id, id, version),
            &plaintext,
        )?,
    })
}

/// Writes a record at `version` (1 inserts, later versions replace `version - 1`) with its
/// journal entry. Shared by the API path and replay.
pub(crate) fn write_record_put(
    context: &TenantContext,
    loaded: &LoadedCollection,
    id: &str,
    version: u64,
    created_at: i64,
    updated_at: i64,
    body: Value,
) -> Result<(), ServiceError> {
    let collection = &loaded.name;
    let stored = seal_record(
        context, &loaded.id, id, version, created_at, updated_at, &body,
    )?;
    let tokens = context.index_tokens(&loaded.id, &loaded.schema, &body);
    let change = JournalChange::RecordPut {
        collection: collection.to_owned(),
        id: id.to_owned(),
        version,
        created_at,
        updated_at,
        body,
    };
    let journal = sealer(&context.tenant_id, &context.keys, change);
    if version == 1 {
        context.store.insert_record(stored, tokens, journal)?;
    } else {
        context
            .store
            .replace_record(stored, version - 1, tokens, journal)
            .map_err(version_conflict)?;
    }
    Ok(())
}

pub(crate) fn write_record_delete(
    context: &TenantContext,
    loaded: &LoadedCollection,
    id: &str,
    version: u64,
    deleted_at: i64,
) -> Result<(), ServiceError> {
    let collection = &loaded.name;
    let change = JournalChange::RecordDelete {
        collection: collection.to_owned(),
        id: id.to_owned(),
        version,
        deleted_at,
    };
    context
        .store
        .delete_record(
            &loaded.id,
            id,
            version,
            sealer(&context.tenant_id, &context.keys, change),
        )
        .map_err(version_conflict)?;
    Ok(())
}

fn version_conflict(error: StorageError) -> ServiceError {
    match error {
        StorageError::NotFound => ServiceError::NotFound("record"),
        StorageError::Conflict(reason) => {
            ServiceError::Conflict(format!("{reason}; read it again and retry"))
        }
        other => other.into(),
    }
}

fn open_record(
    context: &TenantContext,
    collection: &str,
    stored: &StoredRecord,
) -> Result<RecordView, ServiceError> {
    let record_context = context::record(
        &context.tenant_id,
        &stored.collection_id,
        &stored.id,
        stored.version,
    );
    let body = context
        .keys
        .keyring
        .open(&record_context, &stored.sealed_body)
        .ok()
        .and_then(|plaintext| serde_json::from_slice(&plaintext).ok())
        .ok_or_else(|| ServiceError::Integrity {
            what: format!("record {}", stored.id),
        })?;
    Ok(RecordView {
        collection: collection.to_owned(),
        id: stored.id.clone(),
        version: stored.version,
        created_at: Timestamp::from_unix_micros(stored.created_at),
        updated_at: Timestamp::from_unix_micros(stored.updated_at),
        body,
    })
}

fn read_record(
    context: &TenantContext,
    collection: &LoadedCollection,
    id: &str,
) -> Result<RecordView, ServiceError> {
    if !is_record_id(id) {
        return Err(ServiceError::NotFound("record"));
    }
    let stored = context
        .store
        .record(&collection.id, id)?
        .ok_or(ServiceError::NotFound("record"))?;
    open_record(context, &collection.name, &stored)
}

/// Record ids are ours (random hex), so anything else cannot exist.
fn is_record_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn check_if_match(current_version: u64, if_match: Option<u64>) -> Result<(), ServiceError> {
    match if_match {
        Some(expected) if expected != current_version => {
            Err(ServiceError::PreconditionFailed { current_version })
        }
        _ => Ok(()),
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

/// After a schema change, recomputes every record's blind-index tokens.
fn reindex(
    context: &TenantContext,
    collection_name: &str,
    collection_id: &[u8],
    schema: &CollectionSchema,
) -> Result<u64, ServiceError> {
    let mut query = RecordQuery {
        collection_id: collection_id.to_vec(),
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
            let view = open_record(context, collection_name, stored)?;
            entries.push(IndexEntry {
                record_id: view.id,
                version: view.version,
                tokens: context.index_tokens(collection_id, schema, &view.body),
            });
        }
        reindexed += context.store.replace_index_tokens(collection_id, entries)?;
    }
}

impl Platform {
    async fn with_tenant<T: Send + 'static>(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
        scope: Scope,
        work: impl FnOnce(&TenantContext) -> Result<T, ServiceError> + Send + 'static,
    ) -> Result<T, ServiceError> {
        let runtime = self.authorize(principal, slug, scope).await?;
        let context = TenantContext::of(&runtime);
        let result = blocking(move || work(&context)).await;
        if let Err(ServiceError::Integrity { what }) = &result {
            self.security.raise(
                SecurityEventKind::IntegrityFailure,
                Some(&runtime.id),
                &format!("{what} failed its integrity check"),
            );
        }
        result
    }

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
        self.with_tenant(principal, slug, Scope::RecordsWrite, move |context| {
            let existing = load_collection(context, name.as_str())?;
            let created_at = existing
                .as_ref()
                .map_or(now, |(stored, _)| stored.created_at);
            let stored = write_collection(context, name.as_str(), schema.clone(), created_at, now)?;
            if let Some((_, previous)) = &existing {
                let indexed = |schema: &CollectionSchema| {
                    schema
                        .fields
                        .iter()
                        .filter(|(_, spec)| spec.indexed)
                        .map(|(field, spec)| (field.clone(), spec.field_type))
                        .collect::<Vec<_>>()
                };
                if indexed(&previous.schema) != indexed(&schema) {
                    reindex(context, name.as_str(), &stored.id, &schema)?;
                }
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
            };
            Ok((collection_view(definition, &stored), outcome))
        })
        .await
    }

    pub async fn list_collections(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
    ) -> Result<Vec<CollectionView>, ServiceError> {
        self.with_tenant(principal, slug, Scope::RecordsRead, |context| {
            context
                .store
                .list_collections()?
                .iter()
                .map(|stored| Ok(collection_view(open_collection(context, stored)?, stored)))
                .collect()
        })
        .await
    }

    pub async fn create_record(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
        collection: &str,
        body: Value,
    ) -> Result<RecordView, ServiceError> {
        let now = self.clock.now().unix_micros();
        let id = strongroom_crypto::random_hex_id()?;
        let collection = collection.to_owned();
        self.with_tenant(principal, slug, Scope::RecordsWrite, move |context| {
            let loaded = require_collection(context, &collection)?;
            loaded.schema.check_record(&body)?;
            write_record_put(context, &loaded, &id, 1, now, now, body.clone())?;
            Ok(RecordView {
                collection,
                id,
                version: 1,
                created_at: Timestamp::from_unix_micros(now),
                updated_at: Timestamp::from_unix_micros(now),
                body,
            })
        })
        .await
    }

    pub async fn get_record(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
        collection: &str,
        id: &str,
    ) -> Result<RecordView, ServiceError> {
        let (collection, id) = (collection.to_owned(), id.to_owned());
        self.with_tenant(principal, slug, Scope::RecordsRead, move |context| {
            read_record(context, &require_collection(context, &collection)?, &id)
        })
        .await
    }

    /// Replaces a record's body (PUT), or merges a patch into it (PATCH), guarded by If-Match.
    pub async fn update_record(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
        collection: &str,
        id: &str,
        update: RecordUpdate,
        if_match: Option<u64>,
    ) -> Result<RecordView, ServiceError> {
        let clock = self.clock.clone();
        let (collection, id) = (collection.to_owned(), id.to_owned());
        self.with_tenant(principal, slug, Scope::RecordsWrite, move |context| {
            let loaded = require_collection(context, &collection)?;
            let mut attempts = 0;
            loop {
                let current = read_record(context, &loaded, &id)?;
                check_if_match(current.version, if_match)?;
                let body = match &update {
                    RecordUpdate::Replace(body) => body.clone(),
                    RecordUpdate::MergePatch(patch) => {
                        let mut body = current.body.clone();
                        apply_merge_patch(&mut body, patch);
                        body
                    }
                };
                loaded.schema.check_record(&body)?;
                let now = clock
                    .now()
                    .unix_micros()
                    .max(current.updated_at.unix_micros());
                let version = current.version + 1;
                match write_record_put(
                    context,
                    &loaded,
                    &id,
                    version,
                    current.created_at.unix_micros(),
                    now,
                    body.clone(),
                ) {
                    Err(ServiceError::Conflict(_))
                        if if_match.is_none() && attempts < PATCH_RETRIES_MAX =>
                    {
                        attempts += 1
                    }
                    Err(ServiceError::Conflict(_)) if if_match.is_some() => {
                        let current_version = read_record(context, &loaded, &id)?.version;
                        return Err(ServiceError::PreconditionFailed { current_version });
                    }
                    Err(other) => return Err(other),
                    Ok(()) => {
                        return Ok(RecordView {
                            version,
                            updated_at: Timestamp::from_unix_micros(now),
                            body,
                            ..current
                        });
                    }
                }
            }
        })
        .await
    }

    pub async fn delete_record(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
        collection: &str,
        id: &str,
        if_match: Option<u64>,
    ) -> Result<(), ServiceError> {
        let now = self.clock.now().unix_micros();
        let (collection, id) = (collection.to_owned(), id.to_owned());
        self.with_tenant(principal, slug, Scope::RecordsWrite, move |context| {
            let loaded = require_collection(context, &collection)?;
            if !is_record_id(&id) {
                return Err(ServiceError::NotFound("record"));
            }
            let stored = context
                .store
                .record(&loaded.id, &id)?
                .ok_or(ServiceError::NotFound("record"))?;
            check_if_match(stored.version, if_match)?;
            write_record_delete(context, &loaded, &id, stored.version, now)
        })
        .await
    }

    /// One page of a collection. Query parameters are validated by the domain's [`ListQuery`].
    pub async fn list_records(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
        collection: &str,
        parameters: Vec<(String, String)>,
    ) -> Result<RecordPage, ServiceError> {
        let query = ListQuery::parse(
            &parameters,
            self.options.page_limit_default,
            self.options.page_limit_max,
        )?;
        let collection = collection.to_owned();
        self.with_tenant(principal, slug, Scope::RecordsRead, move |context| {
            let loaded = require_collection(context, &collection)?;
            let mut index_tokens = Vec::with_capacity(query.filters.len());
            for (field, raw) in &query.filters {
                let value = loaded.schema.filter_value(field, raw)?;
                index_tokens.push(context.keys.index_key.token(
                    index_domain::FIELD_VALUE,
                    &[
                        &loaded.id,
                        value.field.as_bytes(),
                        value.canonical.as_bytes(),
                    ],
                ));
            }
            let order = match query.order {
                ListOrder::Created => RecordOrder::Created,
                ListOrder::Updated => RecordOrder::Updated,
            };
            let stored = context.store.list_records(&RecordQuery {
                collection_id: loaded.id.clone(),
                order,
                after: query.cursor.as_ref().map(|cursor| {
                    (
                        cursor.after_timestamp.unix_micros(),
                        cursor.after_id.clone(),
                    )
                }),
                updated_after: query.updated_after.map(Timestamp::unix_micros),
                index_tokens,
                limit: query.limit + 1,
            })?;
            let has_more = stored.len() > query.limit as usize;
            let page = &stored[..stored.len().min(query.limit as usize)];
            let next_cursor = page.last().filter(|_| has_more).map(|last| {
                let after_timestamp = match query.order {
                    ListOrder::Created => last.created_at,
                    ListOrder::Updated => last.updated_at,
                };
                Cursor {
                    order: query.order,
                    after_timestamp: Timestamp::from_unix_micros(after_timestamp),
                    after_id: last.id.clone(),
                }
                .encode()
            });
            let items = page
                .iter()
                .map(|stored| match open_record(context, &loaded.name, stored) {
                    Ok(view) => ListedRecord::Record(view),
                    Err(_) => ListedRecord::Damaged {
                        id: stored.id.clone(),
                    },
                })
                .collect();
            Ok(RecordPage { items, next_cursor })
        })
        .await
    }

    /// Every record of every collection in `store`, opened with the tenant's keys. Used to
    /// compare a replayed store with the original.
    pub async fn all_records_in(
        &self,
        slug: &str,
        store: Arc<dyn TenantStore>,
    ) -> Result<Vec<RecordView>, ServiceError> {
        let runtime = self.tenant(slug).await?;
        let context = TenantContext {
            tenant_id: runtime.id.clone(),
            keys: runtime.keys(),
            store,
        };
        blocking(move || {
            let mut records = Vec::new();
            for stored_collection in context.store.list_collections()? {
                let definition = open_collection(&context, &stored_collection)?;
                let mut query = RecordQuery {
                    collection_id: stored_collection.id.clone(),
                    order: RecordOrder::Created,
                    after: None,
                    updated_after: None,
                    index_tokens: vec![],
                    limit: REINDEX_BATCH,
                };
                loop {
                    let page = context.store.list_records(&query)?;
                    let Some(last) = page.last() else { break };
                    query.after = Some((last.created_at, last.id.clone()));
                    for stored in &page {
                        records.push(open_record(&context, &definition.name, stored)?);
                    }
                }
            }
            Ok(records)
        })
        .await
    }

    /// The store of a tenant, for tests and tools that compare stores.
    pub async fn tenant_store(&self, slug: &str) -> Result<Arc<dyn TenantStore>, ServiceError> {
        Ok(self.tenant(slug).await?.store.clone())
    }
}

/// How an update changes a record.
pub enum RecordUpdate {
    Replace(Value),
    MergePatch(Value),
}
