//! Records HubSpot no longer has (deleted, merged away, privacy-deleted)
//! whose *linkers* — the records of other types that name them in an
//! association field — still need re-reading: HubSpot drops or moves such
//! links without an event for the records on the other end. The worker
//! adds the ids it archived or purged; the journal reader, once per
//! period, looks their linkers up in the store (one partition scan per
//! portal and linking type for everything gone meanwhile), queues them for
//! a fresh read, then removes exactly the ids it handled. A crash in
//! between handles them again (harmless re-reads), never loses one.
//!
//! Control table: `pk = "RELINK#{portal}"`, `sk = "PENDING"`, attribute
//! `gone`: a string set of `"{objectType}#{id}"`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use aws_sdk_dynamodb::types::AttributeValue;
use hubsync_mapping::ids::{ObjectId, ObjectType, PortalId};

use crate::dynamo::{sdk_error, DynamoStore};
use crate::error::StoreError;
use crate::memory::MemoryStore;

/// Control-table key prefix of pending relinks.
pub const RELINK_PK_PREFIX: &str = "RELINK#";
const PENDING_SK: &str = "PENDING";
const GONE: &str = "gone";

/// A record HubSpot no longer has.
pub type Gone = (ObjectType, ObjectId);

/// Where gone records wait for their linkers to be re-read.
pub trait RelinkStore: Send + Sync {
    /// Adds `ids` of `object_type` to the portal's pending set.
    fn add_gone(
        &self,
        portal: PortalId,
        object_type: ObjectType,
        ids: &[ObjectId],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The portal's pending gone records (strongly consistent).
    fn pending_gone(
        &self,
        portal: PortalId,
    ) -> impl Future<Output = Result<BTreeSet<Gone>, StoreError>> + Send;

    /// Removes `done` from the pending set (ids added meanwhile stay).
    fn clear_gone(
        &self,
        portal: PortalId,
        done: &BTreeSet<Gone>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

fn key(portal: PortalId) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (
            "pk".to_owned(),
            AttributeValue::S(format!("{RELINK_PK_PREFIX}{portal}")),
        ),
        ("sk".to_owned(), AttributeValue::S(PENDING_SK.to_owned())),
    ])
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
        if ids.is_empty() {
            return Ok(());
        }
        let members: Vec<String> = ids.iter().map(|id| member(&(object_type, *id))).collect();
        self.stats().count_write();
        self.client()
            .update_item()
            .table_name(&self.config().control_table)
            .set_key(Some(key(portal)))
            .update_expression("ADD #g :ids")
            .expression_attribute_names("#g", GONE)
            .expression_attribute_values(":ids", AttributeValue::Ss(members))
            .send()
            .await
            .map_err(|e| sdk_error("UpdateItem", e))?;
        Ok(())
    }

    async fn pending_gone(&self, portal: PortalId) -> Result<BTreeSet<Gone>, StoreError> {
        self.stats().count_read();
        let out = self
            .client()
            .get_item()
            .table_name(&self.config().control_table)
            .set_key(Some(key(portal)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", e))?;
        let Some(AttributeValue::Ss(members)) = out.item.as_ref().and_then(|i| i.get(GONE)) else {
            return Ok(BTreeSet::new());
        };
        members
            .iter()
            .map(|m| {
                parse_member(m)
                    .ok_or_else(|| StoreError::InvalidInput(format!("pending relink {m:?}")))
            })
            .collect()
    }

    async fn clear_gone(&self, portal: PortalId, done: &BTreeSet<Gone>) -> Result<(), StoreError> {
        if done.is_empty() {
            return Ok(());
        }
        self.stats().count_write();
        self.client()
            .update_item()
            .table_name(&self.config().control_table)
            .set_key(Some(key(portal)))
            .update_expression("DELETE #g :ids")
            .expression_attribute_names("#g", GONE)
            .expression_attribute_values(
                ":ids",
                AttributeValue::Ss(done.iter().map(member).collect()),
            )
            .send()
            .await
            .map_err(|e| sdk_error("UpdateItem", e))?;
        Ok(())
    }
}

/// The memory store's pending sets.
#[derive(Debug, Default, Clone)]
pub(crate) struct PendingRelinks(Arc<Mutex<BTreeMap<PortalId, BTreeSet<Gone>>>>);

impl RelinkStore for MemoryStore {
    async fn add_gone(
        &self,
        portal: PortalId,
        object_type: ObjectType,
        ids: &[ObjectId],
    ) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        self.stats().count_write();
        let mut g = self
            .relinks
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        g.entry(portal)
            .or_default()
            .extend(ids.iter().map(|id| (object_type, *id)));
        Ok(())
    }

    async fn pending_gone(&self, portal: PortalId) -> Result<BTreeSet<Gone>, StoreError> {
        self.stats().count_read();
        let g = self
            .relinks
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Ok(g.get(&portal).cloned().unwrap_or_default())
    }

    async fn clear_gone(&self, portal: PortalId, done: &BTreeSet<Gone>) -> Result<(), StoreError> {
        if done.is_empty() {
            return Ok(());
        }
        self.stats().count_write();
        let mut g = self
            .relinks
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(set) = g.get_mut(&portal) {
            set.retain(|m| !done.contains(m));
            if set.is_empty() {
                g.remove(&portal);
            }
        }
        Ok(())
    }
}
