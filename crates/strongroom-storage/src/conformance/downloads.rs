//! Download counts in the tenant-store suite.

use crate::{DownloadCount, DownloadToCount};

/// A whole download of `content` by `caller`, with no limits.
fn download(caller: &str, window_start: i64, content: &str, bytes: u64) -> DownloadToCount {
    DownloadToCount {
        caller: caller.into(),
        window_start,
        content: content.into(),
        ranged: false,
        bytes,
        files_max: None,
        bytes_max: None,
    }
}

/// Download counts: limits, windows, and an admin's reset.
pub(super) fn download_counts(store: &dyn crate::TenantStore) {
    let count = |window: i64, bytes: u64| {
        store
            .count_download(DownloadToCount {
                files_max: Some(2),
                bytes_max: Some(1000),
                ..download("user:u1", window, "etag-1", bytes)
            })
            .wait()
            .expect("count")
    };
    let counted = |files: u64, bytes: u64| (crate::DownloadCount { files, bytes }, true);
    let refused = |files: u64, bytes: u64| (crate::DownloadCount { files, bytes }, false);
    assert_eq!(count(100, 400), counted(1, 400));
    assert_eq!(
        count(100, 700),
        refused(1, 400),
        "the bytes limit refuses and counts nothing"
    );
    assert_eq!(
        count(100, 1),
        refused(1, 400),
        "and blocks: even a download within the limits waits for the window's end"
    );
    assert_eq!(store.reset_downloads("user:u1").wait().expect("reset"), 1);
    assert_eq!(
        count(100, 400),
        counted(1, 400),
        "or for an admin to lift it"
    );
    assert_eq!(count(100, 500), counted(2, 900));
    assert_eq!(count(100, 1), refused(2, 900), "the files limit");
    assert!(
        store
            .count_download(DownloadToCount {
                files_max: Some(2),
                bytes_max: Some(1000),
                ..download("user:u2", 100, "etag-1", 1)
            })
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
            .count_download(download("token:t", 100, "etag-1", u64::MAX))
            .wait()
            .expect("count")
            .1,
        "no limits, no refusal"
    );

    // Ranges of content already downloaded in the window are no further file.
    let ranged = |content: &str, window: i64| {
        store
            .count_download(DownloadToCount {
                ranged: true,
                files_max: Some(2),
                ..download("user:u3", window, content, 10)
            })
            .wait()
            .expect("count")
    };
    assert_eq!(ranged("video", 100).0.files, 1, "its first range is a file");
    for range in 2..=4 {
        assert_eq!(
            ranged("video", 100),
            (
                crate::DownloadCount {
                    files: 1,
                    bytes: 10 * range
                },
                true
            ),
            "later ranges count their bytes only"
        );
    }
    assert_eq!(
        ranged("another", 100).0.files,
        2,
        "a range of other content is a file"
    );
    assert!(
        !ranged("third", 100).1,
        "and the files limit holds for ranges too"
    );
    assert!(
        !ranged("video", 100).1,
        "which blocks the caller, even for more of what it had"
    );
    store.reset_downloads("user:u3").wait().expect("reset");
    for expected_files in 1..=2 {
        let whole = store
            .count_download(download("user:u3", 100, "video", 10))
            .wait()
            .expect("count");
        assert_eq!(
            whole.0.files, expected_files,
            "a whole download is always a file"
        );
    }
    assert_eq!(
        ranged("video", 200).0.files,
        1,
        "in a new window the content counts again"
    );

    // Bytes of a download that stopped early are taken back, in their window only, never
    // below zero, not after an admin reset the caller since; the file stays counted.
    let limited = |bytes: u64| DownloadToCount {
        bytes_max: Some(100),
        ..download("user:u4", 300, "big", bytes)
    };
    let (first, counted) = store.count_download(limited(80)).wait().expect("count");
    assert!(counted);
    let uncount = |window: i64, files: u64, bytes: u64| {
        store
            .uncount_download_bytes("user:u4", window, files, bytes)
            .wait()
            .expect("uncount")
    };
    uncount(300, first.files, 50);
    uncount(200, first.files, 1_000);
    let (after, counted) = store.count_download(limited(60)).wait().expect("count");
    assert!(
        counted,
        "30 bytes counted after the refund, 60 more fit in 100"
    );
    assert_eq!(
        after,
        DownloadCount {
            files: 2,
            bytes: 90
        }
    );
    uncount(300, after.files, 1_000);
    let (after, _) = store.count_download(limited(0)).wait().expect("count");
    assert_eq!(
        after,
        DownloadCount { files: 3, bytes: 0 },
        "never below zero"
    );

    store.reset_downloads("user:u4").wait().expect("reset");
    let (fresh, _) = store.count_download(limited(90)).wait().expect("count");
    uncount(300, after.files, 90);
    let (_, counted) = store.count_download(limited(20)).wait().expect("count");
    assert!(
        !counted,
        "a refund of a download counted before the reset takes nothing from the new count ({fresh:?})"
    );
}
