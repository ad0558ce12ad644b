//! Delivery of security events to a tenant's own channels (T1/A8 alerts): webhooks its admins
//! (policy:manage) configure. Each delivery is a JSON POST signed with HMAC-SHA-256 under the
//! webhook's secret (`Strongroom-Signature: t=<unix seconds>,v1=<hex of HMAC("t.body")>`),
//! retried with growing waits, and recorded in the tenant's audit trail (`alert.delivery`). E-mail goes to the recipients
//! over the operator's SMTP server (`email.rs`), likewise retried and recorded.

use crate::audit::{AuditActor, AuditRecord};
use crate::journal::JournalChange;
use crate::platform::Platform;
use crate::tenant_context::TenantContext;
use crate::tenants::TokenPrincipal;
use crate::users::invalid;
use crate::{SecurityEventKind, ServiceError};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use strongroom_domain::Permission;

const SETTING: &str = "alert-channels";

/// At most one alert per tenant and kind a minute: a burst (a scan refused by the firewall,
/// say) becomes one delivery that counts the rest, not a flood of requests and mails that an
/// outsider could set off. Every event stays in the audit trail.
const ALERT_INTERVAL_MICROS: i64 = 60 * 1_000_000;

/// When each tenant last got an alert of each kind, and what was held back since.
#[derive(Default)]
pub(crate) struct AlertWindows(
    std::sync::Mutex<std::collections::BTreeMap<(String, SecurityEventKind), AlertWindow>>,
);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct AlertWindow {
    last_sent: i64,
    held: u64,
    /// The audit sequence of the last event held back.
    last_held_sequence: u64,
}

/// Events of one kind held back in a window that has passed with no alert to count them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeldBackAlerts {
    pub tenant_id: String,
    pub kind: SecurityEventKind,
    pub count: u64,
    pub last_sequence: u64,
}

impl AlertWindows {
    /// The windows; a panic elsewhere while they were held leaves them usable.
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<
        '_,
        std::collections::BTreeMap<(String, SecurityEventKind), AlertWindow>,
    > {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How many of the same were held back since the last alert, if this one (audit sequence
    /// `sequence`) goes out now.
    fn admit(
        &self,
        tenant_id: &str,
        kind: SecurityEventKind,
        now: i64,
        sequence: u64,
    ) -> Option<u64> {
        let mut windows = self.lock();
        match windows.get_mut(&(tenant_id.to_owned(), kind)) {
            Some(window) if now - window.last_sent < ALERT_INTERVAL_MICROS => {
                window.held += 1;
                // Events are recorded by tasks of their own, so they may come out of order.
                window.last_held_sequence = window.last_held_sequence.max(sequence);
                None
            }
            Some(window) => {
                window.last_sent = now;
                Some(std::mem::take(&mut window.held))
            }
            None => {
                let window = AlertWindow {
                    last_sent: now,
                    held: 0,
                    last_held_sequence: 0,
                };
                windows.insert((tenant_id.to_owned(), kind), window);
                Some(0)
            }
        }
    }

    /// The windows that passed with events held back, taken as alerted now, so a burst that
    /// ends is still reported once its minute is over. Windows that passed quietly are
    /// forgotten.
    fn due(&self, now: i64) -> Vec<HeldBackAlerts> {
        self.take_held(now, |window| {
            now - window.last_sent >= ALERT_INTERVAL_MICROS
        })
    }

    /// Every window with events held back, whether its minute is over or not: at shutdown
    /// no minute tick is left to report them.
    fn every_held(&self, now: i64) -> Vec<HeldBackAlerts> {
        self.take_held(now, |_| true)
    }

    /// The windows `take` picks that hold events back, taken as alerted at `now`; picked
    /// windows that hold nothing back are forgotten.
    fn take_held(&self, now: i64, take: impl Fn(&AlertWindow) -> bool) -> Vec<HeldBackAlerts> {
        let mut windows = self.lock();
        let mut taken = Vec::new();
        windows.retain(|(tenant_id, kind), window| {
            if !take(window) {
                return true;
            }
            if window.held == 0 {
                return false;
            }
            taken.push(HeldBackAlerts {
                tenant_id: tenant_id.clone(),
                kind: *kind,
                count: std::mem::take(&mut window.held),
                last_sequence: window.last_held_sequence,
            });
            window.last_sent = now;
            true
        });
        taken
    }

    /// Puts back what [`AlertWindows::due`] took when its alert could not be sent, so the
    /// next alert of the kind counts it.
    fn give_back(&self, held: &HeldBackAlerts) {
        let mut windows = self.lock();
        if let Some(window) = windows.get_mut(&(held.tenant_id.clone(), held.kind)) {
            window.held += held.count;
            window.last_held_sequence = window.last_held_sequence.max(held.last_sequence);
        }
    }
}

/// A webhook URL as the trail shows it: scheme, host and port. Paths and queries often carry
/// a secret of their own (chat services' incoming-webhook URLs do).
pub fn shown_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(parsed) => {
            let host = parsed.host_str().unwrap_or("-");
            match parsed.port() {
                Some(port) => format!("{}://{host}:{port}/…", parsed.scheme()),
                None => format!("{}://{host}/…", parsed.scheme()),
            }
        }
        Err(_) => "-".into(),
    }
}
const WEBHOOKS_MAX: usize = 4;
const SECRET_LENGTH: std::ops::RangeInclusive<usize> = 16..=256;
/// Waits before the second to sixth attempt.
const RETRY_WAITS: [Duration; 5] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
    Duration::from_secs(16),
];

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    pub url: String,
    /// Signs deliveries; stored sealed, never shown again.
    pub secret: String,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Webhook")
            .field("url", &shown_url(&self.url))
            .field("secret", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AlertChannels {
    pub webhooks: Vec<Webhook>,
    /// Addresses that get an e-mail for every security event.
    pub emails: Vec<String>,
}

const EMAILS_MAX: usize = 10;

pub(crate) fn load(context: &TenantContext) -> Result<AlertChannels, ServiceError> {
    Ok(crate::settings::load(context, SETTING, "the alert channels")?.unwrap_or_default())
}

pub(crate) async fn store(
    context: &TenantContext,
    channels: &AlertChannels,
) -> Result<(), ServiceError> {
    let change = JournalChange::AlertChannels {
        channels: channels.clone(),
    };
    crate::settings::store(context, SETTING, channels, change).await
}

impl Platform {
    /// The tenant's webhook addresses and e-mail recipients (policy:manage); secrets are not
    /// shown.
    pub async fn alert_channels(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
    ) -> Result<(Vec<String>, Vec<String>), ServiceError> {
        let (runtime, _) = self
            .authorize_user(principal, slug, Permission::PolicyManage)
            .await?;
        let context = TenantContext::of(&runtime);
        let channels = self.observe(&context, load(&context))?;
        Ok((
            channels
                .webhooks
                .into_iter()
                .map(|webhook| webhook.url)
                .collect(),
            channels.emails,
        ))
    }

    /// Replaces the tenant's webhooks and e-mail recipients (policy:manage).
    pub async fn set_alert_channels(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
        webhooks: Vec<Webhook>,
        emails: Vec<String>,
    ) -> Result<(Vec<String>, Vec<String>), ServiceError> {
        let (runtime, _) = self
            .authorize_user(principal, slug, Permission::PolicyManage)
            .await?;
        if webhooks.len() > WEBHOOKS_MAX {
            return Err(invalid(
                "webhooks",
                format!("at most {WEBHOOKS_MAX} webhooks"),
            ));
        }
        for webhook in &webhooks {
            crate::sso::check_issuer(&webhook.url, self.options.outbound_allow_private_networks)
                .map_err(|_| {
                    invalid(
                        "webhooks.url",
                        "must be an https URL such as https://alerts.example.com/strongroom, without credentials, a query or a fragment".into(),
                    )
                })?;
            let private = reqwest::Url::parse(&webhook.url)
                .is_ok_and(|url| crate::outbound::names_private_address(&url));
            if private && !self.options.outbound_allow_private_networks {
                return Err(invalid(
                    "webhooks.url",
                    "names a private address; this server sends alerts to public addresses only \
                     (the operator's outbound.allow_private_networks)"
                        .into(),
                ));
            }
            if !SECRET_LENGTH.contains(&webhook.secret.chars().count()) {
                return Err(invalid(
                    "webhooks.secret",
                    format!(
                        "use {} to {} characters",
                        SECRET_LENGTH.start(),
                        SECRET_LENGTH.end()
                    ),
                ));
            }
        }
        if emails.len() > EMAILS_MAX {
            return Err(invalid("emails", format!("at most {EMAILS_MAX} addresses")));
        }
        if !emails.is_empty() && self.options.smtp.is_none() {
            return Err(invalid(
                "emails",
                "this server has no mail server configured; ask the operator, or use a webhook"
                    .into(),
            ));
        }
        let emails = emails
            .iter()
            .map(|email| {
                let email = crate::users::normalize_email(email)?;
                match crate::email::addressable(&email) {
                    true => Ok(email),
                    false => Err(invalid(
                        "emails",
                        format!("{email:?} is not an address mail can be sent to"),
                    )),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let channels = AlertChannels { webhooks, emails };
        store(&TenantContext::of(&runtime), &channels).await?;
        Ok((
            channels
                .webhooks
                .into_iter()
                .map(|webhook| webhook.url)
                .collect(),
            channels.emails,
        ))
    }

    /// Sends a tenant's security event to its webhooks, each with retries, and records every
    /// delivery's outcome in the tenant's trail.
    pub(crate) async fn deliver_alert(
        &self,
        runtime: &crate::sealing::TenantRuntime,
        kind: SecurityEventKind,
        detail: &str,
        sequence: u64,
    ) -> Result<(), ServiceError> {
        let Some(held) =
            self.alert_windows
                .admit(&runtime.id, kind, self.clock.now().unix_micros(), sequence)
        else {
            return Ok(());
        };
        let detail = match held {
            0 => detail.to_owned(),
            held => format!(
                "{detail} ({held} more of this kind in the last minute were not sent on their own; all are in the audit trail)"
            ),
        };
        let sent = self.send_alert(runtime, kind, &detail, sequence).await;
        if sent.is_err() && held > 0 {
            // Counted again by the next alert rather than lost with this one.
            self.alert_windows.give_back(&HeldBackAlerts {
                tenant_id: runtime.id.clone(),
                kind,
                count: held,
                last_sequence: sequence,
            });
        }
        sent
    }

    /// Alerts for bursts whose minute is over with events held back and no later alert to
    /// count them: one per tenant and kind, naming how many and the last one's sequence. Run
    /// every minute by the server; answers how many went out.
    pub async fn send_held_back_alerts(&self) -> usize {
        let due = self.alert_windows.due(self.clock.now().unix_micros());
        self.send_held_back(due).await
    }

    /// Every alert still held back, its minute over or not: the server calls this at shutdown,
    /// when no minute tick is left to send them. Answers how many went out.
    pub async fn send_every_held_back_alert(&self) -> usize {
        let held = self
            .alert_windows
            .every_held(self.clock.now().unix_micros());
        self.send_held_back(held).await
    }

    /// Sends every summary at once: one tenant's webhook that hangs or retries holds back no
    /// other tenant's (nor, at shutdown, uses up the grace the others need).
    async fn send_held_back(&self, due: Vec<HeldBackAlerts>) -> usize {
        let sending = due.into_iter().map(|held| async move {
            let sent = self.send_one_held_back(&held).await;
            if let Err(error) = &sent {
                // A failed delivery is recorded and is no error here: this is the alert not
                // reaching the channels at all (the tenant or its settings unreadable, say),
                // or a record that could not be written; better counted twice than lost.
                tracing::error!(%error, kind = held.kind.as_str(), "held-back alerts could not be sent");
                self.alert_windows.give_back(&held);
            }
            sent.unwrap_or(false)
        });
        futures_util::future::join_all(sending)
            .await
            .into_iter()
            .filter(|sent| *sent)
            .count()
    }

    /// One summary; `false` when its tenant is gone (nobody is left to alert).
    async fn send_one_held_back(&self, held: &HeldBackAlerts) -> Result<bool, ServiceError> {
        let Some(runtime) = self.tenant_by_id(&held.tenant_id).await? else {
            return Ok(false);
        };
        let detail = format!(
            "{} more {} events in the last minute were not sent on their own (the last is audit sequence {}); all are in the audit trail",
            held.count,
            held.kind.as_str(),
            held.last_sequence
        );
        self.send_alert(&runtime, held.kind, &detail, held.last_sequence)
            .await?;
        Ok(true)
    }

    /// Sends one alert to every channel of the tenant, each with retries, and records each
    /// delivery in the tenant's trail.
    async fn send_alert(
        &self,
        runtime: &crate::sealing::TenantRuntime,
        kind: SecurityEventKind,
        detail: &str,
        sequence: u64,
    ) -> Result<(), ServiceError> {
        let context = TenantContext::of(runtime);
        let channels = self.observe(&context, load(&context))?;
        let body = serde_json::to_vec(&serde_json::json!({
            "tenant": runtime.slug,
            "kind": kind.as_str(),
            "detail": detail,
            "at": self.clock.now().to_rfc3339(),
            "audit_sequence": sequence,
        }))
        .map_err(|error| ServiceError::Internal(error.to_string()))?;
        // Every channel at once: one that fails, retries or hangs (even failing to record its
        // outcome) holds back none of the others.
        let email = async {
            match (channels.emails.is_empty(), &self.options.smtp) {
                (false, Some(smtp)) => {
                    self.email_alert(
                        smtp,
                        &runtime.slug,
                        &channels.emails,
                        kind,
                        detail,
                        sequence,
                    )
                    .await
                }
                _ => Ok(()),
            }
        };
        let webhooks = futures_util::future::join_all(
            channels
                .webhooks
                .iter()
                .map(|webhook| self.webhook_alert(&runtime.slug, webhook, kind, &body, sequence)),
        );
        let (email, webhooks) = futures_util::future::join(email, webhooks).await;
        std::iter::once(email)
            .chain(webhooks)
            .find_map(Result::err)
            .map_or(Ok(()), Err)
    }

    /// Posts a security event to one webhook, signed, with retries; records the outcome.
    async fn webhook_alert(
        &self,
        slug: &str,
        webhook: &Webhook,
        kind: SecurityEventKind,
        body: &[u8],
        sequence: u64,
    ) -> Result<(), ServiceError> {
        let attempt = || async {
            let timestamp = (self.clock.now().unix_micros() / 1_000_000).to_string();
            let mut signed = timestamp.clone().into_bytes();
            signed.push(b'.');
            signed.extend_from_slice(body);
            let signature = hex::encode(strongroom_crypto::hmac_sha256(
                webhook.secret.as_bytes(),
                &signed,
            ));
            let headers = [
                (
                    "strongroom-signature",
                    format!("t={timestamp},v1={signature}"),
                ),
                ("strongroom-event", format!("security.{}", kind.as_str())),
            ];
            match self
                .outbound
                .post_json(&webhook.url, &headers, body.to_vec())
                .await
            {
                Ok(status) if (200..300).contains(&status) => Ok(()),
                Ok(status) => Err(format!("status {status}")),
                Err(error) => Err(error.to_string()),
            }
        };
        let delivery = with_retries(attempt).await;
        self.record_delivery(
            slug,
            "POST",
            &delivery,
            serde_json::json!({
                "channel": "webhook",
                "url": shown_url(&webhook.url),
                "kind": kind.as_str(),
                "attempts": delivery.attempts,
                "audit_sequence": sequence,
            }),
        )
        .await
    }

    /// Mails a security event to the tenant's recipients, with retries; records the outcome.
    async fn email_alert(
        &self,
        smtp: &crate::email::SmtpOptions,
        slug: &str,
        recipients: &[String],
        kind: SecurityEventKind,
        detail: &str,
        sequence: u64,
    ) -> Result<(), ServiceError> {
        let subject = format!("[Strongroom] security event in {slug}: {}", kind.as_str());
        let body = format!(
            "A security event was recorded for organisation {slug}.\n\nKind: {}\nWhen: {}\nDetail: {detail}\nAudit trail sequence: {sequence}\n",
            kind.as_str(),
            self.clock.now().to_rfc3339()
        );
        let delivery =
            with_retries(|| crate::email::send(smtp, recipients, &subject, body.clone())).await;
        self.record_delivery(
            slug,
            "SMTP",
            &delivery,
            serde_json::json!({
                "channel": "email",
                "recipients": recipients.len(),
                "kind": kind.as_str(),
                "attempts": delivery.attempts,
                "audit_sequence": sequence,
            }),
        )
        .await
    }

    /// One channel's delivery as an `alert.delivery` event of the tenant's trail.
    async fn record_delivery(
        &self,
        slug: &str,
        method: &str,
        delivery: &Delivery,
        details: serde_json::Value,
    ) -> Result<(), ServiceError> {
        let record = AuditRecord {
            tenant_slug: Some(slug.to_owned()),
            phase: "event",
            actor: AuditActor::Anonymous,
            listener: "-",
            method: method.into(),
            route: "-".into(),
            action: "alert.delivery".into(),
            outcome: if delivery.failure.is_none() {
                "allowed"
            } else {
                "error"
            },
            reason: delivery
                .failure
                .as_ref()
                .map(|last| last.chars().take(200).collect()),
            details: Some(details),
            ..AuditRecord::default()
        };
        self.audit(record).await?;
        Ok(())
    }
}

/// How one channel's delivery went: the attempts made, and the last failure if none succeeded.
struct Delivery {
    attempts: usize,
    failure: Option<String>,
}

/// Runs `attempt` until it succeeds or every wait of [`RETRY_WAITS`] has passed.
async fn with_retries<F, Fut>(mut attempt: F) -> Delivery
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let mut attempts = 0;
    loop {
        attempts += 1;
        let failure = match attempt().await {
            Ok(()) => {
                return Delivery {
                    attempts,
                    failure: None,
                };
            }
            Err(failure) => failure,
        };
        match RETRY_WAITS.get(attempts - 1) {
            Some(wait) => tokio::time::sleep(*wait).await,
            None => {
                return Delivery {
                    attempts,
                    failure: Some(failure),
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{ALERT_INTERVAL_MICROS, AlertWindows, HeldBackAlerts};
    use crate::SecurityEventKind::{FirewallChanged, FirewallDenied};

    #[test]
    fn a_burst_sends_one_alert_a_minute_and_the_next_counts_the_rest() {
        let windows = AlertWindows::default();
        assert_eq!(windows.admit("t1", FirewallDenied, 0, 10), Some(0));
        assert_eq!(windows.admit("t1", FirewallDenied, 1, 11), None);
        assert_eq!(windows.admit("t1", FirewallDenied, 2, 12), None);
        assert_eq!(
            windows.admit("t1", FirewallChanged, 3, 13),
            Some(0),
            "each kind has its own window"
        );
        assert_eq!(
            windows.admit("t2", FirewallDenied, 4, 14),
            Some(0),
            "and each tenant"
        );
        assert_eq!(
            windows.admit("t1", FirewallDenied, ALERT_INTERVAL_MICROS, 15),
            Some(2),
            "a minute on, the next goes out and says two were held back"
        );
        assert_eq!(
            windows.admit("t1", FirewallDenied, ALERT_INTERVAL_MICROS + 1, 16),
            None
        );
    }

    #[test]
    fn a_burst_that_ends_is_reported_once_its_minute_is_over() {
        let windows = AlertWindows::default();
        windows.admit("t1", FirewallDenied, 0, 10);
        windows.admit("t1", FirewallDenied, 1, 11);
        windows.admit("t1", FirewallDenied, 2, 12);
        windows.admit("t2", FirewallDenied, 3, 13);
        assert_eq!(
            windows.due(ALERT_INTERVAL_MICROS - 1),
            Vec::new(),
            "not before"
        );
        assert_eq!(
            windows.due(ALERT_INTERVAL_MICROS),
            vec![HeldBackAlerts {
                tenant_id: "t1".into(),
                kind: FirewallDenied,
                count: 2,
                last_sequence: 12,
            }],
            "t2 held nothing back"
        );
        assert_eq!(
            windows.due(ALERT_INTERVAL_MICROS + 1),
            Vec::new(),
            "reported once"
        );
        assert_eq!(
            windows.admit("t1", FirewallDenied, ALERT_INTERVAL_MICROS + 2, 17),
            None,
            "the summary opened a new window"
        );
        assert_eq!(
            windows.admit("t2", FirewallDenied, ALERT_INTERVAL_MICROS + 3, 18),
            Some(0),
            "a quiet window is forgotten"
        );
    }

    #[test]
    fn at_shutdown_every_window_holding_events_back_is_taken_within_its_minute() {
        let windows = AlertWindows::default();
        windows.admit("t1", FirewallDenied, 0, 10);
        windows.admit("t1", FirewallDenied, 1, 11);
        windows.admit("t2", FirewallDenied, 2, 12);
        assert_eq!(
            windows.every_held(3),
            vec![HeldBackAlerts {
                tenant_id: "t1".into(),
                kind: FirewallDenied,
                count: 1,
                last_sequence: 11,
            }],
            "its minute is not over, and t2 held nothing back"
        );
        assert_eq!(windows.every_held(4), Vec::new(), "taken once");
    }

    #[test]
    fn a_summary_that_could_not_be_sent_is_counted_by_the_next() {
        let windows = AlertWindows::default();
        windows.admit("t1", FirewallDenied, 0, 10);
        windows.admit("t1", FirewallDenied, 1, 12);
        windows.admit("t1", FirewallDenied, 2, 11);
        let due = windows.due(ALERT_INTERVAL_MICROS);
        assert_eq!(
            due[0].last_sequence, 12,
            "the last recorded, whatever order they came in"
        );
        windows.give_back(&due[0]);
        assert_eq!(
            windows.admit("t1", FirewallDenied, 2 * ALERT_INTERVAL_MICROS, 20),
            Some(2),
            "the next alert counts what the summary could not send"
        );
    }
}
