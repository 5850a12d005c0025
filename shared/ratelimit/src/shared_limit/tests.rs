//! Races, skewed clocks, fair share and 429s on tokio's paused clock.
use super::*;
use hubsync_store::MemoryRateLedgers;

// Everything below runs on tokio's paused clock: virtual time, no
// wall-clock assertions. Instances share one in-memory ledger store
// (atomic compare-and-swap), each with its own cache and clock.

const P: PortalId = PortalId(7);

fn instance(
    ledgers: &MemoryRateLedgers,
    class: PermitClass,
    skew_ms: i64,
) -> Arc<SharedRateLimiter<MemoryRateLedgers>> {
    Arc::new(SharedRateLimiter::with_clock(
        ledgers.clone(),
        SharedLimitConfig::new(class),
        Arc::new(TokioClock::new(1_700_000_000_000).skewed(skew_ms)),
    ))
}

/// Most grants in any window of `window` among sorted `times`.
pub(super) fn busiest(times: &[Instant], window: Duration) -> usize {
    let mut most = 0;
    let mut j = 0;
    for i in 0..times.len() {
        while times[i] - times[j] >= window {
            j += 1;
        }
        most = most.max(i - j + 1);
    }
    most
}

async fn burst(
    limiter: Arc<SharedRateLimiter<MemoryRateLedgers>>,
    tasks: usize,
    each: usize,
) -> Vec<Instant> {
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let l = limiter.clone();
        handles.push(tokio::spawn(async move {
            let mut times = Vec::new();
            for _ in 0..each {
                let _ = l.acquire(P, RateLimitKind::Standard).await.unwrap();
                times.push(Instant::now());
            }
            times
        }));
    }
    let mut times = Vec::new();
    for h in handles {
        times.extend(h.await.unwrap());
    }
    times
}

#[tokio::test(start_paused = true)]
async fn many_acquirers_on_skewed_instances_never_exceed_the_budget_in_any_window() {
    let ledgers = MemoryRateLedgers::new();
    let start = Instant::now();
    let mut runs = Vec::new();
    for (class, skew) in [
        (PermitClass::Realtime, -20),
        (PermitClass::Realtime, 20),
        (PermitClass::Background, 0),
        (PermitClass::Background, -20),
    ] {
        runs.push(tokio::spawn(burst(instance(&ledgers, class, skew), 25, 24)));
    }
    let mut times = Vec::new();
    for r in runs {
        times.extend(r.await.unwrap());
    }
    times.sort();
    assert_eq!(times.len(), 2_400);
    let cfg = SharedLimitConfig::new(PermitClass::Realtime);
    // HubSpot's window plus the latency guard: never more than 110.
    let most = busiest(&times, cfg.standard.interval + cfg.guard);
    assert!(most <= 110, "{most} requests within one window");
    // And the budget is used: 2,400 requests take about 22 spans.
    let spans = (start.elapsed().as_secs_f64() / cfg.span(cfg.standard).as_secs_f64()).ceil();
    assert!(spans <= 24.0, "took {spans} spans");
}

#[tokio::test(start_paused = true)]
async fn one_instance_gets_the_whole_budget_with_one_write_per_block() {
    let ledgers = MemoryRateLedgers::new();
    let l = instance(&ledgers, PermitClass::Realtime, 0);
    let start = Instant::now();
    for _ in 0..110 {
        let _ = l.acquire(P, RateLimitKind::Standard).await.unwrap();
    }
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(l.stats().ledger_calls, 11);
    assert_eq!(l.stats().permits_used, 110);
    let _ = l.acquire(P, RateLimitKind::Standard).await.unwrap();
    // The next block waits for the first to stop counting: its last use
    // (+1 ms: the clock reads whole milliseconds) + interval + guard + 2 ×
    // skew = 10,191 ms — not the 10,670 ms of a block left open.
    assert_eq!(start.elapsed(), Duration::from_millis(10_192));
    let ledger = ledgers
        .get_rate_ledger(P, "standard")
        .await
        .unwrap()
        .unwrap();
    let closed = ledger.grants.iter().filter(|g| g.used_until_ms.is_some());
    assert_eq!(closed.count(), ledger.grants.len() - 1, "{ledger:?}");
}

#[tokio::test(start_paused = true)]
async fn a_background_caller_spreads_its_blocks_over_the_window() {
    let ledgers = MemoryRateLedgers::new();
    let l = instance(&ledgers, PermitClass::Background, 0);
    let start = Instant::now();
    let mut times = Vec::new();
    for _ in 0..220 {
        let _ = l.acquire(P, RateLimitKind::Standard).await.unwrap();
        times.push(start.elapsed());
    }
    // The run's first window starts with a burst of up to 55 (five
    // blocks), then at most a block of 10 per (interval + guard + 2 ×
    // skew) × 10 / 110 = 926 ms: the whole budget within the first 6 s.
    assert_eq!(times[49], Duration::ZERO);
    assert_eq!(times[50], Duration::from_millis(926));
    let first_window = times.iter().filter(|t| **t < Duration::from_secs(10));
    assert_eq!(first_window.count(), 110);
    assert_eq!(times[109], Duration::from_millis(926 * 6));
    let paced = &times[50..];
    for (i, t) in paced.iter().enumerate() {
        let within = paced[i..]
            .iter()
            .take_while(|u| **u - *t < Duration::from_millis(926))
            .count();
        assert!(within <= 10, "{within} permits within 926 ms from {t:?}");
    }
    // The 111th waits for the burst to stop counting, and the pace goes on
    // from there (no second burst): a block per pace, one lease each.
    assert_eq!(times[110], Duration::from_millis(10_192));
    assert_eq!(times[219], Duration::from_millis(10_192 + 10 * 926));
    assert_eq!(l.stats().leases, 22);
}

/// Requests per second over `elapsed`, as a fraction of the limit's rate.
fn utilisation(permits: usize, elapsed: Duration, cfg: &SharedLimitConfig) -> f64 {
    let rate = f64::from(cfg.standard.max_requests) / cfg.standard.interval.as_secs_f64();
    permits as f64 / elapsed.as_secs_f64() / rate
}

#[tokio::test(start_paused = true)]
async fn a_long_run_gets_at_least_97_percent_of_the_limit_even_with_slow_ledger_writes() {
    for (class, write_ms) in [
        (PermitClass::Background, 0),
        (PermitClass::Background, 20),
        (PermitClass::Realtime, 20),
    ] {
        let l = Arc::new(SharedRateLimiter::with_clock(
            Slow {
                inner: MemoryRateLedgers::new(),
                delay: Duration::from_millis(write_ms),
            },
            SharedLimitConfig::new(class),
            Arc::new(TokioClock::new(1_700_000_000_000)),
        ));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let l = l.clone();
            tasks.push(tokio::spawn(async move {
                let mut n = 0;
                while start.elapsed() < Duration::from_secs(300) {
                    let _ = l.acquire(P, RateLimitKind::Standard).await.unwrap();
                    n += 1;
                }
                n
            }));
        }
        let mut n = 0;
        for t in tasks {
            n += t.await.unwrap();
        }
        let u = utilisation(n, start.elapsed(), &l.config());
        assert!(
            u >= 0.97,
            "{class:?} with {write_ms} ms writes: {:.1} % of the limit",
            u * 100.0
        );
        assert!(u <= 1.0, "{:.1} % of the limit", u * 100.0);
    }
}

#[tokio::test(start_paused = true)]
async fn a_429_on_one_instance_pauses_the_others() {
    let ledgers = MemoryRateLedgers::new();
    let a = instance(&ledgers, PermitClass::Realtime, 0);
    let b = instance(&ledgers, PermitClass::Background, 30);
    let _ = a.acquire(P, RateLimitKind::Standard).await.unwrap();
    let start = Instant::now();
    a.on_rate_limited(P, RateLimitKind::Standard, Duration::from_secs(3));
    // Let the spawned ledger write run.
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert_eq!(start.elapsed(), Duration::ZERO);
    let _ = b.acquire(P, RateLimitKind::Standard).await.unwrap();
    let waited = start.elapsed();
    // b's clock is 30 ms ahead of a's: it sees the pause end earlier.
    assert!(
        waited >= Duration::from_millis(2_960) && waited <= Duration::from_secs(3),
        "b waited {waited:?}"
    );
    // Other portals are not paused.
    let before = Instant::now();
    let _ = b
        .acquire(PortalId(8), RateLimitKind::Standard)
        .await
        .unwrap();
    assert_eq!(before.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn a_webhook_burst_during_a_background_run_gets_its_reserve_and_the_run_keeps_going() {
    let ledgers = MemoryRateLedgers::new();
    let background = instance(&ledgers, PermitClass::Background, 0);
    let worker = instance(&ledgers, PermitClass::Realtime, 40);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let run = {
        let (l, stop) = (background.clone(), stop.clone());
        tokio::spawn(async move {
            let mut times = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let _ = l.acquire(P, RateLimitKind::Standard).await.unwrap();
                times.push(Instant::now());
            }
            times
        })
    };
    // The run has the portal to itself for a while.
    tokio::time::sleep(Duration::from_secs(40)).await;
    let burst_start = Instant::now();
    let first = {
        let _ = worker.acquire(P, RateLimitKind::Standard).await.unwrap();
        Instant::now() - burst_start
    };
    let burst_times = burst(worker.clone(), 10, 15).await;
    let burst_end = Instant::now();
    stop.store(true, Ordering::Relaxed);
    let mut run_times = run.await.unwrap();

    let cfg = background.config();
    let span = cfg.span(cfg.standard);
    assert!(
        first <= Duration::from_secs(2),
        "the burst's first request waited {first:?}"
    );
    // 151 real-time requests with a reserve of 30 per span: at most
    // about five spans.
    let burst_len = burst_end - burst_start;
    assert!(burst_len <= span * 6, "the burst took {burst_len:?}");
    // The run kept going during the burst, at least its own reserve.
    let during = run_times
        .iter()
        .filter(|t| **t >= burst_start && **t <= burst_end)
        .count();
    let spans = burst_len.as_secs_f64() / span.as_secs_f64();
    assert!(
        during as f64 >= 20.0 * spans.floor(),
        "the run got {during} permits in {spans:.1} spans of the burst"
    );
    // Before the burst it had the whole budget.
    let alone = run_times.iter().filter(|t| **t < burst_start).count();
    assert!(
        alone >= 3 * 110,
        "alone the run got only {alone} permits in 40 s"
    );
    // Together they never exceeded it.
    run_times.extend(burst_times);
    run_times.sort();
    let most = busiest(&run_times, cfg.standard.interval + cfg.guard);
    assert!(most <= 110, "{most} requests within one window");
}

/// Fails the first `failures` swaps as throttled.
#[derive(Debug, Clone)]
struct Throttling {
    inner: MemoryRateLedgers,
    failures: Arc<AtomicU64>,
}

impl RateLedgerStore for Throttling {
    async fn get_rate_ledger(
        &self,
        portal: PortalId,
        lane: &str,
    ) -> Result<Option<RateLedger>, hubsync_store::StoreError> {
        self.inner.get_rate_ledger(portal, lane).await
    }

    async fn swap_rate_ledger(
        &self,
        portal: PortalId,
        lane: &str,
        ledger: &RateLedger,
    ) -> Result<LedgerSwap, hubsync_store::StoreError> {
        let left = self.failures.load(Ordering::Relaxed);
        if left > 0 {
            self.failures.store(left - 1, Ordering::Relaxed);
            return Err(hubsync_store::StoreError::Throttled {
                operation: "PutItem",
                source: None,
            });
        }
        self.inner.swap_rate_ledger(portal, lane, ledger).await
    }
}

#[tokio::test(start_paused = true)]
async fn a_throttled_ledger_write_is_retried_then_fails_retryably() {
    let store = Throttling {
        inner: MemoryRateLedgers::new(),
        failures: Arc::new(AtomicU64::new(2)),
    };
    let l = SharedRateLimiter::with_clock(
        store.clone(),
        SharedLimitConfig::new(PermitClass::Realtime),
        Arc::new(TokioClock::new(1_700_000_000_000)),
    );
    let start = Instant::now();
    let _ = l.acquire(P, RateLimitKind::Standard).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_millis(150));
    assert_eq!(l.stats().ledger_calls, 3);
    // Four failures in a row: the request fails, and may be retried.
    store.failures.store(4, Ordering::Relaxed);
    let err = l
        .acquire(PortalId(8), RateLimitKind::Standard)
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert!(matches!(err, HubSpotError::RateLimiter(_)));
}

/// Every swap takes `delay`.
#[derive(Debug, Clone)]
pub(super) struct Slow {
    pub(super) inner: MemoryRateLedgers,
    pub(super) delay: Duration,
}

impl RateLedgerStore for Slow {
    async fn get_rate_ledger(
        &self,
        portal: PortalId,
        lane: &str,
    ) -> Result<Option<RateLedger>, hubsync_store::StoreError> {
        self.inner.get_rate_ledger(portal, lane).await
    }

    async fn swap_rate_ledger(
        &self,
        portal: PortalId,
        lane: &str,
        ledger: &RateLedger,
    ) -> Result<LedgerSwap, hubsync_store::StoreError> {
        tokio::time::sleep(self.delay).await;
        self.inner.swap_rate_ledger(portal, lane, ledger).await
    }
}

#[tokio::test(start_paused = true)]
async fn permits_that_arrive_after_their_lease_are_never_used() {
    let slow = |ms| {
        SharedRateLimiter::with_clock(
            Slow {
                inner: MemoryRateLedgers::new(),
                delay: Duration::from_millis(ms),
            },
            SharedLimitConfig::new(PermitClass::Realtime),
            Arc::new(TokioClock::new(1_700_000_000_000)),
        )
    };
    // A write slower than the 500 ms lease: nothing is used, and after
    // three tries the request fails (retryably) instead of looping.
    let l = slow(600);
    let err = l.acquire(P, RateLimitKind::Standard).await.unwrap_err();
    assert!(err.is_retryable());
    assert_eq!(l.stats().leases, 3);
    assert_eq!(l.stats().permits_used, 0);
    // A slow but timely write is fine.
    let l = slow(300);
    let _ = l.acquire(P, RateLimitKind::Standard).await.unwrap();
    assert_eq!(l.stats().permits_used, 1);
}

#[test]
fn a_background_caller_leaves_the_reserve_of_an_active_realtime_class() {
    let p = SharedLimitConfig::new(PermitClass::Background).lane(RateLimitKind::Standard);
    let now = 1_000_000;
    let ledger = RateLedger {
        version: 4,
        grants: vec![RateGrant {
            at_ms: now - 8_000,
            permits: 75,
            class: 1,
            ..RateGrant::default()
        }],
        paused_until_ms: 0,
        // The real-time class asked 5 s ago.
        seen_ms: vec![now - 5_000, now - 1_000],
        ..RateLedger::default()
    };
    // 110 - 75 - 30 (reserve) = 5 left for the background.
    match decide(&p, &ledger, now, 10, 1, None) {
        Decision::Grant { ledger, permits } => {
            assert_eq!(permits, 5);
            assert_eq!(ledger.version, 5);
        }
        other => panic!("{other:?}"),
    }
    // Real-time asks are not held back by the background's reserve
    // once the background used it.
    let rt = SharedLimitConfig::new(PermitClass::Realtime).lane(RateLimitKind::Standard);
    assert!(matches!(
        decide(&rt, &ledger, now, 10, 1, None),
        Decision::Grant { permits: 10, .. }
    ));
    // Once the real-time class is idle past its hold, the background
    // gets everything.
    let later = now + 30_001;
    let mut idle = ledger.clone();
    idle.grants[0].at_ms = later - 8_000;
    assert!(matches!(
        decide(&p, &idle, later, 10, 1, None),
        Decision::Grant { permits: 10, .. }
    ));
}

#[test]
fn a_ledger_stamped_far_ahead_by_a_broken_clock_is_restarted_not_waited_for() {
    let p = SharedLimitConfig::new(PermitClass::Realtime).lane(RateLimitKind::Standard);
    let now = 1_000_000;
    let ledger = RateLedger {
        version: 9,
        grants: vec![RateGrant {
            at_ms: now + 3_600_000,
            permits: 110,
            class: 1,
            ..RateGrant::default()
        }],
        paused_until_ms: 0,
        seen_ms: vec![0, now + 3_600_000],
        ..RateLedger::default()
    };
    match decide(&p, &ledger, now, 10, 1, None) {
        Decision::Grant { ledger, permits } => {
            assert_eq!(permits, 10);
            assert_eq!(ledger.grants.len(), 1);
            assert_eq!(ledger.grants[0].at_ms, now);
        }
        other => panic!("{other:?}"),
    }
}

/// Callers that use their permits over a while (a page's store work
/// between requests): a block counts in pieces, each only to its own last
/// use, so they too get ≥ 97 %.
#[tokio::test(start_paused = true)]
async fn callers_that_use_permits_slowly_still_get_97_percent() {
    for (instances, work_ms) in [(3u64, 40u64), (3, 165), (1, 165)] {
        let ledgers = MemoryRateLedgers::new();
        let start = Instant::now();
        let mut tasks = Vec::new();
        for i in 0..instances {
            let l = Arc::new(SharedRateLimiter::with_clock(
                Slow {
                    inner: ledgers.clone(),
                    delay: Duration::from_millis(7),
                },
                SharedLimitConfig::new(PermitClass::Background),
                Arc::new(TokioClock::new(1_700_000_000_000)),
            ));
            for j in 0..4 - instances {
                let l = l.clone();
                tasks.push(tokio::spawn(async move {
                    let (mut n, mut k) = (0usize, i + j);
                    while start.elapsed() < Duration::from_secs(120) {
                        let _ = l.acquire(P, RateLimitKind::Standard).await.unwrap();
                        n += 1;
                        k = (k * 7 + 3) % 11;
                        let work = work_ms / 4 + k * work_ms / 7;
                        tokio::time::sleep(Duration::from_millis(work)).await;
                    }
                    n
                }));
            }
        }
        let mut n = 0;
        for t in tasks {
            n += t.await.unwrap();
        }
        let u = utilisation(
            n,
            start.elapsed(),
            &SharedLimitConfig::new(PermitClass::Background),
        );
        assert!(
            u >= 0.97,
            "{instances} instances, {work_ms} ms work: {:.1} %",
            u * 100.0
        );
    }
}

#[test]
fn a_closed_block_is_cut_where_its_uses_are_furthest_apart() {
    assert_eq!(ledger::pieces(&[]), vec![]);
    assert_eq!(ledger::pieces(&[5, 5, 5]), vec![(3, 6)]);
    assert_eq!(
        ledger::pieces(&[0, 1, 2, 300, 301, 900]),
        vec![(3, 3), (2, 302), (1, 901)]
    );
    // Closing replaces the open block with its pieces, used permits only.
    let p = SharedLimitConfig::new(PermitClass::Realtime).lane(RateLimitKind::Standard);
    let ledger = RateLedger {
        version: 3,
        grants: vec![RateGrant {
            at_ms: 1_000,
            permits: 10,
            class: 0,
            owner: 9,
            used_until_ms: None,
        }],
        seen_ms: vec![1_000, 0],
        ..RateLedger::default()
    };
    let closed = ledger::Closed {
        owner: 9,
        at_ms: 1_000,
        pieces: ledger::pieces(&[1_000, 1_001, 1_400]),
    };
    match decide(&p, &ledger, 1_500, 10, 9, Some(&closed)) {
        Decision::Grant { ledger, permits } => {
            assert_eq!(permits, 10);
            let used: Vec<(u32, Option<i64>)> = ledger
                .grants
                .iter()
                .map(|g| (g.permits, g.used_until_ms))
                .collect();
            assert_eq!(used, vec![(2, Some(1_002)), (1, Some(1_401)), (10, None)]);
        }
        other => panic!("{other:?}"),
    }
}
