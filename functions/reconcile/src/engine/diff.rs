//! The diff of one page: the merge-join with the store's scan (see the
//! table in [`super`]), absences confirmed through the recycle bin and
//! batch reads, and the writes the sync core decided on.

use std::sync::Arc;

use futures::stream::{self, StreamExt};
use hubsync_hubspot::{HubSpotObject, ObjectId};
use hubsync_mapping::{map_with, MapContext};
use hubsync_store::{
    ArchiveOutcome, ArchiveReason, RecordKey, RecordStore, RecordWrite, StoreError, StoredMeta,
    TypeCounters, UpsertOutcome,
};
use hubsync_sync::{
    decide, ContextLoader, CrmSource, Decision, Facts, ListedLive, LoadCounts, RunStore, Skip,
    UpdateClass, WriteKind,
};

use super::run::{Fetched, Run};
use super::{absorb_load, now_ms, EngineError};

/// A write the diff decided on, and how to count its outcome.
pub(super) enum Action {
    Upsert(RecordWrite, WriteKind),
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

impl Action {
    fn key(&self) -> RecordKey {
        match self {
            Action::Upsert(write, _) => write.key,
            Action::Archive { key, .. } => *key,
        }
    }
}

impl<'a, C, S> Run<'a, C, S>
where
    C: CrmSource,
    S: RunStore,
{
    /// Reads the associations of `ids` for every association the config
    /// maps (associations v4, ≤ 1,000 ids a call), and — when the scope
    /// follows companies — which of their companies are synced (the
    /// reconciliation runs companies first).
    pub(super) async fn load_associations(&mut self, ids: &[ObjectId]) -> Result<(), EngineError> {
        let loader = ContextLoader::new(&self.engine.source, &self.engine.store);
        let mut counts = LoadCounts::default();
        let loaded = loader
            .associations(
                self.portal,
                self.object_type,
                &self.mapping.targets,
                ids,
                &mut counts,
            )
            .await;
        absorb_load(&mut self.ck.counters, counts);
        self.associations = loaded?;
        self.companies_in_scope = loader
            .companies_in_scope(
                self.portal,
                &self.mapping.config,
                self.associations.as_ref(),
                ids,
            )
            .await?;
        Ok(())
    }

    /// Diff one listing page.
    pub(super) async fn process_page(&mut self, fetched: Fetched) -> Result<(), EngineError> {
        let Fetched {
            page,
            started_at_ms,
        } = fetched;
        let c = &mut self.ck.counters;
        c.pages += 1;
        c.hubspot_calls += 1;
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
                // The verification pass walks the store to its end.
                self.give_up_search();
            }
        }
        let page_max = page.results.iter().map(|o| o.id).max();
        self.ck.last_hubspot_id = self.ck.last_hubspot_id.max(page_max);
        // Ids from the search half's floor up are its own (see `split`):
        // a page reaching it is the listing's last.
        let floor = self.search_floor();
        let mut page = page;
        let reaches_floor = floor.is_some_and(|f| page_max.is_some_and(|m| m >= f));
        if let Some(f) = floor {
            page.results.retain(|o| o.id < f);
        }
        self.ck.counters.listed += page.results.len() as u64;
        let last_page = page.next_after.is_none() || reaches_floor;
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
                self.listed(object, stored, Some(started_at_ms));
            }
        } else {
            // Ids up to the page's last one (everything on the last page,
            // up to the search half's floor).
            let bound = if last_page {
                floor.map(|f| ObjectId(f.0.saturating_sub(1)))
            } else {
                page_max
            };
            let mut stored = self.next_stored(bound).await?;
            for object in &page.results {
                while let Some(s) = stored.take_if(|s| s.object_id < object.id) {
                    self.absent(s).await?;
                    stored = self.next_stored(bound).await?;
                }
                let same = stored.take_if(|s| s.object_id == object.id);
                let advance = same.is_some();
                self.listed(object, same, Some(started_at_ms));
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
            if let Some(walk) = self.ck.search.as_mut() {
                // The halves met: the search half is over too.
                walk.done = true;
            }
        }
        Ok(())
    }

    /// The next stored record with an id ≤ `bound` (`None`: unbounded).
    pub(super) async fn next_stored(
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

    /// A live HubSpot object, and what is stored under its id: mapped,
    /// then the sync core decides.
    pub(super) fn listed(
        &mut self,
        object: &HubSpotObject,
        stored: Option<StoredMeta>,
        listed_at_ms: Option<i64>,
    ) {
        let key = self.key(object.id);
        let ctx = MapContext {
            owners: self.mapping.owners.as_ref(),
            pipelines: self.mapping.pipelines.as_ref(),
            associations: self.associations.as_ref(),
            list_members: self.mapping.list_members.as_ref(),
            companies_in_scope: self.companies_in_scope.as_ref(),
        };
        let outcome = map_with(&self.mapping.config, self.object_type, object, ctx);
        let c = &mut self.ck.counters;
        match &outcome {
            hubsync_mapping::MapOutcome::Mapped(m) => c.field_errors += m.errors.len() as u64,
            hubsync_mapping::MapOutcome::Skipped { reason, .. } => {
                *c.skipped.entry(reason.to_string()).or_default() += 1;
            }
        }
        let fp = self.mapping.fingerprint.as_str();
        let facts = Facts {
            key,
            object_type: self.object_type,
            fingerprint: fp,
            list_scope_unknown: false,
            listed_live: listed_at_ms.map(|started_at_ms| ListedLive {
                started_at_ms,
                skew_ms: self.engine.config.restore_skew_ms,
            }),
        };
        match decide(facts, object, outcome, stored.as_ref()) {
            Decision::Write { write, kind } => self.actions.push(Action::Upsert(write, kind)),
            Decision::ArchiveOutOfScope {
                occurred_at_ms,
                remapped,
            } => self.actions.push(Action::Archive {
                key,
                occurred_at_ms,
                reason: ArchiveReason::OutOfScope,
                remapped,
                mapping_fp: Some(fp.to_owned()),
            }),
            Decision::Skip(Skip::Unchanged) => c.unchanged += 1,
            Decision::Skip(Skip::Stale) => c.stale += 1,
            Decision::Skip(Skip::Tombstoned) => c.tombstoned += 1,
            Decision::Skip(Skip::DeferredRestore) => c.deferred_restores += 1,
            // Counted by the map outcome's reason (the list scope is known
            // here, so never pending).
            Decision::Skip(Skip::NotSynced | Skip::ListScopePending) => {}
            Decision::Invalid(e) => {
                c.errors += 1;
                tracing::error!(key = %key, error = %e, "record could not be written");
            }
        }
    }

    /// An active stored record HubSpot did not list.
    pub(super) async fn absent(&mut self, stored: StoredMeta) -> Result<(), EngineError> {
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
    pub(super) async fn bin_lookup(
        &mut self,
        id: ObjectId,
    ) -> Result<Option<Option<i64>>, EngineError> {
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
    /// diffed like a listed object; missing ⇒ archived. The listing's
    /// candidates were looked up in the recycle bin already (merged/purged);
    /// the search half's are looked up now, with one recycle-bin batch read
    /// of those missing (deleted at `archivedAt`, else merged/purged).
    pub(super) async fn flush_pending(&mut self) -> Result<(), EngineError> {
        let listed = std::mem::take(&mut self.pending);
        let searched = std::mem::take(&mut self.search_pending);
        // The page being diffed keeps its own associations.
        let page_associations = self.associations.take();
        let page_companies = self.companies_in_scope.take();
        let mut result = Ok(());
        for (pending, bin_checked) in [(listed, true), (searched, false)] {
            for chunk in pending.chunks(hubsync_hubspot::MAX_BATCH_READ_INPUTS) {
                result = self.confirm(chunk, bin_checked).await;
                if result.is_err() {
                    break;
                }
            }
        }
        self.associations = page_associations;
        self.companies_in_scope = page_companies;
        result?;
        self.execute().await
    }

    /// One batch read of ≤ 100 absence candidates (see
    /// [`Run::flush_pending`]).
    async fn confirm(
        &mut self,
        chunk: &[StoredMeta],
        bin_checked: bool,
    ) -> Result<(), EngineError> {
        let mapping = Arc::clone(&self.mapping);
        let properties = mapping.property_refs();
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
            self.listed(object, stored, Some(read_at));
        }
        let mut deleted_at: Vec<(ObjectId, Option<i64>)> = Vec::new();
        if !bin_checked && !read.missing.is_empty() {
            self.ck.counters.confirm_reads += 1;
            self.ck.counters.hubspot_calls += 1;
            let bin = self
                .engine
                .source
                .batch_read_archived(self.portal, self.object_type, &read.missing)
                .await?;
            deleted_at = bin
                .found
                .iter()
                .map(|o| (o.id, o.archived_at.as_deref().and_then(parse_ms)))
                .collect();
        }
        for id in &read.missing {
            let Some(m) = chunk.iter().find(|m| m.object_id == *id) else {
                continue;
            };
            let floor = m.source_version.saturating_add(1);
            let (reason, at) = match deleted_at.iter().find(|(i, _)| i == id) {
                Some((_, at)) => (ArchiveReason::Deleted, at.unwrap_or(read_at).max(floor)),
                None => (ArchiveReason::Merged, read_at.max(floor)),
            };
            self.actions.push(Action::Archive {
                key: m.key(),
                occurred_at_ms: at,
                reason,
                remapped: false,
                mapping_fp: None,
            });
        }
        Ok(())
    }

    /// Run the planned writes, a few at a time, and count their outcomes.
    pub(super) async fn execute(&mut self) -> Result<(), EngineError> {
        if self.actions.is_empty() {
            return Ok(());
        }
        let actions = std::mem::take(&mut self.actions);
        self.ck.counters.record_writes += actions.len() as u64;
        let store = &self.engine.store;
        let results: Vec<(RecordKey, Result<TypeCounters, StoreError>)> = stream::iter(actions)
            .map(|a| async move { (a.key(), apply(store, a).await) })
            .buffer_unordered(self.cfg().write_concurrency.max(1))
            .collect()
            .await;
        for (key, r) in results {
            match r {
                Ok(c) => self.ck.counters.absorb(&c),
                // A record the store refuses for good: counted, recorded in
                // sync health (storage), and the run goes on past it.
                Err(e) if !e.is_retryable() => {
                    self.ck.counters.errors += 1;
                    tracing::error!(portal = %self.portal, object_type = %self.object_type, error = %e,
                        "record refused by the store: counted, the run goes on");
                    if let Err(e) = store
                        .record_incident(
                            self.portal,
                            self.object_type,
                            "storage",
                            &e.to_string(),
                            &[key.object_id],
                        )
                        .await
                    {
                        tracing::warn!(error = %e, "could not record the sync incident");
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

/// One write and its counted outcome.
pub(super) async fn apply<S: RecordStore>(
    store: &S,
    action: Action,
) -> Result<TypeCounters, StoreError> {
    let mut c = TypeCounters::default();
    match action {
        Action::Upsert(write, kind) => {
            let written = hubsync_sync::upsert(store, &write).await?;
            if written.shrunk {
                // Stored with oversized fields emptied: each is a sync issue.
                c.too_large += 1;
            }
            match (written.outcome, kind) {
                (UpsertOutcome::Created | UpsertOutcome::Updated, WriteKind::Create) => {
                    c.created += 1
                }
                (UpsertOutcome::Created | UpsertOutcome::Updated, WriteKind::Update(class)) => {
                    match class {
                        UpdateClass::Content => c.updated += 1,
                        UpdateClass::VersionOnly => c.version_only += 1,
                        UpdateClass::Remapped => c.remapped += 1,
                    }
                }
                (
                    UpsertOutcome::Created | UpsertOutcome::Updated,
                    WriteKind::Unarchive { remapped: true, .. },
                ) => c.remapped += 1,
                (
                    UpsertOutcome::Created | UpsertOutcome::Updated,
                    WriteKind::Unarchive { same_version, .. },
                ) => {
                    c.unarchived += 1;
                    if same_version {
                        c.restored_same_version += 1;
                    }
                }
                (UpsertOutcome::Unchanged, _) => c.unchanged += 1,
                (UpsertOutcome::Stale, _) => c.stale += 1,
                (UpsertOutcome::Tombstoned, _) => c.tombstoned += 1,
            }
        }
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

pub(super) fn parse_ms(raw: &str) -> Option<i64> {
    hubsync_mapping::values::parse_timestamp(raw)
        .ok()
        .flatten()
        .map(|t| t.epoch_ms())
}
