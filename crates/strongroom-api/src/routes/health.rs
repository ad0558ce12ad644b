use crate::AppState;
use crate::routes::json_response;
use crate::wire::Health;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health)))]
pub async fn healthz() -> Response {
    json_response(
        StatusCode::OK,
        Health {
            status: "ok".into(),
        },
        HeaderMap::new(),
    )
}

/// Readiness: the control plane answers.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses((status = 200, body = Health), (status = 503, body = Health)))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    if state.platform.ready().await {
        json_response(
            StatusCode::OK,
            Health {
                status: "ready".into(),
            },
            HeaderMap::new(),
        )
    } else {
        json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            Health {
                status: "not ready".into(),
            },
            HeaderMap::new(),
        )
    }
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let body = state.metrics.render(&state.platform.security.counts());
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}
