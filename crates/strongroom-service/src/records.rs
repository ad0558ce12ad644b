//! Records: validated against their collection's schema, sealed with the tenant key, indexed
//! through blind indexes, written with their journal entry, acknowledged when durable.

use crate::collections::{LoadedCollection, open_collection, require_collection};
use crate::journal::{JournalChange, sealer};
use crate::platform::Platform;
use crate::sealing::context;
use crate::tenant_context::TenantContext;
use crate::tenants::{Need, TokenPrincipal};
use crate::{ListedRecord, RecordPage, RecordView, ServiceError};
use serde_json::Value;
use std::sync::Arc;
use strongroom_domain::{Cursor, ListOrder, ListQuery, Timestamp, apply_merge_patch};
use strongroom_storage::{
    PendingWrite, RecordOrder, RecordQuery, StorageError, StoredRecord, TenantStore,
};

/// How many times an update without If-Match retries when a concurrent write wins the race.
const UPDATE_RETRIES_MAX: usize = 5;
const SCAN_BATCH: u32 = 500;

/// How an update changes a record.
pub enum RecordUpdate {
    Replace(Value),
    MergePatch(Value),
}

/// A record at one version, ready to be written.
pub(crate) struct RecordWrite<'a> {
    pub collection: &'a LoadedCollection,
    pub id: &'a str,
    pub version: u64,
    pub created_at: i64,
    pub updated_at: i64,
    pub body: Value,
}

/// Writes a record at `version` (1 inserts, later versions replace `version - 1`) with its
/// journal entry. Shared by the API path and replay.
pub(crate) fn write_record_put(
    context: &TenantContext,
    write: RecordWrite<'_>,
) -> Result<PendingWrite<()>, ServiceError> {
    let RecordWrite {
        collection,
        id,
        version,
        created_at,
        updated_at,
        body,
    } = write;
    let plaintext =
        serde_json::to_vec(&body).map_err(|error| ServiceError::Internal(error.to_string()))?;
    let stored = StoredRecord {
        collection_id: collection.id.clone(),
        id: id.to_owned(),
        version,
        created_at,
        updated_at,
        key_version: context.keys.keyring.current_version(),
        sealed_body: context.keys.keyring.seal(
            &context::record(&context.tenant_id, &collection.id, id, version),
            &plaintext,
        )?,
    };
    let tokens = context.index_tokens(&collection.id, &collection.schema, &body);
    let change = JournalChange::RecordPut {
        collection: collection.name.clone(),
        id: id.to_owned(),
        version,
        created_at,
        updated_at,
        body,
    };
    let journal = sealer(&context.tenant_id, &context.keys, change);
    Ok(if version == 1 {
        context.store.insert_record(stored, tokens, journal)
    } else {
        context
            .store
            .replace_record(stored, version - 1, tokens, journal)
    })
}

pub(crate) fn write_record_delete(
    context: &TenantContext,
    collection: &LoadedCollection,
    id: &str,
    version: u64,
    deleted_at: i64,
) -> PendingWrite<()> {
    let change = JournalChange::RecordDelete {
        collection: collection.name.clone(),
        id: id.to_owned(),
        version,
        deleted_at,
    };
    context.store.delete_record(
        &collection.id,
        id,
        version,
        sealer(&context.tenant_id, &context.keys, change),
    )
}

pub(crate) fn version_conflict(error: StorageError) -> ServiceError {
    match error {
        StorageError::NotFound => ServiceError::NotFound("record"),
        StorageError::Conflict(reason) => {
            ServiceError::Conflict(format!("{reason}; read it again and retry"))
        }
        other => other.into(),
    }
}

pub(crate) fn open_record(
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

impl Platform {
    pub async fn create_record(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
        collection: &str,
        body: Value,
    ) -> Result<RecordView, ServiceError> {
        let context = self
            .tenant_context(principal, slug, Need::records_write(collection))
            .await?;
        let loaded = self.observe(&context, require_collection(&context, collection))?;
        loaded.schema.check_record(&body)?;
        let now = self.clock.now().unix_micros();
        let id = strongroom_crypto::random_hex_id()?;
        let write = RecordWrite {
            collection: &loaded,
            id: &id,
            version: 1,
            created_at: now,
            updated_at: now,
            body: body.clone(),
        };
        write_record_put(&context, write)?
            .await
            .map_err(version_conflict)?;
        let now = Timestamp::from_unix_micros(now);
        Ok(RecordView {
            collection: loaded.name.clone(),
            id,
            version: 1,
            created_at: now,
            updated_at: now,
            body,
        })
    }

    pub async fn get_record(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
        collection: &str,
        id: &str,
    ) -> Result<RecordView, ServiceError> {
        let context = self
            .tenant_context(principal, slug, Need::records_read(collection))
            .await?;
        let result = require_collection(&context, collection)
            .and_then(|loaded| read_record(&context, &loaded, id));
        self.observe(&context, result)
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
        let context = self
            .tenant_context(principal, slug, Need::records_write(collection))
            .await?;
        let loaded = self.observe(&context, require_collection(&context, collection))?;
        for _ in 0..=UPDATE_RETRIES_MAX {
            let current = self.observe(&context, read_record(&context, &loaded, id))?;
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
            let now = self
                .clock
                .now()
                .unix_micros()
                .max(current.updated_at.unix_micros());
            let version = current.version + 1;
            let write = RecordWrite {
                collection: &loaded,
                id,
                version,
                created_at: current.created_at.unix_micros(),
                updated_at: now,
                body: body.clone(),
            };
            match write_record_put(&context, write)?.await {
                Ok(()) => {
                    return Ok(RecordView {
                        version,
                        updated_at: Timestamp::from_unix_micros(now),
                        body,
                        ..current
                    });
                }
                Err(StorageError::Conflict(_)) if if_match.is_some() => {
                    let current_version = read_record(&context, &loaded, id)?.version;
                    return Err(ServiceError::PreconditionFailed { current_version });
                }
                Err(StorageError::Conflict(_)) => continue,
                Err(other) => return Err(version_conflict(other)),
            }
        }
        Err(ServiceError::Conflict(
            "the record kept changing under concurrent writes; retry".into(),
        ))
    }

    pub async fn delete_record(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
        collection: &str,
        id: &str,
        if_match: Option<u64>,
    ) -> Result<(), ServiceError> {
        let context = self
            .tenant_context(principal, slug, Need::records_write(collection))
            .await?;
        let loaded = self.observe(&context, require_collection(&context, collection))?;
        if !is_record_id(id) {
            return Err(ServiceError::NotFound("record"));
        }
        let stored = context
            .store
            .record(&loaded.id, id)?
            .ok_or(ServiceError::NotFound("record"))?;
        check_if_match(stored.version, if_match)?;
        let now = self.clock.now().unix_micros();
        write_record_delete(&context, &loaded, id, stored.version, now)
            .await
            .map_err(|error| match error {
                StorageError::Conflict(_) if if_match.is_some() => {
                    ServiceError::PreconditionFailed {
                        current_version: stored.version + 1,
                    }
                }
                other => version_conflict(other),
            })
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
        let context = self
            .tenant_context(principal, slug, Need::records_read(collection))
            .await?;
        let loaded = self.observe(&context, require_collection(&context, collection))?;
        if loaded.index_pending && !query.filters.is_empty() {
            return Err(ServiceError::Unavailable(
                "this collection's index is being rebuilt after a schema change; retry shortly"
                    .into(),
            ));
        }
        let mut filter_values = Vec::with_capacity(query.filters.len());
        for (field, raw) in &query.filters {
            filter_values.push(loaded.schema.filter_value(field, raw)?);
        }
        let index_tokens = filter_values
            .iter()
            .map(|value| context.field_token(&loaded.id, value))
            .collect();
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
        let page = &stored[..stored.len().min(query.limit as usize)];
        let next_cursor = page
            .last()
            .filter(|_| stored.len() > page.len())
            .map(|last| {
                let after_timestamp = if query.order == ListOrder::Created {
                    last.created_at
                } else {
                    last.updated_at
                };
                Cursor {
                    order: query.order,
                    after_timestamp: Timestamp::from_unix_micros(after_timestamp),
                    after_id: last.id.clone(),
                }
                .encode()
            });
        let mut items = Vec::with_capacity(page.len());
        for stored in page {
            match open_record(&context, &loaded.name, stored) {
                Ok(view) => {
                    // Blind indexes are matched by token; the opened record is checked too.
                    let indexed = loaded.schema.indexed_values(&view.body);
                    if filter_values.iter().all(|value| indexed.contains(value)) {
                        items.push(ListedRecord::Record(view));
                    }
                }
                Err(error) => {
                    let _ = self.observe(&context, Err::<(), _>(error));
                    items.push(ListedRecord::Damaged {
                        id: stored.id.clone(),
                    });
                }
            }
        }
        Ok(RecordPage { items, next_cursor })
    }

    /// Every record of every collection in `store`, opened with the tenant's keys. Used to
    /// compare a replayed store with the original.
    pub async fn all_records_in(
        &self,
        slug: &str,
        store: Arc<dyn TenantStore>,
    ) -> Result<Vec<RecordView>, ServiceError> {
        let runtime = self.tenant(slug).await?;
        let context = TenantContext::on_store(&runtime, store);
        let mut records = Vec::new();
        for stored_collection in context.store.list_collections()? {
            let definition = open_collection(&context, &stored_collection)?;
            let mut query = RecordQuery {
                collection_id: stored_collection.id.clone(),
                order: RecordOrder::Created,
                after: None,
                updated_after: None,
                index_tokens: vec![],
                limit: SCAN_BATCH,
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
    }

    /// The store of a tenant, for tests and tools that compare stores.
    pub async fn tenant_store(&self, slug: &str) -> Result<Arc<dyn TenantStore>, ServiceError> {
        Ok(self.tenant(slug).await?.store.clone())
    }
}
