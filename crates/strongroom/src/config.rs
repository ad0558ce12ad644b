//! The one configuration struct. Values come from defaults, then a TOML file (`--config`),
//! then `STRONGROOM_*` environment variables, then command-line flags; later wins.

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Strongroom's configuration. Every field has a default, so an empty file is valid.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Deployment profile: `test`, `acceptance`, `staging` or `production`. Production refuses
    /// unsafe settings (self-signed certificate, master key from the environment).
    pub profile: Profile,
    /// Directory holding the control-plane database and one directory per tenant.
    pub data_dir: PathBuf,
    /// The master key file (32 random bytes, mode 0600). Must be outside `data_dir`; created
    /// on first start when missing.
    pub key_file: PathBuf,
    /// The public API listener (tenant data, OpenAPI document).
    pub public: ListenerConfig,
    /// The address users reach the public listener at, such as `https://data.example.com`
    /// (behind a proxy or a DNS name). Single sign-on redirect URIs are built from it; by
    /// default `https://<public.listen>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// Proxies in front of the server (networks such as `10.0.0.0/24`): from these peers,
    /// `X-Forwarded-For` names the client, for throttling and the tenants' firewalls.
    pub trusted_proxies: Vec<String>,
    /// The operators' own networks: tenants that let support in accept break-glass requests
    /// from them past their firewall's allow list.
    pub support_networks: Vec<String>,
    /// The admin listener (operator API, health, readiness, metrics).
    pub admin: ListenerConfig,
    pub tls: TlsConfig,
    pub limits: LimitsConfig,
    pub documents: DocumentsConfig,
    pub outbound: OutboundConfig,
    pub audit: AuditConfig,
    pub smtp: SmtpConfig,
    pub log: LogConfig,
}

/// The mail server for alert e-mail (STARTTLS required). Without a host, no e-mail is sent.
/// Debug leaves the password out.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    pub port: u16,
    pub from: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Better from `STRONGROOM_SMTP_PASSWORD` than from the file.
    #[serde(skip_serializing)]
    pub password: Option<String>,
    /// A PEM certificate (or CA) to trust besides the system's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("from", &self.from)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            host: None,
            port: 587,
            from: "strongroom@localhost".into(),
            username: None,
            password: None,
            ca_file: None,
        }
    }
}

/// The audit trail.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// How long the control plane's events are kept (tenants set their own; 400 by default).
    pub retention_days: u32,
    /// Each chain's head is signed every minute, and also after this many events (of all
    /// chains together), so a busy trail does not go long unsigned.
    pub checkpoint_every_events: u64,
    /// The server checks every chain (as `strongroom audit verify` does) when it starts and
    /// then every this many hours (a week at most: the daily files' heads are read back a
    /// week), so tampering raises `audit_verify_failed` to the tenant's alert channels without
    /// anyone asking; 0 checks only on demand.
    pub verify_every_hours: u32,
    /// Where the daily JSON-lines files go (one directory per tenant and `control`); default
    /// `<data_dir>/audit-logs`. They hold no plaintext personal data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_dir: Option<PathBuf>,
}

/// Requests the server makes to addresses tenant admins configure (identity providers,
/// alert webhooks).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboundConfig {
    /// Let them reach private networks or loopback (an in-house identity provider or
    /// webhook). Off by default: the server must not fetch addresses inside its own network
    /// for a tenant admin.
    pub allow_private_networks: bool,
}

/// The document archive's limits and retention.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DocumentsConfig {
    /// Largest file, in bytes (larger → 413).
    pub file_bytes_max: u64,
    /// Stored content per tenant, in bytes, counted once per distinct content (beyond → 507).
    pub tenant_quota_bytes: u64,
    /// How long replaced versions are kept.
    pub version_retention_days: u32,
    /// How long deleted documents stay in the trash.
    pub trash_retention_days: u32,
    /// How often the purge runs.
    pub purge_interval_seconds: u64,
    /// Uploads and downloads in progress at most, over all tenants (beyond → 503).
    pub transfers_max: usize,
}

impl Default for DocumentsConfig {
    fn default() -> Self {
        let limits = strongroom_service::DocumentLimits::default();
        Self {
            file_bytes_max: limits.file_bytes_max,
            tenant_quota_bytes: limits.tenant_quota_bytes,
            version_retention_days: limits.version_retention_days,
            trash_retention_days: limits.trash_retention_days,
            purge_interval_seconds: 3600,
            transfers_max: limits.transfers_max,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    Test,
    Acceptance,
    Staging,
    Production,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// Address and port to listen on, such as `127.0.0.1:8443`.
    pub listen: SocketAddr,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain. When unset (and `key_file` too), a self-signed certificate for
    /// localhost is created under `<data_dir>/tls/` (not allowed in production).
    pub cert_file: Option<PathBuf>,
    /// PEM private key of the certificate.
    pub key_file: Option<PathBuf>,
    /// How often the certificate files are checked for changes (SIGHUP reloads at once).
    pub reload_check_seconds: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest accepted request body, in bytes (larger → 413).
    pub body_bytes_max: usize,
    /// Records per page when a listing names no limit.
    pub page_size_default: u32,
    /// Largest page a client may ask for (at most 1000).
    pub page_size_max: u32,
    /// Open connections per listener at most; beyond it new connections are closed.
    pub connections_max: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: LogFormat,
    /// A tracing filter such as `info` or `strongroom=debug,info`.
    pub level: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            profile: Profile::Test,
            data_dir: PathBuf::from("./strongroom-data"),
            key_file: PathBuf::from("./strongroom-keys/master.key"),
            public: ListenerConfig {
                listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            },
            public_url: None,
            trusted_proxies: Vec::new(),
            support_networks: Vec::new(),
            admin: ListenerConfig {
                listen: SocketAddr::from(([127, 0, 0, 1], 9443)),
            },
            tls: TlsConfig::default(),
            limits: LimitsConfig::default(),
            documents: DocumentsConfig::default(),
            outbound: OutboundConfig::default(),
            audit: AuditConfig::default(),
            smtp: SmtpConfig::default(),
            log: LogConfig::default(),
        }
    }
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            retention_days: 400,
            checkpoint_every_events: 10_000,
            verify_every_hours: 24,
            log_dir: None,
        }
    }
}

impl Default for ListenerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
        }
    }
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            cert_file: None,
            key_file: None,
            reload_check_seconds: 5,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            body_bytes_max: 1024 * 1024,
            page_size_default: 100,
            page_size_max: 1000,
            connections_max: 4096,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".to_owned(),
        }
    }
}

impl std::str::FromStr for Profile {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> anyhow::Result<Self> {
        match text {
            "test" => Ok(Profile::Test),
            "acceptance" => Ok(Profile::Acceptance),
            "staging" => Ok(Profile::Staging),
            "production" => Ok(Profile::Production),
            other => {
                bail!("unknown profile {other:?}: use test, acceptance, staging or production")
            }
        }
    }
}

/// Overrides given on the command line, before or after the subcommand; `None` keeps the value
/// from file or environment.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct ConfigFlags {
    /// TOML configuration file.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    #[arg(long, global = true, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    #[arg(long, global = true, value_name = "ADDR")]
    pub public_listen: Option<SocketAddr>,
    #[arg(long, global = true, value_name = "ADDR")]
    pub admin_listen: Option<SocketAddr>,
    #[arg(long, global = true, value_name = "FILE")]
    pub tls_cert_file: Option<PathBuf>,
    #[arg(long, global = true, value_name = "FILE")]
    pub tls_key_file: Option<PathBuf>,
    #[arg(long, global = true, value_name = "PROFILE")]
    pub profile: Option<Profile>,
}

/// The environment variables read, each with what it sets.
pub const ENVIRONMENT: &[(&str, &str)] = &[
    ("STRONGROOM_CONFIG", "configuration file, like --config"),
    ("STRONGROOM_PROFILE", "profile"),
    ("STRONGROOM_DATA_DIR", "data_dir"),
    ("STRONGROOM_KEY_FILE", "key_file"),
    ("STRONGROOM_PUBLIC_LISTEN", "public.listen"),
    ("STRONGROOM_PUBLIC_URL", "public_url"),
    ("STRONGROOM_SMTP_PASSWORD", "smtp.password"),
    (
        "STRONGROOM_OUTBOUND_ALLOW_PRIVATE_NETWORKS",
        "outbound.allow_private_networks (true or false)",
    ),
    ("STRONGROOM_ADMIN_LISTEN", "admin.listen"),
    ("STRONGROOM_TLS_CERT_FILE", "tls.cert_file"),
    ("STRONGROOM_TLS_KEY_FILE", "tls.key_file"),
    ("STRONGROOM_BODY_BYTES_MAX", "limits.body_bytes_max"),
    ("STRONGROOM_PAGE_SIZE_DEFAULT", "limits.page_size_default"),
    ("STRONGROOM_PAGE_SIZE_MAX", "limits.page_size_max"),
    ("STRONGROOM_LOG_FORMAT", "log.format (text or json)"),
    ("STRONGROOM_LOG", "log.level"),
    (
        "STRONGROOM_MASTER_KEY",
        "the master key itself, base64 (not allowed in production)",
    ),
];

impl Config {
    /// Resolves the configuration from file, environment and flags, and checks it.
    pub fn load(flags: &ConfigFlags) -> anyhow::Result<Self> {
        let file = flags
            .config
            .clone()
            .or_else(|| std::env::var_os("STRONGROOM_CONFIG").map(PathBuf::from));
        let mut config = match &file {
            Some(path) => Self::from_file(path)?,
            None => Self::default(),
        };
        config.apply_environment(|name| std::env::var(name).ok())?;
        config.apply_flags(flags);
        config.check()?;
        Ok(config)
    }

    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read configuration file {}", path.display()))?;
        toml::from_str(&text)
            .with_context(|| format!("configuration file {} is invalid", path.display()))
    }

    pub fn apply_environment(
        &mut self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<()> {
        fn parse<T: std::str::FromStr>(name: &str, value: &str) -> anyhow::Result<T>
        where
            T::Err: std::fmt::Display,
        {
            value.parse::<T>().map_err(|error| {
                anyhow::anyhow!("environment variable {name}={value:?} is invalid: {error}")
            })
        }
        if let Some(value) = lookup("STRONGROOM_PROFILE") {
            self.profile = parse("STRONGROOM_PROFILE", &value)?;
        }
        if let Some(value) = lookup("STRONGROOM_DATA_DIR") {
            self.data_dir = value.into();
        }
        if let Some(value) = lookup("STRONGROOM_KEY_FILE") {
            self.key_file = value.into();
        }
        if let Some(value) = lookup("STRONGROOM_PUBLIC_LISTEN") {
            self.public.listen = parse("STRONGROOM_PUBLIC_LISTEN", &value)?;
        }
        if let Some(value) = lookup("STRONGROOM_OUTBOUND_ALLOW_PRIVATE_NETWORKS") {
            self.outbound.allow_private_networks =
                parse("STRONGROOM_OUTBOUND_ALLOW_PRIVATE_NETWORKS", &value)?;
        }
        if let Some(value) = lookup("STRONGROOM_SMTP_PASSWORD") {
            self.smtp.password = Some(value);
        }
        if let Some(value) = lookup("STRONGROOM_PUBLIC_URL") {
            self.public_url = Some(value);
        }
        if let Some(value) = lookup("STRONGROOM_ADMIN_LISTEN") {
            self.admin.listen = parse("STRONGROOM_ADMIN_LISTEN", &value)?;
        }
        if let Some(value) = lookup("STRONGROOM_TLS_CERT_FILE") {
            self.tls.cert_file = Some(value.into());
        }
        if let Some(value) = lookup("STRONGROOM_TLS_KEY_FILE") {
            self.tls.key_file = Some(value.into());
        }
        if let Some(value) = lookup("STRONGROOM_BODY_BYTES_MAX") {
            self.limits.body_bytes_max = parse("STRONGROOM_BODY_BYTES_MAX", &value)?;
        }
        if let Some(value) = lookup("STRONGROOM_PAGE_SIZE_DEFAULT") {
            self.limits.page_size_default = parse("STRONGROOM_PAGE_SIZE_DEFAULT", &value)?;
        }
        if let Some(value) = lookup("STRONGROOM_PAGE_SIZE_MAX") {
            self.limits.page_size_max = parse("STRONGROOM_PAGE_SIZE_MAX", &value)?;
        }
        if let Some(value) = lookup("STRONGROOM_LOG_FORMAT") {
            self.log.format = match value.as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                _ => bail!(
                    "environment variable STRONGROOM_LOG_FORMAT={value:?} is invalid: use text or json"
                ),
            };
        }
        if let Some(value) = lookup("STRONGROOM_LOG") {
            self.log.level = value;
        }
        Ok(())
    }

    pub fn apply_flags(&mut self, flags: &ConfigFlags) {
        if let Some(value) = &flags.data_dir {
            self.data_dir = value.clone();
        }
        if let Some(value) = &flags.key_file {
            self.key_file = value.clone();
        }
        if let Some(value) = flags.public_listen {
            self.public.listen = value;
        }
        if let Some(value) = flags.admin_listen {
            self.admin.listen = value;
        }
        if let Some(value) = &flags.tls_cert_file {
            self.tls.cert_file = Some(value.clone());
        }
        if let Some(value) = &flags.tls_key_file {
            self.tls.key_file = Some(value.clone());
        }
        if let Some(value) = flags.profile {
            self.profile = value;
        }
    }

    /// Checks that hold in every profile.
    /// Parses a list of networks; `field` names it in the error.
    pub fn networks(&self, field: &str, texts: &[String]) -> anyhow::Result<Vec<ipnet::IpNet>> {
        texts
            .iter()
            .map(|text| {
                strongroom_domain::firewall::parse_network(text)
                    .map_err(|reason| anyhow::anyhow!("{field}: {reason}"))
            })
            .collect()
    }

    /// The public listener's address as users reach it.
    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("https://{}", self.public.listen),
        }
    }

    pub fn check(&self) -> anyhow::Result<()> {
        if self.public.listen == self.admin.listen {
            bail!(
                "public.listen and admin.listen are both {}: the admin listener must be separate",
                self.public.listen
            );
        }
        if self.tls.cert_file.is_some() != self.tls.key_file.is_some() {
            bail!(
                "set both tls.cert_file and tls.key_file, or neither (for a self-signed test certificate)"
            );
        }
        if let Some(url) = &self.public_url {
            let valid = url.starts_with("https://")
                && url.len() > "https://".len()
                && !url.contains(['?', '#', ' '])
                && !url.trim_end_matches('/').contains("/v1/");
            if !valid {
                bail!(
                    "public_url {url:?} must be the https address users reach the public listener at, such as https://data.example.com"
                );
            }
        }
        self.networks("trusted_proxies", &self.trusted_proxies)?;
        self.networks("support_networks", &self.support_networks)?;
        if !(30..=3650).contains(&self.audit.retention_days) {
            bail!("audit.retention_days must be from 30 to 3650");
        }
        if !(1..=1_000_000).contains(&self.audit.checkpoint_every_events) {
            bail!("audit.checkpoint_every_events must be from 1 to 1000000");
        }
        // A week at most: verification reads a week of daily files for the heads signed
        // there, so a cut must be looked for before they age out of that week.
        if self.audit.verify_every_hours > 24 * 7 {
            bail!("audit.verify_every_hours must be from 0 (only on demand) to 168 (a week)");
        }
        if self.limits.connections_max == 0 {
            bail!("limits.connections_max must be at least 1");
        }
        if self.limits.body_bytes_max == 0 {
            bail!("limits.body_bytes_max must be at least 1");
        }
        if !(1..=strongroom_domain::PAGE_LIMIT_MAX).contains(&self.limits.page_size_max) {
            bail!(
                "limits.page_size_max must be from 1 to {}",
                strongroom_domain::PAGE_LIMIT_MAX
            );
        }
        if self.limits.page_size_default == 0
            || self.limits.page_size_default > self.limits.page_size_max
        {
            bail!(
                "limits.page_size_default must be from 1 to limits.page_size_max ({})",
                self.limits.page_size_max
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_environment_then_flags() {
        let mut config: Config = toml::from_str(
            "data_dir = \"/srv/data\"\nkey_file = \"/srv/keys/master.key\"\n[public]\nlisten = \"127.0.0.1:1000\"\n[admin]\nlisten = \"127.0.0.1:1001\"\n",
        )
        .unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/srv/data"));
        assert_eq!(config.limits.body_bytes_max, 1024 * 1024);
        config
            .apply_environment(|name| match name {
                "STRONGROOM_DATA_DIR" => Some("/env/data".into()),
                "STRONGROOM_ADMIN_LISTEN" => Some("127.0.0.1:2001".into()),
                _ => None,
            })
            .unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/env/data"));
        config.apply_flags(&ConfigFlags {
            data_dir: Some("/flag/data".into()),
            ..ConfigFlags::default()
        });
        assert_eq!(config.data_dir, PathBuf::from("/flag/data"));
        assert_eq!(config.admin.listen, "127.0.0.1:2001".parse().unwrap());
        assert_eq!(config.public.listen, "127.0.0.1:1000".parse().unwrap());
        config.check().unwrap();
    }

    #[test]
    fn bad_values_are_named() {
        assert!(
            toml::from_str::<Config>("data_dirr = \"x\"")
                .unwrap_err()
                .to_string()
                .contains("data_dirr")
        );
        let error = Config::default()
            .apply_environment(|name| (name == "STRONGROOM_PUBLIC_LISTEN").then(|| "nope".into()))
            .unwrap_err();
        assert!(error.to_string().contains("STRONGROOM_PUBLIC_LISTEN"));
        let mut same = Config::default();
        same.admin.listen = same.public.listen;
        assert!(same.check().unwrap_err().to_string().contains("separate"));
        let mut never_signed = Config::default();
        never_signed.audit.checkpoint_every_events = 0;
        assert!(
            never_signed
                .check()
                .unwrap_err()
                .to_string()
                .contains("audit.checkpoint_every_events")
        );
        let mut rarely = Config::default();
        rarely.audit.verify_every_hours = 24 * 7 + 1;
        assert!(
            rarely
                .check()
                .unwrap_err()
                .to_string()
                .contains("audit.verify_every_hours")
        );
    }
}
