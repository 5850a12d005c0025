//! The pass's EMF metrics (namespace `hubsync`, dimension `Function`):
//! `JournalLagMs` (0 when the pass read everything, else now − newest
//! event read; the alarm's metric), `JournalFilesRead`,
//! `JournalEntriesRead`, `JournalEventsQueued`, `JournalUninstalls`,
//! `JournalOffsetExpired`, `JournalReaderErrors`; the relink step's
//! `RelinkGone`, `RelinkLinkersQueued`, `RelinkScansCutShort`.

use hubsync_runtime::metrics::Metrics;

use crate::reader::ReadReport;

pub const FUNCTION: &str = "journal-reader";

/// The metrics of a pass that ended with `report` (an error counts 1).
pub fn of(report: &ReadReport, failed: bool) -> Metrics {
    let mut m = Metrics::new(FUNCTION)
        .count("JournalFilesRead", report.files)
        .count("JournalEntriesRead", report.entries)
        .count("JournalEventsQueued", report.events_queued)
        .count("JournalUninstalls", report.uninstalls)
        .count("JournalOffsetExpired", u64::from(report.offset_expired))
        .count("JournalReaderErrors", u64::from(failed))
        .count("RelinkGone", report.relinks.gone)
        .count("RelinkLinkersQueued", report.relinks.linkers_queued)
        .count("RelinkScansCutShort", report.relinks.scans_cut_short);
    if let Some(lag) = report.lag_ms {
        m = m.millis("JournalLagMs", lag as f64);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_emitted_only_when_known() {
        let line = of(&ReadReport::default(), true).to_line(1);
        assert!(
            line.contains("\"JournalReaderErrors\":1.0")
                || line.contains("\"JournalReaderErrors\":1"),
            "{line}"
        );
        assert!(!line.contains("JournalLagMs"), "{line}");
        let report = ReadReport {
            lag_ms: Some(1_500),
            ..ReadReport::default()
        };
        assert!(of(&report, false).to_line(1).contains("JournalLagMs"));
    }
}
