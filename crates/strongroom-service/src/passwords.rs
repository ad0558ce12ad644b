//! Passwords: changing one under the tenant's policy (current password first, the policy's
//! rules, history), and storing a new hash with the old one kept in the history.

use crate::ServiceError;
use crate::journal::{JournalChange, sealer};
use crate::platform::Platform;
use crate::tenant_context::TenantContext;
use crate::tenants::TokenPrincipal;
use crate::users::{UserState, open_password, open_profile, seal_user};
use strongroom_domain::{DomainError, PasswordContext};
use strongroom_storage::{SessionSelection, StoredUser};

impl Platform {
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
                is_common: &crate::common_passwords::is_common,
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
            ServiceError::Invalid(DomainError::InvalidField {
                field: "new_password".into(),
                reason: rule.to_string(),
            })
        })?;
        self.store_password(&context, &user, new, user.sealed_password.clone())
            .await?;
        self.end_sessions(
            &context,
            &user.id,
            SessionSelection::AllBut(session.session_hash),
        )
        .await?;
        tracing::info!(tenant_id = %context.tenant_id, user_id = %user.id, "password changed; other sessions ended");
        Ok(())
    }

    pub(crate) async fn store_password(
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
            phone: profile.phone,
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
