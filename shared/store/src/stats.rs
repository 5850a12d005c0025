//! Request accounting: how many DynamoDB writes and reads the store made.
//!
//! Every write request counts, whatever its result: DynamoDB bills a failed
//! conditional write like a successful one. The in-memory store counts the
//! same way, so "writes for a no-change run: 0" can be measured on either.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Shared counters; clones share the same counts.
#[derive(Debug, Clone, Default)]
pub struct StoreStats {
    writes: Arc<AtomicU64>,
    reads: Arc<AtomicU64>,
}

impl StoreStats {
    /// Fresh counters at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Write requests made (PutItem, UpdateItem, DeleteItem), including
    /// conditional writes that were refused.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// Read requests made (GetItem, BatchGetItem calls including retries of
    /// unprocessed keys, Query and Scan pages).
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    pub(crate) fn count_write(&self) {
        self.writes.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_read(&self) {
        self.reads.fetch_add(1, Ordering::Relaxed);
    }
}
