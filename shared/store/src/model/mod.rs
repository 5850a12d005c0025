//! The stored shapes: record keys, record writes, metadata, outcomes, and
//! the version-guard rules shared by both store implementations (this
//! file); record items ([`items`]), connections ([`connections`]), token
//! updates and leases ([`leases`]) in their own files.
//!
//! # Key schema (Records table)
//! - `pk = "{portal}#{objectType}"`, e.g. `"1000001#companies"`;
//! - `sk` = the HubSpot id zero-padded to 20 digits (`u64::MAX` has 20), so
//!   the range order of a partition is numeric id order.
//!
//! A stored record is the key, the metadata attributes of [`attr`], and the
//! mapped fields as further top-level attributes (the application reads
//! them directly).

use std::collections::HashMap;
use std::fmt;

use aws_sdk_dynamodb::types::AttributeValue;
use hubsync_mapping::ids::{ObjectId, ObjectType, PortalId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::StoreError;

/// A DynamoDB item.
pub type Item = HashMap<String, AttributeValue>;

/// The names of the store's own attributes on a record item. Mapped fields
/// may not use them.
pub mod attr {
    /// Partition key.
    pub const PK: &str = "pk";
    /// Sort key.
    pub const SK: &str = "sk";
    /// HubSpot portal id (number).
    pub const PORTAL_ID: &str = "portal_id";
    /// Object type (`companies`, `contacts`, `deals`).
    pub const OBJECT_TYPE: &str = "object_type";
    /// HubSpot object id (string, not padded).
    pub const OBJECT_ID: &str = "object_id";
    /// The guard: HubSpot's last-modified time (or a deletion's
    /// `occurredAt`), epoch ms. `i64::MAX` on a privacy tombstone.
    pub const SOURCE_VERSION: &str = "source_version";
    /// Content hash of the mapped fields.
    pub const CONTENT_HASH: &str = "content_hash";
    /// Whether the record is archived (deleted, merged away, out of scope).
    pub const ARCHIVED: &str = "archived";
    /// When it was archived (RFC 3339), or null.
    pub const ARCHIVED_AT: &str = "archived_at";
    /// Why it was archived, or null.
    pub const ARCHIVE_REASON: &str = "archive_reason";
    /// The surviving id of a merge (string), or null.
    pub const MERGED_INTO: &str = "merged_into";
    /// True on a privacy-deletion tombstone.
    pub const PRIVACY_DELETED: &str = "privacy_deleted";
    /// When a tombstone's data was purged (RFC 3339).
    pub const PURGED_AT: &str = "purged_at";
    /// When the store last wrote the record (RFC 3339).
    pub const SYNCED_AT: &str = "synced_at";
    /// Fingerprint of the mapping config the record was mapped with
    /// (`ObjectConfig::fingerprint`), absent on older records.
    pub const MAPPING_FP: &str = "mapping_fp";
    /// The record's sync issues (a list of `{category, field, message}`),
    /// only while it has some: a clean write replaces the item without it.
    pub const SYNC_ISSUES: &str = "sync_issues";
    /// The record-issues index's partition key (`"{portal}#{objectType}"`),
    /// present only with [`SYNC_ISSUES`]: the index holds exactly the
    /// records that have issues.
    pub const ISSUE_KEY: &str = "issue_key";

    /// Every attribute the store owns.
    pub const RESERVED: [&str; 17] = [
        PK,
        SK,
        PORTAL_ID,
        OBJECT_TYPE,
        OBJECT_ID,
        SOURCE_VERSION,
        CONTENT_HASH,
        ARCHIVED,
        ARCHIVED_AT,
        ARCHIVE_REASON,
        MERGED_INTO,
        PRIVACY_DELETED,
        PURGED_AT,
        SYNCED_AT,
        MAPPING_FP,
        SYNC_ISSUES,
        ISSUE_KEY,
    ];

    /// The attributes [`crate::StoredMeta`] is read from (the projection of
    /// a metadata read).
    pub const META: [&str; 13] = [
        PK,
        SK,
        PORTAL_ID,
        OBJECT_TYPE,
        OBJECT_ID,
        SOURCE_VERSION,
        CONTENT_HASH,
        ARCHIVED,
        ARCHIVED_AT,
        ARCHIVE_REASON,
        MERGED_INTO,
        PRIVACY_DELETED,
        MAPPING_FP,
    ];
}

/// Width of the zero-padded sort key (`u64::MAX` has 20 digits).
pub const SORT_KEY_WIDTH: usize = 20;

/// The partition key of one portal's records of one type:
/// `"{portal}#{objectType}"`.
pub fn partition_key(portal: PortalId, object_type: ObjectType) -> String {
    format!("{portal}#{}", object_type.as_api_path())
}

/// The sort key of an object id: zero-padded to 20 digits.
pub fn sort_key(id: ObjectId) -> String {
    format!("{:0width$}", id.get(), width = SORT_KEY_WIDTH)
}

/// Parses a sort key back into an id.
pub fn parse_sort_key(sk: &str) -> Option<ObjectId> {
    sk.parse::<ObjectId>().ok()
}

/// Where one record lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordKey {
    /// The HubSpot portal.
    pub portal_id: PortalId,
    /// The object type.
    pub object_type: ObjectType,
    /// The HubSpot object id.
    pub object_id: ObjectId,
}

impl RecordKey {
    /// A key from its parts.
    pub fn new(portal_id: PortalId, object_type: ObjectType, object_id: ObjectId) -> Self {
        Self {
            portal_id,
            object_type,
            object_id,
        }
    }

    /// The partition key, `"{portal}#{objectType}"`.
    pub fn pk(&self) -> String {
        partition_key(self.portal_id, self.object_type)
    }

    /// The sort key, the id zero-padded to 20 digits.
    pub fn sk(&self) -> String {
        sort_key(self.object_id)
    }

    /// The key attributes of the item.
    pub fn to_key_item(&self) -> Item {
        HashMap::from([
            (attr::PK.to_owned(), AttributeValue::S(self.pk())),
            (attr::SK.to_owned(), AttributeValue::S(self.sk())),
        ])
    }
}

impl fmt::Display for RecordKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}#{}#{}",
            self.portal_id,
            self.object_type.as_api_path(),
            self.object_id
        )
    }
}

/// Why a record was archived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArchiveReason {
    /// HubSpot deleted it (`*.deletion`, or missing from a full listing).
    Deleted,
    /// Merged into another record (`merged_into` names the survivor).
    Merged,
    /// It no longer matches the portal's sync scope.
    OutOfScope,
    /// A reason written by a newer version of hubsync.
    #[serde(other)]
    Other,
}

/// One record to write: its key, its version, and the mapped fields.
///
/// The store knows nothing about the mapping: `fields` is the mapped record
/// as a JSON object (build it with [`RecordWrite::from_fields`] from any
/// `Serialize` type). Every field becomes a top-level attribute; names in
/// [`attr::RESERVED`] and empty names are refused.
#[derive(Clone, PartialEq)]
pub struct RecordWrite {
    /// Where the record lives.
    pub key: RecordKey,
    /// HubSpot's last-modified time, epoch ms: the version guard.
    pub source_version: i64,
    /// Hash of the mapped content (computed by the mapping).
    pub content_hash: String,
    /// The mapped fields.
    pub fields: Map<String, Value>,
    /// Fingerprint of the mapping config the fields were mapped with.
    pub mapping_fp: Option<String>,
    /// What went wrong syncing it (field values that did not convert); kept
    /// on the item, and listed by [`crate::RecordStore::record_issues`],
    /// until a write without issues replaces it.
    pub issues: Vec<RecordIssue>,
}

impl RecordWrite {
    /// Attaches the record's sync issues.
    pub fn with_issues(mut self, issues: Vec<RecordIssue>) -> Self {
        self.issues = issues;
        self
    }

    /// Records the fingerprint of the mapping config used (stored as
    /// [`attr::MAPPING_FP`]).
    pub fn with_mapping_fp(mut self, fp: impl Into<String>) -> Self {
        self.mapping_fp = Some(fp.into());
        self
    }

    /// A write from its parts.
    pub fn new(
        key: RecordKey,
        source_version: i64,
        content_hash: impl Into<String>,
        fields: Map<String, Value>,
    ) -> Self {
        Self {
            key,
            source_version,
            content_hash: content_hash.into(),
            fields,
            mapping_fp: None,
            issues: Vec::new(),
        }
    }

    /// A write whose fields are `fields` serialized to a JSON object (any
    /// `Serialize` struct or map, e.g. the mapping's app record).
    pub fn from_fields<T: Serialize + ?Sized>(
        key: RecordKey,
        source_version: i64,
        content_hash: impl Into<String>,
        fields: &T,
    ) -> Result<Self, StoreError> {
        match serde_json::to_value(fields).map_err(StoreError::Fields)? {
            Value::Object(map) => Ok(Self::new(key, source_version, content_hash, map)),
            _ => Err(StoreError::InvalidInput(
                "record fields must serialize to a JSON object".into(),
            )),
        }
    }

    pub(crate) fn validate(&self) -> Result<(), StoreError> {
        for name in self.fields.keys() {
            if name.is_empty() {
                return Err(StoreError::InvalidInput(
                    "a record field has an empty name".into(),
                ));
            }
            if attr::RESERVED.contains(&name.as_str()) {
                return Err(StoreError::InvalidInput(format!(
                    "record field name `{name}` is reserved for the store's metadata"
                )));
            }
        }
        Ok(())
    }
}

/// Field values are personal data: `Debug` shows only their names.
impl fmt::Debug for RecordWrite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordWrite")
            .field("key", &self.key)
            .field("source_version", &self.source_version)
            .field("content_hash", &self.content_hash)
            .field("mapping_fp", &self.mapping_fp)
            .field("fields", &FieldNames(&self.fields))
            .field("issues", &self.issues)
            .finish()
    }
}

struct FieldNames<'a>(&'a Map<String, Value>);

impl fmt::Debug for FieldNames<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.keys().map(|k| (k, Redacted)))
            .finish()
    }
}

pub(crate) struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A record's metadata, without its fields: what a worker reads before it
/// writes (see [`needs_write`]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct StoredMeta {
    /// The portal.
    pub portal_id: PortalId,
    /// The object type.
    pub object_type: ObjectType,
    /// The HubSpot id.
    pub object_id: ObjectId,
    /// The stored version (epoch ms; `i64::MAX` on a tombstone).
    pub source_version: i64,
    /// The stored content hash (absent on a tombstone).
    #[serde(default)]
    pub content_hash: Option<String>,
    /// Whether the record is archived.
    #[serde(default)]
    pub archived: bool,
    /// When it was archived (RFC 3339).
    #[serde(default)]
    pub archived_at: Option<String>,
    /// Why it was archived.
    #[serde(default)]
    pub archive_reason: Option<ArchiveReason>,
    /// The survivor of a merge.
    #[serde(default)]
    pub merged_into: Option<ObjectId>,
    /// Whether this is a privacy-deletion tombstone.
    #[serde(default)]
    pub privacy_deleted: bool,
    /// Fingerprint of the mapping config the record was last written with
    /// (absent on records written before fingerprints, and on tombstones).
    #[serde(default)]
    pub mapping_fp: Option<String>,
}

impl StoredMeta {
    /// The record's key.
    pub fn key(&self) -> RecordKey {
        RecordKey::new(self.portal_id, self.object_type, self.object_id)
    }

    /// Reads the metadata of a (whole or projected) item, copying only the
    /// metadata attributes, never the fields.
    pub(crate) fn from_item(item: &Item) -> Result<Self, StoreError> {
        let projected: Item = attr::META
            .iter()
            .filter_map(|name| item.get(*name).map(|v| ((*name).to_owned(), v.clone())))
            .collect();
        Ok(serde_dynamo::aws_sdk_dynamodb_1::from_item(projected)?)
    }
}

/// The stored metadata of a record and some of its mapped fields
/// ([`crate::RecordStore::get_record_meta_fields`]).
pub type MetaWithFields = (StoredMeta, Map<String, Value>);

/// The mapped fields `names` of a (whole or projected) item: those it has
/// (never a reserved attribute).
pub(crate) fn item_fields(item: &Item, names: &[String]) -> Result<Map<String, Value>, StoreError> {
    let mut out = Map::new();
    for name in names {
        if attr::RESERVED.contains(&name.as_str()) {
            continue;
        }
        if let Some(v) = item.get(name) {
            out.insert(
                name.clone(),
                serde_dynamo::aws_sdk_dynamodb_1::from_attribute_value(v.clone())?,
            );
        }
    }
    Ok(out)
}

/// A whole stored record: metadata plus the mapped fields.
#[derive(Clone, PartialEq)]
pub struct StoredRecord {
    /// The metadata.
    pub meta: StoredMeta,
    /// When the store last wrote it (RFC 3339); absent on a tombstone.
    pub synced_at: Option<String>,
    /// When its personal data was purged (tombstones only).
    pub purged_at: Option<String>,
    /// The mapped fields (empty on a tombstone).
    pub fields: Map<String, Value>,
}

impl StoredRecord {
    /// The record's key.
    pub fn key(&self) -> RecordKey {
        self.meta.key()
    }

    pub(crate) fn from_item(mut item: Item) -> Result<Self, StoreError> {
        let meta = StoredMeta::from_item(&item)?;
        let text = |v: Option<AttributeValue>| match v {
            Some(AttributeValue::S(s)) => Some(s),
            _ => None,
        };
        let synced_at = text(item.remove(attr::SYNCED_AT));
        let purged_at = text(item.remove(attr::PURGED_AT));
        for name in attr::RESERVED {
            item.remove(name);
        }
        let fields = serde_dynamo::aws_sdk_dynamodb_1::from_item(item)?;
        Ok(Self {
            meta,
            synced_at,
            purged_at,
            fields,
        })
    }
}

/// Field values are personal data: `Debug` shows only their names.
impl fmt::Debug for StoredRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredRecord")
            .field("meta", &self.meta)
            .field("synced_at", &self.synced_at)
            .field("purged_at", &self.purged_at)
            .field("fields", &FieldNames(&self.fields))
            .finish()
    }
}

/// What [`crate::RecordStore::upsert_record`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UpsertOutcome {
    /// The record did not exist and was written.
    Created,
    /// An older version (or the same version with other content) was
    /// replaced, and un-archived if it was archived.
    Updated,
    /// The same version with the same hash is stored: nothing changed.
    Unchanged,
    /// A newer version is stored: the write was refused.
    Stale,
    /// A privacy tombstone is stored: the write was refused.
    Tombstoned,
}

/// What [`crate::RecordStore::archive_record`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArchiveOutcome {
    /// The record is now archived (its data kept).
    Archived,
    /// It was already archived at a version at least as new.
    AlreadyArchived,
    /// It is active at a version at least as new as the deletion: refused.
    Stale,
    /// No such record.
    NotFound,
    /// A privacy tombstone is stored.
    Tombstoned,
}

/// What [`crate::RecordStore::privacy_purge`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PurgeOutcome {
    /// A record with data was replaced by a tombstone.
    Purged,
    /// A tombstone was already there (it was rewritten, identical in
    /// everything but `purged_at`).
    AlreadyPurged,
    /// Nothing was stored; a tombstone now blocks late events.
    TombstoneCreated,
}

/// What [`crate::RecordStore::delete_record_permanently`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeleteOutcome {
    /// The archived record is gone.
    Deleted,
    /// There was nothing to delete.
    NotFound,
    /// The record is a privacy tombstone, which is kept so that late events
    /// cannot resurrect the contact. Nothing was deleted.
    TombstoneKept,
}

/// The pure read-before-write decision of [`needs_write`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WriteDecision {
    /// Call `upsert_record`.
    Write,
    /// The same version and hash are stored.
    SkipUnchanged,
    /// A newer version is stored.
    SkipStale,
    /// A privacy tombstone is stored.
    SkipTombstoned,
}

impl WriteDecision {
    /// Whether the caller should write.
    pub fn is_write(self) -> bool {
        self == WriteDecision::Write
    }
}

/// Decides, from metadata read beforehand, whether a write is needed; a
/// skipped write costs nothing. It agrees exactly with the store's own
/// guard, so a skipped write is one the store would have refused:
///
/// - nothing stored → write;
/// - a privacy tombstone → skip;
/// - stored version > new version → skip (stale);
/// - same version, same hash → skip (unchanged: the no-change run);
/// - same version, **different hash** → write. HubSpot did not modify the
///   object, but its mapped content changed: the mapping changed
///   (`CONTENT_HASH_VERSION` bump, a portal's custom-field config) or a
///   derived value did (an owner's email). Refusing it would leave
///   DynamoDB different from HubSpot for good, breaking convergence. Two
///   writers can only disagree at one version when they run different
///   mappings, and the next reconciliation settles that;
/// - newer version, even with the **same hash** → write. The content is the
///   same, but the stored version must move forward: otherwise a worker
///   that read HubSpot *before* this version (and so holds older content
///   with a version between the stored one and this one) would still pass
///   the guard later and overwrite newer data with older. Moving the
///   version costs one write per real HubSpot modification that did not
///   touch mapped fields — never one per no-change run, because a repeated
///   run brings the same version and hash.
pub fn needs_write(stored: Option<&StoredMeta>, version: i64, content_hash: &str) -> WriteDecision {
    match stored {
        None => WriteDecision::Write,
        Some(m) if m.privacy_deleted => WriteDecision::SkipTombstoned,
        Some(m) if m.source_version > version => WriteDecision::SkipStale,
        Some(m) if m.source_version == version => {
            if m.content_hash.as_deref() == Some(content_hash) {
                WriteDecision::SkipUnchanged
            } else {
                WriteDecision::Write
            }
        }
        Some(_) => WriteDecision::Write,
    }
}

mod connections;
mod guards;
mod issues;
mod items;
mod leases;
mod pages;

pub use connections::*;
pub(crate) use guards::*;
pub use issues::*;
pub(crate) use items::issue_record;
pub(crate) use items::*;
pub use items::{item_size, MAX_ITEM_BYTES, TOO_LARGE};
pub use leases::*;
pub use pages::{FieldsPage, RecordPage};

#[cfg(test)]
mod tests;
