//! The Lambda face of the worker: `SqsEvent` in, `SqsBatchResponse` out
//! (the event source mapping has `ReportBatchItemFailures`).

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use hubsync_store::{ConnectionStore, RecordStore};

use crate::worker::{InboundMessage, ObjectReader, Worker};

/// Handle one SQS event. A record without a message id cannot be reported
/// as failed individually, so it fails the whole invocation if it fails.
pub async fn handle_sqs_event<R: ObjectReader, S: RecordStore + ConnectionStore>(
    worker: &Worker<R, S>,
    event: SqsEvent,
) -> SqsBatchResponse {
    let messages: Vec<InboundMessage> = event
        .records
        .into_iter()
        .map(|r| InboundMessage {
            message_id: r.message_id.unwrap_or_default(),
            body: r.body.unwrap_or_default(),
        })
        .collect();
    let outcome = worker.process(messages).await;
    tracing::info!(stats = ?outcome.stats, failed = outcome.failed.len(), "batch processed");
    let mut response = SqsBatchResponse::default();
    for id in outcome.failed {
        response.add_failure(id);
    }
    response
}
