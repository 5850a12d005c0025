//! DynamoDB access for hubsync, by concern: synced records (Records table,
//! written with a monotonic version guard; `model/`, `dynamo.rs`,
//! `memory.rs`), and in the Control table connections and tokens, OAuth
//! states, leases, sync state (checkpoints, run reports), mapping configs,
//! owners caches and rate ledgers — each concern a trait with its DynamoDB
//! and in-memory implementations. The sets of traits the worker and the
//! reconciliation need are named once in `hubsync-sync` (`SyncStore`,
//! `RunStore`).
//!
//! - [`ConnectionStore`], [`RecordStore`] and [`TokenStore`] are the narrow
//!   traits handlers are generic over; [`DynamoStore`] implements them on
//!   DynamoDB and [`MemoryStore`] in memory, with identical semantics (one
//!   shared test suite runs against both).
//! - Records: `pk = "{portal}#{objectType}"`, `sk` = the id zero-padded to
//!   20 digits (numeric order); metadata attributes in [`model::attr`], the
//!   mapped fields as further top-level attributes. Items are built with
//!   `serde_dynamo`.
//! - Control: connections at `pk = "CONN#{portal}"`, `sk = "CONN"`; leases
//!   at `pk = "LEASE#{name}"`, `sk = "LEASE"` (with the table's TTL
//!   attribute `expires_at_epoch`).
//! - The version guard: a write lands when nothing is stored, or when it is
//!   newer (or the same version with other content) and the record is not
//!   a privacy tombstone; see [`needs_write`], which callers use to skip
//!   writes after a [`RecordStore::get_record_meta`].
//! - Every write request (including refused conditional writes, which
//!   DynamoDB bills) is counted in [`StoreStats`].
//! - Errors and logs carry ids only, never field values or tokens.
#![forbid(unsafe_code)]

pub mod config;
pub mod dynamo;
pub mod error;
pub mod incidents;
pub mod journal_cursor;
pub mod journal_fixes;
pub mod mapping_config;
pub mod memory;
pub mod model;
pub mod oauth_state;
pub mod owners_cache;
pub mod pipelines_cache;
pub mod rate_ledger;
pub mod relinks;
pub mod stats;
pub mod sync_state;
pub mod traits;

pub use config::{StoreConfig, CONTROL_TABLE_VAR, RECORDS_TABLE_VAR};
pub use dynamo::{create_tables, DynamoStore, CONTROL_TTL_ATTRIBUTE};
pub use error::StoreError;
/// The sync-job message (defined with the other queue contracts).
pub use hubsync_messages::{SyncJob, SyncJobKind};
/// Settings are read through the runtime's one mechanism.
pub use hubsync_runtime::{ConfigError, Env, FromEnv};
pub use incidents::{Incident, IncidentStore};
pub use journal_cursor::{JournalCursor, JournalCursorStore};
pub use journal_fixes::JournalFixStore;
pub use mapping_config::{MappingConfigStore, StoredMappingConfig};
pub use memory::MemoryStore;
pub use model::unique_tag;
pub use model::{
    item_size, needs_write, token_refresh_lease, ArchiveOutcome, ArchiveReason, Connection,
    ConnectionStatus, DeleteOutcome, FieldsPage, IssuePage, IssueRecord, Item, Lease,
    MetaWithFields, PurgeOutcome, RecordIssue, RecordKey, RecordPage, RecordWrite, StoredMeta,
    StoredRecord, TokenSwap, TokenUpdate, UpsertOutcome, WriteDecision, MAX_ITEM_BYTES, TOO_LARGE,
};
pub use oauth_state::{state_digest, ClaimOutcome, OAuthStateStore, PendingAuth, StateOutcome};
pub use owners_cache::{CachedOwners, OwnersCacheStore};
pub use pipelines_cache::{CachedPipelines, PipelinesCacheStore};
pub use rate_ledger::{LedgerSwap, MemoryRateLedgers, RateGrant, RateLedger, RateLedgerStore};
pub use relinks::{Gone, PendingGone, RelinkStore};
pub use stats::StoreStats;
pub use sync_state::{
    run_lock_name, Checkpoint, RunReport, RunStatus, SearchWalk, SyncStateStore, TypeCounters,
    TypeRunReport, RUN_PK_PREFIX,
};
pub use traits::{ConnectionStore, RecordScan, RecordStore, TokenStore};

/// Most keys one `BatchGetItem` call may carry.
pub const BATCH_GET_MAX_KEYS: usize = 100;
