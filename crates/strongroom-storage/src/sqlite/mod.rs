//! The embedded default backend: one SQLite file for the control plane and one per tenant,
//! in WAL mode with `synchronous=FULL`, so a commit is on disk when it returns.

mod audit;
mod control;
mod database;
mod documents;
mod downloads;
mod operators;
mod tenant;
mod users;

pub use audit::SqliteAuditStore;
pub use control::SqliteControlStore;
pub use database::{SqliteDatabase, WriterCounts};
pub use tenant::SqliteTenantStore;
