//! Per-portal mapping configs (Control table).
//!
//! One item per portal at `pk = "MAPPING#{portal}"`, `sk = "CONFIG"`:
//! `config` (the [`MappingConfig`] as JSON text), `revision` (a counter
//! bumped by every save) and `updated_at` (RFC 3339). A portal without an
//! item uses [`MappingConfig::default`]. The store does not validate: save
//! through `hubsync_mapping::validate` (the CLI and library functions in
//! `hubsync-local` do).

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use chrono::{SecondsFormat, Utc};
use hubsync_mapping::ids::PortalId;
use hubsync_mapping::MappingConfig;

use crate::dynamo::{sdk_error, DynamoStore};
use crate::error::StoreError;
use crate::memory::MemoryStore;
use crate::model::Item;

/// Control-table key prefix of mapping configs.
pub const MAPPING_PK_PREFIX: &str = "MAPPING#";
/// Control-table sort key of a mapping config.
pub const MAPPING_SK: &str = "CONFIG";

/// A saved config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMappingConfig {
    pub config: MappingConfig,
    /// 1 for the first save, +1 for each later one.
    pub revision: u64,
    /// When it was saved (RFC 3339).
    pub updated_at: String,
}

/// Storage of mapping configs.
pub trait MappingConfigStore: Send + Sync {
    /// The portal's saved config, if any.
    fn get_mapping_config(
        &self,
        portal: PortalId,
    ) -> impl Future<Output = Result<Option<StoredMappingConfig>, StoreError>> + Send;

    /// Saves (replaces) the portal's config; returns the new revision.
    fn put_mapping_config(
        &self,
        portal: PortalId,
        config: &MappingConfig,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Every saved config with its portal, in portal order (a Scan of the
    /// Control table's mapping items: for operators' tools, not hot paths).
    fn list_mapping_configs(
        &self,
    ) -> impl Future<Output = Result<Vec<(PortalId, StoredMappingConfig)>, StoreError>> + Send;

    /// Removes the portal's config (back to the defaults). `true` if one
    /// was stored.
    fn delete_mapping_config(
        &self,
        portal: PortalId,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The config to map with: the saved one, else the defaults.
    fn effective_mapping_config(
        &self,
        portal: PortalId,
    ) -> impl Future<Output = Result<MappingConfig, StoreError>> + Send {
        async move {
            Ok(self
                .get_mapping_config(portal)
                .await?
                .map(|s| s.config)
                .unwrap_or_default())
        }
    }
}

fn key(portal: PortalId) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (
            "pk".to_owned(),
            AttributeValue::S(format!("{MAPPING_PK_PREFIX}{portal}")),
        ),
        ("sk".to_owned(), AttributeValue::S(MAPPING_SK.to_owned())),
    ])
}

fn config_json(config: &MappingConfig) -> Result<String, StoreError> {
    serde_json::to_string(config).map_err(StoreError::Fields)
}

/// The portal of a mapping item's `pk` (`MAPPING#{portal}`).
fn portal_of(item: &Item) -> Result<PortalId, StoreError> {
    match item.get("pk") {
        Some(AttributeValue::S(pk)) => pk
            .strip_prefix(MAPPING_PK_PREFIX)
            .and_then(|p| p.parse::<u64>().ok())
            .map(PortalId)
            .ok_or_else(|| {
                StoreError::InvalidInput("a mapping item's pk is not MAPPING#{portal}".into())
            }),
        _ => Err(StoreError::InvalidInput("a mapping item has no pk".into())),
    }
}

fn from_item(item: &Item) -> Result<StoredMappingConfig, StoreError> {
    let text = match item.get("config") {
        Some(AttributeValue::S(s)) => s,
        _ => {
            return Err(StoreError::InvalidInput(
                "stored mapping config has no `config` text".into(),
            ))
        }
    };
    let config = MappingConfig::from_json(text).map_err(|e| {
        StoreError::InvalidInput(format!("stored mapping config does not parse: {e}"))
    })?;
    let revision = match item.get("revision") {
        Some(AttributeValue::N(n)) => n.parse().unwrap_or(0),
        _ => 0,
    };
    let updated_at = match item.get("updated_at") {
        Some(AttributeValue::S(s)) => s.clone(),
        _ => String::new(),
    };
    Ok(StoredMappingConfig {
        config,
        revision,
        updated_at,
    })
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl MappingConfigStore for DynamoStore {
    async fn get_mapping_config(
        &self,
        portal: PortalId,
    ) -> Result<Option<StoredMappingConfig>, StoreError> {
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
        out.item
            .filter(|i| !i.is_empty())
            .map(|i| from_item(&i))
            .transpose()
    }

    async fn put_mapping_config(
        &self,
        portal: PortalId,
        config: &MappingConfig,
    ) -> Result<u64, StoreError> {
        let json = config_json(config)?;
        self.stats().count_write();
        let out = self
            .client()
            .update_item()
            .table_name(&self.config().control_table)
            .set_key(Some(key(portal)))
            .update_expression("SET #c = :c, updated_at = :t ADD revision :one")
            .expression_attribute_names("#c", "config")
            .expression_attribute_values(":c", AttributeValue::S(json))
            .expression_attribute_values(":t", AttributeValue::S(now()))
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| sdk_error("UpdateItem", e))?;
        Ok(out
            .attributes
            .as_ref()
            .map(from_item)
            .transpose()?
            .map_or(0, |s| s.revision))
    }

    async fn list_mapping_configs(
        &self,
    ) -> Result<Vec<(PortalId, StoredMappingConfig)>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            self.stats().count_read();
            let page = self
                .client()
                .scan()
                .table_name(&self.config().control_table)
                .filter_expression("begins_with(pk, :p) AND sk = :s")
                .expression_attribute_values(":p", AttributeValue::S(MAPPING_PK_PREFIX.into()))
                .expression_attribute_values(":s", AttributeValue::S(MAPPING_SK.into()))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk_error("Scan", e))?;
            for item in page.items() {
                out.push((portal_of(item)?, from_item(item)?));
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        out.sort_by_key(|(p, _)| *p);
        Ok(out)
    }

    async fn delete_mapping_config(&self, portal: PortalId) -> Result<bool, StoreError> {
        self.stats().count_write();
        let out = self
            .client()
            .delete_item()
            .table_name(&self.config().control_table)
            .set_key(Some(key(portal)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| sdk_error("DeleteItem", e))?;
        Ok(out.attributes.is_some_and(|a| !a.is_empty()))
    }
}

/// Mapping configs of the in-memory store, shared by its clones.
#[derive(Debug, Clone, Default)]
pub struct MappingItems(Arc<Mutex<BTreeMap<PortalId, Item>>>);

impl MappingItems {
    fn with<T>(&self, f: impl FnOnce(&mut BTreeMap<PortalId, Item>) -> T) -> T {
        let mut g = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut g)
    }
}

impl MappingConfigStore for MemoryStore {
    async fn get_mapping_config(
        &self,
        portal: PortalId,
    ) -> Result<Option<StoredMappingConfig>, StoreError> {
        self.stats().count_read();
        self.mappings
            .with(|m| m.get(&portal).cloned())
            .map(|i| from_item(&i))
            .transpose()
    }

    async fn put_mapping_config(
        &self,
        portal: PortalId,
        config: &MappingConfig,
    ) -> Result<u64, StoreError> {
        let json = config_json(config)?;
        self.stats().count_write();
        Ok(self.mappings.with(|m| {
            let revision = m
                .get(&portal)
                .and_then(|i| match i.get("revision") {
                    Some(AttributeValue::N(n)) => n.parse::<u64>().ok(),
                    _ => None,
                })
                .unwrap_or(0)
                + 1;
            let mut item = key(portal);
            item.insert("config".into(), AttributeValue::S(json));
            item.insert("updated_at".into(), AttributeValue::S(now()));
            item.insert("revision".into(), AttributeValue::N(revision.to_string()));
            m.insert(portal, item);
            revision
        }))
    }

    async fn list_mapping_configs(
        &self,
    ) -> Result<Vec<(PortalId, StoredMappingConfig)>, StoreError> {
        self.stats().count_read();
        let items: Vec<(PortalId, Item)> = self
            .mappings
            .with(|m| m.iter().map(|(p, i)| (*p, i.clone())).collect());
        items
            .into_iter()
            .map(|(p, i)| Ok((p, from_item(&i)?)))
            .collect()
    }

    async fn delete_mapping_config(&self, portal: PortalId) -> Result<bool, StoreError> {
        self.stats().count_write();
        Ok(self.mappings.with(|m| m.remove(&portal).is_some()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hubsync_mapping::{ObjectType, Rule, ScopeFilter, Transform};

    #[tokio::test]
    async fn memory_store_saves_revisions_and_falls_back_to_defaults() {
        let s = MemoryStore::new();
        let p = PortalId(42);
        assert_eq!(s.get_mapping_config(p).await.unwrap(), None);
        assert_eq!(
            s.effective_mapping_config(p).await.unwrap(),
            MappingConfig::default()
        );
        let mut c = MappingConfig::default();
        c.object_mut(ObjectType::Deals).rules.push(Rule::new(
            "region",
            &["region"],
            Transform::String,
        ));
        c.object_mut(ObjectType::Deals).scope.push(ScopeFilter {
            property: "pipeline".into(),
            values: vec!["default".into()],
        });
        assert_eq!(s.put_mapping_config(p, &c).await.unwrap(), 1);
        assert_eq!(s.put_mapping_config(p, &c).await.unwrap(), 2);
        let stored = s.get_mapping_config(p).await.unwrap().unwrap();
        assert_eq!(stored.config, c);
        assert_eq!(stored.revision, 2);
        assert!(!stored.updated_at.is_empty());
        assert_eq!(s.stats().writes(), 2);
        assert!(s.delete_mapping_config(p).await.unwrap());
        assert!(!s.delete_mapping_config(p).await.unwrap());
        assert_eq!(s.get_mapping_config(p).await.unwrap(), None);
    }
}
