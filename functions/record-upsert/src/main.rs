//! Lambda entry point: wiring only (configuration, SDK clients, handler).
// The handler future nests the sync core's generic lookups deeply.
#![recursion_limit = "256"]

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use hubsync_runtime::FromEnv;
use hubsync_store::DynamoStore;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use record_upsert::lambda::{handle_sqs_event, start_deadline};
use record_upsert::{settings::Settings, HubSpotSource, Worker};

#[tokio::main]
async fn main() -> Result<(), Error> {
    hubsync_runtime::init_tracing();
    let settings = Settings::from_env()?;
    let aws = hubsync_runtime::aws_sdk_config().await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), settings.store.clone());
    // Decrypts tokens with KMS and refreshes them (once for all callers).
    let tokens = settings
        .tokens
        .connection_tokens(&aws, store.clone())
        .await?;
    // The portal's HubSpot budget is shared through the Control table.
    let client = settings.hubspot.client(store.clone())?;
    let worker = Worker::new(HubSpotSource::new(client, tokens), store)
        .with_concurrency(settings.concurrency);
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let (worker, sqs, settings) = (&worker, &sqs, &settings);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let deadline = start_deadline(event.context.deadline, settings.deadline_reserve);
        let outcome = handle_sqs_event(worker, event.payload, Some(deadline)).await;
        // Transient failures come back later and later, not at once.
        hubsync_messages::delay_retries(
            sqs,
            &settings.events_queue_url,
            settings.retry_backoff,
            &outcome.retries,
        )
        .await;
        Ok::<SqsBatchResponse, Error>(outcome.response)
    }))
    .await
}
