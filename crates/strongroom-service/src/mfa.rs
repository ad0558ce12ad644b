//! TOTP second factor: enrolment (otpauth URI and QR code), confirmation with a code (which
//! also hands out ten single-use recovery codes), and the second step of signing in. A code
//! is accepted one step either way, once, and at most three wrong codes count per step.

use crate::ServiceError;
use crate::journal::{JournalChange, sealer};
use crate::platform::Platform;
use crate::tenant_context::TenantContext;
use crate::tenants::TokenPrincipal;
use crate::users::{SignedIn, open_profile};
use serde::{Deserialize, Serialize};
use strongroom_crypto::{TOTP_STEP_SECONDS, TotpSecret, hash_token};
use strongroom_storage::{StoredChallenge, StoredMfa};

const RECOVERY_CODES: usize = 10;
const WRONG_CODES_PER_STEP_MAX: u32 = 3;
const CHALLENGE_LIFETIME_MICROS: i64 = 5 * 60 * 1_000_000;
const ISSUER: &str = "Strongroom";

/// The sealed second factor. Format version inside; do not change a shipped version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MfaState {
    pub format: u8,
    pub secret_hex: String,
    /// SHA-256 hashes (hex) of the unused recovery codes.
    pub recovery_hashes: Vec<String>,
}

/// What an authenticator app needs to enrol.
#[derive(Debug, Clone)]
pub struct TotpEnrolment {
    pub otpauth_uri: String,
    pub qr_svg: String,
}

fn mfa_context(tenant_id: &str, user_id: &str) -> Vec<u8> {
    format!("strongroom/user-mfa/v1\0{tenant_id}\0{user_id}").into_bytes()
}

fn seal_state(
    context: &TenantContext,
    user_id: &str,
    state: &MfaState,
) -> Result<Vec<u8>, ServiceError> {
    let plaintext = zeroize::Zeroizing::new(
        serde_json::to_vec(state).map_err(|error| ServiceError::Internal(error.to_string()))?,
    );
    Ok(context
        .keys
        .keyring
        .seal(&mfa_context(&context.tenant_id, user_id), &plaintext)?)
}

fn open_state(context: &TenantContext, mfa: &StoredMfa) -> Result<MfaState, ServiceError> {
    let integrity = || ServiceError::Integrity {
        what: format!("the second factor of user {}", mfa.user_id),
    };
    let plaintext = zeroize::Zeroizing::new(
        context
            .keys
            .keyring
            .open(&mfa_context(&context.tenant_id, &mfa.user_id), &mfa.sealed)
            .map_err(|_| integrity())?,
    );
    serde_json::from_slice(&plaintext).map_err(|_| integrity())
}

fn secret_of(state: &MfaState) -> Result<TotpSecret, ServiceError> {
    hex::decode(&state.secret_hex)
        .map(|bytes| TotpSecret::from_bytes(&bytes))
        .map_err(|_| ServiceError::Integrity {
            what: "a TOTP secret".into(),
        })
}

async fn store(
    context: &TenantContext,
    mfa: StoredMfa,
    state: MfaState,
) -> Result<(), ServiceError> {
    let change = JournalChange::UserMfa {
        user_id: mfa.user_id.clone(),
        confirmed: mfa.confirmed,
        last_step: mfa.last_step,
        state,
    };
    context
        .store
        .put_mfa(mfa, sealer(&context.tenant_id, &context.keys, change))
        .await?;
    Ok(())
}

/// Replays a journaled second factor onto the context's store.
pub(crate) async fn apply_mfa(
    context: &TenantContext,
    user_id: String,
    confirmed: bool,
    last_step: Option<i64>,
    state: MfaState,
) -> Result<(), ServiceError> {
    let mfa = StoredMfa {
        sealed: seal_state(context, &user_id, &state)?,
        user_id,
        confirmed,
        last_step,
    };
    store(context, mfa, state).await
}

fn recovery_code() -> Result<String, ServiceError> {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let random = strongroom_crypto::random_bytes_32()?;
    let code: String = random
        .iter()
        .take(16)
        .map(|byte| ALPHABET[*byte as usize % ALPHABET.len()] as char)
        .collect();
    Ok(format!(
        "{}-{}-{}-{}",
        &code[..4],
        &code[4..8],
        &code[8..12],
        &code[12..]
    ))
}

pub(crate) fn qr_svg(uri: &str) -> Result<String, ServiceError> {
    let code = qrcode::QrCode::new(uri.as_bytes())
        .map_err(|error| ServiceError::Internal(format!("QR code: {error}")))?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .build())
}

impl Platform {
    /// Starts TOTP enrolment for the signed-in user; it counts once confirmed with a code.
    pub async fn enrol_totp(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
    ) -> Result<TotpEnrolment, ServiceError> {
        let (runtime, session) = self.signed_in_user(principal, slug).await?;
        let context = TenantContext::of(&runtime);
        if context
            .store
            .mfa(&session.user_id)?
            .is_some_and(|mfa| mfa.confirmed)
        {
            return Err(ServiceError::Conflict(
                "a second factor is already enrolled".into(),
            ));
        }
        let user = context
            .store
            .user(&session.user_id)?
            .ok_or(ServiceError::Unauthenticated)?;
        let email = self.observe(&context, open_profile(&context, &user))?.email;
        let secret = TotpSecret::generate()?;
        let state = MfaState {
            format: 1,
            secret_hex: hex::encode(secret.expose_bytes()),
            recovery_hashes: Vec::new(),
        };
        let mfa = StoredMfa {
            user_id: user.id.clone(),
            sealed: seal_state(&context, &user.id, &state)?,
            confirmed: false,
            last_step: None,
        };
        store(&context, mfa, state).await?;
        self.sessions.invalidate();
        let otpauth_uri = secret.enrolment_uri(ISSUER, &email);
        Ok(TotpEnrolment {
            qr_svg: qr_svg(&otpauth_uri)?,
            otpauth_uri,
        })
    }

    /// Confirms enrolment with a current code; answers the recovery codes, shown once.
    pub async fn confirm_totp(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
        code: &str,
    ) -> Result<Vec<String>, ServiceError> {
        let (runtime, session) = self.signed_in_user(principal, slug).await?;
        let context = TenantContext::of(&runtime);
        let mfa = context
            .store
            .mfa(&session.user_id)?
            .filter(|mfa| !mfa.confirmed)
            .ok_or(ServiceError::NotFound("pending TOTP enrolment"))?;
        let mut state = self.observe(&context, open_state(&context, &mfa))?;
        let now_seconds = (self.clock.now().unix_micros() / 1_000_000).max(0) as u64;
        let step = secret_of(&state)?
            .matching_step(code.trim(), now_seconds)
            .ok_or(ServiceError::LoginFailed)?;
        let codes: Vec<String> = (0..RECOVERY_CODES)
            .map(|_| recovery_code())
            .collect::<Result<_, _>>()?;
        state.recovery_hashes = codes
            .iter()
            .map(|code| hex::encode(hash_token(code)))
            .collect();
        let confirmed = StoredMfa {
            sealed: seal_state(&context, &mfa.user_id, &state)?,
            confirmed: true,
            last_step: Some(step as i64),
            ..mfa
        };
        store(&context, confirmed, state).await?;
        self.sessions.invalidate();
        tracing::info!(tenant_id = %context.tenant_id, user_id = %session.user_id, "TOTP enrolled");
        Ok(codes)
    }

    pub(crate) async fn start_challenge(
        &self,
        context: &TenantContext,
        user_id: &str,
    ) -> Result<String, ServiceError> {
        let token = strongroom_crypto::generate_token("srm")?;
        let challenge = StoredChallenge {
            token_hash: hash_token(&token).to_vec(),
            user_id: user_id.to_owned(),
            created_at: self.clock.now().unix_micros(),
            failed_step: 0,
            failures: 0,
        };
        context.store.put_challenge(challenge).await?;
        Ok(token)
    }

    /// The second step of signing in: a TOTP code or an unused recovery code. `name_the_user`
    /// hears the e-mail of the user the challenge belongs to once it is known, so the audit
    /// trail names who tried, failed attempts too.
    pub async fn complete_sign_in(
        &self,
        slug: &str,
        mfa_token: &str,
        code: Option<&str>,
        recovery_code: Option<&str>,
        name_the_user: impl FnOnce(&str),
    ) -> Result<SignedIn, ServiceError> {
        let runtime = self
            .tenant(slug)
            .await
            .map_err(|_| ServiceError::LoginFailed)?;
        let context = TenantContext::of(&runtime);
        let token_hash = hash_token(mfa_token).to_vec();
        let now = self.clock.now().unix_micros();
        let challenge = context
            .store
            .challenge(&token_hash)?
            .filter(|challenge| now - challenge.created_at <= CHALLENGE_LIFETIME_MICROS)
            .ok_or(ServiceError::LoginFailed)?;
        let user = context
            .store
            .user(&challenge.user_id)?
            .filter(|user| !user.disabled)
            .ok_or(ServiceError::LoginFailed)?;
        name_the_user(&self.observe(&context, open_profile(&context, &user))?.email);
        self.check_account_throttle(&context, &user)?;
        let mfa = context
            .store
            .mfa(&user.id)?
            .filter(|mfa| mfa.confirmed)
            .ok_or(ServiceError::LoginFailed)?;
        let mut state = self.observe(&context, open_state(&context, &mfa))?;
        let now_step = ((now / 1_000_000).max(0) as u64 / TOTP_STEP_SECONDS) as i64;
        let accepted = match (code, recovery_code) {
            (Some(code), _) => {
                if challenge.failed_step == now_step
                    && challenge.failures >= WRONG_CODES_PER_STEP_MAX
                {
                    return Err(ServiceError::Conflict(
                        "too many wrong codes for this time step; wait for the next code".into(),
                    ));
                }
                let step = secret_of(&state)?
                    .matching_step(code.trim(), (now / 1_000_000).max(0) as u64)
                    .map(|step| step as i64);
                step.filter(|step| mfa.last_step.is_none_or(|last| *step > last))
                    .map(|step| StoredMfa {
                        last_step: Some(step),
                        ..mfa.clone()
                    })
            }
            (None, Some(recovery)) => {
                let hash = hex::encode(hash_token(recovery.trim()));
                let before = state.recovery_hashes.len();
                state.recovery_hashes.retain(|stored| *stored != hash);
                (state.recovery_hashes.len() < before).then(|| StoredMfa {
                    sealed: Vec::new(),
                    ..mfa.clone()
                })
            }
            (None, None) => {
                return Err(ServiceError::Invalid(
                    strongroom_domain::DomainError::InvalidField {
                        field: "code".into(),
                        reason: "send code or recovery_code".into(),
                    },
                ));
            }
        };
        let Some(mut updated) = accepted else {
            let failures = if challenge.failed_step == now_step {
                challenge.failures + 1
            } else {
                1
            };
            context
                .store
                .put_challenge(StoredChallenge {
                    failed_step: now_step,
                    failures,
                    ..challenge
                })
                .await?;
            self.security.raise(
                crate::SecurityEventKind::SecondFactorFailed,
                Some(&context.tenant_id),
                &format!("a wrong second-factor code for user {}", user.id),
            );
            // Counted against the account, which a fresh challenge does not reset: guessing
            // codes meets the same delays and lock as guessing passwords.
            self.count_failed_second_factor(&context, &user).await?;
            return Err(ServiceError::LoginFailed);
        };
        updated.sealed = seal_state(&context, &user.id, &state)?;
        store(&context, updated, state).await?;
        self.sessions.invalidate();
        context.store.remove_challenge(&token_hash).await?;
        self.start_session(&context, &user).await
    }

    /// A locked user's own way back in (A8): the password and one recovery code together
    /// prove both factors, which someone who locked the account by guessing passwords does
    /// not hold. The lock is lifted, the code used up, and a session opens. Users without a
    /// second factor ask an admin (or sign in through single sign-on).
    pub async fn recover_account(
        &self,
        slug: &str,
        email: &str,
        password: &str,
        recovery_code: &str,
        client_address: Option<std::net::IpAddr>,
    ) -> Result<SignedIn, ServiceError> {
        let now_seconds = self.clock.now().unix_micros() / 1_000_000;
        if let Some(wait) = client_address
            .and_then(|address| self.address_throttle.blocked_for(address, now_seconds))
        {
            return Err(ServiceError::TooManyAttempts {
                retry_after_seconds: wait,
            });
        }
        let runtime = self
            .tenant(slug)
            .await
            .map_err(|_| ServiceError::LoginFailed)?;
        if runtime.is_suspended() {
            return Err(ServiceError::TenantSuspended(runtime.slug.clone()));
        }
        let context = TenantContext::of(&runtime);
        if self
            .observe(&context, crate::security_policy::load(&context))?
            .sso_required
        {
            return Err(ServiceError::SsoRequired);
        }
        let user = match crate::users::normalize_email(email) {
            Ok(email) => context
                .store
                .user_by_email(&crate::users::email_index(&context, &email))?,
            Err(_) => None,
        };
        let verified = self
            .verify_password_of(&context, user.as_ref(), password)
            .await?;
        let mfa = match (&user, verified) {
            (Some(user), true) => context.store.mfa(&user.id)?.filter(|mfa| mfa.confirmed),
            _ => None,
        };
        let recovered = match (&user, mfa) {
            (Some(user), Some(mfa)) if !user.disabled => {
                let mut state = self.observe(&context, open_state(&context, &mfa))?;
                let hash = hex::encode(hash_token(recovery_code.trim()));
                let before = state.recovery_hashes.len();
                state.recovery_hashes.retain(|stored| *stored != hash);
                (state.recovery_hashes.len() < before).then_some((mfa, state))
            }
            _ => None,
        };
        let (Some(user), Some((mfa, state))) = (user.clone(), recovered) else {
            self.count_failed_sign_in(&context, user.as_ref(), client_address, now_seconds)
                .await?;
            return Err(ServiceError::LoginFailed);
        };
        let updated = StoredMfa {
            sealed: seal_state(&context, &user.id, &state)?,
            ..mfa
        };
        store(&context, updated, state).await?;
        self.security.raise(
            crate::SecurityEventKind::AccountRecovered,
            Some(&context.tenant_id),
            &format!(
                "user {} recovered their account with a recovery code",
                user.id
            ),
        );
        // Opening the session clears the failure count, and with it the lock.
        self.start_session(&context, &user).await
    }
}
