//! Records HubSpot no longer has (deleted, merged away, privacy-deleted)
//! whose *linkers* — the records of other types that name them in an
//! association field — still need re-reading: HubSpot drops or moves such
//! links without an event for the records on the other end. The worker
//! adds the ids it archived or purged; the journal reader, once per
//! period, looks their linkers up in the store (one partition scan per
//! portal and linking type for everything gone meanwhile), queues them for
//! a fresh read, then deletes exactly the items it handled. A crash in
//! between handles them again (harmless re-reads), never loses one.
//!
//! Control table: `pk = "RELINK#{portal}"`, one item per addition,
//! `sk = "GONE#{ms:013}#{seq:020}#{tag:016x}"`, attribute `gone`: a string set of
//! `"{objectType}#{id}"`, at most [`GONE_PER_ITEM`] members (about 110 KB,
//! well under DynamoDB's 400 KB item limit). A mass deletion in HubSpot
//! becomes many small items, never one item past the limit (which would
//! refuse every later addition until the reader caught up). Items carry
//! the Control table's TTL ([`GONE_TTL_SECS`]): a portal that stops
//! syncing leaves nothing behind for good, and by then the nightly
//! reconciliation has re-read every link.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use aws_sdk_dynamodb::types::AttributeValue;
use hubsync_mapping::ids::{ObjectId, ObjectType, PortalId};

use crate::dynamo::{sdk_error, DynamoStore};
use crate::error::StoreError;
use crate::memory::MemoryStore;
use crate::model::now_ms;
use crate::CONTROL_TTL_ATTRIBUTE;

/// Control-table key prefix of pending relinks.
pub const RELINK_PK_PREFIX: &str = "RELINK#";
const ITEM_SK_PREFIX: &str = "GONE#";
const GONE: &str = "gone";
/// Most members of one pending item.
pub const GONE_PER_ITEM: usize = 4_000;
/// How long a pending item is kept when no reader handles it (30 days).
pub const GONE_TTL_SECS: i64 = 30 * 24 * 3600;

/// A record HubSpot no longer has.
pub type Gone = (ObjectType, ObjectId);

/// Pending gone records as read, and the items they were read from (what
/// [`RelinkStore::clear_gone`] deletes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PendingGone {
    pub gone: BTreeSet<Gone>,
    items: Vec<String>,
}

impl PendingGone {
    pub fn is_empty(&self) -> bool {
        self.gone.is_empty() && self.items.is_empty()
    }

    /// Items read (each one addition of the worker).
    pub fn items(&self) -> usize {
        self.items.len()
    }

    /// Whether a read may stop: at least one item and `max_ids` ids.
    fn has(&self, max_ids: usize) -> bool {
        !self.items.is_empty() && self.gone.len() >= max_ids
    }
}

/// Where gone records wait for their linkers to be re-read.
pub trait RelinkStore: Send + Sync {
    /// Adds `ids` of `object_type` to the portal's pending records (new
    /// items of at most [`GONE_PER_ITEM`] ids each).
    fn add_gone(
        &self,
        portal: PortalId,
        object_type: ObjectType,
        ids: &[ObjectId],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The portal's pending gone records, oldest items first, until at
    /// least `max_ids` are read (strongly consistent; at least one item).
    fn pending_gone(
        &self,
        portal: PortalId,
        max_ids: usize,
    ) -> impl Future<Output = Result<PendingGone, StoreError>> + Send;

    /// Deletes the items `done` was read from (items added meanwhile stay).
    fn clear_gone(
        &self,
        portal: PortalId,
        done: &PendingGone,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

fn pk(portal: PortalId) -> String {
    format!("{RELINK_PK_PREFIX}{portal}")
}

/// A new item's sort key: time-ordered (in this process, also within a
/// millisecond), unique across instances.
fn item_sk() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    format!(
        "{ITEM_SK_PREFIX}{:013}#{seq:020}#{:016x}",
        now_ms().max(0),
        crate::unique_tag()
    )
}

fn member((t, id): &Gone) -> String {
    format!("{t}#{id}")
}

fn parse_member(s: &str) -> Option<Gone> {
    let (t, id) = s.split_once('#')?;
    Some((t.parse().ok()?, ObjectId(id.parse().ok()?)))
}

impl RelinkStore for DynamoStore {
    async fn add_gone(
        &self,
        portal: PortalId,
        object_type: ObjectType,
        ids: &[ObjectId],
    ) -> Result<(), StoreError> {
        for chunk in ids.chunks(GONE_PER_ITEM) {
            let members: Vec<String> = chunk.iter().map(|id| member(&(object_type, *id))).collect();
            let expires = now_ms() / 1_000 + GONE_TTL_SECS;
            self.stats().count_write();
            self.client()
                .put_item()
                .table_name(&self.config().control_table)
                .item("pk", AttributeValue::S(pk(portal)))
                .item("sk", AttributeValue::S(item_sk()))
                .item(GONE, AttributeValue::Ss(members))
                .item(
                    CONTROL_TTL_ATTRIBUTE,
                    AttributeValue::N(expires.to_string()),
                )
                .send()
                .await
                .map_err(|e| sdk_error("PutItem", e))?;
        }
        Ok(())
    }

    async fn pending_gone(
        &self,
        portal: PortalId,
        max_ids: usize,
    ) -> Result<PendingGone, StoreError> {
        let mut out = PendingGone::default();
        let mut start = None;
        loop {
            let (items, next) = self.control_partition_page(pk(portal), start).await?;
            for item in items {
                if out.has(max_ids) {
                    return Ok(out);
                }
                let Some(AttributeValue::S(sk)) = item.get("sk") else {
                    continue;
                };
                if let Some(AttributeValue::Ss(members)) = item.get(GONE) {
                    for m in members {
                        out.gone.insert(parse_member(m).ok_or_else(|| {
                            StoreError::InvalidInput(format!("pending relink {m:?}"))
                        })?);
                    }
                }
                out.items.push(sk.clone());
            }
            match next {
                Some(k) => start = Some(k),
                None => return Ok(out),
            }
        }
    }

    async fn clear_gone(&self, portal: PortalId, done: &PendingGone) -> Result<(), StoreError> {
        for sk in &done.items {
            self.stats().count_write();
            self.client()
                .delete_item()
                .table_name(&self.config().control_table)
                .key("pk", AttributeValue::S(pk(portal)))
                .key("sk", AttributeValue::S(sk.clone()))
                .send()
                .await
                .map_err(|e| sdk_error("DeleteItem", e))?;
        }
        Ok(())
    }
}

/// The memory store's pending items: portal → sort key → members.
#[derive(Debug, Default, Clone)]
pub(crate) struct PendingRelinks(Arc<Mutex<BTreeMap<PortalId, Items>>>);

/// A portal's pending items: sort key → members.
type Items = BTreeMap<String, Vec<Gone>>;

impl RelinkStore for MemoryStore {
    async fn add_gone(
        &self,
        portal: PortalId,
        object_type: ObjectType,
        ids: &[ObjectId],
    ) -> Result<(), StoreError> {
        for chunk in ids.chunks(GONE_PER_ITEM) {
            self.stats().count_write();
            let mut g = self
                .relinks
                .0
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            g.entry(portal).or_default().insert(
                item_sk(),
                chunk.iter().map(|id| (object_type, *id)).collect(),
            );
        }
        Ok(())
    }

    async fn pending_gone(
        &self,
        portal: PortalId,
        max_ids: usize,
    ) -> Result<PendingGone, StoreError> {
        self.stats().count_read();
        let g = self
            .relinks
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut out = PendingGone::default();
        for (sk, members) in g.get(&portal).into_iter().flatten() {
            if out.has(max_ids) {
                break;
            }
            out.gone.extend(members.iter().copied());
            out.items.push(sk.clone());
        }
        Ok(out)
    }

    async fn clear_gone(&self, portal: PortalId, done: &PendingGone) -> Result<(), StoreError> {
        if done.items.is_empty() {
            return Ok(());
        }
        self.stats().count_write();
        let mut g = self
            .relinks
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(items) = g.get_mut(&portal) {
            for sk in &done.items {
                items.remove(sk);
            }
            if items.is_empty() {
                g.remove(&portal);
            }
        }
        Ok(())
    }
}
