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
