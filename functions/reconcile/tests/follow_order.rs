//! Contacts and deals whose scope follows companies read which companies
//! sync, so a run does them after its companies: the nightly fan-out queues
//! one job per portal, the split holds the following types back, and the
//! companies' finished slice queues them (same run).

use std::time::Duration;

use hubsync_hubspot::{ObjectType, PortalId};
use hubsync_mapping::MappingConfig;
use hubsync_store::{Connection, ConnectionStore, MappingConfigStore, MemoryStore};
use hubsync_sync::fake::FakeHubSpot;
use reconcile::{
    fan_out, Engine, EngineConfig, JobOutcome, MemoryJobQueue, Reconciler, ScheduleEvent,
    SliceLimit, SliceOutcome,
};
use serde_json::json;

const PORTAL: PortalId = PortalId(61);

fn types(queue: &MemoryJobQueue) -> Vec<Vec<ObjectType>> {
    let mut out = Vec::new();
    while let Some(job) = queue.pop() {
        out.push(job.types());
    }
    out
}

#[tokio::test]
async fn followers_start_when_the_companies_of_the_run_finish() {
    let store = MemoryStore::new();
    store
        .put_connection(&Connection::active(PORTAL, "t"))
        .await
        .unwrap();
    let mut config = MappingConfig::default();
    config
        .object_mut(ObjectType::Contacts)
        .scope_follows_companies = true;
    store.put_mapping_config(PORTAL, &config).await.unwrap();

    // The fan-out: one job for the portal, every type.
    let fanned = MemoryJobQueue::new();
    let event: ScheduleEvent = serde_json::from_value(
        json!({"schedule": "nightly", "scheduled_time": "2026-01-02T02:00:00Z"}),
    )
    .unwrap();
    let out = fan_out(&store, &fanned, &event).await.unwrap();
    assert_eq!((out.portals, out.jobs), (1, 1));
    let job = fanned.pop().unwrap();
    assert_eq!(job.types(), ObjectType::ALL.to_vec());

    // The split: companies and deals now, contacts held back.
    let rec = Reconciler::new(
        Engine::new(
            FakeHubSpot::default(),
            store.clone(),
            EngineConfig::default(),
        ),
        MemoryJobQueue::new(),
        Duration::from_secs(1),
    );
    match rec
        .handle_job(&job, "h", SliceLimit::unlimited())
        .await
        .unwrap()
    {
        JobOutcome::Split { jobs, .. } => assert_eq!(jobs, 2),
        other => panic!("{other:?}"),
    }
    let split: Vec<_> = std::iter::from_fn(|| rec.queue().pop()).collect();
    assert_eq!(
        split.iter().map(|j| j.types()).collect::<Vec<_>>(),
        [vec![ObjectType::Companies], vec![ObjectType::Deals]]
    );

    // The companies finish: contacts start, in the same run.
    let companies = &split[0];
    match rec
        .handle_job(companies, "h", SliceLimit::unlimited())
        .await
        .unwrap()
    {
        JobOutcome::Slice(s) => assert!(matches!(*s, SliceOutcome::Finished(_)), "{s:?}"),
        other => panic!("{other:?}"),
    }
    let next = rec.queue().pop().expect("contacts queued");
    assert_eq!(next.types(), vec![ObjectType::Contacts]);
    assert_eq!(next.run_id, companies.run_id);
    assert!(types(rec.queue()).is_empty());
}
