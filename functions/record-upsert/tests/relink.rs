//! Links HubSpot does not announce: a company deleted or merged away, or a
//! contact privacy-deleted, leaves the records that named it with a stale
//! association field (HubSpot sends nothing about them). The worker hands
//! every record it archives or purges on (`RelinkStore`); the journal
//! reader re-reads what named them (its tests).

use std::collections::BTreeSet;

use hubsync_hubspot::{ObjectId, ObjectType, PortalId};
use hubsync_mapping::Owners;
use hubsync_store::{Connection, ConnectionStore, MemoryStore, RelinkStore};
use hubsync_sync::fake::{stock_pipelines, FakeHubSpot};
use record_upsert::{InboundMessage, Worker};
use serde_json::{json, Value};

const PORTAL: u64 = 505;

fn message(id: &str, events: Vec<Value>) -> InboundMessage {
    let events: Vec<Value> = events
        .into_iter()
        .enumerate()
        .map(|(i, mut e)| {
            e["eventId"] = json!(i);
            e["subscriptionId"] = json!(1);
            e["portalId"] = json!(PORTAL);
            e["appId"] = json!(1);
            e["attemptNumber"] = json!(0);
            e
        })
        .collect();
    InboundMessage {
        message_id: id.to_owned(),
        body: json!({"v": 1, "portalId": PORTAL, "receivedAt": 0, "events": events}).to_string(),
    }
}

fn event(kind: &str, id: u64, at: i64) -> Value {
    json!({"subscriptionType": kind, "objectId": id, "occurredAt": at})
}

#[tokio::test]
async fn records_hubspot_no_longer_has_are_handed_on_for_their_linkers() {
    let store = MemoryStore::new();
    store
        .put_connection(&Connection::active(PortalId(PORTAL), "t"))
        .await
        .unwrap();
    let hubspot = FakeHubSpot::default();
    hubspot.set_owners(Owners::new());
    *hubspot.pipelines.lock().unwrap() = Some(stock_pipelines());
    for id in [11, 13] {
        hubspot.put(ObjectType::Companies, id, 1_000, &[("name", "Co")]);
    }
    let w = Worker::new(hubspot, store);
    let pending = |w: &Worker<FakeHubSpot, MemoryStore>| {
        let store = w.store().clone();
        async move {
            store
                .pending_gone(PortalId(PORTAL), usize::MAX)
                .await
                .unwrap()
                .gone
        }
    };

    // A property change of a live company: nothing is gone.
    let out = w
        .process(vec![message(
            "a",
            vec![event("company.propertyChange", 11, 1_000)],
        )])
        .await;
    assert!(out.failed.is_empty(), "{out:?}");
    assert!(pending(&w).await.is_empty());

    // Deleted (HubSpot no longer has 12), merged away (14 into 13),
    // privacy-deleted (contact 201): all three wait for their linkers.
    let mut merge = event("company.merge", 13, 2_000);
    merge["primaryObjectId"] = json!(13);
    merge["mergedObjectIds"] = json!([14]);
    let out = w
        .process(vec![message(
            "b",
            vec![
                event("company.deletion", 12, 2_000),
                merge,
                event("contact.privacyDeletion", 201, 2_000),
            ],
        )])
        .await;
    assert!(out.failed.is_empty(), "{out:?}");
    assert_eq!(out.stats.gone_recorded, 3, "{:?}", out.stats);
    let expected: BTreeSet<_> = [
        (ObjectType::Companies, ObjectId(12)),
        (ObjectType::Companies, ObjectId(14)),
        (ObjectType::Contacts, ObjectId(201)),
    ]
    .into();
    assert_eq!(pending(&w).await, expected);

    // HubSpot retries the deletion: handed on again (a harmless second
    // look-up), nothing else.
    let out = w
        .process(vec![message(
            "c",
            vec![event("company.deletion", 12, 2_000)],
        )])
        .await;
    assert!(out.failed.is_empty());
    assert_eq!(pending(&w).await, expected);
}
