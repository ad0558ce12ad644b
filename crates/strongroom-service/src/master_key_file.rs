//! The master key file: 32 raw bytes, mode 0600, outside the data directory. Written through a
//! temporary file, fsynced with its directory, and read back before it is trusted.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use strongroom_crypto::{KEY_LENGTH, MasterKey};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum KeyFileError {
    #[error("cannot use key file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "key file {path} has mode {mode:o}, readable or writable by group or others; run `chmod 600 {path}`"
    )]
    Permissions { path: PathBuf, mode: u32 },
    #[error("key file {path} holds {length} bytes, not the {KEY_LENGTH} of a master key")]
    Length { path: PathBuf, length: usize },
    #[error("key file {path} did not read back as written; the disk may be failing")]
    Verify { path: PathBuf },
    #[error("cannot generate a key: {0}")]
    Random(String),
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> KeyFileError + '_ {
    move |source| KeyFileError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Refuses a key file that group or others can read or write.
pub fn check_permissions(path: &Path) -> Result<(), KeyFileError> {
    let mode = fs::metadata(path)
        .map_err(io_error(path))?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::Permissions {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

/// Reads a master key after checking the file's permissions.
pub fn read(path: &Path) -> Result<MasterKey, KeyFileError> {
    check_permissions(path)?;
    let mut bytes = zeroize::Zeroizing::new(Vec::with_capacity(KEY_LENGTH));
    File::open(path)
        .map_err(io_error(path))?
        .take(KEY_LENGTH as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io_error(path))?;
    MasterKey::from_bytes(&bytes).map_err(|_| KeyFileError::Length {
        path: path.to_owned(),
        length: bytes.len(),
    })
}

/// Reads the key file, or creates it with a new random key when it does not exist.
/// Returns the key and whether it was created.
pub fn read_or_create(path: &Path) -> Result<(MasterKey, bool), KeyFileError> {
    if path.exists() {
        return Ok((read(path)?, false));
    }
    let key = MasterKey::generate().map_err(|error| KeyFileError::Random(error.to_string()))?;
    write_verified(path, &key)?;
    Ok((key, true))
}

/// Atomically writes `key` to `path` (mode 0600, parent directory 0700 when created) and
/// verifies it by reading it back.
pub fn write_verified(path: &Path, key: &MasterKey) -> Result<(), KeyFileError> {
    let directory = parent_of(path);
    if !directory.exists() {
        fs::create_dir_all(directory).map_err(io_error(directory))?;
        fs::set_permissions(directory, fs::Permissions::from_mode(0o700))
            .map_err(io_error(directory))?;
    }
    let temporary = sibling(path, "tmp");
    let _ = fs::remove_file(&temporary);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)
        .map_err(io_error(&temporary))?;
    file.write_all(key.expose_bytes())
        .map_err(io_error(&temporary))?;
    file.sync_all().map_err(io_error(&temporary))?;
    drop(file);
    fs::rename(&temporary, path).map_err(io_error(path))?;
    sync_directory(directory)?;
    let read_back = read(path)?;
    if read_back.expose_bytes() != key.expose_bytes() {
        return Err(KeyFileError::Verify {
            path: path.to_owned(),
        });
    }
    Ok(())
}

/// Copies the key file to a dated backup beside it (same mode), fsynced and verified.
pub fn backup(path: &Path, stamp: &str) -> Result<PathBuf, KeyFileError> {
    let key = read(path)?;
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "master.key".into());
    let backup_path = parent_of(path).join(format!("{file_name}.{stamp}.bak"));
    write_verified(&backup_path, &key)?;
    Ok(backup_path)
}

/// `path` with `.suffix` appended to its whole file name (`master.key` → `master.key.new`), so a
/// helper file can never be the key file itself, whatever the key file is named.
pub fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|name| name.to_os_string())
        .unwrap_or_default();
    name.push(format!(".{suffix}"));
    path.with_file_name(name)
}

pub fn sync_directory(directory: &Path) -> Result<(), KeyFileError> {
    File::open(directory)
        .and_then(|handle| handle.sync_all())
        .map_err(io_error(directory))
}

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_private_files_and_refuses_readable_ones() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("keys/master.key");
        let (created, was_created) = read_or_create(&path).unwrap();
        assert!(was_created);
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::metadata(path.parent().unwrap())
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
        let (again, was_created) = read_or_create(&path).unwrap();
        assert!(!was_created);
        assert_eq!(again.key_id(), created.key_id());
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let error = read(&path).unwrap_err();
        assert!(error.to_string().contains("chmod 600"), "{error}");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(&path, b"short").unwrap();
        assert!(matches!(
            read(&path),
            Err(KeyFileError::Length { length: 5, .. })
        ));
    }

    #[test]
    fn backups_are_verified_copies() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("master.key");
        let (key, _) = read_or_create(&path).unwrap();
        let backup_path = backup(&path, "20261125T000000Z").unwrap();
        assert_eq!(
            backup_path.file_name().unwrap(),
            "master.key.20261125T000000Z.bak"
        );
        assert_eq!(read(&backup_path).unwrap().key_id(), key.key_id());
    }
}
