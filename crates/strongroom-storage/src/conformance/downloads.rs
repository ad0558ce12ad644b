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
            .map(|decision| (decision.count, decision.counted))
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
            .counted,
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
            .counted,
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
            .map(|decision| (decision.count, decision.counted))
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
            whole.count.files, expected_files,
            "a whole download is always a file"
        );
    }
    assert_eq!(
        ranged("video", 200).0.files,
        1,
        "in a new window the content counts again"
    );

    // Bytes of a download that stopped early are taken back from the counts they were
    // counted in only, never below zero, not after an admin reset the caller since (however
    // many downloads came after it); the file stays counted.
    let limited = |bytes: u64| {
        store
            .count_download(DownloadToCount {
                bytes_max: Some(100),
                ..download("user:u4", 300, "big", bytes)
            })
            .wait()
            .expect("count")
    };
    let uncount = |window_id: i64, bytes: u64| {
        store
            .uncount_download_bytes("user:u4", window_id, bytes)
            .wait()
            .expect("uncount")
    };
    let first = limited(80);
    assert!(first.counted);
    uncount(first.window_id, 50);
    uncount(first.window_id.wrapping_add(1), 1_000);
    let after = limited(60);
    assert!(
        after.counted,
        "30 bytes counted after the refund, 60 more fit in 100"
    );
    assert_eq!(
        after.count,
        DownloadCount {
            files: 2,
            bytes: 90
        }
    );
    assert_eq!(after.window_id, first.window_id, "the same counts");
    uncount(after.window_id, 1_000);
    let after = limited(0);
    assert_eq!(
        after.count,
        DownloadCount { files: 3, bytes: 0 },
        "never below zero"
    );

    store.reset_downloads("user:u4").wait().expect("reset");
    for _ in 0..3 {
        assert!(limited(30).counted);
    }
    uncount(first.window_id, 90);
    assert!(
        !limited(20).counted,
        "a refund of a download counted before the reset takes nothing from the new counts"
    );
}
