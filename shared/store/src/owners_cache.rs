//! Per-portal owners cache (Control table), so that mapping owner emails
//! and names costs no HubSpot call in the steady state.
//!
//! Items at `pk = "OWNERS#{portal}"`:
//! - `sk = "META"`: `generation` (the refresh time, epoch ms), `chunks`
//!   (how many chunk items that generation has), `refreshed_at_ms`, and
//!   `refresh_claimed_at_ms` (the last claim of an on-demand refresh).
//! - `sk = "CHUNK#{generation:013}#{i:04}"`: `owners`, a JSON object of
//!   owner id → `{email, name}` of at most [`CHUNK_MAX_BYTES`] (DynamoDB
//!   items stop at 400 KB).
//!
//! A refresh writes the new generation's chunks first, then moves `META`
//! forward (conditionally: a generation never goes back), then deletes the
//! older chunks; a reader queries the partition once and uses the chunks
//! `META` names, re-reading if a concurrent refresh left them incomplete.
//! Owner emails are personal data: nothing here logs them.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use aws_sdk_dynamodb::types::AttributeValue;
use hubsync_mapping::ids::PortalId;
use hubsync_mapping::Owners;

use crate::dynamo::{sdk_error, DynamoStore};
use crate::error::StoreError;
use crate::memory::MemoryStore;
use crate::model::Item;

/// Control-table key prefix of owners caches.
pub const OWNERS_PK_PREFIX: &str = "OWNERS#";
/// Sort key of a cache's head item.
pub const OWNERS_META_SK: &str = "META";
/// Most bytes of owners JSON in one chunk item.
pub const CHUNK_MAX_BYTES: usize = 300_000;
/// Reads of a cache that a concurrent refresh left incomplete, at most.
const READ_ATTEMPTS: usize = 3;

/// A portal's cached owners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedOwners {
    pub owners: Owners,
    /// When they were read from HubSpot (epoch ms).
    pub refreshed_at_ms: i64,
}

/// Storage of owners caches.
pub trait OwnersCacheStore: Send + Sync {
    /// The portal's cached owners, if a refresh ever stored them.
    fn get_owners_cache(
        &self,
        portal: PortalId,
    ) -> impl Future<Output = Result<Option<CachedOwners>, StoreError>> + Send;

    /// Replaces the portal's cached owners with `owners`, read from HubSpot
    /// at `refreshed_at_ms`. A cache already refreshed later is kept.
    /// Returns the write requests made.
    fn put_owners_cache(
        &self,
        portal: PortalId,
        owners: &Owners,
        refreshed_at_ms: i64,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Claims the right to refresh the portal's owners on demand: `true`
    /// when no claim was made in the `min_interval_ms` before `now_ms` (a
    /// conditional write, so that concurrent workers refresh once).
    fn claim_owners_refresh(
        &self,
        portal: PortalId,
        now_ms: i64,
        min_interval_ms: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

fn pk(portal: PortalId) -> String {
    format!("{OWNERS_PK_PREFIX}{portal}")
}

fn chunk_prefix(generation: i64) -> String {
    format!("CHUNK#{generation:013}#")
}

/// The owners split into JSON chunks of at most [`CHUNK_MAX_BYTES`].
fn chunks(owners: &Owners) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    let mut current: BTreeMap<&str, &hubsync_mapping::OwnerInfo> = BTreeMap::new();
    let mut size = 2;
    for (id, info) in owners.iter() {
        let entry = serde_json::to_string(info).map_err(StoreError::Fields)?;
        let entry_size = id.len() + entry.len() + 4;
        if !current.is_empty() && size + entry_size > CHUNK_MAX_BYTES {
            out.push(serde_json::to_string(&current).map_err(StoreError::Fields)?);
            current.clear();
            size = 2;
        }
        current.insert(id, info);
        size += entry_size;
    }
    if !current.is_empty() || out.is_empty() {
        out.push(serde_json::to_string(&current).map_err(StoreError::Fields)?);
    }
    Ok(out)
}

fn number(item: &Item, name: &str) -> Option<i64> {
    match item.get(name) {
        Some(AttributeValue::N(n)) => n.parse().ok(),
        _ => None,
    }
}

fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(s)) => Some(s),
        _ => None,
    }
}

/// The cache from a partition's items; `Err(())` when the chunks `META`
/// names are not all there (a refresh in flight).
fn assemble(items: &[Item]) -> Result<Option<CachedOwners>, Result<(), StoreError>> {
    let Some(meta) = items.iter().find(|i| text(i, "sk") == Some(OWNERS_META_SK)) else {
        return Ok(None);
    };
    let (Some(generation), Some(count), Some(refreshed_at_ms)) = (
        number(meta, "generation"),
        number(meta, "chunks"),
        number(meta, "refreshed_at_ms"),
    ) else {
        // Only a claim was stored so far.
        return Ok(None);
    };
    let prefix = chunk_prefix(generation);
    let mut owners = Owners::new();
    let mut found = 0;
    for item in items {
        if !text(item, "sk").is_some_and(|sk| sk.starts_with(&prefix)) {
            continue;
        }
        let json = text(item, "owners").ok_or_else(|| {
            Err(StoreError::InvalidInput(
                "owners cache chunk has no `owners` text".into(),
            ))
        })?;
        let chunk: Owners = serde_json::from_str(json).map_err(|e| {
            Err(StoreError::InvalidInput(format!(
                "owners cache chunk does not parse: {e}"
            )))
        })?;
        owners.extend(chunk);
        found += 1;
    }
    if found != count {
        return Err(Ok(()));
    }
    Ok(Some(CachedOwners {
        owners,
        refreshed_at_ms,
    }))
}

impl DynamoStore {
    async fn query_owners_partition(&self, portal: PortalId) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let (page, next) = self.control_partition_page(pk(portal), start).await?;
            items.extend(page);
            match next {
                Some(k) => start = Some(k),
                None => return Ok(items),
            }
        }
    }

    fn owners_key(portal: PortalId, sk: String) -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("pk".to_owned(), AttributeValue::S(pk(portal))),
            ("sk".to_owned(), AttributeValue::S(sk)),
        ])
    }

    async fn delete_owners_item(&self, portal: PortalId, sk: String) -> Result<(), StoreError> {
        self.stats().count_write();
        self.client()
            .delete_item()
            .table_name(&self.config().control_table)
            .set_key(Some(Self::owners_key(portal, sk)))
            .send()
            .await
            .map_err(|e| sdk_error("DeleteItem", e))?;
        Ok(())
    }
}

impl OwnersCacheStore for DynamoStore {
    async fn get_owners_cache(&self, portal: PortalId) -> Result<Option<CachedOwners>, StoreError> {
        for _ in 0..READ_ATTEMPTS {
            let items = self.query_owners_partition(portal).await?;
            match assemble(&items) {
                Ok(cache) => return Ok(cache),
                Err(Err(e)) => return Err(e),
                Err(Ok(())) => continue,
            }
        }
        Err(StoreError::ConditionFailed {
            operation: "get_owners_cache",
        })
    }

    async fn put_owners_cache(
        &self,
        portal: PortalId,
        owners: &Owners,
        refreshed_at_ms: i64,
    ) -> Result<u64, StoreError> {
        let parts = chunks(owners)?;
        let old: Vec<String> = self
            .query_owners_partition(portal)
            .await?
            .iter()
            .filter_map(|i| text(i, "sk"))
            .filter(|sk| sk.starts_with("CHUNK#"))
            .map(str::to_owned)
            .collect();
        let prefix = chunk_prefix(refreshed_at_ms);
        for (i, json) in parts.iter().enumerate() {
            let mut item = Self::owners_key(portal, format!("{prefix}{i:04}"));
            item.insert("owners".into(), AttributeValue::S(json.clone()));
            self.stats().count_write();
            self.client()
                .put_item()
                .table_name(&self.config().control_table)
                .set_item(Some(item))
                .send()
                .await
                .map_err(|e| sdk_error("PutItem", e))?;
        }
        self.stats().count_write();
        let moved = self
            .client()
            .update_item()
            .table_name(&self.config().control_table)
            .set_key(Some(Self::owners_key(portal, OWNERS_META_SK.into())))
            .update_expression("SET generation = :g, chunks = :n, refreshed_at_ms = :g")
            .condition_expression("attribute_not_exists(generation) OR generation < :g")
            .expression_attribute_values(":g", AttributeValue::N(refreshed_at_ms.to_string()))
            .expression_attribute_values(":n", AttributeValue::N(parts.len().to_string()))
            .send()
            .await;
        let stale: Vec<String> = match moved {
            Ok(_) => old
                .into_iter()
                .filter(|sk| !sk.starts_with(&prefix))
                .collect(),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                // A later refresh won: this one's chunks are not used.
                (0..parts.len())
                    .map(|i| format!("{prefix}{i:04}"))
                    .collect()
            }
            Err(e) => return Err(sdk_error("UpdateItem", e)),
        };
        let writes = (parts.len() + 1 + stale.len()) as u64;
        for sk in stale {
            self.delete_owners_item(portal, sk).await?;
        }
        Ok(writes)
    }

    async fn claim_owners_refresh(
        &self,
        portal: PortalId,
        now_ms: i64,
        min_interval_ms: i64,
    ) -> Result<bool, StoreError> {
        self.claim_refresh(
            Self::owners_key(portal, OWNERS_META_SK.into()),
            now_ms,
            min_interval_ms,
        )
        .await
    }
}

impl DynamoStore {
    /// Claims an on-demand refresh recorded on the Control item `key`:
    /// `true` when no claim was made in the `min_interval_ms` before
    /// `now_ms` (a conditional write, so that concurrent workers refresh
    /// once). Shared by the owners and the pipelines caches.
    pub(crate) async fn claim_refresh(
        &self,
        key: HashMap<String, AttributeValue>,
        now_ms: i64,
        min_interval_ms: i64,
    ) -> Result<bool, StoreError> {
        self.stats().count_write();
        let out = self
            .client()
            .update_item()
            .table_name(&self.config().control_table)
            .set_key(Some(key))
            .update_expression("SET refresh_claimed_at_ms = :now")
            .condition_expression(
                "attribute_not_exists(refresh_claimed_at_ms) OR refresh_claimed_at_ms <= :cutoff",
            )
            .expression_attribute_values(":now", AttributeValue::N(now_ms.to_string()))
            .expression_attribute_values(
                ":cutoff",
                AttributeValue::N(now_ms.saturating_sub(min_interval_ms).to_string()),
            )
            .send()
            .await;
        match out {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(sdk_error("UpdateItem", e)),
        }
    }
}

/// One portal's cache in the in-memory store.
#[derive(Debug, Clone, Default)]
struct MemoryOwners {
    cache: Option<CachedOwners>,
    claimed_at_ms: Option<i64>,
}

/// Owners caches of the in-memory store, shared by its clones.
#[derive(Debug, Clone, Default)]
pub struct OwnersItems(Arc<Mutex<BTreeMap<PortalId, MemoryOwners>>>);

impl OwnersItems {
    fn with<T>(&self, f: impl FnOnce(&mut BTreeMap<PortalId, MemoryOwners>) -> T) -> T {
        let mut g = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut g)
    }
}

impl OwnersCacheStore for MemoryStore {
    async fn get_owners_cache(&self, portal: PortalId) -> Result<Option<CachedOwners>, StoreError> {
        self.stats().count_read();
        Ok(self
            .owners
            .with(|m| m.get(&portal).and_then(|o| o.cache.clone())))
    }

    async fn put_owners_cache(
        &self,
        portal: PortalId,
        owners: &Owners,
        refreshed_at_ms: i64,
    ) -> Result<u64, StoreError> {
        // As many writes as DynamoDB would need (chunks and the head).
        let writes = chunks(owners)?.len() as u64 + 1;
        for _ in 0..writes {
            self.stats().count_write();
        }
        self.owners.with(|m| {
            let entry = m.entry(portal).or_default();
            if entry
                .cache
                .as_ref()
                .is_none_or(|c| c.refreshed_at_ms < refreshed_at_ms)
            {
                entry.cache = Some(CachedOwners {
                    owners: owners.clone(),
                    refreshed_at_ms,
                });
            }
        });
        Ok(writes)
    }

    async fn claim_owners_refresh(
        &self,
        portal: PortalId,
        now_ms: i64,
        min_interval_ms: i64,
    ) -> Result<bool, StoreError> {
        self.stats().count_write();
        Ok(self.owners.with(|m| {
            claim_in_memory(
                &mut m.entry(portal).or_default().claimed_at_ms,
                now_ms,
                min_interval_ms,
            )
        }))
    }
}

/// The in-memory store's claim of an on-demand refresh (owners and
/// pipelines): free when the last claim is `min_interval_ms` old.
pub(crate) fn claim_in_memory(
    claimed_at_ms: &mut Option<i64>,
    now_ms: i64,
    min_interval_ms: i64,
) -> bool {
    let free = claimed_at_ms.is_none_or(|at| at <= now_ms.saturating_sub(min_interval_ms));
    if free {
        *claimed_at_ms = Some(now_ms);
    }
    free
}

#[cfg(test)]
mod tests {
    use super::*;

    fn many(n: usize) -> Owners {
        let mut o = Owners::new();
        for i in 0..n {
            o.insert(
                format!("{}", 1000 + i),
                Some(&format!("owner{i}@example.com")),
                Some("First"),
                Some("Last"),
            );
        }
        o
    }

    #[test]
    fn large_portals_are_chunked_below_the_item_limit() {
        let owners = many(20_000);
        let parts = chunks(&owners).unwrap();
        assert!(parts.len() > 1, "{} chunk(s)", parts.len());
        assert!(parts.iter().all(|p| p.len() <= CHUNK_MAX_BYTES));
        let mut back = Owners::new();
        for p in &parts {
            back.extend(serde_json::from_str(p).unwrap());
        }
        assert_eq!(back, owners);
        assert_eq!(chunks(&Owners::new()).unwrap(), vec!["{}".to_owned()]);
    }

    #[test]
    fn a_cache_with_missing_chunks_is_not_used() {
        let owners = many(3);
        let json = chunks(&owners).unwrap().remove(0);
        let meta: Item = HashMap::from([
            ("sk".into(), AttributeValue::S(OWNERS_META_SK.into())),
            ("generation".into(), AttributeValue::N("5".into())),
            ("chunks".into(), AttributeValue::N("2".into())),
            ("refreshed_at_ms".into(), AttributeValue::N("5".into())),
        ]);
        let chunk = |sk: String| -> Item {
            HashMap::from([
                ("sk".into(), AttributeValue::S(sk)),
                ("owners".into(), AttributeValue::S(json.clone())),
            ])
        };
        let one = vec![chunk(format!("{}0000", chunk_prefix(5))), meta.clone()];
        assert!(matches!(assemble(&one), Err(Ok(()))));
        let both = vec![
            chunk(format!("{}0000", chunk_prefix(4))),
            chunk(format!("{}0000", chunk_prefix(5))),
            chunk(format!("{}0001", chunk_prefix(5))),
            meta,
        ];
        let cache = assemble(&both).unwrap().unwrap();
        assert_eq!(cache.owners, owners);
        assert_eq!(cache.refreshed_at_ms, 5);
        assert_eq!(assemble(&[]).unwrap(), None);
    }

    #[tokio::test]
    async fn memory_claims_are_spaced_and_caches_move_forward() {
        let s = MemoryStore::new();
        let p = PortalId(7);
        assert_eq!(s.get_owners_cache(p).await.unwrap(), None);
        assert!(s.claim_owners_refresh(p, 1_000, 300_000).await.unwrap());
        assert!(!s.claim_owners_refresh(p, 200_000, 300_000).await.unwrap());
        assert!(s.claim_owners_refresh(p, 301_000, 300_000).await.unwrap());
        s.put_owners_cache(p, &many(2), 10).await.unwrap();
        s.put_owners_cache(p, &many(1), 5).await.unwrap();
        let c = s.get_owners_cache(p).await.unwrap().unwrap();
        assert_eq!((c.owners.len(), c.refreshed_at_ms), (2, 10));
    }
}
