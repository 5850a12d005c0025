//! Lambda entry point: wiring only (configuration, SDK clients, the
//! stream handler with partial batch failures).

use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use change_events::image::{from_lambda_item, ChangeKind, StreamChange, Table};
use change_events::{EventBridgeSink, Publisher, Settings};
use hubsync_runtime::FromEnv;
use hubsync_store::DynamoStore;
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    hubsync_runtime::init_tracing();
    let settings = Settings::from_env()?;
    let aws = hubsync_runtime::aws_sdk_config().await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), settings.store.clone());
    let publisher = Publisher::new(
        EventBridgeSink::new(aws_sdk_eventbridge::Client::new(&aws), &settings.event_bus),
        store,
    );
    let records_stream = format!(":table/{}/stream/", settings.store.records_table);
    let (publisher, records_stream) = (&publisher, &records_stream);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| async move {
        let changes: Vec<StreamChange> = event
            .payload
            .records
            .iter()
            .filter_map(|r| {
                let table = match r.event_source_arn.as_deref() {
                    Some(arn) if arn.contains(records_stream.as_str()) => Table::Records,
                    _ => Table::Control,
                };
                let image = |i: &serde_dynamo::Item| (!i.is_empty()).then(|| from_lambda_item(i));
                Some(StreamChange {
                    table,
                    kind: ChangeKind::parse(&r.event_name)?,
                    sequence: r.change.sequence_number.clone()?,
                    at: r.change.approximate_creation_date_time,
                    old: image(&r.change.old_image),
                    new: image(&r.change.new_image),
                })
            })
            .collect();
        let published = publisher.publish(&changes).await;
        tracing::info!(
            changes = changes.len(),
            events = published.events,
            failed = published.failed_at.is_some(),
            "stream batch published"
        );
        let mut response = DynamoDbEventResponse::default();
        if let Some(sequence) = published.failed_at {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = Some(sequence);
            response.batch_item_failures.push(failure);
        }
        Ok::<DynamoDbEventResponse, Error>(response)
    }))
    .await
}
