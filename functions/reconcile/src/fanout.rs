//! The 02:00 UTC schedule: one job per active portal and object type.

use chrono::{DateTime, Timelike, Utc};
use hubsync_hubspot::ObjectType;
use hubsync_runtime::metrics::Metrics;
use hubsync_store::{ConnectionStatus, ConnectionStore, StoreError, SyncJobKind};
use serde::{Deserialize, Serialize};

use crate::engine::new_run_id;
use hubsync_messages::JobMessage;
use hubsync_messages::{JobQueue, QueueError};

/// The EventBridge Scheduler payload (the schedule target's `Input`):
/// `{"schedule":"nightly","scheduled_time":"<aws.scheduler.scheduled-time>"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleEvent {
    /// Which schedule fired (`nightly`).
    pub schedule: String,
    /// The scheduled time (RFC 3339); the same for retries of one firing,
    /// so they collapse into one run.
    #[serde(default)]
    pub scheduled_time: Option<String>,
}

impl ScheduleEvent {
    /// The firing's time in epoch ms: the scheduled time, else now
    /// truncated to the minute.
    pub fn at_ms(&self) -> i64 {
        self.scheduled_time
            .as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.timestamp_millis())
            .unwrap_or_else(|| {
                let now = Utc::now();
                now.with_second(0)
                    .and_then(|t| t.with_nanosecond(0))
                    .unwrap_or(now)
                    .timestamp_millis()
            })
    }
}

/// What the fan-out queued.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FanOut {
    pub run_id: String,
    pub portals: usize,
    pub skipped_portals: usize,
    pub jobs: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum FanOutError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("queue: {0}")]
    Queue(#[from] QueueError),
}

/// Queues one nightly job per active portal (all object types; split per
/// type by the handler), all with the run id of this firing (a duplicate
/// firing finds the runs done).
pub async fn fan_out(
    connections: &impl ConnectionStore,
    queue: &impl JobQueue,
    event: &ScheduleEvent,
) -> Result<FanOut, FanOutError> {
    let run_id = new_run_id(SyncJobKind::Nightly, event.at_ms());
    let mut out = FanOut {
        run_id: run_id.clone(),
        ..FanOut::default()
    };
    let mut jobs = Vec::new();
    for c in connections.list_connections().await? {
        if c.status != ConnectionStatus::Active {
            out.skipped_portals += 1;
            continue;
        }
        out.portals += 1;
        // One job for every type: the handler splits it per type, holding
        // back the types whose scope follows companies until the companies
        // of the run have finished.
        let mut job = JobMessage::new(SyncJobKind::Nightly, c.portal_id, ObjectType::ALL.to_vec());
        job.run_id = Some(run_id.clone());
        jobs.push(job);
    }
    queue.enqueue(&jobs).await?;
    out.jobs = jobs.len();
    tracing::info!(run_id = %out.run_id, portals = out.portals, skipped = out.skipped_portals, jobs = out.jobs, "nightly reconciliation fanned out");
    // Emitted even for zero jobs: the "nightly run did not start" alarm
    // watches for this line once a day.
    Metrics::new(crate::handler::FUNCTION)
        .count("NightlyJobsQueued", out.jobs as u64)
        .count("NightlyPortals", out.portals as u64)
        .emit();
    Ok(out)
}
