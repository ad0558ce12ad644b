use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, StatusCode};
use serde_json::Value;
use std::sync::Arc;
use strongroom_api::{AppState, Limits, Metrics};
use strongroom_domain::Timestamp;
use strongroom_service::{
    FakeClock, Platform, PlatformOptions, master_key_file, sqlite_store_opener,
};
use strongroom_storage::sqlite::SqliteControlStore;
use tower::ServiceExt;

pub struct Harness {
    pub directory: tempfile::TempDir,
    pub platform: Arc<Platform>,
    /// The real audit store, with a switch that makes its writes fail (fault injection).
    pub audit: Arc<BreakableAudit>,
    pub clock: FakeClock,
    pub operator: String,
    public: Router,
    admin: Router,
}

pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
    pub bytes: Vec<u8>,
    /// Why the body broke off after the status was sent (a stream that failed partway).
    pub body_failed: Option<String>,
}

impl Response {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
    }
}

pub struct Request {
    address: Option<std::net::SocketAddr>,
    method: Method,
    uri: String,
    headers: Vec<(String, String)>,
    body: Body,
    slots: Option<strongroom_api::ConnectionSlots>,
}

impl Request {
    pub fn new(method: &str, uri: &str) -> Self {
        Self {
            address: None,
            method: method.to_uppercase().parse().unwrap(),
            uri: uri.to_owned(),
            headers: Vec::new(),
            body: Body::empty(),
            slots: None,
        }
    }
    pub fn get(uri: &str) -> Self {
        Self::new("GET", uri)
    }
    pub fn post(uri: &str) -> Self {
        Self::new("POST", uri)
    }
    pub fn put(uri: &str) -> Self {
        Self::new("PUT", uri)
    }
    pub fn patch(uri: &str) -> Self {
        Self::new("PATCH", uri)
    }
    pub fn delete(uri: &str) -> Self {
        Self::new("DELETE", uri)
    }
    /// As if the request came from this peer address (what the server takes from the socket).
    pub fn sent_from(mut self, address: &str) -> Self {
        self.address = Some(address.parse().unwrap());
        self
    }

    /// Sends the request on a connection with these slots, as the server does.
    pub fn on_connection(mut self, slots: &strongroom_api::ConnectionSlots) -> Self {
        self.slots = Some(slots.clone());
        self
    }

    pub fn token(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
    pub fn json(self, body: Value) -> Self {
        self.raw("application/json", serde_json::to_vec(&body).unwrap())
    }
    pub fn raw(mut self, content_type: &str, bytes: Vec<u8>) -> Self {
        self.headers
            .push(("content-type".into(), content_type.into()));
        self.headers
            .push(("content-length".into(), bytes.len().to_string()));
        self.body = Body::from(bytes);
        self
    }
    /// A body that breaks off with an error after `bytes`, as when a client disconnects.
    pub fn interrupted(mut self, bytes: Vec<u8>) -> Self {
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
            vec![Ok(bytes), Err(std::io::Error::other("client went away"))];
        self.body = Body::from_stream(futures_stream(chunks));
        self
    }

    /// A body whose further chunks (or error) the test sends while the request runs.
    pub fn held_open(
        mut self,
    ) -> (
        Self,
        tokio::sync::mpsc::Sender<Result<Vec<u8>, std::io::Error>>,
    ) {
        let (sender, receiver) = tokio::sync::mpsc::channel(4);
        self.body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(receiver));
        (self, sender)
    }

    /// A body sent without Content-Length, in chunks, as a streaming client would.
    pub fn streamed_json(mut self, bytes: Vec<u8>) -> Self {
        self.headers
            .push(("content-type".into(), "application/json".into()));
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> = bytes
            .chunks(64 * 1024)
            .map(|chunk| Ok(chunk.to_vec()))
            .collect();
        self.body = Body::from_stream(futures_stream(chunks));
        self
    }
}

fn futures_stream(
    chunks: Vec<Result<Vec<u8>, std::io::Error>>,
) -> impl futures_core::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static {
    tokio_stream::iter(chunks)
}

impl Harness {
    pub async fn new() -> Self {
        Self::build(false, None).await
    }

    /// A harness whose outbound requests may reach loopback (a webhook receiver in the test).
    pub async fn allowing_private_networks() -> Self {
        Self::build(true, None).await
    }

    /// A harness that mails alerts through this SMTP server.
    pub async fn with_smtp(smtp: strongroom_service::SmtpOptions) -> Self {
        Self::build(true, Some(smtp)).await
    }

    async fn build(
        allow_private_networks: bool,
        smtp: Option<strongroom_service::SmtpOptions>,
    ) -> Self {
        let directory = tempfile::tempdir().unwrap();
        let data_dir = directory.path().join("data");
        std::fs::create_dir_all(&data_dir).unwrap();
        let key_file = directory.path().join("keys/master.key");
        let (master, _) = master_key_file::read_or_create(&key_file).unwrap();
        let clock =
            FakeClock::starting_at(Timestamp::parse_rfc3339("2026-01-01T00:00:00Z").unwrap());
        let audit = Arc::new(BreakableAudit {
            inner: strongroom_storage::sqlite::SqliteAuditStore::open(&data_dir.join("audit.db"))
                .unwrap(),
            broken: std::sync::atomic::AtomicBool::new(false),
            break_after: std::sync::atomic::AtomicI64::new(-1),
        });
        let platform = Self::open_platform_with_audit(
            &data_dir,
            master,
            key_file,
            clock.clone(),
            audit.clone(),
            allow_private_networks,
            smtp,
        );
        let bootstrap = data_dir.join("bootstrap-operator.token");
        platform
            .ensure_bootstrap_operator_token(bootstrap.clone())
            .await
            .unwrap();
        let operator = std::fs::read_to_string(bootstrap).unwrap();
        let state = AppState {
            platform: platform.clone(),
            limits: Limits {
                body_bytes_max: 1024 * 1024,
            },
            metrics: Arc::new(Metrics::default()),
            trusted_proxies: vec!["10.9.9.9/32".parse().unwrap()].into(),
        };
        Self {
            audit,
            directory,
            public: strongroom_api::public_router(state.clone()),
            admin: strongroom_api::admin_router(state),
            platform,
            clock,
            operator,
        }
    }

    pub fn open_platform(
        data_dir: &std::path::Path,
        master: strongroom_crypto::MasterKey,
        key_file: std::path::PathBuf,
        clock: FakeClock,
    ) -> Arc<Platform> {
        let audit = Arc::new(
            strongroom_storage::sqlite::SqliteAuditStore::open(&data_dir.join("audit.db")).unwrap(),
        );
        Self::open_platform_with_audit(data_dir, master, key_file, clock, audit, false, None)
    }

    pub fn open_platform_with_audit(
        data_dir: &std::path::Path,
        master: strongroom_crypto::MasterKey,
        key_file: std::path::PathBuf,
        clock: FakeClock,
        audit: Arc<dyn strongroom_storage::AuditStore>,
        allow_private_networks: bool,
        smtp: Option<strongroom_service::SmtpOptions>,
    ) -> Arc<Platform> {
        let control = SqliteControlStore::open(&data_dir.join("control.db")).unwrap();
        let options = PlatformOptions {
            key_file: Some(key_file),
            page_limit_default: 100,
            page_limit_max: 1000,
            documents: test_document_limits(),
            password_hashing: fast_password_hashing(),
            public_url: "https://127.0.0.1:8443".into(),
            outbound_allow_private_networks: allow_private_networks,
            support_networks: vec!["192.0.2.0/24".parse().unwrap()],
            audit_log_dir: data_dir.parent().map(|parent| parent.join("audit-logs")),
            audit_retention_days: 400,
            audit_checkpoint_every_events: 10_000,
            smtp,
        };
        Platform::open(
            Arc::new(control),
            audit,
            sqlite_store_opener(data_dir.to_owned()),
            master,
            options,
            Arc::new(clock),
        )
        .unwrap()
    }

    pub fn data_dir(&self) -> std::path::PathBuf {
        self.directory.path().join("data")
    }

    pub async fn public(&self, request: Request) -> Response {
        send(&self.public, request).await
    }

    /// Sends `request` on the public router and drops it, as a client that goes away would,
    /// once `abandon_when` completes; the request must still be running then.
    pub async fn public_abandoned(
        &self,
        request: Request,
        abandon_when: impl std::future::Future<Output = ()>,
    ) {
        tokio::select! {
            response = self.public.clone().oneshot(http_request(request)) => {
                panic!("the request ended before it was abandoned: {:?}", response.map(|r| r.status()));
            }
            () = abandon_when => {}
        }
    }

    pub async fn admin(&self, request: Request) -> Response {
        send(&self.admin, request).await
    }

    /// Creates (or replaces) collection `name` of `slug` with `token`, asserting it worked.
    pub async fn put_collection(&self, slug: &str, name: &str, token: &str) {
        let answer = self
            .public(
                Request::put(&format!("/v1/tenants/{slug}/collections/{name}"))
                    .token(token)
                    .json(serde_json::json!({})),
            )
            .await;
        assert!(answer.status.is_success(), "{}", answer.body);
    }

    /// A signed-in user's request for an API token of `slug` (`body`: name, scopes, …); the
    /// answer is the caller's to check.
    pub async fn mint_token(&self, slug: &str, session: &str, body: serde_json::Value) -> Response {
        self.public(
            Request::post(&format!("/v1/tenants/{slug}/tokens"))
                .token(session)
                .json(body),
        )
        .await
    }

    pub async fn tenant_with_token(&self, slug: &str, scopes: &[&str]) -> String {
        let created = self
            .admin(
                Request::post("/admin/v1/tenants")
                    .token(&self.operator)
                    .json(serde_json::json!({"slug": slug, "name": format!("{slug} NV")})),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        self.token_for(slug, scopes).await
    }

    pub async fn token_for(&self, slug: &str, scopes: &[&str]) -> String {
        let created = self
            .admin(
                Request::post(&format!("/admin/v1/tenants/{slug}/tokens"))
                    .token(&self.operator)
                    .json(serde_json::json!({"name": "test", "scopes": scopes})),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        created.body["token"].as_str().unwrap().to_owned()
    }

    pub fn clock_now_rfc3339(&self) -> String {
        strongroom_service::Clock::now(&self.clock).to_rfc3339()
    }

    /// The fake clock's time `seconds` from now, in RFC 3339.
    pub fn clock_in_seconds(&self, seconds: i64) -> String {
        let now = strongroom_service::Clock::now(&self.clock).unix_micros();
        strongroom_service::Timestamp::from_unix_micros(now + seconds * 1_000_000).to_rfc3339()
    }

    pub async fn tenant_dir(&self, slug: &str) -> std::path::PathBuf {
        let tenant = self
            .admin(Request::get(&format!("/admin/v1/tenants/{slug}")).token(&self.operator))
            .await;
        self.data_dir()
            .join("tenants")
            .join(tenant.body["id"].as_str().unwrap())
    }

    pub fn security_count(&self, kind: &str) -> u64 {
        self.platform
            .security
            .counts()
            .into_iter()
            .find(|(found, _)| found.as_str() == kind)
            .map_or(0, |(_, count)| count)
    }
}

fn http_request(request: Request) -> axum::http::Request<Body> {
    let mut builder = axum::http::Request::builder()
        .method(request.method)
        .uri(request.uri);
    // Every request has a peer, as on a real socket; loopback unless the test names one.
    let address = request
        .address
        .unwrap_or_else(|| "127.0.0.1:40000".parse().unwrap());
    builder = builder.extension(axum::extract::ConnectInfo(address));
    if let Some(slots) = request.slots {
        builder = builder.extension(slots);
    }
    for (name, value) in request.headers {
        builder = builder.header(name, value);
    }
    builder.body(request.body).unwrap()
}

async fn send(router: &Router, request: Request) -> Response {
    let response = router.clone().oneshot(http_request(request)).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    assert_eq!(
        headers
            .get("strict-transport-security")
            .map(|value| value.to_str().unwrap()),
        Some("max-age=63072000; includeSubDomains"),
        "HSTS on every response"
    );
    let (bytes, body_failed) = match http_body_util::BodyExt::collect(response.into_body()).await {
        Ok(collected) => (collected.to_bytes(), None),
        Err(error) => (Default::default(), Some(error.to_string())),
    };
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Response {
        status,
        headers,
        body,
        text,
        bytes: bytes.to_vec(),
        body_failed,
    }
}

/// Argon2id at a test cost; the production default is exercised by the crypto tests.
pub fn fast_password_hashing() -> strongroom_crypto::PasswordHashing {
    strongroom_crypto::PasswordHashing {
        memory_kib: 64,
        passes: 1,
        lanes: 1,
    }
}

/// Small limits, so quota and size tests stay cheap: 2 MiB per file, 4 MiB per tenant.
pub fn test_document_limits() -> strongroom_service::DocumentLimits {
    strongroom_service::DocumentLimits {
        file_bytes_max: 2 << 20,
        tenant_quota_bytes: 4 << 20,
        ..Default::default()
    }
}

/// Every (method, path) operation of an OpenAPI document, sorted.
pub fn operations(document: &Value) -> Vec<(String, String)> {
    let mut operations: Vec<(String, String)> = document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|key| ["get", "put", "post", "patch", "delete"].contains(&key.as_str()))
                .map(move |method| (method.clone(), path.clone()))
        })
        .collect();
    operations.sort();
    operations
}

/// Every file under `directory`.
pub fn files_under(directory: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![directory.to_owned()];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            stack.extend(
                std::fs::read_dir(&path)
                    .unwrap()
                    .map(|entry| entry.unwrap().path()),
            );
        } else {
            files.push(path);
        }
    }
    files
}

/// The fake clock's time in whole Unix seconds.
pub fn unix_seconds(clock: &FakeClock) -> i64 {
    strongroom_service::Clock::now(clock).unix_micros() / 1_000_000
}

/// The SQLite audit store with a switch: when broken, every write fails as a full or
/// read-only disk would, and reads go on working.
pub struct BreakableAudit {
    inner: strongroom_storage::sqlite::SqliteAuditStore,
    pub broken: std::sync::atomic::AtomicBool,
    /// Set to N, the store breaks after N more appends (negative: never by itself).
    pub break_after: std::sync::atomic::AtomicI64,
}

impl strongroom_storage::AuditStore for BreakableAudit {
    fn append(
        &self,
        entry: strongroom_storage::AuditEntry,
        sealer: strongroom_storage::AuditSealer,
    ) -> strongroom_storage::PendingWrite<u64> {
        if self
            .break_after
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst)
            == 0
        {
            self.broken.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        if self.broken.load(std::sync::atomic::Ordering::SeqCst) {
            // The failure comes late, as from a commit that fails: a change that does not wait
            // for its intent would have committed by then.
            let (reply, pending) = strongroom_storage::PendingWrite::channel();
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(100));
                reply.send(Err(strongroom_storage::StorageError::Unavailable(
                    "disk I/O error".into(),
                )));
            });
            return pending;
        }
        self.inner.append(entry, sealer)
    }
    fn events(
        &self,
        query: &strongroom_storage::AuditQuery,
    ) -> Result<Vec<strongroom_storage::AuditRow>, strongroom_storage::StorageError> {
        self.inner.events(query)
    }
    fn chain_events(
        &self,
        chain: &str,
        after_sequence: u64,
        limit: u32,
    ) -> Result<Vec<strongroom_storage::AuditRow>, strongroom_storage::StorageError> {
        self.inner.chain_events(chain, after_sequence, limit)
    }
    fn chains(&self) -> Result<Vec<String>, strongroom_storage::StorageError> {
        self.inner.chains()
    }
    fn head(
        &self,
        chain: &str,
    ) -> Result<Option<(u64, Vec<u8>)>, strongroom_storage::StorageError> {
        self.inner.head(chain)
    }
    fn add_checkpoint(
        &self,
        checkpoint: strongroom_storage::AuditCheckpointRow,
    ) -> Result<(), strongroom_storage::StorageError> {
        self.inner.add_checkpoint(checkpoint)
    }
    fn last_checkpoint(
        &self,
        chain: &str,
    ) -> Result<Option<strongroom_storage::AuditCheckpointRow>, strongroom_storage::StorageError>
    {
        self.inner.last_checkpoint(chain)
    }
    fn checkpoints_after(
        &self,
        chain: &str,
        after_sequence: u64,
        limit: u32,
    ) -> Result<Vec<strongroom_storage::AuditCheckpointRow>, strongroom_storage::StorageError> {
        self.inner.checkpoints_after(chain, after_sequence, limit)
    }
    fn last_event_before(
        &self,
        chain: &str,
        before: i64,
    ) -> Result<Option<(u64, Vec<u8>)>, strongroom_storage::StorageError> {
        self.inner.last_event_before(chain, before)
    }
    fn remove_events_through(
        &self,
        chain: &str,
        sequence: u64,
    ) -> Result<u64, strongroom_storage::StorageError> {
        self.inner.remove_events_through(chain, sequence)
    }
    fn signing_key(
        &self,
    ) -> Result<Option<strongroom_storage::StoredSigningKey>, strongroom_storage::StorageError>
    {
        self.inner.signing_key()
    }
    fn set_signing_key(
        &self,
        key: strongroom_storage::StoredSigningKey,
    ) -> Result<strongroom_storage::StoredSigningKey, strongroom_storage::StorageError> {
        self.inner.set_signing_key(key)
    }
}
