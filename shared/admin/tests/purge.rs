//! Bulk purge of archived records: interrupted and rerun, it removes every
//! archived record of the type and nothing else (active records, privacy
//! tombstones, other types, other portals stay).

use std::time::Duration;

use hubsync_admin::records::{purge_archived, purge_one, PurgeFilter};
use hubsync_admin::AdminError;
use hubsync_hubspot::{ObjectId, ObjectType, PortalId};
use hubsync_store::{ArchiveReason, MemoryStore, RecordKey, RecordStore, RecordWrite};

const PORTAL: PortalId = PortalId(77);

fn key(t: ObjectType, id: u64) -> RecordKey {
    RecordKey::new(PORTAL, t, ObjectId(id))
}

async fn put(store: &MemoryStore, k: RecordKey) {
    let w = RecordWrite::from_fields(k, 10, "h", &serde_json::json!({"name": "x"})).unwrap();
    store.upsert_record(&w).await.unwrap();
}

/// 10,000 archived companies (a third out of scope), 500 active, 50
/// tombstones, and archived deals that a companies purge must not touch.
async fn seeded() -> MemoryStore {
    let store = MemoryStore::new();
    for id in 1..=10_550u64 {
        let k = key(ObjectType::Companies, id);
        put(&store, k).await;
        if id <= 10_000 {
            let reason = if id % 3 == 0 {
                ArchiveReason::OutOfScope
            } else {
                ArchiveReason::Deleted
            };
            store.archive_record(&k, 20, reason, None).await.unwrap();
        } else if id > 10_500 {
            store.privacy_purge(&k, 30).await.unwrap();
        }
    }
    for id in 1..=20u64 {
        let k = key(ObjectType::Deals, id);
        put(&store, k).await;
        store
            .archive_record(&k, 20, ArchiveReason::Deleted, None)
            .await
            .unwrap();
    }
    store
}

async fn count(store: &MemoryStore, t: ObjectType) -> (u64, u64, u64) {
    let (mut archived, mut active, mut tombstones) = (0, 0, 0);
    let mut scan = store.scan_portal_records(PORTAL, t, 1000);
    while let Some(page) = scan.next_page().await.unwrap() {
        for r in page {
            if r.meta.privacy_deleted {
                tombstones += 1;
            } else if r.meta.archived {
                archived += 1;
            } else {
                active += 1;
            }
        }
    }
    (archived, active, tombstones)
}

#[tokio::test]
async fn an_interrupted_bulk_purge_rerun_removes_every_archived_record_and_nothing_else() {
    let store = seeded().await;
    let t = ObjectType::Companies;
    // A zero budget stops after the first page: the "interruption".
    let first = purge_archived(
        &store,
        PORTAL,
        t,
        PurgeFilter::AllArchived,
        None,
        Duration::ZERO,
    )
    .await
    .unwrap();
    assert!(!first.complete);
    assert_eq!(first.deleted, 500, "one page");
    let resume = first.resume_after.expect("where to resume");
    assert_eq!(resume, ObjectId(500));

    // Rerun from scratch (as after a crash that lost the cursor) and from
    // the cursor: both finish, nothing is deleted twice or wrongly.
    let rerun = purge_archived(
        &store,
        PORTAL,
        t,
        PurgeFilter::AllArchived,
        None,
        Duration::from_secs(600),
    )
    .await
    .unwrap();
    assert!(rerun.complete);
    assert_eq!(rerun.resume_after, None);
    assert_eq!(first.deleted + rerun.deleted, 10_000);
    assert_eq!(rerun.active, 500);
    assert_eq!(rerun.tombstones, 50);
    assert_eq!(count(&store, t).await, (0, 500, 50));
    assert_eq!(
        count(&store, ObjectType::Deals).await,
        (20, 0, 0),
        "other types untouched"
    );

    let again = purge_archived(
        &store,
        PORTAL,
        t,
        PurgeFilter::AllArchived,
        Some(resume),
        Duration::from_secs(600),
    )
    .await
    .unwrap();
    assert_eq!((again.deleted, again.complete), (0, true), "idempotent");
}

#[tokio::test]
async fn an_out_of_scope_purge_keeps_records_deleted_in_hubspot() {
    let store = seeded().await;
    let report = purge_archived(
        &store,
        PORTAL,
        ObjectType::Companies,
        PurgeFilter::OutOfScope,
        None,
        Duration::from_secs(600),
    )
    .await
    .unwrap();
    assert!(report.complete);
    assert_eq!(
        report.deleted, 3_333,
        "ids divisible by 3 were out of scope"
    );
    assert_eq!(report.kept, 10_000 - 3_333);
    assert_eq!(
        count(&store, ObjectType::Companies).await,
        (10_000 - 3_333, 500, 50)
    );
}

#[tokio::test]
async fn one_record_purge_refuses_active_records_tombstones_and_unknown_ids() {
    let store = seeded().await;
    let t = ObjectType::Companies;
    purge_one(&store, &key(t, 1)).await.unwrap();
    assert!(store.get_record(&key(t, 1)).await.unwrap().is_none());
    let active = store.get_record(&key(t, 10_001)).await.unwrap();
    match purge_one(&store, &key(t, 10_001)).await {
        Err(AdminError::Conflict(m)) => assert!(m.contains("is active"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(store.get_record(&key(t, 10_001)).await.unwrap(), active);
    match purge_one(&store, &key(t, 10_501)).await {
        Err(AdminError::Conflict(m)) => assert!(m.contains("tombstone"), "{m}"),
        other => panic!("{other:?}"),
    }
    match purge_one(&store, &key(t, 1)).await {
        Err(AdminError::NotFound(m)) => {
            assert!(m.contains("no companies record 1 of portal 77"), "{m}")
        }
        other => panic!("{other:?}"),
    }
}
