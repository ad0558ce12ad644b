//! Download counts in the tenant-store suite.

/// Download counts: limits, windows, and an admin's reset.
pub(super) fn download_counts(store: &dyn crate::TenantStore) {
    let count = |window: i64, bytes: u64| {
        store
            .count_download("user:u1", window, bytes, Some(2), Some(1000))
            .wait()
            .expect("count")
    };
    assert_eq!(
        count(100, 400),
        (
            crate::DownloadCount {
                files: 1,
                bytes: 400
            },
            true
        )
    );
    assert_eq!(
        count(100, 700),
        (
            crate::DownloadCount {
                files: 1,
                bytes: 400
            },
            false
        ),
        "the bytes limit refuses and counts nothing"
    );
    assert_eq!(
        count(100, 500),
        (
            crate::DownloadCount {
                files: 2,
                bytes: 900
            },
            true
        )
    );
    assert_eq!(
        count(100, 1),
        (
            crate::DownloadCount {
                files: 2,
                bytes: 900
            },
            false
        ),
        "the files limit"
    );
    assert!(
        store
            .count_download("user:u2", 100, 1, Some(2), Some(1000))
            .wait()
            .expect("count")
            .1,
        "per caller"
    );
    assert_eq!(
        count(200, 1).0,
        crate::DownloadCount { files: 1, bytes: 1 },
        "a new window"
    );
    assert_eq!(store.reset_downloads("user:u1").wait().expect("reset"), 1);
    assert_eq!(
        count(200, 1).0.files,
        1,
        "counting starts over after a reset"
    );
    assert!(
        store
            .count_download("token:t", 100, u64::MAX, None, None)
            .wait()
            .expect("count")
            .1,
        "no limits, no refusal"
    );
}
