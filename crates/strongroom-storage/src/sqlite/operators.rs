//! The control database's operator tables: accounts, sessions, break-glass grants and the
//! wrapped control key.

use super::SqliteControlStore;
use crate::{
    ControlKeyRow, GrantStatus, OperatorRow, OperatorSessionRow, OperatorStatus, OperatorStore,
    StorageError, SupportGrantRow,
};
use rusqlite::{OptionalExtension, Row, params};

const OPERATOR_COLUMNS: &str = "id, name, status, sealed_secrets, enrolment_token_hash, \
    enrolment_expires_at, failed_logins, last_failure_at, created_at, updated_at";
const GRANT_COLUMNS: &str = "id, operator_id, operator_name, tenant_id, justification, scopes, \
    token_hash, status, created_at, expires_at, decided_by, decided_at";

fn operator_from_row(row: &Row<'_>) -> rusqlite::Result<OperatorRow> {
    let status: String = row.get(2)?;
    Ok(OperatorRow {
        id: row.get(0)?,
        name: row.get(1)?,
        // An unknown status reads as disabled: never more access than stored.
        status: OperatorStatus::parse(&status).unwrap_or(OperatorStatus::Disabled),
        sealed_secrets: row.get(3)?,
        enrolment_token_hash: row.get(4)?,
        enrolment_expires_at: row.get(5)?,
        failed_logins: row.get::<_, i64>(6)? as u32,
        last_failure_at: row.get(7)?,
        created_at: row.get(8)?,
        updated_at: row.get(9)?,
    })
}

fn grant_from_row(row: &Row<'_>) -> rusqlite::Result<SupportGrantRow> {
    let status: String = row.get(7)?;
    Ok(SupportGrantRow {
        id: row.get(0)?,
        operator_id: row.get(1)?,
        operator_name: row.get(2)?,
        tenant_id: row.get(3)?,
        justification: row.get(4)?,
        scopes: row.get(5)?,
        token_hash: row.get(6)?,
        // An unknown status reads as revoked: never more access than stored.
        status: GrantStatus::parse(&status).unwrap_or(GrantStatus::Revoked),
        created_at: row.get(8)?,
        expires_at: row.get(9)?,
        decided_by: row.get(10)?,
        decided_at: row.get(11)?,
    })
}

fn operator_params(operator: &OperatorRow) -> [rusqlite::types::Value; 10] {
    use rusqlite::types::Value;
    let optional_blob = |value: &Option<Vec<u8>>| value.clone().map_or(Value::Null, Value::Blob);
    [
        Value::Text(operator.id.clone()),
        Value::Text(operator.name.clone()),
        Value::Text(operator.status.as_str().to_owned()),
        optional_blob(&operator.sealed_secrets),
        optional_blob(&operator.enrolment_token_hash),
        operator
            .enrolment_expires_at
            .map_or(Value::Null, Value::Integer),
        Value::Integer(i64::from(operator.failed_logins)),
        Value::Integer(operator.last_failure_at),
        Value::Integer(operator.created_at),
        Value::Integer(operator.updated_at),
    ]
}

impl OperatorStore for SqliteControlStore {
    fn control_keys(&self) -> Result<Vec<ControlKeyRow>, StorageError> {
        self.database.read(|connection| {
            let mut statement = connection
                .prepare_cached("SELECT master_key_id, wrapped, created_at FROM control_keys")?;
            let rows = statement.query_map([], |row| {
                Ok(ControlKeyRow {
                    master_key_id: row.get(0)?,
                    wrapped: row.get(1)?,
                    created_at: row.get(2)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn add_control_key(&self, key: ControlKeyRow) -> Result<(), StorageError> {
        self.database.write_and_wait(move |connection| {
            connection.execute(
                "INSERT INTO control_keys (master_key_id, wrapped, created_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (master_key_id) DO NOTHING",
                params![key.master_key_id, key.wrapped, key.created_at],
            )?;
            Ok(())
        })
    }

    fn insert_operator(&self, operator: OperatorRow) -> Result<(), StorageError> {
        self.database.write_and_wait(move |connection| {
            connection
                .execute(
                    &format!(
                        "INSERT INTO operators ({OPERATOR_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
                    ),
                    rusqlite::params_from_iter(operator_params(&operator)),
                )
                .map_err(|error| match error.sqlite_error_code() {
                    Some(rusqlite::ErrorCode::ConstraintViolation) => {
                        StorageError::Conflict("an operator with this name exists")
                    }
                    _ => error.into(),
                })?;
            Ok(())
        })
    }

    fn update_operator(
        &self,
        operator: OperatorRow,
        expected_updated_at: i64,
        retire_tokens: bool,
    ) -> Result<(), StorageError> {
        self.database.write_and_wait(move |connection| {
            let was_active = connection
                .query_row(
                    "SELECT status = 'active' FROM operators WHERE id = ?1",
                    [&operator.id],
                    |row| row.get::<_, bool>(0),
                )
                .optional()?
                .unwrap_or(false);
            let mut values = operator_params(&operator).to_vec();
            values.push(rusqlite::types::Value::Integer(expected_updated_at));
            let changed = connection.execute(
                "UPDATE operators SET name = ?2, status = ?3, sealed_secrets = ?4,
                    enrolment_token_hash = ?5, enrolment_expires_at = ?6, failed_logins = ?7,
                    last_failure_at = ?8, created_at = ?9, updated_at = ?10
                 WHERE id = ?1 AND updated_at = ?11",
                rusqlite::params_from_iter(values),
            )?;
            if changed == 0 {
                let exists: Option<i64> = connection
                    .query_row(
                        "SELECT 1 FROM operators WHERE id = ?1",
                        [&operator.id],
                        |row| row.get(0),
                    )
                    .optional()?;
                return Err(match exists {
                    Some(_) => StorageError::Conflict("the operator changed meanwhile"),
                    None => StorageError::NotFound,
                });
            }
            // Checked here, in the write itself, so two operators disabling each other at once
            // cannot both succeed: the second finds the first already gone.
            if was_active && operator.status != OperatorStatus::Active {
                let still_active: i64 = connection.query_row(
                    "SELECT count(*) FROM operators WHERE status = 'active'",
                    [],
                    |row| row.get(0),
                )?;
                if still_active == 0 {
                    return Err(StorageError::Conflict("this is the last active operator"));
                }
            }
            if retire_tokens {
                connection.execute("DELETE FROM operator_tokens", [])?;
            }
            Ok(())
        })
    }

    fn operator(&self, operator_id: &str) -> Result<Option<OperatorRow>, StorageError> {
        self.database.read(|connection| {
            Ok(connection
                .prepare_cached(&format!(
                    "SELECT {OPERATOR_COLUMNS} FROM operators WHERE id = ?1"
                ))?
                .query_row([operator_id], operator_from_row)
                .optional()?)
        })
    }

    fn operator_by_name(&self, name: &str) -> Result<Option<OperatorRow>, StorageError> {
        self.database.read(|connection| {
            Ok(connection
                .prepare_cached(&format!(
                    "SELECT {OPERATOR_COLUMNS} FROM operators WHERE name = ?1"
                ))?
                .query_row([name], operator_from_row)
                .optional()?)
        })
    }

    fn operator_by_enrolment(
        &self,
        token_hash: &[u8],
    ) -> Result<Option<OperatorRow>, StorageError> {
        self.database.read(|connection| {
            Ok(connection
                .prepare_cached(&format!(
                    "SELECT {OPERATOR_COLUMNS} FROM operators WHERE enrolment_token_hash = ?1"
                ))?
                .query_row([token_hash], operator_from_row)
                .optional()?)
        })
    }

    fn list_operators(&self) -> Result<Vec<OperatorRow>, StorageError> {
        self.database.read(|connection| {
            let mut statement = connection.prepare_cached(&format!(
                "SELECT {OPERATOR_COLUMNS} FROM operators ORDER BY name"
            ))?;
            let rows = statement.query_map([], operator_from_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn insert_operator_session(&self, session: OperatorSessionRow) -> Result<(), StorageError> {
        self.database.write_and_wait(move |connection| {
            connection.execute(
                "INSERT INTO operator_sessions (token_hash, operator_id, created_at, last_seen_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![
                    session.token_hash,
                    session.operator_id,
                    session.created_at,
                    session.last_seen_at
                ],
            )?;
            Ok(())
        })
    }

    fn operator_session(
        &self,
        token_hash: &[u8],
    ) -> Result<Option<OperatorSessionRow>, StorageError> {
        self.database.read(|connection| {
            Ok(connection
                .prepare_cached(
                    "SELECT token_hash, operator_id, created_at, last_seen_at
                     FROM operator_sessions WHERE token_hash = ?1",
                )?
                .query_row([token_hash], |row| {
                    Ok(OperatorSessionRow {
                        token_hash: row.get(0)?,
                        operator_id: row.get(1)?,
                        created_at: row.get(2)?,
                        last_seen_at: row.get(3)?,
                    })
                })
                .optional()?)
        })
    }

    fn touch_operator_session(
        &self,
        token_hash: &[u8],
        last_seen_at: i64,
    ) -> Result<(), StorageError> {
        let token_hash = token_hash.to_vec();
        self.database.write_and_wait(move |connection| {
            connection.execute(
                "UPDATE operator_sessions SET last_seen_at = ?2 WHERE token_hash = ?1",
                params![token_hash, last_seen_at],
            )?;
            Ok(())
        })
    }

    fn end_operator_sessions(
        &self,
        operator_id: &str,
        token_hash: Option<&[u8]>,
    ) -> Result<u64, StorageError> {
        let (operator_id, token_hash) = (operator_id.to_owned(), token_hash.map(<[u8]>::to_vec));
        self.database.write_and_wait(move |connection| {
            let ended = match token_hash {
                Some(hash) => connection.execute(
                    "DELETE FROM operator_sessions WHERE operator_id = ?1 AND token_hash = ?2",
                    params![operator_id, hash],
                )?,
                None => connection.execute(
                    "DELETE FROM operator_sessions WHERE operator_id = ?1",
                    [operator_id],
                )?,
            };
            Ok(ended as u64)
        })
    }

    fn insert_support_grant(&self, grant: SupportGrantRow) -> Result<(), StorageError> {
        self.database.write_and_wait(move |connection| {
            connection.execute(
                &format!(
                    "INSERT INTO support_grants ({GRANT_COLUMNS})
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
                ),
                params![
                    grant.id,
                    grant.operator_id,
                    grant.operator_name,
                    grant.tenant_id,
                    grant.justification,
                    grant.scopes,
                    grant.token_hash,
                    grant.status.as_str(),
                    grant.created_at,
                    grant.expires_at,
                    grant.decided_by,
                    grant.decided_at
                ],
            )?;
            Ok(())
        })
    }

    fn support_grant(&self, grant_id: &str) -> Result<Option<SupportGrantRow>, StorageError> {
        self.database.read(|connection| {
            Ok(connection
                .prepare_cached(&format!(
                    "SELECT {GRANT_COLUMNS} FROM support_grants WHERE id = ?1"
                ))?
                .query_row([grant_id], grant_from_row)
                .optional()?)
        })
    }

    fn support_grant_by_token(
        &self,
        token_hash: &[u8],
    ) -> Result<Option<SupportGrantRow>, StorageError> {
        self.database.read(|connection| {
            Ok(connection
                .prepare_cached(&format!(
                    "SELECT {GRANT_COLUMNS} FROM support_grants WHERE token_hash = ?1"
                ))?
                .query_row([token_hash], grant_from_row)
                .optional()?)
        })
    }

    fn support_grants(
        &self,
        tenant_id: Option<&str>,
    ) -> Result<Vec<SupportGrantRow>, StorageError> {
        self.database.read(|connection| {
            let mut statement = connection.prepare_cached(&format!(
                "SELECT {GRANT_COLUMNS} FROM support_grants
                 WHERE ?1 IS NULL OR tenant_id = ?1 ORDER BY created_at DESC, rowid DESC"
            ))?;
            let rows = statement.query_map([tenant_id], grant_from_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn decide_support_grant(
        &self,
        grant_id: &str,
        from: &[GrantStatus],
        to: GrantStatus,
        decided_by: &str,
        decided_at: i64,
    ) -> Result<bool, StorageError> {
        let (grant_id, decided_by) = (grant_id.to_owned(), decided_by.to_owned());
        let from: Vec<&'static str> = from.iter().map(|status| status.as_str()).collect();
        self.database.write_and_wait(move |connection| {
            let current: Option<String> = connection
                .query_row(
                    "SELECT status FROM support_grants WHERE id = ?1",
                    [&grant_id],
                    |row| row.get(0),
                )
                .optional()?;
            match current {
                Some(status) if from.contains(&status.as_str()) => {
                    connection.execute(
                        "UPDATE support_grants SET status = ?2, decided_by = ?3, decided_at = ?4
                         WHERE id = ?1",
                        params![grant_id, to.as_str(), decided_by, decided_at],
                    )?;
                    Ok(true)
                }
                _ => Ok(false),
            }
        })
    }
}
