//! Sync incidents: a portal's object type that could not be synced as a
//! group — HubSpot refused (a missing scope, another 4xx), kept rate
//! limiting, or storage failed — with the records it held up. Sync health
//! lists them next to the per-record issues. An incident is cleared when
//! the type syncs cleanly again (the worker after a clean group it had
//! seen fail, the reconciliation after every completed type), and expires
//! after [`INCIDENT_RETENTION_SECS`] regardless.
//!
//! Control table: `pk = "HEALTH#{portal}"`, `sk = "{objectType}#{category}"`.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use aws_sdk_dynamodb::types::AttributeValue;
use hubsync_mapping::ids::{ObjectId, ObjectType, PortalId};
use serde::{Deserialize, Serialize};

use crate::dynamo::sdk_error;
use crate::error::StoreError;
use crate::model::{now_ms, Item};
use crate::{DynamoStore, MemoryStore, CONTROL_TTL_ATTRIBUTE};

/// Control-table key prefix of incidents.
pub const INCIDENT_PK_PREFIX: &str = "HEALTH#";
/// How long an incident is kept without recurring.
pub const INCIDENT_RETENTION_SECS: i64 = 7 * 24 * 3600;
/// Record ids kept as examples per incident.
pub const INCIDENT_EXAMPLES: usize = 20;

/// One incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    pub portal_id: PortalId,
    pub object_type: ObjectType,
    /// `permission`, `hubspot_4xx`, `rate_limit`, `hubspot_unavailable`,
    /// `storage`.
    pub category: String,
    /// The latest error, without data (ids and HubSpot's categories only).
    pub message: String,
    /// Times a group failed this way.
    pub occurrences: u64,
    /// Records held up, all occurrences together (a record retried counts
    /// again).
    pub affected_records: u64,
    /// Ids of the latest occurrence's records (at most
    /// [`INCIDENT_EXAMPLES`]).
    pub example_ids: Vec<ObjectId>,
    /// Epoch ms.
    pub first_at_ms: i64,
    pub last_at_ms: i64,
}

/// Where incidents are kept.
pub trait IncidentStore: Send + Sync {
    /// Records (or adds to) the incident of `category` for the portal's
    /// type, held up records `ids`.
    fn record_incident(
        &self,
        portal: PortalId,
        object_type: ObjectType,
        category: &str,
        message: &str,
        ids: &[ObjectId],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Removes the type's incidents (it synced cleanly); how many there were.
    fn clear_incidents(
        &self,
        portal: PortalId,
        object_type: ObjectType,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send;

    /// The portal's incidents, by type and category.
    fn list_incidents(
        &self,
        portal: PortalId,
    ) -> impl Future<Output = Result<Vec<Incident>, StoreError>> + Send;
}

fn pk(portal: PortalId) -> String {
    format!("{INCIDENT_PK_PREFIX}{portal}")
}

fn sk(object_type: ObjectType, category: &str) -> String {
    format!("{}#{category}", object_type.as_api_path())
}

fn examples(ids: &[ObjectId]) -> Vec<ObjectId> {
    ids.iter().take(INCIDENT_EXAMPLES).copied().collect()
}

fn incident_from_item(mut item: Item) -> Result<Incident, StoreError> {
    for k in ["pk", "sk", CONTROL_TTL_ATTRIBUTE] {
        item.remove(k);
    }
    Ok(serde_dynamo::aws_sdk_dynamodb_1::from_item(item)?)
}

impl DynamoStore {
    async fn incident_items(
        &self,
        portal: PortalId,
        prefix: Option<&str>,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            self.stats().count_read();
            let mut req = self
                .client()
                .query()
                .table_name(&self.config().control_table)
                .expression_attribute_values(":pk", AttributeValue::S(pk(portal)))
                .set_exclusive_start_key(start);
            req = match prefix {
                Some(p) => req
                    .key_condition_expression("pk = :pk AND begins_with(sk, :p)")
                    .expression_attribute_values(":p", AttributeValue::S(p.to_owned())),
                None => req.key_condition_expression("pk = :pk"),
            };
            let out = req.send().await.map_err(|e| sdk_error("Query", e))?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key.filter(|k| !k.is_empty()) {
                Some(k) => start = Some(k),
                None => return Ok(items),
            }
        }
    }
}

impl IncidentStore for DynamoStore {
    async fn record_incident(
        &self,
        portal: PortalId,
        object_type: ObjectType,
        category: &str,
        message: &str,
        ids: &[ObjectId],
    ) -> Result<(), StoreError> {
        use serde_dynamo::aws_sdk_dynamodb_1::to_attribute_value as av;
        let now = now_ms();
        self.stats().count_write();
        self.client()
            .update_item()
            .table_name(&self.config().control_table)
            .key("pk", AttributeValue::S(pk(portal)))
            .key("sk", AttributeValue::S(sk(object_type, category)))
            .update_expression(
                "SET #portal = :portal, #type = :type, #cat = :cat, #msg = :msg, #ids = :ids, \
                 #last = :now, #first = if_not_exists(#first, :now), #ttl = :ttl \
                 ADD #occ :one, #aff :n",
            )
            .expression_attribute_names("#portal", "portal_id")
            .expression_attribute_names("#type", "object_type")
            .expression_attribute_names("#cat", "category")
            .expression_attribute_names("#msg", "message")
            .expression_attribute_names("#ids", "example_ids")
            .expression_attribute_names("#last", "last_at_ms")
            .expression_attribute_names("#first", "first_at_ms")
            .expression_attribute_names("#occ", "occurrences")
            .expression_attribute_names("#aff", "affected_records")
            .expression_attribute_names("#ttl", CONTROL_TTL_ATTRIBUTE)
            .expression_attribute_values(":portal", av(portal)?)
            .expression_attribute_values(":type", av(object_type)?)
            .expression_attribute_values(":cat", AttributeValue::S(category.to_owned()))
            .expression_attribute_values(":msg", AttributeValue::S(message.to_owned()))
            .expression_attribute_values(":ids", av(examples(ids))?)
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .expression_attribute_values(
                ":ttl",
                AttributeValue::N((now / 1000 + INCIDENT_RETENTION_SECS).to_string()),
            )
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":n", AttributeValue::N(ids.len().to_string()))
            .send()
            .await
            .map_err(|e| sdk_error("UpdateItem", e))?;
        Ok(())
    }

    async fn clear_incidents(
        &self,
        portal: PortalId,
        object_type: ObjectType,
    ) -> Result<usize, StoreError> {
        let prefix = format!("{}#", object_type.as_api_path());
        let items = self.incident_items(portal, Some(&prefix)).await?;
        for item in &items {
            let Some(sk) = item.get("sk").cloned() else {
                continue;
            };
            self.stats().count_write();
            self.client()
                .delete_item()
                .table_name(&self.config().control_table)
                .key("pk", AttributeValue::S(pk(portal)))
                .key("sk", sk)
                .send()
                .await
                .map_err(|e| sdk_error("DeleteItem", e))?;
        }
        Ok(items.len())
    }

    async fn list_incidents(&self, portal: PortalId) -> Result<Vec<Incident>, StoreError> {
        self.incident_items(portal, None)
            .await?
            .into_iter()
            .map(incident_from_item)
            .collect()
    }
}

/// The in-memory store's incidents, shared by its clones.
#[derive(Debug, Clone, Default)]
pub struct IncidentItems(Arc<Mutex<BTreeMap<(PortalId, String), Incident>>>);

impl IncidentItems {
    fn with<T>(&self, f: impl FnOnce(&mut BTreeMap<(PortalId, String), Incident>) -> T) -> T {
        let mut g = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut g)
    }
}

impl IncidentStore for MemoryStore {
    async fn record_incident(
        &self,
        portal: PortalId,
        object_type: ObjectType,
        category: &str,
        message: &str,
        ids: &[ObjectId],
    ) -> Result<(), StoreError> {
        self.stats().count_write();
        let now = now_ms();
        self.incidents.with(|m| {
            let e = m
                .entry((portal, sk(object_type, category)))
                .or_insert_with(|| Incident {
                    portal_id: portal,
                    object_type,
                    category: category.to_owned(),
                    message: String::new(),
                    occurrences: 0,
                    affected_records: 0,
                    example_ids: Vec::new(),
                    first_at_ms: now,
                    last_at_ms: now,
                });
            e.message = message.to_owned();
            e.occurrences += 1;
            e.affected_records += ids.len() as u64;
            e.example_ids = examples(ids);
            e.last_at_ms = now;
        });
        Ok(())
    }

    async fn clear_incidents(
        &self,
        portal: PortalId,
        object_type: ObjectType,
    ) -> Result<usize, StoreError> {
        self.stats().count_read();
        let prefix = format!("{}#", object_type.as_api_path());
        Ok(self.incidents.with(|m| {
            let before = m.len();
            m.retain(|(p, sk), _| !(*p == portal && sk.starts_with(&prefix)));
            before - m.len()
        }))
    }

    async fn list_incidents(&self, portal: PortalId) -> Result<Vec<Incident>, StoreError> {
        self.stats().count_read();
        Ok(self.incidents.with(|m| {
            m.iter()
                .filter(|((p, _), _)| *p == portal)
                .map(|(_, i)| i.clone())
                .collect()
        }))
    }
}
