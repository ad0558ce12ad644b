//! A tenant's view of operators' break-glass grants: every grant is listed for its admins
//! (users:manage), who approve, deny or revoke them.

use crate::AppState;
use crate::extract::{PathParams, TenantCaller};
use crate::problem::{ApiError, Problem};
use crate::routes::json_response;
use crate::wire::{SupportGrantList, SupportGrantWire};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use strongroom_service::SupportDecision;

/// Operators' break-glass grants on this tenant, newest first (users:manage).
#[utoipa::path(get, path = "/v1/tenants/{slug}/support-access", tag = "support-access",
    params(("slug" = String, Path)),
    responses((status = 200, body = SupportGrantList), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["users:manage"])))]
pub async fn list(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams(slug): PathParams<String>,
) -> Result<Response, ApiError> {
    let grants = state.platform.support_access(&caller, &slug).await?;
    Ok(json_response(
        StatusCode::OK,
        SupportGrantList {
            grants: grants.into_iter().map(SupportGrantWire::from).collect(),
        },
        HeaderMap::new(),
    ))
}

async fn decide(
    state: AppState,
    caller: &strongroom_service::TokenPrincipal,
    slug: &str,
    id: &str,
    decision: SupportDecision,
) -> Result<Response, ApiError> {
    let grant = state
        .platform
        .decide_support_access(caller, slug, id, decision)
        .await?;
    Ok(json_response(
        StatusCode::OK,
        SupportGrantWire::from(grant),
        HeaderMap::new(),
    ))
}

/// Approve a pending grant (when the policy requires approval).
#[utoipa::path(post, path = "/v1/tenants/{slug}/support-access/{id}/approve", tag = "support-access",
    params(("slug" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = SupportGrantWire), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["users:manage"])))]
pub async fn approve(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams((slug, id)): PathParams<(String, String)>,
) -> Result<Response, ApiError> {
    decide(state, &caller, &slug, &id, SupportDecision::Approve).await
}

/// Deny a pending grant.
#[utoipa::path(post, path = "/v1/tenants/{slug}/support-access/{id}/deny", tag = "support-access",
    params(("slug" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = SupportGrantWire), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["users:manage"])))]
pub async fn deny(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams((slug, id)): PathParams<(String, String)>,
) -> Result<Response, ApiError> {
    decide(state, &caller, &slug, &id, SupportDecision::Deny).await
}

/// Revoke a pending or active grant; its token stops working at once.
#[utoipa::path(post, path = "/v1/tenants/{slug}/support-access/{id}/revoke", tag = "support-access",
    params(("slug" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = SupportGrantWire), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["users:manage"])))]
pub async fn revoke(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams((slug, id)): PathParams<(String, String)>,
) -> Result<Response, ApiError> {
    decide(state, &caller, &slug, &id, SupportDecision::Revoke).await
}
