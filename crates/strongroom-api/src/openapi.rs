//! The OpenAPI 3.1 documents, generated from the handlers' annotations.

use crate::problem::ErrorCode;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::LazyLock;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, InfoBuilder, ObjectBuilder, OpenApi, OpenApiBuilder, Type,
};

/// An empty document with the title, security schemes and the error-code table.
pub fn base_document(title: &str) -> OpenApi {
    let codes: Vec<&str> = ErrorCode::ALL.iter().map(|code| code.code()).collect();
    let error_codes = ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some("Every stable error code the API answers with, in the `code` member of a problem document"))
        .enum_values(Some(codes));
    let bearer = SecurityScheme::Http(
        HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some("A tenant API token"))
            .build(),
    );
    let operator = SecurityScheme::Http(
        HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some("An operator token"))
            .build(),
    );
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title(title)
                .version(env!("CARGO_PKG_VERSION"))
                .build(),
        )
        .components(Some(
            ComponentsBuilder::new()
                .schema("ErrorCode", error_codes)
                .security_scheme("bearer", bearer)
                .security_scheme("operator", operator)
                .build(),
        ))
        .build()
}

/// Axum spells a catch-all parameter `{*path}`; OpenAPI knows only `{path}`.
pub fn with_openapi_path_syntax(mut document: OpenApi) -> OpenApi {
    let paths = std::mem::take(&mut document.paths.paths);
    document.paths.paths = paths
        .into_iter()
        .map(|(path, item)| (path.replace("{*", "{"), item))
        .collect();
    document
}

static PUBLIC_DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    with_openapi_path_syntax(crate::public_routes().into_openapi())
        .to_pretty_json()
        .unwrap_or_else(|_| "{}".to_owned())
});

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "meta", responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")))]
pub async fn public_openapi_document() -> Response {
    let mut response = (StatusCode::OK, PUBLIC_DOCUMENT.as_str()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
