//! The worker: one SQS batch in, the set of messages to retry out.
//!
//! 1. Parse every message ([`EventBatch`]); a message that does not parse is
//!    failed on its own (after the queue's `maxReceiveCount` it lands in the
//!    DLQ) and never blocks the rest of the batch.
//! 2. Coalesce all events per `(portal, object type)` into a [`Plan`].
//! 3. Per portal: the connection must be active (otherwise the events are
//!    acknowledged and counted: syncing of that portal has stopped, and the
//!    reconciliation after a reconnect catches up).
//! 4. Per group: purge privacy-deleted contacts, archive merged-away ids,
//!    re-read everything else with batch reads of ≤ 100 ids (only the
//!    properties the portal's mapping config needs), archive what HubSpot no
//!    longer returns, map the rest with the portal's config and write
//!    through the version guard — reading the stored metadata first so that
//!    an unchanged record costs no write. Records outside the config's scope
//!    are skipped, and a stored active copy is archived `out_of_scope`.
//!    The config (and, when it maps owner emails or names, the portal's
//!    owners from its cache in the Control table — no HubSpot call) is
//!    loaded once per portal and invocation. A record naming an owner the
//!    cache lacks refreshes the cache from the owners API, at most once per
//!    portal and invocation and once per [`OWNERS_REFRESH_INTERVAL_MS`]
//!    across workers; an owner still unknown is a field error. Association fields
//!    are read with associations v4 for the records read, and an
//!    `*.associationChange` re-reads its record when the config maps
//!    associations of that type.
//! 5. A group that fails (HubSpot, DynamoDB) fails every message that
//!    contributed to it; everything is idempotent, so the retry redoes
//!    nothing harmful.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::Arc;

use futures::stream::{self, StreamExt};
use hubsync_hubspot::{
    AssociationLink, BatchReadResult, HubSpotError, ObjectId, ObjectType, PortalId, TokenError,
};
use hubsync_mapping::{map_with, Associations, MapContext, MapOutcome, MappingConfig, Owners};
use hubsync_messages::EventBatch;
use hubsync_store::{
    ArchiveOutcome, ArchiveReason, ConnectionStatus, ConnectionStore, MappingConfigStore,
    OwnersCacheStore, RecordKey, RecordStore, RecordWrite, StoreError, UpsertOutcome,
};
use serde::Serialize;
use tracing::Instrument;

use crate::plan::{plan, Plan, ReadIntent};

/// HubSpot's limit of ids per batch read.
pub const BATCH_READ_MAX: usize = 100;

/// On-demand refreshes of a portal's owners cache (an owner id the cache
/// lacks) are at least this far apart, across all workers.
pub const OWNERS_REFRESH_INTERVAL_MS: i64 = 5 * 60 * 1000;

/// Reads current objects from HubSpot (the client, with its token source
/// and rate limiter, in production; the simulator or a fake in tests).
pub trait ObjectReader: Send + Sync {
    fn batch_read(
        &self,
        portal: PortalId,
        object_type: ObjectType,
        ids: &[ObjectId],
        properties: &[&str],
    ) -> impl Future<Output = Result<BatchReadResult, HubSpotError>> + Send;

    /// The HTTP client's counters for a portal (requests, 429s), if the
    /// reader has a client.
    fn client_stats(&self, _portal: PortalId) -> Option<hubsync_hubspot::ClientStats> {
        None
    }

    /// The portal's owners (for `owner_email` / `owner_name` rules).
    fn owners(
        &self,
        _portal: PortalId,
    ) -> impl Future<Output = Result<Owners, HubSpotError>> + Send;

    /// Associations v4 of ≤ 1,000 ids (for association fields).
    fn associations(
        &self,
        _portal: PortalId,
        _from: ObjectType,
        _to: ObjectType,
        _ids: &[ObjectId],
    ) -> impl Future<Output = Result<Vec<AssociationLink>, HubSpotError>> + Send;
}

/// What one portal maps with during one invocation.
#[derive(Debug, Clone, Default)]
pub struct PortalMapping {
    pub config: MappingConfig,
    /// Read from the owners cache when the config resolves owners.
    pub owners: Option<Owners>,
    /// The owners after an on-demand refresh in this invocation (`None`
    /// inside: the refresh was not possible, map with `owners`).
    pub refreshed: tokio::sync::OnceCell<Option<Owners>>,
}

impl PortalMapping {
    /// The freshest owners this invocation has.
    fn current_owners(&self) -> Option<&Owners> {
        self.refreshed
            .get()
            .and_then(Option::as_ref)
            .or(self.owners.as_ref())
    }
}

/// One SQS message as the worker sees it.
#[derive(Debug, Clone)]
pub struct InboundMessage {
    pub message_id: String,
    pub body: String,
}

/// What went wrong with one group; decides whether its messages are retried.
#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    #[error("HubSpot: {0}")]
    HubSpot(#[from] HubSpotError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// Counts of one batch (logged, and turned into metrics).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BatchStats {
    pub messages: usize,
    pub poisoned_messages: usize,
    pub events: usize,
    pub unknown_type_events: usize,
    pub deferred_events: usize,
    pub invalid_events: usize,
    pub inactive_portal_events: usize,
    pub hubspot_calls: usize,
    pub ids_read: usize,
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub stale: usize,
    pub tombstoned: usize,
    pub archived_deleted: usize,
    pub archived_merged: usize,
    pub archived_out_of_scope: usize,
    pub purged: usize,
    pub skipped: BTreeMap<String, usize>,
    pub field_errors: usize,
    pub failed_groups: usize,
    pub needs_reauth_groups: usize,
    /// Owners read from HubSpot into a portal's owners cache.
    pub owner_refreshes: usize,
    /// HubSpot calls per portal.
    pub hubspot_calls_by_portal: BTreeMap<PortalId, usize>,
}

impl BatchStats {
    /// Add another batch's counts to these.
    pub fn absorb(&mut self, other: &BatchStats) {
        self.messages += other.messages;
        self.poisoned_messages += other.poisoned_messages;
        self.events += other.events;
        self.unknown_type_events += other.unknown_type_events;
        self.deferred_events += other.deferred_events;
        self.invalid_events += other.invalid_events;
        self.inactive_portal_events += other.inactive_portal_events;
        self.hubspot_calls += other.hubspot_calls;
        self.ids_read += other.ids_read;
        self.created += other.created;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
        self.stale += other.stale;
        self.tombstoned += other.tombstoned;
        self.archived_deleted += other.archived_deleted;
        self.archived_merged += other.archived_merged;
        self.archived_out_of_scope += other.archived_out_of_scope;
        self.purged += other.purged;
        self.field_errors += other.field_errors;
        self.failed_groups += other.failed_groups;
        self.needs_reauth_groups += other.needs_reauth_groups;
        self.owner_refreshes += other.owner_refreshes;
        for (k, v) in &other.skipped {
            *self.skipped.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &other.hubspot_calls_by_portal {
            *self.hubspot_calls_by_portal.entry(*k).or_default() += v;
        }
    }
}

/// The result of one batch.
#[derive(Debug, Clone, Default)]
pub struct BatchOutcome {
    /// Message ids to report as `batchItemFailures`.
    pub failed: Vec<String>,
    pub stats: BatchStats,
}

/// The worker's dependencies.
pub struct Worker<R, S> {
    reader: R,
    store: S,
    /// Groups processed at once within one batch.
    concurrency: usize,
}

impl<R, S> Worker<R, S>
where
    R: ObjectReader,
    S: RecordStore + ConnectionStore + MappingConfigStore + OwnersCacheStore,
{
    pub fn new(reader: R, store: S) -> Self {
        Self {
            reader,
            store,
            concurrency: 4,
        }
    }

    pub fn with_concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
        self
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn reader(&self) -> &R {
        &self.reader
    }

    /// Process one SQS batch.
    pub async fn process(&self, messages: Vec<InboundMessage>) -> BatchOutcome {
        let span = tracing::info_span!("sqs_batch", messages = messages.len());
        self.process_batch(messages).instrument(span).await
    }

    async fn process_batch(&self, messages: Vec<InboundMessage>) -> BatchOutcome {
        let mut outcome = BatchOutcome::default();
        outcome.stats.messages = messages.len();

        // 1. Parse; remember which messages feed which group.
        let mut batches: Vec<(String, EventBatch)> = Vec::with_capacity(messages.len());
        for m in messages {
            match EventBatch::from_json(&m.body) {
                Ok(batch) => batches.push((m.message_id, batch)),
                Err(e) => {
                    tracing::error!(message_id = %m.message_id, error = %e, "poisoned message: not an event batch");
                    outcome.stats.poisoned_messages += 1;
                    outcome.failed.push(m.message_id);
                }
            }
        }
        let mut feeders: HashMap<(PortalId, ObjectType), BTreeSet<String>> = HashMap::new();
        for (id, batch) in &batches {
            for event in &batch.events {
                if let Some(object) = event.object_type() {
                    feeders
                        .entry((event.portal_id, object))
                        .or_default()
                        .insert(id.clone());
                }
            }
        }
        let all_events = batches.iter().flat_map(|(_, b)| b.events.iter());
        outcome.stats.events = batches.iter().map(|(_, b)| b.events.len()).sum();
        let (plans, unplanned) = plan(all_events);
        outcome.stats.unknown_type_events = unplanned.unknown_type;

        // 2. Portals: only active connections sync.
        let portals: BTreeSet<PortalId> = plans.keys().map(|(p, _)| *p).collect();
        let mut active: BTreeSet<PortalId> = BTreeSet::new();
        let mut failed: BTreeSet<String> = BTreeSet::new();
        for portal in portals {
            match self.store.get_connection(portal).await {
                Ok(Some(c)) if c.status == ConnectionStatus::Active => {
                    active.insert(portal);
                }
                Ok(other) => {
                    tracing::warn!(
                        portal = %portal,
                        status = ?other.map(|c| c.status),
                        "events for a portal that is not syncing: acknowledged, not applied"
                    );
                }
                Err(e) => {
                    tracing::error!(portal = %portal, error = %e, "connection lookup failed; retrying the portal's messages");
                    for ((p, _), ids) in &feeders {
                        if *p == portal {
                            failed.extend(ids.iter().cloned());
                        }
                    }
                }
            }
        }

        // 3. Each active portal's mapping config (and owners when it needs
        //    them), once per invocation.
        let mut mappings: HashMap<PortalId, Arc<PortalMapping>> = HashMap::new();
        for portal in active.clone() {
            let types: Vec<ObjectType> = plans
                .keys()
                .filter(|(p, _)| *p == portal)
                .map(|(_, t)| *t)
                .collect();
            match self.load_mapping(portal, &types, &mut outcome.stats).await {
                Ok(m) => {
                    mappings.insert(portal, Arc::new(m));
                }
                Err(GroupError::HubSpot(HubSpotError::Token(TokenError::NeedsReauth))) => {
                    // The grant is gone: as for a group (below), stop
                    // syncing the portal instead of retrying forever.
                    active.remove(&portal);
                    outcome.stats.needs_reauth_groups += 1;
                    tracing::error!(portal = %portal, "HubSpot access revoked while loading owners: connection marked needs_reauth, messages acknowledged");
                    if let Err(e) = self
                        .store
                        .set_connection_status(
                            portal,
                            ConnectionStatus::NeedsReauth,
                            Some("invalid_grant"),
                        )
                        .await
                    {
                        tracing::error!(portal = %portal, error = %e, "could not mark the connection needs_reauth; retrying");
                        for ((p, _), ids) in &feeders {
                            if *p == portal {
                                failed.extend(ids.iter().cloned());
                            }
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(portal = %portal, error = %e, "mapping config or owners could not be loaded; retrying the portal's messages");
                    active.remove(&portal);
                    for ((p, _), ids) in &feeders {
                        if *p == portal {
                            failed.extend(ids.iter().cloned());
                        }
                    }
                }
            }
        }

        // 4. Groups, a few at a time.
        let mut work = Vec::new();
        for ((portal, object_type), plan) in plans {
            outcome.stats.deferred_events += plan.deferred_events;
            outcome.stats.invalid_events += plan.invalid_events;
            let Some(mapping) = mappings.get(&portal).filter(|_| active.contains(&portal)) else {
                outcome.stats.inactive_portal_events += plan.read.len()
                    + plan.purge.len()
                    + plan.merged_away.len()
                    + plan.association_changed.len();
                continue;
            };
            if !plan.is_empty() {
                work.push((portal, object_type, plan, Arc::clone(mapping)));
            }
        }
        let results: Vec<_> = stream::iter(work)
            .map(|(portal, object_type, plan, mapping)| {
                // One span per portal group (ids only, never record data).
                let span = tracing::info_span!("portal_group", portal = %portal, object_type = %object_type);
                async move {
                    let mut stats = BatchStats::default();
                    let result = self
                        .apply(portal, object_type, &plan, &mapping, &mut stats)
                        .await;
                    (portal, object_type, result, stats)
                }
                .instrument(span)
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        for (portal, object_type, result, stats) in results {
            outcome.stats.absorb(&stats);
            if let Err(GroupError::HubSpot(HubSpotError::Token(TokenError::NeedsReauth))) = result {
                // The grant is gone: stop syncing the portal instead of
                // retrying its messages forever. Reconnecting re-runs a full
                // sync, so nothing is lost.
                outcome.stats.needs_reauth_groups += 1;
                tracing::error!(portal = %portal, object_type = %object_type, "HubSpot access revoked: connection marked needs_reauth, messages acknowledged");
                if let Err(e) = self
                    .store
                    .set_connection_status(
                        portal,
                        ConnectionStatus::NeedsReauth,
                        Some("invalid_grant"),
                    )
                    .await
                {
                    tracing::error!(portal = %portal, error = %e, "could not mark the connection needs_reauth; retrying");
                    if let Some(ids) = feeders.get(&(portal, object_type)) {
                        failed.extend(ids.iter().cloned());
                    }
                }
                continue;
            }
            if let Err(e) = result {
                outcome.stats.failed_groups += 1;
                tracing::error!(portal = %portal, object_type = %object_type, error = %e, "group failed; its messages will be retried");
                if let Some(ids) = feeders.get(&(portal, object_type)) {
                    failed.extend(ids.iter().cloned());
                }
            }
        }
        outcome.failed.extend(failed);
        outcome.failed.sort();
        outcome.failed.dedup();
        outcome
    }

    /// The portal's config (saved, else the defaults) and, if a type of
    /// this invocation resolves owners, its owners: from the portal's
    /// cache, or — no cache yet — read from HubSpot and cached.
    async fn load_mapping(
        &self,
        portal: PortalId,
        types: &[ObjectType],
        stats: &mut BatchStats,
    ) -> Result<PortalMapping, GroupError> {
        let config = self.store.effective_mapping_config(portal).await?;
        let owners = if types.iter().any(|t| config.needs_owners(*t)) {
            match self.store.get_owners_cache(portal).await? {
                Some(cached) => Some((cached.owners, false)),
                // No cache yet (the reconciliation fills it): without the
                // owners nothing maps, so read them now — fresh, so not
                // refreshed again in this invocation.
                None => Some((self.fetch_and_cache_owners(portal, stats).await?, true)),
            }
        } else {
            None
        };
        let fresh = owners.as_ref().is_some_and(|(_, fresh)| *fresh);
        Ok(PortalMapping {
            config,
            owners: owners.map(|(o, _)| o),
            refreshed: tokio::sync::OnceCell::new_with(fresh.then_some(None)),
        })
    }

    /// Reads the portal's owners from HubSpot and stores them in its cache.
    async fn fetch_and_cache_owners(
        &self,
        portal: PortalId,
        stats: &mut BatchStats,
    ) -> Result<Owners, GroupError> {
        stats.hubspot_calls += 1;
        stats.owner_refreshes += 1;
        *stats.hubspot_calls_by_portal.entry(portal).or_default() += 1;
        let started = now_ms();
        let owners = self.reader.owners(portal).await?;
        self.store
            .put_owners_cache(portal, &owners, started)
            .await?;
        Ok(owners)
    }

    /// Owners named by `objects` that the invocation's owners lack: refresh
    /// the cache once (per invocation, and per
    /// [`OWNERS_REFRESH_INTERVAL_MS`] across workers). A refresh that is
    /// not allowed or fails leaves the cached owners (unknown ones map to a
    /// field error); a revoked grant stops the group.
    async fn refresh_owners_if_unknown(
        &self,
        portal: PortalId,
        config: &hubsync_mapping::ObjectConfig,
        objects: &[hubsync_hubspot::HubSpotObject],
        mapping: &PortalMapping,
        stats: &mut BatchStats,
    ) -> Result<(), GroupError> {
        let Some(owners) = mapping.owners.as_ref() else {
            return Ok(());
        };
        if mapping.refreshed.initialized() {
            return Ok(());
        }
        let unknown = objects
            .iter()
            .flat_map(|o| config.owner_ids(o))
            .any(|id| owners.get(id).is_none());
        if !unknown {
            return Ok(());
        }
        let mut local = BatchStats::default();
        let result = mapping
            .refreshed
            .get_or_try_init(|| async {
                if !self
                    .store
                    .claim_owners_refresh(portal, now_ms(), OWNERS_REFRESH_INTERVAL_MS)
                    .await?
                {
                    // Refreshed by another worker lately: its result is in
                    // the cache.
                    return Ok::<_, GroupError>(
                        self.store.get_owners_cache(portal).await?.map(|c| c.owners),
                    );
                }
                match self.fetch_and_cache_owners(portal, &mut local).await {
                    Ok(o) => Ok(Some(o)),
                    Err(GroupError::HubSpot(HubSpotError::Token(e))) => {
                        Err(GroupError::HubSpot(HubSpotError::Token(e)))
                    }
                    Err(e) => {
                        tracing::warn!(portal = %portal, error = %e, "owners refresh failed; mapping with the cached owners");
                        Ok(None)
                    }
                }
            })
            .await;
        stats.absorb(&local);
        result.map(|_| ())
    }

    async fn apply(
        &self,
        portal: PortalId,
        object_type: ObjectType,
        plan: &Plan,
        mapping: &PortalMapping,
        stats: &mut BatchStats,
    ) -> Result<(), GroupError> {
        let config = mapping.config.object(object_type);
        let fingerprint = config.fingerprint();
        let key = |id: ObjectId| RecordKey::new(portal, object_type, id);

        for (&id, &at) in &plan.purge {
            self.store.privacy_purge(&key(id), at).await?;
            stats.purged += 1;
        }
        for (&id, merged) in &plan.merged_away {
            let out = self
                .store
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

        // Association changes matter only when the config maps them.
        let mut reads: BTreeMap<ObjectId, ReadIntent> = plan.read.clone();
        if config.associations.is_empty() {
            stats.deferred_events += plan.association_changed.len();
        } else {
            for (&id, &at) in &plan.association_changed {
                let intent = reads.entry(id).or_default();
                intent.last_event_at = intent.last_event_at.max(at);
            }
        }
        let mut targets: Vec<ObjectType> = config.associations.iter().map(|a| a.to).collect();
        targets.sort_unstable();
        targets.dedup();

        let ids: Vec<ObjectId> = reads.keys().copied().collect();
        let property_names = config.properties(object_type);
        let properties: Vec<&str> = property_names.iter().map(String::as_str).collect();
        for chunk in ids.chunks(BATCH_READ_MAX) {
            stats.hubspot_calls += 1;
            *stats.hubspot_calls_by_portal.entry(portal).or_default() += 1;
            stats.ids_read += chunk.len();
            let read = self
                .reader
                .batch_read(portal, object_type, chunk, &properties)
                .await?;

            // Gone from HubSpot: archived at the deletion's time (or, with
            // no deletion seen, at the latest event's time).
            for id in &read.missing {
                let Some(intent) = reads.get(id) else {
                    continue;
                };
                let at = intent.deleted_at.unwrap_or(intent.last_event_at);
                let out = self
                    .store
                    .archive_record(&key(*id), at, ArchiveReason::Deleted, None)
                    .await?;
                if out == ArchiveOutcome::Archived {
                    stats.archived_deleted += 1;
                }
            }

            let associations = if targets.is_empty() || read.found.is_empty() {
                None
            } else {
                let found: Vec<ObjectId> = read.found.iter().map(|o| o.id).collect();
                let mut assoc = Associations::new();
                for &to in &targets {
                    stats.hubspot_calls += 1;
                    *stats.hubspot_calls_by_portal.entry(portal).or_default() += 1;
                    let links = self
                        .reader
                        .associations(portal, object_type, to, &found)
                        .await?;
                    assoc.mark_loaded(to);
                    for l in links {
                        assoc.insert(to, l.from, l.to, l.primary);
                    }
                }
                Some(assoc)
            };
            self.refresh_owners_if_unknown(portal, config, &read.found, mapping, stats)
                .await?;
            // List membership is not known here (HubSpot sends no list
            // webhooks): the list scope is the reconciliation's, and
            // `write_all` only updates records it already synced.
            let ctx = MapContext {
                owners: mapping.current_owners(),
                associations: associations.as_ref(),
                list_members: None,
            };

            let mut writes = Vec::with_capacity(read.found.len());
            let mut skipped: Vec<(ObjectId, i64)> = Vec::new();
            for object in &read.found {
                match map_with(config, object_type, object, ctx) {
                    MapOutcome::Mapped(mapped) => {
                        stats.field_errors += mapped.errors.len();
                        for e in &mapped.errors {
                            tracing::warn!(portal = %portal, object_type = %object_type, id = %mapped.id, error = %e, "field not mapped");
                        }
                        let version = mapped.source_version.unwrap_or(0);
                        let write = RecordWrite::from_fields(
                            key(mapped.id),
                            version,
                            mapped.content_hash.as_str(),
                            &mapped.record,
                        )?
                        .with_mapping_fp(fingerprint.as_str());
                        writes.push(write);
                    }
                    MapOutcome::Skipped { id, reason, .. } => {
                        tracing::info!(portal = %portal, object_type = %object_type, id = %id, reason = %reason, "record skipped");
                        *stats.skipped.entry(reason.to_string()).or_default() += 1;
                        if let Some(version) = object.version(object_type) {
                            skipped.push((id, version));
                        }
                    }
                }
            }
            let list_scoped = !config.lists.is_empty();
            self.write_all(
                (portal, object_type),
                writes,
                skipped,
                (list_scoped, fingerprint.as_str()),
                stats,
            )
            .await?;
        }
        Ok(())
    }

    /// Read the stored metadata of all records of a page in one go, then
    /// write only what the version guard would accept — concurrently, since
    /// each write is its own conditional request. A record that no longer
    /// qualifies (a contact whose email was cleared) must not stay active
    /// with stale data: a stored, active copy is archived as out of scope;
    /// nothing stored costs nothing.
    async fn write_all(
        &self,
        (portal, object_type): (PortalId, ObjectType),
        writes: Vec<RecordWrite>,
        skipped: Vec<(ObjectId, i64)>,
        (list_scoped, fingerprint): (bool, &str),
        stats: &mut BatchStats,
    ) -> Result<(), GroupError> {
        if writes.is_empty() && skipped.is_empty() {
            return Ok(());
        }
        let key = |id: ObjectId| RecordKey::new(portal, object_type, id);
        let keys: Vec<RecordKey> = writes
            .iter()
            .map(|w| w.key)
            .chain(skipped.iter().map(|(id, _)| key(*id)))
            .collect();
        let stored: HashMap<RecordKey, hubsync_store::StoredMeta> = self
            .store
            .get_record_meta(&keys)
            .await?
            .into_iter()
            .map(|m| (m.key(), m))
            .collect();

        for (id, version) in skipped {
            let active = stored
                .get(&key(id))
                .is_some_and(|m| !m.archived && !m.privacy_deleted);
            if !active {
                continue;
            }
            let out = self
                .store
                .archive_record_mapped(
                    &key(id),
                    version,
                    ArchiveReason::OutOfScope,
                    None,
                    Some(fingerprint),
                )
                .await?;
            if out == ArchiveOutcome::Archived {
                stats.archived_out_of_scope += 1;
            }
        }

        let mut to_write = Vec::with_capacity(writes.len());
        for write in writes {
            // A list-scoped type: only records the reconciliation put in
            // scope (stored, and not archived as out of scope) are updated.
            if list_scoped
                && stored.get(&write.key).is_none_or(|m| {
                    m.archived && m.archive_reason == Some(ArchiveReason::OutOfScope)
                })
            {
                *stats
                    .skipped
                    .entry("list_scope_pending".to_owned())
                    .or_default() += 1;
                continue;
            }
            use hubsync_store::WriteDecision::*;
            match hubsync_store::needs_write(
                stored.get(&write.key),
                write.source_version,
                &write.content_hash,
            ) {
                SkipUnchanged => stats.unchanged += 1,
                SkipStale => stats.stale += 1,
                SkipTombstoned => stats.tombstoned += 1,
                Write => to_write.push(write),
            }
        }
        for chunk in to_write.chunks(WRITE_CONCURRENCY) {
            let pending: Vec<_> = chunk.iter().map(|w| self.store.upsert_record(w)).collect();
            for outcome in futures::future::join_all(pending).await {
                match outcome? {
                    UpsertOutcome::Created => stats.created += 1,
                    UpsertOutcome::Updated => stats.updated += 1,
                    UpsertOutcome::Unchanged => stats.unchanged += 1,
                    UpsertOutcome::Stale => stats.stale += 1,
                    UpsertOutcome::Tombstoned => stats.tombstoned += 1,
                }
            }
        }
        Ok(())
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Conditional writes in flight at once within one group.
const WRITE_CONCURRENCY: usize = 16;

/// The `Function` dimension of the worker's metrics.
pub const FUNCTION: &str = "record-upsert";

impl BatchStats {
    /// EMF: records written / skipped / archived, failures, and HubSpot
    /// calls (and 429s, from `rate_limited`) per portal.
    pub fn emit_metrics(&self, rate_limited: &BTreeMap<PortalId, u64>) {
        use hubsync_runtime::metrics::Metrics;
        let n = |v: usize| v as u64;
        Metrics::new(FUNCTION)
            .count("Messages", n(self.messages))
            .count("Events", n(self.events))
            .count("RecordsWritten", n(self.created + self.updated))
            .count("RecordsCreated", n(self.created))
            .count("RecordsUpdated", n(self.updated))
            .count("RecordsUnchanged", n(self.unchanged))
            .count("RecordsStale", n(self.stale))
            .count(
                "RecordsSkipped",
                self.skipped.values().map(|v| *v as u64).sum(),
            )
            .count(
                "RecordsArchived",
                n(self.archived_deleted + self.archived_merged + self.archived_out_of_scope),
            )
            .count("RecordsPurged", n(self.purged))
            .count("FieldErrors", n(self.field_errors))
            .count("PoisonedMessages", n(self.poisoned_messages))
            .count("FailedGroups", n(self.failed_groups))
            .count("NeedsReauth", n(self.needs_reauth_groups))
            .emit();
        for (portal, calls) in &self.hubspot_calls_by_portal {
            Metrics::new(FUNCTION)
                .dimension("PortalId", portal)
                .count("HubSpotCalls", *calls as u64)
                .count(
                    "HubSpot429s",
                    rate_limited.get(portal).copied().unwrap_or(0),
                )
                .emit();
        }
    }
}

/// The portal of a queued message, without parsing its events.
pub fn peek_portal(body: &str) -> Option<PortalId> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Head {
        portal_id: PortalId,
    }
    serde_json::from_str::<Head>(body).ok().map(|h| h.portal_id)
}
