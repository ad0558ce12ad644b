//! Download thresholds through the routers, on a fake clock: per caller and window, per role,
//! HEAD not counted, a block an admin lifts, counts kept on disk.

use crate::documents::ranged;
use crate::harness::{Harness, Request};
use crate::users::{activated_session, first_owner_of_acme, login, session_token};
use axum::http::StatusCode;
use serde_json::json;
use strongroom_storage::TenantStore;

/// Tenant acme with a documents token, and its first owner's session.
async fn acme_with_owner() -> (Harness, String, String) {
    let (harness, token) = crate::documents::setup().await;
    let owner = first_owner_of_acme(&harness).await;
    (harness, token, owner)
}

#[tokio::test]
async fn downloads_past_the_threshold_are_refused_until_the_window_ends_or_an_admin_lifts() {
    let (harness, api_token, owner) = acme_with_owner().await;
    let viewer_created =
        harness
            .public(Request::post("/v1/tenants/acme/users").token(&owner).json(
                json!({"email": "vic@example.com", "display_name": "Vic", "roles": ["viewer"]}),
            ))
            .await;
    let viewer_id = viewer_created.body["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let viewer = activated_session(
        &harness,
        "vic@example.com",
        viewer_created.body["one_time_password"].as_str().unwrap(),
        "vic's fine long passphrase",
    )
    .await;
    harness
        .public(
            Request::put("/v1/tenants/acme/documents/report.txt")
                .token(&owner)
                .raw("text/plain", vec![b'x'; 500]),
        )
        .await;

    for (limits, field) in [
        (json!({"window_minutes": 0}), "window_minutes"),
        (json!({"window_minutes": 60, "roles": {"boss": {}}}), "boss"),
        (
            json!({"window_minutes": 60, "default": {"files_max": 0}}),
            "at least 1",
        ),
    ] {
        let refused = harness
            .public(
                Request::put("/v1/tenants/acme/policy/downloads")
                    .token(&owner)
                    .json(limits),
            )
            .await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
        assert!(
            refused.body["detail"].as_str().unwrap().contains(field),
            "{}",
            refused.body
        );
    }
    let set = harness
        .public(
            Request::put("/v1/tenants/acme/policy/downloads")
                .token(&owner)
                .json(json!({
                    "window_minutes": 60,
                    "default": {"files_max": 2, "bytes_max": 1000},
                    "roles": {"owner": {}}
                })),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);

    let download = |token: &str| {
        harness.public(Request::get("/v1/tenants/acme/documents/report.txt").token(token))
    };
    // With the trail down, a download is refused before it is counted.
    harness
        .audit
        .broken
        .store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        download(&viewer).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    harness
        .audit
        .broken
        .store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(download(&viewer).await.status, StatusCode::OK);
    assert_eq!(download(&viewer).await.status, StatusCode::OK);
    let blocked = download(&viewer).await;
    assert_eq!(
        (blocked.status, blocked.body["code"].as_str()),
        (
            StatusCode::TOO_MANY_REQUESTS,
            Some("download_limit_reached")
        ),
        "{}",
        blocked.body
    );
    assert!(blocked.body["detail"].as_str().unwrap().contains("admin"));
    assert_eq!(harness.security_count("download_limit_reached"), 1);
    assert_eq!(
        harness
            .public(Request::new("HEAD", "/v1/tenants/acme/documents/report.txt").token(&viewer))
            .await
            .status,
        StatusCode::OK,
        "HEAD sends no content and is not counted"
    );
    for _ in 0..4 {
        assert_eq!(
            download(&owner).await.status,
            StatusCode::OK,
            "owners have no limit here"
        );
    }

    // The counts are on disk: a fresh connection to the tenant's file sees the block.
    let store = strongroom_storage::sqlite::SqliteTenantStore::open(
        &harness.tenant_dir("acme").await.join("tenant.db"),
    )
    .unwrap();
    let window_start = {
        let now = strongroom_service::Clock::now(&harness.clock).unix_micros();
        now - now.rem_euclid(3600 * 1_000_000)
    };
    let decision = tokio::task::spawn_blocking(move || {
        store
            .count_download(strongroom_storage::DownloadToCount {
                caller: format!("user:{viewer_id}"),
                window_start,
                content: "another version".into(),
                ranged: false,
                bytes: 1,
                files_max: Some(2),
                bytes_max: None,
            })
            .wait()
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        (decision.count.files, decision.counted),
        (2, false),
        "the block survives a restart"
    );

    // An admin lifts the block; the next window also starts afresh.
    let viewer_id = viewer_created.body["user"]["id"].as_str().unwrap();
    let lifted = harness
        .public(
            Request::delete(&format!("/v1/tenants/acme/download-blocks/{viewer_id}")).token(&owner),
        )
        .await;
    assert_eq!(lifted.status, StatusCode::NO_CONTENT);
    assert_eq!(download(&viewer).await.status, StatusCode::OK);
    assert_eq!(download(&viewer).await.status, StatusCode::OK);
    assert_eq!(
        download(&viewer).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    harness.clock.advance_micros(20 * 60 * 1_000_000);
    let viewer = session_token(&harness, "vic@example.com", "vic's fine long passphrase").await;
    harness.clock.advance_micros(41 * 60 * 1_000_000);
    let viewer = {
        let again = login(&harness, "vic@example.com", "vic's fine long passphrase").await;
        again.body["session_token"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or(viewer)
    };
    assert_eq!(
        download(&viewer).await.status,
        StatusCode::OK,
        "a new window starts afresh"
    );

    // Bytes count too, and API tokens are callers of their own.
    let hundred_bytes = ranged(&harness, &api_token, "report.txt", "bytes=0-99").await;
    assert_eq!(hundred_bytes.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        download(&api_token).await.status,
        StatusCode::OK,
        "100 + 500 bytes"
    );
    assert_eq!(
        download(&api_token).await.status,
        StatusCode::TOO_MANY_REQUESTS,
        "a third file, and 1,100 bytes, would pass both limits"
    );
    let within = ranged(&harness, &api_token, "report.txt", "bytes=0-9").await;
    assert_eq!(
        within.status,
        StatusCode::TOO_MANY_REQUESTS,
        "blocked for the rest of the window, even for 10 more bytes of a file already counted, \
         which would fit both limits"
    );
}

/// A player or a resumed download reads one document in many ranges: one file, the bytes
/// it was sent.
#[tokio::test]
async fn ranges_of_one_document_count_as_one_file_and_their_bytes() {
    let (harness, token, owner) = acme_with_owner().await;
    for (path, size) in [("video.bin", 1000), ("a.txt", 10), ("b.txt", 10)] {
        let put = harness
            .public(
                Request::put(&format!("/v1/tenants/acme/documents/{path}"))
                    .token(&owner)
                    .raw("application/octet-stream", vec![b'x'; size]),
            )
            .await;
        assert_eq!(put.status, StatusCode::CREATED, "{}", put.body);
    }
    let set = harness
        .public(
            Request::put("/v1/tenants/acme/policy/downloads")
                .token(&owner)
                .json(json!({
                    "window_minutes": 60,
                    "default": {"files_max": 2, "bytes_max": 1015}
                })),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    for first in (0..1000).step_by(250) {
        let range = ranged(
            &harness,
            &token,
            "video.bin",
            &format!("bytes={first}-{}", first + 249),
        )
        .await;
        assert_eq!(range.status, StatusCode::PARTIAL_CONTENT, "{}", range.text);
        assert_eq!(range.bytes.len(), 250);
    }
    let get = |path: &'static str| {
        harness.public(Request::get(&format!("/v1/tenants/acme/documents/{path}")).token(&token))
    };
    assert_eq!(get("a.txt").await.status, StatusCode::OK, "a second file");
    let range = ranged(&harness, &token, "video.bin", "bytes=0-4").await;
    assert_eq!(
        range.status,
        StatusCode::PARTIAL_CONTENT,
        "more of the video is no further file, and its 5 bytes fit"
    );
    let refused = get("b.txt").await;
    assert_eq!(
        (refused.status, refused.body["code"].as_str()),
        (
            StatusCode::TOO_MANY_REQUESTS,
            Some("download_limit_reached")
        ),
        "a third file passes the limit of two: {}",
        refused.body
    );
    let retry_after: u64 = refused.header("retry-after").parse().unwrap();
    assert!((1..=3600).contains(&retry_after), "{retry_after}");
    let range = ranged(&harness, &token, "video.bin", "bytes=0-0").await;
    assert_eq!(
        range.status,
        StatusCode::TOO_MANY_REQUESTS,
        "past the limit the caller is blocked, even for more of what it had"
    );
}

/// A download that breaks off after its first chunk counts the bytes it sent, not its size: a
/// caller whose download failed half-way is not blocked for bytes that never reached them.
#[tokio::test]
async fn a_download_cut_short_counts_only_the_bytes_it_sent() {
    let (harness, token, owner) = acme_with_owner().await;
    let content: Vec<u8> = (0..300_000u32).map(|n| (n % 251) as u8).collect();
    let stored = harness
        .public(
            Request::put("/v1/tenants/acme/documents/big.bin")
                .token(&token)
                .raw("application/octet-stream", content),
        )
        .await;
    assert!(stored.status.is_success(), "{}", stored.body);
    let set = harness
        .public(
            Request::put("/v1/tenants/acme/policy/downloads")
                .token(&owner)
                .json(json!({"window_minutes": 60, "default": {"bytes_max": 400_000}})),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);

    // The second chunk damaged: the answer has begun when the reader finds it.
    let blob = crate::harness::files_under(&harness.tenant_dir("acme").await.join("blobs"))
        .into_iter()
        .next()
        .expect("the document's blob");
    let original = std::fs::read(&blob).unwrap();
    let mut damaged = original.clone();
    damaged[28 + 65_536 + 28 + 100] ^= 0xff;
    std::fs::write(&blob, &damaged).unwrap();
    let download =
        || harness.public(Request::get("/v1/tenants/acme/documents/big.bin").token(&token));
    let broken = download().await;
    assert_eq!(broken.status, StatusCode::OK);
    assert!(broken.body_failed.is_some(), "the body breaks off");
    // The refund runs in the background, counted with the security events' recordings.
    harness.platform.security.recorded().await;
    std::fs::write(&blob, &original).unwrap();

    // 65,536 bytes sent and 300,000 more fit in 400,000; the whole size twice would not.
    let whole = download().await;
    assert_eq!(whole.status, StatusCode::OK, "{}", whole.body);
    assert!(whole.body_failed.is_none());
    let refused = download().await;
    assert_eq!(
        refused.status,
        StatusCode::TOO_MANY_REQUESTS,
        "the limit still holds"
    );
}
