use crate::AppState;
use crate::extract::{JsonBody, OperatorCaller, PathParams};
use crate::problem::{ApiError, Problem};
use crate::routes::json_response;
use crate::wire::{
    CreateTenantRequest, CreateTokenRequest, CreatedTokenResponse, KeyRotationResponse,
    MasterRotationResponse, Tenant, TenantList,
};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use strongroom_domain::Timestamp;

/// Create a tenant with its own database, directory and keys.
#[utoipa::path(post, path = "/admin/v1/tenants", tag = "admin",
    request_body = CreateTenantRequest,
    responses((status = 201, body = Tenant), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn create_tenant(
    State(state): State<AppState>,
    OperatorCaller(operator): OperatorCaller,
    JsonBody(request): JsonBody<CreateTenantRequest>,
) -> Result<Response, ApiError> {
    let view = state
        .platform
        .create_tenant(&request.slug, &request.name, &request.region)
        .await?;
    tracing::info!(operator = %operator.name, slug = %view.slug, "operator created a tenant");
    Ok(json_response(
        StatusCode::CREATED,
        Tenant::from(view),
        HeaderMap::new(),
    ))
}

/// List all tenants.
#[utoipa::path(get, path = "/admin/v1/tenants", tag = "admin",
    responses((status = 200, body = TenantList), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn list_tenants(
    State(state): State<AppState>,
    OperatorCaller(_operator): OperatorCaller,
) -> Result<Response, ApiError> {
    let tenants = state.platform.list_tenants().await?;
    Ok(json_response(
        StatusCode::OK,
        TenantList {
            tenants: tenants.into_iter().map(Into::into).collect(),
        },
        HeaderMap::new(),
    ))
}

/// Show one tenant with its key versions and their creation and rotation times.
#[utoipa::path(get, path = "/admin/v1/tenants/{slug}", tag = "admin",
    params(("slug" = String, Path)),
    responses((status = 200, body = Tenant), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn show_tenant(
    State(state): State<AppState>,
    OperatorCaller(_operator): OperatorCaller,
    PathParams(slug): PathParams<String>,
) -> Result<Response, ApiError> {
    Ok(json_response(
        StatusCode::OK,
        Tenant::from(state.platform.tenant_view(&slug).await?),
        HeaderMap::new(),
    ))
}

/// Suspend a tenant: its data requests are refused until it is resumed.
#[utoipa::path(post, path = "/admin/v1/tenants/{slug}/suspend", tag = "admin",
    params(("slug" = String, Path)),
    responses((status = 200, body = Tenant), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn suspend_tenant(
    State(state): State<AppState>,
    OperatorCaller(operator): OperatorCaller,
    PathParams(slug): PathParams<String>,
) -> Result<Response, ApiError> {
    let view = state.platform.set_tenant_suspended(&slug, true).await?;
    tracing::info!(operator = %operator.name, slug = %slug, "operator suspended a tenant");
    Ok(json_response(
        StatusCode::OK,
        Tenant::from(view),
        HeaderMap::new(),
    ))
}

/// Empty a tenant's allow and deny lists: the way back in when its admins shut themselves
/// out. Audited in the tenant's trail with the old rules; its admins see a security event.
#[utoipa::path(delete, path = "/admin/v1/tenants/{slug}/policy/firewall", tag = "admin",
    params(("slug" = String, Path)),
    responses((status = 200, body = crate::wire::FirewallWire), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn clear_tenant_firewall(
    State(state): State<AppState>,
    OperatorCaller(operator): OperatorCaller,
    PathParams(slug): PathParams<String>,
    facts: Option<axum::Extension<crate::audit::AuditFacts>>,
) -> Result<Response, ApiError> {
    let (old, rules) = state.platform.clear_firewall(&operator.name, &slug).await?;
    tracing::info!(operator = %operator.name, slug = %slug, "operator cleared a tenant's firewall");
    Ok(crate::routes::users::firewall_changed(facts, old, rules))
}

/// Resume a suspended tenant.
#[utoipa::path(post, path = "/admin/v1/tenants/{slug}/resume", tag = "admin",
    params(("slug" = String, Path)),
    responses((status = 200, body = Tenant), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn resume_tenant(
    State(state): State<AppState>,
    OperatorCaller(operator): OperatorCaller,
    PathParams(slug): PathParams<String>,
) -> Result<Response, ApiError> {
    let view = state.platform.set_tenant_suspended(&slug, false).await?;
    tracing::info!(operator = %operator.name, slug = %slug, "operator resumed a tenant");
    Ok(json_response(
        StatusCode::OK,
        Tenant::from(view),
        HeaderMap::new(),
    ))
}

/// Create an API token for a tenant that has no users yet (afterwards its admins create
/// them). The token is in this answer only.
#[utoipa::path(post, path = "/admin/v1/tenants/{slug}/tokens", tag = "admin",
    params(("slug" = String, Path)),
    request_body = CreateTokenRequest,
    responses((status = 201, body = CreatedTokenResponse), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn create_token(
    State(state): State<AppState>,
    OperatorCaller(operator): OperatorCaller,
    PathParams(slug): PathParams<String>,
    JsonBody(request): JsonBody<CreateTokenRequest>,
) -> Result<Response, ApiError> {
    let expires_at = request
        .expires_at
        .as_deref()
        .map(Timestamp::parse_rfc3339)
        .transpose()?;
    let created = state
        .platform
        .create_token_as_operator(&slug, &request.name, &request.scopes, expires_at)
        .await?;
    tracing::info!(operator = %operator.name, slug = %slug, token_id = %created.id, "operator created an API token");
    Ok(json_response(
        StatusCode::CREATED,
        CreatedTokenResponse::from(created),
        HeaderMap::new(),
    ))
}

/// Add a new data-key version for a tenant and re-seal older data in the background.
#[utoipa::path(post, path = "/admin/v1/tenants/{slug}/keys/rotate", tag = "admin",
    params(("slug" = String, Path)),
    responses((status = 202, body = KeyRotationResponse), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn rotate_tenant_key(
    State(state): State<AppState>,
    OperatorCaller(operator): OperatorCaller,
    PathParams(slug): PathParams<String>,
) -> Result<Response, ApiError> {
    let key_version = state.platform.rotate_tenant_key(&slug).await?;
    tracing::info!(operator = %operator.name, slug = %slug, key_version, "operator rotated a tenant key");
    let platform = state.platform.clone();
    let job_slug = slug.clone();
    tokio::spawn(async move {
        if let Err(error) = platform.reseal_tenant(&job_slug).await {
            tracing::warn!(tenant = %job_slug, %error, "re-sealing stopped; it resumes at the next start");
        }
    });
    let body = KeyRotationResponse {
        tenant: slug,
        key_version,
        reseal: "started".to_owned(),
    };
    Ok(json_response(StatusCode::ACCEPTED, body, HeaderMap::new()))
}

/// Replace the master key: every tenant key is re-wrapped; the old key file is kept as a
/// dated backup.
#[utoipa::path(post, path = "/admin/v1/keys/rotate-master", tag = "admin",
    responses((status = 200, body = MasterRotationResponse), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn rotate_master_key(
    State(state): State<AppState>,
    OperatorCaller(operator): OperatorCaller,
) -> Result<Response, ApiError> {
    let rotation = state.platform.rotate_master_key().await?;
    tracing::info!(operator = %operator.name, "operator rotated the master key");
    let body = MasterRotationResponse {
        old_master_key_id: rotation.old_master_key_id,
        new_master_key_id: rotation.new_master_key_id,
        rewrapped_keys: rotation.rewrapped_keys,
        backup_file: rotation.backup_file.display().to_string(),
    };
    Ok(json_response(StatusCode::OK, body, HeaderMap::new()))
}

/// Apply document retention to a tenant now (the server also runs it hourly).
#[utoipa::path(post, path = "/admin/v1/tenants/{slug}/documents/purge", tag = "admin",
    params(("slug" = String, Path)),
    responses((status = 200, body = crate::wire::PurgeReport), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn purge_documents(
    State(state): State<AppState>,
    OperatorCaller(operator): OperatorCaller,
    PathParams(slug): PathParams<String>,
) -> Result<Response, ApiError> {
    let report = state.platform.purge_documents(&slug).await?;
    tracing::info!(operator = %operator.name, slug = %slug, "operator ran the document purge");
    let body = crate::wire::PurgeReport {
        versions_removed: report.versions_removed,
        documents_removed: report.documents_removed,
        blobs_removed: report.blobs_removed,
        uploads_removed: report.uploads_removed,
    };
    Ok(json_response(StatusCode::OK, body, HeaderMap::new()))
}
