//! The HTTP API: two routers, one per listener. The public router serves tenant data and the
//! OpenAPI document; the admin router serves operator endpoints, health and metrics. Neither
//! serves the other's routes (O4). This is the only crate that knows HTTP and JSON.
#![forbid(unsafe_code)]

mod audit;
mod client_address;
mod cut_short;
mod extract;
mod metrics;
mod observe;
pub mod openapi;
pub mod problem;
mod routes;
pub mod wire;

pub use metrics::Metrics;

use axum::Router;
use std::sync::Arc;
use strongroom_service::Platform;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Limits the API enforces before any service runs.
#[derive(Debug, Clone)]
pub struct Limits {
    pub body_bytes_max: usize,
}

#[derive(Clone)]
pub struct AppState {
    pub platform: Arc<Platform>,
    pub limits: Limits,
    pub metrics: Arc<Metrics>,
    /// Peers whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Arc<[ipnet::IpNet]>,
}

pub use client_address::ClientAddress;

/// What a connection's requests hold until their work is done, even when their client went
/// away first (the audit layer finishes such requests): the connection's place under the
/// connection limit, and one of its request slots. So neither closing the connection nor
/// cancelling HTTP/2 streams lets a client start more work than the limits allow; a request
/// that finds no free slot is refused with 503 (and recorded).
#[derive(Clone)]
pub struct ConnectionSlots {
    /// Held until the last of the connection's requests is done.
    pub connection: Arc<dyn std::any::Any + Send + Sync>,
    /// Requests of this connection running at once, finished or abandoned by the client.
    pub requests: Arc<tokio::sync::Semaphore>,
}

impl ConnectionSlots {
    /// Slots for a new connection that holds `connection` (its permit under the limit).
    pub fn new(connection: Arc<dyn std::any::Any + Send + Sync>, requests_max: usize) -> Self {
        Self {
            connection,
            requests: Arc::new(tokio::sync::Semaphore::new(requests_max)),
        }
    }

    /// What one request holds until it is done, or `None` when every request slot is taken.
    fn take(&self) -> Option<impl Send + 'static> {
        let request = self.requests.clone().try_acquire_owned().ok()?;
        Some((self.connection.clone(), request))
    }
}

/// The public API's routes with their OpenAPI description.
pub fn public_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::base_document("Strongroom public API"))
        .routes(routes!(openapi::public_openapi_document))
        .routes(routes!(routes::collections::list_collections))
        .routes(routes!(routes::collections::put_collection))
        .routes(routes!(
            routes::records::create_record,
            routes::records::list_records
        ))
        .routes(routes!(
            routes::records::get_record,
            routes::records::replace_record,
            routes::records::patch_record,
            routes::records::delete_record
        ))
        .routes(routes!(routes::documents::list_documents))
        .routes(routes!(
            routes::documents::put_document,
            routes::documents::get_document,
            routes::documents::delete_document,
            routes::documents::post_document
        ))
        .routes(routes!(routes::documents::list_trash))
        .routes(routes!(
            routes::users::create_user,
            routes::users::list_users
        ))
        .routes(routes!(routes::users::login))
        .routes(routes!(routes::users::recover))
        .routes(routes!(routes::users::logout))
        .routes(routes!(routes::users::me, routes::users::update_me))
        .routes(routes!(routes::users::change_password))
        .routes(routes!(routes::users::second_factor))
        .routes(routes!(
            routes::users::update_user,
            routes::users::delete_user
        ))
        .routes(routes!(routes::users::end_user_sessions))
        .routes(routes!(
            routes::users::create_tenant_token,
            routes::users::list_tenant_tokens
        ))
        .routes(routes!(routes::users::revoke_tenant_token))
        .routes(routes!(
            routes::users::get_firewall,
            routes::users::put_firewall
        ))
        .routes(routes!(
            routes::users::get_download_limits,
            routes::users::put_download_limits
        ))
        .routes(routes!(routes::users::lift_download_block))
        .routes(routes!(routes::audit::tenant_audit))
        .routes(routes!(routes::audit::tenant_public_key))
        .routes(routes!(routes::audit::tenant_checkpoints))
        .routes(routes!(routes::audit::tenant_security_events))
        .routes(routes!(
            routes::audit::get_retention,
            routes::audit::put_retention
        ))
        .routes(routes!(
            routes::audit::get_alerts,
            routes::audit::put_alerts
        ))
        .routes(routes!(routes::audit::alert_deliveries))
        .routes(routes!(
            routes::users::get_security_policy,
            routes::users::put_security_policy
        ))
        .routes(routes!(routes::users::enrol_totp))
        .routes(routes!(routes::users::confirm_totp))
        .routes(routes!(routes::documents::restore_from_trash))
        .routes(routes!(routes::access::list_roles))
        .routes(routes!(
            routes::access::put_role,
            routes::access::delete_role
        ))
        .routes(routes!(routes::access::list_groups))
        .routes(routes!(
            routes::access::put_group,
            routes::access::delete_group
        ))
        .routes(routes!(
            routes::access::list_grants,
            routes::access::create_grant
        ))
        .routes(routes!(routes::access::delete_grant))
        .routes(routes!(routes::sso::list_providers))
        .routes(routes!(
            routes::sso::put_provider,
            routes::sso::delete_provider
        ))
        .routes(routes!(routes::sso::start))
        .routes(routes!(routes::sso::callback))
        .routes(routes!(routes::support_access::list))
        .routes(routes!(routes::support_access::approve))
        .routes(routes!(routes::support_access::deny))
        .routes(routes!(routes::support_access::revoke))
}

/// The admin listener's routes with their OpenAPI description.
pub fn admin_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::base_document("Strongroom admin API"))
        .routes(routes!(routes::health::healthz))
        .routes(routes!(routes::health::readyz))
        .routes(routes!(routes::health::metrics))
        .routes(routes!(
            routes::admin::create_tenant,
            routes::admin::list_tenants
        ))
        .routes(routes!(routes::admin::show_tenant))
        .routes(routes!(routes::admin::suspend_tenant))
        .routes(routes!(routes::admin::resume_tenant))
        .routes(routes!(routes::admin::clear_tenant_firewall))
        .routes(routes!(routes::admin::create_token))
        .routes(routes!(routes::admin::rotate_tenant_key))
        .routes(routes!(routes::admin::rotate_master_key))
        .routes(routes!(routes::admin::purge_documents))
        .routes(routes!(routes::users::create_first_user))
        .routes(routes!(
            routes::operators::create_operator,
            routes::operators::list_operators
        ))
        .routes(routes!(routes::operators::disable_operator))
        .routes(routes!(routes::operators::enable_operator))
        .routes(routes!(routes::operators::enrol))
        .routes(routes!(routes::operators::confirm_enrolment))
        .routes(routes!(routes::operators::login))
        .routes(routes!(routes::operators::logout))
        .routes(routes!(routes::operators::request_support_access))
        .routes(routes!(routes::operators::list_support_access))
        .routes(routes!(routes::operators::revoke_support_access))
        .routes(routes!(routes::audit::operator_audit))
        .routes(routes!(routes::audit::verify))
        .routes(routes!(routes::audit::operator_public_key))
        .routes(routes!(routes::audit::operator_security_events))
}

pub fn public_router(state: AppState) -> Router {
    finish(public_routes(), state, observe::Listener::Public)
}

pub fn admin_router(state: AppState) -> Router {
    finish(admin_routes(), state, observe::Listener::Admin)
}

fn finish(routes: OpenApiRouter<AppState>, state: AppState, listener: observe::Listener) -> Router {
    let (router, document) = routes.split_for_parts();
    let audit_state = audit::AuditState {
        platform: state.platform.clone(),
        routes: Arc::new(audit::RouteTable::from_document(&document)),
        listener: listener.as_str(),
        trusted_proxies: state.trusted_proxies.clone(),
    };
    router
        .fallback(observe::not_found)
        .method_not_allowed_fallback(observe::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            client_address::admit,
        ))
        .layer(axum::middleware::from_fn_with_state(
            audit_state,
            audit::audit,
        ))
        .layer(axum::middleware::from_fn_with_state(
            observe::ObserveState::new(listener, state.metrics.clone()),
            observe::observe,
        ))
        .with_state(state)
}
