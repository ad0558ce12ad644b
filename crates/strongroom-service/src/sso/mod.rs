//! Single sign-on with OpenID Connect (A5). A tenant's admins (`policy:manage`) configure
//! providers: issuer, client id, client secret (sealed with the tenant key like every setting),
//! allowed email domains, whether unknown users are created at their first sign-in, and the
//! built-in role they get. Sign-in is the authorization-code flow with PKCE, state and nonce
//! (`flow.rs`); users are linked by issuer and subject.

mod flow;

pub(crate) use flow::{PendingSignIns, store_link};
pub use flow::{SsoCallback, SsoStart};

use crate::ServiceError;
use crate::journal::JournalChange;
use crate::platform::Platform;
use crate::tenant_context::TenantContext;
use crate::tenants::TokenPrincipal;
use crate::users::invalid;
use crate::views::PutOutcome;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use strongroom_domain::{BuiltinRole, Permission};

const SETTING: &str = "sso-providers";
pub const PROVIDERS_MAX: usize = 16;
const DOMAINS_MAX: usize = 64;
const FIELD_LENGTH_MAX: usize = 512;

/// One configured OpenID Connect provider. The client secret never leaves the service.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SsoProvider {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// Lower-case domains such as `example.com`; a sign-in needs a verified email in one.
    pub allowed_email_domains: Vec<String>,
    /// Create a user at the first sign-in of an unknown, allowed email.
    pub create_users: bool,
    /// The built-in role a created user gets; none means no rights until an admin gives some.
    pub role: Option<String>,
    /// Link an existing user with the same (verified, allowed) email at their first sign-in.
    /// Whoever controls the provider can then sign in as those users, so only owners set it,
    /// and only owners change a provider that has it.
    #[serde(default)]
    pub link_existing_users: bool,
}

impl std::fmt::Debug for SsoProvider {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SsoProvider")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// A provider as shown to admins: everything but the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoProviderView {
    pub name: String,
    pub issuer: String,
    pub client_id: String,
    pub allowed_email_domains: Vec<String>,
    pub create_users: bool,
    pub role: Option<String>,
    pub link_existing_users: bool,
    /// Where the provider must send users back: register this at the provider.
    pub redirect_uri: String,
}

/// A change to a provider; a missing secret keeps the stored one.
#[derive(Debug, Clone)]
pub struct SsoProviderChange {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    pub allowed_email_domains: Vec<String>,
    pub create_users: bool,
    pub role: Option<String>,
    pub link_existing_users: bool,
}

/// Provider names: 2 to 40 characters a-z, 0-9 and '-', not `callback`.
fn check_provider_name(name: &str) -> Result<(), ServiceError> {
    let valid = (2..=40).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && name != "callback";
    if valid {
        Ok(())
    } else {
        Err(invalid(
            "name",
            "use 2 to 40 characters a-z, 0-9 and '-', starting with a letter (not \"callback\")"
                .into(),
        ))
    }
}

/// An issuer must be https; plain http only on the loopback interface when private networks
/// are allowed (local providers and tests).
pub(crate) fn check_issuer(issuer: &str, allow_private_networks: bool) -> Result<(), ServiceError> {
    let refuse = |reason: &str| Err(invalid("issuer", reason.to_owned()));
    let Ok(url) = reqwest::Url::parse(issuer) else {
        return refuse("must be an absolute URL such as https://login.example.com");
    };
    if url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return refuse("must not carry a query, a fragment or credentials");
    }
    let loopback = match url.host() {
        Some(openidconnect::url::Host::Ipv4(address)) => address.is_loopback(),
        Some(openidconnect::url::Host::Ipv6(address)) => address.is_loopback(),
        Some(openidconnect::url::Host::Domain(domain)) => domain == "localhost",
        None => return refuse("must name a host"),
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback && allow_private_networks => Ok(()),
        _ => refuse("must use https"),
    }
}

fn check_text(field: &str, value: &str) -> Result<(), ServiceError> {
    if value.is_empty() || value.len() > FIELD_LENGTH_MAX || value.chars().any(char::is_control) {
        return Err(invalid(
            field,
            format!("must be 1 to {FIELD_LENGTH_MAX} bytes without control characters"),
        ));
    }
    Ok(())
}

fn check_domains(domains: &[String]) -> Result<Vec<String>, ServiceError> {
    if domains.is_empty() || domains.len() > DOMAINS_MAX {
        return Err(invalid(
            "allowed_email_domains",
            format!("name 1 to {DOMAINS_MAX} domains, such as example.com"),
        ));
    }
    domains
        .iter()
        .map(|domain| {
            let domain = domain.trim().to_lowercase();
            let valid = (3..=253).contains(&domain.len())
                && domain.contains('.')
                && domain
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
            if valid {
                Ok(domain)
            } else {
                Err(invalid(
                    "allowed_email_domains",
                    format!("{domain:?} is not a domain such as example.com"),
                ))
            }
        })
        .collect()
}

fn check_role(role: &Option<String>) -> Result<(), ServiceError> {
    match role.as_deref() {
        None => Ok(()),
        Some("owner") => Err(invalid(
            "role",
            "users created at sign-in cannot be owners".into(),
        )),
        Some(name) if BuiltinRole::ALL.iter().any(|role| role.as_str() == name) => Ok(()),
        Some(_) => Err(invalid(
            "role",
            "use admin, member, viewer or auditor, or leave it out".into(),
        )),
    }
}

pub(crate) fn load(context: &TenantContext) -> Result<BTreeMap<String, SsoProvider>, ServiceError> {
    Ok(crate::settings::load(context, SETTING, "the single sign-on settings")?.unwrap_or_default())
}

pub(crate) async fn store(
    context: &TenantContext,
    providers: &BTreeMap<String, SsoProvider>,
) -> Result<(), ServiceError> {
    let change = JournalChange::SsoProviders {
        providers: providers.clone(),
    };
    crate::settings::store(context, SETTING, providers, change).await
}

impl Platform {
    /// Where a tenant's users come back from a provider.
    pub(crate) fn sso_redirect_uri(&self, slug: &str) -> String {
        format!(
            "{}/v1/tenants/{slug}/auth/sso/callback",
            self.options.public_url.trim_end_matches('/')
        )
    }

    fn provider_view(&self, slug: &str, name: String, provider: SsoProvider) -> SsoProviderView {
        SsoProviderView {
            redirect_uri: self.sso_redirect_uri(slug),
            name,
            issuer: provider.issuer,
            client_id: provider.client_id,
            allowed_email_domains: provider.allowed_email_domains,
            create_users: provider.create_users,
            role: provider.role,
            link_existing_users: provider.link_existing_users,
        }
    }

    pub async fn sso_providers(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
    ) -> Result<Vec<SsoProviderView>, ServiceError> {
        let (runtime, _) = self
            .authorize_user(principal, slug, Permission::PolicyManage)
            .await?;
        let context = TenantContext::of(&runtime);
        let providers = self.observe(&context, load(&context))?;
        Ok(providers
            .into_iter()
            .map(|(name, provider)| self.provider_view(&runtime.slug, name, provider))
            .collect())
    }

    /// Adds or changes a provider. The issuer is not contacted here: a wrong one shows at the
    /// first sign-in, with the provider's answer in the error.
    pub async fn put_sso_provider(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
        name: &str,
        change: SsoProviderChange,
    ) -> Result<(SsoProviderView, PutOutcome), ServiceError> {
        check_provider_name(name)?;
        check_issuer(&change.issuer, self.options.outbound_allow_private_networks)?;
        check_text("client_id", &change.client_id)?;
        if let Some(secret) = &change.client_secret {
            check_text("client_secret", secret)?;
        }
        let domains = check_domains(&change.allowed_email_domains)?;
        check_role(&change.role)?;
        let (runtime, caller) = self
            .authorize_user(principal, slug, Permission::PolicyManage)
            .await?;
        // A provider signs users in and may create them: it takes the rights of both, and of
        // the role it gives new users.
        if !strongroom_domain::permits(
            &caller.grants,
            Permission::UsersManage,
            strongroom_domain::Resource::Tenant,
        ) {
            return Err(ServiceError::MissingPermission(
                Permission::UsersManage.as_str(),
            ));
        }
        if let Some(role) = &change.role {
            crate::users::check_grantable(
                &caller,
                &crate::users::parse_roles(std::slice::from_ref(role))?,
            )?;
        }
        let context = TenantContext::of(&runtime);
        let _serialized = runtime.access_lock.lock().await;
        let mut providers = self.observe(&context, load(&context))?;
        let existing = providers.get(name);
        if (change.link_existing_users
            || existing.is_some_and(|existing| existing.link_existing_users))
            && !crate::users::is_owner(&caller.roles)
        {
            return Err(ServiceError::MissingPermission("owner"));
        }
        let client_secret = match (change.client_secret, existing) {
            (Some(secret), _) => secret,
            // The stored secret is only ever sent to the issuer it was given for.
            (None, Some(existing))
                if existing.issuer == change.issuer && existing.client_id == change.client_id =>
            {
                existing.client_secret.clone()
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "client_secret",
                    "a changed issuer or client id needs the client secret again".into(),
                ));
            }
            (None, None) => {
                return Err(invalid(
                    "client_secret",
                    "a new provider needs the client secret".into(),
                ));
            }
        };
        let outcome = if existing.is_some() {
            PutOutcome::Updated
        } else if providers.len() >= PROVIDERS_MAX {
            return Err(invalid(
                "name",
                format!("a tenant has at most {PROVIDERS_MAX} providers"),
            ));
        } else {
            PutOutcome::Created
        };
        let provider = SsoProvider {
            // Exactly as given: ID tokens must name this issuer character for character.
            issuer: change.issuer,
            client_id: change.client_id,
            client_secret,
            allowed_email_domains: domains,
            create_users: change.create_users,
            role: change.role,
            link_existing_users: change.link_existing_users,
        };
        providers.insert(name.to_owned(), provider.clone());
        store(&context, &providers).await?;
        tracing::info!(tenant_id = %context.tenant_id, user_id = %caller.user_id, provider = %name, "single sign-on provider changed");
        Ok((
            self.provider_view(&runtime.slug, name.to_owned(), provider),
            outcome,
        ))
    }

    /// Removes a provider; refused while the policy makes single sign-on mandatory and this
    /// is the last provider.
    pub async fn delete_sso_provider(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
        name: &str,
    ) -> Result<(), ServiceError> {
        let (runtime, _) = self
            .authorize_user(principal, slug, Permission::PolicyManage)
            .await?;
        let context = TenantContext::of(&runtime);
        let _serialized = runtime.access_lock.lock().await;
        let mut providers = self.observe(&context, load(&context))?;
        if providers.remove(name).is_none() {
            return Err(ServiceError::NotFound("provider"));
        }
        let policy = self.observe(&context, crate::security_policy::load(&context))?;
        if providers.is_empty() && policy.sso_required {
            return Err(ServiceError::Conflict(
                "single sign-on is mandatory and this is the last provider: turn sso_required off first".into(),
            ));
        }
        store(&context, &providers).await
    }
}
