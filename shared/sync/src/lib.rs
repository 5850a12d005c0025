//! The sync core: what the real-time worker and the reconciliation share.
//! They differ in how they *get* HubSpot records (events and batch reads,
//! or the full listing merge-joined with the store); what they *do* with a
//! record is decided here, once.
//!
//! * [`source`]: HubSpot reads as one-method traits, implemented once by
//!   [`HubSpotSource`]; the bundles [`ObjectReader`] (worker) and
//!   [`CrmSource`] (reconciliation).
//! * [`context`]: the mapping-context loader — config, owners under one
//!   cache policy, list members, associations.
//! * [`decide()`]: the decision for one record (create, update, un-archive,
//!   restore, archive out of scope, skip) over the version rule
//!   (`HubSpotObject::version`) and the store's write guard.
//! * `fake` (feature `fake`, tests only): one fake HubSpot behind every
//!   trait.
//! * [`SyncStore`] / [`RunStore`]: the store traits each side needs, named
//!   once.
#![forbid(unsafe_code)]

pub mod context;
pub mod decide;
#[cfg(feature = "fake")]
pub mod fake;
pub mod source;
pub mod write;

use hubsync_hubspot::HubSpotError;
use hubsync_store::{
    ConnectionStore, IncidentStore, JournalFixStore, MappingConfigStore, OwnersCacheStore,
    PipelinesCacheStore, RecordStore, RelinkStore, StoreError, SyncStateStore, TokenStore,
};

pub use context::{
    association_targets, CacheFreshness, ContextLoader, Directory, LoadCounts, LoadedOwners,
    OWNERS_REFRESH_INTERVAL_MS,
};
pub use decide::{decide, Decision, Facts, ListedLive, Skip, UpdateClass, WriteKind};
pub use source::{
    BatchRead, BatchReadArchived, CountObjects, CrmSource, HubSpotSource, ListPage, ObjectReader,
    PortalStats, ReadAssociations, ReadListMembers, ReadOwners, ReadPipelines, ReadProperties,
    ReadRecordLists, SearchObjects,
};
pub use write::upsert;

/// Why a unit of sync work (a worker group, a reconcile slice) failed; the
/// caller retries it (a revoked grant excepted: the portal stops syncing).
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("HubSpot: {0}")]
    HubSpot(#[from] HubSpotError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

impl SyncError {
    /// The sync-health category of the failure: `permission` (a missing
    /// scope, access denied), `hubspot_4xx` (another refusal),
    /// `rate_limit`, `hubspot_unavailable` (5xx, timeouts, transport) or
    /// `storage`.
    pub fn category(&self) -> &'static str {
        match self {
            SyncError::HubSpot(e) => match e {
                HubSpotError::Forbidden { .. }
                | HubSpotError::Unauthorized { .. }
                | HubSpotError::Token(hubsync_hubspot::TokenError::NeedsReauth) => "permission",
                HubSpotError::RateLimited { .. } | HubSpotError::RateLimiter(_) => "rate_limit",
                e if e.is_retryable() => "hubspot_unavailable",
                _ => "hubspot_4xx",
            },
            SyncError::Store(_) => "storage",
        }
    }
}

/// What the worker needs of the store: records, connections, mapping
/// configs, owners and pipelines caches, sync incidents, the count of the
/// Webhooks Journal's repairs, and the gone records whose linkers wait.
pub trait SyncStore:
    RecordStore
    + ConnectionStore
    + MappingConfigStore
    + OwnersCacheStore
    + PipelinesCacheStore
    + IncidentStore
    + JournalFixStore
    + RelinkStore
{
}
impl<T> SyncStore for T where
    T: RecordStore
        + ConnectionStore
        + MappingConfigStore
        + OwnersCacheStore
        + PipelinesCacheStore
        + IncidentStore
        + JournalFixStore
        + RelinkStore
{
}

/// What a reconciliation run needs besides: tokens and run state.
pub trait RunStore: SyncStore + TokenStore + SyncStateStore {}
impl<T: SyncStore + TokenStore + SyncStateStore> RunStore for T {}

/// Now, epoch ms.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
