//! Answers whose body stops before its end. A request's event is durable before its answer
//! leaves (fail closed), so its `bytes_sent` is what the answer carries. When the body then
//! stops early (the client went away, or reading a document failed half-way), a second event
//! of the same request, phase `cut_short`, records how many bytes were sent.

use axum::body::{Body, Bytes};
use http_body::{Body as _, Frame, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll};

/// Bodies up to this size go out in one write; only larger or unsized ones are counted.
pub(crate) const COUNTED_FROM_BYTES: u64 = 64 * 1024;

/// Why a body stopped before its end, as the event's `reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CutShort {
    /// The connection or stream closed while the body was being sent.
    ClientGone,
    /// Producing the body failed (a chunk that failed its integrity check, a read error).
    BodyFailed,
}

impl CutShort {
    pub fn reason(self) -> &'static str {
        match self {
            CutShort::ClientGone => "client_gone",
            CutShort::BodyFailed => "body_failed",
        }
    }
}

type OnCut = Box<dyn FnOnce(u64, CutShort) + Send + Sync>;

/// Counts the bytes a body hands to the connection and calls `on_cut` with the count if the
/// body is dropped before its end: before the stream ended, or, when the answer's length is
/// known (its `Content-Length`), before that many bytes went out. HTTP/1 stops writing at the
/// length its header gave and drops a streamed body without polling it to its end.
pub(crate) struct CountedBody {
    inner: Body,
    sent: u64,
    expected: Option<u64>,
    ended: bool,
    failed: bool,
    on_cut: Option<OnCut>,
}

impl CountedBody {
    pub fn new(inner: Body, length: Option<u64>, on_cut: OnCut) -> Self {
        let expected = length.or_else(|| inner.size_hint().exact());
        Self {
            inner,
            sent: 0,
            expected,
            ended: false,
            failed: false,
            on_cut: Some(on_cut),
        }
    }

    fn complete(&self) -> bool {
        !self.failed && (self.ended || self.expected.is_some_and(|length| self.sent >= length))
    }
}

impl http_body::Body for CountedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(context);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                let length = frame.data_ref().map_or(0, |data| data.len() as u64);
                self.sent += length;
            }
            Poll::Ready(Some(Err(_))) => self.failed = true,
            Poll::Ready(None) => self.ended = true,
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for CountedBody {
    fn drop(&mut self) {
        if self.complete() {
            return;
        }
        let why = match self.failed {
            true => CutShort::BodyFailed,
            false => CutShort::ClientGone,
        };
        if let Some(on_cut) = self.on_cut.take() {
            on_cut(self.sent, why);
        }
    }
}

/// Whether an answer's body is worth counting: it has one, and it may take more than one
/// write (large or of unknown size).
pub(crate) fn worth_counting(
    method: &axum::http::Method,
    response: &axum::response::Response,
) -> bool {
    let status = response.status();
    let no_body = *method == axum::http::Method::HEAD
        || status == axum::http::StatusCode::NO_CONTENT
        || status == axum::http::StatusCode::NOT_MODIFIED
        || status.is_informational();
    !no_body
        && response
            .body()
            .size_hint()
            .exact()
            .is_none_or(|length| length > COUNTED_FROM_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::sync::{Arc, Mutex};

    type Heard = Arc<Mutex<Option<(u64, CutShort)>>>;

    fn counted(body: Body) -> (CountedBody, Heard) {
        counted_with_length(body, None)
    }

    fn counted_with_length(body: Body, length: Option<u64>) -> (CountedBody, Heard) {
        let heard: Heard = Arc::default();
        let hearing = heard.clone();
        let body = CountedBody::new(
            body,
            length,
            Box::new(move |sent, why| *hearing.lock().unwrap() = Some((sent, why))),
        );
        (body, heard)
    }

    fn chunks(parts: Vec<Result<&'static [u8], std::io::Error>>) -> Body {
        Body::from_stream(futures_util::stream::iter(
            parts.into_iter().map(|part| part.map(Bytes::from_static)),
        ))
    }

    #[tokio::test]
    async fn a_body_read_to_its_end_is_not_cut_short() {
        let (body, heard) = counted(chunks(vec![Ok(b"abc"), Ok(b"def")]));
        assert_eq!(&body.collect().await.unwrap().to_bytes()[..], b"abcdef");
        assert_eq!(*heard.lock().unwrap(), None);
    }

    #[tokio::test]
    async fn a_body_dropped_half_way_reports_the_bytes_sent() {
        let (mut body, heard) = counted(chunks(vec![Ok(b"abc"), Ok(b"def")]));
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.data_ref().unwrap().len(), 3);
        drop(body);
        assert_eq!(*heard.lock().unwrap(), Some((3, CutShort::ClientGone)));
    }

    #[tokio::test]
    async fn a_body_that_fails_reports_it() {
        let failure = std::io::Error::other("a chunk failed its integrity check");
        let (body, heard) = counted(chunks(vec![Ok(b"abc"), Err(failure), Ok(b"def")]));
        assert!(body.collect().await.is_err());
        assert_eq!(*heard.lock().unwrap(), Some((3, CutShort::BodyFailed)));
    }

    #[tokio::test]
    async fn a_sized_body_whose_last_byte_went_out_is_complete_unpolled_to_its_end() {
        let (mut body, heard) = counted(Body::from(vec![7u8; 10]));
        body.frame().await.unwrap().unwrap();
        drop(body);
        assert_eq!(*heard.lock().unwrap(), None);
    }

    /// A streamed body with a `Content-Length`, as downloads are: HTTP/1 stops at that length
    /// and drops the body unpolled to its end; that is no cut. One byte short is.
    #[tokio::test]
    async fn a_streamed_body_that_sent_its_promised_length_is_complete() {
        let (mut body, heard) = counted_with_length(chunks(vec![Ok(b"abc"), Ok(b"def")]), Some(6));
        body.frame().await.unwrap().unwrap();
        body.frame().await.unwrap().unwrap();
        drop(body);
        assert_eq!(*heard.lock().unwrap(), None);
        let (mut body, heard) = counted_with_length(chunks(vec![Ok(b"abc"), Ok(b"def")]), Some(7));
        body.frame().await.unwrap().unwrap();
        body.frame().await.unwrap().unwrap();
        drop(body);
        assert_eq!(*heard.lock().unwrap(), Some((6, CutShort::ClientGone)));
    }

    #[test]
    fn small_bodies_heads_and_empty_answers_are_not_counted() {
        let answer = |body: Body, status| {
            let mut response = axum::response::Response::new(body);
            *response.status_mut() = status;
            response
        };
        let (get, head) = (axum::http::Method::GET, axum::http::Method::HEAD);
        let large = || Body::from(vec![0u8; COUNTED_FROM_BYTES as usize + 1]);
        let ok = axum::http::StatusCode::OK;
        assert!(worth_counting(&get, &answer(large(), ok)));
        assert!(worth_counting(&get, &answer(chunks(vec![Ok(b"a")]), ok)));
        assert!(!worth_counting(&get, &answer(Body::from("{}"), ok)));
        assert!(!worth_counting(&head, &answer(large(), ok)));
        let no_content = axum::http::StatusCode::NO_CONTENT;
        assert!(!worth_counting(&get, &answer(Body::empty(), no_content)));
    }
}
