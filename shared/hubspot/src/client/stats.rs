//! What the client counts: calls, 429s, retries, refreshes — in total and
//! per portal.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::Serialize;

use crate::ids::PortalId;

/// A snapshot of the client's counters (since it was built; clones share
/// them). For a per-run figure, subtract an earlier snapshot
/// ([`ClientStats::since`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ClientStats {
    /// HTTP requests sent (every attempt).
    pub requests: u64,
    /// 429 responses seen.
    pub rate_limited: u64,
    /// Retries started (after 429, 5xx, timeout, transport error).
    pub retries: u64,
    /// 5xx responses seen.
    pub server_errors: u64,
    pub timeouts: u64,
    pub transport_errors: u64,
    /// Refreshes triggered by a 401.
    pub token_refreshes: u64,
}

impl ClientStats {
    pub fn since(&self, earlier: &ClientStats) -> ClientStats {
        ClientStats {
            requests: self.requests.saturating_sub(earlier.requests),
            rate_limited: self.rate_limited.saturating_sub(earlier.rate_limited),
            retries: self.retries.saturating_sub(earlier.retries),
            server_errors: self.server_errors.saturating_sub(earlier.server_errors),
            timeouts: self.timeouts.saturating_sub(earlier.timeouts),
            transport_errors: self
                .transport_errors
                .saturating_sub(earlier.transport_errors),
            token_refreshes: self.token_refreshes.saturating_sub(earlier.token_refreshes),
        }
    }
}

#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) requests: AtomicU64,
    pub(super) rate_limited: AtomicU64,
    pub(super) retries: AtomicU64,
    pub(super) server_errors: AtomicU64,
    pub(super) timeouts: AtomicU64,
    pub(super) transport_errors: AtomicU64,
    pub(super) token_refreshes: AtomicU64,
}

impl Counters {
    pub(super) fn snapshot(&self) -> ClientStats {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ClientStats {
            requests: get(&self.requests),
            rate_limited: get(&self.rate_limited),
            retries: get(&self.retries),
            server_errors: get(&self.server_errors),
            timeouts: get(&self.timeouts),
            transport_errors: get(&self.transport_errors),
            token_refreshes: get(&self.token_refreshes),
        }
    }
}

/// Client-wide and per-portal counters.
#[derive(Debug, Default)]
pub(super) struct Stats {
    pub(super) total: Counters,
    pub(super) by_portal: std::sync::Mutex<std::collections::HashMap<PortalId, Arc<Counters>>>,
}

impl Stats {
    pub(super) fn tally(&self, portal: PortalId) -> Tally<'_> {
        let mut map = match self.by_portal.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        Tally {
            total: &self.total,
            portal: map.entry(portal).or_default().clone(),
        }
    }
}

/// Counts one call's events both client-wide and for its portal.
pub(super) struct Tally<'a> {
    total: &'a Counters,
    portal: Arc<Counters>,
}

impl Tally<'_> {
    pub(super) fn bump(&self, field: impl Fn(&Counters) -> &AtomicU64) {
        field(self.total).fetch_add(1, Ordering::Relaxed);
        field(&self.portal).fetch_add(1, Ordering::Relaxed);
    }
}
