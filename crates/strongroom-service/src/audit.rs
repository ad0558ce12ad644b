//! The audit trail (T1): every request on both listeners becomes an event in a hash chain, one
//! chain per tenant and one for the control plane. Events are sealed like all tenant content
//! (a tenant's with its key, the control plane's with the control key); the chain hash covers
//! the plaintext event, so an exported trail can be checked with the signed checkpoints and
//! the server's public key alone. Personal values the trail is searched by (actor, address)
//! are stored as blind-index tokens.

use crate::platform::{Platform, blocking};
use crate::sealing::TenantRuntime;
use crate::tenants::{Need, TokenPrincipal};
use crate::users::invalid_parameter;
use crate::{SecurityEventKind, ServiceError, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use strongroom_crypto::{AuditSigningKey, Keyring, chain_hash, verify_signature};
use strongroom_domain::Permission;
use strongroom_storage::{
    AuditCheckpointRow, AuditEntry, AuditQuery, AuditRow, AuditStore, StorageError,
    StoredSigningKey,
};

/// The control plane's chain.
pub const CONTROL_CHAIN: &str = strongroom_domain::slug::CONTROL_PLANE;
const EVENT_FORMAT: u8 = 1;
const VERIFY_BATCH: u32 = 1000;
const PAGE_MAX: u32 = 1000;
const USER_AGENT_LENGTH_MAX: usize = 256;
const SIGNING_KEY_CONTEXT: &[u8] = b"strongroom/audit-signing-key/v1";

/// Who made a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AuditActor {
    #[default]
    Anonymous,
    User {
        id: String,
    },
    ApiToken {
        id: String,
    },
    Operator {
        name: String,
    },
    /// An operator under a break-glass grant.
    SupportGrant {
        grant_id: String,
        operator: String,
    },
}

impl AuditActor {
    /// Who made a request to a tenant's data.
    pub fn of(principal: &TokenPrincipal) -> Self {
        match (&principal.user, &principal.support) {
            (Some(user), _) => AuditActor::User {
                id: user.user_id.clone(),
            },
            (None, Some(mark)) => AuditActor::SupportGrant {
                grant_id: mark.grant_id.clone(),
                operator: mark.operator.clone(),
            },
            (None, None) => AuditActor::ApiToken {
                id: principal.token_id.clone(),
            },
        }
    }

    fn search_key(&self) -> Option<String> {
        match self {
            AuditActor::Anonymous => None,
            AuditActor::User { id } | AuditActor::ApiToken { id } => Some(id.clone()),
            AuditActor::Operator { name } => Some(name.clone()),
            AuditActor::SupportGrant { grant_id, .. } => Some(grant_id.clone()),
        }
    }
}

/// What the API knows of a request when it records it.
#[derive(Debug, Clone, Default)]
pub struct AuditRecord {
    /// The tenant named in the path, if any.
    pub tenant_slug: Option<String>,
    /// The tenant is only whose trail an operator reads (`?tenant=`): when it cannot be
    /// opened the event goes to the control chain, so a broken tenant's trail can still be
    /// read and verified.
    pub tenant_read_only: bool,
    /// `intent` before a change runs, `outcome` after, `request` for a read; `cut_short` when
    /// an answer's body stopped before its end (`bytes_sent` then says how far it got).
    pub phase: &'static str,
    pub actor: AuditActor,
    pub address: Option<std::net::IpAddr>,
    pub user_agent: Option<String>,
    pub request_id: String,
    pub listener: &'static str,
    pub method: String,
    /// The route template, such as `/v1/tenants/{slug}/collections/{name}/records/{id}`.
    pub route: String,
    /// A stable name: the operation's id, such as `get_record`.
    pub action: String,
    /// Path parameters other than the tenant; `name` and `path` are tenant content and are
    /// stored as keyed hashes.
    pub parameters: Vec<(String, String)>,
    /// `allowed`, `denied`, `error`, or `pending` for an intent.
    pub outcome: &'static str,
    /// The problem code of a refusal or error.
    pub reason: Option<String>,
    pub status: Option<u16>,
    pub bytes_sent: Option<u64>,
    /// The sign-in name given, also when the sign-in failed.
    pub username_tried: Option<String>,
    /// What a change changed, when the route says (the old and new firewall rules).
    pub details: Option<serde_json::Value>,
}

/// One stored event. Format version inside; do not change a shipped version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub format: u8,
    pub chain: String,
    pub at: String,
    pub tenant: Option<String>,
    pub phase: String,
    pub actor: AuditActor,
    pub address: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: String,
    pub listener: String,
    pub method: String,
    pub route: String,
    pub action: String,
    pub resource: BTreeMap<String, String>,
    pub outcome: String,
    pub reason: Option<String>,
    pub status: Option<u16>,
    pub bytes_sent: Option<u64>,
    pub username_tried: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

/// An event as listed, with its place in the chain.
#[derive(Debug, Clone)]
pub struct AuditEventView {
    pub sequence: u64,
    pub hash: String,
    pub event: AuditEvent,
    /// The event's JSON exactly as hashed, so a tenant can recompute the chain.
    pub event_json: String,
}

/// A signed chain head, for checking an exported trail.
#[derive(Debug, Clone)]
pub struct CheckpointView {
    pub sequence: u64,
    pub head: String,
    pub signature: String,
    /// The signed message: `strongroom/audit-checkpoint/v1\0<chain id>\0<sequence>\0<head hex>`,
    /// or `strongroom/audit-expiry/v1\0…` for an expiry mark.
    pub chain_id: String,
    /// Expired events end here; a trail may start just after an expiry mark only.
    pub expiry: bool,
}

/// Filters for listing a trail. Times are RFC 3339.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub outcome: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub address: Option<String>,
    pub before_sequence: Option<u64>,
    pub limit: u32,
}

/// What `verify` found in one chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// The tenant's slug, or `control`.
    pub chain: String,
    pub events: u64,
    pub checkpoints: u64,
    /// The first sequence number where the chain is broken, and why.
    pub broken_at: Option<u64>,
    pub problem: Option<String>,
    /// The newest signed head found in the chain's daily files, checked against the trail like
    /// its own checkpoints: a trail cut back together with its checkpoints falls short of it.
    pub anchored_at: Option<u64>,
}

/// How one chain's events are sealed and searched.
struct ChainKeys {
    chain: String,
    slug: Option<String>,
    keyring: Keyring,
    index: Option<strongroom_crypto::BlindIndexKey>,
}

/// Whether the columns stored beside a sealed event for queries and retention (time, action,
/// outcome) are the sealed event's own: changed ones could hide events from a query or make
/// young events look due for expiry.
fn indexed_columns_match(row: &AuditRow, plaintext: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Indexed {
        at: String,
        action: String,
        outcome: String,
    }
    serde_json::from_slice::<Indexed>(plaintext).is_ok_and(|sealed| {
        Timestamp::parse_rfc3339(&sealed.at).is_ok_and(|at| at.unix_micros() == row.at)
            && sealed.action == row.action
            && sealed.outcome == row.outcome
    })
}

/// The checkpoints of a chain in its recent daily files whose signature verifies, by
/// sequence; a directory that cannot be read is logged and checked without (the trail stays
/// the record).
fn checkpoints_in_files(
    log_dir: &std::path::Path,
    keys: &ChainKeys,
    chain_id: &str,
    today: Timestamp,
    public: &[u8],
) -> Vec<AuditCheckpointRow> {
    let chain_name = keys.slug.as_deref().unwrap_or(CONTROL_CHAIN);
    let signed_here = |row: &AuditCheckpointRow| {
        let message = checkpoint_message(chain_id, row.sequence, &row.head, row.expiry);
        verify_signature(public, &message, &row.signature)
    };
    match crate::audit_log::recent_checkpoints(log_dir, chain_name, chain_id, today, signed_here) {
        Ok(found) => found,
        Err(error) => {
            tracing::warn!(%error, chain = chain_name, "the daily audit files could not be read for their checkpoints");
            Vec::new()
        }
    }
}

/// A chain's checkpoints, oldest first, read a page at a time as verification reaches them,
/// and the one from the daily files in its place among them.
struct CheckpointPages<'store> {
    store: &'store dyn AuditStore,
    chain: &'store str,
    page: std::collections::VecDeque<AuditCheckpointRow>,
    after: u64,
    exhausted: bool,
    from_files: std::collections::VecDeque<AuditCheckpointRow>,
}

/// Where a checkpoint being checked came from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum CheckpointSource {
    AuditDatabase,
    DailyFiles,
}

impl<'store> CheckpointPages<'store> {
    fn new(
        store: &'store dyn AuditStore,
        chain: &'store str,
        from_files: Vec<AuditCheckpointRow>,
    ) -> Self {
        Self {
            store,
            chain,
            page: Default::default(),
            after: 0,
            exhausted: false,
            from_files: from_files.into(),
        }
    }

    /// The next checkpoint if it is at or below `sequence`, the daily files' before the
    /// database's at the same place.
    fn next_through(
        &mut self,
        sequence: u64,
    ) -> Result<Option<(AuditCheckpointRow, CheckpointSource)>, StorageError> {
        let stored = self.next_stored_through(sequence)?;
        let from_files = match self.from_files.front() {
            Some(checkpoint) if checkpoint.sequence <= sequence => self.from_files.pop_front(),
            _ => None,
        };
        Ok(match (stored, from_files) {
            (Some(stored), Some(from_files)) if from_files.sequence > stored.sequence => {
                self.from_files.push_front(from_files);
                Some((stored, CheckpointSource::AuditDatabase))
            }
            (stored, Some(from_files)) => {
                if let Some(stored) = stored {
                    self.page.push_front(stored);
                }
                Some((from_files, CheckpointSource::DailyFiles))
            }
            (stored, None) => stored.map(|stored| (stored, CheckpointSource::AuditDatabase)),
        })
    }

    fn next_stored_through(
        &mut self,
        sequence: u64,
    ) -> Result<Option<AuditCheckpointRow>, StorageError> {
        if self.page.is_empty() && !self.exhausted {
            self.page = self
                .store
                .checkpoints_after(self.chain, self.after, VERIFY_BATCH)?
                .into();
            self.exhausted = self.page.len() < VERIFY_BATCH as usize;
            if let Some(last) = self.page.back() {
                self.after = last.sequence;
            }
        }
        match self.page.front() {
            Some(checkpoint) if checkpoint.sequence <= sequence => Ok(self.page.pop_front()),
            _ => Ok(None),
        }
    }
}

fn event_context(chain: &str, sequence: u64) -> Vec<u8> {
    format!("strongroom/audit/v1\0{chain}\0{sequence}").into_bytes()
}

/// What a checkpoint's signature covers. An expiry mark (where expired events end) is signed
/// under its own label, so a trail cut at an ordinary checkpoint cannot pass for an expired one.
pub(crate) fn checkpoint_message(chain: &str, sequence: u64, head: &[u8], expiry: bool) -> Vec<u8> {
    let label = if expiry {
        "audit-expiry"
    } else {
        "audit-checkpoint"
    };
    format!(
        "strongroom/{label}/v1\0{chain}\0{sequence}\0{}",
        hex::encode(head)
    )
    .into_bytes()
}

/// Whether an address's domain looks like one mail goes to (labels of letters, digits and
/// hyphens, a top-level label of two or more letters, or an internationalised one such as
/// `xn--p1ai`): `P@ssw0rd.24` is no address.
fn has_a_mail_domain(email: &str) -> bool {
    let Some((_, domain)) = email.rsplit_once('@') else {
        return false;
    };
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
        })
        && labels.last().is_some_and(|top| {
            top.starts_with("xn--")
                || (top.len() >= 2 && top.bytes().all(|byte| byte.is_ascii_alphabetic()))
        })
}

/// Opens the audit signing key sealed in the audit store, or makes one on a first start.
pub(crate) fn open_signing_key(
    audit: &dyn AuditStore,
    control_keyring: &Keyring,
) -> Result<AuditSigningKey, ServiceError> {
    let integrity = || ServiceError::Integrity {
        what: "the audit signing key".into(),
    };
    let stored = match audit.signing_key()? {
        Some(stored) => stored,
        None => {
            let pkcs8 = AuditSigningKey::generate()?;
            let public = AuditSigningKey::from_pkcs8(&pkcs8)?.public_key().to_vec();
            let sealed = control_keyring.seal(SIGNING_KEY_CONTEXT, &pkcs8)?;
            // The platform opens before it serves, possibly on an async worker: the one write
            // of a first start waits for its commit on a thread of its own.
            let key = StoredSigningKey { sealed, public };
            std::thread::scope(|scope| scope.spawn(|| audit.set_signing_key(key)).join())
                .map_err(|_| ServiceError::Internal("storing the audit key panicked".into()))??
        }
    };
    let pkcs8 = zeroize::Zeroizing::new(
        control_keyring
            .open(SIGNING_KEY_CONTEXT, &stored.sealed)
            .map_err(|_| integrity())?,
    );
    AuditSigningKey::from_pkcs8(&pkcs8).map_err(|_| integrity())
}

/// Where a chain breaks, for a sentence: `sequence 10`, or `its checkpoints`.
pub(crate) fn describe_break(broken_at: Option<u64>) -> String {
    broken_at.map_or_else(
        || "its checkpoints".to_owned(),
        |sequence| format!("sequence {sequence}"),
    )
}

fn parse_time(field: &str, value: &Option<String>) -> Result<Option<i64>, ServiceError> {
    value
        .as_deref()
        .map(|text| {
            Timestamp::parse_rfc3339(text)
                .map(Timestamp::unix_micros)
                .map_err(|_| {
                    invalid_parameter(
                        field,
                        "use an RFC 3339 time such as 2026-01-31T12:00:00Z".into(),
                    )
                })
        })
        .transpose()
}

impl Platform {
    fn chain_keys_of(&self, runtime: Option<&TenantRuntime>) -> ChainKeys {
        match runtime {
            Some(runtime) => {
                let keys = runtime.keys();
                ChainKeys {
                    chain: runtime.id.clone(),
                    slug: Some(runtime.slug.clone()),
                    keyring: keys.keyring.clone(),
                    index: Some(keys.index_key.clone()),
                }
            }
            None => ChainKeys {
                chain: CONTROL_CHAIN.into(),
                slug: None,
                keyring: self.control_keyring.clone(),
                index: None,
            },
        }
    }

    /// The keys of a chain by its id (a tenant id, or `control`).
    async fn chain_keys(&self, chain: &str) -> Result<ChainKeys, ServiceError> {
        if chain == CONTROL_CHAIN {
            return Ok(self.chain_keys_of(None));
        }
        let runtime = self
            .tenant_by_id(chain)
            .await?
            .ok_or(ServiceError::NotFound("tenant"))?;
        Ok(self.chain_keys_of(Some(&runtime)))
    }

    /// Records one event; answers its sequence number once it is durable. Any failure is
    /// `AuditUnavailable`: the caller must then refuse the request.
    pub async fn audit(&self, record: AuditRecord) -> Result<u64, ServiceError> {
        // A request naming no tenant that exists goes to the control chain; a tenant that
        // exists but cannot be opened must not have its events land there.
        let runtime = match &record.tenant_slug {
            Some(slug) => match self.tenant(slug).await {
                Ok(runtime) => Some(runtime),
                Err(ServiceError::NotFound(_) | ServiceError::Invalid(_)) => None,
                Err(_) if record.tenant_read_only => None,
                Err(_) => return Err(ServiceError::AuditUnavailable),
            },
            None => None,
        };
        let keys = self.chain_keys_of(runtime.as_deref());
        self.append_audit(keys, record).await
    }

    /// Records a security event in the chain of the tenant it concerns (or the control
    /// plane's), as `security.<kind>` with outcome `security`.
    pub(crate) async fn record_security_event(
        &self,
        kind: SecurityEventKind,
        tenant_id: Option<String>,
        detail: String,
        origin: Option<crate::security::RequestOrigin>,
    ) -> Result<u64, ServiceError> {
        // The tenant is looked up once, for its chain and its alert channels.
        let runtime = match &tenant_id {
            Some(tenant_id) => Some(
                self.tenant_by_id(tenant_id)
                    .await?
                    .ok_or(ServiceError::NotFound("tenant"))?,
            ),
            None => None,
        };
        let keys = self.chain_keys_of(runtime.as_deref());
        let origin = origin.unwrap_or_default();
        let record = AuditRecord {
            tenant_slug: keys.slug.clone(),
            phase: "event",
            address: origin.address,
            user_agent: origin.user_agent,
            request_id: origin.request_id,
            listener: if origin.listener.is_empty() {
                "-"
            } else {
                origin.listener
            },
            method: "-".into(),
            route: "-".into(),
            action: format!("security.{}", kind.as_str()),
            outcome: "security",
            details: Some(serde_json::json!({ "detail": detail })),
            ..AuditRecord::default()
        };
        let sequence = self.append_audit(keys, record).await?;
        if let Some(runtime) = runtime {
            self.deliver_alert(&runtime, kind, &detail, sequence)
                .await?;
        }
        Ok(sequence)
    }

    async fn append_audit(
        &self,
        keys: ChainKeys,
        record: AuditRecord,
    ) -> Result<u64, ServiceError> {
        let token = |domain: &str, value: &str| {
            keys.index
                .as_ref()
                .map(|index| index.token(domain, &[value.as_bytes()]))
        };
        let resource = record
            .parameters
            .iter()
            .map(|(name, value)| {
                let shown = match (name.as_str(), &keys.index) {
                    // Names and paths are tenant content: a keyed hash stands in for them.
                    ("name" | "path", Some(index)) => {
                        format!(
                            "#{}",
                            hex::encode(index.token("audit-resource/v1", &[value.as_bytes()]))
                        )
                    }
                    // A name on the control plane's chain of a request that named a tenant (one
                    // that does not exist, or no longer does) may still be someone's content.
                    ("name" | "path", None) if record.tenant_slug.is_some() => "#".into(),
                    // Other values, and the names of requests that named no tenant: operators'
                    // (`/admin/v1/operators/{name}`).
                    _ => value.chars().take(128).collect(),
                };
                (name.clone(), shown)
            })
            .collect();
        // A sign-in name that could name no account (an email address on a tenant's chain, an
        // operator name on the control plane's) may be a password typed into the wrong field:
        // only its keyed hash is kept.
        let username_tried = record.username_tried.map(|name| {
            let possible = match keys.slug {
                Some(_) => crate::users::normalize_email(&name)
                    .is_ok_and(|email| has_a_mail_domain(&email)),
                None => crate::operators::check_name(&name).is_ok(),
            };
            match (possible, &keys.index) {
                (true, _) => name,
                (false, Some(index)) => format!(
                    "#{}",
                    hex::encode(index.token("audit-name-tried/v1", &[name.as_bytes()]))
                ),
                (false, None) => "#".into(),
            }
        });
        let now = self.clock.now();
        let event = AuditEvent {
            format: EVENT_FORMAT,
            chain: keys.chain.clone(),
            at: now.to_rfc3339(),
            // A missing tenant's slug is whatever the URL said: bounded like a real one.
            tenant: keys.slug.clone().or_else(|| {
                record
                    .tenant_slug
                    .as_ref()
                    .map(|slug| slug.chars().take(64).collect())
            }),
            phase: record.phase.into(),
            actor: record.actor.clone(),
            address: record.address.map(|address| address.to_string()),
            user_agent: record
                .user_agent
                .map(|agent| agent.chars().take(USER_AGENT_LENGTH_MAX).collect()),
            request_id: record.request_id,
            listener: record.listener.into(),
            // Any token is a method to HTTP: a bounded one is enough to tell what came.
            method: record.method.chars().take(16).collect(),
            route: record.route,
            action: record.action.clone(),
            resource,
            outcome: record.outcome.into(),
            reason: record.reason,
            status: record.status,
            bytes_sent: record.bytes_sent,
            username_tried,
            details: record.details,
        };
        let plaintext = serde_json::to_vec(&event)
            .map_err(|error| ServiceError::Internal(error.to_string()))?;
        let entry = AuditEntry {
            chain: keys.chain.clone(),
            at: now.unix_micros(),
            action: record.action,
            outcome: record.outcome.into(),
            actor_token: record
                .actor
                .search_key()
                .and_then(|key| token("audit-actor/v1", &key)),
            address_token: record
                .address
                .and_then(|address| token("audit-address/v1", &address.to_string())),
        };
        let keyring = keys.keyring.clone();
        let chain = keys.chain.clone();
        let sealer: strongroom_storage::AuditSealer = Box::new(move |sequence, previous| {
            let sealed = keyring
                .seal(&event_context(&chain, sequence), &plaintext)
                .map_err(|error| {
                    strongroom_storage::StorageError::Unavailable(error.to_string())
                })?;
            Ok((sealed, chain_hash(previous, sequence, &plaintext)))
        });
        let sequence = self
            .audit_store
            .append(entry, sealer)
            .await
            .map_err(|error| {
                tracing::error!(%error, "an audit event could not be written");
                ServiceError::AuditUnavailable
            })?;
        // The signer sets the count back to zero when it starts; a wake-up that comes while it
        // signs is kept and starts the next round.
        let unsigned = self.audit_events_unsigned.fetch_add(1, Ordering::Relaxed) + 1;
        if unsigned == self.options.audit_checkpoint_every_events {
            self.audit_checkpoint_due.notify_one();
        }
        // The log file's line is made on the writer's own thread, off the request's path.
        self.audit_log.write(crate::audit_log::AuditLogLine {
            chain_name: keys
                .slug
                .clone()
                .unwrap_or_else(|| CONTROL_CHAIN.to_owned()),
            sequence,
            event,
            index: keys.index.clone(),
        });
        Ok(sequence)
    }

    /// Writes out the daily files' pending lines (at shutdown: the writer thread does not
    /// outlive the process); answers whether it finished within `limit`.
    pub async fn flush_audit_log(&self, limit: std::time::Duration) -> bool {
        self.audit_log.flush(limit).await
    }

    /// Signs the head of every chain that moved since its last checkpoint; answers how many.
    pub async fn sign_audit_checkpoints(&self) -> Result<usize, ServiceError> {
        self.audit_events_unsigned.store(0, Ordering::Relaxed);
        let audit = self.audit_store.clone();
        let key = self.audit_signing_key.clone();
        let now = self.clock.now().unix_micros();
        let signed: Vec<AuditCheckpointRow> = blocking(move || {
            let mut signed = Vec::new();
            for chain in audit.chains()? {
                let Some((sequence, head)) = audit.head(&chain)? else {
                    continue;
                };
                let last = audit
                    .last_checkpoint(&chain)?
                    .map(|checkpoint| checkpoint.sequence);
                if last.is_some_and(|last| last >= sequence) {
                    continue;
                }
                let signature = key.sign(&checkpoint_message(&chain, sequence, &head, false));
                let checkpoint = AuditCheckpointRow {
                    chain,
                    sequence,
                    head,
                    signature: signature.to_vec(),
                    at: now,
                    expiry: false,
                };
                audit.add_checkpoint(checkpoint.clone())?;
                signed.push(checkpoint);
            }
            Ok(signed)
        })
        .await?;
        for checkpoint in &signed {
            self.log_checkpoint(checkpoint).await;
        }
        Ok(signed.len())
    }

    /// Writes a signed checkpoint (stored already) to its chain's daily file.
    pub(crate) async fn log_checkpoint(&self, checkpoint: &AuditCheckpointRow) {
        if self.options.audit_log_dir.is_none() {
            return;
        }
        let chain_name = if checkpoint.chain == CONTROL_CHAIN {
            CONTROL_CHAIN.to_owned()
        } else {
            match self.tenant_by_id(&checkpoint.chain).await {
                Ok(Some(runtime)) => runtime.slug.clone(),
                // An erased tenant's chain has no files to add to.
                Ok(None) => return,
                Err(error) => {
                    tracing::warn!(%error, "a signed checkpoint could not be written to its daily file");
                    return;
                }
            }
        };
        self.audit_log
            .checkpoint(chain_name, crate::audit_log::CheckpointLine::of(checkpoint));
    }

    /// The public key that checks the trail's checkpoints (Ed25519, hex of the raw 32 bytes).
    pub fn audit_public_key_hex(&self) -> String {
        hex::encode(self.audit_signing_key.public_key())
    }

    /// The same key for a tenant's users with `audit:read`, to check their exported trail.
    pub async fn tenant_audit_public_key(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
    ) -> Result<String, ServiceError> {
        self.authorize(principal, slug, Need::audit_read()).await?;
        Ok(self.audit_public_key_hex())
    }

    /// Checks whole chains: every link, every sealed event against its hash, every signed
    /// checkpoint against the recomputed head; reports the first break of each chain.
    pub async fn verify_audit(&self, slug: Option<&str>) -> Result<Vec<ChainReport>, ServiceError> {
        let chains = match slug {
            Some(slug) if slug == CONTROL_CHAIN => vec![CONTROL_CHAIN.to_owned()],
            Some(slug) => vec![self.tenant(slug).await?.id.clone()],
            None => {
                // Every tenant's chain, also one whose every row is gone from the audit
                // database (its daily files may still hold its heads), and every chain stored.
                let audit = self.audit_store.clone();
                let control = self.control.clone();
                blocking(move || {
                    let mut chains: std::collections::BTreeSet<String> =
                        audit.chains()?.into_iter().collect();
                    chains.insert(CONTROL_CHAIN.to_owned());
                    chains.extend(control.list_tenants()?.into_iter().map(|tenant| tenant.id));
                    Ok(chains.into_iter().collect::<Vec<_>>())
                })
                .await?
            }
        };
        let mut reports = Vec::new();
        for chain in chains {
            // One chain at a time with expiry, so a long check holds back no expiry (and the
            // document purges on its loop) for longer than one chain takes.
            let expiry_waits = self.audit_maintenance.lock().await;
            let checked = self.verify_chain(&chain, None).await;
            drop(expiry_waits);
            // A chain that cannot be checked at all (rows of a chain no tenant owns, a store
            // that cannot be read) is reported broken to operators only: the control plane's
            // chain and the log, not the tenant's alert channels (a passing storage error is no
            // tampering, and its text is not the tenant's). The others are still checked.
            let (report, concerns) = match checked {
                Ok(report) => (report, (chain != CONTROL_CHAIN).then_some(chain.as_str())),
                Err(error) => {
                    tracing::error!(%error, chain = %chain, "an audit chain could not be checked");
                    let report = ChainReport {
                        chain: chain.chars().take(64).collect(),
                        events: 0,
                        checkpoints: 0,
                        broken_at: Some(0),
                        problem: Some("the chain could not be checked (see the server log)".into()),
                        anchored_at: None,
                    };
                    (report, None)
                }
            };
            if let Some(problem) = &report.problem {
                self.security.raise(
                    SecurityEventKind::AuditVerifyFailed,
                    concerns,
                    &format!(
                        "the audit chain {} is broken at {}: {problem}",
                        report.chain,
                        describe_break(report.broken_at)
                    ),
                );
            }
            reports.push(report);
        }
        Ok(reports)
    }

    /// Records `record` in the background, for events of an answer already on its way (a
    /// download cut short). Counted with the security events' recordings, so the shutdown
    /// waits for it before the last checkpoints.
    pub fn audit_in_background(&self, record: AuditRecord) {
        self.after_the_answer(
            "an event recorded in the background",
            move |platform| async move { platform.audit(record).await.map(|_| ()) },
        );
    }

    /// Runs `work` for an answer already on its way, counted with the security events'
    /// recordings so the shutdown waits for it; a failure is logged as `what`'s.
    pub(crate) fn after_the_answer<Work>(
        &self,
        what: &'static str,
        work: impl FnOnce(std::sync::Arc<Platform>) -> Work + Send + 'static,
    ) where
        Work: std::future::Future<Output = Result<(), ServiceError>> + Send,
    {
        let platform = self.security.platform();
        let started = self.security.in_background(async move {
            let Some(platform) = platform.upgrade() else {
                return;
            };
            if let Err(error) = work(platform).await {
                tracing::warn!(%error, "{what} failed");
            }
        });
        if !started {
            tracing::warn!("{what} after the runtime stopped did not run");
        }
    }

    /// Checks one chain, from its start (or its last expiry mark) through `through` or its end.
    pub(crate) async fn verify_chain(
        &self,
        chain: &str,
        through: Option<u64>,
    ) -> Result<ChainReport, ServiceError> {
        let keys = self.chain_keys(chain).await?;
        let public = self.audit_signing_key.public_key();
        let audit = self.audit_store.clone();
        let chain_id = chain.to_owned();
        // Expiry checks a range it is about to remove, not the chain's end: only a whole
        // verification looks for the head in the daily files.
        let log_dir = self
            .options
            .audit_log_dir
            .clone()
            .filter(|_| through.is_none());
        let today = self.clock.now();
        blocking(move || {
            let mut report = ChainReport {
                chain: keys.slug.clone().unwrap_or_else(|| chain_id.clone()),
                events: 0,
                checkpoints: 0,
                broken_at: None,
                problem: None,
                anchored_at: None,
            };
            let from_files = match &log_dir {
                Some(log_dir) => checkpoints_in_files(log_dir, &keys, &chain_id, today, &public),
                None => Vec::new(),
            };
            report.anchored_at = from_files.iter().map(|checkpoint| checkpoint.sequence).max();
            let broken = |report: &mut ChainReport, at: u64, problem: String| {
                if report.broken_at.is_none() {
                    report.broken_at = Some(at);
                    report.problem = Some(problem);
                }
            };
            let mut previous = [0u8; 32];
            let mut expected = 1u64;
            let mut after = 0u64;
            // After expiry the chain starts later, from the signed head of what was removed.
            let first = audit
                .chain_events(&chain_id, 0, 1)?
                .first()
                .map(|row| row.sequence);
            let mut anchor = None;
            if let Some(first) = first.filter(|first| *first > 1) {
                let at_start = audit
                    .checkpoints_after(&chain_id, first - 2, 1)?
                    .into_iter()
                    .find(|checkpoint| checkpoint.sequence == first - 1);
                match at_start {
                    Some(checkpoint) if !checkpoint.expiry => broken(
                        &mut report,
                        1,
                        format!("events before {first} are gone but the checkpoint at {} marks no expiry: the trail was cut", first - 1),
                    ),
                    Some(checkpoint) => {
                        previous = strongroom_storage::stored_head(&checkpoint.head);
                        expected = first;
                        after = first - 1;
                        anchor = Some(first - 1);
                    }
                    None => broken(
                        &mut report,
                        1,
                        format!("events before {first} are gone and no signed checkpoint vouches for where the trail resumes"),
                    ),
                }
            } else if first.is_none() {
                // Every event expired: the trail ends at its last expiry mark (an ordinary
                // checkpoint last means events were removed, reported below).
                anchor = audit
                    .last_checkpoint(&chain_id)?
                    .filter(|checkpoint| checkpoint.expiry)
                    .map(|checkpoint| checkpoint.sequence);
            }
            // Checkpoints are read a page at a time beside the events, so a chain of a year of
            // minute checkpoints is checked in bounded memory.
            let mut checkpoints = CheckpointPages::new(audit.as_ref(), &chain_id, from_files);
            // Checks every checkpoint up to `sequence`; `head` is the chain's head there, when
            // an event at `sequence` was read.
            let mut check_through = |report: &mut ChainReport,
                                     sequence: u64,
                                     head: Option<&[u8; 32]>|
             -> Result<(), StorageError> {
                while let Some((checkpoint, source)) = checkpoints.next_through(sequence)? {
                    let signed = match source {
                        CheckpointSource::AuditDatabase => {
                            report.checkpoints += 1;
                            "signed"
                        }
                        CheckpointSource::DailyFiles => "signed in the daily files",
                    };
                    if through.is_some_and(|through| checkpoint.sequence > through) {
                        continue;
                    }
                    // The daily files' lines were checked as they were read (a line whose
                    // signature fails is no checkpoint of the server's, only a stray line).
                    let message = checkpoint_message(&chain_id, checkpoint.sequence, &checkpoint.head, checkpoint.expiry);
                    if source == CheckpointSource::AuditDatabase
                        && !verify_signature(&public, &message, &checkpoint.signature)
                    {
                        broken(report, checkpoint.sequence, format!("the checkpoint at {} has a bad signature", checkpoint.sequence));
                        continue;
                    }
                    if anchor.is_some_and(|anchor| checkpoint.sequence <= anchor) {
                        // The head of expired events: the chain was checked to lead on from it.
                        continue;
                    }
                    match head.filter(|_| checkpoint.sequence == sequence) {
                        None => broken(
                            report,
                            checkpoint.sequence,
                            format!("events up to the checkpoint {signed} at {} are missing: the trail was cut", checkpoint.sequence),
                        ),
                        Some(head) if head.as_slice() != checkpoint.head.as_slice() => broken(
                            report,
                            checkpoint.sequence,
                            format!("the events do not lead to the head {signed} at {}", checkpoint.sequence),
                        ),
                        Some(_) => {}
                    }
                }
                Ok(())
            };
            'reading: loop {
                let rows: Vec<AuditRow> = audit.chain_events(&chain_id, after, VERIFY_BATCH)?;
                if rows.is_empty() {
                    break;
                }
                for row in &rows {
                    if through.is_some_and(|through| row.sequence > through) {
                        break 'reading;
                    }
                    after = row.sequence;
                    report.events += 1;
                    if row.sequence != expected {
                        broken(&mut report, expected, format!("event {expected} is missing (the next is {})", row.sequence));
                    }
                    let opened = keys.keyring.open(&event_context(&chain_id, row.sequence), &row.sealed);
                    let hash = match opened {
                        Ok(plaintext) => {
                            if !indexed_columns_match(row, &plaintext) {
                                broken(&mut report, row.sequence, format!("event {}'s stored time, action or outcome differ from its sealed ones", row.sequence));
                            }
                            chain_hash(&previous, row.sequence, &plaintext)
                        }
                        Err(_) => {
                            broken(&mut report, row.sequence, format!("event {} does not open: altered or moved", row.sequence));
                            [0u8; 32]
                        }
                    };
                    if row.hash != hash {
                        broken(&mut report, row.sequence, format!("event {} does not match its hash or the one before", row.sequence));
                    }
                    // Go on from the stored hash, so one damaged event is reported once.
                    previous = strongroom_storage::stored_head(&row.hash);
                    check_through(&mut report, row.sequence, Some(&hash))?;
                    expected = row.sequence + 1;
                }
            }
            // Checkpoints past the last event read: signed heads of events no longer there.
            check_through(&mut report, u64::MAX, None)?;
            Ok(report)
        })
        .await
    }

    /// A tenant's trail for its users with `audit:read` (and API tokens with that scope),
    /// newest first.
    pub async fn tenant_audit(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
        filter: AuditFilter,
    ) -> Result<Vec<AuditEventView>, ServiceError> {
        let runtime = self.authorize(principal, slug, Need::audit_read()).await?;
        self.list_audit(self.chain_keys_of(Some(&runtime)), filter)
            .await
    }

    /// One page of the tenant's signed checkpoints (audit:read), oldest first, after the
    /// sequence `after`: to check the trail without trusting the server.
    pub async fn tenant_audit_checkpoints(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
        after: u64,
        limit: u32,
    ) -> Result<Vec<CheckpointView>, ServiceError> {
        let runtime = self.authorize(principal, slug, Need::audit_read()).await?;
        let audit = self.audit_store.clone();
        let chain = runtime.id.clone();
        let limit = limit.clamp(1, PAGE_MAX);
        let rows = blocking(move || Ok(audit.checkpoints_after(&chain, after, limit)?)).await?;
        Ok(rows
            .into_iter()
            .map(|row| CheckpointView {
                sequence: row.sequence,
                head: hex::encode(&row.head),
                signature: hex::encode(&row.signature),
                chain_id: row.chain,
                expiry: row.expiry,
            })
            .collect())
    }

    /// Security events of a tenant for its admins (policy:manage), newest first.
    pub async fn tenant_security_events(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
        filter: AuditFilter,
    ) -> Result<Vec<AuditEventView>, ServiceError> {
        let (runtime, _) = self
            .authorize_user(principal, slug, Permission::PolicyManage)
            .await?;
        let filter = AuditFilter {
            outcome: Some("security".into()),
            ..filter
        };
        self.list_audit(self.chain_keys_of(Some(&runtime)), filter)
            .await
    }

    /// Deliveries of the tenant's alerts (policy:manage), newest first.
    pub async fn tenant_alert_deliveries(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
        filter: AuditFilter,
    ) -> Result<Vec<AuditEventView>, ServiceError> {
        let (runtime, _) = self
            .authorize_user(principal, slug, Permission::PolicyManage)
            .await?;
        let filter = AuditFilter {
            action: Some("alert.delivery".into()),
            ..filter
        };
        self.list_audit(self.chain_keys_of(Some(&runtime)), filter)
            .await
    }

    /// Any chain, for operators: a tenant's slug, or `control`.
    pub async fn operator_audit(
        &self,
        slug: &str,
        filter: AuditFilter,
    ) -> Result<Vec<AuditEventView>, ServiceError> {
        let keys = if slug == CONTROL_CHAIN {
            self.chain_keys_of(None)
        } else {
            let runtime = self.tenant(slug).await?;
            self.chain_keys_of(Some(&runtime))
        };
        self.list_audit(keys, filter).await
    }

    async fn list_audit(
        &self,
        keys: ChainKeys,
        filter: AuditFilter,
    ) -> Result<Vec<AuditEventView>, ServiceError> {
        let token = |parameter: &str,
                     domain: &str,
                     value: &Option<String>|
         -> Result<Option<Vec<u8>>, ServiceError> {
            match (value, &keys.index) {
                (None, _) => Ok(None),
                (Some(value), Some(index)) => Ok(Some(index.token(domain, &[value.as_bytes()]))),
                (Some(_), None) => Err(invalid_parameter(
                    parameter,
                    "the control plane's trail is not searched by actor or address".into(),
                )),
            }
        };
        let query = AuditQuery {
            chain: keys.chain.clone(),
            from: parse_time("from", &filter.from)?,
            to: parse_time("to", &filter.to)?,
            action: filter.action.clone(),
            outcome: match filter.outcome.as_deref() {
                None => None,
                Some(outcome @ ("allowed" | "denied" | "error" | "pending" | "security")) => {
                    Some(outcome.to_owned())
                }
                Some(_) => {
                    return Err(invalid_parameter(
                        "outcome",
                        "one of allowed, denied, error, pending (a change's intent) or security"
                            .into(),
                    ));
                }
            },
            actor_token: token("actor", "audit-actor/v1", &filter.actor)?,
            // Addresses are stored as the server writes them: canonical, IPv4-mapped as IPv4.
            address_token: token(
                "ip",
                "audit-address/v1",
                &filter
                    .address
                    .as_deref()
                    .map(|text| {
                        text.trim()
                            .parse::<std::net::IpAddr>()
                            .map(|address| address.to_canonical().to_string())
                            .map_err(|_| {
                                invalid_parameter(
                                    "ip",
                                    "one address such as 203.0.113.7 or 2001:db8::7".into(),
                                )
                            })
                    })
                    .transpose()?,
            )?,
            before_sequence: filter.before_sequence,
            limit: filter.limit.clamp(1, PAGE_MAX),
        };
        let audit = self.audit_store.clone();
        let rows = blocking(move || Ok(audit.events(&query)?)).await?;
        rows.into_iter()
            .map(|row| {
                let integrity = || ServiceError::Integrity {
                    what: format!("audit event {}", row.sequence),
                };
                let plaintext = keys
                    .keyring
                    .open(&event_context(&keys.chain, row.sequence), &row.sealed)
                    .map_err(|_| integrity())?;
                let event: AuditEvent =
                    serde_json::from_slice(&plaintext).map_err(|_| integrity())?;
                Ok(AuditEventView {
                    sequence: row.sequence,
                    hash: hex::encode(&row.hash),
                    event,
                    event_json: String::from_utf8(plaintext).map_err(|_| integrity())?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::has_a_mail_domain;

    #[test]
    fn only_names_with_a_mail_domain_count_as_addresses() {
        assert!(has_a_mail_domain("ann@example.com"));
        assert!(has_a_mail_domain("ann@mail.example-corp.co.uk"));
        assert!(has_a_mail_domain("ann@example.xn--p1ai"));
        for not_an_address in ["p@ssw0rd.24", "p@ss", "a@b.c", "x@exa mple.com", "x@.com"] {
            assert!(!has_a_mail_domain(not_an_address), "{not_an_address}");
        }
    }
}
