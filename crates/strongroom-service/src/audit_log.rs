//! The audit trail's daily JSON-lines files, one per chain and day
//! (`<dir>/<tenant slug or control>/<YYYY-MM-DD>.jsonl`, mode 0600), for log shippers. A line is
//! written after its event is durable in the trail, which stays the record: the files carry no
//! plaintext personal data (sign-in names and addresses appear as keyed hashes, the same in all
//! of a tenant's files, so they can still be correlated; free-text details are left out) and
//! are not fsynced.
//!
//! Every signed checkpoint is written there too, as a `{"checkpoint": …}` line: a copy of the
//! chain's head outside the audit database. A trail cut back there together with its
//! checkpoints still falls short of the heads in the files, which `audit verify` reads (a
//! week of the chain's newest files), and so does whoever the files were shipped to.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufWriter, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Sender, channel};
use strongroom_storage::AuditCheckpointRow;

/// How long the writer lets lines gather before writing them: the files are not fsynced and
/// trail the durable record anyway, and waking the thread for every event cost more CPU than
/// writing the lines did.
const GATHER_PAUSE: std::time::Duration = std::time::Duration::from_millis(50);

pub(crate) struct AuditLogLine {
    pub chain_name: String,
    pub sequence: u64,
    pub event: crate::audit::AuditEvent,
    /// The chain's blind-index key, for the keyed hashes of personal values.
    pub index: Option<strongroom_crypto::BlindIndexKey>,
}

impl AuditLogLine {
    /// The day of the event and the JSON line, personal values replaced by keyed hashes.
    fn render(self) -> (String, Vec<u8>) {
        #[derive(serde::Serialize)]
        struct Line<'a> {
            sequence: u64,
            event: &'a crate::audit::AuditEvent,
        }
        let index = self.index;
        let pseudonym = |domain: &str, value: &str| match &index {
            Some(index) => format!("#{}", hex::encode(index.token(domain, &[value.as_bytes()]))),
            None => "#".into(),
        };
        let mut event = self.event;
        event.username_tried = event
            .username_tried
            .map(|name| pseudonym("audit-log-name/v1", &name));
        event.address = event
            .address
            .map(|address| pseudonym("audit-log-address/v1", &address));
        // Details are free text that can name addresses (a security event's sentence): they
        // stay in the sealed trail only.
        event.details = None;
        let day = day_of_rfc3339(&event.at);
        let line = serde_json::to_vec(&Line {
            sequence: self.sequence,
            event: &event,
        })
        .unwrap_or_default();
        (day, line)
    }
}

/// A signed chain head as the daily files carry it (the fields of the API's checkpoints, plus
/// when it was signed): the signature covers the chain id, sequence and head, so the line
/// needs no trust in the server that wrote it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct CheckpointLine {
    pub chain_id: String,
    pub sequence: u64,
    /// Hex of the 32-byte head.
    pub head: String,
    /// Hex of the Ed25519 signature.
    pub signature: String,
    pub expiry: bool,
    /// RFC 3339, UTC.
    pub at: String,
}

impl CheckpointLine {
    pub fn of(checkpoint: &AuditCheckpointRow) -> Self {
        Self {
            chain_id: checkpoint.chain.clone(),
            sequence: checkpoint.sequence,
            head: hex::encode(&checkpoint.head),
            signature: hex::encode(&checkpoint.signature),
            expiry: checkpoint.expiry,
            at: strongroom_domain::Timestamp::from_unix_micros(checkpoint.at).to_rfc3339(),
        }
    }

    /// The checkpoint as its store row (the signing time is not needed to check it).
    pub fn to_row(&self) -> Option<AuditCheckpointRow> {
        Some(AuditCheckpointRow {
            chain: self.chain_id.clone(),
            sequence: self.sequence,
            head: hex::decode(&self.head).ok()?,
            signature: hex::decode(&self.signature).ok()?,
            // Not signed: a line whose time was changed still vouches for its head.
            at: strongroom_domain::Timestamp::parse_rfc3339(&self.at)
                .map(strongroom_domain::Timestamp::unix_micros)
                .unwrap_or_default(),
            expiry: self.expiry,
        })
    }
}

/// The line a checkpoint is written as.
#[derive(serde::Serialize, serde::Deserialize)]
struct CheckpointFileLine {
    checkpoint: CheckpointLine,
}

const CHECKPOINT_LINE_START: &[u8] = b"{\"checkpoint\":";

/// What the writer thread is sent: a line, or a request to write out everything before it.
// Nearly every message is a line: boxing it would cost an allocation per event to shrink the
// rare flush.
#[allow(clippy::large_enum_variant)]
enum LogMessage {
    Line(AuditLogLine),
    Checkpoint {
        chain_name: String,
        line: CheckpointLine,
    },
    Flush(tokio::sync::oneshot::Sender<()>),
}

#[derive(Default)]
pub(crate) struct AuditLogWriter {
    sender: Option<Sender<LogMessage>>,
}

/// Appends one line to its chain's file of the day, opening it (and closing the chain's file
/// of the day before) when needed.
fn append(
    dir: &Path,
    files: &mut HashMap<(String, String), BufWriter<File>>,
    chain_name: String,
    date: String,
    mut line: Vec<u8>,
) -> std::io::Result<()> {
    let key = (chain_name.clone(), date.clone());
    if !files.contains_key(&key) {
        for (_, mut file) in files.extract_if(|(chain, _), _| chain == &chain_name) {
            file.flush()?;
        }
        let directory = dir.join(&chain_name);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&directory)?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(directory.join(format!("{date}.jsonl")))?;
        files.insert(key.clone(), BufWriter::new(file));
    }
    line.push(b'\n');
    files.get_mut(&key).expect("opened above").write_all(&line)
}

impl AuditLogWriter {
    /// Starts the writer thread for `dir`; `None` writes no files.
    pub fn start(dir: Option<PathBuf>) -> Self {
        let Some(dir) = dir else {
            return Self::default();
        };
        let (sender, receiver) = channel::<LogMessage>();
        let spawned = std::thread::Builder::new()
            .name("audit-log".into())
            .spawn(move || {
                let mut files: HashMap<(String, String), BufWriter<File>> = HashMap::new();
                let mut failing = false;
                let report = |result: std::io::Result<()>, failing: &mut bool| match result {
                    Ok(()) => *failing = false,
                    Err(error) if !*failing => {
                        *failing = true;
                        tracing::error!(%error, directory = %dir.display(), "audit log files cannot be written (the trail itself is complete)");
                    }
                    Err(_) => {}
                };
                // Lines that arrive together are written together: one write per burst.
                while let Ok(first) = receiver.recv() {
                    if matches!(first, LogMessage::Line(_)) {
                        std::thread::sleep(GATHER_PAUSE);
                    }
                    let mut flushed_for = Vec::new();
                    let mut next = Some(first);
                    while let Some(message) = next {
                        match message {
                            LogMessage::Line(entry) => {
                                let chain_name = entry.chain_name.clone();
                                let (date, line) = entry.render();
                                let result = append(&dir, &mut files, chain_name, date, line);
                                report(result, &mut failing);
                            }
                            LogMessage::Checkpoint { chain_name, line } => {
                                let date = day_of_rfc3339(&line.at);
                                let result = serde_json::to_vec(&CheckpointFileLine {
                                    checkpoint: line,
                                })
                                .map_err(std::io::Error::other)
                                .and_then(|line| {
                                    append(&dir, &mut files, chain_name, date, line)
                                });
                                report(result, &mut failing);
                            }
                            LogMessage::Flush(done) => flushed_for.push(done),
                        }
                        next = receiver.try_recv().ok();
                    }
                    let flushed = files.values_mut().try_for_each(BufWriter::flush);
                    report(flushed, &mut failing);
                    for done in flushed_for {
                        let _ = done.send(());
                    }
                }
            });
        match spawned {
            Ok(_) => Self {
                sender: Some(sender),
            },
            Err(error) => {
                tracing::error!(%error, "the audit log writer could not start");
                Self::default()
            }
        }
    }

    pub fn write(&self, line: AuditLogLine) {
        if let Some(sender) = &self.sender {
            let _ = sender.send(LogMessage::Line(line));
        }
    }

    /// Writes a signed checkpoint of the chain named `chain_name` (a slug, or `control`).
    pub fn checkpoint(&self, chain_name: String, line: CheckpointLine) {
        if let Some(sender) = &self.sender {
            let _ = sender.send(LogMessage::Checkpoint { chain_name, line });
        }
    }

    /// Waits until every line sent so far is in its file, or `limit` passed; answers whether
    /// they are.
    pub async fn flush(&self, limit: std::time::Duration) -> bool {
        let Some(sender) = &self.sender else {
            return true;
        };
        let (done, flushed) = tokio::sync::oneshot::channel();
        sender.send(LogMessage::Flush(done)).is_ok()
            && matches!(tokio::time::timeout(limit, flushed).await, Ok(Ok(())))
    }
}

/// How many days of a chain's daily files verification reads for checkpoints: the eight days
/// up to today (the server checks at least weekly), and the newest file before them, which
/// holds a quiet chain's last head. Every checkpoint line there is checked, not only the
/// newest: after a cut the server goes on from the cut and signs its new heads, so the newest
/// line may vouch for the new branch while the lines before it still hold the heads that were
/// cut away.
const CHECKPOINT_DAYS_READ: i64 = 8;

/// Checkpoint lines are about 350 bytes; a longer line is some event's, skipped unread, so a
/// huge line cannot exhaust memory.
const LINE_BYTES_MAX: usize = 4096;

/// The day of a daily file's name (`YYYY-MM-DD.jsonl`); none for any other name.
pub(crate) fn day_of(name: &str) -> Option<&str> {
    let day = name.strip_suffix(".jsonl")?;
    let shaped = day.len() == 10
        && day.bytes().enumerate().all(|(index, byte)| match index {
            4 | 7 => byte == b'-',
            _ => byte.is_ascii_digit(),
        });
    shaped.then_some(day)
}

/// Every checkpoint of chain `chain_id` in its recent daily files under `dir/<chain_name>`
/// (see [`CHECKPOINT_DAYS_READ`]; `today` is the server's, and a file dated after tomorrow is
/// no day the server wrote) that `verifies` (its signature), by sequence, each distinct one
/// once. Lines of another chain (a slug used again after its tenant was erased), damaged or
/// overlong lines, lines whose signature fails and entries that are not regular files are
/// passed over; a file that cannot be read is logged and skipped.
pub(crate) fn recent_checkpoints(
    dir: &Path,
    chain_name: &str,
    chain_id: &str,
    today: strongroom_domain::Timestamp,
    verifies: impl Fn(&AuditCheckpointRow) -> bool,
) -> std::io::Result<Vec<AuditCheckpointRow>> {
    let days_later = |days: i64| {
        day_of_time(strongroom_domain::Timestamp::from_unix_micros(
            today.unix_micros() + days * DAY_MICROS,
        ))
    };
    let (first_day, latest_day) = (days_later(1 - CHECKPOINT_DAYS_READ), days_later(1));
    let directory = dir.join(chain_name);
    let mut days: Vec<(String, PathBuf)> = match std::fs::read_dir(&directory) {
        Ok(entries) => entries
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().into_string().ok()?;
                let day = day_of(&name)
                    .filter(|day| *day <= latest_day.as_str())?
                    .to_owned();
                Some((day, entry.path()))
            })
            .collect(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error),
    };
    days.sort_unstable_by(|a, b| b.0.cmp(&a.0));
    let recent = days.iter().take_while(|(day, _)| *day >= first_day).count();
    let mut found = Vec::new();
    for (_, day) in days.into_iter().take(recent + 1) {
        if let Err(error) = checkpoint_lines_of(&day, chain_id, &mut found) {
            tracing::warn!(%error, file = %day.display(), "a daily audit file could not be read for its checkpoints");
        }
    }
    // Signatures first: a copy of a genuine line with a forged signature must not stand in
    // for it when duplicates are dropped.
    let mut found: Vec<AuditCheckpointRow> = found
        .iter()
        .filter_map(CheckpointLine::to_row)
        .filter(|row| verifies(row))
        .collect();
    // Sorted by what makes a checkpoint distinct, so every copy of one sits next to another.
    fn distinct(row: &AuditCheckpointRow) -> (u64, &[u8], bool) {
        (row.sequence, &row.head, row.expiry)
    }
    found.sort_by(|a, b| distinct(a).cmp(&distinct(b)));
    found.dedup_by(|a, b| distinct(a) == distinct(b));
    Ok(found)
}

const DAY_MICROS: i64 = 24 * 3600 * 1_000_000;

/// The UTC day of `time`, as daily files are named (`YYYY-MM-DD`).
pub(crate) fn day_of_time(time: strongroom_domain::Timestamp) -> String {
    day_of_rfc3339(&time.to_rfc3339())
}

/// The day of an RFC 3339 UTC time, as daily files are named: its first ten characters.
fn day_of_rfc3339(at: &str) -> String {
    at.chars().take(10).collect()
}

/// Adds the checkpoint lines of `chain_id` in one daily file to `found`. Only a regular file
/// is read, opened without following a link and without blocking (a FIFO put in its place
/// would otherwise hang the check).
fn checkpoint_lines_of(
    path: &Path,
    chain_id: &str,
    found: &mut Vec<CheckpointLine>,
) -> std::io::Result<()> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.file_type().is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut reader = std::io::BufReader::new(file);
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = (&mut reader)
            .take(LINE_BYTES_MAX as u64 + 1)
            .read_until(b'\n', &mut line)?;
        if read == 0 {
            return Ok(());
        }
        if line.len() > LINE_BYTES_MAX {
            // Only the rest of a line cut at the limit; a line of exactly the limit ended.
            if line.last() != Some(&b'\n') {
                reader.skip_until(b'\n')?;
            }
            continue;
        }
        if !line.starts_with(CHECKPOINT_LINE_START) {
            continue;
        }
        if let Ok(parsed) = serde_json::from_slice::<CheckpointFileLine>(&line)
            && parsed.checkpoint.chain_id == chain_id
        {
            found.push(parsed.checkpoint);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditActor, AuditEvent};

    /// A checkpoint line; the tests' check accepts a signature of zeros only.
    fn signed_line(chain_id: &str, sequence: u64, signature: &str) -> Vec<u8> {
        let mut line = serde_json::to_vec(&CheckpointFileLine {
            checkpoint: CheckpointLine {
                chain_id: chain_id.into(),
                sequence,
                head: "00".repeat(32),
                signature: signature.into(),
                expiry: false,
                at: "2026-11-26T02:00:00Z".into(),
            },
        })
        .unwrap();
        line.push(b'\n');
        line
    }

    fn checkpoint_line(chain_id: &str, sequence: u64) -> Vec<u8> {
        signed_line(chain_id, sequence, &"00".repeat(64))
    }

    fn today() -> strongroom_domain::Timestamp {
        strongroom_domain::Timestamp::parse_rfc3339("2026-11-26T12:00:00Z").unwrap()
    }

    fn found(directory: &Path, refused: u64) -> Vec<u64> {
        recent_checkpoints(directory, "acme", "t1", today(), |row| {
            row.sequence != refused && row.signature == [0u8; 64]
        })
        .unwrap()
        .into_iter()
        .map(|line| line.sequence)
        .collect()
    }

    #[test]
    fn every_checkpoint_of_the_chain_in_the_newest_files_is_found_once() {
        let directory = tempfile::tempdir().unwrap();
        let chain_directory = directory.path().join("acme");
        std::fs::create_dir(&chain_directory).unwrap();
        let filler = format!("{{\"sequence\":1,\"event\":\"{}\"}}\n", "x".repeat(1000));
        // A checkpoint a day since the 10th: the eight days up to today are read (19th to
        // 26th), and the newest file before them (18th); older ones are not.
        for day in 10..=25 {
            let mut lines = filler.repeat(3).into_bytes();
            lines.extend(checkpoint_line("t1", day));
            std::fs::write(chain_directory.join(format!("2026-11-{day}.jsonl")), lines).unwrap();
        }
        // The newest day: a checkpoint of a cut-back branch after higher ones, one written
        // twice, one of another chain, one the check refuses, a line cut short, and an event
        // line too long to keep in memory.
        let mut newest = Vec::new();
        for sequence in [40, 50, 50, 30] {
            newest.extend(checkpoint_line("t1", sequence));
            newest.extend(filler.as_bytes());
        }
        newest.extend(checkpoint_line("t2", 60));
        newest.extend(checkpoint_line("t1", 99));
        newest.extend(format!("{{\"event\":\"{}\"}}\n", "y".repeat(100_000)).as_bytes());
        newest.extend(checkpoint_line("t1", 55));
        // A line of exactly the limit (its line break is the byte past it) hides no next line.
        newest
            .extend(format!("{{\"event\":\"{}\"}}\n", "z".repeat(LINE_BYTES_MAX - 12)).as_bytes());
        newest.extend(checkpoint_line("t1", 57));
        newest.extend(&checkpoint_line("t1", 70)[..50]);
        std::fs::write(chain_directory.join("2026-11-26.jsonl"), &newest).unwrap();
        assert_eq!(
            found(directory.path(), 99),
            [18, 19, 20, 21, 22, 23, 24, 25, 30, 40, 50, 55, 57]
        );
        assert!(
            recent_checkpoints(directory.path(), "globex", "t1", today(), |_| true)
                .unwrap()
                .is_empty()
        );
        // A chain quiet for months: its newest file, however old, holds its last head.
        let quiet = tempfile::tempdir().unwrap();
        std::fs::create_dir(quiet.path().join("acme")).unwrap();
        for (day, sequence) in [("2026-06-01", 4), ("2026-07-01", 5)] {
            std::fs::write(
                quiet.path().join(format!("acme/{day}.jsonl")),
                checkpoint_line("t1", sequence),
            )
            .unwrap();
        }
        assert_eq!(found(quiet.path(), 0), [5]);
    }

    #[test]
    fn forged_lines_and_files_that_are_no_days_hide_no_checkpoint() {
        let directory = tempfile::tempdir().unwrap();
        let chain_directory = directory.path().join("acme");
        std::fs::create_dir(&chain_directory).unwrap();
        std::fs::write(
            chain_directory.join("2026-11-20.jsonl"),
            checkpoint_line("t1", 8),
        )
        .unwrap();
        // A copy of the genuine line with a forged signature, in a newer file: passed over,
        // and the genuine line still counts.
        std::fs::write(
            chain_directory.join("2026-11-21.jsonl"),
            signed_line("t1", 8, &"11".repeat(64)),
        )
        .unwrap();
        // Names dated past tomorrow, or no date at all, are no files the server wrote: they
        // push no real day out of the week read.
        for name in [
            "9999-12-31",
            "2026-12-01",
            "2030-01-01",
            "zzzz-zz-zz",
            "2026-11-2x",
            "9999-12-30",
            "9999-12-29",
        ] {
            std::fs::write(
                chain_directory.join(format!("{name}.jsonl")),
                checkpoint_line("t1", 1),
            )
            .unwrap();
        }
        // Entries that are not regular files are skipped without blocking: a FIFO (opening
        // one for reading would wait for a writer), a directory, a link.
        let fifo = chain_directory.join("2026-11-22.jsonl");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        std::fs::create_dir(chain_directory.join("2026-11-23.jsonl")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", chain_directory.join("2026-11-24.jsonl")).unwrap();
        assert_eq!(found(directory.path(), 0), [8]);
    }

    #[tokio::test]
    async fn a_flush_returns_once_every_line_sent_is_in_its_file() {
        let directory = tempfile::tempdir().unwrap();
        let writer = AuditLogWriter::start(Some(directory.path().to_owned()));
        let event = AuditEvent {
            format: 1,
            chain: "t1".into(),
            at: "2026-11-26T02:00:00Z".into(),
            tenant: Some("acme".into()),
            phase: "request".into(),
            actor: AuditActor::Anonymous,
            address: None,
            user_agent: None,
            request_id: "r1".into(),
            listener: "public".into(),
            method: "GET".into(),
            route: "/healthz".into(),
            action: "health".into(),
            resource: Default::default(),
            outcome: "allowed".into(),
            reason: None,
            status: Some(200),
            bytes_sent: Some(2),
            username_tried: None,
            details: None,
        };
        for sequence in 1..=3 {
            writer.write(AuditLogLine {
                chain_name: "acme".into(),
                sequence,
                event: event.clone(),
                index: None,
            });
        }
        // The writer gathers lines for 50 ms before writing them: only the flush waits.
        assert!(writer.flush(std::time::Duration::from_secs(5)).await);
        let written = std::fs::read_to_string(directory.path().join("acme/2026-11-26.jsonl"))
            .unwrap_or_default();
        assert_eq!(written.lines().count(), 3, "{written}");
    }
}
