//! Reconciliation benchmark (figures printed, not asserted):
//!
//! 1. records/s of a full reconciliation against the simulator with its
//!    rate limit at 110 / 10 s (client limiter at the full portal budget),
//!    as a fraction of the 1,100 records/s bound of 100-record list pages;
//! 2. the same with the rate limit off;
//! 3. HubSpot calls per 1,000 records;
//! 4. DynamoDB writes of a no-change run (in-memory store, same accounting);
//! 5. peak RSS growth of a run at two portal sizes, with a counting store
//!    that keeps no records (so only the engine's memory shows).
//!
//! `cargo bench -p reconcile --bench reconcile`; sizes:
//! `RECONCILE_BENCH_LIMITED` (default 100000), `RECONCILE_BENCH_UNLIMITED`
//! (100000), `RECONCILE_BENCH_MEMORY` (comma list, default 100000,1000000).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hubspot_sim::{SeedSpec, SimConfig, Simulator};
use hubsync_hubspot::{
    ClientConfig, HubSpotClient, InProcessRateLimiter, ObjectId, ObjectType, PortalId,
    RateLimitConfig, RateLimiter, StaticToken, Unlimited,
};
use hubsync_ratelimit::{PermitClass, SharedLimitConfig, SharedRateLimiter};
use hubsync_store::MemoryRateLedgers;
use hubsync_store::{
    ArchiveOutcome, ArchiveReason, Checkpoint, Connection, ConnectionStatus, ConnectionStore,
    DeleteOutcome, Lease, MappingConfigStore, MemoryStore, PurgeOutcome, RecordKey, RecordPage,
    RecordStore, RecordWrite, RunReport, StoreError, StoredMeta, StoredRecord, SyncJobKind,
    SyncStateStore, TokenStore, TypeRunReport, UpsertOutcome,
};
use reconcile::{Engine, EngineConfig, HubSpotSource, JobMessage, SliceLimit, SliceOutcome};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

async fn sim_with(
    companies: usize,
    rate_limited: bool,
) -> anyhow::Result<(Simulator, u64, String)> {
    let mut config = SimConfig::default();
    config.rate_limit.enabled = rate_limited;
    config.initial_seed = SeedSpec {
        companies,
        ..SeedSpec::default()
    };
    let sim = Simulator::start(config).await?;
    let portal = sim.state().portal_ids()[0];
    let token = sim
        .issue_token(portal)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .access_token;
    Ok((sim, portal, token))
}

async fn connect(store: &impl ConnectionStore, portal: u64) -> anyhow::Result<()> {
    let _now = chrono::Utc::now();
    store
        .put_connection(&Connection::active(PortalId(portal), "bench"))
        .await?;
    Ok(())
}

fn source(
    sim: &Simulator,
    token: &str,
    limiter: Arc<dyn RateLimiter>,
) -> anyhow::Result<HubSpotSource<StaticToken>> {
    Ok(HubSpotSource::new(
        HubSpotClient::with_rate_limiter(ClientConfig::new(sim.base_url()), limiter)?,
        StaticToken::new(token),
    ))
}

async fn run<S>(
    engine: &Engine<HubSpotSource<StaticToken>, S>,
    portal: u64,
    kind: SyncJobKind,
) -> anyhow::Result<TypeRunReport>
where
    S: hubsync_sync::RunStore,
{
    let job = JobMessage::new(kind, PortalId(portal), vec![ObjectType::Companies]);
    match engine
        .run_slice(
            &job,
            ObjectType::Companies,
            "bench",
            SliceLimit::unlimited(),
        )
        .await?
    {
        SliceOutcome::Finished(r) => Ok(r),
        other => anyhow::bail!("unexpected outcome {other:?}"),
    }
}

/// A store that keeps no records (a portal-sized stream in, nothing kept):
/// records are counted, everything else is delegated to a memory store.
#[derive(Clone, Default)]
struct CountingStore {
    control: MemoryStore,
    upserts: Arc<AtomicU64>,
}

impl RecordStore for CountingStore {
    async fn get_record_meta(&self, _: &[RecordKey]) -> Result<Vec<StoredMeta>, StoreError> {
        Ok(Vec::new())
    }
    async fn get_record(&self, _: &RecordKey) -> Result<Option<StoredRecord>, StoreError> {
        Ok(None)
    }
    async fn upsert_record(&self, _: &RecordWrite) -> Result<UpsertOutcome, StoreError> {
        self.upserts.fetch_add(1, Ordering::Relaxed);
        Ok(UpsertOutcome::Created)
    }
    async fn archive_record_mapped(
        &self,
        _: &RecordKey,
        _: i64,
        _: ArchiveReason,
        _: Option<ObjectId>,
        _: Option<&str>,
    ) -> Result<ArchiveOutcome, StoreError> {
        Ok(ArchiveOutcome::NotFound)
    }
    async fn privacy_purge(&self, _: &RecordKey, _: i64) -> Result<PurgeOutcome, StoreError> {
        Ok(PurgeOutcome::TombstoneCreated)
    }
    async fn delete_record_permanently(&self, _: &RecordKey) -> Result<DeleteOutcome, StoreError> {
        Ok(DeleteOutcome::NotFound)
    }
    async fn record_issues(
        &self,
        _: PortalId,
        _: ObjectType,
        _: Option<ObjectId>,
        _: u32,
    ) -> Result<hubsync_store::IssuePage, StoreError> {
        Ok(hubsync_store::IssuePage::default())
    }
    async fn scan_page(
        &self,
        _: PortalId,
        _: ObjectType,
        _: Option<ObjectId>,
        _: u32,
    ) -> Result<RecordPage, StoreError> {
        Ok(RecordPage {
            records: Vec::new(),
            next_after: None,
        })
    }
}

impl ConnectionStore for CountingStore {
    async fn get_connection(&self, p: PortalId) -> Result<Option<Connection>, StoreError> {
        self.control.get_connection(p).await
    }
    async fn put_connection(&self, c: &Connection) -> Result<(), StoreError> {
        self.control.put_connection(c).await
    }
    async fn set_connection_status(
        &self,
        p: PortalId,
        s: ConnectionStatus,
        r: Option<&str>,
    ) -> Result<(), StoreError> {
        self.control.set_connection_status(p, s, r).await
    }
    async fn list_connections(&self) -> Result<Vec<Connection>, StoreError> {
        self.control.list_connections().await
    }
    async fn tenant_connections(&self, t: &str) -> Result<Vec<Connection>, StoreError> {
        self.control.tenant_connections(t).await
    }
    async fn record_webhook_seen(
        &self,
        p: PortalId,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError> {
        self.control.record_webhook_seen(p, at).await
    }
}

impl MappingConfigStore for CountingStore {
    async fn get_mapping_config(
        &self,
        p: PortalId,
    ) -> Result<Option<hubsync_store::StoredMappingConfig>, StoreError> {
        self.control.get_mapping_config(p).await
    }
    async fn put_mapping_config(
        &self,
        p: PortalId,
        c: &hubsync_mapping::MappingConfig,
    ) -> Result<u64, StoreError> {
        self.control.put_mapping_config(p, c).await
    }
    async fn list_mapping_configs(
        &self,
    ) -> Result<Vec<(PortalId, hubsync_store::StoredMappingConfig)>, StoreError> {
        self.control.list_mapping_configs().await
    }
    async fn delete_mapping_config(&self, p: PortalId) -> Result<bool, StoreError> {
        self.control.delete_mapping_config(p).await
    }
}

impl hubsync_store::OwnersCacheStore for CountingStore {
    async fn get_owners_cache(
        &self,
        p: PortalId,
    ) -> Result<Option<hubsync_store::CachedOwners>, StoreError> {
        self.control.get_owners_cache(p).await
    }
    async fn put_owners_cache(
        &self,
        p: PortalId,
        o: &hubsync_mapping::Owners,
        at: i64,
    ) -> Result<u64, StoreError> {
        self.control.put_owners_cache(p, o, at).await
    }
    async fn claim_owners_refresh(
        &self,
        p: PortalId,
        now: i64,
        interval: i64,
    ) -> Result<bool, StoreError> {
        self.control.claim_owners_refresh(p, now, interval).await
    }
}

impl hubsync_store::PipelinesCacheStore for CountingStore {
    async fn get_pipelines_cache(
        &self,
        p: PortalId,
    ) -> Result<Option<hubsync_store::CachedPipelines>, StoreError> {
        self.control.get_pipelines_cache(p).await
    }
    async fn put_pipelines_cache(
        &self,
        p: PortalId,
        x: &hubsync_mapping::Pipelines,
        at: i64,
    ) -> Result<u64, StoreError> {
        self.control.put_pipelines_cache(p, x, at).await
    }
    async fn claim_pipelines_refresh(
        &self,
        p: PortalId,
        now: i64,
        interval: i64,
    ) -> Result<bool, StoreError> {
        self.control.claim_pipelines_refresh(p, now, interval).await
    }
}

impl TokenStore for CountingStore {
    async fn swap_tokens(
        &self,
        p: PortalId,
        e: &str,
        u: &hubsync_store::TokenUpdate,
    ) -> Result<hubsync_store::TokenSwap, StoreError> {
        self.control.swap_tokens(p, e, u).await
    }
    async fn try_acquire_lease(
        &self,
        n: &str,
        h: &str,
        t: Duration,
    ) -> Result<Option<Lease>, StoreError> {
        self.control.try_acquire_lease(n, h, t).await
    }
    async fn release_lease(&self, l: &Lease) -> Result<bool, StoreError> {
        self.control.release_lease(l).await
    }
}

impl hubsync_store::IncidentStore for CountingStore {
    async fn record_incident(
        &self,
        p: PortalId,
        t: ObjectType,
        category: &str,
        message: &str,
        ids: &[ObjectId],
    ) -> Result<(), StoreError> {
        self.control
            .record_incident(p, t, category, message, ids)
            .await
    }
    async fn clear_incidents(&self, p: PortalId, t: ObjectType) -> Result<usize, StoreError> {
        self.control.clear_incidents(p, t).await
    }
    async fn list_incidents(
        &self,
        p: PortalId,
    ) -> Result<Vec<hubsync_store::Incident>, StoreError> {
        self.control.list_incidents(p).await
    }
}

impl SyncStateStore for CountingStore {
    async fn get_checkpoint(
        &self,
        p: PortalId,
        t: ObjectType,
    ) -> Result<Option<Checkpoint>, StoreError> {
        self.control.get_checkpoint(p, t).await
    }
    async fn put_checkpoint(&self, c: &Checkpoint) -> Result<bool, StoreError> {
        self.control.put_checkpoint(c).await
    }
    async fn put_run_report(&self, r: &TypeRunReport) -> Result<(), StoreError> {
        self.control.put_run_report(r).await
    }
    async fn get_run_report(
        &self,
        p: PortalId,
        run_id: &str,
    ) -> Result<Option<RunReport>, StoreError> {
        self.control.get_run_report(p, run_id).await
    }
    async fn list_run_reports(&self, p: PortalId, n: usize) -> Result<Vec<RunReport>, StoreError> {
        self.control.list_run_reports(p, n).await
    }
}

fn rate(report: &TypeRunReport, elapsed: Duration) -> f64 {
    report.done as f64 / elapsed.as_secs_f64()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let limited_n = env_usize("RECONCILE_BENCH_LIMITED", 100_000);
    let unlimited_n = env_usize("RECONCILE_BENCH_UNLIMITED", 100_000);
    let memory_sizes: Vec<usize> = std::env::var("RECONCILE_BENCH_MEMORY")
        .unwrap_or_else(|_| "100000,1000000".into())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect();
    let config = EngineConfig {
        estimate_total: false,
        ..EngineConfig::default()
    };

    // 1 + 3: rate-limited throughput against the simulator.
    if limited_n > 0 {
        let (sim, portal, token) = sim_with(limited_n, true).await?;
        let store = MemoryStore::new();
        connect(&store, portal).await?;
        let limiter = Arc::new(InProcessRateLimiter::new(RateLimitConfig::default()));
        let engine = Engine::new(
            source(&sim, &token, limiter)?,
            store.clone(),
            config.clone(),
        );
        let t = Instant::now();
        let r = run(&engine, portal, SyncJobKind::Initial).await?;
        let elapsed = t.elapsed();
        let rps = rate(&r, elapsed);
        println!(
            "rate limit 110/10 s: {} records in {:.1} s = {:.0} records/s = {:.1} % of the 1,100 records/s bound; HubSpot calls {} ({:.2} per 1,000 records), 429s {}",
            r.done,
            elapsed.as_secs_f64(),
            rps,
            rps / 1100.0 * 100.0,
            r.counters.hubspot_calls,
            r.counters.hubspot_calls as f64 * 1000.0 / r.done.max(1) as f64,
            r.counters.rate_limited
        );
        sim.shutdown().await;
    }

    // 1b: the same with the shared per-portal limiter (what the deployed
    // functions use), its ledger in memory, as the background class.
    let shared_n = env_usize("RECONCILE_BENCH_SHARED", limited_n);
    if shared_n > 0 {
        let (sim, portal, token) = sim_with(shared_n, true).await?;
        let store = MemoryStore::new();
        connect(&store, portal).await?;
        let limiter = Arc::new(SharedRateLimiter::new(
            MemoryRateLedgers::new(),
            SharedLimitConfig::new(PermitClass::Background),
        ));
        let engine = Engine::new(
            source(&sim, &token, limiter.clone())?,
            store.clone(),
            config.clone(),
        );
        let t = Instant::now();
        let r = run(&engine, portal, SyncJobKind::Initial).await?;
        let elapsed = t.elapsed();
        let rps = rate(&r, elapsed);
        let s = limiter.stats();
        println!(
            "shared limiter (memory ledger), 110/10 s: {} records in {:.1} s = {:.0} records/s = {:.1} % of the 1,100 records/s bound; 429s {}; ledger calls {} ({:.1} per 100 HubSpot calls), permits leased {} used {}",
            r.done,
            elapsed.as_secs_f64(),
            rps,
            rps / 1100.0 * 100.0,
            r.counters.rate_limited,
            s.ledger_calls,
            s.ledger_calls as f64 * 100.0 / r.counters.hubspot_calls.max(1) as f64,
            s.permits_leased,
            s.permits_used,
        );
        sim.shutdown().await;
    }

    // 2 + 4: limit off, then a no-change rerun.
    if unlimited_n > 0 {
        let (sim, portal, token) = sim_with(unlimited_n, false).await?;
        let store = MemoryStore::new();
        connect(&store, portal).await?;
        let engine = Engine::new(
            source(&sim, &token, Arc::new(Unlimited))?,
            store.clone(),
            config.clone(),
        );
        let t = Instant::now();
        let r = run(&engine, portal, SyncJobKind::Initial).await?;
        let elapsed = t.elapsed();
        println!(
            "rate limit off: {} records in {:.1} s = {:.0} records/s (initial sync: {} created); HubSpot calls {} ({:.2} per 1,000 records)",
            r.done,
            elapsed.as_secs_f64(),
            rate(&r, elapsed),
            r.counters.created,
            r.counters.hubspot_calls,
            r.counters.hubspot_calls as f64 * 1000.0 / r.done.max(1) as f64,
        );
        let writes = store.stats().writes();
        let t = Instant::now();
        let again = run(&engine, portal, SyncJobKind::Nightly).await?;
        let elapsed = t.elapsed();
        let total = store.stats().writes() - writes;
        println!(
            "no-change run: {} records in {:.1} s = {:.0} records/s; record writes {}, drift {}, store writes {} = {} checkpoint/report/lock writes",
            again.done,
            elapsed.as_secs_f64(),
            rate(&again, elapsed),
            again.counters.record_writes,
            again.drift,
            total,
            again.counters.state_writes
        );
        sim.shutdown().await;
    }

    // 5: memory at two sizes (the simulator's own data is resident before
    // the run starts; the growth during the run is the engine's).
    for n in memory_sizes {
        let (sim, portal, token) = sim_with(n, false).await?;
        let store = CountingStore::default();
        connect(&store, portal).await?;
        let engine = Engine::new(
            source(&sim, &token, Arc::new(Unlimited))?,
            store.clone(),
            config.clone(),
        );
        let before = rss_kib();
        let peak = Arc::new(AtomicU64::new(before));
        let done = Arc::new(AtomicBool::new(false));
        let sampler = {
            let (peak, done) = (peak.clone(), done.clone());
            std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    peak.fetch_max(rss_kib(), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        let t = Instant::now();
        let r = run(&engine, portal, SyncJobKind::Initial).await?;
        let elapsed = t.elapsed();
        done.store(true, Ordering::Relaxed);
        let _ = sampler.join();
        println!(
            "memory: {} records ({} written to the counting store) in {:.1} s: RSS before {:.1} MiB, peak growth during the run {:.1} MiB",
            r.done,
            store.upserts.load(Ordering::Relaxed),
            elapsed.as_secs_f64(),
            before as f64 / 1024.0,
            peak.load(Ordering::Relaxed).saturating_sub(before) as f64 / 1024.0
        );
        sim.shutdown().await;
    }
    Ok(())
}
