//! The stored shapes: record keys, record writes, metadata, outcomes, and
//! the version-guard rules shared by both store implementations.
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
use chrono::{DateTime, SecondsFormat, Utc};
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

    /// Every attribute the store owns.
    pub const RESERVED: [&str; 15] = [
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
}

impl RecordWrite {
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

struct Redacted;

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

/// A page of a partition scan, in id order.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordPage {
    /// The records, in ascending id order.
    pub records: Vec<StoredRecord>,
    /// Where the next page starts (exclusive); `None` when the scan is
    /// done. Store it as a checkpoint to resume a scan in a later
    /// invocation. A full last page may still return `Some`, followed by an
    /// empty page (as DynamoDB does).
    pub next_after: Option<ObjectId>,
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

// ------------------------------------------------------------------ guards
// The conditions below are the single definition of the store's rules. The
// DynamoDB store states them as condition expressions (next to each use);
// the memory store evaluates these functions directly.

/// The upsert guard, as [`crate::DynamoStore`] sends it:
/// `attribute_not_exists(pk) OR ((source_version < :v OR (source_version =
/// :v AND (attribute_not_exists(content_hash) OR content_hash <> :h))) AND
/// (attribute_not_exists(privacy_deleted) OR privacy_deleted = false))`.
pub(crate) fn upsert_allowed(
    stored: Option<&StoredMeta>,
    version: i64,
    content_hash: &str,
) -> bool {
    needs_write(stored, version, content_hash).is_write()
}

/// Classifies a refused upsert from the stored metadata.
pub(crate) fn classify_refused_upsert(stored: &StoredMeta, write: &RecordWrite) -> UpsertOutcome {
    match needs_write(Some(stored), write.source_version, &write.content_hash) {
        WriteDecision::SkipTombstoned => UpsertOutcome::Tombstoned,
        WriteDecision::SkipUnchanged => UpsertOutcome::Unchanged,
        // `Write` cannot happen for a refused condition unless the item
        // changed between the write and the read of a fallback; the stored
        // state then won the race, which is what `Stale` reports.
        WriteDecision::SkipStale | WriteDecision::Write => UpsertOutcome::Stale,
    }
}

/// Archive condition: `attribute_exists(pk) AND (attribute_not_exists(
/// privacy_deleted) OR privacy_deleted = false) AND source_version < :occurred`.
pub(crate) fn archive_allowed(stored: Option<&StoredMeta>, occurred_at_ms: i64) -> bool {
    match stored {
        None => false,
        Some(m) => !m.privacy_deleted && m.source_version < occurred_at_ms,
    }
}

/// Classifies a refused archive from the stored metadata (`None`: absent).
pub(crate) fn classify_refused_archive(stored: Option<&StoredMeta>) -> ArchiveOutcome {
    match stored {
        None => ArchiveOutcome::NotFound,
        Some(m) if m.privacy_deleted => ArchiveOutcome::Tombstoned,
        Some(m) if m.archived => ArchiveOutcome::AlreadyArchived,
        Some(_) => ArchiveOutcome::Stale,
    }
}

/// Permanent-delete condition: `archived = true AND (attribute_not_exists(
/// privacy_deleted) OR privacy_deleted = false)`.
pub(crate) fn delete_allowed(stored: Option<&StoredMeta>) -> bool {
    stored.is_some_and(|m| m.archived && !m.privacy_deleted)
}

/// Classifies a refused permanent delete.
pub(crate) fn classify_refused_delete(
    key: RecordKey,
    stored: Option<&StoredMeta>,
) -> Result<DeleteOutcome, StoreError> {
    match stored {
        None => Ok(DeleteOutcome::NotFound),
        Some(m) if m.privacy_deleted => Ok(DeleteOutcome::TombstoneKept),
        Some(_) => Err(StoreError::NotArchived { key }),
    }
}

/// Classifies a privacy purge from what it replaced.
pub(crate) fn classify_purge(old: Option<&StoredMeta>) -> PurgeOutcome {
    match old {
        None => PurgeOutcome::TombstoneCreated,
        Some(m) if m.privacy_deleted => PurgeOutcome::AlreadyPurged,
        Some(_) => PurgeOutcome::Purged,
    }
}

// ------------------------------------------------------------------- items

pub(crate) fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(crate) fn now_rfc3339() -> String {
    rfc3339(Utc::now())
}

pub(crate) fn rfc3339_from_ms(ms: i64) -> Result<String, StoreError> {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(rfc3339)
        .ok_or_else(|| StoreError::InvalidInput("timestamp out of range".into()))
}

#[derive(Serialize)]
struct RecordItem<'a> {
    pk: String,
    sk: String,
    portal_id: PortalId,
    object_type: ObjectType,
    object_id: String,
    source_version: i64,
    content_hash: &'a str,
    archived: bool,
    archived_at: Option<String>,
    archive_reason: Option<ArchiveReason>,
    merged_into: Option<String>,
    privacy_deleted: bool,
    synced_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    mapping_fp: Option<&'a str>,
    #[serde(flatten)]
    fields: &'a Map<String, Value>,
}

/// The item an upsert puts: active (un-archived), with every field.
pub(crate) fn record_item(write: &RecordWrite, synced_at: String) -> Result<Item, StoreError> {
    write.validate()?;
    let key = write.key;
    Ok(serde_dynamo::aws_sdk_dynamodb_1::to_item(RecordItem {
        pk: key.pk(),
        sk: key.sk(),
        portal_id: key.portal_id,
        object_type: key.object_type,
        object_id: key.object_id.to_string(),
        source_version: write.source_version,
        content_hash: &write.content_hash,
        archived: false,
        archived_at: None,
        archive_reason: None,
        merged_into: None,
        privacy_deleted: false,
        synced_at,
        mapping_fp: write.mapping_fp.as_deref(),
        fields: &write.fields,
    })?)
}

#[derive(Serialize)]
struct TombstoneItem {
    pk: String,
    sk: String,
    portal_id: PortalId,
    object_type: ObjectType,
    object_id: String,
    privacy_deleted: bool,
    purged_at: String,
    source_version: i64,
    archived: bool,
}

/// The PII-free tombstone a privacy purge leaves: ids and flags only.
pub(crate) fn tombstone_item(key: RecordKey, purged_at: String) -> Result<Item, StoreError> {
    Ok(serde_dynamo::aws_sdk_dynamodb_1::to_item(TombstoneItem {
        pk: key.pk(),
        sk: key.sk(),
        portal_id: key.portal_id,
        object_type: key.object_type,
        object_id: key.object_id.to_string(),
        privacy_deleted: true,
        purged_at,
        source_version: i64::MAX,
        archived: true,
    })?)
}

/// The attributes an archive sets (everything else is kept).
pub(crate) fn archive_attributes(
    occurred_at_ms: i64,
    reason: ArchiveReason,
    merged_into: Option<ObjectId>,
    synced_at: String,
    mapping_fp: Option<&str>,
) -> Result<Vec<(&'static str, AttributeValue)>, StoreError> {
    use serde_dynamo::aws_sdk_dynamodb_1::to_attribute_value as av;
    let mut attributes = vec![
        (attr::ARCHIVED, AttributeValue::Bool(true)),
        (attr::ARCHIVED_AT, av(rfc3339_from_ms(occurred_at_ms)?)?),
        (attr::ARCHIVE_REASON, av(reason)?),
        (attr::MERGED_INTO, av(merged_into.map(|id| id.to_string()))?),
        (attr::SOURCE_VERSION, av(occurred_at_ms)?),
        (attr::SYNCED_AT, AttributeValue::S(synced_at)),
    ];
    if let Some(fp) = mapping_fp {
        attributes.push((attr::MAPPING_FP, AttributeValue::S(fp.to_owned())));
    }
    Ok(attributes)
}

// ------------------------------------------------------------- connections

/// The state of a portal's connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStatus {
    /// Syncing.
    Active,
    /// The grant was revoked (`invalid_grant`): an admin must reconnect.
    NeedsReauth,
    /// Disconnected on purpose (uninstall or an explicit disconnect).
    Disconnected,
}

/// A HubSpot portal connected to a tenant of the application. Stored in the
/// Control table at `pk = "CONN#{portal}"`, `sk = "CONN"`.
///
/// The token fields hold KMS ciphertext (opaque here) and never appear in
/// `Debug` output.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    /// The HubSpot portal.
    pub portal_id: PortalId,
    /// The application's tenant that installed it.
    pub tenant_id: String,
    /// Whether it syncs.
    pub status: ConnectionStatus,
    /// Scopes granted.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Encrypted access token.
    #[serde(default)]
    pub access_token_ciphertext: Option<String>,
    /// Encrypted refresh token.
    #[serde(default)]
    pub refresh_token_ciphertext: Option<String>,
    /// When the access token expires, epoch seconds.
    #[serde(default)]
    pub access_token_expires_at: Option<i64>,
    /// When the connection was first made.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// When the last webhook for the portal arrived.
    #[serde(default)]
    pub last_webhook_at: Option<DateTime<Utc>>,
    /// Why the status is what it is (e.g. `invalid_grant`); no PII.
    #[serde(default)]
    pub status_reason: Option<String>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secret = |v: &Option<String>| v.as_ref().map(|_| Redacted);
        f.debug_struct("Connection")
            .field("portal_id", &self.portal_id)
            .field("tenant_id", &self.tenant_id)
            .field("status", &self.status)
            .field("scopes", &self.scopes)
            .field(
                "access_token_ciphertext",
                &secret(&self.access_token_ciphertext),
            )
            .field(
                "refresh_token_ciphertext",
                &secret(&self.refresh_token_ciphertext),
            )
            .field("access_token_expires_at", &self.access_token_expires_at)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .field("last_webhook_at", &self.last_webhook_at)
            .field("status_reason", &self.status_reason)
            .finish()
    }
}

/// Control-table key prefix of connections.
pub const CONNECTION_PK_PREFIX: &str = "CONN#";
/// Control-table sort key of a connection.
pub const CONNECTION_SK: &str = "CONN";

/// The Control-table key of a portal's connection.
pub fn connection_key(portal: PortalId) -> Item {
    HashMap::from([
        (
            attr::PK.to_owned(),
            AttributeValue::S(format!("{CONNECTION_PK_PREFIX}{portal}")),
        ),
        (
            attr::SK.to_owned(),
            AttributeValue::S(CONNECTION_SK.to_owned()),
        ),
    ])
}

pub(crate) fn connection_item(conn: &Connection) -> Result<Item, StoreError> {
    let mut item: Item = serde_dynamo::aws_sdk_dynamodb_1::to_item(conn)?;
    item.extend(connection_key(conn.portal_id));
    Ok(item)
}

pub(crate) fn connection_from_item(item: Item) -> Result<Connection, StoreError> {
    Ok(serde_dynamo::aws_sdk_dynamodb_1::from_item(item)?)
}

// ------------------------------------------------------- tokens and leases

/// Fresh tokens from a refresh, already encrypted. `Debug` redacts them.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenUpdate {
    /// The new access token's ciphertext.
    pub access_token_ciphertext: String,
    /// The refresh token's ciphertext from the same response (HubSpot may
    /// or may not rotate it: always store the one returned).
    pub refresh_token_ciphertext: String,
    /// When the new access token expires, epoch seconds.
    pub access_token_expires_at: i64,
}

impl fmt::Debug for TokenUpdate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenUpdate")
            .field("access_token_ciphertext", &Redacted)
            .field("refresh_token_ciphertext", &Redacted)
            .field("access_token_expires_at", &self.access_token_expires_at)
            .finish()
    }
}

/// What [`crate::TokenStore::swap_tokens`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenSwap {
    /// The new tokens are stored.
    Swapped,
    /// The stored access token is no longer the expected one: another
    /// worker refreshed first. Re-read the connection and use its token.
    Superseded,
    /// The connection is not active (reauth needed or disconnected):
    /// nothing was written.
    NotActive,
}

/// A lease held in the Control table until `expires_at_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The lease's name (e.g. [`token_refresh_lease`]).
    pub name: String,
    /// Who holds it (an invocation id).
    pub holder: String,
    /// When it lapses, epoch ms (wall clock of the acquirer).
    pub expires_at_ms: i64,
}

/// Connection attribute names the store updates in place.
pub(crate) mod conn_attr {
    pub const STATUS: &str = "status";
    pub const STATUS_REASON: &str = "status_reason";
    pub const UPDATED_AT: &str = "updated_at";
    pub const LAST_WEBHOOK_AT: &str = "last_webhook_at";
    pub const ACCESS: &str = "access_token_ciphertext";
    pub const REFRESH: &str = "refresh_token_ciphertext";
    pub const EXPIRES: &str = "access_token_expires_at";
    /// Removed when a connection stops being active.
    pub const TOKENS: [&str; 3] = [ACCESS, REFRESH, EXPIRES];
}

/// The attributes a status change sets.
pub(crate) fn status_attributes(
    status: ConnectionStatus,
    reason: Option<&str>,
) -> Result<Vec<(&'static str, AttributeValue)>, StoreError> {
    use serde_dynamo::aws_sdk_dynamodb_1::to_attribute_value as av;
    Ok(vec![
        (conn_attr::STATUS, av(status)?),
        (conn_attr::STATUS_REASON, av(reason)?),
        (conn_attr::UPDATED_AT, av(Utc::now())?),
    ])
}

/// The attributes a token swap sets.
pub(crate) fn token_attributes(
    update: &TokenUpdate,
) -> Result<Vec<(&'static str, AttributeValue)>, StoreError> {
    use serde_dynamo::aws_sdk_dynamodb_1::to_attribute_value as av;
    Ok(vec![
        (
            conn_attr::ACCESS,
            AttributeValue::S(update.access_token_ciphertext.clone()),
        ),
        (
            conn_attr::REFRESH,
            AttributeValue::S(update.refresh_token_ciphertext.clone()),
        ),
        (conn_attr::EXPIRES, av(update.access_token_expires_at)?),
        (conn_attr::UPDATED_AT, av(Utc::now())?),
    ])
}

/// Classifies a refused token swap from the stored connection.
pub(crate) fn classify_refused_swap(
    portal: PortalId,
    stored: Option<&Connection>,
) -> Result<TokenSwap, StoreError> {
    match stored {
        None => Err(StoreError::ConnectionNotFound { portal }),
        Some(c) if c.status != ConnectionStatus::Active => Ok(TokenSwap::NotActive),
        Some(_) => Ok(TokenSwap::Superseded),
    }
}

#[derive(Serialize)]
struct LeaseItem<'a> {
    pk: String,
    sk: &'static str,
    holder: &'a str,
    expires_at_ms: i64,
    /// The Control table's TTL attribute (epoch seconds): lapsed leases
    /// are cleaned up by DynamoDB.
    expires_at_epoch: i64,
}

pub(crate) fn lease_item(lease: &Lease) -> Result<Item, StoreError> {
    Ok(serde_dynamo::aws_sdk_dynamodb_1::to_item(LeaseItem {
        pk: format!("{LEASE_PK_PREFIX}{}", lease.name),
        sk: LEASE_SK,
        holder: &lease.holder,
        expires_at_ms: lease.expires_at_ms,
        expires_at_epoch: lease.expires_at_ms.div_euclid(1000) + 1,
    })?)
}

/// The name of the lease that makes a portal's token refresh single-flight.
pub fn token_refresh_lease(portal: PortalId) -> String {
    format!("token-refresh#{portal}")
}

/// Control-table key prefix of leases.
pub const LEASE_PK_PREFIX: &str = "LEASE#";
/// Control-table sort key of a lease.
pub const LEASE_SK: &str = "LEASE";

pub(crate) fn lease_key(name: &str) -> Item {
    HashMap::from([
        (
            attr::PK.to_owned(),
            AttributeValue::S(format!("{LEASE_PK_PREFIX}{name}")),
        ),
        (attr::SK.to_owned(), AttributeValue::S(LEASE_SK.to_owned())),
    ])
}

pub(crate) fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// A lease is free for `holder` when absent, lapsed, or already theirs.
pub(crate) fn lease_available(stored: Option<&Lease>, holder: &str, now_ms: i64) -> bool {
    stored.is_none_or(|l| l.expires_at_ms < now_ms || l.holder == holder)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: u64) -> RecordKey {
        RecordKey::new(PortalId(1000001), ObjectType::Companies, ObjectId(id))
    }

    fn meta(version: i64, hash: &str) -> StoredMeta {
        StoredMeta {
            portal_id: PortalId(1000001),
            object_type: ObjectType::Companies,
            object_id: ObjectId(7),
            source_version: version,
            content_hash: Some(hash.into()),
            archived: false,
            archived_at: None,
            archive_reason: None,
            merged_into: None,
            privacy_deleted: false,
            mapping_fp: None,
        }
    }

    #[test]
    fn keys_sort_numerically_as_strings() {
        assert_eq!(key(42).pk(), "1000001#companies");
        assert_eq!(key(42).sk(), "00000000000000000042");
        assert_eq!(key(u64::MAX).sk(), u64::MAX.to_string());
        let mut ids = [9u64, 10, 100, 2, u64::MAX, 0];
        let mut sks: Vec<String> = ids.iter().map(|&i| sort_key(ObjectId(i))).collect();
        sks.sort();
        ids.sort();
        let back: Vec<u64> = sks
            .iter()
            .map(|s| parse_sort_key(s).map(ObjectId::get).unwrap())
            .collect();
        assert_eq!(back, ids);
    }

    #[test]
    fn needs_write_follows_the_guard() {
        assert_eq!(needs_write(None, 1, "h"), WriteDecision::Write);
        let m = meta(5, "h");
        assert_eq!(needs_write(Some(&m), 5, "h"), WriteDecision::SkipUnchanged);
        // Same version, other content (mapping change): write.
        assert_eq!(needs_write(Some(&m), 5, "x"), WriteDecision::Write);
        assert_eq!(needs_write(Some(&m), 4, "h"), WriteDecision::SkipStale);
        assert_eq!(needs_write(Some(&m), 6, "x"), WriteDecision::Write);
        // Same content, newer version: the version must still move forward.
        assert_eq!(needs_write(Some(&m), 6, "h"), WriteDecision::Write);
        let tomb = StoredMeta {
            privacy_deleted: true,
            source_version: i64::MAX,
            content_hash: None,
            ..m
        };
        assert_eq!(
            needs_write(Some(&tomb), i64::MAX, "h"),
            WriteDecision::SkipTombstoned
        );
    }

    #[test]
    fn needs_write_agrees_with_the_store_guard() {
        let stored = [
            None,
            Some(meta(5, "h")),
            Some(StoredMeta {
                archived: true,
                ..meta(5, "h")
            }),
            Some(StoredMeta {
                privacy_deleted: true,
                ..meta(5, "h")
            }),
        ];
        for s in &stored {
            for v in [4, 5, 6] {
                for h in ["h", "x"] {
                    let write = RecordWrite::new(key(7), v, h, Map::new());
                    let allowed = upsert_allowed(s.as_ref(), v, h);
                    assert_eq!(needs_write(s.as_ref(), v, h).is_write(), allowed);
                    if let (false, Some(m)) = (allowed, s) {
                        let outcome = classify_refused_upsert(m, &write);
                        assert_ne!(outcome, UpsertOutcome::Created);
                    }
                }
            }
        }
    }

    #[test]
    fn reserved_and_empty_field_names_are_refused() {
        for name in ["archived", "pk", "source_version", ""] {
            let mut fields = Map::new();
            fields.insert(name.into(), Value::Bool(true));
            let w = RecordWrite::new(key(1), 1, "h", fields);
            assert!(matches!(
                record_item(&w, now_rfc3339()),
                Err(StoreError::InvalidInput(_))
            ));
        }
        assert!(matches!(
            RecordWrite::from_fields(key(1), 1, "h", &[1, 2]),
            Err(StoreError::InvalidInput(_))
        ));
    }

    #[test]
    fn debug_output_hides_field_values_and_tokens() {
        let mut fields = Map::new();
        fields.insert("email".into(), Value::String("jane@example.com".into()));
        let w = RecordWrite::new(key(1), 1, "h", fields);
        let dbg = format!("{w:?}");
        assert!(
            dbg.contains("email") && !dbg.contains("jane@example.com"),
            "{dbg}"
        );

        let now = Utc::now();
        let conn = Connection {
            portal_id: PortalId(1),
            tenant_id: "t".into(),
            status: ConnectionStatus::Active,
            scopes: vec![],
            access_token_ciphertext: Some("AQICAHsecretaccess".into()),
            refresh_token_ciphertext: Some("AQICAHsecretrefresh".into()),
            access_token_expires_at: Some(1),
            created_at: now,
            updated_at: now,
            last_webhook_at: None,
            status_reason: None,
        };
        let dbg = format!("{conn:?}");
        assert!(!dbg.contains("secret"), "{dbg}");
        assert!(dbg.contains("<redacted>"), "{dbg}");
    }

    #[test]
    fn record_items_round_trip_through_serde_dynamo() {
        let mut fields = Map::new();
        fields.insert("name".into(), Value::String("Acme".into()));
        fields.insert("amount_cents".into(), Value::from(123_456_i64));
        fields.insert("domain".into(), Value::Null);
        let w = RecordWrite::new(key(99), 1_700_000_000_000, "abc", fields.clone());
        let item = record_item(&w, now_rfc3339()).unwrap();
        assert_eq!(item["object_id"], AttributeValue::S("99".into()));
        let rec = StoredRecord::from_item(item).unwrap();
        assert_eq!(rec.key(), key(99));
        assert_eq!(rec.meta.source_version, 1_700_000_000_000);
        assert_eq!(rec.meta.content_hash.as_deref(), Some("abc"));
        assert!(!rec.meta.archived);
        assert_eq!(rec.fields, fields);
    }
}
