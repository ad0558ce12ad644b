//! Per-request bookkeeping for both listeners: a request id, HSTS on every response, metrics,
//! and logging of internal error details (which never reach the client).

use crate::metrics::Metrics;
use crate::problem::{ApiError, ErrorCode, InternalDetail};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tracing::Instrument;

/// Two years, subdomains included: browsers then never try plain HTTP (A1).
const HSTS: &str = "max-age=63072000; includeSubDomains";

#[derive(Clone, Copy, Debug)]
pub enum Listener {
    Public,
    Admin,
}

impl Listener {
    pub fn as_str(self) -> &'static str {
        match self {
            Listener::Public => "public",
            Listener::Admin => "admin",
        }
    }
}

#[derive(Clone)]
pub struct ObserveState {
    listener: Listener,
    metrics: Arc<Metrics>,
    prefix: Arc<str>,
    counter: Arc<AtomicU64>,
}

impl ObserveState {
    pub fn new(listener: Listener, metrics: Arc<Metrics>) -> Self {
        let prefix = strongroom_crypto_free_prefix();
        Self {
            listener,
            metrics,
            prefix: prefix.into(),
            counter: Arc::new(AtomicU64::new(1)),
        }
    }
}

/// A per-process prefix for request ids, so ids from two runs do not collide.
fn strongroom_crypto_free_prefix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or_default();
    format!(
        "{:08x}",
        (nanos as u64 ^ u64::from(std::process::id())) & 0xffff_ffff
    )
}

/// The tenant slug of a public data path, for the request span. Slugs are not secret.
fn tenant_of(path: &str) -> &str {
    path.strip_prefix("/v1/tenants/")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or("-")
}

/// The request's id, for the audit trail.
#[derive(Clone, Debug)]
pub(crate) struct RequestId(pub String);

/// Filled by the caller extractor when a request is made under a break-glass grant, so the
/// answer can be marked and the request logged as such.
#[derive(Clone, Default)]
pub(crate) struct SupportSlot(pub Arc<std::sync::OnceLock<strongroom_service::SupportMark>>);

pub async fn observe(
    State(state): State<ObserveState>,
    mut request: Request,
    next: Next,
) -> Response {
    let support = SupportSlot::default();
    request.extensions_mut().insert(support.clone());
    let request_id = format!(
        "{}-{}",
        state.prefix,
        state.counter.fetch_add(1, Ordering::Relaxed)
    );
    request
        .extensions_mut()
        .insert(RequestId(request_id.clone()));
    let method = request.method().clone();
    let span = tracing::info_span!("request", request_id = %request_id, listener = state.listener.as_str(), tenant = %tenant_of(request.uri().path()), method = %method);
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status();
    if let Some(mark) = support.0.get() {
        span.in_scope(|| {
            tracing::info!(target: "support_access", grant_id = %mark.grant_id, operator = %mark.operator, status = status.as_u16(), "request under a break-glass grant")
        });
        if let Ok(value) = HeaderValue::from_str(&mark.grant_id) {
            response
                .headers_mut()
                .insert("strongroom-support-grant", value);
        }
    }
    if let Some(InternalDetail(detail)) = response.extensions_mut().remove::<InternalDetail>() {
        span.in_scope(
            || tracing::error!(status = status.as_u16(), detail = %detail, "request failed"),
        );
    } else {
        span.in_scope(|| tracing::debug!(status = status.as_u16(), "request answered"));
    }
    let headers = response.headers_mut();
    headers.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static(HSTS),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        headers.insert("x-request-id", value);
    }
    state
        .metrics
        .count_request(state.listener.as_str(), status.as_u16());
    response
}

pub async fn not_found() -> Response {
    ApiError::new(ErrorCode::NotFound, "no such route on this listener").into_response()
}

pub async fn method_not_allowed() -> Response {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "this route does not accept that method",
    )
    .into_response()
}
