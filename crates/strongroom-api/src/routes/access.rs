//! Custom roles, groups and grants, managed by a tenant's admins (users:manage).

use crate::AppState;
use crate::extract::{JsonBody, PathParams, TenantCaller};
use crate::problem::{ApiError, Problem};
use crate::routes::json_response;
use crate::wire::{
    CreateGrantRequest, GrantList, GrantWire, GroupList, GroupWire, PutGroupRequest,
    PutRoleRequest, RoleList, RoleWire,
};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use strongroom_service::PutOutcome;

fn put_status(outcome: PutOutcome) -> StatusCode {
    match outcome {
        PutOutcome::Created => StatusCode::CREATED,
        PutOutcome::Updated => StatusCode::OK,
    }
}

/// Built-in and custom roles with their permissions (users:manage).
#[utoipa::path(get, path = "/v1/tenants/{slug}/roles", tag = "access",
    params(("slug" = String, Path)),
    responses((status = 200, body = RoleList), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["users:manage"])))]
pub async fn list_roles(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams(slug): PathParams<String>,
) -> Result<Response, ApiError> {
    let roles = state.platform.roles(&caller, &slug).await?;
    Ok(json_response(
        StatusCode::OK,
        RoleList {
            roles: roles.into_iter().map(RoleWire::from).collect(),
        },
        HeaderMap::new(),
    ))
}

/// Define or redefine a custom role; its holders' rights change at once. Nobody defines a
/// role with permissions they do not hold.
#[utoipa::path(put, path = "/v1/tenants/{slug}/roles/{name}", tag = "access",
    params(("slug" = String, Path), ("name" = String, Path)), request_body = PutRoleRequest,
    responses((status = 200, body = RoleWire), (status = 201, body = RoleWire), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["users:manage"])))]
pub async fn put_role(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams((slug, name)): PathParams<(String, String)>,
    JsonBody(request): JsonBody<PutRoleRequest>,
) -> Result<Response, ApiError> {
    let (role, outcome) = state
        .platform
        .put_role(&caller, &slug, &name, &request.permissions)
        .await?;
    Ok(json_response(
        put_status(outcome),
        RoleWire::from(role),
        HeaderMap::new(),
    ))
}

/// Remove a custom role no grant names (409 while one does).
#[utoipa::path(delete, path = "/v1/tenants/{slug}/roles/{name}", tag = "access",
    params(("slug" = String, Path), ("name" = String, Path)),
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["users:manage"])))]
pub async fn delete_role(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams((slug, name)): PathParams<(String, String)>,
) -> Result<Response, ApiError> {
    state.platform.delete_role(&caller, &slug, &name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Groups and their members (users:manage).
#[utoipa::path(get, path = "/v1/tenants/{slug}/groups", tag = "access",
    params(("slug" = String, Path)),
    responses((status = 200, body = GroupList), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["users:manage"])))]
pub async fn list_groups(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams(slug): PathParams<String>,
) -> Result<Response, ApiError> {
    let groups = state.platform.groups(&caller, &slug).await?;
    Ok(json_response(
        StatusCode::OK,
        GroupList {
            groups: groups
                .into_iter()
                .map(|(name, members)| GroupWire {
                    name,
                    members: members.into_iter().collect(),
                })
                .collect(),
        },
        HeaderMap::new(),
    ))
}

/// Create a group or replace its members (user ids of this tenant).
#[utoipa::path(put, path = "/v1/tenants/{slug}/groups/{name}", tag = "access",
    params(("slug" = String, Path), ("name" = String, Path)), request_body = PutGroupRequest,
    responses((status = 200, body = GroupWire), (status = 201, body = GroupWire), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["users:manage"])))]
pub async fn put_group(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams((slug, name)): PathParams<(String, String)>,
    JsonBody(request): JsonBody<PutGroupRequest>,
) -> Result<Response, ApiError> {
    let (members, outcome) = state
        .platform
        .put_group(&caller, &slug, &name, &request.members)
        .await?;
    Ok(json_response(
        put_status(outcome),
        GroupWire {
            name,
            members: members.into_iter().collect(),
        },
        HeaderMap::new(),
    ))
}

/// Remove a group and every grant to it.
#[utoipa::path(delete, path = "/v1/tenants/{slug}/groups/{name}", tag = "access",
    params(("slug" = String, Path), ("name" = String, Path)),
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["users:manage"])))]
pub async fn delete_group(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams((slug, name)): PathParams<(String, String)>,
) -> Result<Response, ApiError> {
    state.platform.delete_group(&caller, &slug, &name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Roles given to users and groups, with their limits (users:manage).
#[utoipa::path(get, path = "/v1/tenants/{slug}/grants", tag = "access",
    params(("slug" = String, Path)),
    responses((status = 200, body = GrantList), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["users:manage"])))]
pub async fn list_grants(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams(slug): PathParams<String>,
) -> Result<Response, ApiError> {
    let grants = state.platform.grants(&caller, &slug).await?;
    Ok(json_response(
        StatusCode::OK,
        GrantList {
            grants: grants.into_iter().map(GrantWire::from).collect(),
        },
        HeaderMap::new(),
    ))
}

/// Give a role to a user or a group, optionally limited to collections or document
/// directories. Nobody grants permissions they do not hold, or grants to themselves.
#[utoipa::path(post, path = "/v1/tenants/{slug}/grants", tag = "access",
    params(("slug" = String, Path)), request_body = CreateGrantRequest,
    responses((status = 201, body = GrantWire), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["users:manage"])))]
pub async fn create_grant(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams(slug): PathParams<String>,
    JsonBody(request): JsonBody<CreateGrantRequest>,
) -> Result<Response, ApiError> {
    let grant = state
        .platform
        .create_grant(
            &caller,
            &slug,
            request.subject.into(),
            &request.role,
            request.limit.into(),
        )
        .await?;
    Ok(json_response(
        StatusCode::CREATED,
        GrantWire::from(grant),
        HeaderMap::new(),
    ))
}

/// Take a grant back; its rights end with the next request.
#[utoipa::path(delete, path = "/v1/tenants/{slug}/grants/{id}", tag = "access",
    params(("slug" = String, Path), ("id" = String, Path)),
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["users:manage"])))]
pub async fn delete_grant(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams((slug, id)): PathParams<(String, String)>,
) -> Result<Response, ApiError> {
    state.platform.delete_grant(&caller, &slug, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
