//! Run reports: printed as a table, summarised in one line, exported as CSV.
//! Reports hold counts and ids only (no record content).

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use hubsync_hubspot::PortalId;
use hubsync_store::{RunReport, RunStatus, SyncStateStore, TypeRunReport};

use crate::Ops;

/// `2026-11-23 02:00:05Z`, or `-`.
pub fn time(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.format("%Y-%m-%d %H:%M:%SZ").to_string())
        .unwrap_or_else(|| "-".to_owned())
}

pub fn run_status(s: RunStatus) -> &'static str {
    match s {
        RunStatus::Running => "running",
        RunStatus::Completed => "completed",
        RunStatus::Failed => "failed",
    }
}

fn progress(done: u64, total: Option<u64>) -> String {
    match total {
        Some(t) => format!("{done}/{t}"),
        None => format!("{done}/?"),
    }
}

fn archived(t: &TypeRunReport) -> u64 {
    let c = &t.counters;
    c.archived_deleted + c.archived_merged + c.archived_out_of_scope
}

fn skipped(t: &TypeRunReport) -> u64 {
    t.counters.skipped.values().sum()
}

/// One line: status, times, progress, drift and the main counts.
pub fn summary(r: &RunReport) -> String {
    let sum = |f: fn(&TypeRunReport) -> u64| -> u64 { r.types.iter().map(f).sum() };
    format!(
        "{} {} ({}), started {}, finished {}, done {}, created {}, updated {}, remapped {}, unchanged {}, archived {}, unarchived {}, skipped {}, errors {}, drift {}",
        r.run_id,
        run_status(r.status),
        kind(r),
        time(Some(r.started_at_ms)),
        time(r.finished_at_ms),
        progress(r.done, r.estimated_total),
        sum(|t| t.counters.created),
        sum(|t| t.counters.updated),
        sum(|t| t.counters.remapped),
        sum(|t| t.counters.unchanged),
        sum(archived),
        sum(|t| t.counters.unarchived),
        sum(skipped),
        sum(|t| t.counters.errors),
        r.drift
    )
}

fn kind(r: &RunReport) -> &'static str {
    hubsync_messages::kind_name(r.kind)
}

/// The report as a table, one row per object type.
pub fn print(r: &RunReport, out: &mut (dyn Write + Send)) -> Result<()> {
    writeln!(
        out,
        "run {} of portal {} ({}): {}",
        r.run_id,
        r.portal_id,
        kind(r),
        run_status(r.status)
    )?;
    writeln!(
        out,
        "started {}, finished {}, done {}, HubSpot calls {}, 429s {}, drift {}",
        time(Some(r.started_at_ms)),
        time(r.finished_at_ms),
        progress(r.done, r.estimated_total),
        r.hubspot_calls,
        r.rate_limited,
        r.drift
    )?;
    writeln!(
        out,
        "{:<10} {:<9} {:>13} {:>8} {:>8} {:>8} {:>9} {:>8} {:>10} {:>7} {:>6} {:>6} {:>5} {:>6} {:>9}",
        "type",
        "status",
        "done/total",
        "created",
        "updated",
        "remapped",
        "unchanged",
        "archived",
        "unarchived",
        "skipped",
        "errors",
        "calls",
        "429s",
        "drift",
        "duration"
    )?;
    for t in &r.types {
        let c = &t.counters;
        writeln!(
            out,
            "{:<10} {:<9} {:>13} {:>8} {:>8} {:>8} {:>9} {:>8} {:>10} {:>7} {:>6} {:>6} {:>5} {:>6} {:>8.1}s",
            t.object_type.to_string(),
            run_status(t.status),
            progress(t.done, t.estimated_total),
            c.created,
            c.updated,
            c.remapped,
            c.unchanged,
            archived(t),
            c.unarchived,
            skipped(t),
            c.errors,
            c.hubspot_calls,
            c.rate_limited,
            t.drift,
            t.duration_ms as f64 / 1000.0
        )?;
    }
    for t in &r.types {
        for (reason, n) in &t.counters.skipped {
            writeln!(out, "skipped: {} {reason} {n}", t.object_type)?;
        }
        if let Some(e) = &t.error {
            writeln!(out, "error: {} {e}", t.object_type)?;
        }
    }
    Ok(())
}

/// The CSV header of [`write_csv`].
pub const CSV_HEADER: &str = "portal_id,run_id,kind,object_type,status,started_at,finished_at,duration_ms,done,estimated_total,listed,created,updated,unchanged,version_only,remapped,archived_deleted,archived_merged,archived_out_of_scope,unarchived,stale,tombstoned,skipped,skipped_reasons,field_errors,errors,hubspot_calls,rate_limited,record_writes,drift,error";

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// The report as CSV: a header and one row per object type.
pub fn write_csv(r: &RunReport, w: &mut dyn Write) -> Result<()> {
    writeln!(w, "{CSV_HEADER}")?;
    for t in &r.types {
        let c = &t.counters;
        let reasons: Vec<String> = c.skipped.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let row: Vec<String> = vec![
            r.portal_id.to_string(),
            csv_field(&t.run_id),
            kind(r).to_owned(),
            t.object_type.to_string(),
            run_status(t.status).to_owned(),
            time(Some(t.started_at_ms)),
            t.finished_at_ms
                .map(|ms| time(Some(ms)))
                .unwrap_or_default(),
            t.duration_ms.to_string(),
            t.done.to_string(),
            t.estimated_total.map(|n| n.to_string()).unwrap_or_default(),
            c.listed.to_string(),
            c.created.to_string(),
            c.updated.to_string(),
            c.unchanged.to_string(),
            c.version_only.to_string(),
            c.remapped.to_string(),
            c.archived_deleted.to_string(),
            c.archived_merged.to_string(),
            c.archived_out_of_scope.to_string(),
            c.unarchived.to_string(),
            c.stale.to_string(),
            c.tombstoned.to_string(),
            skipped(t).to_string(),
            csv_field(&reasons.join(";")),
            c.field_errors.to_string(),
            c.errors.to_string(),
            c.hubspot_calls.to_string(),
            c.rate_limited.to_string(),
            c.record_writes.to_string(),
            t.drift.to_string(),
            csv_field(t.error.as_deref().unwrap_or("")),
        ];
        writeln!(w, "{}", row.join(","))?;
    }
    Ok(())
}

/// The `report` command.
pub async fn report_command(
    ops: &Ops,
    portal: u64,
    run: Option<&str>,
    csv: Option<&Path>,
    out: &mut (dyn Write + Send),
) -> Result<()> {
    let store = ops.store()?;
    let report = match run {
        Some(run_id) => store
            .get_run_report(PortalId(portal), run_id)
            .await
            .with_context(|| format!("read run {run_id} of portal {portal}"))?
            .with_context(|| format!("portal {portal} has no run {run_id}"))?,
        None => store
            .list_run_reports(PortalId(portal), 1)
            .await
            .with_context(|| format!("read the runs of portal {portal}"))?
            .into_iter()
            .next()
            .with_context(|| format!("portal {portal} has no run report yet"))?,
    };
    match csv {
        Some(path) if path == Path::new("-") => write_csv(&report, out)?,
        Some(path) => {
            let mut file = std::fs::File::create(path)
                .with_context(|| format!("create {}", path.display()))?;
            write_csv(&report, &mut file).with_context(|| format!("write {}", path.display()))?;
            file.sync_all()
                .with_context(|| format!("write {}", path.display()))?;
            print(&report, out)?;
            writeln!(
                out,
                "CSV written to {} ({} rows)",
                path.display(),
                report.types.len()
            )?;
        }
        None => print(&report, out)?,
    }
    Ok(())
}
