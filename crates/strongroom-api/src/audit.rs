//! Every request on both listeners goes into the audit trail, and the trail fails closed: a
//! request that would change something is recorded (as an intent) before it runs, and every
//! request's outcome is recorded before its answer leaves. If either cannot be written, the
//! answer is 503 `audit_unavailable` and, for a change, the change never ran.

use crate::client_address::{ClientAddress, client_address};
use crate::observe::RequestId;
use crate::problem::{ApiError, ErrorCode, ProblemCode};
use axum::body::{Body, HttpBody as _};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use strongroom_service::WriteGate;
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

    /// Whether someone is named yet (by the intent's lookup or an extractor).
    pub fn names_someone(&self) -> bool {
        self.0
            .lock()
            .is_ok_and(|facts| !matches!(facts.actor, AuditActor::Anonymous))
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

/// One documented route: its path template and operation id.
pub(crate) struct RouteEntry {
    template: String,
    operation: String,
}

/// The listener's routes, from its OpenAPI document, to name each request's action. Matched
/// by the same router crate axum uses, so a request finds the route axum gave it.
pub(crate) struct RouteTable {
    by_method: Vec<(Method, matchit::Router<RouteEntry>)>,
}

impl RouteTable {
    pub fn from_document(document: &utoipa::openapi::OpenApi) -> Self {
        let mut by_method: Vec<(Method, matchit::Router<RouteEntry>)> = Vec::new();
        for (template, item) in &document.paths.paths {
            let operations = [
                (Method::GET, &item.get),
                (Method::PUT, &item.put),
                (Method::POST, &item.post),
                (Method::DELETE, &item.delete),
                (Method::PATCH, &item.patch),
            ];
            for (method, operation) in operations {
                let Some(operation) = operation else {
                    continue;
                };
                let index = match by_method.iter().position(|(known, _)| *known == method) {
                    Some(index) => index,
                    None => {
                        by_method.push((method, matchit::Router::new()));
                        by_method.len() - 1
                    }
                };
                let entry = RouteEntry {
                    template: template.clone(),
                    operation: operation.operation_id.clone().unwrap_or_default(),
                };
                // The router serving these paths accepted them, so they cannot conflict.
                if let Err(error) = by_method[index].1.insert(template.clone(), entry) {
                    tracing::error!(%error, template, "a documented route cannot be audited by name");
                }
            }
        }
        RouteTable { by_method }
    }

    /// The route a request took, with its path parameters decoded as the handlers' path
    /// extractor decodes them (so `/v1/tenants/%61cme/…` is recorded in acme's trail).
    fn find(&self, method: &Method, path: &str) -> Option<(&RouteEntry, Vec<(String, String)>)> {
        let method = if method == Method::HEAD {
            &Method::GET
        } else {
            method
        };
        let (_, router) = self.by_method.iter().find(|(known, _)| known == method)?;
        let found = router.at(path).ok()?;
        let parameters = found
            .params
            .iter()
            .map(|(name, value)| {
                let decoded = percent_encoding::percent_decode_str(value).decode_utf8_lossy();
                (name.to_owned(), decoded.into_owned())
            })
            .collect();
        Some((found.value, parameters))
    }
}

#[derive(Clone)]
pub(crate) struct AuditState {
    pub platform: Arc<Platform>,
    pub routes: Arc<RouteTable>,
    pub listener: &'static str,
    pub trusted_proxies: Arc<[ipnet::IpNet]>,
}

/// Changes whose every write goes to a gated database from the request's own task: their
/// intent is written while they run, and their commit waits on the writer's thread until the
/// intent is durable ([`WriteGate`]), so a change waits for one commit less. Any other change
/// waits for its intent before it runs. The fail-closed tests cover both kinds.
const INTENT_WRITTEN_ALONGSIDE: &[&str] = &[
    "create_record",
    "replace_record",
    "patch_record",
    "delete_record",
];

/// GET routes that store something, so their intent is durable before they run like any
/// change's: the single sign-on callback (users, links, sessions) and document downloads (the
/// download counter).
const CHANGES_ON_GET: &[&str] = &["callback", "get_document"];

/// Operator routes that name the tenant whose trail they read in the query (`?tenant=acme`):
/// such a read is recorded in that tenant's chain, as a request naming it in the path is, so
/// the tenant's trail shows who read it.
const TENANT_IN_QUERY: &[&str] = &["operator_audit", "verify", "operator_security_events"];

/// The tenant a [`TENANT_IN_QUERY`] request names, if any, read as its handler reads it.
fn tenant_in_query(uri: &axum::http::Uri) -> Option<String> {
    let axum::extract::Query(pairs) =
        axum::extract::Query::<Vec<(String, String)>>::try_from_uri(uri).ok()?;
    crate::routes::query_value(&pairs, "tenant")
}

/// Whether a request may store something, so its intent must be durable first. HEAD runs the
/// GET handler (only the body is dropped): a HEAD to the sign-on callback signs in as a GET
/// does.
fn may_change(method: &Method, action: &str) -> bool {
    match *method {
        Method::GET | Method::HEAD => CHANGES_ON_GET.contains(&action),
        Method::OPTIONS => false,
        _ => true,
    }
}

fn refused() -> Response {
    ApiError::from(strongroom_service::ServiceError::AuditUnavailable).into_response()
}

/// A change that succeeded but whose outcome could not be recorded: its intent is in the trail
/// and the change stands, which the client must know before it retries.
fn made_but_unrecorded() -> Response {
    ApiError::new(
        ErrorCode::AuditOutcomeUnavailable,
        "the change was made and its intent is in the audit trail, but its outcome could not be \
         recorded; do not repeat it, check its result instead",
    )
    .into_response()
}

/// A client that goes away drops its request's future wherever it stands. The request runs in
/// a task of its own instead, so a change under way still finishes and its outcome, like a
/// read's event, still reaches the trail; only the answer is lost. The task holds the
/// connection's slots ([`crate::ConnectionSlots`]) until it ends.
pub(crate) async fn audit(
    State(state): State<AuditState>,
    request: Request,
    next: Next,
) -> Response {
    let held = match request.extensions().get::<crate::ConnectionSlots>() {
        // In process (tests, benchmarks) there is no connection to count.
        None => None,
        Some(slots) => match slots.take() {
            Some(held) => Some(held),
            None => return audit_request(state, request, None).await,
        },
    };
    let work = async move {
        let response = audit_request(state, request, Some(next)).await;
        drop(held);
        response
    };
    // The task logs under the request's span, as the handler did in place.
    match tokio::spawn(tracing::Instrument::in_current_span(work)).await {
        Ok(response) => response,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        // Cancelled: the runtime is shutting down.
        Err(_) => refused(),
    }
}

/// Runs a request's handler; a panic in it becomes a 500 answer, so the request's outcome is
/// still recorded and the connection's other requests go on. The panic's message is not
/// logged: it may quote what the handler held.
async fn answer_even_a_panic(handler: impl std::future::Future<Output = Response>) -> Response {
    use futures_util::FutureExt;
    match std::panic::AssertUnwindSafe(handler).catch_unwind().await {
        Ok(response) => response,
        Err(_) => {
            tracing::error!("a request's handler panicked; answered 500");
            ApiError::new(ErrorCode::Internal, "the request failed on the server").into_response()
        }
    }
}

/// The answer to a request that found every slot of its connection taken.
fn too_many_on_connection() -> Response {
    ApiError::new(
        ErrorCode::Unavailable,
        "too many requests of this connection are still running; retry shortly",
    )
    .into_response()
}

/// Records and runs one request; with no `next`, records it and refuses it as one too many.
async fn audit_request(state: AuditState, mut request: Request, next: Option<Next>) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| address.ip());
    let address = peer.map(|peer| {
        // Every line, in order; one that is not text reads as an unreadable hop.
        let forwarded_for: Vec<&str> = request
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .map(|value| value.to_str().unwrap_or("unreadable"))
            .collect();
        client_address(peer, &forwarded_for, &state.trusted_proxies)
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
    let in_path = parameters
        .iter()
        .position(|(name, _)| name == "slug")
        .map(|index| parameters.remove(index).1);
    let tenant_read_only = in_path.is_none() && TENANT_IN_QUERY.contains(&action.as_str());
    let tenant_slug = match tenant_read_only {
        true => tenant_in_query(request.uri()),
        false => in_path,
    };
    let base = AuditRecord {
        tenant_slug,
        tenant_read_only,
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
    // A refused request changes nothing and needs no intent.
    let changes = next.is_some() && may_change(&method, &base.action);
    let mut intent_alongside = None;
    if changes {
        // Who the credential names: after a crash between the change and its outcome, the
        // intent is the change's only event.
        let actor = match crate::extract::presented_credential(request.method(), request.headers())
        {
            Some(secret) => {
                let slug = base.tenant_slug.as_deref();
                state
                    .platform
                    .presented_actor(state.listener, slug, secret)
                    .await
            }
            None => AuditActor::Anonymous,
        };
        // Also the outcome's, unless an extractor finds the caller (a firewall refusal, or a
        // body refused before the credential is read, names the same caller as the intent).
        facts.set_actor(actor.clone());
        let intent = AuditRecord {
            phase: "intent",
            outcome: "pending",
            actor,
            ..base.clone()
        };
        if INTENT_WRITTEN_ALONGSIDE.contains(&base.action.as_str()) {
            let gate = WriteGate::new();
            let settling = gate.clone();
            let platform = state.platform.clone();
            let written = tokio::spawn(async move {
                let result = platform.audit(intent).await;
                settling.settle(result.as_ref().map(|_| ()).map_err(ToString::to_string));
                result.is_ok()
            });
            intent_alongside = Some((gate, written));
        } else if state.platform.audit(intent).await.is_err() {
            return refused();
        }
    }
    // Security events raised while the request runs name where it came from.
    let origin = strongroom_service::RequestOrigin {
        address: base.address,
        user_agent: base.user_agent.clone(),
        request_id: base.request_id.clone(),
        listener: state.listener,
    };
    let response = match (next, intent_alongside) {
        (None, _) => too_many_on_connection(),
        (Some(next), Some((gate, written))) => {
            let response = answer_even_a_panic(origin.scope(gate.scope(next.run(request)))).await;
            // The outcome follows its intent in the chain, and a refused intent refused the
            // request's writes: the answer says so whatever the handler made of it.
            if !written.await.unwrap_or(false) {
                return refused();
            }
            response
        }
        (Some(next), None) => answer_even_a_panic(origin.scope(next.run(request))).await,
    };
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
    let counted = crate::cut_short::worth_counting(&method, &response).then(|| outcome.clone());
    if state.platform.audit(outcome).await.is_err() {
        return if changes && status.is_success() {
            made_but_unrecorded()
        } else {
            refused()
        };
    }
    match counted {
        Some(record) => {
            let download = response
                .extensions()
                .get::<strongroom_service::CountedDownload>()
                .cloned();
            response.map(|body| {
                // The length the answer's header promises: hyper stops at it without polling a
                // streamed body to its end.
                Body::new(crate::cut_short::CountedBody::new(
                    body,
                    bytes_sent,
                    record_cut_short(state.platform.clone(), record, download),
                ))
            })
        }
        None => response,
    }
}

/// What records a body stopped before its end: a second event of its request, in the
/// background, since the answer is already on its way; and for a download counted against
/// the caller's thresholds, takes back the bytes it did not send.
fn record_cut_short(
    platform: Arc<Platform>,
    outcome: AuditRecord,
    download: Option<strongroom_service::CountedDownload>,
) -> Box<dyn FnOnce(u64, crate::cut_short::CutShort) + Send + Sync> {
    Box::new(move |sent, why| {
        if let (Some(download), Some(length)) = (download, outcome.bytes_sent) {
            platform.refund_download(download, length.saturating_sub(sent));
        }
        platform.audit_in_background(AuditRecord {
            phase: "cut_short",
            outcome: match why {
                crate::cut_short::CutShort::ClientGone => outcome.outcome,
                crate::cut_short::CutShort::BodyFailed => "error",
            },
            reason: Some(why.reason().to_owned()),
            bytes_sent: Some(sent),
            ..outcome
        });
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    /// The fail-closed lists name routes by operation id: a renamed handler must not drop
    /// out of them unnoticed.
    #[test]
    fn the_fail_closed_lists_name_documented_routes() {
        let (_, document) = crate::public_routes().split_for_parts();
        let mut operation_ids: Vec<String> = document
            .paths
            .paths
            .values()
            .flat_map(|item| {
                [&item.get, &item.put, &item.post, &item.delete, &item.patch]
                    .into_iter()
                    .flatten()
                    .filter_map(|operation| operation.operation_id.clone())
            })
            .collect();
        let (_, admin) = crate::admin_routes().split_for_parts();
        operation_ids.extend(admin.paths.paths.values().flat_map(|item| {
            [&item.get, &item.post]
                .into_iter()
                .flatten()
                .filter_map(|operation| operation.operation_id.clone())
        }));
        for name in INTENT_WRITTEN_ALONGSIDE
            .iter()
            .chain(CHANGES_ON_GET)
            .chain(TENANT_IN_QUERY)
        {
            assert!(
                operation_ids.iter().any(|id| id == name),
                "{name} is not a documented operation"
            );
        }
    }

    #[tokio::test]
    async fn a_handler_that_panics_is_answered_500_so_its_outcome_is_recorded() {
        let answered = answer_even_a_panic(async {
            if std::hint::black_box(true) {
                panic!("a handler bug");
            }
            StatusCode::OK.into_response()
        })
        .await;
        assert_eq!(answered.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let fine = answer_even_a_panic(async { StatusCode::OK.into_response() }).await;
        assert_eq!(fine.status(), StatusCode::OK);
    }

    #[test]
    fn a_head_to_a_route_that_stores_on_get_is_a_change_too() {
        assert!(may_change(&Method::HEAD, "callback"));
        assert!(may_change(&Method::GET, "get_document"));
        assert!(!may_change(&Method::HEAD, "get_record"));
        assert!(!may_change(&Method::OPTIONS, "callback"));
        assert!(may_change(&Method::POST, "create_record"));
    }

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
        assert_eq!(
            found(Method::GET, "/v1/tenants/%61cme/audit").unwrap().1,
            vec![("slug".into(), "acme".into())],
            "parameters are decoded, as the handlers see them"
        );
    }
}
