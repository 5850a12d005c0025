//! One group — a portal and an object type — of a batch: purges, merges,
//! batch reads, then each record read goes through the sync core's
//! [`decide`] and is written (or archived) through the store's guard.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use hubsync_hubspot::{ObjectId, ObjectType, PortalId};
use hubsync_mapping::{
    association_fields, map_with, stored_links, Associations, MapContext, MapOutcome, ObjectConfig,
    StoredLinks,
};
use hubsync_store::{
    ArchiveOutcome, ArchiveReason, RecordKey, RecordWrite, StoredMeta, UpsertOutcome,
};
use hubsync_sync::{
    association_targets, decide, ContextLoader, Decision, Facts, ListedLive, LoadCounts,
    ObjectReader, Skip, SyncError, SyncStore, WriteKind,
};

use crate::plan::{Plan, ReadIntent};
use crate::stats::BatchStats;
use crate::worker::{PortalMapping, Worker};

/// HubSpot's limit of ids per batch read.
pub const BATCH_READ_MAX: usize = 100;

/// Conditional writes in flight at once within one group.
const WRITE_CONCURRENCY: usize = 16;

impl<R: ObjectReader, S: SyncStore> Worker<R, S> {
    pub(crate) async fn apply(
        &self,
        (portal, object_type): (PortalId, ObjectType),
        plan: &Plan,
        mapping: &PortalMapping,
        stats: &mut BatchStats,
    ) -> Result<(), SyncError> {
        let config = mapping.config.object(object_type);
        let key = |id: ObjectId| RecordKey::new(portal, object_type, id);
        let recovered_before = stats.journal_recovered;

        // Records HubSpot no longer has: what named them is re-read later.
        let mut gone: BTreeSet<ObjectId> = BTreeSet::new();
        for (&id, &at) in &plan.purge {
            self.store().privacy_purge(&key(id), at).await?;
            stats.purged += 1;
            gone.insert(id);
        }
        for (&id, merged) in &plan.merged_away {
            gone.insert(id);
            let out = self
                .store()
                .archive_record(
                    &key(id),
                    merged.occurred_at,
                    ArchiveReason::Merged,
                    Some(merged.into),
                )
                .await?;
            if out == ArchiveOutcome::Archived {
                stats.archived_merged += 1;
            }
        }

        // Association changes matter only when the config reads them.
        let mut reads: BTreeMap<ObjectId, ReadIntent> = plan.read.clone();
        if !config.reads_associations() {
            stats.deferred_events += plan.association_changed.len();
        } else {
            for (&id, &at) in &plan.association_changed {
                let intent = reads.entry(id).or_default();
                intent.last_event_at = intent.last_event_at.max(at);
                intent.links_may_change = true;
            }
        }

        let ids: Vec<ObjectId> = reads.keys().copied().collect();
        let property_names = config.properties(object_type);
        let properties: Vec<&str> = property_names.iter().map(String::as_str).collect();
        // Companies that started or stopped syncing (their followers'
        // scope moves with them).
        let mut moved: Vec<ObjectId> = Vec::new();
        // Up to 1,000 ids are read (batch reads of 100) before they are
        // mapped, so that their associations take one call per target type
        // (associations v4 takes 1,000 ids) rather than one per 100.
        for window in ids.chunks(hubsync_hubspot::MAX_ASSOCIATION_INPUTS) {
            let mut found = Vec::with_capacity(window.len());
            let mut read_started_ms = None;
            for chunk in window.chunks(BATCH_READ_MAX) {
                stats.count_calls(portal, 1);
                stats.ids_read += chunk.len();
                read_started_ms.get_or_insert_with(hubsync_sync::now_ms);
                let read = self
                    .reader()
                    .batch_read(portal, object_type, chunk, &properties)
                    .await?;

                // Gone from HubSpot: archived at the deletion's time (or,
                // with no deletion seen, at the latest event's time).
                for id in &read.missing {
                    let Some(intent) = reads.get(id) else {
                        continue;
                    };
                    gone.insert(*id);
                    let at = intent.deleted_at.unwrap_or(intent.last_event_at);
                    let out = self
                        .store()
                        .archive_record(&key(*id), at, ArchiveReason::Deleted, None)
                        .await?;
                    if out == ArchiveOutcome::Archived {
                        stats.archived_deleted += 1;
                        if intent.journal_only {
                            stats.journal_recovered += 1;
                        }
                    }
                }
                found.extend(read.found);
            }
            let fresh = Fresh {
                found: &found,
                intents: &reads,
                // The first read's start: the most cautious evidence.
                read_started_ms: read_started_ms.unwrap_or_default(),
            };
            moved.extend(
                self.map_and_write((portal, object_type), config, fresh, mapping, stats)
                    .await?,
            );
        }
        self.count_journal_fixes(
            (portal, object_type),
            stats.journal_recovered - recovered_before,
        )
        .await;
        if object_type == ObjectType::Companies && !moved.is_empty() {
            self.follow_companies(portal, &moved, mapping, stats)
                .await?;
        }
        // HubSpot says nothing to the records that named them: the journal
        // reader re-reads those (`hubsync_store::relinks`).
        let gone: Vec<ObjectId> = gone.into_iter().collect();
        self.store().add_gone(portal, object_type, &gone).await?;
        stats.gone_recorded += gone.len();
        Ok(())
    }

    /// Adds the group's repairs that only the journal asked for to the
    /// count the next reconciliation reports. A report figure: a failure
    /// is logged, never fails the group.
    async fn count_journal_fixes(&self, (portal, object_type): (PortalId, ObjectType), n: usize) {
        if n == 0 {
            return;
        }
        if let Err(e) = self
            .store()
            .add_journal_fixes(portal, object_type, n as u64)
            .await
        {
            tracing::warn!(portal = %portal, object_type = %object_type, error = %e, "could not count the journal's repairs");
        }
    }

    /// For a type with a list scope: whether each record the journal said
    /// entered or left a list is now a member of one of the scope's lists
    /// (one Lists API call per record).
    async fn record_lists(
        &self,
        portal: PortalId,
        object_type: ObjectType,
        config: &ObjectConfig,
        found: &[hubsync_hubspot::HubSpotObject],
        intents: &BTreeMap<ObjectId, ReadIntent>,
        stats: &mut BatchStats,
    ) -> Result<BTreeMap<ObjectId, bool>, SyncError> {
        let mut known = BTreeMap::new();
        if config.lists.is_empty() {
            return Ok(known);
        }
        for o in found
            .iter()
            .filter(|o| intents.get(&o.id).is_some_and(|i| i.lists_may_change))
        {
            stats.count_calls(portal, 1);
            let lists = self
                .reader()
                .record_lists(portal, object_type, o.id)
                .await?;
            known.insert(o.id, lists.iter().any(|l| config.lists.contains(l)));
        }
        Ok(known)
    }

    /// Maps the records read and writes what [`decide`] says, reading the
    /// stored metadata of all of them in one go first (an unchanged record
    /// costs no write). Returns the ids that started or stopped syncing.
    async fn map_and_write(
        &self,
        (portal, object_type): (PortalId, ObjectType),
        config: &ObjectConfig,
        Fresh {
            found,
            intents,
            read_started_ms,
        }: Fresh<'_>,
        mapping: &PortalMapping,
        stats: &mut BatchStats,
    ) -> Result<Vec<ObjectId>, SyncError> {
        let mut moved = Vec::new();
        if found.is_empty() {
            return Ok(moved);
        }
        let loader = ContextLoader::new(self.reader(), self.store());
        let mut counts = LoadCounts::default();
        let ids: Vec<ObjectId> = found.iter().map(|o| o.id).collect();
        let fingerprint = config.fingerprint();
        let keys: Vec<RecordKey> = ids
            .iter()
            .map(|id| RecordKey::new(portal, object_type, *id))
            .collect();
        let targets = association_targets(config);
        let Stored {
            meta: stored,
            carried,
        } = self
            .stored(config, &fingerprint, &keys, intents, !targets.is_empty())
            .await?;
        // A record the mapping skips whatever its associations (out of
        // scope, no email, …) needs none: only a scope that follows
        // companies depends on them.
        let skipped_anyway = |o: &hubsync_hubspot::HubSpotObject| {
            !config.scope_follows_companies
                && matches!(
                    map_with(config, object_type, o, MapContext::default()),
                    MapOutcome::Skipped { .. }
                )
        };
        let to_read: Vec<ObjectId> = found
            .iter()
            .filter(|o| !carried.iter().any(|(c, _)| *c == o.id))
            .filter(|o| targets.is_empty() || !skipped_anyway(o))
            .map(|o| o.id)
            .collect();
        let associations = loader
            .associations(portal, object_type, &targets, &to_read, &mut counts)
            .await;
        stats.count_calls(portal, counts.hubspot_calls as usize);
        let mut associations = associations?;
        if !carried.is_empty() {
            let assoc = associations.get_or_insert_with(Associations::new);
            for &to in &targets {
                assoc.mark_loaded(to);
            }
            stats.associations_carried += carried.len();
            for (id, links) in carried {
                for (to, targets) in links {
                    for (target, primary) in targets {
                        assoc.insert(to, id, target, primary);
                    }
                }
            }
        }
        let companies_in_scope = loader
            .companies_in_scope(portal, config, associations.as_ref(), &ids)
            .await?;
        self.refresh_if_unknown(portal, config, found, mapping, stats)
            .await?;
        // List membership: HubSpot sends no list webhooks, so for most
        // records it is not known here and the list scope is the
        // reconciliation's (`decide` only updates records already in
        // scope). The journal reader says which records entered or left a
        // list: their memberships are read now (whatever order the changes
        // arrived in) and decide their list scope here.
        let known_lists = self
            .record_lists(portal, object_type, config, found, intents, stats)
            .await?;
        let members: BTreeSet<ObjectId> = known_lists
            .iter()
            .filter(|(_, member)| **member)
            .map(|(id, _)| *id)
            .collect();
        let ctx = MapContext {
            owners: mapping.owners.current(),
            pipelines: mapping.pipelines.current(),
            associations: associations.as_ref(),
            list_members: None,
            companies_in_scope: companies_in_scope.as_ref(),
        };
        // A scope that follows companies changes without the record's
        // version moving: this fresh read is the evidence that restores a
        // record archived out of scope (the restore rule).
        let listed_live = config.scope_follows_companies.then_some(ListedLive {
            started_at_ms: read_started_ms,
            skew_ms: READ_SKEW_MS,
        });

        let mut to_write: Vec<RecordWrite> = Vec::with_capacity(found.len());
        for (object, key) in found.iter().zip(keys) {
            let lists_known = known_lists.contains_key(&object.id);
            let ctx = if lists_known {
                MapContext {
                    list_members: Some(&members),
                    ..ctx
                }
            } else {
                ctx
            };
            let outcome = map_with(config, object_type, object, ctx);
            match &outcome {
                MapOutcome::Mapped(mapped) => {
                    stats.field_errors += mapped.errors.len();
                    for e in &mapped.errors {
                        tracing::warn!(portal = %portal, object_type = %object_type, id = %mapped.id, error = %e, "field not mapped");
                    }
                }
                MapOutcome::Skipped { id, reason, .. } => {
                    tracing::info!(portal = %portal, object_type = %object_type, id = %id, reason = %reason, "record skipped");
                    *stats.skipped.entry(reason.to_string()).or_default() += 1;
                }
            }
            let facts = Facts {
                key,
                object_type,
                fingerprint: &fingerprint,
                list_scope_unknown: !config.lists.is_empty() && !lists_known,
                listed_live,
            };
            match decide(facts, object, outcome, stored.get(&key)) {
                Decision::Write { write, kind } => {
                    if matches!(kind, WriteKind::Create | WriteKind::Unarchive { .. }) {
                        moved.push(key.object_id);
                    }
                    if intents.get(&key.object_id).is_some_and(|i| i.journal_only) {
                        stats.journal_recovered += 1;
                    }
                    to_write.push(write)
                }
                Decision::ArchiveOutOfScope { occurred_at_ms, .. } => {
                    let out = self
                        .store()
                        .archive_record_mapped(
                            &key,
                            occurred_at_ms,
                            ArchiveReason::OutOfScope,
                            None,
                            Some(&fingerprint),
                        )
                        .await?;
                    if out == ArchiveOutcome::Archived {
                        stats.archived_out_of_scope += 1;
                        moved.push(key.object_id);
                    }
                }
                Decision::Skip(skip) => stats.count_skip(skip),
                Decision::Invalid(e) => {
                    stats.record_errors += 1;
                    tracing::error!(key = %key, error = %e, "record could not be written");
                }
            }
        }
        for chunk in to_write.chunks(WRITE_CONCURRENCY) {
            let pending: Vec<_> = chunk
                .iter()
                .map(|w| hubsync_sync::upsert(self.store(), w))
                .collect();
            for (write, written) in chunk.iter().zip(futures::future::join_all(pending).await) {
                // Stored with oversized fields emptied: each is a sync issue.
                if written.as_ref().is_ok_and(|w| w.shrunk) {
                    stats.too_large += 1;
                }
                match written.map(|w| w.outcome) {
                    Ok(UpsertOutcome::Created) => stats.created += 1,
                    Ok(UpsertOutcome::Updated) => stats.updated += 1,
                    Ok(UpsertOutcome::Unchanged) => stats.unchanged += 1,
                    Ok(UpsertOutcome::Stale) => stats.stale += 1,
                    Ok(UpsertOutcome::Tombstoned) => stats.tombstoned += 1,
                    // A record the store refuses for good: counted, recorded
                    // in sync health (storage), never retried, and the
                    // group's other records go on.
                    Err(e) if !e.is_retryable() => {
                        stats.record_errors += 1;
                        tracing::error!(key = %write.key, error = %e, "record refused by the store: counted, not retried");
                        let k = write.key;
                        if let Err(e) = self
                            .store()
                            .record_incident(
                                k.portal_id,
                                k.object_type,
                                "storage",
                                &e.to_string(),
                                &[k.object_id],
                            )
                            .await
                        {
                            tracing::warn!(error = %e, "could not record the sync incident");
                        }
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(moved)
    }
}

/// Records just read from HubSpot, why, and when the read started.
#[derive(Clone, Copy)]
struct Fresh<'a> {
    found: &'a [hubsync_hubspot::HubSpotObject],
    intents: &'a BTreeMap<ObjectId, ReadIntent>,
    read_started_ms: i64,
}

/// What is stored of the records read: their metadata, and the
/// associations of those whose stored ones still hold.
struct Stored {
    meta: HashMap<RecordKey, StoredMeta>,
    carried: Vec<(ObjectId, StoredLinks)>,
}

impl<R: ObjectReader, S: SyncStore> Worker<R, S> {
    /// The stored metadata of `keys` (one read per 100), with — when the
    /// config maps associations — the association fields of the records
    /// only property changes touched, read back where they were stored
    /// with this very config and are live.
    async fn stored(
        &self,
        config: &ObjectConfig,
        fingerprint: &str,
        keys: &[RecordKey],
        intents: &BTreeMap<ObjectId, ReadIntent>,
        maps_associations: bool,
    ) -> Result<Stored, SyncError> {
        let carry_candidates = maps_associations
            && keys.iter().any(|k| {
                intents
                    .get(&k.object_id)
                    .is_some_and(|i| !i.links_may_change)
            });
        let fields = if carry_candidates {
            association_fields(config)
        } else {
            Vec::new()
        };
        let mut out = Stored {
            meta: HashMap::with_capacity(keys.len()),
            carried: Vec::new(),
        };
        for (meta, values) in self.store().get_record_meta_fields(keys, &fields).await? {
            let id = meta.object_id;
            let holds = carry_candidates
                && intents.get(&id).is_some_and(|i| !i.links_may_change)
                && !meta.archived
                && !meta.privacy_deleted
                && meta.mapping_fp.as_deref() == Some(fingerprint);
            if let Some(links) = holds.then(|| stored_links(config, &values)).flatten() {
                out.carried.push((id, links));
            }
            out.meta.insert(meta.key(), meta);
        }
        Ok(out)
    }
}

/// Clock-skew margin of the restore rule for the worker's own reads.
const READ_SKEW_MS: i64 = 60_000;

impl BatchStats {
    fn count_calls(&mut self, portal: PortalId, calls: usize) {
        self.hubspot_calls += calls;
        *self.hubspot_calls_by_portal.entry(portal).or_default() += calls;
    }

    fn count_skip(&mut self, skip: Skip) {
        match skip {
            Skip::Unchanged => self.unchanged += 1,
            Skip::Stale => self.stale += 1,
            Skip::Tombstoned => self.tombstoned += 1,
            Skip::ListScopePending => {
                *self
                    .skipped
                    .entry("list_scope_pending".to_owned())
                    .or_default() += 1;
            }
            // Counted by its map outcome's reason.
            Skip::NotSynced => {}
            // The worker has no listing, so never defers a restore.
            Skip::DeferredRestore => self.stale += 1,
        }
    }
}
