//! Strongroom's pure core: names, schemas, scopes, queries and time values.
//!
//! Nothing in this crate does I/O, async or cryptography, so every rule here is tested with
//! plain values.
#![forbid(unsafe_code)]

pub mod access;
pub mod brute_force;
pub mod byte_range;
pub mod collection;
pub mod document_path;
pub mod error;
pub mod firewall;
pub mod merge_patch;
pub mod password_policy;
pub mod query;
pub mod scope;
pub mod slug;
pub mod time;

pub use access::{
    BuiltinRole, Grant, GrantLimit, Permission, Resource, document_prefixes_within, permits,
};
pub use byte_range::ByteRange;
pub use collection::{CollectionName, CollectionSchema, FieldSpec, FieldType, IndexedValue};
pub use document_path::{DocumentPath, DocumentPrefix};
pub use error::DomainError;
pub use merge_patch::apply_merge_patch;
pub use password_policy::{
    Complexity, PasswordContext, PasswordPolicy, PasswordRule, strength_score,
};
pub use query::{Cursor, ListOrder, ListQuery, PAGE_LIMIT_MAX};
pub use scope::{Scope, ScopeSet};
pub use slug::TenantSlug;
pub use time::Timestamp;
