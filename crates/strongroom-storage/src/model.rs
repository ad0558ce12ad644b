/// A tenant as the control plane keeps it. Tenant names and regions are operator metadata,
/// not tenant content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantRow {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub region: String,
    pub status: TenantStatus,
    pub created_at: i64,
    pub status_changed_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantStatus {
    Active,
    Suspended,
}

impl TenantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TenantStatus::Active => "active",
            TenantStatus::Suspended => "suspended",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "active" => Some(TenantStatus::Active),
            "suspended" => Some(TenantStatus::Suspended),
            _ => None,
        }
    }
}

/// A tenant key sealed under a master key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedKeyRow {
    pub tenant_id: String,
    /// `data` or `index`.
    pub purpose: String,
    pub version: u32,
    pub master_key_id: String,
    pub wrapped: Vec<u8>,
    /// When this key version was created (kept across master-key rotations).
    pub created_at: i64,
    /// When it was wrapped under this master key.
    pub wrapped_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTokenRow {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub token_hash: Vec<u8>,
    /// Space-separated scope names.
    pub scopes: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorTokenRow {
    pub id: String,
    pub name: String,
    pub token_hash: Vec<u8>,
    pub created_at: i64,
}

/// A collection: its id is a blind index of its name, its name and schema are sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCollection {
    pub id: Vec<u8>,
    pub key_version: u32,
    pub sealed: Vec<u8>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    pub collection_id: Vec<u8>,
    pub id: String,
    pub version: u64,
    pub created_at: i64,
    pub updated_at: i64,
    pub key_version: u32,
    pub sealed_body: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordOrder {
    Created,
    Updated,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordQuery {
    pub collection_id: Vec<u8>,
    pub order: RecordOrder,
    /// Position after which the page starts: (timestamp of the order column, record id).
    pub after: Option<(i64, String)>,
    pub updated_after: Option<i64>,
    /// Every token must match (AND).
    pub index_tokens: Vec<Vec<u8>>,
    pub limit: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalRow {
    pub sequence: u64,
    pub sealed: Vec<u8>,
}

/// The blind-index tokens of one record at one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    pub record_id: String,
    pub version: u64,
    pub tokens: Vec<Vec<u8>>,
}

/// A document: its id is random, its path sealed and found through a blind index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDocument {
    pub id: String,
    pub path_id: Vec<u8>,
    pub sealed_path: Vec<u8>,
    pub key_version: u32,
    /// `Some` while the document is in the trash.
    pub trashed_at: Option<i64>,
    pub current_version: u64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One version of a document: which blob holds its content, and its sealed metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDocumentVersion {
    pub document_id: String,
    pub version: u64,
    pub blob_id: String,
    pub size: u64,
    pub sealed_meta: Vec<u8>,
    pub key_version: u32,
    pub created_at: i64,
    /// When a newer version replaced this one; `None` for the current version.
    pub superseded_at: Option<i64>,
}

/// A new version to store. Version 1 creates the document (a conflict when a live document
/// has the path); later versions require the document's current version to be `version - 1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDocumentVersion {
    pub document: StoredDocument,
    pub version: StoredDocumentVersion,
    /// Blind-index tokens of the path's directory prefixes (for version 1).
    pub prefix_tokens: Vec<Vec<u8>>,
}

/// Where a restored document goes when its old path is taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentRelocation {
    pub path_id: Vec<u8>,
    pub sealed_path: Vec<u8>,
    pub prefix_tokens: Vec<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentQuery {
    /// Tokens of the listed prefixes (every document has one for the empty prefix): documents
    /// under any of them, each once. None: an empty page.
    pub prefix_tokens: Vec<Vec<u8>>,
    pub trashed: bool,
    /// Position after which the page starts: (updated_at, document id).
    pub after: Option<(i64, String)>,
    pub limit: u32,
}

/// What a purge removes, chosen by [`crate::TenantStore::purge_candidates`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PurgePlan {
    /// Superseded versions past retention: (document id, version).
    pub versions: Vec<(String, u64)>,
    /// Trashed documents past retention, with all their versions.
    pub documents: Vec<String>,
    /// The retention bounds the plan was made with; the purge re-checks them when it runs, so
    /// a document restored (or a version changed) meanwhile is left alone.
    pub versions_before: i64,
    pub trash_before: i64,
}

impl PurgePlan {
    pub fn is_empty(&self) -> bool {
        self.versions.is_empty() && self.documents.is_empty()
    }
}

/// A user of a tenant. Email, name and phone are personal data: sealed, with the email also
/// as a blind index for login. The password hash is sealed too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredUser {
    pub id: String,
    pub email_index: Vec<u8>,
    pub sealed_profile: Vec<u8>,
    pub sealed_password: Option<Vec<u8>>,
    /// Space-separated built-in role names.
    pub roles: String,
    pub disabled: bool,
    pub must_change_password: bool,
    pub password_changed_at: Option<i64>,
    pub key_version: u32,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A login session; only the token's hash is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSession {
    pub token_hash: Vec<u8>,
    pub user_id: String,
    pub created_at: i64,
    pub last_seen_at: i64,
}

/// Which of a user's sessions to end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionSelection {
    /// The session with this token hash (logout).
    One(Vec<u8>),
    /// Every session but this one (password change).
    AllBut(Vec<u8>),
    /// Every session (disable, admin "end all sessions").
    All,
}

/// A user's second factor: the sealed TOTP secret and recovery-code hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMfa {
    pub user_id: String,
    pub sealed: Vec<u8>,
    pub confirmed: bool,
    /// The last TOTP time step accepted, so no code is accepted twice.
    pub last_step: Option<i64>,
}

/// A sign-in waiting for its second factor; only the token's hash is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredChallenge {
    pub token_hash: Vec<u8>,
    pub user_id: String,
    pub created_at: i64,
    /// The time step of the latest wrong codes and how many there were in it.
    pub failed_step: i64,
    pub failures: u32,
}

/// Consecutive failed sign-ins of one account.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoginFailures {
    pub consecutive: u32,
    pub last_failure_at: i64,
    pub locked: bool,
}

/// The control plane's own data key (it seals operator secrets), wrapped by one master key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlKeyRow {
    pub master_key_id: String,
    pub wrapped: Vec<u8>,
    pub created_at: i64,
}

/// Where an operator account stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperatorStatus {
    /// Created; waiting for its owner to set a password and enrol TOTP.
    Invited,
    Active,
    Disabled,
}

impl OperatorStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OperatorStatus::Invited => "invited",
            OperatorStatus::Active => "active",
            OperatorStatus::Disabled => "disabled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Invited, Self::Active, Self::Disabled]
            .into_iter()
            .find(|status| status.as_str() == text)
    }
}

/// An operator account. Secrets (password hash, TOTP secret) arrive sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorRow {
    pub id: String,
    pub name: String,
    pub status: OperatorStatus,
    pub sealed_secrets: Option<Vec<u8>>,
    pub enrolment_token_hash: Option<Vec<u8>>,
    pub enrolment_expires_at: Option<i64>,
    pub failed_logins: u32,
    pub last_failure_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// An operator's session; only the token's hash is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorSessionRow {
    pub token_hash: Vec<u8>,
    pub operator_id: String,
    pub created_at: i64,
    pub last_seen_at: i64,
}

/// Where a break-glass grant stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantStatus {
    /// Waiting for the tenant's approval.
    Pending,
    Active,
    Denied,
    Revoked,
}

impl GrantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            GrantStatus::Pending => "pending",
            GrantStatus::Active => "active",
            GrantStatus::Denied => "denied",
            GrantStatus::Revoked => "revoked",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Pending, Self::Active, Self::Denied, Self::Revoked]
            .into_iter()
            .find(|status| status.as_str() == text)
    }
}

/// An operator's time-boxed access to one tenant's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupportGrantRow {
    pub id: String,
    pub operator_id: String,
    pub operator_name: String,
    pub tenant_id: String,
    pub justification: String,
    /// Space-separated data scopes.
    pub scopes: String,
    pub token_hash: Vec<u8>,
    pub status: GrantStatus,
    pub created_at: i64,
    pub expires_at: i64,
    pub decided_by: Option<String>,
    pub decided_at: Option<i64>,
}

/// One download to count against a caller's limits in a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadToCount {
    /// An opaque key such as `user:<id>`.
    pub caller: String,
    pub window_start: i64,
    /// What is downloaded (a document version's ETag).
    pub content: String,
    /// A range request: it is no further file when the caller already downloaded (part of)
    /// the same content in the window, so a player or a resumed download counts once.
    pub ranged: bool,
    pub bytes: u64,
    pub files_max: Option<u64>,
    pub bytes_max: Option<u64>,
}

/// Downloads counted for one caller in one window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DownloadCount {
    pub files: u64,
    pub bytes: u64,
}

/// What counting a download decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DownloadDecision {
    /// The counts after the call.
    pub count: DownloadCount,
    pub counted: bool,
    /// The window's counts, made anew each time they start (after an admin reset too): a
    /// refund names it, so bytes of a download counted before a reset come off nothing.
    pub window_id: i64,
}

/// A stored 32-byte chain hash; a shorter (damaged) one is padded with zeros, so appends and
/// verification go on from it and verification reports the damage instead of stopping.
pub fn stored_head(stored: &[u8]) -> [u8; 32] {
    let mut head = [0u8; 32];
    let length = stored.len().min(32);
    head[..length].copy_from_slice(&stored[..length]);
    head
}

/// One stored audit event: the sealed event and its chain hash, with the few plaintext
/// columns queries filter on (blind-index tokens where the value is personal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub chain: String,
    pub sequence: u64,
    pub at: i64,
    pub action: String,
    pub outcome: String,
    pub actor_token: Option<Vec<u8>>,
    pub address_token: Option<Vec<u8>>,
    pub sealed: Vec<u8>,
    pub hash: Vec<u8>,
}

/// The audit signing key, sealed by the caller, beside its public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSigningKey {
    pub sealed: Vec<u8>,
    pub public: Vec<u8>,
}

/// A signed chain head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditCheckpointRow {
    pub chain: String,
    pub sequence: u64,
    pub head: Vec<u8>,
    pub signature: Vec<u8>,
    pub at: i64,
    /// Marks where expired events end (signed with the expiry message), so a trail that
    /// starts after it was expired, not cut.
    pub expiry: bool,
}

/// Which audit events to list: one chain, newest first below `before_sequence`.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub chain: String,
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub action: Option<String>,
    pub outcome: Option<String>,
    pub actor_token: Option<Vec<u8>>,
    pub address_token: Option<Vec<u8>>,
    pub before_sequence: Option<u64>,
    pub limit: u32,
}

/// What an audit append stores, apart from what the sealer makes.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub chain: String,
    pub at: i64,
    pub action: String,
    pub outcome: String,
    pub actor_token: Option<Vec<u8>>,
    pub address_token: Option<Vec<u8>>,
}
