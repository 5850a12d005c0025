//! A tenant's connections, as the application shows them: state, portal,
//! scopes, when it connected, the last webhook, the last completed sync
//! and the running sync's progress per object type. Found through the
//! Control table's tenant index ([`ConnectionStore::tenant_connections`]),
//! never a Scan.

use chrono::{DateTime, TimeZone, Utc};
use hubsync_hubspot::{ObjectType, PortalId};
use hubsync_store::{
    Connection, ConnectionStatus, ConnectionStore, RunReport, RunStatus, SyncJobKind,
    SyncStateStore,
};
use serde::Serialize;

use crate::AdminError;

/// Runs read to find the running and the last completed sync.
const RECENT_RUNS: usize = 10;

/// One object type's part of a sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TypeProgress {
    pub object_type: ObjectType,
    pub status: RunStatus,
    /// HubSpot records walked so far.
    pub done: u64,
    /// HubSpot's count when the type started (known from the first
    /// progress report on).
    pub estimated_total: Option<u64>,
    /// Why the type failed (no personal data).
    pub error: Option<String>,
}

/// A sync run, summarised for the application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncSummary {
    pub run_id: String,
    /// `initial_sync`, `resync` or `nightly`.
    pub kind: SyncJobKind,
    pub status: RunStatus,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub done: u64,
    /// The sum of the types' estimates, once every type has one.
    pub estimated_total: Option<u64>,
    /// Records the run had to fix (created, updated, archived, restored).
    pub drift: u64,
    /// Records the Webhooks Journal had already repaired since the previous
    /// run (changes whose webhooks never came): not drift.
    pub journal_fixed: u64,
    pub types: Vec<TypeProgress>,
    /// Types of the run that have not started yet.
    pub pending_types: Vec<ObjectType>,
}

fn at(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

impl From<&RunReport> for SyncSummary {
    fn from(r: &RunReport) -> Self {
        Self {
            run_id: r.run_id.clone(),
            kind: r.kind,
            status: r.status,
            started_at: at(r.started_at_ms),
            finished_at: r.finished_at_ms.map(at),
            done: r.done,
            estimated_total: r.estimated_total,
            drift: r.drift,
            journal_fixed: r.journal_fixed,
            types: r
                .types
                .iter()
                .map(|t| TypeProgress {
                    object_type: t.object_type,
                    status: t.status,
                    done: t.done,
                    estimated_total: t.estimated_total,
                    error: t.error.clone(),
                })
                .collect(),
            pending_types: r.pending_types.clone(),
        }
    }
}

/// A connection as the application sees it (no tokens).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectionView {
    pub tenant_id: String,
    pub portal_id: PortalId,
    /// `active`, `awaiting_setup`, `needs_reauth` or `disconnected`.
    pub state: ConnectionStatus,
    /// Why the state is what it is (e.g. `invalid_grant`).
    pub state_reason: Option<String>,
    pub scopes: Vec<String>,
    pub connected_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_webhook_at: Option<DateTime<Utc>>,
    /// The newest run that completed.
    pub last_completed_sync: Option<SyncSummary>,
    /// The newest run still running, with its progress per type.
    pub running_sync: Option<SyncSummary>,
    /// The newest run, if it failed after the last completed one.
    pub failed_sync: Option<SyncSummary>,
}

/// The view of `connection`, with its recent runs.
pub async fn view<S>(store: &S, connection: &Connection) -> Result<ConnectionView, AdminError>
where
    S: SyncStateStore,
{
    let runs = store
        .list_run_reports(connection.portal_id, RECENT_RUNS)
        .await?;
    let newest = |status: RunStatus| runs.iter().find(|r| r.status == status);
    let last_completed = newest(RunStatus::Completed);
    let failed =
        newest(RunStatus::Failed).filter(|f| last_completed.is_none_or(|c| f.run_id > c.run_id));
    Ok(ConnectionView {
        tenant_id: connection.tenant_id.clone(),
        portal_id: connection.portal_id,
        state: connection.status,
        state_reason: connection.status_reason.clone(),
        scopes: connection.scopes.clone(),
        connected_at: connection.created_at,
        updated_at: connection.updated_at,
        last_webhook_at: connection.last_webhook_at,
        last_completed_sync: last_completed.map(SyncSummary::from),
        running_sync: newest(RunStatus::Running).map(SyncSummary::from),
        failed_sync: failed.map(SyncSummary::from),
    })
}

/// Every connection of `tenant` (portal order), viewed.
pub async fn connections<S>(store: &S, tenant: &str) -> Result<Vec<ConnectionView>, AdminError>
where
    S: ConnectionStore + SyncStateStore,
{
    let mut out = Vec::new();
    for c in store.tenant_connections(tenant).await? {
        out.push(view(store, &c).await?);
    }
    Ok(out)
}

/// `portal`'s connection, if it belongs to `tenant`; a portal of another
/// tenant is as unknown as a portal never connected (no probing).
pub async fn connection_of<S>(
    store: &S,
    tenant: &str,
    portal: PortalId,
) -> Result<Connection, AdminError>
where
    S: ConnectionStore,
{
    match store.get_connection(portal).await? {
        Some(c) if c.tenant_id == tenant => Ok(c),
        _ => Err(AdminError::NotFound(format!(
            "tenant {tenant} has no connection to portal {portal}"
        ))),
    }
}

/// `portal`'s connection of `tenant`, refused unless it holds tokens —
/// active, or awaiting its setup — (what every HubSpot-reading operation
/// needs).
pub async fn active_connection_of<S>(
    store: &S,
    tenant: &str,
    portal: PortalId,
) -> Result<Connection, AdminError>
where
    S: ConnectionStore,
{
    let c = connection_of(store, tenant, portal).await?;
    if !c.status.holds_tokens() {
        return Err(AdminError::Conflict(format!(
            "portal {portal} is {}: it must be reconnected first",
            state_name(c.status)
        )));
    }
    Ok(c)
}

/// The state's name as the API and the CLI print it.
pub fn state_name(s: ConnectionStatus) -> &'static str {
    s.name()
}
