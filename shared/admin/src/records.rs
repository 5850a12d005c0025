//! Deleting archived records permanently ("Delete permanently"): one
//! record, or every archived record of a type (optionally only those
//! archived as out of scope). Active records and privacy tombstones are
//! never deleted. The bulk purge pages through the partition in id order
//! and stops at a time budget with the id to resume after, so an
//! interrupted purge is simply run again (deleting is idempotent).

use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use hubsync_hubspot::{ObjectId, ObjectType, PortalId};
use hubsync_store::{ArchiveReason, DeleteOutcome, RecordKey, RecordStore, StoreError};
use serde::Serialize;

use crate::AdminError;

/// Records read per page of a bulk purge.
const PAGE: u32 = 500;
/// Deletes in flight at once.
const CONCURRENCY: usize = 16;

/// Deletes one archived record. An active record is refused (409), a
/// tombstone is kept (409), an absent record is not found (404).
pub async fn purge_one<S: RecordStore>(store: &S, key: &RecordKey) -> Result<(), AdminError> {
    let what = format!(
        "{} record {} of portal {}",
        key.object_type, key.object_id, key.portal_id
    );
    match store.delete_record_permanently(key).await {
        Ok(DeleteOutcome::Deleted) => {
            tracing::info!(record = %key, "archived record deleted permanently");
            Ok(())
        }
        Ok(DeleteOutcome::NotFound) => Err(AdminError::NotFound(format!(
            "no {what} is stored; nothing deleted"
        ))),
        Ok(DeleteOutcome::TombstoneKept) => Err(AdminError::Conflict(format!(
            "{what} is a privacy-deletion tombstone; it is kept so that late events cannot bring the contact back"
        ))),
        Err(StoreError::NotArchived { .. }) => Err(AdminError::Conflict(format!(
            "{what} is active, not archived; only archived records can be deleted permanently"
        ))),
        Err(e) => Err(e.into()),
    }
}

/// Which archived records a bulk purge deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PurgeFilter {
    /// Every archived record (deleted, merged, out of scope).
    AllArchived,
    /// Only records archived because they left the sync scope.
    OutOfScope,
}

/// What a bulk purge did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PurgeReport {
    /// Records read.
    pub examined: u64,
    /// Archived records deleted.
    pub deleted: u64,
    /// Archived records that did not match the filter, or were gone or
    /// restored when their delete ran.
    pub kept: u64,
    /// Privacy tombstones, never deleted.
    pub tombstones: u64,
    /// Active records, never deleted.
    pub active: u64,
    /// `false` when the time budget ran out first: call again with
    /// `resume_after`.
    pub complete: bool,
    /// Where to resume (the last id examined), when not complete.
    pub resume_after: Option<ObjectId>,
}

/// Deletes the archived records of `portal`'s `object_type` that match
/// `filter`, from after `resume_after`, until done or `budget` has passed
/// (checked between pages).
pub async fn purge_archived<S: RecordStore>(
    store: &S,
    portal: PortalId,
    object_type: ObjectType,
    filter: PurgeFilter,
    resume_after: Option<ObjectId>,
    budget: Duration,
) -> Result<PurgeReport, AdminError> {
    let started = Instant::now();
    let mut report = PurgeReport::default();
    let mut after = resume_after;
    loop {
        let page = store.scan_page(portal, object_type, after, PAGE).await?;
        let mut doomed = Vec::new();
        for r in &page.records {
            report.examined += 1;
            let meta = &r.meta;
            if meta.privacy_deleted {
                report.tombstones += 1;
            } else if !meta.archived {
                report.active += 1;
            } else if filter == PurgeFilter::OutOfScope
                && meta.archive_reason != Some(ArchiveReason::OutOfScope)
            {
                report.kept += 1;
            } else {
                doomed.push(RecordKey::new(portal, object_type, meta.object_id));
            }
        }
        let outcomes: Vec<Result<DeleteOutcome, StoreError>> = stream::iter(doomed)
            .map(|key| async move { store.delete_record_permanently(&key).await })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        for outcome in outcomes {
            match outcome {
                Ok(DeleteOutcome::Deleted) => report.deleted += 1,
                Ok(DeleteOutcome::NotFound | DeleteOutcome::TombstoneKept)
                | Err(StoreError::NotArchived { .. }) => report.kept += 1,
                Err(e) => return Err(e.into()),
            }
        }
        after = page.records.last().map(|r| r.meta.object_id).or(after);
        if page.next_after.is_none() {
            report.complete = true;
            break;
        }
        if started.elapsed() >= budget {
            report.resume_after = after;
            break;
        }
    }
    tracing::info!(
        portal = %portal, object_type = %object_type, deleted = report.deleted,
        complete = report.complete, "bulk purge of archived records"
    );
    Ok(report)
}
