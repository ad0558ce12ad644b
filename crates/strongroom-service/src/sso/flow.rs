//! The sign-in itself: the authorization-code flow with PKCE, state and nonce (openidconnect
//! checks the ID token's signature against the provider's keys, `iss`, `aud`, expiry and the
//! nonce). The state is single-use, expires after ten minutes, and is bound to the browser that
//! started the flow by a cookie, so a code cannot be replayed into someone else's browser.

use super::{SsoProvider, load};
use crate::journal::JournalChange;
use crate::outbound::{OutboundHttp, OutboundHttpError};
use crate::platform::Platform;
use crate::tenant_context::TenantContext;
use crate::users::{SignIn, UserState, email_index, normalize_email, put_new_user};
use crate::{SecurityEventKind, ServiceError};
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use std::collections::HashMap;
use std::sync::Mutex;
use strongroom_crypto::hash_token;
use strongroom_storage::StoredUser;

/// How long a started sign-in may take at the provider.
const PENDING_LIFETIME_MICROS: i64 = 10 * 60 * 1_000_000;
/// Sign-ins in progress across all tenants; beyond this the oldest are not waited for.
const PENDING_MAX: usize = 10_000;
/// Per tenant, so one tenant's flood cannot stop every other tenant's sign-ins.
const PENDING_PER_TENANT_MAX: usize = 1_000;
const LINK_PREFIX: &str = "sso-link/";

/// Where to send the browser, and the value of the cookie that binds the flow to it.
#[derive(Debug)]
pub struct SsoStart {
    pub authorization_url: String,
    pub browser_binding: String,
}

/// What the provider sent back to the callback.
#[derive(Debug, Default)]
pub struct SsoCallback {
    pub code: Option<String>,
    pub state: Option<String>,
    /// The provider's refusal (`access_denied`, …) instead of a code.
    pub error: Option<String>,
    /// The binding cookie of the browser.
    pub browser_binding: Option<String>,
}

struct PendingSignIn {
    tenant_id: String,
    provider: String,
    nonce: String,
    pkce_verifier: String,
    binding_hash: [u8; 32],
    started_at: i64,
}

/// Sign-ins waiting for the provider's answer, keyed by the hash of their state.
#[derive(Default)]
pub(crate) struct PendingSignIns {
    entries: Mutex<HashMap<[u8; 32], PendingSignIn>>,
}

impl PendingSignIns {
    fn insert(
        &self,
        state_hash: [u8; 32],
        pending: PendingSignIn,
        now: i64,
    ) -> Result<(), ServiceError> {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if entries.len() >= PENDING_MAX
            || entries
                .values()
                .filter(|entry| entry.tenant_id == pending.tenant_id)
                .count()
                >= PENDING_PER_TENANT_MAX
        {
            entries.retain(|_, entry| now - entry.started_at <= PENDING_LIFETIME_MICROS);
        }
        let of_tenant = entries
            .values()
            .filter(|entry| entry.tenant_id == pending.tenant_id)
            .count();
        if entries.len() >= PENDING_MAX || of_tenant >= PENDING_PER_TENANT_MAX {
            return Err(ServiceError::Unavailable(
                "too many single sign-ons in progress; try again in a few minutes".into(),
            ));
        }
        entries.insert(state_hash, pending);
        Ok(())
    }

    /// Takes the sign-in out if the browser's binding matches: a state is used at most once,
    /// and someone who only learned the state cannot spend it for the browser that owns it.
    fn take(
        &self,
        state_hash: &[u8; 32],
        binding_hash: Option<[u8; 32]>,
        now: i64,
    ) -> Option<PendingSignIn> {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let bound = entries
            .get(state_hash)
            .is_some_and(|entry| Some(entry.binding_hash) == binding_hash);
        if !bound {
            return None;
        }
        entries
            .remove(state_hash)
            .filter(|entry| now - entry.started_at <= PENDING_LIFETIME_MICROS)
    }
}

fn failed(reason: impl Into<String>) -> ServiceError {
    ServiceError::SsoFailed(reason.into())
}

/// The details (addresses, status codes) go to the server log only: a tenant admin must not
/// learn about the network the server sits in from them.
fn provider_unreachable(error: impl std::fmt::Display) -> ServiceError {
    tracing::info!(%error, "an identity provider could not be used");
    failed(
        "the identity provider could not be reached or gave an unusable answer; the server log has the details",
    )
}

/// The provider's client, from its discovery document (which also brings its signing keys).
async fn discover(
    provider: &SsoProvider,
    redirect_uri: String,
    http: &OutboundHttp,
) -> Result<
    CoreClient<
        openidconnect::EndpointSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointMaybeSet,
        openidconnect::EndpointMaybeSet,
    >,
    ServiceError,
> {
    let issuer = IssuerUrl::new(provider.issuer.clone()).map_err(provider_unreachable)?;
    let metadata = CoreProviderMetadata::discover_async(issuer, http)
        .await
        .map_err(provider_unreachable)?;
    let redirect = RedirectUrl::new(redirect_uri).map_err(provider_unreachable)?;
    Ok(CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(provider.client_id.clone()),
        Some(ClientSecret::new(provider.client_secret.clone())),
    )
    .set_redirect_uri(redirect))
}

/// Keeps a provider's error code readable and harmless in our answer.
fn provider_error_code(error: &str) -> String {
    error
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(64)
        .collect()
}

fn link_setting(context: &TenantContext, issuer: &str, subject: &str) -> String {
    let token = context.keys.index_key.token(
        crate::sealing::index_domain::SSO_SUBJECT,
        &[issuer.as_bytes(), subject.as_bytes()],
    );
    format!("{LINK_PREFIX}{}", hex::encode(token))
}

/// The user an issuer and subject were linked to, if that user still exists.
fn linked_user(context: &TenantContext, link: &str) -> Result<Option<StoredUser>, ServiceError> {
    let user_id: Option<String> = crate::settings::load(context, link, "a single sign-on link")?;
    match user_id {
        Some(user_id) => Ok(context.store.user(&user_id)?),
        None => Ok(None),
    }
}

pub(crate) async fn store_link(
    context: &TenantContext,
    link: &str,
    user_id: &str,
) -> Result<(), ServiceError> {
    let change = JournalChange::SsoLink {
        link: link.to_owned(),
        user_id: user_id.to_owned(),
    };
    crate::settings::store(context, link, &user_id, change).await
}

impl Platform {
    /// Starts a sign-in with one of the tenant's providers.
    pub async fn start_sso(
        &self,
        slug: &str,
        provider_name: &str,
    ) -> Result<SsoStart, ServiceError> {
        // An unknown tenant and an unknown provider answer alike.
        let runtime = self
            .tenant(slug)
            .await
            .map_err(|_| ServiceError::NotFound("provider"))?;
        if runtime.is_suspended() {
            return Err(ServiceError::TenantSuspended(runtime.slug.clone()));
        }
        let context = TenantContext::of(&runtime);
        let providers = self.observe(&context, load(&context))?;
        let provider = providers
            .get(provider_name)
            .ok_or(ServiceError::NotFound("provider"))?;
        let http = &self.outbound;
        let client = discover(provider, self.sso_redirect_uri(&runtime.slug), http).await?;
        let (pkce_challenge, pkce_verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("email".into()))
            .add_scope(Scope::new("profile".into()))
            .set_pkce_challenge(pkce_challenge)
            .url();
        let browser_binding = strongroom_crypto::generate_token("srb")?;
        let now = self.clock.now().unix_micros();
        self.sso_pending.insert(
            hash_token(state.secret()),
            PendingSignIn {
                tenant_id: runtime.id.clone(),
                provider: provider_name.to_owned(),
                nonce: nonce.secret().clone(),
                pkce_verifier: pkce_verifier.secret().clone(),
                binding_hash: hash_token(&browser_binding),
                started_at: now,
            },
            now,
        )?;
        Ok(SsoStart {
            authorization_url: url.to_string(),
            browser_binding,
        })
    }

    /// Finishes a sign-in: checks the answer, finds (or creates) the user, opens a session or
    /// asks for the second factor like a password sign-in.
    pub async fn finish_sso(
        &self,
        slug: &str,
        callback: SsoCallback,
    ) -> Result<SignIn, ServiceError> {
        let now = self.clock.now().unix_micros();
        let binding_hash = callback.browser_binding.as_deref().map(hash_token);
        let pending = callback
            .state
            .as_deref()
            .and_then(|state| self.sso_pending.take(&hash_token(state), binding_hash, now))
            .ok_or_else(|| {
                failed(
                    "this sign-in is unknown, used, expired or was started in another browser: start again from the sign-in page",
                )
            })?;
        let runtime = self
            .tenant(slug)
            .await
            .map_err(|_| failed("unknown organisation"))?;
        if runtime.id != pending.tenant_id {
            return Err(failed("this sign-in was started for another organisation"));
        }
        if runtime.is_suspended() {
            return Err(ServiceError::TenantSuspended(runtime.slug.clone()));
        }
        if let Some(error) = &callback.error {
            return Err(failed(format!(
                "the identity provider refused the sign-in: {}",
                provider_error_code(error)
            )));
        }
        let code = callback
            .code
            .ok_or_else(|| failed("the identity provider sent no authorization code"))?;
        let context = TenantContext::of(&runtime);
        let providers = self.observe(&context, load(&context))?;
        let provider = providers
            .get(&pending.provider)
            .ok_or_else(|| failed("this provider was removed meanwhile"))?;
        let http = &self.outbound;
        let client = discover(provider, self.sso_redirect_uri(&runtime.slug), http).await?;
        let tokens = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(provider_unreachable)?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier))
            .request_async(http)
            .await
            .map_err(|error| match &error {
                openidconnect::RequestTokenError::ServerResponse(response) => failed(format!(
                    "the identity provider refused the code: {}",
                    provider_error_code(response.error().as_ref())
                )),
                other => provider_unreachable(other),
            })?;
        let id_token = tokens
            .id_token()
            .ok_or_else(|| failed("the identity provider sent no ID token"))?;
        let claims = id_token
            .claims(&client.id_token_verifier(), &Nonce::new(pending.nonce))
            .map_err(|error| {
                self.security.raise(
                    SecurityEventKind::SsoRejected,
                    Some(&context.tenant_id),
                    &format!(
                        "an ID token from {} failed verification: {error}",
                        provider.issuer
                    ),
                );
                failed(format!("the ID token failed verification: {error}"))
            })?;
        let email = claims
            .email()
            .map(|email| email.as_str().to_owned())
            .ok_or_else(|| failed("the identity provider sent no email address"))?;
        if claims.email_verified() != Some(true) {
            return Err(failed(
                "the identity provider has not verified this email address",
            ));
        }
        let email = normalize_email(&email)?;
        let domain = email.rsplit('@').next().unwrap_or_default();
        if !provider
            .allowed_email_domains
            .iter()
            .any(|allowed| allowed == domain)
        {
            self.security.raise(
                SecurityEventKind::SsoRejected,
                Some(&context.tenant_id),
                &format!(
                    "a sign-in through {} came from a domain not allowed",
                    pending.provider
                ),
            );
            return Err(failed(format!(
                "{domain} addresses may not sign in to this organisation"
            )));
        }
        let display_name = claims
            .name()
            .and_then(|name| name.get(None))
            .map(|name| name.as_str().to_owned())
            .unwrap_or_else(|| email.clone());
        let link = link_setting(&context, &provider.issuer, claims.subject().as_str());
        let user = self
            .sso_user(&context, provider, &link, &email, &display_name)
            .await?;
        if user.disabled {
            return Err(ServiceError::LoginFailed);
        }
        tracing::info!(tenant_id = %context.tenant_id, user_id = %user.id, provider = %pending.provider, "single sign-on");
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

    /// The linked user; else, when an owner allowed it, the user with this (verified, allowed)
    /// email, now linked; else a new user when the provider creates users.
    async fn sso_user(
        &self,
        context: &TenantContext,
        provider: &SsoProvider,
        link: &str,
        email: &str,
        display_name: &str,
    ) -> Result<StoredUser, ServiceError> {
        if let Some(user) = self.observe(context, linked_user(context, link))? {
            return Ok(user);
        }
        let user = match context.store.user_by_email(&email_index(context, email))? {
            Some(user) if provider.link_existing_users => user,
            Some(_) => {
                return Err(failed(
                    "an account with this email exists but is not linked to this provider; ask an owner to allow linking existing users",
                ));
            }
            None if provider.create_users => {
                let now = self.clock.now().unix_micros();
                let display_name = crate::users::check_display_name(display_name)
                    .or_else(|_| crate::users::check_display_name(email))?;
                put_new_user(
                    context,
                    UserState {
                        user_id: strongroom_crypto::random_hex_id()?,
                        email: email.to_owned(),
                        display_name,
                        phone: None,
                        password_hash: None,
                        roles: provider.role.clone().unwrap_or_default(),
                        disabled: false,
                        must_change_password: false,
                        password_changed_at: None,
                        created_at: now,
                        updated_at: now,
                    },
                )
                .await?
            }
            None => {
                return Err(failed(
                    "there is no account for this email in this organisation; ask an admin to create one",
                ));
            }
        };
        store_link(context, link, &user.id).await?;
        Ok(user)
    }
}

impl From<OutboundHttpError> for ServiceError {
    fn from(error: OutboundHttpError) -> Self {
        provider_unreachable(error)
    }
}
