//! HubSpot's Webhooks Journal (2026-03): three days of an app's subscribed
//! events, read by offset with a client-credentials token, outside the CRM
//! rate limits (`../shared/HUBSPOT-2026.md` §6).
//!
//! * Subscriptions per install (`POST /webhooks-journal/subscriptions/2026-03`):
//!   `OBJECT` (`portalId`, `objectTypeId`, `actions`, optional `properties`,
//!   `objectIds`), `ASSOCIATION` (`associatedObjectTypeIds`),
//!   `LIST_MEMBERSHIP` (`listIds`), `APP_LIFECYCLE_EVENT`,
//!   `GDPR_PRIVACY_DELETION`. An absent or empty filter list matches all.
//! * Every event a mutation emits is journaled **before** the webhook
//!   faults apply, so a webhook the drop fault loses is still here; list
//!   membership changes and app (un)installs, which have no webhook, are
//!   journaled too.
//! * Reads (`earliest`, `latest`, `offset/{offset}/next`, global or
//!   `journal-local?installPortalId=`) answer `{url, expiresAt,
//!   currentOffset}`, 204 when there is nothing (further), 404 for an
//!   unknown or expired offset. `url` is pre-signed (no auth), expires after
//!   [`FILE_URL_LIFETIME_MS`] and serves the file `{offset, journalEvents,
//!   publishedAt}` (the file format is **unverified**: the shape third-party
//!   code shows; `hubsync_hubspot::journal` parses the same shape).
//! * Retention: [`RETENTION_MS`] of simulator time (`/_sim/clock/advance`
//!   ages files).
//!
//! Events are sealed into files (≤ [`MAX_EVENTS_PER_FILE`]) when a read
//! arrives or a file is full, so a read sees everything recorded before it.

pub(crate) mod batch;
pub(crate) mod http;
mod record;

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clock::iso_ms;
use crate::state::SimState;

/// Retention of journal files (HubSpot: three days).
pub const RETENTION_MS: i64 = 3 * 86_400_000;
/// Lifetime of a pre-signed file URL (*unverified*: HubSpot returns
/// `expiresAt`; the simulator picks 15 minutes).
pub const FILE_URL_LIFETIME_MS: i64 = 15 * 60_000;
/// Events per journal file.
pub const MAX_EVENTS_PER_FILE: usize = 100;
/// The scopes a client-credentials token may ask for.
pub const JOURNAL_SCOPES: [&str; 5] = [
    "developer.webhooks_journal.read",
    "developer.webhooks_journal.subscriptions.read",
    "developer.webhooks_journal.subscriptions.write",
    "developer.webhooks_journal.snapshots.read",
    "developer.webhooks_journal.snapshots.write",
];
/// `eventTypeId` of app lifecycle events (*unverified*).
pub const APP_LIFECYCLE_EVENT_TYPE_ID: &str = "4-1916193";

/// A journal subscription, as the subscriptions API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JournalSubscription {
    pub id: u64,
    pub app_id: u64,
    pub subscription_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub portal_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_type_id: Option<String>,
    #[serde(default)]
    pub actions: Vec<String>,
    #[serde(default)]
    pub properties: Option<Vec<String>>,
    #[serde(default)]
    pub object_ids: Option<Vec<u64>>,
    #[serde(default)]
    pub associated_object_type_ids: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_ids: Option<Vec<u64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// One entry of a journal file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JournalEvent {
    /// The subscription type that recorded it (`OBJECT`, `ASSOCIATION`, …).
    #[serde(rename = "type")]
    pub kind: String,
    pub portal_id: u64,
    /// ISO-8601, milliseconds.
    pub occurred_at: String,
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_type_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_id: Option<u64>,
    /// `UPDATE`: the changed property and its new value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property_changes: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub associated_object_type_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub associated_object_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub association_type_id: Option<u32>,
    /// `MERGE`: the ids merged into `objectId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_object_ids: Option<Vec<u64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type_id: Option<String>,
}

/// A sealed journal file.
#[derive(Debug, Clone)]
pub(crate) struct JournalFile {
    pub seq: u64,
    pub offset: String,
    pub published_ms: i64,
    pub events: Vec<JournalEvent>,
}

/// The app's journal and its subscriptions.
#[derive(Debug, Default)]
pub(crate) struct JournalStore {
    pub next_subscription_id: u64,
    pub subscriptions: BTreeMap<u64, JournalSubscription>,
    open: Vec<JournalEvent>,
    files: VecDeque<JournalFile>,
    next_seq: u64,
}

/// A read's answer: where the file is.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JournalPointer {
    pub url: String,
    pub expires_at: String,
    pub current_offset: String,
}

/// Which read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Position<'a> {
    Earliest,
    Latest,
    After(&'a str),
}

/// Why a read has no file to point at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReadMiss {
    /// Nothing (further) in the journal: 204.
    Empty,
    /// The offset is unknown or past retention: 404.
    UnknownOffset,
}

impl JournalStore {
    pub fn push(&mut self, event: JournalEvent, now_ms: i64) {
        self.open.push(event);
        if self.open.len() >= MAX_EVENTS_PER_FILE {
            self.seal(now_ms);
        }
    }

    /// Publishes the open events as files.
    fn seal(&mut self, now_ms: i64) {
        while !self.open.is_empty() {
            let take = self.open.len().min(MAX_EVENTS_PER_FILE);
            let events: Vec<JournalEvent> = self.open.drain(..take).collect();
            self.next_seq += 1;
            let seq = self.next_seq;
            self.files.push_back(JournalFile {
                seq,
                offset: offset_of(seq),
                published_ms: now_ms,
                events,
            });
        }
    }

    fn expire(&mut self, now_ms: i64) {
        while self
            .files
            .front()
            .is_some_and(|f| f.published_ms + RETENTION_MS < now_ms)
        {
            self.files.pop_front();
        }
    }

    /// What any read sees first: the open events published, files past
    /// retention gone.
    pub(crate) fn refresh(&mut self, now_ms: i64) {
        self.seal(now_ms);
        self.expire(now_ms);
    }

    /// The file a read lands on (`portal`: the local journal of one install).
    pub fn read(
        &mut self,
        at: Position<'_>,
        portal: Option<u64>,
        now_ms: i64,
    ) -> Result<&JournalFile, ReadMiss> {
        self.refresh(now_ms);
        let visible =
            |f: &&JournalFile| portal.is_none_or(|p| f.events.iter().any(|e| e.portal_id == p));
        let found = match at {
            Position::Earliest => self.files.iter().find(visible),
            Position::Latest => self.files.iter().rev().find(visible),
            Position::After(offset) => {
                let seq = self
                    .files
                    .iter()
                    .find(|f| f.offset == offset)
                    .map(|f| f.seq)
                    .ok_or(ReadMiss::UnknownOffset)?;
                self.files.iter().filter(|f| f.seq > seq).find(visible)
            }
        };
        found.ok_or(ReadMiss::Empty)
    }

    /// Up to `count` files from where a batch read lands, oldest first:
    /// the first ones (`Earliest`), the newest ones (`Latest`), or those
    /// after an offset. Nothing there is an empty list, not a miss.
    pub fn read_many(
        &mut self,
        at: Position<'_>,
        portal: Option<u64>,
        now_ms: i64,
        count: usize,
    ) -> Result<Vec<JournalFile>, ReadMiss> {
        self.refresh(now_ms);
        let visible =
            |f: &&JournalFile| portal.is_none_or(|p| f.events.iter().any(|e| e.portal_id == p));
        let after = match at {
            Position::After(offset) => Some(
                self.files
                    .iter()
                    .find(|f| f.offset == offset)
                    .map(|f| f.seq)
                    .ok_or(ReadMiss::UnknownOffset)?,
            ),
            _ => None,
        };
        let candidates = self
            .files
            .iter()
            .filter(|f| after.is_none_or(|seq| f.seq > seq))
            .filter(visible);
        Ok(match at {
            Position::Latest => {
                let mut newest: Vec<JournalFile> = candidates.rev().take(count).cloned().collect();
                newest.reverse();
                newest
            }
            _ => candidates.take(count).cloned().collect(),
        })
    }

    /// The retained file at `offset`, if any.
    pub fn at_offset(&self, offset: &str) -> Option<&JournalFile> {
        self.files.iter().find(|f| f.offset == offset)
    }

    /// A retained file by sequence number.
    pub fn file(&self, seq: u64) -> Option<&JournalFile> {
        self.files.iter().find(|f| f.seq == seq)
    }

    /// Every retained event (sealed or not), oldest first.
    pub fn all_events(&self) -> Vec<JournalEvent> {
        self.files
            .iter()
            .flat_map(|f| f.events.iter())
            .chain(self.open.iter())
            .cloned()
            .collect()
    }
}

/// An opaque, UUID-shaped offset (HubSpot's offsets are strings).
fn offset_of(seq: u64) -> String {
    let h = Sha256::digest(seq.to_be_bytes());
    let hex = hex::encode(&h[..10]);
    format!(
        "{}-{}-{}-{:012x}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        seq
    )
}

/// The signature of a pre-signed file URL.
pub(crate) fn sign_file_url(secret: &str, seq: u64, portal: u64, expires_ms: i64) -> String {
    let mut h = Sha256::new();
    h.update(secret.as_bytes());
    h.update(format!("{seq}:{portal}:{expires_ms}").as_bytes());
    hex::encode(h.finalize())
}

impl SimState {
    /// Every event the journal holds (retained files and not yet sealed),
    /// oldest first, for tests.
    pub fn journal_events(&self) -> Vec<JournalEvent> {
        self.journal_lock().all_events()
    }

    /// The journal subscriptions, for tests.
    pub fn journal_subscriptions(&self) -> Vec<JournalSubscription> {
        self.journal_lock()
            .subscriptions
            .values()
            .cloned()
            .collect()
    }

    pub(crate) fn journal_lock(&self) -> std::sync::MutexGuard<'_, JournalStore> {
        self.journal.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The pointer HubSpot returns for `file`.
    pub(crate) fn journal_pointer(
        &self,
        file: &JournalFile,
        portal: Option<u64>,
    ) -> JournalPointer {
        let expires_ms = self.now_ms() + FILE_URL_LIFETIME_MS;
        let p = portal.unwrap_or(0);
        let secret = self.config_read().app.client_secret.clone();
        let signature = sign_file_url(&secret, file.seq, p, expires_ms);
        JournalPointer {
            url: format!(
                "{}/_journal/files/{}?portal={p}&expires={expires_ms}&signature={signature}",
                self.public_base_url(),
                file.seq
            ),
            expires_at: iso_ms(expires_ms),
            current_offset: file.offset.clone(),
        }
    }
}
