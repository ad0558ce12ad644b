use crate::DomainError;

/// A tenant's public, URL-safe name, such as `acme`. Validated once, at the boundary.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantSlug(String);

impl TenantSlug {
    pub const LENGTH_MAX: usize = 63;

    pub fn parse(slug: &str) -> Result<Self, DomainError> {
        let valid_length = (2..=Self::LENGTH_MAX).contains(&slug.len());
        let starts_with_letter = slug.bytes().next().is_some_and(|b| b.is_ascii_lowercase());
        let valid_characters = slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if RESERVED.contains(&slug) {
            Err(DomainError::ReservedSlug {
                slug: slug.to_owned(),
            })
        } else if valid_length && starts_with_letter && valid_characters && !slug.ends_with('-') {
            Ok(Self(slug.to_owned()))
        } else {
            Err(DomainError::InvalidSlug {
                slug: truncate_for_message(slug),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for TenantSlug {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// Names a tenant cannot take: the control plane's audit chain, its daily-file directory and
/// the operators' `?tenant=` filter are all called `control`, and a tenant of that name would
/// share them.
const RESERVED: &[&str] = &[CONTROL_PLANE];

/// The control plane's name where a tenant's slug would otherwise stand.
pub const CONTROL_PLANE: &str = "control";

/// Echoing a hostile 1 MiB value back in an error helps nobody; 80 characters identify it.
pub(crate) fn truncate_for_message(value: &str) -> String {
    value.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_slugs() {
        for slug in ["acme", "acme-nv", "a1", "b2b-corp-9"] {
            assert_eq!(TenantSlug::parse(slug).unwrap().as_str(), slug);
        }
    }

    #[test]
    fn rejects_bad_slugs() {
        for slug in [
            "",
            "a",
            "Acme",
            "1acme",
            "acme-",
            "ac me",
            "ac/me",
            "acme_nv",
            &"a".repeat(64),
            "control",
        ] {
            assert!(
                TenantSlug::parse(slug).is_err(),
                "{slug:?} should be rejected"
            );
        }
    }
}
