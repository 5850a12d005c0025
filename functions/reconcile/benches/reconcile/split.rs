//! Beyond the list bound: one companies run of an `n`-record portal that
//! lists from the lowest id up and searches from the highest down
//! (`EngineConfig::search_split_min_records`), against the simulator at
//! HubSpot's limits (110 list requests / 10 s, 5 searches / s) with its
//! search index lagging writes, through the shared limiter over a ledger,
//! store and ledger at DynamoDB-like latency. While the first run goes, the
//! portal changes (creates, updates, deletes) and no webhook is delivered.
//!
//! Printed: records/s against the list-only bound (1,100 records/s: 100-
//! record pages at 11 requests/s), list and search calls, 429s, and — after
//! each run, record by record against the simulator — records archived in
//! the store that are live in HubSpot (must be 0), and what is left for the
//! webhooks or the next run (changed after the run read them, or hidden by
//! the index lag). Then a second run with the lag still on, and a third
//! once the index has caught up (the portal quiet): it must converge.
//!
//! Left out: HubSpot's response time (loopback answers in well under a
//! millisecond), hand-overs, DynamoDB throttling.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hubspot_sim::{props, ObjectType as SimType, SeedSpec, SimConfig, Simulator};
use hubsync_hubspot::{ClientConfig, HubSpotClient, ObjectType, PortalId, StaticToken};
use hubsync_local::compare::compare_portal;
use hubsync_ratelimit::{PermitClass, SharedLimitConfig, SharedRateLimiter};
use hubsync_store::{RecordStore, SyncJobKind, TypeRunReport};
use reconcile::{Engine, EngineConfig, HubSpotSource, JobMessage, SliceLimit, SliceOutcome};

use crate::production::{busiest, Recording};
use crate::store::{latent_portal, BenchStore, Latency};

/// The list-only bound: 100-record pages at 110 requests per 10 s.
const LIST_BOUND_RECORDS_PER_SEC: f64 = 1_100.0;

/// How far the simulator's search index trails writes.
const INDEX_LAG: Duration = Duration::from_secs(30);

/// Changes the portal while a run goes: every 100 ms a create, an update
/// and a deletion of random live companies.
fn mutate(sim: &Simulator, portal: u64, stop: Arc<AtomicBool>, made: Arc<AtomicU64>) {
    let st = sim.state().clone();
    std::thread::spawn(move || {
        let mut i = 0u64;
        while !stop.load(Ordering::Relaxed) {
            i += 1;
            let ids = st
                .object_ids(portal, SimType::Companies, false)
                .unwrap_or_default();
            if ids.len() > 10 {
                let pick = |k: u64| {
                    ids[(i.wrapping_mul(2_654_435_761).wrapping_add(k) as usize) % ids.len()]
                };
                let name = format!("Changed {i}");
                let _ = st.update_object(
                    portal,
                    SimType::Companies,
                    pick(1),
                    props([("name", name.as_str())]),
                );
                let _ = st.delete_object(portal, SimType::Companies, pick(7));
            }
            let name = format!("Created {i}");
            let _ = st.create_object(portal, SimType::Companies, props([("name", name.as_str())]));
            made.fetch_add(3, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(100));
        }
    });
}

/// Records archived in the store that are live in the simulator.
async fn wrongly_archived(
    sim: &Simulator,
    store: &BenchStore,
    portal: u64,
) -> anyhow::Result<usize> {
    let live: BTreeSet<u64> = sim
        .state()
        .object_ids(portal, SimType::Companies, false)?
        .into_iter()
        .collect();
    let mut scan =
        store
            .control
            .scan_portal_records(PortalId(portal), ObjectType::Companies, 1_000);
    let mut wrong = 0;
    while let Some(page) = scan.next_page().await? {
        wrong += page
            .iter()
            .filter(|r| r.meta.archived && live.contains(&r.meta.object_id.0))
            .count();
    }
    Ok(wrong)
}

struct Bench {
    sim: Simulator,
    portal: u64,
    store: BenchStore,
    engine: Engine<HubSpotSource<StaticToken>, BenchStore>,
    list_times: Arc<Mutex<Vec<Instant>>>,
}

impl Bench {
    async fn run(&self, kind: SyncJobKind) -> anyhow::Result<(TypeRunReport, Duration)> {
        let job = JobMessage::new(kind, PortalId(self.portal), vec![ObjectType::Companies]);
        let t = Instant::now();
        match self
            .engine
            .run_slice(
                &job,
                ObjectType::Companies,
                "bench",
                SliceLimit::unlimited(),
            )
            .await?
        {
            SliceOutcome::Finished(r) => Ok((r, t.elapsed())),
            other => anyhow::bail!("unexpected outcome {other:?}"),
        }
    }

    async fn report(&self, label: &str, r: &TypeRunReport, took: Duration) -> anyhow::Result<()> {
        let rps = r.done as f64 / took.as_secs_f64();
        let mut times = std::mem::take(
            &mut *self
                .list_times
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        times.sort();
        let c = &r.counters;
        println!(
            "  {label}: {} records in {:.1} s = {:.0} records/s = {:.2}× the list-only bound; list pages {}, search pages {}, confirming reads {}, list-budget calls {} (busiest 10 s window {}), 429s {}; created {}, updated {}, archived deleted {} / merged {}, unchanged {}",
            r.done,
            took.as_secs_f64(),
            rps,
            rps / LIST_BOUND_RECORDS_PER_SEC,
            c.pages,
            c.search_pages,
            c.confirm_reads,
            times.len(),
            busiest(&times, Duration::from_secs(10)),
            c.rate_limited,
            c.created,
            c.updated,
            c.archived_deleted,
            c.archived_merged,
            c.unchanged,
        );
        let d = compare_portal(self.sim.state(), &self.store.control, self.portal).await?;
        println!(
            "    record by record against the simulator: {} compared; wrongly archived (archived here, live in HubSpot) {}; left for webhooks / the next run: {} missing, {} different, {} to archive",
            d.compared,
            wrongly_archived(&self.sim, &self.store, self.portal).await?,
            d.missing.len(),
            d.different.len(),
            d.should_be_archived.len(),
        );
        Ok(())
    }
}

/// `writes_in_flight`: the engine's `write_concurrency` (the initial run
/// is a write per record; at DynamoDB-like latency, 8 in flight cap it
/// below the list bound).
pub async fn run(n: usize, writes_in_flight: usize, latency: &Latency) -> anyhow::Result<()> {
    let mut config = SimConfig::default();
    config.rate_limit.enabled = true;
    config.search_index_lag_ms = INDEX_LAG.as_millis() as u64;
    config.initial_seed = SeedSpec {
        companies: n,
        ..SeedSpec::default()
    };
    let (sim, portal, token) = crate::start_sim(config).await?;
    let (store, ledgers) = latent_portal(portal, latency).await?;
    let list_times = Arc::new(Mutex::new(Vec::new()));
    let limiter = Arc::new(SharedRateLimiter::new(
        ledgers,
        SharedLimitConfig::new(PermitClass::Background),
    ));
    let source = HubSpotSource::new(
        HubSpotClient::with_rate_limiter(
            ClientConfig::new(sim.base_url()),
            Arc::new(Recording {
                inner: limiter,
                times: list_times.clone(),
            }),
        )?,
        StaticToken::new(&token),
    );
    let engine = Engine::new(
        source,
        store.clone(),
        EngineConfig {
            search_split_min_records: Some(1),
            write_concurrency: writes_in_flight,
            ..EngineConfig::default()
        },
    );
    let bench = Bench {
        sim,
        portal,
        store,
        engine,
        list_times,
    };
    println!(
        "list + search, {n}-record portal (companies), search index {} s behind writes, shared limiter, store and ledger at DynamoDB-like latency, {writes_in_flight} record writes in flight:",
        INDEX_LAG.as_secs()
    );

    let stop = Arc::new(AtomicBool::new(false));
    let made = Arc::new(AtomicU64::new(0));
    mutate(&bench.sim, portal, stop.clone(), made.clone());
    let (first, took) = bench.run(SyncJobKind::Initial).await?;
    stop.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(200)).await;
    println!(
        "  ({} changes made in HubSpot while the initial run went, no webhooks)",
        made.load(Ordering::Relaxed)
    );
    bench.report("initial run", &first, took).await?;

    let (second, took) = bench.run(SyncJobKind::Nightly).await?;
    bench
        .report("next run, index still 30 s behind", &second, took)
        .await?;

    bench
        .sim
        .state()
        .update_config(|c| c.search_index_lag_ms = 0);
    let (third, took) = bench.run(SyncJobKind::Nightly).await?;
    bench
        .report("next run, index caught up", &third, took)
        .await?;
    bench.sim.shutdown().await;
    Ok(())
}
