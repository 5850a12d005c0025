//! The reconciliation as production runs it: all three object types at
//! once (one limiter instance each, as three Lambda invocations would
//! have), HubSpot's count estimate on, the shared per-portal limiter over
//! a ledger, and a store that keeps every record — the store's and the
//! ledger's every request delayed like DynamoDB's.
//!
//! Left out: HubSpot's own response time (the simulator answers on
//! loopback in well under a millisecond; HubSpot takes 100–300 ms, which
//! three concurrent types absorb at 11 requests/s), Lambda hand-overs
//! (one uninterrupted slice per type) and DynamoDB throttling.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hubspot_sim::{SeedSpec, SimConfig};
use hubsync_hubspot::rate_limit::BoxFuture;
use hubsync_hubspot::{
    ClientConfig, HubSpotClient, HubSpotError, ObjectType, PortalId, RateLimitKind, RateLimiter,
    RatePermit, StaticToken,
};
use hubsync_ratelimit::{PermitClass, SharedLimitConfig, SharedRateLimiter};
use hubsync_store::SyncJobKind;
use reconcile::{Engine, EngineConfig, HubSpotSource, JobMessage, SliceLimit, SliceOutcome};

use crate::store::{latent_portal, Latency};

/// HubSpot's bound: 110 requests per 10 s.
const BOUND_PER_SEC: f64 = 11.0;

/// Records when each permit of the list budget (`Standard`) was handed
/// out (= when the request went); search has its own budget.
pub struct Recording<L> {
    pub inner: Arc<L>,
    pub times: Arc<Mutex<Vec<Instant>>>,
}

impl<L: RateLimiter> RateLimiter for Recording<L> {
    fn acquire(
        &self,
        portal: PortalId,
        kind: RateLimitKind,
    ) -> BoxFuture<'_, Result<RatePermit, HubSpotError>> {
        Box::pin(async move {
            let permit = self.inner.acquire(portal, kind).await?;
            if kind == RateLimitKind::Standard {
                self.times
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(Instant::now());
            }
            Ok(permit)
        })
    }

    fn on_rate_limited(&self, portal: PortalId, kind: RateLimitKind, pause: Duration) {
        self.inner.on_rate_limited(portal, kind, pause);
    }
}

/// Most of sorted `times` within any `window`.
pub fn busiest(times: &[Instant], window: Duration) -> usize {
    let (mut most, mut j) = (0, 0);
    for i in 0..times.len() {
        while times[i] - times[j] >= window {
            j += 1;
        }
        most = most.max(i - j + 1);
    }
    most
}

/// A portal of `n` records: 20 % companies, 60 % contacts, 20 % deals.
fn spec(n: usize) -> SeedSpec {
    SeedSpec {
        companies: n / 5,
        contacts: n * 3 / 5,
        deals: n / 5,
        ..SeedSpec::default()
    }
}

/// Runs one production-like reconciliation of an `n`-record portal and
/// prints its figures.
pub async fn run(n: usize, latency: &Latency) -> anyhow::Result<()> {
    let mut config = SimConfig::default();
    config.rate_limit.enabled = true;
    config.initial_seed = spec(n);
    let (sim, portal, token) = crate::start_sim(config).await?;
    let (store, ledgers) = latent_portal(portal, latency).await?;
    let types = [
        ObjectType::Companies,
        ObjectType::Contacts,
        ObjectType::Deals,
    ];
    let job = JobMessage::new(SyncJobKind::Initial, PortalId(portal), types.to_vec());
    let mut type_times = Vec::new();
    let (reads0, writes0) = (
        store.control.stats().reads(),
        store.control.stats().writes(),
    );
    let mut limiters = Vec::new();
    let mut runs = Vec::new();
    let start = Instant::now();
    for t in types {
        let times = Arc::new(Mutex::new(Vec::new()));
        type_times.push(times.clone());
        let limiter = Arc::new(SharedRateLimiter::new(
            ledgers.clone(),
            SharedLimitConfig::new(PermitClass::Background),
        ));
        limiters.push(limiter.clone());
        let source = HubSpotSource::new(
            HubSpotClient::with_rate_limiter(
                ClientConfig::new(sim.base_url()),
                Arc::new(Recording {
                    inner: limiter,
                    times: times.clone(),
                }),
            )?,
            StaticToken::new(&token),
        );
        let engine = Engine::new(source, store.clone(), EngineConfig::default());
        let job = job.clone();
        runs.push(tokio::spawn(async move {
            let t0 = Instant::now();
            match engine
                .run_slice(&job, t, "bench", SliceLimit::unlimited())
                .await?
            {
                SliceOutcome::Finished(r) => Ok::<_, anyhow::Error>((r, t0.elapsed())),
                other => anyhow::bail!("unexpected outcome {other:?}"),
            }
        }));
    }
    let mut reports = Vec::new();
    for r in runs {
        reports.push(r.await??);
    }
    let wall = start.elapsed();
    // List-budget requests per type, and all of them in time order.
    let type_calls: Vec<usize> = type_times
        .iter()
        .map(|t| t.lock().unwrap_or_else(PoisonError::into_inner).len())
        .collect();
    let mut times: Vec<Instant> = type_times
        .iter()
        .flat_map(|t| std::mem::take(&mut *t.lock().unwrap_or_else(PoisonError::into_inner)))
        .collect();
    times.sort();
    let calls = times.len();
    let first = times.first().copied().unwrap_or(start);
    // HubSpot's bound is per 10 s: a shorter run is measured against one
    // window.
    let span = times
        .last()
        .map_or(Duration::ZERO, |l| *l - first)
        .max(Duration::from_secs(10));
    let in_first_window = times
        .iter()
        .filter(|t| **t - first < Duration::from_secs(10))
        .count();
    let records: u64 = reports.iter().map(|(r, _)| r.done).sum();
    let limited: u64 = reports.iter().map(|(r, _)| r.counters.rate_limited).sum();
    let per_1k = |x: u64| x as f64 * 1000.0 / records.max(1) as f64;
    println!(
        "production-like, {n}-record portal ({} companies, {} contacts, {} deals), store and ledger at DynamoDB-like latency:",
        n / 5,
        n * 3 / 5,
        n / 5
    );
    for ((r, took), list_calls) in reports.iter().zip(&type_calls) {
        println!(
            "  {:<9} {:>7} records in {:>6.1} s; HubSpot calls {:>5} ({:.2} per 1,000 records; {} of them search pages, outside the list budget); list-budget calls {:>5} = {:.1} % of the bound over the whole run; 429s {}",
            r.object_type.to_string(),
            r.done,
            took.as_secs_f64(),
            r.counters.hubspot_calls,
            r.counters.hubspot_calls as f64 * 1000.0 / r.done.max(1) as f64,
            r.counters.search_pages,
            list_calls,
            *list_calls as f64 / span.as_secs_f64().max(1e-9) / BOUND_PER_SEC * 100.0,
            r.counters.rate_limited,
        );
    }
    let ledger_calls: u64 = limiters.iter().map(|l| l.stats().ledger_calls).sum();
    let reads = store.control.stats().reads() - reads0;
    let writes = store.control.stats().writes() - writes0;
    println!(
        "  overall: {records} records in {:.1} s ({:.0} records/s); {calls} list-budget HubSpot calls ({:.2} per 1,000 records) over {:.1} s (first to last, at least one window) = {:.1} % of the bound; busiest 10 s window {}; 429s {limited}",
        wall.as_secs_f64(),
        records as f64 / wall.as_secs_f64(),
        per_1k(calls as u64),
        span.as_secs_f64(),
        calls as f64 / span.as_secs_f64().max(1e-9) / BOUND_PER_SEC * 100.0,
        busiest(&times, Duration::from_secs(10)),
    );
    println!(
        "  first 10 s window: {in_first_window} calls = {:.1} % of the bound{}",
        in_first_window as f64 / 110.0 * 100.0,
        if in_first_window == calls {
            format!(
                " — every call the run needed; it finished in {:.1} s",
                wall.as_secs_f64()
            )
        } else {
            String::new()
        }
    );
    println!(
        "  DynamoDB: {:.1} reads and {:.1} writes per 1,000 records (records, checkpoints, reports); ledger {:.1} calls per 1,000 records ({:.1} per 100 HubSpot calls)",
        per_1k(reads),
        per_1k(writes),
        per_1k(ledger_calls),
        ledger_calls as f64 * 100.0 / calls.max(1) as f64,
    );
    sim.shutdown().await;
    Ok(())
}
