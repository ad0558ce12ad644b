//! The storage conformance suite. Every backend runs these checks from its own test file with
//! a factory that opens a fresh, empty store; a backend is done when all of them pass.
//! Each check panics with a message naming the broken promise.

use crate::*;

mod audit;
mod documents;
mod downloads;
mod operators;

pub use audit::audit_store_suite;
pub use documents::blob_store_suite;
use documents::{documents_versions_trash_and_purge, users_passwords_and_sessions};

fn record(collection: &[u8], id: &str, version: u64, created_at: i64, body: &[u8]) -> StoredRecord {
    StoredRecord {
        collection_id: collection.to_vec(),
        id: id.to_owned(),
        version,
        created_at,
        updated_at: created_at,
        key_version: 1,
        sealed_body: body.to_vec(),
    }
}

fn journal_marker(marker: &'static str) -> JournalSealer {
    Box::new(move |sequence| Ok(format!("{marker}@{sequence}").into_bytes()))
}

fn query(collection: &[u8], limit: u32) -> RecordQuery {
    RecordQuery {
        collection_id: collection.to_vec(),
        order: RecordOrder::Created,
        after: None,
        updated_after: None,
        index_tokens: vec![],
        limit,
    }
}

/// Runs every tenant-store check, each on a fresh store from `open`.
pub fn tenant_store_suite(open: &dyn Fn() -> Box<dyn TenantStore>) {
    records_round_trip_and_journal_in_order(open().as_ref());
    versions_guard_replace_and_delete(open().as_ref());
    listing_pages_filters_and_orders(open().as_ref());
    failed_writes_leave_no_trace(open().as_ref());
    collections_and_resealing(open().as_ref());
    concurrent_writes_all_commit(open);
    documents_versions_trash_and_purge(open().as_ref());
    users_passwords_and_sessions(open().as_ref());
    downloads::download_counts(open().as_ref());
}

/// Runs every control-store check on a fresh store from `open`.
pub fn control_store_suite(open: &dyn Fn() -> Box<dyn ControlStore>) {
    tenants_keys_and_tokens(open().as_ref());
    operators::operators_sessions_and_grants(open().as_ref());
}

fn records_round_trip_and_journal_in_order(store: &dyn TenantStore) {
    store
        .insert_record(
            record(b"c", "r1", 1, 10, b"one"),
            vec![],
            journal_marker("insert"),
        )
        .wait()
        .expect("insert");
    let stored = store
        .record(b"c", "r1")
        .expect("read")
        .expect("inserted record must be readable");
    assert_eq!(stored.sealed_body, b"one");
    assert!(
        store.record(b"other", "r1").expect("read").is_none(),
        "records are scoped to their collection"
    );
    let duplicate = store
        .insert_record(
            record(b"c", "r1", 1, 11, b"again"),
            vec![],
            journal_marker("dup"),
        )
        .wait();
    assert!(
        matches!(duplicate, Err(StorageError::Conflict(_))),
        "a taken id must be a conflict"
    );
    store
        .delete_record(b"c", "r1", 1, journal_marker("delete"))
        .wait()
        .expect("delete");
    assert!(store.record(b"c", "r1").expect("read").is_none());
    let journal = store.read_journal(0, 10).expect("journal");
    let entries: Vec<_> = journal
        .iter()
        .map(|row| {
            (
                row.sequence,
                String::from_utf8_lossy(&row.sealed).into_owned(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        vec![(1, "insert@1".to_owned()), (2, "delete@2".to_owned())],
        "journal holds exactly the committed changes, numbered"
    );
    assert_eq!(
        store.read_journal(1, 10).expect("journal").len(),
        1,
        "journal reads resume after a sequence"
    );
}

fn versions_guard_replace_and_delete(store: &dyn TenantStore) {
    store
        .insert_record(record(b"c", "r", 1, 10, b"v1"), vec![], journal_marker("i"))
        .wait()
        .expect("insert");
    let mut next = record(b"c", "r", 2, 10, b"v2");
    next.updated_at = 20;
    store
        .replace_record(next.clone(), 1, vec![], journal_marker("u"))
        .wait()
        .expect("replace at the right version");
    let stale = store
        .replace_record(
            record(b"c", "r", 2, 10, b"x"),
            1,
            vec![],
            journal_marker("stale"),
        )
        .wait();
    assert!(
        matches!(stale, Err(StorageError::Conflict(_))),
        "a stale version must be a conflict"
    );
    let missing = store
        .replace_record(
            record(b"c", "nope", 2, 10, b"x"),
            1,
            vec![],
            journal_marker("m"),
        )
        .wait();
    assert!(matches!(missing, Err(StorageError::NotFound)));
    assert!(matches!(
        store
            .delete_record(b"c", "r", 1, journal_marker("d"))
            .wait(),
        Err(StorageError::Conflict(_))
    ));
    assert_eq!(
        store.record(b"c", "r").expect("read").expect("still there"),
        next
    );
    assert_eq!(
        store.read_journal(0, 100).expect("journal").len(),
        2,
        "refused writes are not journaled"
    );
}

fn listing_pages_filters_and_orders(store: &dyn TenantStore) {
    for index in 0..25i64 {
        let tokens = vec![
            if index % 2 == 0 {
                b"even".to_vec()
            } else {
                b"odd".to_vec()
            },
            format!("n{index}").into_bytes(),
        ];
        let mut item = record(b"c", &format!("r{index:02}"), 1, 100 + index / 5, b"x");
        item.updated_at = 1000 - index;
        store
            .insert_record(item, tokens, journal_marker("i"))
            .wait()
            .expect("insert");
    }
    store
        .insert_record(
            record(b"elsewhere", "z", 1, 1, b"x"),
            vec![b"even".to_vec()],
            journal_marker("i"),
        )
        .wait()
        .expect("insert");
    let mut seen = Vec::new();
    let mut page_query = query(b"c", 10);
    loop {
        let page = store.list_records(&page_query).expect("list");
        if page.is_empty() {
            break;
        }
        let last = page.last().expect("non-empty");
        page_query.after = Some((last.created_at, last.id.clone()));
        seen.extend(page.into_iter().map(|item| item.id));
    }
    let expected: Vec<String> = (0..25).map(|index| format!("r{index:02}")).collect();
    assert_eq!(
        seen, expected,
        "pages cover every record once, in (created, id) order, and only this collection"
    );
    let mut even = query(b"c", 100);
    even.index_tokens = vec![b"even".to_vec()];
    assert_eq!(store.list_records(&even).expect("list").len(), 13);
    even.index_tokens.push(b"n4".to_vec());
    let both = store.list_records(&even).expect("list");
    assert_eq!(
        both.iter().map(|item| item.id.as_str()).collect::<Vec<_>>(),
        ["r04"],
        "filters combine with AND"
    );
    let mut by_update = query(b"c", 3);
    by_update.order = RecordOrder::Updated;
    by_update.updated_after = Some(990);
    let recent: Vec<_> = store
        .list_records(&by_update)
        .expect("list")
        .into_iter()
        .map(|item| item.id)
        .collect();
    assert_eq!(
        recent,
        ["r09", "r08", "r07"],
        "ordered by updated_at ascending, strictly after the bound"
    );
}

fn failed_writes_leave_no_trace(store: &dyn TenantStore) {
    store
        .insert_record(
            record(b"c", "a", 1, 1, b"a"),
            vec![b"t".to_vec()],
            journal_marker("i"),
        )
        .wait()
        .expect("insert");
    let _ = store
        .insert_record(
            record(b"c", "a", 1, 1, b"b"),
            vec![b"other".to_vec()],
            journal_marker("i"),
        )
        .wait();
    let mut filter = query(b"c", 10);
    filter.index_tokens = vec![b"other".to_vec()];
    assert!(
        store.list_records(&filter).expect("list").is_empty(),
        "a refused insert must not leave index entries"
    );
    assert_eq!(store.read_journal(0, 10).expect("journal").len(), 1);
}

fn collections_and_resealing(store: &dyn TenantStore) {
    let collection = StoredCollection {
        id: b"c".to_vec(),
        key_version: 1,
        sealed: b"schema1".to_vec(),
        created_at: 5,
        updated_at: 5,
    };
    store
        .put_collection(collection.clone(), journal_marker("c"))
        .wait()
        .expect("put");
    let updated = StoredCollection {
        sealed: b"schema2".to_vec(),
        updated_at: 6,
        ..collection.clone()
    };
    store
        .put_collection(updated.clone(), journal_marker("c"))
        .wait()
        .expect("update");
    assert_eq!(store.collection(b"c").expect("read"), Some(updated.clone()));
    assert_eq!(store.list_collections().expect("list").len(), 1);
    store
        .insert_record(record(b"c", "r", 1, 1, b"old"), vec![], journal_marker("i"))
        .wait()
        .expect("insert");
    let reindexed = store
        .replace_index_tokens(
            b"c",
            vec![
                IndexEntry {
                    record_id: "r".into(),
                    version: 1,
                    tokens: vec![b"fresh".to_vec()],
                },
                IndexEntry {
                    record_id: "gone".into(),
                    version: 1,
                    tokens: vec![b"fresh".to_vec()],
                },
            ],
        )
        .wait();
    assert_eq!(
        reindexed.expect("reindex"),
        1,
        "only existing records at the given version are re-indexed"
    );
    let mut fresh = query(b"c", 10);
    fresh.index_tokens = vec![b"fresh".to_vec()];
    assert_eq!(store.list_records(&fresh).expect("list").len(), 1);
    let (collections, records) = store.sealed_below(2, 100).expect("scan");
    assert_eq!((collections.len(), records.len()), (2 - 1, 1));
    let resealed_record = StoredRecord {
        key_version: 2,
        sealed_body: b"new".to_vec(),
        ..records[0].clone()
    };
    let resealed_collection = StoredCollection {
        key_version: 2,
        sealed: b"schema2'".to_vec(),
        ..collections[0].clone()
    };
    assert_eq!(
        store
            .reseal(vec![resealed_collection], vec![resealed_record])
            .wait()
            .expect("reseal"),
        2
    );
    let (collections, records) = store.sealed_below(2, 100).expect("scan");
    assert!(
        collections.is_empty() && records.is_empty(),
        "resealed items are no longer below the version"
    );
    let stale = StoredRecord {
        version: 7,
        key_version: 3,
        ..store.record(b"c", "r").expect("read").expect("there")
    };
    assert_eq!(
        store.reseal(vec![], vec![stale]).wait().expect("reseal"),
        0,
        "reseal never overwrites a changed record"
    );
    store.checkpoint().expect("checkpoint");
}

fn concurrent_writes_all_commit(open: &dyn Fn() -> Box<dyn TenantStore>) {
    let store: std::sync::Arc<dyn TenantStore> = std::sync::Arc::from(open());
    let threads: Vec<_> = (0..8)
        .map(|thread| {
            let store = store.clone();
            std::thread::spawn(move || {
                for index in 0..50 {
                    let item = record(b"c", &format!("t{thread}r{index}"), 1, index, b"x");
                    store
                        .insert_record(item, vec![], journal_marker("i"))
                        .wait()
                        .expect("concurrent insert");
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("writer thread");
    }
    assert_eq!(
        store.list_records(&query(b"c", 1000)).expect("list").len(),
        400
    );
    let journal = store.read_journal(0, 1000).expect("journal");
    let sequences: Vec<u64> = journal.iter().map(|row| row.sequence).collect();
    assert_eq!(
        sequences,
        (1..=400).collect::<Vec<u64>>(),
        "journal sequence is gap-free under concurrency"
    );
}

fn tenants_keys_and_tokens(store: &dyn ControlStore) {
    let tenant = TenantRow {
        id: "t1".into(),
        slug: "acme".into(),
        name: "Acme NV".into(),
        region: "eu".into(),
        status: TenantStatus::Active,
        created_at: 1,
        status_changed_at: 1,
    };
    let key = WrappedKeyRow {
        tenant_id: "t1".into(),
        purpose: "data".into(),
        version: 1,
        master_key_id: "m1".into(),
        wrapped: vec![1],
        created_at: 1,
        wrapped_at: 1,
    };
    store
        .insert_tenant(tenant.clone(), vec![key.clone()])
        .expect("insert tenant");
    let clash = TenantRow {
        id: "t2".into(),
        ..tenant.clone()
    };
    assert!(
        matches!(
            store.insert_tenant(clash, vec![]),
            Err(StorageError::Conflict(_))
        ),
        "slugs are unique"
    );
    assert_eq!(
        store.tenant_by_slug("acme").expect("read"),
        Some(tenant.clone())
    );
    assert_eq!(
        store.tenant_by_id("t1").expect("read"),
        Some(tenant.clone())
    );
    store
        .set_tenant_status("t1", TenantStatus::Suspended, 9)
        .expect("suspend");
    assert_eq!(
        store
            .tenant_by_slug("acme")
            .expect("read")
            .expect("there")
            .status,
        TenantStatus::Suspended
    );
    assert!(matches!(
        store.set_tenant_status("none", TenantStatus::Active, 9),
        Err(StorageError::NotFound)
    ));
    assert_eq!(store.list_tenants().expect("list").len(), 1);

    let rewrapped = WrappedKeyRow {
        master_key_id: "m2".into(),
        wrapped: vec![2],
        wrapped_at: 5,
        ..key.clone()
    };
    store
        .add_wrapped_keys(vec![rewrapped.clone()])
        .expect("rewrap");
    assert!(matches!(
        store.add_wrapped_keys(vec![rewrapped.clone()]),
        Err(StorageError::Conflict(_))
    ));
    assert_eq!(store.all_wrapped_keys().expect("keys").len(), 2);
    assert_eq!(store.remove_wraps_except_master("m2").expect("remove"), 1);
    assert_eq!(store.wrapped_keys("t1").expect("keys"), vec![rewrapped]);

    let token = ApiTokenRow {
        id: "k1".into(),
        tenant_id: "t1".into(),
        name: "ci".into(),
        token_hash: vec![7; 32],
        scopes: "records:read".into(),
        created_at: 1,
        expires_at: None,
    };
    store.insert_api_token(token.clone()).expect("token");
    assert_eq!(
        store.api_token_by_hash(&[7; 32]).expect("read"),
        Some(token.clone())
    );
    assert!(store.api_token_by_hash(&[8; 32]).expect("read").is_none());
    assert_eq!(store.api_tokens("t1").expect("list"), vec![token]);
    assert!(store.api_tokens("other").expect("list").is_empty());
    assert!(
        !store.remove_api_token("other", "k1").expect("remove"),
        "only the tenant's own token"
    );
    assert!(store.remove_api_token("t1", "k1").expect("remove"));
    assert!(store.api_token_by_hash(&[7; 32]).expect("read").is_none());
    let operator = OperatorTokenRow {
        id: "o1".into(),
        name: "bootstrap".into(),
        token_hash: vec![9; 32],
        created_at: 1,
    };
    assert_eq!(store.operator_token_count().expect("count"), 0);
    store
        .insert_operator_token(operator.clone())
        .expect("operator");
    assert_eq!(store.operator_token_count().expect("count"), 1);
    assert_eq!(
        store.operator_token_by_hash(&[9; 32]).expect("read"),
        Some(operator)
    );
}
