//! The audit trail's daily JSON-lines files, one per chain and day
//! (`<dir>/<tenant slug or control>/<YYYY-MM-DD>.jsonl`, mode 0600), for log shippers. A line is
//! written after its event is durable in the trail, which stays the record: the files carry no
//! plaintext personal data (sign-in names and addresses appear as keyed hashes, the same in all
//! of a tenant's files, so they can still be correlated) and are not fsynced.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::mpsc::{Sender, channel};

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
        let day = event.at.chars().take(10).collect();
        let line = serde_json::to_vec(&Line {
            sequence: self.sequence,
            event: &event,
        })
        .unwrap_or_default();
        (day, line)
    }
}

#[derive(Default)]
pub(crate) struct AuditLogWriter {
    sender: Option<Mutex<Sender<AuditLogLine>>>,
}

impl AuditLogWriter {
    /// Starts the writer thread for `dir`; `None` writes no files.
    pub fn start(dir: Option<PathBuf>) -> Self {
        let Some(dir) = dir else {
            return Self::default();
        };
        let (sender, receiver) = channel::<AuditLogLine>();
        let spawned = std::thread::Builder::new()
            .name("audit-log".into())
            .spawn(move || {
                let mut files: HashMap<(String, String), File> = HashMap::new();
                let mut failing = false;
                for entry in receiver {
                    let chain_name = entry.chain_name.clone();
                    let (date, line) = entry.render();
                    let key = (chain_name.clone(), date.clone());
                    let result = (|| -> std::io::Result<()> {
                        if !files.contains_key(&key) {
                            // A new day closes yesterday's file of the chain.
                            files.retain(|(chain, _), _| chain != &chain_name);
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
                            files.insert(key.clone(), file);
                        }
                        let file = files.get_mut(&key).expect("opened above");
                        let mut line = line;
                        line.push(b'\n');
                        file.write_all(&line)
                    })();
                    match result {
                        Ok(()) => failing = false,
                        Err(error) if !failing => {
                            failing = true;
                            tracing::error!(%error, directory = %dir.display(), "audit log files cannot be written (the trail itself is complete)");
                        }
                        Err(_) => {}
                    }
                }
            });
        match spawned {
            Ok(_) => Self {
                sender: Some(Mutex::new(sender)),
            },
            Err(error) => {
                tracing::error!(%error, "the audit log writer could not start");
                Self::default()
            }
        }
    }

    pub fn write(&self, line: AuditLogLine) {
        if let Some(sender) = &self.sender {
            if let Ok(sender) = sender.lock() {
                let _ = sender.send(line);
            }
        }
    }
}
