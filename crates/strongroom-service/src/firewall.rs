//! The tenant's virtual firewall (P1), set by its admins (policy:manage): checked for every
//! request on the tenant's paths before anything of the tenant is touched. Rules are a sealed,
//! journaled tenant setting, cached in the open tenant.

use crate::journal::JournalChange;
use crate::platform::Platform;
use crate::sealing::TenantRuntime;
use crate::tenant_context::TenantContext;
use crate::tenants::TokenPrincipal;
use crate::users::invalid;
use crate::{SecurityEventKind, ServiceError};
use std::net::IpAddr;
use std::sync::Arc;
use strongroom_domain::Permission;
use strongroom_domain::firewall::{FirewallRules, Visitor};

const SETTING: &str = "firewall";

pub(crate) fn load(context: &TenantContext) -> Result<FirewallRules, ServiceError> {
    Ok(crate::settings::load(context, SETTING, "the firewall rules")?.unwrap_or_default())
}

pub(crate) async fn store(
    context: &TenantContext,
    rules: &FirewallRules,
) -> Result<(), ServiceError> {
    let change = JournalChange::Firewall {
        rules: rules.clone(),
    };
    crate::settings::store(context, SETTING, rules, change).await
}

fn describe(rules: &FirewallRules) -> String {
    let list = |networks: &[ipnet::IpNet]| {
        networks
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    };
    format!(
        "allow [{}] deny [{}] allow_support {}",
        list(&rules.allow),
        list(&rules.deny),
        rules.allow_support
    )
}

impl Platform {
    /// Refuses a request to a tenant's paths from an address its firewall does not let in.
    /// An unknown tenant has no rules: the request goes on to answer as it would. Any other
    /// failure to read the rules refuses.
    pub async fn firewall_admits(
        &self,
        slug: &str,
        address: Option<IpAddr>,
        support_token: Option<&str>,
    ) -> Result<(), ServiceError> {
        let runtime = match self.tenant(slug).await {
            Ok(runtime) => runtime,
            Err(ServiceError::NotFound(_)) => return Ok(()),
            Err(error) => return Err(error),
        };
        let rules = match runtime.cached_firewall() {
            Some(rules) => rules,
            None => {
                let context = TenantContext::of(&runtime);
                let rules = Arc::new(self.observe(&context, load(&context))?);
                runtime.cache_firewall_if_empty(rules)
            }
        };
        // Without a known address, only a tenant without rules lets the request in.
        let permits = |support: bool| match address {
            Some(address) => rules.permits(Visitor {
                address,
                support,
                support_networks: &self.options.support_networks,
            }),
            None => rules.allow.is_empty() && rules.deny.is_empty(),
        };
        let mut admitted = permits(false);
        // The support pass needs a break-glass grant that works now, for this tenant: a token
        // that merely looks like one does not open sign-in routes to the support range.
        if !admitted
            && permits(true)
            && let Some(token) = support_token
        {
            admitted = self
                .authenticate_support_grant(token)
                .await
                .is_ok_and(|principal| principal.tenant_id == runtime.id);
        }
        if admitted {
            return Ok(());
        }
        let from = address.map_or_else(
            || "an unknown address".to_owned(),
            |address| address.to_string(),
        );
        self.security.raise(
            SecurityEventKind::FirewallDenied,
            Some(&runtime.id),
            &format!("a request from {from} was refused by the tenant's firewall"),
        );
        Err(ServiceError::FirewallDenied)
    }

    pub async fn firewall(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
    ) -> Result<FirewallRules, ServiceError> {
        let (runtime, _) = self
            .authorize_user(principal, slug, Permission::PolicyManage)
            .await?;
        let context = TenantContext::of(&runtime);
        self.observe(&context, load(&context))
    }

    /// Replaces the rules. Rules that would shut out the admin making the change (from
    /// `caller_address`) are refused unless `confirm_lockout`.
    pub async fn set_firewall(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
        rules: FirewallRules,
        caller_address: Option<IpAddr>,
        confirm_lockout: bool,
    ) -> Result<(FirewallRules, FirewallRules), ServiceError> {
        let (runtime, caller) = self
            .authorize_user(principal, slug, Permission::PolicyManage)
            .await?;
        if rules.allow.len() > strongroom_domain::firewall::RULES_MAX
            || rules.deny.len() > strongroom_domain::firewall::RULES_MAX
        {
            return Err(invalid(
                "allow",
                format!(
                    "at most {} networks per list",
                    strongroom_domain::firewall::RULES_MAX
                ),
            ));
        }
        let locks_out = caller_address.is_some_and(|address| {
            !rules.permits(Visitor {
                address,
                support: false,
                support_networks: &[],
            })
        });
        if locks_out && !confirm_lockout {
            return Err(ServiceError::FirewallLockout(
                caller_address
                    .map(|address| address.to_string())
                    .unwrap_or_default(),
            ));
        }
        self.replace_firewall(
            &runtime,
            |_| rules,
            |old, new| {
                format!(
                    "user {} changed the firewall from {} to {}",
                    caller.user_id,
                    describe(old),
                    describe(new)
                )
            },
        )
        .await
    }

    /// Empties a tenant's allow and deny lists for an operator: the way back in when the
    /// tenant's admins shut themselves out (a confirmed lock-out, or an address that moved).
    /// The admins see it as a `firewall_changed` security event naming the operator.
    pub async fn clear_firewall(
        &self,
        operator_name: &str,
        slug: &str,
    ) -> Result<(FirewallRules, FirewallRules), ServiceError> {
        let runtime = self.tenant(slug).await?;
        self.replace_firewall(
            &runtime,
            |old| FirewallRules {
                allow: Vec::new(),
                deny: Vec::new(),
                allow_support: old.allow_support,
            },
            |old, _| {
                format!(
                    "operator {operator_name} cleared the firewall, which was {}",
                    describe(old)
                )
            },
        )
        .await
    }

    /// Replaces a tenant's rules with what `change` makes of the stored ones, under the
    /// tenant's access lock; a change that changes nothing stores nothing and raises nothing.
    /// Answers the old and the new rules.
    async fn replace_firewall(
        &self,
        runtime: &TenantRuntime,
        change: impl FnOnce(&FirewallRules) -> FirewallRules,
        sentence: impl FnOnce(&FirewallRules, &FirewallRules) -> String,
    ) -> Result<(FirewallRules, FirewallRules), ServiceError> {
        let context = TenantContext::of(runtime);
        let _serialized = runtime.access_lock.lock().await;
        let old = self.observe(&context, load(&context))?;
        let rules = change(&old);
        if old == rules {
            return Ok((old, rules));
        }
        store(&context, &rules).await?;
        runtime.cache_firewall(Arc::new(rules.clone()));
        self.security.raise(
            SecurityEventKind::FirewallChanged,
            Some(&runtime.id),
            &sentence(&old, &rules),
        );
        Ok((old, rules))
    }
}
