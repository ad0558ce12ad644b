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
    token: String,
}

impl AdminClient {
    pub fn new(config: &Config, connection: &AdminConnection) -> anyhow::Result<Self> {
        let token = operator_token(config)?;
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
        Ok(Self { http, base, token })
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method, &url).bearer_auth(&self.token);
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
