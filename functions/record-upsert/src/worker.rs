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
//!    The config and the lookups its rules need (owners, deal pipelines:
//!    [`crate::lookups`]) are loaded once per portal and invocation from
//!    their caches in the Control table. Association fields
//!    are read with associations v4 for the records read, and an
//!    `*.associationChange` re-reads its record when the config maps
//!    associations of that type.
//! 5. A group that fails (HubSpot, DynamoDB) fails every message that
//!    contributed to it; everything is idempotent, so the retry redoes
//!    nothing harmful.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use futures::stream::{self, StreamExt};
use hubsync_hubspot::{HubSpotError, ObjectId, ObjectType, PortalId, TokenError};
use hubsync_messages::EventBatch;
use hubsync_store::ConnectionStatus;
use hubsync_sync::{ObjectReader, SyncError, SyncStore};
use tracing::Instrument;

use crate::plan::plan;
use crate::stats::{BatchOutcome, BatchStats};

/// What went wrong with one group; decides whether its messages are retried.
pub type GroupError = SyncError;

/// Whether retrying the group later can succeed.
fn is_transient(e: &GroupError) -> bool {
    match e {
        SyncError::HubSpot(h) => h.is_retryable(),
        SyncError::Store(s) => s.is_retryable(),
    }
}

pub use crate::lookups::PortalMapping;

/// One SQS message as the worker sees it.
#[derive(Debug, Clone)]
pub struct InboundMessage {
    pub message_id: String,
    pub body: String,
}

/// The worker's dependencies.
pub struct Worker<R, S> {
    reader: R,
    store: S,
    /// Groups processed at once within one batch.
    concurrency: usize,
    /// Portal types whose failure this process recorded as an incident:
    /// the next clean group clears it.
    incidents: std::sync::Mutex<BTreeSet<(PortalId, ObjectType)>>,
}

impl<R, S> Worker<R, S>
where
    R: ObjectReader,
    S: SyncStore,
{
    pub fn new(reader: R, store: S) -> Self {
        Self {
            reader,
            store,
            concurrency: 4,
            incidents: std::sync::Mutex::new(BTreeSet::new()),
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
        self.process_before(messages, None).await
    }

    /// Process one SQS batch, starting no group at or after `deadline`
    /// (the Lambda's deadline less a reserve) — except the first, so that
    /// every invocation makes progress: the messages of groups not started
    /// are returned as failures, to be received again, and everything
    /// started finishes.
    pub async fn process_before(
        &self,
        messages: Vec<InboundMessage>,
        deadline: Option<Instant>,
    ) -> BatchOutcome {
        let span = tracing::info_span!("sqs_batch", messages = messages.len());
        self.process_batch(messages, deadline)
            .instrument(span)
            .await
    }

    async fn process_batch(
        &self,
        messages: Vec<InboundMessage>,
        deadline: Option<Instant>,
    ) -> BatchOutcome {
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
            for change in &batch.list_changes {
                feeders
                    .entry((batch.portal_id, change.object_type))
                    .or_default()
                    .insert(id.clone());
            }
        }
        let all_events = batches.iter().flat_map(|(_, b)| b.events.iter());
        outcome.stats.events = batches.iter().map(|(_, b)| b.events.len()).sum();
        let (mut plans, unplanned) = plan(all_events);
        for (_, b) in &batches {
            crate::plan::plan_list_changes(&mut plans, b.portal_id, &b.list_changes);
        }
        outcome.stats.unknown_type_events = unplanned.unknown_type;

        // 2. Portals: only active connections sync.
        let portals: BTreeSet<PortalId> = plans.keys().map(|(p, _)| *p).collect();
        let mut active: BTreeSet<PortalId> = BTreeSet::new();
        // Portals whose mapping context could not be loaded: their groups
        // are retried (counted as failed groups, not as inactive portals).
        let mut unloaded: BTreeSet<PortalId> = BTreeSet::new();
        // Failed messages whose failure was transient (HubSpot or DynamoDB
        // unavailable): backed off rather than received again at once.
        let mut retry_later: Vec<String> = Vec::new();
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
                    unloaded.insert(portal);
                    for ((p, _), ids) in &feeders {
                        if *p == portal {
                            failed.extend(ids.iter().cloned());
                            retry_later.extend(ids.iter().cloned());
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
                if unloaded.contains(&portal) {
                    outcome.stats.failed_groups += 1;
                    continue;
                }
                outcome.stats.inactive_portal_events += plan.read.len()
                    + plan.purge.len()
                    + plan.merged_away.len()
                    + plan.association_changed.len();
                continue;
            };
            if !plan.is_empty() {
                let ids: Vec<ObjectId> = plan.read.keys().copied().collect();
                work.push((portal, object_type, plan, Arc::clone(mapping), ids));
            }
        }
        let started = AtomicUsize::new(0);
        let results: Vec<_> = stream::iter(work)
            .map(|(portal, object_type, plan, mapping, ids)| {
                // One span per portal group (ids only, never record data).
                let span = tracing::info_span!("portal_group", portal = %portal, object_type = %object_type);
                let started = &started;
                async move {
                    let mut stats = BatchStats::default();
                    // The first group always starts, so every invocation
                    // makes progress however little time it was given.
                    let late = deadline.is_some_and(|d| Instant::now() >= d);
                    if late && started.load(Ordering::SeqCst) > 0 {
                        return (portal, object_type, None, stats, ids);
                    }
                    started.fetch_add(1, Ordering::SeqCst);
                    let result = self
                        .apply((portal, object_type), &plan, &mapping, &mut stats)
                        .await;
                    (portal, object_type, Some(result), stats, ids)
                }
                .instrument(span)
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        for (portal, object_type, result, stats, ids) in results {
            outcome.stats.absorb(&stats);
            let Some(result) = result else {
                // Not started before the deadline: received again later.
                outcome.stats.deferred_groups += 1;
                if let Some(ids) = feeders.get(&(portal, object_type)) {
                    failed.extend(ids.iter().cloned());
                }
                continue;
            };
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
            match result {
                Err(e) if is_transient(&e) => {
                    outcome.stats.failed_groups += 1;
                    tracing::error!(portal = %portal, object_type = %object_type, error = %e, "group failed; its messages will be retried, backed off");
                    if let Some(ids) = feeders.get(&(portal, object_type)) {
                        failed.extend(ids.iter().cloned());
                        retry_later.extend(ids.iter().cloned());
                    }
                    self.record_incident(portal, object_type, &e, &ids).await;
                }
                Err(e) => {
                    // HubSpot refused for good (a missing scope, another
                    // 4xx) or the store rejected the request: retrying the
                    // same messages cannot help. They are acknowledged; the
                    // records are in sync health, and the reconciliation
                    // tries them again once the cause is fixed.
                    outcome.stats.refused_groups += 1;
                    tracing::error!(portal = %portal, object_type = %object_type, error = %e, category = e.category(),
                        "group refused for good: messages acknowledged, records in sync health");
                    self.record_incident(portal, object_type, &e, &ids).await;
                }
                Ok(()) => self.clear_incident(portal, object_type).await,
            }
        }
        outcome.failed.extend(failed);
        outcome.failed.sort();
        outcome.failed.dedup();
        outcome.retry_later.extend(retry_later);
        outcome.retry_later.sort();
        outcome.retry_later.dedup();
        outcome
    }

    /// Sync health: the group's failure, with the records it held up. A
    /// failure to record it is logged (the messages are retried anyway).
    async fn record_incident(
        &self,
        portal: PortalId,
        object_type: ObjectType,
        error: &GroupError,
        ids: &[ObjectId],
    ) {
        let message = error.to_string();
        match self
            .store
            .record_incident(portal, object_type, error.category(), &message, ids)
            .await
        {
            Ok(()) => {
                if let Ok(mut seen) = self.incidents.lock() {
                    seen.insert((portal, object_type));
                }
            }
            Err(e) => {
                tracing::warn!(portal = %portal, object_type = %object_type, error = %e, "could not record the sync incident")
            }
        }
    }

    /// A clean group after a failure this process recorded: the incident
    /// is over (the reconciliation clears the others).
    async fn clear_incident(&self, portal: PortalId, object_type: ObjectType) {
        let had = self
            .incidents
            .lock()
            .map(|mut seen| seen.remove(&(portal, object_type)))
            .unwrap_or(false);
        if had {
            if let Err(e) = self.store.clear_incidents(portal, object_type).await {
                tracing::warn!(portal = %portal, object_type = %object_type, error = %e, "could not clear the sync incident");
            }
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
