//! HubSpot's timestamps: what its date-time and date properties, and an
//! object's `createdAt` / `updatedAt` / `archivedAt`, carry — read into a
//! millisecond UTC [`Timestamp`]. The version rule
//! ([`crate::HubSpotObject::version`]) and the mapping's date fields use
//! this one reader.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a value is not a timestamp. The message never contains the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("value out of range: {0}")]
    OutOfRange(&'static str),
    #[error("not a recognised date/time (ISO-8601, date-only YYYY-MM-DD, or epoch milliseconds)")]
    NotATimestamp,
}

/// A UTC instant, serialized as RFC 3339 with milliseconds and `Z`
/// (`2024-05-01T12:00:00.123Z`). Limited to years 1..=9999 so the text form
/// is always valid RFC 3339.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp(DateTime<Utc>);

impl Timestamp {
    /// From epoch milliseconds, if within years 1..=9999.
    pub fn from_epoch_ms(ms: i64) -> Option<Self> {
        DateTime::<Utc>::from_timestamp_millis(ms).and_then(Self::from_datetime)
    }

    /// From a chrono UTC instant, if within years 1..=9999. Sub-millisecond
    /// precision is dropped.
    pub fn from_datetime(dt: DateTime<Utc>) -> Option<Self> {
        use chrono::Datelike;
        if !(1..=9999).contains(&dt.year()) {
            return None;
        }
        DateTime::<Utc>::from_timestamp_millis(dt.timestamp_millis()).map(Timestamp)
    }

    pub fn epoch_ms(self) -> i64 {
        self.0.timestamp_millis()
    }

    pub fn as_datetime(self) -> DateTime<Utc> {
        self.0
    }

    pub fn to_rfc3339(self) -> String {
        self.0.to_rfc3339_opts(SecondsFormat::Millis, true)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<str>::deserialize(d)?;
        match parse_timestamp(&s) {
            Ok(Some(t)) => Ok(t),
            _ => Err(serde::de::Error::custom("invalid timestamp")),
        }
    }
}

/// A date/time as HubSpot sends it:
/// * ISO-8601 / RFC 3339 with `Z` or an offset (`2024-05-01T12:00:00.123Z`);
/// * ISO-8601 without an offset (`2024-05-01T12:00:00`), read as UTC
///   (HubSpot stores UTC);
/// * a date only (`2024-05-01`): midnight UTC, which is how HubSpot stores
///   date properties;
/// * epoch milliseconds as a digit string (`1714564800123`), optionally
///   negative.
///
/// Years outside 1..=9999 are out of range.
pub fn parse_timestamp(raw: &str) -> Result<Option<Timestamp>, TimeError> {
    let Some(s) = Some(raw.trim()).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let out_of_range = TimeError::OutOfRange("date outside years 1..=9999");
    let unsigned = s.strip_prefix('-').unwrap_or(s);
    if !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit()) {
        let ms = i64::from_str(s).map_err(|_| out_of_range.clone())?;
        return Timestamp::from_epoch_ms(ms).map(Some).ok_or(out_of_range);
    }
    let dt = if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        dt.with_timezone(&Utc)
    } else if let Ok(naive) = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f") {
        Utc.from_utc_datetime(&naive)
    } else if let Ok(date) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        Utc.from_utc_datetime(&date.and_time(chrono::NaiveTime::MIN))
    } else {
        return Err(TimeError::NotATimestamp);
    };
    Timestamp::from_datetime(dt).map(Some).ok_or(out_of_range)
}
