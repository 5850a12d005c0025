//! The nightly reconciliation end to end on the local stack (moto +
//! simulator + the real webhook path): a seeded portal, an initial sync,
//! 2,000 changes with 10 % of webhooks dropped, then one reconciliation.

use std::time::{Duration, Instant};

use hubspot_sim::{SeedSpec, SimConfig};
use hubsync_hubspot::PortalId;
use hubsync_local::compare::{compare_portal, describe};
use hubsync_local::reconcile::{local_reconciler, run_job, EngineConfig, JobMessage, SliceLimit};
use hubsync_store::SyncJobKind;

use crate::helpers;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_reconciliation_repairs_exactly_what_dropped_webhooks_missed() -> anyhow::Result<()> {
    let started = Instant::now();
    let mut sim = SimConfig::default();
    sim.rate_limit.enabled = false;
    sim.initial_seed = SeedSpec {
        companies: 5_000,
        contacts: 20_000,
        deals: 2_000,
        ..SeedSpec::default()
    };
    let (env, portal) = helpers::start_connected(helpers::options("reconcile", sim)).await?;
    // Large store pages: moto re-sorts a partition on every Query.
    let config = EngineConfig {
        store_page_size: 1_000,
        write_concurrency: 16,
        ..EngineConfig::default()
    };
    let rec = local_reconciler(&env, None, config)?;
    let job = |kind| JobMessage::new(kind, PortalId(portal), vec![]);

    // Initial sync of the seeded portal (no webhooks for seeded data).
    let (initial, _) = run_job(&rec, job(SyncJobKind::Initial), SliceLimit::unlimited()).await?;
    assert_eq!(initial.done, 27_000);
    let t_initial = started.elapsed();

    // 2,000 changes; one webhook in ten is lost.
    env.sim
        .state()
        .update_faults(portal, |f| f.webhook_drop_rate = 0.10)?;
    let changes = env
        .sim
        .state()
        .random_changes(portal, 2_000, Some(5), &[])?;
    env.wait_quiet(Duration::from_secs(120)).await?;
    let dropped = env.sim.state().counters().webhook_events_dropped;
    assert!(dropped > 100, "dropped {dropped} events");

    // What the dropped webhooks caused, counted independently.
    let t_changes = started.elapsed();
    let before = compare_portal(env.sim.state(), env.runner.store(), portal).await?;
    assert!(before.total() > 20, "{} differences", before.total());

    let (nightly, _) = run_job(&rec, job(SyncJobKind::Nightly), SliceLimit::unlimited()).await?;
    let t_reconciled = started.elapsed();
    let after = compare_portal(env.sim.state(), env.runner.store(), portal).await?;
    assert!(
        after.is_empty(),
        "missing [{}], different [{}], should be archived [{}]",
        describe(&after.missing, 10),
        describe(&after.different, 10),
        describe(&after.should_be_archived, 10)
    );
    assert_eq!(
        nightly.drift,
        before.total() as u64,
        "drift = missing {} + different {} + should be archived {}; report {:?}",
        before.missing.len(),
        before.different.len(),
        before.should_be_archived.len(),
        nightly
            .types
            .iter()
            .map(|t| &t.counters)
            .collect::<Vec<_>>()
    );

    // Right after: nothing to write, no drift.
    let writes = env.runner.store().stats().writes();
    let (again, _) = run_job(&rec, job(SyncJobKind::Nightly), SliceLimit::unlimited()).await?;
    let state_writes: u64 = again.types.iter().map(|t| t.counters.state_writes).sum();
    let record_writes: u64 = again.types.iter().map(|t| t.counters.record_writes).sum();
    assert_eq!(again.drift, 0);
    assert_eq!(record_writes, 0);
    assert_eq!(
        env.runner.store().stats().writes() - writes,
        state_writes,
        "only checkpoints, reports and the run lock were written"
    );
    eprintln!(
        "initial sync done at {:.1?}, changes applied at {:.1?}, reconciled at {:.1?}; {changes:?}; dropped {dropped} events; drift {} (missing {}, different {}, archived {}); total {:.1?}",
        t_initial,
        t_changes,
        t_reconciled,
        nightly.drift,
        before.missing.len(),
        before.different.len(),
        before.should_be_archived.len(),
        started.elapsed()
    );
    env.stop().await;
    Ok(())
}
