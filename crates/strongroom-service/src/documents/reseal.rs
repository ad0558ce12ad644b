//! Re-sealing documents after a tenant-key rotation: sealed paths and version metadata in
//! batches, then each blob file rewritten chunk by chunk under the new key with the same
//! stream id (so the versions that name it stay valid) and swapped in atomically.

use super::blob_format::{BlobHeader, CHUNK_SIZE, HEADER_LENGTH, chunk_position};
use super::{open_meta, open_path, seal_meta};
use crate::ServiceError;
use crate::platform::Platform;
use crate::sealing::{TenantRuntime, context};
use crate::tenant_context::TenantContext;
use std::sync::Arc;
use strongroom_crypto::CHUNK_OVERHEAD;
use strongroom_storage::{StoredDocument, StoredDocumentVersion};

const RESEAL_BATCH: u32 = 200;

/// Rewrites one blob under the current key; the caller holds the tenant's blob lock.
fn reseal_blob(context: &TenantContext, blob_id: &str) -> Result<bool, ServiceError> {
    let integrity = || ServiceError::Integrity {
        what: format!("blob {blob_id}"),
    };
    let blob = context.blobs.open(blob_id).map_err(|_| integrity())?;
    let mut header_bytes = [0u8; HEADER_LENGTH];
    blob.read_exact_at(0, &mut header_bytes)?;
    let old_header = BlobHeader::parse(header_bytes, &format!("blob {blob_id}"))?;
    let current = context.keys.keyring.current_version();
    if old_header.key_version >= current {
        return Ok(false);
    }
    let body = blob
        .length()
        .checked_sub(HEADER_LENGTH as u64)
        .ok_or_else(integrity)?;
    let chunks = body.div_ceil((CHUNK_SIZE + CHUNK_OVERHEAD) as u64).max(1);
    let size = body
        .checked_sub(chunks * CHUNK_OVERHEAD as u64)
        .ok_or_else(integrity)?;
    let stream_id: [u8; 16] = header_bytes[8..24].try_into().map_err(|_| integrity())?;
    let new_header = BlobHeader::new(current, stream_id);
    let opener = context
        .keys
        .keyring
        .chunk_opener(
            old_header.key_version,
            &context::blob(&context.tenant_id, &old_header.bytes),
        )
        .map_err(|_| integrity())?;
    let sealer = context
        .keys
        .keyring
        .chunk_sealer(&context::blob(&context.tenant_id, &new_header.bytes));
    let mut upload = context.blobs.create()?;
    upload.write(&new_header.bytes)?;
    let mut sealed = vec![0u8; CHUNK_SIZE + CHUNK_OVERHEAD];
    for index in 0..chunks {
        let (offset, plaintext_length) = chunk_position(size, index);
        let buffer = &mut sealed[..plaintext_length + CHUNK_OVERHEAD];
        blob.read_exact_at(offset, buffer)?;
        let last = index == chunks - 1;
        let plaintext = opener.open(index, last, buffer).map_err(|_| integrity())?;
        upload.write(&sealer.seal(index, last, &plaintext)?)?;
    }
    upload.finish_replacing(blob_id)?;
    Ok(true)
}

impl Platform {
    /// Re-seals a tenant's document metadata and blobs under its current key version.
    pub(crate) async fn reseal_documents(
        &self,
        runtime: &Arc<TenantRuntime>,
    ) -> Result<u64, ServiceError> {
        let context = TenantContext::of(runtime);
        let current = context.keys.keyring.current_version();
        let mut total = 0;
        loop {
            let (documents, versions) = context
                .store
                .document_items_sealed_below(current, RESEAL_BATCH)?;
            if documents.is_empty() && versions.is_empty() {
                break;
            }
            let mut resealed_documents = Vec::with_capacity(documents.len());
            for document in documents {
                let Ok(path) = self.observe(&context, open_path(&context, &document)) else {
                    continue;
                };
                let path = strongroom_domain::DocumentPath::parse(&path)?;
                resealed_documents.push(StoredDocument {
                    sealed_path: super::seal_path(&context, &document.id, &path)?,
                    key_version: current,
                    ..document
                });
            }
            let mut resealed_versions = Vec::with_capacity(versions.len());
            for version in versions {
                let Ok(meta) = self.observe(&context, open_meta(&context, &version)) else {
                    continue;
                };
                resealed_versions.push(StoredDocumentVersion {
                    sealed_meta: seal_meta(&context, &version.document_id, version.version, &meta)?,
                    key_version: current,
                    ..version
                });
            }
            let changed = context
                .store
                .reseal_document_items(resealed_documents, resealed_versions)
                .await?;
            total += changed;
            if changed == 0 {
                break; // only damaged items are left; they stay readable under their old key
            }
        }
        for blob_id in context.blobs.list()? {
            if !context.store.blob_registered(&blob_id)? {
                continue;
            }
            let guard = context.blob_lock.clone().lock_owned().await;
            let blob_context = context.clone();
            let outcome = tokio::task::spawn_blocking(move || {
                let _guard = guard;
                reseal_blob(&blob_context, &blob_id)
            })
            .await
            .map_err(|error| ServiceError::Internal(format!("blob re-sealing: {error}")))?;
            if self.observe(&context, outcome).unwrap_or(false) {
                total += 1;
            }
        }
        Ok(total)
    }
}
