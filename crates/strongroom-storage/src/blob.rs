//! Content blobs: opaque (already sealed) byte files, named by the caller, written atomically.
//! The filesystem store is the embedded default; the trait is shaped so an S3-compatible store
//! (object_store) can stand behind it without the service layer changing.

use crate::StorageError;
use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub trait BlobStore: Send + Sync {
    /// Starts a new upload. Dropped unfinished, it leaves nothing behind.
    fn create(&self) -> Result<Box<dyn BlobUpload>, StorageError>;
    /// Opens a stored blob for random-access reading.
    fn open(&self, blob_id: &str) -> Result<Box<dyn BlobRead>, StorageError>;
    /// Removes a blob; removing a missing blob is not an error.
    fn remove(&self, blob_id: &str) -> Result<(), StorageError>;
    /// Ids of every stored blob.
    fn list(&self) -> Result<Vec<String>, StorageError>;
    /// Removes partial uploads that no live upload owns (left by a crash); returns how many.
    fn remove_abandoned_uploads(&self) -> Result<u64, StorageError>;
}

pub trait BlobUpload: Send {
    fn write(&mut self, bytes: &[u8]) -> Result<(), StorageError>;
    /// Makes the upload durable under `blob_id`. Returns false when a blob with that id was
    /// already stored (the upload is then discarded: same id, same content).
    fn finish(self: Box<Self>, blob_id: &str) -> Result<bool, StorageError>;
    /// Makes the upload durable under `blob_id`, atomically replacing the stored blob (used to
    /// re-seal the same content under a newer key).
    fn finish_replacing(self: Box<Self>, blob_id: &str) -> Result<(), StorageError>;
}

pub trait BlobRead: Send {
    fn length(&self) -> u64;
    /// Fills `buffer` from `offset`; fails if the blob ends before.
    fn read_exact_at(&self, offset: u64, buffer: &mut [u8]) -> Result<(), StorageError>;
}

/// `<root>/<first two characters of the id>/<id>`, uploads under `<root>/uploads/`.
pub struct FsBlobStore {
    root: PathBuf,
    live_uploads: Arc<Mutex<HashSet<PathBuf>>>,
}

fn valid_blob_id(blob_id: &str) -> Result<(), StorageError> {
    let valid = (8..=128).contains(&blob_id.len())
        && blob_id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    if valid {
        Ok(())
    } else {
        Err(StorageError::Unavailable(format!(
            "invalid blob id {blob_id:?}"
        )))
    }
}

fn sync_directory(directory: &Path) -> Result<(), StorageError> {
    Ok(File::open(directory)?.sync_all()?)
}

impl FsBlobStore {
    pub fn open(root: &Path) -> Result<Self, StorageError> {
        std::fs::create_dir_all(root.join("uploads"))?;
        Ok(Self {
            root: root.to_owned(),
            live_uploads: Arc::default(),
        })
    }

    fn blob_path(&self, blob_id: &str) -> Result<PathBuf, StorageError> {
        valid_blob_id(blob_id)?;
        Ok(self.root.join(&blob_id[..2]).join(blob_id))
    }
}

struct FsUpload {
    /// Buffered: sealed chunks go to the kernel in 1 MiB writes.
    file: Option<std::io::BufWriter<File>>,
    path: PathBuf,
    root: PathBuf,
    live_uploads: Arc<Mutex<HashSet<PathBuf>>>,
}

impl BlobStore for FsBlobStore {
    fn create(&self) -> Result<Box<dyn BlobUpload>, StorageError> {
        let mut random = [0u8; 16];
        File::open("/dev/urandom")
            .and_then(|mut source| std::io::Read::read_exact(&mut source, &mut random))?;
        let name: String = random.iter().map(|byte| format!("{byte:02x}")).collect();
        let path = self.root.join("uploads").join(format!("{name}.part"));
        // Registered as live while the file is created, under the lock the sweep holds, so the
        // sweep never takes a file that is being written.
        let mut live = self
            .live_uploads
            .lock()
            .map_err(|_| StorageError::Unavailable("upload registry poisoned".into()))?;
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        live.insert(path.clone());
        drop(live);
        Ok(Box::new(FsUpload {
            file: Some(std::io::BufWriter::with_capacity(1 << 20, file)),
            path,
            root: self.root.clone(),
            live_uploads: self.live_uploads.clone(),
        }))
    }

    fn open(&self, blob_id: &str) -> Result<Box<dyn BlobRead>, StorageError> {
        match File::open(self.blob_path(blob_id)?) {
            Ok(file) => Ok(Box::new(FsRead {
                length: file.metadata()?.len(),
                file,
            })),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                Err(StorageError::NotFound)
            }
            Err(error) => Err(error.into()),
        }
    }

    fn remove(&self, blob_id: &str) -> Result<(), StorageError> {
        let path = self.blob_path(blob_id)?;
        match std::fs::remove_file(&path) {
            Ok(()) => sync_directory(path.parent().unwrap_or(&self.root)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    fn list(&self) -> Result<Vec<String>, StorageError> {
        let mut ids = Vec::new();
        for shard in std::fs::read_dir(&self.root)? {
            let shard = shard?;
            if shard.file_name().len() != 2 || !shard.file_type()?.is_dir() {
                continue;
            }
            for entry in std::fs::read_dir(shard.path())? {
                let name = entry?.file_name().to_string_lossy().into_owned();
                if valid_blob_id(&name).is_ok() {
                    ids.push(name);
                }
            }
        }
        ids.sort();
        Ok(ids)
    }

    fn remove_abandoned_uploads(&self) -> Result<u64, StorageError> {
        let live = self
            .live_uploads
            .lock()
            .map_err(|_| StorageError::Unavailable("upload registry poisoned".into()))?;
        let mut removed = 0;
        for entry in std::fs::read_dir(self.root.join("uploads"))? {
            let path = entry?.path();
            if live.contains(&path) {
                continue;
            }
            match std::fs::remove_file(&path) {
                Ok(()) => removed += 1,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => return Err(error.into()),
            }
        }
        Ok(removed)
    }
}

impl BlobUpload for FsUpload {
    fn finish_replacing(mut self: Box<Self>, blob_id: &str) -> Result<(), StorageError> {
        let target = self.durable_file(blob_id)?;
        std::fs::rename(&self.path, &target)?;
        sync_directory(target.parent().unwrap_or(&self.root))
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), StorageError> {
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| StorageError::Unavailable("upload already finished".into()))?;
        Ok(file.write_all(bytes)?)
    }

    fn finish(mut self: Box<Self>, blob_id: &str) -> Result<bool, StorageError> {
        let target = self.durable_file(blob_id)?;
        if target.exists() {
            return Ok(false);
        }
        std::fs::rename(&self.path, &target)?;
        sync_directory(target.parent().unwrap_or(&self.root))?;
        Ok(true)
    }
}

impl FsUpload {
    fn durable_file(&mut self, blob_id: &str) -> Result<PathBuf, StorageError> {
        valid_blob_id(blob_id)?;
        let file = self
            .file
            .take()
            .ok_or_else(|| StorageError::Unavailable("upload already finished".into()))?
            .into_inner()
            .map_err(|error| StorageError::Io(error.into_error()))?;
        file.sync_all()?;
        let shard = self.root.join(&blob_id[..2]);
        if !shard.exists() {
            std::fs::create_dir_all(&shard)?;
            // The new directory's own entry must survive a power cut too.
            sync_directory(&self.root)?;
        }
        Ok(shard.join(blob_id))
    }
}

impl Drop for FsUpload {
    fn drop(&mut self) {
        // Unfinished, or finished as a duplicate: the partial file goes. After a rename the
        // path no longer exists and this is a no-op.
        let _ = std::fs::remove_file(&self.path);
        if let Ok(mut live) = self.live_uploads.lock() {
            live.remove(&self.path);
        }
    }
}

struct FsRead {
    file: File,
    length: u64,
}

impl BlobRead for FsRead {
    fn length(&self) -> u64 {
        self.length
    }

    fn read_exact_at(&self, offset: u64, buffer: &mut [u8]) -> Result<(), StorageError> {
        Ok(self.file.read_exact_at(buffer, offset)?)
    }
}
