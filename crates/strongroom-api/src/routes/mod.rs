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

/// The value of a query parameter, if given.
pub(crate) fn query_value(pairs: &[(String, String)], name: &str) -> Option<String> {
    pairs
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.clone())
}

/// A page size from `limit`: 100 unless given, 1 to 1000.
pub(crate) fn limit_parameter(pairs: &[(String, String)]) -> Result<u32, crate::problem::ApiError> {
    match query_value(pairs, "limit") {
        None => Ok(100),
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|limit| (1..=1000).contains(limit))
            .ok_or_else(|| {
                crate::problem::ApiError::new(
                    crate::problem::ErrorCode::InvalidQuery,
                    "limit must be from 1 to 1000",
                )
            }),
    }
}

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
