use crate::AppState;
use crate::extract::{OptionalJsonBody, PathParams, TenantCaller};
use crate::problem::{ApiError, Problem};
use crate::routes::json_response;
use crate::wire::{Collection, CollectionList, PutCollectionRequest};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use strongroom_service::PutOutcome;

/// Create or update a collection, with an optional schema.
#[utoipa::path(put, path = "/v1/tenants/{slug}/collections/{name}", tag = "collections",
    params(("slug" = String, Path), ("name" = String, Path)),
    request_body(content = PutCollectionRequest, description = "An optional schema; an empty body creates a schemaless collection"),
    responses((status = 201, body = Collection), (status = 200, body = Collection), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["records:write"])))]
pub async fn put_collection(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams((slug, name)): PathParams<(String, String)>,
    OptionalJsonBody(request): OptionalJsonBody<PutCollectionRequest>,
) -> Result<Response, ApiError> {
    let schema = request
        .and_then(|request| request.schema)
        .map(Into::into)
        .unwrap_or_default();
    let (view, outcome) = state
        .platform
        .put_collection(&caller, &slug, &name, schema)
        .await?;
    let status = if outcome == PutOutcome::Created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json_response(
        status,
        Collection::from(view),
        HeaderMap::new(),
    ))
}

/// List the tenant's collections.
#[utoipa::path(get, path = "/v1/tenants/{slug}/collections", tag = "collections",
    params(("slug" = String, Path)),
    responses((status = 200, body = CollectionList), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["records:read"])))]
pub async fn list_collections(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams(slug): PathParams<String>,
) -> Result<Response, ApiError> {
    let collections = state.platform.list_collections(&caller, &slug).await?;
    Ok(json_response(
        StatusCode::OK,
        CollectionList {
            collections: collections.into_iter().map(Into::into).collect(),
        },
        HeaderMap::new(),
    ))
}
