//! The SQLite backend against the storage conformance suite.

use strongroom_storage::conformance;
use strongroom_storage::sqlite::{SqliteControlStore, SqliteTenantStore};
use strongroom_storage::{ControlStore, TenantStore};

#[test]
fn sqlite_tenant_store_conforms() {
    let directory = tempfile::tempdir().unwrap();
    let counter = std::sync::atomic::AtomicUsize::new(0);
    conformance::tenant_store_suite(&|| {
        let index = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Box::new(
            SqliteTenantStore::open(&directory.path().join(format!("tenant{index}.db"))).unwrap(),
        ) as Box<dyn TenantStore>
    });
}

#[test]
fn filesystem_blob_store_conforms() {
    let directory = tempfile::tempdir().unwrap();
    let counter = std::sync::atomic::AtomicUsize::new(0);
    conformance::blob_store_suite(&|| {
        let index = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Box::new(
            strongroom_storage::FsBlobStore::open(&directory.path().join(format!("blobs{index}")))
                .unwrap(),
        ) as Box<dyn strongroom_storage::BlobStore>
    });
}

#[test]
fn sqlite_control_store_conforms() {
    let directory = tempfile::tempdir().unwrap();
    conformance::control_store_suite(&|| {
        Box::new(SqliteControlStore::open(&directory.path().join("control.db")).unwrap())
            as Box<dyn ControlStore>
    });
}

#[test]
fn a_newer_format_is_refused_with_a_clear_error() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("tenant.db");
    drop(SqliteTenantStore::open(&path).unwrap());
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let error = SqliteTenantStore::open(&path).err().expect("must refuse");
    assert!(
        error.to_string().contains("newer than this build"),
        "{error}"
    );
}

#[test]
fn sqlite_audit_store_conforms() {
    let directory = tempfile::tempdir().unwrap();
    let counter = std::sync::atomic::AtomicUsize::new(0);
    conformance::audit_store_suite(&|| {
        let index = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Box::new(
            strongroom_storage::sqlite::SqliteAuditStore::open(
                &directory.path().join(format!("audit{index}.db")),
            )
            .unwrap(),
        ) as Box<dyn strongroom_storage::AuditStore>
    });
}
