//! Uploads: the body is streamed through a blocking task that seals 64 KiB chunks into a new
//! blob file, so memory stays flat whatever the file size; limits are enforced while streaming
//! and a refused or interrupted upload leaves nothing behind.

use super::blob_format::{BlobHeader, CHUNK_SIZE};
use super::{
    ContentStream, VersionMeta, current, document_view, path_token, prefix_tokens, seal_meta,
    seal_path,
};
use crate::journal::{JournalChange, sealer};
use crate::platform::Platform;
use crate::sealing::{context, index_domain};
use crate::tenant_context::TenantContext;
use crate::tenants::{Need, TokenPrincipal};
use crate::{PutOutcome, ServiceError, views::DocumentView};
use bytes::Bytes;
use strongroom_crypto::{BlindIndexKey, ChunkSealer, Sha256Hasher};
use strongroom_domain::DocumentPath;
use strongroom_storage::{
    BlobUpload, NewDocumentVersion, StorageError, StoredDocument, StoredDocumentVersion,
};
use tokio::sync::mpsc;

const CONTENT_TYPE_LENGTH_MAX: usize = 255;
/// Bytes gathered from the network before they go to the sealing task (4 pieces in flight).
const PIECE_BYTES: usize = 256 * 1024;

enum Piece {
    Data(Bytes),
    /// The client went away or sent a broken body.
    Abort,
}

/// A fully written, not yet committed blob.
struct SealedUpload {
    /// The random stream id in the blob's header, recorded with the version.
    stream_id: String,
    upload: Box<dyn BlobUpload>,
    blob_id: String,
    size: u64,
    sha256: String,
}

struct SealingWriter {
    stream_id: String,
    upload: Box<dyn BlobUpload>,
    sealer: ChunkSealer,
    pending: Vec<u8>,
    index: u64,
    size: u64,
    size_max: u64,
    quota_left: u64,
    index_key: BlindIndexKey,
    sha256: Sha256Hasher,
}

impl SealingWriter {
    fn push(&mut self, bytes: &[u8]) -> Result<(), ServiceError> {
        self.size += bytes.len() as u64;
        if self.size > self.size_max {
            return Err(ServiceError::PayloadTooLarge(format!(
                "the file exceeds the limit of {} bytes per file",
                self.size_max
            )));
        }
        if self.size > self.quota_left {
            return Err(ServiceError::QuotaExceeded(
                "the tenant's storage quota would be exceeded; delete or purge documents first"
                    .into(),
            ));
        }
        self.sha256.update(bytes);
        self.pending.extend_from_slice(bytes);
        // A full chunk is kept back until more data proves it is not the last one.
        while self.pending.len() > CHUNK_SIZE {
            let sealed = self
                .sealer
                .seal(self.index, false, &self.pending[..CHUNK_SIZE])?;
            self.upload.write(&sealed)?;
            self.pending.drain(..CHUNK_SIZE);
            self.index += 1;
        }
        Ok(())
    }

    fn finish(mut self) -> Result<SealedUpload, ServiceError> {
        let sealed = self.sealer.seal(self.index, true, &self.pending)?;
        self.upload.write(&sealed)?;
        // One pass of SHA-256 serves both the checksum and, keyed, the blob's content id.
        let digest = self.sha256.finish();
        let blob_id = self
            .index_key
            .content_id(index_domain::BLOB_CONTENT, &digest);
        Ok(SealedUpload {
            stream_id: self.stream_id,
            upload: self.upload,
            blob_id,
            size: self.size,
            sha256: hex::encode(digest),
        })
    }
}

fn seal_stream(
    context: &TenantContext,
    mut pieces: mpsc::Receiver<Piece>,
    size_max: u64,
    quota_left: u64,
) -> Result<SealedUpload, ServiceError> {
    let stream_id: [u8; 16] = strongroom_crypto::random_bytes_32()?[..16]
        .try_into()
        .map_err(|_| ServiceError::Internal("stream id".into()))?;
    let header = BlobHeader::new(context.keys.keyring.current_version(), stream_id);
    let mut upload = context.blobs.create()?;
    upload.write(&header.bytes)?;
    let mut writer = SealingWriter {
        stream_id: hex::encode(stream_id),
        upload,
        sealer: context
            .keys
            .keyring
            .chunk_sealer(&context::blob(&context.tenant_id, &header.bytes)),
        pending: Vec::with_capacity(2 * CHUNK_SIZE),
        index: 0,
        size: 0,
        size_max,
        quota_left,
        index_key: context.keys.index_key.clone(),
        sha256: Sha256Hasher::default(),
    };
    while let Some(piece) = pieces.blocking_recv() {
        match piece {
            Piece::Data(bytes) => writer.push(&bytes)?,
            Piece::Abort => {
                return Err(ServiceError::Invalid(
                    strongroom_domain::DomainError::InvalidField {
                        field: "body".into(),
                        reason: "the upload was interrupted before it ended; nothing was stored"
                            .into(),
                    },
                ));
            }
        }
    }
    writer.finish()
}

fn check_content_type(content_type: Option<&str>) -> Result<String, ServiceError> {
    let content_type = content_type.unwrap_or("application/octet-stream").trim();
    if content_type.is_empty()
        || content_type.len() > CONTENT_TYPE_LENGTH_MAX
        || content_type.chars().any(char::is_control)
    {
        return Err(ServiceError::Invalid(
            strongroom_domain::DomainError::InvalidField {
                field: "content-type".into(),
                reason: format!(
                    "must be 1 to {CONTENT_TYPE_LENGTH_MAX} characters without control characters"
                ),
            },
        ));
    }
    Ok(content_type.to_owned())
}

impl Platform {
    /// Stores a new document or a new version of one, streaming `body` without holding it.
    pub async fn put_document(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
        path: &str,
        content_type: Option<&str>,
        mut body: ContentStream,
    ) -> Result<(DocumentView, PutOutcome), ServiceError> {
        let path = DocumentPath::parse(path)?;
        let content_type = check_content_type(content_type)?;
        let context = self
            .tenant_context(principal, slug, Need::documents_write(path.as_str()))
            .await?;
        let limits = &self.options.documents;
        // While streaming, a file may fill at most what is left of the quota; the exact check
        // runs again at commit, under the blob lock.
        let quota_left = limits
            .tenant_quota_bytes
            .saturating_sub(context.store.storage_used_bytes()?);
        let (sender, receiver) = mpsc::channel::<Piece>(4);
        let writer_context = TenantContext {
            collections: None,
            ..context.clone()
        };
        let size_max = limits.file_bytes_max;
        let permit = self.transfer_permit()?;
        let writer = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            seal_stream(&writer_context, receiver, size_max, quota_left)
        });
        // Small network frames are gathered into larger pieces: fewer hand-offs to the writer.
        let mut gathered: Vec<u8> = Vec::with_capacity(PIECE_BYTES);
        loop {
            match std::future::poll_fn(|cx| body.as_mut().poll_next(cx)).await {
                Some(Ok(bytes)) => {
                    gathered.extend_from_slice(&bytes);
                    if gathered.len() >= PIECE_BYTES {
                        let piece = Bytes::from(std::mem::replace(
                            &mut gathered,
                            Vec::with_capacity(PIECE_BYTES),
                        ));
                        if sender.send(Piece::Data(piece)).await.is_err() {
                            break; // the writer stopped early (a limit); its error is the answer
                        }
                    }
                }
                Some(Err(_)) => {
                    let _ = sender.send(Piece::Abort).await;
                    break;
                }
                None => {
                    if !gathered.is_empty() {
                        let _ = sender.send(Piece::Data(Bytes::from(gathered))).await;
                    }
                    break;
                }
            }
        }
        drop(sender);
        let sealed = writer
            .await
            .map_err(|error| ServiceError::Internal(format!("upload task: {error}")))??;
        let quota = self.options.documents.tenant_quota_bytes;
        let now = self.clock.now().unix_micros();
        let guard = context.blob_lock.clone().lock_owned().await;
        // The commit runs to its end in a task of its own, holding the blob lock, even when
        // this request is dropped meanwhile: a purge never sees a blob whose commit is pending.
        tokio::spawn(async move {
            let _guard = guard;
            commit_upload(&context, quota, now, path, content_type, sealed).await
        })
        .await
        .map_err(|error| ServiceError::Internal(format!("upload commit: {error}")))?
    }
}

/// Makes the blob durable and records the version. The caller holds the tenant's blob lock.
async fn commit_upload(
    context: &TenantContext,
    quota_bytes: u64,
    now: i64,
    path: DocumentPath,
    content_type: String,
    sealed: SealedUpload,
) -> Result<(DocumentView, PutOutcome), ServiceError> {
    let already_stored = context.store.blob_registered(&sealed.blob_id)?;
    if !already_stored && context.store.storage_used_bytes()? + sealed.size > quota_bytes {
        return Err(ServiceError::QuotaExceeded(
            "the tenant's storage quota would be exceeded; delete or purge documents first".into(),
        ));
    }
    let SealedUpload {
        upload,
        blob_id,
        size,
        sha256,
        stream_id,
    } = sealed;
    let finish_id = blob_id.clone();
    let newly_stored = tokio::task::spawn_blocking(move || upload.finish(&finish_id))
        .await
        .map_err(|error| ServiceError::Internal(error.to_string()))??;
    // Content that was already stored keeps its own stream id, which the version records.
    let stream_id = if newly_stored {
        stream_id
    } else {
        super::blob_format::stored_stream_id(context, &blob_id)?
    };
    let stored = StoredContent {
        blob_id: blob_id.clone(),
        size,
        sha256,
        stream_id,
    };
    let result = record_version(context, now, &path, content_type, stored).await;
    if result.is_err() && newly_stored && !context.store.blob_registered(&blob_id)? {
        let _ = context.blobs.remove(&blob_id);
    }
    result
}

/// What a version points to.
struct StoredContent {
    blob_id: String,
    size: u64,
    sha256: String,
    stream_id: String,
}

async fn record_version(
    context: &TenantContext,
    now: i64,
    path: &DocumentPath,
    content_type: String,
    content: StoredContent,
) -> Result<(DocumentView, PutOutcome), ServiceError> {
    let StoredContent {
        blob_id,
        size,
        sha256,
        stream_id,
    } = content;
    let existing = match current(context, path) {
        Ok((document, _)) => Some(document),
        Err(ServiceError::NotFound(_)) => None,
        Err(other) => return Err(other),
    };
    let (document, outcome) = match existing {
        Some(document) => (
            StoredDocument {
                updated_at: now,
                ..document
            },
            PutOutcome::Updated,
        ),
        None => {
            let id = strongroom_crypto::random_hex_id()?;
            let document = StoredDocument {
                sealed_path: seal_path(context, &id, path)?,
                path_id: path_token(context, path),
                key_version: context.keys.keyring.current_version(),
                trashed_at: None,
                current_version: 0,
                created_at: now,
                updated_at: now,
                id,
            };
            (document, PutOutcome::Created)
        }
    };
    let number = document.current_version + 1;
    let meta = VersionMeta {
        format: 1,
        content_type,
        sha256,
        stream_id: stream_id.clone(),
    };
    let version = StoredDocumentVersion {
        document_id: document.id.clone(),
        version: number,
        blob_id: blob_id.clone(),
        size,
        sealed_meta: seal_meta(context, &document.id, number, &meta)?,
        key_version: context.keys.keyring.current_version(),
        created_at: now,
        superseded_at: None,
    };
    let change = JournalChange::DocumentVersion {
        document_id: document.id.clone(),
        path: path.as_str().to_owned(),
        version: number,
        blob_id,
        size,
        content_type: meta.content_type.clone(),
        sha256: meta.sha256.clone(),
        stream_id,
        at: now,
    };
    let new = NewDocumentVersion {
        document: StoredDocument {
            current_version: number,
            ..document.clone()
        },
        version: version.clone(),
        prefix_tokens: prefix_tokens(context, path),
    };
    context
        .store
        .put_document_version(new, sealer(&context.tenant_id, &context.keys, change))
        .await
        .map_err(|error| match error {
            StorageError::Conflict(_) => ServiceError::Conflict(
                "the document changed during the upload; upload again".into(),
            ),
            other => other.into(),
        })?;
    Ok((
        document_view(path.as_str().to_owned(), &document, &version, meta),
        outcome,
    ))
}
