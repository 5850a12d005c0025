//! The change feed in the local runner: what Lambda's stream event source
//! does for `change-events` — read both tables' DynamoDB streams in order,
//! hand each batch to the same publisher, and on a partial failure read
//! again from the first unpublished change.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use aws_sdk_dynamodbstreams::types::{AttributeValue, Record, ShardIteratorType};
use change_events::image::{ChangeKind, Image, StreamChange, Table};
use change_events::{EventBridgeSink, Publisher};
use hubsync_store::DynamoStore;
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The publisher as the local runner runs it.
pub type LocalPublisher = Publisher<EventBridgeSink, DynamoStore>;

/// DynamoDB JSON of a streams-SDK attribute value.
fn json_of(v: &AttributeValue) -> Value {
    match v {
        AttributeValue::S(s) => json!({ "S": s }),
        AttributeValue::N(n) => json!({ "N": n }),
        AttributeValue::Bool(b) => json!({ "BOOL": b }),
        AttributeValue::Null(b) => json!({ "NULL": b }),
        AttributeValue::B(b) => json!({ "B": hex_of(b.as_ref()) }),
        AttributeValue::Ss(v) => json!({ "SS": v }),
        AttributeValue::Ns(v) => json!({ "NS": v }),
        AttributeValue::Bs(v) => {
            json!({ "BS": v.iter().map(|b| hex_of(b.as_ref())).collect::<Vec<_>>() })
        }
        AttributeValue::L(l) => json!({ "L": l.iter().map(json_of).collect::<Vec<_>>() }),
        AttributeValue::M(m) => {
            json!({ "M": m.iter().map(|(k, v)| (k.clone(), json_of(v))).collect::<serde_json::Map<_, _>>() })
        }
        _ => json!({ "NULL": true }),
    }
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn image(m: Option<&std::collections::HashMap<String, AttributeValue>>) -> Option<Image> {
    m.filter(|m| !m.is_empty())
        .map(|m| m.iter().map(|(k, v)| (k.clone(), json_of(v))).collect())
}

fn change(table: Table, r: &Record) -> Option<StreamChange> {
    let d = r.dynamodb()?;
    Some(StreamChange {
        table,
        kind: ChangeKind::parse(r.event_name()?.as_str())?,
        sequence: d.sequence_number()?.to_owned(),
        at: d
            .approximate_creation_date_time()
            .and_then(|t| chrono::DateTime::from_timestamp(t.secs(), 0))
            .unwrap_or_else(chrono::Utc::now),
        old: image(d.old_image()),
        new: image(d.new_image()),
    })
}

async fn stream_arn(ddb: &aws_sdk_dynamodb::Client, table: &str) -> Result<String> {
    ddb.describe_table()
        .table_name(table)
        .send()
        .await?
        .table()
        .and_then(|t| t.latest_stream_arn())
        .map(str::to_owned)
        .with_context(|| format!("table {table} has no stream"))
}

/// Follows one table's stream until `stop` changes.
async fn follow(
    streams: aws_sdk_dynamodbstreams::Client,
    arn: String,
    table: Table,
    publisher: Arc<LocalPublisher>,
    mut stop: watch::Receiver<bool>,
) {
    // Shard → the next iterator (or where to resume).
    let mut iterators: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut described: Option<std::time::Instant> = None;
    loop {
        if *stop.borrow() {
            return;
        }
        // New shards are rare: look for them every few seconds.
        let due = described.is_none_or(|t| t.elapsed() >= Duration::from_secs(5));
        let description = match due {
            true => streams.describe_stream().stream_arn(&arn).send().await.ok(),
            false => None,
        };
        if let Some(d) = description {
            described = Some(std::time::Instant::now());
            for shard in d
                .stream_description()
                .map(|s| s.shards())
                .unwrap_or_default()
            {
                if let Some(id) = shard.shard_id() {
                    if !iterators.contains_key(id) {
                        let it = streams
                            .get_shard_iterator()
                            .stream_arn(&arn)
                            .shard_id(id)
                            .shard_iterator_type(ShardIteratorType::TrimHorizon)
                            .send()
                            .await
                            .ok()
                            .and_then(|o| o.shard_iterator().map(str::to_owned));
                        iterators.insert(id.to_owned(), it);
                    }
                }
            }
        }
        let mut busy = false;
        for (shard, iterator) in iterators.iter_mut() {
            let Some(it) = iterator.clone() else { continue };
            let got = match streams
                .get_records()
                .shard_iterator(&it)
                .limit(100)
                .send()
                .await
            {
                Ok(g) => g,
                Err(e) => {
                    tracing::warn!(error = %aws_sdk_dynamodbstreams::error::DisplayErrorContext(&e), "stream read failed");
                    continue;
                }
            };
            let changes: Vec<StreamChange> = got
                .records()
                .iter()
                .filter_map(|r| change(table, r))
                .collect();
            busy |= !changes.is_empty();
            let published = publisher.publish(&changes).await;
            *iterator = match published.failed_at {
                // Read again from the first unpublished change.
                Some(seq) => streams
                    .get_shard_iterator()
                    .stream_arn(&arn)
                    .shard_id(shard.as_str())
                    .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
                    .sequence_number(seq)
                    .send()
                    .await
                    .ok()
                    .and_then(|o| o.shard_iterator().map(str::to_owned))
                    .or(Some(it)),
                None => got.next_shard_iterator().map(str::to_owned),
            };
        }
        // Like Lambda's stream poller: right back while there is a backlog.
        let pause = if busy { 10 } else { 250 };
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(pause)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Starts following both tables' streams.
pub async fn start(
    aws: &aws_config::SdkConfig,
    store: &DynamoStore,
    records_table: &str,
    control_table: &str,
    event_bus: &str,
    stop: watch::Receiver<bool>,
) -> Result<Vec<JoinHandle<()>>> {
    let ddb = aws_sdk_dynamodb::Client::new(aws);
    let publisher = Arc::new(Publisher::new(
        EventBridgeSink::new(aws_sdk_eventbridge::Client::new(aws), event_bus),
        store.clone(),
    ));
    let streams = aws_sdk_dynamodbstreams::Client::new(aws);
    let mut tasks = Vec::new();
    for (table, name) in [
        (Table::Records, records_table),
        (Table::Control, control_table),
    ] {
        let arn = stream_arn(&ddb, name).await?;
        tasks.push(tokio::spawn(follow(
            streams.clone(),
            arn,
            table,
            publisher.clone(),
            stop.clone(),
        )));
    }
    Ok(tasks)
}
