//! A slice of a run: the listing loop, checkpoints, hand-over and the end
//! of a run. The diff of each page is in [`super::diff`].

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use hubsync_hubspot::{ClientStats, HubSpotObject, ObjectId, ObjectType, Page, PortalId};
use hubsync_mapping::Associations;
use hubsync_store::{
    run_lock_name, Checkpoint, ConnectionStatus, RecordKey, RecordScan, RecordStore, RunStatus,
    StoredMeta, SyncJobKind, TypeRunReport,
};
use hubsync_sync::{CrmSource, RunStore};

use super::diff::Action;
use super::split::{Arrived, Pump};
use super::{now_ms, Engine, EngineConfig, EngineError, RunMapping, SliceLimit, SliceOutcome};

/// A fetched HubSpot page and when its request started.
pub(super) struct Fetched {
    pub(super) page: Page<HubSpotObject>,
    pub(super) started_at_ms: i64,
}

/// One slice of a run: the checkpoint being advanced and the cursors.
pub(super) struct Run<'a, C, S: RecordStore> {
    pub(super) engine: &'a Engine<C, S>,
    pub(super) portal: PortalId,
    pub(super) object_type: ObjectType,
    pub(super) holder: &'a str,
    pub(super) ck: Checkpoint,
    /// The store scan and what it read beyond the current page's bound.
    pub(super) scan: RecordScan<'a, S>,
    pub(super) lookahead: VecDeque<StoredMeta>,
    /// The search half's store scan (downwards) and what it read beyond
    /// the current window.
    pub(super) down_scan: RecordScan<'a, S>,
    pub(super) down_lookahead: VecDeque<StoredMeta>,
    /// The recycle-bin page being consulted: `(id, archivedAt ms)`, and the
    /// cursor of the page after it.
    pub(super) bin_page: Option<Vec<(ObjectId, Option<i64>)>>,
    pub(super) bin_next: Option<String>,
    pub(super) bin_unusable: bool,
    /// Active stored records absent from the listing and not in the bin,
    /// waiting for a confirming batch read (≤ 100).
    pub(super) pending: Vec<StoredMeta>,
    /// Active stored records a search window did not return, waiting for
    /// a confirming batch read (the recycle bin not consulted yet).
    pub(super) search_pending: Vec<StoredMeta>,
    pub(super) actions: Vec<Action>,
    pub(super) http_seen: ClientStats,
    pub(super) active_since: Instant,
    /// A new run (its first checkpoint claims it).
    pub(super) fresh: bool,
    pub(super) mapping: Arc<RunMapping>,
    /// Associations of the objects being diffed (when the config maps any).
    pub(super) associations: Option<Associations>,
    /// Which companies those objects are associated with sync (a scope
    /// that follows companies).
    pub(super) companies_in_scope: Option<std::collections::BTreeSet<ObjectId>>,
}

impl<'a, C, S> Run<'a, C, S>
where
    C: CrmSource,
    S: RunStore,
{
    pub(super) fn new(
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
        let down_scan = engine
            .store
            .scan_portal_records_descending(portal, object_type, engine.config.store_page_size)
            .resume_after(ck.search.as_ref().and_then(|w| w.below));
        Self {
            engine,
            portal,
            object_type,
            holder,
            scan,
            lookahead: VecDeque::new(),
            down_scan,
            down_lookahead: VecDeque::new(),
            bin_page: None,
            bin_next: None,
            bin_unusable: false,
            pending: Vec::new(),
            search_pending: Vec::new(),
            actions: Vec::new(),
            http_seen: engine.source.portal_stats(portal),
            active_since: Instant::now(),
            fresh,
            mapping,
            associations: None,
            companies_in_scope: None,
            ck,
        }
    }

    pub(super) fn cfg(&self) -> &EngineConfig {
        &self.engine.config
    }

    pub(super) fn key(&self, id: ObjectId) -> RecordKey {
        RecordKey::new(self.portal, self.object_type, id)
    }

    pub(super) async fn drive(&mut self, limit: SliceLimit) -> Result<SliceOutcome, EngineError> {
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
        // The listing's and the search half's requests, in flight while
        // pages are diffed.
        let mut pump = Pump::default();
        while !self.ck.listing_done {
            if limit.reached(pages) {
                // What is in flight is dropped (and read again next slice).
                drop(pump);
                return self.hand_over().await;
            }
            self.request_list(&mut pump, self.ck.hubspot_after.clone());
            let below = self.ck.search.as_ref().and_then(|w| w.below);
            self.request_search(&mut pump, below);
            pump.wait_any().await;
            let Some(arrived) = pump.take() else {
                continue;
            };
            let more = !limit.reached(pages + 1);
            match arrived? {
                Arrived::List(fetched) => {
                    // Ask for the next page while this one is diffed, unless
                    // it is the listing's last.
                    let floor = self.search_floor();
                    let reaches_floor =
                        floor.is_some_and(|f| fetched.page.results.iter().any(|o| o.id >= f));
                    if let Some(after) = fetched.page.next_after.clone() {
                        if more && !reaches_floor {
                            self.request_list(&mut pump, Some(after));
                        }
                    }
                    pump.drive_while(self.process_page(fetched)).await?;
                }
                Arrived::Search(searched) => {
                    if let Some(below) = searched.next_below().filter(|_| more) {
                        self.request_search(&mut pump, Some(below));
                    }
                    pump.drive_while(self.process_search(searched)).await?;
                }
            }
            pages += 1;
            since_checkpoint += 1;
            if (since_checkpoint >= every || last_checkpoint.elapsed() >= interval)
                && !self.ck.listing_done
            {
                since_checkpoint = 0;
                last_checkpoint = Instant::now();
                // The checkpoint's confirming reads need the lanes.
                pump.settle().await;
                if !self.checkpoint().await? {
                    return Ok(SliceOutcome::Fenced);
                }
            }
        }
        // Requests still in flight (the other half's) are not needed.
        drop(pump);
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

    pub(super) fn absorb_http_stats(&mut self) {
        let now = self.engine.source.portal_stats(self.portal);
        let delta = now.since(&self.http_seen);
        self.ck.counters.http_requests += delta.requests;
        self.ck.counters.rate_limited += delta.rate_limited;
        self.http_seen = now;
    }

    pub(super) fn absorb_active_time(&mut self) {
        let now = Instant::now();
        let ms = now.duration_since(self.active_since).as_millis();
        self.ck.active_ms += u64::try_from(ms).unwrap_or(u64::MAX);
        self.active_since = now;
    }

    pub(super) fn report(&self, status: RunStatus, error: Option<&str>) -> TypeRunReport {
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
            run_types: ck.run_types.clone(),
        }
    }

    /// Flush, renew the lease, store the checkpoint (compare-and-swap) and
    /// the progress report. `false`: fenced (someone else owns the run).
    pub(super) async fn checkpoint(&mut self) -> Result<bool, EngineError> {
        self.persist(RunStatus::Running, None).await
    }

    pub(super) async fn persist(
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

    pub(super) async fn hand_over(&mut self) -> Result<SliceOutcome, EngineError> {
        if !self.checkpoint().await? {
            return Ok(SliceOutcome::Fenced);
        }
        tracing::info!(portal = %self.portal, object_type = %self.object_type, run_id = %self.ck.run_id, "handing over to a continuation");
        Ok(SliceOutcome::HandedOver(
            self.report(RunStatus::Running, None),
        ))
    }

    pub(super) async fn finish(&mut self) -> Result<SliceOutcome, EngineError> {
        // What the Webhooks Journal repaired since the previous run, into
        // this run's report (put back should the run turn out not to be
        // this invocation's).
        let store = &self.engine.store;
        self.ck.counters.state_writes += 1;
        let fixed = match store
            .take_journal_fixes(self.portal, self.object_type)
            .await
        {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(portal = %self.portal, object_type = %self.object_type, error = %e, "could not read the journal's repairs");
                0
            }
        };
        self.ck.counters.journal_fixed += fixed;
        if !self.persist(RunStatus::Completed, None).await? {
            self.ck.counters.journal_fixed -= fixed;
            if let Err(e) = self
                .engine
                .store
                .add_journal_fixes(self.portal, self.object_type, fixed)
                .await
            {
                tracing::warn!(portal = %self.portal, object_type = %self.object_type, error = %e, "could not put the journal's repairs back");
            }
            return Ok(SliceOutcome::Fenced);
        }
        let report = self.report(RunStatus::Completed, None);
        // The type synced through: its sync incidents are over.
        match self
            .engine
            .store
            .clear_incidents(self.portal, self.object_type)
            .await
        {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(portal = %self.portal, object_type = %self.object_type, cleared = n, "sync incidents cleared")
            }
            Err(e) => {
                tracing::warn!(portal = %self.portal, object_type = %self.object_type, error = %e, "could not clear sync incidents")
            }
        }
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

    pub(super) async fn fail(&mut self, reason: &str) -> Result<SliceOutcome, EngineError> {
        tracing::error!(portal = %self.portal, object_type = %self.object_type, reason, "HubSpot access revoked: run stopped, connection marked needs_reauth");
        self.pending.clear();
        self.search_pending.clear();
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

pub(super) async fn fetch_page<C: CrmSource>(
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
