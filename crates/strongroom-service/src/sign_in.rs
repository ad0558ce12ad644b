//! Signing in: password check under the brute-force rules, the session (or a second-factor
//! challenge), session lookup with its expiry, and signing out.

use crate::platform::Platform;
use crate::tenant_context::TenantContext;
use crate::tenants::{SessionUser, TokenPrincipal};
use crate::users::{
    SESSION_TOUCH_MICROS, SignIn, SignedIn, email_index, normalize_email, open_password, user_view,
};
use crate::{SecurityEventKind, ServiceError};
use std::sync::Arc;
use strongroom_crypto::hash_token;
use strongroom_storage::{SessionSelection, StoredSession, StoredUser};

impl Platform {
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
        if self
            .observe(&context, crate::security_policy::load(&context))?
            .sso_required
        {
            return Err(ServiceError::SsoRequired);
        }
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
        let verified = self.verify_hash(stored_hash.clone(), password).await?;
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

    /// Checks a password against a stored hash, or spends the same time when there is none.
    async fn verify_hash(
        &self,
        known: Option<String>,
        password: &str,
    ) -> Result<bool, ServiceError> {
        let hashing = self.options.password_hashing;
        let candidate = zeroize::Zeroizing::new(password.to_owned());
        let hashing_slot = self.hashing_slot().await?;
        tokio::task::spawn_blocking(move || {
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
        .map_err(|error| ServiceError::Internal(error.to_string()))
    }

    /// Whether `password` is the user's (false for no user), at the cost of one hash either way.
    pub(crate) async fn verify_password_of(
        &self,
        context: &TenantContext,
        user: Option<&StoredUser>,
        password: &str,
    ) -> Result<bool, ServiceError> {
        let stored = match user {
            Some(user) => user
                .sealed_password
                .as_ref()
                .map(|sealed| open_password(context, &user.id, sealed))
                .transpose()?,
            None => None,
        };
        self.verify_hash(stored, password).await
    }

    pub(crate) async fn count_failed_sign_in(
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
        if let Some(address) = client_address
            && self.address_throttle.record_failure(address, now_seconds)
        {
            self.security.raise(
                SecurityEventKind::AddressBlocked,
                Some(&context.tenant_id),
                &format!("address {address} blocked after failed sign-ins across accounts"),
            );
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
        // The token names its tenant (`srs_<tenant id>_<secret>`), so a session used on
        // another tenant's path can be recognised as a cross-tenant probe.
        let token = strongroom_crypto::generate_token(&format!("srs_{}", context.tenant_id))?;
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
        let cache_key = session_cache_key(slug, token);
        if let Some(principal) = self
            .sessions
            .get(&cache_key, self.clock.now().unix_micros())
        {
            return Ok(principal);
        }
        let generation = self.sessions.generation();
        let principal = match self.load_session(slug, token).await {
            Ok(principal) => principal,
            Err(error) => {
                self.notice_cross_tenant_session(slug, token);
                return Err(error);
            }
        };
        self.sessions.insert(
            cache_key,
            principal.clone(),
            self.clock.now().unix_micros(),
            generation,
        );
        Ok(principal)
    }

    /// A live session of another tenant used on this tenant's path is a cross-tenant probe,
    /// as another tenant's API token is: recorded for the tenant probed, naming neither tenant
    /// to the other. Only the tenant the token names is asked whether the session is live, and
    /// only by reading (nothing touched or ended), so a made-up name raises nothing and the
    /// caller cannot tell from its session afterwards. Looked into in the background, after
    /// the 401 is on its way, so the answer takes as long whether the slug is another
    /// tenant's or nobody's.
    fn notice_cross_tenant_session(&self, slug: &str, token: &str) {
        // The path's tenant, if it exists, was just opened to look for the session; a session
        // of that tenant itself (one that ended, say) is no probe.
        let (Some(issuer), Some(target)) = (session_issuer(token), self.cached_tenant(slug)) else {
            return;
        };
        if issuer == target.id {
            return;
        }
        let platform = self.security.platform();
        let (issuer, target, token_hash) =
            (issuer.to_owned(), target.id.clone(), hash_token(token));
        // The event names the request it arose in, as one raised in place would.
        let origin = crate::RequestOrigin::current().unwrap_or_default();
        self.security.in_background(origin.scope(async move {
            if let Some(platform) = platform.upgrade() {
                platform
                    .probe_by_session(&target, &issuer, &token_hash)
                    .await;
            }
        }));
    }

    /// Only tenants already open are asked: the token's text names the issuer, and a made-up
    /// name must not get a tenant's store opened (its later answers would come faster).
    async fn probe_by_session(&self, target: &str, issuer: &str, token_hash: &[u8]) {
        let control = self.control.clone();
        let issuer_id = issuer.to_owned();
        let Ok(Some(row)) =
            crate::platform::blocking(move || Ok(control.tenant_by_id(&issuer_id)?)).await
        else {
            return;
        };
        let Some(issuing) = self.cached_tenant(&row.slug) else {
            return;
        };
        if let Ok(Some(user_id)) = self.live_session_user(&TenantContext::of(&issuing), token_hash)
        {
            // Operators find the session's user in the log; the tenant probed learns nothing
            // of the other tenant.
            tracing::info!(target: "security", probed_tenant_id = %target, issuing_tenant_id = %issuer, %user_id, "a session was used on another tenant's path");
            self.security.raise(
                SecurityEventKind::CrossTenantProbe,
                Some(target),
                "a session of another tenant was used on this tenant's path",
            );
        }
    }

    /// The user of a live session of this tenant (not ended, user not disabled). Read only:
    /// the session is neither touched nor ended, so asking leaves no trace.
    pub(crate) fn live_session_user(
        &self,
        context: &TenantContext,
        token_hash: &[u8],
    ) -> Result<Option<String>, ServiceError> {
        Ok(match self.read_session(context, token_hash)? {
            SessionRead::Live { user, .. } => Some(user.id),
            _ => None,
        })
    }

    /// The session behind `token_hash` as it stands now, read only: whether it exists, has
    /// ended under the tenant's policy, or belongs to a user who is gone or disabled.
    fn read_session(
        &self,
        context: &TenantContext,
        token_hash: &[u8],
    ) -> Result<SessionRead, ServiceError> {
        let Some(session) = context.store.session(token_hash)? else {
            return Ok(SessionRead::Unknown);
        };
        let now = self.clock.now().unix_micros();
        let policy = self.observe(context, crate::security_policy::load(context))?;
        if policy
            .sessions
            .has_ended(session.created_at, session.last_seen_at, now)
        {
            return Ok(SessionRead::Ended {
                user_id: session.user_id,
            });
        }
        Ok(
            match context
                .store
                .user(&session.user_id)?
                .filter(|user| !user.disabled)
            {
                Some(user) => SessionRead::Live {
                    session,
                    user,
                    policy,
                    now,
                },
                None => SessionRead::Unknown,
            },
        )
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
        let (session, user, policy, now) = match self.read_session(&context, &token_hash)? {
            SessionRead::Live {
                session,
                user,
                policy,
                now,
            } => (session, user, policy, now),
            SessionRead::Ended { user_id } => {
                let _ = self
                    .end_sessions(&context, &user_id, SessionSelection::One(token_hash))
                    .await;
                return Err(ServiceError::Unauthenticated);
            }
            SessionRead::Unknown => {
                return Err(ServiceError::Unauthenticated);
            }
        };
        if now - session.last_seen_at > SESSION_TOUCH_MICROS {
            context.store.touch_session(&token_hash, now).await?;
        }
        Ok(Arc::new(TokenPrincipal {
            token_id: user.id.clone(),
            tenant_id: runtime.id.clone(),
            scopes: Default::default(),
            expires_at: None,
            support: None,
            user: Some(SessionUser {
                user_id: user.id.clone(),
                roles: user.roles.clone(),
                session_hash: token_hash,
                grants: crate::access_model::load(&context)?.grants_for(&user.id, &user.roles),
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
        self.end_sessions(
            &TenantContext::of(&runtime),
            &user.user_id,
            SessionSelection::One(user.session_hash),
        )
        .await?;
        Ok(())
    }
}

/// A session as [`Platform::read_session`] found it.
// Made once per session lookup and taken apart at once: boxing the live one would only add an
// allocation.
#[allow(clippy::large_enum_variant)]
enum SessionRead {
    /// No such session, or its user was removed or disabled.
    Unknown,
    /// Past the tenant's idle or absolute timeout.
    Ended { user_id: String },
    Live {
        session: strongroom_storage::StoredSession,
        user: strongroom_storage::StoredUser,
        policy: crate::security_policy::SecurityPolicy,
        /// The time it was judged live at.
        now: i64,
    },
}

/// The tenant id a session token names (`srs_<tenant id>_<secret>`); none for tokens issued
/// before tokens named their tenant.
fn session_issuer(token: &str) -> Option<&str> {
    let (tenant_id, _secret) = token.strip_prefix("srs_")?.split_once('_')?;
    (tenant_id.len() == 32 && tenant_id.bytes().all(|byte| byte.is_ascii_hexdigit()))
        .then_some(tenant_id)
}

/// A session's key in the session cache: keyed by tenant too, so a cached caller is only ever
/// found on its own tenant's path.
pub(crate) fn session_cache_key(slug: &str, token: &str) -> [u8; 32] {
    hash_token(&format!("{slug}\0{token}"))
}
