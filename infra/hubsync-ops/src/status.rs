//! `status`: one screen of sync health.

use std::io::Write;

use anyhow::{Context, Result};
use hubsync_store::{Connection, ConnectionStatus, ConnectionStore, SyncStateStore};

use crate::{queues, report, Ops};

pub use hubsync_admin::tenant::state_name;

fn when(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M:%SZ").to_string())
        .unwrap_or_else(|| "-".to_owned())
}

fn connection_line(c: &Connection) -> String {
    let state = match &c.status_reason {
        Some(reason) if c.status != ConnectionStatus::Active => {
            format!("{} ({reason})", state_name(c.status))
        }
        _ => state_name(c.status).to_owned(),
    };
    format!(
        "portal {:<12} tenant {:<20} {:<32} since {}  last webhook {}",
        c.portal_id.to_string(),
        c.tenant_id,
        state,
        when(Some(c.updated_at)),
        c.last_webhook_at
            .map(|t| when(Some(t)))
            .unwrap_or_else(|| "not recorded".to_owned())
    )
}

/// The `status` command.
pub async fn status(ops: &Ops, out: &mut (dyn Write + Send)) -> Result<()> {
    let store = ops.store()?;
    let connections = store
        .list_connections()
        .await
        .context("list the connections")?;
    let count = |s: ConnectionStatus| connections.iter().filter(|c| c.status == s).count();
    writeln!(
        out,
        "connections: {} ({} active, {} awaiting_setup, {} needs_reauth, {} disconnected)",
        connections.len(),
        count(ConnectionStatus::Active),
        count(ConnectionStatus::AwaitingSetup),
        count(ConnectionStatus::NeedsReauth),
        count(ConnectionStatus::Disconnected)
    )?;
    for c in &connections {
        writeln!(out, "  {}", connection_line(c))?;
        let last = store
            .list_run_reports(c.portal_id, 1)
            .await
            .with_context(|| format!("read the runs of portal {}", c.portal_id))?;
        match last.first() {
            Some(r) => writeln!(out, "    last reconciliation: {}", report::summary(r))?,
            None => writeln!(out, "    last reconciliation: none yet")?,
        }
    }

    writeln!(out, "queues:")?;
    let sqs = ops.sqs();
    let configured = [
        (
            "events",
            "HUBSYNC_EVENTS_QUEUE_URL",
            ops.events_queue_url().ok(),
        ),
        (
            "sync-jobs",
            "HUBSYNC_SYNC_JOBS_QUEUE_URL",
            ops.sync_jobs_queue_url().ok(),
        ),
    ];
    for (label, var, url) in configured {
        let Some(url) = url else {
            writeln!(out, "  {label:<10} not configured (set {var})")?;
            continue;
        };
        let depth = queues::depth(&sqs, url).await?;
        let dlq = match queues::dead_letter_queue(&sqs, url).await? {
            Some(dlq_url) => {
                let d = queues::depth(&sqs, &dlq_url).await?;
                format!("DLQ {} depth {}", queues::queue_name(&dlq_url), d.total())
            }
            None => "no DLQ (no redrive policy)".to_owned(),
        };
        writeln!(
            out,
            "  {label:<10} backlog {} (in flight {}, delayed {})  {dlq}",
            depth.visible, depth.in_flight, depth.delayed
        )?;
    }
    Ok(())
}
