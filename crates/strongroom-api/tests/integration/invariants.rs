//! Invariants below the HTTP surface: no plaintext at rest, the journal rebuilds a tenant,
//! damage is detected per record, keys rotate without losing data.

use crate::harness::{Harness, Request};
use axum::http::StatusCode;
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use strongroom_storage::TenantStore;

fn files_containing(root: &Path, needles: &[&str]) -> Vec<String> {
    let mut hits = Vec::new();
    for path in crate::harness::files_under(root) {
        let bytes = std::fs::read(&path).unwrap();
        for needle in needles {
            if bytes
                .windows(needle.len())
                .any(|window| window == needle.as_bytes())
            {
                hits.push(format!("{} contains {needle}", path.display()));
            }
        }
    }
    hits
}

async fn tenant_db(harness: &Harness, slug: &str) -> std::path::PathBuf {
    let tenant = harness
        .admin(Request::get(&format!("/admin/v1/tenants/{slug}")).token(&harness.operator))
        .await;
    harness
        .data_dir()
        .join("tenants")
        .join(tenant.body["id"].as_str().unwrap())
        .join("tenant.db")
}

#[tokio::test]
async fn canaries_written_through_the_api_never_reach_the_disk() {
    let harness = Harness::new().await;
    let token = harness
        .tenant_with_token("acme", &["records:read", "records:write"])
        .await;
    let canaries = [
        "canarycollection",
        "CanaryFieldName",
        "canary-indexed-value-7d1f",
        "canary body text 93b2",
        "canary-patched-5e8a",
    ];
    let schema =
        json!({"schema": {"fields": {"CanaryFieldName": {"type": "string", "indexed": true}}}});
    harness
        .public(
            Request::put("/v1/tenants/acme/collections/canarycollection")
                .token(&token)
                .json(schema),
        )
        .await;
    for _ in 0..50 {
        let body = json!({"CanaryFieldName": "canary-indexed-value-7d1f", "note": "canary body text 93b2"});
        let created = harness
            .public(
                Request::post("/v1/tenants/acme/collections/canarycollection/records")
                    .token(&token)
                    .json(body),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED);
        let path = format!(
            "/v1/tenants/acme/collections/canarycollection/records/{}",
            created.body["id"].as_str().unwrap()
        );
        harness
            .public(
                Request::patch(&path)
                    .token(&token)
                    .json(json!({"extra": "canary-patched-5e8a"})),
            )
            .await;
    }
    let found = harness.public(Request::get("/v1/tenants/acme/collections/canarycollection/records?where.CanaryFieldName=canary-indexed-value-7d1f&limit=1000").token(&token)).await;
    assert_eq!(
        found.body["records"].as_array().unwrap().len(),
        50,
        "the data is really there and findable"
    );
    assert_eq!(
        files_containing(&harness.data_dir(), &canaries),
        Vec::<String>::new(),
        "before checkpoint"
    );
    harness
        .platform
        .tenant_store("acme")
        .await
        .unwrap()
        .checkpoint()
        .unwrap();
    assert_eq!(
        files_containing(&harness.data_dir(), &canaries),
        Vec::<String>::new(),
        "after checkpoint"
    );
}

#[tokio::test]
async fn replaying_the_journal_on_an_empty_store_reproduces_the_tenant() {
    let harness = Harness::new().await;
    let token = harness
        .tenant_with_token("acme", &["records:read", "records:write"])
        .await;
    harness
        .public(
            Request::put("/v1/tenants/acme/collections/people")
                .token(&token)
                .json(json!({})),
        )
        .await;
    harness
        .public(
            Request::put("/v1/tenants/acme/collections/orders")
                .token(&token)
                .json(json!({"schema": {"fields": {"sku": {"type": "string", "indexed": true}}}})),
        )
        .await;
    let mut ids = Vec::new();
    for n in 0..30 {
        harness.clock.advance_micros(10);
        let collection = if n % 3 == 0 { "orders" } else { "people" };
        let created = harness
            .public(
                Request::post(&format!(
                    "/v1/tenants/acme/collections/{collection}/records"
                ))
                .token(&token)
                .json(json!({"sku": format!("s{n}"), "n": n})),
            )
            .await;
        ids.push((collection, created.body["id"].as_str().unwrap().to_owned()));
    }
    for (index, (collection, id)) in ids.iter().enumerate() {
        let path = format!("/v1/tenants/acme/collections/{collection}/records/{id}");
        match index % 4 {
            0 => assert_eq!(
                harness
                    .public(Request::delete(&path).token(&token))
                    .await
                    .status,
                StatusCode::NO_CONTENT
            ),
            1 => assert_eq!(
                harness
                    .public(
                        Request::patch(&path)
                            .token(&token)
                            .json(json!({"patched": true}))
                    )
                    .await
                    .status,
                StatusCode::OK
            ),
            2 => assert_eq!(
                harness
                    .public(
                        Request::put(&path)
                            .token(&token)
                            .json(json!({"replaced": index}))
                    )
                    .await
                    .status,
                StatusCode::OK
            ),
            _ => {}
        }
    }
    let original = harness
        .platform
        .all_records_in("acme", harness.platform.tenant_store("acme").await.unwrap())
        .await
        .unwrap();
    assert_eq!(original.len(), 30 - 8);

    let replica_directory = tempfile::tempdir().unwrap();
    let replica: Arc<dyn TenantStore> = Arc::new(
        strongroom_storage::sqlite::SqliteTenantStore::open(
            &replica_directory.path().join("replica.db"),
        )
        .unwrap(),
    );
    let applied = harness
        .platform
        .replay_tenant_journal("acme", replica.clone())
        .await
        .unwrap();
    assert_eq!(
        applied,
        2 + 30 + 8 + 15,
        "two collections, thirty creates, eight deletes, fifteen updates"
    );
    let replayed = harness
        .platform
        .all_records_in("acme", replica.clone())
        .await
        .unwrap();
    assert_eq!(
        replayed, original,
        "same ids, versions, timestamps and bodies"
    );
    let changes = harness.platform.journal_changes("acme").await.unwrap();
    let sequences: Vec<u64> = changes.iter().map(|(sequence, _)| *sequence).collect();
    assert_eq!(sequences, (1..=applied).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_flipped_byte_is_an_integrity_error_for_that_record_only() {
    let harness = Harness::new().await;
    let token = harness
        .tenant_with_token("acme", &["records:read", "records:write"])
        .await;
    harness.put_collection("acme", "notes", &token).await;
    let damaged = harness
        .public(
            Request::post("/v1/tenants/acme/collections/notes/records")
                .token(&token)
                .json(json!({"text": "one"})),
        )
        .await;
    let healthy = harness
        .public(
            Request::post("/v1/tenants/acme/collections/notes/records")
                .token(&token)
                .json(json!({"text": "two"})),
        )
        .await;
    let damaged_id = damaged.body["id"].as_str().unwrap().to_owned();
    let connection = rusqlite::Connection::open(tenant_db(&harness, "acme").await).unwrap();
    let mut sealed: Vec<u8> = connection
        .query_row(
            "SELECT sealed_body FROM records WHERE id = ?1",
            [&damaged_id],
            |row| row.get(0),
        )
        .unwrap();
    let middle = sealed.len() / 2;
    sealed[middle] ^= 0x40;
    connection
        .execute(
            "UPDATE records SET sealed_body = ?1 WHERE id = ?2",
            rusqlite::params![sealed, damaged_id],
        )
        .unwrap();
    drop(connection);

    let read = harness
        .public(
            Request::get(&format!(
                "/v1/tenants/acme/collections/notes/records/{damaged_id}"
            ))
            .token(&token),
        )
        .await;
    assert_eq!(read.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(read.body["code"], "integrity_error");
    assert!(read.body["detail"].as_str().unwrap().contains(&damaged_id));
    let other = harness
        .public(
            Request::get(&format!(
                "/v1/tenants/acme/collections/notes/records/{}",
                healthy.body["id"].as_str().unwrap()
            ))
            .token(&token),
        )
        .await;
    assert_eq!(other.body["data"]["text"], "two");
    let listing = harness
        .public(Request::get("/v1/tenants/acme/collections/notes/records").token(&token))
        .await;
    assert_eq!(listing.status, StatusCode::OK);
    let listed = listing.body["records"].as_array().unwrap();
    assert!(
        listed.contains(&json!({"id": damaged_id, "error": "integrity_error"})),
        "{listed:?}"
    );
    assert!(
        listed.iter().any(|record| record["data"]["text"] == "two"),
        "the healthy record is still listed"
    );
    assert_eq!(
        harness.security_count("integrity_failure"),
        2,
        "one for the read, one for the listing"
    );
}

#[tokio::test]
async fn rotating_a_tenant_key_keeps_old_data_readable_and_reseals_it() {
    let harness = Harness::new().await;
    let token = harness
        .tenant_with_token("acme", &["records:read", "records:write"])
        .await;
    harness
        .public(
            Request::put("/v1/tenants/acme/collections/notes")
                .token(&token)
                .json(json!({"schema": {"fields": {"tag": {"type": "string", "indexed": true}}}})),
        )
        .await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let created = harness
            .public(
                Request::post("/v1/tenants/acme/collections/notes/records")
                    .token(&token)
                    .json(json!({"tag": "old", "n": n})),
            )
            .await;
        ids.push(created.body["id"].as_str().unwrap().to_owned());
    }
    harness.clock.advance_micros(5_000_000);
    let rotated = harness
        .admin(Request::post("/admin/v1/tenants/acme/keys/rotate").token(&harness.operator))
        .await;
    assert_eq!(
        (rotated.status, rotated.body["key_version"].clone()),
        (StatusCode::ACCEPTED, json!(2))
    );
    let fresh = harness
        .public(
            Request::post("/v1/tenants/acme/collections/notes/records")
                .token(&token)
                .json(json!({"tag": "new"})),
        )
        .await;
    for id in &ids {
        let read = harness
            .public(
                Request::get(&format!("/v1/tenants/acme/collections/notes/records/{id}"))
                    .token(&token),
            )
            .await;
        assert_eq!(
            read.body["data"]["tag"], "old",
            "old data stays readable right after rotation"
        );
    }
    harness.platform.reseal_tenant("acme").await.unwrap();
    let connection = rusqlite::Connection::open(tenant_db(&harness, "acme").await).unwrap();
    let versions: Vec<i64> = connection.prepare("SELECT DISTINCT key_version FROM records UNION SELECT DISTINCT key_version FROM collections").unwrap().query_map([], |row| row.get(0)).unwrap().map(Result::unwrap).collect();
    assert_eq!(
        versions,
        [2],
        "every record and collection is sealed with the new version after re-sealing"
    );
    let headers: Vec<u32> = connection
        .prepare("SELECT sealed_body FROM records")
        .unwrap()
        .query_map([], |row| row.get::<_, Vec<u8>>(0))
        .unwrap()
        .map(|sealed| strongroom_crypto::sealed_key_version(&sealed.unwrap()).unwrap())
        .collect();
    assert!(
        headers.iter().all(|version| *version == 2),
        "the key version is in every ciphertext header"
    );
    let old = harness
        .public(
            Request::get("/v1/tenants/acme/collections/notes/records?where.tag=old").token(&token),
        )
        .await;
    assert_eq!(
        old.body["records"].as_array().unwrap().len(),
        5,
        "blind indexes survive a data-key rotation"
    );
    assert_eq!(fresh.status, StatusCode::CREATED);
    let tenant = harness
        .admin(Request::get("/admin/v1/tenants/acme").token(&harness.operator))
        .await;
    let data_keys: Vec<(u64, String)> = tenant.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|key| key["purpose"] == "data")
        .map(|key| {
            (
                key["version"].as_u64().unwrap(),
                key["created_at"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        data_keys,
        vec![
            (1, "2026-01-01T00:00:00Z".to_owned()),
            (2, "2026-01-01T00:00:05Z".to_owned())
        ]
    );
}

#[tokio::test]
async fn rotating_the_master_key_rewraps_everything_and_keeps_a_backup() {
    let harness = Harness::new().await;
    let token = harness
        .tenant_with_token("acme", &["records:read", "records:write"])
        .await;
    harness.tenant_with_token("globex", &["records:read"]).await;
    harness.put_collection("acme", "notes", &token).await;
    let created = harness
        .public(
            Request::post("/v1/tenants/acme/collections/notes/records")
                .token(&token)
                .json(json!({"text": "kept"})),
        )
        .await;
    let key_file = harness.directory.path().join("keys/master.key");
    let old_key = std::fs::read(&key_file).unwrap();

    let rotated = harness
        .admin(Request::post("/admin/v1/keys/rotate-master").token(&harness.operator))
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    assert_eq!(
        rotated.body["rewrapped_keys"], 4,
        "two tenants, a data and an index key each"
    );
    let backup = std::path::PathBuf::from(rotated.body["backup_file"].as_str().unwrap());
    assert_eq!(
        std::fs::read(&backup).unwrap(),
        old_key,
        "the old key is kept as a dated backup"
    );
    assert_ne!(std::fs::read(&key_file).unwrap(), old_key);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let path = format!(
        "/v1/tenants/acme/collections/notes/records/{}",
        created.body["id"].as_str().unwrap()
    );
    assert_eq!(
        harness.public(Request::get(&path).token(&token)).await.body["data"]["text"],
        "kept",
        "the running server reads on"
    );

    let new_master = strongroom_service::master_key_file::read(&key_file).unwrap();
    let reopened = Harness::open_platform(
        &harness.data_dir(),
        new_master,
        key_file.clone(),
        harness.clock.clone(),
    );
    assert_eq!(
        reopened
            .all_records_in("acme", reopened.tenant_store("acme").await.unwrap())
            .await
            .unwrap()
            .len(),
        1,
        "a restart with the new key reads everything"
    );
    let old_master = strongroom_crypto::MasterKey::from_bytes(&old_key).unwrap();
    let control = strongroom_storage::sqlite::SqliteControlStore::open(
        &harness.data_dir().join("control.db"),
    )
    .unwrap();
    let options = strongroom_service::PlatformOptions {
        key_file: None,
        page_limit_default: 100,
        page_limit_max: 1000,
        documents: crate::harness::test_document_limits(),
        password_hashing: crate::harness::fast_password_hashing(),
        public_url: "https://127.0.0.1:8443".into(),
        outbound_allow_private_networks: false,
        support_networks: vec!["192.0.2.0/24".parse().unwrap()],
        audit_log_dir: None,
        audit_retention_days: 400,
        audit_checkpoint_every_events: 10_000,
        smtp: None,
    };
    let refused = strongroom_service::Platform::open(
        Arc::new(control),
        Arc::new(
            strongroom_storage::sqlite::SqliteAuditStore::open(
                &harness.data_dir().join("audit.db"),
            )
            .unwrap(),
        ),
        strongroom_service::sqlite_store_opener(harness.data_dir()),
        old_master,
        options,
        Arc::new(harness.clock.clone()),
    );
    assert!(
        refused
            .err()
            .unwrap()
            .to_string()
            .contains("right key file"),
        "the retired key no longer opens anything"
    );
}

#[tokio::test]
async fn a_master_rotation_interrupted_after_rewrapping_leaves_both_keys_startable() {
    let harness = Harness::new().await;
    let token = harness
        .tenant_with_token("acme", &["records:read", "records:write"])
        .await;
    harness.put_collection("acme", "notes", &token).await;
    harness
        .public(
            Request::post("/v1/tenants/acme/collections/notes/records")
                .token(&token)
                .json(json!({"text": "kept"})),
        )
        .await;
    let key_file = harness.directory.path().join("keys/master.key");
    let old = strongroom_service::master_key_file::read(&key_file).unwrap();
    let new = strongroom_crypto::MasterKey::generate().unwrap();
    // Steps 1 and 2 of a rotation, then a crash: `<key>.new` is written, every tenant key is
    // wrapped under both keys, and the key file still holds the old key.
    strongroom_service::master_key_file::write_verified(&key_file.with_extension("new"), &new)
        .unwrap();
    let control = strongroom_storage::sqlite::SqliteControlStore::open(
        &harness.data_dir().join("control.db"),
    )
    .unwrap();
    use strongroom_storage::{ControlStore, OperatorStore};
    let rewrapped: Vec<_> = control
        .all_wrapped_keys()
        .unwrap()
        .into_iter()
        .map(|row| {
            let purpose = if row.purpose == "data" {
                strongroom_crypto::WrappedKeyPurpose::Data
            } else {
                strongroom_crypto::WrappedKeyPurpose::BlindIndex
            };
            let key = old
                .unwrap(&row.wrapped, &row.tenant_id, purpose, row.version)
                .unwrap();
            strongroom_storage::WrappedKeyRow {
                master_key_id: new.key_id(),
                wrapped: new
                    .wrap(&key, &row.tenant_id, purpose, row.version)
                    .unwrap(),
                ..row
            }
        })
        .collect();
    // Step 2 also wraps the control key (it seals operator secrets) under the new key.
    let control_keys: Vec<_> = control
        .control_keys()
        .unwrap()
        .into_iter()
        .map(|row| {
            let purpose = strongroom_crypto::WrappedKeyPurpose::Control;
            let key = old
                .unwrap(&row.wrapped, "control-plane", purpose, 1)
                .unwrap();
            strongroom_storage::ControlKeyRow {
                master_key_id: new.key_id(),
                wrapped: new.wrap(&key, "control-plane", purpose, 1).unwrap(),
                ..row
            }
        })
        .collect();
    assert_eq!(control_keys.len(), 1);
    let control = Arc::new(control);
    let writer = control.clone();
    tokio::task::spawn_blocking(move || {
        writer.add_wrapped_keys(rewrapped)?;
        control_keys
            .into_iter()
            .try_for_each(|row| writer.add_control_key(row))
    })
    .await
    .unwrap()
    .unwrap();
    for master in [old, new] {
        let platform = Harness::open_platform(
            &harness.data_dir(),
            master,
            key_file.clone(),
            harness.clock.clone(),
        );
        let records = platform
            .all_records_in("acme", platform.tenant_store("acme").await.unwrap())
            .await
            .unwrap();
        assert_eq!(
            records[0].body["text"], "kept",
            "whichever key file is in place, the server starts and reads"
        );
    }
    let finished = harness
        .admin(Request::post("/admin/v1/keys/rotate-master").token(&harness.operator))
        .await;
    assert_eq!(
        finished.status,
        StatusCode::OK,
        "a rerun completes despite the leftovers: {}",
        finished.body
    );
    assert_eq!(
        control.all_wrapped_keys().unwrap().len(),
        2,
        "only the final key's wraps remain"
    );
}
