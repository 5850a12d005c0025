//! The journal reader against the local stack: the same pass the
//! `journal-reader` function runs on its schedule, with the simulator as
//! HubSpot, the events queue the local worker polls, and the sync-jobs
//! queue. One call = one scheduled invocation.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use hubsync_hubspot::journal::{Journal, JournalClient};
use hubsync_hubspot::{OAuthClient, OAuthConfig};
use hubsync_messages::event_sink::SqsSink;
use hubsync_messages::SqsJobQueue;
use journal_reader::{JournalReader, ReadReport};
use secrecy::SecretString;

use crate::Environment;

impl Environment {
    /// The app's journal client (client credentials of the simulator's app).
    pub fn journal_client(&self) -> Result<JournalClient> {
        let app = self.sim.state().config().app;
        let oauth = OAuthClient::new(OAuthConfig::new(
            self.sim.base_url(),
            app.client_id.clone(),
            SecretString::from(app.client_secret.clone()),
            "",
        ))
        .context("OAuth client")?;
        Ok(JournalClient::new(&self.sim.base_url(), oauth))
    }

    /// One reader pass over the global journal (at most `budget` long).
    pub async fn journal_pass(
        &self,
        client: &JournalClient,
        budget: Duration,
    ) -> Result<ReadReport> {
        let sqs = aws_sdk_sqs::Client::new(&self.aws);
        let sink = SqsSink::new(sqs.clone(), self.resources.queue_url.clone());
        let jobs = SqsJobQueue::new(sqs, self.resources.sync_jobs_queue_url.clone());
        let reader = JournalReader {
            journal: client,
            which: Journal::Global,
            sink: &sink,
            store: self.runner.store(),
            jobs: &jobs,
            records: self.runner.store(),
        };
        reader
            .run(Instant::now() + budget, self.sim.state().now_ms())
            .await
            .context("journal pass")
    }
}
