//! Per-portal deal pipelines cache (Control table), so that mapping deal
//! stage and pipeline labels costs no HubSpot call in the steady state.
//!
//! One item at `pk = "PIPELINES#{portal}"`, `sk = "deals"`: `pipelines`
//! (JSON of [`Pipelines`]), `refreshed_at_ms` (when it was read from
//! HubSpot; a write never moves it back) and `refresh_claimed_at_ms` (the
//! last claim of an on-demand refresh). A portal's pipelines are small (a
//! few dozen pipelines and stages); a set too large for one item is not
//! cached, and mapping reads HubSpot instead.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use aws_sdk_dynamodb::types::AttributeValue;
use hubsync_mapping::ids::PortalId;
use hubsync_mapping::Pipelines;

use crate::dynamo::{sdk_error, DynamoStore};
use crate::error::StoreError;
use crate::memory::MemoryStore;

/// Control-table key prefix of pipelines caches.
pub const PIPELINES_PK_PREFIX: &str = "PIPELINES#";
/// Sort key of the deals pipelines.
const DEALS_SK: &str = "deals";
/// Most bytes of pipelines JSON cached (DynamoDB items stop at 400 KB).
pub const PIPELINES_MAX_BYTES: usize = 300_000;

/// A portal's cached deal pipelines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedPipelines {
    pub pipelines: Pipelines,
    /// When they were read from HubSpot (epoch ms).
    pub refreshed_at_ms: i64,
}

/// Storage of pipelines caches.
pub trait PipelinesCacheStore: Send + Sync {
    /// The portal's cached deal pipelines, if a read ever stored them.
    fn get_pipelines_cache(
        &self,
        portal: PortalId,
    ) -> impl Future<Output = Result<Option<CachedPipelines>, StoreError>> + Send;

    /// Replaces the cache with `pipelines`, read at `refreshed_at_ms` (a
    /// cache refreshed later is kept). Returns the write requests made (0
    /// when the set is too large to cache).
    fn put_pipelines_cache(
        &self,
        portal: PortalId,
        pipelines: &Pipelines,
        refreshed_at_ms: i64,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Claims an on-demand refresh: `true` when no claim was made in the
    /// `min_interval_ms` before `now_ms`.
    fn claim_pipelines_refresh(
        &self,
        portal: PortalId,
        now_ms: i64,
        min_interval_ms: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

fn key(portal: PortalId) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (
            "pk".to_owned(),
            AttributeValue::S(format!("{PIPELINES_PK_PREFIX}{portal}")),
        ),
        ("sk".to_owned(), AttributeValue::S(DEALS_SK.to_owned())),
    ])
}

/// The JSON to cache, or `None` when it is too large for one item.
fn encode(pipelines: &Pipelines) -> Result<Option<String>, StoreError> {
    let json = serde_json::to_string(pipelines).map_err(StoreError::Fields)?;
    if json.len() > PIPELINES_MAX_BYTES {
        tracing::warn!(
            bytes = json.len(),
            "a portal's pipelines are too large to cache: mapping reads them from HubSpot"
        );
        return Ok(None);
    }
    Ok(Some(json))
}

impl PipelinesCacheStore for DynamoStore {
    async fn get_pipelines_cache(
        &self,
        portal: PortalId,
    ) -> Result<Option<CachedPipelines>, StoreError> {
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
        let Some(item) = out.item else {
            return Ok(None);
        };
        let (Some(AttributeValue::S(json)), Some(AttributeValue::N(at))) =
            (item.get("pipelines"), item.get("refreshed_at_ms"))
        else {
            // Only a claim was stored so far.
            return Ok(None);
        };
        let pipelines: Pipelines = serde_json::from_str(json).map_err(|e| {
            StoreError::InvalidInput(format!("pipelines cache does not parse: {e}"))
        })?;
        let refreshed_at_ms = at.parse().map_err(|_| {
            StoreError::InvalidInput("pipelines cache has a bad refreshed_at_ms".into())
        })?;
        Ok(Some(CachedPipelines {
            pipelines,
            refreshed_at_ms,
        }))
    }

    async fn put_pipelines_cache(
        &self,
        portal: PortalId,
        pipelines: &Pipelines,
        refreshed_at_ms: i64,
    ) -> Result<u64, StoreError> {
        let Some(json) = encode(pipelines)? else {
            return Ok(0);
        };
        self.stats().count_write();
        let out = self
            .client()
            .update_item()
            .table_name(&self.config().control_table)
            .set_key(Some(key(portal)))
            .update_expression("SET pipelines = :p, refreshed_at_ms = :t")
            .condition_expression("attribute_not_exists(refreshed_at_ms) OR refreshed_at_ms < :t")
            .expression_attribute_values(":p", AttributeValue::S(json))
            .expression_attribute_values(":t", AttributeValue::N(refreshed_at_ms.to_string()))
            .send()
            .await;
        match out {
            Ok(_) => Ok(1),
            // A later read is cached already.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(1)
            }
            Err(e) => Err(sdk_error("UpdateItem", e)),
        }
    }

    async fn claim_pipelines_refresh(
        &self,
        portal: PortalId,
        now_ms: i64,
        min_interval_ms: i64,
    ) -> Result<bool, StoreError> {
        self.claim_refresh(key(portal), now_ms, min_interval_ms)
            .await
    }
}

/// One portal's cache in the in-memory store.
#[derive(Debug, Clone, Default)]
struct MemoryPipelines {
    cache: Option<CachedPipelines>,
    claimed_at_ms: Option<i64>,
}

/// Pipelines caches of the in-memory store, shared by its clones.
#[derive(Debug, Clone, Default)]
pub struct PipelinesItems(Arc<Mutex<BTreeMap<PortalId, MemoryPipelines>>>);

impl PipelinesItems {
    fn with<T>(&self, f: impl FnOnce(&mut BTreeMap<PortalId, MemoryPipelines>) -> T) -> T {
        let mut g = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut g)
    }
}

impl PipelinesCacheStore for MemoryStore {
    async fn get_pipelines_cache(
        &self,
        portal: PortalId,
    ) -> Result<Option<CachedPipelines>, StoreError> {
        self.stats().count_read();
        Ok(self
            .pipelines
            .with(|m| m.get(&portal).and_then(|p| p.cache.clone())))
    }

    async fn put_pipelines_cache(
        &self,
        portal: PortalId,
        pipelines: &Pipelines,
        refreshed_at_ms: i64,
    ) -> Result<u64, StoreError> {
        if encode(pipelines)?.is_none() {
            return Ok(0);
        }
        self.stats().count_write();
        self.pipelines.with(|m| {
            let entry = m.entry(portal).or_default();
            if entry
                .cache
                .as_ref()
                .is_none_or(|c| c.refreshed_at_ms < refreshed_at_ms)
            {
                entry.cache = Some(CachedPipelines {
                    pipelines: pipelines.clone(),
                    refreshed_at_ms,
                });
            }
        });
        Ok(1)
    }

    async fn claim_pipelines_refresh(
        &self,
        portal: PortalId,
        now_ms: i64,
        min_interval_ms: i64,
    ) -> Result<bool, StoreError> {
        self.stats().count_write();
        Ok(self.pipelines.with(|m| {
            crate::owners_cache::claim_in_memory(
                &mut m.entry(portal).or_default().claimed_at_ms,
                now_ms,
                min_interval_ms,
            )
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipelines(label: &str) -> Pipelines {
        let mut p = Pipelines::new();
        p.insert("default", label, &[("closedwon", "Closed Won")]);
        p
    }

    #[tokio::test]
    async fn memory_claims_are_spaced_and_caches_move_forward() {
        let s = MemoryStore::new();
        let p = PortalId(7);
        assert_eq!(s.get_pipelines_cache(p).await.unwrap(), None);
        assert!(s.claim_pipelines_refresh(p, 1_000, 300_000).await.unwrap());
        assert!(!s
            .claim_pipelines_refresh(p, 200_000, 300_000)
            .await
            .unwrap());
        assert!(s
            .claim_pipelines_refresh(p, 301_000, 300_000)
            .await
            .unwrap());
        s.put_pipelines_cache(p, &pipelines("New"), 10)
            .await
            .unwrap();
        s.put_pipelines_cache(p, &pipelines("Old"), 5)
            .await
            .unwrap();
        let c = s.get_pipelines_cache(p).await.unwrap().unwrap();
        assert_eq!(c.refreshed_at_ms, 10);
        assert_eq!(c.pipelines.pipeline_label("default"), Some("New"));
    }

    #[test]
    fn a_set_too_large_for_one_item_is_not_cached() {
        let mut p = Pipelines::new();
        let long = "x".repeat(1_000);
        for i in 0..400 {
            p.insert(&format!("p{i}"), &long, &[]);
        }
        assert_eq!(encode(&p).unwrap(), None);
        assert!(encode(&pipelines("Sales")).unwrap().is_some());
    }
}
