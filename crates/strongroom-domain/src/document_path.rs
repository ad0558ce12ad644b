use crate::DomainError;
use crate::slug::truncate_for_message;

/// A document's path inside a tenant, such as `reports/2026/q1.pdf`: segments separated by
/// `/`, none empty, `.` or `..`, no control characters, at most 1024 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DocumentPath(String);

/// A listing prefix: empty (everything) or whole directory segments ending in `/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DocumentPrefix(String);

impl DocumentPath {
    pub const LENGTH_MAX: usize = 1024;

    pub fn parse(path: &str) -> Result<Self, DomainError> {
        let invalid = |reason: &str| DomainError::InvalidPath {
            path: truncate_for_message(path),
            reason: reason.to_owned(),
        };
        if path.is_empty() {
            return Err(invalid("a path is required"));
        }
        if path.len() > Self::LENGTH_MAX {
            return Err(invalid("a path may be at most 1024 bytes"));
        }
        check_segments(path.split('/')).map_err(invalid)?;
        Ok(Self(path.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Every directory prefix of the path, shortest first: `a/b/c` → `["", "a/", "a/b/"]`.
    pub fn directory_prefixes(&self) -> Vec<DocumentPrefix> {
        let mut prefixes = vec![DocumentPrefix(String::new())];
        for (index, _) in self.0.match_indices('/') {
            prefixes.push(DocumentPrefix(self.0[..=index].to_owned()));
        }
        prefixes
    }
}

impl DocumentPrefix {
    pub fn parse(prefix: &str) -> Result<Self, DomainError> {
        let invalid = |reason: &str| DomainError::InvalidPath {
            path: truncate_for_message(prefix),
            reason: reason.to_owned(),
        };
        if prefix.is_empty() {
            return Ok(Self(String::new()));
        }
        let Some(directories) = prefix.strip_suffix('/') else {
            return Err(invalid(
                "a listing prefix is whole directories ending in '/', such as reports/2026/ (names are encrypted, so partial names cannot be matched)",
            ));
        };
        if prefix.len() > DocumentPath::LENGTH_MAX {
            return Err(invalid("a prefix may be at most 1024 bytes"));
        }
        check_segments(directories.split('/')).map_err(invalid)?;
        Ok(Self(prefix.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn check_segments<'a>(segments: impl Iterator<Item = &'a str>) -> Result<(), &'static str> {
    for segment in segments {
        match segment {
            "" => {
                return Err(
                    "empty path segments (a leading, trailing or doubled '/') are not allowed",
                );
            }
            "." | ".." => return Err("'.' and '..' segments are not allowed"),
            _ if segment.chars().any(char::is_control) => {
                return Err("control characters (including NUL) are not allowed");
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_paths_and_lists_their_directories() {
        let path = DocumentPath::parse("reports/2026/q1 résumé.pdf").unwrap();
        let prefixes: Vec<String> = path
            .directory_prefixes()
            .iter()
            .map(|prefix| prefix.as_str().to_owned())
            .collect();
        assert_eq!(prefixes, ["", "reports/", "reports/2026/"]);
        assert!(DocumentPath::parse("file").is_ok());
    }

    #[test]
    fn refuses_traversal_empty_segments_controls_and_long_paths() {
        for bad in [
            "",
            "/a",
            "a/",
            "a//b",
            "../a",
            "a/../b",
            "./a",
            "a/.",
            "a\0b",
            "a\nb",
            "a\u{7f}b",
            &"a".repeat(1025),
        ] {
            let error = DocumentPath::parse(bad).unwrap_err();
            assert!(matches!(error, DomainError::InvalidPath { .. }), "{bad:?}");
        }
        assert!(DocumentPath::parse(&"a".repeat(1024)).is_ok());
    }

    #[test]
    fn prefixes_are_whole_directories() {
        assert_eq!(DocumentPrefix::parse("").unwrap().as_str(), "");
        assert_eq!(
            DocumentPrefix::parse("reports/2026/").unwrap().as_str(),
            "reports/2026/"
        );
        for bad in ["rep", "reports", "/", "a//", "../", "a/\0/"] {
            assert!(DocumentPrefix::parse(bad).is_err(), "{bad:?}");
        }
    }
}
