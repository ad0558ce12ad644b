//! The audit database (`<data_dir>/audit.db`): every chain in one file with one group-committing
//! writer, so audit appends of all tenants share fsyncs.

use super::SqliteDatabase;
use crate::{
    AuditCheckpointRow, AuditEntry, AuditQuery, AuditRow, AuditSealer, AuditStore, PendingWrite,
    StorageError, StoredSigningKey,
};
use rusqlite::{Connection, OptionalExtension, Row, params};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE audit_events (
        chain TEXT NOT NULL,
        sequence INTEGER NOT NULL,
        at INTEGER NOT NULL,
        action TEXT NOT NULL,
        outcome TEXT NOT NULL,
        actor_token BLOB,
        address_token BLOB,
        sealed BLOB NOT NULL,
        hash BLOB NOT NULL,
        PRIMARY KEY (chain, sequence)
    );
    CREATE INDEX audit_events_by_time ON audit_events (chain, at);
    CREATE TABLE audit_checkpoints (
        chain TEXT NOT NULL,
        sequence INTEGER NOT NULL,
        head BLOB NOT NULL,
        signature BLOB NOT NULL,
        at INTEGER NOT NULL,
        PRIMARY KEY (chain, sequence)
    );
    CREATE TABLE audit_signing_key (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        sealed BLOB NOT NULL,
        public BLOB NOT NULL
    );
",
    "
    -- One b-tree per event instead of three (row ids, the key, the time index): an append is
    -- the audit writer's main cost and every request waits for one. Time filters scan the
    -- chain's key range instead.
    CREATE TABLE audit_events_keyed (
        chain TEXT NOT NULL,
        sequence INTEGER NOT NULL,
        at INTEGER NOT NULL,
        action TEXT NOT NULL,
        outcome TEXT NOT NULL,
        actor_token BLOB,
        address_token BLOB,
        sealed BLOB NOT NULL,
        hash BLOB NOT NULL,
        PRIMARY KEY (chain, sequence)
    ) WITHOUT ROWID;
    INSERT INTO audit_events_keyed SELECT chain, sequence, at, action, outcome, actor_token,
        address_token, sealed, hash FROM audit_events;
    DROP TABLE audit_events;
    ALTER TABLE audit_events_keyed RENAME TO audit_events;
",
    "
    ALTER TABLE audit_checkpoints ADD COLUMN expiry INTEGER NOT NULL DEFAULT 0;
",
];

const EVENT_COLUMNS: &str =
    "chain, sequence, at, action, outcome, actor_token, address_token, sealed, hash";

const CHECKPOINT_COLUMNS: &str = "chain, sequence, head, signature, at, expiry";

fn checkpoint_from_row(row: &Row<'_>) -> rusqlite::Result<AuditCheckpointRow> {
    Ok(AuditCheckpointRow {
        chain: row.get(0)?,
        sequence: row.get::<_, i64>(1)? as u64,
        head: row.get(2)?,
        signature: row.get(3)?,
        at: row.get(4)?,
        expiry: row.get(5)?,
    })
}

fn event_from_row(row: &Row<'_>) -> rusqlite::Result<AuditRow> {
    Ok(AuditRow {
        chain: row.get(0)?,
        sequence: row.get::<_, i64>(1)? as u64,
        at: row.get(2)?,
        action: row.get(3)?,
        outcome: row.get(4)?,
        actor_token: row.get(5)?,
        address_token: row.get(6)?,
        sealed: row.get(7)?,
        hash: row.get(8)?,
    })
}

pub struct SqliteAuditStore {
    database: SqliteDatabase,
    heads: Arc<Mutex<HeadCache>>,
}

/// Each chain's last sequence and hash as written by the writer's thread, so an append does
/// not look its chain's head up again. Valid only while no batch has failed to commit since
/// it was filled: a failed commit took back what the cache says was written.
#[derive(Default)]
struct HeadCache {
    failed_commits_seen: u64,
    heads: HashMap<String, (u64, [u8; 32])>,
}

impl HeadCache {
    /// The head `chain` continues from: cached, else its last event, else (every event expired)
    /// its last signed checkpoint, else the chain's start.
    fn head(
        &mut self,
        connection: &Connection,
        chain: &str,
        failed_commits: &AtomicU64,
    ) -> Result<(u64, [u8; 32]), StorageError> {
        let failed = failed_commits.load(Ordering::SeqCst);
        if failed != self.failed_commits_seen {
            self.heads.clear();
            self.failed_commits_seen = failed;
        }
        if let Some(head) = self.heads.get(chain) {
            return Ok(*head);
        }
        let stored: Option<(i64, Vec<u8>)> = connection
            .prepare_cached(
                "SELECT sequence, hash FROM audit_events WHERE chain = ?1
                 UNION ALL SELECT sequence, head FROM audit_checkpoints WHERE chain = ?1
                 ORDER BY 1 DESC LIMIT 1",
            )?
            .query_row([chain], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?;
        Ok(match stored {
            // A damaged stored hash still links: verification reports the damage.
            Some((sequence, hash)) => (sequence as u64, crate::stored_head(&hash)),
            None => (0, [0u8; 32]),
        })
    }
}

impl SqliteAuditStore {
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        Ok(Self {
            database: SqliteDatabase::open_ungated(path, MIGRATIONS)?,
            heads: Arc::default(),
        })
    }

    /// The writer's group commits so far (the audit benchmark reports their average size).
    pub fn writer_counts(&self) -> Arc<super::database::WriterCounts> {
        self.database.counts()
    }
}

impl AuditStore for SqliteAuditStore {
    fn append(&self, entry: AuditEntry, sealer: AuditSealer) -> PendingWrite<u64> {
        let heads = self.heads.clone();
        let counts = self.database.counts();
        self.database.write_one_statement(move |connection| {
            let mut heads = heads
                .lock()
                .map_err(|_| StorageError::Unavailable("audit head cache poisoned".into()))?;
            let (last, previous) = heads.head(connection, &entry.chain, &counts.failed_commits)?;
            let sequence = last + 1;
            let (sealed, hash) = sealer(sequence, &previous)?;
            let inserted = connection
                .prepare_cached(&format!(
                    "INSERT INTO audit_events ({EVENT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
                ))?
                .execute(params![
                    entry.chain,
                    sequence as i64,
                    entry.at,
                    entry.action,
                    entry.outcome,
                    entry.actor_token,
                    entry.address_token,
                    sealed,
                    hash.to_vec()
                ]);
            match inserted {
                Ok(_) => {
                    heads.heads.insert(entry.chain, (sequence, hash));
                    Ok(sequence)
                }
                Err(error) => {
                    heads.heads.remove(&entry.chain);
                    Err(error.into())
                }
            }
        })
    }

    fn events(&self, query: &AuditQuery) -> Result<Vec<AuditRow>, StorageError> {
        self.database.read(|connection| {
            let mut statement = connection.prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM audit_events
                 WHERE chain = ?1
                   AND (?2 IS NULL OR at >= ?2) AND (?3 IS NULL OR at < ?3)
                   AND (?4 IS NULL OR action = ?4) AND (?5 IS NULL OR outcome = ?5)
                   AND (?6 IS NULL OR actor_token = ?6) AND (?7 IS NULL OR address_token = ?7)
                   AND (?8 IS NULL OR sequence < ?8)
                 ORDER BY sequence DESC LIMIT ?9"
            ))?;
            let rows = statement.query_map(
                params![
                    query.chain,
                    query.from,
                    query.to,
                    query.action,
                    query.outcome,
                    query.actor_token,
                    query.address_token,
                    query.before_sequence.map(|sequence| sequence as i64),
                    i64::from(query.limit)
                ],
                event_from_row,
            )?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn chain_events(
        &self,
        chain: &str,
        after_sequence: u64,
        limit: u32,
    ) -> Result<Vec<AuditRow>, StorageError> {
        self.database.read(|connection| {
            let mut statement = connection.prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM audit_events WHERE chain = ?1 AND sequence > ?2
                 ORDER BY sequence LIMIT ?3"
            ))?;
            let rows = statement.query_map(
                params![chain, after_sequence as i64, i64::from(limit)],
                event_from_row,
            )?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn chains(&self) -> Result<Vec<String>, StorageError> {
        self.database.read(|connection| {
            let mut statement = connection.prepare_cached(
                "SELECT DISTINCT chain FROM audit_events UNION SELECT DISTINCT chain FROM audit_checkpoints ORDER BY 1",
            )?;
            let rows = statement.query_map([], |row| row.get(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn head(&self, chain: &str) -> Result<Option<(u64, Vec<u8>)>, StorageError> {
        self.database.read(|connection| {
            Ok(connection
                .prepare_cached(
                    "SELECT sequence, hash FROM audit_events WHERE chain = ?1 ORDER BY sequence DESC LIMIT 1",
                )?
                .query_row([chain], |row| Ok((row.get::<_, i64>(0)? as u64, row.get(1)?)))
                .optional()?)
        })
    }

    fn add_checkpoint(&self, checkpoint: AuditCheckpointRow) -> Result<(), StorageError> {
        self.database.write_and_wait(move |connection| {
            connection.execute(
                // A head already signed keeps its first checkpoint, unless expiry now ends
                // there at the same head: that mark replaces it. A different head is never
                // replaced, so the signed evidence of what was there stays.
                "INSERT INTO audit_checkpoints (chain, sequence, head, signature, at, expiry)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (chain, sequence) DO UPDATE
                   SET head = excluded.head, signature = excluded.signature, at = excluded.at,
                       expiry = excluded.expiry
                   WHERE excluded.expiry AND NOT audit_checkpoints.expiry
                     AND audit_checkpoints.head = excluded.head",
                params![
                    checkpoint.chain,
                    checkpoint.sequence as i64,
                    checkpoint.head,
                    checkpoint.signature,
                    checkpoint.at,
                    checkpoint.expiry
                ],
            )?;
            Ok(())
        })
    }

    fn last_event_before(
        &self,
        chain: &str,
        before: i64,
    ) -> Result<Option<(u64, Vec<u8>)>, StorageError> {
        self.database.read(|connection| {
            Ok(connection
                .prepare_cached(
                    // Walks from the chain's start to its first event not yet due, so the
                    // hourly job reads only what expires; an event out of time order never
                    // takes a younger one with it.
                    "SELECT sequence, hash FROM audit_events
                     WHERE chain = ?1 AND sequence < COALESCE(
                         (SELECT sequence FROM audit_events WHERE chain = ?1 AND at >= ?2
                          ORDER BY sequence LIMIT 1),
                         9223372036854775807)
                     ORDER BY sequence DESC LIMIT 1",
                )?
                .query_row(params![chain, before], |row| {
                    Ok((row.get::<_, i64>(0)? as u64, row.get(1)?))
                })
                .optional()?)
        })
    }

    fn remove_events_through(&self, chain: &str, sequence: u64) -> Result<u64, StorageError> {
        let chain = chain.to_owned();
        self.database.write_and_wait(move |connection| {
            // Events go only behind an expiry mark at the cut, in the same transaction, so
            // the trail can never be left starting after an unmarked gap.
            let marked: bool = connection.query_row(
                "SELECT EXISTS (SELECT 1 FROM audit_checkpoints
                                WHERE chain = ?1 AND sequence = ?2 AND expiry)",
                params![chain, sequence as i64],
                |row| row.get(0),
            )?;
            if !marked {
                return Err(StorageError::Conflict(
                    "no expiry mark at the cut: the events stay",
                ));
            }
            let removed = connection.execute(
                "DELETE FROM audit_events WHERE chain = ?1 AND sequence <= ?2",
                params![chain, sequence as i64],
            )?;
            connection.execute(
                "DELETE FROM audit_checkpoints WHERE chain = ?1 AND sequence < ?2",
                params![chain, sequence as i64],
            )?;
            Ok(removed as u64)
        })
    }

    fn checkpoints_after(
        &self,
        chain: &str,
        after_sequence: u64,
        limit: u32,
    ) -> Result<Vec<AuditCheckpointRow>, StorageError> {
        self.database.read(|connection| {
            let mut statement = connection.prepare_cached(&format!(
                "SELECT {CHECKPOINT_COLUMNS} FROM audit_checkpoints WHERE chain = ?1 AND sequence > ?2 ORDER BY sequence LIMIT ?3"
            ))?;
            let rows = statement.query_map(
                // Past every sequence SQLite can hold: an empty page.
                params![
                    chain,
                    i64::try_from(after_sequence).unwrap_or(i64::MAX),
                    limit
                ],
                checkpoint_from_row,
            )?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn last_checkpoint(&self, chain: &str) -> Result<Option<AuditCheckpointRow>, StorageError> {
        self.database.read(|connection| {
            Ok(connection
                .prepare_cached(&format!(
                    "SELECT {CHECKPOINT_COLUMNS} FROM audit_checkpoints WHERE chain = ?1 ORDER BY sequence DESC LIMIT 1"
                ))?
                .query_row([chain], checkpoint_from_row)
                .optional()?)
        })
    }

    fn signing_key(&self) -> Result<Option<StoredSigningKey>, StorageError> {
        self.database.read(|connection| {
            Ok(connection
                .prepare_cached(SELECT_SIGNING_KEY)?
                .query_row([], signing_key_from_row)
                .optional()?)
        })
    }

    fn set_signing_key(&self, key: StoredSigningKey) -> Result<StoredSigningKey, StorageError> {
        self.database.write_and_wait(move |connection| {
            connection.execute(
                "INSERT INTO audit_signing_key (id, sealed, public) VALUES (1, ?1, ?2) ON CONFLICT (id) DO NOTHING",
                params![key.sealed, key.public],
            )?;
            Ok(connection.query_row(SELECT_SIGNING_KEY, [], signing_key_from_row)?)
        })
    }
}

const SELECT_SIGNING_KEY: &str = "SELECT sealed, public FROM audit_signing_key WHERE id = 1";

fn signing_key_from_row(row: &Row<'_>) -> rusqlite::Result<StoredSigningKey> {
    Ok(StoredSigningKey {
        sealed: row.get(0)?,
        public: row.get(1)?,
    })
}
