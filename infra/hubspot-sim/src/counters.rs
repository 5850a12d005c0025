//! Counters readable in-process and through `/_sim/counters`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// A snapshot of every counter.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct CounterSnapshot {
    /// Calls by route template (`GET /crm/v3/objects/{type}`), all portals (and unauthenticated).
    pub requests: BTreeMap<String, u64>,
    /// Calls by portal, then route template (authenticated calls only).
    pub requests_by_portal: BTreeMap<u64, BTreeMap<String, u64>>,
    /// 429s served by policy (`TEN_SECONDLY_ROLLING`, `SECONDLY`), including forced ones.
    pub rate_limited: BTreeMap<String, u64>,
    /// 429s served by portal.
    pub rate_limited_by_portal: BTreeMap<u64, u64>,
    /// Calls by API generation: `v1`, `v3`, `v4` (legacy) or a date
    /// version (`2026-03`), CRM and OAuth together.
    pub requests_by_api_version: BTreeMap<String, u64>,
    /// Calls refused because their version is retired.
    pub refused_api_calls: u64,
    /// 403s served for a missing scope.
    pub missing_scope: u64,
    /// 401s served.
    pub auth_failures: u64,
    /// API errors injected by faults (5xx).
    pub injected_errors: u64,
    /// 429s injected by `force_429_next`.
    pub injected_429: u64,
    /// Token-endpoint calls by grant type.
    pub token_calls: BTreeMap<String, u64>,
    /// Token-endpoint faults injected.
    pub token_errors_injected: u64,
    /// Events emitted by mutations.
    pub events_emitted: u64,
    /// Webhook POST attempts made (every attempt).
    pub webhook_requests: u64,
    /// Batches acknowledged with 2xx.
    pub webhook_batches_delivered: u64,
    /// Events in acknowledged batches (duplicates included).
    pub webhook_events_delivered: u64,
    /// Events dropped by the drop fault.
    pub webhook_events_dropped: u64,
    /// Extra copies created by the duplicate fault.
    pub webhook_events_duplicated: u64,
    /// Attempts after the first (retries).
    pub webhook_retries: u64,
    /// Batches given up after the last attempt.
    pub webhook_batches_failed: u64,
    /// Events in batches given up.
    pub webhook_events_failed: u64,
    /// Events emitted while no target URL was configured.
    pub webhook_events_undeliverable: u64,
    /// Webhooks Journal calls by route (subscriptions, reads, file
    /// downloads): outside the portals' CRM budget, so never in
    /// `requests` or `requests_by_portal`.
    pub journal_requests: BTreeMap<String, u64>,
    /// Events the journal recorded (a subscription asked for them).
    pub journal_events_recorded: u64,
}

#[derive(Debug, Default)]
pub struct Counters(Mutex<CounterSnapshot>);

impl Counters {
    pub fn update(&self, f: impl FnOnce(&mut CounterSnapshot)) {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut g);
    }

    pub fn snapshot(&self) -> CounterSnapshot {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn reset(&self) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = CounterSnapshot::default();
    }

    pub fn request(&self, route: &str, portal: Option<u64>) {
        self.update(|c| {
            *c.requests.entry(route.to_string()).or_default() += 1;
            if let Some(p) = portal {
                *c.requests_by_portal
                    .entry(p)
                    .or_default()
                    .entry(route.to_string())
                    .or_default() += 1;
            }
        });
    }

    /// Counts a Webhooks Journal call.
    pub fn journal_request(&self, route: &str) {
        self.update(|c| *c.journal_requests.entry(route.to_owned()).or_default() += 1);
    }

    pub fn rate_limited(&self, policy: &str, portal: u64) {
        self.update(|c| {
            *c.rate_limited.entry(policy.to_string()).or_default() += 1;
            *c.rate_limited_by_portal.entry(portal).or_default() += 1;
        });
    }
}

impl CounterSnapshot {
    /// Calls to the legacy generations (`/crm/v3`, `/crm/v4`, `/oauth/v1`).
    pub fn legacy_requests(&self) -> u64 {
        crate::versions::LEGACY_VERSIONS
            .iter()
            .filter_map(|v| self.requests_by_api_version.get(*v))
            .sum()
    }

    /// Calls of one route template for one portal.
    pub fn portal_requests(&self, portal: u64, route: &str) -> u64 {
        self.requests_by_portal
            .get(&portal)
            .and_then(|m| m.get(route))
            .copied()
            .unwrap_or(0)
    }

    /// All calls of one portal.
    pub fn portal_total(&self, portal: u64) -> u64 {
        self.requests_by_portal
            .get(&portal)
            .map(|m| m.values().sum())
            .unwrap_or(0)
    }
}
