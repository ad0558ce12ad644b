//! Reading and checking the audit trail: a tenant's own trail for its users with `audit:read`
//! (and API tokens with that scope), every chain and the verification for operators.

use crate::AppState;
use crate::extract::{OperatorCaller, PathParams, QueryPairs, TenantCaller};
use crate::problem::{ApiError, ErrorCode, Problem};
use crate::routes::{json_response, limit_parameter, query_value};
use crate::wire::{AuditPage, AuditPublicKey, AuditVerification, ChainReportWire};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use strongroom_service::AuditFilter;

/// The whole number a query parameter holds, if it is given.
fn whole_number(pairs: &[(String, String)], name: &str) -> Result<Option<u64>, ApiError> {
    query_value(pairs, name)
        .map(|value| {
            value.parse::<u64>().map_err(|_| {
                ApiError::new(
                    ErrorCode::InvalidQuery,
                    format!("{name} must be a whole number"),
                )
            })
        })
        .transpose()
}

fn filter(pairs: &[(String, String)]) -> Result<AuditFilter, ApiError> {
    let number = |name: &str| whole_number(pairs, name);
    Ok(AuditFilter {
        actor: query_value(pairs, "actor"),
        action: query_value(pairs, "action"),
        outcome: query_value(pairs, "outcome"),
        from: query_value(pairs, "from"),
        to: query_value(pairs, "to"),
        address: query_value(pairs, "ip"),
        before_sequence: number("cursor")?,
        limit: limit_parameter(pairs)?,
    })
}

/// The tenant's audit trail, newest first (audit:read). Filters: `actor` (a user or token id),
/// `action`, `outcome` (allowed, denied, error, pending), `from`/`to` (RFC 3339), `ip`.
#[utoipa::path(get, path = "/v1/tenants/{slug}/audit", tag = "audit",
    params(("slug" = String, Path), ("actor" = Option<String>, Query), ("action" = Option<String>, Query), ("outcome" = Option<String>, Query), ("from" = Option<String>, Query), ("to" = Option<String>, Query), ("ip" = Option<String>, Query), ("cursor" = Option<String>, Query), ("limit" = Option<u32>, Query)),
    responses((status = 200, body = AuditPage), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["audit:read"])))]
pub async fn tenant_audit(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams(slug): PathParams<String>,
    QueryPairs(pairs): QueryPairs,
) -> Result<Response, ApiError> {
    let filter = filter(&pairs)?;
    let limit = filter.limit;
    let views = state.platform.tenant_audit(&caller, &slug, filter).await?;
    Ok(json_response(
        StatusCode::OK,
        AuditPage::from_views(views, limit),
        HeaderMap::new(),
    ))
}

fn public_key(public_key_hex: String) -> AuditPublicKey {
    AuditPublicKey {
        algorithm: "Ed25519".into(),
        public_key_hex,
    }
}

/// The public key that signs the trail's checkpoints, to check an exported trail without
/// trusting the server (audit:read).
#[utoipa::path(get, path = "/v1/tenants/{slug}/audit/public-key", tag = "audit",
    params(("slug" = String, Path)),
    responses((status = 200, body = AuditPublicKey), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["audit:read"])))]
pub async fn tenant_public_key(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams(slug): PathParams<String>,
) -> Result<Response, ApiError> {
    let public_key_hex = state
        .platform
        .tenant_audit_public_key(&caller, &slug)
        .await?;
    Ok(json_response(
        StatusCode::OK,
        public_key(public_key_hex),
        HeaderMap::new(),
    ))
}

/// Any chain for operators: `tenant` is a tenant's slug, or `control` (the default).
#[utoipa::path(get, path = "/admin/v1/audit", tag = "audit",
    params(("tenant" = Option<String>, Query), ("actor" = Option<String>, Query), ("action" = Option<String>, Query), ("outcome" = Option<String>, Query), ("from" = Option<String>, Query), ("to" = Option<String>, Query), ("ip" = Option<String>, Query), ("cursor" = Option<String>, Query), ("limit" = Option<u32>, Query)),
    responses((status = 200, body = AuditPage), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn operator_audit(
    State(state): State<AppState>,
    OperatorCaller(_operator): OperatorCaller,
    QueryPairs(pairs): QueryPairs,
) -> Result<Response, ApiError> {
    let chain =
        query_value(&pairs, "tenant").unwrap_or_else(|| strongroom_service::CONTROL_CHAIN.into());
    let filter = filter(&pairs)?;
    let limit = filter.limit;
    let views = state.platform.operator_audit(&chain, filter).await?;
    Ok(json_response(
        StatusCode::OK,
        AuditPage::from_views(views, limit),
        HeaderMap::new(),
    ))
}

/// Check the chains (all, or `tenant`: a slug or `control`): every link, every event against
/// its hash, every signed checkpoint. A broken chain is also a security event.
#[utoipa::path(post, path = "/admin/v1/audit/verify", tag = "audit",
    params(("tenant" = Option<String>, Query)),
    responses((status = 200, body = AuditVerification), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn verify(
    State(state): State<AppState>,
    OperatorCaller(_operator): OperatorCaller,
    QueryPairs(pairs): QueryPairs,
) -> Result<Response, ApiError> {
    let tenant = query_value(&pairs, "tenant");
    let reports = state.platform.verify_audit(tenant.as_deref()).await?;
    let chains: Vec<ChainReportWire> = reports
        .into_iter()
        .map(|report| ChainReportWire {
            intact: report.broken_at.is_none(),
            chain: report.chain,
            events: report.events,
            checkpoints: report.checkpoints,
            broken_at: report.broken_at,
            problem: report.problem,
            anchored_at: report.anchored_at,
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        AuditVerification {
            intact: chains.iter().all(|chain| chain.intact),
            chains,
        },
        HeaderMap::new(),
    ))
}

/// The public key that signs the trail's checkpoints.
#[utoipa::path(get, path = "/admin/v1/audit/public-key", tag = "audit",
    responses((status = 200, body = AuditPublicKey), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn operator_public_key(
    State(state): State<AppState>,
    OperatorCaller(_operator): OperatorCaller,
) -> Result<Response, ApiError> {
    Ok(json_response(
        StatusCode::OK,
        public_key(state.platform.audit_public_key_hex()),
        HeaderMap::new(),
    ))
}

/// The tenant's security events, newest first (policy:manage): failed-login bursts, lockouts,
/// blocked addresses, firewall denials and changes, download thresholds, cross-tenant probes,
/// break-glass grants, failed audit verification. Each is an audit event with outcome
/// `security` and action `security.<kind>`.
#[utoipa::path(get, path = "/v1/tenants/{slug}/security-events", tag = "audit",
    params(("slug" = String, Path), ("action" = Option<String>, Query), ("from" = Option<String>, Query), ("to" = Option<String>, Query), ("cursor" = Option<String>, Query), ("limit" = Option<u32>, Query)),
    responses((status = 200, body = AuditPage), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["policy:manage"])))]
pub async fn tenant_security_events(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams(slug): PathParams<String>,
    QueryPairs(pairs): QueryPairs,
) -> Result<Response, ApiError> {
    let filter = filter(&pairs)?;
    let limit = filter.limit;
    let views = state
        .platform
        .tenant_security_events(&caller, &slug, filter)
        .await?;
    Ok(json_response(
        StatusCode::OK,
        AuditPage::from_views(views, limit),
        HeaderMap::new(),
    ))
}

/// Security events of any chain for operators: `tenant` is a slug, or `control` (default).
#[utoipa::path(get, path = "/admin/v1/security-events", tag = "audit",
    params(("tenant" = Option<String>, Query), ("action" = Option<String>, Query), ("from" = Option<String>, Query), ("to" = Option<String>, Query), ("cursor" = Option<String>, Query), ("limit" = Option<u32>, Query)),
    responses((status = 200, body = AuditPage), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn operator_security_events(
    State(state): State<AppState>,
    OperatorCaller(_operator): OperatorCaller,
    QueryPairs(pairs): QueryPairs,
) -> Result<Response, ApiError> {
    let chain =
        query_value(&pairs, "tenant").unwrap_or_else(|| strongroom_service::CONTROL_CHAIN.into());
    let filter = AuditFilter {
        outcome: Some("security".into()),
        ..filter(&pairs)?
    };
    let limit = filter.limit;
    let views = state.platform.operator_audit(&chain, filter).await?;
    Ok(json_response(
        StatusCode::OK,
        AuditPage::from_views(views, limit),
        HeaderMap::new(),
    ))
}

/// How long the tenant's audit events are kept (audit:read: owners and auditors).
#[utoipa::path(get, path = "/v1/tenants/{slug}/policy/audit-retention", tag = "audit",
    params(("slug" = String, Path)),
    responses((status = 200, body = crate::wire::AuditRetentionWire), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["audit:read"])))]
pub async fn get_retention(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams(slug): PathParams<String>,
) -> Result<Response, ApiError> {
    let retention = state.platform.audit_retention(&caller, &slug).await?;
    Ok(json_response(
        StatusCode::OK,
        crate::wire::AuditRetentionWire {
            days: retention.days,
        },
        HeaderMap::new(),
    ))
}

/// Change how long the tenant's audit events are kept (audit:read: owners and auditors). The
/// change is itself in the trail; expired events leave a signed checkpoint to verify from.
#[utoipa::path(put, path = "/v1/tenants/{slug}/policy/audit-retention", tag = "audit",
    params(("slug" = String, Path)), request_body = crate::wire::AuditRetentionWire,
    responses((status = 200, body = crate::wire::AuditRetentionWire), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["audit:read"])))]
pub async fn put_retention(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams(slug): PathParams<String>,
    crate::extract::JsonBody(request): crate::extract::JsonBody<crate::wire::AuditRetentionWire>,
) -> Result<Response, ApiError> {
    let retention = state
        .platform
        .set_audit_retention(&caller, &slug, request.days)
        .await?;
    Ok(json_response(
        StatusCode::OK,
        crate::wire::AuditRetentionWire {
            days: retention.days,
        },
        HeaderMap::new(),
    ))
}

/// Where the tenant's security events are sent: webhooks and e-mail addresses (policy:manage);
/// webhook secrets are not shown.
#[utoipa::path(get, path = "/v1/tenants/{slug}/policy/alerts", tag = "audit",
    params(("slug" = String, Path)),
    responses((status = 200, body = crate::wire::AlertChannelsView), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["policy:manage"])))]
pub async fn get_alerts(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams(slug): PathParams<String>,
) -> Result<Response, ApiError> {
    let (webhooks, emails) = state.platform.alert_channels(&caller, &slug).await?;
    Ok(json_response(
        StatusCode::OK,
        crate::wire::AlertChannelsView { webhooks, emails },
        HeaderMap::new(),
    ))
}

/// Replace the tenant's webhooks (policy:manage). Each security event is POSTed to each,
/// signed, retried with growing waits for about half a minute, and the delivery recorded.
#[utoipa::path(put, path = "/v1/tenants/{slug}/policy/alerts", tag = "audit",
    params(("slug" = String, Path)), request_body = crate::wire::AlertChannelsRequest,
    responses((status = 200, body = crate::wire::AlertChannelsView), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["policy:manage"])))]
pub async fn put_alerts(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams(slug): PathParams<String>,
    crate::extract::JsonBody(request): crate::extract::JsonBody<crate::wire::AlertChannelsRequest>,
) -> Result<Response, ApiError> {
    let webhooks = request
        .webhooks
        .into_iter()
        .map(|webhook| strongroom_service::Webhook {
            url: webhook.url,
            secret: webhook.secret,
        })
        .collect();
    let (webhooks, emails) = state
        .platform
        .set_alert_channels(&caller, &slug, webhooks, request.emails)
        .await?;
    Ok(json_response(
        StatusCode::OK,
        crate::wire::AlertChannelsView { webhooks, emails },
        HeaderMap::new(),
    ))
}

/// Deliveries of security events to the tenant's webhooks and e-mail, newest first
/// (policy:manage).
#[utoipa::path(get, path = "/v1/tenants/{slug}/alerts/deliveries", tag = "audit",
    params(("slug" = String, Path), ("cursor" = Option<String>, Query), ("limit" = Option<u32>, Query)),
    responses((status = 200, body = AuditPage), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["policy:manage"])))]
pub async fn alert_deliveries(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams(slug): PathParams<String>,
    QueryPairs(pairs): QueryPairs,
) -> Result<Response, ApiError> {
    let filter = AuditFilter {
        action: Some("alert.delivery".into()),
        outcome: None,
        ..filter(&pairs)?
    };
    let limit = filter.limit;
    let views = state
        .platform
        .tenant_alert_deliveries(&caller, &slug, filter)
        .await?;
    Ok(json_response(
        StatusCode::OK,
        AuditPage::from_views(views, limit),
        HeaderMap::new(),
    ))
}

/// The tenant's signed checkpoints (audit:read), oldest first, a page at a time (`cursor` from
/// the last page's `next_cursor`): with the events' `event_json` and the public key, a tenant
/// checks its trail without trusting the server.
#[utoipa::path(get, path = "/v1/tenants/{slug}/audit/checkpoints", tag = "audit",
    params(("slug" = String, Path), ("cursor" = Option<String>, Query), ("limit" = Option<u32>, Query)),
    responses((status = 200, body = crate::wire::CheckpointList), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["audit:read"])))]
pub async fn tenant_checkpoints(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams(slug): PathParams<String>,
    QueryPairs(pairs): QueryPairs,
) -> Result<Response, ApiError> {
    let after = whole_number(&pairs, "cursor")?.unwrap_or(0);
    let limit = limit_parameter(&pairs)?;
    let checkpoints = state
        .platform
        .tenant_audit_checkpoints(&caller, &slug, after, limit)
        .await?;
    let next_cursor = (checkpoints.len() as u32 >= limit)
        .then(|| checkpoints.last().map(|last| last.sequence.to_string()))
        .flatten();
    Ok(json_response(
        StatusCode::OK,
        crate::wire::CheckpointList {
            next_cursor,
            checkpoints: checkpoints
                .into_iter()
                .map(|checkpoint| crate::wire::CheckpointWire {
                    chain_id: checkpoint.chain_id,
                    sequence: checkpoint.sequence,
                    head: checkpoint.head,
                    signature: checkpoint.signature,
                    expiry: checkpoint.expiry,
                })
                .collect(),
        },
        HeaderMap::new(),
    ))
}
