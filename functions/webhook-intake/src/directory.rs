//! Which portals are connected: the intake enqueues only their events.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hubsync_hubspot::PortalId;

/// What the intake needs to know of a portal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortalState {
    /// Connected and syncing: enqueue.
    Active,
    /// Connected once, now `needs_reauth` or `disconnected`: count, drop.
    Inactive,
    /// Never connected: count, drop.
    Unknown,
}

#[derive(Debug, thiserror::Error)]
#[error("connection lookup failed: {0}")]
pub struct DirectoryError(pub String);

pub trait PortalDirectory: Send + Sync {
    fn state(
        &self,
        portal: PortalId,
    ) -> impl Future<Output = Result<PortalState, DirectoryError>> + Send;

    /// Notes that events of an active portal were queued at `at_ms` (the
    /// "last webhook" ops see in `hubsync-ops status`). Best effort: a
    /// failure is logged, never turned into a refused delivery, because the
    /// events themselves are already safe on the queue.
    fn webhook_seen(&self, portal: PortalId, at_ms: i64) -> impl Future<Output = ()> + Send;
}

/// Caches `Active` answers for a short time, so a burst of deliveries for
/// one portal costs one DynamoDB read per Lambda instance per `ttl`.
/// Other answers are not cached: a portal that connects (or reconnects)
/// must get its very next delivery queued, not skipped for `ttl` because
/// a delivery came just before the connect.
/// The "last webhook" time is written through at most once per portal per
/// `ttl` as well, so it lags by at most `ttl` and costs one write per
/// portal per instance per `ttl`, however many deliveries arrive.
pub struct CachedDirectory<D> {
    inner: D,
    ttl: Duration,
    cache: Mutex<HashMap<PortalId, (PortalState, Instant)>>,
    seen: Mutex<HashMap<PortalId, Instant>>,
}

impl<D> CachedDirectory<D> {
    pub fn new(inner: D, ttl: Duration) -> Self {
        Self {
            inner,
            ttl,
            cache: Mutex::new(HashMap::new()),
            seen: Mutex::new(HashMap::new()),
        }
    }
}

impl<D: PortalDirectory> PortalDirectory for CachedDirectory<D> {
    async fn state(&self, portal: PortalId) -> Result<PortalState, DirectoryError> {
        let cached = self
            .cache
            .lock()
            .ok()
            .and_then(|c| c.get(&portal).copied())
            .filter(|(_, at)| at.elapsed() < self.ttl);
        if let Some((state, _)) = cached {
            return Ok(state);
        }
        let state = self.inner.state(portal).await?;
        if let Ok(mut c) = self.cache.lock() {
            if state == PortalState::Active {
                c.insert(portal, (state, Instant::now()));
            } else {
                c.remove(&portal);
            }
        }
        Ok(state)
    }

    async fn webhook_seen(&self, portal: PortalId, at_ms: i64) {
        let due = match self.seen.lock() {
            Ok(mut seen) => match seen.get(&portal) {
                Some(at) if at.elapsed() < self.ttl => false,
                _ => {
                    seen.insert(portal, Instant::now());
                    true
                }
            },
            Err(_) => true,
        };
        if due {
            self.inner.webhook_seen(portal, at_ms).await;
        }
    }
}

/// A fixed directory (tests, benchmarks).
#[derive(Debug, Default, Clone)]
pub struct StaticDirectory {
    pub active: Vec<PortalId>,
    pub inactive: Vec<PortalId>,
}

impl PortalDirectory for StaticDirectory {
    async fn state(&self, portal: PortalId) -> Result<PortalState, DirectoryError> {
        Ok(if self.active.contains(&portal) {
            PortalState::Active
        } else if self.inactive.contains(&portal) {
            PortalState::Inactive
        } else {
            PortalState::Unknown
        })
    }

    /// A fixed directory keeps no state: nothing to record.
    async fn webhook_seen(&self, _portal: PortalId, _at_ms: i64) {}
}

/// The connections table as a directory.
pub struct StoreDirectory<S> {
    store: S,
}

impl<S> StoreDirectory<S> {
    pub fn new(store: S) -> Self {
        Self { store }
    }
}

impl<S: hubsync_store::ConnectionStore> PortalDirectory for StoreDirectory<S> {
    async fn state(&self, portal: PortalId) -> Result<PortalState, DirectoryError> {
        use hubsync_store::ConnectionStatus;
        match self.store.get_connection(portal).await {
            Ok(None) => Ok(PortalState::Unknown),
            Ok(Some(c)) if c.status == ConnectionStatus::Active => Ok(PortalState::Active),
            Ok(Some(_)) => Ok(PortalState::Inactive),
            Err(e) => Err(DirectoryError(e.to_string())),
        }
    }

    async fn webhook_seen(&self, portal: PortalId, at_ms: i64) {
        let Some(at) = chrono::DateTime::from_timestamp_millis(at_ms) else {
            tracing::warn!(portal = %portal, at_ms, "last webhook time out of range; not recorded");
            return;
        };
        if let Err(e) = self.store.record_webhook_seen(portal, at).await {
            tracing::warn!(portal = %portal, error = %e, "could not record the last webhook time");
        }
    }
}
