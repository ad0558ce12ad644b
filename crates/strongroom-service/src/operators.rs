//! Operators (A7): a realm of their own, apart from every tenant's users. An operator account
//! is created by another operator as an invitation; its owner sets a password and enrols TOTP
//! with the one-time enrolment token, so the inviting operator never sees either. Signing in
//! always takes password and code. The first enrolled operator retires the bootstrap token.
//! Operators manage tenants but reach no tenant data (see `support_access.rs`).

use crate::platform::{Platform, blocking};
use crate::tenants::OperatorPrincipal;
use crate::users::invalid;
use crate::{SecurityEventKind, ServiceError, Timestamp};
use serde::{Deserialize, Serialize};
use strongroom_crypto::{DataKey, Keyring, MasterKey, TotpSecret, WrappedKeyPurpose, hash_token};
use strongroom_domain::brute_force::{ACCOUNT_LOCK_AFTER, account_delay_seconds};
use strongroom_storage::{
    ControlKeyRow, ControlStore, OperatorRow, OperatorSessionRow, OperatorStatus,
};

/// The control key's tenant id in its wrap's associated data.
const CONTROL_KEY_OWNER: &str = "control-plane";
const ENROLMENT_LIFETIME_MICROS: i64 = 24 * 3600 * 1_000_000;
const SESSION_IDLE_MICROS: i64 = 30 * 60 * 1_000_000;
const SESSION_ABSOLUTE_MICROS: i64 = 8 * 3600 * 1_000_000;
const SESSION_TOUCH_MICROS: i64 = 60 * 1_000_000;
const PASSWORD_LENGTH_MIN: usize = 12;
const PASSWORD_LENGTH_MAX: usize = 256;
const TOTP_ISSUER: &str = "Strongroom operators";

/// Opens the control key wrapped by `master`, creating it on a first start.
pub(crate) fn open_control_key(
    control: &dyn ControlStore,
    master: &MasterKey,
    now: i64,
) -> Result<Keyring, ServiceError> {
    let rows = control.control_keys()?;
    let key = match rows.iter().find(|row| row.master_key_id == master.key_id()) {
        Some(row) => master
            .unwrap(
                &row.wrapped,
                CONTROL_KEY_OWNER,
                WrappedKeyPurpose::Control,
                1,
            )
            .map_err(|_| ServiceError::Integrity {
                what: "the wrapped control key".into(),
            })?,
        None if rows.is_empty() => {
            let key = DataKey::generate()?;
            let row = ControlKeyRow {
                master_key_id: master.key_id(),
                wrapped: master.wrap(&key, CONTROL_KEY_OWNER, WrappedKeyPurpose::Control, 1)?,
                created_at: now,
            };
            // The platform opens before it serves, possibly on an async worker: the one write
            // of a first start waits for its commit on a thread of its own.
            std::thread::scope(|scope| scope.spawn(|| control.add_control_key(row)).join())
                .map_err(|_| ServiceError::Internal("storing the control key panicked".into()))??;
            key
        }
        None => {
            return Err(ServiceError::Integrity {
                what: "the control key (it is not wrapped by this master key)".into(),
            });
        }
    };
    Keyring::new([(1, key)]).ok_or_else(|| ServiceError::Internal("control keyring".into()))
}

/// Adds a wrap of the control key under the new master key (master-key rotation, step 2).
pub(crate) fn rewrap_control_key(
    control: &dyn ControlStore,
    old: &MasterKey,
    new: &MasterKey,
    now: i64,
) -> Result<(), ServiceError> {
    for row in control
        .control_keys()?
        .into_iter()
        .filter(|row| row.master_key_id == old.key_id())
    {
        let key = old.unwrap(
            &row.wrapped,
            CONTROL_KEY_OWNER,
            WrappedKeyPurpose::Control,
            1,
        )?;
        control.add_control_key(ControlKeyRow {
            master_key_id: new.key_id(),
            wrapped: new.wrap(&key, CONTROL_KEY_OWNER, WrappedKeyPurpose::Control, 1)?,
            created_at: now,
        })?;
    }
    Ok(())
}

/// Removes the retired bootstrap token's file, if it is still there.
pub(crate) fn remove_bootstrap_file(path: &std::path::Path) {
    match std::fs::remove_file(path) {
        Ok(()) => {
            tracing::info!(path = %path.display(), "removed the retired bootstrap token file")
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "cannot remove the retired bootstrap token file")
        }
    }
}

/// Moves a row's `updated_at` strictly forward (the version conditional updates compare) and
/// returns the value it had.
fn stamp(row: &mut OperatorRow, now: i64) -> i64 {
    let expected = row.updated_at;
    row.updated_at = now.max(expected + 1);
    expected
}

/// A conditional update that lost: the sign-in or enrolment step is refused, not retried.
fn changed_meanwhile(error: ServiceError) -> ServiceError {
    match error {
        ServiceError::Conflict(_) => ServiceError::LoginFailed,
        other => other,
    }
}

/// An operator's sealed secrets. Format version inside; do not change a shipped version.
#[derive(Serialize, Deserialize)]
struct OperatorSecrets {
    format: u8,
    password_hash: String,
    totp_secret_hex: String,
    /// The last accepted TOTP step: a code is accepted once.
    last_step: Option<u64>,
}

/// An operator account as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorView {
    pub id: String,
    pub name: String,
    pub status: String,
    pub locked: bool,
    pub created_at: Timestamp,
}

/// A new invitation: the enrolment token goes to the new operator, once.
#[derive(Clone)]
pub struct CreatedOperator {
    pub operator: OperatorView,
    pub enrolment_token: String,
    pub enrolment_expires_at: Timestamp,
}

/// A signed-in operator.
#[derive(Clone)]
pub struct OperatorSignedIn {
    pub session_token: String,
    pub operator: OperatorView,
}

// Debug without the bearer secrets, so no `{:?}` can carry them into a log.
impl std::fmt::Debug for CreatedOperator {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("CreatedOperator")
            .field("operator", &self.operator)
            .field("enrolment_expires_at", &self.enrolment_expires_at)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for OperatorSignedIn {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("OperatorSignedIn")
            .field("operator", &self.operator)
            .finish_non_exhaustive()
    }
}

fn view(row: &OperatorRow) -> OperatorView {
    OperatorView {
        id: row.id.clone(),
        name: row.name.clone(),
        status: row.status.as_str().to_owned(),
        locked: row.failed_logins >= ACCOUNT_LOCK_AFTER,
        created_at: Timestamp::from_unix_micros(row.created_at),
    }
}

fn secrets_context(operator_id: &str) -> Vec<u8> {
    format!("strongroom/operator-secrets/v1\0{operator_id}").into_bytes()
}

/// Operator names: 2 to 40 characters a-z, 0-9, '.', '-' and '_', starting with a letter.
pub(crate) fn check_name(name: &str) -> Result<(), ServiceError> {
    let valid = (2..=40).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        && name != "enrol";
    if valid {
        Ok(())
    } else {
        Err(invalid(
            "name",
            "use 2 to 40 characters a-z, 0-9, '.', '-' and '_', starting with a letter (not \"enrol\")".into(),
        ))
    }
}

fn check_password(password: &str) -> Result<(), ServiceError> {
    let length = password.chars().count();
    if !(PASSWORD_LENGTH_MIN..=PASSWORD_LENGTH_MAX).contains(&length) {
        return Err(invalid(
            "password",
            format!("use {PASSWORD_LENGTH_MIN} to {PASSWORD_LENGTH_MAX} characters"),
        ));
    }
    if crate::common_passwords::is_common(password) {
        return Err(invalid(
            "password",
            "this password is on the list of common or breached passwords".into(),
        ));
    }
    Ok(())
}

impl Platform {
    fn seal_secrets(
        &self,
        operator_id: &str,
        secrets: &OperatorSecrets,
    ) -> Result<Vec<u8>, ServiceError> {
        let plaintext = zeroize::Zeroizing::new(
            serde_json::to_vec(secrets)
                .map_err(|error| ServiceError::Internal(error.to_string()))?,
        );
        Ok(self
            .control_keyring
            .seal(&secrets_context(operator_id), &plaintext)?)
    }

    fn open_secrets(&self, row: &OperatorRow) -> Result<OperatorSecrets, ServiceError> {
        let integrity = || ServiceError::Integrity {
            what: format!("the secrets of operator {}", row.name),
        };
        let sealed = row.sealed_secrets.as_ref().ok_or_else(integrity)?;
        let plaintext = zeroize::Zeroizing::new(
            self.control_keyring
                .open(&secrets_context(&row.id), sealed)
                .map_err(|_| integrity())?,
        );
        serde_json::from_slice(&plaintext).map_err(|_| integrity())
    }

    async fn control_call<T: Send + 'static>(
        &self,
        work: impl FnOnce(&dyn ControlStore) -> Result<T, ServiceError> + Send + 'static,
    ) -> Result<T, ServiceError> {
        let control = self.control.clone();
        blocking(move || work(control.as_ref())).await
    }

    /// Invites an operator: the answer's enrolment token (valid 24 hours) lets its owner set a
    /// password and enrol TOTP.
    pub async fn create_operator(
        &self,
        caller: &OperatorPrincipal,
        name: &str,
    ) -> Result<CreatedOperator, ServiceError> {
        check_name(name)?;
        let token = strongroom_crypto::generate_token("sre")?;
        let now = self.clock.now().unix_micros();
        let row = OperatorRow {
            id: strongroom_crypto::random_hex_id()?,
            name: name.to_owned(),
            status: OperatorStatus::Invited,
            sealed_secrets: None,
            enrolment_token_hash: Some(hash_token(&token).to_vec()),
            enrolment_expires_at: Some(now + ENROLMENT_LIFETIME_MICROS),
            failed_logins: 0,
            last_failure_at: 0,
            created_at: now,
            updated_at: now,
        };
        let stored = row.clone();
        self.control_call(move |control| Ok(control.insert_operator(stored)?))
            .await
            .map_err(|error| match error {
                ServiceError::Conflict(_) => {
                    ServiceError::Conflict("an operator with this name exists".into())
                }
                other => other,
            })?;
        tracing::info!(operator = %caller.name, invited = %row.name, "operator invited");
        Ok(CreatedOperator {
            operator: view(&row),
            enrolment_token: token,
            enrolment_expires_at: Timestamp::from_unix_micros(now + ENROLMENT_LIFETIME_MICROS),
        })
    }

    pub async fn list_operators(&self) -> Result<Vec<OperatorView>, ServiceError> {
        let rows = self
            .control_call(|control| Ok(control.list_operators()?))
            .await?;
        Ok(rows.iter().map(view).collect())
    }

    /// The invited operator behind an enrolment token that is still valid.
    async fn invitation(&self, enrolment_token: &str) -> Result<OperatorRow, ServiceError> {
        let hash = hash_token(enrolment_token).to_vec();
        let now = self.clock.now().unix_micros();
        self.control_call(move |control| Ok(control.operator_by_enrolment(&hash)?))
            .await?
            .filter(|row| {
                row.status == OperatorStatus::Invited
                    && row.enrolment_expires_at.is_some_and(|expiry| now < expiry)
            })
            .ok_or_else(|| {
                ServiceError::InvalidCredential(
                    "this enrolment token is unknown, used or expired: ask an operator for a new invitation".into(),
                )
            })
    }

    /// Step one of enrolment: the new operator's password, answered with the TOTP secret to
    /// enrol in an authenticator app. Repeating it starts over with a new secret.
    pub async fn start_operator_enrolment(
        &self,
        enrolment_token: &str,
        password: &str,
    ) -> Result<crate::TotpEnrolment, ServiceError> {
        check_password(password)?;
        let mut row = self.invitation(enrolment_token).await?;
        let hashing = self.options.password_hashing;
        let to_hash = zeroize::Zeroizing::new(password.to_owned());
        let slot = self.hashing_slot().await?;
        let password_hash = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            hashing.hash(&to_hash)
        })
        .await
        .map_err(|error| ServiceError::Internal(error.to_string()))??;
        let secret = TotpSecret::generate()?;
        let secrets = OperatorSecrets {
            format: 1,
            password_hash,
            totp_secret_hex: hex::encode(secret.expose_bytes()),
            last_step: None,
        };
        row.sealed_secrets = Some(self.seal_secrets(&row.id, &secrets)?);
        let expected = stamp(&mut row, self.clock.now().unix_micros());
        let name = row.name.clone();
        self.control_call(move |control| Ok(control.update_operator(row, expected, false)?))
            .await?;
        let otpauth_uri = secret.enrolment_uri(TOTP_ISSUER, &name);
        Ok(crate::TotpEnrolment {
            qr_svg: crate::mfa::qr_svg(&otpauth_uri)?,
            otpauth_uri,
        })
    }

    /// Step two: a current code proves the authenticator works. The account becomes active,
    /// the bootstrap token stops working, and the operator is signed in.
    pub async fn confirm_operator_enrolment(
        &self,
        enrolment_token: &str,
        code: &str,
    ) -> Result<OperatorSignedIn, ServiceError> {
        let mut row = self.invitation(enrolment_token).await?;
        if row.sealed_secrets.is_none() {
            return Err(ServiceError::Conflict(
                "set a password first (POST /admin/v1/operators/enrol)".into(),
            ));
        }
        let mut secrets = self.open_secrets(&row)?;
        let step = self
            .totp_step(&secrets, code)?
            .ok_or(ServiceError::LoginFailed)?;
        secrets.last_step = Some(step);
        row.sealed_secrets = Some(self.seal_secrets(&row.id, &secrets)?);
        row.status = OperatorStatus::Active;
        row.enrolment_token_hash = None;
        row.enrolment_expires_at = None;
        let expected = stamp(&mut row, self.clock.now().unix_micros());
        let stored = row.clone();
        // Conditional on the row read above: of two confirmations racing, one wins.
        self.control_call(move |control| Ok(control.update_operator(stored, expected, true)?))
            .await
            .map_err(changed_meanwhile)?;
        tracing::info!(operator = %row.name, "operator enrolled; the bootstrap token is retired");
        if let Some(path) = self.bootstrap_token_file.get() {
            remove_bootstrap_file(path);
        }
        self.start_operator_session(&row).await
    }

    fn totp_step(
        &self,
        secrets: &OperatorSecrets,
        code: &str,
    ) -> Result<Option<u64>, ServiceError> {
        let secret = hex::decode(&secrets.totp_secret_hex)
            .map(|bytes| TotpSecret::from_bytes(&bytes))
            .map_err(|_| ServiceError::Integrity {
                what: "an operator's TOTP secret".into(),
            })?;
        let now_seconds = (self.clock.now().unix_micros() / 1_000_000).max(0) as u64;
        Ok(secret
            .matching_step(code.trim(), now_seconds)
            .filter(|step| secrets.last_step.is_none_or(|last| *step > last)))
    }

    async fn start_operator_session(
        &self,
        row: &OperatorRow,
    ) -> Result<OperatorSignedIn, ServiceError> {
        let token = strongroom_crypto::generate_token("sra")?;
        let now = self.clock.now().unix_micros();
        let session = OperatorSessionRow {
            token_hash: hash_token(&token).to_vec(),
            operator_id: row.id.clone(),
            created_at: now,
            last_seen_at: now,
        };
        self.control_call(move |control| Ok(control.insert_operator_session(session)?))
            .await?;
        Ok(OperatorSignedIn {
            session_token: token,
            operator: view(row),
        })
    }

    /// Name, password and a TOTP code, all three every time. Failures slow down and then lock
    /// the account like a user's, and count against the source address.
    pub async fn operator_login(
        &self,
        name: &str,
        password: &str,
        code: &str,
        client_address: Option<std::net::IpAddr>,
    ) -> Result<OperatorSignedIn, ServiceError> {
        let now = self.clock.now().unix_micros();
        let now_seconds = now / 1_000_000;
        if let Some(wait) = client_address
            .and_then(|address| self.address_throttle.blocked_for(address, now_seconds))
        {
            return Err(ServiceError::TooManyAttempts {
                retry_after_seconds: wait,
            });
        }
        let lookup = name.to_owned();
        let row = self
            .control_call(move |control| Ok(control.operator_by_name(&lookup)?))
            .await?
            .filter(|row| row.status == OperatorStatus::Active);
        if let Some(row) = &row {
            if row.failed_logins >= ACCOUNT_LOCK_AFTER {
                return Err(ServiceError::AccountLocked);
            }
            let ready_at =
                row.last_failure_at / 1_000_000 + account_delay_seconds(row.failed_logins);
            if row.failed_logins > 0 && now_seconds < ready_at {
                return Err(ServiceError::TooManyAttempts {
                    retry_after_seconds: ready_at - now_seconds,
                });
            }
        }
        let secrets = row.as_ref().map(|row| self.open_secrets(row)).transpose()?;
        let hashing = self.options.password_hashing;
        let known = secrets
            .as_ref()
            .map(|secrets| secrets.password_hash.clone());
        let candidate = zeroize::Zeroizing::new(password.to_owned());
        let slot = self.hashing_slot().await?;
        let password_ok = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            match known {
                Some(hash) => hashing.verify(&candidate, &hash),
                None => {
                    let _ = hashing.hash(&candidate); // the same cost for unknown names
                    false
                }
            }
        })
        .await
        .map_err(|error| ServiceError::Internal(error.to_string()))?;
        let step = match (&secrets, password_ok) {
            (Some(secrets), true) => self.totp_step(secrets, code)?,
            _ => None,
        };
        let (Some(mut row), Some(mut secrets), Some(step)) = (row, secrets, step) else {
            self.count_failed_operator_login(name, client_address, now)
                .await?;
            return Err(ServiceError::LoginFailed);
        };
        secrets.last_step = Some(step);
        row.sealed_secrets = Some(self.seal_secrets(&row.id, &secrets)?);
        row.failed_logins = 0;
        let expected = stamp(&mut row, now);
        let stored = row.clone();
        // Conditional on the row read before hashing: a disable or another sign-in with the
        // same code in between wins, and this sign-in fails.
        self.control_call(move |control| Ok(control.update_operator(stored, expected, false)?))
            .await
            .map_err(changed_meanwhile)?;
        tracing::info!(operator = %row.name, "operator signed in");
        self.start_operator_session(&row).await
    }

    async fn count_failed_operator_login(
        &self,
        name: &str,
        client_address: Option<std::net::IpAddr>,
        now: i64,
    ) -> Result<(), ServiceError> {
        let lookup = name.to_owned();
        let locked = self
            .control_call(move |control| {
                let Some(mut row) = control.operator_by_name(&lookup)? else {
                    return Ok(None);
                };
                row.failed_logins = row.failed_logins.saturating_add(1);
                row.last_failure_at = now;
                let locked = row.failed_logins == ACCOUNT_LOCK_AFTER;
                let name = row.name.clone();
                let expected = stamp(&mut row, now);
                // A concurrent change wins; this failure then goes uncounted, which at worst
                // spares one attempt of a burst that the address throttle also sees.
                match control.update_operator(row, expected, false) {
                    Ok(()) => Ok(locked.then_some(name)),
                    Err(strongroom_storage::StorageError::Conflict(_)) => Ok(None),
                    Err(error) => Err(error.into()),
                }
            })
            .await?;
        if let Some(name) = locked {
            self.security.raise(
                SecurityEventKind::AccountLocked,
                None,
                &format!("operator {name} locked after {ACCOUNT_LOCK_AFTER} failed sign-ins"),
            );
        }
        if let Some(address) = client_address
            && self
                .address_throttle
                .record_failure(address, now / 1_000_000)
        {
            self.security.raise(
                SecurityEventKind::AddressBlocked,
                None,
                &format!("address {address} blocked after failed operator sign-ins"),
            );
        }
        Ok(())
    }

    /// The operator behind an `sra_` session token.
    pub(crate) async fn authenticate_operator_session(
        &self,
        token: &str,
    ) -> Result<OperatorPrincipal, ServiceError> {
        let hash = hash_token(token).to_vec();
        let now = self.clock.now().unix_micros();
        let found = self
            .control_call(move |control| {
                let Some(session) = control.operator_session(&hash)? else {
                    return Ok(None);
                };
                if operator_session_ended(&session, now) {
                    control.end_operator_sessions(&session.operator_id, Some(&hash))?;
                    return Ok(None);
                }
                let operator = control
                    .operator(&session.operator_id)?
                    .filter(|row| row.status == OperatorStatus::Active);
                if operator.is_some() && now - session.last_seen_at > SESSION_TOUCH_MICROS {
                    control.touch_operator_session(&hash, now)?;
                }
                Ok(operator.map(|operator| (operator, session)))
            })
            .await?;
        let (operator, session) = found.ok_or(ServiceError::Unauthenticated)?;
        Ok(OperatorPrincipal {
            credential_id: hex::encode(&session.token_hash[..8]),
            name: operator.name,
            operator_id: Some(operator.id),
            session_hash: Some(session.token_hash),
        })
    }

    pub async fn operator_logout(&self, caller: &OperatorPrincipal) -> Result<(), ServiceError> {
        let (Some(operator_id), Some(hash)) =
            (caller.operator_id.clone(), caller.session_hash.clone())
        else {
            return Err(ServiceError::Conflict(
                "the bootstrap token is not a session; it ends when an operator enrols".into(),
            ));
        };
        self.control_call(move |control| {
            Ok(control.end_operator_sessions(&operator_id, Some(&hash))?)
        })
        .await?;
        Ok(())
    }

    /// Disables or re-enables (and unlocks) another operator; disabling ends their sessions.
    pub async fn set_operator_disabled(
        &self,
        caller: &OperatorPrincipal,
        name: &str,
        disabled: bool,
    ) -> Result<OperatorView, ServiceError> {
        if caller.name == name {
            return Err(ServiceError::Conflict(
                "operators do not change their own account; ask another operator".into(),
            ));
        }
        let lookup = name.to_owned();
        let disabling = caller.name.clone();
        let now = self.clock.now().unix_micros();
        let row = self
            .control_call(move |control| {
                let mut row = control
                    .operator_by_name(&lookup)?
                    .ok_or(ServiceError::NotFound("operator"))?;
                if row.status == OperatorStatus::Invited && !disabled {
                    return Err(ServiceError::Conflict(
                        "this operator has not enrolled yet".into(),
                    ));
                }
                if !disabled && row.sealed_secrets.is_none() {
                    return Err(ServiceError::Conflict(
                        "this invitation was cancelled; invite the operator again under another name"
                            .into(),
                    ));
                }
                if row.status == OperatorStatus::Invited {
                    // Disabling an invitation cancels it: its enrolment token stops working.
                    row.enrolment_token_hash = None;
                    row.enrolment_expires_at = None;
                    row.sealed_secrets = None;
                } else if disabled {
                    let active = control
                        .list_operators()?
                        .iter()
                        .filter(|other| {
                            other.status == OperatorStatus::Active && other.id != row.id
                        })
                        .count();
                    if active == 0 {
                        return Err(ServiceError::Conflict(
                            "this is the last active operator".into(),
                        ));
                    }
                }
                row.status = if disabled {
                    OperatorStatus::Disabled
                } else {
                    OperatorStatus::Active
                };
                row.failed_logins = 0;
                let expected = stamp(&mut row, now);
                control.update_operator(row.clone(), expected, false)?;
                if disabled {
                    control.end_operator_sessions(&row.id, None)?;
                    Platform::revoke_grants_of(control, &row.id, &format!("operator {} (account disabled)", disabling), now)?;
                }
                Ok(row)
            })
            .await?;
        tracing::info!(operator = %caller.name, target = %row.name, disabled, "operator account changed");
        Ok(view(&row))
    }
}

/// Whether an operator session is past its idle (30 minutes) or absolute (8 hours) limit.
pub(crate) fn operator_session_ended(session: &OperatorSessionRow, now: i64) -> bool {
    now - session.last_seen_at > SESSION_IDLE_MICROS
        || now - session.created_at > SESSION_ABSOLUTE_MICROS
}
