//! How often a reconciliation checkpoints (issue #5 point d): by time, not
//! every few pages, so a fast no-change rerun writes a handful of state
//! items instead of three per five pages; and the interval really does
//! checkpoint while pages are read. (Hand-over and crash resumption are in
//! `engine.rs`.)

use std::time::Duration;

use hubspot_sim::{SeedSpec, SimConfig, Simulator};
use hubsync_hubspot::PortalId;
use hubsync_local::reconcile::{
    run_job, sim_portal, sim_source, Engine, EngineConfig, JobMessage, MemoryJobQueue, Reconciler,
    SimPortal, SliceLimit,
};
use hubsync_store::{MemoryStore, SyncJobKind};

async fn setup(contacts: usize) -> anyhow::Result<(Simulator, MemoryStore, u64, String)> {
    let mut config = SimConfig::default();
    config.rate_limit.enabled = false;
    config.initial_seed = SeedSpec {
        companies: 0,
        contacts,
        deals: 0,
        owners: 0,
        seed: Some(5),
    };
    let SimPortal {
        sim,
        store,
        portal,
        token,
    } = sim_portal(config).await?;
    Ok((sim, store, portal, token))
}

fn reconciler(
    sim: &Simulator,
    store: &MemoryStore,
    token: &str,
    config: EngineConfig,
) -> anyhow::Result<
    Reconciler<
        hubsync_local::reconcile::HubSpotSource<hubsync_hubspot::StaticToken>,
        MemoryStore,
        MemoryJobQueue,
    >,
> {
    Ok(Reconciler::new(
        Engine::new(
            sim_source(&sim.base_url(), token, None)?,
            store.clone(),
            config,
        ),
        MemoryJobQueue::new(),
        Duration::from_secs(1),
    ))
}

fn contacts_job(kind: SyncJobKind, portal: u64) -> JobMessage {
    JobMessage::new(
        kind,
        PortalId(portal),
        vec![hubsync_hubspot::ObjectType::Contacts],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_no_change_rerun_within_one_interval_writes_only_its_start_and_finish_state(
) -> anyhow::Result<()> {
    let (sim, store, portal, token) = setup(5_000).await?;
    // The default page rule (none), and an interval no machine reaches.
    let config = EngineConfig {
        checkpoint_interval: Duration::from_secs(600),
        ..EngineConfig::default()
    };
    let rec = reconciler(&sim, &store, &token, config)?;
    run_job(
        &rec,
        contacts_job(SyncJobKind::Initial, portal),
        SliceLimit::unlimited(),
    )
    .await?;

    let writes = store.stats().writes();
    let (again, _) = run_job(
        &rec,
        contacts_job(SyncJobKind::Nightly, portal),
        SliceLimit::unlimited(),
    )
    .await?;
    let t = &again.types[0];
    assert_eq!(t.done, 5_000);
    assert_eq!(t.counters.pages, 50);
    assert_eq!(t.counters.record_writes, 0);
    // Lock, the first checkpoint and report, taking the journal's repair
    // count, the last checkpoint and report, the release: not three more
    // per five pages (which made 30 more here).
    assert!(
        t.counters.state_writes <= 9,
        "{} state writes for 50 pages",
        t.counters.state_writes
    );
    assert_eq!(store.stats().writes() - writes, t.counters.state_writes);
    sim.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checkpoint_interval_checkpoints_while_pages_are_read() -> anyhow::Result<()> {
    let (sim, store, portal, token) = setup(2_000).await?;
    let config = EngineConfig {
        // Never by page count; every page is past a zero interval.
        checkpoint_every_pages: u32::MAX,
        checkpoint_interval: Duration::ZERO,
        ..EngineConfig::default()
    };
    let rec = reconciler(&sim, &store, &token, config)?;
    let (report, _) = run_job(
        &rec,
        contacts_job(SyncJobKind::Initial, portal),
        SliceLimit::unlimited(),
    )
    .await?;
    let t = &report.types[0];
    assert_eq!(t.counters.pages, 20);
    // Three state writes (lease renewal, checkpoint, report) per page
    // checkpoint, after each of the first 19 pages.
    assert!(
        t.counters.state_writes >= 3 * 19,
        "{} state writes for 20 pages",
        t.counters.state_writes
    );
    sim.shutdown().await;
    Ok(())
}
