//! How long the audit trail keeps events: per tenant (set by users with `audit:read`, that is
//! owners and auditors; the change is itself audited), and for the control plane by
//! configuration; 400 days unless set. Expiry keeps the chain verifiable: before events are
//! removed, the head of the last one is signed, and verification starts from that checkpoint.

use crate::audit::CONTROL_CHAIN;
use crate::journal::JournalChange;
use crate::platform::{Platform, blocking};
use crate::tenant_context::TenantContext;
use crate::tenants::TokenPrincipal;
use crate::users::invalid;
use crate::{SecurityEventKind, ServiceError};
use serde::{Deserialize, Serialize};
use strongroom_domain::Permission;
use strongroom_storage::AuditCheckpointRow;

const SETTING: &str = "audit-retention";
pub const RETENTION_DAYS_DEFAULT: u32 = 400;
const RETENTION_DAYS: std::ops::RangeInclusive<u32> = 30..=3650;
const DAY_MICROS: i64 = 24 * 3600 * 1_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRetention {
    pub days: u32,
}

impl Default for AuditRetention {
    fn default() -> Self {
        AuditRetention {
            days: RETENTION_DAYS_DEFAULT,
        }
    }
}

pub(crate) fn load(context: &TenantContext) -> Result<AuditRetention, ServiceError> {
    Ok(crate::settings::load(context, SETTING, "the audit retention")?.unwrap_or_default())
}

pub(crate) async fn store(
    context: &TenantContext,
    retention: &AuditRetention,
) -> Result<(), ServiceError> {
    let change = JournalChange::AuditRetention {
        days: retention.days,
    };
    crate::settings::store(context, SETTING, retention, change).await
}

impl Platform {
    pub async fn audit_retention(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
    ) -> Result<AuditRetention, ServiceError> {
        let (runtime, _) = self
            .authorize_user(principal, slug, Permission::AuditRead)
            .await?;
        let context = TenantContext::of(&runtime);
        self.observe(&context, load(&context))
    }

    pub async fn set_audit_retention(
        &self,
        principal: &TokenPrincipal,
        slug: &str,
        days: u32,
    ) -> Result<AuditRetention, ServiceError> {
        let (runtime, _) = self
            .authorize_user(principal, slug, Permission::AuditRead)
            .await?;
        if !RETENTION_DAYS.contains(&days) {
            return Err(invalid(
                "days",
                format!(
                    "from {} to {} days",
                    RETENTION_DAYS.start(),
                    RETENTION_DAYS.end()
                ),
            ));
        }
        let retention = AuditRetention { days };
        store(&TenantContext::of(&runtime), &retention).await?;
        Ok(retention)
    }

    /// Removes events older than each chain's retention, after signing the head of the last
    /// one removed; also the daily files of those days. Answers how many events went. A tenant
    /// whose retention cannot be read, or a chain that cannot be expired, is logged and
    /// skipped: it holds back no other chain's expiry.
    pub async fn expire_audit(&self) -> Result<u64, ServiceError> {
        let mut chains = vec![(
            CONTROL_CHAIN.to_owned(),
            CONTROL_CHAIN.to_owned(),
            self.options.audit_retention_days,
        )];
        for slug in self.all_tenant_slugs().await? {
            let days = async {
                let runtime = self.tenant(&slug).await?;
                let context = TenantContext::of(&runtime);
                let days = self.observe(&context, load(&context))?.days;
                Ok::<_, ServiceError>((runtime.id.clone(), days))
            };
            match days.await {
                Ok((chain, days)) => chains.push((chain, slug, days)),
                Err(error) => tracing::error!(
                    %error,
                    tenant = %slug,
                    "the tenant's audit retention could not be read; its events are not expired this time"
                ),
            }
        }
        let now = self.clock.now().unix_micros();
        let mut removed = 0;
        for (chain, name, days) in chains {
            // Not while a verification reads the events this would remove; nor waiting for it
            // (a long check would hold back the document purges of this loop): the chain's
            // turn comes again next round.
            let Ok(verification_done) = self.audit_maintenance.try_lock() else {
                tracing::debug!(chain = %name, "audit expiry waits for a verification of the chain");
                continue;
            };
            let expired = self.expire_chain(&chain, &name, days, now).await;
            drop(verification_done);
            match expired {
                Ok(count) => removed += count,
                Err(error) => tracing::error!(
                    %error,
                    chain = %name,
                    "expired audit events of this chain could not be removed"
                ),
            }
        }
        if removed > 0 {
            tracing::info!(removed, "expired audit events");
        }
        Ok(removed)
    }

    /// Expires one chain (`name` is its slug, or `control`): see [`Platform::expire_audit`].
    async fn expire_chain(
        &self,
        chain: &str,
        name: &str,
        days: u32,
        now: i64,
    ) -> Result<u64, ServiceError> {
        let chain = chain.to_owned();
        let mut removed = 0;
        let cutoff = now - i64::from(days) * DAY_MICROS;
        let audit = self.audit_store.clone();
        let chain_id = chain.clone();
        let due = blocking(move || Ok(audit.last_event_before(&chain_id, cutoff)?)).await?;
        if let Some((sequence, head)) = due {
            // Nothing is signed or removed that does not verify: stored times moved back
            // to make young events look due, or events altered in the range, would be
            // erased with it. The day files stay too, as evidence.
            let report = self.verify_chain(&chain, Some(sequence)).await?;
            if let Some(problem) = report.problem {
                self.security.raise(
                    SecurityEventKind::AuditVerifyFailed,
                    (chain != CONTROL_CHAIN).then_some(chain.as_str()),
                    &format!(
                        "expiry of the audit chain {} is held back: it is broken at {}: {problem}",
                        report.chain,
                        crate::audit::describe_break(report.broken_at)
                    ),
                );
                return Ok(0);
            }
            let signature = self
                .audit_signing_key
                .sign(&crate::audit::checkpoint_message(
                    &chain, sequence, &head, true,
                ));
            let mark = AuditCheckpointRow {
                chain: chain.clone(),
                sequence,
                head,
                signature: signature.to_vec(),
                at: now,
                expiry: true,
            };
            let audit = self.audit_store.clone();
            let stored = mark.clone();
            removed += blocking(move || {
                let chain_id = stored.chain.clone();
                audit.add_checkpoint(stored)?;
                Ok(audit.remove_events_through(&chain_id, sequence)?)
            })
            .await?;
            self.log_checkpoint(&mark).await;
        }
        if let Some(directory) = &self.options.audit_log_dir {
            let oldest_kept = crate::audit_log::day_of_time(
                strongroom_domain::Timestamp::from_unix_micros(cutoff),
            );
            remove_files_before(&directory.join(name), &oldest_kept);
        }
        Ok(removed)
    }
}

/// Removes the daily files (`YYYY-MM-DD.jsonl`) of days before `oldest_kept`.
fn remove_files_before(directory: &std::path::Path, oldest_kept: &str) {
    let Ok(entries) = std::fs::read_dir(directory) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if crate::audit_log::day_of(&name).is_some_and(|day| day < oldest_kept) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
