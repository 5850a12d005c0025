//! An in-memory store with the DynamoDB store's semantics: the same items
//! (built by the same serde code), the same guards, the same outcomes, the
//! same request accounting. For unit tests of handlers and for benchmarks.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use hubsync_mapping::ids::{ObjectId, ObjectType, PortalId};

use crate::error::StoreError;
use crate::model::{
    archive_allowed, archive_attributes, classify_purge, classify_refused_archive,
    classify_refused_delete, classify_refused_swap, classify_refused_upsert, conn_attr,
    connection_from_item, connection_item, delete_allowed, issue_record, item_fields,
    lease_available, now_ms, now_rfc3339, partition_key, record_item, rfc3339_from_ms, sort_key,
    status_attributes, token_attributes, tombstone_item, upsert_allowed, ArchiveOutcome,
    ArchiveReason, Connection, ConnectionStatus, DeleteOutcome, IssuePage, Item, Lease,
    MetaWithFields, PurgeOutcome, RecordKey, RecordPage, RecordWrite, StoredMeta, StoredRecord,
    TokenSwap, TokenUpdate, UpsertOutcome,
};
use crate::stats::StoreStats;
use crate::traits::{ConnectionStore, RecordStore, TokenStore};
use crate::BATCH_GET_MAX_KEYS;

#[derive(Debug, Default)]
pub(crate) struct State {
    /// Records: pk → (sk → item). `sk` is zero-padded, so the inner map is
    /// in numeric id order like a DynamoDB partition.
    records: BTreeMap<String, BTreeMap<String, Item>>,
    /// Connections by portal.
    pub(crate) connections: BTreeMap<PortalId, Item>,
    /// Leases by name.
    leases: BTreeMap<String, Lease>,
    /// OAuth states by digest (see `oauth_state`).
    pub(crate) oauth_states: BTreeMap<String, Item>,
}

/// The in-memory store. Clones share the same data and counters.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
    stats: StoreStats,
    /// Checkpoints and run reports (see [`crate::sync_state`]).
    pub(crate) control: crate::sync_state::ControlItems,
    /// Mapping configs (see [`crate::mapping_config`]).
    pub(crate) mappings: crate::mapping_config::MappingItems,
    /// Owners caches (see [`crate::owners_cache`]).
    pub(crate) owners: crate::owners_cache::OwnersItems,
    /// Pipelines caches (see [`crate::pipelines_cache`]).
    pub(crate) pipelines: crate::pipelines_cache::PipelinesItems,
    /// Sync incidents (see [`crate::incidents`]).
    pub(crate) incidents: crate::incidents::IncidentItems,
    /// Journal cursors (see [`crate::journal_cursor`]).
    pub(crate) cursors: crate::journal_cursor::CursorItems,
    /// Repairs of the Webhooks Journal (see [`crate::journal_fixes`]).
    pub(crate) fixes: crate::journal_fixes::FixCounts,
    /// Gone records whose linkers wait (see [`crate::relinks`]).
    pub(crate) relinks: crate::relinks::PendingRelinks,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The request counters.
    pub fn stats(&self) -> &StoreStats {
        &self.stats
    }

    /// The raw item of a record as DynamoDB would hold it (no request is
    /// counted: this is an inspection tool for tests).
    pub fn raw_record_item(&self, key: &RecordKey) -> Option<Item> {
        self.lock()
            .records
            .get(&key.pk())
            .and_then(|p| p.get(&key.sk()))
            .cloned()
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave an item half-written
        // (every mutation is a single insert/remove), so poisoning is moot.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn stored_meta(item: Option<&Item>) -> Result<Option<StoredMeta>, StoreError> {
        item.map(StoredMeta::from_item).transpose()
    }
}

impl MemoryStore {
    /// Up to `limit` items of a partition after `after`, in id order, that
    /// pass `keep` (a Query, optionally of a sparse index).
    /// Up to `limit` items of a partition that `keep` accepts, from after
    /// `start` upwards, or (`descending`) from below it downwards.
    fn partition_page(
        &self,
        portal: PortalId,
        object_type: ObjectType,
        start: Option<ObjectId>,
        limit: usize,
        keep: impl Fn(&Item) -> bool,
        descending: bool,
    ) -> Vec<Item> {
        let state = self.lock();
        let Some(partition) = state.records.get(&partition_key(portal, object_type)) else {
            return Vec::new();
        };
        let from = match start {
            Some(id) => Bound::Excluded(sort_key(id)),
            None => Bound::Unbounded,
        };
        let picked = |it: &mut dyn Iterator<Item = (&String, &Item)>| -> Vec<Item> {
            it.filter(|(_, item)| keep(item))
                .take(limit)
                .map(|(_, item)| item.clone())
                .collect()
        };
        if descending {
            picked(&mut partition.range((Bound::Unbounded, from)).rev())
        } else {
            picked(&mut partition.range((from, Bound::Unbounded)))
        }
    }
}

impl ConnectionStore for MemoryStore {
    async fn record_webhook_seen(
        &self,
        portal: PortalId,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let at = serde_dynamo::aws_sdk_dynamodb_1::to_attribute_value(at)?;
        self.stats.count_write();
        let mut state = self.lock();
        let item = state
            .connections
            .get_mut(&portal)
            .ok_or(StoreError::ConnectionNotFound { portal })?;
        item.insert(conn_attr::LAST_WEBHOOK_AT.to_owned(), at);
        Ok(())
    }

    async fn get_connection(&self, portal: PortalId) -> Result<Option<Connection>, StoreError> {
        self.stats.count_read();
        let item = self.lock().connections.get(&portal).cloned();
        item.map(connection_from_item).transpose()
    }

    async fn put_connection(&self, connection: &Connection) -> Result<(), StoreError> {
        let item = connection_item(connection)?;
        self.stats.count_write();
        self.lock().connections.insert(connection.portal_id, item);
        Ok(())
    }

    async fn set_connection_status(
        &self,
        portal: PortalId,
        status: ConnectionStatus,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        let attributes = status_attributes(status, reason)?;
        self.stats.count_write();
        let mut state = self.lock();
        let item = state
            .connections
            .get_mut(&portal)
            .ok_or(StoreError::ConnectionNotFound { portal })?;
        for (name, value) in attributes {
            item.insert(name.to_owned(), value);
        }
        if !status.holds_tokens() {
            for name in conn_attr::TOKENS {
                item.remove(name);
            }
        }
        Ok(())
    }

    async fn list_connections(&self) -> Result<Vec<Connection>, StoreError> {
        self.stats.count_read();
        let items: Vec<Item> = self.lock().connections.values().cloned().collect();
        items.into_iter().map(connection_from_item).collect()
    }

    async fn tenant_connections(&self, tenant: &str) -> Result<Vec<Connection>, StoreError> {
        let all = self.list_connections().await?;
        Ok(all.into_iter().filter(|c| c.tenant_id == tenant).collect())
    }
}

impl TokenStore for MemoryStore {
    async fn swap_tokens(
        &self,
        portal: PortalId,
        expected_access_ciphertext: &str,
        update: &TokenUpdate,
    ) -> Result<TokenSwap, StoreError> {
        let attributes = token_attributes(update)?;
        self.stats.count_write();
        let mut state = self.lock();
        let Some(item) = state.connections.get_mut(&portal) else {
            return classify_refused_swap(portal, None);
        };
        let stored = connection_from_item(item.clone())?;
        if !stored.status.holds_tokens()
            || stored.access_token_ciphertext.as_deref() != Some(expected_access_ciphertext)
        {
            return classify_refused_swap(portal, Some(&stored));
        }
        for (name, value) in attributes {
            item.insert(name.to_owned(), value);
        }
        Ok(TokenSwap::Swapped)
    }

    async fn try_acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, StoreError> {
        let now = now_ms();
        let lease = Lease {
            name: name.to_owned(),
            holder: holder.to_owned(),
            expires_at_ms: now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)),
        };
        self.stats.count_write();
        let mut state = self.lock();
        if !lease_available(state.leases.get(name), holder, now) {
            return Ok(None);
        }
        state.leases.insert(name.to_owned(), lease.clone());
        Ok(Some(lease))
    }

    async fn release_lease(&self, lease: &Lease) -> Result<bool, StoreError> {
        self.stats.count_write();
        let mut state = self.lock();
        match state.leases.get(&lease.name) {
            Some(held) if held.holder == lease.holder => {
                state.leases.remove(&lease.name);
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

impl RecordStore for MemoryStore {
    async fn get_record_meta_fields(
        &self,
        keys: &[RecordKey],
        fields: &[String],
    ) -> Result<Vec<MetaWithFields>, StoreError> {
        let unique: BTreeSet<RecordKey> = keys.iter().copied().collect();
        let calls = unique.len().div_ceil(BATCH_GET_MAX_KEYS);
        for _ in 0..calls {
            self.stats.count_read();
        }
        let state = self.lock();
        let mut found = Vec::new();
        for key in unique {
            if let Some(item) = state.records.get(&key.pk()).and_then(|p| p.get(&key.sk())) {
                found.push((StoredMeta::from_item(item)?, item_fields(item, fields)?));
            }
        }
        Ok(found)
    }

    async fn get_record(&self, key: &RecordKey) -> Result<Option<StoredRecord>, StoreError> {
        self.stats.count_read();
        self.raw_record_item(key)
            .map(StoredRecord::from_item)
            .transpose()
    }

    async fn upsert_record(&self, write: &RecordWrite) -> Result<UpsertOutcome, StoreError> {
        let item = record_item(write, now_rfc3339())?;
        self.stats.count_write();
        let mut state = self.lock();
        let partition = state.records.entry(write.key.pk()).or_default();
        let sk = write.key.sk();
        let stored = Self::stored_meta(partition.get(&sk))?;
        if !upsert_allowed(stored.as_ref(), write.source_version, &write.content_hash) {
            return Ok(match &stored {
                Some(m) => classify_refused_upsert(m, write),
                None => UpsertOutcome::Stale,
            });
        }
        Ok(match partition.insert(sk, item) {
            None => UpsertOutcome::Created,
            Some(_) => UpsertOutcome::Updated,
        })
    }

    async fn archive_record_mapped(
        &self,
        key: &RecordKey,
        occurred_at_ms: i64,
        reason: ArchiveReason,
        merged_into: Option<ObjectId>,
        mapping_fp: Option<&str>,
    ) -> Result<ArchiveOutcome, StoreError> {
        let attributes = archive_attributes(
            occurred_at_ms,
            reason,
            merged_into,
            now_rfc3339(),
            mapping_fp,
        )?;
        self.stats.count_write();
        let mut state = self.lock();
        let item = state
            .records
            .get_mut(&key.pk())
            .and_then(|p| p.get_mut(&key.sk()));
        let stored = Self::stored_meta(item.as_deref())?;
        match item {
            Some(item) if archive_allowed(stored.as_ref(), occurred_at_ms) => {
                for (name, value) in attributes {
                    item.insert(name.to_owned(), value);
                }
                Ok(ArchiveOutcome::Archived)
            }
            _ => Ok(classify_refused_archive(stored.as_ref())),
        }
    }

    async fn privacy_purge(
        &self,
        key: &RecordKey,
        occurred_at_ms: i64,
    ) -> Result<PurgeOutcome, StoreError> {
        let item = tombstone_item(*key, rfc3339_from_ms(occurred_at_ms)?)?;
        self.stats.count_write();
        let mut state = self.lock();
        let old = state
            .records
            .entry(key.pk())
            .or_default()
            .insert(key.sk(), item);
        Ok(classify_purge(Self::stored_meta(old.as_ref())?.as_ref()))
    }

    async fn delete_record_permanently(
        &self,
        key: &RecordKey,
    ) -> Result<DeleteOutcome, StoreError> {
        self.stats.count_write();
        let mut state = self.lock();
        let Some(partition) = state.records.get_mut(&key.pk()) else {
            return classify_refused_delete(*key, None);
        };
        let sk = key.sk();
        let stored = Self::stored_meta(partition.get(&sk))?;
        if delete_allowed(stored.as_ref()) {
            partition.remove(&sk);
            Ok(DeleteOutcome::Deleted)
        } else {
            classify_refused_delete(*key, stored.as_ref())
        }
    }

    async fn scan_page(
        &self,
        portal: PortalId,
        object_type: ObjectType,
        after: Option<ObjectId>,
        limit: u32,
    ) -> Result<RecordPage, StoreError> {
        self.stats.count_read();
        let limit = usize::try_from(limit.max(1)).unwrap_or(usize::MAX);
        let items = self.partition_page(portal, object_type, after, limit, |_| true, false);
        RecordPage::from_full_or_last(items, limit)
    }

    async fn scan_page_descending(
        &self,
        portal: PortalId,
        object_type: ObjectType,
        before: Option<ObjectId>,
        limit: u32,
    ) -> Result<RecordPage, StoreError> {
        self.stats.count_read();
        let limit = usize::try_from(limit.max(1)).unwrap_or(usize::MAX);
        let items = self.partition_page(portal, object_type, before, limit, |_| true, true);
        RecordPage::from_full_or_last(items, limit)
    }

    async fn record_issues(
        &self,
        portal: PortalId,
        object_type: ObjectType,
        after: Option<ObjectId>,
        limit: u32,
    ) -> Result<IssuePage, StoreError> {
        self.stats.count_read();
        let limit = usize::try_from(limit.max(1)).unwrap_or(usize::MAX);
        let items = self.partition_page(
            portal,
            object_type,
            after,
            limit,
            |item| item.contains_key(crate::model::attr::ISSUE_KEY),
            false,
        );
        let mut records = Vec::new();
        for item in &items {
            records.extend(issue_record(item)?);
        }
        let next_after = if records.len() == limit {
            records.last().map(|r| r.key.object_id)
        } else {
            None
        };
        Ok(IssuePage {
            records,
            next_after,
        })
    }
}
