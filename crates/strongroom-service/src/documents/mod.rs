//! The document archive: files streamed through chunked AEAD into content-addressed blobs,
//! with versions (kept `version_retention_days`), a trash (kept `trash_retention_days`) and a
//! purge that removes what retention lets go.

mod blob_format;
mod download;
mod history;
mod purge;
mod replay;
mod reseal;
mod upload;

pub use download::DocumentContent;
pub use purge::PurgeReport;
pub(crate) use replay::apply_document_change;

use crate::sealing::{context, index_domain};
use crate::tenant_context::TenantContext;
use crate::{ServiceError, views::DocumentView};
use serde::{Deserialize, Serialize};
use std::pin::Pin;
use strongroom_domain::{DocumentPath, DocumentPrefix, Timestamp};
use strongroom_storage::{StoredDocument, StoredDocumentVersion};

/// File content in transit, in either direction.
pub type ContentStream =
    Pin<Box<dyn futures_core::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send>>;

/// Document limits and retention, from the configuration.
#[derive(Debug, Clone)]
pub struct DocumentLimits {
    pub file_bytes_max: u64,
    pub tenant_quota_bytes: u64,
    pub version_retention_days: u32,
    pub trash_retention_days: u32,
    /// Uploads and downloads in progress at most (each holds a worker thread); more → 503.
    pub transfers_max: usize,
}

impl Default for DocumentLimits {
    fn default() -> Self {
        Self {
            file_bytes_max: 5 << 30,
            tenant_quota_bytes: 100 << 30,
            version_retention_days: 30,
            trash_retention_days: 90,
            transfers_max: 64,
        }
    }
}

/// A version's sealed metadata. Format version inside; do not change a shipped version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct VersionMeta {
    pub format: u8,
    pub content_type: String,
    pub sha256: String,
    /// The stream id in the header of the blob this version names: a blob file swapped for
    /// another (even of the same size) is detected on read.
    pub stream_id: String,
}

pub(crate) fn path_token(context: &TenantContext, path: &DocumentPath) -> Vec<u8> {
    context
        .keys
        .index_key
        .token(index_domain::DOCUMENT_PATH, &[path.as_str().as_bytes()])
}

pub(crate) fn prefix_token(context: &TenantContext, prefix: &DocumentPrefix) -> Vec<u8> {
    context
        .keys
        .index_key
        .token(index_domain::DOCUMENT_PREFIX, &[prefix.as_str().as_bytes()])
}

pub(crate) fn prefix_tokens(context: &TenantContext, path: &DocumentPath) -> Vec<Vec<u8>> {
    path.directory_prefixes()
        .iter()
        .map(|prefix| prefix_token(context, prefix))
        .collect()
}

pub(crate) fn seal_path(
    context: &TenantContext,
    document_id: &str,
    path: &DocumentPath,
) -> Result<Vec<u8>, ServiceError> {
    Ok(context.keys.keyring.seal(
        &context::document_path(&context.tenant_id, document_id),
        path.as_str().as_bytes(),
    )?)
}

pub(crate) fn open_path(
    context: &TenantContext,
    document: &StoredDocument,
) -> Result<String, ServiceError> {
    let integrity = || ServiceError::Integrity {
        what: format!("the path of document {}", document.id),
    };
    let plaintext = context
        .keys
        .keyring
        .open(
            &context::document_path(&context.tenant_id, &document.id),
            &document.sealed_path,
        )
        .map_err(|_| integrity())?;
    String::from_utf8(plaintext).map_err(|_| integrity())
}

pub(crate) fn seal_meta(
    context: &TenantContext,
    document_id: &str,
    version: u64,
    meta: &VersionMeta,
) -> Result<Vec<u8>, ServiceError> {
    let plaintext =
        serde_json::to_vec(meta).map_err(|error| ServiceError::Internal(error.to_string()))?;
    Ok(context.keys.keyring.seal(
        &context::document_version(&context.tenant_id, document_id, version),
        &plaintext,
    )?)
}

pub(crate) fn open_meta(
    context: &TenantContext,
    version: &StoredDocumentVersion,
) -> Result<VersionMeta, ServiceError> {
    let integrity = || ServiceError::Integrity {
        what: format!(
            "version {} of document {}",
            version.version, version.document_id
        ),
    };
    let plaintext = context
        .keys
        .keyring
        .open(
            &context::document_version(&context.tenant_id, &version.document_id, version.version),
            &version.sealed_meta,
        )
        .map_err(|_| integrity())?;
    serde_json::from_slice(&plaintext).map_err(|_| integrity())
}

pub(crate) fn document_view(
    path: String,
    document: &StoredDocument,
    version: &StoredDocumentVersion,
    meta: VersionMeta,
) -> DocumentView {
    DocumentView {
        path,
        etag: format!("\"{}.{}\"", document.id, version.version),
        version: version.version,
        size: version.size,
        content_type: meta.content_type,
        sha256: meta.sha256,
        created_at: Timestamp::from_unix_micros(document.created_at),
        updated_at: Timestamp::from_unix_micros(version.created_at),
    }
}

/// The live document at `path` with its current version, or not found.
pub(crate) fn current(
    context: &TenantContext,
    path: &DocumentPath,
) -> Result<(StoredDocument, Vec<StoredDocumentVersion>), ServiceError> {
    let document = context
        .store
        .document_by_path(&path_token(context, path))?
        .ok_or(ServiceError::NotFound("document"))?;
    let versions = context.store.document_versions(&document.id)?;
    Ok((document, versions))
}

pub(crate) fn version_of(
    versions: &[StoredDocumentVersion],
    wanted: u64,
) -> Result<&StoredDocumentVersion, ServiceError> {
    versions
        .iter()
        .find(|version| version.version == wanted)
        .ok_or(ServiceError::NotFound("document version"))
}

pub(crate) fn day_micros(days: u32) -> i64 {
    i64::from(days) * 24 * 3600 * 1_000_000
}
