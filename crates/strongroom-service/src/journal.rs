//! The tenant journal: every committed change, sealed, numbered, in the same transaction as the
//! change itself. Replaying it on an empty store rebuilds the tenant (decision 5).

use crate::ServiceError;
use crate::collections::{CollectionDefinition, require_collection, write_collection};
use crate::platform::{Platform, blocking};
use crate::records::{RecordWrite, version_conflict, write_record_delete, write_record_put};
use crate::sealing::{TenantKeys, context};
use crate::tenant_context::TenantContext;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use strongroom_domain::CollectionSchema;
use strongroom_storage::{JournalSealer, StorageError, TenantStore};

/// Format of a journal entry's plaintext. Do not change a shipped version: add one.
const JOURNAL_FORMAT: u8 = 1;
const REPLAY_BATCH: u32 = 500;

/// One committed change, as the journal holds it (after opening).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op")]
pub enum JournalChange {
    #[serde(rename = "collection.put")]
    CollectionPut {
        name: String,
        schema: CollectionSchema,
        /// True while existing records are being re-indexed after a schema change.
        #[serde(default)]
        index_pending: bool,
        created_at: i64,
        updated_at: i64,
    },
    #[serde(rename = "record.put")]
    RecordPut {
        collection: String,
        id: String,
        version: u64,
        created_at: i64,
        updated_at: i64,
        body: Value,
    },
    #[serde(rename = "document.version")]
    DocumentVersion {
        document_id: String,
        path: String,
        version: u64,
        blob_id: String,
        size: u64,
        content_type: String,
        sha256: String,
        stream_id: String,
        at: i64,
    },
    #[serde(rename = "document.trash")]
    DocumentTrash { document_id: String, at: i64 },
    #[serde(rename = "document.restore")]
    DocumentRestore {
        document_id: String,
        path: Option<String>,
        at: i64,
    },
    #[serde(rename = "document.purge")]
    DocumentPurge {
        versions: Vec<(String, u64)>,
        documents: Vec<String>,
        versions_before: i64,
        trash_before: i64,
        at: i64,
    },
    /// A user was created or changed: the whole user, as the journal is sealed like the row.
    /// (Password history is not journaled: a replayed user starts with an empty history.)
    #[serde(rename = "user.put")]
    UserPut { user: crate::users::UserState },
    #[serde(rename = "policy.security")]
    SecurityPolicy {
        policy: crate::security_policy::SecurityPolicy,
    },
    #[serde(rename = "user.delete")]
    UserDelete { user_id: String },
    #[serde(rename = "sso.providers")]
    SsoProviders {
        providers: std::collections::BTreeMap<String, crate::sso::SsoProvider>,
    },
    #[serde(rename = "sso.link")]
    SsoLink { link: String, user_id: String },
    #[serde(rename = "policy.alerts")]
    AlertChannels {
        channels: crate::alerts::AlertChannels,
    },
    #[serde(rename = "policy.audit_retention")]
    AuditRetention { days: u32 },
    #[serde(rename = "policy.downloads")]
    DownloadLimits {
        limits: crate::download_limits::DownloadLimits,
    },
    #[serde(rename = "policy.firewall")]
    Firewall {
        rules: strongroom_domain::firewall::FirewallRules,
    },
    #[serde(rename = "access.model")]
    AccessModel {
        model: crate::access_model::AccessModel,
    },
    #[serde(rename = "user.mfa")]
    UserMfa {
        user_id: String,
        confirmed: bool,
        last_step: Option<i64>,
        state: crate::mfa::MfaState,
    },
    #[serde(rename = "record.delete")]
    RecordDelete {
        collection: String,
        id: String,
        version: u64,
        deleted_at: i64,
    },
}

#[derive(Serialize, Deserialize)]
struct JournalEnvelope {
    format: u8,
    #[serde(flatten)]
    change: JournalChange,
}

/// A sealer for the store to call once it knows the entry's sequence number.
pub(crate) fn sealer(
    tenant_id: &str,
    keys: &Arc<TenantKeys>,
    change: JournalChange,
) -> JournalSealer {
    let tenant_id = tenant_id.to_owned();
    let keys = keys.clone();
    Box::new(move |sequence| {
        let plaintext = serde_json::to_vec(&JournalEnvelope {
            format: JOURNAL_FORMAT,
            change,
        })
        .map_err(|error| StorageError::Unavailable(format!("journal encoding: {error}")))?;
        keys.keyring
            .seal(&context::journal(&tenant_id, sequence), &plaintext)
            .map_err(|error| StorageError::Unavailable(format!("journal sealing: {error}")))
    })
}

fn open_entry(
    tenant_id: &str,
    keys: &TenantKeys,
    sequence: u64,
    sealed: &[u8],
) -> Result<JournalChange, ServiceError> {
    let integrity = || ServiceError::Integrity {
        what: format!("journal entry {sequence}"),
    };
    let plaintext = keys
        .keyring
        .open(&context::journal(tenant_id, sequence), sealed)
        .map_err(|_| integrity())?;
    let envelope: JournalEnvelope = serde_json::from_slice(&plaintext).map_err(|_| integrity())?;
    if envelope.format != JOURNAL_FORMAT {
        return Err(integrity());
    }
    Ok(envelope.change)
}

/// Applies one opened change to the context's store and waits until it is durable.
async fn apply(context: &TenantContext, change: JournalChange) -> Result<(), ServiceError> {
    match change {
        JournalChange::UserPut { user } => crate::users::apply_user(context, user).await?,
        JournalChange::SecurityPolicy { policy } => {
            crate::security_policy::store(context, &policy).await?
        }
        JournalChange::AccessModel { model } => crate::access_model::store(context, &model).await?,
        JournalChange::Firewall { rules } => crate::firewall::store(context, &rules).await?,
        JournalChange::AlertChannels { channels } => {
            crate::alerts::store(context, &channels).await?
        }
        JournalChange::AuditRetention { days } => {
            crate::audit_retention::store(context, &crate::audit_retention::AuditRetention { days })
                .await?
        }
        JournalChange::DownloadLimits { limits } => {
            crate::download_limits::store(context, &limits).await?
        }
        JournalChange::SsoProviders { providers } => crate::sso::store(context, &providers).await?,
        JournalChange::SsoLink { link, user_id } => {
            crate::sso::store_link(context, &link, &user_id).await?
        }
        JournalChange::UserDelete { user_id } => {
            crate::user_admin::apply_user_delete(context, user_id).await?
        }
        JournalChange::UserMfa {
            user_id,
            confirmed,
            last_step,
            state,
        } => crate::mfa::apply_mfa(context, user_id, confirmed, last_step, state).await?,
        change @ (JournalChange::DocumentVersion { .. }
        | JournalChange::DocumentTrash { .. }
        | JournalChange::DocumentRestore { .. }
        | JournalChange::DocumentPurge { .. }) => {
            crate::documents::apply_document_change(context, change).await?;
        }
        JournalChange::CollectionPut {
            name,
            schema,
            index_pending,
            created_at,
            updated_at,
        } => {
            let definition = CollectionDefinition {
                format: 1,
                name,
                schema,
                index_pending,
            };
            write_collection(context, definition, created_at, updated_at)?
                .1
                .await?;
        }
        JournalChange::RecordPut {
            collection,
            id,
            version,
            created_at,
            updated_at,
            body,
        } => {
            let collection = require_collection(context, &collection)?;
            let write = RecordWrite {
                collection: &collection,
                id: &id,
                version,
                created_at,
                updated_at,
                body,
            };
            write_record_put(context, write)?
                .await
                .map_err(version_conflict)?;
        }
        JournalChange::RecordDelete {
            collection,
            id,
            version,
            deleted_at,
        } => {
            let collection = require_collection(context, &collection)?;
            write_record_delete(context, &collection, &id, version, deleted_at)
                .await
                .map_err(version_conflict)?;
        }
    }
    Ok(())
}

impl Platform {
    /// Replays every journal entry of a tenant, in order, onto another (empty) store opened
    /// with the same keys, and returns how many entries were applied.
    pub async fn replay_tenant_journal(
        &self,
        slug: &str,
        target: Arc<dyn TenantStore>,
    ) -> Result<u64, ServiceError> {
        let runtime = self.tenant(slug).await?;
        let context = TenantContext::on_store(&runtime, target);
        let mut after = 0;
        let mut applied = 0;
        loop {
            let rows = runtime.store.read_journal(after, REPLAY_BATCH)?;
            let Some(last) = rows.last() else {
                return Ok(applied);
            };
            after = last.sequence;
            for row in rows {
                apply(
                    &context,
                    open_entry(&runtime.id, &context.keys, row.sequence, &row.sealed)?,
                )
                .await?;
                applied += 1;
            }
        }
    }

    /// Every change in a tenant's journal, opened, in order. For tests and inspection.
    pub async fn journal_changes(
        &self,
        slug: &str,
    ) -> Result<Vec<(u64, JournalChange)>, ServiceError> {
        let runtime = self.tenant(slug).await?;
        let keys = runtime.keys();
        blocking(move || {
            let mut changes = Vec::new();
            let mut after = 0;
            loop {
                let rows = runtime.store.read_journal(after, REPLAY_BATCH)?;
                let Some(last) = rows.last() else {
                    return Ok(changes);
                };
                after = last.sequence;
                for row in rows {
                    changes.push((
                        row.sequence,
                        open_entry(&runtime.id, &keys, row.sequence, &row.sealed)?,
                    ));
                }
            }
        })
        .await
    }
}
