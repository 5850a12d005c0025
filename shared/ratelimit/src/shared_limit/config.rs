//! Who asks ([`PermitClass`]) and the budgets and tunables every instance
//! shares ([`SharedLimitConfig`]).

use std::time::Duration;

use hubsync_hubspot::{RateLimitKind, WindowLimit};

use super::ledger::LaneParams;

/// Who is asking, for the fair share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PermitClass {
    /// The webhook worker: changes users wait for.
    Realtime,
    /// Reconciliation, initial sync, re-sync.
    Background,
}

impl PermitClass {
    pub(super) fn index(self) -> usize {
        match self {
            PermitClass::Realtime => 0,
            PermitClass::Background => 1,
        }
    }
}

/// Budgets and tunables of [`SharedRateLimiter`]. Every instance of every
/// function must use the same limits and reserves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedLimitConfig {
    /// The portal's whole standard budget. Default 110 / 10 s.
    pub standard: WindowLimit,
    /// The portal's search budget. Default 4 / 1 s.
    pub search: WindowLimit,
    /// Whether a search also takes a standard permit. Default false:
    /// HubSpot counts search apart from the ten-secondly limit.
    pub search_counts_as_standard: bool,
    /// Longest time between a request taking its permit and HubSpot
    /// counting it (sending, DNS, connecting, network). Default 150 ms.
    pub guard: Duration,
    /// Largest error of an instance's clock (Lambda hosts keep time with
    /// the Amazon Time Sync Service, to well under a millisecond).
    /// Default 20 ms.
    pub max_skew: Duration,
    /// How long leased permits may be used. Default 500 ms.
    pub lease_ttl: Duration,
    /// Most permits leased at once (standard lane; search leases 1).
    /// Default 10.
    pub block: u32,
    /// This instance's class.
    pub class: PermitClass,
    /// Standard permits per span kept for an active real-time class.
    /// Default 30 (scaled down for the search lane).
    pub realtime_reserve: u32,
    /// Standard permits per span kept for an active background class.
    /// Default 20.
    pub background_reserve: u32,
    /// Permits a background caller may take at once in the first window
    /// of a run before it paces its blocks. Default 55 (half the limit;
    /// scaled for the search lane).
    pub background_burst: u32,
    /// How long a class counts as active after it last leased or asked.
    /// Default 30 s.
    pub active_hold: Duration,
    /// Longest pause `acquire` sits out; beyond it, it fails at once with
    /// a retryable `RateLimited`. Default 30 s.
    pub max_pause_wait: Duration,
}

impl SharedLimitConfig {
    /// Defaults for a caller of `class`.
    pub fn new(class: PermitClass) -> Self {
        Self {
            standard: WindowLimit {
                max_requests: 110,
                interval: Duration::from_secs(10),
            },
            search: WindowLimit {
                max_requests: 4,
                interval: Duration::from_secs(1),
            },
            search_counts_as_standard: false,
            guard: Duration::from_millis(150),
            max_skew: Duration::from_millis(20),
            lease_ttl: Duration::from_millis(500),
            block: 10,
            class,
            realtime_reserve: 30,
            background_reserve: 20,
            background_burst: 55,
            active_hold: Duration::from_secs(30),
            max_pause_wait: Duration::from_secs(30),
        }
    }

    /// The longest a block counts against others: from its stamp through
    /// a lease left open (see the module docs).
    pub fn span(&self, limit: WindowLimit) -> Duration {
        limit.interval + self.guard + self.lease_ttl + self.max_skew * 2
    }

    pub(super) fn lane(&self, kind: RateLimitKind) -> LaneParams {
        let (limit, block) = match kind {
            RateLimitKind::Standard => (self.standard, self.block),
            RateLimitKind::Search => (self.search, 1),
        };
        let max = limit.max_requests.max(1);
        let scale = |r: u32| -> u32 {
            let scaled =
                u64::from(r) * u64::from(max) / u64::from(self.standard.max_requests.max(1));
            u32::try_from(scaled).unwrap_or(u32::MAX)
        };
        LaneParams {
            limit: max,
            interval_ms: ms(limit.interval),
            skew_ms: ms(self.max_skew),
            guard_ms: ms(self.guard),
            lease_ms: ms(self.lease_ttl),
            hold_ms: ms(self.active_hold),
            block: block.clamp(1, max),
            class: self.class.index(),
            reserves: [scale(self.realtime_reserve), scale(self.background_reserve)],
            background_burst: scale(self.background_burst),
        }
    }
}

pub(super) fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
