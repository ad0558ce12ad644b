//! E-mail for alerts: SMTP with STARTTLS required (lettre on rustls with ring), to the server
//! the operator configures; tenants only name recipients.

use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::path::PathBuf;

/// The operator's SMTP server.
#[derive(Clone)]
pub struct SmtpOptions {
    pub host: String,
    pub port: u16,
    pub from: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// A PEM certificate (or CA) to trust besides the system's, for a private mail server.
    pub ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for SmtpOptions {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SmtpOptions")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("from", &self.from)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Whether mail can be addressed to `email` (already a normalized address): checked when a
/// recipient is saved, because one that cannot be addressed fails the whole message, for every
/// recipient, at each alert.
pub(crate) fn addressable(email: &str) -> bool {
    email.parse::<lettre::Address>().is_ok()
}

/// Sends one plain-text message to `recipients`.
pub(crate) async fn send(
    options: &SmtpOptions,
    recipients: &[String],
    subject: &str,
    body: String,
) -> Result<(), String> {
    let mut message = Message::builder()
        .from(
            options
                .from
                .parse::<Mailbox>()
                .map_err(|error| error.to_string())?,
        )
        .subject(subject)
        .header(ContentType::TEXT_PLAIN);
    for recipient in recipients {
        message = message.to(recipient
            .parse::<Mailbox>()
            .map_err(|error| error.to_string())?);
    }
    let message = message.body(body).map_err(|error| error.to_string())?;
    let mut tls = TlsParameters::builder(options.host.clone());
    if let Some(ca_file) = &options.ca_file {
        let pem = std::fs::read(ca_file)
            .map_err(|error| format!("cannot read {}: {error}", ca_file.display()))?;
        tls = tls
            .add_root_certificate(Certificate::from_pem(&pem).map_err(|error| error.to_string())?);
    }
    let tls = tls.build_rustls().map_err(|error| error.to_string())?;
    let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&options.host)
        .port(options.port)
        .tls(Tls::Required(tls))
        .timeout(Some(std::time::Duration::from_secs(15)));
    if let (Some(username), Some(password)) = (&options.username, &options.password) {
        transport = transport.credentials(Credentials::new(username.clone(), password.clone()));
    }
    transport
        .build()
        .send(message)
        .await
        .map(|_| ())
        .map_err(|error| error.to_string())
}
