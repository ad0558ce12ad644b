//! Break-glass access (A7): an operator reaches a tenant's data only through a grant naming
//! the operator, the tenant, a justification, data scopes and a duration of at most 24 hours.
//! The grant's token (shown once) works on the public listener like an API token limited to
//! those scopes, until it expires or is revoked; every request made with it is marked. The
//! tenant's admins see every grant, can revoke one, and can require their approval first.

use crate::platform::{Platform, blocking};
use crate::tenant_context::TenantContext;
use crate::tenants::{OperatorPrincipal, SupportMark, TokenPrincipal};
use crate::users::invalid;
use crate::{SecurityEventKind, ServiceError, Timestamp};
use std::sync::Arc;
use strongroom_crypto::hash_token;
use strongroom_domain::{Permission, ScopeSet};
use strongroom_storage::{GrantStatus, SupportGrantRow};

pub const DURATION_MINUTES_MAX: u32 = 24 * 60;
const JUSTIFICATION_LENGTH: std::ops::RangeInclusive<usize> = 10..=1000;

/// A grant as operators and the tenant's admins see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupportGrantView {
    pub id: String,
    pub operator: String,
    pub tenant_slug: String,
    pub justification: String,
    pub scopes: Vec<String>,
    /// pending, active, denied, revoked, or expired.
    pub status: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub decided_by: Option<String>,
    pub decided_at: Option<Timestamp>,
}

/// What a tenant admin decides about a grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SupportDecision {
    Approve,
    Deny,
    Revoke,
}

/// A new grant with its token, shown once to the operator who asked.
#[derive(Clone)]
pub struct CreatedSupportGrant {
    pub grant: SupportGrantView,
    pub token: String,
}

// Debug without the token, so no `{:?}` can carry it into a log.
impl std::fmt::Debug for CreatedSupportGrant {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("CreatedSupportGrant")
            .field("grant", &self.grant)
            .finish_non_exhaustive()
    }
}

fn grant_view(row: &SupportGrantRow, slug: &str, now: i64) -> SupportGrantView {
    let expired =
        now >= row.expires_at && matches!(row.status, GrantStatus::Active | GrantStatus::Pending);
    SupportGrantView {
        id: row.id.clone(),
        operator: row.operator_name.clone(),
        tenant_slug: slug.to_owned(),
        justification: row.justification.clone(),
        scopes: row.scopes.split_whitespace().map(str::to_owned).collect(),
        status: if expired {
            "expired".into()
        } else {
            row.status.as_str().into()
        },
        created_at: Timestamp::from_unix_micros(row.created_at),
        expires_at: Timestamp::from_unix_micros(row.expires_at),
        decided_by: row.decided_by.clone(),
        decided_at: row.decided_at.map(Timestamp::from_unix_micros),
    }
}

impl Platform {
    /// An operator asks for access to a tenant's data. Active at once, or pending when the
    /// tenant requires approval.
    pub async fn request_support_access(
        &self,
        caller: &OperatorPrincipal,
        slug: &str,
        justification: &str,
        scopes: &[String],
        duration_minutes: u32,
    ) -> Result<CreatedSupportGrant, ServiceError> {
        let operator_id = caller.operator_id.clone().ok_or_else(|| {
            ServiceError::Conflict(
                "break-glass access needs an operator account with TOTP, not the bootstrap token"
                    .into(),
            )
        })?;
        let justification = justification.trim();
        if !JUSTIFICATION_LENGTH.contains(&justification.chars().count())
            || justification.chars().any(char::is_control)
        {
            return Err(invalid(
                "justification",
                format!(
                    "say why, in {} to {} characters (a ticket number and the reason)",
                    JUSTIFICATION_LENGTH.start(),
                    JUSTIFICATION_LENGTH.end()
                ),
            ));
        }
        let scopes = ScopeSet::parse(scopes)?;
        if scopes.is_empty() {
            return Err(invalid(
                "scopes",
                "name the data scopes needed, such as records:read".into(),
            ));
        }
        crate::tenants::refuse_audit_read_from_operators(&scopes)?;
        if !(1..=DURATION_MINUTES_MAX).contains(&duration_minutes) {
            return Err(invalid(
                "duration_minutes",
                format!("from 1 to {DURATION_MINUTES_MAX} minutes (24 hours)"),
            ));
        }
        let runtime = self.tenant(slug).await?;
        let policy = self.observe(
            &TenantContext::of(&runtime),
            crate::security_policy::load(&TenantContext::of(&runtime)),
        )?;
        let token = strongroom_crypto::generate_token("srg")?;
        let now = self.clock.now().unix_micros();
        let row = SupportGrantRow {
            id: strongroom_crypto::random_hex_id()?,
            operator_id,
            operator_name: caller.name.clone(),
            tenant_id: runtime.id.clone(),
            justification: justification.to_owned(),
            scopes: scopes.names().join(" "),
            token_hash: hash_token(&token).to_vec(),
            status: if policy.support_access_approval {
                GrantStatus::Pending
            } else {
                GrantStatus::Active
            },
            created_at: now,
            expires_at: now + i64::from(duration_minutes) * 60 * 1_000_000,
            decided_by: None,
            decided_at: None,
        };
        let control = self.control.clone();
        let stored = row.clone();
        blocking(move || Ok(control.insert_support_grant(stored)?)).await?;
        self.security.raise(
            SecurityEventKind::SupportAccessGranted,
            Some(&runtime.id),
            &format!(
                "operator {} was granted {} access ({}) for {duration_minutes} minutes: grant {}",
                caller.name,
                row.scopes,
                row.status.as_str(),
                row.id
            ),
        );
        Ok(CreatedSupportGrant {
            grant: grant_view(&row, &runtime.slug, now),
            token,
        })
    }

    /// Every grant, newest first (operators).
    pub async fn all_support_grants(&self) -> Result<Vec<SupportGrantView>, ServiceError> {
        let control = self.control.clone();
        let (rows, tenants) =
            blocking(move || Ok((control.support_grants(None)?, control.list_tenants()?))).await?;
        let now = self.clock.now().unix_micros();
        Ok(rows
            .iter()
            .map(|row| {
                let slug = tenants
                    .iter()
                    .find(|tenant| tenant.id == row.tenant_id)
                    .map_or("-", |tenant| tenant.slug.as_str());
                grant_view(row, slug, now)
            })
            .collect())
    }

    /// Revokes every pending or active grant of an operator (when the account is disabled).
    pub(crate) fn revoke_grants_of(
        control: &dyn strongroom_storage::ControlStore,
        operator_id: &str,
        decided_by: &str,
        now: i64,
    ) -> Result<u64, ServiceError> {
        let mut revoked = 0;
        for grant in control
            .support_grants(None)?
            .into_iter()
            .filter(|grant| grant.operator_id == operator_id)
        {
            if control.decide_support_grant(
                &grant.id,
                &[GrantStatus::Pending, GrantStatus::Active],
                GrantStatus::Revoked,
                decided_by,
                now,
            )? {
                revoked += 1;
            }
        }
        Ok(revoked)
    }

    /// An operator takes back a grant (their own or another's).
    pub async fn revoke_support_grant(
        &self,
        caller: &OperatorPrincipal,
        grant_id: &str,
    ) -> Result<(), ServiceError> {
        self.decide_grant(
            grant_id,
            None,
            GrantStatus::Revoked,
            &format!("operator {}", caller.name),
        )
        .await
        .map(|_| ())
    }

    /// The tenant's grants, for its admins (users:manage).
    pub async fn support_access(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
    ) -> Result<Vec<SupportGrantView>, ServiceError> {
        let (runtime, _) = self
            .authorize_user(principal, slug, Permission::UsersManage)
            .await?;
        let control = self.control.clone();
        let tenant_id = runtime.id.clone();
        let rows = blocking(move || Ok(control.support_grants(Some(&tenant_id))?)).await?;
        let now = self.clock.now().unix_micros();
        Ok(rows
            .iter()
            .map(|row| grant_view(row, &runtime.slug, now))
            .collect())
    }

    /// A tenant admin approves or denies a pending grant, or revokes one.
    pub async fn decide_support_access(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
        grant_id: &str,
        decision: SupportDecision,
    ) -> Result<SupportGrantView, ServiceError> {
        let decision = match decision {
            SupportDecision::Approve => GrantStatus::Active,
            SupportDecision::Deny => GrantStatus::Denied,
            SupportDecision::Revoke => GrantStatus::Revoked,
        };
        let (runtime, user) = self
            .authorize_user(principal, slug, Permission::UsersManage)
            .await?;
        let row = self
            .decide_grant(
                grant_id,
                Some(&runtime.id),
                decision,
                &format!("user {}", user.user_id),
            )
            .await?;
        Ok(grant_view(
            &row,
            &runtime.slug,
            self.clock.now().unix_micros(),
        ))
    }

    async fn decide_grant(
        &self,
        grant_id: &str,
        tenant_id: Option<&str>,
        decision: GrantStatus,
        decided_by: &str,
    ) -> Result<SupportGrantRow, ServiceError> {
        let from: &'static [GrantStatus] = match decision {
            GrantStatus::Active | GrantStatus::Denied => &[GrantStatus::Pending],
            GrantStatus::Revoked => &[GrantStatus::Pending, GrantStatus::Active],
            GrantStatus::Pending => {
                return Err(ServiceError::Internal(
                    "a grant is never decided back to pending".into(),
                ));
            }
        };
        let control = self.control.clone();
        let (id, tenant, by) = (
            grant_id.to_owned(),
            tenant_id.map(str::to_owned),
            decided_by.to_owned(),
        );
        let now = self.clock.now().unix_micros();
        let row = blocking(move || {
            // Another tenant's grant answers like one that does not exist.
            let row = control
                .support_grant(&id)?
                .filter(|row| {
                    tenant
                        .as_ref()
                        .is_none_or(|tenant| *tenant == row.tenant_id)
                })
                .ok_or(ServiceError::NotFound("grant"))?;
            if !control.decide_support_grant(&id, from, decision, &by, now)? {
                return Err(ServiceError::Conflict(format!(
                    "this grant is {} and cannot become {}",
                    row.status.as_str(),
                    decision.as_str()
                )));
            }
            Ok(control.support_grant(&id)?.unwrap_or(row))
        })
        .await?;
        tracing::info!(grant_id = %row.id, tenant_id = %row.tenant_id, decided_by = %decided_by, status = row.status.as_str(), "break-glass grant decided");
        Ok(row)
    }

    /// The caller behind an `srg_` grant token: the grant's tenant and scopes, marked.
    pub(crate) async fn authenticate_support_grant(
        &self,
        token: &str,
    ) -> Result<Arc<TokenPrincipal>, ServiceError> {
        let hash = hash_token(token).to_vec();
        let control = self.control.clone();
        let (row, operator_active) = blocking(move || {
            let row = control.support_grant_by_token(&hash)?;
            // A grant works only while its operator's account does.
            let active = match &row {
                Some(row) => control.operator(&row.operator_id)?.is_some_and(|operator| {
                    operator.status == strongroom_storage::OperatorStatus::Active
                }),
                None => false,
            };
            Ok((row, active))
        })
        .await?;
        let now = self.clock.now().unix_micros();
        let Some(row) = row else {
            self.security.raise(
                SecurityEventKind::UnknownToken,
                None,
                "a break-glass token matching no grant was presented",
            );
            return Err(ServiceError::Unauthenticated);
        };
        if let Some(reason) = grant_refusal(&row, operator_active, now) {
            return Err(ServiceError::InvalidCredential(reason.into()));
        }
        let scope_names: Vec<&str> = row.scopes.split_whitespace().collect();
        Ok(Arc::new(TokenPrincipal {
            token_id: format!("support-grant-{}", row.id),
            tenant_id: row.tenant_id,
            scopes: ScopeSet::parse(&scope_names)?,
            expires_at: Some(Timestamp::from_unix_micros(row.expires_at)),
            user: None,
            support: Some(SupportMark {
                grant_id: row.id,
                operator: row.operator_name,
            }),
        }))
    }
}

/// Why a break-glass grant does not work now, or none when it does: its operator disabled,
/// expired, or not (or no longer) approved.
pub(crate) fn grant_refusal(
    row: &strongroom_storage::SupportGrantRow,
    operator_active: bool,
    now: i64,
) -> Option<&'static str> {
    match row.status {
        _ if !operator_active => Some("the operator of this break-glass grant is disabled"),
        _ if now >= row.expires_at => Some("this break-glass grant has expired"),
        GrantStatus::Pending => Some("this break-glass grant waits for the tenant's approval"),
        GrantStatus::Denied => Some("the tenant denied this break-glass grant"),
        GrantStatus::Revoked => Some("this break-glass grant was revoked"),
        GrantStatus::Active => None,
    }
}
