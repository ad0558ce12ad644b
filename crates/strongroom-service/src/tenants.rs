//! Tenants, API tokens, and deciding who may touch which tenant.

use crate::platform::{Platform, blocking};
use crate::sealing::TenantRuntime;
use crate::security::SecurityEventKind;
use crate::{CreatedToken, KeyVersionView, ServiceError, TenantView};
use std::sync::Arc;
use strongroom_crypto::{DataKey, WrappedKeyPurpose, hash_token, random_hex_id};
use strongroom_domain::{
    DomainError, Permission, Resource, Scope, ScopeSet, TenantSlug, Timestamp,
};
use strongroom_storage::{ApiTokenRow, TenantRow, TenantStatus, WrappedKeyRow};

/// An authenticated API token.
#[derive(Debug)]
pub struct TokenPrincipal {
    /// The API token's id, or for a session the user's id (for logs; never a secret).
    pub token_id: String,
    pub tenant_id: String,
    /// What an API token may do; empty for sessions.
    pub scopes: ScopeSet,
    pub expires_at: Option<Timestamp>,
    /// Set when the caller is a signed-in user rather than an API token.
    pub user: Option<SessionUser>,
    /// Set when the caller is an operator under a break-glass grant.
    pub support: Option<SupportMark>,
}

/// Marks every request made under a break-glass grant.
#[derive(Debug, Clone)]
pub struct SupportMark {
    pub grant_id: String,
    pub operator: String,
}

/// A signed-in user behind a session token.
#[derive(Debug, Clone)]
pub struct SessionUser {
    pub user_id: String,
    /// Space-separated built-in role names.
    pub roles: String,
    pub session_hash: Vec<u8>,
    pub grants: Vec<strongroom_domain::Grant>,
    /// A one-time or expired password: only the password change is open.
    pub must_change_password: bool,
    /// The policy requires a second factor this user has not enrolled: only enrolment is open.
    pub must_enrol_mfa: bool,
}

impl SessionUser {
    /// A one-time or expired password, or a required but missing second factor, closes
    /// everything but the password change and the enrolment.
    fn check_gates(&self) -> Result<(), ServiceError> {
        if self.must_change_password {
            return Err(ServiceError::PasswordChangeRequired);
        }
        if self.must_enrol_mfa {
            return Err(ServiceError::MfaEnrolmentRequired);
        }
        Ok(())
    }
}

/// What a data route needs: the scope an API token must carry, or the permission a signed-in
/// user must hold on the resource (a grant may be limited to collections or path prefixes).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Need<'a> {
    pub scope: Scope,
    pub permission: Permission,
    pub resource: Resource<'a>,
}

impl<'a> Need<'a> {
    pub fn records_read(collection: &'a str) -> Self {
        Self::of(Scope::RecordsRead, Resource::Collection(collection))
    }

    pub fn records_write(collection: &'a str) -> Self {
        Self::of(Scope::RecordsWrite, Resource::Collection(collection))
    }

    pub fn documents_read(path: &'a str) -> Self {
        Self::of(Scope::DocumentsRead, Resource::Document(path))
    }

    pub fn documents_write(path: &'a str) -> Self {
        Self::of(Scope::DocumentsWrite, Resource::Document(path))
    }

    /// Content leaves the tenant: users need `documents:download` (API tokens
    /// `documents:read`).
    pub fn download(path: &'a str) -> Self {
        Need {
            permission: Permission::DocumentsDownload,
            ..Self::documents_read(path)
        }
    }

    /// The tenant's audit trail: users need `audit:read`, API tokens the scope of that name.
    pub fn audit_read() -> Self {
        Self::of(Scope::AuditRead, Resource::Tenant)
    }

    /// Somewhere in the tenant: opens a listing (each entry is then checked with
    /// `TokenPrincipal::may`) or a lookup whose resource is known only later.
    pub fn somewhere(scope: Scope) -> Self {
        Self::of(scope, Resource::Anywhere)
    }

    fn of(scope: Scope, resource: Resource<'a>) -> Self {
        let permission = match scope {
            Scope::RecordsRead => Permission::RecordsRead,
            Scope::RecordsWrite => Permission::RecordsWrite,
            Scope::DocumentsRead => Permission::DocumentsRead,
            Scope::DocumentsWrite => Permission::DocumentsWrite,
            Scope::AuditRead => Permission::AuditRead,
        };
        Need {
            scope,
            permission,
            resource,
        }
    }
}

impl TokenPrincipal {
    /// Whether a signed-in user's grants give `permission` on `resource`. API tokens are
    /// tenant-wide: their scope was checked when the tenant was authorized.
    pub(crate) fn may(&self, permission: Permission, resource: Resource<'_>) -> bool {
        match &self.user {
            None => true,
            Some(user) => strongroom_domain::permits(&user.grants, permission, resource),
        }
    }

    /// The directory prefixes inside the listing prefix `prefix` whose documents the caller
    /// may use with `permission`; `None` when every document under it.
    pub(crate) fn document_prefixes_within(
        &self,
        permission: Permission,
        prefix: &str,
    ) -> Option<Vec<String>> {
        let user = self.user.as_ref()?;
        strongroom_domain::document_prefixes_within(&user.grants, permission, prefix)
    }
}

/// An authenticated operator credential.
#[derive(Debug, Clone)]
pub struct OperatorPrincipal {
    pub credential_id: String,
    pub name: String,
    /// The operator account; `None` for the bootstrap token.
    pub operator_id: Option<String>,
    /// The session's token hash; `None` for the bootstrap token.
    pub session_hash: Option<Vec<u8>>,
}

const TENANT_NAME_LENGTH_MAX: usize = 200;
const TOKEN_NAME_LENGTH_MAX: usize = 100;

fn check_label(field: &str, value: &str, length_max: usize) -> Result<(), ServiceError> {
    let valid = !value.trim().is_empty()
        && value.chars().count() <= length_max
        && !value.chars().any(char::is_control);
    if valid {
        Ok(())
    } else {
        Err(ServiceError::Invalid(DomainError::InvalidField {
            field: field.to_owned(),
            reason: format!("must be 1 to {length_max} characters without control characters"),
        }))
    }
}

fn check_region(region: &str) -> Result<(), ServiceError> {
    let valid = (2..=32).contains(&region.len())
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(ServiceError::Invalid(DomainError::InvalidField {
            field: "region".into(),
            reason: "must be 2 to 32 characters a-z, 0-9 and '-', such as eu".into(),
        }))
    }
}

impl Platform {
    pub async fn create_tenant(
        &self,
        slug: &str,
        name: &str,
        region: &str,
    ) -> Result<TenantView, ServiceError> {
        let slug = TenantSlug::parse(slug)?;
        check_label("name", name, TENANT_NAME_LENGTH_MAX)?;
        check_region(region)?;
        // Held until the tenant's keys are stored, so a master-key rotation cannot miss them.
        let _rotation = self.rotation.lock().await;
        let now = self.clock.now().unix_micros();
        let tenant = TenantRow {
            id: random_hex_id()?,
            slug: slug.as_str().to_owned(),
            name: name.trim().to_owned(),
            region: region.to_owned(),
            status: TenantStatus::Active,
            created_at: now,
            status_changed_at: now,
        };
        let master = self.master_key();
        let mut keys = Vec::new();
        for purpose in [WrappedKeyPurpose::Data, WrappedKeyPurpose::BlindIndex] {
            keys.push(WrappedKeyRow {
                tenant_id: tenant.id.clone(),
                purpose: purpose.as_str().to_owned(),
                version: 1,
                master_key_id: master.key_id(),
                wrapped: master.wrap(&DataKey::generate()?, &tenant.id, purpose, 1)?,
                created_at: now,
                wrapped_at: now,
            });
        }
        let control = self.control.clone();
        let open_store = self.open_store.clone();
        let (row, rows) = (tenant.clone(), keys.clone());
        blocking(move || {
            control
                .insert_tenant(row.clone(), rows)
                .map_err(|error| match error {
                    strongroom_storage::StorageError::Conflict(_) => {
                        ServiceError::Conflict(format!("a tenant with slug {} exists", row.slug))
                    }
                    other => other.into(),
                })?;
            open_store(&row.id)?;
            Ok(())
        })
        .await?;
        tracing::info!(tenant_id = %tenant.id, slug = %tenant.slug, "tenant created");
        Ok(tenant_view(tenant, &keys, &master.key_id()))
    }

    pub async fn list_tenants(&self) -> Result<Vec<TenantView>, ServiceError> {
        let control = self.control.clone();
        let (tenants, keys) =
            blocking(move || Ok((control.list_tenants()?, control.all_wrapped_keys()?))).await?;
        let master_id = self.master_key_id();
        Ok(tenants
            .into_iter()
            .map(|tenant| {
                let own: Vec<WrappedKeyRow> = keys
                    .iter()
                    .filter(|key| key.tenant_id == tenant.id)
                    .cloned()
                    .collect();
                tenant_view(tenant, &own, &master_id)
            })
            .collect())
    }

    pub async fn tenant_view(&self, slug: &str) -> Result<TenantView, ServiceError> {
        let control = self.control.clone();
        let slug = slug.to_owned();
        let (tenant, keys) = blocking(move || {
            let tenant = control
                .tenant_by_slug(&slug)?
                .ok_or(ServiceError::NotFound("tenant"))?;
            let keys = control.wrapped_keys(&tenant.id)?;
            Ok((tenant, keys))
        })
        .await?;
        Ok(tenant_view(tenant, &keys, &self.master_key_id()))
    }

    pub async fn set_tenant_suspended(
        &self,
        slug: &str,
        suspended: bool,
    ) -> Result<TenantView, ServiceError> {
        let runtime = self.tenant(slug).await?;
        let status = if suspended {
            TenantStatus::Suspended
        } else {
            TenantStatus::Active
        };
        let control = self.control.clone();
        let (tenant_id, now) = (runtime.id.clone(), self.clock.now().unix_micros());
        blocking(move || Ok(control.set_tenant_status(&tenant_id, status, now)?)).await?;
        runtime.set_suspended(suspended);
        tracing::info!(tenant_id = %runtime.id, status = status.as_str(), "tenant status changed");
        self.tenant_view(slug).await
    }

    /// An operator creates a tenant's API token, only while the tenant has no users: from then
    /// on its admins create tokens, and operators reach tenant data only through break-glass
    /// grants.
    pub async fn create_token_as_operator(
        &self,
        slug: &str,
        name: &str,
        scopes: &[String],
        expires_at: Option<Timestamp>,
    ) -> Result<CreatedToken, ServiceError> {
        let runtime = self.tenant(slug).await?;
        if !runtime.store.list_users()?.is_empty() {
            return Err(ServiceError::Conflict(
                "this tenant has users: its admins create API tokens (POST /v1/tenants/{slug}/tokens); operators reach tenant data only through break-glass grants".into(),
            ));
        }
        refuse_audit_read_from_operators(&ScopeSet::parse(scopes)?)?;
        self.create_token(slug, name, scopes, expires_at).await
    }

    /// Creates an API token for a tenant. The secret is in the answer and nowhere else.
    pub async fn create_token(
        &self,
        slug: &str,
        name: &str,
        scopes: &[String],
        expires_at: Option<Timestamp>,
    ) -> Result<CreatedToken, ServiceError> {
        check_label("name", name, TOKEN_NAME_LENGTH_MAX)?;
        let scopes = ScopeSet::parse(scopes)?;
        if scopes.is_empty() {
            return Err(ServiceError::Invalid(DomainError::InvalidField {
                field: "scopes".into(),
                reason: "give at least one scope, such as records:read".into(),
            }));
        }
        let now = self.clock.now();
        if expires_at.is_some_and(|expiry| expiry <= now) {
            return Err(ServiceError::Invalid(DomainError::InvalidField {
                field: "expires_at".into(),
                reason: "must be in the future".into(),
            }));
        }
        let runtime = self.tenant(slug).await?;
        let secret = strongroom_crypto::generate_token("srt")?;
        let row = ApiTokenRow {
            id: random_hex_id()?,
            tenant_id: runtime.id.clone(),
            name: name.trim().to_owned(),
            token_hash: hash_token(&secret).to_vec(),
            scopes: scopes.names().join(" "),
            created_at: now.unix_micros(),
            expires_at: expires_at.map(Timestamp::unix_micros),
        };
        let control = self.control.clone();
        let stored = row.clone();
        blocking(move || Ok(control.insert_api_token(stored)?)).await?;
        tracing::info!(tenant_id = %runtime.id, token_id = %row.id, "api token created");
        Ok(CreatedToken {
            id: row.id,
            name: row.name,
            tenant_slug: runtime.slug.clone(),
            scopes: scopes.names().into_iter().map(str::to_owned).collect(),
            created_at: now,
            expires_at,
            secret,
        })
    }

    /// An API token's principal already looked up, by the hash of its secret.
    pub(crate) fn cached_token(&self, hash: &[u8; 32]) -> Option<Arc<TokenPrincipal>> {
        self.token_cache
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(hash)
            .cloned()
    }

    /// Finds the API token behind a bearer secret.
    pub async fn authenticate_token(
        &self,
        secret: &str,
    ) -> Result<Arc<TokenPrincipal>, ServiceError> {
        if secret.starts_with("srg_") {
            // Break-glass tokens are looked up every time: a revocation applies at once.
            return self.authenticate_support_grant(secret).await;
        }
        let hash = hash_token(secret);
        let principal = match self.cached_token(&hash) {
            Some(principal) => principal,
            None => {
                let control = self.control.clone();
                let row = blocking(move || Ok(control.api_token_by_hash(&hash)?)).await?;
                let Some(row) = row else {
                    self.security.raise(
                        SecurityEventKind::UnknownToken,
                        None,
                        "a bearer token matching no API token was presented",
                    );
                    return Err(ServiceError::Unauthenticated);
                };
                let scope_names: Vec<&str> = row.scopes.split_whitespace().collect();
                let principal = Arc::new(TokenPrincipal {
                    token_id: row.id,
                    tenant_id: row.tenant_id,
                    scopes: ScopeSet::parse(&scope_names)?,
                    expires_at: row.expires_at.map(Timestamp::from_unix_micros),
                    user: None,
                    support: None,
                });
                self.token_cache
                    .write()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .insert(hash, principal.clone());
                principal
            }
        };
        if principal
            .expires_at
            .is_some_and(|expiry| expiry <= self.clock.now())
        {
            return Err(ServiceError::Unauthenticated);
        }
        Ok(principal)
    }

    pub async fn authenticate_operator(
        &self,
        secret: &str,
    ) -> Result<OperatorPrincipal, ServiceError> {
        if secret.starts_with("sra_") {
            return self
                .authenticate_operator_session(secret)
                .await
                .inspect_err(|_| {
                    self.security.raise(
                        SecurityEventKind::UnknownToken,
                        None,
                        "an operator session token matching no live session was presented",
                    );
                });
        }
        let hash = hash_token(secret);
        let control = self.control.clone();
        let row = blocking(move || Ok(control.operator_token_by_hash(&hash)?)).await?;
        match row {
            Some(row) => Ok(OperatorPrincipal {
                credential_id: row.id,
                name: row.name,
                operator_id: None,
                session_hash: None,
            }),
            None => {
                self.security.raise(
                    SecurityEventKind::UnknownToken,
                    None,
                    "an operator token matching no credential was presented",
                );
                Err(ServiceError::Unauthenticated)
            }
        }
    }

    /// The one place that decides whether a token may act on a tenant's data with a scope.
    /// Another tenant's path answers exactly as a tenant that does not exist.
    /// Ownership and suspension: the tenant at `slug` if it is the caller's and active.
    pub(crate) async fn tenant_for(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
    ) -> Result<Arc<TenantRuntime>, ServiceError> {
        // Ownership is decided from the tenant's id alone: another tenant's store and keys are
        // never opened on this caller's behalf, so nothing about them can leak into the answer.
        let target_id = match self.cached_tenant(slug) {
            Some(runtime) => runtime.id.clone(),
            None => match self.tenant_row(slug).await? {
                Some(row) => row.id,
                None => return Err(ServiceError::NotFound("tenant")),
            },
        };
        if target_id != principal.tenant_id {
            // Recorded for the tenant probed, naming neither tenant to the other: the caller's
            // admins must not learn that the slug exists (a slug that does not exist raises
            // nothing), and operators find the token by its id.
            self.security.raise(
                SecurityEventKind::CrossTenantProbe,
                Some(&target_id),
                &format!(
                    "a token of another tenant (token {}) was used on this tenant's path",
                    principal.token_id
                ),
            );
            return Err(ServiceError::NotFound("tenant"));
        }
        let runtime = self.tenant(slug).await?;
        if runtime.is_suspended() {
            return Err(ServiceError::TenantSuspended(runtime.slug.clone()));
        }
        Ok(runtime)
    }

    pub(crate) async fn authorize(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
        need: Need<'_>,
    ) -> Result<Arc<TenantRuntime>, ServiceError> {
        let runtime = self.tenant_for(principal, slug).await?;
        if let Some(user) = &principal.user {
            user.check_gates()?;
        }
        let allowed = match &principal.user {
            None => principal.scopes.contains(need.scope),
            Some(_) => principal.may(need.permission, need.resource),
        };
        if !allowed {
            return Err(self.denied(principal, &runtime.id, need));
        }
        Ok(runtime)
    }

    /// Checks a resource known only after the tenant was opened (a trashed document's path);
    /// for API tokens the scope checked by `authorize` decides alone.
    pub(crate) fn authorize_resource(
        &self,
        principal: &TokenPrincipal,
        tenant_id: &str,
        need: Need<'_>,
    ) -> Result<(), ServiceError> {
        if principal.may(need.permission, need.resource) {
            Ok(())
        } else {
            Err(self.denied(principal, tenant_id, need))
        }
    }

    fn denied(&self, principal: &TokenPrincipal, tenant_id: &str, need: Need<'_>) -> ServiceError {
        let what = match principal.user {
            None => need.scope.as_str(),
            Some(_) => need.permission.as_str(),
        };
        self.security.raise(
            SecurityEventKind::ScopeDenied,
            Some(tenant_id),
            &format!("caller {} lacks {what}", principal.token_id),
        );
        match principal.user {
            None => ServiceError::MissingScope(need.scope),
            Some(_) => ServiceError::MissingPermission(need.permission.as_str()),
        }
    }

    /// The same decision for tenant-wide permissions (users, policy, …), which only signed-in
    /// users can hold: API tokens carry data scopes only (and `audit:read`, which routes that
    /// only read the trail check with [`Platform::authorize`]).
    pub(crate) async fn authorize_user(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
        permission: Permission,
    ) -> Result<(Arc<TenantRuntime>, SessionUser), ServiceError> {
        let Some(user) = principal.user.clone() else {
            self.tenant_for(principal, slug).await?;
            return Err(ServiceError::SignedInUserNeeded(Some(permission.as_str())));
        };
        let runtime = self.tenant_for(principal, slug).await?;
        user.check_gates()?;
        if !strongroom_domain::permits(
            &user.grants,
            permission,
            strongroom_domain::Resource::Tenant,
        ) {
            self.security.raise(
                SecurityEventKind::ScopeDenied,
                Some(&runtime.id),
                &format!("user {} lacks {}", user.user_id, permission.as_str()),
            );
            return Err(ServiceError::MissingPermission(permission.as_str()));
        }
        Ok((runtime, user))
    }
}

fn tenant_view(tenant: TenantRow, keys: &[WrappedKeyRow], master_key_id: &str) -> TenantView {
    TenantView {
        suspended: tenant.status == TenantStatus::Suspended,
        keys: keys
            .iter()
            .filter(|key| key.master_key_id == master_key_id)
            .map(|key| KeyVersionView {
                purpose: key.purpose.clone(),
                version: key.version,
                created_at: Timestamp::from_unix_micros(key.created_at),
                wrapped_at: Timestamp::from_unix_micros(key.wrapped_at),
                master_key_id: key.master_key_id.clone(),
            })
            .collect(),
        id: tenant.id,
        slug: tenant.slug,
        name: tenant.name,
        region: tenant.region,
        created_at: Timestamp::from_unix_micros(tenant.created_at),
        status_changed_at: Timestamp::from_unix_micros(tenant.status_changed_at),
    }
}

/// Operators hand out data scopes only (tokens before a tenant has users, break-glass
/// grants): reading a tenant's trail is for its owners and auditors, and for operators on
/// the admin listener, where the reading is recorded as theirs.
pub(crate) fn refuse_audit_read_from_operators(scopes: &ScopeSet) -> Result<(), ServiceError> {
    match scopes.contains(Scope::AuditRead) {
        false => Ok(()),
        true => Err(ServiceError::Invalid(DomainError::InvalidField {
            field: "scopes".into(),
            reason: "operators do not mint audit:read tokens or grants; a tenant's owners mint them, and operators read a tenant's trail at GET /admin/v1/audit?tenant=".into(),
        })),
    }
}
