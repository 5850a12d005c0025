//! Where events for the worker go (the intake's accepted webhooks, the
//! journal reader's recovered events): SQS in Lambda, memory in tests.

use std::future::Future;
use std::sync::Mutex;

/// SQS's limit for one message and for one `SendMessageBatch` request.
pub const SQS_MAX_REQUEST_BYTES: usize = 256 * 1024;
/// What one message's attributes (`portalId`) add to SQS's size count, with
/// room to spare: SQS counts attribute names, types and values against the
/// same limit as the body.
pub const MESSAGE_ATTRIBUTE_BYTES: usize = 64;
/// SQS's limit of entries in one `SendMessageBatch` request.
pub const SQS_MAX_BATCH_ENTRIES: usize = 10;

pub use crate::OutboundMessage;

/// The queue did not take every message.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("SQS request failed: {0}")]
    Request(String),
    #[error("SQS refused {failed} of {total} messages (first code: {code})")]
    Partial {
        failed: usize,
        total: usize,
        code: String,
    },
}

/// Sends messages; returns how many requests it took.
pub trait EventSink: Send + Sync {
    fn send(
        &self,
        messages: Vec<OutboundMessage>,
    ) -> impl Future<Output = Result<usize, SinkError>> + Send;
}

/// Group messages into `SendMessageBatch` requests: at most 10 entries and
/// 256 KiB in total each.
pub fn plan_requests(messages: Vec<OutboundMessage>) -> Vec<Vec<OutboundMessage>> {
    let mut requests: Vec<Vec<OutboundMessage>> = Vec::new();
    let mut current: Vec<OutboundMessage> = Vec::new();
    let mut size = 0usize;
    for message in messages {
        let len = message.body.len() + MESSAGE_ATTRIBUTE_BYTES;
        if !current.is_empty()
            && (current.len() == SQS_MAX_BATCH_ENTRIES || size + len > SQS_MAX_REQUEST_BYTES)
        {
            requests.push(std::mem::take(&mut current));
            size = 0;
        }
        size += len;
        current.push(message);
    }
    if !current.is_empty() {
        requests.push(current);
    }
    requests
}

/// The SQS queue of `record-upsert`.
#[derive(Clone)]
pub struct SqsSink {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsSink {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }

    async fn send_request(&self, entries: &[OutboundMessage]) -> Result<Vec<usize>, SinkError> {
        use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
        let mut batch = Vec::with_capacity(entries.len());
        for (i, m) in entries.iter().enumerate() {
            let portal = MessageAttributeValue::builder()
                .data_type("Number")
                .string_value(m.portal.to_string())
                .build()
                .map_err(|e| SinkError::Request(e.to_string()))?;
            batch.push(
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(&m.body)
                    .message_attributes("portalId", portal)
                    .build()
                    .map_err(|e| SinkError::Request(e.to_string()))?,
            );
        }
        let out = self
            .client
            .send_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(batch))
            .send()
            .await
            .map_err(|e| {
                SinkError::Request(aws_sdk_sqs::error::DisplayErrorContext(e).to_string())
            })?;
        let failed: Vec<usize> = out
            .failed()
            .iter()
            .filter_map(|f| f.id().parse().ok())
            .collect();
        if let Some(first) = out.failed().first() {
            tracing::warn!(
                failed = out.failed().len(),
                code = first.code(),
                sender_fault = first.sender_fault(),
                "SQS refused some entries"
            );
        }
        Ok(failed)
    }
}

impl EventSink for SqsSink {
    async fn send(&self, messages: Vec<OutboundMessage>) -> Result<usize, SinkError> {
        let mut requests = 0;
        for entries in plan_requests(messages) {
            requests += 1;
            let failed = self.send_request(&entries).await?;
            if failed.is_empty() {
                continue;
            }
            // Retry the refused entries once; after that HubSpot's retry of
            // the whole delivery takes over (the worker is idempotent).
            let retry: Vec<OutboundMessage> = failed
                .iter()
                .filter_map(|&i| entries.get(i).cloned())
                .collect();
            requests += 1;
            let still = self.send_request(&retry).await?;
            if !still.is_empty() {
                return Err(SinkError::Partial {
                    failed: still.len(),
                    total: entries.len(),
                    code: "retry failed".into(),
                });
            }
        }
        Ok(requests)
    }
}

/// An in-memory sink for tests and benchmarks; can be told to fail.
#[derive(Default)]
pub struct MemorySink {
    pub sent: Mutex<Vec<OutboundMessage>>,
    pub requests: Mutex<usize>,
    pub fail: std::sync::atomic::AtomicBool,
}

impl MemorySink {
    pub fn messages(&self) -> Vec<OutboundMessage> {
        self.sent.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

impl EventSink for MemorySink {
    async fn send(&self, messages: Vec<OutboundMessage>) -> Result<usize, SinkError> {
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(SinkError::Request("injected failure".into()));
        }
        let planned = plan_requests(messages);
        let n = planned.len();
        if let Ok(mut sent) = self.sent.lock() {
            sent.extend(planned.into_iter().flatten());
        }
        if let Ok(mut r) = self.requests.lock() {
            *r += n;
        }
        Ok(n)
    }
}
