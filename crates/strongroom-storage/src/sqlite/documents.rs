//! Document metadata in a tenant's SQLite file: documents, versions, prefix tokens, blobs.

use super::SqliteDatabase;
use super::tenant::append_journal;
use crate::{
    DocumentQuery, DocumentRelocation, JournalSealer, NewDocumentVersion, PendingWrite, PurgePlan,
    StorageError, StoredDocument, StoredDocumentVersion,
};
use rusqlite::{Connection, OptionalExtension, Row, params};

/// Appended to the tenant migrations as format 2. Do not edit once shipped.
pub(super) const MIGRATION: &str = "
    CREATE TABLE documents (
        id TEXT PRIMARY KEY,
        path_id BLOB NOT NULL,
        sealed_path BLOB NOT NULL,
        key_version INTEGER NOT NULL,
        trashed_at INTEGER,
        current_version INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX documents_live_path ON documents (path_id) WHERE trashed_at IS NULL;
    CREATE INDEX documents_by_updated ON documents (updated_at, id);
    CREATE TABLE document_versions (
        document_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        blob_id TEXT NOT NULL,
        size INTEGER NOT NULL,
        sealed_meta BLOB NOT NULL,
        key_version INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        superseded_at INTEGER,
        PRIMARY KEY (document_id, version)
    );
    CREATE INDEX document_versions_by_blob ON document_versions (blob_id);
    CREATE INDEX document_versions_by_superseded ON document_versions (superseded_at);
    CREATE TABLE document_prefixes (
        token BLOB NOT NULL,
        document_id TEXT NOT NULL,
        PRIMARY KEY (token, document_id)
    ) WITHOUT ROWID;
    CREATE INDEX document_prefixes_by_document ON document_prefixes (document_id);
    CREATE TABLE blobs (
        id TEXT PRIMARY KEY,
        size INTEGER NOT NULL,
        created_at INTEGER NOT NULL
    );
";

const DOCUMENT_COLUMNS: &str =
    "id, path_id, sealed_path, key_version, trashed_at, current_version, created_at, updated_at";
const VERSION_COLUMNS: &str =
    "document_id, version, blob_id, size, sealed_meta, key_version, created_at, superseded_at";

fn document_from_row(row: &Row<'_>) -> rusqlite::Result<StoredDocument> {
    Ok(StoredDocument {
        id: row.get(0)?,
        path_id: row.get(1)?,
        sealed_path: row.get(2)?,
        key_version: row.get::<_, i64>(3)? as u32,
        trashed_at: row.get(4)?,
        current_version: row.get::<_, i64>(5)? as u64,
        created_at: row.get(6)?,
        updated_at: row.get(7)?,
    })
}

fn version_from_row(row: &Row<'_>) -> rusqlite::Result<StoredDocumentVersion> {
    Ok(StoredDocumentVersion {
        document_id: row.get(0)?,
        version: row.get::<_, i64>(1)? as u64,
        blob_id: row.get(2)?,
        size: row.get::<_, i64>(3)? as u64,
        sealed_meta: row.get(4)?,
        key_version: row.get::<_, i64>(5)? as u32,
        created_at: row.get(6)?,
        superseded_at: row.get(7)?,
    })
}

fn live_path_taken(connection: &Connection, path_id: &[u8]) -> Result<bool, StorageError> {
    Ok(connection
        .prepare_cached("SELECT 1 FROM documents WHERE path_id = ?1 AND trashed_at IS NULL")?
        .query_row([path_id], |_| Ok(()))
        .optional()?
        .is_some())
}

fn write_prefixes(
    connection: &Connection,
    document_id: &str,
    tokens: &[Vec<u8>],
) -> Result<(), StorageError> {
    connection
        .prepare_cached("DELETE FROM document_prefixes WHERE document_id = ?1")?
        .execute([document_id])?;
    let mut insert = connection.prepare_cached(
        "INSERT OR IGNORE INTO document_prefixes (token, document_id) VALUES (?1, ?2)",
    )?;
    for token in tokens {
        insert.execute(params![token, document_id])?;
    }
    Ok(())
}

fn document_in(
    connection: &Connection,
    document_id: &str,
) -> Result<Option<StoredDocument>, StorageError> {
    Ok(connection
        .prepare_cached(&format!(
            "SELECT {DOCUMENT_COLUMNS} FROM documents WHERE id = ?1"
        ))?
        .query_row([document_id], document_from_row)
        .optional()?)
}

pub(super) fn put_version(
    database: &SqliteDatabase,
    new: NewDocumentVersion,
    journal: JournalSealer,
) -> PendingWrite<()> {
    database.write(move |connection| {
        let NewDocumentVersion { document, version, prefix_tokens } = new;
        if version.version == 1 {
            if live_path_taken(connection, &document.path_id)? {
                return Err(StorageError::Conflict("a document exists at this path"));
            }
            connection.prepare_cached(&format!("INSERT INTO documents ({DOCUMENT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, NULL, 1, ?5, ?6)"))?.execute(params![
                document.id,
                document.path_id,
                document.sealed_path,
                document.key_version,
                document.created_at,
                document.updated_at
            ])?;
            write_prefixes(connection, &document.id, &prefix_tokens)?;
        } else {
            let changed = connection
                .prepare_cached("UPDATE documents SET current_version = ?2, updated_at = ?3 WHERE id = ?1 AND current_version = ?4 AND trashed_at IS NULL")?
                .execute(params![document.id, version.version as i64, document.updated_at, (version.version - 1) as i64])?;
            if changed == 0 {
                return Err(StorageError::Conflict("the document changed meanwhile"));
            }
            connection
                .prepare_cached("UPDATE document_versions SET superseded_at = ?3 WHERE document_id = ?1 AND version = ?2")?
                .execute(params![document.id, (version.version - 1) as i64, version.created_at])?;
        }
        connection.prepare_cached("INSERT OR IGNORE INTO blobs (id, size, created_at) VALUES (?1, ?2, ?3)")?.execute(params![
            version.blob_id,
            version.size as i64,
            version.created_at
        ])?;
        connection.prepare_cached(&format!("INSERT INTO document_versions ({VERSION_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL)"))?.execute(params![
            version.document_id,
            version.version as i64,
            version.blob_id,
            version.size as i64,
            version.sealed_meta,
            version.key_version,
            version.created_at
        ])?;
        append_journal(connection, journal)
    })
}

pub(super) fn by_path(
    database: &SqliteDatabase,
    path_id: &[u8],
) -> Result<Option<StoredDocument>, StorageError> {
    database.read(|connection| {
        Ok(connection
            .prepare_cached(&format!(
                "SELECT {DOCUMENT_COLUMNS} FROM documents WHERE path_id = ?1 AND trashed_at IS NULL"
            ))?
            .query_row([path_id], document_from_row)
            .optional()?)
    })
}

pub(super) fn by_id(
    database: &SqliteDatabase,
    document_id: &str,
) -> Result<Option<StoredDocument>, StorageError> {
    database.read(|connection| document_in(connection, document_id))
}

pub(super) fn versions(
    database: &SqliteDatabase,
    document_id: &str,
) -> Result<Vec<StoredDocumentVersion>, StorageError> {
    database.read(|connection| {
        let mut statement = connection.prepare_cached(&format!("SELECT {VERSION_COLUMNS} FROM document_versions WHERE document_id = ?1 ORDER BY version"))?;
        Ok(statement.query_map([document_id], version_from_row)?.collect::<Result<_, _>>()?)
    })
}

pub(super) fn list(
    database: &SqliteDatabase,
    query: &DocumentQuery,
) -> Result<Vec<StoredDocument>, StorageError> {
    let trashed = if query.trashed {
        "IS NOT NULL"
    } else {
        "IS NULL"
    };
    if query.prefix_tokens.is_empty() {
        return Ok(Vec::new());
    }
    let (after_at, after_id) = query.after.clone().unwrap_or((i64::MIN, String::new()));
    // ?1 to ?3 are the position and limit; the tokens follow.
    let tokens = (4..4 + query.prefix_tokens.len())
        .map(|number| format!("?{number}"))
        .collect::<Vec<_>>()
        .join(", ");
    database.read(|connection| {
        // A document under two of the prefixes (one inside the other) is listed once.
        let mut statement = connection.prepare_cached(&format!(
            "SELECT {} FROM documents d
             WHERE d.id IN (SELECT document_id FROM document_prefixes WHERE token IN ({tokens}))
               AND d.trashed_at {trashed} AND (d.updated_at, d.id) > (?1, ?2)
             ORDER BY d.updated_at, d.id LIMIT ?3",
            DOCUMENT_COLUMNS
                .split(", ")
                .map(|column| format!("d.{column}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))?;
        let mut parameters: Vec<&dyn rusqlite::ToSql> = vec![&after_at, &after_id, &query.limit];
        parameters.extend(
            query
                .prefix_tokens
                .iter()
                .map(|token| token as &dyn rusqlite::ToSql),
        );
        let rows = statement.query_map(parameters.as_slice(), document_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    })
}

pub(super) fn trash(
    database: &SqliteDatabase,
    document_id: &str,
    trashed_at: i64,
    journal: JournalSealer,
) -> PendingWrite<()> {
    let document_id = document_id.to_owned();
    database.write(move |connection| {
        let changed = connection
            .prepare_cached(
                "UPDATE documents SET trashed_at = ?2 WHERE id = ?1 AND trashed_at IS NULL",
            )?
            .execute(params![document_id, trashed_at])?;
        if changed == 0 {
            return Err(StorageError::NotFound);
        }
        append_journal(connection, journal)
    })
}

pub(super) fn restore(
    database: &SqliteDatabase,
    document_id: &str,
    relocation: Option<DocumentRelocation>,
    restored_at: i64,
    journal: JournalSealer,
) -> PendingWrite<()> {
    let document_id = document_id.to_owned();
    database.write(move |connection| {
        let document = document_in(connection, &document_id)?
            .filter(|document| document.trashed_at.is_some())
            .ok_or(StorageError::NotFound)?;
        let path_id = relocation
            .as_ref()
            .map_or(document.path_id.clone(), |relocation| {
                relocation.path_id.clone()
            });
        if live_path_taken(connection, &path_id)? {
            return Err(StorageError::Conflict("a document exists at this path"));
        }
        if let Some(relocation) = &relocation {
            connection
                .prepare_cached(
                    "UPDATE documents SET path_id = ?2, sealed_path = ?3 WHERE id = ?1",
                )?
                .execute(params![
                    document_id,
                    relocation.path_id,
                    relocation.sealed_path
                ])?;
            write_prefixes(connection, &document_id, &relocation.prefix_tokens)?;
        }
        connection
            .prepare_cached(
                "UPDATE documents SET trashed_at = NULL, updated_at = ?2 WHERE id = ?1",
            )?
            .execute(params![document_id, restored_at])?;
        append_journal(connection, journal)
    })
}

pub(super) fn purge_candidates(
    database: &SqliteDatabase,
    versions_before: i64,
    trash_before: i64,
    limit: u32,
) -> Result<PurgePlan, StorageError> {
    database.read(|connection| {
        let mut statement = connection.prepare_cached(
            "SELECT v.document_id, v.version FROM document_versions v JOIN documents d ON d.id = v.document_id
             WHERE v.superseded_at IS NOT NULL AND v.superseded_at < ?1 AND d.trashed_at IS NULL LIMIT ?2",
        )?;
        let versions = statement.query_map(params![versions_before, limit], |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)? as u64)))?.collect::<Result<_, _>>()?;
        let mut statement = connection.prepare_cached("SELECT id FROM documents WHERE trashed_at IS NOT NULL AND trashed_at < ?1 LIMIT ?2")?;
        let documents = statement.query_map(params![trash_before, limit], |row| row.get::<_, String>(0))?.collect::<Result<_, _>>()?;
        Ok(PurgePlan { versions, documents, versions_before, trash_before })
    })
}

pub(super) fn purge(
    database: &SqliteDatabase,
    plan: PurgePlan,
    journal: JournalSealer,
) -> PendingWrite<()> {
    database.write(move |connection| {
        for (document_id, version) in &plan.versions {
            connection
                .prepare_cached("DELETE FROM document_versions WHERE document_id = ?1 AND version = ?2 AND superseded_at IS NOT NULL AND superseded_at < ?3")?
                .execute(params![document_id, *version as i64, plan.versions_before])?;
        }
        for document_id in &plan.documents {
            // The document row goes first, and only if it is still in the trash past retention;
            // its versions and prefixes follow only then.
            let removed = connection
                .prepare_cached("DELETE FROM documents WHERE id = ?1 AND trashed_at IS NOT NULL AND trashed_at < ?2")?
                .execute(params![document_id, plan.trash_before])?;
            if removed > 0 {
                connection.prepare_cached("DELETE FROM document_versions WHERE document_id = ?1")?.execute([document_id])?;
                connection.prepare_cached("DELETE FROM document_prefixes WHERE document_id = ?1")?.execute([document_id])?;
            }
        }
        append_journal(connection, journal)
    })
}

pub(super) fn unreferenced_blobs(database: &SqliteDatabase) -> Result<Vec<String>, StorageError> {
    database.read(|connection| {
        let mut statement = connection.prepare_cached("SELECT b.id FROM blobs b WHERE NOT EXISTS (SELECT 1 FROM document_versions v WHERE v.blob_id = b.id)")?;
        Ok(statement.query_map([], |row| row.get::<_, String>(0))?.collect::<Result<_, _>>()?)
    })
}

pub(super) fn forget_blob(database: &SqliteDatabase, blob_id: &str) -> PendingWrite<bool> {
    let blob_id = blob_id.to_owned();
    database.write(move |connection| {
        let removed = connection
            .prepare_cached("DELETE FROM blobs WHERE id = ?1 AND NOT EXISTS (SELECT 1 FROM document_versions v WHERE v.blob_id = ?1)")?
            .execute([&blob_id])?;
        Ok(removed > 0)
    })
}

pub(super) fn blob_registered(
    database: &SqliteDatabase,
    blob_id: &str,
) -> Result<bool, StorageError> {
    database.read(|connection| {
        Ok(connection
            .prepare_cached("SELECT 1 FROM blobs WHERE id = ?1")?
            .query_row([blob_id], |_| Ok(()))
            .optional()?
            .is_some())
    })
}

pub(super) fn used_bytes(database: &SqliteDatabase) -> Result<u64, StorageError> {
    database.read(|connection| {
        Ok(connection
            .prepare_cached("SELECT COALESCE(SUM(size), 0) FROM blobs")?
            .query_row([], |row| row.get::<_, i64>(0))? as u64)
    })
}

pub(super) fn sealed_below(
    database: &SqliteDatabase,
    key_version: u32,
    limit: u32,
) -> Result<(Vec<StoredDocument>, Vec<StoredDocumentVersion>), StorageError> {
    database.read(|connection| {
        let mut statement = connection.prepare_cached(&format!(
            "SELECT {DOCUMENT_COLUMNS} FROM documents WHERE key_version < ?1 LIMIT ?2"
        ))?;
        let documents = statement
            .query_map(params![key_version, limit], document_from_row)?
            .collect::<Result<_, _>>()?;
        let mut statement = connection.prepare_cached(&format!(
            "SELECT {VERSION_COLUMNS} FROM document_versions WHERE key_version < ?1 LIMIT ?2"
        ))?;
        let versions = statement
            .query_map(params![key_version, limit], version_from_row)?
            .collect::<Result<_, _>>()?;
        Ok((documents, versions))
    })
}

pub(super) fn reseal(
    database: &SqliteDatabase,
    documents: Vec<StoredDocument>,
    versions: Vec<StoredDocumentVersion>,
) -> PendingWrite<u64> {
    database.write(move |connection| {
        let mut changed = 0;
        for document in &documents {
            changed += connection
                .prepare_cached("UPDATE documents SET sealed_path = ?3, key_version = ?4 WHERE id = ?1 AND path_id = ?2 AND key_version < ?4")?
                .execute(params![document.id, document.path_id, document.sealed_path, document.key_version])? as u64;
        }
        for version in &versions {
            changed += connection
                .prepare_cached("UPDATE document_versions SET sealed_meta = ?3, key_version = ?4 WHERE document_id = ?1 AND version = ?2 AND key_version < ?4")?
                .execute(params![version.document_id, version.version as i64, version.sealed_meta, version.key_version])? as u64;
        }
        Ok(changed)
    })
}
