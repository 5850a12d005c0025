//! The relink step: the records that name one HubSpot deleted, merged away
//! or purged are queued as association changes (`HUBSYNC_RELINK`), once
//! each; archived ones, other portals' and unrelated ones are not; the
//! pending set is cleared only after the queueing.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use hubsync_hubspot::{EventKind, ObjectId, ObjectType, PortalId};
use hubsync_mapping::{AssociationRule, MappingConfig};
use hubsync_messages::event_sink::MemorySink;
use hubsync_messages::{EventBatch, RELINK_CHANGE_SOURCE};
use hubsync_store::{
    ArchiveReason, Connection, ConnectionStatus, MappingConfigStore, MemoryStore, RecordKey,
    RecordStore, RecordWrite, RelinkStore,
};
use journal_reader::relinks;
use serde_json::{json, Value};

const P: PortalId = PortalId(42);

async fn stored(s: &MemoryStore, t: ObjectType, id: u64, fields: Value) {
    let Value::Object(fields) = fields else {
        unreachable!()
    };
    let key = RecordKey::new(P, t, ObjectId(id));
    s.upsert_record(&RecordWrite::new(key, 1_000, format!("h{id}"), fields))
        .await
        .unwrap();
}

/// Contacts 201 (→ 11, 12), 202 (→ 11), 203 (→ 12, archived); deals
/// 301 (→ company 12, contact 201) and 302 (→ contact 202).
async fn portal() -> MemoryStore {
    let s = MemoryStore::new();
    let contact = |ids: &[&str]| json!({"email": "a@example.com", "company_ids": ids});
    stored(&s, ObjectType::Contacts, 201, contact(&["11", "12"])).await;
    stored(&s, ObjectType::Contacts, 202, contact(&["11"])).await;
    stored(&s, ObjectType::Contacts, 203, contact(&["12"])).await;
    s.archive_record(
        &RecordKey::new(P, ObjectType::Contacts, ObjectId(203)),
        2_000,
        ArchiveReason::OutOfScope,
        None,
    )
    .await
    .unwrap();
    let deal = |companies: &[&str], contacts: &[&str]| json!({"dealname": "D", "company_ids": companies, "contact_ids": contacts});
    stored(&s, ObjectType::Deals, 301, deal(&["12"], &["201"])).await;
    stored(&s, ObjectType::Deals, 302, deal(&[], &["202"])).await;
    s
}

async fn step(
    s: &MemoryStore,
    sink: &MemorySink,
    status: ConnectionStatus,
) -> Result<relinks::RelinkReport, journal_reader::ReaderError> {
    step_within(s, sink, status, relinks::RelinkLimits::default()).await
}

async fn step_within(
    s: &MemoryStore,
    sink: &MemorySink,
    status: ConnectionStatus,
    limits: relinks::RelinkLimits,
) -> Result<relinks::RelinkReport, journal_reader::ReaderError> {
    let mut c = Connection::active(P, "t");
    c.status = status;
    relinks::run(
        s,
        sink,
        &[c],
        (5_000, Instant::now() + Duration::from_secs(10)),
        limits,
    )
    .await
}

/// The (type, id) of every queued association change.
fn queued(sink: &MemorySink) -> BTreeSet<(ObjectType, u64)> {
    sink.messages()
        .iter()
        .flat_map(|m| EventBatch::from_json(&m.body).unwrap().events)
        .map(|e| {
            assert_eq!(e.change_source.as_deref(), Some(RELINK_CHANGE_SOURCE));
            let (t, kind) = e.resolved().unwrap();
            assert_eq!(kind, EventKind::AssociationChange);
            assert_eq!(e.from_object_id, e.object_id);
            (t, e.object_id.unwrap().0)
        })
        .collect()
}

#[tokio::test]
async fn the_live_records_naming_a_gone_one_are_queued_once_and_the_set_cleared() {
    let s = portal().await;
    let sink = MemorySink::default();
    s.add_gone(P, ObjectType::Companies, &[ObjectId(12)])
        .await
        .unwrap();
    s.add_gone(P, ObjectType::Contacts, &[ObjectId(201)])
        .await
        .unwrap();
    let report = step(&s, &sink, ConnectionStatus::Active).await.unwrap();
    // 201 names company 12; 301 names company 12 and contact 201 (once);
    // 202 and 302 name neither; 203 is archived.
    assert_eq!(
        queued(&sink),
        [(ObjectType::Contacts, 201), (ObjectType::Deals, 301)].into()
    );
    assert_eq!((report.gone, report.linkers_queued), (2, 2), "{report:?}");
    assert!(s.pending_gone(P, usize::MAX).await.unwrap().is_empty());

    // Nothing pending: nothing read, nothing queued.
    let reads = s.stats().reads();
    let again = step(&s, &sink, ConnectionStatus::Active).await.unwrap();
    assert_eq!(again, relinks::RelinkReport::default());
    assert_eq!(s.stats().reads() - reads, 1, "one look at the pending set");
}

#[tokio::test]
async fn a_primary_only_field_is_matched_exactly() {
    let s = MemoryStore::new();
    let mut config = MappingConfig::default();
    config
        .object_mut(ObjectType::Contacts)
        .associations
        .push(AssociationRule {
            target: "company".into(),
            to: ObjectType::Companies,
            primary_only: true,
        });
    s.put_mapping_config(P, &config).await.unwrap();
    let contact =
        |primary: &str| json!({"email": "a@example.com", "company": primary, "company_ids": []});
    stored(&s, ObjectType::Contacts, 1, contact("12")).await;
    stored(&s, ObjectType::Contacts, 2, contact("120")).await;
    s.add_gone(P, ObjectType::Companies, &[ObjectId(12)])
        .await
        .unwrap();
    let sink = MemorySink::default();
    step(&s, &sink, ConnectionStatus::Active).await.unwrap();
    assert_eq!(queued(&sink), [(ObjectType::Contacts, 1)].into());
}

#[tokio::test]
async fn a_failing_queue_or_a_portal_that_does_not_sync_keeps_the_set() {
    let s = portal().await;
    s.add_gone(P, ObjectType::Companies, &[ObjectId(12)])
        .await
        .unwrap();
    let sink = MemorySink::default();
    sink.fail.store(true, Ordering::SeqCst);
    let err = step(&s, &sink, ConnectionStatus::Active).await.unwrap_err();
    assert!(
        matches!(err, journal_reader::ReaderError::Sink(_)),
        "{err:?}"
    );
    assert_eq!(
        s.pending_gone(P, usize::MAX).await.unwrap().gone.len(),
        1,
        "kept"
    );

    sink.fail.store(false, Ordering::SeqCst);
    let report = step(&s, &sink, ConnectionStatus::NeedsReauth)
        .await
        .unwrap();
    assert_eq!(report, relinks::RelinkReport::default());
    assert!(sink.messages().is_empty());
    assert_eq!(
        s.pending_gone(P, usize::MAX).await.unwrap().gone.len(),
        1,
        "kept"
    );

    // Once it syncs again, the next pass does it.
    step(&s, &sink, ConnectionStatus::Active).await.unwrap();
    assert_eq!(queued(&sink).len(), 2);
    assert!(s.pending_gone(P, usize::MAX).await.unwrap().is_empty());
}

/// A mass deletion is handled a bounded lot per pass; the rest waits for
/// the next pass and nothing is lost.
#[tokio::test]
async fn a_mass_deletion_is_handled_a_lot_per_pass() {
    let s = portal().await;
    let per_item = hubsync_store::relinks::GONE_PER_ITEM;
    let lot = relinks::RELINK_GONE_MAX.div_ceil(per_item) * per_item;
    // Company 12 (named by contact 201 and deal 301) is the last one gone.
    let ids: Vec<ObjectId> = (1_000_000..1_000_000 + lot as u64)
        .map(ObjectId)
        .chain([ObjectId(12)])
        .collect();
    s.add_gone(P, ObjectType::Companies, &ids).await.unwrap();
    let sink = MemorySink::default();
    let first = step(&s, &sink, ConnectionStatus::Active).await.unwrap();
    assert_eq!((first.gone, first.linkers_queued), (lot as u64, 0));
    assert!(sink.messages().is_empty(), "nothing names those");
    let second = step(&s, &sink, ConnectionStatus::Active).await.unwrap();
    assert_eq!((second.gone, second.linkers_queued), (1, 2));
    assert_eq!(
        queued(&sink),
        [(ObjectType::Contacts, 201), (ObjectType::Deals, 301)].into()
    );
    assert!(s.pending_gone(P, usize::MAX).await.unwrap().is_empty());
}

/// A partition larger than a pass may look through: the records looked
/// through are queued, the rest wait for the nightly run, and the gone
/// records are not looked up again.
#[tokio::test]
async fn a_partition_too_large_for_a_pass_is_cut_short_and_left_to_the_nightly_run() {
    let s = portal().await;
    s.add_gone(P, ObjectType::Companies, &[ObjectId(11)])
        .await
        .unwrap();
    let sink = MemorySink::default();
    // Contacts 201, 202 (both name 11) and 203 (archived): the first page
    // of two is looked through, not the rest. Deals (two, a full page)
    // are cut short as well: the store may hold more.
    let limits = relinks::RelinkLimits {
        scan_max: 2,
        page: 2,
        ..relinks::RelinkLimits::default()
    };
    let report = step_within(&s, &sink, ConnectionStatus::Active, limits)
        .await
        .unwrap();
    assert_eq!(report.scans_cut_short, 2, "{report:?}");
    assert_eq!(
        queued(&sink),
        [(ObjectType::Contacts, 201), (ObjectType::Contacts, 202)].into()
    );
    assert!(s.pending_gone(P, usize::MAX).await.unwrap().is_empty());
}
