//! Persistence behind two narrow traits: the control plane (tenants, wrapped keys, tokens) and
//! one store per tenant (collections, records, journal).
//!
//! This crate never sees a key or a plaintext body: record bodies, collection definitions and
//! journal entries arrive sealed, and lookups arrive as blind-index tokens. Every backend
//! passes the suite in [`conformance`].
#![forbid(unsafe_code)]

pub mod conformance;
mod error;
mod model;
mod pending;
pub mod sqlite;

pub use error::StorageError;
pub use model::*;
pub use pending::{PendingWrite, WriteReply};

/// Seals a journal entry once the store has assigned its sequence number, so the number is
/// bound into the ciphertext and reordered entries fail to open.
pub type JournalSealer = Box<dyn FnOnce(u64) -> Result<Vec<u8>, StorageError> + Send>;

/// The control plane: tenants, their wrapped keys, API and operator tokens.
pub trait ControlStore: Send + Sync {
    fn insert_tenant(
        &self,
        tenant: TenantRow,
        keys: Vec<WrappedKeyRow>,
    ) -> Result<(), StorageError>;
    fn list_tenants(&self) -> Result<Vec<TenantRow>, StorageError>;
    fn tenant_by_slug(&self, slug: &str) -> Result<Option<TenantRow>, StorageError>;
    fn tenant_by_id(&self, tenant_id: &str) -> Result<Option<TenantRow>, StorageError>;
    fn set_tenant_status(
        &self,
        tenant_id: &str,
        status: TenantStatus,
        changed_at: i64,
    ) -> Result<(), StorageError>;
    fn wrapped_keys(&self, tenant_id: &str) -> Result<Vec<WrappedKeyRow>, StorageError>;
    fn all_wrapped_keys(&self) -> Result<Vec<WrappedKeyRow>, StorageError>;
    /// Adds keys; a row with the same tenant, purpose, version and master key is a conflict.
    fn add_wrapped_keys(&self, keys: Vec<WrappedKeyRow>) -> Result<(), StorageError>;
    /// Removes every wrap made under another master key; returns how many were removed.
    fn remove_wraps_except_master(&self, master_key_id: &str) -> Result<u64, StorageError>;
    fn insert_api_token(&self, token: ApiTokenRow) -> Result<(), StorageError>;
    fn api_token_by_hash(&self, token_hash: &[u8]) -> Result<Option<ApiTokenRow>, StorageError>;
    fn insert_operator_token(&self, token: OperatorTokenRow) -> Result<(), StorageError>;
    fn operator_token_by_hash(
        &self,
        token_hash: &[u8],
    ) -> Result<Option<OperatorTokenRow>, StorageError>;
    fn operator_token_count(&self) -> Result<u64, StorageError>;
}

/// One tenant's data. Every mutating call also appends the sealed journal entry in the same
/// transaction, so the journal holds exactly the committed changes.
pub trait TenantStore: Send + Sync {
    fn put_collection(
        &self,
        collection: StoredCollection,
        journal: JournalSealer,
    ) -> PendingWrite<()>;
    fn collection(&self, collection_id: &[u8]) -> Result<Option<StoredCollection>, StorageError>;
    fn list_collections(&self) -> Result<Vec<StoredCollection>, StorageError>;
    /// Fails with [`StorageError::Conflict`] when the id is taken.
    fn insert_record(
        &self,
        record: StoredRecord,
        index_tokens: Vec<Vec<u8>>,
        journal: JournalSealer,
    ) -> PendingWrite<()>;
    /// Replaces a record whose stored version is `expected_version`; a different version is a
    /// conflict, a missing record is not found.
    fn replace_record(
        &self,
        record: StoredRecord,
        expected_version: u64,
        index_tokens: Vec<Vec<u8>>,
        journal: JournalSealer,
    ) -> PendingWrite<()>;
    fn delete_record(
        &self,
        collection_id: &[u8],
        record_id: &str,
        expected_version: u64,
        journal: JournalSealer,
    ) -> PendingWrite<()>;
    fn record(
        &self,
        collection_id: &[u8],
        record_id: &str,
    ) -> Result<Option<StoredRecord>, StorageError>;
    fn list_records(&self, query: &RecordQuery) -> Result<Vec<StoredRecord>, StorageError>;
    fn read_journal(
        &self,
        after_sequence: u64,
        limit: u32,
    ) -> Result<Vec<JournalRow>, StorageError>;
    /// Records and collections sealed under a key version below `key_version`, for re-encryption.
    fn sealed_below(
        &self,
        key_version: u32,
        limit: u32,
    ) -> Result<(Vec<StoredCollection>, Vec<StoredRecord>), StorageError>;
    /// Replaces the sealed bytes of unchanged content (same version); returns false when the
    /// item changed or vanished meanwhile. Not journaled: the content is the same.
    fn reseal(
        &self,
        collections: Vec<StoredCollection>,
        records: Vec<StoredRecord>,
    ) -> PendingWrite<u64>;
    /// Replaces the blind-index tokens of records still at the given version (after a schema
    /// change); returns how many records were re-indexed.
    fn replace_index_tokens(
        &self,
        collection_id: &[u8],
        entries: Vec<IndexEntry>,
    ) -> PendingWrite<u64>;
    /// Flushes the write-ahead log into the main file (used before copying or inspecting files).
    fn checkpoint(&self) -> Result<(), StorageError>;
}
