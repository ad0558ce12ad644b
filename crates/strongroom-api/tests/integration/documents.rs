//! The document archive through the public router: streaming, ranges, versions, trash,
//! purge on a fake clock, limits, integrity and encryption at rest.

use crate::harness::{Harness, Request, Response, files_under};
use axum::http::StatusCode;
use serde_json::json;
use std::path::PathBuf;

const DAY_MICROS: i64 = 24 * 3600 * 1_000_000;

fn content(seed: u8, length: usize) -> Vec<u8> {
    (0..length)
        .map(|index| (index as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// A GET of `range` of acme's document `path` (a path, and `?version=` if wanted).
pub(crate) async fn ranged(harness: &Harness, token: &str, path: &str, range: &str) -> Response {
    harness
        .public(
            Request::get(&format!("/v1/tenants/acme/documents/{path}"))
                .token(token)
                .header("range", range),
        )
        .await
}

pub(crate) async fn setup() -> (Harness, String) {
    let harness = Harness::new().await;
    let token = harness
        .tenant_with_token("acme", &["documents:read", "documents:write"])
        .await;
    (harness, token)
}

async fn upload(
    harness: &Harness,
    token: &str,
    path: &str,
    bytes: Vec<u8>,
) -> crate::harness::Response {
    harness
        .public(
            Request::put(&format!("/v1/tenants/acme/documents/{path}"))
                .token(token)
                .raw("text/plain", bytes),
        )
        .await
}

#[tokio::test]
async fn upload_download_ranges_and_versions() {
    let (harness, token) = setup().await;
    let first = content(1, 200_000);
    let created = upload(&harness, &token, "reports/2026/q1.txt", first.clone()).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["version"], 1);
    assert_eq!(created.body["size"], 200_000);
    assert_eq!(created.body["content_type"], "text/plain");
    let digest = ring_free_sha256(&first);
    assert_eq!(created.body["sha256"], digest);

    let whole = harness
        .public(Request::get("/v1/tenants/acme/documents/reports/2026/q1.txt").token(&token))
        .await;
    assert_eq!(whole.status, StatusCode::OK);
    assert_eq!(whole.header("content-length"), "200000");
    let etag = whole.header("etag").to_owned();
    assert!(etag.starts_with('"') && etag.ends_with(".1\""), "{etag}");
    assert_eq!(whole.bytes, first);
    for (range, first_byte, last_byte) in [
        ("bytes=0-9", 0usize, 9usize),
        ("bytes=65530-65545", 65530, 65545),
        ("bytes=199990-", 199_990, 199_999),
        ("bytes=-5", 199_995, 199_999),
    ] {
        let part = ranged(&harness, &token, "reports/2026/q1.txt", range).await;
        assert_eq!(part.status, StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(part.bytes, first[first_byte..=last_byte], "{range}");
        assert_eq!(
            part.header("content-range"),
            format!("bytes {first_byte}-{last_byte}/200000")
        );
    }
    let beyond = ranged(&harness, &token, "reports/2026/q1.txt", "bytes=300000-").await;
    assert_eq!(
        (beyond.status, beyond.body["code"].clone()),
        (
            StatusCode::RANGE_NOT_SATISFIABLE,
            json!("range_not_satisfiable")
        )
    );
    let head = harness
        .public(
            Request::new("HEAD", "/v1/tenants/acme/documents/reports/2026/q1.txt").token(&token),
        )
        .await;
    assert_eq!(
        (head.status, head.header("content-length")),
        (StatusCode::OK, "200000")
    );
    assert!(head.bytes.is_empty());

    let second = content(2, 10);
    let replaced = upload(&harness, &token, "reports/2026/q1.txt", second.clone()).await;
    assert_eq!(
        (replaced.status, replaced.body["version"].clone()),
        (StatusCode::OK, json!(2))
    );
    let versions = harness
        .public(
            Request::get("/v1/tenants/acme/documents/reports/2026/q1.txt?versions").token(&token),
        )
        .await;
    let listed: Vec<(u64, bool)> = versions.body["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["version"].as_u64().unwrap(),
                v["current"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(listed, [(1, false), (2, true)]);
    let old = harness
        .public(
            Request::get("/v1/tenants/acme/documents/reports/2026/q1.txt?version=1").token(&token),
        )
        .await;
    assert_eq!(old.bytes, first);
    let restored = harness
        .public(
            Request::post("/v1/tenants/acme/documents/reports/2026/q1.txt/restore?version=1")
                .token(&token),
        )
        .await;
    assert_eq!(
        (restored.status, restored.body["version"].clone()),
        (StatusCode::OK, json!(3))
    );
    assert_eq!(
        harness
            .public(Request::get("/v1/tenants/acme/documents/reports/2026/q1.txt").token(&token))
            .await
            .bytes,
        first
    );
    let empty = upload(&harness, &token, "empty", Vec::new()).await;
    assert_eq!(empty.status, StatusCode::CREATED);
    assert!(
        harness
            .public(Request::get("/v1/tenants/acme/documents/empty").token(&token))
            .await
            .bytes
            .is_empty()
    );

    let other = harness
        .tenant_with_token("globex", &["documents:read"])
        .await;
    let probe = harness
        .public(Request::get("/v1/tenants/acme/documents/reports/2026/q1.txt").token(&other))
        .await;
    assert_eq!(
        probe.status,
        StatusCode::NOT_FOUND,
        "another tenant's documents do not exist for this token"
    );
}

/// SHA-256 through the same crate the server uses, so the test does not trust the server.
fn ring_free_sha256(bytes: &[u8]) -> String {
    let mut hasher = strongroom_crypto::Sha256Hasher::default();
    hasher.update(bytes);
    hasher
        .finish()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[tokio::test]
async fn paths_are_validated_and_listed_by_directory() {
    let (harness, token) = setup().await;
    for bad in [
        "a//b",
        "a/../b",
        "./a",
        "a/%00b",
        "a/%0Ab",
        &"x".repeat(1100),
    ] {
        let response = upload(&harness, &token, bad, b"x".to_vec()).await;
        assert_eq!(
            (response.status, response.body["code"].clone()),
            (StatusCode::BAD_REQUEST, json!("invalid_request")),
            "{bad}"
        );
    }
    for path in ["reports/a.txt", "reports/2026/b.txt", "other/c.txt"] {
        assert_eq!(
            upload(&harness, &token, path, path.as_bytes().to_vec())
                .await
                .status,
            StatusCode::CREATED
        );
    }
    let paths = |response: &crate::harness::Response| -> Vec<String> {
        let mut paths: Vec<String> = response.body["documents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["path"].as_str().unwrap().to_owned())
            .collect();
        paths.sort();
        paths
    };
    let reports = harness
        .public(Request::get("/v1/tenants/acme/documents?prefix=reports/").token(&token))
        .await;
    assert_eq!(paths(&reports), ["reports/2026/b.txt", "reports/a.txt"]);
    let all = harness
        .public(Request::get("/v1/tenants/acme/documents?limit=2").token(&token))
        .await;
    assert_eq!(all.body["documents"].as_array().unwrap().len(), 2);
    let cursor = all.body["next_cursor"].as_str().unwrap().to_owned();
    let rest = harness
        .public(
            Request::get(&format!(
                "/v1/tenants/acme/documents?limit=2&cursor={cursor}"
            ))
            .token(&token),
        )
        .await;
    assert_eq!(rest.body["documents"].as_array().unwrap().len(), 1);
    let partial = harness
        .public(Request::get("/v1/tenants/acme/documents?prefix=rep").token(&token))
        .await;
    assert_eq!(partial.status, StatusCode::BAD_REQUEST);
    assert!(
        partial.body["detail"]
            .as_str()
            .unwrap()
            .contains("directories")
    );
}

#[tokio::test]
async fn trash_restore_and_purge_on_a_fake_clock() {
    let (harness, token) = setup().await;
    let blobs = harness.tenant_dir("acme").await.join("blobs");
    let blob_count = || {
        files_under(&blobs)
            .into_iter()
            .filter(|path| !path.starts_with(blobs.join("uploads")))
            .count()
    };
    upload(&harness, &token, "a.txt", content(1, 1000)).await;
    upload(&harness, &token, "same.txt", content(1, 1000)).await;
    assert_eq!(blob_count(), 1, "identical content is stored once");
    upload(&harness, &token, "a.txt", content(2, 1000)).await;
    assert_eq!(blob_count(), 2);

    let trashed = harness
        .public(Request::delete("/v1/tenants/acme/documents/same.txt").token(&token))
        .await;
    assert_eq!(trashed.status, StatusCode::OK);
    let trash_id = trashed.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        harness
            .public(Request::get("/v1/tenants/acme/documents/same.txt").token(&token))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let listed = harness
        .public(Request::get("/v1/tenants/acme/trash").token(&token))
        .await;
    assert_eq!(listed.body["entries"][0]["path"], "same.txt");
    upload(&harness, &token, "same.txt", content(3, 10)).await;
    let taken = harness
        .public(Request::post(&format!("/v1/tenants/acme/trash/{trash_id}/restore")).token(&token))
        .await;
    assert_eq!(
        taken.status,
        StatusCode::CONFLICT,
        "the path is taken again"
    );
    let elsewhere = harness
        .public(
            Request::post(&format!(
                "/v1/tenants/acme/trash/{trash_id}/restore?as=restored/same.txt"
            ))
            .token(&token),
        )
        .await;
    assert_eq!(elsewhere.status, StatusCode::OK, "{}", elsewhere.body);
    assert_eq!(
        harness
            .public(Request::get("/v1/tenants/acme/documents/restored/same.txt").token(&token))
            .await
            .bytes,
        content(1, 1000)
    );
    assert_eq!(
        harness
            .public(Request::delete("/v1/tenants/acme/documents/restored/same.txt").token(&token))
            .await
            .status,
        StatusCode::OK
    );

    let purge = || {
        harness
            .admin(Request::post("/admin/v1/tenants/acme/documents/purge").token(&harness.operator))
    };
    harness.clock.advance_micros(29 * DAY_MICROS);
    assert_eq!(
        purge().await.body["versions_removed"],
        0,
        "versions are kept 30 days"
    );
    harness.clock.advance_micros(2 * DAY_MICROS);
    let report = purge().await;
    assert_eq!(report.body["versions_removed"], 1, "{}", report.body);
    assert_eq!(
        report.body["documents_removed"], 0,
        "trash entries are kept 90 days"
    );
    assert_eq!(
        report.body["blobs_removed"], 0,
        "version 1's content is still in the trash"
    );
    assert_eq!(
        harness
            .public(Request::get("/v1/tenants/acme/documents/a.txt?version=1").token(&token))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    harness.clock.advance_micros(60 * DAY_MICROS);
    let report = purge().await;
    assert_eq!(
        (
            report.body["documents_removed"].clone(),
            report.body["blobs_removed"].clone()
        ),
        (json!(1), json!(1)),
        "{}",
        report.body
    );
    assert_eq!(
        blob_count(),
        2,
        "a.txt v2 and same.txt's new content remain"
    );
    assert!(
        harness
            .public(Request::get("/v1/tenants/acme/trash").token(&token))
            .await
            .body["entries"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let kinds: Vec<String> = harness
        .platform
        .journal_changes("acme")
        .await
        .unwrap()
        .iter()
        .map(|(_, change)| {
            format!("{change:?}")
                .split_whitespace()
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    for kind in [
        "DocumentVersion",
        "DocumentTrash",
        "DocumentRestore",
        "DocumentPurge",
    ] {
        assert!(
            kinds.iter().any(|found| found == kind),
            "{kind} is journaled: {kinds:?}"
        );
    }
}

#[tokio::test]
async fn limits_and_interrupted_uploads_leave_nothing_behind() {
    let (harness, token) = setup().await;
    let blobs = harness.tenant_dir("acme").await.join("blobs");
    let too_big = upload(&harness, &token, "big.bin", content(1, (2 << 20) + 1)).await;
    assert_eq!(
        (too_big.status, too_big.body["code"].clone()),
        (StatusCode::PAYLOAD_TOO_LARGE, json!("payload_too_large"))
    );
    let interrupted = harness
        .public(
            Request::put("/v1/tenants/acme/documents/cut.bin")
                .token(&token)
                .interrupted(content(2, 300_000)),
        )
        .await;
    assert_eq!(
        (interrupted.status, interrupted.body["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("invalid_request")),
        "{}",
        interrupted.text
    );
    assert_eq!(
        files_under(&blobs),
        Vec::<PathBuf>::new(),
        "no partial file and no blob"
    );
    assert_eq!(
        upload(&harness, &token, "f0", content(10, 1_800_000))
            .await
            .status,
        StatusCode::CREATED
    );
    assert_eq!(
        upload(&harness, &token, "copy", content(10, 1_800_000))
            .await
            .status,
        StatusCode::CREATED,
        "content already stored costs no quota"
    );
    assert_eq!(
        upload(&harness, &token, "f1", content(11, 1_800_000))
            .await
            .status,
        StatusCode::CREATED,
        "3.6 of 4 MiB used"
    );
    let over = upload(&harness, &token, "f3", content(30, 1_800_000)).await;
    assert_eq!(
        (over.status, over.body["code"].clone()),
        (StatusCode::INSUFFICIENT_STORAGE, json!("quota_exceeded"))
    );
    assert_eq!(
        files_under(&blobs).len(),
        2,
        "the refused upload left nothing"
    );
    assert_eq!(
        harness
            .public(Request::get("/v1/tenants/acme/documents/f3").token(&token))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn tampered_blobs_are_integrity_errors_and_nothing_is_plaintext_on_disk() {
    let (harness, token) = setup().await;
    let canary = b"canary-document-content-7f3a ".repeat(10_000);
    upload(
        &harness,
        &token,
        "secret/canary-name-91c2.txt",
        canary.clone(),
    )
    .await;
    upload(&harness, &token, "other.bin", content(5, 300_000)).await;
    let needles = ["canary-document-content-7f3a", "canary-name-91c2"];
    for file in files_under(&harness.data_dir()) {
        let bytes = std::fs::read(&file).unwrap();
        for needle in needles {
            assert!(
                !bytes
                    .windows(needle.len())
                    .any(|window| window == needle.as_bytes()),
                "{} holds {needle}",
                file.display()
            );
        }
    }
    harness
        .platform
        .tenant_store("acme")
        .await
        .unwrap()
        .checkpoint()
        .unwrap();
    let blobs = harness.tenant_dir("acme").await.join("blobs");
    let mut blob_files: Vec<PathBuf> = files_under(&blobs);
    blob_files.sort_by_key(|path| std::fs::metadata(path).unwrap().len());
    let (canary_blob, other_blob) = (blob_files[0].clone(), blob_files[1].clone());
    let original = std::fs::read(&canary_blob).unwrap();
    let chunk = 65536 + 28;
    let read = |range: &str| {
        harness.public(
            Request::get("/v1/tenants/acme/documents/secret/canary-name-91c2.txt")
                .token(&token)
                .header("range", range),
        )
    };

    std::fs::write(&canary_blob, &original[..original.len() - chunk]).unwrap();
    assert_eq!(
        read("bytes=0-10").await.body["code"],
        "integrity_error",
        "truncation"
    );
    let mut reordered = original.clone();
    let (one, two) = (28 + chunk, 28 + 2 * chunk);
    let first_copy = reordered[one..one + chunk].to_vec();
    reordered.copy_within(two..two + chunk, one);
    reordered[two..two + chunk].copy_from_slice(&first_copy);
    std::fs::write(&canary_blob, &reordered).unwrap();
    assert_eq!(
        read("bytes=65536-65540").await.body["code"],
        "integrity_error",
        "reordered chunks"
    );
    let mut swapped = original.clone();
    let foreign = std::fs::read(&other_blob).unwrap();
    swapped[one..one + chunk].copy_from_slice(&foreign[one..one + chunk]);
    std::fs::write(&canary_blob, &swapped).unwrap();
    assert_eq!(
        read("bytes=65536-65540").await.body["code"],
        "integrity_error",
        "a chunk from another file"
    );
    // A damaged chunk after the first: the answer has begun (200) when the reader finds it,
    // and the break is still a security event.
    let before = harness.security_count("integrity_failure");
    let whole = harness
        .public(
            Request::get("/v1/tenants/acme/documents/secret/canary-name-91c2.txt").token(&token),
        )
        .await;
    assert_eq!(whole.status, StatusCode::OK);
    assert!(whole.body_failed.is_some(), "the body breaks off");
    assert_eq!(
        harness.security_count("integrity_failure"),
        before + 1,
        "a chunk failing after the answer began"
    );
    // The trail says the body broke off after its first chunk (the request's own event,
    // durable before the 200, names the whole size).
    // Recorded in the background, counted with the security events' recordings.
    harness.platform.security.recorded().await;
    let listed = harness
        .admin(
            Request::get("/admin/v1/audit?tenant=acme&action=get_document")
                .token(&harness.operator),
        )
        .await;
    let cut = listed.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|event| event["event"]["phase"] == "cut_short")
        .map(|event| event["event"].clone())
        .unwrap_or_default();
    assert_eq!(
        (&cut["reason"], &cut["outcome"], &cut["bytes_sent"]),
        (&json!("body_failed"), &json!("error"), &json!(65536)),
        "{cut}"
    );
    std::fs::write(&canary_blob, &original).unwrap();
    assert_eq!(
        read("bytes=65536-65540").await.status,
        StatusCode::PARTIAL_CONTENT,
        "the untouched file reads again"
    );
    assert!(harness.security_count("integrity_failure") >= 4);
}

#[tokio::test]
async fn the_purge_finishes_what_a_crash_left_behind() {
    let (harness, token) = setup().await;
    let blobs = harness.tenant_dir("acme").await.join("blobs");
    upload(&harness, &token, "a.txt", content(1, 5000)).await;
    upload(&harness, &token, "a.txt", content(2, 5000)).await;
    // A crash after a blob was renamed into place but before its metadata committed.
    let store = strongroom_storage::FsBlobStore::open(&blobs).unwrap();
    let mut orphan = strongroom_storage::BlobStore::create(&store).unwrap();
    orphan.write(b"sealed bytes nobody references").unwrap();
    assert!(orphan.finish(&"ab".repeat(32)).unwrap());
    // A crash in the middle of an upload.
    std::fs::write(blobs.join("uploads/0123.part"), b"partial").unwrap();
    // A crash after a purge removed a blob's file but before it forgot the registration:
    // here, version 1's file is gone before the purge that will find it unreferenced.
    harness.clock.advance_micros(31 * DAY_MICROS);
    let database =
        rusqlite::Connection::open(harness.tenant_dir("acme").await.join("tenant.db")).unwrap();
    let first_blob: String = database
        .query_row(
            "SELECT blob_id FROM document_versions WHERE version = 1",
            [],
            |row| row.get(0),
        )
        .unwrap();
    std::fs::remove_file(blobs.join(&first_blob[..2]).join(&first_blob)).unwrap();
    let report = harness
        .admin(Request::post("/admin/v1/tenants/acme/documents/purge").token(&harness.operator))
        .await;
    assert_eq!(report.status, StatusCode::OK, "{}", report.body);
    assert_eq!(report.body["versions_removed"], 1);
    assert_eq!(
        report.body["blobs_removed"], 2,
        "version 1's registration (file already gone) and the orphan: {}",
        report.body
    );
    let registered: i64 = database
        .query_row("SELECT COUNT(*) FROM blobs", [], |row| row.get(0))
        .unwrap();
    assert_eq!(registered, 1, "no registration without a file is left");
    assert_eq!(report.body["uploads_removed"], 1);
    let remaining: Vec<PathBuf> = files_under(&blobs);
    assert_eq!(
        remaining.len(),
        1,
        "only the current version's blob: {remaining:?}"
    );
    assert_eq!(
        harness
            .public(Request::get("/v1/tenants/acme/documents/a.txt").token(&token))
            .await
            .bytes,
        content(2, 5000)
    );
    let again = harness
        .admin(Request::post("/admin/v1/tenants/acme/documents/purge").token(&harness.operator))
        .await;
    assert_eq!(
        again.body,
        json!({"versions_removed": 0, "documents_removed": 0, "blobs_removed": 0, "uploads_removed": 0}),
        "a rerun finds nothing left"
    );
}

#[tokio::test]
async fn document_changes_replay_from_the_journal() {
    let (harness, token) = setup().await;
    upload(&harness, &token, "a/one.txt", content(1, 70_000)).await;
    upload(&harness, &token, "a/one.txt", content(2, 10)).await;
    upload(&harness, &token, "b/two.txt", content(3, 10)).await;
    harness
        .public(
            Request::post("/v1/tenants/acme/documents/a/one.txt/restore?version=1").token(&token),
        )
        .await;
    let trashed = harness
        .public(Request::delete("/v1/tenants/acme/documents/b/two.txt").token(&token))
        .await;
    upload(&harness, &token, "b/two.txt", content(4, 10)).await;
    let trash_id = trashed.body["id"].as_str().unwrap();
    harness
        .public(
            Request::post(&format!(
                "/v1/tenants/acme/trash/{trash_id}/restore?as=c/three.txt"
            ))
            .token(&token),
        )
        .await;
    harness.clock.advance_micros(31 * DAY_MICROS);
    harness
        .admin(Request::post("/admin/v1/tenants/acme/documents/purge").token(&harness.operator))
        .await;

    let replica_directory = tempfile::tempdir().unwrap();
    let replica_path = replica_directory.path().join("replica.db");
    let replica: std::sync::Arc<dyn strongroom_storage::TenantStore> = std::sync::Arc::new(
        strongroom_storage::sqlite::SqliteTenantStore::open(&replica_path).unwrap(),
    );
    harness
        .platform
        .replay_tenant_journal("acme", replica.clone())
        .await
        .unwrap();
    replica.checkpoint().unwrap();
    harness
        .platform
        .tenant_store("acme")
        .await
        .unwrap()
        .checkpoint()
        .unwrap();
    let rows = |path: &std::path::Path| -> Vec<String> {
        let database = rusqlite::Connection::open(path).unwrap();
        let mut rows: Vec<String> = Vec::new();
        for query in [
            "SELECT id || '|' || hex(path_id) || '|' || current_version || '|' || IFNULL(trashed_at, '-') || '|' || created_at || '|' || updated_at FROM documents ORDER BY id",
            "SELECT document_id || '|' || version || '|' || blob_id || '|' || size || '|' || created_at || '|' || IFNULL(superseded_at, '-') FROM document_versions ORDER BY document_id, version",
            "SELECT hex(token) || '|' || document_id FROM document_prefixes ORDER BY 1",
            // Registrations of unreferenced blobs are derived state the purge cleans up on
            // either side; referenced ones must match.
            "SELECT id || '|' || size FROM blobs b WHERE EXISTS (SELECT 1 FROM document_versions v WHERE v.blob_id = b.id) ORDER BY id",
        ] {
            let mut statement = database.prepare(query).unwrap();
            rows.extend(
                statement
                    .query_map([], |row| row.get::<_, String>(0))
                    .unwrap()
                    .map(Result::unwrap),
            );
        }
        rows
    };
    let original = rows(&harness.tenant_dir("acme").await.join("tenant.db"));
    assert!(original.len() > 10, "{original:?}");
    assert_eq!(
        rows(&replica_path),
        original,
        "the replayed store holds the same documents, versions, prefixes and blobs"
    );
}

#[tokio::test]
async fn validators_head_empty_files_and_whole_blob_swaps() {
    let (harness, token) = setup().await;
    upload(&harness, &token, "a.bin", content(1, 100_000)).await;
    upload(&harness, &token, "b.bin", content(2, 100_000)).await;
    let first = harness
        .public(Request::get("/v1/tenants/acme/documents/a.bin").token(&token))
        .await;
    let etag = first.header("etag").to_owned();
    let matching = harness
        .public(
            Request::get("/v1/tenants/acme/documents/a.bin")
                .token(&token)
                .header("range", "bytes=0-9")
                .header("if-range", &etag),
        )
        .await;
    assert_eq!(matching.status, StatusCode::PARTIAL_CONTENT);
    upload(&harness, &token, "a.bin", content(3, 100_000)).await;
    let stale = harness
        .public(
            Request::get("/v1/tenants/acme/documents/a.bin")
                .token(&token)
                .header("range", "bytes=0-9")
                .header("if-range", &etag),
        )
        .await;
    assert_eq!(
        (stale.status, stale.bytes.len()),
        (StatusCode::OK, 100_000),
        "a stale If-Range gets the whole new content"
    );
    let head = harness
        .public(
            Request::new("HEAD", "/v1/tenants/acme/documents/a.bin")
                .token(&token)
                .header("range", "bytes=0-9"),
        )
        .await;
    assert_eq!(head.status, StatusCode::OK, "HEAD ignores Range");
    upload(&harness, &token, "empty", Vec::new()).await;
    let empty = ranged(&harness, &token, "empty", "bytes=0-9").await;
    assert_eq!((empty.status, empty.bytes.len()), (StatusCode::OK, 0));
    let recreated_etag = {
        harness
            .public(Request::delete("/v1/tenants/acme/documents/b.bin").token(&token))
            .await;
        upload(&harness, &token, "b.bin", content(4, 10))
            .await
            .header("etag")
            .to_owned()
    };
    assert!(recreated_etag.ends_with(".1\""), "{recreated_etag}");
    let b_before = harness
        .public(Request::get("/v1/tenants/acme/documents/a.bin?version=1").token(&token))
        .await
        .header("etag")
        .to_owned();
    assert_ne!(
        recreated_etag, b_before,
        "a re-created path never reuses a validator"
    );

    // Swap two whole blob files of the same size: each version notices it names another file.
    let blobs = harness.tenant_dir("acme").await.join("blobs");
    let mut same_size: Vec<PathBuf> = files_under(&blobs)
        .into_iter()
        .filter(|path| std::fs::metadata(path).unwrap().len() > 100_000)
        .collect();
    same_size.sort();
    // Rotate the contents of every same-size blob file, so each one now holds another's bytes.
    let contents: Vec<Vec<u8>> = same_size
        .iter()
        .map(|path| std::fs::read(path).unwrap())
        .collect();
    assert!(contents.len() >= 2);
    for (index, path) in same_size.iter().enumerate() {
        std::fs::write(path, &contents[(index + 1) % contents.len()]).unwrap();
    }
    let swapped = harness
        .public(Request::get("/v1/tenants/acme/documents/a.bin").token(&token))
        .await;
    assert_eq!(swapped.body["code"], "integrity_error");
}

#[tokio::test]
async fn a_tenant_key_rotation_reseals_documents_too() {
    let (harness, token) = setup().await;
    let big = content(7, 150_000);
    upload(&harness, &token, "reports/big.bin", big.clone()).await;
    upload(&harness, &token, "reports/big.bin", content(8, 70_000)).await;
    upload(&harness, &token, "empty", Vec::new()).await;
    let rotated = harness
        .admin(Request::post("/admin/v1/tenants/acme/keys/rotate").token(&harness.operator))
        .await;
    assert_eq!(rotated.body["key_version"], 2);
    harness.platform.reseal_tenant("acme").await.unwrap();

    let blobs = harness.tenant_dir("acme").await.join("blobs");
    for blob in files_under(&blobs) {
        let bytes = std::fs::read(&blob).unwrap();
        assert_eq!(
            u32::from_be_bytes(bytes[4..8].try_into().unwrap()),
            2,
            "{} still names key version 1",
            blob.display()
        );
    }
    let database =
        rusqlite::Connection::open(harness.tenant_dir("acme").await.join("tenant.db")).unwrap();
    let old: i64 = database
        .query_row("SELECT (SELECT COUNT(*) FROM documents WHERE key_version < 2) + (SELECT COUNT(*) FROM document_versions WHERE key_version < 2)", [], |row| row.get(0))
        .unwrap();
    assert_eq!(old, 0, "paths and version metadata are re-sealed");
    assert_eq!(
        harness
            .public(
                Request::get("/v1/tenants/acme/documents/reports/big.bin?version=1").token(&token)
            )
            .await
            .bytes,
        big
    );
    let part = ranged(
        &harness,
        &token,
        "reports/big.bin?version=1",
        "bytes=65530-65545",
    )
    .await;
    assert_eq!(part.bytes, big[65530..=65545]);
    assert_eq!(
        harness
            .public(Request::get("/v1/tenants/acme/documents/reports/big.bin").token(&token))
            .await
            .bytes,
        content(8, 70_000)
    );
    assert_eq!(
        harness
            .public(Request::get("/v1/tenants/acme/documents/empty").token(&token))
            .await
            .status,
        StatusCode::OK
    );
    let listed = harness
        .public(Request::get("/v1/tenants/acme/documents?prefix=reports/").token(&token))
        .await;
    assert_eq!(listed.body["documents"][0]["path"], "reports/big.bin");
}
