//! The DynamoDB store.

use std::collections::BTreeSet;
use std::time::Duration;

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::config::AsyncSleep;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, KeysAndAttributes,
    ReturnValue, ReturnValuesOnConditionCheckFailure, ScalarAttributeType, TableStatus,
    TimeToLiveSpecification, TimeToLiveStatus,
};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use hubsync_mapping::ids::{ObjectId, ObjectType, PortalId};

use crate::config::StoreConfig;
use crate::error::StoreError;
use crate::model::portal_of_connection_pk;
use crate::model::{
    archive_attributes, attr, classify_purge, classify_refused_archive, classify_refused_delete,
    classify_refused_swap, classify_refused_upsert, conn_attr, connection_from_item,
    connection_item, connection_key, lease_item, lease_key, now_ms, now_rfc3339, parse_sort_key,
    partition_key, record_item, rfc3339_from_ms, sort_key, status_attributes, token_attributes,
    tombstone_item, ArchiveOutcome, ArchiveReason, Connection, ConnectionStatus, DeleteOutcome,
    Item, Lease, PurgeOutcome, RecordKey, RecordPage, RecordWrite, StoredMeta, StoredRecord,
    TokenSwap, TokenUpdate, UpsertOutcome, CONNECTION_PK_PREFIX, CONNECTION_SK, TENANT_INDEX,
    TENANT_INDEX_KEY,
};
use crate::stats::StoreStats;
use crate::traits::{ConnectionStore, RecordStore, TokenStore};
use crate::BATCH_GET_MAX_KEYS;

mod records;

mod tables;
pub use tables::*;

/// The Control table's TTL attribute (epoch seconds), as in `template.yaml`.
pub const CONTROL_TTL_ATTRIBUTE: &str = "expires_at_epoch";

/// How often `BatchGetItem` is re-sent for unprocessed keys before the
/// store gives up with [`StoreError::Throttled`].
const MAX_UNPROCESSED_RETRIES: u32 = 8;

/// AWS error codes that mean "slow down".
const THROTTLING_CODES: [&str; 3] = [
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
];

/// AWS error codes worth retrying besides throttling.
const TRANSIENT_CODES: [&str; 4] = [
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionConflictException",
    "ItemCollectionSizeLimitExceededException",
];

/// Converts an SDK error, deciding whether it is retryable. The error is
/// kept whole as the source.
pub(crate) fn sdk_error<E>(operation: &'static str, err: SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let code = err.code().map(str::to_owned);
    if code
        .as_deref()
        .is_some_and(|c| THROTTLING_CODES.contains(&c))
    {
        return StoreError::Throttled {
            operation,
            source: Some(Box::new(err)),
        };
    }
    let retryable = match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(ctx) => {
            code.as_deref()
                .is_some_and(|c| TRANSIENT_CODES.contains(&c))
                || ctx.raw().status().is_server_error()
        }
        _ => false,
    };
    StoreError::Sdk {
        operation,
        code,
        retryable,
        source: Box::new(err),
    }
}

fn build_error(operation: &'static str, err: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Sdk {
        operation,
        code: None,
        retryable: false,
        source: Box::new(err),
    }
}

/// Expression placeholders (without `#`/`:`) and the attribute name and
/// value each stands for.
type Placeholders = Vec<(String, (&'static str, AttributeValue))>;

/// `SET #u0 = :u0, #u1 = :u1, ...` for the given attributes.
fn set_clause(attributes: Vec<(&'static str, AttributeValue)>) -> (String, Placeholders) {
    let placeholders: Placeholders = attributes
        .into_iter()
        .enumerate()
        .map(|(i, a)| (format!("u{i}"), a))
        .collect();
    let sets: Vec<String> = placeholders
        .iter()
        .map(|(p, _)| format!("#{p} = :{p}"))
        .collect();
    (format!("SET {}", sets.join(", ")), placeholders)
}

fn number(n: i64) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

fn non_empty(item: Option<&Item>) -> Option<&Item> {
    item.filter(|i| !i.is_empty())
}

/// The store on DynamoDB. Cheap to clone (the SDK client is shared); clones
/// share the counters.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    config: StoreConfig,
    stats: StoreStats,
}

impl DynamoStore {
    /// A store using `client` (build it once per Lambda instance).
    pub fn new(client: Client, config: StoreConfig) -> Self {
        Self {
            client,
            config,
            stats: StoreStats::new(),
        }
    }

    /// The request counters.
    pub fn stats(&self) -> &StoreStats {
        &self.stats
    }

    /// The table names.
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// The SDK client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The raw item of a record, every attribute (a strongly consistent
    /// GetItem, counted as a read). For tests and ops inspection.
    pub async fn raw_record_item(&self, key: &RecordKey) -> Result<Option<Item>, StoreError> {
        self.stats.count_read();
        let out = self
            .client
            .get_item()
            .table_name(&self.config.records_table)
            .set_key(Some(key.to_key_item()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", e))?;
        Ok(out.item.filter(|i| !i.is_empty()))
    }

    /// One strongly consistent Query page of the Control partition `pk`,
    /// and where the next page starts (`None`: the last page).
    pub(crate) async fn control_partition_page(
        &self,
        pk: String,
        start: Option<Item>,
    ) -> Result<(Vec<Item>, Option<Item>), StoreError> {
        self.stats.count_read();
        let out = self
            .client
            .query()
            .table_name(&self.config.control_table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(pk))
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| sdk_error("Query", e))?;
        Ok((
            out.items.unwrap_or_default(),
            out.last_evaluated_key.filter(|k| !k.is_empty()),
        ))
    }

    async fn backoff(&self, attempt: u32) {
        if let Some(sleep) = self.client.config().sleep_impl() {
            let ms = 25u64.saturating_mul(1 << attempt.min(6));
            sleep.sleep(Duration::from_millis(ms)).await;
        }
    }

    fn meta_projection() -> (String, std::collections::HashMap<String, String>) {
        let names: std::collections::HashMap<String, String> = attr::META
            .iter()
            .enumerate()
            .map(|(i, name)| (format!("#m{i}"), (*name).to_owned()))
            .collect();
        let projection = (0..attr::META.len())
            .map(|i| format!("#m{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        (projection, names)
    }
}

/// Every update of a connection also copies its tenant id into the tenant
/// index's key, so that a connection stored before the index existed joins
/// it at its next change (a webhook, a token refresh, a status change).
const TENANT_KEY_BACKFILL: &str = "#tenant_key = #tenant_id";

impl ConnectionStore for DynamoStore {
    async fn record_webhook_seen(
        &self,
        portal: PortalId,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let at = serde_dynamo::aws_sdk_dynamodb_1::to_attribute_value(at)?;
        self.stats.count_write();
        let sent = self
            .client
            .update_item()
            .table_name(&self.config.control_table)
            .set_key(Some(connection_key(portal)))
            .condition_expression("attribute_exists(#pk)")
            .update_expression(format!("SET #seen = :seen, {TENANT_KEY_BACKFILL}"))
            .expression_attribute_names("#pk", attr::PK)
            .expression_attribute_names("#tenant_key", TENANT_INDEX_KEY)
            .expression_attribute_names("#tenant_id", conn_attr::TENANT)
            .expression_attribute_names("#seen", conn_attr::LAST_WEBHOOK_AT)
            .expression_attribute_values(":seen", at)
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            Err(err) => match err.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(_)) => {
                    Err(StoreError::ConnectionNotFound { portal })
                }
                _ => Err(sdk_error("UpdateItem", err)),
            },
        }
    }

    async fn get_connection(&self, portal: PortalId) -> Result<Option<Connection>, StoreError> {
        self.stats.count_read();
        let out = self
            .client
            .get_item()
            .table_name(&self.config.control_table)
            .set_key(Some(connection_key(portal)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", e))?;
        out.item
            .filter(|i| !i.is_empty())
            .map(connection_from_item)
            .transpose()
    }

    async fn put_connection(&self, connection: &Connection) -> Result<(), StoreError> {
        let item = connection_item(connection)?;
        self.stats.count_write();
        self.client
            .put_item()
            .table_name(&self.config.control_table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| sdk_error("PutItem", e))?;
        tracing::debug!(portal = %connection.portal_id, status = ?connection.status, "connection stored");
        Ok(())
    }

    async fn set_connection_status(
        &self,
        portal: PortalId,
        status: ConnectionStatus,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut req = self
            .client
            .update_item()
            .table_name(&self.config.control_table)
            .set_key(Some(connection_key(portal)))
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", attr::PK);
        let (mut update, names) = set_clause(status_attributes(status, reason)?);
        for (placeholder, (name, value)) in names {
            req = req
                .expression_attribute_names(format!("#{placeholder}"), name)
                .expression_attribute_values(format!(":{placeholder}"), value);
        }
        update.push_str(", ");
        update.push_str(TENANT_KEY_BACKFILL);
        req = req
            .expression_attribute_names("#tenant_key", TENANT_INDEX_KEY)
            .expression_attribute_names("#tenant_id", conn_attr::TENANT);
        if !status.holds_tokens() {
            let removed: Vec<String> = (0..conn_attr::TOKENS.len())
                .map(|i| format!("#tk{i}"))
                .collect();
            update.push_str(" REMOVE ");
            update.push_str(&removed.join(", "));
            for (placeholder, name) in removed.iter().zip(conn_attr::TOKENS) {
                req = req.expression_attribute_names(placeholder, name);
            }
        }
        self.stats.count_write();
        match req.update_expression(update).send().await {
            Ok(_) => {
                tracing::info!(portal = %portal, status = ?status, "connection status changed");
                Ok(())
            }
            Err(err) => match err.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(_)) => {
                    Err(StoreError::ConnectionNotFound { portal })
                }
                _ => Err(sdk_error("UpdateItem", err)),
            },
        }
    }

    async fn list_connections(&self) -> Result<Vec<Connection>, StoreError> {
        let mut connections = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            self.stats.count_read();
            let out = self
                .client
                .scan()
                .table_name(&self.config.control_table)
                .filter_expression("begins_with(#pk, :prefix) AND #sk = :sk")
                .expression_attribute_names("#pk", attr::PK)
                .expression_attribute_names("#sk", attr::SK)
                .expression_attribute_values(
                    ":prefix",
                    AttributeValue::S(CONNECTION_PK_PREFIX.into()),
                )
                .expression_attribute_values(":sk", AttributeValue::S(CONNECTION_SK.into()))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk_error("Scan", e))?;
            for item in out.items.unwrap_or_default() {
                connections.push(connection_from_item(item)?);
            }
            match out.last_evaluated_key.filter(|k| !k.is_empty()) {
                Some(key) => start = Some(key),
                None => break,
            }
        }
        connections.sort_by_key(|c| c.portal_id);
        Ok(connections)
    }

    async fn tenant_connections(&self, tenant: &str) -> Result<Vec<Connection>, StoreError> {
        let mut portals = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            self.stats.count_read();
            let out = self
                .client
                .query()
                .table_name(&self.config.control_table)
                .index_name(TENANT_INDEX)
                .key_condition_expression("#tenant = :tenant AND begins_with(#pk, :prefix)")
                .expression_attribute_names("#tenant", TENANT_INDEX_KEY)
                .expression_attribute_names("#pk", attr::PK)
                .expression_attribute_values(":tenant", AttributeValue::S(tenant.to_owned()))
                .expression_attribute_values(
                    ":prefix",
                    AttributeValue::S(CONNECTION_PK_PREFIX.into()),
                )
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk_error("Query", e))?;
            for item in out.items.unwrap_or_default() {
                if let Some(AttributeValue::S(pk)) = item.get(attr::PK) {
                    portals.extend(portal_of_connection_pk(pk));
                }
            }
            match out.last_evaluated_key.filter(|k| !k.is_empty()) {
                Some(key) => start = Some(key),
                None => break,
            }
        }
        portals.sort();
        portals.dedup();
        let mut connections = Vec::with_capacity(portals.len());
        for portal in portals {
            if let Some(c) = self.get_connection(portal).await? {
                if c.tenant_id == tenant {
                    connections.push(c);
                }
            }
        }
        Ok(connections)
    }
}

impl TokenStore for DynamoStore {
    async fn swap_tokens(
        &self,
        portal: PortalId,
        expected_access_ciphertext: &str,
        update: &TokenUpdate,
    ) -> Result<TokenSwap, StoreError> {
        use serde_dynamo::aws_sdk_dynamodb_1::to_attribute_value as av;
        let mut req = self
            .client
            .update_item()
            .table_name(&self.config.control_table)
            .set_key(Some(connection_key(portal)))
            .condition_expression(
                "attribute_exists(#pk) AND #st IN (:active, :awaiting) AND #at = :expected",
            )
            .expression_attribute_names("#pk", attr::PK)
            .expression_attribute_names("#st", conn_attr::STATUS)
            .expression_attribute_names("#at", conn_attr::ACCESS)
            .expression_attribute_values(":active", av(ConnectionStatus::Active)?)
            .expression_attribute_values(":awaiting", av(ConnectionStatus::AwaitingSetup)?)
            .expression_attribute_values(
                ":expected",
                AttributeValue::S(expected_access_ciphertext.to_owned()),
            )
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let (mut update_expr, placeholders) = set_clause(token_attributes(update)?);
        for (placeholder, (name, value)) in placeholders {
            req = req
                .expression_attribute_names(format!("#{placeholder}"), name)
                .expression_attribute_values(format!(":{placeholder}"), value);
        }
        update_expr.push_str(", ");
        update_expr.push_str(TENANT_KEY_BACKFILL);
        req = req
            .expression_attribute_names("#tenant_key", TENANT_INDEX_KEY)
            .expression_attribute_names("#tenant_id", conn_attr::TENANT);
        self.stats.count_write();
        let outcome = match req.update_expression(update_expr).send().await {
            Ok(_) => TokenSwap::Swapped,
            Err(err) => match err.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(e)) => {
                    let stored = non_empty(e.item())
                        .cloned()
                        .map(connection_from_item)
                        .transpose()?;
                    classify_refused_swap(portal, stored.as_ref())?
                }
                _ => return Err(sdk_error("UpdateItem", err)),
            },
        };
        tracing::info!(portal = %portal, ?outcome, "swap_tokens");
        Ok(outcome)
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
        let item = lease_item(&lease)?;
        self.stats.count_write();
        // Mirrors `model::lease_available`.
        let result = self
            .client
            .put_item()
            .table_name(&self.config.control_table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk) OR #exp < :now OR #holder = :holder")
            .expression_attribute_names("#pk", attr::PK)
            .expression_attribute_names("#exp", "expires_at_ms")
            .expression_attribute_names("#holder", "holder")
            .expression_attribute_values(":now", number(now))
            .expression_attribute_values(":holder", AttributeValue::S(holder.to_owned()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Some(lease)),
            Err(err) => match err.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(_)) => Ok(None),
                _ => Err(sdk_error("PutItem", err)),
            },
        }
    }

    async fn release_lease(&self, lease: &Lease) -> Result<bool, StoreError> {
        self.stats.count_write();
        let result = self
            .client
            .delete_item()
            .table_name(&self.config.control_table)
            .set_key(Some(lease_key(&lease.name)))
            .condition_expression("#holder = :holder")
            .expression_attribute_names("#holder", "holder")
            .expression_attribute_values(":holder", AttributeValue::S(lease.holder.clone()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) => match err.as_service_error() {
                Some(DeleteItemError::ConditionalCheckFailedException(_)) => Ok(false),
                _ => Err(sdk_error("DeleteItem", err)),
            },
        }
    }
}
