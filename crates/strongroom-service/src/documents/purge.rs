//! The purge: removes versions and trash entries past retention, then blobs nothing points
//! to, then files no registration names and abandoned partial uploads. Every step is safe to
//! interrupt: a rerun finishes what a crash left.

use super::day_micros;
use crate::ServiceError;
use crate::journal::{JournalChange, sealer};
use crate::platform::Platform;
use crate::tenant_context::TenantContext;
use std::collections::HashSet;

const PURGE_BATCH: u32 = 500;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurgeReport {
    pub versions_removed: u64,
    pub documents_removed: u64,
    pub blobs_removed: u64,
    pub uploads_removed: u64,
}

impl Platform {
    /// Applies document retention to one tenant now (by this platform's clock).
    pub async fn purge_documents(&self, slug: &str) -> Result<PurgeReport, ServiceError> {
        let runtime = self.tenant(slug).await?;
        let context = TenantContext::of(&runtime);
        let limits = &self.options.documents;
        let now = self.clock.now().unix_micros();
        let mut report = PurgeReport::default();
        loop {
            let plan = context.store.purge_candidates(
                now - day_micros(limits.version_retention_days),
                now - day_micros(limits.trash_retention_days),
                PURGE_BATCH,
            )?;
            if plan.is_empty() {
                break;
            }
            report.versions_removed += plan.versions.len() as u64;
            report.documents_removed += plan.documents.len() as u64;
            let change = JournalChange::DocumentPurge {
                versions: plan.versions.clone(),
                documents: plan.documents.clone(),
                versions_before: plan.versions_before,
                trash_before: plan.trash_before,
                at: now,
            };
            context
                .store
                .purge(plan, sealer(&context.tenant_id, &context.keys, change))
                .await?;
        }
        let _blob_lock = context.blob_lock.lock().await;
        for blob_id in context.store.unreferenced_blobs()? {
            // File first, registration second: a crash in between leaves a registration
            // without a file, which the next run forgets; never a reference without content.
            context.blobs.remove(&blob_id)?;
            if context.store.forget_blob(&blob_id).await? {
                report.blobs_removed += 1;
            }
        }
        let mut registered = HashSet::new();
        for blob_id in context.blobs.list()? {
            if registered.contains(&blob_id) || context.store.blob_registered(&blob_id)? {
                registered.insert(blob_id);
            } else {
                context.blobs.remove(&blob_id)?;
                report.blobs_removed += 1;
            }
        }
        report.uploads_removed = context.blobs.remove_abandoned_uploads()?;
        if report != PurgeReport::default() {
            tracing::info!(tenant_id = %context.tenant_id, ?report, "document purge");
        }
        Ok(report)
    }

    /// Runs the purge for every tenant; errors are logged and retried at the next run.
    pub async fn purge_all_documents(&self) {
        let Ok(slugs) = self.all_tenant_slugs().await else {
            return;
        };
        for slug in slugs {
            if let Err(error) = self.purge_documents(&slug).await {
                tracing::warn!(tenant = %slug, %error, "document purge stopped; it resumes at the next run");
            }
        }
    }
}
