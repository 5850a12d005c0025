//! Publishing: stream changes → events → PutEvents, in order, at least
//! once. Entries go ten to a request (PutEvents' limit); entries EventBridge
//! refuses are retried with backoff; a change whose event cannot be
//! published stops the batch there, and its sequence number is reported as
//! the batch's failure, so the stream hands it (and what follows) over
//! again. Nothing is skipped; a retry may repeat events, with the same
//! `event_id`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hubsync_hubspot::PortalId;
use hubsync_store::{ConnectionStore, StoreError};
use serde_json::Value;

use crate::classify::{classify, portal_of};
use crate::events::{OutEvent, SOURCE};
use crate::image::{StreamChange, Table};

/// Most entries in one PutEvents request.
pub const MAX_ENTRIES: usize = 10;

/// Why a PutEvents request failed as a whole.
#[derive(Debug, thiserror::Error)]
#[error("PutEvents failed: {0}")]
pub struct SinkError(pub String);

/// Where events go (EventBridge; memory in tests).
pub trait EventSink: Send + Sync {
    /// Puts ≤ 10 events; per entry, `None` when accepted or the error code
    /// EventBridge gave.
    fn put(
        &self,
        events: &[OutEvent],
    ) -> impl Future<Output = Result<Vec<Option<String>>, SinkError>> + Send;
}

/// An EventBridge bus.
#[derive(Debug, Clone)]
pub struct EventBridgeSink {
    client: aws_sdk_eventbridge::Client,
    bus: String,
}

impl EventBridgeSink {
    pub fn new(client: aws_sdk_eventbridge::Client, bus: impl Into<String>) -> Self {
        Self {
            client,
            bus: bus.into(),
        }
    }
}

impl EventSink for EventBridgeSink {
    async fn put(&self, events: &[OutEvent]) -> Result<Vec<Option<String>>, SinkError> {
        let mut req = self.client.put_events();
        for e in events {
            req = req.entries(
                aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                    .event_bus_name(&self.bus)
                    .source(SOURCE)
                    .detail_type(e.detail_type)
                    .detail(e.detail.to_string())
                    .build(),
            );
        }
        let out = req.send().await.map_err(|e| {
            SinkError(aws_sdk_eventbridge::error::DisplayErrorContext(e).to_string())
        })?;
        Ok(out
            .entries()
            .iter()
            .map(|r| r.error_code().map(str::to_owned))
            .collect())
    }
}

/// Events kept in memory, with injected refusals (tests).
#[derive(Debug, Clone, Default)]
pub struct MemorySink {
    inner: Arc<Mutex<MemoryInner>>,
}

#[derive(Debug, Default)]
struct MemoryInner {
    events: Vec<(String, Value)>,
    refuse_next: usize,
    fail_requests: usize,
}

impl MemorySink {
    pub fn new() -> Self {
        Self::default()
    }

    /// The events accepted so far: (detail-type, detail).
    pub fn events(&self) -> Vec<(String, Value)> {
        self.inner
            .lock()
            .map(|i| i.events.clone())
            .unwrap_or_default()
    }

    /// Refuses the next `n` entries (as EventBridge's per-entry
    /// `InternalFailure`).
    pub fn refuse_entries(&self, n: usize) {
        if let Ok(mut i) = self.inner.lock() {
            i.refuse_next = n;
        }
    }

    /// Fails the next `n` requests as a whole.
    pub fn fail_requests(&self, n: usize) {
        if let Ok(mut i) = self.inner.lock() {
            i.fail_requests = n;
        }
    }
}

impl EventSink for MemorySink {
    async fn put(&self, events: &[OutEvent]) -> Result<Vec<Option<String>>, SinkError> {
        let mut i = self
            .inner
            .lock()
            .map_err(|_| SinkError("poisoned".into()))?;
        if i.fail_requests > 0 {
            i.fail_requests -= 1;
            return Err(SinkError("injected".into()));
        }
        let mut out = Vec::with_capacity(events.len());
        for e in events {
            if i.refuse_next > 0 {
                i.refuse_next -= 1;
                out.push(Some("InternalFailure".to_owned()));
            } else {
                i.events.push((e.detail_type.to_owned(), e.detail.clone()));
                out.push(None);
            }
        }
        Ok(out)
    }
}

/// The tenant of each portal (it never changes: a portal is refused to a
/// second tenant), read once per process from the connection.
pub struct Tenants<S> {
    store: S,
    known: Mutex<HashMap<u64, String>>,
}

impl<S: ConnectionStore> Tenants<S> {
    pub fn new(store: S) -> Self {
        Self {
            store,
            known: Mutex::new(HashMap::new()),
        }
    }

    /// The portal's tenant; `None` when it has no connection.
    pub async fn of(&self, portal: u64) -> Result<Option<String>, StoreError> {
        if let Some(t) = self.known.lock().ok().and_then(|k| k.get(&portal).cloned()) {
            return Ok(Some(t));
        }
        let tenant = self
            .store
            .get_connection(PortalId(portal))
            .await?
            .map(|c| c.tenant_id);
        if let (Some(t), Ok(mut known)) = (&tenant, self.known.lock()) {
            known.insert(portal, t.clone());
        }
        Ok(tenant)
    }
}

/// What publishing a batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Published {
    /// Changes handled (published, or not an event).
    pub handled: usize,
    /// Events accepted by the sink.
    pub events: usize,
    /// The first change not published (report it as the batch failure).
    pub failed_at: Option<String>,
}

/// Publishes the events of stream changes.
pub struct Publisher<K, S> {
    pub sink: K,
    pub tenants: Tenants<S>,
    /// Attempts per entry before the batch stops.
    pub attempts: u32,
    pub backoff: Duration,
}

impl<K: EventSink, S: ConnectionStore> Publisher<K, S> {
    pub fn new(sink: K, store: S) -> Self {
        Self {
            sink,
            tenants: Tenants::new(store),
            attempts: 5,
            backoff: Duration::from_millis(100),
        }
    }

    /// The events of `changes`, in order, up to the first change whose
    /// tenant could not be read (its sequence is returned).
    async fn events(&self, changes: &[StreamChange]) -> (Vec<(usize, OutEvent)>, Option<usize>) {
        let mut out = Vec::new();
        for (i, change) in changes.iter().enumerate() {
            let tenant = match (change.table, portal_of(change)) {
                (Table::Records, Some(portal)) => match self.tenants.of(portal).await {
                    Ok(t) => t,
                    Err(e) => {
                        tracing::warn!(portal, error = %e, "tenant lookup failed; the batch stops here");
                        return (out, Some(i));
                    }
                },
                _ => None,
            };
            if let Some(event) = classify(change, tenant.as_deref()) {
                out.push((i, event));
            }
        }
        (out, None)
    }

    /// Publishes the events of `changes` (one stream batch, in order).
    pub async fn publish(&self, changes: &[StreamChange]) -> Published {
        let (events, stopped) = self.events(changes).await;
        let limit = stopped.unwrap_or(changes.len());
        let mut published = Published::default();
        for chunk in events.chunks(MAX_ENTRIES) {
            match self.put_chunk(chunk).await {
                Ok(n) => published.events += n,
                Err(first_failed) => {
                    published.failed_at = Some(changes[first_failed].sequence.clone());
                    published.handled = first_failed;
                    return published;
                }
            }
        }
        published.handled = limit;
        published.failed_at = stopped.map(|i| changes[i].sequence.clone());
        published
    }

    /// Puts a chunk, retrying refused entries; `Err(index of the first
    /// change not published)` when attempts run out.
    async fn put_chunk(&self, chunk: &[(usize, OutEvent)]) -> Result<usize, usize> {
        let mut pending: Vec<&(usize, OutEvent)> = chunk.iter().collect();
        let mut accepted = 0;
        let mut delay = self.backoff;
        for attempt in 1..=self.attempts.max(1) {
            let batch: Vec<OutEvent> = pending.iter().map(|(_, e)| e.clone()).collect();
            match self.sink.put(&batch).await {
                Ok(results) => {
                    let mut still = Vec::new();
                    for (entry, result) in pending.iter().zip(
                        results
                            .iter()
                            .chain(std::iter::repeat(&Some("Missing".to_owned()))),
                    ) {
                        match result {
                            None => accepted += 1,
                            Some(code) => {
                                tracing::warn!(code = %code, attempt, "EventBridge refused an entry");
                                still.push(*entry);
                            }
                        }
                    }
                    pending = still;
                }
                Err(e) => tracing::warn!(error = %e, attempt, "PutEvents failed"),
            }
            if pending.is_empty() {
                return Ok(accepted);
            }
            if attempt < self.attempts {
                tokio::time::sleep(delay).await;
                delay = delay.saturating_mul(2);
            }
        }
        Err(pending.iter().map(|(i, _)| *i).min().unwrap_or(0))
    }
}
