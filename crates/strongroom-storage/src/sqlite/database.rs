use crate::{PendingWrite, StorageError, WriteGate};
use crossbeam_channel::{Receiver, Sender};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// A finished job's callback, called with the outcome of the transaction's commit.
type Completion = Box<dyn FnOnce(Result<(), StorageError>) + Send>;
/// A queued write: given the connection it runs and returns its completion; given `None` (the
/// batch's transaction is gone) it does not run and answers the error.
type Job = Box<dyn FnOnce(Option<&Connection>) -> Completion + Send>;

/// Jobs committed together at most; bounds the latency one batch adds.
const GROUP_COMMIT_JOBS_MAX: usize = 512;
/// Idle read connections kept per database.
const READERS_KEPT_MAX: usize = 8;
/// Writes queued at most; beyond it writes are refused as overload (503), never waited on.
const WRITE_QUEUE_LENGTH_MAX: usize = 4096;

/// Transactions and jobs of a database's writer since it opened.
#[derive(Debug, Default)]
pub struct WriterCounts {
    /// Group commits that reached the disk.
    pub commits: AtomicU64,
    /// Group commits that failed (their jobs' changes were rolled back).
    pub failed_commits: AtomicU64,
    /// Write jobs run, in either kind of commit: `jobs_run / (commits + failed_commits)` is the
    /// average group size, which is what spreads an fsync's cost.
    pub jobs_run: AtomicU64,
}

/// One SQLite database with a single writer thread that group-commits: every write job that is
/// queued while a commit runs joins the next transaction, each in its own savepoint, and all of
/// them are acknowledged after the one fsync of that commit.
pub struct SqliteDatabase {
    path: PathBuf,
    jobs: Option<Sender<Job>>,
    readers: Mutex<Vec<Connection>>,
    writer: Option<std::thread::JoinHandle<()>>,
    counts: std::sync::Arc<WriterCounts>,
    /// Whether writes queued inside a [`WriteGate`] scope wait for its intent (every database
    /// but the audit trail's own, whose writer settles the gates).
    gated: bool,
}

impl SqliteDatabase {
    /// Opens (creating if needed) and migrates the database to `migrations.len()`.
    /// `migrations[i]` moves format `i` to `i + 1`.
    pub fn open(path: &Path, migrations: &[&str]) -> Result<Self, StorageError> {
        Self::open_with(path, migrations, true)
    }

    /// [`SqliteDatabase::open`] for the audit trail: its writes never wait on a gate.
    pub fn open_ungated(path: &Path, migrations: &[&str]) -> Result<Self, StorageError> {
        Self::open_with(path, migrations, false)
    }

    fn open_with(path: &Path, migrations: &[&str], gated: bool) -> Result<Self, StorageError> {
        let connection = open_connection(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        )?;
        migrate(&connection, migrations)?;
        let (sender, receiver) = crossbeam_channel::bounded::<Job>(WRITE_QUEUE_LENGTH_MAX);
        let counts = std::sync::Arc::new(WriterCounts::default());
        let counting = counts.clone();
        let writer = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run_writer(connection, receiver, &counting))?;
        Ok(Self {
            path: path.to_owned(),
            jobs: Some(sender),
            readers: Mutex::new(Vec::new()),
            writer: Some(writer),
            counts,
            gated,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the writer has done since the database opened. A writer job that caches what
    /// earlier jobs wrote (such as chain heads) drops its cache when `failed_commits` moves.
    pub fn counts(&self) -> std::sync::Arc<WriterCounts> {
        self.counts.clone()
    }

    /// Queues `work` for the next group commit; the answer arrives once that commit is
    /// durable. An error from `work` rolls back only its own savepoint.
    pub fn write<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StorageError> + Send + 'static,
    ) -> PendingWrite<T> {
        self.queue(work, true)
    }

    /// [`SqliteDatabase::write`] for work that changes the database with at most one
    /// statement, as its last step: SQLite undoes a failed statement by itself, so the job
    /// needs no savepoint of its own (two statements fewer on the writer's thread).
    pub fn write_one_statement<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StorageError> + Send + 'static,
    ) -> PendingWrite<T> {
        self.queue(work, false)
    }

    fn queue<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StorageError> + Send + 'static,
        in_savepoint: bool,
    ) -> PendingWrite<T> {
        let (reply, pending) = PendingWrite::channel();
        let gate = if self.gated {
            WriteGate::current()
        } else {
            None
        };
        let job: Job = Box::new(move |connection: Option<&Connection>| {
            // A gated write waits here, on the writer's thread, for its request's intent.
            let opened = || gate.map_or(Ok(()), |gate| gate.wait());
            let result = match connection {
                Some(connection) => opened().and_then(|()| {
                    if in_savepoint {
                        run_in_savepoint(connection, work)
                    } else {
                        work(connection)
                    }
                }),
                None => Err(StorageError::Unavailable(
                    "the batch's transaction was aborted".into(),
                )),
            };
            Box::new(move |commit: Result<(), StorageError>| reply.send(commit.and(result)))
        });
        let Some(jobs) = self.jobs.as_ref() else {
            return PendingWrite::ready(Err(StorageError::Unavailable(
                "database is closed".into(),
            )));
        };
        // Never block the caller's thread (an async worker): a full queue is overload.
        if let Err(error) = jobs.try_send(job) {
            let reason = match error {
                crossbeam_channel::TrySendError::Full(_) => {
                    "the write queue is full; retry shortly"
                }
                crossbeam_channel::TrySendError::Disconnected(_) => "the database writer stopped",
            };
            return PendingWrite::ready(Err(StorageError::Unavailable(reason.into())));
        }
        pending
    }

    /// [`SqliteDatabase::write`] for plain threads: blocks until the commit is durable.
    pub fn write_and_wait<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        self.write(work).wait()
    }

    /// Runs `work` on a read-only connection; readers never block the writer (WAL).
    pub fn read<T>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        let pooled = self
            .readers
            .lock()
            .map_err(|_| StorageError::Unavailable("reader pool poisoned".into()))?
            .pop();
        let connection = match pooled {
            Some(connection) => connection,
            None => {
                let connection = open_connection(&self.path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
                connection.pragma_update(None, "query_only", true)?;
                connection
            }
        };
        let result = work(&connection);
        if let Ok(mut readers) = self.readers.lock()
            && readers.len() < READERS_KEPT_MAX
        {
            readers.push(connection);
        }
        result
    }

    /// Moves the WAL's content into the main file and truncates the WAL.
    pub fn checkpoint(&self) -> Result<(), StorageError> {
        // A connection of its own: a checkpoint cannot run inside the writer's transactions,
        // and the pooled readers are query-only.
        let connection = open_connection(&self.path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
        connection.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }
}

impl Drop for SqliteDatabase {
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

fn open_connection(path: &Path, flags: OpenFlags) -> Result<Connection, StorageError> {
    let connection = Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    connection.busy_timeout(std::time::Duration::from_secs(10))?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: in WAL mode the log is fsynced at every commit, so an acknowledged write survives
    // a power cut, not only a process crash.
    connection.pragma_update(None, "synchronous", "FULL")?;
    connection.pragma_update(None, "foreign_keys", true)?;
    // Savepoint sub-journals and sorts stay in memory instead of temporary files.
    connection.pragma_update(None, "temp_store", "MEMORY")?;
    // Reads map the file instead of copying pages through read(2); a larger page cache and
    // less frequent checkpoints write hot b-tree pages to the main file fewer times.
    connection.pragma_update(None, "mmap_size", 256i64 * 1024 * 1024)?;
    connection.pragma_update(None, "cache_size", -32_768i64)?;
    connection.pragma_update(None, "wal_autocheckpoint", 16_384i64)?;
    Ok(connection)
}

fn migrate(connection: &Connection, migrations: &[&str]) -> Result<(), StorageError> {
    let supported = migrations.len() as i64;
    let found: i64 = connection.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if found > supported {
        return Err(StorageError::FormatTooNew { found, supported });
    }
    for (from, migration) in migrations.iter().enumerate().skip(found as usize) {
        let to = from + 1;
        connection.execute_batch(&format!(
            "BEGIN IMMEDIATE; {migration}; PRAGMA user_version = {to}; COMMIT;"
        ))?;
    }
    Ok(())
}

fn run_in_savepoint<T>(
    connection: &Connection,
    work: impl FnOnce(&Connection) -> Result<T, StorageError>,
) -> Result<T, StorageError> {
    connection.prepare_cached("SAVEPOINT job")?.execute([])?;
    match work(connection) {
        Ok(value) => {
            connection.prepare_cached("RELEASE job")?.execute([])?;
            Ok(value)
        }
        Err(error) => {
            connection.prepare_cached("ROLLBACK TO job")?.execute([])?;
            connection.prepare_cached("RELEASE job")?.execute([])?;
            Err(error)
        }
    }
}

fn run_writer(connection: Connection, jobs: Receiver<Job>, counts: &WriterCounts) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < GROUP_COMMIT_JOBS_MAX {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if let Err(error) = connection.execute_batch("BEGIN IMMEDIATE") {
            // Dropping the jobs unblocks their callers with "writer stopped"; nothing ran.
            tracing::error!(%error, jobs = batch.len(), "could not begin a write transaction");
            drop(batch);
            continue;
        }
        let mut completions: Vec<Completion> = Vec::with_capacity(batch.len());
        let mut aborted = false;
        for job in batch {
            // A failure that ends the whole transaction (disk full, I/O error) must not let the
            // remaining jobs run, and commit one by one, outside it.
            aborted = aborted || connection.is_autocommit();
            completions.push(job((!aborted).then_some(&connection)));
        }
        aborted = aborted || connection.is_autocommit();
        let commit = if aborted {
            Err("the write transaction was aborted by an earlier failure".to_owned())
        } else {
            connection.execute_batch("COMMIT").map_err(|error| {
                let _ = connection.execute_batch("ROLLBACK");
                error.to_string()
            })
        };
        // Before any caller hears of it, so the next batch's jobs see it.
        let counter = if commit.is_err() {
            &counts.failed_commits
        } else {
            &counts.commits
        };
        counter.fetch_add(1, Ordering::SeqCst);
        counts
            .jobs_run
            .fetch_add(completions.len() as u64, Ordering::Relaxed);
        for completion in completions {
            completion(commit.clone().map_err(StorageError::Unavailable));
        }
    }
    if let Err(error) = connection.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
        tracing::warn!(%error, "final WAL checkpoint failed; the WAL is replayed at next open");
    }
}
