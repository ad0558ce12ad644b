//! Custom roles, groups and grants. A tenant's admins (`users:manage`) define roles as sets of
//! permissions, gather users in groups, and give any role but owner to a user or a group,
//! optionally limited to named collections or document directories. A user's rights are the
//! union of their built-in roles (tenant-wide) and every grant to them or to their groups; the
//! one decision stays `strongroom_domain::permits`.
//!
//! The model is one sealed, journaled tenant setting: it is small (bounded below), read with
//! each session lookup (cached), and changed rarely, always under one lock so two admins'
//! changes cannot overwrite each other.

use crate::ServiceError;
use crate::journal::JournalChange;
use crate::platform::Platform;
use crate::tenant_context::TenantContext;
use crate::tenants::{SessionUser, TokenPrincipal};
use crate::users::invalid;
use crate::views::PutOutcome;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use strongroom_crypto::random_hex_id;
use strongroom_domain::{
    BuiltinRole, CollectionName, DocumentPrefix, Grant, GrantLimit, Permission, Resource,
};

const SETTING: &str = "access-model";
/// The model's stored format. Do not change a shipped version.
const FORMAT: u8 = 1;
pub const CUSTOM_ROLES_MAX: usize = 64;
pub const GROUPS_MAX: usize = 256;
pub const GROUP_MEMBERS_MAX: usize = 5_000;
/// Memberships over all groups: the model is read on every session lookup.
pub const MEMBERSHIPS_MAX: usize = 20_000;
pub const GRANTS_MAX: usize = 1_024;
/// Collections or prefixes one grant may name.
pub const LIMIT_ENTRIES_MAX: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessModel {
    pub format: u8,
    /// Custom role name → permission names.
    pub roles: BTreeMap<String, BTreeSet<String>>,
    /// Group name → user ids.
    pub groups: BTreeMap<String, BTreeSet<String>>,
    pub grants: Vec<RoleGrant>,
}

impl Default for AccessModel {
    fn default() -> Self {
        AccessModel {
            format: FORMAT,
            roles: BTreeMap::new(),
            groups: BTreeMap::new(),
            grants: Vec::new(),
        }
    }
}

/// A role given to a user or a group, optionally limited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleGrant {
    pub id: String,
    pub subject: GrantSubject,
    pub role: String,
    pub limit: GrantScope,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum GrantSubject {
    User { id: String },
    Group { name: String },
}

/// Where a grant applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum GrantScope {
    Everything,
    Collections {
        names: Vec<String>,
    },
    /// Whole directories such as `hr/` or `hr/contracts/`.
    DocumentPrefixes {
        prefixes: Vec<String>,
    },
}

/// A role as listed: built-in or custom, with its permissions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleView {
    pub name: String,
    pub builtin: bool,
    pub permissions: Vec<String>,
}

impl AccessModel {
    /// The permissions of a built-in or custom role, or `None` for an unknown name.
    fn permissions_of(&self, role: &str) -> Option<BTreeSet<Permission>> {
        if let Some(builtin) = BuiltinRole::ALL.into_iter().find(|r| r.as_str() == role) {
            return Some(builtin.permissions());
        }
        self.roles.get(role).map(|names| {
            names
                .iter()
                .filter_map(|name| Permission::parse(name).ok())
                .collect()
        })
    }

    /// Everything a user may do: their built-in roles tenant-wide, then every grant to them or
    /// to a group they belong to.
    pub(crate) fn grants_for(&self, user_id: &str, builtin_roles: &str) -> Vec<Grant> {
        let mut grants = crate::users::grants_of(builtin_roles);
        for grant in &self.grants {
            let applies = match &grant.subject {
                GrantSubject::User { id } => id == user_id,
                GrantSubject::Group { name } => self
                    .groups
                    .get(name)
                    .is_some_and(|members| members.contains(user_id)),
            };
            if !applies {
                continue;
            }
            let Some(permissions) = self.permissions_of(&grant.role) else {
                continue;
            };
            grants.push(Grant {
                permissions,
                limit: match &grant.limit {
                    GrantScope::Everything => GrantLimit::Everything,
                    GrantScope::Collections { names } => {
                        GrantLimit::Collections(names.iter().cloned().collect())
                    }
                    GrantScope::DocumentPrefixes { prefixes } => {
                        GrantLimit::DocumentPrefixes(prefixes.clone())
                    }
                },
            });
        }
        grants
    }

    fn is_granted(&self, role: &str) -> bool {
        self.grants.iter().any(|grant| grant.role == role)
    }

    /// Takes a deleted user out of every group and grant.
    fn forget_user(&mut self, user_id: &str) -> bool {
        let before = self.clone();
        for members in self.groups.values_mut() {
            members.remove(user_id);
        }
        self.grants
            .retain(|grant| grant.subject != GrantSubject::User { id: user_id.into() });
        *self != before
    }
}

/// A name from a request, cut short enough to quote in an error.
fn shorten(value: &str) -> String {
    value.chars().take(64).collect()
}

/// Role and group names: 2 to 40 characters a-z, 0-9, '-' and '_', starting with a letter.
fn check_name(field: &str, name: &str) -> Result<(), ServiceError> {
    let valid = (2..=40).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!(
                "{name:?} is not a valid name: use 2 to 40 characters a-z, 0-9, '-' and '_', starting with a letter"
            ),
        ))
    }
}

fn check_scope(limit: &GrantScope) -> Result<GrantScope, ServiceError> {
    let entries = match limit {
        GrantScope::Everything => return Ok(GrantScope::Everything),
        GrantScope::Collections { names } => names,
        GrantScope::DocumentPrefixes { prefixes } => prefixes,
    };
    if entries.is_empty() || entries.len() > LIMIT_ENTRIES_MAX {
        return Err(invalid(
            "limit",
            format!("name 1 to {LIMIT_ENTRIES_MAX} collections or prefixes, or use everything"),
        ));
    }
    match limit {
        GrantScope::Collections { names } => {
            for name in names {
                CollectionName::parse(name)?;
            }
            let names: BTreeSet<_> = names.iter().cloned().collect();
            Ok(GrantScope::Collections {
                names: names.into_iter().collect(),
            })
        }
        GrantScope::DocumentPrefixes { prefixes } => {
            for prefix in prefixes {
                if prefix.is_empty() {
                    return Err(invalid(
                        "limit.prefixes",
                        "an empty prefix is the whole archive: use everything".into(),
                    ));
                }
                DocumentPrefix::parse(prefix)?;
            }
            let prefixes: BTreeSet<_> = prefixes.iter().cloned().collect();
            Ok(GrantScope::DocumentPrefixes {
                prefixes: prefixes.into_iter().collect(),
            })
        }
        GrantScope::Everything => Ok(GrantScope::Everything),
    }
}

/// Nobody gives rights they do not hold themselves, tenant-wide.
fn check_holds(
    caller: &SessionUser,
    permissions: &BTreeSet<Permission>,
) -> Result<(), ServiceError> {
    match permissions.iter().find(|permission| {
        !strongroom_domain::permits(&caller.grants, **permission, Resource::Tenant)
    }) {
        Some(missing) => Err(ServiceError::MissingPermission(missing.as_str())),
        None => Ok(()),
    }
}

pub(crate) fn load(context: &TenantContext) -> Result<AccessModel, ServiceError> {
    Ok(
        crate::settings::load(context, SETTING, "the tenant's roles and groups")?
            .unwrap_or_default(),
    )
}

pub(crate) async fn store(
    context: &TenantContext,
    model: &AccessModel,
) -> Result<(), ServiceError> {
    let change = JournalChange::AccessModel {
        model: model.clone(),
    };
    crate::settings::store(context, SETTING, model, change).await
}

impl Platform {
    /// Runs `change` on the tenant's model under the model lock, stores the result, and ends
    /// every cached session so changed rights apply to the next request.
    async fn change_access_model<T>(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
        change: impl FnOnce(&TenantContext, &SessionUser, &mut AccessModel) -> Result<T, ServiceError>,
    ) -> Result<T, ServiceError> {
        let (runtime, caller) = self
            .authorize_user(principal, slug, Permission::UsersManage)
            .await?;
        let context = TenantContext::of(&runtime);
        let _serialized = runtime.access_lock.lock().await;
        let mut model = self.observe(&context, load(&context))?;
        let answer = change(&context, &caller, &mut model)?;
        store(&context, &model).await?;
        self.sessions.invalidate();
        tracing::info!(tenant_id = %context.tenant_id, user_id = %caller.user_id, "roles, groups or grants changed");
        Ok(answer)
    }

    async fn read_access_model(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
    ) -> Result<AccessModel, ServiceError> {
        let (runtime, _) = self
            .authorize_user(principal, slug, Permission::UsersManage)
            .await?;
        let context = TenantContext::of(&runtime);
        self.observe(&context, load(&context))
    }

    /// Built-in roles first, then the tenant's custom roles.
    pub async fn roles(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
    ) -> Result<Vec<RoleView>, ServiceError> {
        let model = self.read_access_model(principal, slug).await?;
        let builtin = BuiltinRole::ALL.into_iter().map(|role| RoleView {
            name: role.as_str().into(),
            builtin: true,
            permissions: role
                .permissions()
                .iter()
                .map(|p| p.as_str().into())
                .collect(),
        });
        let custom = model.roles.into_iter().map(|(name, permissions)| RoleView {
            name,
            builtin: false,
            permissions: permissions.into_iter().collect(),
        });
        Ok(builtin.chain(custom).collect())
    }

    /// Defines or redefines a custom role; holders' rights change at once.
    pub async fn put_role(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
        name: &str,
        permissions: &[String],
    ) -> Result<(RoleView, PutOutcome), ServiceError> {
        check_name("name", name)?;
        if BuiltinRole::ALL.iter().any(|role| role.as_str() == name) {
            return Err(ServiceError::Conflict(format!(
                "{name} is a built-in role and cannot be redefined"
            )));
        }
        let parsed: BTreeSet<Permission> = permissions
            .iter()
            .map(|permission| Permission::parse(permission))
            .collect::<Result<_, _>>()?;
        if parsed.is_empty() {
            return Err(invalid(
                "permissions",
                "name at least one permission".into(),
            ));
        }
        self.change_access_model(principal, slug, |_, caller, model| {
            check_holds(caller, &parsed)?;
            let outcome = if model.roles.contains_key(name) {
                // Redefining a granted role changes what its holders may do: the caller must
                // hold what it gave before too.
                let before = model.permissions_of(name).unwrap_or_default();
                check_holds(caller, &before)?;
                PutOutcome::Updated
            } else if model.roles.len() >= CUSTOM_ROLES_MAX {
                return Err(invalid(
                    "name",
                    format!("a tenant has at most {CUSTOM_ROLES_MAX} custom roles"),
                ));
            } else {
                PutOutcome::Created
            };
            let names: BTreeSet<String> = parsed.iter().map(|p| p.as_str().to_owned()).collect();
            model.roles.insert(name.to_owned(), names.clone());
            Ok((
                RoleView {
                    name: name.to_owned(),
                    builtin: false,
                    permissions: names.into_iter().collect(),
                },
                outcome,
            ))
        })
        .await
    }

    /// Removes a custom role that no grant names.
    pub async fn delete_role(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
        name: &str,
    ) -> Result<(), ServiceError> {
        self.change_access_model(principal, slug, |_, _, model| {
            if BuiltinRole::ALL.iter().any(|role| role.as_str() == name) {
                return Err(ServiceError::Conflict(format!(
                    "{name} is a built-in role and cannot be removed"
                )));
            }
            if !model.roles.contains_key(name) {
                return Err(ServiceError::NotFound("role"));
            }
            if model.is_granted(name) {
                return Err(ServiceError::Conflict(format!(
                    "role {name} is still granted: remove its grants first"
                )));
            }
            model.roles.remove(name);
            Ok(())
        })
        .await
    }

    /// Groups with their members' user ids.
    pub async fn groups(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
    ) -> Result<BTreeMap<String, BTreeSet<String>>, ServiceError> {
        Ok(self.read_access_model(principal, slug).await?.groups)
    }

    /// Creates a group or replaces its members.
    pub async fn put_group(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
        name: &str,
        members: &[String],
    ) -> Result<(BTreeSet<String>, PutOutcome), ServiceError> {
        check_name("name", name)?;
        let members: BTreeSet<String> = members.iter().cloned().collect();
        if members.len() > GROUP_MEMBERS_MAX {
            return Err(invalid(
                "members",
                format!("a group has at most {GROUP_MEMBERS_MAX} members"),
            ));
        }
        self.change_access_model(principal, slug, |context, caller, model| {
            let before = model.groups.get(name);
            // Nobody gives themselves rights, directly or by joining a group.
            if members.contains(&caller.user_id)
                && !before.is_some_and(|before| before.contains(&caller.user_id))
            {
                return Err(invalid(
                    "members",
                    "nobody adds themselves to a group; ask another admin".into(),
                ));
            }
            let memberships: usize = model
                .groups
                .iter()
                .filter(|(group, _)| group.as_str() != name)
                .map(|(_, members)| members.len())
                .sum::<usize>()
                + members.len();
            if memberships > MEMBERSHIPS_MAX {
                return Err(invalid(
                    "members",
                    format!("a tenant has at most {MEMBERSHIPS_MAX} group memberships in all"),
                ));
            }
            for member in &members {
                let known = member.len() <= 64 && context.store.user(member)?.is_some();
                if !known {
                    return Err(invalid(
                        "members",
                        format!("no user {:?} in this tenant", shorten(member)),
                    ));
                }
            }
            // Adding someone to a group gives them the group's rights: only someone holding
            // those rights may change its members.
            for grant in model
                .grants
                .iter()
                .filter(|grant| grant.subject == GrantSubject::Group { name: name.into() })
            {
                check_holds(
                    caller,
                    &model.permissions_of(&grant.role).unwrap_or_default(),
                )?;
            }
            let outcome = if model.groups.contains_key(name) {
                PutOutcome::Updated
            } else if model.groups.len() >= GROUPS_MAX {
                return Err(invalid(
                    "name",
                    format!("a tenant has at most {GROUPS_MAX} groups"),
                ));
            } else {
                PutOutcome::Created
            };
            model.groups.insert(name.to_owned(), members.clone());
            Ok((members, outcome))
        })
        .await
    }

    /// Removes a group and every grant to it.
    pub async fn delete_group(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
        name: &str,
    ) -> Result<(), ServiceError> {
        self.change_access_model(principal, slug, |_, _, model| {
            if model.groups.remove(name).is_none() {
                return Err(ServiceError::NotFound("group"));
            }
            model
                .grants
                .retain(|grant| grant.subject != GrantSubject::Group { name: name.into() });
            Ok(())
        })
        .await
    }

    pub async fn grants(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
    ) -> Result<Vec<RoleGrant>, ServiceError> {
        Ok(self.read_access_model(principal, slug).await?.grants)
    }

    /// Gives a role (built-in except owner, or custom) to a user or a group.
    pub async fn create_grant(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
        subject: GrantSubject,
        role: &str,
        limit: GrantScope,
    ) -> Result<RoleGrant, ServiceError> {
        if role == BuiltinRole::Owner.as_str() {
            return Err(invalid(
                "role",
                "owner is given through a user's roles, never by a grant".into(),
            ));
        }
        let limit = check_scope(&limit)?;
        let id = random_hex_id()?;
        self.change_access_model(principal, slug, |context, caller, model| {
            let permissions = model
                .permissions_of(role)
                .ok_or_else(|| invalid("role", format!("no role {:?}", shorten(role))))?;
            check_holds(caller, &permissions)?;
            match &subject {
                GrantSubject::User { id } => {
                    if id == &caller.user_id {
                        return Err(invalid(
                            "subject",
                            "nobody grants roles to themselves; ask another admin".into(),
                        ));
                    }
                    let known = id.len() <= 64 && context.store.user(id)?.is_some();
                    if !known {
                        return Err(invalid(
                            "subject",
                            format!("no user {:?} in this tenant", shorten(id)),
                        ));
                    }
                }
                GrantSubject::Group { name } => {
                    let Some(members) = model.groups.get(name) else {
                        return Err(invalid("subject", format!("no group {:?}", shorten(name))));
                    };
                    if members.contains(&caller.user_id) {
                        return Err(invalid(
                            "subject",
                            "nobody grants roles to a group they are in; ask another admin".into(),
                        ));
                    }
                }
            }
            if model.grants.len() >= GRANTS_MAX {
                return Err(invalid(
                    "role",
                    format!("a tenant has at most {GRANTS_MAX} grants"),
                ));
            }
            let grant = RoleGrant {
                id,
                subject,
                role: role.to_owned(),
                limit,
            };
            model.grants.push(grant.clone());
            Ok(grant)
        })
        .await
    }

    pub async fn delete_grant(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
        grant_id: &str,
    ) -> Result<(), ServiceError> {
        self.change_access_model(principal, slug, |_, caller, model| {
            let grant = model
                .grants
                .iter()
                .find(|grant| grant.id == grant_id)
                .ok_or(ServiceError::NotFound("grant"))?;
            check_holds(
                caller,
                &model.permissions_of(&grant.role).unwrap_or_default(),
            )?;
            model.grants.retain(|grant| grant.id != grant_id);
            Ok(())
        })
        .await
    }

    /// Called when a user is deleted: their memberships and grants go too.
    pub(crate) async fn forget_user_access(
        &self,
        runtime: &crate::sealing::TenantRuntime,
        user_id: &str,
    ) -> Result<(), ServiceError> {
        let context = TenantContext::of(runtime);
        let _serialized = runtime.access_lock.lock().await;
        let mut model = self.observe(&context, load(&context))?;
        if model.forget_user(user_id) {
            store(&context, &model).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_reach_users_directly_and_through_groups_with_their_limits() {
        let mut model = AccessModel::default();
        model
            .roles
            .insert("invoice-reader".into(), ["records:read".to_owned()].into());
        model
            .groups
            .insert("hr".into(), ["u1".to_owned(), "u2".to_owned()].into());
        model.grants.push(RoleGrant {
            id: "g1".into(),
            subject: GrantSubject::User { id: "u1".into() },
            role: "invoice-reader".into(),
            limit: GrantScope::Collections {
                names: vec!["invoices".into()],
            },
        });
        model.grants.push(RoleGrant {
            id: "g2".into(),
            subject: GrantSubject::Group { name: "hr".into() },
            role: "viewer".into(),
            limit: GrantScope::DocumentPrefixes {
                prefixes: vec!["hr/".into()],
            },
        });
        let u1 = model.grants_for("u1", "");
        let u2 = model.grants_for("u2", "");
        let u3 = model.grants_for("u3", "member");
        let may = |grants: &[Grant], permission, resource| {
            strongroom_domain::permits(grants, permission, resource)
        };
        assert!(may(
            &u1,
            Permission::RecordsRead,
            Resource::Collection("invoices")
        ));
        assert!(!may(
            &u1,
            Permission::RecordsRead,
            Resource::Collection("customers")
        ));
        assert!(!may(
            &u2,
            Permission::RecordsRead,
            Resource::Collection("invoices")
        ));
        assert!(may(
            &u2,
            Permission::DocumentsDownload,
            Resource::Document("hr/a.pdf")
        ));
        assert!(!may(
            &u2,
            Permission::DocumentsDownload,
            Resource::Document("finance/a.pdf")
        ));
        assert!(!may(
            &u2,
            Permission::DocumentsWrite,
            Resource::Document("hr/a.pdf")
        ));
        assert!(may(
            &u3,
            Permission::RecordsWrite,
            Resource::Collection("anything")
        ));
        assert!(model.grants_for("u4", "").is_empty(), "no role, no rights");

        assert!(model.forget_user("u1"));
        assert!(model.grants_for("u1", "").is_empty());
        assert!(!model.forget_user("u1"), "nothing left to forget");
    }

    #[test]
    fn names_and_limits_are_checked() {
        for bad in ["", "a", "Admins", "9lives", "has space", &"x".repeat(41)] {
            assert!(check_name("name", bad).is_err(), "{bad:?}");
        }
        assert!(check_name("name", "invoice-reader").is_ok());
        assert!(check_scope(&GrantScope::Collections { names: vec![] }).is_err());
        assert!(
            check_scope(&GrantScope::DocumentPrefixes {
                prefixes: vec!["".into()]
            })
            .is_err()
        );
        assert!(
            check_scope(&GrantScope::DocumentPrefixes {
                prefixes: vec!["hr".into()]
            })
            .is_err()
        );
        assert_eq!(
            check_scope(&GrantScope::DocumentPrefixes {
                prefixes: vec!["hr/".into(), "hr/".into()]
            })
            .unwrap(),
            GrantScope::DocumentPrefixes {
                prefixes: vec!["hr/".into()]
            }
        );
    }
}
