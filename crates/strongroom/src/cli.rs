//! The admin commands. They talk to a running server's admin listener over TLS, exactly as an
//! operator's own tooling would, with the operator token from `STRONGROOM_OPERATOR_TOKEN` or
//! the bootstrap file.

use crate::config::Config;
use crate::serve::BOOTSTRAP_TOKEN_FILE;
use anyhow::{Context, bail};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::{Value, json};
use std::path::PathBuf;

/// How to reach the admin listener.
#[derive(Debug, Clone, clap::Args)]
pub struct AdminConnection {
    /// Admin listener URL; default `https://<admin.listen>` from the configuration.
    #[arg(long, value_name = "URL")]
    pub admin_url: Option<String>,
    /// PEM certificate (or CA) to trust for the admin listener; default the configured
    /// certificate, or the self-signed one in the data directory.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
}

pub struct AdminClient {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl AdminClient {
    /// A client carrying the operator credential.
    pub fn new(config: &Config, connection: &AdminConnection) -> anyhow::Result<Self> {
        // The credential first: without one, nothing else matters.
        let token = operator_token(config)?;
        let mut client = Self::without_credential(config, connection)?;
        client.token = Some(token);
        Ok(client)
    }

    /// A client for the calls that carry their own proof (enrolment, sign-in).
    pub fn without_credential(
        config: &Config,
        connection: &AdminConnection,
    ) -> anyhow::Result<Self> {
        let base = connection
            .admin_url
            .clone()
            .unwrap_or_else(|| format!("https://{}", config.admin.listen))
            .trim_end_matches('/')
            .to_owned();
        let ca_file = connection
            .ca_file
            .clone()
            .or_else(|| config.tls.cert_file.clone())
            .unwrap_or_else(|| config.data_dir.join("tls").join("self-signed.crt"));
        let mut roots = rustls::RootCertStore::empty();
        for certificate in CertificateDer::pem_file_iter(&ca_file).with_context(|| {
            format!(
                "cannot read the certificate to trust, {}",
                ca_file.display()
            )
        })? {
            roots
                .add(certificate.context("invalid PEM certificate")?)
                .context("unusable certificate")?;
        }
        let mut tls = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let http = reqwest::Client::builder()
            .https_only(true)
            .tls_backend_preconfigured(tls)
            .build()
            .context("cannot build the HTTPS client")?;
        Ok(Self {
            http,
            base,
            token: None,
        })
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method, &url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.with_context(|| {
            format!(
                "cannot reach the admin listener at {}; is the server running?",
                self.base
            )
        })?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if !status.is_success() {
            let detail = value
                .get("detail")
                .and_then(Value::as_str)
                .unwrap_or("no detail");
            let code = value
                .get("code")
                .and_then(Value::as_str)
                .unwrap_or("unknown");
            bail!("{status}: {detail} ({code})");
        }
        Ok(value)
    }
}

fn operator_token(config: &Config) -> anyhow::Result<String> {
    if let Ok(token) = std::env::var("STRONGROOM_OPERATOR_TOKEN") {
        return Ok(token.trim().to_owned());
    }
    let path = config.data_dir.join(BOOTSTRAP_TOKEN_FILE);
    let token = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "no operator token: set STRONGROOM_OPERATOR_TOKEN or make {} readable",
            path.display()
        )
    })?;
    Ok(token.trim().to_owned())
}

#[derive(Debug, clap::Subcommand)]
pub enum TenantCommand {
    /// Create a tenant.
    Create {
        slug: String,
        /// Display name, such as "Acme NV".
        #[arg(long)]
        name: String,
        /// Data residency region.
        #[arg(long, default_value = "eu")]
        region: String,
    },
    /// List tenants.
    List,
    /// Show a tenant with its key versions.
    Show { slug: String },
    /// Suspend a tenant: its data requests are refused.
    Suspend { slug: String },
    /// Empty a tenant's firewall allow and deny lists, when its admins shut themselves out.
    ClearFirewall { slug: String },
    /// Resume a suspended tenant.
    Resume { slug: String },
}

#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Create an API token for a tenant; the token is printed once.
    Create {
        tenant: String,
        #[arg(long, default_value = "default")]
        name: String,
        /// A scope to grant; repeat for several. Default: records:read and records:write.
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
        /// Expiry, RFC 3339.
        #[arg(long, value_name = "INSTANT")]
        expires_at: Option<String>,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum OperatorCommand {
    /// Invite an operator; prints the enrolment token to hand to them (valid 24 hours).
    Invite { name: String },
    /// Enrolment, step one (as the new operator): set your password, read from
    /// STRONGROOM_OPERATOR_PASSWORD or the first line of standard input. Prints the TOTP
    /// otpauth URI to add to an authenticator app.
    Enrol {
        #[arg(long, value_name = "TOKEN")]
        token: String,
    },
    /// Enrolment, step two: a current code from the app. Prints a session token; export it as
    /// STRONGROOM_OPERATOR_TOKEN.
    Confirm {
        #[arg(long, value_name = "TOKEN")]
        token: String,
        #[arg(long)]
        code: String,
    },
    /// Sign in: the password from STRONGROOM_OPERATOR_PASSWORD or standard input, and a code.
    /// Prints a session token; export it as STRONGROOM_OPERATOR_TOKEN.
    Login {
        name: String,
        #[arg(long)]
        code: String,
    },
    /// List operator accounts.
    List,
    /// Disable another operator; their sessions end.
    Disable { name: String },
    /// Enable (and unlock) another operator.
    Enable { name: String },
}

#[derive(Debug, clap::Subcommand)]
pub enum SupportAccessCommand {
    /// Ask for break-glass access to a tenant's data; prints the grant and its token.
    Request {
        tenant: String,
        /// Why: a ticket number and the reason (the tenant sees it).
        #[arg(long)]
        justification: String,
        /// A data scope; repeat for several.
        #[arg(long = "scope", value_name = "SCOPE", required = true)]
        scopes: Vec<String>,
        /// How long, at most 1440 (24 hours).
        #[arg(long, default_value_t = 60)]
        minutes: u32,
    },
    /// Every grant, newest first.
    List,
    /// Take a grant back.
    Revoke { id: String },
}

#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Check the audit chains (every link, every event, every signed checkpoint); exits 1 when
    /// one is broken and says where.
    Verify {
        /// One tenant's chain (its slug), or `control`; default every chain.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Print the public key that signs the checkpoints (Ed25519, hex).
    PublicKey,
}

#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// Replace the master key and re-wrap every tenant key; the old key file is kept as a
    /// dated backup until you remove it.
    RotateMaster,
    /// Add a new data-key version for a tenant; older data is re-sealed in the background.
    RotateTenant { slug: String },
}

pub async fn tenant(client: &AdminClient, command: TenantCommand) -> anyhow::Result<Value> {
    use reqwest::Method;
    match command {
        TenantCommand::Create { slug, name, region } => {
            client
                .call(
                    Method::POST,
                    "/admin/v1/tenants",
                    Some(json!({"slug": slug, "name": name, "region": region})),
                )
                .await
        }
        TenantCommand::List => client.call(Method::GET, "/admin/v1/tenants", None).await,
        TenantCommand::Show { slug } => {
            client
                .call(
                    Method::GET,
                    &format!("/admin/v1/tenants/{}", encode(&slug)),
                    None,
                )
                .await
        }
        TenantCommand::Suspend { slug } => {
            client
                .call(
                    Method::POST,
                    &format!("/admin/v1/tenants/{}/suspend", encode(&slug)),
                    None,
                )
                .await
        }
        TenantCommand::ClearFirewall { slug } => {
            client
                .call(
                    Method::DELETE,
                    &format!("/admin/v1/tenants/{}/policy/firewall", encode(&slug)),
                    None,
                )
                .await
        }
        TenantCommand::Resume { slug } => {
            client
                .call(
                    Method::POST,
                    &format!("/admin/v1/tenants/{}/resume", encode(&slug)),
                    None,
                )
                .await
        }
    }
}

pub async fn token(client: &AdminClient, command: TokenCommand) -> anyhow::Result<Value> {
    let TokenCommand::Create {
        tenant,
        name,
        scopes,
        expires_at,
    } = command;
    let scopes = if scopes.is_empty() {
        vec!["records:read".to_owned(), "records:write".to_owned()]
    } else {
        scopes
    };
    let body = json!({"name": name, "scopes": scopes, "expires_at": expires_at});
    client
        .call(
            reqwest::Method::POST,
            &format!("/admin/v1/tenants/{}/tokens", encode(&tenant)),
            Some(body),
        )
        .await
}

pub async fn audit(client: &AdminClient, command: AuditCommand) -> anyhow::Result<Value> {
    match command {
        AuditCommand::Verify { tenant } => {
            let path = match tenant {
                Some(tenant) => format!("/admin/v1/audit/verify?tenant={}", encode(&tenant)),
                None => "/admin/v1/audit/verify".into(),
            };
            let report = client.call(reqwest::Method::POST, &path, None).await?;
            if report.get("intact") != Some(&Value::Bool(true)) {
                println!("{}", serde_json::to_string_pretty(&report)?);
                bail!("an audit chain is broken (see above)");
            }
            Ok(report)
        }
        AuditCommand::PublicKey => {
            client
                .call(reqwest::Method::GET, "/admin/v1/audit/public-key", None)
                .await
        }
    }
}

pub async fn keys(client: &AdminClient, command: KeysCommand) -> anyhow::Result<Value> {
    match command {
        KeysCommand::RotateMaster => {
            client
                .call(reqwest::Method::POST, "/admin/v1/keys/rotate-master", None)
                .await
        }
        KeysCommand::RotateTenant { slug } => {
            client
                .call(
                    reqwest::Method::POST,
                    &format!("/admin/v1/tenants/{}/keys/rotate", encode(&slug)),
                    None,
                )
                .await
        }
    }
}

/// A password from STRONGROOM_OPERATOR_PASSWORD, or the first line of standard input.
fn read_password() -> anyhow::Result<zeroize::Zeroizing<String>> {
    if let Ok(password) = std::env::var("STRONGROOM_OPERATOR_PASSWORD") {
        return Ok(zeroize::Zeroizing::new(password));
    }
    let mut line = zeroize::Zeroizing::new(String::new());
    std::io::stdin()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        bail!("no password: set STRONGROOM_OPERATOR_PASSWORD or give it on standard input");
    }
    Ok(zeroize::Zeroizing::new(password))
}

pub async fn operator(
    config: &Config,
    connection: &AdminConnection,
    command: OperatorCommand,
) -> anyhow::Result<Value> {
    use reqwest::Method;
    match command {
        OperatorCommand::Invite { name } => {
            AdminClient::new(config, connection)?
                .call(
                    Method::POST,
                    "/admin/v1/operators",
                    Some(json!({"name": name})),
                )
                .await
        }
        OperatorCommand::Enrol { token } => {
            let password = read_password()?;
            let mut answer = AdminClient::without_credential(config, connection)?
                .call(
                    Method::POST,
                    "/admin/v1/operators/enrol",
                    Some(json!({"enrolment_token": token, "password": password.as_str()})),
                )
                .await?;
            // The QR code is for browsers; a terminal shows the URI.
            if let Some(object) = answer.as_object_mut() {
                object.remove("qr_svg");
            }
            Ok(answer)
        }
        OperatorCommand::Confirm { token, code } => {
            AdminClient::without_credential(config, connection)?
                .call(
                    Method::POST,
                    "/admin/v1/operators/enrol/confirm",
                    Some(json!({"enrolment_token": token, "code": code})),
                )
                .await
        }
        OperatorCommand::Login { name, code } => {
            let password = read_password()?;
            AdminClient::without_credential(config, connection)?
                .call(
                    Method::POST,
                    "/admin/v1/auth/login",
                    Some(json!({"name": name, "password": password.as_str(), "code": code})),
                )
                .await
        }
        OperatorCommand::List => {
            AdminClient::new(config, connection)?
                .call(Method::GET, "/admin/v1/operators", None)
                .await
        }
        OperatorCommand::Disable { name } => {
            AdminClient::new(config, connection)?
                .call(
                    Method::POST,
                    &format!("/admin/v1/operators/{}/disable", encode(&name)),
                    None,
                )
                .await
        }
        OperatorCommand::Enable { name } => {
            AdminClient::new(config, connection)?
                .call(
                    Method::POST,
                    &format!("/admin/v1/operators/{}/enable", encode(&name)),
                    None,
                )
                .await
        }
    }
}

pub async fn support_access(
    client: &AdminClient,
    command: SupportAccessCommand,
) -> anyhow::Result<Value> {
    use reqwest::Method;
    match command {
        SupportAccessCommand::Request {
            tenant,
            justification,
            scopes,
            minutes,
        } => {
            client
                .call(
                    Method::POST,
                    &format!("/admin/v1/tenants/{}/support-access", encode(&tenant)),
                    Some(json!({"justification": justification, "scopes": scopes, "duration_minutes": minutes})),
                )
                .await
        }
        SupportAccessCommand::List => {
            client
                .call(Method::GET, "/admin/v1/support-access", None)
                .await
        }
        SupportAccessCommand::Revoke { id } => {
            client
                .call(
                    Method::DELETE,
                    &format!("/admin/v1/support-access/{}", encode(&id)),
                    None,
                )
                .await
        }
    }
}

/// Slugs are validated by the server; percent-encode anything unusual so the path stays one
/// segment.
fn encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
