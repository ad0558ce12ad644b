//! The operator realm on the admin listener: invitations, enrolment with TOTP, sign-in, and
//! break-glass grants for tenant data.

use crate::AppState;
use crate::extract::{JsonBody, OperatorCaller, PathParams};
use crate::problem::{ApiError, Problem};
use crate::routes::json_response;
use crate::routes::users::no_store;
use crate::wire::{
    CreateOperatorRequest, CreatedOperatorResponse, CreatedSupportGrantResponse,
    OperatorConfirmRequest, OperatorEnrolRequest, OperatorList, OperatorLoginRequest,
    OperatorSessionResponse, OperatorWire, SupportAccessRequest, SupportGrantList,
    SupportGrantWire, TotpEnrolmentResponse,
};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

/// Invite an operator; the answer's enrolment token goes to the new operator, once.
#[utoipa::path(post, path = "/admin/v1/operators", tag = "operators",
    request_body = CreateOperatorRequest,
    responses((status = 201, body = CreatedOperatorResponse), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn create_operator(
    State(state): State<AppState>,
    OperatorCaller(operator): OperatorCaller,
    JsonBody(request): JsonBody<CreateOperatorRequest>,
) -> Result<Response, ApiError> {
    let created = state
        .platform
        .create_operator(&operator, &request.name)
        .await?;
    Ok(json_response(
        StatusCode::CREATED,
        CreatedOperatorResponse {
            operator: created.operator.into(),
            enrolment_token: created.enrolment_token,
            enrolment_expires_at: created.enrolment_expires_at.to_rfc3339(),
        },
        no_store(),
    ))
}

/// Every operator account.
#[utoipa::path(get, path = "/admin/v1/operators", tag = "operators",
    responses((status = 200, body = OperatorList), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn list_operators(
    State(state): State<AppState>,
    OperatorCaller(_operator): OperatorCaller,
) -> Result<Response, ApiError> {
    let operators = state.platform.list_operators().await?;
    Ok(json_response(
        StatusCode::OK,
        OperatorList {
            operators: operators.into_iter().map(OperatorWire::from).collect(),
        },
        HeaderMap::new(),
    ))
}

/// Disable another operator (their sessions end).
#[utoipa::path(post, path = "/admin/v1/operators/{name}/disable", tag = "operators",
    params(("name" = String, Path)),
    responses((status = 200, body = OperatorWire), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn disable_operator(
    State(state): State<AppState>,
    OperatorCaller(operator): OperatorCaller,
    PathParams(name): PathParams<String>,
) -> Result<Response, ApiError> {
    let view = state
        .platform
        .set_operator_disabled(&operator, &name, true)
        .await?;
    Ok(json_response(
        StatusCode::OK,
        OperatorWire::from(view),
        HeaderMap::new(),
    ))
}

/// Enable another operator again; this also unlocks an account locked by failed sign-ins.
#[utoipa::path(post, path = "/admin/v1/operators/{name}/enable", tag = "operators",
    params(("name" = String, Path)),
    responses((status = 200, body = OperatorWire), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn enable_operator(
    State(state): State<AppState>,
    OperatorCaller(operator): OperatorCaller,
    PathParams(name): PathParams<String>,
) -> Result<Response, ApiError> {
    let view = state
        .platform
        .set_operator_disabled(&operator, &name, false)
        .await?;
    Ok(json_response(
        StatusCode::OK,
        OperatorWire::from(view),
        HeaderMap::new(),
    ))
}

/// Enrolment, step one: set your password with the enrolment token; the answer is the TOTP
/// secret to add to an authenticator app.
#[utoipa::path(post, path = "/admin/v1/operators/enrol", tag = "operators",
    request_body = OperatorEnrolRequest,
    responses((status = 200, body = TotpEnrolmentResponse), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn enrol(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<OperatorEnrolRequest>,
) -> Result<Response, ApiError> {
    let enrolment = state
        .platform
        .start_operator_enrolment(&request.enrolment_token, &request.password)
        .await?;
    Ok(json_response(
        StatusCode::OK,
        TotpEnrolmentResponse {
            otpauth_uri: enrolment.otpauth_uri,
            qr_svg: enrolment.qr_svg,
        },
        no_store(),
    ))
}

/// Enrolment, step two: a current code activates the account and signs you in. The first
/// operator to enrol retires the bootstrap token.
#[utoipa::path(post, path = "/admin/v1/operators/enrol/confirm", tag = "operators",
    request_body = OperatorConfirmRequest,
    responses((status = 200, body = OperatorSessionResponse), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn confirm_enrolment(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<OperatorConfirmRequest>,
) -> Result<Response, ApiError> {
    let signed_in = state
        .platform
        .confirm_operator_enrolment(&request.enrolment_token, &request.code)
        .await?;
    Ok(json_response(
        StatusCode::OK,
        OperatorSessionResponse::from(signed_in),
        no_store(),
    ))
}

/// Sign in as an operator: name, password and a TOTP code.
#[utoipa::path(post, path = "/admin/v1/auth/login", tag = "operators",
    request_body = OperatorLoginRequest,
    responses((status = 200, body = OperatorSessionResponse), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn login(
    State(state): State<AppState>,
    client: Option<axum::Extension<crate::ClientAddress>>,
    facts: Option<axum::Extension<crate::audit::AuditFacts>>,
    JsonBody(request): JsonBody<OperatorLoginRequest>,
) -> Result<Response, ApiError> {
    if let Some(axum::Extension(facts)) = facts {
        facts.set_username(&request.name);
    }
    let signed_in = state
        .platform
        .operator_login(
            &request.name,
            &request.password,
            &request.code,
            client.map(|axum::Extension(crate::ClientAddress(address))| address),
        )
        .await?;
    Ok(json_response(
        StatusCode::OK,
        OperatorSessionResponse::from(signed_in),
        no_store(),
    ))
}

/// End this operator session.
#[utoipa::path(post, path = "/admin/v1/auth/logout", tag = "operators",
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn logout(
    State(state): State<AppState>,
    OperatorCaller(operator): OperatorCaller,
) -> Result<Response, ApiError> {
    state.platform.operator_logout(&operator).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Ask for break-glass access to a tenant's data: justification, scopes, at most 24 hours.
/// Active at once, or pending when the tenant approves grants first. The tenant sees it.
#[utoipa::path(post, path = "/admin/v1/tenants/{slug}/support-access", tag = "operators",
    params(("slug" = String, Path)), request_body = SupportAccessRequest,
    responses((status = 201, body = CreatedSupportGrantResponse), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn request_support_access(
    State(state): State<AppState>,
    OperatorCaller(operator): OperatorCaller,
    PathParams(slug): PathParams<String>,
    JsonBody(request): JsonBody<SupportAccessRequest>,
) -> Result<Response, ApiError> {
    let created = state
        .platform
        .request_support_access(
            &operator,
            &slug,
            &request.justification,
            &request.scopes,
            request.duration_minutes,
        )
        .await?;
    tracing::info!(operator = %operator.name, slug = %slug, grant_id = %created.grant.id, "break-glass access requested");
    Ok(json_response(
        StatusCode::CREATED,
        CreatedSupportGrantResponse {
            grant: created.grant.into(),
            token: created.token,
        },
        no_store(),
    ))
}

/// Every break-glass grant, newest first.
#[utoipa::path(get, path = "/admin/v1/support-access", tag = "operators",
    responses((status = 200, body = SupportGrantList), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn list_support_access(
    State(state): State<AppState>,
    OperatorCaller(_operator): OperatorCaller,
) -> Result<Response, ApiError> {
    let grants = state.platform.all_support_grants().await?;
    Ok(json_response(
        StatusCode::OK,
        SupportGrantList {
            grants: grants.into_iter().map(SupportGrantWire::from).collect(),
        },
        HeaderMap::new(),
    ))
}

/// Take a break-glass grant back; its token stops working at once.
#[utoipa::path(delete, path = "/admin/v1/support-access/{id}", tag = "operators",
    params(("id" = String, Path)),
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn revoke_support_access(
    State(state): State<AppState>,
    OperatorCaller(operator): OperatorCaller,
    PathParams(id): PathParams<String>,
) -> Result<Response, ApiError> {
    state.platform.revoke_support_grant(&operator, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
