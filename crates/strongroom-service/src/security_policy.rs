//! A tenant's security policy, set by its admins (policy:manage): the password rules and who
//! must use a second factor. Sealed in the tenant's settings and journaled.

use crate::ServiceError;
use crate::journal::JournalChange;
use crate::platform::Platform;
use crate::tenant_context::TenantContext;
use crate::tenants::TokenPrincipal;
use crate::users::invalid;
use serde::{Deserialize, Serialize};
use strongroom_domain::{BuiltinRole, PasswordPolicy, Permission};

const SETTING: &str = "security-policy";

/// Who must sign in with a second factor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MfaRequirement {
    #[default]
    Optional,
    Everyone,
    /// Users holding any of these built-in roles.
    Roles {
        roles: Vec<String>,
    },
}

/// How long a session lives: ended after `idle_minutes` without use and after
/// `absolute_hours` in any case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionTimeouts {
    pub idle_minutes: u32,
    pub absolute_hours: u32,
}

impl SessionTimeouts {
    pub const IDLE_MINUTES_RANGE: std::ops::RangeInclusive<u32> = 5..=24 * 60;
    pub const ABSOLUTE_HOURS_RANGE: std::ops::RangeInclusive<u32> = 1..=30 * 24;

    pub fn idle_micros(&self) -> i64 {
        i64::from(self.idle_minutes) * 60 * 1_000_000
    }

    pub fn absolute_micros(&self) -> i64 {
        i64::from(self.absolute_hours) * 3600 * 1_000_000
    }

    /// Whether a session created at `created_at` and last used at `last_seen_at` has ended.
    pub fn has_ended(&self, created_at: i64, last_seen_at: i64, now: i64) -> bool {
        now - last_seen_at > self.idle_micros() || now - created_at > self.absolute_micros()
    }

    fn validate(&self) -> Result<(), ServiceError> {
        if !Self::IDLE_MINUTES_RANGE.contains(&self.idle_minutes) {
            return Err(invalid(
                "sessions.idle_minutes",
                format!(
                    "must be between {} and {} minutes",
                    Self::IDLE_MINUTES_RANGE.start(),
                    Self::IDLE_MINUTES_RANGE.end()
                ),
            ));
        }
        if !Self::ABSOLUTE_HOURS_RANGE.contains(&self.absolute_hours) {
            return Err(invalid(
                "sessions.absolute_hours",
                format!(
                    "must be between {} and {} hours",
                    Self::ABSOLUTE_HOURS_RANGE.start(),
                    Self::ABSOLUTE_HOURS_RANGE.end()
                ),
            ));
        }
        if self.idle_micros() > self.absolute_micros() {
            return Err(invalid(
                "sessions.idle_minutes",
                "must not be longer than the absolute timeout".to_string(),
            ));
        }
        Ok(())
    }
}

impl Default for SessionTimeouts {
    /// 30 minutes idle, 12 hours at most.
    fn default() -> Self {
        SessionTimeouts {
            idle_minutes: 30,
            absolute_hours: 12,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct SecurityPolicy {
    pub password: PasswordPolicy,
    pub mfa: MfaRequirement,
    pub sessions: SessionTimeouts,
    /// Password sign-in refused: users sign in through a configured provider.
    pub sso_required: bool,
    /// Operators' break-glass grants wait for an admin's approval before they work.
    pub support_access_approval: bool,
}

impl SecurityPolicy {
    /// Whether a user with `roles` must have a second factor.
    pub fn requires_mfa(&self, roles: &str) -> bool {
        match &self.mfa {
            MfaRequirement::Optional => false,
            MfaRequirement::Everyone => true,
            MfaRequirement::Roles { roles: required } => roles
                .split_whitespace()
                .any(|role| required.iter().any(|wanted| wanted == role)),
        }
    }

    fn validate(&self) -> Result<(), ServiceError> {
        let mfa_everyone = self.mfa == MfaRequirement::Everyone;
        self.password
            .validate(mfa_everyone)
            .map_err(|reason| invalid("password", reason))?;
        self.sessions.validate()?;
        if let MfaRequirement::Roles { roles } = &self.mfa
            && let Some(unknown) = roles.iter().find(|role| {
                !BuiltinRole::ALL
                    .iter()
                    .any(|known| known.as_str() == role.as_str())
            })
        {
            return Err(invalid("mfa.roles", format!("unknown role {unknown:?}")));
        }
        Ok(())
    }
}

/// The tenant's policy, or the defaults when none was set.
pub(crate) fn load(context: &TenantContext) -> Result<SecurityPolicy, ServiceError> {
    Ok(crate::settings::load(context, SETTING, "the security policy")?.unwrap_or_default())
}

pub(crate) async fn store(
    context: &TenantContext,
    policy: &SecurityPolicy,
) -> Result<(), ServiceError> {
    let change = JournalChange::SecurityPolicy {
        policy: policy.clone(),
    };
    crate::settings::store(context, SETTING, policy, change).await
}

impl Platform {
    pub async fn security_policy(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
    ) -> Result<SecurityPolicy, ServiceError> {
        let (runtime, _) = self
            .authorize_user(principal, slug, Permission::PolicyManage)
            .await?;
        let context = TenantContext::of(&runtime);
        self.observe(&context, load(&context))
    }

    /// Sets the policy; it applies from the next sign-in or password change.
    pub async fn set_security_policy(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
        policy: SecurityPolicy,
    ) -> Result<SecurityPolicy, ServiceError> {
        let (runtime, caller) = self
            .authorize_user(principal, slug, Permission::PolicyManage)
            .await?;
        policy.validate()?;
        let context = TenantContext::of(&runtime);
        let _serialized = runtime.access_lock.lock().await;
        if policy.sso_required
            && self
                .observe(&context, crate::sso::load(&context))?
                .is_empty()
        {
            return Err(invalid(
                "sso_required",
                "configure a single sign-on provider first".into(),
            ));
        }
        store(&context, &policy).await?;
        self.sessions.invalidate();
        tracing::info!(tenant_id = %context.tenant_id, user_id = %caller.user_id, "security policy changed");
        Ok(policy)
    }
}
