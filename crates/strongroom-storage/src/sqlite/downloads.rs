//! Download counts per caller and window (the tenants' download thresholds). Callers are
//! opaque keys such as `user:<id>`; counts survive a restart.

use super::SqliteDatabase;
use crate::{DownloadCount, PendingWrite};
use rusqlite::{OptionalExtension, params};

pub(super) const MIGRATION: &str = "
    CREATE TABLE download_counts (
        caller TEXT NOT NULL,
        window_start INTEGER NOT NULL,
        files INTEGER NOT NULL,
        bytes INTEGER NOT NULL,
        PRIMARY KEY (caller, window_start)
    );
";

/// Counts one download of `bytes` unless it would pass `files_max` or `bytes_max` in the
/// window; answers the counts after the call and whether it was counted. Older windows of the
/// caller are dropped on the way.
pub(super) fn count_download(
    database: &SqliteDatabase,
    caller: &str,
    window_start: i64,
    bytes: u64,
    files_max: Option<u64>,
    bytes_max: Option<u64>,
) -> PendingWrite<(DownloadCount, bool)> {
    let caller = caller.to_owned();
    database.write(move |connection| {
        connection
            .prepare_cached("DELETE FROM download_counts WHERE caller = ?1 AND window_start < ?2")?
            .execute(params![caller, window_start])?;
        let current = connection
            .prepare_cached(
                "SELECT files, bytes FROM download_counts WHERE caller = ?1 AND window_start = ?2",
            )?
            .query_row(params![caller, window_start], |row| {
                Ok(DownloadCount {
                    files: row.get::<_, i64>(0)? as u64,
                    bytes: row.get::<_, i64>(1)? as u64,
                })
            })
            .optional()?
            .unwrap_or_default();
        let refused = files_max.is_some_and(|max| current.files + 1 > max)
            || bytes_max.is_some_and(|max| current.bytes.saturating_add(bytes) > max);
        if refused {
            return Ok((current, false));
        }
        let after = DownloadCount {
            files: current.files + 1,
            bytes: current.bytes.saturating_add(bytes),
        };
        connection
            .prepare_cached(
                "INSERT INTO download_counts (caller, window_start, files, bytes) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (caller, window_start) DO UPDATE SET files = excluded.files, bytes = excluded.bytes",
            )?
            .execute(params![caller, window_start, after.files as i64, after.bytes.min(i64::MAX as u64) as i64])?;
        Ok((after, true))
    })
}

/// Forgets a caller's counts (an admin lifts a block).
pub(super) fn reset_downloads(database: &SqliteDatabase, caller: &str) -> PendingWrite<u64> {
    let caller = caller.to_owned();
    database.write(move |connection| {
        Ok(connection
            .prepare_cached("DELETE FROM download_counts WHERE caller = ?1")?
            .execute([caller])? as u64)
    })
}
