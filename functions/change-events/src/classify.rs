//! Stream changes → events. Pure: the same change always gives the same
//! event (with the same `event_id`), so a retried batch repeats, never
//! invents.
//!
//! - Records table: `record.changed` when a record is created, its mapped
//!   fields change, it is archived, merged, restored, purged (privacy) or
//!   deleted permanently. A write that changes only bookkeeping (version,
//!   hash, `synced_at`, mapping fingerprint) is no change to the
//!   application: no event.
//! - Control table, run reports (`RUN#`): `sync.progress` when a running
//!   type's progress crosses a 5 % step (or, without a total, every
//!   report), `sync.completed` / `sync.failed` when it ends.
//! - Control table, connections (`CONN#`): `connection.connected` /
//!   `.needs_reauth` / `.disconnected` when the state changes (token
//!   refreshes and webhook timestamps are not events).

use sha2::{Digest, Sha256};

use hubsync_store::model::attr;

use crate::events::{
    ConnectionEvent, Envelope, OutEvent, RecordChangeKind, RecordChanged, SyncEvent, SCHEMA_VERSION,
};
use crate::image::{is_null, Attr, ChangeKind, Image, StreamChange, Table};

/// Attributes that are bookkeeping, not content.
const BOOKKEEPING: [&str; 12] = [
    attr::PK,
    attr::SK,
    attr::PORTAL_ID,
    attr::OBJECT_TYPE,
    attr::OBJECT_ID,
    attr::SOURCE_VERSION,
    attr::CONTENT_HASH,
    attr::SYNCED_AT,
    attr::MAPPING_FP,
    attr::SYNC_ISSUES,
    attr::ISSUE_KEY,
    "record_type",
];

fn event_id(change: &StreamChange) -> String {
    let table = match change.table {
        Table::Records => "records",
        Table::Control => "control",
    };
    let pk = change
        .new
        .as_ref()
        .or(change.old.as_ref())
        .and_then(|i| i.s(attr::PK).map(str::to_owned))
        .unwrap_or_default();
    let digest = Sha256::digest(format!("{table}\n{pk}\n{}", change.sequence));
    hex::encode(&digest[..16])
}

/// The attribute names whose values differ (absent = NULL), minus
/// bookkeeping, sorted.
fn changed_fields(old: Option<&Image>, new: Option<&Image>) -> Vec<String> {
    let empty = Image::new();
    let (old, new) = (old.unwrap_or(&empty), new.unwrap_or(&empty));
    let mut names: Vec<String> = old
        .keys()
        .chain(new.keys())
        .filter(|k| !BOOKKEEPING.contains(&k.as_str()))
        .filter(|k| {
            let (a, b) = (old.get(*k), new.get(*k));
            if is_null(a) && is_null(b) {
                return false;
            }
            a != b
        })
        .cloned()
        .collect();
    names.sort();
    names.dedup();
    names
}

/// What a stream change means to the application, if anything. `tenant`
/// is the portal's tenant (looked up by the caller for record changes).
pub fn classify(change: &StreamChange, tenant: Option<&str>) -> Option<OutEvent> {
    match change.table {
        Table::Records => record_event(change, tenant),
        Table::Control => {
            let image = change.new.as_ref().or(change.old.as_ref())?;
            let pk = image.s(attr::PK)?;
            if pk.starts_with(hubsync_store::RUN_PK_PREFIX) {
                sync_event(change)
            } else if pk.starts_with(hubsync_store::model::CONNECTION_PK_PREFIX) {
                connection_event(change)
            } else {
                None
            }
        }
    }
}

/// The portal whose record or item changed.
pub fn portal_of(change: &StreamChange) -> Option<u64> {
    let image = change.new.as_ref().or(change.old.as_ref())?;
    image.n(attr::PORTAL_ID)
}

fn envelope(change: &StreamChange, portal: u64, tenant: Option<&str>) -> Envelope {
    Envelope {
        schema_version: SCHEMA_VERSION,
        event_id: event_id(change),
        occurred_at: change.at,
        portal_id: portal,
        tenant_id: tenant.map(str::to_owned),
    }
}

fn record_event(change: &StreamChange, tenant: Option<&str>) -> Option<OutEvent> {
    let (old, new) = (change.old.as_ref(), change.new.as_ref());
    let archived = |i: Option<&Image>| i.is_some_and(|i| i.flag(attr::ARCHIVED));
    let tombstone = |i: Option<&Image>| i.is_some_and(|i| i.flag(attr::PRIVACY_DELETED));
    let reason = |i: Option<&Image>| i.and_then(|i| i.s(attr::ARCHIVE_REASON)).map(str::to_owned);
    let archive_kind = |i: Option<&Image>| {
        if reason(i).as_deref() == Some("merged") {
            RecordChangeKind::Merged
        } else {
            RecordChangeKind::Archived
        }
    };
    let kind = match change.kind {
        ChangeKind::Insert if tombstone(new) => RecordChangeKind::Purged,
        ChangeKind::Insert if archived(new) => archive_kind(new),
        ChangeKind::Insert => RecordChangeKind::Created,
        ChangeKind::Modify if tombstone(new) && !tombstone(old) => RecordChangeKind::Purged,
        ChangeKind::Modify if tombstone(new) => return None,
        ChangeKind::Modify if archived(new) && !archived(old) => archive_kind(new),
        ChangeKind::Modify if archived(old) && !archived(new) => RecordChangeKind::Restored,
        ChangeKind::Modify => {
            if changed_fields(old, new).is_empty() {
                return None;
            }
            if archived(new) {
                // An archived record's last data refreshed, or merged after
                // a deletion: it is still archived.
                if reason(old) != reason(new) {
                    archive_kind(new)
                } else {
                    RecordChangeKind::Updated
                }
            } else {
                RecordChangeKind::Updated
            }
        }
        // A tombstone is never deleted; anything else is a permanent delete.
        ChangeKind::Remove if tombstone(old) => return None,
        ChangeKind::Remove => RecordChangeKind::Deleted,
    };
    let image = new.or(old)?;
    let portal: u64 = image.n(attr::PORTAL_ID)?;
    let detail = RecordChanged {
        envelope: envelope(change, portal, tenant),
        object_type: image.s(attr::OBJECT_TYPE)?.to_owned(),
        object_id: image.s(attr::OBJECT_ID)?.to_owned(),
        kind,
        changed_fields: match kind {
            RecordChangeKind::Deleted => Vec::new(),
            _ => changed_fields(old, new),
        },
        source_version: new.and_then(|i| i.n(attr::SOURCE_VERSION)),
        archive_reason: reason(new),
        merged_into: new.and_then(|i| i.s(attr::MERGED_INTO)).map(str::to_owned),
    };
    Some(OutEvent {
        detail_type: "record.changed",
        detail: serde_json::to_value(detail).ok()?,
        sequence: change.sequence.clone(),
    })
}

/// The 5 % step `done` is in (`None` without a total).
fn step(image: &Image) -> Option<u64> {
    let total: u64 = image.n("estimated_total")?;
    let done: u64 = image.n("done").unwrap_or(0);
    Some(
        done.saturating_mul(20)
            .checked_div(total.max(1))
            .unwrap_or(0)
            .min(20),
    )
}

fn sync_event(change: &StreamChange) -> Option<OutEvent> {
    let new = change.new.as_ref()?;
    let status = new.s("status")?;
    let old = change.old.as_ref();
    let old_status = old.and_then(|o| o.s("status"));
    let detail_type = match status {
        "completed" if old_status != Some("completed") => "sync.completed",
        "failed" if old_status != Some("failed") => "sync.failed",
        "running" => {
            let moved = match old {
                None => true,
                Some(o) => match (step(o), step(new)) {
                    (Some(a), Some(b)) => a != b,
                    _ => o.n::<u64>("done") != new.n::<u64>("done"),
                },
            };
            if !moved {
                return None;
            }
            "sync.progress"
        }
        _ => return None,
    };
    let portal: u64 = new.n(attr::PORTAL_ID)?;
    let detail = SyncEvent {
        envelope: envelope(change, portal, None),
        run_id: new.s("run_id")?.to_owned(),
        kind: new.s("kind")?.to_owned(),
        object_type: new.s(attr::OBJECT_TYPE)?.to_owned(),
        status: status.to_owned(),
        done: new.n("done").unwrap_or(0),
        estimated_total: new.n("estimated_total"),
        drift: new.n("drift").unwrap_or(0),
        error: new.s("error").map(str::to_owned),
    };
    Some(OutEvent {
        detail_type,
        detail: serde_json::to_value(detail).ok()?,
        sequence: change.sequence.clone(),
    })
}

fn connection_event(change: &StreamChange) -> Option<OutEvent> {
    let new = change.new.as_ref()?;
    let status = new.s("status")?;
    let old = change.old.as_ref().and_then(|o| o.s("status"));
    // The end of a deferred setup is no new connection (sync events follow).
    if old == Some(status) || (old == Some("awaiting_setup") && status == "active") {
        return None;
    }
    let detail_type = match status {
        "active" | "awaiting_setup" => "connection.connected",
        "needs_reauth" => "connection.needs_reauth",
        "disconnected" => "connection.disconnected",
        _ => return None,
    };
    let portal: u64 = new.n(attr::PORTAL_ID)?;
    let detail = ConnectionEvent {
        envelope: envelope(change, portal, new.s("tenant_id")),
        state: status.to_owned(),
        state_reason: new.s("status_reason").map(str::to_owned),
    };
    Some(OutEvent {
        detail_type,
        detail: serde_json::to_value(detail).ok()?,
        sequence: change.sequence.clone(),
    })
}
