//! One reader pass: from the stored cursor, file after file, until the
//! journal has nothing newer or the deadline comes.
//!
//! First the subscriptions follow the connections and their configs
//! ([`crate::subscriptions`]). File pointers come [`FILES_PER_READ`] at a
//! time from HubSpot's batch reads. Then per file, in this order: fetch and parse → queue the webhook events of
//! the portals that sync (the events queue, as the intake does) → apply
//! uninstalls → store the cursor. The cursor moves only after the events
//! are queued: a crash in between reads the file again (its events are
//! queued twice, which the worker's coalescing and version guard make
//! harmless) and never skips one. A cursor write that finds another
//! reader's version stops the pass.
//!
//! An expired offset (HubSpot's 404: older than the three-day retention)
//! means events were lost: every syncing portal gets a re-sync job, the
//! report says so, and reading restarts at the earliest retained file.

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use hubsync_hubspot::journal::{Journal, JournalClient, JournalError, JournalPointer};
use hubsync_hubspot::PortalId;
use hubsync_messages::event_sink::{
    EventSink, SinkError, MESSAGE_ATTRIBUTE_BYTES, SQS_MAX_REQUEST_BYTES,
};
use hubsync_messages::{EventBatch, JobMessage, JobQueue, MessageError, QueueError, SyncJobKind};
use hubsync_store::{
    ConnectionStatus, ConnectionStore, JournalCursor, JournalCursorStore, MappingConfigStore,
    RecordStore, RelinkStore, StoreError,
};

use crate::convert::{to_work, Work};

/// File pointers asked for per batch read. Their pre-signed URLs live
/// minutes (15 in the simulator; HubSpot does not say): a pass handles 20
/// files well within that, and a URL that lapsed is asked for again.
pub const FILES_PER_READ: usize = 20;

/// Why a pass stopped early. What it did before stays done (the cursor
/// names the last file fully handled).
#[derive(Debug, thiserror::Error)]
pub enum ReaderError {
    #[error("reading the Webhooks Journal failed: {0}")]
    Journal(#[from] JournalError),
    #[error("queueing the journal's events failed: {0}")]
    Sink(#[from] SinkError),
    #[error("an event could not become a queue message: {0}")]
    Message(#[from] MessageError),
    #[error("queueing re-sync jobs failed: {0}")]
    Jobs(#[from] QueueError),
    #[error("the store failed: {0}")]
    Store(#[from] StoreError),
}

/// What a pass did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ReadReport {
    pub files: u64,
    /// Calls for file pointers (batch reads of up to [`FILES_PER_READ`]).
    pub pointer_calls: u64,
    pub entries: u64,
    /// Webhook events and list changes queued for syncing portals.
    pub events_queued: u64,
    /// Events of portals that do not sync (unknown, awaiting setup,
    /// disconnected): dropped, as the intake drops their webhooks.
    pub events_dropped: u64,
    pub uninstalls: u64,
    pub list_membership_changes: u64,
    pub unrecognised: u64,
    /// The offset was past the retention; `resyncs` portals were queued.
    pub offset_expired: bool,
    pub resyncs: u64,
    /// The pass ended because another reader moved the cursor.
    pub lost_race: bool,
    /// What making the subscriptions follow the configs did.
    pub subscriptions: crate::subscriptions::SubscriptionReport,
    /// How far behind the journal the pass ended (ms): 0 when it read
    /// everything there was, else `now − newest event read`.
    pub lag_ms: Option<i64>,
    /// The journal had nothing newer when the pass ended.
    pub caught_up: bool,
    /// What the relink step did.
    pub relinks: crate::relinks::RelinkReport,
}

/// The reader of one journal.
pub struct JournalReader<'a, K, S, Q, R> {
    pub journal: &'a JournalClient,
    pub which: Journal,
    pub sink: &'a K,
    pub store: &'a S,
    pub jobs: &'a Q,
    /// Records and the gone records waiting for their linkers (the
    /// relink step, [`crate::relinks`]).
    pub records: &'a R,
}

/// The cursor's key for a journal.
pub fn cursor_key(which: Journal) -> String {
    match which {
        Journal::Global => "global".to_owned(),
        Journal::Local(p) => p.to_string(),
    }
}

impl<K, S, Q, R> JournalReader<'_, K, S, Q, R>
where
    K: EventSink,
    S: JournalCursorStore + ConnectionStore + MappingConfigStore,
    Q: JobQueue,
    R: RecordStore + RelinkStore + MappingConfigStore,
{
    /// Reads until caught up or `deadline`; `now_ms` for the lag.
    pub async fn run(&self, deadline: Instant, now_ms: i64) -> Result<ReadReport, ReaderError> {
        let key = cursor_key(self.which);
        let mut report = ReadReport::default();
        let connections: Vec<_> = match self.which {
            Journal::Global => self.store.list_connections().await?,
            Journal::Local(p) => self.store.get_connection(p).await?.into_iter().collect(),
        };
        report.subscriptions =
            crate::subscriptions::follow(self.journal, self.store, &connections).await;
        let mut cursor = self.store.get_journal_cursor(&key).await?;
        let mut syncing: BTreeMap<PortalId, bool> = BTreeMap::new();
        let lag = |c: &JournalCursor| c.newest_occurred_at_ms.map(|t| (now_ms - t).max(0));
        // Pointers to the files after the cursor, from one batch read.
        let mut ahead: VecDeque<JournalPointer> = VecDeque::new();
        while Instant::now() < deadline {
            if ahead.is_empty() {
                ahead = self.next_pointers(&mut cursor, &mut report).await?.into();
            }
            let Some(pointer) = ahead.pop_front() else {
                report.caught_up = true;
                break;
            };
            let file = match self.journal.fetch(&pointer).await {
                // The URL lapsed since the batch read: read the pointers
                // after the cursor again, for fresh URLs.
                Err(JournalError::FileUrlRefused { .. }) => {
                    report.pointer_calls += 1;
                    ahead = self.pointers_at(&cursor).await?.into();
                    match ahead.pop_front() {
                        Some(p) => self.journal.fetch(&p).await?,
                        None => break,
                    }
                }
                other => other?,
            };
            report.files += 1;
            report.entries += file.entries.len() as u64;
            let work = to_work(&file.entries);
            self.queue(&work, now_ms, &mut syncing, &mut report).await?;
            self.uninstall(&work, &mut report).await?;
            report.list_membership_changes += work.list_membership_changes;
            report.unrecognised += work.unrecognised;
            let next = JournalCursor {
                offset: Some(file.offset.clone()),
                newest_occurred_at_ms: match (
                    cursor.newest_occurred_at_ms,
                    work.newest_occurred_at_ms,
                ) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                },
                updated_at_ms: now_ms,
                version: cursor.version,
            };
            if !self.store.put_journal_cursor(&key, &next).await? {
                report.lost_race = true;
                break;
            }
            cursor = JournalCursor {
                version: cursor.version + 1,
                ..next
            };
        }
        // Then the records naming the ones HubSpot no longer has.
        if !report.lost_race {
            report.relinks = crate::relinks::run(
                self.records,
                self.sink,
                &connections,
                (now_ms, deadline),
                crate::relinks::RelinkLimits::default(),
            )
            .await?;
        }
        // Everything there was is read: nothing is late.
        report.lag_ms = if report.caught_up {
            Some(0)
        } else {
            lag(&cursor)
        };
        Ok(report)
    }

    /// Pointers to the next files after `cursor` (one batch read).
    async fn pointers_at(
        &self,
        cursor: &JournalCursor,
    ) -> Result<Vec<JournalPointer>, JournalError> {
        match &cursor.offset {
            None => {
                self.journal
                    .earliest_batch(self.which, FILES_PER_READ)
                    .await
            }
            Some(o) => self.journal.next_batch(self.which, o, FILES_PER_READ).await,
        }
    }

    /// The next files to read; on an expired offset, re-syncs and restarts
    /// at the earliest file.
    async fn next_pointers(
        &self,
        cursor: &mut JournalCursor,
        report: &mut ReadReport,
    ) -> Result<Vec<JournalPointer>, ReaderError> {
        report.pointer_calls += 1;
        match self.pointers_at(cursor).await {
            Err(JournalError::OffsetExpired) => {
                tracing::error!(
                    journal = %cursor_key(self.which),
                    "the journal offset expired (older than HubSpot's retention): events may be lost; re-syncing"
                );
                report.offset_expired = true;
                report.resyncs += self.resync_all().await?;
                let reset = JournalCursor {
                    offset: None,
                    ..cursor.clone()
                };
                let key = cursor_key(self.which);
                if !self.store.put_journal_cursor(&key, &reset).await? {
                    report.lost_race = true;
                    return Ok(Vec::new());
                }
                *cursor = JournalCursor {
                    version: cursor.version + 1,
                    ..reset
                };
                report.pointer_calls += 1;
                Ok(self
                    .journal
                    .earliest_batch(self.which, FILES_PER_READ)
                    .await?)
            }
            other => Ok(other?),
        }
    }

    /// A re-sync job for every syncing portal the journal covers.
    async fn resync_all(&self) -> Result<u64, ReaderError> {
        let portals: Vec<PortalId> = match self.which {
            Journal::Local(p) => vec![p],
            Journal::Global => self
                .store
                .list_connections()
                .await?
                .into_iter()
                .filter(|c| c.status == ConnectionStatus::Active)
                .map(|c| c.portal_id)
                .collect(),
        };
        let jobs: Vec<JobMessage> = portals
            .iter()
            .map(|p| JobMessage::new(SyncJobKind::Resync, *p, Vec::new()))
            .collect();
        if !jobs.is_empty() {
            self.jobs.enqueue(&jobs).await?;
        }
        Ok(jobs.len() as u64)
    }

    async fn queue(
        &self,
        work: &Work,
        now_ms: i64,
        syncing: &mut BTreeMap<PortalId, bool>,
        report: &mut ReadReport,
    ) -> Result<(), ReaderError> {
        let mut messages = Vec::new();
        let portals: std::collections::BTreeSet<PortalId> = work
            .events
            .keys()
            .chain(work.list_changes.keys())
            .copied()
            .collect();
        for portal in portals {
            let events = work.events.get(&portal).cloned().unwrap_or_default();
            let list_changes = work.list_changes.get(&portal).cloned().unwrap_or_default();
            let active = match syncing.get(&portal) {
                Some(a) => *a,
                None => {
                    let a = self
                        .store
                        .get_connection(portal)
                        .await?
                        .is_some_and(|c| c.status == ConnectionStatus::Active);
                    syncing.insert(portal, a);
                    a
                }
            };
            let n = (events.len() + list_changes.len()) as u64;
            if !active {
                report.events_dropped += n;
                continue;
            }
            report.events_queued += n;
            let batch = EventBatch {
                list_changes,
                ..EventBatch::new(portal, now_ms, events)
            };
            messages.extend(batch.into_messages(SQS_MAX_REQUEST_BYTES - MESSAGE_ATTRIBUTE_BYTES)?);
        }
        if !messages.is_empty() {
            self.sink.send(messages).await?;
        }
        Ok(())
    }

    async fn uninstall(&self, work: &Work, report: &mut ReadReport) -> Result<(), ReaderError> {
        for portal in &work.uninstalls {
            let Some(c) = self.store.get_connection(*portal).await? else {
                continue;
            };
            if c.status.holds_tokens() || c.access_token_ciphertext.is_some() {
                self.store
                    .set_connection_status(
                        *portal,
                        ConnectionStatus::Disconnected,
                        Some("app_uninstalled"),
                    )
                    .await?;
                tracing::info!(portal = %portal, "the app was uninstalled in HubSpot: connection disconnected, records kept");
                report.uninstalls += 1;
            }
        }
        Ok(())
    }
}
