//! The events hubsync publishes (`docs/EVENTS.md`): source `hubsync`, one
//! `detail-type` per event, a JSON `detail` with `schema_version` 1. Ids
//! and field names only: never a field's value (personal data stays in
//! DynamoDB, behind the application's read access).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

/// The `source` of every event.
pub const SOURCE: &str = "hubsync";
/// The version of the detail schemas below. Fields are only added within a
/// version; a change of meaning comes as a new version.
pub const SCHEMA_VERSION: u32 = 1;

/// A record of the Records table changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordChangeKind {
    /// First stored.
    Created,
    /// Mapped fields changed.
    Updated,
    /// Deleted in HubSpot, or out of the sync scope (`archive_reason`).
    Archived,
    /// Merged into another record (`merged_into`).
    Merged,
    /// Back: restored in HubSpot, or in scope again.
    Restored,
    /// A privacy deletion: the personal data is gone, a tombstone stays.
    Purged,
    /// Deleted permanently (the application's "Delete permanently").
    Deleted,
}

/// One event, ready for PutEvents.
#[derive(Debug, Clone, PartialEq)]
pub struct OutEvent {
    /// `record.changed`, `sync.progress`, …
    pub detail_type: &'static str,
    /// The JSON detail (with `schema_version`, `event_id`, `occurred_at`).
    pub detail: Value,
    /// The stream record it came from (the partial-failure marker).
    pub sequence: String,
}

/// The fields every detail starts with.
#[derive(Debug, Clone, Serialize)]
pub struct Envelope {
    pub schema_version: u32,
    /// Stable for one change: a retried publish repeats it, so consumers
    /// can drop duplicates.
    pub event_id: String,
    pub occurred_at: DateTime<Utc>,
    pub portal_id: u64,
    /// The application's tenant (absent when the portal's connection is
    /// gone).
    pub tenant_id: Option<String>,
}

/// `record.changed`.
#[derive(Debug, Clone, Serialize)]
pub struct RecordChanged {
    #[serde(flatten)]
    pub envelope: Envelope,
    pub object_type: String,
    pub object_id: String,
    pub kind: RecordChangeKind,
    /// The names of the attributes whose value changed (mapped fields and
    /// `archived`, `archive_reason`, `merged_into`, …), sorted.
    pub changed_fields: Vec<String>,
    /// The record's version after the change (epoch ms), when it has one.
    pub source_version: Option<i64>,
    pub archive_reason: Option<String>,
    pub merged_into: Option<String>,
}

/// `sync.progress`, `sync.completed`, `sync.failed` (one object type of a
/// run).
#[derive(Debug, Clone, Serialize)]
pub struct SyncEvent {
    #[serde(flatten)]
    pub envelope: Envelope,
    pub run_id: String,
    /// `initial_sync`, `resync` or `nightly`.
    pub kind: String,
    pub object_type: String,
    pub status: String,
    pub done: u64,
    pub estimated_total: Option<u64>,
    pub drift: u64,
    pub error: Option<String>,
}

/// `connection.connected`, `connection.needs_reauth`,
/// `connection.disconnected`.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectionEvent {
    #[serde(flatten)]
    pub envelope: Envelope,
    pub state: String,
    pub state_reason: Option<String>,
}
