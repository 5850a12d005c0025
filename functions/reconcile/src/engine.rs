//! The diff engine: one portal and object type, HubSpot's full listing
//! merge-joined with the store's id-ordered scan.
//!
//! # The merge-join
//! HubSpot lists live objects in ascending id order, 100 per page, with
//! only the mapped properties; the store scans the partition in the same
//! order (zero-padded sort keys). A page covering ids up to `b` (the last
//! id; unbounded on the last page) is joined with the stored records whose
//! ids are `≤ b` and not yet consumed:
//!
//! | HubSpot | store | action |
//! |---|---|---|
//! | mapped | none | create |
//! | mapped | active | [`needs_write`]: skip (no DynamoDB write) or update through the version guard |
//! | mapped | archived | un-archive: an upsert when HubSpot's version moved past the archive; otherwise the *restore rule* |
//! | skipped (no email) | active | archive out of scope |
//! | any | tombstone | nothing, ever |
//! | absent | active | archive: recycle bin ⇒ deleted (at its `archivedAt`); not in the bin ⇒ confirmed by a batch read, then merged/purged |
//! | absent | archived / tombstone | nothing |
//!
//! Only metadata is compared (version and content hash); stored field
//! values are dropped as soon as a scan page is read. Memory holds one
//! HubSpot page, one recycle-bin page, one store page, and at most 100
//! pending confirmations: flat in portal size.
//!
//! **Restore rule.** HubSpot may list an object again without moving its
//! last-modified time past the deletion we archived it at (`D`), so a
//! normal upsert is refused as stale. A listing whose request *started*
//! after `D` (minus a clock-skew margin) shows the object live after its
//! deletion, so it is restored: written with version `max(v, D + 1)`. The
//! version floor keeps a late retry of the old deletion (`occurredAt = D`)
//! from archiving it again, and makes the next run's comparison a no-op.
//! When the listing may predate `D` (the deletion raced the page), the
//! record is left archived and counted as a deferred restore.
//!
//! **Archive times.** An archive must be newer than the stored version (the
//! store's guard). A deleted record is archived at `max(archivedAt, v + 1)`
//! and a merged one at `max(confirmation time, v + 1)`, where `v` is the
//! version the scan saw — so the archive lands only if nothing newer was
//! written since the scan (a webhook that restored it meanwhile wins).
//!
//! **Order check.** Every page must list ids above everything before it.
//! If HubSpot breaks that, the run switches to *lookup mode*: each page is
//! diffed against `get_record_meta` of its ids (no absence detection from
//! the join), and after the listing a verification pass walks the rest of
//! the store, confirming every active record with batch reads.
//!
//! # List + search
//! A large portal's run also walks the ids downwards by CRM search, which
//! HubSpot counts apart from the listing's budget; the listing then stops
//! where the search got to. See the `split` module.
//!
//! # Checkpoints, lease, hand-over
//! See [`Engine::run_slice`].

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hubsync_hubspot::{HubSpotError, ObjectId, ObjectType, PortalId, TokenError};
use hubsync_mapping::{missing_properties, ObjectConfig, Owners, Pipelines};
use hubsync_messages::JobMessage;
use hubsync_store::{
    run_lock_name, Checkpoint, ConnectionStatus, SearchWalk, TypeCounters, TypeRunReport,
};
use hubsync_sync::{
    association_targets, CacheFreshness, ContextLoader, CrmSource, LoadCounts, RunStore,
};
use tracing::Instrument;

mod diff;
mod run;
mod split;

use run::Run;

/// Tunables of the engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// HubSpot list page size (≤ 100).
    pub page_limit: u32,
    /// Checkpoint (and renew the lease) after this many pages, or
    /// `checkpoint_interval` after the last checkpoint, whichever comes
    /// first (default: by time only).
    pub checkpoint_every_pages: u32,
    /// Checkpoint at least this often while pages are read: a crash loses
    /// at most this much work, and a fast run (a no-change rerun) writes a
    /// handful of state items instead of three per few pages.
    pub checkpoint_interval: Duration,
    /// Store scan page size.
    pub store_page_size: u32,
    /// The run lock's lifetime; renewed at every checkpoint. Longer than
    /// the time between two checkpoints, shorter than SQS's redelivery of a
    /// crashed invocation's message.
    pub lease_ttl: Duration,
    /// Record writes in flight at once.
    pub write_concurrency: usize,
    /// Clock-skew margin of the restore rule (ms).
    pub restore_skew_ms: i64,
    /// A finished nightly or re-sync run with more drift than this logs a
    /// warning.
    pub drift_alert_threshold: u64,
    /// Ask HubSpot for the record count at the start (one search call) for
    /// progress.
    pub estimate_total: bool,
    /// Split a run whose count estimate is at least this many records
    /// into a listing from the lowest id up and a search from the highest
    /// down (the engine's `split` module); `None`: list only. Needs the
    /// estimate.
    pub search_split_min_records: Option<u64>,
    /// Search page size (≤ 200).
    pub search_page_limit: u32,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            page_limit: 100,
            checkpoint_every_pages: u32::MAX,
            checkpoint_interval: Duration::from_secs(10),
            store_page_size: 250,
            lease_ttl: Duration::from_secs(16 * 60),
            write_concurrency: 8,
            restore_skew_ms: 1_000,
            drift_alert_threshold: 100,
            estimate_total: true,
            search_split_min_records: Some(50_000),
            search_page_limit: 200,
        }
    }
}

/// When an invocation must hand over: at a deadline (from the Lambda
/// context's remaining time, minus a reserve) and/or after a number of
/// pages. At least one page is processed per slice, so runs always advance.
#[derive(Debug, Clone, Copy, Default)]
pub struct SliceLimit {
    pub deadline: Option<Instant>,
    pub max_pages: Option<u32>,
}

impl SliceLimit {
    /// No limit: run to the end.
    pub fn unlimited() -> Self {
        Self::default()
    }

    fn reached(&self, pages_done: u32) -> bool {
        pages_done > 0
            && (self.max_pages.is_some_and(|m| pages_done >= m)
                || self.deadline.is_some_and(|d| Instant::now() >= d))
    }
}

/// What one invocation's slice of a run did.
#[derive(Debug, Clone, PartialEq)]
pub enum SliceOutcome {
    /// The run is complete for this type.
    Finished(TypeRunReport),
    /// Checkpointed before the limit: queue a continuation.
    HandedOver(TypeRunReport),
    /// Stopped for good (the portal's grant was revoked).
    Failed(TypeRunReport),
    /// Another invocation holds the run lock: this job joins that run.
    Busy,
    /// The job's run already finished (a duplicate or stale continuation).
    AlreadyDone { run_id: String },
    /// The portal is not connected (or needs re-authorisation).
    Inactive,
    /// The checkpoint moved under us (the lease lapsed and someone took
    /// over): this invocation stopped without writing further.
    Fenced,
}

/// Why a slice failed; the job is retried (from the last checkpoint).
pub type EngineError = hubsync_sync::SyncError;

/// The engine: a HubSpot source and a store.
pub struct Engine<C, S> {
    source: C,
    store: S,
    config: EngineConfig,
}

pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub use hubsync_messages::new_run_id;

impl<C, S> Engine<C, S>
where
    C: CrmSource,
    S: RunStore,
{
    pub fn new(source: C, store: S, config: EngineConfig) -> Self {
        Self {
            source,
            store,
            config,
        }
    }

    pub fn source(&self) -> &C {
        &self.source
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Works on the run of `job` for `object_type` until it finishes or
    /// `limit` is reached.
    ///
    /// 1. The portal must be active.
    /// 2. The run lock (a lease named [`run_lock_name`], held by `holder`,
    ///    renewed at every checkpoint) must be free: otherwise
    ///    [`SliceOutcome::Busy`] — a second job for the same portal and
    ///    type while one runs joins it instead of running twice.
    /// 3. An unfinished checkpoint is resumed (a continuation, a crash
    ///    retry, or a new job joining a paused run); otherwise a new run
    ///    starts (unless the job names a run that already finished).
    /// 4. Every `checkpoint_interval` (or `checkpoint_every_pages` pages,
    ///    when set): pending confirmations are
    ///    flushed, the lease renewed, the checkpoint stored by
    ///    compare-and-swap, and the run report (progress) updated. A crash
    ///    loses at most that many pages of progress, which are redone
    ///    idempotently.
    /// 5. At the limit: checkpoint, release the lease, and return
    ///    [`SliceOutcome::HandedOver`] so the caller queues a
    ///    continuation.
    pub async fn run_slice(
        &self,
        job: &JobMessage,
        object_type: ObjectType,
        holder: &str,
        limit: SliceLimit,
    ) -> Result<SliceOutcome, EngineError> {
        let portal = job.job.portal_id;
        match self.store.get_connection(portal).await? {
            Some(c) if c.status == ConnectionStatus::Active => {}
            other => {
                tracing::warn!(portal = %portal, object_type = %object_type,
                    status = ?other.map(|c| c.status), "portal not syncing: sync job skipped");
                return Ok(SliceOutcome::Inactive);
            }
        }
        let lock = run_lock_name(portal, object_type);
        let Some(lease) = self
            .store
            .try_acquire_lease(&lock, holder, self.config.lease_ttl)
            .await?
        else {
            tracing::info!(portal = %portal, object_type = %object_type, "a run is active for this portal and type: the job joins it");
            return Ok(SliceOutcome::Busy);
        };

        let span = tracing::info_span!(
            "reconcile_slice",
            portal = %portal,
            object_type = %object_type,
            run_id = tracing::field::Empty
        );
        let result = self
            .run_locked(job, object_type, holder, limit)
            .instrument(span)
            .await;
        let release = !matches!(result, Ok(SliceOutcome::Fenced));
        if release {
            if let Err(e) = self.store.release_lease(&lease).await {
                tracing::warn!(portal = %portal, object_type = %object_type, error = %e, "run lock not released; it lapses on its own");
            }
        }
        result
    }

    async fn run_locked(
        &self,
        job: &JobMessage,
        object_type: ObjectType,
        holder: &str,
        limit: SliceLimit,
    ) -> Result<SliceOutcome, EngineError> {
        let portal = job.job.portal_id;
        let stored = self.store.get_checkpoint(portal, object_type).await?;
        let mut fresh = false;
        let mut ck = match stored {
            Some(c) if !c.finished => {
                if job.run_id.as_deref().is_some_and(|r| r != c.run_id) {
                    tracing::info!(portal = %portal, object_type = %object_type, run_id = %c.run_id,
                        "a run of this portal and type is in progress: the job joins it");
                }
                c
            }
            Some(c) if job.continuation || job.run_id.as_deref() == Some(c.run_id.as_str()) => {
                return Ok(SliceOutcome::AlreadyDone { run_id: c.run_id });
            }
            None if job.continuation => {
                return Ok(SliceOutcome::AlreadyDone {
                    run_id: job.run_id.clone().unwrap_or_default(),
                });
            }
            previous => {
                fresh = true;
                self.new_checkpoint(job, object_type, previous.map(|c| c.seq))
            }
        };
        tracing::Span::current().record("run_id", ck.run_id.as_str());
        // The lease taken in `run_slice`; its release is counted up front.
        ck.counters.state_writes += 2;
        ck.invocations += 1;
        ck.holder = holder.to_owned();
        if ck.estimated_total.is_none() && ck.counters.pages == 0 && self.config.estimate_total {
            ck.counters.hubspot_calls += 1;
            match self.source.count(portal, object_type).await {
                Ok(n) => ck.estimated_total = n,
                Err(e) => {
                    tracing::warn!(portal = %portal, object_type = %object_type, error = %e, "record count unavailable; progress has no total");
                }
            }
        }
        if fresh
            && self
                .config
                .search_split_min_records
                .is_some_and(|min| ck.estimated_total.is_some_and(|n| n >= min))
        {
            ck.search = Some(SearchWalk::default());
        }
        let mapping = Arc::new(self.load_mapping(portal, object_type, &mut ck).await?);
        let mut run = Run::new(self, ck, holder, fresh, mapping);
        match run.drive(limit).await {
            Ok(outcome) => Ok(outcome),
            Err(EngineError::HubSpot(HubSpotError::Token(TokenError::NeedsReauth))) => {
                run.fail("needs_reauth").await
            }
            Err(e) => Err(e),
        }
    }

    /// The portal's mapping for the type (saved config, else the
    /// defaults), its owners and pipelines when it resolves them, and — for a saved
    /// config — a schema-drift check against HubSpot's current property
    /// definitions (one call per slice): properties the config reads that
    /// HubSpot no longer defines are reported in the run's counters, and
    /// their fields map to null; the run goes on.
    async fn load_mapping(
        &self,
        portal: PortalId,
        object_type: ObjectType,
        ck: &mut Checkpoint,
    ) -> Result<RunMapping, EngineError> {
        let loader = ContextLoader::new(&self.source, &self.store);
        let (config, saved) = loader.config(portal).await?;
        if saved {
            ck.counters.hubspot_calls += 1;
            match self.source.properties(portal, object_type).await {
                Ok(defs) => {
                    let drift = missing_properties(&config, object_type, &defs);
                    if !drift.is_empty() {
                        tracing::warn!(portal = %portal, object_type = %object_type,
                            properties = ?drift,
                            "schema drift: the mapping config reads properties HubSpot no longer defines; their fields map to null");
                    }
                    for p in drift {
                        if !ck.counters.schema_drift.contains(&p) {
                            ck.counters.schema_drift.push(p);
                        }
                    }
                    ck.counters.schema_drift.sort();
                }
                Err(e) => {
                    tracing::warn!(portal = %portal, object_type = %object_type, error = %e,
                        "property definitions unavailable: schema drift not checked in this slice");
                }
            }
        }
        // Owners and deal pipelines: read from HubSpot once per run (the
        // first slice of the night's run finds the cache older than the
        // run), so that a renamed owner or pipeline label reaches every
        // record by the end of the run.
        let fresh = CacheFreshness::ReadSince(ck.started_at_ms);
        let mut counts = LoadCounts::default();
        let owners = if config.needs_owners(object_type) {
            let loaded = loader.lookup::<Owners>(portal, fresh, &mut counts).await;
            absorb_load(&mut ck.counters, std::mem::take(&mut counts));
            Some(loaded?.0)
        } else {
            None
        };
        let pipelines = if config.object(object_type).needs_pipelines() {
            let loaded = loader.lookup::<Pipelines>(portal, fresh, &mut counts).await;
            absorb_load(&mut ck.counters, std::mem::take(&mut counts));
            Some(loaded?.0)
        } else {
            None
        };
        let object = config.object(object_type).clone();
        // The list scope: every member of the config's lists, once per
        // slice (HubSpot sends no list webhooks; this run applies it).
        let list_members = loader.list_members(portal, &object, &mut counts).await;
        absorb_load(&mut ck.counters, counts);
        let list_members = list_members?;
        let properties = object.properties(object_type);
        let targets = association_targets(&object);
        Ok(RunMapping {
            fingerprint: object.fingerprint(),
            config: object,
            owners,
            pipelines,
            properties,
            targets,
            list_members,
        })
    }

    fn new_checkpoint(
        &self,
        job: &JobMessage,
        object_type: ObjectType,
        previous_seq: Option<u64>,
    ) -> Checkpoint {
        let now = now_ms();
        Checkpoint {
            portal_id: job.job.portal_id,
            object_type,
            run_id: job
                .run_id
                .clone()
                .unwrap_or_else(|| new_run_id(job.job.kind, now)),
            kind: job.job.kind,
            // The first write of the run stores `seq + 1`.
            seq: previous_seq.unwrap_or(0),
            hubspot_after: None,
            store_after: None,
            last_hubspot_id: None,
            lookup_mode: false,
            listing_done: false,
            bin_cursor: None,
            bin_done: false,
            search: None,
            counters: TypeCounters::default(),
            estimated_total: None,
            started_at_ms: now,
            updated_at_ms: now,
            active_ms: 0,
            invocations: 0,
            finished: false,
            holder: String::new(),
            run_types: job.run_types.clone(),
        }
    }
}

/// What a slice maps with, loaded once per slice.
struct RunMapping {
    config: ObjectConfig,
    /// `config.fingerprint()`, stored with every record written.
    fingerprint: String,
    owners: Option<Owners>,
    pipelines: Option<Pipelines>,
    /// The HubSpot properties to request.
    properties: Vec<String>,
    /// Association target types the config maps.
    targets: Vec<ObjectType>,
    /// Members of the config's scope lists (when it has any).
    list_members: Option<BTreeSet<ObjectId>>,
}

impl RunMapping {
    fn property_refs(&self) -> Vec<&str> {
        self.properties.iter().map(String::as_str).collect()
    }
}

/// What loading a mapping context cost, in the run's counters.
fn absorb_load(c: &mut TypeCounters, counts: LoadCounts) {
    c.hubspot_calls += counts.hubspot_calls;
    c.owner_refreshes += counts.owner_writes;
    c.state_writes += counts.state_writes;
}
