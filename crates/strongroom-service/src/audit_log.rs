//! The audit trail's daily JSON-lines files, one per chain and day
//! (`<dir>/<tenant slug or control>/<YYYY-MM-DD>.jsonl`, mode 0600), for log shippers. A line is
//! written after its event is durable in the trail, which stays the record: the files carry no
//! plaintext personal data (sign-in names and addresses appear as keyed hashes, the same in all
//! of a tenant's files, so they can still be correlated; free-text details are left out) and
//! are not fsynced.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;
use std::sync::mpsc::{Sender, channel};

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
        let day = event.at.chars().take(10).collect();
        let line = serde_json::to_vec(&Line {
            sequence: self.sequence,
            event: &event,
        })
        .unwrap_or_default();
        (day, line)
    }
}

/// What the writer thread is sent: a line, or a request to write out everything before it.
// Nearly every message is a line: boxing it would cost an allocation per event to shrink the
// rare flush.
#[allow(clippy::large_enum_variant)]
enum LogMessage {
    Line(AuditLogLine),
    Flush(tokio::sync::oneshot::Sender<()>),
}

#[derive(Default)]
pub(crate) struct AuditLogWriter {
    sender: Option<Sender<LogMessage>>,
}

/// Appends one line to its chain's file of the day, opening it (and closing the chain's file
/// of the day before) when needed.
fn append(
    dir: &std::path::Path,
    files: &mut HashMap<(String, String), BufWriter<File>>,
    entry: AuditLogLine,
) -> std::io::Result<()> {
    let chain_name = entry.chain_name.clone();
    let (date, mut line) = entry.render();
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
                                let result = append(&dir, &mut files, entry);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditActor, AuditEvent};

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
