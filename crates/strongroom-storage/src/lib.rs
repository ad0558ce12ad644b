//! Persistence behind two narrow traits: the control plane (tenants, wrapped keys, tokens) and
//! one store per tenant (collections, records, journal).
//!
//! This crate never sees a key or a plaintext body: record bodies, collection definitions and
//! journal entries arrive sealed, and lookups arrive as blind-index tokens. Every backend
//! passes the suite in [`conformance`].
#![forbid(unsafe_code)]

mod blob;
pub mod conformance;
mod error;
mod model;
mod pending;
pub mod sqlite;
mod write_gate;

pub use blob::{BlobRead, BlobStore, BlobUpload, FsBlobStore};
pub use error::StorageError;
pub use model::*;
pub use pending::{PendingWrite, WriteReply};
pub use write_gate::WriteGate;

/// Seals a journal entry once the store has assigned its sequence number, so the number is
/// bound into the ciphertext and reordered entries fail to open.
pub type JournalSealer = Box<dyn FnOnce(u64) -> Result<Vec<u8>, StorageError> + Send>;

/// Given the event's sequence number in its chain and the previous event's hash (zeros for
/// the first), seals the event and answers the sealed bytes and the event's own hash.
pub type AuditSealer =
    Box<dyn FnOnce(u64, &[u8; 32]) -> Result<(Vec<u8>, [u8; 32]), StorageError> + Send>;

/// The audit trail: one hash chain per tenant and one for the control plane, with signed
/// checkpoints of chain heads.
pub trait AuditStore: Send + Sync {
    /// Appends an event at the end of its chain; answers its sequence number once durable.
    fn append(&self, entry: AuditEntry, sealer: AuditSealer) -> PendingWrite<u64>;
    /// Events of one chain matching the query, newest first.
    fn events(&self, query: &AuditQuery) -> Result<Vec<AuditRow>, StorageError>;
    /// Events of one chain in order, from `after_sequence` on, at most `limit`.
    fn chain_events(
        &self,
        chain: &str,
        after_sequence: u64,
        limit: u32,
    ) -> Result<Vec<AuditRow>, StorageError>;
    fn chains(&self) -> Result<Vec<String>, StorageError>;
    /// The last event's sequence and hash.
    fn head(&self, chain: &str) -> Result<Option<(u64, Vec<u8>)>, StorageError>;
    fn add_checkpoint(&self, checkpoint: AuditCheckpointRow) -> Result<(), StorageError>;
    /// The last of the events older than `before` that open a chain (retention): its sequence
    /// and hash. An event older than `before` that follows a younger one is not counted.
    fn last_event_before(
        &self,
        chain: &str,
        before: i64,
    ) -> Result<Option<(u64, Vec<u8>)>, StorageError>;
    /// Removes a chain's events up to and including `sequence` (only where an expiry mark
    /// stands at `sequence`; otherwise a conflict and nothing removed), and its checkpoints before
    /// it (the one at `sequence` stays: verification starts from it). Answers how many events.
    fn remove_events_through(&self, chain: &str, sequence: u64) -> Result<u64, StorageError>;
    /// The chain's newest checkpoint (signing asks every minute: a year of them is not read
    /// to find it).
    fn last_checkpoint(&self, chain: &str) -> Result<Option<AuditCheckpointRow>, StorageError>;
    /// One page of a chain's checkpoints, oldest first, after `after_sequence`.
    fn checkpoints_after(
        &self,
        chain: &str,
        after_sequence: u64,
        limit: u32,
    ) -> Result<Vec<AuditCheckpointRow>, StorageError>;
    /// The signing key, if a first start stored one.
    fn signing_key(&self) -> Result<Option<StoredSigningKey>, StorageError>;
    /// Stores the signing key unless one exists; answers the one that is stored.
    fn set_signing_key(&self, key: StoredSigningKey) -> Result<StoredSigningKey, StorageError>;
}

/// Operators, their sessions, break-glass grants and the control plane's own key.
pub trait OperatorStore: Send + Sync {
    fn control_keys(&self) -> Result<Vec<ControlKeyRow>, StorageError>;
    /// Adds a wrap of the control key; one under the same master key is left as it is.
    fn add_control_key(&self, key: ControlKeyRow) -> Result<(), StorageError>;
    /// A taken name is a conflict.
    fn insert_operator(&self, operator: OperatorRow) -> Result<(), StorageError>;
    /// Replaces the row with the same id if it still has `expected_updated_at` (a conflict
    /// otherwise: someone changed it meanwhile). With `retire_tokens`, every operator token
    /// (the bootstrap token) is removed in the same transaction. Taking the last active
    /// operator out of `active` is a conflict, decided in the same transaction.
    fn update_operator(
        &self,
        operator: OperatorRow,
        expected_updated_at: i64,
        retire_tokens: bool,
    ) -> Result<(), StorageError>;
    fn operator(&self, operator_id: &str) -> Result<Option<OperatorRow>, StorageError>;
    fn operator_by_name(&self, name: &str) -> Result<Option<OperatorRow>, StorageError>;
    fn operator_by_enrolment(&self, token_hash: &[u8])
    -> Result<Option<OperatorRow>, StorageError>;
    fn list_operators(&self) -> Result<Vec<OperatorRow>, StorageError>;
    fn insert_operator_session(&self, session: OperatorSessionRow) -> Result<(), StorageError>;
    fn operator_session(
        &self,
        token_hash: &[u8],
    ) -> Result<Option<OperatorSessionRow>, StorageError>;
    fn touch_operator_session(
        &self,
        token_hash: &[u8],
        last_seen_at: i64,
    ) -> Result<(), StorageError>;
    /// Ends one session, or with `None` every session of the operator.
    fn end_operator_sessions(
        &self,
        operator_id: &str,
        token_hash: Option<&[u8]>,
    ) -> Result<u64, StorageError>;
    fn insert_support_grant(&self, grant: SupportGrantRow) -> Result<(), StorageError>;
    fn support_grant(&self, grant_id: &str) -> Result<Option<SupportGrantRow>, StorageError>;
    fn support_grant_by_token(
        &self,
        token_hash: &[u8],
    ) -> Result<Option<SupportGrantRow>, StorageError>;
    /// Newest first; of one tenant, or of all.
    fn support_grants(&self, tenant_id: Option<&str>)
    -> Result<Vec<SupportGrantRow>, StorageError>;
    /// Moves a grant from `from` to `to`; false when it was not in `from` (someone was first).
    fn decide_support_grant(
        &self,
        grant_id: &str,
        from: &[GrantStatus],
        to: GrantStatus,
        decided_by: &str,
        decided_at: i64,
    ) -> Result<bool, StorageError>;
}

/// The control plane: tenants, their wrapped keys, API and operator tokens.
pub trait ControlStore: OperatorStore + Send + Sync {
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
    /// A tenant's API tokens, oldest first.
    fn api_tokens(&self, tenant_id: &str) -> Result<Vec<ApiTokenRow>, StorageError>;
    /// Removes a tenant's token; false when it has no such token.
    fn remove_api_token(&self, tenant_id: &str, token_id: &str) -> Result<bool, StorageError>;
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

    /// Documents.
    fn put_document_version(
        &self,
        new: NewDocumentVersion,
        journal: JournalSealer,
    ) -> PendingWrite<()>;
    /// The live (not trashed) document at a path.
    fn document_by_path(&self, path_id: &[u8]) -> Result<Option<StoredDocument>, StorageError>;
    fn document(&self, document_id: &str) -> Result<Option<StoredDocument>, StorageError>;
    fn document_versions(
        &self,
        document_id: &str,
    ) -> Result<Vec<StoredDocumentVersion>, StorageError>;
    /// Live or trashed documents under a prefix, ordered by (updated_at, id).
    fn list_documents(&self, query: &DocumentQuery) -> Result<Vec<StoredDocument>, StorageError>;
    /// Moves a live document to the trash.
    fn trash_document(
        &self,
        document_id: &str,
        trashed_at: i64,
        journal: JournalSealer,
    ) -> PendingWrite<()>;
    /// Brings a trashed document back, at its path or at `relocation`; a conflict when a live
    /// document has that path.
    fn restore_document(
        &self,
        document_id: &str,
        relocation: Option<DocumentRelocation>,
        restored_at: i64,
        journal: JournalSealer,
    ) -> PendingWrite<()>;
    /// What retention allows to remove: versions superseded before `versions_before`, documents
    /// trashed before `trash_before`; at most `limit` of each.
    fn purge_candidates(
        &self,
        versions_before: i64,
        trash_before: i64,
        limit: u32,
    ) -> Result<PurgePlan, StorageError>;
    fn purge(&self, plan: PurgePlan, journal: JournalSealer) -> PendingWrite<()>;
    /// Registered blobs no version points to any more.
    fn unreferenced_blobs(&self) -> Result<Vec<String>, StorageError>;
    /// Forgets a blob's registration if it is still unreferenced; returns whether it did.
    fn forget_blob(&self, blob_id: &str) -> PendingWrite<bool>;
    fn blob_registered(&self, blob_id: &str) -> Result<bool, StorageError>;
    /// Document paths and version metadata sealed under a key version below `key_version`.
    fn document_items_sealed_below(
        &self,
        key_version: u32,
        limit: u32,
    ) -> Result<(Vec<StoredDocument>, Vec<StoredDocumentVersion>), StorageError>;
    /// Replaces sealed paths and version metadata with the given re-sealed ones (same content,
    /// newer key); items that changed meanwhile are left alone. Returns how many changed.
    fn reseal_document_items(
        &self,
        documents: Vec<StoredDocument>,
        versions: Vec<StoredDocumentVersion>,
    ) -> PendingWrite<u64>;
    /// Users. Inserts or replaces a user; with `previous_password`, the replaced password joins
    /// the history, which keeps at most `history_kept` entries. A taken email is a conflict.
    fn put_user(
        &self,
        user: StoredUser,
        previous_password: Option<Vec<u8>>,
        history_kept: u32,
        journal: JournalSealer,
    ) -> PendingWrite<()>;
    fn user(&self, user_id: &str) -> Result<Option<StoredUser>, StorageError>;
    fn user_by_email(&self, email_index: &[u8]) -> Result<Option<StoredUser>, StorageError>;
    fn list_users(&self) -> Result<Vec<StoredUser>, StorageError>;
    /// Removes a user with their password history, sessions and second factor.
    fn remove_user(&self, user_id: &str, journal: JournalSealer) -> PendingWrite<()>;
    /// The user's earlier passwords, newest first.
    fn password_history(&self, user_id: &str) -> Result<Vec<Vec<u8>>, StorageError>;
    /// Sessions: authentication state, not tenant content, so not journaled.
    fn insert_session(&self, session: StoredSession) -> PendingWrite<()>;
    fn session(&self, token_hash: &[u8]) -> Result<Option<StoredSession>, StorageError>;
    fn touch_session(&self, token_hash: &[u8], last_seen_at: i64) -> PendingWrite<()>;
    fn end_sessions(&self, user_id: &str, selection: SessionSelection) -> PendingWrite<u64>;
    /// Failed sign-ins (security state, not journaled). Recording one locks the account at
    /// `lock_after` consecutive failures and answers the new count.
    fn record_login_failure(
        &self,
        user_id: &str,
        at: i64,
        lock_after: u32,
    ) -> PendingWrite<LoginFailures>;
    fn login_failures(&self, user_id: &str) -> Result<LoginFailures, StorageError>;
    /// Counts one download unless it would pass either limit; answers the counts and whether
    /// it was counted.
    fn count_download(&self, download: DownloadToCount) -> PendingWrite<DownloadDecision>;
    /// Forgets every count of `caller`; answers how many windows were dropped.
    fn reset_downloads(&self, caller: &str) -> PendingWrite<u64>;
    /// Takes `bytes` back from `caller`'s counts `window_id` (a download that stopped before
    /// its end), if they are still the ones it was counted in (not reset by an admin since,
    /// not dropped for a newer window); never below zero, and the file and any block stay.
    fn uncount_download_bytes(&self, caller: &str, window_id: i64, bytes: u64) -> PendingWrite<()>;
    fn clear_login_failures(&self, user_id: &str) -> PendingWrite<()>;
    /// Tenant settings such as the security policy: sealed values by name, journaled.
    fn put_setting(&self, name: &str, sealed: Vec<u8>, journal: JournalSealer) -> PendingWrite<()>;
    fn setting(&self, name: &str) -> Result<Option<Vec<u8>>, StorageError>;
    /// A user's second factor (journaled: the journal is sealed).
    fn put_mfa(&self, mfa: StoredMfa, journal: JournalSealer) -> PendingWrite<()>;
    fn mfa(&self, user_id: &str) -> Result<Option<StoredMfa>, StorageError>;
    /// Sign-ins waiting for their second factor (authentication state, not journaled).
    fn put_challenge(&self, challenge: StoredChallenge) -> PendingWrite<()>;
    fn challenge(&self, token_hash: &[u8]) -> Result<Option<StoredChallenge>, StorageError>;
    fn remove_challenge(&self, token_hash: &[u8]) -> PendingWrite<()>;
    /// Bytes of all registered blobs (the quota counts stored content once).
    fn storage_used_bytes(&self) -> Result<u64, StorageError>;
}
