//! How many records the Webhooks Journal repaired between two
//! reconciliations, per portal and object type: the worker adds the writes
//! and deletions it made for events only the journal had; the next
//! completed reconciliation of the type takes the count (read and reset in
//! one request) into its report, next to the drift it found itself.
//!
//! Control table: `pk = "JOURNAL#fixes#{portal}"`, `sk = "{objectType}"`,
//! attribute `fixes` (a number, `ADD`ed).

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use hubsync_mapping::ids::{ObjectType, PortalId};

use crate::dynamo::{sdk_error, DynamoStore};
use crate::error::StoreError;
use crate::memory::MemoryStore;

/// Control-table key prefix of the counts.
pub const JOURNAL_FIXES_PK_PREFIX: &str = "JOURNAL#fixes#";
const FIXES: &str = "fixes";

/// Where the journal's repairs are counted.
pub trait JournalFixStore: Send + Sync {
    /// Adds `n` repairs to the portal type's count (one atomic update).
    fn add_journal_fixes(
        &self,
        portal: PortalId,
        object_type: ObjectType,
        n: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The count so far, reset to 0 in the same request (repairs added
    /// meanwhile are in the next count, never lost or counted twice).
    fn take_journal_fixes(
        &self,
        portal: PortalId,
        object_type: ObjectType,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

fn key(portal: PortalId, object_type: ObjectType) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (
            "pk".to_owned(),
            AttributeValue::S(format!("{JOURNAL_FIXES_PK_PREFIX}{portal}")),
        ),
        ("sk".to_owned(), AttributeValue::S(object_type.to_string())),
    ])
}

impl JournalFixStore for DynamoStore {
    async fn add_journal_fixes(
        &self,
        portal: PortalId,
        object_type: ObjectType,
        n: u64,
    ) -> Result<(), StoreError> {
        if n == 0 {
            return Ok(());
        }
        self.stats().count_write();
        self.client()
            .update_item()
            .table_name(&self.config().control_table)
            .set_key(Some(key(portal, object_type)))
            .update_expression("ADD #f :n")
            .expression_attribute_names("#f", FIXES)
            .expression_attribute_values(":n", AttributeValue::N(n.to_string()))
            .send()
            .await
            .map_err(|e| sdk_error("UpdateItem", e))?;
        Ok(())
    }

    async fn take_journal_fixes(
        &self,
        portal: PortalId,
        object_type: ObjectType,
    ) -> Result<u64, StoreError> {
        self.stats().count_write();
        let out = self
            .client()
            .update_item()
            .table_name(&self.config().control_table)
            .set_key(Some(key(portal, object_type)))
            .update_expression("SET #f = :zero")
            .expression_attribute_names("#f", FIXES)
            .expression_attribute_values(":zero", AttributeValue::N("0".into()))
            .return_values(ReturnValue::UpdatedOld)
            .send()
            .await
            .map_err(|e| sdk_error("UpdateItem", e))?;
        match out.attributes.as_ref().and_then(|a| a.get(FIXES)) {
            None => Ok(0),
            Some(AttributeValue::N(n)) => n
                .parse()
                .map_err(|_| StoreError::InvalidInput("journal fixes is not a count".into())),
            Some(_) => Err(StoreError::InvalidInput(
                "journal fixes is not a number".into(),
            )),
        }
    }
}

/// The memory store's counts.
#[derive(Debug, Default, Clone)]
pub(crate) struct FixCounts(Arc<Mutex<BTreeMap<(PortalId, ObjectType), u64>>>);

impl JournalFixStore for MemoryStore {
    async fn add_journal_fixes(
        &self,
        portal: PortalId,
        object_type: ObjectType,
        n: u64,
    ) -> Result<(), StoreError> {
        if n == 0 {
            return Ok(());
        }
        self.stats().count_write();
        let mut g = self.fixes.0.lock().unwrap_or_else(PoisonError::into_inner);
        *g.entry((portal, object_type)).or_default() += n;
        Ok(())
    }

    async fn take_journal_fixes(
        &self,
        portal: PortalId,
        object_type: ObjectType,
    ) -> Result<u64, StoreError> {
        self.stats().count_write();
        let mut g = self.fixes.0.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(g.remove(&(portal, object_type)).unwrap_or(0))
    }
}
