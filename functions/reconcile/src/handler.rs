//! Jobs in, engine slices out: splitting multi-type jobs, queuing
//! continuations, and the Lambda faces (SQS batch with partial failures,
//! schedule event).

use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use hubsync_messages::Retry;
use hubsync_runtime::metrics::Metrics;
use hubsync_store::TypeRunReport;
use serde::Deserialize;

use crate::engine::{new_run_id, now_ms, Engine, EngineError, SliceLimit, SliceOutcome};
use crate::fanout::{fan_out, FanOut, FanOutError, ScheduleEvent};
use hubsync_hubspot::{ObjectType, PortalId};
use hubsync_messages::{kind_name, JobMessage};
use hubsync_messages::{JobQueue, QueueError};
use hubsync_sync::{ContextLoader, CrmSource, RunStore};
use tracing::Instrument;

/// What handling one job did.
#[derive(Debug, Clone, PartialEq)]
pub enum JobOutcome {
    /// A multi-type job became this many single-type jobs (one run).
    Split { run_id: String, jobs: usize },
    /// One slice of one type; a continuation was queued if it handed over.
    Slice(Box<SliceOutcome>),
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("queue: {0}")]
    Queue(#[from] QueueError),
}

/// Either Lambda event the function receives.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Incoming {
    Sqs(SqsEvent),
    Schedule(ScheduleEvent),
}

/// The engine plus the queue that continuations and splits go to.
pub struct Reconciler<C, S, Q> {
    engine: Engine<C, S>,
    queue: Q,
    /// Kept free before the Lambda deadline for the last checkpoint and
    /// the continuation message.
    handover_reserve: Duration,
}

impl<C, S, Q> Reconciler<C, S, Q>
where
    C: CrmSource,
    S: RunStore,
    Q: JobQueue,
{
    pub fn new(engine: Engine<C, S>, queue: Q, handover_reserve: Duration) -> Self {
        Self {
            engine,
            queue,
            handover_reserve,
        }
    }

    pub fn engine(&self) -> &Engine<C, S> {
        &self.engine
    }

    pub fn queue(&self) -> &Q {
        &self.queue
    }

    /// Handle one job within `limit`. A job for several types is split
    /// into one job per type (same run id), so types run in parallel and
    /// each has its own lock and checkpoint.
    pub async fn handle_job(
        &self,
        job: &JobMessage,
        holder: &str,
        limit: SliceLimit,
    ) -> Result<JobOutcome, JobError> {
        let types = job.types();
        let [object_type] = types.as_slice() else {
            let run_id = job
                .run_id
                .clone()
                .unwrap_or_else(|| new_run_id(job.job.kind, now_ms()));
            // Types whose scope follows companies start when the companies
            // of the run have finished (they read which companies sync).
            let later = if types.contains(&ObjectType::Companies) {
                self.followers(job.job.portal_id).await?
            } else {
                Vec::new()
            };
            let jobs: Vec<JobMessage> = types
                .iter()
                .filter(|t| !later.contains(t))
                .map(|t| job.for_type(*t, &run_id, false))
                .collect();
            self.queue.enqueue(&jobs).await?;
            tracing::info!(portal = %job.job.portal_id, run_id = %run_id, jobs = jobs.len(), "sync job split per object type");
            return Ok(JobOutcome::Split {
                run_id,
                jobs: jobs.len(),
            });
        };
        let outcome = self
            .engine
            .run_slice(job, *object_type, holder, limit)
            .await?;
        if let SliceOutcome::Finished(report) = &outcome {
            emit_finished_metrics(report);
            if *object_type == ObjectType::Companies {
                self.start_followers(job, &report.run_id).await?;
            }
        }
        if let SliceOutcome::HandedOver(report) = &outcome {
            // A run still working: the "not finished by the deadline" alarm
            // watches these (and finishes) after the deadline hour.
            Metrics::new(FUNCTION)
                .dimension("Kind", kind_name(report.kind))
                .count("ReconcileHandovers", 1)
                .emit();
            let next = job.for_type(*object_type, &report.run_id, true);
            // The checkpoint is stored: if this fails, the message is
            // retried and resumes from it.
            self.queue.enqueue(std::slice::from_ref(&next)).await?;
        }
        Ok(JobOutcome::Slice(Box::new(outcome)))
    }

    /// The types of the portal whose scope follows companies.
    async fn followers(&self, portal: PortalId) -> Result<Vec<ObjectType>, JobError> {
        let loader = ContextLoader::new(self.engine.source(), self.engine.store());
        let (config, _) = loader.config(portal).await.map_err(JobError::Engine)?;
        Ok(config.company_followers())
    }

    /// After the companies of a run finished: the run's types that follow
    /// them (held back by the split).
    async fn start_followers(&self, job: &JobMessage, run_id: &str) -> Result<(), JobError> {
        if job.run_types.is_empty() {
            return Ok(());
        }
        let followers = self.followers(job.job.portal_id).await?;
        let jobs: Vec<JobMessage> = job
            .run_types
            .iter()
            .filter(|t| followers.contains(t))
            .map(|t| job.for_type(*t, run_id, false))
            .collect();
        if !jobs.is_empty() {
            self.queue.enqueue(&jobs).await?;
            tracing::info!(portal = %job.job.portal_id, run_id = %run_id, jobs = jobs.len(), "companies finished: the types that follow them start");
        }
        Ok(())
    }

    /// The Lambda deadline (epoch ms) as a slice limit.
    pub fn limit_for_deadline(&self, deadline_epoch_ms: u64) -> SliceLimit {
        let remaining = i64::try_from(deadline_epoch_ms)
            .unwrap_or(i64::MAX)
            .saturating_sub(now_ms());
        let remaining = Duration::from_millis(u64::try_from(remaining).unwrap_or(0));
        SliceLimit {
            deadline: Some(Instant::now() + remaining.saturating_sub(self.handover_reserve)),
            max_pages: None,
        }
    }

    /// An SQS batch of jobs (the event source mapping reports batch item
    /// failures). Jobs run one after another within the invocation's time.
    /// A job that failed is returned to back off (`delay_retries`): it is
    /// tried again in minutes, from its checkpoint, not after the queue's
    /// 90-minute visibility timeout.
    pub async fn handle_sqs(
        &self,
        event: SqsEvent,
        request_id: &str,
        limit: SliceLimit,
    ) -> (SqsBatchResponse, Vec<Retry>) {
        let mut response = SqsBatchResponse::default();
        let mut retries = Vec::new();
        for record in event.records {
            let message_id = record.message_id.unwrap_or_default();
            let retry = Retry::of_message(record.receipt_handle.as_deref(), &record.attributes);
            let job = match JobMessage::from_json(record.body.as_deref().unwrap_or_default()) {
                Ok(job) => job,
                Err(e) => {
                    tracing::error!(message_id = %message_id, error = %e, "poisoned message: not a sync job");
                    response.add_failure(message_id);
                    continue;
                }
            };
            let holder = format!("{request_id}/{message_id}");
            let span = tracing::info_span!("sync_job", portal = %job.job.portal_id, kind = kind_name(job.job.kind), message_id = %message_id);
            // Instrumented, not entered: the span must not stay entered
            // across the awaits of other tasks.
            let handled = self
                .handle_job(&job, &holder, limit)
                .instrument(span.clone())
                .await;
            span.in_scope(|| match handled {
                Ok(outcome) => {
                    tracing::info!(outcome = ?outcome_name(&outcome), "sync job handled")
                }
                Err(e) => {
                    tracing::error!(error = %e, "sync job failed; it will be retried from its checkpoint, backed off");
                    response.add_failure(message_id);
                    retries.extend(retry);
                }
            });
        }
        (response, retries)
    }

    /// The schedule: fan out the nightly jobs.
    pub async fn handle_schedule(&self, event: &ScheduleEvent) -> Result<FanOut, FanOutError> {
        fan_out(self.engine.store(), &self.queue, event).await
    }
}

/// The `Function` dimension of the reconciliation's EMF metrics.
pub const FUNCTION: &str = "reconcile";

/// EMF when one (portal, object type) run finishes: `ReconcileRunsFinished`,
/// `ReconcileDrift`, `ReconcileRecords` and `ReconcileDuration` by run kind
/// (`Kind`: nightly, resync, initial) and by kind and object type, and the
/// run's `HubSpotCalls` and `HubSpot429s` by portal. The drift alarm
/// watches the maximum of `ReconcileDrift` for `Kind=nightly` (an initial
/// sync "drifts" by everything it creates).
pub fn emit_finished_metrics(report: &TypeRunReport) {
    let kind = kind_name(report.kind);
    let drift = report.drift;
    let duration_ms = report.duration_ms as f64;
    Metrics::new(FUNCTION)
        .dimension("Kind", kind)
        .count("ReconcileRunsFinished", 1)
        .count("ReconcileDrift", drift)
        .count("ReconcileJournalFixed", report.counters.journal_fixed)
        .count("ReconcileRecords", report.done)
        .millis("ReconcileDuration", duration_ms)
        .emit();
    Metrics::new(FUNCTION)
        .dimension("Kind", kind)
        .dimension("ObjectType", report.object_type.as_api_path())
        .count("ReconcileRunsFinished", 1)
        .count("ReconcileDrift", drift)
        .count("ReconcileRecords", report.done)
        .millis("ReconcileDuration", duration_ms)
        .emit();
    Metrics::new(FUNCTION)
        .dimension("PortalId", report.portal_id)
        .count("HubSpotCalls", report.counters.hubspot_calls)
        .count("HubSpot429s", report.counters.rate_limited)
        .emit();
}

fn outcome_name(outcome: &JobOutcome) -> &'static str {
    let slice = match outcome {
        JobOutcome::Split { .. } => return "split",
        JobOutcome::Slice(s) => s.as_ref(),
    };
    match slice {
        SliceOutcome::Finished(_) => "finished",
        SliceOutcome::HandedOver(_) => "handed_over",
        SliceOutcome::Failed(_) => "failed",
        SliceOutcome::Busy => "joined_active_run",
        SliceOutcome::AlreadyDone { .. } => "already_done",
        SliceOutcome::Inactive => "portal_inactive",
        SliceOutcome::Fenced => "fenced",
    }
}
