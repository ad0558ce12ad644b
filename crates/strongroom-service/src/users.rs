//! Users of a tenant: created by an operator (the first owner) or by admins, signing in with
//! email and password for a session, changing their password under the tenant's policy.

use crate::journal::{JournalChange, sealer};
use crate::platform::Platform;
use crate::sealing::TenantRuntime;
use crate::tenant_context::TenantContext;
use crate::tenants::{SessionUser, TokenPrincipal};
use crate::{SecurityEventKind, ServiceError, Timestamp};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use strongroom_crypto::hash_token;
use strongroom_domain::{BuiltinRole, DomainError, Grant, GrantLimit, PasswordContext, Permission};
use strongroom_storage::{SessionSelection, StorageError, StoredSession, StoredUser};

/// Sessions end after this long without use, and after this long in any case.
const SESSION_IDLE_MICROS: i64 = 30 * 60 * 1_000_000;
const SESSION_ABSOLUTE_MICROS: i64 = 12 * 3600 * 1_000_000;
/// Last-seen times are written at most this often, so reads do not all become writes.
const SESSION_TOUCH_MICROS: i64 = 60 * 1_000_000;
const EMAIL_LENGTH_MAX: usize = 254;
const NAME_LENGTH_MAX: usize = 200;
/// The few most common passwords, refused by every policy that rejects common passwords. The
/// shipped 100,000-entry list is still to come (identity issue).
const COMMON_PASSWORDS: &[&str] = &[
    "123456",
    "password",
    "12345678",
    "qwerty",
    "123456789",
    "12345",
    "1234",
    "111111",
    "1234567",
    "dragon",
    "123123",
    "baseball",
    "abc123",
    "football",
    "monkey",
    "letmein",
    "shadow",
    "master",
    "696969",
    "mustang",
    "michael",
    "password1",
    "password123",
    "qwertyuiop",
    "iloveyou",
    "welcome",
    "admin",
    "administrator",
    "passw0rd",
    "123qwe",
    "1q2w3e4r",
    "qwerty123",
    "123456789012",
    "password1234",
    "welcome12345",
    "administrator1",
];

/// A user's sealed personal data. Format version inside; do not change a shipped version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Profile {
    pub format: u8,
    pub email: String,
    pub display_name: String,
}

/// Everything about a user, as journaled (the journal is sealed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserState {
    pub user_id: String,
    pub email: String,
    pub display_name: String,
    pub password_hash: Option<String>,
    pub roles: String,
    pub disabled: bool,
    pub must_change_password: bool,
    pub password_changed_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Seals a user's state into a stored row for `context`.
pub(crate) fn seal_user(
    context: &TenantContext,
    state: &UserState,
) -> Result<StoredUser, ServiceError> {
    let profile = Profile {
        format: 1,
        email: state.email.clone(),
        display_name: state.display_name.clone(),
    };
    let profile_bytes =
        serde_json::to_vec(&profile).map_err(|error| ServiceError::Internal(error.to_string()))?;
    Ok(StoredUser {
        id: state.user_id.clone(),
        email_index: email_index(context, &state.email),
        sealed_profile: context.keys.keyring.seal(
            &profile_context(&context.tenant_id, &state.user_id),
            &profile_bytes,
        )?,
        sealed_password: state
            .password_hash
            .as_ref()
            .map(|hash| {
                context.keys.keyring.seal(
                    &password_context(&context.tenant_id, &state.user_id),
                    hash.as_bytes(),
                )
            })
            .transpose()?,
        roles: state.roles.clone(),
        disabled: state.disabled,
        must_change_password: state.must_change_password,
        password_changed_at: state.password_changed_at,
        key_version: context.keys.keyring.current_version(),
        created_at: state.created_at,
        updated_at: state.updated_at,
    })
}

/// Replays a journaled user onto the context's store.
pub(crate) async fn apply_user(
    context: &TenantContext,
    state: UserState,
) -> Result<(), ServiceError> {
    let user = seal_user(context, &state)?;
    context
        .store
        .put_user(
            user,
            None,
            0,
            sealer(
                &context.tenant_id,
                &context.keys,
                JournalChange::UserPut { user: state },
            ),
        )
        .await?;
    Ok(())
}

/// A user as services return it.
#[derive(Debug, Clone, PartialEq)]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub display_name: String,
    pub roles: Vec<String>,
    pub must_change_password: bool,
    pub created_at: Timestamp,
}

/// A created user with the one-time password to hand over (shown once).
#[derive(Debug, Clone)]
pub struct CreatedUser {
    pub user: UserView,
    pub one_time_password: String,
}

#[derive(Debug, Clone)]
pub struct SignedIn {
    pub session_token: String,
    pub user: UserView,
}

/// What a correct password leads to.
#[derive(Debug, Clone)]
pub enum SignIn {
    Session(SignedIn),
    /// The user has a second factor: send a code with this token to `auth/mfa`.
    SecondFactorRequired {
        mfa_token: String,
    },
}

pub(crate) fn invalid(parameter: &str, reason: String) -> ServiceError {
    ServiceError::Invalid(DomainError::InvalidQuery {
        parameter: parameter.to_owned(),
        reason,
    })
}

fn normalize_email(email: &str) -> Result<String, ServiceError> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= EMAIL_LENGTH_MAX
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
        && !email.chars().any(|c| c.is_control() || c.is_whitespace());
    if valid {
        Ok(email)
    } else {
        Err(invalid(
            "email",
            "must be an email address such as ann@example.com".into(),
        ))
    }
}

pub(crate) fn parse_roles(roles: &[String]) -> Result<Vec<BuiltinRole>, ServiceError> {
    roles
        .iter()
        .map(|name| {
            BuiltinRole::ALL
                .into_iter()
                .find(|role| role.as_str() == name)
                .ok_or_else(|| {
                    invalid(
                        "roles",
                        format!(
                            "unknown role {name:?}: use owner, admin, member, viewer or auditor"
                        ),
                    )
                })
        })
        .collect()
}

/// Refuses roles that would give permissions the granting user does not hold themselves.
pub(crate) fn check_grantable(
    caller: &crate::tenants::SessionUser,
    roles: &[BuiltinRole],
) -> Result<(), ServiceError> {
    for role in roles {
        if let Some(permission) = role.permissions().into_iter().find(|permission| {
            !strongroom_domain::permits(
                &caller.grants,
                *permission,
                strongroom_domain::Resource::Tenant,
            )
        }) {
            return Err(ServiceError::MissingPermission(permission.as_str()));
        }
    }
    Ok(())
}

pub(crate) fn is_owner(roles: &str) -> bool {
    roles
        .split_whitespace()
        .any(|role| role == BuiltinRole::Owner.as_str())
}

pub(crate) fn grants_of(roles: &str) -> Vec<Grant> {
    roles
        .split_whitespace()
        .filter_map(|name| {
            BuiltinRole::ALL
                .into_iter()
                .find(|role| role.as_str() == name)
        })
        .map(|role| Grant {
            permissions: role.permissions(),
            limit: GrantLimit::Everything,
        })
        .collect()
}

fn profile_context(tenant_id: &str, user_id: &str) -> Vec<u8> {
    format!("strongroom/user-profile/v1\0{tenant_id}\0{user_id}").into_bytes()
}

fn password_context(tenant_id: &str, user_id: &str) -> Vec<u8> {
    format!("strongroom/user-password/v1\0{tenant_id}\0{user_id}").into_bytes()
}

fn email_index(context: &TenantContext, email: &str) -> Vec<u8> {
    context
        .keys
        .index_key
        .token("user-email/v1", &[email.as_bytes()])
}

pub(crate) fn open_profile(
    context: &TenantContext,
    user: &StoredUser,
) -> Result<Profile, ServiceError> {
    let integrity = || ServiceError::Integrity {
        what: format!("the profile of user {}", user.id),
    };
    let plaintext = context
        .keys
        .keyring
        .open(
            &profile_context(&context.tenant_id, &user.id),
            &user.sealed_profile,
        )
        .map_err(|_| integrity())?;
    serde_json::from_slice(&plaintext).map_err(|_| integrity())
}

pub(crate) fn open_password(
    context: &TenantContext,
    user_id: &str,
    sealed: &[u8],
) -> Result<String, ServiceError> {
    let integrity = || ServiceError::Integrity {
        what: format!("the password of user {user_id}"),
    };
    let plaintext = context
        .keys
        .keyring
        .open(&password_context(&context.tenant_id, user_id), sealed)
        .map_err(|_| integrity())?;
    String::from_utf8(plaintext).map_err(|_| integrity())
}

pub(crate) fn user_view(
    context: &TenantContext,
    user: &StoredUser,
) -> Result<UserView, ServiceError> {
    let profile = open_profile(context, user)?;
    Ok(UserView {
        id: user.id.clone(),
        email: profile.email,
        display_name: profile.display_name,
        roles: user.roles.split_whitespace().map(str::to_owned).collect(),
        must_change_password: user.must_change_password,
        created_at: Timestamp::from_unix_micros(user.created_at),
    })
}

/// 20 random characters from an alphabet without look-alikes: about 116 bits.
fn one_time_password() -> Result<String, ServiceError> {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let random = strongroom_crypto::random_bytes_32()?;
    Ok(random
        .iter()
        .take(20)
        .map(|byte| ALPHABET[*byte as usize % ALPHABET.len()] as char)
        .collect())
}

impl Platform {
    /// An operator creates a tenant's first user, an owner with a one-time password.
    pub async fn create_first_user(
        &self,
        slug: &str,
        email: &str,
        display_name: &str,
    ) -> Result<CreatedUser, ServiceError> {
        let runtime = self.tenant(slug).await?;
        let context = TenantContext::of(&runtime);
        if !context.store.list_users()?.is_empty() {
            return Err(ServiceError::Conflict(
                "this tenant has users; its admins create the others".into(),
            ));
        }
        self.insert_user(&context, email, display_name, &[BuiltinRole::Owner])
            .await
    }

    /// A tenant admin (users:manage) creates a user with roles and a one-time password. Only
    /// an owner may create another owner.
    pub async fn create_user(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
        email: &str,
        display_name: &str,
        roles: &[String],
    ) -> Result<CreatedUser, ServiceError> {
        let (runtime, caller) = self
            .authorize_user(principal, slug, Permission::UsersManage)
            .await?;
        let roles = parse_roles(roles)?;
        if roles.contains(&BuiltinRole::Owner) && !is_owner(&caller.roles) {
            return Err(ServiceError::MissingPermission("owner"));
        }
        check_grantable(&caller, &roles)?;
        self.insert_user(&TenantContext::of(&runtime), email, display_name, &roles)
            .await
    }

    pub async fn list_users(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
    ) -> Result<Vec<UserView>, ServiceError> {
        let (runtime, _) = self
            .authorize_user(principal, slug, Permission::UsersManage)
            .await?;
        let context = TenantContext::of(&runtime);
        context
            .store
            .list_users()?
            .iter()
            .map(|user| self.observe(&context, user_view(&context, user)))
            .collect()
    }

    async fn insert_user(
        &self,
        context: &TenantContext,
        email: &str,
        display_name: &str,
        roles: &[BuiltinRole],
    ) -> Result<CreatedUser, ServiceError> {
        let email = normalize_email(email)?;
        let display_name = display_name.trim().to_owned();
        if display_name.is_empty()
            || display_name.chars().count() > NAME_LENGTH_MAX
            || display_name.chars().any(char::is_control)
        {
            return Err(invalid(
                "display_name",
                format!("must be 1 to {NAME_LENGTH_MAX} characters without control characters"),
            ));
        }
        let password = one_time_password()?;
        let hashing = self.options.password_hashing;
        let to_hash = password.clone();
        let hashing_slot = self.hashing_slot().await?;
        let hash = tokio::task::spawn_blocking(move || {
            let _hashing_slot = hashing_slot;
            hashing.hash(&to_hash)
        })
        .await
        .map_err(|error| ServiceError::Internal(error.to_string()))??;
        let now = self.clock.now().unix_micros();
        let state = UserState {
            user_id: strongroom_crypto::random_hex_id()?,
            email,
            display_name,
            password_hash: Some(hash),
            roles: roles
                .iter()
                .map(|role| role.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            disabled: false,
            must_change_password: true,
            password_changed_at: Some(now),
            created_at: now,
            updated_at: now,
        };
        let user = seal_user(context, &state)?;
        let change = JournalChange::UserPut { user: state };
        context
            .store
            .put_user(
                user.clone(),
                None,
                0,
                sealer(&context.tenant_id, &context.keys, change),
            )
            .await
            .map_err(|error| match error {
                StorageError::Conflict(_) => {
                    ServiceError::Conflict("a user with this email exists".into())
                }
                other => other.into(),
            })?;
        Ok(CreatedUser {
            user: user_view(context, &user)?,
            one_time_password: password,
        })
    }

    /// Email and password for a session. Every failure gives the same answer (and takes the
    /// same hashing time), so the answer does not tell whether the email exists.
    pub async fn login(
        &self,
        slug: &str,
        email: &str,
        password: &str,
        client_address: Option<std::net::IpAddr>,
    ) -> Result<SignIn, ServiceError> {
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
        let user = match normalize_email(email) {
            Ok(email) => context
                .store
                .user_by_email(&email_index(&context, &email))?,
            Err(_) => None,
        };
        if let Some(user) = &user {
            self.check_account_throttle(&context, user)?;
        }
        let stored_hash = match &user {
            Some(user) => user
                .sealed_password
                .as_ref()
                .map(|sealed| open_password(&context, &user.id, sealed))
                .transpose()?,
            None => None,
        };
        let hashing = self.options.password_hashing;
        let (candidate, known) = (password.to_owned(), stored_hash.clone());
        let hashing_slot = self.hashing_slot().await?;
        let verified = tokio::task::spawn_blocking(move || {
            let _hashing_slot = hashing_slot;
            match known {
                Some(hash) => hashing.verify(&candidate, &hash),
                None => {
                    let _ = hashing.hash(&candidate); // same cost as a real check
                    false
                }
            }
        })
        .await
        .map_err(|error| ServiceError::Internal(error.to_string()))?;
        let Some(user) = user.clone().filter(|user| verified && !user.disabled) else {
            self.count_failed_sign_in(&context, user.as_ref(), client_address, now_seconds)
                .await?;
            return Err(ServiceError::LoginFailed);
        };
        if stored_hash.is_some_and(|hash| hashing.needs_upgrade(&hash)) {
            self.store_password(&context, &user, password, None).await?;
        }
        if context
            .store
            .mfa(&user.id)?
            .is_some_and(|mfa| mfa.confirmed)
        {
            let mfa_token = self.start_challenge(&context, &user.id).await?;
            return Ok(SignIn::SecondFactorRequired { mfa_token });
        }
        Ok(SignIn::Session(self.start_session(&context, &user).await?))
    }

    async fn count_failed_sign_in(
        &self,
        context: &TenantContext,
        user: Option<&StoredUser>,
        client_address: Option<std::net::IpAddr>,
        now_seconds: i64,
    ) -> Result<(), ServiceError> {
        if let Some(user) = user {
            let lock_after = strongroom_domain::brute_force::ACCOUNT_LOCK_AFTER;
            let failures = context
                .store
                .record_login_failure(&user.id, self.clock.now().unix_micros(), lock_after)
                .await?;
            if failures.locked && failures.consecutive == lock_after {
                self.security.raise(
                    SecurityEventKind::AccountLocked,
                    Some(&context.tenant_id),
                    &format!("user {} locked after {lock_after} failed sign-ins", user.id),
                );
            }
        }
        if let Some(address) = client_address {
            if self.address_throttle.record_failure(address, now_seconds) {
                self.security.raise(
                    SecurityEventKind::AddressBlocked,
                    Some(&context.tenant_id),
                    &format!("address {address} blocked after failed sign-ins across accounts"),
                );
            }
        }
        Ok(())
    }

    /// Counts a wrong second-factor code like a failed sign-in of the account (delay, lock).
    pub(crate) async fn count_failed_second_factor(
        &self,
        context: &TenantContext,
        user: &StoredUser,
    ) -> Result<(), ServiceError> {
        let now_seconds = self.clock.now().unix_micros() / 1_000_000;
        self.count_failed_sign_in(context, Some(user), None, now_seconds)
            .await
    }

    /// Refuses a sign-in step for a locked account or one still inside its delay.
    pub(crate) fn check_account_throttle(
        &self,
        context: &TenantContext,
        user: &StoredUser,
    ) -> Result<(), ServiceError> {
        let failures = context.store.login_failures(&user.id)?;
        if failures.locked {
            return Err(ServiceError::AccountLocked);
        }
        let now_seconds = self.clock.now().unix_micros() / 1_000_000;
        let ready_at = failures.last_failure_at / 1_000_000
            + strongroom_domain::brute_force::account_delay_seconds(failures.consecutive);
        if failures.consecutive > 0 && now_seconds < ready_at {
            self.security.raise(
                SecurityEventKind::LoginThrottled,
                Some(&context.tenant_id),
                &format!("sign-in to user {} slowed down", user.id),
            );
            return Err(ServiceError::TooManyAttempts {
                retry_after_seconds: ready_at - now_seconds,
            });
        }
        Ok(())
    }

    /// Opens a session for a user whose credentials were checked.
    pub(crate) async fn start_session(
        &self,
        context: &TenantContext,
        user: &StoredUser,
    ) -> Result<SignedIn, ServiceError> {
        if context.store.login_failures(&user.id)?.consecutive > 0 {
            context.store.clear_login_failures(&user.id).await?;
        }
        let token = strongroom_crypto::generate_token("srs")?;
        let now = self.clock.now().unix_micros();
        context
            .store
            .insert_session(StoredSession {
                token_hash: hash_token(&token).to_vec(),
                user_id: user.id.clone(),
                created_at: now,
                last_seen_at: now,
            })
            .await?;
        tracing::info!(tenant_id = %context.tenant_id, user_id = %user.id, "user signed in");
        Ok(SignedIn {
            session_token: token,
            user: user_view(context, user)?,
        })
    }

    /// The signed-in user behind a session token on this tenant's path.
    pub async fn authenticate_session(
        &self,
        slug: &str,
        token: &str,
    ) -> Result<Arc<TokenPrincipal>, ServiceError> {
        let cache_key = hash_token(token);
        if let Some(principal) = self
            .sessions
            .get(&cache_key, self.clock.now().unix_micros())
        {
            return Ok(principal);
        }
        let principal = self.load_session(slug, token).await?;
        self.sessions
            .insert(cache_key, principal.clone(), self.clock.now().unix_micros());
        Ok(principal)
    }

    async fn load_session(
        &self,
        slug: &str,
        token: &str,
    ) -> Result<Arc<TokenPrincipal>, ServiceError> {
        let runtime = self
            .tenant(slug)
            .await
            .map_err(|_| ServiceError::Unauthenticated)?;
        let context = TenantContext::of(&runtime);
        let token_hash = hash_token(token).to_vec();
        let session = context
            .store
            .session(&token_hash)?
            .ok_or(ServiceError::Unauthenticated)?;
        let now = self.clock.now().unix_micros();
        if now - session.last_seen_at > SESSION_IDLE_MICROS
            || now - session.created_at > SESSION_ABSOLUTE_MICROS
        {
            let _ = context
                .store
                .end_sessions(&session.user_id, SessionSelection::One(token_hash))
                .await;
            return Err(ServiceError::Unauthenticated);
        }
        let user = context
            .store
            .user(&session.user_id)?
            .filter(|user| !user.disabled)
            .ok_or(ServiceError::Unauthenticated)?;
        if now - session.last_seen_at > SESSION_TOUCH_MICROS {
            context.store.touch_session(&token_hash, now).await?;
        }
        let policy = self.observe(&context, crate::security_policy::load(&context))?;
        Ok(Arc::new(TokenPrincipal {
            token_id: user.id.clone(),
            tenant_id: runtime.id.clone(),
            scopes: Default::default(),
            expires_at: None,
            user: Some(SessionUser {
                user_id: user.id.clone(),
                roles: user.roles.clone(),
                session_hash: token_hash,
                grants: grants_of(&user.roles),
                must_change_password: user.must_change_password
                    || policy
                        .password
                        .is_expired(user.password_changed_at.unwrap_or(user.created_at), now),
                must_enrol_mfa: policy.requires_mfa(&user.roles)
                    && !context
                        .store
                        .mfa(&user.id)?
                        .is_some_and(|mfa| mfa.confirmed),
            }),
        }))
    }

    pub async fn logout(&self, principal: &TokenPrincipal, slug: &str) -> Result<(), ServiceError> {
        let user = principal
            .user
            .clone()
            .ok_or(ServiceError::Unauthenticated)?;
        let runtime = self.tenant_for(principal, slug).await?;
        runtime
            .store
            .end_sessions(&user.user_id, SessionSelection::One(user.session_hash))
            .await?;
        self.sessions.invalidate();
        Ok(())
    }

    pub async fn me(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
    ) -> Result<UserView, ServiceError> {
        let (runtime, user) = self.signed_in_user(principal, slug).await?;
        let context = TenantContext::of(&runtime);
        let stored = context
            .store
            .user(&user.user_id)?
            .ok_or(ServiceError::Unauthenticated)?;
        self.observe(&context, user_view(&context, &stored))
    }

    /// Changes the caller's password (the current one is required); other sessions end.
    pub async fn change_password(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
        current: &str,
        new: &str,
    ) -> Result<(), ServiceError> {
        let (runtime, session) = self.signed_in_user(principal, slug).await?;
        let context = TenantContext::of(&runtime);
        let user = context
            .store
            .user(&session.user_id)?
            .ok_or(ServiceError::Unauthenticated)?;
        let stored = user
            .sealed_password
            .as_ref()
            .map(|sealed| open_password(&context, &user.id, sealed))
            .transpose()?
            .ok_or(ServiceError::Unauthenticated)?;
        let policy = self
            .observe(&context, crate::security_policy::load(&context))?
            .password;
        let profile = self.observe(&context, open_profile(&context, &user))?;
        let history: Vec<String> = context
            .store
            .password_history(&user.id)?
            .iter()
            .take(usize::from(policy.history))
            .map(|sealed| open_password(&context, &user.id, sealed))
            .collect::<Result<_, _>>()?;
        let hashing = self.options.password_hashing;
        let (current, new_password) = (current.to_owned(), new.to_owned());
        let hashing_slot = self.hashing_slot().await?;
        let (current_ok, rule) = tokio::task::spawn_blocking(move || {
            let _hashing_slot = hashing_slot;
            let user_inputs = [profile.email.as_str(), profile.display_name.as_str()];
            let current_ok = hashing.verify(&current, &stored);
            let recently_used = |candidate: &str| {
                hashing.verify(candidate, &stored)
                    || history.iter().any(|old| hashing.verify(candidate, old))
            };
            let context = PasswordContext {
                is_common: &|candidate| {
                    COMMON_PASSWORDS.contains(&candidate.to_lowercase().as_str())
                },
                strength: &|candidate| strongroom_domain::strength_score(candidate, &user_inputs),
                recently_used: &recently_used,
            };
            (current_ok, policy.check(&new_password, &context))
        })
        .await
        .map_err(|error| ServiceError::Internal(error.to_string()))?;
        if !current_ok {
            return Err(ServiceError::LoginFailed);
        }
        rule.map_err(|rule| {
            ServiceError::Invalid(DomainError::InvalidQuery {
                parameter: "new_password".into(),
                reason: rule.to_string(),
            })
        })?;
        self.store_password(&context, &user, new, user.sealed_password.clone())
            .await?;
        context
            .store
            .end_sessions(&user.id, SessionSelection::AllBut(session.session_hash))
            .await?;
        self.sessions.invalidate();
        tracing::info!(tenant_id = %context.tenant_id, user_id = %user.id, "password changed; other sessions ended");
        Ok(())
    }

    pub(crate) async fn signed_in_user(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
    ) -> Result<(Arc<TenantRuntime>, SessionUser), ServiceError> {
        let user = principal
            .user
            .clone()
            .ok_or(ServiceError::MissingPermission("a signed-in user"))?;
        Ok((self.tenant_for(principal, slug).await?, user))
    }

    async fn store_password(
        &self,
        context: &TenantContext,
        user: &StoredUser,
        password: &str,
        previous: Option<Vec<u8>>,
    ) -> Result<(), ServiceError> {
        let hashing = self.options.password_hashing;
        let to_hash = password.to_owned();
        let hashing_slot = self.hashing_slot().await?;
        let hash = tokio::task::spawn_blocking(move || {
            let _hashing_slot = hashing_slot;
            hashing.hash(&to_hash)
        })
        .await
        .map_err(|error| ServiceError::Internal(error.to_string()))??;
        let now = self.clock.now().unix_micros();
        let profile = open_profile(context, user)?;
        let state = UserState {
            user_id: user.id.clone(),
            email: profile.email,
            display_name: profile.display_name,
            password_hash: Some(hash),
            roles: user.roles.clone(),
            disabled: user.disabled,
            must_change_password: if previous.is_some() {
                false
            } else {
                user.must_change_password
            },
            // A rehash at sign-in is not a password change: the expiry clock keeps running.
            password_changed_at: if previous.is_some() {
                Some(now)
            } else {
                user.password_changed_at
            },
            created_at: user.created_at,
            updated_at: now,
        };
        let updated = seal_user(context, &state)?;
        let change = JournalChange::UserPut { user: state };
        let history_kept = u32::from(crate::security_policy::load(context)?.password.history);
        context
            .store
            .put_user(
                updated,
                previous,
                history_kept,
                sealer(&context.tenant_id, &context.keys, change),
            )
            .await?;
        self.sessions.invalidate();
        Ok(())
    }
}
