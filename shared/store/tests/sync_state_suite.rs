//! Checkpoints and run reports, the same cases on `MemoryStore` and on
//! `DynamoStore` over the local stack (fresh tables per test).

use std::future::Future;
use std::time::Duration;

use hubsync_mapping::ids::{ObjectId, ObjectType, PortalId};
use hubsync_store::{
    create_tables, Checkpoint, DynamoStore, MemoryStore, RunReport, RunStatus, StoreConfig,
    SyncJobKind, SyncStateStore, TypeCounters, TypeRunReport,
};

const PORTAL: PortalId = PortalId(1_000_001);

async fn memory_store() -> MemoryStore {
    MemoryStore::new()
}

async fn dynamo_store() -> DynamoStore {
    let sdk = hubsync_testkit::aws_config()
        .await
        .expect("local AWS stack (moto)");
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let config = StoreConfig::new(
        hubsync_testkit::unique_name("records"),
        hubsync_testkit::unique_name("control"),
    );
    create_tables(&client, &config)
        .await
        .expect("create the test tables");
    DynamoStore::new(client, config)
}

async fn bounded(case: impl Future<Output = ()>) {
    tokio::time::timeout(Duration::from_secs(120), case)
        .await
        .expect("test case exceeded its time bound");
}

macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $case() {
                    super::bounded(async { super::$case(super::memory_store().await).await }).await
                }
            )*
        }
        mod dynamo {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::bounded(async { super::$case(super::dynamo_store().await).await }).await
                }
            )*
        }
    };
}

suite!(
    checkpoints_are_compare_and_swapped_on_seq,
    run_reports_aggregate_their_types,
    recent_runs_are_listed_newest_first,
);

fn checkpoint(seq: u64) -> Checkpoint {
    let mut counters = TypeCounters {
        created: 7,
        ..TypeCounters::default()
    };
    counters.skipped.insert("missing_email".into(), 2);
    Checkpoint {
        portal_id: PORTAL,
        object_type: ObjectType::Contacts,
        run_id: "0001767232800000-nightly".into(),
        kind: SyncJobKind::Nightly,
        seq,
        hubspot_after: Some("2000000101".into()),
        store_after: Some(ObjectId(2_000_000_100)),
        last_hubspot_id: Some(ObjectId(2_000_000_100)),
        lookup_mode: false,
        listing_done: false,
        bin_cursor: None,
        bin_done: false,
        search: None,
        counters,
        estimated_total: Some(20_000),
        started_at_ms: 1_767_232_800_000,
        updated_at_ms: 1_767_232_801_000,
        active_ms: 1_000,
        invocations: 1,
        finished: false,
        holder: "req-1/msg-1".into(),
        run_types: vec![ObjectType::Contacts, ObjectType::Deals],
    }
}

async fn checkpoints_are_compare_and_swapped_on_seq<S: SyncStateStore>(store: S) {
    assert_eq!(
        store
            .get_checkpoint(PORTAL, ObjectType::Contacts)
            .await
            .unwrap(),
        None
    );
    assert!(
        !store.put_checkpoint(&checkpoint(2)).await.unwrap(),
        "seq 2 needs seq 1 stored"
    );
    assert!(store.put_checkpoint(&checkpoint(1)).await.unwrap());
    assert!(
        !store.put_checkpoint(&checkpoint(1)).await.unwrap(),
        "a second writer of seq 1 is fenced"
    );
    let mut next = checkpoint(2);
    next.hubspot_after = Some("2000000201".into());
    next.counters.created = 9;
    assert!(store.put_checkpoint(&next).await.unwrap());
    assert!(!store.put_checkpoint(&checkpoint(2)).await.unwrap());
    let stored = store
        .get_checkpoint(PORTAL, ObjectType::Contacts)
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(stored, next, "round trip, nested counters included");
    assert_eq!(
        store
            .get_checkpoint(PORTAL, ObjectType::Deals)
            .await
            .unwrap(),
        None,
        "one checkpoint per type"
    );
}

fn type_report(object_type: ObjectType, status: RunStatus, drift: u64) -> TypeRunReport {
    let counters = TypeCounters {
        created: drift,
        hubspot_calls: 11,
        ..TypeCounters::default()
    };
    TypeRunReport {
        portal_id: PORTAL,
        run_id: "0001767232800000-nightly".into(),
        kind: SyncJobKind::Nightly,
        object_type,
        status,
        started_at_ms: 1_767_232_800_000,
        finished_at_ms: (status != RunStatus::Running).then_some(1_767_232_900_000),
        updated_at_ms: 1_767_232_900_000,
        duration_ms: 100_000,
        active_ms: 90_000,
        done: 1_000,
        estimated_total: Some(2_000),
        drift,
        counters,
        invocations: 1,
        error: None,
        run_types: Vec::new(),
    }
}

#[test]
fn a_run_waits_for_its_planned_types_to_start() {
    let planned = |t, status| TypeRunReport {
        run_types: vec![
            ObjectType::Companies,
            ObjectType::Contacts,
            ObjectType::Deals,
        ],
        ..type_report(t, status, 1)
    };
    let started = 1_767_232_800_000;
    let r = RunReport::from_types_at(
        vec![planned(ObjectType::Companies, RunStatus::Completed)],
        started + 1_000,
    )
    .unwrap();
    assert_eq!(
        r.status,
        RunStatus::Running,
        "contacts and deals have not started"
    );
    assert_eq!(r.pending_types, [ObjectType::Contacts, ObjectType::Deals]);
    assert_eq!(r.estimated_total, None, "the total is not known yet");
    assert_eq!(r.finished_at_ms, None);
    let all = vec![
        planned(ObjectType::Companies, RunStatus::Completed),
        planned(ObjectType::Contacts, RunStatus::Completed),
        planned(ObjectType::Deals, RunStatus::Completed),
    ];
    let r = RunReport::from_types_at(all, started + 1_000).unwrap();
    assert_eq!((r.status, r.pending_types.len()), (RunStatus::Completed, 0));
    // A type that never reported under this run (its job joined another
    // run of that type) stops holding the run after the limit.
    let late = started + hubsync_store::sync_state::PENDING_TYPE_LIMIT_MS + 1;
    let r = RunReport::from_types_at(
        vec![planned(ObjectType::Companies, RunStatus::Completed)],
        late,
    )
    .unwrap();
    assert_eq!(r.status, RunStatus::Completed);
}

async fn run_reports_aggregate_their_types<S: SyncStateStore>(store: S) {
    let run = "0001767232800000-nightly";
    assert_eq!(store.get_run_report(PORTAL, run).await.unwrap(), None);
    store
        .put_run_report(&type_report(ObjectType::Companies, RunStatus::Completed, 3))
        .await
        .unwrap();
    store
        .put_run_report(&type_report(ObjectType::Contacts, RunStatus::Running, 4))
        .await
        .unwrap();
    let r: RunReport = store.get_run_report(PORTAL, run).await.unwrap().unwrap();
    assert_eq!(r.status, RunStatus::Running, "in flight: readable progress");
    assert_eq!(
        (r.done, r.estimated_total, r.drift),
        (2_000, Some(4_000), 7)
    );
    assert_eq!(r.finished_at_ms, None);
    store
        .put_run_report(&type_report(ObjectType::Contacts, RunStatus::Completed, 5))
        .await
        .unwrap();
    let r = store.get_run_report(PORTAL, run).await.unwrap().unwrap();
    assert_eq!(r.status, RunStatus::Completed);
    assert_eq!(r.drift, 8);
    assert_eq!(r.hubspot_calls, 22);
    assert_eq!(r.types.len(), 2);
    assert_eq!(r.finished_at_ms, Some(1_767_232_900_000));
    assert_eq!(
        store.get_run_report(PORTAL, "other-run").await.unwrap(),
        None
    );
}

/// The inherent `list_run_reports` of both stores, for one generic case.
trait ListRuns {
    fn list(&self, portal: PortalId, max_runs: usize) -> impl Future<Output = Vec<RunReport>>;
}

impl ListRuns for MemoryStore {
    async fn list(&self, portal: PortalId, max_runs: usize) -> Vec<RunReport> {
        self.list_run_reports(portal, max_runs).await.unwrap()
    }
}

impl ListRuns for DynamoStore {
    async fn list(&self, portal: PortalId, max_runs: usize) -> Vec<RunReport> {
        self.list_run_reports(portal, max_runs).await.unwrap()
    }
}

async fn recent_runs_are_listed_newest_first<S: SyncStateStore + ListRuns>(store: S) {
    assert!(store.list(PORTAL, 5).await.is_empty());
    // 20 runs of three types: 60 items, more than one query page.
    for n in 0..20u64 {
        for t in ObjectType::ALL {
            let mut r = type_report(t, RunStatus::Completed, n);
            r.run_id = format!("{:013}-nightly", 1_767_232_800_000 + n * 86_400_000);
            store.put_run_report(&r).await.unwrap();
        }
    }
    let mut other = type_report(ObjectType::Deals, RunStatus::Running, 1);
    other.portal_id = PortalId(7);
    store.put_run_report(&other).await.unwrap();

    let two = store.list(PORTAL, 2).await;
    let ids: Vec<&str> = two.iter().map(|r| r.run_id.as_str()).collect();
    assert_eq!(ids, ["1768874400000-nightly", "1768788000000-nightly"]);
    assert!(two.iter().all(|r| r.types.len() == 3), "whole runs");
    assert_eq!(two[0].drift, 3 * 19);
    let all = store.list(PORTAL, 50).await;
    assert_eq!(all.len(), 20);
    assert!(all.windows(2).all(|w| w[0].run_id > w[1].run_id));
    assert!(all
        .iter()
        .all(|r| r.portal_id == PORTAL && r.types.len() == 3));
    let others = store.list(PortalId(7), 50).await;
    assert_eq!(others.len(), 1);
    assert_eq!(others[0].status, RunStatus::Running);
    assert!(store.list(PORTAL, 0).await.is_empty());
}
