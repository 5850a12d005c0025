//! The worker's counts: one batch's, logged and emitted as metrics.

use std::collections::BTreeMap;

use hubsync_hubspot::PortalId;
use serde::Serialize;

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
    /// Mapped records that could not be stored (fields that do not
    /// serialize); logged with their key, the rest of the group goes on.
    pub record_errors: usize,
    /// Records stored with fields emptied to fit DynamoDB's item limit.
    pub too_large: usize,
    pub failed_groups: usize,
    /// Groups HubSpot or the store refused for good: acknowledged (not
    /// retried), recorded in sync health.
    pub refused_groups: usize,
    /// Groups not started before the invocation's deadline (their
    /// messages are received again).
    pub deferred_groups: usize,
    pub needs_reauth_groups: usize,
    /// Contacts and deals re-read because a company they follow started or
    /// stopped syncing.
    pub followed: usize,
    /// Records HubSpot no longer has (deleted, merged away, purged) handed
    /// on for the records naming them to be re-read (links HubSpot does
    /// not announce; the journal reader does it).
    pub gone_recorded: usize,
    /// Deal pipelines read from HubSpot into a portal's pipelines cache.
    pub pipeline_refreshes: usize,
    /// Owners read from HubSpot into a portal's owners cache.
    pub owner_refreshes: usize,
    /// Records mapped with the associations they were stored with (a
    /// property change cannot move them): no associations read.
    pub associations_carried: usize,
    /// Records written, or archived as deleted, because of events only the
    /// Webhooks Journal had (no webhook about them in the batch): changes
    /// the webhooks missed. Merges are not counted.
    pub journal_recovered: usize,
    /// HubSpot calls per portal.
    pub hubspot_calls_by_portal: BTreeMap<PortalId, usize>,
}

impl BatchStats {
    /// Add another batch's counts to these.
    pub fn absorb(&mut self, other: &BatchStats) {
        hubsync_runtime::add_counts!(self, other;
            messages, poisoned_messages, events, unknown_type_events,
            deferred_events, invalid_events, inactive_portal_events, hubspot_calls,
            ids_read, created, updated, unchanged, stale, tombstoned,
            archived_deleted, archived_merged, archived_out_of_scope, purged,
            field_errors, record_errors, too_large, failed_groups, refused_groups, deferred_groups, needs_reauth_groups,
            owner_refreshes, pipeline_refreshes, followed, gone_recorded,
            associations_carried, journal_recovered
        );
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
    /// The failed messages whose failure was transient: to back off
    /// (their visibility extended by their receive count).
    pub retry_later: Vec<String>,
    pub stats: BatchStats,
}

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
            .count("RecordErrors", n(self.record_errors))
            .count("PoisonedMessages", n(self.poisoned_messages))
            .count("TooLarge", n(self.too_large))
            .count("FailedGroups", n(self.failed_groups))
            .count("RefusedGroups", n(self.refused_groups))
            .count("DeferredGroups", n(self.deferred_groups))
            .count("NeedsReauth", n(self.needs_reauth_groups))
            .count("JournalRecovered", n(self.journal_recovered))
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

impl BatchStats {
    /// What loading a mapping context cost a portal.
    pub fn absorb_load(&mut self, portal: PortalId, counts: hubsync_sync::LoadCounts) {
        let calls = counts.hubspot_calls as usize;
        self.hubspot_calls += calls;
        *self.hubspot_calls_by_portal.entry(portal).or_default() += calls;
        self.owner_refreshes += counts.owner_reads as usize;
        self.pipeline_refreshes += counts.pipeline_reads as usize;
    }
}
