//! Every request on both listeners goes into the audit trail, and the trail fails closed: a
//! request that would change something is recorded (as an intent) before it runs, and every
//! request's outcome is recorded before its answer leaves. If either cannot be written, the
//! answer is 503 `audit_unavailable` and, for a change, the change never ran.

use crate::client_address::{ClientAddress, client_address};
use crate::observe::RequestId;
use crate::problem::{ApiError, ProblemCode};
use axum::body::HttpBody as _;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use strongroom_service::{AuditActor, AuditRecord, Platform};

/// What extractors and handlers learn about the caller, for the request's audit event.
#[derive(Clone, Default)]
pub(crate) struct AuditFacts(pub Arc<Mutex<Facts>>);

#[derive(Default)]
pub(crate) struct Facts {
    pub actor: AuditActor,
    pub username_tried: Option<String>,
    pub details: Option<serde_json::Value>,
}

impl AuditFacts {
    pub fn set_actor(&self, actor: AuditActor) {
        if let Ok(mut facts) = self.0.lock() {
            facts.actor = actor;
        }
    }

    pub fn set_details(&self, details: serde_json::Value) {
        if let Ok(mut facts) = self.0.lock() {
            facts.details = Some(details);
        }
    }

    pub fn set_username(&self, username: &str) {
        if let Ok(mut facts) = self.0.lock() {
            facts.username_tried = Some(username.chars().take(254).collect());
        }
    }
}

/// One documented route: method, path template split in segments, operation id.
struct RouteEntry {
    method: Method,
    segments: Vec<String>,
    template: String,
    operation: String,
}

/// The listener's routes, from its OpenAPI document, to name each request's action.
pub(crate) struct RouteTable {
    entries: Vec<RouteEntry>,
}

impl RouteTable {
    pub fn from_document(document: &utoipa::openapi::OpenApi) -> Self {
        let mut entries = Vec::new();
        for (template, item) in &document.paths.paths {
            let operations = [
                (Method::GET, &item.get),
                (Method::PUT, &item.put),
                (Method::POST, &item.post),
                (Method::DELETE, &item.delete),
                (Method::PATCH, &item.patch),
                (Method::HEAD, &item.head),
            ];
            for (method, operation) in operations {
                if let Some(operation) = operation {
                    entries.push(RouteEntry {
                        method,
                        segments: template.split('/').map(str::to_owned).collect(),
                        template: template.clone(),
                        operation: operation.operation_id.clone().unwrap_or_default(),
                    });
                }
            }
        }
        // Literal segments before parameters: `auth/sso/callback` over `auth/sso/{name}`.
        entries.sort_by_key(|entry| {
            entry
                .segments
                .iter()
                .filter(|segment| segment.starts_with('{'))
                .count()
        });
        RouteTable { entries }
    }

    /// The route a request took, with its path parameters.
    fn find(&self, method: &Method, path: &str) -> Option<(&RouteEntry, Vec<(String, String)>)> {
        let method = if method == Method::HEAD {
            &Method::GET
        } else {
            method
        };
        let parts: Vec<&str> = path.split('/').collect();
        'entries: for entry in self.entries.iter().filter(|entry| entry.method == *method) {
            let mut parameters = Vec::new();
            for (index, segment) in entry.segments.iter().enumerate() {
                if let Some(name) = segment
                    .strip_prefix("{*")
                    .and_then(|rest| rest.strip_suffix('}'))
                {
                    if index >= parts.len() {
                        continue 'entries;
                    }
                    parameters.push((name.to_owned(), parts[index..].join("/")));
                    return Some((entry, parameters));
                }
                let Some(part) = parts.get(index) else {
                    continue 'entries;
                };
                match segment
                    .strip_prefix('{')
                    .and_then(|rest| rest.strip_suffix('}'))
                {
                    Some(name) => parameters.push((name.to_owned(), (*part).to_owned())),
                    None if segment == part => {}
                    None => continue 'entries,
                }
            }
            if entry.segments.len() == parts.len() {
                return Some((entry, parameters));
            }
        }
        None
    }
}

#[derive(Clone)]
pub(crate) struct AuditState {
    pub platform: Arc<Platform>,
    pub routes: Arc<RouteTable>,
    pub listener: &'static str,
    pub trusted_proxies: Arc<[ipnet::IpNet]>,
}

fn refused() -> Response {
    ApiError::from(strongroom_service::ServiceError::AuditUnavailable).into_response()
}

pub(crate) async fn audit(
    State(state): State<AuditState>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| address.ip());
    let address = peer.map(|peer| {
        let forwarded_for = request
            .headers()
            .get("x-forwarded-for")
            .and_then(|value| value.to_str().ok());
        client_address(peer, forwarded_for, &state.trusted_proxies)
    });
    if let Some(address) = address {
        request.extensions_mut().insert(ClientAddress(address));
    }
    let facts = AuditFacts::default();
    request.extensions_mut().insert(facts.clone());
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let (route, action, mut parameters) = match state.routes.find(&method, &path) {
        Some((entry, parameters)) => (entry.template.clone(), entry.operation.clone(), parameters),
        // An unknown path may hold anything: it is not recorded, only that it was unknown.
        None => ("unmatched".to_owned(), "unmatched".to_owned(), Vec::new()),
    };
    let tenant_slug = parameters
        .iter()
        .position(|(name, _)| name == "slug")
        .map(|index| parameters.remove(index).1);
    let base = AuditRecord {
        tenant_slug,
        phase: "request",
        actor: AuditActor::Anonymous,
        address,
        user_agent: request
            .headers()
            .get(header::USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned),
        request_id: request
            .extensions()
            .get::<RequestId>()
            .map(|id| id.0.clone())
            .unwrap_or_default(),
        listener: state.listener,
        method: method.to_string(),
        route,
        action,
        parameters,
        ..AuditRecord::default()
    };
    let changes = !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
    if changes {
        let intent = AuditRecord {
            phase: "intent",
            outcome: "pending",
            ..base.clone()
        };
        if state.platform.audit(intent).await.is_err() {
            return refused();
        }
    }
    let response = next.run(request).await;
    let status = response.status();
    let bytes_sent = response
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
        .or_else(|| response.body().size_hint().exact());
    let (actor, username_tried, details) = match facts.0.lock() {
        Ok(mut facts) => (
            std::mem::take(&mut facts.actor),
            facts.username_tried.take(),
            facts.details.take(),
        ),
        Err(_) => (AuditActor::Anonymous, None, None),
    };
    let outcome = AuditRecord {
        phase: if changes { "outcome" } else { "request" },
        actor,
        username_tried,
        details,
        outcome: if status.is_server_error() {
            "error"
        } else if status.is_client_error() {
            "denied"
        } else {
            "allowed"
        },
        reason: response
            .extensions()
            .get::<ProblemCode>()
            .map(|code| code.0.to_owned()),
        status: Some(status.as_u16()),
        bytes_sent,
        ..base
    };
    if state.platform.audit(outcome).await.is_err() {
        return refused();
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_find_their_documented_route() {
        let (_, document) = crate::public_routes().split_for_parts();
        let table = RouteTable::from_document(&document);
        let found = |method: Method, path: &str| {
            table
                .find(&method, path)
                .map(|(entry, parameters)| (entry.operation.clone(), parameters))
        };
        assert_eq!(
            found(Method::GET, "/v1/tenants/acme/collections/notes/records/r1"),
            Some((
                "get_record".into(),
                vec![
                    ("slug".into(), "acme".into()),
                    ("name".into(), "notes".into()),
                    ("id".into(), "r1".into())
                ]
            ))
        );
        assert_eq!(
            found(Method::GET, "/v1/tenants/acme/auth/sso/callback")
                .unwrap()
                .0,
            "callback",
            "a literal segment wins over a parameter"
        );
        assert_eq!(
            found(Method::PUT, "/v1/tenants/acme/documents/a/b/c.pdf")
                .unwrap()
                .1[1],
            ("path".into(), "a/b/c.pdf".into())
        );
        assert_eq!(found(Method::GET, "/v1/nothing/here"), None);
    }
}
