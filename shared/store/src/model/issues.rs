//! A stored record's sync issues ("Sync health"): kept on the item while
//! it has some, listed through the Records table's sparse record-issues
//! index.

use hubsync_mapping::ids::ObjectId;
use serde::{Deserialize, Serialize};

use super::{attr, RecordKey};

/// One problem of a stored record ("Sync health"): ids and names only,
/// never a value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordIssue {
    /// `mapping` (a field did not convert), `too_large`, …
    pub category: String,
    /// The app field concerned, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// What was wrong (without the value).
    pub message: String,
}

/// The name of the record-issues index of the Records table
/// (`template.yaml`): sparse, keyed by [`attr::ISSUE_KEY`] and `sk`.
pub const ISSUES_INDEX: &str = "record-issues";
/// The attributes the record-issues index projects besides its keys.
pub const ISSUE_PROJECTION: [&str; 6] = [
    attr::PORTAL_ID,
    attr::OBJECT_TYPE,
    attr::OBJECT_ID,
    attr::ARCHIVED,
    attr::SYNCED_AT,
    attr::SYNC_ISSUES,
];

/// A stored record with issues, as the record-issues index gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueRecord {
    pub key: RecordKey,
    pub archived: bool,
    /// When the record was last written (RFC 3339).
    pub synced_at: Option<String>,
    pub issues: Vec<RecordIssue>,
}

/// One page of [`crate::RecordStore::record_issues`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IssuePage {
    pub records: Vec<IssueRecord>,
    /// Where the next page starts; `None` at the end.
    pub next_after: Option<ObjectId>,
}
