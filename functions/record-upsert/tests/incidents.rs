//! Sync health of failed groups: a group HubSpot cannot serve is recorded
//! as an incident of its category with the records it held up, and the
//! next clean group of that portal and type clears it.

use hubsync_hubspot::{ObjectType, PortalId};
use hubsync_store::{Connection, ConnectionStore, IncidentStore, MemoryStore};
use hubsync_sync::fake::FakeHubSpot;
use record_upsert::{InboundMessage, Worker};
use serde_json::json;

const PORTAL: u64 = 777;

fn message(id: &str, ids: &[u64]) -> InboundMessage {
    let events: Vec<_> = ids
        .iter()
        .map(|i| {
            json!({"eventId": i, "subscriptionId": 1, "portalId": PORTAL, "appId": 1,
                   "occurredAt": 1_000, "subscriptionType": "deal.creation", "attemptNumber": 0, "objectId": i})
        })
        .collect();
    InboundMessage {
        message_id: id.to_owned(),
        body: json!({"v": 1, "portalId": PORTAL, "receivedAt": 0, "events": events}).to_string(),
    }
}

#[tokio::test]
async fn a_failed_group_is_an_incident_until_the_type_syncs_cleanly() {
    let store = MemoryStore::new();
    store
        .put_connection(&Connection::active(PortalId(PORTAL), "t"))
        .await
        .unwrap();
    let hubspot = FakeHubSpot::default();
    for id in 1..=3 {
        hubspot.put(ObjectType::Deals, id, 1_000, &[("dealname", "D")]);
    }
    hubspot.failing.lock().unwrap().push(ObjectType::Deals);
    let worker = Worker::new(hubspot, store.clone());

    let out = worker.process(vec![message("m1", &[1, 2, 3])]).await;
    assert_eq!(out.failed, ["m1"], "retried");
    let incidents = store.list_incidents(PortalId(PORTAL)).await.unwrap();
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    let i = &incidents[0];
    assert_eq!(
        (i.category.as_str(), i.object_type),
        ("hubspot_unavailable", ObjectType::Deals)
    );
    assert_eq!((i.occurrences, i.affected_records), (1, 3));
    assert_eq!(
        i.example_ids.iter().map(|id| id.get()).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert!(i.message.contains("502"), "{}", i.message);

    let again = worker.process(vec![message("m1", &[1, 2, 3])]).await;
    assert_eq!(again.failed, ["m1"]);
    let i = &store.list_incidents(PortalId(PORTAL)).await.unwrap()[0];
    assert_eq!(
        (i.occurrences, i.affected_records),
        (2, 6),
        "each retry counts"
    );

    worker.reader().failing.lock().unwrap().clear();
    let ok = worker.process(vec![message("m1", &[1, 2, 3])]).await;
    assert!(ok.failed.is_empty());
    assert!(
        store
            .list_incidents(PortalId(PORTAL))
            .await
            .unwrap()
            .is_empty(),
        "the clean group cleared it"
    );
}

#[tokio::test]
async fn a_group_hubspot_refuses_for_good_is_acknowledged_and_recorded() {
    let store = MemoryStore::new();
    store
        .put_connection(&Connection::active(PortalId(PORTAL), "t"))
        .await
        .unwrap();
    let hubspot = FakeHubSpot::default();
    hubspot.put(ObjectType::Deals, 1, 1_000, &[("dealname", "D")]);
    hubspot.refusing.lock().unwrap().push(ObjectType::Deals);
    let worker = Worker::new(hubspot, store.clone());
    let out = worker.process(vec![message("m1", &[1])]).await;
    assert!(
        out.failed.is_empty(),
        "not retried: a 403 will not heal by itself"
    );
    assert!(out.retry_later.is_empty());
    assert_eq!(out.stats.refused_groups, 1);
    let i = &store.list_incidents(PortalId(PORTAL)).await.unwrap()[0];
    assert_eq!(i.category, "permission");
    assert!(
        i.message.contains("crm.objects.deals.read"),
        "{}",
        i.message
    );
}

#[tokio::test]
async fn a_transient_failure_is_to_be_backed_off() {
    let store = MemoryStore::new();
    store
        .put_connection(&Connection::active(PortalId(PORTAL), "t"))
        .await
        .unwrap();
    let hubspot = FakeHubSpot::default();
    hubspot.put(ObjectType::Deals, 1, 1_000, &[("dealname", "D")]);
    hubspot.failing.lock().unwrap().push(ObjectType::Deals);
    let worker = Worker::new(hubspot, store);
    let out = worker.process(vec![message("m1", &[1])]).await;
    assert_eq!(
        (out.failed.as_slice(), out.retry_later.as_slice()),
        (["m1".to_owned()].as_slice(), ["m1".to_owned()].as_slice())
    );
}
