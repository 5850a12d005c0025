//! A portal's HubSpot budget shared by every Lambda instance of every
//! function: [`SharedRateLimiter`] implements the client's
//! [`RateLimiter`] over a ledger in the Control table
//! ([`hubsync_store::rate_ledger`]).
//!
//! # How it stays under the limit
//!
//! An instance **leases a block of permits** (up to `block`, adapted to how
//! many it used last time) with one conditional write, uses them locally,
//! and drops what is left after `lease_ttl`. The ledger records every
//! block with a stamp that never goes back in time (`max(own clock, last
//! stamp)`); when the instance leases its next block, the same write
//! **closes** the previous one: how many permits it used, and when it used
//! the last (its clock). A block is granted only if, with every block
//! whose requests could share one of HubSpot's rolling windows with it,
//! it stays within the limit (the arithmetic and its proof: `ledger`).
//!
//! An open block reaches `lease_ttl + guard + max_skew` past its stamp; a
//! closed one only `guard + max_skew` past its last use. So a caller that
//! uses its blocks as they come gets `limit / (interval + guard + 2 ×
//! max_skew)`: with the defaults (110 / 10 s, guard 150 ms, skew 20 ms,
//! lease 500 ms) 98 % of HubSpot's rate, with about one DynamoDB write per
//! `block` requests. The worst case, every block open, is one `block` per
//! [`SharedLimitConfig::span`]. The compare-and-swap on the ledger's
//! version means no two instances extend the same state: the limit holds
//! under any race.
//!
//! # Fair share
//!
//! Callers have a [`PermitClass`]: the webhook worker is `Realtime`, the
//! reconciliation `Background`. While a class has been active within
//! `active_hold` (leased, or asked and was refused — the refusal is
//! recorded), the other class may not take the permits that class still
//! has left of its reserve in the current span (`realtime_reserve`,
//! `background_reserve`). Alone, either class gets the whole budget; a
//! webhook burst during a nightly run gets permits as soon as one of the
//! run's blocks slides out, and the run keeps its own reserve.
//!
//! # 429s
//!
//! [`RateLimiter::on_rate_limited`] pauses the portal in this instance at
//! once and writes the pause into the ledger, so every other instance
//! waits too on its next lease.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hubsync_hubspot::error::RateLimitPolicy;
use hubsync_hubspot::rate_limit::BoxFuture;
use hubsync_hubspot::{HubSpotError, PortalId, RateLimitKind, RateLimiter, RatePermit};
use hubsync_store::{LedgerSwap, RateGrant, RateLedger, RateLedgerStore};
use tokio::time::Instant;

mod clock;
mod config;
mod ledger;
pub use clock::{Clock, SystemClock, TokioClock};
use config::ms;
pub use config::{PermitClass, SharedLimitConfig};
use ledger::{decide, Closed, Decision};

fn lane_name(kind: RateLimitKind) -> &'static str {
    match kind {
        RateLimitKind::Standard => "standard",
        RateLimitKind::Search => "search",
    }
}

/// Calls the limiter made, for benchmarks and reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SharedLimiterStats {
    /// Ledger reads and writes.
    pub ledger_calls: u64,
    /// Writes refused because another instance moved the ledger first.
    pub conflicts: u64,
    /// Blocks of permits leased.
    pub leases: u64,
    /// Permits leased.
    pub permits_leased: u64,
    /// Permits handed to requests.
    pub permits_used: u64,
}

#[derive(Debug, Default)]
struct Counters {
    ledger_calls: AtomicU64,
    conflicts: AtomicU64,
    leases: AtomicU64,
    permits_leased: AtomicU64,
    permits_used: AtomicU64,
}

impl Counters {
    fn bump(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
}

#[derive(Debug)]
struct LocalState {
    /// The last ledger seen (`None`: not read yet; assumed empty).
    ledger: Option<RateLedger>,
    permits: u32,
    leased: u32,
    expires: Instant,
    want: u32,
    /// The open block's stamp.
    at_ms: i64,
    /// When each permit of the open block was used (own clock).
    uses: Vec<i64>,
    /// The previous block, to close in the next ledger write.
    closed: Option<Closed>,
}

#[derive(Debug)]
struct Lane {
    /// FIFO: the holder keeps the lock while it leases or waits.
    state: tokio::sync::Mutex<LocalState>,
    paused_until: Mutex<Option<Instant>>,
}

impl Lane {
    fn paused_until(&self) -> Option<Instant> {
        *self
            .paused_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn pause(&self, until: Instant) {
        let mut g = self
            .paused_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if g.is_none_or(|cur| cur < until) {
            *g = Some(until);
        }
    }
}

/// The shared, per-portal limiter (see the module docs).
pub struct SharedRateLimiter<S> {
    store: S,
    config: SharedLimitConfig,
    clock: Arc<dyn Clock>,
    lanes: Mutex<HashMap<(PortalId, RateLimitKind), Arc<Lane>>>,
    counters: Arc<Counters>,
    /// This instance's tag on its grants.
    owner: u64,
}

impl<S> fmt::Debug for SharedRateLimiter<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedRateLimiter")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<S: RateLedgerStore + Clone + 'static> SharedRateLimiter<S> {
    /// A limiter over `store`'s ledgers, stamping with the system clock.
    pub fn new(store: S, config: SharedLimitConfig) -> Self {
        Self::with_clock(store, config, Arc::new(SystemClock))
    }

    /// A limiter stamping with `clock`.
    pub fn with_clock(store: S, config: SharedLimitConfig, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            config,
            clock,
            lanes: Mutex::new(HashMap::new()),
            counters: Arc::new(Counters::default()),
            owner: hubsync_store::unique_tag(),
        }
    }

    pub fn config(&self) -> SharedLimitConfig {
        self.config
    }

    pub fn stats(&self) -> SharedLimiterStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        SharedLimiterStats {
            ledger_calls: get(&c.ledger_calls),
            conflicts: get(&c.conflicts),
            leases: get(&c.leases),
            permits_leased: get(&c.permits_leased),
            permits_used: get(&c.permits_used),
        }
    }

    fn lane(&self, portal: PortalId, kind: RateLimitKind) -> Arc<Lane> {
        let mut lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
        let block = self.config.lane(kind).block;
        lanes
            .entry((portal, kind))
            .or_insert_with(|| {
                Arc::new(Lane {
                    state: tokio::sync::Mutex::new(LocalState {
                        ledger: None,
                        permits: 0,
                        leased: 0,
                        expires: Instant::now(),
                        want: block,
                        at_ms: 0,
                        uses: Vec::new(),
                        closed: None,
                    }),
                    paused_until: Mutex::new(None),
                })
            })
            .clone()
    }

    /// One compare-and-swap of the ledger; a throttled or transient
    /// DynamoDB error is retried a few times (50, 100, 200 ms) before the
    /// request fails (retryably).
    async fn swap(
        &self,
        portal: PortalId,
        kind: RateLimitKind,
        ledger: &RateLedger,
    ) -> Result<LedgerSwap, HubSpotError> {
        let mut backoff = Duration::from_millis(50);
        let out = loop {
            Counters::bump(&self.counters.ledger_calls, 1);
            match self
                .store
                .swap_rate_ledger(portal, lane_name(kind), ledger)
                .await
            {
                Ok(out) => break out,
                Err(e) if e.is_retryable() && backoff <= Duration::from_millis(200) => {
                    tracing::debug!(portal = %portal, error = %e, "rate ledger write failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
                Err(e) => return Err(HubSpotError::RateLimiter(format!("rate ledger: {e}"))),
            }
        };
        if matches!(out, LedgerSwap::Conflict(_)) {
            Counters::bump(&self.counters.conflicts, 1);
        }
        Ok(out)
    }

    /// Ends the open block: the next ledger write records how much of it
    /// was used and when.
    fn close(&self, st: &mut LocalState) {
        st.closed = Some(Closed {
            owner: self.owner,
            at_ms: st.at_ms,
            pieces: ledger::pieces(&st.uses),
        });
        st.leased = 0;
        st.uses.clear();
    }

    async fn take(&self, portal: PortalId, kind: RateLimitKind) -> Result<(), HubSpotError> {
        let lane = self.lane(portal, kind);
        let params = self.config.lane(kind);
        let mut st = lane.state.lock().await;
        let mut slow_leases = 0u32;
        loop {
            let now = Instant::now();
            if let Some(until) = lane.paused_until().filter(|u| *u > now) {
                if until - now > self.config.max_pause_wait {
                    return Err(HubSpotError::RateLimited {
                        policy: RateLimitPolicy::Other("SHARED_PAUSE".to_owned()),
                        retry_after: Some(until - now),
                    });
                }
                tokio::time::sleep_until(until).await;
                continue;
            }
            if st.permits > 0 {
                if now < st.expires {
                    st.permits -= 1;
                    st.uses.push(self.clock.now_ms());
                    Counters::bump(&self.counters.permits_used, 1);
                    return Ok(());
                }
                // Expired with permits left: lease fewer next time.
                st.want = (st.leased - st.permits).max(1);
                st.permits = 0;
                self.close(&mut st);
            } else if st.leased > 0 {
                // Used up in time: lease more next time.
                st.want = st.leased.saturating_mul(2).min(params.block);
                self.close(&mut st);
            }
            let base = st.ledger.clone().unwrap_or_default();
            let now_ms = self.clock.now_ms();
            match decide(
                &params,
                &base,
                now_ms,
                st.want,
                self.owner,
                st.closed.as_ref(),
            ) {
                Decision::Grant { ledger, permits } => {
                    match self.swap(portal, kind, &ledger).await? {
                        LedgerSwap::Swapped => {
                            Counters::bump(&self.counters.leases, 1);
                            Counters::bump(&self.counters.permits_leased, u64::from(permits));
                            st.at_ms = ledger.grants.last().map_or(now_ms, |g| g.at_ms);
                            st.ledger = Some(ledger);
                            st.closed = None;
                            st.leased = permits;
                            st.permits = permits;
                            // Counted from before the write was sent: a
                            // write slower than the lease leaves nothing
                            // usable, and the loop leases again.
                            st.expires = now + self.config.lease_ttl;
                            if Instant::now() >= st.expires {
                                slow_leases += 1;
                                if slow_leases >= 3 {
                                    return Err(HubSpotError::RateLimiter(
                                        "rate ledger writes are slower than the lease".into(),
                                    ));
                                }
                            }
                        }
                        LedgerSwap::Conflict(current) => {
                            st.ledger = Some(current.unwrap_or_default());
                        }
                    }
                }
                Decision::Wait { until_ms, mark } => {
                    if let Some(mark) = mark {
                        match self.swap(portal, kind, &mark).await? {
                            LedgerSwap::Swapped => {
                                st.ledger = Some(mark);
                                st.closed = None;
                            }
                            LedgerSwap::Conflict(current) => {
                                st.ledger = Some(current.unwrap_or_default());
                                continue;
                            }
                        }
                    }
                    let wait = u64::try_from(until_ms - now_ms).unwrap_or(0).max(1);
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                }
                Decision::Paused { until_ms } => {
                    let wait = u64::try_from(until_ms - now_ms).unwrap_or(0);
                    lane.pause(now + Duration::from_millis(wait));
                }
            }
        }
    }
}

impl<S: RateLedgerStore + Clone + 'static> RateLimiter for SharedRateLimiter<S> {
    fn acquire(
        &self,
        portal: PortalId,
        kind: RateLimitKind,
    ) -> BoxFuture<'_, Result<RatePermit, HubSpotError>> {
        Box::pin(async move {
            let start = Instant::now();
            self.take(portal, kind).await?;
            if kind == RateLimitKind::Search && self.config.search_counts_as_standard {
                self.take(portal, RateLimitKind::Standard).await?;
            }
            Ok(RatePermit {
                waited: start.elapsed(),
            })
        })
    }

    fn on_rate_limited(&self, portal: PortalId, kind: RateLimitKind, pause: Duration) {
        self.lane(portal, kind).pause(Instant::now() + pause);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let store = self.store.clone();
        let counters = self.counters.clone();
        let until_ms = self.clock.now_ms().saturating_add(ms(pause));
        runtime.spawn(async move {
            if let Err(e) = share_pause(&store, &counters, portal, kind, until_ms).await {
                tracing::warn!(portal = %portal, error = %e, "429 pause not shared; other instances find out on their own");
            }
        });
    }
}

/// Writes a pause into the ledger (never shortening a longer one).
async fn share_pause<S: RateLedgerStore>(
    store: &S,
    counters: &Counters,
    portal: PortalId,
    kind: RateLimitKind,
    until_ms: i64,
) -> Result<(), hubsync_store::StoreError> {
    let lane = lane_name(kind);
    Counters::bump(&counters.ledger_calls, 1);
    let mut current = store
        .get_rate_ledger(portal, lane)
        .await?
        .unwrap_or_default();
    for _ in 0..8 {
        if current.paused_until_ms >= until_ms {
            return Ok(());
        }
        let mut next = current.clone();
        next.paused_until_ms = until_ms;
        next.version += 1;
        Counters::bump(&counters.ledger_calls, 1);
        match store.swap_rate_ledger(portal, lane, &next).await? {
            LedgerSwap::Swapped => return Ok(()),
            LedgerSwap::Conflict(now) => {
                Counters::bump(&counters.conflicts, 1);
                current = now.unwrap_or_default();
            }
        }
    }
    Err(hubsync_store::StoreError::ConditionFailed {
        operation: "share_pause",
    })
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod property_tests;
