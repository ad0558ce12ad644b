use crate::DomainError;

/// What an API token may do. Tokens carry the least set their owner asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    RecordsRead,
    RecordsWrite,
    DocumentsRead,
    DocumentsWrite,
    /// Reading the tenant's audit trail, its checkpoints and the key that signs them, so a
    /// log collector can fetch and check the trail; changing its retention stays with users.
    AuditRead,
}

impl Scope {
    pub const ALL: [Scope; 5] = [
        Scope::RecordsRead,
        Scope::RecordsWrite,
        Scope::DocumentsRead,
        Scope::DocumentsWrite,
        Scope::AuditRead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::RecordsRead => "records:read",
            Scope::RecordsWrite => "records:write",
            Scope::DocumentsRead => "documents:read",
            Scope::DocumentsWrite => "documents:write",
            Scope::AuditRead => "audit:read",
        }
    }

    pub fn parse(scope: &str) -> Result<Self, DomainError> {
        Self::ALL
            .into_iter()
            .find(|known| known.as_str() == scope)
            .ok_or_else(|| DomainError::UnknownScope {
                scope: crate::slug::truncate_for_message(scope),
                known: Self::ALL.map(Scope::as_str).join(", "),
            })
    }
}

/// A deduplicated, ordered set of scopes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScopeSet(std::collections::BTreeSet<Scope>);

impl ScopeSet {
    pub fn parse<S: AsRef<str>>(scopes: &[S]) -> Result<Self, DomainError> {
        scopes
            .iter()
            .map(|scope| Scope::parse(scope.as_ref()))
            .collect::<Result<_, _>>()
            .map(Self)
    }

    pub fn contains(&self, scope: Scope) -> bool {
        self.0.contains(&scope)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.0.iter().map(|scope| scope.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_scopes_and_names_the_unknown_one() {
        let set = ScopeSet::parse(&["records:read", "records:write", "records:read"]).unwrap();
        assert_eq!(set.names(), ["records:read", "records:write"]);
        let error = ScopeSet::parse(&["records:delete"]).unwrap_err();
        assert!(error.to_string().contains("records:delete"));
        assert!(error.to_string().contains("records:write"));
    }
}
