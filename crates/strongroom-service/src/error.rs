use strongroom_crypto::CryptoError;
use strongroom_domain::{DomainError, Scope};
use strongroom_storage::StorageError;
use thiserror::Error;

/// Everything a service call can answer instead of a result. The API crate maps each variant
/// to one stable code and HTTP status in its single error table.
#[derive(Debug, Error)]
pub enum ServiceError {
    #[error(transparent)]
    Invalid(#[from] DomainError),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("missing or unknown credentials")]
    Unauthenticated,
    #[error("{0}")]
    InvalidCredential(String),
    #[error("the email or password is wrong, or the account is disabled")]
    LoginFailed,
    #[error("too many failed sign-ins; try again in {retry_after_seconds} seconds")]
    TooManyAttempts { retry_after_seconds: i64 },
    #[error(
        "this account is locked after too many failed sign-ins; an admin of your organisation can unlock it, or, with a second factor, sign in with your password and a recovery code (POST /v1/tenants/{{slug}}/auth/recover)"
    )]
    AccountLocked,
    #[error("this token lacks the {} scope", .0.as_str())]
    MissingScope(Scope),
    #[error("the {0} permission is needed for this")]
    MissingPermission(&'static str),
    /// A tenant-wide action asked with an API token, which never carries it (even an
    /// `audit:read` token only reads the trail).
    #[error(
        "only a signed-in user{} may do this; API tokens cannot",
        .0.map(|permission| format!(" with the {permission} permission")).unwrap_or_default()
    )]
    SignedInUserNeeded(Option<&'static str>),
    #[error(
        "change your one-time or expired password first (POST /v1/tenants/{{slug}}/me/password)"
    )]
    PasswordChangeRequired,
    #[error(
        "your organisation requires a second factor: enrol one first (POST /v1/tenants/{{slug}}/me/mfa/totp)"
    )]
    MfaEnrolmentRequired,
    #[error("single sign-on failed: {0}")]
    SsoFailed(String),
    #[error(
        "this organisation signs in through single sign-on only: use GET /v1/tenants/{{slug}}/auth/sso/{{provider}}"
    )]
    SsoRequired,
    #[error(
        "you reached your organisation's download limit, and further downloads are blocked until this window ends (in {retry_after_seconds} s, also in Retry-After) or an admin lifts the block"
    )]
    DownloadLimit { retry_after_seconds: i64 },
    #[error("this organisation's firewall does not let requests from your address in")]
    FirewallDenied,
    #[error(
        "these rules would shut out your own address {0}; send confirm_lockout: true if that is what you want"
    )]
    FirewallLockout(String),
    #[error("tenant {0} is suspended; its data cannot be used until an operator resumes it")]
    TenantSuspended(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the record is at version {current_version}, not the version given in If-Match")]
    PreconditionFailed { current_version: u64 },
    #[error("stored data of {what} failed its integrity check: it was altered or damaged on disk")]
    Integrity { what: String },
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    QuotaExceeded(String),
    #[error("the range cannot be satisfied: the content is {size} bytes long")]
    RangeNotSatisfiable { size: u64 },
    #[error("the audit trail cannot be written, so nothing is done; retry later")]
    AuditUnavailable,
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StorageError> for ServiceError {
    fn from(error: StorageError) -> Self {
        match error {
            StorageError::NotFound => ServiceError::NotFound("item"),
            StorageError::Conflict(reason) => ServiceError::Conflict(reason.to_owned()),
            StorageError::Unavailable(reason) => {
                ServiceError::Unavailable(format!("storage unavailable: {reason}"))
            }
            other => ServiceError::Internal(other.to_string()),
        }
    }
}

impl From<CryptoError> for ServiceError {
    fn from(error: CryptoError) -> Self {
        ServiceError::Internal(format!("crypto: {error}"))
    }
}
