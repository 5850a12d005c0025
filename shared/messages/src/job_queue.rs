//! The sync-jobs queue from the producer side — the OAuth callback's
//! initial sync, ops' and the application's re-syncs, the nightly fan-out,
//! per-type splits and continuations — through one [`JobQueue`].

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use crate::jobs::JobMessage;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;

/// Why jobs could not be queued (the caller fails, and is retried).
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("SQS SendMessageBatch failed")]
    Sqs(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("SQS refused {failed} of {sent} messages")]
    Partial { failed: usize, sent: usize },
    #[error("job could not be encoded")]
    Encode(#[from] serde_json::Error),
}

/// Puts sync jobs on the queue.
pub trait JobQueue: Send + Sync {
    fn enqueue(&self, jobs: &[JobMessage]) -> impl Future<Output = Result<(), QueueError>> + Send;
}

/// The SQS queue (10 messages per `SendMessageBatch`).
#[derive(Debug, Clone)]
pub struct SqsJobQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsJobQueue {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }

    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }
}

impl JobQueue for SqsJobQueue {
    async fn enqueue(&self, jobs: &[JobMessage]) -> Result<(), QueueError> {
        for chunk in jobs.chunks(10) {
            let mut entries = Vec::with_capacity(chunk.len());
            for (i, job) in chunk.iter().enumerate() {
                let entry = SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(job.to_json()?)
                    .build()
                    .map_err(|e| QueueError::Sqs(Box::new(e)))?;
                entries.push(entry);
            }
            let out = self
                .client
                .send_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| QueueError::Sqs(Box::new(e)))?;
            if !out.failed().is_empty() {
                return Err(QueueError::Partial {
                    failed: out.failed().len(),
                    sent: chunk.len(),
                });
            }
        }
        Ok(())
    }
}

/// An in-process queue (local runs and tests). Clones share the jobs.
#[derive(Debug, Clone, Default)]
pub struct MemoryJobQueue(Arc<Mutex<VecDeque<JobMessage>>>);

impl MemoryJobQueue {
    pub fn new() -> Self {
        Self::default()
    }

    /// The oldest job, if any.
    pub fn pop(&self) -> Option<JobMessage> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front()
    }

    /// Adds a job at the end.
    pub fn enqueue_now(&self, job: JobMessage) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_back(job);
    }

    pub fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl JobQueue for MemoryJobQueue {
    async fn enqueue(&self, jobs: &[JobMessage]) -> Result<(), QueueError> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(jobs.iter().cloned());
        Ok(())
    }
}
