//! What services return. These are plain values; the API crate turns them into wire types.

use serde_json::Value;
use strongroom_domain::{CollectionSchema, Timestamp};

#[derive(Debug, Clone, PartialEq)]
pub struct TenantView {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub region: String,
    pub suspended: bool,
    pub created_at: Timestamp,
    pub status_changed_at: Timestamp,
    pub keys: Vec<KeyVersionView>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct KeyVersionView {
    /// `data` or `index`.
    pub purpose: String,
    pub version: u32,
    pub created_at: Timestamp,
    /// When the key was last wrapped (at creation or at the last master-key rotation).
    pub wrapped_at: Timestamp,
    pub master_key_id: String,
}

/// A newly created API token: the only time its secret is shown.
#[derive(Debug, Clone)]
pub struct CreatedToken {
    pub id: String,
    pub name: String,
    pub tenant_slug: String,
    pub scopes: Vec<String>,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub secret: String,
}

/// An API token as listed: never its secret.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenView {
    pub id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CollectionView {
    pub name: String,
    pub schema: CollectionSchema,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RecordView {
    pub collection: String,
    pub id: String,
    pub version: u64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub body: Value,
}

/// One entry of a listing: a record, or the id of one whose stored bytes are damaged, so one
/// bad record never hides the others.
#[derive(Debug, Clone, PartialEq)]
pub enum ListedRecord {
    Record(RecordView),
    Damaged { id: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct RecordPage {
    pub items: Vec<ListedRecord>,
    pub next_cursor: Option<String>,
}

/// Whether a put created the item or replaced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    Created,
    Updated,
}

/// Result of a master-key rotation.
#[derive(Debug, Clone, PartialEq)]
pub struct MasterRotation {
    pub old_master_key_id: String,
    pub new_master_key_id: String,
    pub rewrapped_keys: usize,
    pub backup_file: std::path::PathBuf,
}

/// A document at one version.
#[derive(Debug, Clone, PartialEq)]
pub struct DocumentView {
    pub path: String,
    /// A strong validator naming this document and version (a re-created path gets a new one).
    pub etag: String,
    pub version: u64,
    pub size: u64,
    pub content_type: String,
    /// SHA-256 of the plaintext, hex.
    pub sha256: String,
    pub created_at: Timestamp,
    /// When this version was written.
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DocumentVersionView {
    pub version: u64,
    pub size: u64,
    pub content_type: String,
    pub sha256: String,
    pub created_at: Timestamp,
    pub current: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DocumentPage {
    pub documents: Vec<DocumentView>,
    pub next_cursor: Option<String>,
}

/// A document in the trash; restore it by `id`.
#[derive(Debug, Clone, PartialEq)]
pub struct TrashEntryView {
    pub id: String,
    pub path: String,
    pub deleted_at: Timestamp,
    pub versions: u64,
    pub size: u64,
}
