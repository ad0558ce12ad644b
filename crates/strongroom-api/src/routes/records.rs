use crate::AppState;
use crate::extract::{IfMatch, JsonBody, PathParams, QueryPairs, TenantCaller};
use crate::problem::{ApiError, Problem};
use crate::routes::{etag_headers, json_response};
use crate::wire::{Record, RecordPage};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use strongroom_service::{RecordUpdate, RecordView, TokenPrincipal};

fn record_response(status: StatusCode, view: RecordView) -> Response {
    let etag = etag_headers(view.version);
    json_response(status, Record::from(view), etag)
}

/// Create a record; answers 201 with its id, version and timestamps.
#[utoipa::path(post, path = "/v1/tenants/{slug}/collections/{name}/records", tag = "records",
    params(("slug" = String, Path), ("name" = String, Path)),
    request_body(content = Object, description = "The record: a JSON object matching the collection schema"),
    responses((status = 201, body = Record), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["records:write"])))]
pub async fn create_record(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams((slug, name)): PathParams<(String, String)>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let view = state
        .platform
        .create_record(&caller, &slug, &name, body)
        .await?;
    let location = format!("/v1/tenants/{slug}/collections/{name}/records/{}", view.id);
    let mut response = record_response(StatusCode::CREATED, view);
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

/// Read one record; the ETag header carries its version.
#[utoipa::path(get, path = "/v1/tenants/{slug}/collections/{name}/records/{id}", tag = "records",
    params(("slug" = String, Path), ("name" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = Record), (status = "4XX", body = Problem, content_type = "application/problem+json"), (status = 500, description = "integrity_error: the stored record is damaged", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["records:read"])))]
pub async fn get_record(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams((slug, name, id)): PathParams<(String, String, String)>,
) -> Result<Response, ApiError> {
    Ok(record_response(
        StatusCode::OK,
        state
            .platform
            .get_record(&caller, &slug, &name, &id)
            .await?,
    ))
}

/// The shared body of PUT and PATCH on a record.
async fn update(
    state: AppState,
    caller: &TokenPrincipal,
    (slug, name, id): (String, String, String),
    change: RecordUpdate,
    if_match: Option<u64>,
) -> Result<Response, ApiError> {
    let view = state
        .platform
        .update_record(caller, &slug, &name, &id, change, if_match)
        .await?;
    Ok(record_response(StatusCode::OK, view))
}

/// Replace a record's body. With `If-Match: "<version>"`, a stale version answers 412.
#[utoipa::path(put, path = "/v1/tenants/{slug}/collections/{name}/records/{id}", tag = "records",
    params(("slug" = String, Path), ("name" = String, Path), ("id" = String, Path), ("If-Match" = Option<String>, Header)),
    request_body(content = Object),
    responses((status = 200, body = Record), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["records:write"])))]
pub async fn replace_record(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams((slug, name, id)): PathParams<(String, String, String)>,
    IfMatch(if_match): IfMatch,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    update(
        state,
        &caller,
        (slug, name, id),
        RecordUpdate::Replace(body),
        if_match,
    )
    .await
}

/// Change a record with a JSON merge patch (RFC 7396).
#[utoipa::path(patch, path = "/v1/tenants/{slug}/collections/{name}/records/{id}", tag = "records",
    params(("slug" = String, Path), ("name" = String, Path), ("id" = String, Path), ("If-Match" = Option<String>, Header)),
    request_body(content = Object, content_type = "application/merge-patch+json"),
    responses((status = 200, body = Record), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["records:write"])))]
pub async fn patch_record(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams((slug, name, id)): PathParams<(String, String, String)>,
    IfMatch(if_match): IfMatch,
    JsonBody(patch): JsonBody<Value>,
) -> Result<Response, ApiError> {
    update(
        state,
        &caller,
        (slug, name, id),
        RecordUpdate::MergePatch(patch),
        if_match,
    )
    .await
}

/// Delete a record; answers 204.
#[utoipa::path(delete, path = "/v1/tenants/{slug}/collections/{name}/records/{id}", tag = "records",
    params(("slug" = String, Path), ("name" = String, Path), ("id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["records:write"])))]
pub async fn delete_record(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams((slug, name, id)): PathParams<(String, String, String)>,
    IfMatch(if_match): IfMatch,
) -> Result<Response, ApiError> {
    state
        .platform
        .delete_record(&caller, &slug, &name, &id, if_match)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// List records, oldest first, with opaque cursors. `where.<field>=<value>` filters by
/// equality on indexed fields.
#[utoipa::path(get, path = "/v1/tenants/{slug}/collections/{name}/records", tag = "records",
    params(("slug" = String, Path), ("name" = String, Path),
        ("limit" = Option<u32>, Query, description = "1 to 1000, default 100"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
        ("order" = Option<String>, Query, description = "created (default) or updated"),
        ("updated_after" = Option<String>, Query, description = "RFC 3339 instant")),
    responses((status = 200, body = RecordPage), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["records:read"])))]
pub async fn list_records(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams((slug, name)): PathParams<(String, String)>,
    QueryPairs(pairs): QueryPairs,
) -> Result<Response, ApiError> {
    let page = state
        .platform
        .list_records(&caller, &slug, &name, pairs)
        .await?;
    let body = RecordPage {
        records: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    };
    Ok(json_response(StatusCode::OK, body, HeaderMap::new()))
}
