//! The queue contracts between hubsync's functions, in one place so that
//! no function crate depends on another:
//!
//! * [`EventBatch`] — `webhook-intake` (and `journal-reader`) → events
//!   queue → `record-upsert`: one portal's events of one delivery, split at
//!   SQS's size limit, sent through one [`event_sink::EventSink`];
//! * [`SyncJob`] / [`JobMessage`] — the OAuth callback, ops, the
//!   application and the nightly fan-out → sync-jobs queue → `reconcile`;
//!   queued through the one [`JobQueue`] ([`SqsJobQueue`] in Lambda,
//!   [`MemoryJobQueue`] locally and in tests);
//! * [`retry`] — backing off messages that failed transiently.
#![forbid(unsafe_code)]

pub mod event_batch;
pub mod event_sink;
pub mod job_queue;
pub mod jobs;
pub mod retry;

pub use event_batch::{
    EventBatch, ListChange, MessageError, OutboundMessage, JOURNAL_CHANGE_SOURCE,
    LIST_CHANGES_PER_MESSAGE, MESSAGE_VERSION, RELINK_CHANGE_SOURCE,
};
pub use job_queue::{JobQueue, MemoryJobQueue, QueueError, SqsJobQueue};
pub use jobs::{kind_name, new_run_id, JobMessage, SyncJob, SyncJobKind};
pub use retry::{delay_retries, receive_count, Retry, RetryBackoff};
