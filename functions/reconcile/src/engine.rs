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
//! # Checkpoints, lease, hand-over
//! See [`Engine::run_slice`].

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use hubsync_hubspot::{
    ClientStats, HubSpotError, HubSpotObject, ObjectId, ObjectType, Page, PortalId, TokenError,
};
use hubsync_mapping::{
    map_with, missing_properties, Associations, MapContext, MapOutcome, ObjectConfig, Owners,
};
use hubsync_store::{
    needs_write, run_lock_name, ArchiveOutcome, ArchiveReason, Checkpoint, ConnectionStatus,
    ConnectionStore, MappingConfigStore, OwnersCacheStore, RecordKey, RecordScan, RecordStore,
    RecordWrite, RunStatus, StoreError, StoredMeta, SyncJobKind, SyncStateStore, TokenStore,
    TypeCounters, TypeRunReport, UpsertOutcome, WriteDecision,
};

use crate::source::CrmSource;
use hubsync_messages::JobMessage;
use tracing::Instrument;

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
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("HubSpot: {0}")]
    HubSpot(#[from] HubSpotError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// A fetched HubSpot page and when its request started.
struct Fetched {
    page: Page<HubSpotObject>,
    started_at_ms: i64,
}

/// A write the diff decided on, and how to count its outcome.
enum Action {
    Upsert(RecordWrite, UpsertKind),
    Archive {
        key: RecordKey,
        occurred_at_ms: i64,
        reason: ArchiveReason,
        /// Out of scope only because the mapping config changed (counted
        /// as `remapped`, not drift).
        remapped: bool,
        /// The fingerprint of the config that put it out of scope.
        mapping_fp: Option<String>,
    },
}

#[derive(Clone, Copy)]
enum UpsertKind {
    Create,
    /// An active record: content changed, version-only, or remapped.
    Update(UpdateClass),
    /// An archived record made active again.
    Unarchive {
        same_version: bool,
        /// Back in scope only because the mapping config changed (counted
        /// as `remapped`, not drift).
        remapped: bool,
    },
}

#[derive(Clone, Copy)]
enum UpdateClass {
    Content,
    VersionOnly,
    Remapped,
}

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
    S: RecordStore
        + TokenStore
        + ConnectionStore
        + SyncStateStore
        + MappingConfigStore
        + OwnersCacheStore,
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
    /// defaults), its owners when it resolves them, and — for a saved
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
        let stored = self.store.get_mapping_config(portal).await?;
        let saved = stored.is_some();
        let config = stored.map(|s| s.config).unwrap_or_default();
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
        // Owners: the portal's cache, refreshed from HubSpot once per run
        // (the first slice of the night's run finds it older than the run).
        let owners = if config.needs_owners(object_type) {
            match self.store.get_owners_cache(portal).await? {
                Some(c) if c.refreshed_at_ms >= ck.started_at_ms => Some(c.owners),
                cached => {
                    ck.counters.hubspot_calls += 1;
                    let read_at = now_ms();
                    match self.source.owners(portal).await {
                        // Unchanged: no write (a later slice reads them
                        // again, as before the cache).
                        Ok(owners) if cached.as_ref().is_some_and(|c| c.owners == owners) => {
                            Some(owners)
                        }
                        Ok(owners) => {
                            ck.counters.owner_refreshes += 1;
                            ck.counters.state_writes += self
                                .store
                                .put_owners_cache(portal, &owners, read_at)
                                .await?;
                            Some(owners)
                        }
                        Err(HubSpotError::Token(e)) => return Err(HubSpotError::Token(e).into()),
                        Err(e) => match cached {
                            Some(c) => {
                                tracing::warn!(portal = %portal, error = %e,
                                    "owners could not be refreshed: mapping with the cached owners");
                                Some(c.owners)
                            }
                            None => return Err(e.into()),
                        },
                    }
                }
            }
        } else {
            None
        };
        let object = config.object(object_type).clone();
        // The list scope: every member of the config's lists, once per
        // slice (HubSpot sends no list webhooks; this run applies it).
        let list_members = if object.lists.is_empty() {
            None
        } else {
            let mut members = BTreeSet::new();
            for list in &object.lists {
                ck.counters.hubspot_calls += 1;
                members.extend(self.source.list_members(portal, list).await?);
            }
            Some(members)
        };
        let properties = object.properties(object_type);
        let mut targets: Vec<ObjectType> = object.associations.iter().map(|a| a.to).collect();
        targets.sort_unstable();
        targets.dedup();
        Ok(RunMapping {
            fingerprint: object.fingerprint(),
            config: object,
            owners,
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
            counters: TypeCounters::default(),
            estimated_total: None,
            started_at_ms: now,
            updated_at_ms: now,
            active_ms: 0,
            invocations: 0,
            finished: false,
            holder: String::new(),
        }
    }
}

/// What a slice maps with, loaded once per slice.
struct RunMapping {
    config: ObjectConfig,
    /// `config.fingerprint()`, stored with every record written.
    fingerprint: String,
    owners: Option<Owners>,
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

/// One slice of a run: the checkpoint being advanced and the cursors.
struct Run<'a, C, S: RecordStore> {
    engine: &'a Engine<C, S>,
    portal: PortalId,
    object_type: ObjectType,
    holder: &'a str,
    ck: Checkpoint,
    /// The store scan and what it read beyond the current page's bound.
    scan: RecordScan<'a, S>,
    lookahead: VecDeque<StoredMeta>,
    /// The recycle-bin page being consulted: `(id, archivedAt ms)`, and the
    /// cursor of the page after it.
    bin_page: Option<Vec<(ObjectId, Option<i64>)>>,
    bin_next: Option<String>,
    bin_unusable: bool,
    /// Active stored records absent from the listing and not in the bin,
    /// waiting for a confirming batch read (≤ 100).
    pending: Vec<StoredMeta>,
    actions: Vec<Action>,
    http_seen: ClientStats,
    active_since: Instant,
    /// A new run (its first checkpoint claims it).
    fresh: bool,
    mapping: Arc<RunMapping>,
    /// Associations of the objects being diffed (when the config maps any).
    associations: Option<Associations>,
}

impl<'a, C, S> Run<'a, C, S>
where
    C: CrmSource,
    S: RecordStore
        + TokenStore
        + ConnectionStore
        + SyncStateStore
        + MappingConfigStore
        + OwnersCacheStore,
{
    fn new(
        engine: &'a Engine<C, S>,
        ck: Checkpoint,
        holder: &'a str,
        fresh: bool,
        mapping: Arc<RunMapping>,
    ) -> Self {
        let portal = ck.portal_id;
        let object_type = ck.object_type;
        let scan = engine
            .store
            .scan_portal_records(portal, object_type, engine.config.store_page_size)
            .resume_after(ck.store_after);
        Self {
            engine,
            portal,
            object_type,
            holder,
            scan,
            lookahead: VecDeque::new(),
            bin_page: None,
            bin_next: None,
            bin_unusable: false,
            pending: Vec::new(),
            actions: Vec::new(),
            http_seen: engine.source.portal_stats(portal),
            active_since: Instant::now(),
            fresh,
            mapping,
            associations: None,
            ck,
        }
    }

    fn cfg(&self) -> &EngineConfig {
        &self.engine.config
    }

    fn key(&self, id: ObjectId) -> RecordKey {
        RecordKey::new(self.portal, self.object_type, id)
    }

    async fn drive(&mut self, limit: SliceLimit) -> Result<SliceOutcome, EngineError> {
        if self.fresh {
            // Make a new run visible (report, progress) before the first page.
            if !self.checkpoint().await? {
                return Ok(SliceOutcome::Fenced);
            }
        }
        let every = self.cfg().checkpoint_every_pages.max(1);
        let interval = self.cfg().checkpoint_interval;
        let mut last_checkpoint = Instant::now();
        let mut pages = 0u32;
        let mut since_checkpoint = 0u32;
        let mut prefetched: Option<Fetched> = None;
        while !self.ck.listing_done {
            if limit.reached(pages) {
                return self.hand_over().await;
            }
            let fetched = match prefetched.take() {
                Some(f) => f,
                None => self.fetch(self.ck.hubspot_after.clone()).await?,
            };
            // Read the next page while this one is diffed and written.
            let next = fetched.page.next_after.clone();
            match next.filter(|_| !limit.reached(pages + 1)) {
                Some(after) => {
                    let source = &self.engine.source;
                    let (portal, object_type, page_limit) =
                        (self.portal, self.object_type, self.cfg().page_limit);
                    let mapping = Arc::clone(&self.mapping);
                    let properties = mapping.property_refs();
                    let (next_page, done) = tokio::join!(
                        fetch_page(
                            source,
                            portal,
                            object_type,
                            Some(after),
                            page_limit,
                            &properties
                        ),
                        self.process_page(fetched)
                    );
                    done?;
                    prefetched = Some(next_page?);
                }
                None => self.process_page(fetched).await?,
            }
            pages += 1;
            since_checkpoint += 1;
            if (since_checkpoint >= every || last_checkpoint.elapsed() >= interval)
                && !self.ck.listing_done
            {
                since_checkpoint = 0;
                last_checkpoint = Instant::now();
                if !self.checkpoint().await? {
                    return Ok(SliceOutcome::Fenced);
                }
            }
        }
        if self.ck.lookup_mode {
            // HubSpot's order could not be trusted: absences were not
            // detected by the join. Confirm the rest of the store.
            self.scan = self
                .engine
                .store
                .scan_portal_records(self.portal, self.object_type, self.cfg().store_page_size)
                .resume_after(self.ck.store_after);
            self.lookahead.clear();
            while let Some(records) = self.scan.next_page().await? {
                for r in records {
                    self.ck.counters.stored_seen += 1;
                    self.absent(r.meta).await?;
                }
                self.execute().await?;
                self.ck.store_after = self.scan.position();
                pages += 1;
                since_checkpoint += 1;
                if limit.reached(pages) && !self.scan.is_done() {
                    return self.hand_over().await;
                }
                if since_checkpoint >= every || last_checkpoint.elapsed() >= interval {
                    since_checkpoint = 0;
                    last_checkpoint = Instant::now();
                    if !self.checkpoint().await? {
                        return Ok(SliceOutcome::Fenced);
                    }
                }
            }
        }
        self.finish().await
    }

    async fn fetch(&self, after: Option<String>) -> Result<Fetched, EngineError> {
        fetch_page(
            &self.engine.source,
            self.portal,
            self.object_type,
            after,
            self.cfg().page_limit,
            &self.mapping.property_refs(),
        )
        .await
    }

    /// Reads the associations of `ids` for every association the config
    /// maps (associations v4, ≤ 1,000 ids a call).
    async fn load_associations(&mut self, ids: &[ObjectId]) -> Result<(), EngineError> {
        if self.mapping.targets.is_empty() || ids.is_empty() {
            self.associations = None;
            return Ok(());
        }
        let mut assoc = Associations::new();
        let targets = self.mapping.targets.clone();
        for to in targets {
            for chunk in ids.chunks(hubsync_hubspot::MAX_ASSOCIATION_INPUTS) {
                self.ck.counters.hubspot_calls += 1;
                let links = self
                    .engine
                    .source
                    .associations(self.portal, self.object_type, to, chunk)
                    .await?;
                for l in links {
                    assoc.insert(to, l.from, l.to, l.primary);
                }
            }
            assoc.mark_loaded(to);
        }
        self.associations = Some(assoc);
        Ok(())
    }

    /// Diff one listing page.
    async fn process_page(&mut self, fetched: Fetched) -> Result<(), EngineError> {
        let Fetched {
            page,
            started_at_ms,
        } = fetched;
        let c = &mut self.ck.counters;
        c.pages += 1;
        c.hubspot_calls += 1;
        c.listed += page.results.len() as u64;
        let ordered = page.results.windows(2).all(|w| w[0].id < w[1].id)
            && match (page.results.first(), self.ck.last_hubspot_id) {
                (Some(first), Some(last)) => first.id > last,
                _ => true,
            };
        if !ordered {
            c.order_violations += 1;
            if !self.ck.lookup_mode {
                tracing::error!(portal = %self.portal, object_type = %self.object_type,
                    after = ?self.ck.last_hubspot_id,
                    "HubSpot listed ids out of order: switching to key lookups and confirmed absences for the rest of the run");
                self.ck.lookup_mode = true;
            }
        }
        let page_max = page.results.iter().map(|o| o.id).max();
        self.ck.last_hubspot_id = self.ck.last_hubspot_id.max(page_max);
        let last_page = page.next_after.is_none();
        let ids: Vec<ObjectId> = page.results.iter().map(|o| o.id).collect();
        self.load_associations(&ids).await?;

        if self.ck.lookup_mode {
            let keys: Vec<RecordKey> = page.results.iter().map(|o| self.key(o.id)).collect();
            let metas = self.engine.store.get_record_meta(&keys).await?;
            for object in &page.results {
                let stored = metas
                    .binary_search_by_key(&object.id, |m| m.object_id)
                    .ok()
                    .and_then(|i| metas.get(i))
                    .cloned();
                self.listed(object, stored, started_at_ms);
            }
        } else {
            // Ids up to the page's last one (everything on the last page).
            let bound = if last_page { None } else { page_max };
            let mut stored = self.next_stored(bound).await?;
            for object in &page.results {
                while let Some(s) = stored.take_if(|s| s.object_id < object.id) {
                    self.absent(s).await?;
                    stored = self.next_stored(bound).await?;
                }
                let same = stored.take_if(|s| s.object_id == object.id);
                let advance = same.is_some();
                self.listed(object, same, started_at_ms);
                if advance {
                    stored = self.next_stored(bound).await?;
                }
                if self.actions.len() >= 100 {
                    self.execute().await?;
                }
            }
            while let Some(s) = stored {
                self.absent(s).await?;
                stored = self.next_stored(bound).await?;
            }
            if let Some(b) = bound {
                self.ck.store_after = self.ck.store_after.max(Some(b));
            }
        }
        self.execute().await?;
        if self.pending.len() >= hubsync_hubspot::MAX_BATCH_READ_INPUTS {
            self.flush_pending().await?;
        }
        self.ck.hubspot_after = page.next_after;
        if last_page {
            self.ck.listing_done = true;
        }
        Ok(())
    }

    /// The next stored record with an id ≤ `bound` (`None`: unbounded).
    async fn next_stored(
        &mut self,
        bound: Option<ObjectId>,
    ) -> Result<Option<StoredMeta>, EngineError> {
        loop {
            if let Some(front) = self.lookahead.front() {
                if bound.is_some_and(|b| front.object_id > b) {
                    return Ok(None);
                }
                let meta = self.lookahead.pop_front();
                if let Some(m) = &meta {
                    self.ck.counters.stored_seen += 1;
                    if bound.is_none() {
                        self.ck.store_after = Some(m.object_id);
                    }
                }
                return Ok(meta);
            }
            match self.scan.next_page().await? {
                Some(records) => self.lookahead.extend(records.into_iter().map(|r| r.meta)),
                None => return Ok(None),
            }
        }
    }

    /// A live HubSpot object, and what is stored under its id.
    fn listed(&mut self, object: &HubSpotObject, stored: Option<StoredMeta>, listed_at_ms: i64) {
        let key = self.key(object.id);
        let skew = self.cfg().restore_skew_ms;
        let c = &mut self.ck.counters;
        if stored.as_ref().is_some_and(|s| s.privacy_deleted) {
            c.tombstoned += 1;
            return;
        }
        let ctx = MapContext {
            owners: self.mapping.owners.as_ref(),
            associations: self.associations.as_ref(),
            list_members: self.mapping.list_members.as_ref(),
        };
        // A stored record mapped with another config whose HubSpot version
        // has not moved since: whatever changes now is the config's doing,
        // not a webhook the worker missed.
        let fp = self.mapping.fingerprint.as_str();
        let version_now = object.version(self.object_type);
        let config_changed = stored.as_ref().is_some_and(|s| {
            s.mapping_fp.as_deref() != Some(fp)
                && version_now.is_some_and(|v| v <= s.source_version)
        });
        let mapped = match map_with(&self.mapping.config, self.object_type, object, ctx) {
            MapOutcome::Mapped(m) => m,
            MapOutcome::Skipped { reason, .. } => {
                *c.skipped.entry(reason.to_string()).or_default() += 1;
                // A stored copy that no longer qualifies is archived out of
                // scope (like the worker does) — not when a newer version is
                // stored (this listing is stale). At the stored version
                // itself (the scope changed, HubSpot did not), the archive
                // goes 1 ms past it so that the store's guard lets it land.
                if let (Some(s), Some(version)) = (stored, object.version(self.object_type)) {
                    if !s.archived && s.source_version <= version {
                        self.actions.push(Action::Archive {
                            key,
                            occurred_at_ms: version.max(s.source_version.saturating_add(1)),
                            reason: ArchiveReason::OutOfScope,
                            remapped: config_changed,
                            mapping_fp: Some(fp.to_owned()),
                        });
                    }
                }
                return;
            }
        };
        c.field_errors += mapped.errors.len() as u64;
        let version = mapped.source_version.unwrap_or(0);
        let hash = mapped.content_hash.as_str();
        let decision = needs_write(stored.as_ref(), version, hash);
        let (version, kind) = match &stored {
            None => (version, UpsertKind::Create),
            Some(s) if s.archived => {
                let remapped =
                    config_changed && s.archive_reason == Some(ArchiveReason::OutOfScope);
                if decision.is_write() {
                    (
                        version,
                        UpsertKind::Unarchive {
                            same_version: false,
                            remapped,
                        },
                    )
                } else if s.source_version < listed_at_ms.saturating_sub(skew) {
                    // Listed live by a request that started after the
                    // archive: HubSpot has it back (restore rule).
                    (
                        version.max(s.source_version.saturating_add(1)),
                        UpsertKind::Unarchive {
                            same_version: true,
                            remapped,
                        },
                    )
                } else {
                    c.deferred_restores += 1;
                    return;
                }
            }
            Some(s) => match decision {
                WriteDecision::SkipUnchanged => {
                    c.unchanged += 1;
                    return;
                }
                WriteDecision::SkipStale => {
                    c.stale += 1;
                    return;
                }
                WriteDecision::SkipTombstoned => {
                    c.tombstoned += 1;
                    return;
                }
                WriteDecision::Write => {
                    let class = if s.source_version == version {
                        UpdateClass::Remapped
                    } else if s.content_hash.as_deref() == Some(hash) {
                        UpdateClass::VersionOnly
                    } else {
                        UpdateClass::Content
                    };
                    (version, UpsertKind::Update(class))
                }
            },
        };
        match RecordWrite::from_fields(key, version, hash, &mapped.record) {
            Ok(write) => self
                .actions
                .push(Action::Upsert(write.with_mapping_fp(fp), kind)),
            Err(e) => {
                c.errors += 1;
                tracing::error!(key = %key, error = %e, "record could not be written");
            }
        }
    }

    /// An active stored record HubSpot did not list.
    async fn absent(&mut self, stored: StoredMeta) -> Result<(), EngineError> {
        if stored.archived || stored.privacy_deleted {
            return Ok(());
        }
        match self.bin_lookup(stored.object_id).await? {
            Some(archived_at) => {
                let occurred = archived_at
                    .unwrap_or_else(now_ms)
                    .max(stored.source_version.saturating_add(1));
                self.actions.push(Action::Archive {
                    key: stored.key(),
                    occurred_at_ms: occurred,
                    reason: ArchiveReason::Deleted,
                    remapped: false,
                    mapping_fp: None,
                });
            }
            None => {
                self.pending.push(stored);
                if self.pending.len() >= hubsync_hubspot::MAX_BATCH_READ_INPUTS {
                    self.flush_pending().await?;
                }
            }
        }
        Ok(())
    }

    /// Whether `id` is in the recycle bin (`Some(archivedAt)`), reading the
    /// bin in id order as far as needed. Ids asked for only grow.
    async fn bin_lookup(&mut self, id: ObjectId) -> Result<Option<Option<i64>>, EngineError> {
        if self.bin_unusable {
            return Ok(None);
        }
        loop {
            if self.bin_page.is_none() {
                let properties = [self.object_type.last_modified_property()];
                let c = &mut self.ck.counters;
                c.bin_pages += 1;
                c.hubspot_calls += 1;
                let page = self
                    .engine
                    .source
                    .list_page(
                        self.portal,
                        self.object_type,
                        self.ck.bin_cursor.as_deref(),
                        self.cfg().page_limit,
                        &properties,
                        true,
                    )
                    .await?;
                let entries: Vec<(ObjectId, Option<i64>)> = page
                    .results
                    .iter()
                    .map(|o| (o.id, o.archived_at.as_deref().and_then(parse_ms)))
                    .collect();
                if !entries.windows(2).all(|w| w[0].0 < w[1].0) {
                    self.ck.counters.order_violations += 1;
                    tracing::error!(portal = %self.portal, object_type = %self.object_type,
                        "recycle bin listed out of order: absences are confirmed by batch reads and archived as merged/purged");
                    self.bin_unusable = true;
                    return Ok(None);
                }
                self.bin_next = page.next_after;
                self.bin_page = Some(entries);
            }
            let page = self.bin_page.as_deref().unwrap_or_default();
            let covers = page.last().is_some_and(|(last, _)| *last >= id);
            if covers || self.bin_next.is_none() {
                let found = page
                    .binary_search_by_key(&id, |(i, _)| *i)
                    .ok()
                    .and_then(|i| page.get(i))
                    .map(|(_, at)| *at);
                self.ck.bin_done = self.bin_next.is_none();
                return Ok(found);
            }
            self.ck.bin_cursor = self.bin_next.take();
            self.bin_page = None;
        }
    }

    /// Confirm pending absences with one batch read per 100: still live ⇒
    /// diffed like a listed object; missing ⇒ archived as merged/purged.
    async fn flush_pending(&mut self) -> Result<(), EngineError> {
        let pending = std::mem::take(&mut self.pending);
        let mapping = Arc::clone(&self.mapping);
        let properties = mapping.property_refs();
        // The page being diffed keeps its own associations.
        let page_associations = self.associations.take();
        for chunk in pending.chunks(hubsync_hubspot::MAX_BATCH_READ_INPUTS) {
            let ids: Vec<ObjectId> = chunk.iter().map(|m| m.object_id).collect();
            self.ck.counters.confirm_reads += 1;
            self.ck.counters.hubspot_calls += 1;
            let read_at = now_ms();
            let read = self
                .engine
                .source
                .batch_read(self.portal, self.object_type, &ids, &properties)
                .await?;
            let found: Vec<ObjectId> = read.found.iter().map(|o| o.id).collect();
            self.load_associations(&found).await?;
            for object in &read.found {
                let stored = chunk.iter().find(|m| m.object_id == object.id).cloned();
                self.listed(object, stored, read_at);
            }
            for id in &read.missing {
                if let Some(m) = chunk.iter().find(|m| m.object_id == *id) {
                    self.actions.push(Action::Archive {
                        key: m.key(),
                        occurred_at_ms: read_at.max(m.source_version.saturating_add(1)),
                        reason: ArchiveReason::Merged,
                        remapped: false,
                        mapping_fp: None,
                    });
                }
            }
        }
        self.associations = page_associations;
        self.execute().await
    }

    /// Run the planned writes, a few at a time, and count their outcomes.
    async fn execute(&mut self) -> Result<(), EngineError> {
        if self.actions.is_empty() {
            return Ok(());
        }
        let actions = std::mem::take(&mut self.actions);
        self.ck.counters.record_writes += actions.len() as u64;
        let store = &self.engine.store;
        let results: Vec<Result<TypeCounters, StoreError>> = stream::iter(actions)
            .map(|a| apply(store, a))
            .buffer_unordered(self.cfg().write_concurrency.max(1))
            .collect()
            .await;
        for r in results {
            self.ck.counters.absorb(&r?);
        }
        Ok(())
    }

    fn absorb_http_stats(&mut self) {
        let now = self.engine.source.portal_stats(self.portal);
        let delta = now.since(&self.http_seen);
        self.ck.counters.http_requests += delta.requests;
        self.ck.counters.rate_limited += delta.rate_limited;
        self.http_seen = now;
    }

    fn absorb_active_time(&mut self) {
        let now = Instant::now();
        let ms = now.duration_since(self.active_since).as_millis();
        self.ck.active_ms += u64::try_from(ms).unwrap_or(u64::MAX);
        self.active_since = now;
    }

    fn report(&self, status: RunStatus, error: Option<&str>) -> TypeRunReport {
        let ck = &self.ck;
        let finished_at_ms = (status != RunStatus::Running).then_some(ck.updated_at_ms);
        let end = finished_at_ms.unwrap_or(ck.updated_at_ms);
        TypeRunReport {
            portal_id: ck.portal_id,
            run_id: ck.run_id.clone(),
            kind: ck.kind,
            object_type: ck.object_type,
            status,
            started_at_ms: ck.started_at_ms,
            finished_at_ms,
            updated_at_ms: ck.updated_at_ms,
            duration_ms: u64::try_from(end.saturating_sub(ck.started_at_ms)).unwrap_or(0),
            active_ms: ck.active_ms,
            done: ck.counters.listed,
            estimated_total: ck.estimated_total,
            drift: ck.counters.drift(),
            counters: ck.counters.clone(),
            invocations: ck.invocations,
            error: error.map(str::to_owned),
        }
    }

    /// Flush, renew the lease, store the checkpoint (compare-and-swap) and
    /// the progress report. `false`: fenced (someone else owns the run).
    async fn checkpoint(&mut self) -> Result<bool, EngineError> {
        self.persist(RunStatus::Running, None).await
    }

    async fn persist(
        &mut self,
        status: RunStatus,
        error: Option<&str>,
    ) -> Result<bool, EngineError> {
        self.flush_pending().await?;
        self.absorb_http_stats();
        self.absorb_active_time();
        let store = &self.engine.store;
        let name = run_lock_name(self.portal, self.object_type);
        // Renewal, checkpoint, report.
        self.ck.counters.state_writes += 3;
        if store
            .try_acquire_lease(&name, self.holder, self.cfg().lease_ttl)
            .await?
            .is_none()
        {
            tracing::error!(portal = %self.portal, object_type = %self.object_type, "run lock lost: stopping this invocation");
            return Ok(false);
        }
        self.ck.finished = status != RunStatus::Running;
        self.ck.seq += 1;
        self.ck.updated_at_ms = now_ms();
        if !store.put_checkpoint(&self.ck).await? {
            tracing::error!(portal = %self.portal, object_type = %self.object_type, seq = self.ck.seq, "checkpoint moved under this invocation: stopping");
            return Ok(false);
        }
        let report = self.report(status, error);
        store.put_run_report(&report).await?;
        tracing::info!(portal = %self.portal, object_type = %self.object_type, run_id = %self.ck.run_id,
            done = report.done, estimated_total = ?report.estimated_total, drift = report.drift,
            pages = self.ck.counters.pages, "reconcile progress");
        Ok(true)
    }

    async fn hand_over(&mut self) -> Result<SliceOutcome, EngineError> {
        if !self.checkpoint().await? {
            return Ok(SliceOutcome::Fenced);
        }
        tracing::info!(portal = %self.portal, object_type = %self.object_type, run_id = %self.ck.run_id, "handing over to a continuation");
        Ok(SliceOutcome::HandedOver(
            self.report(RunStatus::Running, None),
        ))
    }

    async fn finish(&mut self) -> Result<SliceOutcome, EngineError> {
        if !self.persist(RunStatus::Completed, None).await? {
            return Ok(SliceOutcome::Fenced);
        }
        let report = self.report(RunStatus::Completed, None);
        // The run's EMF metrics (drift, duration, HubSpot calls) are
        // emitted by the handler (`handler::emit_finished_metrics`).
        if report.kind != SyncJobKind::Initial && report.drift > self.cfg().drift_alert_threshold {
            tracing::warn!(portal = %self.portal, object_type = %self.object_type, run_id = %report.run_id,
                drift = report.drift, threshold = self.cfg().drift_alert_threshold,
                "reconciliation drift above threshold: webhooks are being missed");
        }
        tracing::info!(portal = %self.portal, object_type = %self.object_type, run_id = %report.run_id,
            counters = ?report.counters, duration_ms = report.duration_ms, "reconciliation finished");
        Ok(SliceOutcome::Finished(report))
    }

    async fn fail(&mut self, reason: &str) -> Result<SliceOutcome, EngineError> {
        tracing::error!(portal = %self.portal, object_type = %self.object_type, reason, "HubSpot access revoked: run stopped, connection marked needs_reauth");
        self.pending.clear();
        self.actions.clear();
        self.engine
            .store
            .set_connection_status(
                self.portal,
                ConnectionStatus::NeedsReauth,
                Some("invalid_grant"),
            )
            .await?;
        if !self.persist(RunStatus::Failed, Some(reason)).await? {
            return Ok(SliceOutcome::Fenced);
        }
        Ok(SliceOutcome::Failed(
            self.report(RunStatus::Failed, Some(reason)),
        ))
    }
}

async fn fetch_page<C: CrmSource>(
    source: &C,
    portal: PortalId,
    object_type: ObjectType,
    after: Option<String>,
    limit: u32,
    properties: &[&str],
) -> Result<Fetched, EngineError> {
    let started_at_ms = now_ms();
    let page = source
        .list_page(
            portal,
            object_type,
            after.as_deref(),
            limit,
            properties,
            false,
        )
        .await?;
    Ok(Fetched {
        page,
        started_at_ms,
    })
}

/// One write and its counted outcome.
async fn apply<S: RecordStore>(store: &S, action: Action) -> Result<TypeCounters, StoreError> {
    let mut c = TypeCounters::default();
    match action {
        Action::Upsert(write, kind) => match (store.upsert_record(&write).await?, kind) {
            (UpsertOutcome::Created | UpsertOutcome::Updated, UpsertKind::Create) => c.created += 1,
            (UpsertOutcome::Created | UpsertOutcome::Updated, UpsertKind::Update(class)) => {
                match class {
                    UpdateClass::Content => c.updated += 1,
                    UpdateClass::VersionOnly => c.version_only += 1,
                    UpdateClass::Remapped => c.remapped += 1,
                }
            }
            (
                UpsertOutcome::Created | UpsertOutcome::Updated,
                UpsertKind::Unarchive { remapped: true, .. },
            ) => c.remapped += 1,
            (
                UpsertOutcome::Created | UpsertOutcome::Updated,
                UpsertKind::Unarchive { same_version, .. },
            ) => {
                c.unarchived += 1;
                if same_version {
                    c.restored_same_version += 1;
                }
            }
            (UpsertOutcome::Unchanged, _) => c.unchanged += 1,
            (UpsertOutcome::Stale, _) => c.stale += 1,
            (UpsertOutcome::Tombstoned, _) => c.tombstoned += 1,
        },
        Action::Archive {
            key,
            occurred_at_ms,
            reason,
            remapped,
            mapping_fp,
        } => match store
            .archive_record_mapped(&key, occurred_at_ms, reason, None, mapping_fp.as_deref())
            .await?
        {
            ArchiveOutcome::Archived => match reason {
                ArchiveReason::Deleted => c.archived_deleted += 1,
                ArchiveReason::Merged => c.archived_merged += 1,
                _ if remapped => c.remapped += 1,
                _ => c.archived_out_of_scope += 1,
            },
            ArchiveOutcome::Stale => c.stale += 1,
            ArchiveOutcome::AlreadyArchived | ArchiveOutcome::NotFound => c.unchanged += 1,
            ArchiveOutcome::Tombstoned => c.tombstoned += 1,
        },
    }
    Ok(c)
}

fn parse_ms(raw: &str) -> Option<i64> {
    hubsync_mapping::values::parse_timestamp(raw)
        .ok()
        .flatten()
        .map(|t| t.epoch_ms())
}
