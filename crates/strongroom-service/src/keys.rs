//! Key rotation: a new master key re-wraps every tenant key (crash-safe at every step), and a
//! new tenant data-key version seals new writes while a resumable job re-seals old data.

use crate::master_key_file;
use crate::platform::{Platform, blocking, unwrap_tenant_keys};
use crate::{MasterRotation, ServiceError};
use std::sync::Arc;
use strongroom_crypto::{DataKey, MasterKey, WrappedKeyPurpose};
use strongroom_storage::{StoredCollection, StoredRecord, WrappedKeyRow};

const RESEAL_BATCH: u32 = 200;

fn purpose_of(row: &WrappedKeyRow) -> Result<WrappedKeyPurpose, ServiceError> {
    match row.purpose.as_str() {
        "data" => Ok(WrappedKeyPurpose::Data),
        "index" => Ok(WrappedKeyPurpose::BlindIndex),
        other => Err(ServiceError::Internal(format!(
            "unknown key purpose {other:?}"
        ))),
    }
}

impl Platform {
    /// Replaces the master key. Every step leaves a state the server starts from:
    /// 1. the new key is written to `<key>.new` and verified;
    /// 2. every tenant key is wrapped under it too, in one transaction (old wraps stay);
    /// 3. the old key file is copied to a dated, verified backup;
    /// 4. `<key>.new` is renamed over the key file (atomic, directory fsynced);
    /// 5. wraps under the old key are removed.
    ///
    /// A crash before 4 leaves the old key working; after 4, the new one.
    pub async fn rotate_master_key(&self) -> Result<MasterRotation, ServiceError> {
        let _rotation = self.rotation.lock().await;
        let key_file = self.options.key_file.clone().ok_or_else(|| {
            ServiceError::Conflict(
                "the master key came from the environment; rotate it there, or use a key file"
                    .into(),
            )
        })?;
        let old = self.master_key();
        let new = MasterKey::generate()?;
        let control = self.control.clone();
        let stamp = self.clock.now().to_file_stamp();
        let now = self.clock.now().unix_micros();
        let (old_for_job, new_for_job) = (old.clone(), new.clone());
        let (rewrapped_keys, backup_file) = blocking(move || {
            let key_error =
                |error: master_key_file::KeyFileError| ServiceError::Unavailable(error.to_string());
            let staged = master_key_file::sibling(&key_file, "new");
            master_key_file::write_verified(&staged, &new_for_job).map_err(key_error)?;
            let current: Vec<WrappedKeyRow> = control
                .all_wrapped_keys()?
                .into_iter()
                .filter(|row| row.master_key_id == old_for_job.key_id())
                .collect();
            let mut rewrapped = Vec::with_capacity(current.len());
            for row in &current {
                let purpose = purpose_of(row)?;
                let key = old_for_job.unwrap(&row.wrapped, &row.tenant_id, purpose, row.version)?;
                rewrapped.push(WrappedKeyRow {
                    master_key_id: new_for_job.key_id(),
                    wrapped: new_for_job.wrap(&key, &row.tenant_id, purpose, row.version)?,
                    wrapped_at: now,
                    ..row.clone()
                });
            }
            let count = rewrapped.len();
            control.add_wrapped_keys(rewrapped)?;
            crate::operators::rewrap_control_key(
                control.as_ref(),
                &old_for_job,
                &new_for_job,
                now,
            )?;
            let backup = master_key_file::backup(&key_file, &stamp).map_err(key_error)?;
            std::fs::rename(&staged, &key_file).map_err(|error| {
                ServiceError::Unavailable(format!("installing the new key file: {error}"))
            })?;
            Ok((count, backup))
        })
        .await?;
        // The new file is in place: from here on every new wrap must use the new key, whatever
        // happens in the clean-up below.
        *self
            .master
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = new.clone();
        let (control, key_file) = (
            self.control.clone(),
            self.options.key_file.clone().unwrap_or_default(),
        );
        let new_id = new.key_id();
        blocking(move || {
            let key_error =
                |error: master_key_file::KeyFileError| ServiceError::Unavailable(error.to_string());
            let directory = key_file
                .parent()
                .filter(|parent| !parent.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            master_key_file::sync_directory(directory).map_err(key_error)?;
            if master_key_file::read(&key_file)
                .map_err(key_error)?
                .key_id()
                != new_id
            {
                return Err(ServiceError::Unavailable(
                    "the installed key file does not hold the new key".into(),
                ));
            }
            control.remove_wraps_except_master(&new_id)?;
            Ok(())
        })
        .await?;
        tracing::info!(old_master_key_id = %old.key_id(), new_master_key_id = %new.key_id(), rewrapped_keys, "master key rotated");
        Ok(MasterRotation {
            old_master_key_id: old.key_id(),
            new_master_key_id: new.key_id(),
            rewrapped_keys,
            backup_file,
        })
    }

    /// Adds a new data-key version for a tenant; new writes use it at once. Returns the new
    /// version. Old data is re-sealed by [`Platform::reseal_tenant`].
    pub async fn rotate_tenant_key(&self, slug: &str) -> Result<u32, ServiceError> {
        let _rotation = self.rotation.lock().await;
        let runtime = self.tenant(slug).await?;
        let master = self.master_key();
        let version = runtime.keys().keyring.current_version() + 1;
        let now = self.clock.now().unix_micros();
        let row = WrappedKeyRow {
            tenant_id: runtime.id.clone(),
            purpose: WrappedKeyPurpose::Data.as_str().to_owned(),
            version,
            master_key_id: master.key_id(),
            wrapped: master.wrap(
                &DataKey::generate()?,
                &runtime.id,
                WrappedKeyPurpose::Data,
                version,
            )?,
            created_at: now,
            wrapped_at: now,
        };
        let control = self.control.clone();
        let tenant_id = runtime.id.clone();
        let rows = blocking(move || {
            control.add_wrapped_keys(vec![row])?;
            Ok(control.wrapped_keys(&tenant_id)?)
        })
        .await?;
        runtime.replace_keys(unwrap_tenant_keys(&master, &runtime.id, &rows)?);
        tracing::info!(tenant_id = %runtime.id, key_version = version, "tenant data key rotated");
        Ok(version)
    }

    /// Re-seals a tenant's collections, records and documents still under older key versions, in
    /// batches. Resumable: it finds its work by key version, so a restart picks up where it
    /// stopped. Returns how many items were re-sealed.
    pub async fn reseal_tenant(&self, slug: &str) -> Result<u64, ServiceError> {
        let runtime = self.tenant(slug).await?;
        let mut total = 0;
        loop {
            let keys = runtime.keys();
            let (tenant_id, store) = (runtime.id.clone(), runtime.store.clone());
            let (changed, found) = blocking(move || {
                let current = keys.keyring.current_version();
                let (collections, records) = store.sealed_below(current, RESEAL_BATCH)?;
                let found = collections.len() + records.len();
                let mut resealed_collections = Vec::with_capacity(collections.len());
                for collection in collections {
                    let context = crate::sealing::context::collection(&tenant_id, &collection.id);
                    let plaintext = keys.keyring.open(&context, &collection.sealed).map_err(|_| ServiceError::Integrity { what: "a collection definition".into() })?;
                    resealed_collections.push(StoredCollection { sealed: keys.keyring.seal(&context, &plaintext)?, key_version: current, ..collection });
                }
                let mut resealed_records = Vec::with_capacity(records.len());
                for record in records {
                    let context = crate::sealing::context::record(&tenant_id, &record.collection_id, &record.id, record.version);
                    let Ok(plaintext) = keys.keyring.open(&context, &record.sealed_body) else {
                        tracing::warn!(tenant_id = %tenant_id, record_id = %record.id, "skipping a damaged record during re-sealing");
                        continue;
                    };
                    resealed_records.push(StoredRecord { sealed_body: keys.keyring.seal(&context, &plaintext)?, key_version: current, ..record });
                }
                Ok((store.reseal(resealed_collections, resealed_records).wait()?, found))
            })
            .await?;
            total += changed;
            if found < RESEAL_BATCH as usize || changed == 0 {
                total += self.reseal_documents(&runtime).await?;
                tracing::info!(tenant_id = %runtime.id, resealed = total, "re-sealing finished");
                return Ok(total);
            }
        }
    }

    /// Finishes interrupted re-indexing and re-sealing of every tenant; run at start.
    pub async fn resume_interrupted_work(self: &Arc<Self>) {
        let slugs = match self.all_tenant_slugs().await {
            Ok(slugs) => slugs,
            Err(error) => return tracing::warn!(%error, "re-sealing could not list tenants"),
        };
        for slug in slugs {
            if let Err(error) = self.resume_reindexing(&slug).await {
                tracing::warn!(tenant = %slug, %error, "re-indexing stopped; it resumes at the next run");
            }
            if let Err(error) = self.reseal_tenant(&slug).await {
                tracing::warn!(tenant = %slug, %error, "re-sealing stopped; it resumes at the next run");
            }
        }
    }
}
