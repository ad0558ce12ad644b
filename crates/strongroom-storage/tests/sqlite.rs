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

/// A chain whose every event expired goes on from the signed head left at the cut, also after
/// a restart (when no head is cached), instead of starting again at 1.
#[test]
fn an_expired_audit_chain_resumes_from_its_signed_head_after_a_restart() {
    use strongroom_storage::sqlite::SqliteAuditStore;
    use strongroom_storage::{AuditCheckpointRow, AuditEntry, AuditStore};
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("audit.db");
    let entry = || AuditEntry {
        chain: "t1".into(),
        at: 10,
        action: "get_record".into(),
        outcome: "allowed".into(),
        actor_token: None,
        address_token: None,
    };
    // Each sealing's sequence and the previous head it was handed.
    type Seen = std::sync::Arc<std::sync::Mutex<Vec<(u64, [u8; 32])>>>;
    let seen = Seen::default();
    let sealer = |seen: Seen| -> strongroom_storage::AuditSealer {
        Box::new(move |sequence, previous| {
            seen.lock().unwrap().push((sequence, *previous));
            Ok((b"event".to_vec(), [sequence as u8; 32]))
        })
    };
    {
        let store = SqliteAuditStore::open(&path).unwrap();
        for _ in 0..2 {
            store.append(entry(), sealer(seen.clone())).wait().unwrap();
        }
        store
            .add_checkpoint(AuditCheckpointRow {
                chain: "t1".into(),
                sequence: 2,
                head: vec![2; 32],
                signature: vec![0; 64],
                at: 20,
                expiry: true,
            })
            .unwrap();
        assert_eq!(store.remove_events_through("t1", 2).unwrap(), 2);
    }
    let store = SqliteAuditStore::open(&path).unwrap();
    assert_eq!(
        store.append(entry(), sealer(seen.clone())).wait().unwrap(),
        3
    );
    assert_eq!(
        store.append(entry(), sealer(seen.clone())).wait().unwrap(),
        4
    );
    assert_eq!(
        *seen.lock().unwrap(),
        [(1, [0; 32]), (2, [1; 32]), (3, [2; 32]), (4, [3; 32])],
        "every event links to the one before, across the cut and the restart"
    );
}

/// Audit databases of format 1 (a row-id table with a time index) keep every event when they
/// move to the keyed table.
#[test]
fn a_format_one_audit_database_keeps_its_events() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("audit.db");
    let connection = rusqlite::Connection::open(&path).unwrap();
    connection
        .execute_batch(
            "CREATE TABLE audit_events (
                chain TEXT NOT NULL, sequence INTEGER NOT NULL, at INTEGER NOT NULL,
                action TEXT NOT NULL, outcome TEXT NOT NULL, actor_token BLOB,
                address_token BLOB, sealed BLOB NOT NULL, hash BLOB NOT NULL,
                PRIMARY KEY (chain, sequence));
             CREATE INDEX audit_events_by_time ON audit_events (chain, at);
             CREATE TABLE audit_checkpoints (chain TEXT NOT NULL, sequence INTEGER NOT NULL,
                head BLOB NOT NULL, signature BLOB NOT NULL, at INTEGER NOT NULL,
                PRIMARY KEY (chain, sequence));
             CREATE TABLE audit_signing_key (id INTEGER PRIMARY KEY CHECK (id = 1),
                sealed BLOB NOT NULL, public BLOB NOT NULL);
             INSERT INTO audit_events VALUES
                ('t1', 1, 10, 'record.read', 'allowed', x'01', NULL, x'aa', x'11'),
                ('t1', 2, 20, 'record.read', 'denied', x'02', x'03', x'bb', x'22');
             PRAGMA user_version = 1;",
        )
        .unwrap();
    drop(connection);
    let store = strongroom_storage::sqlite::SqliteAuditStore::open(&path).unwrap();
    use strongroom_storage::AuditStore;
    let events = store.chain_events("t1", 0, 10).unwrap();
    assert_eq!(
        events
            .iter()
            .map(|row| (row.sequence, row.sealed.clone(), row.hash.clone()))
            .collect::<Vec<_>>(),
        [(1, vec![0xaa], vec![0x11]), (2, vec![0xbb], vec![0x22])]
    );
    assert_eq!(events[1].address_token.as_deref(), Some(&[3u8][..]));
    let appended = store
        .append(
            strongroom_storage::AuditEntry {
                chain: "t1".into(),
                at: 30,
                action: "record.read".into(),
                outcome: "allowed".into(),
                actor_token: None,
                address_token: None,
            },
            Box::new(|_, previous| {
                assert_eq!(
                    previous[0], 0x22,
                    "the chain continues from the migrated head"
                );
                Ok((vec![0xcc], [0x33; 32]))
            }),
        )
        .wait()
        .unwrap();
    assert_eq!(appended, 3);
}
