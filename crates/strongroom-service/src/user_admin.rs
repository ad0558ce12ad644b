//! Tenant admins change, disable and remove users; users change their own display name. The
//! last owner can be neither demoted, disabled nor removed, and a change of rights ends the
//! user's sessions so the new rights apply at once.

use crate::ServiceError;
use crate::journal::{JournalChange, sealer};
use crate::platform::Platform;
use crate::tenant_context::TenantContext;
use crate::tenants::TokenPrincipal;
use crate::users::{
    UserState, UserView, invalid, is_owner, open_password, open_profile, parse_roles, seal_user,
    user_view,
};
use strongroom_domain::Permission;
use strongroom_storage::{SessionSelection, StoredUser};

/// What an admin changes about a user; absent fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct UserChange {
    pub roles: Option<Vec<String>>,
    pub disabled: Option<bool>,
    /// `Some(true)` unlocks an account locked after failed sign-ins.
    pub unlock: Option<bool>,
}

fn state_of(context: &TenantContext, user: &StoredUser) -> Result<UserState, ServiceError> {
    let profile = open_profile(context, user)?;
    Ok(UserState {
        user_id: user.id.clone(),
        email: profile.email,
        display_name: profile.display_name,
        phone: profile.phone,
        password_hash: user
            .sealed_password
            .as_ref()
            .map(|sealed| open_password(context, &user.id, sealed))
            .transpose()?,
        roles: user.roles.clone(),
        disabled: user.disabled,
        must_change_password: user.must_change_password,
        password_changed_at: user.password_changed_at,
        created_at: user.created_at,
        updated_at: user.updated_at,
    })
}

async fn save(context: &TenantContext, state: UserState) -> Result<StoredUser, ServiceError> {
    let user = seal_user(context, &state)?;
    context
        .store
        .put_user(
            user.clone(),
            None,
            0,
            sealer(
                &context.tenant_id,
                &context.keys,
                JournalChange::UserPut { user: state },
            ),
        )
        .await?;
    Ok(user)
}

/// Refuses to leave the tenant without an active owner.
fn keep_an_owner(context: &TenantContext, target: &StoredUser) -> Result<(), ServiceError> {
    let other_owners = context
        .store
        .list_users()?
        .iter()
        .filter(|user| user.id != target.id && !user.disabled && is_owner(&user.roles))
        .count();
    if other_owners == 0 {
        return Err(ServiceError::Conflict(
            "this is the last owner: make another user owner first".into(),
        ));
    }
    Ok(())
}

impl Platform {
    pub async fn update_user(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
        user_id: &str,
        change: UserChange,
    ) -> Result<UserView, ServiceError> {
        let (runtime, caller) = self
            .authorize_user(principal, slug, Permission::UsersManage)
            .await?;
        let context = TenantContext::of(&runtime);
        let target = context
            .store
            .user(user_id)?
            .ok_or(ServiceError::NotFound("user"))?;
        // Only owners change owners: an admin can neither disable, demote nor rename one.
        if is_owner(&target.roles) && !is_owner(&caller.roles) {
            return Err(ServiceError::MissingPermission("owner"));
        }
        let mut state = self.observe(&context, state_of(&context, &target))?;
        if let Some(roles) = &change.roles {
            if target.id == caller.user_id {
                return Err(invalid(
                    "roles",
                    "nobody changes their own roles; ask another admin".into(),
                ));
            }
            let parsed = parse_roles(roles)?;
            crate::users::check_grantable(&caller, &parsed)?;
            let new_roles = parsed
                .iter()
                .map(|role| role.as_str())
                .collect::<Vec<_>>()
                .join(" ");
            if is_owner(&new_roles) != is_owner(&target.roles) && !is_owner(&caller.roles) {
                return Err(ServiceError::MissingPermission("owner"));
            }
            if is_owner(&target.roles) && !is_owner(&new_roles) {
                keep_an_owner(&context, &target)?;
            }
            state.roles = new_roles;
        }
        if let Some(disabled) = change.disabled {
            if disabled && is_owner(&target.roles) {
                keep_an_owner(&context, &target)?;
            }
            state.disabled = disabled;
        }
        if change.unlock == Some(true) {
            context.store.clear_login_failures(&target.id).await?;
        }
        let rights_changed = state.roles != target.roles || state.disabled != target.disabled;
        state.updated_at = self.clock.now().unix_micros().max(target.updated_at + 1);
        let saved = save(&context, state).await?;
        self.sessions.invalidate();
        if rights_changed {
            self.end_sessions(&context, &target.id, SessionSelection::All)
                .await?;
        }
        user_view(&context, &saved)
    }

    pub async fn delete_user(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
        user_id: &str,
    ) -> Result<(), ServiceError> {
        let (runtime, caller) = self
            .authorize_user(principal, slug, Permission::UsersManage)
            .await?;
        let context = TenantContext::of(&runtime);
        let target = context
            .store
            .user(user_id)?
            .ok_or(ServiceError::NotFound("user"))?;
        if is_owner(&target.roles) {
            if !is_owner(&caller.roles) {
                return Err(ServiceError::MissingPermission("owner"));
            }
            keep_an_owner(&context, &target)?;
        }
        let change = JournalChange::UserDelete {
            user_id: target.id.clone(),
        };
        context
            .store
            .remove_user(
                &target.id,
                sealer(&context.tenant_id, &context.keys, change),
            )
            .await?;
        self.forget_user_access(&runtime, &target.id).await?;
        self.sessions.invalidate();
        tracing::info!(tenant_id = %context.tenant_id, user_id = %target.id, "user removed");
        Ok(())
    }

    /// Ends every session of a user (admin "sign out everywhere").
    pub async fn end_user_sessions(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
        user_id: &str,
    ) -> Result<u64, ServiceError> {
        let (runtime, _) = self
            .authorize_user(principal, slug, Permission::UsersManage)
            .await?;
        let context = TenantContext::of(&runtime);
        context
            .store
            .user(user_id)?
            .ok_or(ServiceError::NotFound("user"))?;
        self.end_sessions(&context, user_id, SessionSelection::All)
            .await
    }

    /// Self-service: a user changes their own display name and phone number (empty clears it).
    pub async fn update_me(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
        display_name: Option<&str>,
        phone: Option<&str>,
    ) -> Result<UserView, ServiceError> {
        let (runtime, session) = self.signed_in_user(principal, slug).await?;
        let context = TenantContext::of(&runtime);
        let user = context
            .store
            .user(&session.user_id)?
            .ok_or(ServiceError::Unauthenticated)?;
        let mut state = self.observe(&context, state_of(&context, &user))?;
        if let Some(display_name) = display_name {
            state.display_name = crate::users::check_display_name(display_name)?;
        }
        if let Some(phone) = phone.map(str::trim) {
            let digits = phone.chars().filter(char::is_ascii_digit).count();
            let valid = phone.is_empty()
                || ((6..=15).contains(&digits)
                    && phone.len() <= 24
                    && phone.chars().enumerate().all(|(index, c)| {
                        c.is_ascii_digit() || " ()-".contains(c) || (index == 0 && c == '+')
                    }));
            if !valid {
                return Err(invalid("phone", "use an international number such as +32 470 12 34 56, or an empty string to remove it".into()));
            }
            state.phone = (!phone.is_empty()).then(|| phone.to_owned());
        }
        state.updated_at = self.clock.now().unix_micros().max(user.updated_at + 1);
        let saved = save(&context, state).await?;
        self.sessions.invalidate();
        user_view(&context, &saved)
    }
}

/// Replays a journaled removal.
pub(crate) async fn apply_user_delete(
    context: &TenantContext,
    user_id: String,
) -> Result<(), ServiceError> {
    let journal = sealer(
        &context.tenant_id,
        &context.keys,
        JournalChange::UserDelete {
            user_id: user_id.clone(),
        },
    );
    context.store.remove_user(&user_id, journal).await?;
    Ok(())
}

impl Platform {
    /// A tenant admin (users:manage) creates an API token for the tenant's applications. The
    /// token may carry only data scopes the admin holds as permissions themselves.
    pub async fn create_tenant_token(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
        name: &str,
        scopes: &[String],
        expires_at: Option<crate::Timestamp>,
    ) -> Result<crate::CreatedToken, ServiceError> {
        let (_, caller) = self
            .authorize_user(principal, slug, Permission::UsersManage)
            .await?;
        for scope in scopes {
            let permission = Permission::parse(scope)?;
            if !strongroom_domain::permits(
                &caller.grants,
                permission,
                strongroom_domain::Resource::Tenant,
            ) {
                return Err(ServiceError::MissingPermission(permission.as_str()));
            }
        }
        let created = self.create_token(slug, name, scopes, expires_at).await?;
        tracing::info!(user_id = %caller.user_id, token_id = %created.id, "tenant admin created an API token");
        Ok(created)
    }

    /// The tenant's API tokens, without secrets (users:manage).
    pub async fn tenant_tokens(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
    ) -> Result<Vec<crate::TokenView>, ServiceError> {
        let (runtime, _) = self
            .authorize_user(principal, slug, Permission::UsersManage)
            .await?;
        let control = self.control.clone();
        let tenant_id = runtime.id.clone();
        let rows = crate::platform::blocking(move || Ok(control.api_tokens(&tenant_id)?)).await?;
        Ok(rows
            .into_iter()
            .map(|row| crate::TokenView {
                id: row.id,
                name: row.name,
                scopes: row.scopes.split_whitespace().map(str::to_owned).collect(),
                created_at: crate::Timestamp::from_unix_micros(row.created_at),
                expires_at: row.expires_at.map(crate::Timestamp::from_unix_micros),
            })
            .collect())
    }

    /// Revokes one of the tenant's API tokens (users:manage); it stops working at once.
    pub async fn revoke_tenant_token(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
        token_id: &str,
    ) -> Result<(), ServiceError> {
        let (runtime, caller) = self
            .authorize_user(principal, slug, Permission::UsersManage)
            .await?;
        let control = self.control.clone();
        let (tenant_id, id) = (runtime.id.clone(), token_id.to_owned());
        let removed =
            crate::platform::blocking(move || Ok(control.remove_api_token(&tenant_id, &id)?))
                .await?;
        if !removed {
            return Err(ServiceError::NotFound("token"));
        }
        // Cached callers are keyed by the secret's hash, which is not at hand: forget them all.
        self.token_cache
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clear();
        tracing::info!(tenant_id = %runtime.id, user_id = %caller.user_id, token_id = %token_id, "api token revoked");
        Ok(())
    }
}
