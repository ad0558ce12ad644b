pub mod access;
pub mod admin;
pub mod audit;
pub mod collections;
pub mod documents;
pub mod health;
pub mod operators;
pub mod records;
pub mod sso;
pub mod support_access;
pub mod users;

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// A JSON response with a status and optional extra headers.
pub(crate) fn json_response<T: Serialize>(
    status: StatusCode,
    body: T,
    headers: HeaderMap,
) -> Response {
    let mut response = (status, Json(body)).into_response();
    response.headers_mut().extend(headers);
    response
}

pub(crate) fn etag_headers(version: u64) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(&format!("\"{version}\"")) {
        headers.insert(header::ETAG, value);
    }
    headers
}
