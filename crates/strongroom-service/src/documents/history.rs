//! Listing, versions, restoring a version, the trash and restoring from it.

use super::{
    VersionMeta, current, document_view, open_meta, open_path, path_token, prefix_token,
    prefix_tokens, seal_meta, seal_path, version_of,
};
use crate::ServiceError;
use crate::journal::{JournalChange, sealer};
use crate::platform::Platform;
use crate::tenant_context::TenantContext;
use crate::tenants::{Need, TokenPrincipal};
use crate::views::{DocumentPage, DocumentVersionView, DocumentView, TrashEntryView};
use strongroom_domain::{
    Cursor, DocumentPath, DocumentPrefix, ListOrder, PAGE_LIMIT_MAX, Permission, Resource, Scope,
    Timestamp,
};
use strongroom_storage::{
    DocumentQuery, DocumentRelocation, NewDocumentVersion, StorageError, StoredDocument,
    StoredDocumentVersion,
};

fn conflict_or(error: StorageError, conflict: &str) -> ServiceError {
    match error {
        StorageError::Conflict(_) => ServiceError::Conflict(conflict.to_owned()),
        StorageError::NotFound => ServiceError::NotFound("document"),
        other => other.into(),
    }
}

fn page_query(
    context: &TenantContext,
    prefixes: &[DocumentPrefix],
    trashed: bool,
    limit: u32,
    cursor: Option<&str>,
) -> Result<DocumentQuery, ServiceError> {
    let after = match cursor {
        Some(text) => {
            let cursor = Cursor::decode(text)?;
            Some((cursor.after_timestamp.unix_micros(), cursor.after_id))
        }
        None => None,
    };
    Ok(DocumentQuery {
        prefix_tokens: prefixes
            .iter()
            .map(|prefix| prefix_token(context, prefix))
            .collect(),
        trashed,
        after,
        limit: limit.clamp(1, PAGE_LIMIT_MAX) + 1,
    })
}

/// Granted directories a listing queries by name at most (each is one SQL parameter).
const LISTED_PREFIXES_MAX: usize = 512;

/// One page of the documents a caller may see, each with its path, and the cursor to the next.
struct VisiblePage {
    documents: Vec<(StoredDocument, String)>,
    next_cursor: Option<String>,
}

fn cursor_after(document: &StoredDocument) -> String {
    Cursor {
        order: ListOrder::Updated,
        after_timestamp: Timestamp::from_unix_micros(document.updated_at),
        after_id: document.id.clone(),
    }
    .encode()
}

impl Platform {
    /// One page of the documents (or trash entries) the caller may read, with their paths.
    /// A caller limited to some directories has only those listed, so neither a short page nor
    /// its cursor tells them that entries they cannot see exist, and the listing reads no more
    /// than they may see. Each entry is still checked; store pages are read until one more
    /// visible entry than the page holds is found or the listing ends.
    fn visible_page(
        &self,
        context: &TenantContext,
        principal: &TokenPrincipal,
        prefix: &DocumentPrefix,
        trashed: bool,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<VisiblePage, ServiceError> {
        let limit = limit.clamp(1, PAGE_LIMIT_MAX) as usize;
        let prefixes =
            match principal.document_prefixes_within(Permission::DocumentsRead, prefix.as_str()) {
                // Very many granted directories would make one query too long: the whole
                // prefix is read then, and each entry checked.
                None => vec![prefix.clone()],
                Some(granted) if granted.len() > LISTED_PREFIXES_MAX => vec![prefix.clone()],
                Some(granted) => granted
                    .iter()
                    .map(|granted| DocumentPrefix::parse(granted))
                    .collect::<Result<_, _>>()?,
            };
        let mut query = page_query(context, &prefixes, trashed, limit as u32, cursor)?;
        let mut visible = Vec::new();
        loop {
            let found = context.store.list_documents(&query)?;
            let ended = found.len() < query.limit as usize;
            for document in found {
                if visible.len() > limit {
                    break;
                }
                query.after = Some((document.updated_at, document.id.clone()));
                let path = self.observe(context, open_path(context, &document))?;
                if principal.may(Permission::DocumentsRead, Resource::Document(&path)) {
                    visible.push((document, path));
                }
            }
            if ended || visible.len() > limit {
                break;
            }
        }
        let next_cursor = (visible.len() > limit).then(|| {
            visible.truncate(limit);
            cursor_after(&visible[limit - 1].0)
        });
        Ok(VisiblePage {
            documents: visible,
            next_cursor,
        })
    }

    /// Current documents under a directory prefix, oldest change first.
    pub async fn list_documents(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
        prefix: &str,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<DocumentPage, ServiceError> {
        let prefix = DocumentPrefix::parse(prefix)?;
        let context = self
            .tenant_context(principal, slug, Need::somewhere(Scope::DocumentsRead))
            .await?;
        let VisiblePage {
            documents: found,
            next_cursor,
        } = self.visible_page(&context, principal, &prefix, false, limit, cursor)?;
        let mut documents = Vec::new();
        for (document, path) in &found {
            let versions = context.store.document_versions(&document.id)?;
            let view = (|| {
                let version = version_of(&versions, document.current_version)?;
                Ok::<_, ServiceError>(document_view(
                    path.clone(),
                    document,
                    version,
                    open_meta(&context, version)?,
                ))
            })();
            documents.push(self.observe(&context, view)?);
        }
        Ok(DocumentPage {
            documents,
            next_cursor,
        })
    }

    pub async fn document_versions(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
        path: &str,
    ) -> Result<Vec<DocumentVersionView>, ServiceError> {
        let path = DocumentPath::parse(path)?;
        let context = self
            .tenant_context(principal, slug, Need::documents_read(path.as_str()))
            .await?;
        let (document, versions) = current(&context, &path)?;
        versions
            .iter()
            .map(|version| {
                let meta = self.observe(&context, open_meta(&context, version))?;
                Ok(DocumentVersionView {
                    version: version.version,
                    size: version.size,
                    content_type: meta.content_type,
                    sha256: meta.sha256,
                    created_at: Timestamp::from_unix_micros(version.created_at),
                    current: version.version == document.current_version,
                })
            })
            .collect()
    }

    /// Makes an older version current again, as a new version with the same content.
    pub async fn restore_document_version(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
        path: &str,
        version: u64,
    ) -> Result<DocumentView, ServiceError> {
        let path = DocumentPath::parse(path)?;
        let context = self
            .tenant_context(principal, slug, Need::documents_write(path.as_str()))
            .await?;
        // Held until the new version commits (in its own task, so a dropped request cannot
        // release it early): the purge must not remove the blob this version will name.
        let blob_lock = context.blob_lock.clone().lock_owned().await;
        let (document, versions) = current(&context, &path)?;
        let source = version_of(&versions, version)?;
        let meta: VersionMeta = self.observe(&context, open_meta(&context, source))?;
        let now = self.clock.now().unix_micros();
        let number = document.current_version + 1;
        let restored = StoredDocumentVersion {
            version: number,
            sealed_meta: seal_meta(&context, &document.id, number, &meta)?,
            key_version: context.keys.keyring.current_version(),
            created_at: now,
            superseded_at: None,
            ..source.clone()
        };
        let change = JournalChange::DocumentVersion {
            document_id: document.id.clone(),
            path: path.as_str().to_owned(),
            version: number,
            blob_id: restored.blob_id.clone(),
            size: restored.size,
            content_type: meta.content_type.clone(),
            sha256: meta.sha256.clone(),
            stream_id: meta.stream_id.clone(),
            at: now,
        };
        let updated = StoredDocument {
            current_version: number,
            updated_at: now,
            ..document.clone()
        };
        let new = NewDocumentVersion {
            document: updated,
            version: restored.clone(),
            prefix_tokens: vec![],
        };
        let pending = context
            .store
            .put_document_version(new, sealer(&context.tenant_id, &context.keys, change));
        tokio::spawn(async move {
            let _blob_lock = blob_lock;
            pending.await
        })
        .await
        .map_err(|error| ServiceError::Internal(format!("restore commit: {error}")))?
        .map_err(|error| conflict_or(error, "the document changed meanwhile; retry"))?;
        Ok(document_view(
            path.as_str().to_owned(),
            &document,
            &restored,
            meta,
        ))
    }

    /// Moves a document, with all its versions, to the trash.
    pub async fn delete_document(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
        path: &str,
    ) -> Result<TrashEntryView, ServiceError> {
        let path = DocumentPath::parse(path)?;
        let context = self
            .tenant_context(principal, slug, Need::documents_write(path.as_str()))
            .await?;
        let (document, versions) = current(&context, &path)?;
        let now = self.clock.now().unix_micros();
        let change = JournalChange::DocumentTrash {
            document_id: document.id.clone(),
            at: now,
        };
        context
            .store
            .trash_document(
                &document.id,
                now,
                sealer(&context.tenant_id, &context.keys, change),
            )
            .await
            .map_err(|error| conflict_or(error, "the document changed meanwhile"))?;
        Ok(trash_view(
            path.as_str().to_owned(),
            &document,
            &versions,
            now,
        ))
    }

    pub async fn list_trash(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<(Vec<TrashEntryView>, Option<String>), ServiceError> {
        let context = self
            .tenant_context(principal, slug, Need::somewhere(Scope::DocumentsRead))
            .await?;
        let VisiblePage {
            documents: found,
            next_cursor,
        } = self.visible_page(
            &context,
            principal,
            &DocumentPrefix::parse("")?,
            true,
            limit,
            cursor,
        )?;
        let mut entries = Vec::new();
        for (document, path) in found {
            let versions = context.store.document_versions(&document.id)?;
            entries.push(trash_view(
                path,
                &document,
                &versions,
                document.trashed_at.unwrap_or_default(),
            ));
        }
        Ok((entries, next_cursor))
    }

    /// Brings a trashed document back at its path, or at `as_path`; 409 when that is taken.
    pub async fn restore_from_trash(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
        trash_id: &str,
        as_path: Option<&str>,
    ) -> Result<DocumentView, ServiceError> {
        let as_path = as_path.map(DocumentPath::parse).transpose()?;
        let context = self
            .tenant_context(principal, slug, Need::somewhere(Scope::DocumentsWrite))
            .await?;
        let valid_id =
            (1..=64).contains(&trash_id.len()) && trash_id.bytes().all(|b| b.is_ascii_hexdigit());
        let document = valid_id
            .then(|| context.store.document(trash_id))
            .transpose()?
            .flatten()
            .filter(|document| document.trashed_at.is_some())
            .ok_or(ServiceError::NotFound("trash entry"))?;
        let relocation = match &as_path {
            Some(path) => Some(DocumentRelocation {
                path_id: path_token(&context, path),
                sealed_path: seal_path(&context, &document.id, path)?,
                prefix_tokens: prefix_tokens(&context, path),
            }),
            None => None,
        };
        // A user limited to some paths restores only from and to those paths; the entry's own
        // path is known only now.
        let original_path = self.observe(&context, open_path(&context, &document))?;
        let path = match &as_path {
            Some(path) => path.as_str().to_owned(),
            None => original_path.clone(),
        };
        for touched in [&original_path, &path] {
            self.authorize_resource(
                principal,
                &context.tenant_id,
                Need::documents_write(touched),
            )?;
        }
        let now = self.clock.now().unix_micros();
        let change = JournalChange::DocumentRestore {
            document_id: document.id.clone(),
            path: as_path.as_ref().map(|path| path.as_str().to_owned()),
            at: now,
        };
        context
            .store
            .restore_document(
                &document.id,
                relocation,
                now,
                sealer(&context.tenant_id, &context.keys, change),
            )
            .await
            .map_err(|error| {
                conflict_or(
                    error,
                    "a document exists at that path; restore with ?as=<another path>",
                )
            })?;
        let versions = context.store.document_versions(&document.id)?;
        let version = version_of(&versions, document.current_version)?;
        let meta = self.observe(&context, open_meta(&context, version))?;
        Ok(document_view(path, &document, version, meta))
    }
}

fn trash_view(
    path: String,
    document: &StoredDocument,
    versions: &[StoredDocumentVersion],
    deleted_at: i64,
) -> TrashEntryView {
    TrashEntryView {
        id: document.id.clone(),
        path,
        deleted_at: Timestamp::from_unix_micros(deleted_at),
        versions: versions.len() as u64,
        size: versions
            .iter()
            .find(|version| version.version == document.current_version)
            .map_or(0, |version| version.size),
    }
}
