//! The Lambda face of the worker: `SqsEvent` in, `SqsBatchResponse` out
//! (the event source mapping has `ReportBatchItemFailures`).

use std::time::{Duration, Instant};

use std::collections::HashMap;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use hubsync_messages::Retry;
use hubsync_sync::{ObjectReader, SyncStore};

use crate::worker::{InboundMessage, Worker};

/// When to stop starting groups: the invocation's deadline (epoch ms, from
/// the Lambda context) less `reserve` (at most half the time left), as an
/// instant of this process.
pub fn start_deadline(deadline_epoch_ms: u64, reserve: Duration) -> Instant {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let left = Duration::from_millis(deadline_epoch_ms.saturating_sub(now_ms));
    // A short invocation keeps at least half its time for work.
    Instant::now() + left.saturating_sub(reserve.min(left / 2))
}

/// What an SQS event came to: the batch item failures to report, and
/// which of them to back off first (`hubsync_messages::delay_retries`).
#[derive(Debug, Default)]
pub struct SqsOutcome {
    pub response: SqsBatchResponse,
    pub retries: Vec<Retry>,
}

/// Handle one SQS event. A record without a message id cannot be reported
/// as failed individually, so it fails the whole invocation if it fails.
pub async fn handle_sqs_event<R: ObjectReader, S: SyncStore>(
    worker: &Worker<R, S>,
    event: SqsEvent,
    deadline: Option<Instant>,
) -> SqsOutcome {
    let mut handles: HashMap<String, Retry> = HashMap::new();
    let messages: Vec<InboundMessage> = event
        .records
        .into_iter()
        .map(|r| {
            let message_id = r.message_id.unwrap_or_default();
            if let Some(retry) = Retry::of_message(r.receipt_handle.as_deref(), &r.attributes) {
                handles.insert(message_id.clone(), retry);
            }
            InboundMessage {
                message_id,
                body: r.body.unwrap_or_default(),
            }
        })
        .collect();
    let outcome = process_and_report(worker, messages, deadline).await;
    let mut out = SqsOutcome::default();
    for id in &outcome.retry_later {
        if let Some(r) = handles.remove(id) {
            out.retries.push(r);
        }
    }
    for id in outcome.failed {
        out.response.add_failure(id);
    }
    out
}

/// Process a batch, log it and emit its metrics (shared by the Lambda and
/// the local runner).
pub async fn process_and_report<R: ObjectReader, S: SyncStore>(
    worker: &Worker<R, S>,
    messages: Vec<InboundMessage>,
    deadline: Option<Instant>,
) -> crate::BatchOutcome {
    let portals: Vec<hubsync_hubspot::PortalId> = messages
        .iter()
        .filter_map(|m| crate::worker::peek_portal(&m.body))
        .collect();
    let before: Vec<_> = portals
        .iter()
        .map(|p| (*p, worker.reader().portal_stats(*p)))
        .collect();
    let outcome = worker.process_before(messages, deadline).await;
    let mut rate_limited = std::collections::BTreeMap::new();
    for (portal, earlier) in before {
        let now = worker.reader().portal_stats(portal);
        rate_limited.insert(portal, now.since(&earlier).rate_limited);
    }
    tracing::info!(stats = ?outcome.stats, failed = outcome.failed.len(), "batch processed");
    outcome.stats.emit_metrics(&rate_limited);
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now_ms() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    #[test]
    fn the_reserve_comes_off_the_deadline_but_never_more_than_half() {
        let reserve = Duration::from_secs(10);
        // 60 s left: stop starting groups about 50 s from now.
        let d = start_deadline(now_ms() + 60_000, reserve);
        let left = d.saturating_duration_since(Instant::now());
        assert!(
            left > Duration::from_secs(48) && left <= Duration::from_secs(50),
            "{left:?}"
        );
        // 4 s left (a short timeout): half of it, not none.
        let d = start_deadline(now_ms() + 4_000, reserve);
        let left = d.saturating_duration_since(Instant::now());
        assert!(
            left > Duration::from_millis(1_500) && left <= Duration::from_secs(2),
            "{left:?}"
        );
        // Already past: now.
        let d = start_deadline(now_ms().saturating_sub(1_000), reserve);
        assert!(d <= Instant::now());
    }
}
