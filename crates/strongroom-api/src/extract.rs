//! Request extractors that answer every rejection with a problem document.

use crate::AppState;
use crate::problem::{ApiError, ErrorCode};
use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use strongroom_service::{OperatorPrincipal, TokenPrincipal};

fn bearer_token(parts: &Parts) -> Result<&str, ApiError> {
    bearer_token_in(&parts.headers)
}

/// The credential a request presents (a bearer token, or else the session cookie where the
/// extractors would take it: not for a change another site started), for the audit trail's
/// actor before a handler runs; the extractors below decide whether it is any good.
pub(crate) fn presented_credential<'h>(
    method: &axum::http::Method,
    headers: &'h axum::http::HeaderMap,
) -> Option<&'h str> {
    bearer_token_in(headers)
        .ok()
        .or_else(|| cookie(headers, SESSION_COOKIE).filter(|_| !cross_site_write(method, headers)))
}

fn bearer_token_in(headers: &axum::http::HeaderMap) -> Result<&str, ApiError> {
    let unauthenticated = || {
        ApiError::new(
            ErrorCode::Unauthenticated,
            "send a valid token as `Authorization: Bearer <token>`",
        )
    };
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(unauthenticated)?;
    let value = value.to_str().map_err(|_| unauthenticated())?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .ok_or_else(unauthenticated)?
        .trim();
    if token.is_empty() || token.len() > 256 {
        return Err(unauthenticated());
    }
    Ok(token)
}

/// A caller holding a tenant API token.
pub struct TenantCaller(pub Arc<TokenPrincipal>);

/// The session cookie set at login: `__Host-` keeps it to this host, over HTTPS, path `/`.
pub const SESSION_COOKIE: &str = "__Host-strongroom-session";

fn session_cookie(parts: &Parts) -> Option<&str> {
    cookie(&parts.headers, SESSION_COOKIE)
}

/// The value of the cookie `name`, if the request carries it.
pub(crate) fn cookie<'h>(headers: &'h axum::http::HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(name)?.strip_prefix('='))
}

/// A browser sends the session cookie with requests other sites start; SameSite=Strict stops
/// other sites but not sibling subdomains. Changes made with the cookie must come from the
/// same origin (`Sec-Fetch-Site`, sent by current browsers); bearer-token clients are not
/// browsers and are not affected.
fn refuse_cross_site_writes(parts: &Parts) -> Result<(), ApiError> {
    match cross_site_write(&parts.method, &parts.headers) {
        false => Ok(()),
        true => Err(ApiError::new(
            ErrorCode::MissingPermission,
            "changes made with the session cookie must come from this site's own pages",
        )),
    }
}

/// A change another site started (`Sec-Fetch-Site` other than same-origin or none).
fn cross_site_write(method: &axum::http::Method, headers: &axum::http::HeaderMap) -> bool {
    let safe_method = matches!(*method, axum::http::Method::GET | axum::http::Method::HEAD);
    let site = headers
        .get("sec-fetch-site")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("none");
    !safe_method && !matches!(site, "same-origin" | "none")
}

/// The tenant slug of a `/v1/tenants/{slug}/…` path; sessions live in their tenant.
fn path_slug(parts: &Parts) -> Option<&str> {
    parts
        .uri
        .path()
        .strip_prefix("/v1/tenants/")?
        .split('/')
        .next()
        .filter(|slug| !slug.is_empty())
}

impl FromRequestParts<AppState> for TenantCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = match bearer_token(parts) {
            Ok(token) => token,
            Err(error) => {
                let cookie = session_cookie(parts).ok_or(error)?;
                refuse_cross_site_writes(parts)?;
                cookie
            }
        };
        if token.starts_with("srs_") {
            let slug = path_slug(parts).ok_or_else(|| {
                ApiError::new(
                    ErrorCode::Unauthenticated,
                    "a session token works only under /v1/tenants/{slug}",
                )
            })?;
            let principal = state.platform.authenticate_session(slug, token).await?;
            record_actor(parts, strongroom_service::AuditActor::of(&principal));
            return Ok(TenantCaller(principal));
        }
        let principal = state.platform.authenticate_token(token).await?;
        record_actor(parts, strongroom_service::AuditActor::of(&principal));
        if let (Some(mark), Some(slot)) = (
            &principal.support,
            parts.extensions.get::<crate::observe::SupportSlot>(),
        ) {
            let _ = slot.0.set(mark.clone());
        }
        Ok(TenantCaller(principal))
    }
}

/// Tells the audit trail who the caller is.
fn record_actor(parts: &Parts, actor: strongroom_service::AuditActor) {
    if let Some(facts) = parts.extensions.get::<crate::audit::AuditFacts>() {
        facts.set_actor(actor);
    }
}

/// A caller holding an operator credential.
pub struct OperatorCaller(pub OperatorPrincipal);

impl FromRequestParts<AppState> for OperatorCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(parts)?;
        let operator = state.platform.authenticate_operator(token).await?;
        record_actor(
            parts,
            strongroom_service::AuditActor::Operator {
                name: operator.name.clone(),
            },
        );
        Ok(OperatorCaller(operator))
    }
}

/// Path parameters; a malformed one is a 400 problem.
pub struct PathParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for PathParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| PathParams(value))
            .map_err(|rejection| ApiError::new(ErrorCode::InvalidRequest, rejection.body_text()))
    }
}

/// Query-string pairs in order, for validation by the domain.
pub struct QueryPairs(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map(|Query(pairs)| QueryPairs(pairs))
            .map_err(|rejection| ApiError::new(ErrorCode::InvalidQuery, rejection.body_text()))
    }
}

/// The `If-Match` header as a record version: `"3"` → 3; `*` or absent → no condition.
pub struct IfMatch(pub Option<u64>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get(header::IF_MATCH) else {
            return Ok(IfMatch(None));
        };
        let invalid = || {
            ApiError::new(
                ErrorCode::InvalidRequest,
                "If-Match must be the ETag of the record, such as \"3\", or *",
            )
        };
        let text = value.to_str().map_err(|_| invalid())?.trim();
        if text == "*" {
            return Ok(IfMatch(None));
        }
        let version = text
            .strip_prefix('"')
            .and_then(|rest| rest.strip_suffix('"'))
            .ok_or_else(invalid)?;
        version
            .parse::<u64>()
            .map(|version| IfMatch(Some(version)))
            .map_err(|_| invalid())
    }
}

/// A JSON request body, read up to the configured limit. Too large → 413; not JSON → 415;
/// malformed, wrong types or unknown fields → 400 naming line, column and the problem.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        let bytes = read_body(request, state.limits.body_bytes_max).await?;
        if bytes.is_empty() {
            return Err(ApiError::new(
                ErrorCode::MalformedJson,
                "the request body is empty; send a JSON document",
            ));
        }
        parse_json(&bytes).map(JsonBody)
    }
}

/// Like [`JsonBody`] but an empty body is `None`.
pub struct OptionalJsonBody<T>(pub Option<T>);

impl<T: DeserializeOwned> FromRequest<AppState> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        let bytes = read_body(request, state.limits.body_bytes_max).await?;
        if bytes.is_empty() {
            return Ok(OptionalJsonBody(None));
        }
        parse_json(&bytes).map(|value| OptionalJsonBody(Some(value)))
    }
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Every body of this API is an object. serde would take an array for a struct whose fields
    // all have defaults, so `[]` would reset a policy to nothing.
    let starts_an_object = bytes
        .iter()
        .find(|byte| !byte.is_ascii_whitespace())
        .is_some_and(|byte| *byte == b'{');
    if !starts_an_object && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok() {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            "the request body must be a JSON object, such as {\"field\": \"value\"}",
        ));
    }
    serde_json::from_slice(bytes).map_err(|error| {
        let code = if error.is_data() {
            ErrorCode::InvalidRequest
        } else {
            ErrorCode::MalformedJson
        };
        ApiError::new(code, format!("request body: {error}"))
    })
}

async fn read_body(request: Request, limit: usize) -> Result<axum::body::Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("the request body exceeds the limit of {limit} bytes"),
        )
    };
    let headers = request.headers();
    if let Some(length) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok())
        && length > limit as u64
    {
        return Err(too_large());
    }
    if let Some(content_type) = headers.get(header::CONTENT_TYPE) {
        let content_type = content_type
            .to_str()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let essence = content_type.split(';').next().unwrap_or_default().trim();
        if essence != "application/json" && !essence.ends_with("+json") {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "send the body as Content-Type: application/json",
            ));
        }
    }
    let body: Body = request.into_body();
    axum::body::to_bytes(body, limit).await.map_err(|error| {
        let is_limit = std::error::Error::source(&error)
            .is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
        if is_limit {
            too_large()
        } else {
            ApiError::new(
                ErrorCode::InvalidRequest,
                "the request body could not be read completely",
            )
        }
    })
}
