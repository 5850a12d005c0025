//! The shared HubSpot rate-limit ledger of a portal (Control table).
//!
//! One small item per portal and limit lane records the blocks of permits
//! recently leased to any Lambda instance, a pause set after a 429, and
//! when each caller class (real-time worker, background reconciliation)
//! was last active. The limiter (`hubsync_ratelimit::shared_limit`) decides;
//! this module only stores the ledger with a **compare-and-swap on its
//! `version`**, so two instances can never both extend the same state.
//!
//! # Item (Control table)
//! `pk = "RATE#{portal}#{lane}"`, `sk = "LEDGER"`, the [`RateLedger`]
//! fields, and the table's TTL attribute one day ahead (idle portals'
//! ledgers disappear).
//!
//! A conflict returns the stored ledger in the same round trip
//! (`ReturnValuesOnConditionCheckFailure = ALL_OLD`), so a contended lease
//! costs one more call, not two.
//!
//! Ledger calls are not counted in [`crate::StoreStats`]: those count the
//! sync's own record and state writes; the limiter counts its calls.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use hubsync_mapping::ids::PortalId;
use serde::{Deserialize, Serialize};

use crate::dynamo::{sdk_error, DynamoStore};
use crate::error::StoreError;
use crate::model::{attr, Item};

/// Control-table key prefix of rate ledgers.
pub const RATE_LEDGER_PK_PREFIX: &str = "RATE#";
/// Control-table sort key of a rate ledger.
pub const RATE_LEDGER_SK: &str = "LEDGER";
/// How long an untouched ledger is kept (the table's TTL removes it).
pub const RATE_LEDGER_RETENTION_SECS: i64 = 24 * 3600;

/// One block of permits leased to an instance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateGrant {
    /// The ledger time of the lease (epoch ms, never before an earlier
    /// grant's).
    pub at_ms: i64,
    /// Permits in the block (after [`RateGrant::used_until_ms`] is set:
    /// the permits actually used).
    pub permits: u32,
    /// The caller class (index chosen by the limiter).
    pub class: u8,
    /// The leasing instance's tag (random per instance), so that it can
    /// find its own block again.
    #[serde(default)]
    pub owner: u64,
    /// When the instance used the block's last permit (its clock, epoch
    /// ms), written when it leases its next block; `None`: still open, so
    /// usable until the lease ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_until_ms: Option<i64>,
}

/// The shared state of one portal's limit lane.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RateLedger {
    /// Compare-and-swap counter: 0 = never stored; every stored write
    /// increments it by one.
    pub version: u64,
    /// Recent grants, oldest first (older ones are pruned by the limiter).
    pub grants: Vec<RateGrant>,
    /// No permits before this time (epoch ms), set after a 429.
    pub paused_until_ms: i64,
    /// When each class was last active (leased or asked), by class index.
    pub seen_ms: Vec<i64>,
    /// When the background class's current run of activity began (its
    /// first window may burst; see the limiter).
    pub background_since_ms: i64,
}

/// The result of [`RateLedgerStore::swap_rate_ledger`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerSwap {
    /// Stored.
    Swapped,
    /// Someone else moved the ledger first: what is stored now (`None`:
    /// nothing; the expected version was not 0).
    Conflict(Option<RateLedger>),
}

/// Stores the rate ledgers. Implemented by [`DynamoStore`] and
/// [`MemoryRateLedgers`] with the same semantics.
pub trait RateLedgerStore: Send + Sync {
    /// The ledger of `portal`'s `lane` (strongly consistent), if stored.
    fn get_rate_ledger(
        &self,
        portal: PortalId,
        lane: &str,
    ) -> impl Future<Output = Result<Option<RateLedger>, StoreError>> + Send;

    /// Stores `ledger` if the stored version is `ledger.version - 1` (or
    /// nothing is stored and `ledger.version == 1`).
    fn swap_rate_ledger(
        &self,
        portal: PortalId,
        lane: &str,
        ledger: &RateLedger,
    ) -> impl Future<Output = Result<LedgerSwap, StoreError>> + Send;
}

fn ledger_key(portal: PortalId, lane: &str) -> (String, String) {
    (
        format!("{RATE_LEDGER_PK_PREFIX}{portal}#{lane}"),
        RATE_LEDGER_SK.to_owned(),
    )
}

fn key_item((pk, sk): (String, String)) -> Item {
    HashMap::from([
        (attr::PK.to_owned(), AttributeValue::S(pk)),
        (attr::SK.to_owned(), AttributeValue::S(sk)),
    ])
}

fn ledger_item(portal: PortalId, lane: &str, ledger: &RateLedger) -> Result<Item, StoreError> {
    let mut item: Item = serde_dynamo::aws_sdk_dynamodb_1::to_item(ledger)?;
    item.extend(key_item(ledger_key(portal, lane)));
    let expires = chrono::Utc::now().timestamp() + RATE_LEDGER_RETENTION_SECS;
    item.insert(
        crate::CONTROL_TTL_ATTRIBUTE.to_owned(),
        AttributeValue::N(expires.to_string()),
    );
    Ok(item)
}

fn from_item(mut item: Item) -> Result<RateLedger, StoreError> {
    item.remove(attr::PK);
    item.remove(attr::SK);
    item.remove(crate::CONTROL_TTL_ATTRIBUTE);
    Ok(serde_dynamo::aws_sdk_dynamodb_1::from_item(item)?)
}

fn check_version(ledger: &RateLedger) -> Result<(), StoreError> {
    if ledger.version == 0 {
        return Err(StoreError::InvalidInput(
            "a stored rate ledger's version starts at 1".into(),
        ));
    }
    Ok(())
}

impl RateLedgerStore for DynamoStore {
    async fn get_rate_ledger(
        &self,
        portal: PortalId,
        lane: &str,
    ) -> Result<Option<RateLedger>, StoreError> {
        let out = self
            .client()
            .get_item()
            .table_name(&self.config().control_table)
            .set_key(Some(key_item(ledger_key(portal, lane))))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", e))?;
        out.item
            .filter(|i| !i.is_empty())
            .map(from_item)
            .transpose()
    }

    async fn swap_rate_ledger(
        &self,
        portal: PortalId,
        lane: &str,
        ledger: &RateLedger,
    ) -> Result<LedgerSwap, StoreError> {
        check_version(ledger)?;
        let req = self
            .client()
            .put_item()
            .table_name(&self.config().control_table)
            .set_item(Some(ledger_item(portal, lane, ledger)?))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let req = if ledger.version == 1 {
            req.condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", attr::PK)
        } else {
            req.condition_expression("#v = :prev")
                .expression_attribute_names("#v", "version")
                .expression_attribute_values(
                    ":prev",
                    AttributeValue::N((ledger.version - 1).to_string()),
                )
        };
        match req.send().await {
            Ok(_) => Ok(LedgerSwap::Swapped),
            Err(err) => {
                let stored = match err.as_service_error() {
                    Some(PutItemError::ConditionalCheckFailedException(e)) => e.item.clone(),
                    _ if err.code() == Some("ConditionalCheckFailedException") => None,
                    _ => return Err(sdk_error("PutItem", err)),
                };
                let stored = match stored.filter(|i| !i.is_empty()) {
                    Some(item) => Some(from_item(item)?),
                    // Not returned (an emulator, or nothing stored): read it.
                    None => self.get_rate_ledger(portal, lane).await?,
                };
                Ok(LedgerSwap::Conflict(stored))
            }
        }
    }
}

/// Rate ledgers in memory: one lock around all of them, so a swap is
/// atomic (the race tests of the limiter run on this).
#[derive(Debug, Clone, Default)]
pub struct MemoryRateLedgers(Arc<Mutex<HashMap<(String, String), RateLedger>>>);

impl MemoryRateLedgers {
    pub fn new() -> Self {
        Self::default()
    }
}

impl RateLedgerStore for MemoryRateLedgers {
    async fn get_rate_ledger(
        &self,
        portal: PortalId,
        lane: &str,
    ) -> Result<Option<RateLedger>, StoreError> {
        let m = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(m.get(&ledger_key(portal, lane)).cloned())
    }

    async fn swap_rate_ledger(
        &self,
        portal: PortalId,
        lane: &str,
        ledger: &RateLedger,
    ) -> Result<LedgerSwap, StoreError> {
        check_version(ledger)?;
        // Every mutation is one insert: a poisoned lock holds no torn item.
        let mut m = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let key = ledger_key(portal, lane);
        let stored = m.get(&key);
        if stored.map_or(0, |l| l.version) + 1 != ledger.version {
            return Ok(LedgerSwap::Conflict(stored.cloned()));
        }
        m.insert(key, ledger.clone());
        Ok(LedgerSwap::Swapped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger(version: u64) -> RateLedger {
        RateLedger {
            version,
            grants: vec![RateGrant {
                at_ms: 1_000 * version as i64,
                permits: 10,
                class: 1,
                ..RateGrant::default()
            }],
            paused_until_ms: 0,
            seen_ms: vec![0, 5],
            ..RateLedger::default()
        }
    }

    #[tokio::test]
    async fn memory_ledger_swaps_only_over_the_previous_version() {
        let s = MemoryRateLedgers::new();
        let p = PortalId(9);
        assert_eq!(s.get_rate_ledger(p, "standard").await.unwrap(), None);
        assert_eq!(
            s.swap_rate_ledger(p, "standard", &ledger(2)).await.unwrap(),
            LedgerSwap::Conflict(None)
        );
        assert_eq!(
            s.swap_rate_ledger(p, "standard", &ledger(1)).await.unwrap(),
            LedgerSwap::Swapped
        );
        assert_eq!(
            s.swap_rate_ledger(p, "standard", &ledger(1)).await.unwrap(),
            LedgerSwap::Conflict(Some(ledger(1)))
        );
        assert_eq!(
            s.swap_rate_ledger(p, "standard", &ledger(2)).await.unwrap(),
            LedgerSwap::Swapped
        );
        assert_eq!(
            s.get_rate_ledger(p, "standard").await.unwrap(),
            Some(ledger(2))
        );
        // Lanes and portals are separate items.
        assert_eq!(s.get_rate_ledger(p, "search").await.unwrap(), None);
        assert_eq!(
            s.get_rate_ledger(PortalId(10), "standard").await.unwrap(),
            None
        );
        assert!(s.swap_rate_ledger(p, "x", &ledger(0)).await.is_err());
    }

    #[test]
    fn the_item_carries_key_ttl_and_fields_and_reads_back() {
        let item = ledger_item(PortalId(42), "standard", &ledger(3)).unwrap();
        assert_eq!(
            item.get(attr::PK),
            Some(&AttributeValue::S("RATE#42#standard".into()))
        );
        assert_eq!(
            item.get(attr::SK),
            Some(&AttributeValue::S("LEDGER".into()))
        );
        assert!(item.contains_key(crate::CONTROL_TTL_ATTRIBUTE));
        assert_eq!(item.get("version"), Some(&AttributeValue::N("3".into())));
        assert_eq!(from_item(item).unwrap(), ledger(3));
    }
}
