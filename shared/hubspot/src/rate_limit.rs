//! Per-portal rate limiting.
//!
//! HubSpot limits each installing account ("portal"): 110 requests per
//! rolling 10 s for public OAuth apps, and about 5 search requests per
//! second. The [`RateLimiter`] trait is what the client calls before every
//! request; [`InProcessRateLimiter`] implements it with an exact sliding
//! window per portal and kind.
//!
//! # Keeping several Lambda instances under the portal limit
//!
//! An in-process limiter only sees its own instance. The deployed worker
//! and reconciliation use `hubsync_ratelimit::SharedRateLimiter`
//! instead: the same trait over a per-portal ledger in the `Control` table
//! (blocks of permits leased with a conditional write, a fair share
//! between the real-time worker and the background reconciliation, 429
//! pauses shared), so a nightly run and a webhook burst together stay under
//! the portal's limit.
//!
//! [`InProcessRateLimiter`] remains for `HUBSYNC_RATE_LIMITER=instance`
//! (no DynamoDB calls): each instance then gets a **per-instance budget =
//! portal limit / maximum concurrency**
//! ([`RateLimitConfig::per_instance_share`]), which keeps the sum of one
//! function's instances under the limit but not the sum over functions. Either way 429s are
//! honoured (`Retry-After`, `policyName`) and reported through
//! [`RateLimiter::on_rate_limited`], so every task pauses for that portal
//! instead of each one finding out on its own — no retry storm.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::error::{HubSpotError, RateLimitPolicy};
use crate::ids::PortalId;

/// Which limit a request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateLimitKind {
    /// CRM objects, owners, associations, properties.
    Standard,
    /// The CRM search endpoints (their own, tighter limit).
    Search,
}

/// Proof that a request may be sent now.
#[derive(Debug, Clone, Copy)]
#[must_use]
pub struct RatePermit {
    /// How long the caller waited for it.
    pub waited: Duration,
}

/// A boxed future, so the trait stays object-safe (`Arc<dyn RateLimiter>`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Decides when a request to a portal may be sent.
pub trait RateLimiter: Send + Sync {
    /// Wait until a request of `kind` to `portal` may be sent.
    fn acquire(
        &self,
        portal: PortalId,
        kind: RateLimitKind,
    ) -> BoxFuture<'_, Result<RatePermit, HubSpotError>>;

    /// HubSpot answered 429: hold every request of `kind` to `portal` for
    /// `pause`. Default: do nothing (the client still waits itself).
    fn on_rate_limited(&self, _portal: PortalId, _kind: RateLimitKind, _pause: Duration) {}
}

/// A window: at most `max_requests` in any `interval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowLimit {
    pub max_requests: u32,
    pub interval: Duration,
}

/// Budgets for [`InProcessRateLimiter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Standard calls. Default 110 / 10 s (a public app's whole portal
    /// limit: set the per-instance share in deployments, see module docs).
    pub standard: WindowLimit,
    /// Search calls. Default 4 / 1 s (HubSpot allows ~5).
    pub search: WindowLimit,
    /// Added to each interval to absorb network-latency differences
    /// between when we send and when HubSpot counts. Default 250 ms.
    pub guard: Duration,
    /// Whether search calls also take a standard slot. Default false:
    /// HubSpot counts search apart from the ten-secondly limit
    /// (`../shared/HUBSPOT-2026.md` §4), as the simulator does; true is
    /// the conservative choice should that change.
    pub search_counts_as_standard: bool,
    /// Longest pause (set by [`RateLimiter::on_rate_limited`]) an `acquire`
    /// sits out; beyond it `acquire` fails at once with a retryable
    /// `RateLimited` error, so a long `Retry-After` cannot park a Lambda
    /// until its timeout. Default 30 s.
    pub max_pause_wait: Duration,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            standard: WindowLimit {
                max_requests: 110,
                interval: Duration::from_secs(10),
            },
            search: WindowLimit {
                max_requests: 4,
                interval: Duration::from_secs(1),
            },
            guard: Duration::from_millis(250),
            search_counts_as_standard: false,
            max_pause_wait: Duration::from_secs(30),
        }
    }
}

impl RateLimitConfig {
    /// The portal limit split evenly across `instances` concurrent
    /// instances (at least 1 request per window each).
    pub fn per_instance_share(self, instances: u32) -> Self {
        let n = instances.max(1);
        let share = |w: WindowLimit| WindowLimit {
            max_requests: (w.max_requests / n).max(1),
            interval: w.interval,
        };
        Self {
            standard: share(self.standard),
            search: share(self.search),
            ..self
        }
    }
}

#[derive(Debug)]
struct Window {
    limit: WindowLimit,
    sent: VecDeque<Instant>,
}

#[derive(Debug)]
struct Lane {
    /// FIFO: tokio's mutex queues waiters fairly, and the holder keeps it
    /// while sleeping for a free slot, so requests go out in arrival order.
    window: tokio::sync::Mutex<Window>,
    /// Set by `on_rate_limited`; readable without queueing behind waiters.
    paused_until: Mutex<Option<Instant>>,
}

impl Lane {
    fn paused_until(&self) -> Option<Instant> {
        match self.paused_until.lock() {
            Ok(g) => *g,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }

    fn pause(&self, until: Instant) {
        let mut g = match self.paused_until.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if g.is_none_or(|cur| cur < until) {
            *g = Some(until);
        }
    }
}

/// Exact sliding-window limiter per (portal, kind), in process memory.
#[derive(Debug, Default)]
pub struct InProcessRateLimiter {
    config: RateLimitConfig,
    lanes: Mutex<HashMap<(PortalId, RateLimitKind), Arc<Lane>>>,
}

impl InProcessRateLimiter {
    pub fn new(config: RateLimitConfig) -> Self {
        Self {
            config,
            lanes: Mutex::new(HashMap::new()),
        }
    }

    pub fn config(&self) -> RateLimitConfig {
        self.config
    }

    fn lane(&self, portal: PortalId, kind: RateLimitKind) -> Arc<Lane> {
        let mut lanes = match self.lanes.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let limit = match kind {
            RateLimitKind::Standard => self.config.standard,
            RateLimitKind::Search => self.config.search,
        };
        let guard = self.config.guard;
        lanes
            .entry((portal, kind))
            .or_insert_with(|| {
                Arc::new(Lane {
                    window: tokio::sync::Mutex::new(Window {
                        limit: WindowLimit {
                            max_requests: limit.max_requests.max(1),
                            interval: limit.interval + guard,
                        },
                        sent: VecDeque::new(),
                    }),
                    paused_until: Mutex::new(None),
                })
            })
            .clone()
    }

    async fn take_slot(&self, lane: &Lane) -> Result<(), HubSpotError> {
        let mut w = lane.window.lock().await;
        loop {
            let now = Instant::now();
            if let Some(until) = lane.paused_until() {
                if until > now {
                    if until - now > self.config.max_pause_wait {
                        return Err(HubSpotError::RateLimited {
                            policy: RateLimitPolicy::Other("LOCAL_PAUSE".to_owned()),
                            retry_after: Some(until - now),
                        });
                    }
                    tokio::time::sleep_until(until).await;
                    continue;
                }
            }
            let interval = w.limit.interval;
            while w.sent.front().is_some_and(|t| *t + interval <= now) {
                w.sent.pop_front();
            }
            if w.sent.len() < w.limit.max_requests as usize {
                w.sent.push_back(now);
                return Ok(());
            }
            match w.sent.front() {
                Some(oldest) => tokio::time::sleep_until(*oldest + interval).await,
                None => return Ok(()),
            }
        }
    }
}

impl RateLimiter for InProcessRateLimiter {
    fn acquire(
        &self,
        portal: PortalId,
        kind: RateLimitKind,
    ) -> BoxFuture<'_, Result<RatePermit, HubSpotError>> {
        Box::pin(async move {
            let start = Instant::now();
            if kind == RateLimitKind::Search {
                self.take_slot(&self.lane(portal, RateLimitKind::Search))
                    .await?;
                if self.config.search_counts_as_standard {
                    self.take_slot(&self.lane(portal, RateLimitKind::Standard))
                        .await?;
                }
            } else {
                self.take_slot(&self.lane(portal, kind)).await?;
            }
            Ok(RatePermit {
                waited: start.elapsed(),
            })
        })
    }

    fn on_rate_limited(&self, portal: PortalId, kind: RateLimitKind, pause: Duration) {
        self.lane(portal, kind).pause(Instant::now() + pause);
    }
}

/// A limiter that never waits (tests, or when the caller limits elsewhere).
#[derive(Debug, Default, Clone, Copy)]
pub struct Unlimited;

impl RateLimiter for Unlimited {
    fn acquire(
        &self,
        _portal: PortalId,
        _kind: RateLimitKind,
    ) -> BoxFuture<'_, Result<RatePermit, HubSpotError>> {
        Box::pin(async {
            Ok(RatePermit {
                waited: Duration::ZERO,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(max: u32, secs: u64) -> InProcessRateLimiter {
        InProcessRateLimiter::new(RateLimitConfig {
            standard: WindowLimit {
                max_requests: max,
                interval: Duration::from_secs(secs),
            },
            search: WindowLimit {
                max_requests: 2,
                interval: Duration::from_secs(1),
            },
            guard: Duration::ZERO,
            search_counts_as_standard: true,
            max_pause_wait: Duration::from_secs(30),
        })
    }

    // All timing below runs on tokio's paused clock: deterministic virtual
    // time, no wall-clock assertions.

    #[tokio::test(start_paused = true)]
    async fn a_full_window_is_granted_at_once_then_the_next_waits_for_it_to_slide() {
        let l = limiter(110, 10);
        let p = PortalId(1);
        let start = Instant::now();
        for _ in 0..110 {
            let _ = l.acquire(p, RateLimitKind::Standard).await.unwrap();
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        let _ = l.acquire(p, RateLimitKind::Standard).await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn no_window_ever_holds_more_than_the_limit() {
        let l = Arc::new(limiter(5, 1));
        let p = PortalId(7);
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..40 {
            let l = l.clone();
            tasks.push(tokio::spawn(async move {
                let _ = l.acquire(p, RateLimitKind::Standard).await.unwrap();
                Instant::now()
            }));
        }
        let mut times = Vec::new();
        for t in tasks {
            times.push(t.await.unwrap() - start);
        }
        times.sort();
        for (i, t) in times.iter().enumerate() {
            let in_window = times[i..]
                .iter()
                .take_while(|u| **u < *t + Duration::from_secs(1))
                .count();
            assert!(
                in_window <= 5,
                "{in_window} grants within 1 s starting at {t:?}"
            );
        }
        // 40 requests at 5/s: the last one goes out after 7 s.
        assert_eq!(*times.last().unwrap(), Duration::from_secs(7));
    }

    #[tokio::test(start_paused = true)]
    async fn portals_do_not_share_a_budget() {
        let l = limiter(2, 10);
        let start = Instant::now();
        for portal in [1, 1, 2, 2, 3, 3] {
            let _ = l
                .acquire(PortalId(portal), RateLimitKind::Standard)
                .await
                .unwrap();
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn search_has_its_own_tighter_window_and_also_takes_a_standard_slot() {
        let l = limiter(100, 10);
        let p = PortalId(1);
        let start = Instant::now();
        for _ in 0..4 {
            let _ = l.acquire(p, RateLimitKind::Search).await.unwrap();
        }
        // 2 per second: the 3rd and 4th wait one second.
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        let lane = l.lane(p, RateLimitKind::Standard);
        assert_eq!(lane.window.lock().await.sent.len(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn by_default_search_leaves_the_standard_budget_alone() {
        let l = InProcessRateLimiter::new(RateLimitConfig::default());
        let p = PortalId(1);
        for _ in 0..4 {
            let _ = l.acquire(p, RateLimitKind::Search).await.unwrap();
        }
        let lane = l.lane(p, RateLimitKind::Standard);
        assert!(lane.window.lock().await.sent.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_pauses_the_portal_for_every_caller() {
        let l = limiter(100, 10);
        let p = PortalId(1);
        let start = Instant::now();
        l.on_rate_limited(p, RateLimitKind::Standard, Duration::from_secs(3));
        let _ = l.acquire(p, RateLimitKind::Standard).await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(3));
        // Other portals are unaffected.
        let before = Instant::now();
        l.on_rate_limited(p, RateLimitKind::Standard, Duration::from_secs(3));
        let _ = l
            .acquire(PortalId(2), RateLimitKind::Standard)
            .await
            .unwrap();
        assert_eq!(before.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_longer_than_max_pause_wait_fails_fast_and_retryably() {
        let l = limiter(100, 10);
        let p = PortalId(1);
        let start = Instant::now();
        l.on_rate_limited(p, RateLimitKind::Standard, Duration::from_secs(3600));
        let err = l.acquire(p, RateLimitKind::Standard).await.unwrap_err();
        assert_eq!(start.elapsed(), Duration::ZERO);
        assert!(err.is_retryable());
        assert!(
            matches!(err, HubSpotError::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(3600))
        );
    }

    #[test]
    fn per_instance_share_divides_the_portal_limit() {
        let c = RateLimitConfig::default().per_instance_share(5);
        assert_eq!(c.standard.max_requests, 22);
        assert_eq!(c.search.max_requests, 1);
        assert_eq!(
            RateLimitConfig::default()
                .per_instance_share(0)
                .standard
                .max_requests,
            110
        );
    }
}
