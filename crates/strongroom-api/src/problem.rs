//! The one error table: every error the API can answer, with its stable code and HTTP status,
//! rendered as RFC 9457 `application/problem+json`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use strongroom_domain::DomainError;
use strongroom_service::ServiceError;
use utoipa::ToSchema;

/// Stable error codes. Clients may match on them; never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    MalformedJson,
    InvalidRequest,
    InvalidQuery,
    InvalidCursor,
    SchemaViolation,
    Unauthenticated,
    MissingScope,
    MissingPermission,
    PasswordChangeRequired,
    AccountLocked,
    TooManyAttempts,
    MfaEnrolmentRequired,
    TenantSuspended,
    SsoFailed,
    SsoRequired,
    FirewallDenied,
    FirewallLockout,
    DownloadLimitReached,
    AuditUnavailable,
    AuditOutcomeUnavailable,
    NotFound,
    MethodNotAllowed,
    Conflict,
    PreconditionFailed,
    PayloadTooLarge,
    UnsupportedMediaType,
    RangeNotSatisfiable,
    InsufficientStorage,
    IntegrityError,
    Unavailable,
    Internal,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 31] = [
        ErrorCode::MalformedJson,
        ErrorCode::InvalidRequest,
        ErrorCode::InvalidQuery,
        ErrorCode::InvalidCursor,
        ErrorCode::SchemaViolation,
        ErrorCode::Unauthenticated,
        ErrorCode::MissingScope,
        ErrorCode::MissingPermission,
        ErrorCode::PasswordChangeRequired,
        ErrorCode::AccountLocked,
        ErrorCode::TooManyAttempts,
        ErrorCode::MfaEnrolmentRequired,
        ErrorCode::TenantSuspended,
        ErrorCode::SsoFailed,
        ErrorCode::SsoRequired,
        ErrorCode::FirewallDenied,
        ErrorCode::FirewallLockout,
        ErrorCode::DownloadLimitReached,
        ErrorCode::AuditUnavailable,
        ErrorCode::AuditOutcomeUnavailable,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::Conflict,
        ErrorCode::PreconditionFailed,
        ErrorCode::PayloadTooLarge,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::RangeNotSatisfiable,
        ErrorCode::InsufficientStorage,
        ErrorCode::IntegrityError,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
    ];

    /// The table: code, status and title of every error.
    pub fn describe(self) -> (&'static str, StatusCode, &'static str) {
        match self {
            ErrorCode::MalformedJson => (
                "malformed_json",
                StatusCode::BAD_REQUEST,
                "The request body is not valid JSON",
            ),
            ErrorCode::InvalidRequest => (
                "invalid_request",
                StatusCode::BAD_REQUEST,
                "The request is invalid",
            ),
            ErrorCode::InvalidQuery => (
                "invalid_query",
                StatusCode::BAD_REQUEST,
                "A query parameter is invalid",
            ),
            ErrorCode::InvalidCursor => (
                "invalid_cursor",
                StatusCode::BAD_REQUEST,
                "The cursor is invalid",
            ),
            ErrorCode::SchemaViolation => (
                "schema_violation",
                StatusCode::BAD_REQUEST,
                "The record does not match the collection schema",
            ),
            ErrorCode::Unauthenticated => (
                "unauthenticated",
                StatusCode::UNAUTHORIZED,
                "Authentication is required",
            ),
            ErrorCode::MissingScope => (
                "missing_scope",
                StatusCode::FORBIDDEN,
                "The credential lacks a required scope",
            ),
            ErrorCode::MfaEnrolmentRequired => (
                "mfa_enrolment_required",
                StatusCode::FORBIDDEN,
                "A second factor must be enrolled first",
            ),
            ErrorCode::AccountLocked => (
                "account_locked",
                StatusCode::FORBIDDEN,
                "The account is locked",
            ),
            ErrorCode::TooManyAttempts => (
                "too_many_attempts",
                StatusCode::TOO_MANY_REQUESTS,
                "Too many attempts",
            ),
            ErrorCode::MissingPermission => (
                "missing_permission",
                StatusCode::FORBIDDEN,
                "The user lacks a required permission",
            ),
            ErrorCode::PasswordChangeRequired => (
                "password_change_required",
                StatusCode::FORBIDDEN,
                "The password must be changed first",
            ),
            ErrorCode::SsoFailed => (
                "sso_failed",
                StatusCode::UNAUTHORIZED,
                "Single sign-on failed",
            ),
            ErrorCode::SsoRequired => (
                "sso_required",
                StatusCode::FORBIDDEN,
                "Sign in through single sign-on",
            ),
            ErrorCode::FirewallDenied => (
                "firewall_denied",
                StatusCode::FORBIDDEN,
                "The organisation's firewall refuses this address",
            ),
            ErrorCode::FirewallLockout => (
                "firewall_lockout",
                StatusCode::CONFLICT,
                "The rules would shut out the caller",
            ),
            ErrorCode::DownloadLimitReached => (
                "download_limit_reached",
                StatusCode::TOO_MANY_REQUESTS,
                "The download limit is reached",
            ),
            ErrorCode::AuditUnavailable => (
                "audit_unavailable",
                StatusCode::SERVICE_UNAVAILABLE,
                "The audit trail cannot be written",
            ),
            ErrorCode::AuditOutcomeUnavailable => (
                "audit_outcome_unavailable",
                StatusCode::SERVICE_UNAVAILABLE,
                "The change was made, but its outcome could not be recorded",
            ),
            ErrorCode::TenantSuspended => (
                "tenant_suspended",
                StatusCode::FORBIDDEN,
                "The tenant is suspended",
            ),
            ErrorCode::NotFound => ("not_found", StatusCode::NOT_FOUND, "Not found"),
            ErrorCode::MethodNotAllowed => (
                "method_not_allowed",
                StatusCode::METHOD_NOT_ALLOWED,
                "Method not allowed",
            ),
            ErrorCode::Conflict => ("conflict", StatusCode::CONFLICT, "Conflict"),
            ErrorCode::PreconditionFailed => (
                "precondition_failed",
                StatusCode::PRECONDITION_FAILED,
                "The If-Match precondition failed",
            ),
            ErrorCode::PayloadTooLarge => (
                "payload_too_large",
                StatusCode::PAYLOAD_TOO_LARGE,
                "The request body is too large",
            ),
            ErrorCode::UnsupportedMediaType => (
                "unsupported_media_type",
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Unsupported media type",
            ),
            ErrorCode::RangeNotSatisfiable => (
                "range_not_satisfiable",
                StatusCode::RANGE_NOT_SATISFIABLE,
                "The requested range is outside the content",
            ),
            ErrorCode::InsufficientStorage => (
                "quota_exceeded",
                StatusCode::INSUFFICIENT_STORAGE,
                "The tenant's storage quota is exhausted",
            ),
            ErrorCode::IntegrityError => (
                "integrity_error",
                StatusCode::INTERNAL_SERVER_ERROR,
                "Stored data failed its integrity check",
            ),
            ErrorCode::Unavailable => (
                "unavailable",
                StatusCode::SERVICE_UNAVAILABLE,
                "The service is temporarily unavailable",
            ),
            ErrorCode::Internal => (
                "internal",
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal error",
            ),
        }
    }

    pub fn code(self) -> &'static str {
        self.describe().0
    }

    pub fn status(self) -> StatusCode {
        self.describe().1
    }
}

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the problem type: `urn:strongroom:problem:<code>`.
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    /// What went wrong, for a person, and what to do about it.
    pub detail: String,
    /// The stable error code; see the `ErrorCode` schema for every value.
    pub code: String,
}

/// Internal detail carried to the logging middleware, never to the client.
#[derive(Clone, Debug)]
pub struct InternalDetail(pub String);

/// The code of a problem answer, for the audit trail.
#[derive(Debug, Clone, Copy)]
pub struct ProblemCode(pub &'static str);

#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub detail: String,
    internal: Option<String>,
    /// Seconds until a retry can succeed, sent as `Retry-After`.
    retry_after_seconds: Option<i64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
            internal: None,
            retry_after_seconds: None,
        }
    }

    fn internal(code: ErrorCode, detail: &str, internal: String) -> Self {
        Self {
            internal: Some(internal),
            ..Self::new(code, detail)
        }
    }
}

impl From<DomainError> for ApiError {
    fn from(error: DomainError) -> Self {
        let code = match &error {
            DomainError::SchemaViolation { .. } => ErrorCode::SchemaViolation,
            DomainError::InvalidCursor => ErrorCode::InvalidCursor,
            DomainError::InvalidQuery { .. } | DomainError::InvalidTimestamp { .. } => {
                ErrorCode::InvalidQuery
            }
            DomainError::InvalidPath { .. } | DomainError::InvalidField { .. } => {
                ErrorCode::InvalidRequest
            }
            DomainError::InvalidSlug { .. }
            | DomainError::ReservedSlug { .. }
            | DomainError::InvalidCollectionName { .. }
            | DomainError::InvalidSchema { .. }
            | DomainError::UnknownScope { .. } => ErrorCode::InvalidRequest,
        };
        ApiError::new(code, error.to_string())
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        match error {
            ServiceError::Invalid(domain) => domain.into(),
            ServiceError::NotFound("collection") => ApiError::new(
                ErrorCode::NotFound,
                "collection not found; create it first with PUT /v1/tenants/{slug}/collections/{name}",
            ),
            ServiceError::NotFound(what) => {
                ApiError::new(ErrorCode::NotFound, format!("{what} not found"))
            }
            ServiceError::Unauthenticated => ApiError::new(
                ErrorCode::Unauthenticated,
                "send a valid token as `Authorization: Bearer <token>`",
            ),
            ServiceError::MissingScope(_) => {
                ApiError::new(ErrorCode::MissingScope, error.to_string())
            }
            ServiceError::MfaEnrolmentRequired => {
                ApiError::new(ErrorCode::MfaEnrolmentRequired, error.to_string())
            }
            ServiceError::AccountLocked => {
                ApiError::new(ErrorCode::AccountLocked, error.to_string())
            }
            ServiceError::TooManyAttempts { .. } => {
                ApiError::new(ErrorCode::TooManyAttempts, error.to_string())
            }
            ServiceError::InvalidCredential(detail) => {
                ApiError::new(ErrorCode::Unauthenticated, detail)
            }
            ServiceError::LoginFailed => {
                ApiError::new(ErrorCode::Unauthenticated, error.to_string())
            }
            ServiceError::MissingPermission(_) | ServiceError::SignedInUserNeeded(_) => {
                ApiError::new(ErrorCode::MissingPermission, error.to_string())
            }
            ServiceError::PasswordChangeRequired => {
                ApiError::new(ErrorCode::PasswordChangeRequired, error.to_string())
            }
            ServiceError::SsoFailed(_) => ApiError::new(ErrorCode::SsoFailed, error.to_string()),
            ServiceError::SsoRequired => ApiError::new(ErrorCode::SsoRequired, error.to_string()),
            ServiceError::FirewallDenied => {
                ApiError::new(ErrorCode::FirewallDenied, error.to_string())
            }
            ServiceError::FirewallLockout(_) => {
                ApiError::new(ErrorCode::FirewallLockout, error.to_string())
            }
            ServiceError::DownloadLimit {
                retry_after_seconds,
            } => ApiError {
                retry_after_seconds: Some(retry_after_seconds),
                ..ApiError::new(ErrorCode::DownloadLimitReached, error.to_string())
            },
            ServiceError::AuditUnavailable => {
                ApiError::new(ErrorCode::AuditUnavailable, error.to_string())
            }
            ServiceError::TenantSuspended(_) => {
                ApiError::new(ErrorCode::TenantSuspended, error.to_string())
            }
            ServiceError::Conflict(detail) => ApiError::new(ErrorCode::Conflict, detail),
            ServiceError::PreconditionFailed { .. } => {
                ApiError::new(ErrorCode::PreconditionFailed, error.to_string())
            }
            ServiceError::PayloadTooLarge(detail) => {
                ApiError::new(ErrorCode::PayloadTooLarge, detail)
            }
            ServiceError::QuotaExceeded(detail) => {
                ApiError::new(ErrorCode::InsufficientStorage, detail)
            }
            ServiceError::RangeNotSatisfiable { .. } => {
                ApiError::new(ErrorCode::RangeNotSatisfiable, error.to_string())
            }
            ServiceError::Integrity { .. } => {
                ApiError::new(ErrorCode::IntegrityError, error.to_string())
            }
            ServiceError::Unavailable(detail) => ApiError::internal(
                ErrorCode::Unavailable,
                "the service cannot complete this request now; retry later",
                detail,
            ),
            ServiceError::Internal(detail) => ApiError::internal(
                ErrorCode::Internal,
                "an internal error occurred; quote the X-Request-Id response header when reporting it",
                detail,
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (code, status, title) = self.code.describe();
        let problem = Problem {
            problem_type: format!("urn:strongroom:problem:{code}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: self.detail,
            code: code.to_owned(),
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.code == ErrorCode::Unauthenticated {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(seconds) = self.retry_after_seconds {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        }
        if let Some(internal) = self.internal {
            response.extensions_mut().insert(InternalDetail(internal));
        }
        // The audit trail records why a request was refused.
        response.extensions_mut().insert(ProblemCode(code));
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_statuses_are_errors() {
        let mut codes: Vec<&str> = ErrorCode::ALL.iter().map(|code| code.code()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), ErrorCode::ALL.len());
        assert!(
            ErrorCode::ALL
                .iter()
                .all(|code| code.status().is_client_error() || code.status().is_server_error())
        );
    }
}
