//! JSON wire types, separate from the service's values so the API can stay stable while the
//! inside changes.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use strongroom_domain::{CollectionSchema, FieldSpec, FieldType};
use strongroom_service::{
    CollectionView, CreatedToken, KeyVersionView, ListedRecord, RecordView, TenantView,
};
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenantRequest {
    /// 2 to 63 characters a-z, 0-9 and '-', starting with a letter.
    #[schema(example = "acme")]
    pub slug: String,
    #[schema(example = "Acme NV")]
    pub name: String,
    /// Data residency region (default `eu`).
    #[serde(default = "default_region")]
    #[schema(example = "eu")]
    pub region: String,
}

fn default_region() -> String {
    "eu".to_owned()
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Tenant {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub region: String,
    /// `active` or `suspended`.
    pub status: String,
    pub created_at: String,
    pub status_changed_at: String,
    /// Key versions with their creation and last wrapping times.
    pub keys: Vec<KeyVersion>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyVersion {
    /// `data` (seals content) or `index` (blind indexes).
    pub purpose: String,
    pub version: u32,
    pub created_at: String,
    pub wrapped_at: String,
    pub master_key_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TenantList {
    pub tenants: Vec<Tenant>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    #[schema(example = "ci")]
    pub name: String,
    /// `records:read`, `records:write`, `documents:read`, `documents:write`, `audit:read` (the
    /// trail, its checkpoints and public key, for a log collector); only scopes the creator
    /// holds as permissions.
    #[schema(example = json!(["records:read", "records:write"]))]
    pub scopes: Vec<String>,
    /// Optional expiry, RFC 3339.
    #[serde(default)]
    pub expires_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedTokenResponse {
    pub id: String,
    pub name: String,
    pub tenant: String,
    pub scopes: Vec<String>,
    pub created_at: String,
    pub expires_at: Option<String>,
    /// The token. Shown once: only its hash is stored.
    pub token: String,
}

/// An API token as listed; its secret was shown once, at creation.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenWire {
    pub id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: String,
    pub expires_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenList {
    pub tokens: Vec<TokenWire>,
}

impl From<strongroom_service::TokenView> for TokenWire {
    fn from(view: strongroom_service::TokenView) -> Self {
        TokenWire {
            id: view.id,
            name: view.name,
            scopes: view.scopes,
            created_at: view.created_at.to_rfc3339(),
            expires_at: view.expires_at.map(|at| at.to_rfc3339()),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyRotationResponse {
    pub tenant: String,
    /// The data-key version now used for new writes.
    pub key_version: u32,
    /// Re-sealing of older data runs in the background and resumes after a restart.
    pub reseal: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MasterRotationResponse {
    pub old_master_key_id: String,
    pub new_master_key_id: String,
    pub rewrapped_keys: usize,
    /// The old key file, kept until the operator removes it.
    pub backup_file: String,
}

/// Type of a schema field.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FieldTypeWire {
    String,
    Integer,
    Number,
    Boolean,
    Object,
    Array,
    Any,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldSpecWire {
    #[serde(rename = "type")]
    pub field_type: FieldTypeWire,
    #[serde(default)]
    pub required: bool,
    /// Indexed fields can be filtered with `where.<field>=<value>`.
    #[serde(default)]
    pub indexed: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SchemaWire {
    #[serde(default)]
    pub fields: BTreeMap<String, FieldSpecWire>,
    /// When false, fields not declared here are refused.
    #[serde(default = "default_true")]
    pub additional_fields: bool,
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutCollectionRequest {
    #[serde(default)]
    pub schema: Option<SchemaWire>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Collection {
    pub name: String,
    pub schema: SchemaWire,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CollectionList {
    pub collections: Vec<Collection>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Record {
    pub id: String,
    pub collection: String,
    /// Starts at 1; the ETag is this number in quotes.
    pub version: u64,
    pub created_at: String,
    pub updated_at: String,
    /// The record's JSON object.
    #[schema(value_type = Object)]
    pub data: Value,
}

/// A listed record whose stored bytes failed their integrity check.
#[derive(Debug, Serialize, ToSchema)]
pub struct DamagedRecord {
    pub id: String,
    /// Always `integrity_error`.
    pub error: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum ListedRecordWire {
    Record(Record),
    Damaged(DamagedRecord),
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecordPage {
    pub records: Vec<ListedRecordWire>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: String,
}

impl From<TenantView> for Tenant {
    fn from(view: TenantView) -> Self {
        Tenant {
            id: view.id,
            slug: view.slug,
            name: view.name,
            region: view.region,
            status: if view.suspended {
                "suspended"
            } else {
                "active"
            }
            .to_owned(),
            created_at: view.created_at.to_rfc3339(),
            status_changed_at: view.status_changed_at.to_rfc3339(),
            keys: view.keys.into_iter().map(KeyVersion::from).collect(),
        }
    }
}

impl From<KeyVersionView> for KeyVersion {
    fn from(view: KeyVersionView) -> Self {
        KeyVersion {
            purpose: view.purpose,
            version: view.version,
            created_at: view.created_at.to_rfc3339(),
            wrapped_at: view.wrapped_at.to_rfc3339(),
            master_key_id: view.master_key_id,
        }
    }
}

impl From<CreatedToken> for CreatedTokenResponse {
    fn from(token: CreatedToken) -> Self {
        CreatedTokenResponse {
            id: token.id,
            name: token.name,
            tenant: token.tenant_slug,
            scopes: token.scopes,
            created_at: token.created_at.to_rfc3339(),
            expires_at: token.expires_at.map(|expiry| expiry.to_rfc3339()),
            token: token.secret,
        }
    }
}

impl From<FieldTypeWire> for FieldType {
    fn from(wire: FieldTypeWire) -> Self {
        match wire {
            FieldTypeWire::String => FieldType::String,
            FieldTypeWire::Integer => FieldType::Integer,
            FieldTypeWire::Number => FieldType::Number,
            FieldTypeWire::Boolean => FieldType::Boolean,
            FieldTypeWire::Object => FieldType::Object,
            FieldTypeWire::Array => FieldType::Array,
            FieldTypeWire::Any => FieldType::Any,
        }
    }
}

impl From<FieldType> for FieldTypeWire {
    fn from(domain: FieldType) -> Self {
        match domain {
            FieldType::String => FieldTypeWire::String,
            FieldType::Integer => FieldTypeWire::Integer,
            FieldType::Number => FieldTypeWire::Number,
            FieldType::Boolean => FieldTypeWire::Boolean,
            FieldType::Object => FieldTypeWire::Object,
            FieldType::Array => FieldTypeWire::Array,
            FieldType::Any => FieldTypeWire::Any,
        }
    }
}

impl From<SchemaWire> for CollectionSchema {
    fn from(wire: SchemaWire) -> Self {
        CollectionSchema {
            fields: wire
                .fields
                .into_iter()
                .map(|(name, spec)| {
                    (
                        name,
                        FieldSpec {
                            field_type: spec.field_type.into(),
                            required: spec.required,
                            indexed: spec.indexed,
                        },
                    )
                })
                .collect(),
            additional_fields: wire.additional_fields,
        }
    }
}

impl From<CollectionSchema> for SchemaWire {
    fn from(schema: CollectionSchema) -> Self {
        SchemaWire {
            fields: schema
                .fields
                .into_iter()
                .map(|(name, spec)| {
                    (
                        name,
                        FieldSpecWire {
                            field_type: spec.field_type.into(),
                            required: spec.required,
                            indexed: spec.indexed,
                        },
                    )
                })
                .collect(),
            additional_fields: schema.additional_fields,
        }
    }
}

impl From<CollectionView> for Collection {
    fn from(view: CollectionView) -> Self {
        Collection {
            name: view.name,
            schema: view.schema.into(),
            created_at: view.created_at.to_rfc3339(),
            updated_at: view.updated_at.to_rfc3339(),
        }
    }
}

impl From<RecordView> for Record {
    fn from(view: RecordView) -> Self {
        Record {
            id: view.id,
            collection: view.collection,
            version: view.version,
            created_at: view.created_at.to_rfc3339(),
            updated_at: view.updated_at.to_rfc3339(),
            data: view.body,
        }
    }
}

impl From<ListedRecord> for ListedRecordWire {
    fn from(listed: ListedRecord) -> Self {
        match listed {
            ListedRecord::Record(view) => ListedRecordWire::Record(view.into()),
            ListedRecord::Damaged { id } => ListedRecordWire::Damaged(DamagedRecord {
                id,
                error: "integrity_error".to_owned(),
            }),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Document {
    pub path: String,
    pub version: u64,
    pub size: u64,
    pub content_type: String,
    /// SHA-256 of the content, hex.
    pub sha256: String,
    pub created_at: String,
    /// When this version was written.
    pub updated_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DocumentPage {
    pub documents: Vec<Document>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DocumentVersion {
    pub version: u64,
    pub size: u64,
    pub content_type: String,
    pub sha256: String,
    pub created_at: String,
    pub current: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DocumentVersionList {
    pub path: String,
    pub versions: Vec<DocumentVersion>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TrashEntry {
    /// Restore with `POST /v1/tenants/{slug}/trash/{id}/restore`.
    pub id: String,
    pub path: String,
    pub deleted_at: String,
    pub versions: u64,
    pub size: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TrashList {
    pub entries: Vec<TrashEntry>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PurgeReport {
    pub versions_removed: u64,
    pub documents_removed: u64,
    pub blobs_removed: u64,
    pub uploads_removed: u64,
}

impl From<strongroom_service::DocumentView> for Document {
    fn from(view: strongroom_service::DocumentView) -> Self {
        Document {
            path: view.path,
            version: view.version,
            size: view.size,
            content_type: view.content_type,
            sha256: view.sha256,
            created_at: view.created_at.to_rfc3339(),
            updated_at: view.updated_at.to_rfc3339(),
        }
    }
}

impl From<strongroom_service::DocumentVersionView> for DocumentVersion {
    fn from(view: strongroom_service::DocumentVersionView) -> Self {
        DocumentVersion {
            version: view.version,
            size: view.size,
            content_type: view.content_type,
            sha256: view.sha256,
            created_at: view.created_at.to_rfc3339(),
            current: view.current,
        }
    }
}

impl From<strongroom_service::TrashEntryView> for TrashEntry {
    fn from(view: strongroom_service::TrashEntryView) -> Self {
        TrashEntry {
            id: view.id,
            path: view.path,
            deleted_at: view.deleted_at.to_rfc3339(),
            versions: view.versions,
            size: view.size,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    #[schema(example = "ann@example.com")]
    pub email: String,
    #[schema(example = "Ann Peeters")]
    pub display_name: String,
    /// Built-in roles: owner, admin, member, viewer, auditor. None means no rights yet.
    #[serde(default)]
    pub roles: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct User {
    pub id: String,
    pub email: String,
    pub display_name: String,
    pub phone: Option<String>,
    pub roles: Vec<String>,
    pub must_change_password: bool,
    pub created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserList {
    pub users: Vec<User>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedUserResponse {
    pub user: User,
    /// Shown once; the user must change it at first sign-in.
    pub one_time_password: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Serialize, ToSchema)]
pub struct LoginResponse {
    /// True when a second factor must follow: send a code with `mfa_token` to `auth/mfa`.
    pub mfa_required: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mfa_token: Option<String>,
    /// Send as `Authorization: Bearer …` (or rely on the cookie set with it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub must_change_password: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<User>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecondFactorRequest {
    pub mfa_token: String,
    /// A current TOTP code…
    #[serde(default)]
    pub code: Option<String>,
    /// …or one unused recovery code.
    #[serde(default)]
    pub recovery_code: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TotpEnrolmentResponse {
    /// Scan or paste into an authenticator app; then confirm with a code.
    pub otpauth_uri: String,
    pub qr_svg: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmTotpRequest {
    pub code: String,
}

#[derive(Serialize, ToSchema)]
pub struct RecoveryCodes {
    /// Each works once in place of a code. Shown once: store them safely.
    pub recovery_codes: Vec<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    pub new_password: String,
}

impl From<strongroom_service::UserView> for User {
    fn from(view: strongroom_service::UserView) -> Self {
        User {
            id: view.id,
            email: view.email,
            display_name: view.display_name,
            phone: view.phone,
            roles: view.roles,
            must_change_password: view.must_change_password,
            created_at: view.created_at.to_rfc3339(),
        }
    }
}

impl From<strongroom_service::CreatedUser> for CreatedUserResponse {
    fn from(created: strongroom_service::CreatedUser) -> Self {
        CreatedUserResponse {
            user: created.user.into(),
            one_time_password: created.one_time_password,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    /// Replaces the user's built-in roles.
    #[serde(default)]
    pub roles: Option<Vec<String>>,
    /// Disabled users cannot sign in; their sessions end.
    #[serde(default)]
    pub disabled: Option<bool>,
    /// `true` unlocks an account locked after failed sign-ins.
    #[serde(default)]
    pub unlock: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMeRequest {
    #[serde(default)]
    pub display_name: Option<String>,
    /// For alerts; an empty string removes it.
    #[serde(default)]
    pub phone: Option<String>,
}

/// How much variety a password needs.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ComplexityWire {
    None,
    CharacterClasses {
        minimum: u8,
    },
    /// zxcvbn score 0 to 4.
    Strength {
        minimum_score: u8,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordPolicyWire {
    pub length_min: usize,
    pub length_max: usize,
    pub complexity: ComplexityWire,
    pub reject_common: bool,
    pub history: u8,
    pub expiry_days: Option<u32>,
}

/// Who must sign in with a second factor.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MfaRequirementWire {
    Optional,
    Everyone,
    Roles { roles: Vec<String> },
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecurityPolicyWire {
    pub password: PasswordPolicyWire,
    pub mfa: MfaRequirementWire,
    /// Session lifetimes (default 30 minutes idle, 12 hours at most). Left out of a PUT, the
    /// current value stays, as for the two settings below.
    #[serde(default)]
    pub sessions: Option<SessionTimeoutsWire>,
    /// Refuse password sign-in: users sign in through a configured single sign-on provider.
    #[serde(default)]
    pub sso_required: Option<bool>,
    /// Operators' break-glass grants need an admin's approval before they work.
    #[serde(default)]
    pub support_access_approval: Option<bool>,
}

/// How long a session lives: idle 5 minutes to 24 hours, absolute 1 to 720 hours.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionTimeoutsWire {
    pub idle_minutes: u32,
    pub absolute_hours: u32,
}

impl Default for SessionTimeoutsWire {
    fn default() -> Self {
        let defaults = strongroom_service::SessionTimeouts::default();
        SessionTimeoutsWire {
            idle_minutes: defaults.idle_minutes,
            absolute_hours: defaults.absolute_hours,
        }
    }
}

impl From<strongroom_service::SecurityPolicy> for SecurityPolicyWire {
    fn from(policy: strongroom_service::SecurityPolicy) -> Self {
        use strongroom_domain::Complexity;
        let password = policy.password;
        SecurityPolicyWire {
            password: PasswordPolicyWire {
                length_min: password.length_min,
                length_max: password.length_max,
                complexity: match password.complexity {
                    Complexity::None => ComplexityWire::None,
                    Complexity::CharacterClasses { minimum } => {
                        ComplexityWire::CharacterClasses { minimum }
                    }
                    Complexity::Strength { minimum_score } => {
                        ComplexityWire::Strength { minimum_score }
                    }
                },
                reject_common: password.reject_common,
                history: password.history,
                expiry_days: password.expiry_days,
            },
            mfa: match policy.mfa {
                strongroom_service::MfaRequirement::Optional => MfaRequirementWire::Optional,
                strongroom_service::MfaRequirement::Everyone => MfaRequirementWire::Everyone,
                strongroom_service::MfaRequirement::Roles { roles } => {
                    MfaRequirementWire::Roles { roles }
                }
            },
            sessions: Some(SessionTimeoutsWire {
                idle_minutes: policy.sessions.idle_minutes,
                absolute_hours: policy.sessions.absolute_hours,
            }),
            sso_required: Some(policy.sso_required),
            support_access_approval: Some(policy.support_access_approval),
        }
    }
}

impl SecurityPolicyWire {
    /// The policy a PUT asks for: what it names, and the current value of what it leaves out
    /// (a client that does not know a newer setting does not turn it off).
    pub fn over(
        self,
        current: &strongroom_service::SecurityPolicy,
    ) -> strongroom_service::SecurityPolicy {
        let wire = self;
        use strongroom_domain::Complexity;
        let password = wire.password;
        strongroom_service::SecurityPolicy {
            password: strongroom_domain::PasswordPolicy {
                length_min: password.length_min,
                length_max: password.length_max,
                complexity: match password.complexity {
                    ComplexityWire::None => Complexity::None,
                    ComplexityWire::CharacterClasses { minimum } => {
                        Complexity::CharacterClasses { minimum }
                    }
                    ComplexityWire::Strength { minimum_score } => {
                        Complexity::Strength { minimum_score }
                    }
                },
                reject_common: password.reject_common,
                history: password.history,
                expiry_days: password.expiry_days,
            },
            mfa: match wire.mfa {
                MfaRequirementWire::Optional => strongroom_service::MfaRequirement::Optional,
                MfaRequirementWire::Everyone => strongroom_service::MfaRequirement::Everyone,
                MfaRequirementWire::Roles { roles } => {
                    strongroom_service::MfaRequirement::Roles { roles }
                }
            },
            sessions: wire.sessions.map_or(current.sessions, |sessions| {
                strongroom_service::SessionTimeouts {
                    idle_minutes: sessions.idle_minutes,
                    absolute_hours: sessions.absolute_hours,
                }
            }),
            sso_required: wire.sso_required.unwrap_or(current.sso_required),
            support_access_approval: wire
                .support_access_approval
                .unwrap_or(current.support_access_approval),
        }
    }
}

/// A role: built-in (fixed) or custom (defined by the tenant's admins).
#[derive(Debug, Serialize, ToSchema)]
pub struct RoleWire {
    pub name: String,
    pub builtin: bool,
    pub permissions: Vec<String>,
}

impl From<strongroom_service::RoleView> for RoleWire {
    fn from(role: strongroom_service::RoleView) -> Self {
        RoleWire {
            name: role.name,
            builtin: role.builtin,
            permissions: role.permissions,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RoleList {
    pub roles: Vec<RoleWire>,
}

/// A custom role's permissions, such as `records:read` and `documents:download`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutRoleRequest {
    pub permissions: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GroupWire {
    pub name: String,
    /// User ids.
    pub members: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GroupList {
    pub groups: Vec<GroupWire>,
}

/// A group's members (user ids); replaces the members it had.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutGroupRequest {
    pub members: Vec<String>,
}

/// Who a grant is for.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum GrantSubjectWire {
    User { id: String },
    Group { name: String },
}

/// Where a grant applies: everywhere in the tenant, named collections, or whole document
/// directories (prefixes ending in `/`).
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum GrantLimitWire {
    #[default]
    Everything,
    Collections {
        names: Vec<String>,
    },
    DocumentPrefixes {
        prefixes: Vec<String>,
    },
}

/// Give a role (any but owner) to a user or a group, optionally limited.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateGrantRequest {
    pub subject: GrantSubjectWire,
    pub role: String,
    /// Everywhere when left out.
    #[serde(default)]
    pub limit: GrantLimitWire,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GrantWire {
    pub id: String,
    pub subject: GrantSubjectWire,
    pub role: String,
    pub limit: GrantLimitWire,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GrantList {
    pub grants: Vec<GrantWire>,
}

impl From<GrantSubjectWire> for strongroom_service::GrantSubject {
    fn from(wire: GrantSubjectWire) -> Self {
        match wire {
            GrantSubjectWire::User { id } => strongroom_service::GrantSubject::User { id },
            GrantSubjectWire::Group { name } => strongroom_service::GrantSubject::Group { name },
        }
    }
}

impl From<GrantLimitWire> for strongroom_service::GrantScope {
    fn from(wire: GrantLimitWire) -> Self {
        use strongroom_service::GrantScope;
        match wire {
            GrantLimitWire::Everything => GrantScope::Everything,
            GrantLimitWire::Collections { names } => GrantScope::Collections { names },
            GrantLimitWire::DocumentPrefixes { prefixes } => {
                GrantScope::DocumentPrefixes { prefixes }
            }
        }
    }
}

impl From<strongroom_service::RoleGrant> for GrantWire {
    fn from(grant: strongroom_service::RoleGrant) -> Self {
        use strongroom_service::{GrantScope, GrantSubject};
        GrantWire {
            id: grant.id,
            subject: match grant.subject {
                GrantSubject::User { id } => GrantSubjectWire::User { id },
                GrantSubject::Group { name } => GrantSubjectWire::Group { name },
            },
            role: grant.role,
            limit: match grant.limit {
                GrantScope::Everything => GrantLimitWire::Everything,
                GrantScope::Collections { names } => GrantLimitWire::Collections { names },
                GrantScope::DocumentPrefixes { prefixes } => {
                    GrantLimitWire::DocumentPrefixes { prefixes }
                }
            },
        }
    }
}

/// A single sign-on provider as an admin sees it (the client secret is never shown).
#[derive(Debug, Serialize, ToSchema)]
pub struct SsoProviderWire {
    pub name: String,
    pub issuer: String,
    pub client_id: String,
    pub allowed_email_domains: Vec<String>,
    pub create_users: bool,
    pub role: Option<String>,
    pub link_existing_users: bool,
    /// Register this redirect URI at the provider.
    pub redirect_uri: String,
}

impl From<strongroom_service::SsoProviderView> for SsoProviderWire {
    fn from(view: strongroom_service::SsoProviderView) -> Self {
        SsoProviderWire {
            name: view.name,
            issuer: view.issuer,
            client_id: view.client_id,
            allowed_email_domains: view.allowed_email_domains,
            create_users: view.create_users,
            role: view.role,
            link_existing_users: view.link_existing_users,
            redirect_uri: view.redirect_uri,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SsoProviderList {
    pub providers: Vec<SsoProviderWire>,
}

/// An OpenID Connect provider for the tenant.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutSsoProviderRequest {
    /// https (http only on the loopback interface), such as https://login.microsoftonline.com/<tenant>/v2.0
    pub issuer: String,
    pub client_id: String,
    /// Required for a new provider; left out, the stored one is kept. Stored sealed.
    #[serde(default)]
    pub client_secret: Option<String>,
    /// A sign-in needs a verified email in one of these domains.
    pub allowed_email_domains: Vec<String>,
    /// Create a user at the first sign-in of an unknown email (just-in-time).
    #[serde(default)]
    pub create_users: bool,
    /// Built-in role of created users (not owner; one whose permissions you hold); none gives
    /// no rights until an admin does.
    #[serde(default)]
    pub role: Option<String>,
    /// Link existing users by their verified email at their first sign-in. Owners only: the
    /// provider can then sign in as those users.
    #[serde(default)]
    pub link_existing_users: bool,
}

/// An operator account.
#[derive(Debug, Serialize, ToSchema)]
pub struct OperatorWire {
    pub id: String,
    pub name: String,
    /// invited, active or disabled.
    pub status: String,
    /// Locked after too many failed sign-ins; another operator's enable unlocks it.
    pub locked: bool,
    pub created_at: String,
}

impl From<strongroom_service::OperatorView> for OperatorWire {
    fn from(view: strongroom_service::OperatorView) -> Self {
        OperatorWire {
            id: view.id,
            name: view.name,
            status: view.status,
            locked: view.locked,
            created_at: view.created_at.to_rfc3339(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OperatorList {
    pub operators: Vec<OperatorWire>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOperatorRequest {
    /// 2 to 40 characters a-z, 0-9, '.', '-' and '_'.
    pub name: String,
}

/// Give the enrolment token to the new operator, once; it works for 24 hours.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedOperatorResponse {
    pub operator: OperatorWire,
    pub enrolment_token: String,
    pub enrolment_expires_at: String,
}

/// Step one of enrolment: the new operator's own password.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OperatorEnrolRequest {
    pub enrolment_token: String,
    /// 12 to 256 characters, not a common password.
    pub password: String,
}

/// Step two of enrolment: a code from the authenticator app.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OperatorConfirmRequest {
    pub enrolment_token: String,
    pub code: String,
}

/// Operators always sign in with name, password and a TOTP code.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OperatorLoginRequest {
    pub name: String,
    pub password: String,
    pub code: String,
}

/// A locked-out user's way back in: password and one recovery code together.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecoverRequest {
    pub email: String,
    pub password: String,
    pub recovery_code: String,
}

#[derive(Serialize, ToSchema)]
pub struct OperatorSessionResponse {
    /// Send as `Authorization: Bearer …` on the admin listener; 30 minutes idle, 8 hours at most.
    pub session_token: String,
    pub operator: OperatorWire,
}

impl From<strongroom_service::OperatorSignedIn> for OperatorSessionResponse {
    fn from(signed_in: strongroom_service::OperatorSignedIn) -> Self {
        OperatorSessionResponse {
            session_token: signed_in.session_token,
            operator: signed_in.operator.into(),
        }
    }
}

/// Break-glass access to one tenant's data.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SupportAccessRequest {
    /// Why, in 10 to 1000 characters (a ticket number and the reason); the tenant sees it.
    pub justification: String,
    /// Data scopes, such as records:read.
    pub scopes: Vec<String>,
    /// 1 to 1440 (24 hours).
    pub duration_minutes: u32,
}

/// A break-glass grant as operators and the tenant's admins see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SupportGrantWire {
    pub id: String,
    pub operator: String,
    pub tenant: String,
    pub justification: String,
    pub scopes: Vec<String>,
    /// pending, active, denied, revoked or expired.
    pub status: String,
    pub created_at: String,
    pub expires_at: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
}

impl From<strongroom_service::SupportGrantView> for SupportGrantWire {
    fn from(view: strongroom_service::SupportGrantView) -> Self {
        SupportGrantWire {
            id: view.id,
            operator: view.operator,
            tenant: view.tenant_slug,
            justification: view.justification,
            scopes: view.scopes,
            status: view.status,
            created_at: view.created_at.to_rfc3339(),
            expires_at: view.expires_at.to_rfc3339(),
            decided_by: view.decided_by,
            decided_at: view.decided_at.map(|at| at.to_rfc3339()),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SupportGrantList {
    pub grants: Vec<SupportGrantWire>,
}

/// The grant with its token, shown once: send it as `Authorization: Bearer …` on the public
/// listener. Every request made with it is marked and visible to the tenant.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedSupportGrantResponse {
    pub grant: SupportGrantWire,
    pub token: String,
}

/// A tenant's virtual firewall: networks such as `10.0.0.0/8` or `2001:db8::/32`, or single
/// addresses. Deny rules always win; with an allow list, only its networks get in.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FirewallWire {
    #[serde(default)]
    pub allow: Vec<String>,
    #[serde(default)]
    pub deny: Vec<String>,
    /// Operators under a break-glass grant from the operator's support networks pass the allow
    /// list.
    #[serde(default)]
    pub allow_support: bool,
    /// Needed when the rules would shut out the address making the change. Never stored.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub confirm_lockout: bool,
}

impl From<strongroom_domain::firewall::FirewallRules> for FirewallWire {
    fn from(rules: strongroom_domain::firewall::FirewallRules) -> Self {
        FirewallWire {
            allow: rules.allow.iter().map(ToString::to_string).collect(),
            deny: rules.deny.iter().map(ToString::to_string).collect(),
            allow_support: rules.allow_support,
            confirm_lockout: false,
        }
    }
}

/// Limits for one kind of caller; null is no limit.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AllowanceWire {
    pub files_max: Option<u64>,
    pub bytes_max: Option<u64>,
}

/// Download thresholds: per caller and window, tenant-wide (`default`) or per built-in role (a
/// user with several gets the most generous). Passing one answers 429 until the window ends
/// or an admin lifts the block.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DownloadLimitsWire {
    /// 1 to 10080 (a week).
    pub window_minutes: u32,
    #[serde(default)]
    pub default: AllowanceWire,
    #[serde(default)]
    pub roles: BTreeMap<String, AllowanceWire>,
}

impl From<strongroom_service::DownloadLimits> for DownloadLimitsWire {
    fn from(limits: strongroom_service::DownloadLimits) -> Self {
        let wire = |allowance: strongroom_service::Allowance| AllowanceWire {
            files_max: allowance.files_max,
            bytes_max: allowance.bytes_max,
        };
        DownloadLimitsWire {
            window_minutes: limits.window_minutes,
            default: wire(limits.default),
            roles: limits
                .roles
                .into_iter()
                .map(|(role, allowance)| (role, wire(allowance)))
                .collect(),
        }
    }
}

impl From<DownloadLimitsWire> for strongroom_service::DownloadLimits {
    fn from(wire: DownloadLimitsWire) -> Self {
        let allowance = |wire: AllowanceWire| strongroom_service::Allowance {
            files_max: wire.files_max,
            bytes_max: wire.bytes_max,
        };
        strongroom_service::DownloadLimits {
            window_minutes: wire.window_minutes,
            default: allowance(wire.default),
            roles: wire
                .roles
                .into_iter()
                .map(|(role, wire)| (role, allowance(wire)))
                .collect(),
        }
    }
}

/// One audit event with its place in the chain.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEventWire {
    pub sequence: u64,
    /// The chain hash of this event (hex): SHA-256 over the previous hash, the sequence and
    /// the event's JSON.
    pub hash: String,
    /// time (`at`), tenant, actor, source address and user agent, request id, route and
    /// `action` (the operation id), resource, outcome with reason, status, bytes sent.
    #[schema(value_type = Object)]
    pub event: serde_json::Value,
    /// The event's JSON exactly as hashed: hash = SHA-256("strongroom/audit-chain/v1\0" ‖
    /// previous hash ‖ sequence as 8 big-endian bytes ‖ event_json), the first previous hash
    /// being 32 zero bytes (or, after expiry, the head of the checkpoint just before).
    pub event_json: String,
}

/// A signed chain head. The Ed25519 signature (public key at `…/audit/public-key`) is over
/// `strongroom/audit-checkpoint/v1\0<chain_id>\0<sequence>\0<head>`, or, for an expiry
/// mark, `strongroom/audit-expiry/v1\0<chain_id>\0<sequence>\0<head>`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckpointWire {
    pub chain_id: String,
    pub sequence: u64,
    pub head: String,
    pub signature: String,
    /// Events up to here expired; a trail may start only just after an expiry mark.
    pub expiry: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckpointList {
    /// Oldest first.
    pub checkpoints: Vec<CheckpointWire>,
    /// Pass as `cursor` for newer checkpoints.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    /// Newest first.
    pub events: Vec<AuditEventWire>,
    /// Pass as `cursor` for older events.
    pub next_cursor: Option<String>,
}

impl AuditPage {
    pub fn from_views(views: Vec<strongroom_service::AuditEventView>, limit: u32) -> Self {
        let next_cursor = (views.len() as u32 >= limit.max(1))
            .then(|| views.last().map(|view| view.sequence.to_string()))
            .flatten();
        AuditPage {
            events: views
                .into_iter()
                .map(|view| AuditEventWire {
                    sequence: view.sequence,
                    hash: view.hash,
                    event: serde_json::to_value(view.event).unwrap_or_default(),
                    event_json: view.event_json,
                })
                .collect(),
            next_cursor,
        }
    }
}

/// The key that signs the trail's checkpoints.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPublicKey {
    pub algorithm: String,
    /// The raw 32-byte Ed25519 public key, hex.
    pub public_key_hex: String,
}

/// What verification found in one chain.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChainReportWire {
    pub chain: String,
    pub events: u64,
    pub checkpoints: u64,
    pub intact: bool,
    pub broken_at: Option<u64>,
    pub problem: Option<String>,
    /// The newest signed head found in the chain's daily log files (`audit.log_dir`), checked
    /// like the trail's own checkpoints: a trail cut back together with its checkpoints in the
    /// database falls short of it. Absent when the files hold none.
    pub anchored_at: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditVerification {
    pub intact: bool,
    pub chains: Vec<ChainReportWire>,
}

/// How long the tenant's audit events are kept: 30 to 3650 days (400 by default).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditRetentionWire {
    pub days: u32,
}

/// A webhook for the tenant's security events. Debug leaves the signing secret out.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookWire {
    /// https (http only on loopback when the operator allows private networks).
    pub url: String,
    /// 16 to 256 characters; signs each delivery (`Strongroom-Signature: t=…,v1=…`, the hex
    /// HMAC-SHA-256 of `t.body`). Stored sealed, never shown again.
    pub secret: String,
}

impl std::fmt::Debug for WebhookWire {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("WebhookWire")
            .field("url", &strongroom_service::shown_url(&self.url))
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertChannelsRequest {
    #[serde(default)]
    pub webhooks: Vec<WebhookWire>,
    /// Up to 10 addresses, mailed over the operator's SMTP server.
    #[serde(default)]
    pub emails: Vec<String>,
}

/// The configured channels, without webhook secrets.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertChannelsView {
    pub webhooks: Vec<String>,
    pub emails: Vec<String>,
}
