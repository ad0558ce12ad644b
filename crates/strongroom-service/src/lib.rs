//! Strongroom's services: tenants, tokens, keys, collections and records. This is where plain
//! values meet keys and storage: bodies are sealed here before any store sees them, and opened
//! here after reading. No HTTP and no JSON wire formats live here.
#![forbid(unsafe_code)]

mod access_model;
mod alerts;
mod audit;
mod audit_log;
mod audit_retention;
mod clock;
mod collections;
mod common_passwords;
mod documents;
mod download_limits;
mod email;
mod error;
mod firewall;
mod journal;
mod keys;
pub mod master_key_file;
mod mfa;
mod operators;
mod outbound;
mod passwords;
mod platform;
mod presented_actor;
mod records;
mod sealing;
mod security;
mod security_policy;
mod session_cache;
mod settings;
mod sign_in;
mod sso;
mod support_access;
mod tenant_context;
mod tenants;
mod throttle;
mod user_admin;
mod users;
mod views;

pub use access_model::{AccessModel, GrantScope, GrantSubject, RoleGrant, RoleView};
pub use alerts::{Webhook, shown_url};
pub use audit::{
    AuditActor, AuditEvent, AuditEventView, AuditFilter, AuditRecord, CONTROL_CHAIN, ChainReport,
    CheckpointView,
};
pub use audit_retention::AuditRetention;
pub use clock::{Clock, FakeClock, SystemClock};
pub use documents::{ContentStream, DocumentContent, DocumentLimits, PurgeReport};
pub use download_limits::{Allowance, CountedDownload, DownloadLimits};
pub use email::SmtpOptions;
pub use error::ServiceError;
pub use journal::JournalChange;
pub use mfa::TotpEnrolment;
pub use operators::{CreatedOperator, OperatorSignedIn, OperatorView};
pub use platform::{Platform, PlatformOptions, StoreOpener, TenantStores, sqlite_store_opener};
pub use records::RecordUpdate;
pub use security::{RequestOrigin, SecurityEventKind, SecurityEvents};
pub use security_policy::{MfaRequirement, SecurityPolicy, SessionTimeouts};
pub use sso::{SsoCallback, SsoProviderChange, SsoProviderView, SsoStart};
pub use strongroom_domain::Timestamp;
/// The API holds a change's writes behind its audit intent with this gate.
pub use strongroom_storage::WriteGate;
pub use support_access::{CreatedSupportGrant, SupportDecision, SupportGrantView};
pub use tenants::{OperatorPrincipal, SessionUser, SupportMark, TokenPrincipal};
pub use user_admin::UserChange;
pub use users::{CreatedUser, SignIn, SignedIn, UserView};
pub use views::*;
