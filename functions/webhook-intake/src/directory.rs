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
}

/// Caches answers for a short time, so a burst of deliveries for one portal
/// costs one DynamoDB read per Lambda instance per `ttl`.
pub struct CachedDirectory<D> {
    inner: D,
    ttl: Duration,
    cache: Mutex<HashMap<PortalId, (PortalState, Instant)>>,
}

impl<D> CachedDirectory<D> {
    pub fn new(inner: D, ttl: Duration) -> Self {
        Self {
            inner,
            ttl,
            cache: Mutex::new(HashMap::new()),
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
            c.insert(portal, (state, Instant::now()));
        }
        Ok(state)
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
}
