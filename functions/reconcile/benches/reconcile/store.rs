//! The benchmark's stores: a memory store that either keeps nothing (a
//! portal-sized stream in, only the engine's memory shows) or keeps
//! everything, each request optionally delayed like DynamoDB's; and the
//! rate ledger with the same delay.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hubsync_hubspot::{ObjectId, ObjectType, PortalId};
use hubsync_store::{
    ArchiveOutcome, ArchiveReason, Checkpoint, Connection, ConnectionStatus, ConnectionStore,
    DeleteOutcome, Lease, LedgerSwap, MappingConfigStore, MemoryRateLedgers, MemoryStore,
    MetaWithFields, PurgeOutcome, RateLedger, RateLedgerStore, RecordKey, RecordPage, RecordStore,
    RecordWrite, RunReport, StoreError, StoredMeta, StoredRecord, SyncStateStore, TokenStore,
    TypeRunReport, UpsertOutcome,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A request latency: log-normal with the given median and 99th
/// percentile (DynamoDB in-region: about 5 ms and 20 ms).
#[derive(Clone)]
pub struct Latency {
    median_ms: f64,
    sigma: f64,
    rng: Arc<Mutex<ChaCha8Rng>>,
}

impl Latency {
    pub fn new(median_ms: f64, p99_ms: f64) -> Self {
        // ln(p99 / median) = z(0.99) × sigma
        Self {
            median_ms,
            sigma: (p99_ms / median_ms).ln() / 2.326,
            rng: Arc::new(Mutex::new(ChaCha8Rng::seed_from_u64(99))),
        }
    }

    fn draw(&self) -> Duration {
        let (u1, u2): (f64, f64) = {
            let mut rng = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
            (rng.random::<f64>().max(1e-12), rng.random::<f64>())
        };
        // Box–Muller: a standard normal.
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        Duration::from_secs_f64(self.median_ms * (self.sigma * z).exp() / 1000.0)
    }

    pub async fn wait(&self) {
        tokio::time::sleep(self.draw()).await;
    }
}

/// The engine's store (see the module docs). Clones share everything.
#[derive(Clone, Default)]
pub struct BenchStore {
    pub control: MemoryStore,
    pub upserts: Arc<AtomicU64>,
    /// Keep records (else only count them).
    keep: bool,
    latency: Option<Latency>,
}

impl BenchStore {
    /// Keeps no records; no latency.
    pub fn counting() -> Self {
        Self::default()
    }

    /// Keeps everything; every request waits `latency`.
    pub fn latent(latency: Latency) -> Self {
        Self {
            keep: true,
            latency: Some(latency),
            ..Self::default()
        }
    }

    async fn io(&self) {
        if let Some(l) = &self.latency {
            l.wait().await;
        }
    }
}

/// A store keeping everything and rate ledgers, every request of both
/// waiting `latency`; `portal` connected.
pub async fn latent_portal(
    portal: u64,
    latency: &Latency,
) -> anyhow::Result<(BenchStore, LatentLedgers)> {
    let store = BenchStore::latent(latency.clone());
    crate::connect(&store, portal).await?;
    let ledgers = LatentLedgers {
        inner: MemoryRateLedgers::new(),
        latency: latency.clone(),
    };
    Ok((store, ledgers))
}

/// Rate ledgers whose every request waits `latency`.
#[derive(Clone)]
pub struct LatentLedgers {
    pub inner: MemoryRateLedgers,
    pub latency: Latency,
}

impl RateLedgerStore for LatentLedgers {
    async fn get_rate_ledger(
        &self,
        portal: PortalId,
        lane: &str,
    ) -> Result<Option<RateLedger>, StoreError> {
        self.latency.wait().await;
        self.inner.get_rate_ledger(portal, lane).await
    }

    async fn swap_rate_ledger(
        &self,
        portal: PortalId,
        lane: &str,
        ledger: &RateLedger,
    ) -> Result<LedgerSwap, StoreError> {
        self.latency.wait().await;
        self.inner.swap_rate_ledger(portal, lane, ledger).await
    }
}

impl RecordStore for BenchStore {
    async fn get_record_meta(&self, keys: &[RecordKey]) -> Result<Vec<StoredMeta>, StoreError> {
        if !self.keep {
            return Ok(Vec::new());
        }
        self.io().await;
        self.control.get_record_meta(keys).await
    }
    async fn get_record_meta_fields(
        &self,
        keys: &[RecordKey],
        fields: &[String],
    ) -> Result<Vec<MetaWithFields>, StoreError> {
        if !self.keep {
            return Ok(Vec::new());
        }
        self.io().await;
        self.control.get_record_meta_fields(keys, fields).await
    }
    async fn get_record(&self, key: &RecordKey) -> Result<Option<StoredRecord>, StoreError> {
        if !self.keep {
            return Ok(None);
        }
        self.io().await;
        self.control.get_record(key).await
    }
    async fn upsert_record(&self, w: &RecordWrite) -> Result<UpsertOutcome, StoreError> {
        self.upserts.fetch_add(1, Ordering::Relaxed);
        if !self.keep {
            return Ok(UpsertOutcome::Created);
        }
        self.io().await;
        self.control.upsert_record(w).await
    }
    async fn archive_record_mapped(
        &self,
        key: &RecordKey,
        version: i64,
        reason: ArchiveReason,
        merged_into: Option<ObjectId>,
        fingerprint: Option<&str>,
    ) -> Result<ArchiveOutcome, StoreError> {
        if !self.keep {
            return Ok(ArchiveOutcome::NotFound);
        }
        self.io().await;
        self.control
            .archive_record_mapped(key, version, reason, merged_into, fingerprint)
            .await
    }
    async fn privacy_purge(&self, key: &RecordKey, at: i64) -> Result<PurgeOutcome, StoreError> {
        if !self.keep {
            return Ok(PurgeOutcome::TombstoneCreated);
        }
        self.io().await;
        self.control.privacy_purge(key, at).await
    }
    async fn delete_record_permanently(
        &self,
        key: &RecordKey,
    ) -> Result<DeleteOutcome, StoreError> {
        if !self.keep {
            return Ok(DeleteOutcome::NotFound);
        }
        self.io().await;
        self.control.delete_record_permanently(key).await
    }
    async fn record_issues(
        &self,
        p: PortalId,
        t: ObjectType,
        after: Option<ObjectId>,
        limit: u32,
    ) -> Result<hubsync_store::IssuePage, StoreError> {
        if !self.keep {
            return Ok(hubsync_store::IssuePage::default());
        }
        self.io().await;
        self.control.record_issues(p, t, after, limit).await
    }
    async fn scan_page(
        &self,
        p: PortalId,
        t: ObjectType,
        after: Option<ObjectId>,
        limit: u32,
    ) -> Result<RecordPage, StoreError> {
        if !self.keep {
            return Ok(RecordPage {
                records: Vec::new(),
                next_after: None,
            });
        }
        self.io().await;
        self.control.scan_page(p, t, after, limit).await
    }
    async fn scan_page_descending(
        &self,
        p: PortalId,
        t: ObjectType,
        before: Option<ObjectId>,
        limit: u32,
    ) -> Result<RecordPage, StoreError> {
        if !self.keep {
            return Ok(RecordPage {
                records: Vec::new(),
                next_after: None,
            });
        }
        self.io().await;
        self.control.scan_page_descending(p, t, before, limit).await
    }
}

impl ConnectionStore for BenchStore {
    async fn get_connection(&self, p: PortalId) -> Result<Option<Connection>, StoreError> {
        self.io().await;
        self.control.get_connection(p).await
    }
    async fn put_connection(&self, c: &Connection) -> Result<(), StoreError> {
        self.io().await;
        self.control.put_connection(c).await
    }
    async fn set_connection_status(
        &self,
        p: PortalId,
        s: ConnectionStatus,
        r: Option<&str>,
    ) -> Result<(), StoreError> {
        self.io().await;
        self.control.set_connection_status(p, s, r).await
    }
    async fn list_connections(&self) -> Result<Vec<Connection>, StoreError> {
        self.io().await;
        self.control.list_connections().await
    }
    async fn tenant_connections(&self, t: &str) -> Result<Vec<Connection>, StoreError> {
        self.io().await;
        self.control.tenant_connections(t).await
    }
    async fn record_webhook_seen(
        &self,
        p: PortalId,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError> {
        self.io().await;
        self.control.record_webhook_seen(p, at).await
    }
}

impl MappingConfigStore for BenchStore {
    async fn get_mapping_config(
        &self,
        p: PortalId,
    ) -> Result<Option<hubsync_store::StoredMappingConfig>, StoreError> {
        self.io().await;
        self.control.get_mapping_config(p).await
    }
    async fn put_mapping_config(
        &self,
        p: PortalId,
        c: &hubsync_mapping::MappingConfig,
    ) -> Result<u64, StoreError> {
        self.io().await;
        self.control.put_mapping_config(p, c).await
    }
    async fn list_mapping_configs(
        &self,
    ) -> Result<Vec<(PortalId, hubsync_store::StoredMappingConfig)>, StoreError> {
        self.io().await;
        self.control.list_mapping_configs().await
    }
    async fn delete_mapping_config(&self, p: PortalId) -> Result<bool, StoreError> {
        self.io().await;
        self.control.delete_mapping_config(p).await
    }
}

impl hubsync_store::OwnersCacheStore for BenchStore {
    async fn get_owners_cache(
        &self,
        p: PortalId,
    ) -> Result<Option<hubsync_store::CachedOwners>, StoreError> {
        self.io().await;
        self.control.get_owners_cache(p).await
    }
    async fn put_owners_cache(
        &self,
        p: PortalId,
        o: &hubsync_mapping::Owners,
        at: i64,
    ) -> Result<u64, StoreError> {
        self.io().await;
        self.control.put_owners_cache(p, o, at).await
    }
    async fn claim_owners_refresh(
        &self,
        p: PortalId,
        now: i64,
        interval: i64,
    ) -> Result<bool, StoreError> {
        self.io().await;
        self.control.claim_owners_refresh(p, now, interval).await
    }
}

impl hubsync_store::PipelinesCacheStore for BenchStore {
    async fn get_pipelines_cache(
        &self,
        p: PortalId,
    ) -> Result<Option<hubsync_store::CachedPipelines>, StoreError> {
        self.io().await;
        self.control.get_pipelines_cache(p).await
    }
    async fn put_pipelines_cache(
        &self,
        p: PortalId,
        x: &hubsync_mapping::Pipelines,
        at: i64,
    ) -> Result<u64, StoreError> {
        self.io().await;
        self.control.put_pipelines_cache(p, x, at).await
    }
    async fn claim_pipelines_refresh(
        &self,
        p: PortalId,
        now: i64,
        interval: i64,
    ) -> Result<bool, StoreError> {
        self.io().await;
        self.control.claim_pipelines_refresh(p, now, interval).await
    }
}

impl TokenStore for BenchStore {
    async fn swap_tokens(
        &self,
        p: PortalId,
        e: &str,
        u: &hubsync_store::TokenUpdate,
    ) -> Result<hubsync_store::TokenSwap, StoreError> {
        self.io().await;
        self.control.swap_tokens(p, e, u).await
    }
    async fn try_acquire_lease(
        &self,
        n: &str,
        h: &str,
        t: Duration,
    ) -> Result<Option<Lease>, StoreError> {
        self.io().await;
        self.control.try_acquire_lease(n, h, t).await
    }
    async fn release_lease(&self, l: &Lease) -> Result<bool, StoreError> {
        self.io().await;
        self.control.release_lease(l).await
    }
}

impl hubsync_store::RelinkStore for BenchStore {
    async fn add_gone(
        &self,
        p: PortalId,
        t: ObjectType,
        ids: &[ObjectId],
    ) -> Result<(), StoreError> {
        self.io().await;
        self.control.add_gone(p, t, ids).await
    }
    async fn pending_gone(
        &self,
        p: PortalId,
        max_ids: usize,
    ) -> Result<hubsync_store::PendingGone, StoreError> {
        self.io().await;
        self.control.pending_gone(p, max_ids).await
    }
    async fn clear_gone(
        &self,
        p: PortalId,
        done: &hubsync_store::PendingGone,
    ) -> Result<(), StoreError> {
        self.io().await;
        self.control.clear_gone(p, done).await
    }
}

impl hubsync_store::JournalFixStore for BenchStore {
    async fn add_journal_fixes(
        &self,
        p: PortalId,
        t: ObjectType,
        n: u64,
    ) -> Result<(), StoreError> {
        self.io().await;
        self.control.add_journal_fixes(p, t, n).await
    }
    async fn take_journal_fixes(&self, p: PortalId, t: ObjectType) -> Result<u64, StoreError> {
        self.io().await;
        self.control.take_journal_fixes(p, t).await
    }
}

impl hubsync_store::IncidentStore for BenchStore {
    async fn record_incident(
        &self,
        p: PortalId,
        t: ObjectType,
        category: &str,
        message: &str,
        ids: &[ObjectId],
    ) -> Result<(), StoreError> {
        self.io().await;
        self.control
            .record_incident(p, t, category, message, ids)
            .await
    }
    async fn clear_incidents(&self, p: PortalId, t: ObjectType) -> Result<usize, StoreError> {
        self.io().await;
        self.control.clear_incidents(p, t).await
    }
    async fn list_incidents(
        &self,
        p: PortalId,
    ) -> Result<Vec<hubsync_store::Incident>, StoreError> {
        self.io().await;
        self.control.list_incidents(p).await
    }
}

impl SyncStateStore for BenchStore {
    async fn get_checkpoint(
        &self,
        p: PortalId,
        t: ObjectType,
    ) -> Result<Option<Checkpoint>, StoreError> {
        self.io().await;
        self.control.get_checkpoint(p, t).await
    }
    async fn put_checkpoint(&self, c: &Checkpoint) -> Result<bool, StoreError> {
        self.io().await;
        self.control.put_checkpoint(c).await
    }
    async fn put_run_report(&self, r: &TypeRunReport) -> Result<(), StoreError> {
        self.io().await;
        self.control.put_run_report(r).await
    }
    async fn get_run_report(
        &self,
        p: PortalId,
        run_id: &str,
    ) -> Result<Option<RunReport>, StoreError> {
        self.io().await;
        self.control.get_run_report(p, run_id).await
    }
    async fn list_run_reports(&self, p: PortalId, n: usize) -> Result<Vec<RunReport>, StoreError> {
        self.io().await;
        self.control.list_run_reports(p, n).await
    }
}
