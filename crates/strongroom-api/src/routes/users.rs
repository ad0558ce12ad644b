use crate::AppState;
use crate::extract::{JsonBody, OperatorCaller, PathParams, SESSION_COOKIE, TenantCaller};
use crate::problem::{ApiError, Problem};
use crate::routes::json_response;
use crate::wire::{
    ChangePasswordRequest, ConfirmTotpRequest, CreateUserRequest, CreatedUserResponse,
    LoginRequest, LoginResponse, RecoveryCodes, SecondFactorRequest, TotpEnrolmentResponse, User,
    UserList,
};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use strongroom_service::{SignIn, SignedIn};

/// Create a tenant's first user, an owner who must change the one-time password.
#[utoipa::path(post, path = "/admin/v1/tenants/{slug}/users", tag = "admin",
    params(("slug" = String, Path)), request_body = CreateUserRequest,
    responses((status = 201, body = CreatedUserResponse), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn create_first_user(
    State(state): State<AppState>,
    OperatorCaller(operator): OperatorCaller,
    PathParams(slug): PathParams<String>,
    JsonBody(request): JsonBody<CreateUserRequest>,
) -> Result<Response, ApiError> {
    let created = state
        .platform
        .create_first_user(&slug, &request.email, &request.display_name)
        .await?;
    tracing::info!(operator = %operator.name, slug = %slug, user_id = %created.user.id, "operator created a tenant's first user");
    Ok(json_response(
        StatusCode::CREATED,
        CreatedUserResponse::from(created),
        no_store(),
    ))
}

/// Create a user (users:manage); the one-time password is in this answer only.
#[utoipa::path(post, path = "/v1/tenants/{slug}/users", tag = "users",
    params(("slug" = String, Path)), request_body = CreateUserRequest,
    responses((status = 201, body = CreatedUserResponse), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["users:manage"])))]
pub async fn create_user(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams(slug): PathParams<String>,
    JsonBody(request): JsonBody<CreateUserRequest>,
) -> Result<Response, ApiError> {
    let created = state
        .platform
        .create_user(
            &caller,
            &slug,
            &request.email,
            &request.display_name,
            &request.roles,
        )
        .await?;
    Ok(json_response(
        StatusCode::CREATED,
        CreatedUserResponse::from(created),
        no_store(),
    ))
}

/// List the tenant's users (users:manage).
#[utoipa::path(get, path = "/v1/tenants/{slug}/users", tag = "users",
    params(("slug" = String, Path)),
    responses((status = 200, body = UserList), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["users:manage"])))]
pub async fn list_users(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams(slug): PathParams<String>,
) -> Result<Response, ApiError> {
    let users = state.platform.list_users(&caller, &slug).await?;
    Ok(json_response(
        StatusCode::OK,
        UserList {
            users: users.into_iter().map(Into::into).collect(),
        },
        HeaderMap::new(),
    ))
}

pub(crate) fn no_store() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers
}

pub(crate) fn session_response(signed_in: SignedIn) -> Response {
    let cookie = format!(
        "{SESSION_COOKIE}={}; Path=/; Secure; HttpOnly; SameSite=Strict",
        signed_in.session_token
    );
    let mut headers = no_store();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        headers.insert(header::SET_COOKIE, value);
    }
    let body = LoginResponse {
        mfa_required: false,
        mfa_token: None,
        must_change_password: Some(signed_in.user.must_change_password),
        session_token: Some(signed_in.session_token),
        user: Some(signed_in.user.into()),
    };
    json_response(StatusCode::OK, body, headers)
}

/// Sign in with email and password: a session (token, also set as a cookie), or, when the
/// user has a second factor, an `mfa_token` for `auth/mfa`.
#[utoipa::path(post, path = "/v1/tenants/{slug}/auth/login", tag = "auth",
    params(("slug" = String, Path)), request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn login(
    State(state): State<AppState>,
    PathParams(slug): PathParams<String>,
    client: Option<axum::Extension<crate::ClientAddress>>,
    facts: Option<axum::Extension<crate::audit::AuditFacts>>,
    JsonBody(request): JsonBody<LoginRequest>,
) -> Result<Response, ApiError> {
    if let Some(axum::Extension(facts)) = facts {
        facts.set_username(&request.email);
    }
    match state
        .platform
        .login(
            &slug,
            &request.email,
            &request.password,
            client.map(|axum::Extension(crate::ClientAddress(address))| address),
        )
        .await?
    {
        SignIn::Session(signed_in) => Ok(session_response(signed_in)),
        SignIn::SecondFactorRequired { mfa_token } => {
            let body = LoginResponse {
                mfa_required: true,
                mfa_token: Some(mfa_token),
                session_token: None,
                must_change_password: None,
                user: None,
            };
            Ok(json_response(StatusCode::OK, body, no_store()))
        }
    }
}

/// A locked-out user signs in with password and a recovery code (users with a second
/// factor): the lock is lifted and the code used up.
#[utoipa::path(post, path = "/v1/tenants/{slug}/auth/recover", tag = "auth",
    params(("slug" = String, Path)), request_body = crate::wire::RecoverRequest,
    responses((status = 200, body = LoginResponse), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn recover(
    State(state): State<AppState>,
    PathParams(slug): PathParams<String>,
    client: Option<axum::Extension<crate::ClientAddress>>,
    facts: Option<axum::Extension<crate::audit::AuditFacts>>,
    JsonBody(request): JsonBody<crate::wire::RecoverRequest>,
) -> Result<Response, ApiError> {
    if let Some(axum::Extension(facts)) = facts {
        facts.set_username(&request.email);
    }
    let signed_in = state
        .platform
        .recover_account(
            &slug,
            &request.email,
            &request.password,
            &request.recovery_code,
            client.map(|axum::Extension(crate::ClientAddress(address))| address),
        )
        .await?;
    Ok(session_response(signed_in))
}

/// The second step of signing in: a TOTP code or a recovery code with the `mfa_token`.
#[utoipa::path(post, path = "/v1/tenants/{slug}/auth/mfa", tag = "auth",
    params(("slug" = String, Path)), request_body = SecondFactorRequest,
    responses((status = 200, body = LoginResponse), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn second_factor(
    State(state): State<AppState>,
    PathParams(slug): PathParams<String>,
    facts: Option<axum::Extension<crate::audit::AuditFacts>>,
    JsonBody(request): JsonBody<SecondFactorRequest>,
) -> Result<Response, ApiError> {
    // The trail names who tried, as for a password sign-in, whether the code was right or not.
    let signed_in = state
        .platform
        .complete_sign_in(
            &slug,
            &request.mfa_token,
            request.code.as_deref(),
            request.recovery_code.as_deref(),
            |email| {
                if let Some(axum::Extension(facts)) = &facts {
                    facts.set_username(email);
                }
            },
        )
        .await?;
    Ok(session_response(signed_in))
}

/// End this session.
#[utoipa::path(post, path = "/v1/tenants/{slug}/auth/logout", tag = "auth",
    params(("slug" = String, Path)),
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn logout(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams(slug): PathParams<String>,
) -> Result<Response, ApiError> {
    state.platform.logout(&caller, &slug).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "__Host-strongroom-session=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0",
        ),
    );
    Ok(response)
}

/// The signed-in user's own profile.
#[utoipa::path(get, path = "/v1/tenants/{slug}/me", tag = "auth",
    params(("slug" = String, Path)),
    responses((status = 200, body = User), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn me(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams(slug): PathParams<String>,
) -> Result<Response, ApiError> {
    Ok(json_response(
        StatusCode::OK,
        User::from(state.platform.me(&caller, &slug).await?),
        HeaderMap::new(),
    ))
}

/// Change the signed-in user's password (the current one is required); other sessions end.
#[utoipa::path(post, path = "/v1/tenants/{slug}/me/password", tag = "auth",
    params(("slug" = String, Path)), request_body = ChangePasswordRequest,
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn change_password(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams(slug): PathParams<String>,
    JsonBody(request): JsonBody<ChangePasswordRequest>,
) -> Result<Response, ApiError> {
    state
        .platform
        .change_password(
            &caller,
            &slug,
            &request.current_password,
            &request.new_password,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Start TOTP enrolment: an otpauth URI and its QR code (SVG).
#[utoipa::path(post, path = "/v1/tenants/{slug}/me/mfa/totp", tag = "auth",
    params(("slug" = String, Path)),
    responses((status = 200, body = TotpEnrolmentResponse), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn enrol_totp(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams(slug): PathParams<String>,
) -> Result<Response, ApiError> {
    let enrolment = state.platform.enrol_totp(&caller, &slug).await?;
    Ok(json_response(
        StatusCode::OK,
        TotpEnrolmentResponse {
            otpauth_uri: enrolment.otpauth_uri,
            qr_svg: enrolment.qr_svg,
        },
        no_store(),
    ))
}

/// Confirm TOTP enrolment with a current code; answers ten recovery codes, shown once.
#[utoipa::path(post, path = "/v1/tenants/{slug}/me/mfa/totp/confirm", tag = "auth",
    params(("slug" = String, Path)), request_body = ConfirmTotpRequest,
    responses((status = 200, body = RecoveryCodes), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn confirm_totp(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams(slug): PathParams<String>,
    JsonBody(request): JsonBody<ConfirmTotpRequest>,
) -> Result<Response, ApiError> {
    let recovery_codes = state
        .platform
        .confirm_totp(&caller, &slug, &request.code)
        .await?;
    Ok(json_response(
        StatusCode::OK,
        RecoveryCodes { recovery_codes },
        no_store(),
    ))
}

/// Change a user's roles or disable/re-enable them (users:manage); their sessions end.
#[utoipa::path(patch, path = "/v1/tenants/{slug}/users/{id}", tag = "users",
    params(("slug" = String, Path), ("id" = String, Path)), request_body = crate::wire::UpdateUserRequest,
    responses((status = 200, body = User), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["users:manage"])))]
pub async fn update_user(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams((slug, id)): PathParams<(String, String)>,
    JsonBody(request): JsonBody<crate::wire::UpdateUserRequest>,
) -> Result<Response, ApiError> {
    let change = strongroom_service::UserChange {
        roles: request.roles,
        disabled: request.disabled,
        unlock: request.unlock,
    };
    let user = state
        .platform
        .update_user(&caller, &slug, &id, change)
        .await?;
    Ok(json_response(
        StatusCode::OK,
        User::from(user),
        HeaderMap::new(),
    ))
}

/// Remove a user with their sessions and second factor (users:manage).
#[utoipa::path(delete, path = "/v1/tenants/{slug}/users/{id}", tag = "users",
    params(("slug" = String, Path), ("id" = String, Path)),
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["users:manage"])))]
pub async fn delete_user(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams((slug, id)): PathParams<(String, String)>,
) -> Result<Response, ApiError> {
    state.platform.delete_user(&caller, &slug, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// End every session of a user (users:manage).
#[utoipa::path(delete, path = "/v1/tenants/{slug}/users/{id}/sessions", tag = "users",
    params(("slug" = String, Path), ("id" = String, Path)),
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["users:manage"])))]
pub async fn end_user_sessions(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams((slug, id)): PathParams<(String, String)>,
) -> Result<Response, ApiError> {
    state
        .platform
        .end_user_sessions(&caller, &slug, &id)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Change one's own display name.
#[utoipa::path(patch, path = "/v1/tenants/{slug}/me", tag = "auth",
    params(("slug" = String, Path)), request_body = crate::wire::UpdateMeRequest,
    responses((status = 200, body = User), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn update_me(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams(slug): PathParams<String>,
    JsonBody(request): JsonBody<crate::wire::UpdateMeRequest>,
) -> Result<Response, ApiError> {
    let user = state
        .platform
        .update_me(
            &caller,
            &slug,
            request.display_name.as_deref(),
            request.phone.as_deref(),
        )
        .await?;
    Ok(json_response(
        StatusCode::OK,
        User::from(user),
        HeaderMap::new(),
    ))
}

/// The tenant's security policy: password rules and who needs a second factor (policy:manage).
#[utoipa::path(get, path = "/v1/tenants/{slug}/policy/security", tag = "policy",
    params(("slug" = String, Path)),
    responses((status = 200, body = crate::wire::SecurityPolicyWire), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["policy:manage"])))]
pub async fn get_security_policy(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams(slug): PathParams<String>,
) -> Result<Response, ApiError> {
    let policy = state.platform.security_policy(&caller, &slug).await?;
    Ok(json_response(
        StatusCode::OK,
        crate::wire::SecurityPolicyWire::from(policy),
        HeaderMap::new(),
    ))
}

/// Replace the tenant's security policy; it applies from the next sign-in or password change.
#[utoipa::path(put, path = "/v1/tenants/{slug}/policy/security", tag = "policy",
    params(("slug" = String, Path)), request_body = crate::wire::SecurityPolicyWire,
    responses((status = 200, body = crate::wire::SecurityPolicyWire), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["policy:manage"])))]
pub async fn put_security_policy(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams(slug): PathParams<String>,
    JsonBody(request): JsonBody<crate::wire::SecurityPolicyWire>,
) -> Result<Response, ApiError> {
    let current = state.platform.security_policy(&caller, &slug).await?;
    let policy = state
        .platform
        .set_security_policy(&caller, &slug, request.over(&current))
        .await?;
    Ok(json_response(
        StatusCode::OK,
        crate::wire::SecurityPolicyWire::from(policy),
        HeaderMap::new(),
    ))
}

/// The tenant's virtual firewall (policy:manage).
#[utoipa::path(get, path = "/v1/tenants/{slug}/policy/firewall", tag = "policy",
    params(("slug" = String, Path)),
    responses((status = 200, body = crate::wire::FirewallWire), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["policy:manage"])))]
pub async fn get_firewall(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams(slug): PathParams<String>,
) -> Result<Response, ApiError> {
    let rules = state.platform.firewall(&caller, &slug).await?;
    Ok(json_response(
        StatusCode::OK,
        crate::wire::FirewallWire::from(rules),
        HeaderMap::new(),
    ))
}

/// Replace the firewall rules (policy:manage). Rules that would shut out your own address
/// need `confirm_lockout: true`.
#[utoipa::path(put, path = "/v1/tenants/{slug}/policy/firewall", tag = "policy",
    params(("slug" = String, Path)), request_body = crate::wire::FirewallWire,
    responses((status = 200, body = crate::wire::FirewallWire), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["policy:manage"])))]
pub async fn put_firewall(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams(slug): PathParams<String>,
    client: Option<axum::Extension<crate::ClientAddress>>,
    facts: Option<axum::Extension<crate::audit::AuditFacts>>,
    JsonBody(request): JsonBody<crate::wire::FirewallWire>,
) -> Result<Response, ApiError> {
    let rules = strongroom_domain::firewall::FirewallRules::parse(
        &request.allow,
        &request.deny,
        request.allow_support,
    )
    .map_err(|reason| ApiError::new(crate::problem::ErrorCode::InvalidRequest, reason))?;
    let (old, rules) = state
        .platform
        .set_firewall(
            &caller,
            &slug,
            rules,
            client.map(|axum::Extension(crate::ClientAddress(address))| address),
            request.confirm_lockout,
        )
        .await?;
    Ok(firewall_changed(facts, old, rules))
}

/// The answer to a firewall change (the new rules), with the old and the new rules in the
/// request's audit event: every change is audited with both, whoever made it.
pub(crate) fn firewall_changed(
    facts: Option<axum::Extension<crate::audit::AuditFacts>>,
    old: strongroom_domain::firewall::FirewallRules,
    rules: strongroom_domain::firewall::FirewallRules,
) -> Response {
    if let Some(axum::Extension(facts)) = facts {
        facts.set_details(serde_json::json!({
            "old": crate::wire::FirewallWire::from(old),
            "new": crate::wire::FirewallWire::from(rules.clone()),
        }));
    }
    json_response(
        StatusCode::OK,
        crate::wire::FirewallWire::from(rules),
        HeaderMap::new(),
    )
}

/// The tenant's download thresholds (policy:manage).
#[utoipa::path(get, path = "/v1/tenants/{slug}/policy/downloads", tag = "policy",
    params(("slug" = String, Path)),
    responses((status = 200, body = crate::wire::DownloadLimitsWire), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["policy:manage"])))]
pub async fn get_download_limits(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams(slug): PathParams<String>,
) -> Result<Response, ApiError> {
    let limits = state.platform.download_limits(&caller, &slug).await?;
    Ok(json_response(
        StatusCode::OK,
        crate::wire::DownloadLimitsWire::from(limits),
        HeaderMap::new(),
    ))
}

/// Replace the download thresholds (policy:manage).
#[utoipa::path(put, path = "/v1/tenants/{slug}/policy/downloads", tag = "policy",
    params(("slug" = String, Path)), request_body = crate::wire::DownloadLimitsWire,
    responses((status = 200, body = crate::wire::DownloadLimitsWire), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["policy:manage"])))]
pub async fn put_download_limits(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams(slug): PathParams<String>,
    JsonBody(request): JsonBody<crate::wire::DownloadLimitsWire>,
) -> Result<Response, ApiError> {
    let limits = state
        .platform
        .set_download_limits(&caller, &slug, request.into())
        .await?;
    Ok(json_response(
        StatusCode::OK,
        crate::wire::DownloadLimitsWire::from(limits),
        HeaderMap::new(),
    ))
}

/// Lift a user's or an API token's download block before its window ends (users:manage).
#[utoipa::path(delete, path = "/v1/tenants/{slug}/download-blocks/{id}", tag = "policy",
    params(("slug" = String, Path), ("id" = String, Path, description = "A user id or an API token id")),
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["users:manage"])))]
pub async fn lift_download_block(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams((slug, id)): PathParams<(String, String)>,
) -> Result<Response, ApiError> {
    state
        .platform
        .lift_download_block(&caller, &slug, &id)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The tenant's API tokens, without secrets (users:manage).
#[utoipa::path(get, path = "/v1/tenants/{slug}/tokens", tag = "users",
    params(("slug" = String, Path)),
    responses((status = 200, body = crate::wire::TokenList), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["users:manage"])))]
pub async fn list_tenant_tokens(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams(slug): PathParams<String>,
) -> Result<Response, ApiError> {
    let tokens = state.platform.tenant_tokens(&caller, &slug).await?;
    Ok(json_response(
        StatusCode::OK,
        crate::wire::TokenList {
            tokens: tokens.into_iter().map(Into::into).collect(),
        },
        HeaderMap::new(),
    ))
}

/// Revoke an API token (users:manage); it stops working at once.
#[utoipa::path(delete, path = "/v1/tenants/{slug}/tokens/{id}", tag = "users",
    params(("slug" = String, Path), ("id" = String, Path)),
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["users:manage"])))]
pub async fn revoke_tenant_token(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams((slug, id)): PathParams<(String, String)>,
) -> Result<Response, ApiError> {
    state
        .platform
        .revoke_tenant_token(&caller, &slug, &id)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Create an API token for the tenant's applications (users:manage); shown once.
#[utoipa::path(post, path = "/v1/tenants/{slug}/tokens", tag = "users",
    params(("slug" = String, Path)), request_body = crate::wire::CreateTokenRequest,
    responses((status = 201, body = crate::wire::CreatedTokenResponse), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = ["users:manage"])))]
pub async fn create_tenant_token(
    State(state): State<AppState>,
    TenantCaller(caller): TenantCaller,
    PathParams(slug): PathParams<String>,
    JsonBody(request): JsonBody<crate::wire::CreateTokenRequest>,
) -> Result<Response, ApiError> {
    let expires_at = request
        .expires_at
        .as_deref()
        .map(strongroom_domain::Timestamp::parse_rfc3339)
        .transpose()?;
    let created = state
        .platform
        .create_tenant_token(&caller, &slug, &request.name, &request.scopes, expires_at)
        .await?;
    Ok(json_response(
        StatusCode::CREATED,
        crate::wire::CreatedTokenResponse::from(created),
        no_store(),
    ))
}
