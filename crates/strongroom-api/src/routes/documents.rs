use crate::AppState;
use crate::extract::{PathParams, QueryPairs, TenantCaller};
use crate::problem::{ApiError, ErrorCode, Problem};
use crate::routes::{json_response, limit_parameter, query_value};
use crate::wire::{Document, DocumentPage, DocumentVersionList, TrashEntry, TrashList};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use std::pin::Pin;
use std::task::{Context, Poll};
use strongroom_domain::ByteRange;
use strongroom_service::PutOutcome;

/// An upload body as the service's content stream.
struct UploadStream(axum::body::BodyDataStream);

impl futures_core::Stream for UploadStream {
    type Item = Result<bytes::Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.0)
            .poll_next(cx)
            .map(|item| item.map(|result| result.map_err(std::io::Error::other)))
    }
}

fn version_parameter(pairs: &[(String, String)]) -> Result<Option<u64>, ApiError> {
    query_value(pairs, "version")
        .map(|text| {
            text.parse::<u64>().map_err(|_| {
                ApiError::new(
                    ErrorCode::InvalidQuery,
                    "version must be a positive whole number",
                )
            })
        })
        .transpose()
}

fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"))
}

/// Upload a document (new, or a new version), streamed and sealed in 64 KiB chunks.
#[utoipa::path(put, path = "/v1/tenants/{slug}/documents/{*path}", tag = "documents",
    params(("slug" = String, Path), ("path" = String, Path, description = "Segments separated by '/', at most 1024 bytes")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The file; its Content-Type is stored"),
    responses((status = 201, body = Document), (status = 200, body = Document, description = "A new version"), (status = "4XX", body = Problem, content_type = "application/problem+json"), (status = 507, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["documents:write"])))]
pub async fn put_document(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams((slug, path)): PathParams<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|value| {
            value.to_str().map_err(|_| {
                ApiError::new(
                    ErrorCode::InvalidRequest,
                    "Content-Type must be visible ASCII",
                )
            })
        })
        .transpose()?;
    let stream = Box::pin(UploadStream(body.into_data_stream()));
    let (view, outcome) = state
        .platform
        .put_document(&caller, &slug, &path, content_type, stream)
        .await?;
    let status = if outcome == PutOutcome::Created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut etag = HeaderMap::new();
    etag.insert(header::ETAG, header_value(&view.etag));
    Ok(json_response(status, Document::from(view), etag))
}

/// Download a document (`?version=N` for an older one; `Range` for part of it), or list its
/// versions with `?versions`. HEAD answers the headers only.
#[utoipa::path(get, path = "/v1/tenants/{slug}/documents/{*path}", tag = "documents",
    params(("slug" = String, Path), ("path" = String, Path), ("version" = Option<u64>, Query), ("versions" = Option<String>, Query, description = "Present: list the versions instead"), ("Range" = Option<String>, Header, description = "One range, bytes=first-last")),
    responses((status = 200, description = "The content, or the version list with ?versions", content_type = "application/octet-stream"), (status = 206, description = "The requested range"), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["documents:read"])))]
pub async fn get_document(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams((slug, path)): PathParams<(String, String)>,
    QueryPairs(pairs): QueryPairs,
    method: axum::http::Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if pairs.iter().any(|(key, _)| key == "versions") {
        let versions = state
            .platform
            .document_versions(&caller, &slug, &path)
            .await?;
        let body = DocumentVersionList {
            path,
            versions: versions.into_iter().map(Into::into).collect(),
        };
        return Ok(json_response(StatusCode::OK, body, HeaderMap::new()));
    }
    // HEAD ignores Range; If-Range with another validator asks for the whole, current content.
    let range = headers
        .get(header::RANGE)
        .and_then(|value| value.to_str().ok())
        .and_then(ByteRange::parse)
        .filter(|_| method != axum::http::Method::HEAD);
    let version = version_parameter(&pairs)?;
    let mut content = state
        .platform
        .get_document(&caller, &slug, &path, version, range)
        .await?;
    let if_range = headers
        .get(header::IF_RANGE)
        .and_then(|value| value.to_str().ok());
    if content.range.is_some()
        && if_range.is_some_and(|validator| validator != content.document.etag)
    {
        content = state
            .platform
            .get_document(&caller, &slug, &path, version, None)
            .await?;
    }
    // Counted once, for what is sent; HEAD sends nothing.
    let counted = if method != axum::http::Method::HEAD {
        state
            .platform
            .count_download(
                &caller,
                &slug,
                &content.document.etag,
                content.range.is_some(),
                content.length,
            )
            .await?
    } else {
        None
    };
    let mut response = Response::new(Body::from_stream(content.body));
    // Bytes the body does not get to send are taken back from the count (the audit layer's
    // counting body knows how far it got).
    if let Some(counted) = counted {
        response.extensions_mut().insert(counted);
    }
    let response_headers = response.headers_mut();
    response_headers.insert(
        header::CONTENT_TYPE,
        header_value(&content.document.content_type),
    );
    response_headers.insert(header::CONTENT_LENGTH, HeaderValue::from(content.length));
    response_headers.insert(header::ETAG, header_value(&content.document.etag));
    response_headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Some((first, last)) = content.range {
        response_headers.insert(
            header::CONTENT_RANGE,
            header_value(&format!("bytes {first}-{last}/{}", content.document.size)),
        );
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
    }
    Ok(response)
}

/// Move a document and its versions to the trash.
#[utoipa::path(delete, path = "/v1/tenants/{slug}/documents/{*path}", tag = "documents",
    params(("slug" = String, Path), ("path" = String, Path)),
    responses((status = 200, body = TrashEntry), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["documents:write"])))]
pub async fn delete_document(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams((slug, path)): PathParams<(String, String)>,
) -> Result<Response, ApiError> {
    let entry = state
        .platform
        .delete_document(&caller, &slug, &path)
        .await?;
    Ok(json_response(
        StatusCode::OK,
        TrashEntry::from(entry),
        HeaderMap::new(),
    ))
}

/// `POST …/documents/{path}/restore?version=N`: make version N current again.
#[utoipa::path(post, path = "/v1/tenants/{slug}/documents/{*path}", tag = "documents",
    params(("slug" = String, Path), ("path" = String, Path, description = "The document's path followed by /restore"), ("version" = u64, Query)),
    responses((status = 200, body = Document), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["documents:write"])))]
pub async fn post_document(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams((slug, path)): PathParams<(String, String)>,
    QueryPairs(pairs): QueryPairs,
) -> Result<Response, ApiError> {
    let Some(document_path) = path.strip_suffix("/restore") else {
        return Err(ApiError::new(
            ErrorCode::MethodNotAllowed,
            "POST on a document path only restores a version: POST <path>/restore?version=N",
        ));
    };
    let version = version_parameter(&pairs)?.ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidQuery,
            "give the version to restore as ?version=N",
        )
    })?;
    let view = state
        .platform
        .restore_document_version(&caller, &slug, document_path, version)
        .await?;
    Ok(json_response(
        StatusCode::OK,
        Document::from(view),
        HeaderMap::new(),
    ))
}

/// List current documents under a directory prefix (`prefix=reports/`).
#[utoipa::path(get, path = "/v1/tenants/{slug}/documents", tag = "documents",
    params(("slug" = String, Path), ("prefix" = Option<String>, Query, description = "Whole directories ending in '/'"), ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = DocumentPage), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["documents:read"])))]
pub async fn list_documents(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams(slug): PathParams<String>,
    QueryPairs(pairs): QueryPairs,
) -> Result<Response, ApiError> {
    let prefix = query_value(&pairs, "prefix").unwrap_or_default();
    let cursor = query_value(&pairs, "cursor");
    let page = state
        .platform
        .list_documents(
            &caller,
            &slug,
            &prefix,
            limit_parameter(&pairs)?,
            cursor.as_deref(),
        )
        .await?;
    let body = DocumentPage {
        documents: page.documents.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    };
    Ok(json_response(StatusCode::OK, body, HeaderMap::new()))
}

/// List the trash.
#[utoipa::path(get, path = "/v1/tenants/{slug}/trash", tag = "documents",
    params(("slug" = String, Path), ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = TrashList), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["documents:read"])))]
pub async fn list_trash(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams(slug): PathParams<String>,
    QueryPairs(pairs): QueryPairs,
) -> Result<Response, ApiError> {
    let cursor = query_value(&pairs, "cursor");
    let (entries, next_cursor) = state
        .platform
        .list_trash(&caller, &slug, limit_parameter(&pairs)?, cursor.as_deref())
        .await?;
    Ok(json_response(
        StatusCode::OK,
        TrashList {
            entries: entries.into_iter().map(Into::into).collect(),
            next_cursor,
        },
        HeaderMap::new(),
    ))
}

/// Bring a document back from the trash, at its path or at `?as=<new path>` (409 if taken).
#[utoipa::path(post, path = "/v1/tenants/{slug}/trash/{id}/restore", tag = "documents",
    params(("slug" = String, Path), ("id" = String, Path), ("as" = Option<String>, Query)),
    responses((status = 200, body = Document), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["documents:write"])))]
pub async fn restore_from_trash(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams((slug, id)): PathParams<(String, String)>,
    QueryPairs(pairs): QueryPairs,
) -> Result<Response, ApiError> {
    let as_path = query_value(&pairs, "as");
    let view = state
        .platform
        .restore_from_trash(&caller, &slug, &id, as_path.as_deref())
        .await?;
    Ok(json_response(
        StatusCode::OK,
        Document::from(view),
        HeaderMap::new(),
    ))
}
