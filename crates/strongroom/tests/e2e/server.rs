//! Starting, stopping and talking to a real server process.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BINARY: &str = env!("CARGO_BIN_EXE_strongroom");

pub struct TestServer {
    pub directory: tempfile::TempDir,
    pub config_file: PathBuf,
    pub public: String,
    pub admin: String,
    pub environment: Vec<(String, String)>,
    child: Option<Child>,
    log_index: usize,
}

/// The first owner's own password ([`TestServer::first_owner`]).
pub const OWNER_PASSWORD: &str = "a fine long passphrase";

/// Waits up to 10 s for `ready`; answers whether it came.
pub async fn eventually(mut ready: impl AsyncFnMut() -> bool) -> bool {
    for _ in 0..200 {
        if ready().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl TestServer {
    /// A server whose config file sets only data_dir, key_file and the two listeners, as the
    /// issue requires that to work. `extra` is appended to the file.
    pub fn start_with(extra: &str, environment: &[(&str, &str)]) -> Self {
        let mut server = Self::configure(extra, environment);
        server.spawn().expect("the server starts");
        server
    }

    pub fn start() -> Self {
        Self::start_with("", &[])
    }

    pub fn configure(extra: &str, environment: &[(&str, &str)]) -> Self {
        let directory = tempfile::tempdir().unwrap();
        let public = format!("127.0.0.1:{}", free_port());
        let admin = format!("127.0.0.1:{}", free_port());
        let config_file = directory.path().join("strongroom.toml");
        let config = format!(
            "data_dir = \"{}\"\nkey_file = \"{}\"\n\n[public]\nlisten = \"{public}\"\n\n[admin]\nlisten = \"{admin}\"\n{extra}",
            directory.path().join("data").display(),
            directory.path().join("keys/master.key").display()
        );
        std::fs::write(&config_file, config).unwrap();
        let environment = environment
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        Self {
            directory,
            config_file,
            public,
            admin,
            environment,
            child: None,
            log_index: 0,
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.directory.path().join("data")
    }

    pub fn key_file(&self) -> PathBuf {
        self.directory.path().join("keys/master.key")
    }

    fn log_file(&self, index: usize) -> PathBuf {
        self.directory.path().join(format!("server-{index}.log"))
    }

    /// Everything every run of this server logged.
    pub fn logs(&self) -> String {
        (0..=self.log_index)
            .map(|index| std::fs::read_to_string(self.log_file(index)).unwrap_or_default())
            .collect()
    }

    /// Starts the process and waits until the admin listener answers; on failure returns
    /// what the process printed.
    pub fn spawn(&mut self) -> Result<(), String> {
        self.log_index +=
            usize::from(self.child.is_some() || self.log_file(self.log_index).exists());
        let log = std::fs::File::create(self.log_file(self.log_index)).unwrap();
        let mut command = Command::new(BINARY);
        command
            .args(["--config", self.config_file.to_str().unwrap(), "serve"])
            .stdout(Stdio::null())
            .stderr(log);
        command
            .env_remove("STRONGROOM_MASTER_KEY")
            .env("STRONGROOM_LOG", "debug");
        for (name, value) in &self.environment {
            command.env(name, value);
        }
        let mut child = command.spawn().unwrap();
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return Err(format!(
                    "exited with {status}: {}",
                    std::fs::read_to_string(self.log_file(self.log_index)).unwrap_or_default()
                ));
            }
            let certificate = self.data_dir().join("tls/self-signed.crt");
            let answered = std::net::TcpStream::connect(&self.admin).is_ok()
                && (certificate.exists()
                    || self
                        .environment
                        .iter()
                        .any(|(name, _)| name == "STRONGROOM_TLS_CERT_FILE"));
            if answered {
                self.child = Some(child);
                return Ok(());
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the server did not start within 30 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM and wait: the graceful path. Waits without blocking the test's runtime: the
    /// test's clients must answer the server's goodbye (HTTP/2 GOAWAY and its PING) for the
    /// server to close their connections before its grace ends.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .unwrap();
            while child.try_wait().unwrap().is_none() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    /// SIGKILL: the crash path.
    pub fn kill_9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    pub fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("running");
        Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap();
    }

    /// Runs a CLI command against this server.
    pub fn cli(&self, arguments: &[&str]) -> Output {
        let mut command = Command::new(BINARY);
        command
            .args(["--config", self.config_file.to_str().unwrap()])
            .args(arguments);
        for (name, value) in &self.environment {
            command.env(name, value);
        }
        command.output().unwrap()
    }

    pub fn cli_json(&self, arguments: &[&str]) -> Value {
        let output = self.cli(arguments);
        assert!(
            output.status.success(),
            "{arguments:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap()
    }

    pub fn client(&self) -> reqwest::Client {
        client_trusting(&self.data_dir().join("tls/self-signed.crt"))
    }

    pub fn public_url(&self, path: &str) -> String {
        format!(
            "https://localhost:{}{path}",
            self.public.rsplit(':').next().unwrap()
        )
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!(
            "https://localhost:{}{path}",
            self.admin.rsplit(':').next().unwrap()
        )
    }

    /// The bootstrap operator token the first start wrote.
    pub fn bootstrap_token(&self) -> String {
        std::fs::read_to_string(self.data_dir().join("bootstrap-operator.token"))
            .unwrap()
            .trim()
            .to_owned()
    }

    /// GET `url` as `token`; the JSON answer.
    pub async fn get_json(&self, url: &str, token: &str) -> Value {
        let answer = self
            .client()
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        answer.json().await.unwrap()
    }

    /// POST `body` to `url`, as `token` if given; the JSON answer.
    pub async fn post_json(&self, url: &str, token: Option<&str>, body: &Value) -> Value {
        let mut request = self.client().post(url).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap().json().await.unwrap()
    }

    /// A session of ann@example.com on `slug`, signed in with `password`.
    pub async fn sign_in(&self, slug: &str, password: &str) -> String {
        let signed_in = self
            .post_json(
                &self.public_url(&format!("/v1/tenants/{slug}/auth/login")),
                None,
                &serde_json::json!({"email": "ann@example.com", "password": password}),
            )
            .await;
        signed_in["session_token"].as_str().unwrap().to_owned()
    }

    /// The admin listener's Prometheus text (`/metrics` needs no credential).
    pub async fn metrics(&self) -> String {
        let answer = self.client().get(self.admin_url("/metrics")).send().await;
        answer.unwrap().text().await.unwrap()
    }

    /// The first owner of `slug`, created with the bootstrap operator token and signed in with
    /// a password of their own ([`OWNER_PASSWORD`]); answers the session token.
    pub async fn first_owner(&self, slug: &str) -> String {
        let created = self
            .post_json(
                &self.admin_url(&format!("/admin/v1/tenants/{slug}/users")),
                Some(&self.bootstrap_token()),
                &serde_json::json!({"email": "ann@example.com", "display_name": "Ann"}),
            )
            .await;
        let one_time = created["one_time_password"].as_str().unwrap();
        let owner = self.sign_in(slug, one_time).await;
        let changed = self
            .client()
            .post(self.public_url(&format!("/v1/tenants/{slug}/me/password")))
            .bearer_auth(&owner)
            .json(
                &serde_json::json!({"current_password": one_time, "new_password": OWNER_PASSWORD}),
            )
            .send()
            .await
            .unwrap();
        assert!(changed.status().is_success(), "{}", changed.status());
        owner
    }

    /// A TLS connection to the public listener speaking HTTP/1.1, for bytes no client sends.
    pub async fn raw_tls(&self) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
        let mut tls = tls_client_config(&self.data_dir().join("tls/self-signed.crt"));
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(tls));
        let tcp = tokio::net::TcpStream::connect(&self.public).await.unwrap();
        connector
            .connect(
                rustls::pki_types::ServerName::try_from("localhost").unwrap(),
                tcp,
            )
            .await
            .unwrap()
    }

    /// Creates a tenant and a read-write token through the CLI; returns the token.
    pub fn tenant_with_token(&self, slug: &str) -> String {
        self.cli_json(&["tenant", "create", slug, "--name", &format!("{slug} NV")]);
        let token = self.cli_json(&["token", "create", slug, "--name", "e2e"]);
        token["token"].as_str().unwrap().to_owned()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill_9();
    }
}

/// A rustls client configuration trusting only the certificate(s) in `certificate`.
pub fn tls_client_config(certificate: &Path) -> rustls::ClientConfig {
    let pem = std::fs::read(certificate).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for certificate in rustls::pki_types::pem::PemObject::pem_slice_iter(&pem) {
        roots.add(certificate.unwrap()).unwrap();
    }
    let mut tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    tls
}

pub fn client_trusting(certificate: &Path) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls_client_config(certificate))
        .build()
        .unwrap()
}

/// Every file under `root`.
pub fn walk(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![root.to_owned()];
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

/// Every file under `root` whose bytes contain one of `needles`.
pub fn files_containing(root: &Path, needles: &[&str]) -> Vec<String> {
    let mut hits = Vec::new();
    for path in walk(root) {
        let bytes = std::fs::read(&path).unwrap_or_default();
        for needle in needles.iter().filter(|needle| !needle.is_empty()) {
            if bytes
                .windows(needle.len())
                .any(|window| window == needle.as_bytes())
            {
                hits.push(format!("{} contains {needle}", path.display()));
            }
        }
    }
    hits
}
