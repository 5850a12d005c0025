//! One version rule (`HubSpotObject::version`: the last-modified property,
//! else `updatedAt`): the worker and the reconciliation, fed the same
//! HubSpot records — one with `hs_lastmodifieddate`, one without — store
//! the same items.

use std::collections::BTreeMap;
use std::time::Duration;

use hubsync_hubspot::{HubSpotObject, ObjectId, ObjectType, PortalId};
use hubsync_local::reconcile::{run_job, SliceLimit};
use hubsync_store::{
    Connection, ConnectionStore, MemoryStore, RecordKey, RecordStore, StoredRecord, SyncJobKind,
};
use hubsync_sync::fake::FakeHubSpot;
use reconcile::{Engine, EngineConfig, JobMessage, MemoryJobQueue, Reconciler};
use record_upsert::{InboundMessage, Worker};
use serde_json::json;

const PORTAL: u64 = 9_101;

/// Two deals: one carries `hs_lastmodifieddate`, the other only
/// `updatedAt` (as HubSpot may send when the property is not asked for).
fn deals() -> Vec<HubSpotObject> {
    let mut with = HubSpotObject::new(
        11,
        [
            ("dealname", "With"),
            ("amount", "10.50"),
            ("hs_lastmodifieddate", "2026-01-02T03:04:05.678Z"),
        ],
    );
    with.updated_at = Some("2025-12-31T00:00:00.000Z".into());
    let mut without = HubSpotObject::new(12, [("dealname", "Without"), ("amount", "7")]);
    without.updated_at = Some("2026-02-03T04:05:06.789Z".into());
    vec![with, without]
}

fn fake() -> FakeHubSpot {
    FakeHubSpot::with_objects(ObjectType::Deals, deals())
}

async fn store() -> MemoryStore {
    let store = MemoryStore::new();
    store
        .put_connection(&Connection::active(PortalId(PORTAL), "tenant"))
        .await
        .unwrap();
    hubsync_store::OwnersCacheStore::put_owners_cache(
        &store,
        PortalId(PORTAL),
        &hubsync_mapping::Owners::new(),
        1,
    )
    .await
    .unwrap();
    store
}

async fn stored(store: &MemoryStore) -> BTreeMap<u64, StoredRecord> {
    let mut out = BTreeMap::new();
    for id in [11, 12] {
        let key = RecordKey::new(PortalId(PORTAL), ObjectType::Deals, ObjectId(id));
        out.insert(id, store.get_record(&key).await.unwrap().expect("stored"));
    }
    out
}

#[tokio::test]
async fn the_worker_and_the_reconciliation_store_the_same_items() {
    // The worker, from webhooks.
    let by_worker = store().await;
    let worker = Worker::new(fake(), by_worker.clone());
    let events: Vec<_> = [11, 12]
        .into_iter()
        .map(|id| {
            json!({"eventId": id, "subscriptionId": 1, "portalId": PORTAL, "appId": 1,
                   "occurredAt": 1, "subscriptionType": "object.propertyChange",
                   "objectTypeId": "0-3", "attemptNumber": 0, "objectId": id})
        })
        .collect();
    let out = worker
        .process(vec![InboundMessage {
            message_id: "m".into(),
            body: json!({"v": 1, "portalId": PORTAL, "receivedAt": 0, "events": events})
                .to_string(),
        }])
        .await;
    assert!(out.failed.is_empty(), "{:?}", out.stats);

    // The reconciliation, from the listing.
    let by_reconcile = store().await;
    let rec = Reconciler::new(
        Engine::new(fake(), by_reconcile.clone(), EngineConfig::default()),
        MemoryJobQueue::new(),
        Duration::from_secs(1),
    );
    run_job(
        &rec,
        JobMessage::new(
            SyncJobKind::Resync,
            PortalId(PORTAL),
            vec![ObjectType::Deals],
        ),
        SliceLimit::unlimited(),
    )
    .await
    .unwrap();

    let (w, r) = (stored(&by_worker).await, stored(&by_reconcile).await);
    for id in [11, 12] {
        assert_eq!(
            w[&id].meta.source_version, r[&id].meta.source_version,
            "deal {id}"
        );
        assert_eq!(
            w[&id].meta.content_hash, r[&id].meta.content_hash,
            "deal {id}"
        );
        assert_eq!(w[&id].fields, r[&id].fields, "deal {id}");
        assert!(!w[&id].meta.archived && !r[&id].meta.archived);
    }
    // The last-modified property wins over updatedAt; without it, updatedAt.
    assert_eq!(w[&11].meta.source_version, 1_767_323_045_678);
    assert_eq!(w[&12].meta.source_version, 1_770_091_506_789);
}
