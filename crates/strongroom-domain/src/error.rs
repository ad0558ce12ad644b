use thiserror::Error;

/// Every way a value from outside can break a domain rule. Messages are written for the person
/// who sent the value: they say what was wrong and what is accepted.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DomainError {
    #[error(
        "invalid tenant slug {slug:?}: use 2 to 63 characters a-z, 0-9 and '-', starting with a letter"
    )]
    InvalidSlug { slug: String },
    #[error(
        "the tenant slug {slug:?} is reserved: it names the control plane's audit trail and log directory; choose another"
    )]
    ReservedSlug { slug: String },
    #[error(
        "invalid collection name {name:?}: use 1 to 64 characters a-z, 0-9 and '_', starting with a letter"
    )]
    InvalidCollectionName { name: String },
    #[error("invalid schema: {reason}")]
    InvalidSchema { reason: String },
    #[error("record does not match the collection schema: {reason}")]
    SchemaViolation { reason: String },
    #[error("unknown scope {scope:?}: known scopes are {known}")]
    UnknownScope { scope: String, known: String },
    #[error(
        "invalid cursor: it must be a value returned as next_cursor by an earlier page of the same listing"
    )]
    InvalidCursor,
    #[error("invalid query parameter {parameter:?}: {reason}")]
    InvalidQuery { parameter: String, reason: String },
    /// A field of the request body, or a header.
    #[error("invalid {field:?}: {reason}")]
    InvalidField { field: String, reason: String },
    #[error("invalid document path {path:?}: {reason}")]
    InvalidPath { path: String, reason: String },
    #[error("invalid timestamp {value:?}: use RFC 3339, for example 2026-01-31T12:00:00Z")]
    InvalidTimestamp { value: String },
}
