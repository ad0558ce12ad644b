//! Downloads: a blocking task opens only the chunks a (ranged) read needs and streams them
//! out through a small channel, so memory stays flat. Damage is found before the answer
//! starts where it can be (wrong length, first chunk); later damage ends the stream.

use super::blob_format::{BlobHeader, CHUNK_SIZE, HEADER_LENGTH, chunk_position, sealed_length};
use super::{ContentStream, current, document_view, open_meta, version_of};
use crate::platform::Platform;
use crate::sealing::context;
use crate::tenant_context::TenantContext;
use crate::tenants::{Need, TokenPrincipal};
use crate::{ServiceError, views::DocumentView};
use bytes::Bytes;
use std::pin::Pin;
use std::task::{Context, Poll};
use strongroom_crypto::CHUNK_OVERHEAD;
use strongroom_domain::{ByteRange, DocumentPath};
use strongroom_storage::StoredDocumentVersion;
use tokio::sync::mpsc;

/// A document's content, whole or one range of it.
pub struct DocumentContent {
    pub document: DocumentView,
    /// `Some((first, last))` for a partial answer (206), inclusive.
    pub range: Option<(u64, u64)>,
    pub length: u64,
    pub body: ContentStream,
}

struct ChannelStream {
    first: Option<Bytes>,
    rest: mpsc::Receiver<Result<Bytes, std::io::Error>>,
}

impl futures_core::Stream for ChannelStream {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(Ok(first)));
        }
        self.rest.poll_recv(cx)
    }
}

/// Reads plaintext bytes `first..=last` of a blob, chunk by chunk, into `output`.
fn stream_plaintext(
    context: &TenantContext,
    version: &StoredDocumentVersion,
    expected_stream_id: &str,
    first: u64,
    last: u64,
    output: mpsc::Sender<Result<Bytes, std::io::Error>>,
) -> Result<(), ServiceError> {
    let what = format!(
        "the content of version {} of document {}",
        version.version, version.document_id
    );
    let integrity = || ServiceError::Integrity { what: what.clone() };
    // A missing file is damage, not "not found": the version says it exists.
    let blob = context
        .blobs
        .open(&version.blob_id)
        .map_err(|_| integrity())?;
    if blob.length() != sealed_length(version.size) {
        return Err(integrity());
    }
    let mut header = [0u8; HEADER_LENGTH];
    blob.read_exact_at(0, &mut header)?;
    let header = BlobHeader::parse(header, &what)?;
    if header.stream_id_hex() != expected_stream_id {
        return Err(integrity());
    }
    let opener = context
        .keys
        .keyring
        .chunk_opener(
            header.key_version,
            &context::blob(&context.tenant_id, &header.bytes),
        )
        .map_err(|_| integrity())?;
    let last_chunk = super::blob_format::chunk_count(version.size) - 1;
    let mut sealed = vec![0u8; CHUNK_SIZE + CHUNK_OVERHEAD];
    for index in first / CHUNK_SIZE as u64..=last / CHUNK_SIZE as u64 {
        let (offset, plaintext_length) = chunk_position(version.size, index);
        let buffer = &mut sealed[..plaintext_length + CHUNK_OVERHEAD];
        blob.read_exact_at(offset, buffer)?;
        let plaintext = opener
            .open(index, index == last_chunk, buffer)
            .map_err(|_| integrity())?;
        let chunk_start = index * CHUNK_SIZE as u64;
        let from = first.saturating_sub(chunk_start) as usize;
        let to = ((last - chunk_start) as usize + 1).min(plaintext.len());
        if output
            .blocking_send(Ok(Bytes::copy_from_slice(&plaintext[from..to])))
            .is_err()
        {
            return Ok(()); // the client went away
        }
    }
    Ok(())
}

impl Platform {
    /// The current version of a document, or `version`, whole or the given range.
    pub async fn get_document(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
        path: &str,
        version: Option<u64>,
        range: Option<ByteRange>,
    ) -> Result<DocumentContent, ServiceError> {
        let path = DocumentPath::parse(path)?;
        let context = self
            .tenant_context(principal, slug, Need::download(path.as_str()))
            .await?;
        let (document, versions) = current(&context, &path)?;
        let chosen = version_of(&versions, version.unwrap_or(document.current_version))?.clone();
        let meta = self.observe(&context, open_meta(&context, &chosen))?;
        let expected_stream_id = meta.stream_id.clone();
        let view = document_view(path.as_str().to_owned(), &document, &chosen, meta);
        // An empty document has no byte to point at: a range on it is ignored (200, not 416).
        let range = range.filter(|_| chosen.size > 0);
        let (first, last, partial) = match range {
            None => (0, chosen.size.saturating_sub(1), None),
            Some(range) => {
                let (first, last) = range
                    .resolve(chosen.size)
                    .ok_or(ServiceError::RangeNotSatisfiable { size: chosen.size })?;
                (first, last, Some((first, last)))
            }
        };
        let length = if chosen.size == 0 {
            0
        } else {
            last - first + 1
        };
        let (sender, mut receiver) = mpsc::channel(4);
        let reader_context = TenantContext {
            collections: None,
            ..context.clone()
        };
        let permit = self.transfer_permit()?;
        let platform = self.security.platform();
        let origin = crate::security::RequestOrigin::current();
        let reader = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let result = if chosen.size == 0 {
                stream_plaintext(
                    &reader_context,
                    &chosen,
                    &expected_stream_id,
                    0,
                    0,
                    sender.clone(),
                )
            } else {
                stream_plaintext(
                    &reader_context,
                    &chosen,
                    &expected_stream_id,
                    first,
                    last,
                    sender.clone(),
                )
            };
            // A piece that fails its check after the answer began (its status already sent) is
            // a security event like one that fails first: the trail shows the break. Raised
            // before the reader of the body hears of it.
            let result = match platform.upgrade() {
                Some(platform) => crate::security::RequestOrigin::on_this_thread(origin, || {
                    platform.observe(&reader_context, result)
                }),
                None => result,
            };
            if let Err(error) = &result {
                tracing::warn!(tenant_id = %reader_context.tenant_id, %error, "a document read stopped");
                let _ = sender.blocking_send(Err(std::io::Error::other(error.to_string())));
            }
            result
        });
        // The first piece (or the error that came instead) decides the status code.
        let first_piece = match receiver.recv().await {
            Some(Ok(bytes)) => Some(bytes),
            // The reader raised any integrity event itself.
            Some(Err(_)) | None => {
                reader
                    .await
                    .map_err(|error| ServiceError::Internal(error.to_string()))??;
                None
            }
        };
        Ok(DocumentContent {
            document: view,
            range: partial,
            length,
            body: Box::pin(ChannelStream {
                first: first_piece,
                rest: receiver,
            }),
        })
    }
}
