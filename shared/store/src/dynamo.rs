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
use crate::model::{
    archive_attributes, attr, classify_purge, classify_refused_archive, classify_refused_delete,
    classify_refused_swap, classify_refused_upsert, conn_attr, connection_from_item,
    connection_item, connection_key, lease_item, lease_key, now_ms, now_rfc3339, parse_sort_key,
    partition_key, record_item, rfc3339_from_ms, sort_key, status_attributes, token_attributes,
    tombstone_item, ArchiveOutcome, ArchiveReason, Connection, ConnectionStatus, DeleteOutcome,
    Item, Lease, PurgeOutcome, RecordKey, RecordPage, RecordWrite, StoredMeta, StoredRecord,
    TokenSwap, TokenUpdate, UpsertOutcome, CONNECTION_PK_PREFIX, CONNECTION_SK,
};
use crate::stats::StoreStats;
use crate::traits::{ConnectionStore, RecordStore, TokenStore};
use crate::BATCH_GET_MAX_KEYS;

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
            .update_expression("SET #seen = :seen")
            .expression_attribute_names("#pk", attr::PK)
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
        if status != ConnectionStatus::Active {
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
            .condition_expression("attribute_exists(#pk) AND #st = :active AND #at = :expected")
            .expression_attribute_names("#pk", attr::PK)
            .expression_attribute_names("#st", conn_attr::STATUS)
            .expression_attribute_names("#at", conn_attr::ACCESS)
            .expression_attribute_values(":active", av(ConnectionStatus::Active)?)
            .expression_attribute_values(
                ":expected",
                AttributeValue::S(expected_access_ciphertext.to_owned()),
            )
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let (update_expr, placeholders) = set_clause(token_attributes(update)?);
        for (placeholder, (name, value)) in placeholders {
            req = req
                .expression_attribute_names(format!("#{placeholder}"), name)
                .expression_attribute_values(format!(":{placeholder}"), value);
        }
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

impl RecordStore for DynamoStore {
    async fn get_record_meta(&self, keys: &[RecordKey]) -> Result<Vec<StoredMeta>, StoreError> {
        let unique: Vec<RecordKey> = keys
            .iter()
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let table = &self.config.records_table;
        let (projection, names) = Self::meta_projection();
        let mut found = Vec::with_capacity(unique.len());
        for chunk in unique.chunks(BATCH_GET_MAX_KEYS) {
            let mut pending: Vec<Item> = chunk.iter().map(RecordKey::to_key_item).collect();
            let mut attempt = 0u32;
            while !pending.is_empty() {
                if attempt > 0 {
                    if attempt > MAX_UNPROCESSED_RETRIES {
                        tracing::warn!(
                            unprocessed = pending.len(),
                            "BatchGetItem left keys unprocessed after every retry"
                        );
                        return Err(StoreError::Throttled {
                            operation: "BatchGetItem",
                            source: None,
                        });
                    }
                    self.backoff(attempt).await;
                }
                attempt += 1;
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut pending)))
                    .projection_expression(projection.as_str())
                    .set_expression_attribute_names(Some(names.clone()))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| build_error("BatchGetItem", e))?;
                self.stats.count_read();
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(table.as_str(), request)
                    .send()
                    .await
                    .map_err(|e| sdk_error("BatchGetItem", e))?;
                if let Some(items) = out.responses.and_then(|mut r| r.remove(table)) {
                    for item in &items {
                        found.push(StoredMeta::from_item(item)?);
                    }
                }
                pending = out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(table))
                    .map(|ka| ka.keys)
                    .unwrap_or_default();
            }
        }
        found.sort_by_key(StoredMeta::key);
        Ok(found)
    }

    async fn get_record(&self, key: &RecordKey) -> Result<Option<StoredRecord>, StoreError> {
        self.raw_record_item(key)
            .await?
            .map(StoredRecord::from_item)
            .transpose()
    }

    async fn upsert_record(&self, write: &RecordWrite) -> Result<UpsertOutcome, StoreError> {
        let item = record_item(write, now_rfc3339())?;
        self.stats.count_write();
        // Mirrors `model::upsert_allowed`.
        let result = self
            .client
            .put_item()
            .table_name(&self.config.records_table)
            .set_item(Some(item))
            .condition_expression(
                "attribute_not_exists(#pk) OR ((#sv < :v OR (#sv = :v AND \
                 (attribute_not_exists(#ch) OR #ch <> :h))) AND \
                 (attribute_not_exists(#pd) OR #pd = :false))",
            )
            .expression_attribute_names("#pk", attr::PK)
            .expression_attribute_names("#sv", attr::SOURCE_VERSION)
            .expression_attribute_names("#ch", attr::CONTENT_HASH)
            .expression_attribute_names("#pd", attr::PRIVACY_DELETED)
            .expression_attribute_values(":v", number(write.source_version))
            .expression_attribute_values(":h", AttributeValue::S(write.content_hash.clone()))
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let outcome = match result {
            Ok(out) if non_empty(out.attributes.as_ref()).is_some() => UpsertOutcome::Updated,
            Ok(_) => UpsertOutcome::Created,
            Err(err) => {
                let stored = match err.as_service_error() {
                    Some(PutItemError::ConditionalCheckFailedException(e)) => {
                        non_empty(e.item()).map(StoredMeta::from_item).transpose()?
                    }
                    _ => return Err(sdk_error("PutItem", err)),
                };
                // The condition only fails on an existing item. Without the
                // old item (an endpoint ignoring ReturnValuesOnConditionCheck
                // Failure), read it.
                let stored = match stored {
                    Some(m) => Some(m),
                    None => self.get_record_meta(&[write.key]).await?.pop(),
                };
                match stored {
                    Some(m) => classify_refused_upsert(&m, write),
                    // Deleted between the write and the read: let the caller retry.
                    None => {
                        return Err(StoreError::ConditionFailed {
                            operation: "upsert_record",
                        })
                    }
                }
            }
        };
        tracing::debug!(key = %write.key, version = write.source_version, ?outcome, "upsert_record");
        Ok(outcome)
    }

    async fn archive_record(
        &self,
        key: &RecordKey,
        occurred_at_ms: i64,
        reason: ArchiveReason,
        merged_into: Option<ObjectId>,
    ) -> Result<ArchiveOutcome, StoreError> {
        self.archive_record_mapped(key, occurred_at_ms, reason, merged_into, None)
            .await
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
        // Mirrors `model::archive_allowed`.
        let mut req = self
            .client
            .update_item()
            .table_name(&self.config.records_table)
            .set_key(Some(key.to_key_item()))
            .condition_expression(
                "attribute_exists(#pk) AND (attribute_not_exists(#pd) OR #pd = :false) AND #sv < :occurred",
            )
            .expression_attribute_names("#pk", attr::PK)
            .expression_attribute_names("#pd", attr::PRIVACY_DELETED)
            .expression_attribute_names("#sv", attr::SOURCE_VERSION)
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .expression_attribute_values(":occurred", number(occurred_at_ms))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let (update, placeholders) = set_clause(attributes);
        for (placeholder, (name, value)) in placeholders {
            req = req
                .expression_attribute_names(format!("#{placeholder}"), name)
                .expression_attribute_values(format!(":{placeholder}"), value);
        }
        self.stats.count_write();
        let outcome = match req.update_expression(update).send().await {
            Ok(_) => ArchiveOutcome::Archived,
            Err(err) => match err.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(e)) => {
                    let stored = non_empty(e.item()).map(StoredMeta::from_item).transpose()?;
                    classify_refused_archive(stored.as_ref())
                }
                _ => return Err(sdk_error("UpdateItem", err)),
            },
        };
        tracing::debug!(key = %key, occurred_at_ms, ?reason, ?outcome, "archive_record");
        Ok(outcome)
    }

    async fn privacy_purge(
        &self,
        key: &RecordKey,
        occurred_at_ms: i64,
    ) -> Result<PurgeOutcome, StoreError> {
        let item = tombstone_item(*key, rfc3339_from_ms(occurred_at_ms)?)?;
        self.stats.count_write();
        let out = self
            .client
            .put_item()
            .table_name(&self.config.records_table)
            .set_item(Some(item))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| sdk_error("PutItem", e))?;
        let old = non_empty(out.attributes.as_ref())
            .map(StoredMeta::from_item)
            .transpose()?;
        let outcome = classify_purge(old.as_ref());
        tracing::info!(key = %key, ?outcome, "privacy_purge");
        Ok(outcome)
    }

    async fn delete_record_permanently(
        &self,
        key: &RecordKey,
    ) -> Result<DeleteOutcome, StoreError> {
        self.stats.count_write();
        // Mirrors `model::delete_allowed`.
        let result = self
            .client
            .delete_item()
            .table_name(&self.config.records_table)
            .set_key(Some(key.to_key_item()))
            .condition_expression("#ar = :true AND (attribute_not_exists(#pd) OR #pd = :false)")
            .expression_attribute_names("#ar", attr::ARCHIVED)
            .expression_attribute_names("#pd", attr::PRIVACY_DELETED)
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let outcome = match result {
            Ok(_) => DeleteOutcome::Deleted,
            Err(err) => match err.as_service_error() {
                Some(DeleteItemError::ConditionalCheckFailedException(e)) => {
                    let stored = non_empty(e.item()).map(StoredMeta::from_item).transpose()?;
                    classify_refused_delete(*key, stored.as_ref())?
                }
                _ => return Err(sdk_error("DeleteItem", err)),
            },
        };
        tracing::info!(key = %key, ?outcome, "delete_record_permanently");
        Ok(outcome)
    }

    async fn scan_page(
        &self,
        portal: PortalId,
        object_type: ObjectType,
        after: Option<ObjectId>,
        limit: u32,
    ) -> Result<RecordPage, StoreError> {
        let pk = partition_key(portal, object_type);
        let mut req = self
            .client
            .query()
            .table_name(&self.config.records_table)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", attr::PK)
            .expression_attribute_values(":pk", AttributeValue::S(pk.clone()))
            .scan_index_forward(true)
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX));
        if let Some(after) = after {
            req = req
                .exclusive_start_key(attr::PK, AttributeValue::S(pk))
                .exclusive_start_key(attr::SK, AttributeValue::S(sort_key(after)));
        }
        self.stats.count_read();
        let out = req.send().await.map_err(|e| sdk_error("Query", e))?;
        let records = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(StoredRecord::from_item)
            .collect::<Result<Vec<_>, _>>()?;
        let next_after = out
            .last_evaluated_key
            .as_ref()
            .and_then(|k| k.get(attr::SK))
            .and_then(|v| v.as_s().ok())
            .and_then(|s| parse_sort_key(s));
        Ok(RecordPage {
            records,
            next_after,
        })
    }
}

/// Creates the `Records` and `Control` tables as `template.yaml` declares
/// them (string `pk` HASH + `sk` RANGE, on-demand billing, TTL on
/// `expires_at_epoch` for Control), for the local stack and tests. Tables
/// that already exist are left as they are (TTL is still ensured).
pub async fn create_tables(client: &Client, config: &StoreConfig) -> Result<(), StoreError> {
    for table in [&config.records_table, &config.control_table] {
        create_table(client, table).await?;
    }
    for table in [&config.records_table, &config.control_table] {
        wait_active(client, table).await?;
    }
    ensure_ttl(client, &config.control_table).await
}

async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
    let key_attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(|e| build_error("CreateTable", e))
    };
    let key_schema = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .map_err(|e| build_error("CreateTable", e))
    };
    let result = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(key_attr(attr::PK)?)
        .attribute_definitions(key_attr(attr::SK)?)
        .key_schema(key_schema(attr::PK, KeyType::Hash)?)
        .key_schema(key_schema(attr::SK, KeyType::Range)?)
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(err) if err.code() == Some("ResourceInUseException") => Ok(()),
        Err(err) => Err(sdk_error("CreateTable", err)),
    }
}

async fn wait_active(client: &Client, table: &str) -> Result<(), StoreError> {
    for _ in 0..120 {
        let out = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| sdk_error("DescribeTable", e))?;
        if out.table.and_then(|t| t.table_status) == Some(TableStatus::Active) {
            return Ok(());
        }
        if let Some(sleep) = client.config().sleep_impl() {
            sleep.sleep(Duration::from_millis(500)).await;
        }
    }
    Err(StoreError::InvalidInput(format!(
        "table {table} did not become ACTIVE"
    )))
}

async fn ensure_ttl(client: &Client, table: &str) -> Result<(), StoreError> {
    let current = client
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await
        .map_err(|e| sdk_error("DescribeTimeToLive", e))?;
    let enabled = current.time_to_live_description.is_some_and(|d| {
        matches!(
            d.time_to_live_status,
            Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
        ) && d.attribute_name.as_deref() == Some(CONTROL_TTL_ATTRIBUTE)
    });
    if enabled {
        return Ok(());
    }
    let spec = TimeToLiveSpecification::builder()
        .attribute_name(CONTROL_TTL_ATTRIBUTE)
        .enabled(true)
        .build()
        .map_err(|e| build_error("UpdateTimeToLive", e))?;
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(spec)
        .send()
        .await
        .map_err(|e| sdk_error("UpdateTimeToLive", e))?;
    Ok(())
}
