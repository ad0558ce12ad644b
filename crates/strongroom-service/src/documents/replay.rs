//! Applying journaled document changes to another store (replay). Blob files are not in the
//! journal: a restore brings them along from the blob store or its backup.

use super::{VersionMeta, path_token, prefix_tokens, seal_meta, seal_path};
use crate::ServiceError;
use crate::journal::{JournalChange, sealer};
use crate::tenant_context::TenantContext;
use strongroom_domain::DocumentPath;
use strongroom_storage::{
    DocumentRelocation, NewDocumentVersion, PurgePlan, StoredDocument, StoredDocumentVersion,
};

/// Applies one document change and waits until it is durable.
pub(crate) async fn apply_document_change(
    context: &TenantContext,
    change: JournalChange,
) -> Result<(), ServiceError> {
    let journal = sealer(&context.tenant_id, &context.keys, change.clone());
    match change {
        JournalChange::DocumentVersion {
            document_id,
            path,
            version,
            blob_id,
            size,
            content_type,
            sha256,
            stream_id,
            at,
        } => {
            let path = DocumentPath::parse(&path)?;
            let document = if version == 1 {
                StoredDocument {
                    path_id: path_token(context, &path),
                    sealed_path: seal_path(context, &document_id, &path)?,
                    key_version: context.keys.keyring.current_version(),
                    trashed_at: None,
                    current_version: 1,
                    created_at: at,
                    updated_at: at,
                    id: document_id.clone(),
                }
            } else {
                let existing = context
                    .store
                    .document(&document_id)?
                    .ok_or(ServiceError::NotFound("document"))?;
                StoredDocument {
                    current_version: version,
                    updated_at: at,
                    ..existing
                }
            };
            let meta = VersionMeta {
                format: 1,
                content_type,
                sha256,
                stream_id,
            };
            let stored = StoredDocumentVersion {
                sealed_meta: seal_meta(context, &document_id, version, &meta)?,
                document_id,
                version,
                blob_id,
                size,
                key_version: context.keys.keyring.current_version(),
                created_at: at,
                superseded_at: None,
            };
            let new = NewDocumentVersion {
                document,
                version: stored,
                prefix_tokens: prefix_tokens(context, &path),
            };
            context.store.put_document_version(new, journal).await?;
        }
        JournalChange::DocumentTrash { document_id, at } => {
            context
                .store
                .trash_document(&document_id, at, journal)
                .await?
        }
        JournalChange::DocumentRestore {
            document_id,
            path,
            at,
        } => {
            let relocation = match path {
                Some(path) => {
                    let path = DocumentPath::parse(&path)?;
                    Some(DocumentRelocation {
                        path_id: path_token(context, &path),
                        sealed_path: seal_path(context, &document_id, &path)?,
                        prefix_tokens: prefix_tokens(context, &path),
                    })
                }
                None => None,
            };
            context
                .store
                .restore_document(&document_id, relocation, at, journal)
                .await?;
        }
        JournalChange::DocumentPurge {
            versions,
            documents,
            versions_before,
            trash_before,
            ..
        } => {
            context
                .store
                .purge(
                    PurgePlan {
                        versions,
                        documents,
                        versions_before,
                        trash_before,
                    },
                    journal,
                )
                .await?
        }
        other => {
            // Never format the change itself: it can hold document paths.
            let _ = other;
            return Err(ServiceError::Internal(
                "a non-document change reached document replay".into(),
            ));
        }
    }
    Ok(())
}
