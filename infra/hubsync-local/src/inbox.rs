//! The application's side of the change feed in the local stack: the SQS
//! queue a rule on the event bus fills with every `hubsync` event
//! ([`crate::Resources::app_inbox_url`]), read and de-duplicated by
//! `event_id` (delivery is at least once).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use serde_json::Value;

use crate::Environment;

/// Events received so far.
pub struct Inbox {
    sqs: aws_sdk_sqs::Client,
    url: String,
    seen: BTreeSet<String>,
    /// (detail-type, detail), in arrival order, each change once.
    pub events: Vec<(String, Value)>,
}

impl Inbox {
    pub fn new(env: &Environment) -> Self {
        Self {
            sqs: aws_sdk_sqs::Client::new(&env.aws),
            url: env.resources.app_inbox_url.clone(),
            seen: BTreeSet::new(),
            events: Vec::new(),
        }
    }

    /// Reads until the inbox has been empty for `quiet` (at most `limit`).
    /// Returns how many new events arrived.
    pub async fn drain(&mut self, quiet: Duration, limit: Duration) -> Result<usize> {
        let before = self.events.len();
        let mut last = Instant::now();
        let deadline = Instant::now() + limit;
        while last.elapsed() < quiet {
            ensure!(Instant::now() < deadline, "the inbox never went quiet");
            let got = self
                .sqs
                .receive_message()
                .queue_url(&self.url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await?;
            let mut done = Vec::new();
            for (i, m) in got.messages().iter().enumerate() {
                let body: Value = serde_json::from_str(m.body().unwrap_or_default())?;
                let detail = body["detail"].clone();
                let id = detail["event_id"]
                    .as_str()
                    .context("an event without event_id")?
                    .to_owned();
                if self.seen.insert(id) {
                    let t = body["detail-type"].as_str().unwrap_or_default().to_owned();
                    self.events.push((t, detail));
                }
                done.push(
                    aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(m.receipt_handle().unwrap_or_default())
                        .build()?,
                );
                last = Instant::now();
            }
            if !done.is_empty() {
                self.sqs
                    .delete_message_batch()
                    .queue_url(&self.url)
                    .set_entries(Some(done))
                    .send()
                    .await?;
            }
        }
        Ok(self.events.len() - before)
    }

    /// The `record.changed` events of one record, in arrival order: (kind,
    /// changed fields).
    pub fn of_record(&self, portal: u64, object_type: &str, id: u64) -> Vec<(String, Vec<String>)> {
        self.events
            .iter()
            .filter(|(t, d)| {
                t == "record.changed"
                    && d["portal_id"] == portal
                    && d["object_type"] == object_type
                    && d["object_id"].as_str() == Some(id.to_string().as_str())
            })
            .map(|(_, d)| {
                (
                    d["kind"].as_str().unwrap_or_default().to_owned(),
                    d["changed_fields"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|f| f.as_str().map(str::to_owned))
                        .collect(),
                )
            })
            .collect()
    }

    /// The details of every event of one detail-type.
    pub fn of_type(&self, detail_type: &str) -> Vec<&Value> {
        self.events
            .iter()
            .filter(|(t, _)| t == detail_type)
            .map(|(_, d)| d)
            .collect()
    }
}
