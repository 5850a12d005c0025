//! Pages of a partition scan.

use hubsync_mapping::ids::ObjectId;

use super::{Item, MetaWithFields, StoredRecord};
use crate::error::StoreError;

/// A page of a partition scan, in id order.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordPage {
    /// The records, in the scan's id order.
    pub records: Vec<StoredRecord>,
    /// Where the next page starts (exclusive); `None` when the scan is
    /// done. Store it as a checkpoint to resume a scan in a later
    /// invocation. A full last page may still return `Some`, followed by an
    /// empty page (as DynamoDB does).
    pub next_after: Option<ObjectId>,
}

impl RecordPage {
    /// A page of stored items and where the next one starts.
    pub fn from_items(items: Vec<Item>, next_after: Option<ObjectId>) -> Result<Self, StoreError> {
        Ok(Self {
            records: items
                .into_iter()
                .map(StoredRecord::from_item)
                .collect::<Result<Vec<_>, _>>()?,
            next_after,
        })
    }

    /// A page of up to `limit` items read in memory: like DynamoDB's, a
    /// full page always carries a continuation key (its last id).
    pub fn from_full_or_last(items: Vec<Item>, limit: usize) -> Result<Self, StoreError> {
        let full = items.len() == limit;
        let mut page = Self::from_items(items, None)?;
        if full {
            page.next_after = page.records.last().map(|r| r.meta.object_id);
        }
        Ok(page)
    }
}

/// A page of a partition scan with only the metadata and some mapped
/// fields of each record (see [`crate::RecordStore::scan_fields_page`]).
#[derive(Debug, Clone, PartialEq)]
pub struct FieldsPage {
    /// The records, in ascending id order.
    pub records: Vec<MetaWithFields>,
    /// As [`RecordPage::next_after`].
    pub next_after: Option<ObjectId>,
}
