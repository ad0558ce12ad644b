use thiserror::Error;

#[derive(Debug, Error)]
pub enum StorageError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(&'static str),
    #[error("database format {found} is newer than this build understands (at most {supported})")]
    FormatTooNew { found: i64, supported: i64 },
    #[error("storage is unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("file system error: {0}")]
    Io(#[from] std::io::Error),
}
