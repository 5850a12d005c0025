//! Lambda entry point: wiring only (configuration, clients, one reader pass
//! per scheduled invocation).

use std::time::{Duration, Instant, SystemTime};

use hubsync_hubspot::journal::{Journal, JournalClient};
use hubsync_messages::event_sink::SqsSink;
use hubsync_messages::SqsJobQueue;
use hubsync_runtime::FromEnv;
use hubsync_store::DynamoStore;
use journal_reader::{metrics, JournalReader, Settings};
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    hubsync_runtime::init_tracing();
    let settings = Settings::from_env()?;
    let aws = hubsync_runtime::aws_sdk_config().await;
    let oauth = settings.app.oauth_client(&aws).await?;
    let journal = JournalClient::new(&settings.app.hubspot_base_url, oauth);
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), settings.store.clone());
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let sink = SqsSink::new(sqs.clone(), settings.events_queue_url.clone());
    let jobs = SqsJobQueue::new(sqs, settings.sync_jobs_queue_url.clone());
    let reader = JournalReader {
        journal: &journal,
        which: Journal::Global,
        sink: &sink,
        store: &store,
        jobs: &jobs,
        records: &store,
    };
    let (reader, reserve) = (&reader, settings.deadline_reserve);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            let left = event
                .context
                .deadline()
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO);
            let deadline = Instant::now() + left.saturating_sub(reserve);
            let now_ms = chrono::Utc::now().timestamp_millis();
            let result = reader.run(deadline, now_ms).await;
            let report = result.as_ref().cloned().unwrap_or_default();
            metrics::of(&report, result.is_err()).emit();
            let report = result.map_err(|e| {
                tracing::error!(error = %e, "journal pass failed; the next one resumes from the stored cursor");
                Error::from(e.to_string())
            })?;
            tracing::info!(
                files = report.files,
                entries = report.entries,
                queued = report.events_queued,
                uninstalls = report.uninstalls,
                offset_expired = report.offset_expired,
                lag_ms = report.lag_ms,
                caught_up = report.caught_up,
                "journal pass done"
            );
            Ok::<serde_json::Value, Error>(serde_json::json!({
                "files": report.files,
                "eventsQueued": report.events_queued,
                "caughtUp": report.caught_up,
            }))
        },
    ))
    .await
}
