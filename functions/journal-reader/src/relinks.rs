//! Links HubSpot does not announce. When a record is deleted, merged away
//! or privacy-deleted, HubSpot drops its associations (or, for a merge,
//! moves them to the survivor) but says nothing about the records on the
//! other end: no `associationChange` webhook reaches them and, as far as
//! HubSpot documents it, no journal entry either. A contact would keep
//! naming a deleted company until the nightly reconciliation.
//!
//! The worker hands on every record it archives or purges
//! ([`hubsync_store::relinks`]). Once per pass, for each syncing portal
//! with some waiting, the reader looks in the store for the live records
//! of every type whose association fields point at a gone record's type
//! and name it — one Query of that type's partition for everything gone
//! since the last pass, projected to the metadata and the linking fields
//! (DynamoDB reads, no HubSpot call) — and queues an `associationChange`
//! for each (`changeSource` [`RELINK_CHANGE_SOURCE`]): the worker re-reads
//! it with its associations. Only then are those gone records cleared; a
//! crash in between looks them up again.
//!
//! Bounded ([`RelinkLimits`]): a pass takes about [`RELINK_GONE_MAX`]
//! gone records of a portal (the rest wait for the next pass), and after
//! [`RELINK_SCAN_MAX`] records of one type, or at the pass's deadline, the
//! rest of the partition is left to the nightly run (`scans_cut_short`,
//! logged).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use hubsync_hubspot::{EventKind, ObjectId, ObjectType, PortalId, WebhookEvent};
use hubsync_mapping::{fields_linking_to, names_any};
use hubsync_messages::event_sink::{EventSink, MESSAGE_ATTRIBUTE_BYTES, SQS_MAX_REQUEST_BYTES};
use hubsync_messages::{EventBatch, RELINK_CHANGE_SOURCE};
use hubsync_store::{Connection, ConnectionStatus, MappingConfigStore, RecordStore, RelinkStore};

use crate::reader::ReaderError;

/// Records per Query page (DynamoDB stops earlier at 1 MB read).
pub const RELINK_PAGE: u32 = 1_000;

/// Records of one linking type looked through per portal and pass, at
/// most: a projected Query of about a thousand pages, some 20–40 s.
pub const RELINK_SCAN_MAX: usize = 1_000_000;

/// Gone records of one portal handled per pass (whole items: a little
/// more at most).
pub const RELINK_GONE_MAX: usize = 100_000;

/// How much one pass of the relink step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelinkLimits {
    /// Gone records taken per portal.
    pub gone_max: usize,
    /// Records of one linking type looked through per portal.
    pub scan_max: usize,
    /// Records per Query page.
    pub page: u32,
}

impl Default for RelinkLimits {
    fn default() -> Self {
        Self {
            gone_max: RELINK_GONE_MAX,
            scan_max: RELINK_SCAN_MAX,
            page: RELINK_PAGE,
        }
    }
}

/// What the relink step of a pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RelinkReport {
    /// Gone records whose linkers were looked up.
    pub gone: u64,
    /// Live records queued for a fresh read of their associations.
    pub linkers_queued: u64,
    /// Partitions too large to look through completely.
    pub scans_cut_short: u64,
}

/// The relink step over `connections` (syncing ones only), until
/// `deadline`.
pub async fn run<S, K>(
    store: &S,
    sink: &K,
    connections: &[Connection],
    (now_ms, deadline): (i64, Instant),
    limits: RelinkLimits,
) -> Result<RelinkReport, ReaderError>
where
    S: RecordStore + RelinkStore + MappingConfigStore,
    K: EventSink,
{
    let mut report = RelinkReport::default();
    for c in connections
        .iter()
        .filter(|c| c.status == ConnectionStatus::Active)
    {
        if Instant::now() >= deadline {
            break;
        }
        let portal = c.portal_id;
        let pending = store.pending_gone(portal, limits.gone_max).await?;
        if pending.is_empty() {
            continue;
        }
        let gone = &pending.gone;
        if gone.is_empty() {
            store.clear_gone(portal, &pending).await?;
            continue;
        }
        let config = store.effective_mapping_config(portal).await?;
        let mut events = Vec::new();
        for linker in ObjectType::ALL {
            let c = config.object(linker);
            // The linking fields per gone type, and all of them.
            let mut by_type: BTreeMap<ObjectType, (Vec<String>, BTreeSet<ObjectId>)> =
                BTreeMap::new();
            for (t, id) in gone {
                let (fields, ids) = by_type
                    .entry(*t)
                    .or_insert_with(|| (fields_linking_to(c, *t), BTreeSet::new()));
                if !fields.is_empty() {
                    ids.insert(*id);
                }
            }
            by_type.retain(|_, (fields, _)| !fields.is_empty());
            if by_type.is_empty() {
                continue;
            }
            let naming = naming(
                store,
                (portal, linker),
                &by_type,
                (limits, deadline),
                &mut report,
            )
            .await?;
            report.linkers_queued += naming.len() as u64;
            events.extend(
                naming
                    .into_iter()
                    .map(|id| association_change(portal, linker, id, now_ms)),
            );
        }
        if !events.is_empty() {
            let batch = EventBatch::new(portal, now_ms, events);
            sink.send(batch.into_messages(SQS_MAX_REQUEST_BYTES - MESSAGE_ATTRIBUTE_BYTES)?)
                .await?;
        }
        store.clear_gone(portal, &pending).await?;
        report.gone += gone.len() as u64;
        tracing::info!(portal = %portal, gone = gone.len(), "records naming deleted or merged-away records queued for a fresh read");
    }
    Ok(report)
}

/// The live records of `linker` whose stored fields name a gone record.
async fn naming<S: RecordStore>(
    store: &S,
    (portal, linker): (PortalId, ObjectType),
    by_type: &BTreeMap<ObjectType, (Vec<String>, BTreeSet<ObjectId>)>,
    (limits, deadline): (RelinkLimits, Instant),
    report: &mut RelinkReport,
) -> Result<BTreeSet<ObjectId>, ReaderError> {
    let all_fields: Vec<String> = by_type
        .values()
        .flat_map(|(f, _)| f.iter().cloned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut found = BTreeSet::new();
    let mut after = None;
    let mut scanned = 0usize;
    loop {
        let page = store
            .scan_fields_page(portal, linker, &all_fields, after, limits.page)
            .await?;
        scanned += page.records.len();
        for (meta, values) in &page.records {
            if meta.archived || meta.privacy_deleted {
                continue;
            }
            let names = by_type
                .values()
                .any(|(fields, ids)| names_any(fields.iter().filter_map(|f| values.get(f)), ids));
            if names {
                found.insert(meta.object_id);
            }
        }
        after = page.next_after;
        if after.is_none() {
            break;
        }
        if scanned >= limits.scan_max || Instant::now() >= deadline {
            report.scans_cut_short += 1;
            tracing::warn!(portal = %portal, object_type = %linker, scanned,
                "links to deleted records: partition too large to look through now; the nightly run repairs the rest");
            break;
        }
    }
    Ok(found)
}

/// The event HubSpot did not send: `id`'s associations changed.
fn association_change(portal: PortalId, object: ObjectType, id: ObjectId, at: i64) -> WebhookEvent {
    let mut e = crate::convert::event(portal, object, EventKind::AssociationChange, Some(id), at);
    e.from_object_id = Some(id);
    e.change_source = Some(RELINK_CHANGE_SOURCE.to_owned());
    e
}
