use crate::slug::truncate_for_message;
use crate::{DomainError, Timestamp};

/// No page is ever larger than this, whatever the configuration says.
pub const PAGE_LIMIT_MAX: u32 = 1000;

/// Which timestamp a listing is ordered by (ascending, ties broken by record id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListOrder {
    Created,
    Updated,
}

impl ListOrder {
    fn letter(self) -> char {
        match self {
            ListOrder::Created => 'c',
            ListOrder::Updated => 'u',
        }
    }
}

/// Where the previous page ended. Opaque to clients: hex of a small versioned text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub order: ListOrder,
    pub after_timestamp: Timestamp,
    pub after_id: String,
}

/// Format version of encoded cursors. Do not change: old cursors would turn invalid.
const CURSOR_FORMAT: &str = "1";

impl Cursor {
    pub fn encode(&self) -> String {
        let text = format!(
            "{CURSOR_FORMAT}|{}|{}|{}",
            self.order.letter(),
            self.after_timestamp.unix_micros(),
            self.after_id
        );
        hex::encode(text)
    }

    pub fn decode(encoded: &str) -> Result<Self, DomainError> {
        let bytes = hex::decode(encoded).map_err(|_| DomainError::InvalidCursor)?;
        let text = String::from_utf8(bytes).map_err(|_| DomainError::InvalidCursor)?;
        let mut parts = text.splitn(4, '|');
        let (Some(CURSOR_FORMAT), Some(order), Some(micros), Some(id)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(DomainError::InvalidCursor);
        };
        let order = match order {
            "c" => ListOrder::Created,
            "u" => ListOrder::Updated,
            _ => return Err(DomainError::InvalidCursor),
        };
        let micros = micros
            .parse::<i64>()
            .map_err(|_| DomainError::InvalidCursor)?;
        if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(DomainError::InvalidCursor);
        }
        Ok(Self {
            order,
            after_timestamp: Timestamp::from_unix_micros(micros),
            after_id: id.to_owned(),
        })
    }
}

/// A validated record listing request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    pub limit: u32,
    pub order: ListOrder,
    pub cursor: Option<Cursor>,
    pub updated_after: Option<Timestamp>,
    /// `where.<field>=<value>` pairs, in the order given.
    pub filters: Vec<(String, String)>,
}

impl ListQuery {
    pub const FILTERS_MAX: usize = 8;

    /// Parses query-string pairs. Unknown parameters are refused rather than silently ignored,
    /// so a typo such as `limt=5` does not quietly return the default page.
    pub fn parse(
        pairs: &[(String, String)],
        limit_default: u32,
        limit_max: u32,
    ) -> Result<Self, DomainError> {
        let limit_max = limit_max.clamp(1, PAGE_LIMIT_MAX);
        let mut query = Self {
            limit: limit_default.clamp(1, limit_max),
            order: ListOrder::Created,
            cursor: None,
            updated_after: None,
            filters: Vec::new(),
        };
        let mut cursor_text = None;
        for (key, value) in pairs {
            let invalid = |reason: String| DomainError::InvalidQuery {
                parameter: truncate_for_message(key),
                reason,
            };
            match key.as_str() {
                "limit" => {
                    let limit = value.parse::<u32>().map_err(|_| invalid(format!("expected an integer from 1 to {limit_max}")))?;
                    if !(1..=limit_max).contains(&limit) {
                        return Err(invalid(format!("expected an integer from 1 to {limit_max}")));
                    }
                    query.limit = limit;
                }
                "order" => {
                    query.order = match value.as_str() {
                        "created" => ListOrder::Created,
                        "updated" => ListOrder::Updated,
                        _ => return Err(invalid("expected created or updated".to_owned())),
                    }
                }
                "cursor" => cursor_text = Some(value.clone()),
                "updated_after" => query.updated_after = Some(Timestamp::parse_rfc3339(value)?),
                _ => match key.strip_prefix("where.") {
                    Some(field) if !field.is_empty() => {
                        if query.filters.len() == Self::FILTERS_MAX {
                            return Err(invalid(format!("at most {} where filters are allowed", Self::FILTERS_MAX)));
                        }
                        query.filters.push((field.to_owned(), value.clone()));
                    }
                    _ => return Err(invalid("unknown parameter; known are limit, order, cursor, updated_after and where.<field>".to_owned())),
                },
            }
        }
        if let Some(text) = cursor_text {
            let cursor = Cursor::decode(&text)?;
            if cursor.order != query.order {
                return Err(DomainError::InvalidCursor);
            }
            query.cursor = Some(cursor);
        }
        Ok(query)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        let cursor = Cursor {
            order: ListOrder::Updated,
            after_timestamp: Timestamp::from_unix_micros(42),
            after_id: "abc123".into(),
        };
        assert_eq!(Cursor::decode(&cursor.encode()).unwrap(), cursor);
        for bad in [
            "",
            "zz",
            "00",
            &hex::encode("2|c|1|a"),
            &hex::encode("1|x|1|a"),
            &hex::encode("1|c|x|a"),
            &hex::encode("1|c|1|a'--"),
        ] {
            assert_eq!(
                Cursor::decode(bad),
                Err(DomainError::InvalidCursor),
                "{bad}"
            );
        }
    }

    #[test]
    fn parses_limits_orders_and_filters() {
        let query = ListQuery::parse(
            &pairs(&[("limit", "5"), ("order", "updated"), ("where.email", "a@b")]),
            100,
            1000,
        )
        .unwrap();
        assert_eq!((query.limit, query.order), (5, ListOrder::Updated));
        assert_eq!(
            query.filters,
            vec![("email".to_string(), "a@b".to_string())]
        );
        assert_eq!(ListQuery::parse(&[], 100, 1000).unwrap().limit, 100);
        for bad in [
            ("limit", "0"),
            ("limit", "1001"),
            ("limit", "x"),
            ("order", "name"),
            ("limt", "5"),
            ("cursor", "nothex"),
            ("updated_after", "x"),
        ] {
            assert!(
                ListQuery::parse(&pairs(&[bad]), 100, 1000).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_cursor_from_another_order_is_refused() {
        let cursor = Cursor {
            order: ListOrder::Created,
            after_timestamp: Timestamp::from_unix_micros(1),
            after_id: "a".into(),
        };
        let result = ListQuery::parse(
            &pairs(&[("order", "updated"), ("cursor", &cursor.encode())]),
            100,
            1000,
        );
        assert_eq!(result, Err(DomainError::InvalidCursor));
    }
}
