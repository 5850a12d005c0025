//! Record items: metadata and field attributes to and from DynamoDB's
//! `AttributeValue`s, and the attribute lists of archive and purge writes.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, SecondsFormat, Utc};
use hubsync_mapping::ids::{ObjectId, ObjectType, PortalId};
use serde_json::{Map, Value};

use super::*;
use crate::error::StoreError;

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
    #[serde(skip_serializing_if = "<[RecordIssue]>::is_empty")]
    sync_issues: &'a [RecordIssue],
    #[serde(skip_serializing_if = "Option::is_none")]
    issue_key: Option<String>,
    #[serde(flatten)]
    fields: &'a Map<String, Value>,
}

/// DynamoDB's item size limit (attribute names and values together).
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

/// An item's size as DynamoDB counts it: the UTF-8 length of every
/// attribute name plus its value (strings and binaries by length, numbers
/// by their digits, a few bytes of overhead per map and list entry).
pub fn item_size(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + value_size(v)).sum()
}

fn value_size(v: &aws_sdk_dynamodb::types::AttributeValue) -> usize {
    use aws_sdk_dynamodb::types::AttributeValue as A;
    match v {
        A::S(s) => s.len(),
        A::N(n) => n.len().div_ceil(2) + 1,
        A::B(b) => b.as_ref().len(),
        A::Bool(_) | A::Null(_) => 1,
        A::Ss(v) => v.iter().map(String::len).sum(),
        A::Ns(v) => v.iter().map(|n| n.len().div_ceil(2) + 1).sum(),
        A::Bs(v) => v.iter().map(|b| b.as_ref().len()).sum(),
        A::M(m) => {
            3 + m
                .iter()
                .map(|(k, v)| 1 + k.len() + value_size(v))
                .sum::<usize>()
        }
        A::L(l) => 3 + l.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        _ => 0,
    }
}

/// The item an upsert puts: active (un-archived), with every field.
/// Refused (permanently) when it would exceed [`MAX_ITEM_BYTES`].
pub(crate) fn record_item(write: &RecordWrite, synced_at: String) -> Result<Item, StoreError> {
    write.validate()?;
    let item = build_record_item(write, synced_at)?;
    let bytes = item_size(&item);
    if bytes > MAX_ITEM_BYTES {
        return Err(StoreError::ItemTooLarge {
            bytes,
            limit: MAX_ITEM_BYTES,
        });
    }
    Ok(item)
}

fn build_record_item(write: &RecordWrite, synced_at: String) -> Result<Item, StoreError> {
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
        sync_issues: &write.issues,
        issue_key: (!write.issues.is_empty()).then(|| key.pk()),
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

/// The record-issues index's view of an item (`None` when it is not a
/// record with issues).
pub(crate) fn issue_record(item: &Item) -> Result<Option<IssueRecord>, StoreError> {
    #[derive(serde::Deserialize)]
    struct View {
        portal_id: PortalId,
        object_type: ObjectType,
        object_id: String,
        #[serde(default)]
        archived: bool,
        #[serde(default)]
        synced_at: Option<String>,
        #[serde(default)]
        sync_issues: Vec<RecordIssue>,
    }
    if !item.contains_key(attr::ISSUE_KEY) {
        return Ok(None);
    }
    let view: View = serde_dynamo::aws_sdk_dynamodb_1::from_item(item.clone())?;
    let id: ObjectId = view
        .object_id
        .parse()
        .map_err(|_| StoreError::InvalidInput(format!("bad object id {:?}", view.object_id)))?;
    Ok(Some(IssueRecord {
        key: RecordKey::new(view.portal_id, view.object_type, id),
        archived: view.archived,
        synced_at: view.synced_at,
        issues: view.sync_issues,
    }))
}

/// The issue category of a field left empty because its value would not
/// fit in a DynamoDB item.
pub const TOO_LARGE: &str = "too_large";

impl RecordWrite {
    /// The same write with its largest fields emptied (JSON `null`) until
    /// the item fits DynamoDB's limit, each with a [`TOO_LARGE`] issue;
    /// `None` when it fits already (or cannot be made to fit: the store's
    /// own attributes alone are far below the limit, so this does not
    /// happen). The content hash stays the record's: a later write of the
    /// same content is still "unchanged".
    pub fn shrunk_to_fit(&self) -> Option<RecordWrite> {
        let size = |w: &RecordWrite| {
            build_record_item(w, now_rfc3339())
                .map(|i| item_size(&i))
                .unwrap_or(usize::MAX)
        };
        if size(self) <= MAX_ITEM_BYTES {
            return None;
        }
        let mut by_size: Vec<(usize, String)> = self
            .fields
            .iter()
            .map(|(k, v)| (k.len() + v.to_string().len(), k.clone()))
            .collect();
        by_size.sort_by(|a, b| b.cmp(a));
        let mut out = self.clone();
        for (_, field) in by_size {
            out.fields.insert(field.clone(), Value::Null);
            out.issues.push(RecordIssue {
                category: TOO_LARGE.to_owned(),
                field: Some(field),
                message: "the value is too large to store with the record (DynamoDB's 400 KB item limit); stored empty".to_owned(),
            });
            if size(&out) <= MAX_ITEM_BYTES {
                return Some(out);
            }
        }
        None
    }
}
