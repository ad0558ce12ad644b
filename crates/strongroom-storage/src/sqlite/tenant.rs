use super::{SqliteDatabase, documents, users};
use crate::{
    DocumentQuery, DocumentRelocation, DownloadDecision, DownloadToCount, IndexEntry, JournalRow,
    JournalSealer, LoginFailures, NewDocumentVersion, PendingWrite, PurgePlan, RecordOrder,
    RecordQuery, SessionSelection, StorageError, StoredChallenge, StoredCollection, StoredDocument,
    StoredDocumentVersion, StoredMfa, StoredRecord, StoredSession, StoredUser, TenantStore,
};
use rusqlite::{Connection, OptionalExtension, Row, params};
use std::path::Path;

/// Tenant database formats; entry `i` migrates format `i` to `i + 1`. Do not edit a shipped
/// entry: append a new one.
const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE collections (
        id BLOB PRIMARY KEY,
        key_version INTEGER NOT NULL,
        sealed BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE TABLE records (
        collection_id BLOB NOT NULL,
        id TEXT NOT NULL,
        version INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        key_version INTEGER NOT NULL,
        sealed_body BLOB NOT NULL,
        PRIMARY KEY (collection_id, id)
    );
    CREATE INDEX records_by_created ON records (collection_id, created_at, id);
    CREATE INDEX records_by_updated ON records (collection_id, updated_at, id);
    CREATE TABLE record_index (
        collection_id BLOB NOT NULL,
        token BLOB NOT NULL,
        record_id TEXT NOT NULL,
        PRIMARY KEY (collection_id, token, record_id)
    ) WITHOUT ROWID;
    CREATE INDEX record_index_by_record ON record_index (collection_id, record_id);
    CREATE TABLE journal (
        sequence INTEGER PRIMARY KEY,
        sealed BLOB NOT NULL
    );
",
    super::documents::MIGRATION,
    super::users::MIGRATION,
    super::users::MFA_MIGRATION,
    super::users::LOGIN_FAILURES_MIGRATION,
    super::users::SETTINGS_MIGRATION,
    super::downloads::MIGRATION,
    super::downloads::CONTENT_MIGRATION,
    super::downloads::WINDOW_ID_MIGRATION,
];

/// One tenant's SQLite file.
pub struct SqliteTenantStore {
    database: SqliteDatabase,
}

impl SqliteTenantStore {
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        Ok(Self {
            database: SqliteDatabase::open(path, MIGRATIONS)?,
        })
    }
}

const RECORD_COLUMNS: &str =
    "collection_id, id, version, created_at, updated_at, key_version, sealed_body";

fn record_from_row(row: &Row<'_>) -> rusqlite::Result<StoredRecord> {
    Ok(StoredRecord {
        collection_id: row.get(0)?,
        id: row.get(1)?,
        version: row.get::<_, i64>(2)? as u64,
        created_at: row.get(3)?,
        updated_at: row.get(4)?,
        key_version: row.get::<_, i64>(5)? as u32,
        sealed_body: row.get(6)?,
    })
}

fn collection_from_row(row: &Row<'_>) -> rusqlite::Result<StoredCollection> {
    Ok(StoredCollection {
        id: row.get(0)?,
        key_version: row.get::<_, i64>(1)? as u32,
        sealed: row.get(2)?,
        created_at: row.get(3)?,
        updated_at: row.get(4)?,
    })
}

pub(super) fn append_journal(
    connection: &Connection,
    journal: JournalSealer,
) -> Result<(), StorageError> {
    let last: i64 = connection
        .prepare_cached("SELECT COALESCE(MAX(sequence), 0) FROM journal")?
        .query_row([], |row| row.get(0))?;
    let sequence = last + 1;
    let sealed = journal(sequence as u64)?;
    connection
        .prepare_cached("INSERT INTO journal (sequence, sealed) VALUES (?1, ?2)")?
        .execute(params![sequence, sealed])?;
    Ok(())
}

fn write_index(
    connection: &Connection,
    collection_id: &[u8],
    record_id: &str,
    tokens: &[Vec<u8>],
) -> Result<(), StorageError> {
    connection
        .prepare_cached("DELETE FROM record_index WHERE collection_id = ?1 AND record_id = ?2")?
        .execute(params![collection_id, record_id])?;
    insert_index_tokens(connection, collection_id, record_id, tokens)
}

/// Adds index entries for a record that has none yet.
fn insert_index_tokens(
    connection: &Connection,
    collection_id: &[u8],
    record_id: &str,
    tokens: &[Vec<u8>],
) -> Result<(), StorageError> {
    let mut insert = connection.prepare_cached(
        "INSERT OR IGNORE INTO record_index (collection_id, token, record_id) VALUES (?1, ?2, ?3)",
    )?;
    for token in tokens {
        insert.execute(params![collection_id, token, record_id])?;
    }
    Ok(())
}

fn stored_version(
    connection: &Connection,
    collection_id: &[u8],
    record_id: &str,
) -> Result<Option<u64>, StorageError> {
    Ok(connection
        .prepare_cached("SELECT version FROM records WHERE collection_id = ?1 AND id = ?2")?
        .query_row(params![collection_id, record_id], |row| {
            row.get::<_, i64>(0)
        })
        .optional()?
        .map(|version| version as u64))
}

impl TenantStore for SqliteTenantStore {
    fn put_collection(
        &self,
        collection: StoredCollection,
        journal: JournalSealer,
    ) -> PendingWrite<()> {
        self.database.write(move |connection| {
            connection
                .prepare_cached(
                    "INSERT INTO collections (id, key_version, sealed, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (id) DO UPDATE SET key_version = excluded.key_version, sealed = excluded.sealed, updated_at = excluded.updated_at",
                )?
                .execute(params![collection.id, collection.key_version, collection.sealed, collection.created_at, collection.updated_at])?;
            append_journal(connection, journal)
        })
    }

    fn collection(&self, collection_id: &[u8]) -> Result<Option<StoredCollection>, StorageError> {
        self.database.read(|connection| {
            Ok(connection
                .prepare_cached("SELECT id, key_version, sealed, created_at, updated_at FROM collections WHERE id = ?1")?
                .query_row([collection_id], collection_from_row)
                .optional()?)
        })
    }

    fn list_collections(&self) -> Result<Vec<StoredCollection>, StorageError> {
        self.database.read(|connection| {
            let mut statement = connection.prepare_cached("SELECT id, key_version, sealed, created_at, updated_at FROM collections ORDER BY created_at, id")?;
            let rows = statement.query_map([], collection_from_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn insert_record(
        &self,
        record: StoredRecord,
        index_tokens: Vec<Vec<u8>>,
        journal: JournalSealer,
    ) -> PendingWrite<()> {
        self.database.write(move |connection| {
            // The primary key refuses a taken id; no lookup first.
            connection
                .prepare_cached(&format!(
                    "INSERT INTO records ({RECORD_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                ))?
                .execute(params![
                    record.collection_id,
                    record.id,
                    record.version as i64,
                    record.created_at,
                    record.updated_at,
                    record.key_version,
                    record.sealed_body
                ])
                .map_err(|error| match error.sqlite_error_code() {
                    Some(rusqlite::ErrorCode::ConstraintViolation) => {
                        StorageError::Conflict("a record with this id exists")
                    }
                    _ => error.into(),
                })?;
            insert_index_tokens(connection, &record.collection_id, &record.id, &index_tokens)?;
            append_journal(connection, journal)
        })
    }

    fn replace_record(
        &self,
        record: StoredRecord,
        expected_version: u64,
        index_tokens: Vec<Vec<u8>>,
        journal: JournalSealer,
    ) -> PendingWrite<()> {
        self.database.write(move |connection| {
            match stored_version(connection, &record.collection_id, &record.id)? {
                None => return Err(StorageError::NotFound),
                Some(version) if version != expected_version => return Err(StorageError::Conflict("the record changed meanwhile")),
                Some(_) => {}
            }
            connection
                .prepare_cached(
                    "UPDATE records SET version = ?3, updated_at = ?4, key_version = ?5, sealed_body = ?6 WHERE collection_id = ?1 AND id = ?2",
                )?
                .execute(params![record.collection_id, record.id, record.version as i64, record.updated_at, record.key_version, record.sealed_body])?;
            write_index(connection, &record.collection_id, &record.id, &index_tokens)?;
            append_journal(connection, journal)
        })
    }

    fn delete_record(
        &self,
        collection_id: &[u8],
        record_id: &str,
        expected_version: u64,
        journal: JournalSealer,
    ) -> PendingWrite<()> {
        let (collection_id, record_id) = (collection_id.to_vec(), record_id.to_owned());
        self.database.write(move |connection| {
            match stored_version(connection, &collection_id, &record_id)? {
                None => return Err(StorageError::NotFound),
                Some(version) if version != expected_version => {
                    return Err(StorageError::Conflict("the record changed meanwhile"));
                }
                Some(_) => {}
            }
            connection
                .prepare_cached("DELETE FROM records WHERE collection_id = ?1 AND id = ?2")?
                .execute(params![collection_id, record_id])?;
            write_index(connection, &collection_id, &record_id, &[])?;
            append_journal(connection, journal)
        })
    }

    fn record(
        &self,
        collection_id: &[u8],
        record_id: &str,
    ) -> Result<Option<StoredRecord>, StorageError> {
        self.database.read(|connection| {
            Ok(connection
                .prepare_cached(&format!(
                    "SELECT {RECORD_COLUMNS} FROM records WHERE collection_id = ?1 AND id = ?2"
                ))?
                .query_row(params![collection_id, record_id], record_from_row)
                .optional()?)
        })
    }

    fn list_records(&self, query: &RecordQuery) -> Result<Vec<StoredRecord>, StorageError> {
        let order_column = match query.order {
            RecordOrder::Created => "created_at",
            RecordOrder::Updated => "updated_at",
        };
        let mut sql = format!("SELECT {RECORD_COLUMNS} FROM records r WHERE r.collection_id = ?1");
        let mut values: Vec<rusqlite::types::Value> = vec![query.collection_id.clone().into()];
        if let Some((timestamp, id)) = &query.after {
            values.push((*timestamp).into());
            values.push(id.clone().into());
            sql += &format!(
                " AND (r.{order_column}, r.id) > (?{}, ?{})",
                values.len() - 1,
                values.len()
            );
        }
        if let Some(updated_after) = query.updated_after {
            values.push(updated_after.into());
            sql += &format!(" AND r.updated_at > ?{}", values.len());
        }
        for token in &query.index_tokens {
            values.push(token.clone().into());
            sql += &format!(
                " AND EXISTS (SELECT 1 FROM record_index i WHERE i.collection_id = r.collection_id AND i.token = ?{} AND i.record_id = r.id)",
                values.len()
            );
        }
        values.push(i64::from(query.limit).into());
        sql += &format!(" ORDER BY r.{order_column}, r.id LIMIT ?{}", values.len());
        self.database.read(|connection| {
            let mut statement = connection.prepare_cached(&sql)?;
            let rows = statement.query_map(rusqlite::params_from_iter(values), record_from_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn read_journal(
        &self,
        after_sequence: u64,
        limit: u32,
    ) -> Result<Vec<JournalRow>, StorageError> {
        self.database.read(|connection| {
            let mut statement = connection.prepare_cached("SELECT sequence, sealed FROM journal WHERE sequence > ?1 ORDER BY sequence LIMIT ?2")?;
            let rows = statement.query_map(params![after_sequence as i64, limit], |row| {
                Ok(JournalRow { sequence: row.get::<_, i64>(0)? as u64, sealed: row.get(1)? })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn sealed_below(
        &self,
        key_version: u32,
        limit: u32,
    ) -> Result<(Vec<StoredCollection>, Vec<StoredRecord>), StorageError> {
        self.database.read(|connection| {
            let mut statement = connection.prepare_cached(
                "SELECT id, key_version, sealed, created_at, updated_at FROM collections WHERE key_version < ?1 LIMIT ?2",
            )?;
            let collections = statement.query_map(params![key_version, limit], collection_from_row)?.collect::<Result<_, _>>()?;
            let mut statement = connection.prepare_cached(&format!("SELECT {RECORD_COLUMNS} FROM records WHERE key_version < ?1 LIMIT ?2"))?;
            let records = statement.query_map(params![key_version, limit], record_from_row)?.collect::<Result<_, _>>()?;
            Ok((collections, records))
        })
    }

    fn reseal(
        &self,
        collections: Vec<StoredCollection>,
        records: Vec<StoredRecord>,
    ) -> PendingWrite<u64> {
        self.database.write(move |connection| {
            let mut changed = 0;
            for collection in &collections {
                changed += connection
                    .prepare_cached("UPDATE collections SET key_version = ?2, sealed = ?3 WHERE id = ?1 AND updated_at = ?4")?
                    .execute(params![collection.id, collection.key_version, collection.sealed, collection.updated_at])?
                    as u64;
            }
            for record in &records {
                changed += connection
                    .prepare_cached("UPDATE records SET key_version = ?3, sealed_body = ?4 WHERE collection_id = ?1 AND id = ?2 AND version = ?5")?
                    .execute(params![record.collection_id, record.id, record.key_version, record.sealed_body, record.version as i64])?
                    as u64;
            }
            Ok(changed)
        })
    }

    fn replace_index_tokens(
        &self,
        collection_id: &[u8],
        entries: Vec<IndexEntry>,
    ) -> PendingWrite<u64> {
        let collection_id = collection_id.to_vec();
        self.database.write(move |connection| {
            let mut changed = 0;
            for entry in &entries {
                if stored_version(connection, &collection_id, &entry.record_id)?
                    == Some(entry.version)
                {
                    write_index(connection, &collection_id, &entry.record_id, &entry.tokens)?;
                    changed += 1;
                }
            }
            Ok(changed)
        })
    }

    fn checkpoint(&self) -> Result<(), StorageError> {
        self.database.checkpoint()
    }

    fn put_document_version(
        &self,
        new: NewDocumentVersion,
        journal: JournalSealer,
    ) -> PendingWrite<()> {
        documents::put_version(&self.database, new, journal)
    }

    fn document_by_path(&self, path_id: &[u8]) -> Result<Option<StoredDocument>, StorageError> {
        documents::by_path(&self.database, path_id)
    }

    fn document(&self, document_id: &str) -> Result<Option<StoredDocument>, StorageError> {
        documents::by_id(&self.database, document_id)
    }

    fn document_versions(
        &self,
        document_id: &str,
    ) -> Result<Vec<StoredDocumentVersion>, StorageError> {
        documents::versions(&self.database, document_id)
    }

    fn list_documents(&self, query: &DocumentQuery) -> Result<Vec<StoredDocument>, StorageError> {
        documents::list(&self.database, query)
    }

    fn trash_document(
        &self,
        document_id: &str,
        trashed_at: i64,
        journal: JournalSealer,
    ) -> PendingWrite<()> {
        documents::trash(&self.database, document_id, trashed_at, journal)
    }

    fn restore_document(
        &self,
        document_id: &str,
        relocation: Option<DocumentRelocation>,
        restored_at: i64,
        journal: JournalSealer,
    ) -> PendingWrite<()> {
        documents::restore(
            &self.database,
            document_id,
            relocation,
            restored_at,
            journal,
        )
    }

    fn purge_candidates(
        &self,
        versions_before: i64,
        trash_before: i64,
        limit: u32,
    ) -> Result<PurgePlan, StorageError> {
        documents::purge_candidates(&self.database, versions_before, trash_before, limit)
    }

    fn purge(&self, plan: PurgePlan, journal: JournalSealer) -> PendingWrite<()> {
        documents::purge(&self.database, plan, journal)
    }

    fn unreferenced_blobs(&self) -> Result<Vec<String>, StorageError> {
        documents::unreferenced_blobs(&self.database)
    }

    fn forget_blob(&self, blob_id: &str) -> PendingWrite<bool> {
        documents::forget_blob(&self.database, blob_id)
    }

    fn blob_registered(&self, blob_id: &str) -> Result<bool, StorageError> {
        documents::blob_registered(&self.database, blob_id)
    }

    fn document_items_sealed_below(
        &self,
        key_version: u32,
        limit: u32,
    ) -> Result<(Vec<StoredDocument>, Vec<StoredDocumentVersion>), StorageError> {
        documents::sealed_below(&self.database, key_version, limit)
    }

    fn reseal_document_items(
        &self,
        documents: Vec<StoredDocument>,
        versions: Vec<StoredDocumentVersion>,
    ) -> PendingWrite<u64> {
        documents::reseal(&self.database, documents, versions)
    }

    fn put_user(
        &self,
        user: StoredUser,
        previous_password: Option<Vec<u8>>,
        history_kept: u32,
        journal: JournalSealer,
    ) -> PendingWrite<()> {
        users::put_user(
            &self.database,
            user,
            previous_password,
            history_kept,
            journal,
        )
    }

    fn user(&self, user_id: &str) -> Result<Option<StoredUser>, StorageError> {
        users::user(&self.database, user_id)
    }

    fn user_by_email(&self, email_index: &[u8]) -> Result<Option<StoredUser>, StorageError> {
        users::user_by_email(&self.database, email_index)
    }

    fn list_users(&self) -> Result<Vec<StoredUser>, StorageError> {
        users::list(&self.database)
    }

    fn remove_user(&self, user_id: &str, journal: JournalSealer) -> PendingWrite<()> {
        users::remove_user(&self.database, user_id, journal)
    }

    fn password_history(&self, user_id: &str) -> Result<Vec<Vec<u8>>, StorageError> {
        users::password_history(&self.database, user_id)
    }

    fn insert_session(&self, session: StoredSession) -> PendingWrite<()> {
        users::insert_session(&self.database, session)
    }

    fn session(&self, token_hash: &[u8]) -> Result<Option<StoredSession>, StorageError> {
        users::session(&self.database, token_hash)
    }

    fn touch_session(&self, token_hash: &[u8], last_seen_at: i64) -> PendingWrite<()> {
        users::touch_session(&self.database, token_hash, last_seen_at)
    }

    fn end_sessions(&self, user_id: &str, selection: SessionSelection) -> PendingWrite<u64> {
        users::end_sessions(&self.database, user_id, selection)
    }

    fn record_login_failure(
        &self,
        user_id: &str,
        at: i64,
        lock_after: u32,
    ) -> PendingWrite<LoginFailures> {
        users::record_login_failure(&self.database, user_id, at, lock_after)
    }

    fn login_failures(&self, user_id: &str) -> Result<LoginFailures, StorageError> {
        users::login_failures(&self.database, user_id)
    }

    fn count_download(&self, download: DownloadToCount) -> PendingWrite<DownloadDecision> {
        super::downloads::count_download(&self.database, download)
    }

    fn reset_downloads(&self, caller: &str) -> PendingWrite<u64> {
        super::downloads::reset_downloads(&self.database, caller)
    }

    fn uncount_download_bytes(&self, caller: &str, window_id: i64, bytes: u64) -> PendingWrite<()> {
        super::downloads::uncount_download_bytes(&self.database, caller, window_id, bytes)
    }

    fn clear_login_failures(&self, user_id: &str) -> PendingWrite<()> {
        users::clear_login_failures(&self.database, user_id)
    }

    fn put_setting(&self, name: &str, sealed: Vec<u8>, journal: JournalSealer) -> PendingWrite<()> {
        users::put_setting(&self.database, name, sealed, journal)
    }

    fn setting(&self, name: &str) -> Result<Option<Vec<u8>>, StorageError> {
        users::setting(&self.database, name)
    }

    fn put_mfa(&self, mfa: StoredMfa, journal: JournalSealer) -> PendingWrite<()> {
        users::put_mfa(&self.database, mfa, journal)
    }

    fn mfa(&self, user_id: &str) -> Result<Option<StoredMfa>, StorageError> {
        users::mfa(&self.database, user_id)
    }

    fn put_challenge(&self, challenge: StoredChallenge) -> PendingWrite<()> {
        users::put_challenge(&self.database, challenge)
    }

    fn challenge(&self, token_hash: &[u8]) -> Result<Option<StoredChallenge>, StorageError> {
        users::challenge(&self.database, token_hash)
    }

    fn remove_challenge(&self, token_hash: &[u8]) -> PendingWrite<()> {
        users::remove_challenge(&self.database, token_hash)
    }

    fn storage_used_bytes(&self) -> Result<u64, StorageError> {
        documents::used_bytes(&self.database)
    }
}
