//! A record over DynamoDB's item limit does not stop a reconciliation, and
//! is not lost either: it is stored with its largest fields emptied, each a
//! `too_large` sync issue (counted in the report's `field_errors`), every
//! other record is written, and the run completes — instead of failing at
//! the same page every night.

use std::time::Duration;

use hubsync_hubspot::{ObjectId, ObjectType, PortalId};
use hubsync_local::reconcile::{run_job, SliceLimit};
use hubsync_mapping::{MappingConfig, Rule, Transform};
use hubsync_store::{
    Connection, ConnectionStore, MappingConfigStore, MemoryStore, RecordKey, RecordStore,
    RunStatus, SyncJobKind,
};
use hubsync_sync::fake::FakeHubSpot;
use reconcile::{Engine, EngineConfig, JobMessage, MemoryJobQueue, Reconciler};

const PORTAL: u64 = 9_202;

#[tokio::test]
async fn an_oversized_record_is_stored_without_its_largest_fields_and_the_run_completes() {
    let store = MemoryStore::new();
    store
        .put_connection(&Connection::active(PortalId(PORTAL), "tenant"))
        .await
        .unwrap();
    // Seven mapped notes at HubSpot's 65,536-character maximum.
    let mut config = MappingConfig::default();
    for i in 0..7 {
        let name = format!("notes_{i}");
        config.object_mut(ObjectType::Deals).rules.push(Rule::new(
            &name,
            &[name.as_str()],
            Transform::String,
        ));
    }
    store
        .put_mapping_config(PortalId(PORTAL), &config)
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

    let hubspot = FakeHubSpot::default();
    let big = "n".repeat(65_536);
    let notes: Vec<(String, String)> = (0..7)
        .map(|i| (format!("notes_{i}"), big.clone()))
        .collect();
    let mut huge: Vec<(&str, &str)> = notes
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    huge.push(("dealname", "Huge"));
    for id in 1..=150 {
        if id == 70 {
            hubspot.put(ObjectType::Deals, id, 1_000, &huge);
        } else {
            hubspot.put(ObjectType::Deals, id, 1_000, &[("dealname", "Normal")]);
        }
    }
    // The definitions of the saved config's properties (schema-drift check).
    hubspot
        .definitions
        .lock()
        .unwrap()
        .insert(ObjectType::Deals, Vec::new());

    let rec = Reconciler::new(
        Engine::new(hubspot, store.clone(), EngineConfig::default()),
        MemoryJobQueue::new(),
        Duration::from_secs(1),
    );
    let job = JobMessage::new(
        SyncJobKind::Nightly,
        PortalId(PORTAL),
        vec![ObjectType::Deals],
    );
    let (report, _) = run_job(&rec, job, SliceLimit::unlimited()).await.unwrap();

    assert_eq!(report.status, RunStatus::Completed);
    let deals = &report.types[0].counters;
    assert_eq!(deals.errors, 0, "{deals:?}");
    assert_eq!(deals.too_large, 1, "{deals:?}");
    assert_eq!(deals.created, 150);
    let key = |id| RecordKey::new(PortalId(PORTAL), ObjectType::Deals, ObjectId(id));
    let huge = store.get_record(&key(70)).await.unwrap().expect("stored");
    assert_eq!(huge.fields["name"], "Huge", "the small fields are kept");
    let emptied: Vec<&str> = (0..7)
        .map(|i| format!("notes_{i}"))
        .filter(|f| huge.fields[f.as_str()].is_null())
        .map(|f| Box::leak(f.into_boxed_str()) as &str)
        .collect();
    assert!(
        !emptied.is_empty() && emptied.len() < 7,
        "only what must go: {emptied:?}"
    );
    let issues = store
        .record_issues(PortalId(PORTAL), ObjectType::Deals, None, 10)
        .await
        .unwrap();
    assert_eq!(issues.records.len(), 1);
    assert!(issues.records[0]
        .issues
        .iter()
        .all(|i| i.category == hubsync_store::TOO_LARGE));
    assert_eq!(issues.records[0].issues.len(), emptied.len());
    for id in [1, 69, 71, 150] {
        assert!(
            store.get_record(&key(id)).await.unwrap().is_some(),
            "deal {id}"
        );
    }
}
