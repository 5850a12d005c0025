//! Lambda entry point: wiring only (configuration, SDK clients, handler).
//! One function takes both the schedule event (fan-out) and the SQS
//! sync-job messages (partial batch failures).

use hubsync_runtime::FromEnv;
use hubsync_store::DynamoStore;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use reconcile::settings::Settings;
use reconcile::{Engine, HubSpotSource, Incoming, Reconciler, SqsJobQueue};

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
    let reconciler = Reconciler::new(
        Engine::new(
            HubSpotSource::new(client, tokens),
            store,
            settings.engine.clone(),
        ),
        SqsJobQueue::new(
            aws_sdk_sqs::Client::new(&aws),
            settings.jobs_queue_url.clone(),
        ),
        settings.handover_reserve,
    );
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let (reconciler, sqs, settings) = (&reconciler, &sqs, &settings);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            let (payload, context) = event.into_parts();
            match serde_json::from_value::<Incoming>(payload)? {
                Incoming::Sqs(event) => {
                    let limit = reconciler.limit_for_deadline(context.deadline);
                    let (response, retries) = reconciler
                        .handle_sqs(event, &context.request_id, limit)
                        .await;
                    hubsync_messages::delay_retries(
                        sqs,
                        &settings.jobs_queue_url,
                        settings.retry_backoff,
                        &retries,
                    )
                    .await;
                    Ok::<serde_json::Value, Error>(serde_json::to_value(response)?)
                }
                Incoming::Schedule(schedule) => Ok(serde_json::to_value(
                    reconciler.handle_schedule(&schedule).await?,
                )?),
            }
        },
    ))
    .await
}
