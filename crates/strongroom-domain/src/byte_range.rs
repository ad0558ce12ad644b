/// One HTTP byte range (`Range: bytes=…`), before it is checked against a length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=a-b`: a through b, inclusive.
    Closed { first: u64, last: u64 },
    /// `bytes=a-`: a to the end.
    From { first: u64 },
    /// `bytes=-n`: the last n bytes.
    Suffix { length: u64 },
}

impl ByteRange {
    /// Parses a single range. Returns `None` for anything else (several ranges, other units,
    /// bad syntax): a server may then ignore the header and send everything (RFC 9110 §14.2).
    pub fn parse(header: &str) -> Option<Self> {
        let spec = header.trim().strip_prefix("bytes=")?.trim();
        if spec.contains(',') {
            return None;
        }
        let (first, last) = spec.split_once('-')?;
        let digits = |text: &str| text.trim().bytes().all(|b| b.is_ascii_digit());
        if !digits(first) || !digits(last) {
            return None;
        }
        match (first.trim(), last.trim()) {
            ("", "") => None,
            ("", length) => Some(ByteRange::Suffix {
                length: length.parse().ok()?,
            }),
            (first, "") => Some(ByteRange::From {
                first: first.parse().ok()?,
            }),
            (first, last) => {
                let (first, last) = (first.parse().ok()?, last.parse().ok()?);
                (first <= last).then_some(ByteRange::Closed { first, last })
            }
        }
    }

    /// The inclusive (first, last) byte positions within `length` bytes, or `None` when the
    /// range cannot be satisfied (416).
    pub fn resolve(self, length: u64) -> Option<(u64, u64)> {
        if length == 0 {
            return None;
        }
        match self {
            ByteRange::Closed { first, last } => {
                (first < length).then(|| (first, last.min(length - 1)))
            }
            ByteRange::From { first } => (first < length).then_some((first, length - 1)),
            ByteRange::Suffix { length: 0 } => None,
            ByteRange::Suffix { length: suffix } => {
                Some((length.saturating_sub(suffix), length - 1))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_resolves_single_ranges() {
        assert_eq!(
            ByteRange::parse("bytes=0-99").unwrap().resolve(1000),
            Some((0, 99))
        );
        assert_eq!(
            ByteRange::parse("bytes=900-").unwrap().resolve(1000),
            Some((900, 999))
        );
        assert_eq!(
            ByteRange::parse("bytes=-100").unwrap().resolve(1000),
            Some((900, 999))
        );
        assert_eq!(
            ByteRange::parse("bytes=-5000").unwrap().resolve(1000),
            Some((0, 999))
        );
        assert_eq!(
            ByteRange::parse("bytes=990-2000").unwrap().resolve(1000),
            Some((990, 999))
        );
        assert_eq!(
            ByteRange::parse("bytes=1000-").unwrap().resolve(1000),
            None,
            "416"
        );
        assert_eq!(ByteRange::parse("bytes=0-0").unwrap().resolve(0), None);
        for ignored in [
            "bytes=0-1,5-6",
            "items=0-1",
            "bytes=5-1",
            "bytes=-",
            "bytes=a-b",
            "0-1",
        ] {
            assert_eq!(ByteRange::parse(ignored), None, "{ignored}");
        }
    }
}
