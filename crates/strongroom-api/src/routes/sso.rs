//! Single sign-on: providers configured by a tenant's admins (policy:manage), and the
//! browser's round trip through the provider.

use crate::AppState;
use crate::extract::{JsonBody, PathParams, QueryPairs, TenantCaller, cookie};
use crate::problem::{ApiError, Problem};
use crate::routes::json_response;
use crate::routes::users::{no_store, session_response};
use crate::wire::{LoginResponse, PutSsoProviderRequest, SsoProviderList, SsoProviderWire};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use strongroom_service::{PutOutcome, SignIn, SsoCallback, SsoProviderChange};

/// Binds a sign-in to the browser that started it. SameSite=Lax: the provider's redirect
/// back is a top-level navigation from another site, which Strict would not carry it on.
const BINDING_COOKIE: &str = "__Host-strongroom-sso";

/// The tenant's single sign-on providers, without their secrets (policy:manage).
#[utoipa::path(get, path = "/v1/tenants/{slug}/sso/providers", tag = "sso",
    params(("slug" = String, Path)),
    responses((status = 200, body = SsoProviderList), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["policy:manage"])))]
pub async fn list_providers(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams(slug): PathParams<String>,
) -> Result<Response, ApiError> {
    let providers = state.platform.sso_providers(&caller, &slug).await?;
    Ok(json_response(
        StatusCode::OK,
        SsoProviderList {
            providers: providers.into_iter().map(SsoProviderWire::from).collect(),
        },
        HeaderMap::new(),
    ))
}

/// Add or change an OpenID Connect provider (policy:manage).
#[utoipa::path(put, path = "/v1/tenants/{slug}/sso/providers/{name}", tag = "sso",
    params(("slug" = String, Path), ("name" = String, Path)), request_body = PutSsoProviderRequest,
    responses((status = 200, body = SsoProviderWire), (status = 201, body = SsoProviderWire), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["policy:manage"])))]
pub async fn put_provider(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams((slug, name)): PathParams<(String, String)>,
    JsonBody(request): JsonBody<PutSsoProviderRequest>,
) -> Result<Response, ApiError> {
    let change = SsoProviderChange {
        issuer: request.issuer,
        client_id: request.client_id,
        client_secret: request.client_secret,
        allowed_email_domains: request.allowed_email_domains,
        create_users: request.create_users,
        role: request.role,
        link_existing_users: request.link_existing_users,
    };
    let (provider, outcome) = state
        .platform
        .put_sso_provider(&caller, &slug, &name, change)
        .await?;
    let status = match outcome {
        PutOutcome::Created => StatusCode::CREATED,
        PutOutcome::Updated => StatusCode::OK,
    };
    Ok(json_response(
        status,
        SsoProviderWire::from(provider),
        HeaderMap::new(),
    ))
}

/// Remove a provider (policy:manage); refused for the last one while SSO is mandatory.
#[utoipa::path(delete, path = "/v1/tenants/{slug}/sso/providers/{name}", tag = "sso",
    params(("slug" = String, Path), ("name" = String, Path)),
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["policy:manage"])))]
pub async fn delete_provider(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams((slug, name)): PathParams<(String, String)>,
) -> Result<Response, ApiError> {
    state
        .platform
        .delete_sso_provider(&caller, &slug, &name)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Start signing in with a provider: redirects the browser to it (303), with a cookie that
/// binds the sign-in to this browser.
#[utoipa::path(get, path = "/v1/tenants/{slug}/auth/sso/{name}", tag = "auth",
    params(("slug" = String, Path), ("name" = String, Path)),
    responses((status = 303, description = "To the identity provider"), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn start(
    State(state): State<AppState>,
    PathParams((slug, name)): PathParams<(String, String)>,
) -> Result<Response, ApiError> {
    let started = state.platform.start_sso(&slug, &name).await?;
    let mut headers = no_store();
    let binding = format!(
        "{BINDING_COOKIE}={}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=600",
        started.browser_binding
    );
    if let (Ok(cookie), Ok(location)) = (
        HeaderValue::from_str(&binding),
        HeaderValue::from_str(&started.authorization_url),
    ) {
        headers.insert(header::SET_COOKIE, cookie);
        headers.insert(header::LOCATION, location);
    }
    Ok((StatusCode::SEE_OTHER, headers).into_response())
}

/// Where the provider sends the browser back: a session (token, also set as a cookie), or an
/// `mfa_token` when the user has a second factor, as for a password sign-in.
#[utoipa::path(get, path = "/v1/tenants/{slug}/auth/sso/callback", tag = "auth",
    params(("slug" = String, Path), ("code" = Option<String>, Query), ("state" = Option<String>, Query), ("error" = Option<String>, Query)),
    responses((status = 200, body = LoginResponse), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn callback(
    State(state): State<AppState>,
    PathParams(slug): PathParams<String>,
    QueryPairs(pairs): QueryPairs,
    facts: Option<axum::Extension<crate::audit::AuditFacts>>,
    request_headers: HeaderMap,
) -> Result<Response, ApiError> {
    let value = |name: &str| crate::routes::query_value(&pairs, name);
    let answer = SsoCallback {
        code: value("code"),
        state: value("state"),
        error: value("error"),
        browser_binding: cookie(&request_headers, BINDING_COOKIE).map(str::to_owned),
    };
    let mut response = match state.platform.finish_sso(&slug, answer).await? {
        SignIn::Session(signed_in) => {
            // The trail names who signed in, as for a password sign-in.
            if let Some(axum::Extension(facts)) = facts {
                facts.set_username(&signed_in.user.email);
            }
            session_response(signed_in)
        }
        SignIn::SecondFactorRequired { mfa_token } => json_response(
            StatusCode::OK,
            LoginResponse {
                mfa_required: true,
                mfa_token: Some(mfa_token),
                session_token: None,
                must_change_password: None,
                user: None,
            },
            no_store(),
        ),
    };
    // The binding has served its one purpose.
    let expired = format!("{BINDING_COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0");
    if let Ok(value) = HeaderValue::from_str(&expired) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    Ok(response)
}
