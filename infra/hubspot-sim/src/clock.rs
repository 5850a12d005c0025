//! The simulator clock: real time plus an offset that tests can advance.

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};

/// Sim time in epoch milliseconds = wall clock + offset.
#[derive(Debug, Default)]
pub struct SimClock {
    offset_ms: AtomicI64,
    last_mod_ms: AtomicI64,
}

impl SimClock {
    pub fn new() -> Self {
        Self::default()
    }

    /// Current sim time (epoch ms).
    pub fn now_ms(&self) -> i64 {
        Utc::now().timestamp_millis() + self.offset_ms.load(Ordering::Relaxed)
    }

    /// Move sim time forward (or back, with a negative value).
    pub fn advance_ms(&self, ms: i64) {
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }

    pub fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::Relaxed)
    }

    /// A modification timestamp: `max(now, previous + 1)`, so two successive
    /// changes never share a timestamp (globally, hence also per object).
    pub fn next_modification_ms(&self) -> i64 {
        let now = self.now_ms();
        let mut prev = self.last_mod_ms.load(Ordering::Relaxed);
        loop {
            let next = now.max(prev + 1);
            match self.last_mod_ms.compare_exchange_weak(
                prev,
                next,
                Ordering::SeqCst,
                Ordering::Relaxed,
            ) {
                Ok(_) => return next,
                Err(p) => prev = p,
            }
        }
    }
}

/// HubSpot's timestamp format: `2024-05-01T12:00:00.123Z`.
pub fn iso_ms(ms: i64) -> String {
    match DateTime::<Utc>::from_timestamp_millis(ms) {
        Some(dt) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            dt.year(),
            dt.month(),
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second(),
            dt.timestamp_subsec_millis()
        ),
        None => "1970-01-01T00:00:00.000Z".to_string(),
    }
}

/// Parses epoch milliseconds (`"1714564800123"`), RFC 3339 / ISO-8601
/// (`"2024-05-01T12:00:00.123Z"`) or a date (`"2024-05-01"`, midnight UTC).
pub fn parse_ts(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(n) = s.parse::<i64>() {
        return Some(n);
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.timestamp_millis());
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d
            .and_hms_opt(0, 0, 0)
            .map(|n| n.and_utc().timestamp_millis());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_millis() {
        assert_eq!(iso_ms(1_714_564_800_123), "2024-05-01T12:00:00.123Z");
        assert_eq!(
            parse_ts("2024-05-01T12:00:00.123Z"),
            Some(1_714_564_800_123)
        );
        assert_eq!(parse_ts("1714564800123"), Some(1_714_564_800_123));
        assert_eq!(parse_ts("2024-05-01"), Some(1_714_521_600_000));
    }

    #[test]
    fn modification_timestamps_strictly_increase() {
        let c = SimClock::new();
        let a = c.next_modification_ms();
        let b = c.next_modification_ms();
        assert!(b > a);
    }
}
