//! Download thresholds (P2), set by a tenant's admins (policy:manage): at most so many files
//! and bytes per caller in each window, tenant-wide or per built-in role. Passing them blocks
//! the caller's downloads until the window ends or an admin lifts the block, answers 429 and
//! raises a security event. Counts live in the tenant's store, so a restart keeps them.

use crate::journal::JournalChange;
use crate::platform::Platform;
use crate::tenant_context::TenantContext;
use crate::tenants::TokenPrincipal;
use crate::users::invalid;
use crate::{SecurityEventKind, ServiceError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use strongroom_domain::{BuiltinRole, Permission};
use strongroom_storage::DownloadToCount;

const SETTING: &str = "download-limits";
const WINDOW_MINUTES_MAX: u32 = 7 * 24 * 60;

/// A download counted against its caller's thresholds: where, to take back bytes never sent.
#[derive(Debug, Clone)]
pub struct CountedDownload {
    tenant_id: String,
    caller: String,
    /// The counts it was counted in (new ones after an admin's reset).
    window_id: i64,
}

/// Limits for one kind of caller; `None` is no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Allowance {
    pub files_max: Option<u64>,
    pub bytes_max: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DownloadLimits {
    pub window_minutes: u32,
    /// For every caller without a role-specific allowance.
    pub default: Allowance,
    /// Built-in role → allowance; a user with several gets the most generous.
    pub roles: BTreeMap<String, Allowance>,
}

impl Default for DownloadLimits {
    /// One-hour windows, no limits.
    fn default() -> Self {
        DownloadLimits {
            window_minutes: 60,
            default: Allowance::default(),
            roles: BTreeMap::new(),
        }
    }
}

impl DownloadLimits {
    fn validate(&self) -> Result<(), ServiceError> {
        if !(1..=WINDOW_MINUTES_MAX).contains(&self.window_minutes) {
            return Err(invalid(
                "window_minutes",
                format!("from 1 to {WINDOW_MINUTES_MAX} minutes (a week)"),
            ));
        }
        for role in self.roles.keys() {
            if !BuiltinRole::ALL.iter().any(|known| known.as_str() == role) {
                return Err(invalid(
                    "roles",
                    format!("unknown role {role:?}: use owner, admin, member, viewer or auditor"),
                ));
            }
        }
        let zero = |allowance: &Allowance| {
            allowance.files_max == Some(0) || allowance.bytes_max == Some(0)
        };
        if zero(&self.default) || self.roles.values().any(zero) {
            return Err(invalid(
                "files_max",
                "a limit is at least 1; to forbid downloads, take documents:download away".into(),
            ));
        }
        Ok(())
    }

    /// The allowance of a caller: the most generous of their roles', each role counting with
    /// its own allowance or, without one, the default; callers without roles get the default.
    /// So taking on a role never lowers what a caller may download.
    fn allowance(&self, roles: Option<&str>) -> Allowance {
        roles
            .into_iter()
            .flat_map(str::split_whitespace)
            .map(|role| self.roles.get(role).copied().unwrap_or(self.default))
            .reduce(|most, allowance| Allowance {
                files_max: more(most.files_max, allowance.files_max),
                bytes_max: more(most.bytes_max, allowance.bytes_max),
            })
            .unwrap_or(self.default)
    }
}

/// The larger of two limits, where `None` (no limit) is the largest.
fn more(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        _ => None,
    }
}

/// The key a caller's downloads are counted under.
fn caller_key(principal: &TokenPrincipal) -> String {
    match &principal.user {
        Some(user) => format!("user:{}", user.user_id),
        None => format!("token:{}", principal.token_id),
    }
}

pub(crate) fn load(context: &TenantContext) -> Result<DownloadLimits, ServiceError> {
    Ok(crate::settings::load(context, SETTING, "the download limits")?.unwrap_or_default())
}

pub(crate) async fn store(
    context: &TenantContext,
    limits: &DownloadLimits,
) -> Result<(), ServiceError> {
    let change = JournalChange::DownloadLimits {
        limits: limits.clone(),
    };
    crate::settings::store(context, SETTING, limits, change).await
}

impl Platform {
    pub async fn download_limits(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
    ) -> Result<DownloadLimits, ServiceError> {
        let (runtime, _) = self
            .authorize_user(principal, slug, Permission::PolicyManage)
            .await?;
        let context = TenantContext::of(&runtime);
        self.observe(&context, load(&context))
    }

    pub async fn set_download_limits(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
        limits: DownloadLimits,
    ) -> Result<DownloadLimits, ServiceError> {
        let (runtime, caller) = self
            .authorize_user(principal, slug, Permission::PolicyManage)
            .await?;
        limits.validate()?;
        let context = TenantContext::of(&runtime);
        store(&context, &limits).await?;
        tracing::info!(tenant_id = %context.tenant_id, user_id = %caller.user_id, "download limits changed");
        Ok(limits)
    }

    /// Counts a download of `bytes` of `content` (a document version's ETag) before it is
    /// sent, or refuses it with 429. A range of content the caller already downloaded in the
    /// window counts its bytes but no further file. Answers what was counted, when limits
    /// apply, so bytes never sent can be taken back ([`Platform::refund_download`]).
    pub async fn count_download(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
        content: &str,
        ranged: bool,
        bytes: u64,
    ) -> Result<Option<CountedDownload>, ServiceError> {
        let runtime = self.tenant_for(principal, slug).await?;
        let context = TenantContext::of(&runtime);
        let limits = self.observe(&context, load(&context))?;
        let allowance = limits.allowance(principal.user.as_ref().map(|user| user.roles.as_str()));
        if allowance == Allowance::default() {
            return Ok(None);
        }
        let window_micros = i64::from(limits.window_minutes) * 60 * 1_000_000;
        let now = self.clock.now().unix_micros();
        let window_start = now - now.rem_euclid(window_micros);
        let caller = caller_key(principal);
        let decision = context
            .store
            .count_download(DownloadToCount {
                caller: caller.clone(),
                window_start,
                content: content.to_owned(),
                ranged,
                bytes,
                files_max: allowance.files_max,
                bytes_max: allowance.bytes_max,
            })
            .await?;
        let count = decision.count;
        if decision.counted {
            return Ok(Some(CountedDownload {
                tenant_id: context.tenant_id.clone(),
                caller,
                window_id: decision.window_id,
            }));
        }
        self.security.raise(
            SecurityEventKind::DownloadLimitReached,
            Some(&context.tenant_id),
            &format!(
                "{caller} reached the download limit and is blocked for the window (files: {}, bytes: {} counted in it)",
                count.files, count.bytes
            ),
        );
        Err(ServiceError::DownloadLimit {
            retry_after_seconds: (window_start + window_micros - now + 999_999) / 1_000_000,
        })
    }

    /// Takes back the `unsent` bytes of a counted download that stopped before its end (the
    /// client went away, or reading failed half-way), so a caller on a poor connection who
    /// resumes with a range is counted for what reached them. The file stays counted, and a
    /// block stays until its window ends or an admin lifts it. In the background: the answer
    /// is already gone; the shutdown waits for it.
    pub fn refund_download(&self, counted: CountedDownload, unsent: u64) {
        self.after_the_answer(
            "taking back the unsent bytes of a download cut short",
            move |platform| async move {
                let Some(runtime) = platform.tenant_by_id(&counted.tenant_id).await? else {
                    return Ok(());
                };
                runtime
                    .store
                    .uncount_download_bytes(&counted.caller, counted.window_id, unsent)
                    .await?;
                Ok(())
            },
        );
    }

    /// Lifts a user's or an API token's download block (users:manage).
    pub async fn lift_download_block(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
        subject_id: &str,
    ) -> Result<(), ServiceError> {
        let (runtime, caller) = self
            .authorize_user(principal, slug, Permission::UsersManage)
            .await?;
        let context = TenantContext::of(&runtime);
        let mut lifted = 0;
        for key in [format!("user:{subject_id}"), format!("token:{subject_id}")] {
            lifted += context.store.reset_downloads(&key).await?;
        }
        if lifted == 0 {
            return Err(ServiceError::NotFound("download count"));
        }
        tracing::info!(tenant_id = %context.tenant_id, user_id = %caller.user_id, subject = %subject_id, "download block lifted");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_generous_role_allowance_applies() {
        let mut limits = DownloadLimits {
            default: Allowance {
                files_max: Some(10),
                bytes_max: None,
            },
            ..DownloadLimits::default()
        };
        limits.roles.insert(
            "viewer".into(),
            Allowance {
                files_max: Some(2),
                bytes_max: Some(100),
            },
        );
        limits.roles.insert(
            "member".into(),
            Allowance {
                files_max: Some(5),
                bytes_max: None,
            },
        );
        assert_eq!(limits.allowance(None).files_max, Some(10), "API tokens");
        assert_eq!(limits.allowance(Some("auditor")).files_max, Some(10));
        assert_eq!(
            limits.allowance(Some("viewer")),
            Allowance {
                files_max: Some(2),
                bytes_max: Some(100)
            }
        );
        assert_eq!(
            limits.allowance(Some("viewer member")),
            Allowance {
                files_max: Some(5),
                bytes_max: None
            }
        );
        assert_eq!(
            limits.allowance(Some("viewer auditor")),
            Allowance {
                files_max: Some(10),
                bytes_max: None
            },
            "a role without an allowance of its own counts with the default"
        );
        assert!(limits.validate().is_ok());
        limits.window_minutes = 0;
        assert!(limits.validate().is_err());
    }
}
