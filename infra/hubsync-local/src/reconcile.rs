//! Reconciliation on this machine: the `reconcile` function's engine and
//! job handler, driven against the simulator and either the local stack's
//! DynamoDB (moto) or a [`MemoryStore`], with an in-process job queue that
//! is drained like the SQS event source would (continuations included).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use hubsync_auth::{ConnectionTokens, KmsCipher};
use hubsync_hubspot::{
    ClientConfig, HubSpotClient, InProcessRateLimiter, ObjectType, PortalId, RateLimitConfig,
    RateLimiter, StaticToken, Unlimited,
};
use hubsync_store::{ConnectionStore, DynamoStore, RunReport, SyncJobKind};

pub use ::reconcile::{
    engine, fanout, handler, CrmSource, Engine, EngineConfig, HubSpotSource, JobMessage,
    JobOutcome, MemoryJobQueue, Reconciler, ScheduleEvent, SliceLimit, SliceOutcome, SqsJobQueue,
};
/// What the engine maps with (for callers that save a config and run).
pub use hubsync_mapping::{MappingConfig, Owners, Rule, ScopeFilter, Transform};

use crate::Environment;

/// A started simulator with its first portal connected in a fresh
/// [`MemoryStore`] (an active connection without stored tokens: the
/// engine reads HubSpot with `token`).
pub struct SimPortal {
    pub sim: hubspot_sim::Simulator,
    pub store: hubsync_store::MemoryStore,
    pub portal: u64,
    pub token: String,
}

/// Starts the simulator with `config` and connects its first portal.
pub async fn sim_portal(config: hubspot_sim::SimConfig) -> Result<SimPortal> {
    let sim = hubspot_sim::Simulator::start(config).await?;
    let portal = *sim
        .state()
        .portal_ids()
        .first()
        .context("the simulator has no portal")?;
    let token = sim
        .issue_token(portal)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .access_token;
    let store = hubsync_store::MemoryStore::new();
    store
        .put_connection(&hubsync_store::Connection::active(PortalId(portal), "t"))
        .await?;
    Ok(SimPortal {
        sim,
        store,
        portal,
        token,
    })
}

/// A HubSpot client for the simulator: the full-portal limiter
/// (110 / 10 s by default), or none.
pub fn sim_client(base_url: &str, rate_limit: Option<RateLimitConfig>) -> Result<HubSpotClient> {
    let limiter: Arc<dyn RateLimiter> = match rate_limit {
        Some(config) => Arc::new(InProcessRateLimiter::new(config)),
        None => Arc::new(Unlimited),
    };
    Ok(HubSpotClient::with_rate_limiter(
        ClientConfig::new(base_url),
        limiter,
    )?)
}

/// A source reading the simulator with a fixed token (no refresh).
pub fn sim_source(
    base_url: &str,
    access_token: &str,
    rate_limit: Option<RateLimitConfig>,
) -> Result<HubSpotSource<StaticToken>> {
    Ok(HubSpotSource::new(
        sim_client(base_url, rate_limit)?,
        StaticToken::new(access_token),
    ))
}

/// The reconciler of a local environment: moto's DynamoDB, tokens from
/// the stored (KMS-encrypted) connection, an in-process job queue.
pub type LocalReconciler = Reconciler<
    HubSpotSource<ConnectionTokens<DynamoStore, KmsCipher>>,
    DynamoStore,
    MemoryJobQueue,
>;

/// Builds the reconciler of `env` (sharing its DynamoDB store, so the
/// store's write counter covers both the worker and the reconciliation).
pub fn local_reconciler(
    env: &Environment,
    rate_limit: Option<RateLimitConfig>,
    config: EngineConfig,
) -> Result<LocalReconciler> {
    let store = env.runner.store().clone();
    let tokens = ConnectionTokens::new(
        store.clone(),
        KmsCipher::new(
            aws_sdk_kms::Client::new(&env.aws),
            env.resources.kms_key_id.clone(),
        ),
    );
    let client = sim_client(&env.sim.base_url(), rate_limit)?;
    Ok(Reconciler::new(
        Engine::new(HubSpotSource::new(client, tokens), store, config),
        MemoryJobQueue::new(),
        Duration::from_secs(5),
    ))
}

/// What draining the queue did.
#[derive(Debug, Clone, Default)]
pub struct Drained {
    /// Jobs handled (splits and continuations included).
    pub jobs: usize,
    pub hand_overs: usize,
    pub busy: usize,
    /// Run ids of the slices that ran.
    pub runs: Vec<String>,
}

/// Handles queued jobs until the queue is empty, each within `limit`
/// (the way the SQS event source feeds the function one job at a time).
pub async fn drain<C, S>(
    reconciler: &Reconciler<C, S, MemoryJobQueue>,
    limit: SliceLimit,
) -> Result<Drained>
where
    C: CrmSource,
    S: hubsync_sync::RunStore,
{
    let mut out = Drained::default();
    let mut n = 0u64;
    while let Some(job) = reconciler.queue().pop() {
        n += 1;
        out.jobs += 1;
        let holder = format!("local-{}-{n}", std::process::id());
        match reconciler
            .handle_job(&job, &holder, limit)
            .await
            .with_context(|| format!("sync job for portal {}", job.job.portal_id))?
        {
            JobOutcome::Split { run_id, .. } => out.runs.push(run_id),
            JobOutcome::Slice(slice) => match *slice {
                SliceOutcome::HandedOver(r) => {
                    out.hand_overs += 1;
                    out.runs.push(r.run_id);
                }
                SliceOutcome::Finished(r) | SliceOutcome::Failed(r) => out.runs.push(r.run_id),
                SliceOutcome::Busy => out.busy += 1,
                _ => {}
            },
        }
    }
    out.runs.dedup();
    Ok(out)
}

/// Queues `job`, drains the queue, and returns the run's report.
pub async fn run_job<C, S>(
    reconciler: &Reconciler<C, S, MemoryJobQueue>,
    job: JobMessage,
    limit: SliceLimit,
) -> Result<(RunReport, Drained)>
where
    C: CrmSource,
    S: hubsync_sync::RunStore,
{
    let portal = job.job.portal_id;
    reconciler.queue().enqueue_now(job);
    let drained = drain(reconciler, limit).await?;
    let Some(run_id) = drained.runs.first().cloned() else {
        bail!("the job ran no slice (portal inactive or already done)");
    };
    let report = reconciler
        .engine()
        .store()
        .get_run_report(portal, &run_id)
        .await?
        .with_context(|| format!("no report for run {run_id}"))?;
    Ok((report, drained))
}

/// Takes every message waiting on the environment's sync-jobs queue (the
/// queue the OAuth callback, the admin API and ops put jobs on), deleting
/// them, as the reconcile function's event source would hand them over.
pub async fn take_sync_jobs(env: &Environment) -> Result<Vec<JobMessage>> {
    let sqs = aws_sdk_sqs::Client::new(&env.aws);
    let mut jobs = Vec::new();
    loop {
        let got = sqs
            .receive_message()
            .queue_url(&env.resources.sync_jobs_queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(if jobs.is_empty() { 1 } else { 0 })
            .send()
            .await?;
        if got.messages().is_empty() {
            return Ok(jobs);
        }
        for m in got.messages() {
            jobs.push(
                JobMessage::from_json(m.body().unwrap_or_default())
                    .context("a sync-jobs message that the reconcile function cannot read")?,
            );
            sqs.delete_message()
                .queue_url(&env.resources.sync_jobs_queue_url)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .send()
                .await?;
        }
    }
}

/// A re-sync job of one portal (optionally one type).
pub fn resync_job(portal: u64, object_type: Option<ObjectType>) -> JobMessage {
    JobMessage::new(
        SyncJobKind::Resync,
        PortalId(portal),
        object_type.into_iter().collect(),
    )
}

/// The real-time worker's pieces, for tests that replay webhooks through
/// it next to a reconciliation.
pub mod worker {
    pub use record_upsert::{HubSpotSource, InboundMessage, Worker};
}
