use crate::DomainError;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A UTC instant with microsecond precision, stored as microseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    pub fn from_unix_micros(micros: i64) -> Self {
        Self(micros)
    }

    pub fn unix_micros(self) -> i64 {
        self.0
    }

    pub fn parse_rfc3339(value: &str) -> Result<Self, DomainError> {
        let invalid = || DomainError::InvalidTimestamp {
            value: crate::slug::truncate_for_message(value),
        };
        let parsed = OffsetDateTime::parse(value, &Rfc3339).map_err(|_| invalid())?;
        let micros = parsed.unix_timestamp_nanos() / 1_000;
        i64::try_from(micros).map(Self).map_err(|_| invalid())
    }

    pub fn to_rfc3339(self) -> String {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000)
            .ok()
            .and_then(|instant| instant.format(&Rfc3339).ok())
            .unwrap_or_else(|| format!("@{}us", self.0))
    }

    /// A compact UTC stamp for file names, such as `20261125T121305Z`.
    pub fn to_file_stamp(self) -> String {
        let rfc3339 = self.to_rfc3339();
        let date_time: String = rfc3339
            .chars()
            .take(19)
            .filter(|c| *c != '-' && *c != ':')
            .collect();
        format!("{date_time}Z")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_rfc3339() {
        let stamp = Timestamp::parse_rfc3339("2026-11-25T12:13:05.123456Z").unwrap();
        assert_eq!(stamp.to_rfc3339(), "2026-11-25T12:13:05.123456Z");
        assert_eq!(stamp.to_file_stamp(), "20261125T121305Z");
        assert!(Timestamp::parse_rfc3339("yesterday").is_err());
    }
}
