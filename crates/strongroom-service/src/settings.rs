//! Tenant settings: small JSON documents (the security policy, the access model) sealed with
//! the tenant key, bound to their name, and journaled with every change.

use crate::ServiceError;
use crate::journal::{JournalChange, sealer};
use crate::tenant_context::TenantContext;
use serde::Serialize;
use serde::de::DeserializeOwned;

fn setting_context(tenant_id: &str, name: &str) -> Vec<u8> {
    format!("strongroom/setting/v1\0{tenant_id}\0{name}").into_bytes()
}

/// The setting `name`, or `None` when it was never set.
pub(crate) fn load<T: DeserializeOwned>(
    context: &TenantContext,
    name: &str,
    what: &str,
) -> Result<Option<T>, ServiceError> {
    let Some(sealed) = context.store.setting(name)? else {
        return Ok(None);
    };
    let integrity = || ServiceError::Integrity { what: what.into() };
    let plaintext = context
        .keys
        .keyring
        .open(&setting_context(&context.tenant_id, name), &sealed)
        .map_err(|_| integrity())?;
    serde_json::from_slice(&plaintext)
        .map(Some)
        .map_err(|_| integrity())
}

/// Stores the setting with its journal entry in one transaction.
pub(crate) async fn store<T: Serialize>(
    context: &TenantContext,
    name: &str,
    value: &T,
    change: JournalChange,
) -> Result<(), ServiceError> {
    let plaintext =
        serde_json::to_vec(value).map_err(|error| ServiceError::Internal(error.to_string()))?;
    let sealed = context
        .keys
        .keyring
        .seal(&setting_context(&context.tenant_id, name), &plaintext)?;
    context
        .store
        .put_setting(
            name,
            sealed,
            sealer(&context.tenant_id, &context.keys, change),
        )
        .await?;
    Ok(())
}
