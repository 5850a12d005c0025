//! `dlq replay`: moves messages from a DLQ back to its source queue.
//!
//! Each message is first sent to the source queue (body and message
//! attributes, as a new message with a fresh receive count) and only then
//! deleted from the DLQ: an interruption can duplicate a message (the
//! worker and the reconciliation are idempotent), never lose one. With a
//! portal filter, the other portals' messages are hidden while the replay
//! walks the DLQ and made visible again at the end, so they stay there.

use std::collections::{HashMap, HashSet};
use std::io::Write;

use anyhow::{bail, Context, Result};
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, Message,
    SendMessageBatchRequestEntry,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::queues;
use crate::{Ops, QueueChoice};

/// Consecutive receives that bring nothing new before the DLQ counts as
/// walked (long polling, so one empty answer is already strong evidence).
const EMPTY_RECEIVES_TO_STOP: u32 = 2;

/// What a replay did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayCounts {
    /// Sent back to the source queue and deleted from the DLQ.
    pub replayed: u64,
    /// Left in the DLQ (another portal's, or not attributable to one).
    pub kept: u64,
}

/// The portal a queued message belongs to: both the events queue's
/// messages and the sync jobs carry `portalId` (a number, or a string of
/// digits).
pub fn message_portal(body: &str) -> Option<u64> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    match value.get("portalId")? {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn progress_bar(len: u64, prefix: String) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} messages {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(prefix);
    bar
}

/// Moves the messages of `dlq_url` (only `portal`'s, when given) to
/// `source_url`.
pub async fn replay(
    sqs: &aws_sdk_sqs::Client,
    dlq_url: &str,
    source_url: &str,
    portal: Option<u64>,
    visibility_secs: i32,
    bar: &ProgressBar,
) -> Result<ReplayCounts> {
    let mut counts = ReplayCounts::default();
    // Message id → latest receipt handle of the messages left in the DLQ.
    let mut kept: HashMap<String, String> = HashMap::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut failures: Vec<String> = Vec::new();
    let mut quiet = 0u32;
    while quiet < EMPTY_RECEIVES_TO_STOP {
        let received = sqs
            .receive_message()
            .queue_url(dlq_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .visibility_timeout(visibility_secs.max(1))
            .message_attribute_names("All")
            .send()
            .await
            .with_context(|| format!("receive from the DLQ {dlq_url}"))?;
        let mut to_move: Vec<Message> = Vec::new();
        let mut new = 0;
        for m in received.messages.unwrap_or_default() {
            let (Some(id), Some(handle)) = (m.message_id(), m.receipt_handle()) else {
                continue;
            };
            let (id, handle) = (id.to_owned(), handle.to_owned());
            let first = seen.insert(id.clone());
            if first {
                new += 1;
                bar.inc(1);
                // Messages that arrived after the depth was read.
                if bar.length().is_some_and(|len| bar.position() > len) {
                    bar.set_length(bar.position());
                }
            }
            let wanted = match portal {
                None => true,
                Some(p) => m.body().and_then(message_portal) == Some(p),
            };
            if !wanted {
                kept.insert(id, handle);
            } else if first {
                // A message moved before shows up again only when its
                // delete failed; that failure is reported, not retried.
                to_move.push(m);
            }
        }
        if new == 0 && to_move.is_empty() {
            quiet += 1;
            continue;
        }
        quiet = 0;
        let (moved, failed) = move_batch(sqs, dlq_url, source_url, &to_move).await?;
        counts.replayed += moved;
        failures.extend(failed);
        bar.set_message(format!("{} replayed, {} kept", counts.replayed, kept.len()));
    }
    counts.kept = kept.len() as u64;
    release(sqs, dlq_url, &kept).await?;
    if !failures.is_empty() {
        bail!(
            "{} message(s) could not be moved from {} ({} replayed before): {}",
            failures.len(),
            queues::queue_name(dlq_url),
            counts.replayed,
            failures.join("; ")
        );
    }
    Ok(counts)
}

/// Sends `messages` to the source queue, then deletes from the DLQ those
/// that were sent. Returns how many moved, and why others did not.
async fn move_batch(
    sqs: &aws_sdk_sqs::Client,
    dlq_url: &str,
    source_url: &str,
    messages: &[Message],
) -> Result<(u64, Vec<String>)> {
    if messages.is_empty() {
        return Ok((0, Vec::new()));
    }
    let mut entries = Vec::with_capacity(messages.len());
    for (i, m) in messages.iter().enumerate() {
        entries.push(
            SendMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .message_body(m.body().unwrap_or_default())
                .set_message_attributes(m.message_attributes().cloned())
                .build()
                .context("build a SendMessageBatch entry")?,
        );
    }
    let sent = sqs
        .send_message_batch()
        .queue_url(source_url)
        .set_entries(Some(entries))
        .send()
        .await
        .with_context(|| format!("send to the source queue {source_url}"))?;
    let mut failures: Vec<String> = sent
        .failed()
        .iter()
        .map(|f| {
            format!(
                "message {}: not sent ({}: {})",
                messages
                    .get(f.id().parse::<usize>().unwrap_or(usize::MAX))
                    .and_then(|m| m.message_id())
                    .unwrap_or("?"),
                f.code(),
                f.message().unwrap_or("")
            )
        })
        .collect();
    let mut deletes = Vec::new();
    for ok in sent.successful() {
        let Some(m) = ok.id().parse::<usize>().ok().and_then(|i| messages.get(i)) else {
            continue;
        };
        deletes.push(
            DeleteMessageBatchRequestEntry::builder()
                .id(ok.id())
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .build()
                .context("build a DeleteMessageBatch entry")?,
        );
    }
    let sent_count = deletes.len() as u64;
    if deletes.is_empty() {
        return Ok((0, failures));
    }
    let deleted = sqs
        .delete_message_batch()
        .queue_url(dlq_url)
        .set_entries(Some(deletes))
        .send()
        .await
        .with_context(|| {
            format!("delete replayed messages from the DLQ {dlq_url} (they were sent; a second replay of them is harmless)")
        })?;
    for f in deleted.failed() {
        failures.push(format!(
            "entry {}: sent but not deleted from the DLQ ({}); it will show up there again and may be replayed twice (harmless)",
            f.id(),
            f.code()
        ));
    }
    Ok((sent_count - deleted.failed().len() as u64, failures))
}

/// Makes the messages left in the DLQ visible again.
async fn release(
    sqs: &aws_sdk_sqs::Client,
    dlq_url: &str,
    kept: &HashMap<String, String>,
) -> Result<()> {
    let handles: Vec<&String> = kept.values().collect();
    for chunk in handles.chunks(10) {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, h)| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(h.as_str())
                    .visibility_timeout(0)
                    .build()
                    .context("build a ChangeMessageVisibilityBatch entry")
            })
            .collect::<Result<Vec<_>>>()?;
        sqs.change_message_visibility_batch()
            .queue_url(dlq_url)
            .set_entries(Some(entries))
            .send()
            .await
            .with_context(|| {
                format!("make the messages left in {dlq_url} visible again (otherwise they reappear after --visibility-secs)")
            })?;
    }
    Ok(())
}

/// The `dlq replay` command.
pub async fn replay_command(
    ops: &Ops,
    portal: Option<u64>,
    choice: QueueChoice,
    visibility_secs: i32,
    out: &mut (dyn Write + Send),
) -> Result<()> {
    let mut sources: Vec<(&str, &str)> = Vec::new();
    if matches!(choice, QueueChoice::Events | QueueChoice::All) {
        sources.push(("events", ops.events_queue_url()?));
    }
    if matches!(choice, QueueChoice::Jobs | QueueChoice::All) {
        sources.push(("sync-jobs", ops.sync_jobs_queue_url()?));
    }
    let sqs = ops.sqs();
    let scope = portal.map_or_else(|| "every portal".to_owned(), |p| format!("portal {p}"));
    let mut total = ReplayCounts::default();
    for (label, source) in sources {
        let dlq = queues::dead_letter_queue(&sqs, source)
            .await?
            .with_context(|| {
                format!("the {label} queue {source} has no DLQ (no redrive policy)")
            })?;
        let before = queues::depth(&sqs, &dlq).await?;
        let bar = progress_bar(before.visible, format!("{label} DLQ"));
        let counts = replay(&sqs, &dlq, source, portal, visibility_secs, &bar).await;
        bar.finish_and_clear();
        let counts = counts.with_context(|| format!("replay the {label} DLQ"))?;
        writeln!(
            out,
            "{label}: {} message(s) of {scope} moved from {} back to {}; {} left in the DLQ",
            counts.replayed,
            queues::queue_name(&dlq),
            queues::queue_name(source),
            counts.kept
        )?;
        total.replayed += counts.replayed;
        total.kept += counts.kept;
    }
    writeln!(
        out,
        "replayed {} message(s), {} left in the DLQ(s)",
        total.replayed, total.kept
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::message_portal;

    #[test]
    fn the_portal_of_events_and_jobs_is_read_from_portal_id() {
        assert_eq!(
            message_portal(r#"{"v":1,"portalId":1000001,"receivedAt":1,"events":[]}"#),
            Some(1_000_001)
        );
        assert_eq!(
            message_portal(r#"{"kind":"resync","portalId":"7"}"#),
            Some(7)
        );
        assert_eq!(message_portal(r#"{"v":1,"portalId":"not a number""#), None);
        assert_eq!(message_portal("garbage"), None);
        assert_eq!(message_portal(r#"{"portalId":-3}"#), None);
    }
}
