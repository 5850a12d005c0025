//! Reconciliation benchmark (figures printed, not asserted):
//!
//! 1. records/s of a companies-only reconciliation against the simulator
//!    with its rate limit at 110 / 10 s (in-process limiter at the full
//!    portal budget), as a fraction of the 1,100 records/s bound of
//!    100-record list pages;
//! 2. **as production runs it** (`production`): a portal of all three
//!    types, HubSpot's count estimate on, the shared per-portal limiter
//!    over a ledger, a store keeping every record, store and ledger at
//!    DynamoDB-like latency (p50 5 ms, p99 20 ms) — % of the bound per
//!    type and overall, HubSpot calls and DynamoDB reads/writes per 1,000
//!    records; at 100,000 records and at 2,000 (the first 10 s window);
//! 3. the same engine with the rate limit off, then a no-change rerun
//!    (DynamoDB writes of a run that finds nothing to do);
//! 4. peak RSS of a companies-only run at two portal sizes, **each in a
//!    fresh process** (this binary re-run), with a store that keeps no
//!    records (so only the engine's memory grows).
//! 5. beyond the list bound (`split`): a companies run that lists up and
//!    searches down at once, with the search index lagging and the portal
//!    changing under it — records/s against the list-only bound, and
//!    records wrongly archived, record by record (must be 0).
//!
//! `cargo bench -p reconcile --bench reconcile`; sizes:
//! `RECONCILE_BENCH_LIMITED` (default 100000), `RECONCILE_BENCH_PRODUCTION`
//! (comma list, default 100000,2000), `RECONCILE_BENCH_UNLIMITED` (100000),
//! `RECONCILE_BENCH_MEMORY` (comma list, default 100000,1000000),
//! `RECONCILE_BENCH_SPLIT` (default 100000; 0 skips it) and
//! `RECONCILE_BENCH_SPLIT_WRITES` (its record writes in flight, default the
//! engine's 8).

mod production;
mod split;
mod store;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hubspot_sim::{SeedSpec, SimConfig, Simulator};
use hubsync_hubspot::{
    ClientConfig, HubSpotClient, InProcessRateLimiter, ObjectType, PortalId, RateLimitConfig,
    RateLimiter, StaticToken, Unlimited,
};
use hubsync_store::{Connection, ConnectionStore, MemoryStore, SyncJobKind, TypeRunReport};
use reconcile::{Engine, EngineConfig, HubSpotSource, JobMessage, SliceLimit, SliceOutcome};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_kib() -> u64 {
    status_kib("VmRSS:")
}

/// A `/proc/self/status` figure in KiB (0 where there is none).
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A simulator started with `config`, its first portal and a token.
pub async fn start_sim(config: SimConfig) -> anyhow::Result<(Simulator, u64, String)> {
    let sim = Simulator::start(config).await?;
    let portal = sim.state().portal_ids()[0];
    let token = sim
        .issue_token(portal)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .access_token;
    Ok((sim, portal, token))
}

async fn sim_with(
    companies: usize,
    rate_limited: bool,
) -> anyhow::Result<(Simulator, u64, String)> {
    let mut config = SimConfig::default();
    config.rate_limit.enabled = rate_limited;
    config.initial_seed = SeedSpec {
        companies,
        ..SeedSpec::default()
    };
    start_sim(config).await
}

/// The portal connected (active) in `store`.
pub async fn connect(store: &impl ConnectionStore, portal: u64) -> anyhow::Result<()> {
    store
        .put_connection(&Connection::active(PortalId(portal), "bench"))
        .await?;
    Ok(())
}

fn source(
    sim: &Simulator,
    token: &str,
    limiter: Arc<dyn RateLimiter>,
) -> anyhow::Result<HubSpotSource<StaticToken>> {
    Ok(HubSpotSource::new(
        HubSpotClient::with_rate_limiter(ClientConfig::new(sim.base_url()), limiter)?,
        StaticToken::new(token),
    ))
}

async fn run<S>(
    engine: &Engine<HubSpotSource<StaticToken>, S>,
    portal: u64,
    kind: SyncJobKind,
) -> anyhow::Result<TypeRunReport>
where
    S: hubsync_sync::RunStore,
{
    let job = JobMessage::new(kind, PortalId(portal), vec![ObjectType::Companies]);
    match engine
        .run_slice(
            &job,
            ObjectType::Companies,
            "bench",
            SliceLimit::unlimited(),
        )
        .await?
    {
        SliceOutcome::Finished(r) => Ok(r),
        other => anyhow::bail!("unexpected outcome {other:?}"),
    }
}

fn rate(report: &TypeRunReport, elapsed: Duration) -> f64 {
    report.done as f64 / elapsed.as_secs_f64()
}

/// Set in the child process that measures one memory size.
const MEMORY_CHILD: &str = "RECONCILE_BENCH_MEMORY_CHILD";

fn env_sizes(name: &str, default: &str) -> Vec<usize> {
    std::env::var(name)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect()
}

/// Peak RSS of this process so far (KiB).
fn peak_rss_kib() -> u64 {
    status_kib("VmHWM:")
}

/// One memory figure: a companies-only run of `n` records in this (fresh)
/// process (the simulator's own data is resident before the run starts;
/// the growth during the run is the engine's).
async fn memory(n: usize, config: &EngineConfig) -> anyhow::Result<()> {
    let (sim, portal, token) = sim_with(n, false).await?;
    let store = store::BenchStore::counting();
    connect(&store, portal).await?;
    let engine = Engine::new(
        source(&sim, &token, Arc::new(Unlimited))?,
        store.clone(),
        config.clone(),
    );
    let before = rss_kib();
    let peak = Arc::new(AtomicU64::new(before));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let t = Instant::now();
    let r = run(&engine, portal, SyncJobKind::Initial).await?;
    let elapsed = t.elapsed();
    done.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    println!(
        "memory (fresh process): {} records ({} written to the counting store) in {:.1} s: RSS before the run {:.1} MiB (the simulator's data), peak growth during the run {:.1} MiB, process peak {:.1} MiB",
        r.done,
        store.upserts.load(Ordering::Relaxed),
        elapsed.as_secs_f64(),
        before as f64 / 1024.0,
        peak.load(Ordering::Relaxed).saturating_sub(before) as f64 / 1024.0,
        peak_rss_kib() as f64 / 1024.0,
    );
    sim.shutdown().await;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if let Ok(n) = std::env::var(MEMORY_CHILD) {
        return memory(n.parse()?, &EngineConfig::default()).await;
    }
    let limited_n = env_usize("RECONCILE_BENCH_LIMITED", 100_000);
    let unlimited_n = env_usize("RECONCILE_BENCH_UNLIMITED", 100_000);
    let config = EngineConfig {
        estimate_total: false,
        ..EngineConfig::default()
    };

    // 1 + 3: rate-limited throughput against the simulator.
    if limited_n > 0 {
        let (sim, portal, token) = sim_with(limited_n, true).await?;
        let store = MemoryStore::new();
        connect(&store, portal).await?;
        let limiter = Arc::new(InProcessRateLimiter::new(RateLimitConfig::default()));
        let engine = Engine::new(
            source(&sim, &token, limiter)?,
            store.clone(),
            config.clone(),
        );
        let t = Instant::now();
        let r = run(&engine, portal, SyncJobKind::Initial).await?;
        let elapsed = t.elapsed();
        let rps = rate(&r, elapsed);
        println!(
            "rate limit 110/10 s: {} records in {:.1} s = {:.0} records/s = {:.1} % of the 1,100 records/s bound; HubSpot calls {} ({:.2} per 1,000 records), 429s {}",
            r.done,
            elapsed.as_secs_f64(),
            rps,
            rps / 1100.0 * 100.0,
            r.counters.hubspot_calls,
            r.counters.hubspot_calls as f64 * 1000.0 / r.done.max(1) as f64,
            r.counters.rate_limited
        );
        sim.shutdown().await;
    }

    // 2: as production runs it.
    let latency = store::Latency::new(5.0, 20.0);
    for n in env_sizes("RECONCILE_BENCH_PRODUCTION", "100000,2000") {
        production::run(n, &latency).await?;
    }

    // 5 (stretch): list + search, past the list-only bound.
    let split_n = env_usize("RECONCILE_BENCH_SPLIT", 100_000);
    if split_n > 0 {
        let writes = env_usize(
            "RECONCILE_BENCH_SPLIT_WRITES",
            EngineConfig::default().write_concurrency,
        );
        split::run(split_n, writes, &latency).await?;
    }

    // 3: limit off, then a no-change rerun.
    if unlimited_n > 0 {
        let (sim, portal, token) = sim_with(unlimited_n, false).await?;
        let store = MemoryStore::new();
        connect(&store, portal).await?;
        let engine = Engine::new(
            source(&sim, &token, Arc::new(Unlimited))?,
            store.clone(),
            config.clone(),
        );
        let t = Instant::now();
        let r = run(&engine, portal, SyncJobKind::Initial).await?;
        let elapsed = t.elapsed();
        println!(
            "rate limit off: {} records in {:.1} s = {:.0} records/s (initial sync: {} created); HubSpot calls {} ({:.2} per 1,000 records)",
            r.done,
            elapsed.as_secs_f64(),
            rate(&r, elapsed),
            r.counters.created,
            r.counters.hubspot_calls,
            r.counters.hubspot_calls as f64 * 1000.0 / r.done.max(1) as f64,
        );
        let writes = store.stats().writes();
        let t = Instant::now();
        let again = run(&engine, portal, SyncJobKind::Nightly).await?;
        let elapsed = t.elapsed();
        let total = store.stats().writes() - writes;
        println!(
            "no-change run: {} records in {:.1} s = {:.0} records/s; record writes {}, drift {}, store writes {} = {} checkpoint/report/lock writes",
            again.done,
            elapsed.as_secs_f64(),
            rate(&again, elapsed),
            again.counters.record_writes,
            again.drift,
            total,
            again.counters.state_writes
        );
        sim.shutdown().await;
    }

    // 4: memory, each size in a fresh process.
    for n in env_sizes("RECONCILE_BENCH_MEMORY", "100000,1000000") {
        let status = std::process::Command::new(std::env::current_exe()?)
            .env(MEMORY_CHILD, n.to_string())
            .status()?;
        anyhow::ensure!(status.success(), "memory run of {n} records: {status}");
    }
    Ok(())
}
