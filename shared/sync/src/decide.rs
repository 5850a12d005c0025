//! The decision for one HubSpot record, given what the store holds under
//! its id: the one place that says create, update, un-archive, archive out
//! of scope or skip. The worker (records read after webhooks) and the
//! reconciliation (records listed in a full run) both map a record and
//! call [`decide`]; they differ only in how they get records and what they
//! know about list scopes and listing times.
//!
//! | mapped? | stored | decision |
//! |---|---|---|
//! | any | tombstone | skip, ever |
//! | no (out of scope, no email) | active, version ≤ HubSpot's, or older than a read that started after it | archive out of scope at `max(v, stored + 1)` |
//! | no | none / archived / newer | skip |
//! | yes, list scope unknown | none, or archived out of scope | skip (`list_scope_pending`: only a full run puts records in a list scope) |
//! | yes | none | create |
//! | yes | active | [`needs_write`]: skip (unchanged, stale) or update |
//! | yes | archived, HubSpot newer | un-archive |
//! | yes | archived, same version, seen live by a read that started after the archive | restore (`max(v, archive + 1)`) |
//! | yes | archived otherwise | skip (deferred restore when seen live, else stale / unchanged) |

use hubsync_hubspot::{HubSpotObject, ObjectType};
use hubsync_mapping::MapOutcome;
use hubsync_store::{
    needs_write, ArchiveReason, RecordIssue, RecordKey, RecordWrite, StoreError, StoredMeta,
    WriteDecision,
};

/// What is known besides the record and the stored metadata.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub key: RecordKey,
    pub object_type: ObjectType,
    /// Fingerprint of the config the record was mapped with.
    pub fingerprint: &'a str,
    /// The type has a list scope whose members the caller does not know
    /// (the worker, for a record the journal did not say entered or left a
    /// list: HubSpot sends no list webhooks).
    pub list_scope_unknown: bool,
    /// A listing showed the record live: when its request started (epoch
    /// ms) and the clock-skew margin — the restore rule's evidence.
    pub listed_live: Option<ListedLive>,
}

/// When a listing's request started, and the clock-skew margin.
#[derive(Debug, Clone, Copy)]
pub struct ListedLive {
    pub started_at_ms: i64,
    pub skew_ms: i64,
}

/// Why a write changes an active record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateClass {
    /// The mapped content changed.
    Content,
    /// Only HubSpot's version moved.
    VersionOnly,
    /// Same version, different content, another config: the mapping
    /// changed.
    Remapped,
}

/// What kind of write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteKind {
    Create,
    Update(UpdateClass),
    /// An archived record made active again.
    Unarchive {
        /// Restored at the archive's own version (restore rule).
        same_version: bool,
        /// Back in scope only because the mapping config changed.
        remapped: bool,
    },
}

/// Why nothing is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    Unchanged,
    Stale,
    Tombstoned,
    /// Archived at a time the listing may predate.
    DeferredRestore,
    /// A list-scoped type, and the record is not known to be in scope.
    ListScopePending,
    /// Not mapped (out of scope, no email) and no active copy to archive.
    NotSynced,
}

/// The decision.
#[derive(Debug)]
pub enum Decision {
    Write {
        write: RecordWrite,
        kind: WriteKind,
    },
    /// Archive the stored copy as out of scope at this time (with the
    /// config's fingerprint).
    ArchiveOutOfScope {
        occurred_at_ms: i64,
        /// Only because the mapping config changed.
        remapped: bool,
    },
    Skip(Skip),
    /// The mapped record cannot be stored (its fields do not serialize).
    Invalid(StoreError),
}

/// Decides what to do with `object`, mapped as `outcome`, given `stored`.
pub fn decide(
    facts: Facts<'_>,
    object: &HubSpotObject,
    outcome: MapOutcome,
    stored: Option<&StoredMeta>,
) -> Decision {
    if stored.is_some_and(|s| s.privacy_deleted) {
        return Decision::Skip(Skip::Tombstoned);
    }
    let version_now = object.version(facts.object_type);
    // Mapped with another config while HubSpot's version has not moved
    // since: whatever changes now is the config's doing.
    let config_changed = stored.is_some_and(|s| {
        s.mapping_fp.as_deref() != Some(facts.fingerprint)
            && version_now.is_some_and(|v| v <= s.source_version)
    });
    let mapped = match outcome {
        MapOutcome::Mapped(m) => m,
        MapOutcome::Skipped { .. } => {
            // A stored copy that no longer qualifies is archived out of
            // scope — not when a newer version is stored. At the stored
            // version itself (the scope changed, HubSpot did not), 1 ms
            // past it so that the store's guard lets it land.
            // Or above HubSpot's version when that stored version was
            // made up (a scope change archived or restored the record 1 ms
            // past its version) and a read that started after it shows the
            // record no longer qualifies.
            let fresher = |s: &StoredMeta| {
                facts
                    .listed_live
                    .is_some_and(|l| s.source_version < l.started_at_ms.saturating_sub(l.skew_ms))
            };
            return match (stored, version_now) {
                (Some(s), Some(v)) if !s.archived && (s.source_version <= v || fresher(s)) => {
                    Decision::ArchiveOutOfScope {
                        occurred_at_ms: v.max(s.source_version.saturating_add(1)),
                        remapped: config_changed,
                    }
                }
                _ => Decision::Skip(Skip::NotSynced),
            };
        }
    };
    if facts.list_scope_unknown
        && stored.is_none_or(|s| s.archived && s.archive_reason == Some(ArchiveReason::OutOfScope))
    {
        return Decision::Skip(Skip::ListScopePending);
    }
    let version = mapped.source_version.unwrap_or(0);
    let hash = mapped.content_hash.as_str();
    let decision = needs_write(stored, version, hash);
    let (version, kind) = match stored {
        None => (version, WriteKind::Create),
        Some(s) if s.archived => {
            let remapped = config_changed && s.archive_reason == Some(ArchiveReason::OutOfScope);
            if decision.is_write() {
                let same_version = false;
                (
                    version,
                    WriteKind::Unarchive {
                        same_version,
                        remapped,
                    },
                )
            } else if let Some(live) = facts.listed_live {
                if s.source_version >= live.started_at_ms.saturating_sub(live.skew_ms) {
                    return Decision::Skip(Skip::DeferredRestore);
                }
                // Listed live by a request that started after the archive:
                // HubSpot has it back (restore rule).
                let same_version = true;
                let version = version.max(s.source_version.saturating_add(1));
                (
                    version,
                    WriteKind::Unarchive {
                        same_version,
                        remapped,
                    },
                )
            } else {
                return Decision::Skip(skip_of(decision));
            }
        }
        Some(s) => match decision {
            WriteDecision::Write => {
                // Same version: the config's doing when it changed, else
                // something HubSpot does not version moved (associations,
                // an owner's email, a pipeline label) — content.
                let class = if s.source_version == version && config_changed {
                    UpdateClass::Remapped
                } else if s.content_hash.as_deref() == Some(hash) {
                    UpdateClass::VersionOnly
                } else {
                    UpdateClass::Content
                };
                (version, WriteKind::Update(class))
            }
            other => return Decision::Skip(skip_of(other)),
        },
    };
    match RecordWrite::from_fields(facts.key, version, hash, &mapped.record) {
        Ok(write) => Decision::Write {
            write: write
                .with_mapping_fp(facts.fingerprint)
                .with_issues(issues_of(&mapped.errors)),
            kind,
        },
        Err(e) => Decision::Invalid(e),
    }
}

/// The record's field errors as sync issues (category `mapping`): kept on
/// the stored item until a clean write replaces it ("Sync health").
fn issues_of(errors: &[hubsync_mapping::FieldError]) -> Vec<RecordIssue> {
    errors
        .iter()
        .map(|e| RecordIssue {
            category: "mapping".to_owned(),
            field: Some(e.field.clone()),
            message: e.to_string(),
        })
        .collect()
}

fn skip_of(decision: WriteDecision) -> Skip {
    match decision {
        WriteDecision::SkipStale => Skip::Stale,
        WriteDecision::SkipTombstoned => Skip::Tombstoned,
        WriteDecision::SkipUnchanged | WriteDecision::Write => Skip::Unchanged,
    }
}

#[cfg(test)]
mod tests;
