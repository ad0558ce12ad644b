//! Roles and permissions: what a user may do, decided in one pure function. A new user has no
//! grants and so may do nothing (least privilege).

use crate::DomainError;
use std::collections::BTreeSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Permission {
    RecordsRead,
    RecordsWrite,
    DocumentsRead,
    DocumentsWrite,
    DocumentsDownload,
    UsersManage,
    PolicyManage,
    AuditRead,
    ExportCreate,
}

impl Permission {
    pub const ALL: [Permission; 9] = [
        Permission::RecordsRead,
        Permission::RecordsWrite,
        Permission::DocumentsRead,
        Permission::DocumentsWrite,
        Permission::DocumentsDownload,
        Permission::UsersManage,
        Permission::PolicyManage,
        Permission::AuditRead,
        Permission::ExportCreate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::RecordsRead => "records:read",
            Permission::RecordsWrite => "records:write",
            Permission::DocumentsRead => "documents:read",
            Permission::DocumentsWrite => "documents:write",
            Permission::DocumentsDownload => "documents:download",
            Permission::UsersManage => "users:manage",
            Permission::PolicyManage => "policy:manage",
            Permission::AuditRead => "audit:read",
            Permission::ExportCreate => "export:create",
        }
    }

    pub fn parse(text: &str) -> Result<Self, DomainError> {
        Self::ALL
            .into_iter()
            .find(|permission| permission.as_str() == text)
            .ok_or_else(|| DomainError::UnknownScope {
                scope: crate::slug::truncate_for_message(text),
                known: Self::ALL.map(Permission::as_str).join(", "),
            })
    }
}

/// The roles every tenant has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BuiltinRole {
    Owner,
    Admin,
    Member,
    Viewer,
    Auditor,
}

impl BuiltinRole {
    pub const ALL: [BuiltinRole; 5] = [
        BuiltinRole::Owner,
        BuiltinRole::Admin,
        BuiltinRole::Member,
        BuiltinRole::Viewer,
        BuiltinRole::Auditor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BuiltinRole::Owner => "owner",
            BuiltinRole::Admin => "admin",
            BuiltinRole::Member => "member",
            BuiltinRole::Viewer => "viewer",
            BuiltinRole::Auditor => "auditor",
        }
    }

    pub fn permissions(self) -> BTreeSet<Permission> {
        use Permission::*;
        let list: &[Permission] = match self {
            BuiltinRole::Owner => &Permission::ALL,
            BuiltinRole::Admin => &[
                RecordsRead,
                RecordsWrite,
                DocumentsRead,
                DocumentsWrite,
                DocumentsDownload,
                UsersManage,
                PolicyManage,
                ExportCreate,
            ],
            BuiltinRole::Member => &[
                RecordsRead,
                RecordsWrite,
                DocumentsRead,
                DocumentsWrite,
                DocumentsDownload,
            ],
            BuiltinRole::Viewer => &[RecordsRead, DocumentsRead, DocumentsDownload],
            BuiltinRole::Auditor => &[AuditRead],
        };
        list.iter().copied().collect()
    }
}

/// What a grant may be limited to. Unlimited grants cover the whole tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantLimit {
    Everything,
    Collections(BTreeSet<String>),
    /// Directory prefixes such as `hr/` (whole segments).
    DocumentPrefixes(Vec<String>),
}

/// A set of permissions given to a user, directly or through a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub permissions: BTreeSet<Permission>,
    pub limit: GrantLimit,
}

/// The thing a request touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource<'a> {
    /// Tenant-wide actions: users, policy, audit, export.
    Tenant,
    Collection(&'a str),
    Document(&'a str),
    /// Somewhere in the tenant: opens a listing, whose entries are then checked one by one.
    Anywhere,
}

/// The one decision: does any grant give `permission` on `resource`?
pub fn permits(grants: &[Grant], permission: Permission, resource: Resource<'_>) -> bool {
    grants.iter().any(|grant| {
        grant.permissions.contains(&permission)
            && match (&grant.limit, resource) {
                (GrantLimit::Everything, _) | (_, Resource::Anywhere) => true,
                (GrantLimit::Collections(names), Resource::Collection(name)) => {
                    names.contains(name)
                }
                (GrantLimit::DocumentPrefixes(prefixes), Resource::Document(path)) => prefixes
                    .iter()
                    .any(|prefix| path.starts_with(prefix.as_str())),
                _ => false,
            }
    })
}

/// Where under the listing prefix `prefix` grants give `permission` on documents: `None` when
/// on every document under it, else the directory prefixes inside it that they name (none: no
/// document at all). A listing then reads only what the caller may see, so its cost does not
/// grow with what is hidden from them. Agrees with [`permits`]: directory prefixes are whole
/// segments, so a path under `prefix` and under a granted prefix is under the longer of the two.
pub fn document_prefixes_within(
    grants: &[Grant],
    permission: Permission,
    prefix: &str,
) -> Option<Vec<String>> {
    let mut inside = BTreeSet::new();
    for grant in grants
        .iter()
        .filter(|grant| grant.permissions.contains(&permission))
    {
        match &grant.limit {
            GrantLimit::Everything => return None,
            GrantLimit::Collections(_) => {}
            GrantLimit::DocumentPrefixes(granted) => {
                for granted in granted {
                    if prefix.starts_with(granted.as_str()) {
                        return None;
                    }
                    if granted.starts_with(prefix) {
                        inside.insert(granted.as_str());
                    }
                }
            }
        }
    }
    // A prefix inside another one adds nothing to the listing.
    Some(
        inside
            .iter()
            .filter(|granted| {
                !inside
                    .iter()
                    .any(|other| other != *granted && granted.starts_with(*other))
            })
            .map(|granted| (*granted).to_owned())
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(role: BuiltinRole) -> Grant {
        Grant {
            permissions: role.permissions(),
            limit: GrantLimit::Everything,
        }
    }

    #[test]
    fn the_built_in_roles_follow_the_table() {
        let table = [
            (BuiltinRole::Owner, Permission::AuditRead, true),
            (BuiltinRole::Owner, Permission::UsersManage, true),
            (BuiltinRole::Admin, Permission::UsersManage, true),
            (BuiltinRole::Admin, Permission::AuditRead, false),
            (BuiltinRole::Member, Permission::RecordsWrite, true),
            (BuiltinRole::Member, Permission::UsersManage, false),
            (BuiltinRole::Viewer, Permission::RecordsRead, true),
            (BuiltinRole::Viewer, Permission::RecordsWrite, false),
            (BuiltinRole::Auditor, Permission::AuditRead, true),
            (BuiltinRole::Auditor, Permission::RecordsRead, false),
        ];
        for (built_in, permission, expected) in table {
            assert_eq!(
                permits(&[role(built_in)], permission, Resource::Collection("any")),
                expected,
                "{built_in:?} {permission:?}"
            );
        }
    }

    #[test]
    fn no_grants_means_no_access_and_limits_hold() {
        assert!(Permission::ALL.iter().all(|permission| !permits(
            &[],
            *permission,
            Resource::Tenant
        )));
        let hr = Grant {
            permissions: [Permission::DocumentsRead].into(),
            limit: GrantLimit::DocumentPrefixes(vec!["hr/".into()]),
        };
        assert!(permits(
            std::slice::from_ref(&hr),
            Permission::DocumentsRead,
            Resource::Document("hr/contracts/a.pdf")
        ));
        assert!(!permits(
            std::slice::from_ref(&hr),
            Permission::DocumentsRead,
            Resource::Document("hrx/a.pdf")
        ));
        assert!(!permits(
            &[hr],
            Permission::DocumentsRead,
            Resource::Collection("hr")
        ));
        let customers = Grant {
            permissions: [Permission::RecordsRead].into(),
            limit: GrantLimit::Collections(["customers".to_owned()].into()),
        };
        assert!(permits(
            std::slice::from_ref(&customers),
            Permission::RecordsRead,
            Resource::Collection("customers")
        ));
        assert!(!permits(
            std::slice::from_ref(&customers),
            Permission::RecordsRead,
            Resource::Collection("invoices")
        ));
        assert!(permits(
            std::slice::from_ref(&customers),
            Permission::RecordsRead,
            Resource::Anywhere
        ));
        assert!(!permits(
            &[customers],
            Permission::RecordsWrite,
            Resource::Anywhere
        ));
    }

    /// Over every small tree and every grant of up to two prefixes: a path under a listing
    /// prefix is readable exactly when the prefixes to list say so.
    #[test]
    fn listing_prefixes_agree_with_permits() {
        let directories = ["", "a/", "b/", "a/a/", "a/b/", "b/a/", "a/a/a/"];
        let paths: Vec<String> = directories
            .iter()
            .map(|directory| format!("{directory}x"))
            .collect();
        let granted = &directories[1..];
        let mut grant_sets: Vec<Vec<&str>> = vec![vec![]];
        for (index, first) in granted.iter().enumerate() {
            grant_sets.push(vec![first]);
            for second in &granted[index + 1..] {
                grant_sets.push(vec![first, second]);
            }
        }
        for set in &grant_sets {
            let grants = vec![
                Grant {
                    permissions: [Permission::DocumentsRead].into(),
                    limit: GrantLimit::DocumentPrefixes(
                        set.iter().map(|prefix| (*prefix).to_owned()).collect(),
                    ),
                },
                // Other permissions and collection limits change nothing.
                Grant {
                    permissions: [Permission::DocumentsWrite].into(),
                    limit: GrantLimit::Everything,
                },
                Grant {
                    permissions: [Permission::DocumentsRead].into(),
                    limit: GrantLimit::Collections(["a".to_owned()].into()),
                },
            ];
            for listed in directories {
                let within = document_prefixes_within(&grants, Permission::DocumentsRead, listed);
                if let Some(prefixes) = &within {
                    for prefix in prefixes {
                        assert!(prefix.starts_with(listed), "{prefix} inside {listed}");
                        assert!(
                            !prefixes
                                .iter()
                                .any(|other| other != prefix && prefix.starts_with(other.as_str())),
                            "{prefixes:?} nest"
                        );
                    }
                }
                for path in paths.iter().filter(|path| path.starts_with(listed)) {
                    let listed_as_readable = within.as_ref().is_none_or(|prefixes| {
                        prefixes
                            .iter()
                            .any(|prefix| path.starts_with(prefix.as_str()))
                    });
                    assert_eq!(
                        listed_as_readable,
                        permits(&grants, Permission::DocumentsRead, Resource::Document(path)),
                        "grants {set:?}, listing {listed:?}, path {path}"
                    );
                }
            }
        }
        let everything = [Grant {
            permissions: [Permission::DocumentsRead].into(),
            limit: GrantLimit::Everything,
        }];
        assert_eq!(
            document_prefixes_within(&everything, Permission::DocumentsRead, "a/"),
            None
        );
        assert_eq!(
            document_prefixes_within(&everything, Permission::DocumentsDownload, "a/"),
            Some(vec![]),
            "no grant of the permission: nothing"
        );
    }

    #[test]
    fn permission_names_round_trip() {
        for permission in Permission::ALL {
            assert_eq!(Permission::parse(permission.as_str()).unwrap(), permission);
        }
        assert!(Permission::parse("records:delete").is_err());
    }
}
