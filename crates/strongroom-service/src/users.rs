//! Users of a tenant: created by an operator (the first owner) or by admins, signing in with
//! email and password for a session, changing their password under the tenant's policy.

use crate::journal::{JournalChange, sealer};
use crate::platform::Platform;
use crate::sealing::TenantRuntime;
use crate::tenant_context::TenantContext;
use crate::tenants::{SessionUser, TokenPrincipal};
use crate::{ServiceError, Timestamp};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

use strongroom_domain::{BuiltinRole, DomainError, Grant, GrantLimit, Permission};
use strongroom_storage::{StorageError, StoredUser};

/// Last-seen times are written at most this often, so reads do not all become writes.
pub(crate) const SESSION_TOUCH_MICROS: i64 = 60 * 1_000_000;
const EMAIL_LENGTH_MAX: usize = 254;
const NAME_LENGTH_MAX: usize = 200;

/// A user's sealed personal data. Format version inside; do not change a shipped version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Profile {
    pub format: u8,
    pub email: String,
    pub display_name: String,
    /// For alerts; optional.
    #[serde(default)]
    pub phone: Option<String>,
}

/// Everything about a user, as journaled (the journal is sealed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserState {
    pub user_id: String,
    pub email: String,
    pub display_name: String,
    #[serde(default)]
    pub phone: Option<String>,
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
        phone: state.phone.clone(),
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
    pub phone: Option<String>,
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

/// A display name: 1 to 200 characters, trimmed, no control characters.
pub(crate) fn check_display_name(display_name: &str) -> Result<String, ServiceError> {
    let display_name = display_name.trim();
    if display_name.is_empty()
        || display_name.chars().count() > NAME_LENGTH_MAX
        || display_name.chars().any(char::is_control)
    {
        return Err(invalid(
            "display_name",
            format!("must be 1 to {NAME_LENGTH_MAX} characters without control characters"),
        ));
    }
    Ok(display_name.to_owned())
}

/// A field of the request body (or a header) that breaks a rule: `invalid_request`.
pub(crate) fn invalid(field: &str, reason: String) -> ServiceError {
    ServiceError::Invalid(DomainError::InvalidField {
        field: field.to_owned(),
        reason,
    })
}

/// A query parameter that breaks a rule: `invalid_query`.
pub(crate) fn invalid_parameter(parameter: &str, reason: String) -> ServiceError {
    ServiceError::Invalid(DomainError::InvalidQuery {
        parameter: parameter.to_owned(),
        reason,
    })
}

pub(crate) fn normalize_email(email: &str) -> Result<String, ServiceError> {
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

pub(crate) fn email_index(context: &TenantContext, email: &str) -> Vec<u8> {
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
        phone: profile.phone,
        roles: user.roles.split_whitespace().map(str::to_owned).collect(),
        must_change_password: user.must_change_password,
        created_at: Timestamp::from_unix_micros(user.created_at),
    })
}

/// Stores a new user (409 when the email is taken), journaled whole.
pub(crate) async fn put_new_user(
    context: &TenantContext,
    state: UserState,
) -> Result<StoredUser, ServiceError> {
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
    Ok(user)
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
        let display_name = check_display_name(display_name)?;
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
        let user = put_new_user(
            context,
            UserState {
                user_id: strongroom_crypto::random_hex_id()?,
                email,
                display_name,
                phone: None,
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
            },
        )
        .await?;
        Ok(CreatedUser {
            user: user_view(context, &user)?,
            one_time_password: password,
        })
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

    pub(crate) async fn signed_in_user(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
    ) -> Result<(Arc<TenantRuntime>, SessionUser), ServiceError> {
        let user = principal
            .user
            .clone()
            .ok_or(ServiceError::SignedInUserNeeded(None))?;
        Ok((self.tenant_for(principal, slug).await?, user))
    }
}
