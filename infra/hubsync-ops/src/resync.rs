//! `resync`: queue a re-sync job, optionally follow it to the end.
//!
//! The message is the reconcile function's job ([`JobMessage`]: the shared
//! [`hubsync_store::SyncJob`] plus a run id the CLI chooses, so it can find
//! the run's report). When a run of a portal and type is already in
//! progress, the engine joins the job to it; `--wait` then follows that
//! run for that type.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use hubsync_hubspot::{ObjectType, PortalId};
use hubsync_messages::SqsJobQueue;
use hubsync_store::{
    ConnectionStore, DynamoStore, RunReport, RunStatus, SyncJobKind, SyncStateStore, TypeRunReport,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::{report, Ops};

/// How `--wait` follows the run.
#[derive(Debug, Clone, Copy)]
pub struct WaitOptions {
    pub timeout: Duration,
    pub poll: Duration,
}

/// What was queued (the admin API's `POST …/syncs` answers the same).
pub use hubsync_admin::sync::Queued;

/// Refuses unless `portal`'s connection is active (the engine skips
/// inactive portals, and HubSpot calls need its tokens).
pub async fn require_active(store: &DynamoStore, portal: u64) -> Result<()> {
    let connection = store
        .get_connection(PortalId(portal))
        .await
        .with_context(|| format!("read the connection of portal {portal}"))?
        .with_context(|| format!("portal {portal} has no connection; connect it first"))?;
    if !connection.status.holds_tokens() {
        bail!(
            "portal {portal} is {}: a re-sync would be skipped; the portal must be reconnected (which runs a full sync)",
            hubsync_admin::tenant::state_name(connection.status)
        );
    }
    Ok(())
}

/// Queues a re-sync of `portal` (refused unless its connection is active:
/// the engine skips inactive portals).
pub async fn queue(
    ops: &Ops,
    store: &DynamoStore,
    portal: u64,
    object: Option<ObjectType>,
) -> Result<Queued> {
    queue_types(ops, store, portal, object.into_iter().collect()).await
}

/// Queues a re-sync of `types` of `portal` (every type when empty), through
/// the admin operation the admin API uses.
pub async fn queue_types(
    ops: &Ops,
    store: &DynamoStore,
    portal: u64,
    types: Vec<ObjectType>,
) -> Result<Queued> {
    let jobs = SqsJobQueue::new(ops.sqs(), ops.sync_jobs_queue_url()?);
    hubsync_admin::sync::start(
        store,
        &jobs,
        PortalId(portal),
        SyncJobKind::Resync,
        types,
        chrono::Utc::now().timestamp_millis(),
    )
    .await
    .with_context(|| format!("queue a re-sync of portal {portal}"))
}

/// Prints what was queued (the run id).
pub fn print_queued(portal: u64, queued: &Queued, out: &mut (dyn Write + Send)) -> Result<()> {
    let types: Vec<String> = queued
        .object_types
        .iter()
        .map(ToString::to_string)
        .collect();
    writeln!(
        out,
        "queued a re-sync of portal {portal} ({}) as run {}",
        types.join(", "),
        queued.run_id
    )?;
    Ok(())
}

/// The run each type is followed in: ours, unless a run of that type was
/// already in progress (the job joins it).
async fn runs_to_follow(
    store: &DynamoStore,
    portal: PortalId,
    queued: &Queued,
    follow: &mut BTreeMap<ObjectType, String>,
    out: &mut (dyn Write + Send),
) -> Result<()> {
    for t in &queued.object_types {
        let current = follow
            .entry(*t)
            .or_insert_with(|| queued.run_id.clone())
            .clone();
        let checkpoint = store
            .get_checkpoint(portal, *t)
            .await
            .with_context(|| format!("read the {t} checkpoint of portal {portal}"))?;
        if let Some(c) = checkpoint {
            if !c.finished && c.run_id != current {
                writeln!(
                    out,
                    "{t}: run {} of portal {portal} is in progress; the re-sync joins it",
                    c.run_id
                )?;
                follow.insert(*t, c.run_id);
            }
        }
    }
    Ok(())
}

fn wait_bar() -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} records {msg} ({elapsed})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Polls the followed runs until every type has finished; returns the
/// type reports.
async fn wait(
    store: &DynamoStore,
    portal: PortalId,
    queued: &Queued,
    options: WaitOptions,
    out: &mut (dyn Write + Send),
) -> Result<Vec<TypeRunReport>> {
    let started = Instant::now();
    let mut follow: BTreeMap<ObjectType, String> = BTreeMap::new();
    let bar = wait_bar();
    bar.set_message(format!("waiting for run {} to start", queued.run_id));
    let result = loop {
        let mut runs: BTreeMap<String, Option<RunReport>> = BTreeMap::new();
        let mut found: Vec<TypeRunReport> = Vec::new();
        for t in &queued.object_types {
            let run_id = follow
                .get(t)
                .cloned()
                .unwrap_or_else(|| queued.run_id.clone());
            if !runs.contains_key(&run_id) {
                let r = store
                    .get_run_report(portal, &run_id)
                    .await
                    .with_context(|| format!("read run {run_id} of portal {portal}"))?;
                runs.insert(run_id.clone(), r);
            }
            if let Some(tr) = runs
                .get(&run_id)
                .and_then(Option::as_ref)
                .and_then(|r| r.types.iter().find(|x| x.object_type == *t))
            {
                found.push(tr.clone());
            }
        }
        if found.len() < queued.object_types.len() {
            runs_to_follow(store, portal, queued, &mut follow, out).await?;
        }
        let done: u64 = found.iter().map(|t| t.done).sum();
        let total: Option<u64> = if found.len() == queued.object_types.len() {
            found.iter().map(|t| t.estimated_total).sum()
        } else {
            None
        };
        if let Some(total) = total {
            bar.set_length(total.max(done));
        }
        bar.set_position(done);
        let running: Vec<String> = found
            .iter()
            .filter(|t| t.status == RunStatus::Running)
            .map(|t| t.object_type.to_string())
            .collect();
        if !found.is_empty() {
            bar.set_message(format!(
                "run {}: {} of {} types started{}",
                queued.run_id,
                found.len(),
                queued.object_types.len(),
                if running.is_empty() {
                    String::new()
                } else {
                    format!(", running: {}", running.join(", "))
                }
            ));
        }
        if found.len() == queued.object_types.len() && running.is_empty() {
            break Ok(found);
        }
        if started.elapsed() >= options.timeout {
            break Err(anyhow::anyhow!(
                "timed out after {:?}: run {} of portal {portal} has not finished ({done} records done, {} of {} types started); the run goes on — check `hubsync-ops report --portal {portal} --run {}`",
                options.timeout,
                queued.run_id,
                found.len(),
                queued.object_types.len(),
                queued.run_id
            ));
        }
        bar.tick();
        tokio::time::sleep(options.poll).await;
    };
    bar.finish_and_clear();
    result
}

/// The `resync` command.
pub async fn resync(
    ops: &Ops,
    portal: u64,
    object: Option<ObjectType>,
    wait_options: Option<WaitOptions>,
    out: &mut (dyn Write + Send),
) -> Result<()> {
    let store = ops.store()?;
    let queued = queue(ops, &store, portal, object).await?;
    print_queued(portal, &queued, out)?;
    match wait_options {
        Some(options) => follow(&store, portal, &queued, options, out).await,
        None => Ok(()),
    }
}

/// `--wait`: follows the queued run to its end, prints its report(s);
/// fails when a type failed or on the timeout.
pub async fn follow(
    store: &DynamoStore,
    portal: u64,
    queued: &Queued,
    options: WaitOptions,
    out: &mut (dyn Write + Send),
) -> Result<()> {
    let reports = wait(store, PortalId(portal), queued, options, out).await?;
    let mut run_ids: Vec<&str> = reports.iter().map(|t| t.run_id.as_str()).collect();
    run_ids.sort_unstable();
    run_ids.dedup();
    for run_id in run_ids {
        if let Some(r) = store
            .get_run_report(PortalId(portal), run_id)
            .await
            .with_context(|| format!("read run {run_id} of portal {portal}"))?
        {
            report::print(&r, out)?;
        }
    }
    let failed: Vec<String> = reports
        .iter()
        .filter(|t| t.status == RunStatus::Failed)
        .map(|t| {
            format!(
                "{}: {}",
                t.object_type,
                t.error.as_deref().unwrap_or("failed")
            )
        })
        .collect();
    if !failed.is_empty() {
        bail!(
            "the re-sync of portal {portal} failed ({})",
            failed.join("; ")
        );
    }
    writeln!(out, "re-sync of portal {portal} completed")?;
    Ok(())
}
