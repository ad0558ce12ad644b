//! Users, their password history and sessions in a tenant's SQLite file.

use super::SqliteDatabase;
use super::tenant::append_journal;
use crate::{
    JournalSealer, LoginFailures, PendingWrite, SessionSelection, StorageError, StoredChallenge,
    StoredMfa, StoredSession, StoredUser,
};
use rusqlite::{Connection, OptionalExtension, Row, params};

/// Appended to the tenant migrations as format 3. Do not edit once shipped.
pub(super) const MIGRATION: &str = "
    CREATE TABLE users (
        id TEXT PRIMARY KEY,
        email_index BLOB NOT NULL UNIQUE,
        sealed_profile BLOB NOT NULL,
        sealed_password BLOB,
        roles TEXT NOT NULL,
        disabled INTEGER NOT NULL,
        must_change_password INTEGER NOT NULL,
        password_changed_at INTEGER,
        key_version INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE TABLE password_history (
        user_id TEXT NOT NULL,
        sealed_password BLOB NOT NULL,
        changed_at INTEGER NOT NULL
    );
    CREATE INDEX password_history_by_user ON password_history (user_id, changed_at);
    CREATE TABLE sessions (
        token_hash BLOB PRIMARY KEY,
        user_id TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        last_seen_at INTEGER NOT NULL
    );
    CREATE INDEX sessions_by_user ON sessions (user_id);
";

/// Appended to the tenant migrations as format 4. Do not edit once shipped.
pub(super) const MFA_MIGRATION: &str = "
    CREATE TABLE user_mfa (
        user_id TEXT PRIMARY KEY,
        sealed BLOB NOT NULL,
        confirmed INTEGER NOT NULL,
        last_step INTEGER
    );
    CREATE TABLE mfa_challenges (
        token_hash BLOB PRIMARY KEY,
        user_id TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        failed_step INTEGER NOT NULL,
        failures INTEGER NOT NULL
    );
";

/// Appended to the tenant migrations as format 5. Do not edit once shipped.
pub(super) const LOGIN_FAILURES_MIGRATION: &str = "
    CREATE TABLE login_failures (
        user_id TEXT PRIMARY KEY,
        consecutive INTEGER NOT NULL,
        last_failure_at INTEGER NOT NULL,
        locked INTEGER NOT NULL
    );
";

/// Appended to the tenant migrations as format 6. Do not edit once shipped.
pub(super) const SETTINGS_MIGRATION: &str = "
    CREATE TABLE settings (
        name TEXT PRIMARY KEY,
        sealed BLOB NOT NULL
    );
";

const USER_COLUMNS: &str = "id, email_index, sealed_profile, sealed_password, roles, disabled, must_change_password, password_changed_at, key_version, created_at, updated_at";

fn user_from_row(row: &Row<'_>) -> rusqlite::Result<StoredUser> {
    Ok(StoredUser {
        id: row.get(0)?,
        email_index: row.get(1)?,
        sealed_profile: row.get(2)?,
        sealed_password: row.get(3)?,
        roles: row.get(4)?,
        disabled: row.get(5)?,
        must_change_password: row.get(6)?,
        password_changed_at: row.get(7)?,
        key_version: row.get::<_, i64>(8)? as u32,
        created_at: row.get(9)?,
        updated_at: row.get(10)?,
    })
}

fn write_user(connection: &Connection, user: &StoredUser) -> Result<(), StorageError> {
    connection
        .prepare_cached(&format!(
            "INSERT INTO users ({USER_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
             ON CONFLICT (id) DO UPDATE SET email_index = excluded.email_index, sealed_profile = excluded.sealed_profile,
             sealed_password = excluded.sealed_password, roles = excluded.roles, disabled = excluded.disabled,
             must_change_password = excluded.must_change_password, password_changed_at = excluded.password_changed_at,
             key_version = excluded.key_version, updated_at = excluded.updated_at"
        ))?
        .execute(params![
            user.id,
            user.email_index,
            user.sealed_profile,
            user.sealed_password,
            user.roles,
            user.disabled,
            user.must_change_password,
            user.password_changed_at,
            user.key_version,
            user.created_at,
            user.updated_at
        ])
        .map_err(|error| match error.sqlite_error_code() {
            Some(rusqlite::ErrorCode::ConstraintViolation) => StorageError::Conflict("a user with this email exists"),
            _ => error.into(),
        })?;
    Ok(())
}

/// Whether the user is an enabled owner (roles are space-separated names).
const ACTIVE_OWNER: &str = "disabled = 0 AND (' ' || roles || ' ') LIKE '% owner %'";

fn is_active_owner(connection: &Connection, user_id: &str) -> Result<bool, StorageError> {
    Ok(connection
        .prepare_cached(&format!("SELECT {ACTIVE_OWNER} FROM users WHERE id = ?1"))?
        .query_row([user_id], |row| row.get::<_, bool>(0))
        .optional()?
        .unwrap_or(false))
}

/// Refuses a write that took the tenant's last enabled owner away. Checked inside the write,
/// so two owners demoting each other at once cannot both succeed.
fn keep_an_owner(connection: &Connection) -> Result<(), StorageError> {
    let any_left: bool = connection
        .prepare_cached(&format!(
            "SELECT EXISTS (SELECT 1 FROM users WHERE {ACTIVE_OWNER})"
        ))?
        .query_row([], |row| row.get(0))?;
    if !any_left {
        return Err(StorageError::Conflict(
            "this is the last owner: make another user owner first",
        ));
    }
    Ok(())
}

/// Inserts or replaces a user; with `previous_password`, the replaced password joins the
/// history, which keeps at most `history_kept` entries.
pub(super) fn put_user(
    database: &SqliteDatabase,
    user: StoredUser,
    previous_password: Option<Vec<u8>>,
    history_kept: u32,
    journal: JournalSealer,
) -> PendingWrite<()> {
    database.write(move |connection| {
        // Only a write that takes an enabled owner's role or access away can leave none.
        let still_active_owner =
            !user.disabled && user.roles.split_whitespace().any(|role| role == "owner");
        let was_active_owner = !still_active_owner && is_active_owner(connection, &user.id)?;
        write_user(connection, &user)?;
        if was_active_owner {
            keep_an_owner(connection)?;
        }
        if let Some(previous) = previous_password {
            connection
                .prepare_cached("INSERT INTO password_history (user_id, sealed_password, changed_at) VALUES (?1, ?2, ?3)")?
                .execute(params![user.id, previous, user.updated_at])?;
            connection
                .prepare_cached(
                    "DELETE FROM password_history WHERE user_id = ?1 AND rowid NOT IN
                     (SELECT rowid FROM password_history WHERE user_id = ?1 ORDER BY changed_at DESC, rowid DESC LIMIT ?2)",
                )?
                .execute(params![user.id, history_kept])?;
        }
        append_journal(connection, journal)
    })
}

pub(super) fn user(
    database: &SqliteDatabase,
    user_id: &str,
) -> Result<Option<StoredUser>, StorageError> {
    database.read(|connection| {
        Ok(connection
            .prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"))?
            .query_row([user_id], user_from_row)
            .optional()?)
    })
}

pub(super) fn user_by_email(
    database: &SqliteDatabase,
    email_index: &[u8],
) -> Result<Option<StoredUser>, StorageError> {
    database.read(|connection| {
        Ok(connection
            .prepare_cached(&format!(
                "SELECT {USER_COLUMNS} FROM users WHERE email_index = ?1"
            ))?
            .query_row([email_index], user_from_row)
            .optional()?)
    })
}

pub(super) fn list(database: &SqliteDatabase) -> Result<Vec<StoredUser>, StorageError> {
    database.read(|connection| {
        let mut statement = connection.prepare_cached(&format!(
            "SELECT {USER_COLUMNS} FROM users ORDER BY created_at, id"
        ))?;
        Ok(statement
            .query_map([], user_from_row)?
            .collect::<Result<_, _>>()?)
    })
}

pub(super) fn password_history(
    database: &SqliteDatabase,
    user_id: &str,
) -> Result<Vec<Vec<u8>>, StorageError> {
    database.read(|connection| {
        let mut statement = connection.prepare_cached("SELECT sealed_password FROM password_history WHERE user_id = ?1 ORDER BY changed_at DESC, rowid DESC")?;
        Ok(statement.query_map([user_id], |row| row.get(0))?.collect::<Result<_, _>>()?)
    })
}

pub(super) fn insert_session(
    database: &SqliteDatabase,
    session: StoredSession,
) -> PendingWrite<()> {
    database.write(move |connection| {
        connection
            .prepare_cached("INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at) VALUES (?1, ?2, ?3, ?4)")?
            .execute(params![session.token_hash, session.user_id, session.created_at, session.last_seen_at])?;
        Ok(())
    })
}

pub(super) fn session(
    database: &SqliteDatabase,
    token_hash: &[u8],
) -> Result<Option<StoredSession>, StorageError> {
    database.read(|connection| {
        Ok(connection
            .prepare_cached("SELECT token_hash, user_id, created_at, last_seen_at FROM sessions WHERE token_hash = ?1")?
            .query_row([token_hash], |row| Ok(StoredSession { token_hash: row.get(0)?, user_id: row.get(1)?, created_at: row.get(2)?, last_seen_at: row.get(3)? }))
            .optional()?)
    })
}

pub(super) fn touch_session(
    database: &SqliteDatabase,
    token_hash: &[u8],
    last_seen_at: i64,
) -> PendingWrite<()> {
    let token_hash = token_hash.to_vec();
    database.write(move |connection| {
        connection
            .prepare_cached("UPDATE sessions SET last_seen_at = ?2 WHERE token_hash = ?1")?
            .execute(params![token_hash, last_seen_at])?;
        Ok(())
    })
}

pub(super) fn end_sessions(
    database: &SqliteDatabase,
    user_id: &str,
    selection: SessionSelection,
) -> PendingWrite<u64> {
    let user_id = user_id.to_owned();
    database.write(move |connection| {
        let removed = match selection {
            SessionSelection::One(hash) => connection
                .prepare_cached("DELETE FROM sessions WHERE user_id = ?1 AND token_hash = ?2")?
                .execute(params![user_id, hash])?,
            SessionSelection::AllBut(keep) => connection
                .prepare_cached("DELETE FROM sessions WHERE user_id = ?1 AND token_hash <> ?2")?
                .execute(params![user_id, keep])?,
            SessionSelection::All => connection
                .prepare_cached("DELETE FROM sessions WHERE user_id = ?1")?
                .execute([&user_id])?,
        };
        Ok(removed as u64)
    })
}

pub(super) fn put_mfa(
    database: &SqliteDatabase,
    mfa: StoredMfa,
    journal: JournalSealer,
) -> PendingWrite<()> {
    database.write(move |connection| {
        connection
            .prepare_cached(
                "INSERT INTO user_mfa (user_id, sealed, confirmed, last_step) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (user_id) DO UPDATE SET sealed = excluded.sealed, confirmed = excluded.confirmed, last_step = excluded.last_step",
            )?
            .execute(params![mfa.user_id, mfa.sealed, mfa.confirmed, mfa.last_step])?;
        append_journal(connection, journal)
    })
}

pub(super) fn mfa(
    database: &SqliteDatabase,
    user_id: &str,
) -> Result<Option<StoredMfa>, StorageError> {
    database.read(|connection| {
        Ok(connection
            .prepare_cached(
                "SELECT user_id, sealed, confirmed, last_step FROM user_mfa WHERE user_id = ?1",
            )?
            .query_row([user_id], |row| {
                Ok(StoredMfa {
                    user_id: row.get(0)?,
                    sealed: row.get(1)?,
                    confirmed: row.get(2)?,
                    last_step: row.get(3)?,
                })
            })
            .optional()?)
    })
}

/// Stores a new challenge, or updates a known one's failure count.
pub(super) fn put_challenge(
    database: &SqliteDatabase,
    challenge: StoredChallenge,
) -> PendingWrite<()> {
    database.write(move |connection| {
        connection
            .prepare_cached(
                "INSERT INTO mfa_challenges (token_hash, user_id, created_at, failed_step, failures) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (token_hash) DO UPDATE SET failed_step = excluded.failed_step, failures = excluded.failures",
            )?
            .execute(params![challenge.token_hash, challenge.user_id, challenge.created_at, challenge.failed_step, challenge.failures])?;
        Ok(())
    })
}

pub(super) fn challenge(
    database: &SqliteDatabase,
    token_hash: &[u8],
) -> Result<Option<StoredChallenge>, StorageError> {
    database.read(|connection| {
        Ok(connection
            .prepare_cached("SELECT token_hash, user_id, created_at, failed_step, failures FROM mfa_challenges WHERE token_hash = ?1")?
            .query_row([token_hash], |row| {
                Ok(StoredChallenge { token_hash: row.get(0)?, user_id: row.get(1)?, created_at: row.get(2)?, failed_step: row.get(3)?, failures: row.get(4)? })
            })
            .optional()?)
    })
}

pub(super) fn remove_challenge(database: &SqliteDatabase, token_hash: &[u8]) -> PendingWrite<()> {
    let token_hash = token_hash.to_vec();
    database.write(move |connection| {
        connection
            .prepare_cached("DELETE FROM mfa_challenges WHERE token_hash = ?1")?
            .execute([token_hash])?;
        Ok(())
    })
}

/// Removes a user with everything attached: password history, sessions, second factor.
pub(super) fn remove_user(
    database: &SqliteDatabase,
    user_id: &str,
    journal: JournalSealer,
) -> PendingWrite<()> {
    let user_id = user_id.to_owned();
    database.write(move |connection| {
        let was_active_owner = is_active_owner(connection, &user_id)?;
        let removed = connection
            .prepare_cached("DELETE FROM users WHERE id = ?1")?
            .execute([&user_id])?;
        if removed == 0 {
            return Err(StorageError::NotFound);
        }
        if was_active_owner {
            keep_an_owner(connection)?;
        }
        for table in ["password_history", "sessions", "user_mfa", "mfa_challenges"] {
            connection
                .prepare_cached(&format!("DELETE FROM {table} WHERE user_id = ?1"))?
                .execute([&user_id])?;
        }
        append_journal(connection, journal)
    })
}

/// Counts a failed sign-in; at `lock_after` consecutive failures the account locks.
pub(super) fn record_login_failure(
    database: &SqliteDatabase,
    user_id: &str,
    at: i64,
    lock_after: u32,
) -> PendingWrite<LoginFailures> {
    let user_id = user_id.to_owned();
    database.write(move |connection| {
        connection
            .prepare_cached(
                "INSERT INTO login_failures (user_id, consecutive, last_failure_at, locked) VALUES (?1, 1, ?2, 0)
                 ON CONFLICT (user_id) DO UPDATE SET consecutive = consecutive + 1, last_failure_at = excluded.last_failure_at",
            )?
            .execute(params![user_id, at])?;
        connection.prepare_cached("UPDATE login_failures SET locked = 1 WHERE user_id = ?1 AND consecutive >= ?2")?.execute(params![user_id, lock_after])?;
        read_failures(connection, &user_id).map(Option::unwrap_or_default)
    })
}

fn read_failures(
    connection: &Connection,
    user_id: &str,
) -> Result<Option<LoginFailures>, StorageError> {
    Ok(connection
        .prepare_cached(
            "SELECT consecutive, last_failure_at, locked FROM login_failures WHERE user_id = ?1",
        )?
        .query_row([user_id], |row| {
            Ok(LoginFailures {
                consecutive: row.get(0)?,
                last_failure_at: row.get(1)?,
                locked: row.get(2)?,
            })
        })
        .optional()?)
}

pub(super) fn login_failures(
    database: &SqliteDatabase,
    user_id: &str,
) -> Result<LoginFailures, StorageError> {
    database.read(|connection| read_failures(connection, user_id).map(Option::unwrap_or_default))
}

/// Clears the count (after a successful sign-in, or an admin's unlock).
pub(super) fn clear_login_failures(database: &SqliteDatabase, user_id: &str) -> PendingWrite<()> {
    let user_id = user_id.to_owned();
    database.write(move |connection| {
        connection
            .prepare_cached("DELETE FROM login_failures WHERE user_id = ?1")?
            .execute([user_id])?;
        Ok(())
    })
}

pub(super) fn put_setting(
    database: &SqliteDatabase,
    name: &str,
    sealed: Vec<u8>,
    journal: JournalSealer,
) -> PendingWrite<()> {
    let name = name.to_owned();
    database.write(move |connection| {
        connection
            .prepare_cached("INSERT INTO settings (name, sealed) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET sealed = excluded.sealed")?
            .execute(params![name, sealed])?;
        append_journal(connection, journal)
    })
}

pub(super) fn setting(
    database: &SqliteDatabase,
    name: &str,
) -> Result<Option<Vec<u8>>, StorageError> {
    database.read(|connection| {
        Ok(connection
            .prepare_cached("SELECT sealed FROM settings WHERE name = ?1")?
            .query_row([name], |row| row.get(0))
            .optional()?)
    })
}
