//! The store's write guards: the single definition of its rules. The
//! DynamoDB store states them as condition expressions (next to each use);
//! the memory store evaluates these functions directly.

use super::*;

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
