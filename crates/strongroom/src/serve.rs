//! `strongroom serve`: opens the data directory and keys, then serves both listeners over TLS
//! until SIGTERM or Ctrl-C.

use crate::config::{Config, Profile};
use crate::tls::{self, CertificateFiles, ReloadingCertificate};
use anyhow::{Context, bail};
use axum::Router;
use base64::Engine;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use strongroom_api::{AppState, Limits, Metrics};
use strongroom_crypto::MasterKey;
use strongroom_service::{
    Platform, PlatformOptions, SystemClock, master_key_file, sqlite_store_opener,
};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send a request's headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the head of every audit chain that moved is signed.
const AUDIT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(60);
/// How long open connections may take to finish at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// HTTP/2 streams a connection may have open at once, and requests of one connection that may
/// run at once, including those whose client cancelled them (they are finished, not dropped).
const STREAMS_MAX: usize = 128;

pub const BOOTSTRAP_TOKEN_FILE: &str = "bootstrap-operator.token";

/// Runs the server until a shutdown signal, with its audit trail in `<data_dir>/audit.db`.
pub async fn run(config: Config) -> anyhow::Result<()> {
    run_with_audit_store(config, None).await
}

/// Runs the server with `audit_store` in place of `<data_dir>/audit.db` when given. Only the
/// audit benchmark gives one (a store that keeps nothing, to measure the server without its
/// trail); no configuration, variable or flag reaches this.
#[doc(hidden)]
pub async fn run_with_audit_store(
    config: Config,
    audit_store: Option<Arc<dyn strongroom_storage::AuditStore>>,
) -> anyhow::Result<()> {
    // A panic's message may quote what the panicking code held: the log gets where it
    // happened, not what it said (Rust's default hook prints the message).
    std::panic::set_hook(Box::new(|panic| {
        tracing::error!(location = ?panic.location(), "a task panicked");
    }));
    let master_key_from_environment = std::env::var("STRONGROOM_MASTER_KEY").ok();
    check_profile(&config, master_key_from_environment.is_some())?;
    create_private_directory(&config.data_dir)?;
    let _lock = lock_data_dir(&config.data_dir)?;
    let (master, key_file) = load_master_key(&config, master_key_from_environment)?;

    let control =
        strongroom_storage::sqlite::SqliteControlStore::open(&config.data_dir.join("control.db"))
            .with_context(|| {
            format!(
                "cannot open the control database in {}",
                config.data_dir.display()
            )
        })?;
    let options = PlatformOptions {
        key_file,
        page_limit_default: config.limits.page_size_default,
        page_limit_max: config.limits.page_size_max,
        documents: strongroom_service::DocumentLimits {
            file_bytes_max: config.documents.file_bytes_max,
            tenant_quota_bytes: config.documents.tenant_quota_bytes,
            version_retention_days: config.documents.version_retention_days,
            trash_retention_days: config.documents.trash_retention_days,
            transfers_max: config.documents.transfers_max,
        },
        password_hashing: strongroom_crypto::PasswordHashing::default(),
        public_url: config.public_url(),
        outbound_allow_private_networks: config.outbound.allow_private_networks,
        support_networks: config.networks("support_networks", &config.support_networks)?,
        audit_log_dir: Some(
            config
                .audit
                .log_dir
                .clone()
                .unwrap_or_else(|| config.data_dir.join("audit-logs")),
        ),
        audit_retention_days: config.audit.retention_days,
        audit_checkpoint_every_events: config.audit.checkpoint_every_events,
        smtp: config
            .smtp
            .host
            .clone()
            .map(|host| strongroom_service::SmtpOptions {
                host,
                port: config.smtp.port,
                from: config.smtp.from.clone(),
                username: config.smtp.username.clone(),
                password: config.smtp.password.clone(),
                ca_file: config.smtp.ca_file.clone(),
            }),
    };
    let audit: Arc<dyn strongroom_storage::AuditStore> = match audit_store {
        Some(audit_store) => audit_store,
        None => Arc::new(
            strongroom_storage::sqlite::SqliteAuditStore::open(&config.data_dir.join("audit.db"))
                .with_context(|| {
                format!(
                    "cannot open the audit database in {}",
                    config.data_dir.display()
                )
            })?,
        ),
    };
    let platform = Platform::open(
        Arc::new(control),
        audit,
        sqlite_store_opener(config.data_dir.clone()),
        master,
        options,
        Arc::new(SystemClock),
    )
    .context("cannot open the platform")?;
    if let Some(path) = platform
        .ensure_bootstrap_operator_token(config.data_dir.join(BOOTSTRAP_TOKEN_FILE))
        .await?
    {
        tracing::info!(path = %path.display(), "wrote the one-time operator bootstrap token (mode 0600); read it from this file");
    }

    let certificate_files = certificate_files(&config)?;
    if certificate_files.self_signed {
        tracing::warn!(cert_file = %certificate_files.cert_file.display(), "serving a self-signed certificate: clients must trust this file; set tls.cert_file for real use");
    }
    let certificate =
        ReloadingCertificate::load(certificate_files, config.profile == Profile::Production)?;
    let acceptor = TlsAcceptor::from(tls::server_config(certificate.clone())?);
    let metrics = Arc::new(Metrics::default());
    let state = AppState {
        platform: platform.clone(),
        limits: Limits {
            body_bytes_max: config.limits.body_bytes_max,
        },
        metrics: metrics.clone(),
        trusted_proxies: config
            .networks("trusted_proxies", &config.trusted_proxies)?
            .into(),
    };
    let public = bind(config.public.listen, "public").await?;
    let admin = bind(config.admin.listen, "admin").await?;
    tracing::info!(
        public = %format!("https://{}", public.local_addr()?),
        admin = %format!("https://{}", admin.local_addr()?),
        profile = ?config.profile,
        "strongroom is serving"
    );

    tokio::spawn(watch_certificate(
        certificate,
        Duration::from_secs(config.tls.reload_check_seconds.max(1)),
    ));
    let resealing = platform.clone();
    tokio::spawn(async move { resealing.resume_interrupted_work().await });
    let purging = platform.clone();
    let purge_interval = Duration::from_secs(config.documents.purge_interval_seconds.max(60));
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(purge_interval);
        // A round that ran long (a verification held expiry back) is not made up in a burst.
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            purging.purge_all_documents().await;
            if let Err(error) = purging.expire_audit().await {
                tracing::error!(%error, "expired audit events could not be removed");
            }
        }
    });

    let signing = platform.clone();
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(AUDIT_CHECKPOINT_INTERVAL);
        loop {
            // Every minute, and sooner once enough events came in.
            let minute = tokio::select! {
                _ = ticker.tick() => true,
                _ = signing.audit_checkpoint_due.notified() => false,
            };
            if let Err(error) = signing.sign_audit_checkpoints().await {
                tracing::error!(%error, "audit checkpoints could not be signed");
            }
            if minute {
                // Bursts that ended with alerts held back are reported once their minute is over.
                let alerting = signing.clone();
                tokio::spawn(async move { alerting.send_held_back_alerts().await });
            }
        }
    });

    if config.audit.verify_every_hours > 0 {
        let verifying = platform.clone();
        let period = Duration::from_secs(u64::from(config.audit.verify_every_hours) * 3600);
        tokio::spawn(async move {
            // The first tick is at once: a trail changed while the server was down is found
            // when it starts, not a day later.
            let mut ticker = tokio::time::interval(period);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                match verifying.verify_audit(None).await {
                    Ok(reports) => {
                        let broken = reports
                            .iter()
                            .filter(|report| report.broken_at.is_some())
                            .count();
                        // Each broken chain is already a security event of its tenant.
                        tracing::info!(chains = reports.len(), broken, "audit chains verified");
                    }
                    Err(error) => tracing::error!(%error, "the audit chains could not be verified"),
                }
            }
        });
    }

    let (shutdown_sender, shutdown) = watch::channel(false);
    let public_task = tokio::spawn(serve_listener(
        Listening {
            listener: public,
            name: "public",
            platform: platform.clone(),
            metrics: metrics.clone(),
        },
        acceptor.clone(),
        strongroom_api::public_router(state.clone()),
        config.limits.connections_max,
        shutdown.clone(),
    ));
    let admin_task = tokio::spawn(serve_listener(
        Listening {
            listener: admin,
            name: "admin",
            platform: platform.clone(),
            metrics: metrics.clone(),
        },
        acceptor,
        strongroom_api::admin_router(state),
        config.limits.connections_max,
        shutdown,
    ));
    wait_for_shutdown_signal().await;
    tracing::info!(
        "shutting down: no new connections; open ones get {} s",
        SHUTDOWN_GRACE.as_secs()
    );
    let _ = shutdown_sender.send(true);
    let _ = tokio::join!(public_task, admin_task);
    // What remains shares one grace period, so the whole stop stays within what supervisors
    // wait before they kill. Security events still being recorded first: they may add to the
    // alerts held back, and the last checkpoint signs them too.
    let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
    if tokio::time::timeout_at(deadline, platform.security.recorded())
        .await
        .is_err()
    {
        tracing::error!("some security events were still being recorded at shutdown");
    }
    // Alerts held back in a minute that has not ended would wait for a tick that no longer
    // comes; they go out now, within the grace period (their deliveries are in the trail).
    match tokio::time::timeout_at(deadline, platform.send_every_held_back_alert()).await {
        Ok(0) => {}
        Ok(sent) => tracing::info!(sent, "held-back alerts sent at shutdown"),
        Err(_) => tracing::error!(
            "held-back alerts were still being delivered at the end of the grace period and were given up; every event is in the audit trail"
        ),
    }
    match tokio::time::timeout_at(deadline, platform.sign_audit_checkpoints()).await {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => {
            tracing::error!(%error, "audit checkpoints could not be signed at shutdown")
        }
        Err(_) => tracing::error!("the last audit checkpoints were not signed in time"),
    }
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    if !platform.flush_audit_log(left).await {
        tracing::error!(
            "the audit trail's daily files could not be written out at shutdown; the trail itself is complete"
        );
    }
    drop(platform);
    tracing::info!("stopped");
    Ok(())
}

fn check_profile(config: &Config, master_key_from_environment: bool) -> anyhow::Result<()> {
    if config.profile != Profile::Production {
        return Ok(());
    }
    if master_key_from_environment {
        bail!(
            "the production profile refuses a master key from STRONGROOM_MASTER_KEY: unset it and keep the key in key_file ({}), mode 0600",
            config.key_file.display()
        );
    }
    match &config.tls.cert_file {
        None => bail!(
            "the production profile refuses the self-signed certificate: set tls.cert_file and tls.key_file to a certificate issued by your CA or ACME"
        ),
        Some(cert_file)
            if tls::is_self_issued(cert_file)
                .with_context(|| format!("cannot inspect {}", cert_file.display()))? =>
        {
            bail!(
                "the production profile refuses the self-signed certificate {}: use one issued by your CA or ACME",
                cert_file.display()
            )
        }
        Some(_) => Ok(()),
    }
}

fn create_private_directory(path: &Path) -> anyhow::Result<()> {
    if !path.exists() {
        std::fs::create_dir_all(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Holds an exclusive lock on the data directory for the life of the server, so two servers
/// never write the same databases.
fn lock_data_dir(data_dir: &Path) -> anyhow::Result<std::fs::File> {
    let path = data_dir.join(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(_) => bail!(
            "another strongroom server is using {}; stop it first",
            data_dir.display()
        ),
    }
}

fn load_master_key(
    config: &Config,
    from_environment: Option<String>,
) -> anyhow::Result<(MasterKey, Option<std::path::PathBuf>)> {
    if let Some(encoded) = from_environment {
        let bytes = zeroize::Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .context("STRONGROOM_MASTER_KEY must be base64 of 32 bytes")?,
        );
        let key = MasterKey::from_bytes(&bytes)
            .context("STRONGROOM_MASTER_KEY must be base64 of 32 bytes")?;
        tracing::warn!(
            "using the master key from STRONGROOM_MASTER_KEY; fine for tests, refused in production"
        );
        return Ok((key, None));
    }
    let key_file = absolute(&config.key_file)?;
    let data_dir = absolute(&config.data_dir)?;
    if key_file.starts_with(&data_dir) {
        bail!(
            "key_file {} is inside data_dir {}: keep the master key apart from the data it protects",
            key_file.display(),
            data_dir.display()
        );
    }
    let (key, created) = master_key_file::read_or_create(&key_file)?;
    if created {
        tracing::info!(key_file = %key_file.display(), master_key_id = %key.key_id(), "created a new master key (mode 0600); back it up apart from the data");
    }
    Ok((key, Some(key_file)))
}

fn absolute(path: &Path) -> anyhow::Result<std::path::PathBuf> {
    let joined = if path.is_absolute() {
        path.to_owned()
    } else {
        std::env::current_dir()?.join(path)
    };
    Ok(joined
        .components()
        .filter(|component| !matches!(component, std::path::Component::CurDir))
        .collect())
}

fn certificate_files(config: &Config) -> anyhow::Result<CertificateFiles> {
    match (&config.tls.cert_file, &config.tls.key_file) {
        (Some(cert_file), Some(key_file)) => Ok(CertificateFiles {
            cert_file: cert_file.clone(),
            key_file: key_file.clone(),
            self_signed: false,
        }),
        _ => tls::ensure_self_signed(&config.data_dir),
    }
}

async fn bind(address: SocketAddr, name: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address} for the {name} listener"))
}

async fn watch_certificate(certificate: Arc<ReloadingCertificate>, interval: Duration) {
    let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(signal) => Some(signal),
        Err(error) => {
            tracing::warn!(%error, "SIGHUP reloading is unavailable");
            None
        }
    };
    let mut ticker = tokio::time::interval(interval);
    loop {
        let forced = tokio::select! {
            _ = ticker.tick() => false,
            Some(()) = async { match hangup.as_mut() { Some(signal) => signal.recv().await, None => std::future::pending().await } } => true,
        };
        certificate.reload_if_changed(forced);
    }
}

async fn wait_for_shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
}

/// HTTP settings shared by every connection: a client gets 30 s to send a request's headers
/// (also between keep-alive requests), idle HTTP/2 peers are pinged and dropped, and one
/// connection carries at most 128 concurrent streams.
fn connection_builder() -> hyper_util::server::conn::auto::Builder<TokioExecutor> {
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(HEADER_READ_TIMEOUT)
        .keep_alive_timeout(Duration::from_secs(20))
        .max_concurrent_streams(STREAMS_MAX as u32);
    builder
}

/// A bound listener, its name in the audit trail, and the platform whose trail records what
/// the HTTP layer refuses before routing.
struct Listening {
    listener: TcpListener,
    name: &'static str,
    platform: Arc<Platform>,
    metrics: Arc<Metrics>,
}

async fn serve_listener(
    listening: Listening,
    acceptor: TlsAcceptor,
    router: Router,
    connections_max: usize,
    mut shutdown: watch::Receiver<bool>,
) {
    let Listening {
        listener,
        name,
        platform,
        metrics,
    } = listening;
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(connections_max));
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        // At the connection limit a new connection is closed at once rather than queued.
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, connections_max, "connection limit reached; closing a new connection");
            metrics.count_connection_closed(name, "connection_limit");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        let router = router.clone();
        let watcher = graceful.watcher();
        let platform = platform.clone();
        let metrics = metrics.clone();
        tokio::spawn(async move {
            // Held by the connection and by each of its requests until they finish.
            let slot = strongroom_api::ConnectionSlots::new(Arc::new(slot), STREAMS_MAX);
            let tls_stream =
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(tls_stream)) => tls_stream,
                    Ok(Err(error)) => {
                        metrics.count_connection_closed(name, "tls_handshake_failed");
                        return tracing::debug!(%peer, %error, "TLS handshake failed");
                    }
                    Err(_) => {
                        metrics.count_connection_closed(name, "tls_handshake_timed_out");
                        return tracing::debug!(%peer, "TLS handshake timed out");
                    }
                };
            let service = hyper::service::service_fn(
                move |mut request: hyper::Request<hyper::body::Incoming>| {
                    request
                        .extensions_mut()
                        .insert(axum::extract::ConnectInfo(peer));
                    request.extensions_mut().insert(slot.clone());
                    tower::ServiceExt::oneshot(router.clone(), request)
                },
            );
            let builder = connection_builder();
            let connection =
                builder.serve_connection_with_upgrades(TokioIo::new(tls_stream), service);
            if let Err(error) = watcher.watch(connection.into_owned()).await {
                tracing::debug!(%peer, %error, "connection ended with an error");
                if let Some(refusal) = unparsed_refusal(error.as_ref()) {
                    record_unparsed_request(&platform, name, peer.ip(), refusal).await;
                }
            }
        });
    }
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some connections did not finish in time and were closed");
    }
    // Requests whose client went away run on, holding their connection's slot: they finish
    // (and reach the audit trail) before the last checkpoint is signed.
    let all = u32::try_from(connections_max).unwrap_or(u32::MAX);
    if tokio::time::timeout(SHUTDOWN_GRACE, slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("some requests whose client had gone did not finish in time");
    }
}

/// Records a request the HTTP layer refused before it became one (a malformed request line or
/// headers too large: hyper answers 400 or 431 itself, and no route runs), so such requests are
/// in the trail too, in the control plane's chain, with the connection's address. Other
/// connection errors (a reset, a closed socket) are no request and record nothing.
async fn record_unparsed_request(
    platform: &Platform,
    listener: &'static str,
    peer: std::net::IpAddr,
    (reason, status): (&'static str, u16),
) {
    let record = strongroom_service::AuditRecord {
        phase: "request",
        address: Some(peer),
        listener,
        method: "-".into(),
        route: "unparsed".into(),
        action: "unparsed_request".into(),
        outcome: "denied",
        reason: Some(reason.into()),
        status: Some(status),
        ..strongroom_service::AuditRecord::default()
    };
    if platform.audit(record).await.is_err() {
        tracing::error!(%peer, reason, "a request refused before routing could not be recorded");
    }
}

/// The reason and status of a connection error that is a request hyper refused itself, if it
/// is one.
fn unparsed_refusal(error: &(dyn std::error::Error + 'static)) -> Option<(&'static str, u16)> {
    let http = error.downcast_ref::<hyper::Error>()?;
    if http.is_parse_too_large() {
        Some(("headers_too_large", 431))
    } else if http.is_parse() {
        Some(("malformed_request", 400))
    } else {
        None
    }
}
