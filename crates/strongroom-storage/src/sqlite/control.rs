use super::SqliteDatabase;
use crate::{
    ApiTokenRow, ControlStore, OperatorTokenRow, StorageError, TenantRow, TenantStatus,
    WrappedKeyRow,
};
use rusqlite::{OptionalExtension, Row, params};
use std::path::Path;

/// Control-plane database formats; entry `i` migrates format `i` to `i + 1`. Append only.
const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE tenants (
        id TEXT PRIMARY KEY,
        slug TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        region TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        status_changed_at INTEGER NOT NULL
    );
    CREATE TABLE wrapped_keys (
        tenant_id TEXT NOT NULL REFERENCES tenants (id),
        purpose TEXT NOT NULL,
        version INTEGER NOT NULL,
        master_key_id TEXT NOT NULL,
        wrapped BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        wrapped_at INTEGER NOT NULL,
        PRIMARY KEY (tenant_id, purpose, version, master_key_id)
    );
    CREATE TABLE api_tokens (
        id TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL REFERENCES tenants (id),
        name TEXT NOT NULL,
        token_hash BLOB NOT NULL UNIQUE,
        scopes TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER
    );
    CREATE TABLE operator_tokens (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        token_hash BLOB NOT NULL UNIQUE,
        created_at INTEGER NOT NULL
    );
",
    "
    CREATE TABLE control_keys (
        master_key_id TEXT PRIMARY KEY,
        wrapped BLOB NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE operators (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        status TEXT NOT NULL,
        sealed_secrets BLOB,
        enrolment_token_hash BLOB UNIQUE,
        enrolment_expires_at INTEGER,
        failed_logins INTEGER NOT NULL,
        last_failure_at INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE TABLE operator_sessions (
        token_hash BLOB PRIMARY KEY,
        operator_id TEXT NOT NULL REFERENCES operators (id),
        created_at INTEGER NOT NULL,
        last_seen_at INTEGER NOT NULL
    );
    CREATE TABLE support_grants (
        id TEXT PRIMARY KEY,
        operator_id TEXT NOT NULL REFERENCES operators (id),
        operator_name TEXT NOT NULL,
        tenant_id TEXT NOT NULL REFERENCES tenants (id),
        justification TEXT NOT NULL,
        scopes TEXT NOT NULL,
        token_hash BLOB NOT NULL UNIQUE,
        status TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        decided_by TEXT,
        decided_at INTEGER
    );
    CREATE INDEX support_grants_by_tenant ON support_grants (tenant_id, created_at);
",
];

pub struct SqliteControlStore {
    pub(super) database: SqliteDatabase,
}

impl SqliteControlStore {
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        Ok(Self {
            database: SqliteDatabase::open(path, MIGRATIONS)?,
        })
    }
}

const TENANT_COLUMNS: &str = "id, slug, name, region, status, created_at, status_changed_at";
const KEY_COLUMNS: &str =
    "tenant_id, purpose, version, master_key_id, wrapped, created_at, wrapped_at";
const TOKEN_COLUMNS: &str = "id, tenant_id, name, token_hash, scopes, created_at, expires_at";

fn tenant_from_row(row: &Row<'_>) -> rusqlite::Result<TenantRow> {
    let status: String = row.get(4)?;
    Ok(TenantRow {
        id: row.get(0)?,
        slug: row.get(1)?,
        name: row.get(2)?,
        region: row.get(3)?,
        status: TenantStatus::parse(&status).unwrap_or(TenantStatus::Suspended),
        created_at: row.get(5)?,
        status_changed_at: row.get(6)?,
    })
}

fn key_from_row(row: &Row<'_>) -> rusqlite::Result<WrappedKeyRow> {
    Ok(WrappedKeyRow {
        tenant_id: row.get(0)?,
        purpose: row.get(1)?,
        version: row.get::<_, i64>(2)? as u32,
        master_key_id: row.get(3)?,
        wrapped: row.get(4)?,
        created_at: row.get(5)?,
        wrapped_at: row.get(6)?,
    })
}

fn token_from_row(row: &Row<'_>) -> rusqlite::Result<ApiTokenRow> {
    Ok(ApiTokenRow {
        id: row.get(0)?,
        tenant_id: row.get(1)?,
        name: row.get(2)?,
        token_hash: row.get(3)?,
        scopes: row.get(4)?,
        created_at: row.get(5)?,
        expires_at: row.get(6)?,
    })
}

fn insert_keys(
    connection: &rusqlite::Connection,
    keys: &[WrappedKeyRow],
) -> Result<(), StorageError> {
    let mut insert = connection.prepare_cached(&format!(
        "INSERT INTO wrapped_keys ({KEY_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
    ))?;
    for key in keys {
        insert
            .execute(params![
                key.tenant_id,
                key.purpose,
                key.version,
                key.master_key_id,
                key.wrapped,
                key.created_at,
                key.wrapped_at
            ])
            .map_err(|error| match error.sqlite_error_code() {
                Some(rusqlite::ErrorCode::ConstraintViolation) => {
                    StorageError::Conflict("this key version exists")
                }
                _ => error.into(),
            })?;
    }
    Ok(())
}

impl ControlStore for SqliteControlStore {
    fn insert_tenant(
        &self,
        tenant: TenantRow,
        keys: Vec<WrappedKeyRow>,
    ) -> Result<(), StorageError> {
        self.database.write_and_wait(move |connection| {
            let taken: Option<i64> = connection
                .query_row(
                    "SELECT 1 FROM tenants WHERE slug = ?1 OR id = ?2",
                    params![tenant.slug, tenant.id],
                    |row| row.get(0),
                )
                .optional()?;
            if taken.is_some() {
                return Err(StorageError::Conflict("a tenant with this slug exists"));
            }
            connection.execute(
                &format!(
                    "INSERT INTO tenants ({TENANT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                ),
                params![
                    tenant.id,
                    tenant.slug,
                    tenant.name,
                    tenant.region,
                    tenant.status.as_str(),
                    tenant.created_at,
                    tenant.status_changed_at
                ],
            )?;
            insert_keys(connection, &keys)
        })
    }

    fn list_tenants(&self) -> Result<Vec<TenantRow>, StorageError> {
        self.database.read(|connection| {
            let mut statement = connection.prepare_cached(&format!(
                "SELECT {TENANT_COLUMNS} FROM tenants ORDER BY slug"
            ))?;
            Ok(statement
                .query_map([], tenant_from_row)?
                .collect::<Result<_, _>>()?)
        })
    }

    fn tenant_by_slug(&self, slug: &str) -> Result<Option<TenantRow>, StorageError> {
        self.database.read(|connection| {
            Ok(connection
                .prepare_cached(&format!(
                    "SELECT {TENANT_COLUMNS} FROM tenants WHERE slug = ?1"
                ))?
                .query_row([slug], tenant_from_row)
                .optional()?)
        })
    }

    fn tenant_by_id(&self, tenant_id: &str) -> Result<Option<TenantRow>, StorageError> {
        self.database.read(|connection| {
            Ok(connection
                .prepare_cached(&format!(
                    "SELECT {TENANT_COLUMNS} FROM tenants WHERE id = ?1"
                ))?
                .query_row([tenant_id], tenant_from_row)
                .optional()?)
        })
    }

    fn set_tenant_status(
        &self,
        tenant_id: &str,
        status: TenantStatus,
        changed_at: i64,
    ) -> Result<(), StorageError> {
        let tenant_id = tenant_id.to_owned();
        self.database.write_and_wait(move |connection| {
            let changed = connection.execute(
                "UPDATE tenants SET status = ?2, status_changed_at = ?3 WHERE id = ?1",
                params![tenant_id, status.as_str(), changed_at],
            )?;
            if changed == 0 {
                Err(StorageError::NotFound)
            } else {
                Ok(())
            }
        })
    }

    fn wrapped_keys(&self, tenant_id: &str) -> Result<Vec<WrappedKeyRow>, StorageError> {
        self.database.read(|connection| {
            let mut statement = connection.prepare_cached(&format!("SELECT {KEY_COLUMNS} FROM wrapped_keys WHERE tenant_id = ?1 ORDER BY purpose, version"))?;
            Ok(statement.query_map([tenant_id], key_from_row)?.collect::<Result<_, _>>()?)
        })
    }

    fn all_wrapped_keys(&self) -> Result<Vec<WrappedKeyRow>, StorageError> {
        self.database.read(|connection| {
            let mut statement = connection.prepare_cached(&format!(
                "SELECT {KEY_COLUMNS} FROM wrapped_keys ORDER BY tenant_id, purpose, version"
            ))?;
            Ok(statement
                .query_map([], key_from_row)?
                .collect::<Result<_, _>>()?)
        })
    }

    fn add_wrapped_keys(&self, keys: Vec<WrappedKeyRow>) -> Result<(), StorageError> {
        self.database
            .write_and_wait(move |connection| insert_keys(connection, &keys))
    }

    fn remove_wraps_except_master(&self, master_key_id: &str) -> Result<u64, StorageError> {
        let master_key_id = master_key_id.to_owned();
        self.database.write_and_wait(move |connection| {
            let keys = connection.execute(
                "DELETE FROM wrapped_keys WHERE master_key_id <> ?1",
                [&master_key_id],
            )?;
            let control_keys = connection.execute(
                "DELETE FROM control_keys WHERE master_key_id <> ?1",
                [&master_key_id],
            )?;
            Ok((keys + control_keys) as u64)
        })
    }

    fn insert_api_token(&self, token: ApiTokenRow) -> Result<(), StorageError> {
        self.database.write_and_wait(move |connection| {
            connection.execute(
                &format!(
                    "INSERT INTO api_tokens ({TOKEN_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                ),
                params![
                    token.id,
                    token.tenant_id,
                    token.name,
                    token.token_hash,
                    token.scopes,
                    token.created_at,
                    token.expires_at
                ],
            )?;
            Ok(())
        })
    }

    fn api_token_by_hash(&self, token_hash: &[u8]) -> Result<Option<ApiTokenRow>, StorageError> {
        self.database.read(|connection| {
            Ok(connection
                .prepare_cached(&format!(
                    "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE token_hash = ?1"
                ))?
                .query_row([token_hash], token_from_row)
                .optional()?)
        })
    }

    fn api_tokens(&self, tenant_id: &str) -> Result<Vec<ApiTokenRow>, StorageError> {
        self.database.read(|connection| {
            let mut statement = connection.prepare_cached(&format!(
                "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE tenant_id = ?1 ORDER BY created_at, rowid"
            ))?;
            let rows = statement.query_map([tenant_id], token_from_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn remove_api_token(&self, tenant_id: &str, token_id: &str) -> Result<bool, StorageError> {
        let (tenant_id, token_id) = (tenant_id.to_owned(), token_id.to_owned());
        self.database.write_and_wait(move |connection| {
            Ok(connection.execute(
                "DELETE FROM api_tokens WHERE tenant_id = ?1 AND id = ?2",
                [tenant_id, token_id],
            )? > 0)
        })
    }

    fn insert_operator_token(&self, token: OperatorTokenRow) -> Result<(), StorageError> {
        self.database.write_and_wait(move |connection| {
            connection.execute(
                "INSERT INTO operator_tokens (id, name, token_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![token.id, token.name, token.token_hash, token.created_at],
            )?;
            Ok(())
        })
    }

    fn operator_token_by_hash(
        &self,
        token_hash: &[u8],
    ) -> Result<Option<OperatorTokenRow>, StorageError> {
        self.database.read(|connection| {
            Ok(connection
                .prepare_cached("SELECT id, name, token_hash, created_at FROM operator_tokens WHERE token_hash = ?1")?
                .query_row([token_hash], |row| {
                    Ok(OperatorTokenRow { id: row.get(0)?, name: row.get(1)?, token_hash: row.get(2)?, created_at: row.get(3)? })
                })
                .optional()?)
        })
    }

    fn operator_token_count(&self) -> Result<u64, StorageError> {
        self.database.read(|connection| {
            Ok(
                connection.query_row("SELECT COUNT(*) FROM operator_tokens", [], |row| {
                    row.get::<_, i64>(0)
                })? as u64,
            )
        })
    }
}
