//! Starting a sync: the application's "Run initial sync" / "Retry sync"
//! and `hubsync-ops resync` queue the same job on the sync-jobs queue (the
//! message the OAuth callback and the nightly fan-out queue), with a run id
//! chosen here so that the caller can follow the run's report.

use hubsync_hubspot::{ObjectType, PortalId};
use hubsync_messages::{new_run_id, JobMessage, JobQueue};
use hubsync_store::{ConnectionStatus, ConnectionStore, SyncJobKind};
use serde::Serialize;

use crate::tenant::state_name;
use crate::AdminError;

/// A queued sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Queued {
    pub portal_id: PortalId,
    /// The run's id: its report is read under it (when a run of the same
    /// portal and type is already in progress, the job joins that run).
    pub run_id: String,
    pub kind: SyncJobKind,
    pub object_types: Vec<ObjectType>,
}

/// Queues a `kind` sync of `types` of `portal` (every type when empty),
/// refused unless its connection is active or awaiting its setup (which
/// this completes: the portal becomes active). The engine skips inactive
/// portals, and HubSpot calls need its tokens. The nightly kind is the
/// schedule's own.
pub async fn start<S, Q>(
    store: &S,
    jobs: &Q,
    portal: PortalId,
    kind: SyncJobKind,
    types: Vec<ObjectType>,
    now_ms: i64,
) -> Result<Queued, AdminError>
where
    S: ConnectionStore,
    Q: JobQueue,
{
    if kind == SyncJobKind::Nightly {
        return Err(AdminError::Invalid(
            "kind must be initial_sync or resync (nightly runs are the schedule's)".into(),
        ));
    }
    let connection = store
        .get_connection(portal)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("portal {portal} has no connection")))?;
    match connection.status {
        ConnectionStatus::Active => {}
        // The setup is done: the portal starts syncing (webhooks too).
        ConnectionStatus::AwaitingSetup => {
            store
                .set_connection_status(portal, ConnectionStatus::Active, Some("setup_completed"))
                .await?;
            tracing::info!(portal = %portal, "setup completed: the portal syncs from now on");
        }
        other => {
            return Err(AdminError::Conflict(format!(
                "portal {portal} is {}: a sync would be skipped; the portal must be reconnected (which runs a full sync)",
                state_name(other)
            )))
        }
    }
    let mut job = JobMessage::new(kind, portal, types);
    let run_id = new_run_id(kind, now_ms);
    job.run_id = Some(run_id.clone());
    jobs.enqueue(std::slice::from_ref(&job)).await?;
    tracing::info!(portal = %portal, run_id = %run_id, "sync queued");
    Ok(Queued {
        portal_id: portal,
        run_id,
        kind,
        object_types: job.types(),
    })
}
