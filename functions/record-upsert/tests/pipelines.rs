//! Deal pipeline and stage labels in the worker: from the portal's
//! pipelines cache (no HubSpot call in the steady state); a stage the cache
//! lacks (created in HubSpot since) refreshes it once, and a stage HubSpot
//! does not have either is a field error, the deal still lands.

use std::sync::atomic::Ordering;

use hubsync_hubspot::{ObjectId, ObjectType, PortalId};
use hubsync_mapping::Pipelines;
use hubsync_store::{Connection, ConnectionStore, MemoryStore, RecordKey, RecordStore};
use hubsync_sync::fake::FakeHubSpot;
use record_upsert::{InboundMessage, Worker};
use serde_json::{json, Value};

const PORTAL: u64 = 503;

fn message(id: &str, deal: u64) -> InboundMessage {
    let event = json!({"eventId": 1, "subscriptionId": 1, "portalId": PORTAL, "appId": 1,
        "occurredAt": 1_000, "subscriptionType": "deal.creation", "attemptNumber": 0, "objectId": deal});
    InboundMessage {
        message_id: id.to_owned(),
        body: json!({"v": 1, "portalId": PORTAL, "receivedAt": 0, "events": [event]}).to_string(),
    }
}

fn pipelines(with_new_stage: bool) -> Pipelines {
    let mut p = Pipelines::new();
    let mut stages = vec![("closedwon", "Closed Won")];
    if with_new_stage {
        stages.push(("renewal", "Renewal"));
    }
    p.insert("default", "Sales Pipeline", &stages);
    p
}

async fn stage_of(w: &Worker<FakeHubSpot, MemoryStore>, deal: u64) -> (Value, Value) {
    let r = w
        .store()
        .get_record(&RecordKey::new(
            PortalId(PORTAL),
            ObjectType::Deals,
            ObjectId(deal),
        ))
        .await
        .unwrap()
        .unwrap();
    (r.fields["stage"].clone(), r.fields["pipeline"].clone())
}

#[tokio::test]
async fn labels_come_from_the_cache_and_an_unknown_stage_refreshes_it_once() {
    let store = MemoryStore::new();
    store
        .put_connection(&Connection::active(PortalId(PORTAL), "t"))
        .await
        .unwrap();
    let hubspot = FakeHubSpot::default();
    *hubspot.pipelines.lock().unwrap() = Some(pipelines(false));
    let w = Worker::new(hubspot, store);
    let deal = |id: u64, stage: &str| {
        w.reader().put(
            ObjectType::Deals,
            id,
            1_000,
            &[("pipeline", "default"), ("dealstage", stage)],
        );
    };

    // Nothing cached: read once and cached.
    deal(1, "closedwon");
    let out = w.process(vec![message("a", 1)]).await;
    assert!(out.failed.is_empty());
    assert_eq!(out.stats.pipeline_refreshes, 1);
    assert_eq!(
        stage_of(&w, 1).await,
        (json!("Closed Won"), json!("Sales Pipeline"))
    );

    // Steady state: the cache.
    deal(2, "closedwon");
    let out = w.process(vec![message("b", 2)]).await;
    assert_eq!(out.stats.pipeline_refreshes, 0);
    assert_eq!(out.stats.field_errors, 0);

    // A stage added in HubSpot: the first deal in it refreshes the cache.
    *w.reader().pipelines.lock().unwrap() = Some(pipelines(true));
    deal(3, "renewal");
    let out = w.process(vec![message("c", 3)]).await;
    assert_eq!(out.stats.pipeline_refreshes, 1);
    assert_eq!(out.stats.field_errors, 0);
    assert_eq!(stage_of(&w, 3).await.0, json!("Renewal"));
    assert_eq!(w.reader().pipeline_reads.load(Ordering::SeqCst), 2);

    // A stage HubSpot does not have either: within the refresh interval
    // no second read; a field error, the deal lands without the label.
    deal(4, "nowhere");
    let out = w.process(vec![message("d", 4)]).await;
    assert!(out.failed.is_empty());
    assert_eq!(out.stats.pipeline_refreshes, 0);
    assert_eq!(out.stats.field_errors, 1);
    assert_eq!(stage_of(&w, 4).await.0, Value::Null);
    assert_eq!(w.reader().pipeline_reads.load(Ordering::SeqCst), 2);
}
