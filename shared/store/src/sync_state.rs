//! Sync state in the Control table: the checkpoints of long reconciliation
//! runs, their per-type run reports (progress while in flight), and the name
//! of the lease that keeps one run per portal and object type.
//!
//! # Items (Control table)
//! - Checkpoint: `pk = "SYNC#{portal}#{objectType}"`, `sk = "CHECKPOINT"`.
//!   One per portal and type, overwritten as a run advances and kept after
//!   it finishes (the next run starts from a fresh cursor). Writes are a
//!   compare-and-swap on `seq`: a checkpoint with `seq = n` is only stored
//!   over `seq = n - 1` (or over nothing when `n = 1`), so an invocation
//!   that lost its lease (and was overtaken) cannot move the run backwards.
//! - Run report of one type: `pk = "RUN#{portal}"`, `sk = "{runId}#{type}"`,
//!   written at every checkpoint and at the end; [`RunReport`] aggregates a
//!   run's types. Reports carry the table's TTL attribute (kept 90 days).
//! - The run lock is a [`crate::TokenStore`] lease named
//!   [`run_lock_name`].

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use hubsync_mapping::ids::{ObjectId, ObjectType, PortalId};
use serde::{Deserialize, Serialize};

use crate::dynamo::{sdk_error, DynamoStore};
use crate::error::StoreError;
use crate::memory::MemoryStore;
use crate::model::{attr, Item};
use hubsync_messages::SyncJobKind;

mod dynamo;

mod memory;
pub use memory::*;

/// Control-table key prefix of checkpoints.
pub const CHECKPOINT_PK_PREFIX: &str = "SYNC#";
/// Control-table sort key of a checkpoint.
pub const CHECKPOINT_SK: &str = "CHECKPOINT";
/// Control-table key prefix of run reports.
pub const RUN_PK_PREFIX: &str = "RUN#";
/// How long run reports are kept (the table's TTL removes them later).
pub const RUN_REPORT_RETENTION_SECS: i64 = 90 * 24 * 3600;

/// The lease that makes one reconciliation run per portal and type at a
/// time.
pub fn run_lock_name(portal: PortalId, object_type: ObjectType) -> String {
    format!("reconcile#{portal}#{}", object_type.as_api_path())
}

/// What a run did to one object type. Counts are of records unless named
/// otherwise.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TypeCounters {
    /// Live objects HubSpot listed.
    pub listed: u64,
    /// Stored records the scan walked.
    pub stored_seen: u64,
    /// Written because nothing was stored.
    pub created: u64,
    /// Written because HubSpot's mapped content differs (newer version).
    pub updated: u64,
    /// Written only to move the version forward (HubSpot changed nothing
    /// mapped): not drift.
    pub version_only: u64,
    /// A mapping change, not drift: same version, other content; or
    /// archived out of scope / brought back into scope while HubSpot's
    /// version had not moved since the record was mapped with an earlier
    /// config (see `RecordWrite::mapping_fp`).
    pub remapped: u64,
    /// Times the portal's owners cache was refreshed from HubSpot.
    pub owner_refreshes: u64,
    /// Identical: no write.
    pub unchanged: u64,
    /// Archived records HubSpot lists again, made active.
    pub unarchived: u64,
    /// Of `unarchived`: HubSpot's version had not moved past the archive,
    /// restored by the listing-after-archive rule.
    pub restored_same_version: u64,
    /// Archived records HubSpot listed, but from a listing that may predate
    /// the archive: left for the next run.
    pub deferred_restores: u64,
    /// Archived: HubSpot deleted them (found in the recycle bin).
    pub archived_deleted: u64,
    /// Archived: gone and not in the recycle bin (merged away or purged).
    pub archived_merged: u64,
    /// Archived: no longer qualifying (a contact without email).
    pub archived_out_of_scope: u64,
    /// A newer version was already stored (a webhook got there first).
    pub stale: u64,
    /// Privacy tombstones left as they are.
    pub tombstoned: u64,
    /// Not synced, by reason (e.g. `missing_email`).
    pub skipped: BTreeMap<String, u64>,
    /// Fields that failed to convert (the records were still written).
    pub field_errors: u64,
    /// Records stored with fields emptied because they were over
    /// DynamoDB's item limit (each field a `too_large` sync issue).
    #[serde(default)]
    pub too_large: u64,
    /// Records that could not be written at all (bad field names).
    pub errors: u64,
    /// HubSpot list pages read (live listing).
    pub pages: u64,
    /// Recycle-bin pages read.
    pub bin_pages: u64,
    /// Search pages read (the downward half of a list + search run).
    #[serde(default)]
    pub search_pages: u64,
    /// Batch reads that confirmed records gone.
    pub confirm_reads: u64,
    /// HubSpot API calls the run made (list, recycle bin, search, batch
    /// read, count), not counting retries.
    pub hubspot_calls: u64,
    /// HTTP requests to HubSpot including retries, for the portal, while
    /// the run was active.
    pub http_requests: u64,
    /// 429 answers seen for the portal while the run was active.
    pub rate_limited: u64,
    /// Pages whose ids were not above everything listed before.
    pub order_violations: u64,
    /// Writes to the Records table (upserts and archives, refused ones
    /// included).
    pub record_writes: u64,
    /// Writes to the Control table (checkpoints, reports, lease).
    pub state_writes: u64,
    /// Records the Webhooks Journal repaired (changes whose webhooks never
    /// came) between the type's previous completed run and this one's end:
    /// differences this run did not have to find. Not drift.
    #[serde(default)]
    pub journal_fixed: u64,
    /// Schema drift: HubSpot properties the portal's mapping config reads
    /// that HubSpot no longer defines (deleted after the config was saved),
    /// sorted. Their fields map to null until the config is fixed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub schema_drift: Vec<String>,
}

impl TypeCounters {
    /// Records the webhooks had missed: what the diff had to create,
    /// update, archive or un-archive. Version-only moves, mapping changes,
    /// skips and stale reads are not drift.
    pub fn drift(&self) -> u64 {
        self.created
            + self.updated
            + self.unarchived
            + self.archived_deleted
            + self.archived_merged
            + self.archived_out_of_scope
    }

    /// Adds `other` to these counts.
    pub fn absorb(&mut self, o: &TypeCounters) {
        hubsync_runtime::add_counts!(self, o;
            listed, stored_seen, created, updated, version_only, remapped,
            owner_refreshes, unchanged, unarchived, restored_same_version,
            deferred_restores, archived_deleted, archived_merged,
            archived_out_of_scope, stale, tombstoned, field_errors, too_large, errors, pages,
            bin_pages, search_pages, confirm_reads, hubspot_calls, http_requests, rate_limited,
            order_violations, record_writes, state_writes, journal_fixed
        );
        for (k, v) in &o.skipped {
            *self.skipped.entry(k.clone()).or_default() += v;
        }
        for p in &o.schema_drift {
            if !self.schema_drift.contains(p) {
                self.schema_drift.push(p.clone());
            }
        }
        self.schema_drift.sort();
    }
}

/// Where a run of one portal and type stands: enough to continue it in
/// another invocation (or after a crash) without redoing finished pages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub portal_id: PortalId,
    pub object_type: ObjectType,
    pub run_id: String,
    pub kind: SyncJobKind,
    /// Compare-and-swap counter (see the module docs).
    pub seq: u64,
    /// HubSpot's cursor for the next live page (`None`: from the start, or
    /// done when `finished`).
    #[serde(default)]
    pub hubspot_after: Option<String>,
    /// Every stored record with an id up to this one has been diffed.
    #[serde(default)]
    pub store_after: Option<ObjectId>,
    /// The highest id HubSpot listed so far (the order check).
    #[serde(default)]
    pub last_hubspot_id: Option<ObjectId>,
    /// HubSpot's order was violated: pages are diffed by key lookups and
    /// absences confirmed by batch reads.
    #[serde(default)]
    pub lookup_mode: bool,
    /// The live listing has been read to its end.
    #[serde(default)]
    pub listing_done: bool,
    /// Cursor of the recycle-bin page being consulted (`None`: the first).
    #[serde(default)]
    pub bin_cursor: Option<String>,
    /// The recycle bin has been read to its end.
    #[serde(default)]
    pub bin_done: bool,
    /// The downward half of a run that lists from the lowest id up and
    /// searches from the highest down (`None`: a list-only run).
    #[serde(default)]
    pub search: Option<SearchWalk>,
    /// Counts so far.
    #[serde(default)]
    pub counters: TypeCounters,
    /// HubSpot's record count at the start (progress denominator).
    #[serde(default)]
    pub estimated_total: Option<u64>,
    /// When the run started (epoch ms).
    pub started_at_ms: i64,
    /// When this checkpoint was written (epoch ms).
    pub updated_at_ms: i64,
    /// Time spent inside invocations (ms), all invocations together.
    #[serde(default)]
    pub active_ms: u64,
    /// Invocations that worked on the run.
    #[serde(default)]
    pub invocations: u32,
    /// The run is complete; the next job starts a new run.
    #[serde(default)]
    pub finished: bool,
    /// Who wrote it (an invocation id; diagnostics only).
    #[serde(default)]
    pub holder: String,
    /// Every type of the run (empty: this type only).
    #[serde(default)]
    pub run_types: Vec<ObjectType>,
}

/// Where the search half of a list + search run stands: it walks
/// HubSpot's ids downwards, 200 a page, by `hs_object_id` windows (a new
/// query each page, so search's 10,000-result cap never applies), until it
/// meets the listing coming up.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchWalk {
    /// Every id from this one up has been searched and diffed (`None`:
    /// nothing yet, or the half was given up and the listing covers it
    /// all).
    #[serde(default)]
    pub below: Option<ObjectId>,
    /// The half is over: it met the listing, or was given up.
    #[serde(default)]
    pub done: bool,
}

/// The state of a run (or of one type within it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Working, or waiting for its continuation invocation.
    Running,
    /// Done.
    Completed,
    /// Stopped by an error that retrying will not fix (e.g. the grant was
    /// revoked).
    Failed,
}

/// The report of one object type within a run (also its live progress).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypeRunReport {
    pub portal_id: PortalId,
    pub run_id: String,
    pub kind: SyncJobKind,
    pub object_type: ObjectType,
    pub status: RunStatus,
    pub started_at_ms: i64,
    #[serde(default)]
    pub finished_at_ms: Option<i64>,
    pub updated_at_ms: i64,
    /// Wall time from start to finish (or to now while running).
    pub duration_ms: u64,
    /// Time spent inside invocations.
    pub active_ms: u64,
    /// Records done so far (HubSpot records walked).
    pub done: u64,
    /// HubSpot's count at the start, when known.
    #[serde(default)]
    pub estimated_total: Option<u64>,
    /// `counters.drift()`, stored for readers.
    pub drift: u64,
    pub counters: TypeCounters,
    pub invocations: u32,
    /// Why the type failed (no PII).
    #[serde(default)]
    pub error: Option<String>,
    /// Every type of the run (empty: this type only).
    #[serde(default)]
    pub run_types: Vec<ObjectType>,
}

/// A whole run of a portal: its types' reports and the totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunReport {
    pub portal_id: PortalId,
    pub run_id: String,
    pub kind: SyncJobKind,
    /// `Failed` if a type failed, `Running` while any type runs, else
    /// `Completed`.
    pub status: RunStatus,
    pub started_at_ms: i64,
    /// When the last type finished (all types finished).
    pub finished_at_ms: Option<i64>,
    pub done: u64,
    /// Sum of the types' estimates, when every type has one.
    pub estimated_total: Option<u64>,
    pub drift: u64,
    /// The types' `journal_fixed`: what the Webhooks Journal had already
    /// repaired since the previous run.
    #[serde(default)]
    pub journal_fixed: u64,
    pub hubspot_calls: u64,
    pub rate_limited: u64,
    pub types: Vec<TypeRunReport>,
    /// Types of the run that have not started yet (the run is `Running`
    /// until they have, and its total is unknown).
    pub pending_types: Vec<ObjectType>,
}

/// How long a run waits for a planned type to start before its report
/// stops counting it (a type whose job joined another run of that type
/// never reports under this run).
pub const PENDING_TYPE_LIMIT_MS: i64 = 15 * 60 * 1000;

impl RunReport {
    /// Aggregates the types of one run (`None` when empty).
    pub fn from_types(types: Vec<TypeRunReport>) -> Option<Self> {
        Self::from_types_at(types, crate::model::now_ms())
    }

    /// [`RunReport::from_types`] as of `now_ms`.
    pub fn from_types_at(mut types: Vec<TypeRunReport>, now_ms: i64) -> Option<Self> {
        types.sort_by_key(|t| t.object_type);
        let first = types.first()?;
        let started_at_ms = types.iter().map(|t| t.started_at_ms).min()?;
        let mut pending_types: Vec<ObjectType> = types
            .iter()
            .flat_map(|t| t.run_types.iter().copied())
            .filter(|p| !types.iter().any(|t| t.object_type == *p))
            .collect();
        pending_types.sort();
        pending_types.dedup();
        if now_ms.saturating_sub(started_at_ms) > PENDING_TYPE_LIMIT_MS {
            pending_types.clear();
        }
        let status = if types.iter().any(|t| t.status == RunStatus::Failed) {
            RunStatus::Failed
        } else if !pending_types.is_empty() || types.iter().any(|t| t.status == RunStatus::Running)
        {
            RunStatus::Running
        } else {
            RunStatus::Completed
        };
        let finished_at_ms = if status == RunStatus::Running {
            None
        } else {
            types.iter().filter_map(|t| t.finished_at_ms).max()
        };
        Some(Self {
            portal_id: first.portal_id,
            run_id: first.run_id.clone(),
            kind: first.kind,
            status,
            started_at_ms,
            finished_at_ms,
            done: types.iter().map(|t| t.done).sum(),
            estimated_total: if pending_types.is_empty() {
                types.iter().map(|t| t.estimated_total).sum()
            } else {
                None
            },
            drift: types.iter().map(|t| t.drift).sum(),
            journal_fixed: types.iter().map(|t| t.counters.journal_fixed).sum(),
            hubspot_calls: types.iter().map(|t| t.counters.hubspot_calls).sum(),
            rate_limited: types.iter().map(|t| t.counters.rate_limited).sum(),
            types,
            pending_types,
        })
    }
}

/// Checkpoints and run reports (Control table). Implemented by
/// [`DynamoStore`] and [`MemoryStore`] with the same semantics.
pub trait SyncStateStore: Send + Sync {
    /// The checkpoint of a portal and type, if any (strongly consistent).
    fn get_checkpoint(
        &self,
        portal: PortalId,
        object_type: ObjectType,
    ) -> impl Future<Output = Result<Option<Checkpoint>, StoreError>> + Send;

    /// Stores `checkpoint` if the stored one has `seq = checkpoint.seq - 1`
    /// (or none is stored and `checkpoint.seq == 1`). `false` when refused:
    /// someone else advanced the run.
    fn put_checkpoint(
        &self,
        checkpoint: &Checkpoint,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Writes (replaces) one type's report of a run.
    fn put_run_report(
        &self,
        report: &TypeRunReport,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// A run's report, aggregated over its types (`None`: unknown run).
    fn get_run_report(
        &self,
        portal: PortalId,
        run_id: &str,
    ) -> impl Future<Output = Result<Option<RunReport>, StoreError>> + Send;

    /// The portal's most recent runs (at most `max_runs`), newest first.
    fn list_run_reports(
        &self,
        portal: PortalId,
        max_runs: usize,
    ) -> impl Future<Output = Result<Vec<RunReport>, StoreError>> + Send;
}

fn checkpoint_key(portal: PortalId, object_type: ObjectType) -> (String, String) {
    (
        format!(
            "{CHECKPOINT_PK_PREFIX}{portal}#{}",
            object_type.as_api_path()
        ),
        CHECKPOINT_SK.to_owned(),
    )
}

fn report_key(portal: PortalId, run_id: &str, object_type: ObjectType) -> (String, String) {
    (
        format!("{RUN_PK_PREFIX}{portal}"),
        format!("{run_id}#{}", object_type.as_api_path()),
    )
}

fn with_key(mut item: Item, (pk, sk): (String, String)) -> Item {
    item.insert(attr::PK.to_owned(), AttributeValue::S(pk));
    item.insert(attr::SK.to_owned(), AttributeValue::S(sk));
    item
}

fn checkpoint_item(c: &Checkpoint) -> Result<Item, StoreError> {
    let item = serde_dynamo::aws_sdk_dynamodb_1::to_item(c)?;
    Ok(with_key(item, checkpoint_key(c.portal_id, c.object_type)))
}

fn report_item(r: &TypeRunReport) -> Result<Item, StoreError> {
    let mut item: Item = serde_dynamo::aws_sdk_dynamodb_1::to_item(r)?;
    let expires = r.updated_at_ms.div_euclid(1000) + RUN_REPORT_RETENTION_SECS;
    item.insert(
        crate::CONTROL_TTL_ATTRIBUTE.to_owned(),
        AttributeValue::N(expires.to_string()),
    );
    Ok(with_key(
        item,
        report_key(r.portal_id, &r.run_id, r.object_type),
    ))
}

fn strip(mut item: Item) -> Item {
    item.remove(attr::PK);
    item.remove(attr::SK);
    item.remove(crate::CONTROL_TTL_ATTRIBUTE);
    item
}

fn seq_of(item: &Item) -> Option<u64> {
    match item.get("seq") {
        Some(AttributeValue::N(n)) => n.parse().ok(),
        _ => None,
    }
}

/// Groups type reports by run, newest run first (run ids sort by start
/// time), keeping at most `max_runs` runs.
fn newest_runs(mut types: Vec<TypeRunReport>, max_runs: usize) -> Vec<RunReport> {
    types.sort_by(|a, b| b.run_id.cmp(&a.run_id));
    let mut runs: Vec<Vec<TypeRunReport>> = Vec::new();
    for t in types {
        let same_run = runs.last().is_some_and(|run| run[0].run_id == t.run_id);
        if same_run {
            if let Some(run) = runs.last_mut() {
                run.push(t);
            }
        } else if runs.len() == max_runs {
            break;
        } else {
            runs.push(vec![t]);
        }
    }
    runs.into_iter().filter_map(RunReport::from_types).collect()
}
