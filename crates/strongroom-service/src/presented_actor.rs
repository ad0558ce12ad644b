//! Who a credential names, for a change's intent. The intent is durable before the handler
//! runs, so before its extractors authenticate the caller; after a crash between the change
//! and its outcome, the intent is the change's only event, and it must still say who asked.

use crate::ServiceError;
use crate::audit::AuditActor;
use crate::platform::{Platform, blocking};
use crate::sign_in::session_cache_key;
use crate::tenant_context::TenantContext;
use strongroom_crypto::hash_token;

impl Platform {
    /// The actor `secret` names on `listener` (`public` or `admin`) for a request to `slug`.
    /// Read only: no security event is raised, no session touched or ended, nothing refused.
    /// The handler authenticates as always, and the outcome names whom it found; a credential
    /// that names nobody here is anonymous.
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
        let control = self.control.clone();
        blocking(move || {
            let name = match session {
                true => match control.operator_session(&hash)? {
                    Some(session) => control
                        .operator(&session.operator_id)?
                        .map(|operator| operator.name),
                    None => None,
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
        if secret.starts_with("srs_") {
            let Some(slug) = slug else {
                return Ok(None);
            };
            let now = self.clock.now().unix_micros();
            if let Some(principal) = self.sessions.get(&session_cache_key(slug, secret), now) {
                return Ok(Some(AuditActor::of(&principal)));
            }
            // Sessions live in their tenant; one not open yet is opened by the handler.
            let Some(runtime) = self.cached_tenant(slug) else {
                return Ok(None);
            };
            let session = TenantContext::of(&runtime).store.session(&hash)?;
            return Ok(session.map(|session| AuditActor::User {
                id: session.user_id,
            }));
        }
        if let Some(principal) = self.cached_token(&hash) {
            return Ok(Some(AuditActor::of(&principal)));
        }
        let grant = secret.starts_with("srg_");
        let control = self.control.clone();
        blocking(move || {
            Ok(match grant {
                true => {
                    control
                        .support_grant_by_token(&hash)?
                        .map(|row| AuditActor::SupportGrant {
                            grant_id: row.id,
                            operator: row.operator_name,
                        })
                }
                false => control
                    .api_token_by_hash(&hash)?
                    .map(|row| AuditActor::ApiToken { id: row.id }),
            })
        })
        .await
    }
}
