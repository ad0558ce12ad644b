//! The shipped list of the 100,000 most common (breached) passwords, compared
//! case-insensitively. Source and license: `data/README.md`.

use std::sync::LazyLock;

const LIST: &str = include_str!("../data/common-passwords-100k.txt");

/// Lower-cased, sorted and deduplicated on first use (about 2 MiB, a few milliseconds).
static SORTED: LazyLock<Vec<Box<str>>> = LazyLock::new(|| {
    let mut entries: Vec<Box<str>> = LIST
        .lines()
        .filter(|line| !line.is_empty())
        .map(|line| line.to_lowercase().into_boxed_str())
        .collect();
    entries.sort_unstable();
    entries.dedup();
    entries
});

/// Whether `candidate` is on the list, ignoring case.
pub(crate) fn is_common(candidate: &str) -> bool {
    SORTED
        .binary_search_by(|entry| entry.as_ref().cmp(candidate.to_lowercase().as_str()))
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_whole_shipped_list_is_refused_ignoring_case() {
        assert_eq!(LIST.lines().count(), 100_000);
        assert_eq!(
            hex::encode(strongroom_crypto::hash_token(LIST)),
            "84f9f01da3323b41cdc030f89f7fab65bf76a7e0d5265acabb715c2b3795f148",
            "the list is the one data/README.md names"
        );
        for (line, password) in LIST.lines().enumerate() {
            assert!(is_common(password), "line {}: {password}", line + 1);
        }
        assert!(is_common("PassWord"));
        assert!(is_common("1234567890123"), "from the last thousand entries");
        assert!(!is_common("correct horse battery staple"));
        assert!(!is_common(""));
    }
}
