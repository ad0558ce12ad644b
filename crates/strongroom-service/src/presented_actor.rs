//! Who a credential names, for a change's intent. The intent is durable before the handler
//! runs, so before its extractors authenticate the caller; after a crash between the change
//! and its outcome, the intent is the change's only event, and it must still say who asked.

use crate::ServiceError;
use crate::audit::AuditActor;
use crate::operators::operator_session_ended;
use crate::platform::{Platform, blocking};
use crate::sign_in::session_cache_key;
use crate::support_access::grant_refusal;
use crate::tenant_context::TenantContext;
use strongroom_crypto::hash_token;
use strongroom_storage::OperatorStatus;

impl Platform {
    /// The actor `secret` names on `listener` (`public` or `admin`) for a request to `slug`,
    /// if the credential works now (a live session of an enabled user, a token not expired, an
    /// active grant of an active operator). Read only: no security event is raised, no session
    /// touched or ended, nothing refused. The handler authenticates as always, and the outcome
    /// names whom it found; a credential that names nobody here is anonymous.
    pub async fn presented_actor(
        &self,
        listener: &str,
        slug: Option<&str>,
        secret: &str,
    ) -> AuditActor {
        let found = match listener {
            "admin" => self.presented_operator(secret).await,
            _ => self.presented_tenant_caller(slug, secret).await,
        };
        found.ok().flatten().unwrap_or_default()
    }

    async fn presented_operator(&self, secret: &str) -> Result<Option<AuditActor>, ServiceError> {
        let hash = hash_token(secret);
        let session = secret.starts_with("sra_");
        let now = self.clock.now().unix_micros();
        let control = self.control.clone();
        blocking(move || {
            let name = match session {
                true => match control.operator_session(&hash)? {
                    Some(session) if !operator_session_ended(&session, now) => control
                        .operator(&session.operator_id)?
                        .filter(|operator| operator.status == OperatorStatus::Active)
                        .map(|operator| operator.name),
                    _ => None,
                },
                false => control.operator_token_by_hash(&hash)?.map(|row| row.name),
            };
            Ok(name.map(|name| AuditActor::Operator { name }))
        })
        .await
    }

    async fn presented_tenant_caller(
        &self,
        slug: Option<&str>,
        secret: &str,
    ) -> Result<Option<AuditActor>, ServiceError> {
        let hash = hash_token(secret);
        let now = self.clock.now();
        if secret.starts_with("srs_") {
            let Some(slug) = slug else {
                return Ok(None);
            };
            let cache_key = session_cache_key(slug, secret);
            if let Some(principal) = self.sessions.get(&cache_key, now.unix_micros()) {
                return Ok(Some(AuditActor::of(&principal)));
            }
            // Sessions live in their tenant; one not open yet is opened by the handler.
            let Some(runtime) = self.cached_tenant(slug) else {
                return Ok(None);
            };
            let user = self.live_session_user(&TenantContext::of(&runtime), &hash)?;
            return Ok(user.map(|id| AuditActor::User { id }));
        }
        if let Some(principal) = self.cached_token(&hash) {
            let live = principal.expires_at.is_none_or(|expiry| expiry > now);
            return Ok(live.then(|| AuditActor::of(&principal)));
        }
        let grant = secret.starts_with("srg_");
        let now = now.unix_micros();
        let control = self.control.clone();
        blocking(move || {
            Ok(match grant {
                true => match control.support_grant_by_token(&hash)? {
                    Some(row) => {
                        let operator_active = control
                            .operator(&row.operator_id)?
                            .is_some_and(|operator| operator.status == OperatorStatus::Active);
                        grant_refusal(&row, operator_active, now)
                            .is_none()
                            .then_some(AuditActor::SupportGrant {
                                grant_id: row.id,
                                operator: row.operator_name,
                            })
                    }
                    None => None,
                },
                false => control
                    .api_token_by_hash(&hash)?
                    .filter(|row| row.expires_at.is_none_or(|expiry| expiry > now))
                    .map(|row| AuditActor::ApiToken { id: row.id }),
            })
        })
        .await
    }
}
