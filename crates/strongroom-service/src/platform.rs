use crate::ServiceError;
use crate::clock::Clock;
use crate::sealing::{TenantKeys, TenantRuntime};
use crate::security::SecurityEvents;
use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use strongroom_crypto::{BlindIndexKey, Keyring, MasterKey, WrappedKeyPurpose};
use strongroom_storage::{
    BlobStore, ControlStore, StorageError, TenantRow, TenantStatus, TenantStore, WrappedKeyRow,
};

/// Opens (creating when needed) the store of the tenant with the given id.
pub type StoreOpener = Arc<dyn Fn(&str) -> Result<TenantStores, StorageError> + Send + Sync>;

/// A tenant's metadata store and blob store.
#[derive(Clone)]
pub struct TenantStores {
    pub store: Arc<dyn TenantStore>,
    pub blobs: Arc<dyn BlobStore>,
}

/// The embedded default: `<data_dir>/tenants/<tenant id>/tenant.db` and `…/blobs/`,
/// directories mode 0700.
pub fn sqlite_store_opener(data_dir: PathBuf) -> StoreOpener {
    Arc::new(move |tenant_id: &str| {
        let directory = data_dir.join("tenants").join(tenant_id);
        if !directory.exists() {
            std::fs::create_dir_all(&directory)?;
            std::fs::set_permissions(&directory, std::fs::Permissions::from_mode(0o700))?;
        }
        let store =
            strongroom_storage::sqlite::SqliteTenantStore::open(&directory.join("tenant.db"))?;
        let blobs = strongroom_storage::FsBlobStore::open(&directory.join("blobs"))?;
        Ok(TenantStores {
            store: Arc::new(store),
            blobs: Arc::new(blobs),
        })
    })
}

pub struct PlatformOptions {
    /// Where the master key file lives; `None` when the key came from the environment, in
    /// which case master-key rotation is refused.
    pub key_file: Option<PathBuf>,
    pub page_limit_default: u32,
    pub page_limit_max: u32,
    pub documents: crate::documents::DocumentLimits,
    /// Argon2id cost for user passwords.
    pub password_hashing: strongroom_crypto::PasswordHashing,
    /// The public listener's address as users reach it (`https://host:port`): single sign-on
    /// redirect URIs are built from it.
    pub public_url: String,
    /// Let single sign-on reach identity providers on private networks and loopback (an
    /// in-house provider, tests). Off by default: provider settings come from tenant admins.
    pub outbound_allow_private_networks: bool,
    /// The operators' support networks: break-glass requests from them pass a tenant's allow
    /// list when the tenant lets support in.
    pub support_networks: Vec<ipnet::IpNet>,
    /// Where the audit trail's daily JSON-lines files go; `None` writes none.
    pub audit_log_dir: Option<PathBuf>,
    /// How long the control plane's audit events are kept.
    pub audit_retention_days: u32,
    /// Events (of all chains) after which the heads are signed without waiting for the minute.
    pub audit_checkpoint_every_events: u64,
    /// The SMTP server alert e-mails go through; `None` sends none.
    pub smtp: Option<crate::email::SmtpOptions>,
}

/// Everything the services share: the control plane, the master key, open tenants and caches.
pub struct Platform {
    pub(crate) control: Arc<dyn ControlStore>,
    pub(crate) open_store: StoreOpener,
    pub(crate) master: RwLock<MasterKey>,
    pub(crate) options: PlatformOptions,
    pub(crate) clock: Arc<dyn Clock>,
    tenants: RwLock<HashMap<String, Arc<TenantRuntime>>>,
    pub(crate) token_cache: RwLock<HashMap<[u8; 32], Arc<crate::tenants::TokenPrincipal>>>,
    pub security: SecurityEvents,
    /// Serialises key rotations; data requests never take it.
    pub(crate) rotation: tokio::sync::Mutex<()>,
    /// Signed-in callers, briefly cached.
    pub(crate) sessions: crate::session_cache::SessionCache,
    /// Argon2id runs at most this many at once (one per core): more would only thrash memory.
    pub(crate) hashing_slots: Arc<tokio::sync::Semaphore>,
    /// Failed sign-ins per source address.
    pub(crate) address_throttle: crate::throttle::AddressThrottle,
    /// Permits for document transfers in progress.
    pub(crate) transfers: Arc<tokio::sync::Semaphore>,
    /// Single sign-ons waiting for the provider's answer.
    pub(crate) sso_pending: crate::sso::PendingSignIns,
    /// When each tenant last got an alert of each kind.
    pub(crate) alert_windows: crate::alerts::AlertWindows,
    /// The one client for addresses tenants configure (identity providers, webhooks).
    pub(crate) outbound: crate::outbound::OutboundHttp,
    /// The control plane's key: seals operator secrets and the control plane's audit chain.
    pub(crate) control_keyring: strongroom_crypto::Keyring,
    pub(crate) audit_store: Arc<dyn strongroom_storage::AuditStore>,
    /// Signs audit checkpoints.
    pub(crate) audit_signing_key: Arc<strongroom_crypto::AuditSigningKey>,
    pub(crate) audit_log: crate::audit_log::AuditLogWriter,
    /// Events recorded since the heads were last signed.
    pub(crate) audit_events_unsigned: std::sync::atomic::AtomicU64,
    /// Woken when `audit_checkpoint_every_events` have been recorded: the server's signer
    /// waits on it and on the minute.
    pub audit_checkpoint_due: tokio::sync::Notify,
    /// Held by a whole verification and by expiry: events expired while a verification reads
    /// the oldest ones would look removed (a false `audit_verify_failed` for the tenant).
    pub(crate) audit_maintenance: tokio::sync::Mutex<()>,
    /// Where the bootstrap token file is, removed when the first operator enrols.
    pub(crate) bootstrap_token_file: std::sync::OnceLock<PathBuf>,
}

impl Platform {
    /// Opens the platform and proves the master key opens every tenant key before serving.
    pub fn open(
        control: Arc<dyn ControlStore>,
        audit_store: Arc<dyn strongroom_storage::AuditStore>,
        open_store: StoreOpener,
        master: MasterKey,
        options: PlatformOptions,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Self>, ServiceError> {
        verify_master_opens_all_keys(control.as_ref(), &master)?;
        let control_keyring = crate::operators::open_control_key(
            control.as_ref(),
            &master,
            clock.now().unix_micros(),
        )?;
        let transfers = Arc::new(tokio::sync::Semaphore::new(
            options.documents.transfers_max.max(1),
        ));
        let audit_log = crate::audit_log::AuditLogWriter::start(options.audit_log_dir.clone());
        let outbound = crate::outbound::OutboundHttp::new(options.outbound_allow_private_networks)?;
        let platform = Arc::new(Self {
            control,
            open_store,
            master: RwLock::new(master),
            options,
            clock,
            tenants: RwLock::new(HashMap::new()),
            token_cache: RwLock::new(HashMap::new()),
            security: SecurityEvents::default(),
            rotation: tokio::sync::Mutex::new(()),
            transfers,
            address_throttle: Default::default(),
            sessions: Default::default(),
            sso_pending: Default::default(),
            alert_windows: Default::default(),
            outbound,
            audit_signing_key: Arc::new(crate::audit::open_signing_key(
                audit_store.as_ref(),
                &control_keyring,
            )?),
            audit_store,
            audit_log,
            audit_events_unsigned: Default::default(),
            audit_checkpoint_due: Default::default(),
            audit_maintenance: Default::default(),
            control_keyring,
            bootstrap_token_file: std::sync::OnceLock::new(),
            hashing_slots: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism()
                    .map(|cores| cores.get())
                    .unwrap_or(1),
            )),
        });
        platform.security.attach(Arc::downgrade(&platform));
        Ok(platform)
    }

    pub fn master_key_id(&self) -> String {
        self.master_key().key_id()
    }

    pub(crate) fn master_key(&self) -> MasterKey {
        self.master
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    /// A turn to run one Argon2id hash.
    pub(crate) async fn hashing_slot(
        &self,
    ) -> Result<tokio::sync::OwnedSemaphorePermit, ServiceError> {
        self.hashing_slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ServiceError::Unavailable("password hashing is shut down".into()))
    }

    /// A permit for one document transfer, or 503 when too many are in progress.
    pub(crate) fn transfer_permit(
        &self,
    ) -> Result<tokio::sync::OwnedSemaphorePermit, ServiceError> {
        self.transfers.clone().try_acquire_owned().map_err(|_| {
            ServiceError::Unavailable(
                "too many document transfers are in progress; retry shortly".into(),
            )
        })
    }

    /// Ready when the control plane answers.
    pub async fn ready(&self) -> bool {
        let control = self.control.clone();
        blocking(move || Ok(control.operator_token_count()?))
            .await
            .is_ok()
    }

    /// The open tenant with this slug, loading and caching it on first use.
    pub(crate) async fn tenant(&self, slug: &str) -> Result<Arc<TenantRuntime>, ServiceError> {
        if let Some(runtime) = self.cached_tenant(slug) {
            return Ok(runtime);
        }
        let row = self
            .tenant_row(slug)
            .await?
            .ok_or(ServiceError::NotFound("tenant"))?;
        self.open_tenant(row).await
    }

    pub(crate) fn cached_tenant(&self, slug: &str) -> Option<Arc<TenantRuntime>> {
        self.tenants
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(slug)
            .cloned()
    }

    pub(crate) async fn tenant_row(&self, slug: &str) -> Result<Option<TenantRow>, ServiceError> {
        let control = self.control.clone();
        let slug = slug.to_owned();
        blocking(move || Ok(control.tenant_by_slug(&slug)?)).await
    }

    /// The open tenant with this id, if one exists.
    pub(crate) async fn tenant_by_id(
        &self,
        id: &str,
    ) -> Result<Option<Arc<TenantRuntime>>, ServiceError> {
        let control = self.control.clone();
        let id = id.to_owned();
        match blocking(move || Ok(control.tenant_by_id(&id)?)).await? {
            Some(row) => Ok(Some(self.tenant(&row.slug).await?)),
            None => Ok(None),
        }
    }

    /// Opens a tenant's store and keys and caches the result.
    pub(crate) async fn open_tenant(
        &self,
        row: TenantRow,
    ) -> Result<Arc<TenantRuntime>, ServiceError> {
        let slug = row.slug.clone();
        let runtime = Arc::new(self.load_runtime(row).await?);
        let mut tenants = self
            .tenants
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok(tenants.entry(slug).or_insert(runtime).clone())
    }

    async fn load_runtime(&self, row: TenantRow) -> Result<TenantRuntime, ServiceError> {
        let control = self.control.clone();
        let open_store = self.open_store.clone();
        let tenant_id = row.id.clone();
        let (rows, stores) =
            blocking(move || Ok((control.wrapped_keys(&tenant_id)?, open_store(&tenant_id)?)))
                .await?;
        let keys = unwrap_tenant_keys(&self.master_key(), &row.id, &rows)?;
        Ok(TenantRuntime::new(
            row.id,
            row.slug,
            stores,
            keys,
            row.status == TenantStatus::Suspended,
        ))
    }

    /// Slugs of every tenant, for jobs that walk all of them.
    pub(crate) async fn all_tenant_slugs(&self) -> Result<Vec<String>, ServiceError> {
        let control = self.control.clone();
        blocking(move || {
            Ok(control
                .list_tenants()?
                .into_iter()
                .map(|tenant| tenant.slug)
                .collect())
        })
        .await
    }

    /// Writes the one-time operator bootstrap token when no operator credential exists yet.
    /// Returns the file's path when it wrote one. The token itself is never returned or logged.
    /// Once an operator has enrolled, a token file left behind is removed.
    pub async fn ensure_bootstrap_operator_token(
        &self,
        path: PathBuf,
    ) -> Result<Option<PathBuf>, ServiceError> {
        let _ = self.bootstrap_token_file.set(path.clone());
        let control = self.control.clone();
        let now = self.clock.now().unix_micros();
        blocking(move || {
            // Once an operator has enrolled, the realm has real accounts: no bootstrap token.
            let enrolled = control
                .list_operators()?
                .iter()
                .any(|operator| operator.status != strongroom_storage::OperatorStatus::Invited);
            if enrolled {
                crate::operators::remove_bootstrap_file(&path);
                return Ok(None);
            }
            if control.operator_token_count()? > 0 {
                return Ok(None);
            }
            let secret = strongroom_crypto::generate_token("sro")?;
            write_private_file(&path, secret.as_bytes())?;
            control.insert_operator_token(strongroom_storage::OperatorTokenRow {
                id: strongroom_crypto::random_hex_id()?,
                name: "bootstrap".into(),
                token_hash: strongroom_crypto::hash_token(&secret).to_vec(),
                created_at: now,
            })?;
            Ok(Some(path))
        })
        .await
    }
}

/// Runs blocking storage work off the async executor.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ServiceError> + Send + 'static,
) -> Result<T, ServiceError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| ServiceError::Internal(format!("blocking task failed: {error}")))?
}

pub(crate) fn unwrap_tenant_keys(
    master: &MasterKey,
    tenant_id: &str,
    rows: &[WrappedKeyRow],
) -> Result<TenantKeys, ServiceError> {
    let master_id = master.key_id();
    let mut data_keys = Vec::new();
    let mut index_key = None;
    for row in rows.iter().filter(|row| row.master_key_id == master_id) {
        let purpose = match row.purpose.as_str() {
            "data" => WrappedKeyPurpose::Data,
            "index" => WrappedKeyPurpose::BlindIndex,
            other => {
                return Err(ServiceError::Internal(format!(
                    "unknown key purpose {other:?}"
                )));
            }
        };
        let key = master
            .unwrap(&row.wrapped, tenant_id, purpose, row.version)
            .map_err(|_| ServiceError::Integrity {
                what: format!(
                    "the wrapped {} key version {} of tenant {tenant_id}",
                    row.purpose, row.version
                ),
            })?;
        match purpose {
            WrappedKeyPurpose::Data => data_keys.push((row.version, key)),
            WrappedKeyPurpose::BlindIndex => index_key = Some(BlindIndexKey::new(&key)),
            WrappedKeyPurpose::Control => {}
        }
    }
    let keyring = Keyring::new(data_keys);
    match (keyring, index_key) {
        (Some(keyring), Some(index_key)) => Ok(TenantKeys { keyring, index_key }),
        _ => Err(ServiceError::Internal(format!(
            "tenant {tenant_id} has no keys wrapped by master key {master_id}: is this the right key file for this data directory?"
        ))),
    }
}

fn verify_master_opens_all_keys(
    control: &dyn ControlStore,
    master: &MasterKey,
) -> Result<(), ServiceError> {
    let rows = control.all_wrapped_keys()?;
    let mut by_tenant: HashMap<&str, Vec<WrappedKeyRow>> = HashMap::new();
    for row in &rows {
        by_tenant
            .entry(row.tenant_id.as_str())
            .or_default()
            .push(row.clone());
    }
    for (tenant_id, rows) in by_tenant {
        unwrap_tenant_keys(master, tenant_id, &rows)?;
    }
    Ok(())
}

/// Writes a file only its owner can read, fsynced with its directory.
pub(crate) fn write_private_file(
    path: &std::path::Path,
    contents: &[u8],
) -> Result<(), ServiceError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let internal = |error: std::io::Error| {
        ServiceError::Internal(format!("writing {}: {error}", path.display()))
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(internal)?;
    file.write_all(contents).map_err(internal)?;
    file.sync_all().map_err(internal)?;
    if let Some(directory) = path.parent() {
        crate::master_key_file::sync_directory(directory)
            .map_err(|error| ServiceError::Internal(error.to_string()))?;
    }
    Ok(())
}
