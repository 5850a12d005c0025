//! The limit holds for random fleets: several instances of both classes,
//! clocks skewed within the configured bound, slow ledger writes, random
//! arrival patterns and network latency up to the guard — never more than
//! the limit in any of HubSpot's rolling windows, judged by when requests
//! *arrive*. The same harness with the limit set one too high fails, so
//! the check can fail.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::tests::{busiest, Slow};
use super::*;
use hubsync_store::MemoryRateLedgers;

const P: PortalId = PortalId(11);
/// HubSpot's limit the arrivals are judged against.
const HUBSPOT_LIMIT: usize = 110;

/// One random fleet for `seed`, its limiters configured for `limit`:
/// the most arrivals within one of HubSpot's 10 s windows, and how many
/// requests went out.
async fn fleet(seed: u64, limit: u32) -> (usize, usize) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let ledgers = MemoryRateLedgers::new();
    let clock = TokioClock::new(1_700_000_000_000);
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..rng.random_range(1..=4) {
        let class = if rng.random_bool(0.5) {
            PermitClass::Realtime
        } else {
            PermitClass::Background
        };
        let mut config = SharedLimitConfig::new(class);
        config.standard.max_requests = limit;
        config.block = rng.random_range(1..=20);
        let max_skew = ms(config.max_skew);
        let guard = ms(config.guard) as u64;
        let limiter = Arc::new(SharedRateLimiter::with_clock(
            Slow {
                inner: ledgers.clone(),
                delay: Duration::from_millis(rng.random_range(0..=25)),
            },
            config,
            Arc::new(clock.skewed(rng.random_range(-max_skew..=max_skew))),
        ));
        for _ in 0..rng.random_range(1..=6) {
            let limiter = limiter.clone();
            let arrivals = arrivals.clone();
            let mut rng = ChaCha8Rng::seed_from_u64(rng.random());
            let begin = Duration::from_millis(rng.random_range(0..15_000));
            // Eager, steady or sporadic callers.
            let most_gap = [0u64, 60, 900][rng.random_range(0..3)];
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep(begin).await;
                while start.elapsed() < Duration::from_secs(40) {
                    if most_gap > 0 {
                        let gap = rng.random_range(0..=most_gap);
                        tokio::time::sleep(Duration::from_millis(gap)).await;
                    }
                    let _ = limiter.acquire(P, RateLimitKind::Standard).await.unwrap();
                    let latency = Duration::from_millis(rng.random_range(0..=guard));
                    arrivals
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(Instant::now() + latency);
                }
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut times = std::mem::take(&mut *arrivals.lock().unwrap_or_else(PoisonError::into_inner));
    times.sort();
    (busiest(&times, Duration::from_secs(10)), times.len())
}

#[tokio::test(start_paused = true)]
async fn random_fleets_never_exceed_the_limit_in_any_rolling_window() {
    for seed in 0..48 {
        let (most, sent) = fleet(seed, 110).await;
        assert!(
            most <= HUBSPOT_LIMIT,
            "seed {seed}: {most} requests arrived within one 10 s window"
        );
        assert!(sent >= 40, "seed {seed}: only {sent} requests went out");
    }
}

#[tokio::test(start_paused = true)]
async fn the_same_fleets_configured_for_111_are_caught() {
    let mut caught = 0;
    for seed in 0..48 {
        if fleet(seed, 111).await.0 > HUBSPOT_LIMIT {
            caught += 1;
        }
    }
    assert!(caught >= 24, "only {caught} of 48 fleets went over 110");
}
