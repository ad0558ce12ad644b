//! Download counts per caller and window (the tenants' download thresholds). Callers are
//! opaque keys such as `user:<id>`; counts survive a restart.

use super::SqliteDatabase;
use crate::{DownloadCount, DownloadDecision, DownloadToCount, PendingWrite};
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

/// What each caller downloaded in its current window, so a range of content already counted
/// is no further file; and whether the caller passed a limit, which blocks every further
/// download until the window ends or an admin lifts it.
pub(super) const CONTENT_MIGRATION: &str = "
    ALTER TABLE download_counts ADD COLUMN blocked INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE download_contents (
        caller TEXT NOT NULL,
        window_start INTEGER NOT NULL,
        content TEXT NOT NULL,
        PRIMARY KEY (caller, window_start, content)
    ) WITHOUT ROWID;
";

/// Each window's counts get a random id when they start, so a refund of bytes counted in
/// them cannot come off counts made after an admin's reset.
pub(super) const WINDOW_ID_MIGRATION: &str = "
    ALTER TABLE download_counts ADD COLUMN window_id INTEGER NOT NULL DEFAULT 0;
";

/// Counts one download unless the caller is blocked in the window or the download would pass
/// `files_max` or `bytes_max`, which blocks the caller; answers the counts after the call and
/// whether it was counted. Older windows of the caller are dropped on the way.
pub(super) fn count_download(
    database: &SqliteDatabase,
    download: DownloadToCount,
) -> PendingWrite<DownloadDecision> {
    database.write(move |connection| {
        let DownloadToCount {
            caller,
            window_start,
            content,
            ranged,
            bytes,
            files_max,
            bytes_max,
        } = download;
        let current = connection
            .prepare_cached(
                "SELECT files, bytes, blocked, window_id FROM download_counts
                 WHERE caller = ?1 AND window_start = ?2",
            )?
            .query_row(params![caller, window_start], |row| {
                let count = DownloadCount {
                    files: row.get::<_, i64>(0)? as u64,
                    bytes: row.get::<_, i64>(1)? as u64,
                };
                Ok((count, row.get::<_, bool>(2)?, row.get::<_, i64>(3)?))
            })
            .optional()?;
        // The first download of a window drops the caller's older windows.
        let (current, blocked, window_id) = match current {
            Some(found) => found,
            None => {
                for delete in [
                    "DELETE FROM download_counts WHERE caller = ?1 AND window_start < ?2",
                    "DELETE FROM download_contents WHERE caller = ?1 AND window_start < ?2",
                ] {
                    connection
                        .prepare_cached(delete)?
                        .execute(params![caller, window_start])?;
                }
                let window_id: i64 = connection
                    .prepare_cached("SELECT random()")?
                    .query_row([], |row| row.get(0))?;
                (DownloadCount::default(), false, window_id)
            }
        };
        let decision = |count: DownloadCount, counted: bool| DownloadDecision {
            count,
            counted,
            window_id,
        };
        if blocked {
            return Ok(decision(current, false));
        }
        let seen = ranged
            && connection
                .prepare_cached(
                    "SELECT 1 FROM download_contents
                     WHERE caller = ?1 AND window_start = ?2 AND content = ?3",
                )?
                .exists(params![caller, window_start, content])?;
        let files = u64::from(!seen);
        let refused = files_max.is_some_and(|max| current.files + files > max)
            || bytes_max.is_some_and(|max| current.bytes.saturating_add(bytes) > max);
        if refused {
            connection
                .prepare_cached(
                    "INSERT INTO download_counts (caller, window_start, files, bytes, blocked, window_id)
                     VALUES (?1, ?2, ?3, ?4, 1, ?5)
                     ON CONFLICT (caller, window_start) DO UPDATE SET blocked = 1",
                )?
                .execute(params![
                    caller,
                    window_start,
                    current.files as i64,
                    current.bytes.min(i64::MAX as u64) as i64,
                    window_id
                ])?;
            return Ok(decision(current, false));
        }
        let after = DownloadCount {
            files: current.files + files,
            bytes: current.bytes.saturating_add(bytes),
        };
        connection
            .prepare_cached(
                "INSERT INTO download_counts (caller, window_start, files, bytes, window_id) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (caller, window_start) DO UPDATE SET files = excluded.files, bytes = excluded.bytes",
            )?
            .execute(params![caller, window_start, after.files as i64, after.bytes.min(i64::MAX as u64) as i64, window_id])?;
        connection
            .prepare_cached(
                "INSERT OR IGNORE INTO download_contents (caller, window_start, content)
                 VALUES (?1, ?2, ?3)",
            )?
            .execute(params![caller, window_start, content])?;
        Ok(decision(after, true))
    })
}

/// Forgets a caller's counts (an admin lifts a block).
pub(super) fn reset_downloads(database: &SqliteDatabase, caller: &str) -> PendingWrite<u64> {
    let caller = caller.to_owned();
    database.write(move |connection| {
        connection
            .prepare_cached("DELETE FROM download_contents WHERE caller = ?1")?
            .execute([&caller])?;
        Ok(connection
            .prepare_cached("DELETE FROM download_counts WHERE caller = ?1")?
            .execute([caller])? as u64)
    })
}

/// See [`crate::TenantStore::uncount_download_bytes`].
pub(super) fn uncount_download_bytes(
    database: &SqliteDatabase,
    caller: &str,
    window_id: i64,
    bytes: u64,
) -> PendingWrite<()> {
    let caller = caller.to_owned();
    let bytes = bytes.min(i64::MAX as u64) as i64;
    database.write_one_statement(move |connection| {
        connection
            .prepare_cached(
                "UPDATE download_counts SET bytes = max(0, bytes - ?3)
                 WHERE caller = ?1 AND window_id = ?2",
            )?
            .execute(params![caller, window_id, bytes])?;
        Ok(())
    })
}
