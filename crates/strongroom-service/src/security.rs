use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, OnceLock, Weak};

/// Kinds of security event. Each is logged (without secrets), counted for `/metrics`, and
/// recorded in the audit trail of the tenant it concerns (or the control plane's), where the
/// tenant's admins and the operators list them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SecurityEventKind {
    /// A valid token of one tenant was used on another tenant's path.
    CrossTenantProbe,
    /// A bearer token that matches nothing was presented.
    UnknownToken,
    /// A token lacked the scope a route needs.
    ScopeDenied,
    /// Stored data failed its integrity check.
    IntegrityFailure,
    /// Sign-ins to an account were slowed down after failures.
    LoginThrottled,
    /// An account locked after too many consecutive failed sign-ins.
    AccountLocked,
    /// An address was blocked after failing sign-ins across accounts.
    AddressBlocked,
    /// A single sign-on answer was refused (bad ID token, domain not allowed).
    SsoRejected,
    /// An operator was given break-glass access to a tenant's data.
    SupportAccessGranted,
    /// A wrong second-factor code after the right password: the password may be known to
    /// someone else.
    SecondFactorFailed,
    /// A locked-out user signed in with password and a recovery code.
    AccountRecovered,
    /// A request was refused by a tenant's firewall.
    FirewallDenied,
    /// A tenant's firewall rules changed.
    FirewallChanged,
    /// A caller passed a download threshold.
    DownloadLimitReached,
    /// An audit chain failed verification.
    AuditVerifyFailed,
}

impl SecurityEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityEventKind::CrossTenantProbe => "cross_tenant_probe",
            SecurityEventKind::UnknownToken => "unknown_token",
            SecurityEventKind::ScopeDenied => "scope_denied",
            SecurityEventKind::IntegrityFailure => "integrity_failure",
            SecurityEventKind::LoginThrottled => "login_throttled",
            SecurityEventKind::AccountLocked => "account_locked",
            SecurityEventKind::AddressBlocked => "address_blocked",
            SecurityEventKind::SsoRejected => "sso_rejected",
            SecurityEventKind::SupportAccessGranted => "support_access_granted",
            SecurityEventKind::SecondFactorFailed => "second_factor_failed",
            SecurityEventKind::AccountRecovered => "account_recovered",
            SecurityEventKind::FirewallDenied => "firewall_denied",
            SecurityEventKind::FirewallChanged => "firewall_changed",
            SecurityEventKind::DownloadLimitReached => "download_limit_reached",
            SecurityEventKind::AuditVerifyFailed => "audit_verify_failed",
        }
    }
}

/// The request a security event arises in, for its audit event: where it came from and its
/// id, so an admin sees them without reading the detail's sentence.
#[derive(Debug, Clone, Default)]
pub struct RequestOrigin {
    pub address: Option<std::net::IpAddr>,
    pub user_agent: Option<String>,
    pub request_id: String,
    pub listener: &'static str,
}

tokio::task_local! {
    static ORIGIN: RequestOrigin;
}

impl RequestOrigin {
    /// Runs `work` (a request) with this origin for the security events it raises.
    pub async fn scope<F: std::future::Future>(self, work: F) -> F::Output {
        ORIGIN.scope(self, work).await
    }

    pub(crate) fn current() -> Option<Self> {
        ORIGIN.try_with(Clone::clone).ok()
    }

    /// Runs `work` on a blocking thread as part of the request `origin` came from (task-locals
    /// stay behind on the request's task): its security events name that request.
    pub(crate) fn on_this_thread<R>(origin: Option<Self>, work: impl FnOnce() -> R) -> R {
        match origin {
            Some(origin) => ORIGIN.sync_scope(origin, work),
            None => work(),
        }
    }
}

#[derive(Default)]
pub struct SecurityEvents {
    counts: Mutex<BTreeMap<SecurityEventKind, u64>>,
    /// The platform whose audit trail records the events.
    platform: OnceLock<Weak<crate::Platform>>,
    /// Background recordings not finished yet, and their waiters.
    pending: std::sync::Arc<Pending>,
}

/// Background recordings not finished yet (`recording`), and the waiters woken when none are.
#[derive(Default)]
struct Pending {
    recording: std::sync::atomic::AtomicU64,
    all_recorded: tokio::sync::Notify,
}

/// Counts one background recording until dropped: when its task ends, panics or is cancelled.
struct PendingGuard(std::sync::Arc<Pending>);

impl Drop for PendingGuard {
    fn drop(&mut self) {
        if self.0.recording.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.all_recorded.notify_waiters();
        }
    }
}

impl SecurityEvents {
    /// Logs and counts an event. `tenant_id` is the tenant the event concerns, `detail` a
    /// sentence without secrets.
    pub fn raise(&self, kind: SecurityEventKind, tenant_id: Option<&str>, detail: &str) {
        tracing::warn!(target: "security", kind = kind.as_str(), tenant_id = tenant_id.unwrap_or("-"), detail, "security event");
        if let Ok(mut counts) = self.counts.lock() {
            *counts.entry(kind).or_default() += 1;
        }
        // Into the trail in the background: the request that raised it has its own event,
        // written before its answer leaves.
        if let Some(platform) = self.platform.get().and_then(Weak::upgrade) {
            let (tenant_id, detail) = (tenant_id.map(str::to_owned), detail.to_owned());
            let origin = RequestOrigin::current();
            self.in_background(async move {
                if let Err(error) = platform
                    .record_security_event(kind, tenant_id, detail, origin)
                    .await
                {
                    tracing::error!(%error, kind = kind.as_str(), "a security event could not be recorded in the audit trail");
                }
            });
        }
    }

    /// Runs `work` in the background, counted until it finishes, so `recorded()` waits for it
    /// too. Answers false, and runs nothing, outside a runtime.
    pub(crate) fn in_background(
        &self,
        work: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> bool {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return false;
        };
        self.pending.recording.fetch_add(1, Ordering::SeqCst);
        let guard = PendingGuard(self.pending.clone());
        runtime.spawn(async move {
            let _counted = guard;
            work.await;
        });
        true
    }

    /// Returns once every event raised so far is recorded in the trail (or failed to be), and
    /// every other background recording (`in_background`) has finished: at shutdown before the
    /// last checkpoint, and in tests before they read the trail.
    pub async fn recorded(&self) {
        loop {
            let woken = self.pending.all_recorded.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if self.pending.recording.load(Ordering::SeqCst) == 0 {
                return;
            }
            woken.await;
        }
    }

    /// The platform, for work that outlives a borrowed one (a document read on its thread).
    pub(crate) fn platform(&self) -> Weak<crate::Platform> {
        self.platform.get().cloned().unwrap_or_default()
    }

    /// Connects the events to the platform's audit trail.
    pub(crate) fn attach(&self, platform: Weak<crate::Platform>) {
        let _ = self.platform.set(platform);
    }

    pub fn counts(&self) -> Vec<(SecurityEventKind, u64)> {
        self.counts
            .lock()
            .map(|counts| counts.iter().map(|(kind, count)| (*kind, *count)).collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod background_tests {
    use super::*;

    /// A background recording that panics still counts as finished: the shutdown's wait for
    /// recordings must not use up its grace on one that will never end.
    #[tokio::test]
    async fn a_background_recording_that_panics_is_not_waited_for() {
        let events = SecurityEvents::default();
        assert!(events.in_background(async { panic!("a recording failed hard") }));
        assert!(events.in_background(async {}));
        tokio::time::timeout(std::time::Duration::from_secs(10), events.recorded())
            .await
            .expect("recorded() returns once both tasks ended");
    }
}
