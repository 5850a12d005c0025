//! The Records table: reads, the guarded upsert, archives, purges, scans.

use super::*;
use std::collections::HashMap;

use crate::model::{
    issue_record, item_fields, FieldsPage, IssuePage, MetaWithFields, ISSUES_INDEX,
};

impl RecordStore for DynamoStore {
    async fn get_record_meta_fields(
        &self,
        keys: &[RecordKey],
        fields: &[String],
    ) -> Result<Vec<MetaWithFields>, StoreError> {
        let unique: Vec<RecordKey> = keys
            .iter()
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let table = &self.config.records_table;
        let (projection, names) = Self::fields_projection(fields);
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
                        found.push((StoredMeta::from_item(item)?, item_fields(item, fields)?));
                    }
                }
                pending = out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(table))
                    .map(|ka| ka.keys)
                    .unwrap_or_default();
            }
        }
        found.sort_by_key(|(meta, _)| meta.key());
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
        let (items, next_after) = self
            .query_partition(portal, object_type, after, limit, None)
            .await?;
        RecordPage::from_items(items, next_after)
    }

    async fn scan_page_descending(
        &self,
        portal: PortalId,
        object_type: ObjectType,
        before: Option<ObjectId>,
        limit: u32,
    ) -> Result<RecordPage, StoreError> {
        let (items, next_after) = self
            .query_partition_in(portal, object_type, before, limit, None, false)
            .await?;
        RecordPage::from_items(items, next_after)
    }

    async fn scan_fields_page(
        &self,
        portal: PortalId,
        object_type: ObjectType,
        fields: &[String],
        after: Option<ObjectId>,
        limit: u32,
    ) -> Result<FieldsPage, StoreError> {
        let projection = Self::fields_projection(fields);
        let (items, next_after) = self
            .query_partition(portal, object_type, after, limit, Some(projection))
            .await?;
        let records = items
            .iter()
            .map(|item| Ok((StoredMeta::from_item(item)?, item_fields(item, fields)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(FieldsPage {
            records,
            next_after,
        })
    }

    async fn record_issues(
        &self,
        portal: PortalId,
        object_type: ObjectType,
        after: Option<ObjectId>,
        limit: u32,
    ) -> Result<IssuePage, StoreError> {
        self.stats.count_read();
        let mut req = self
            .client
            .query()
            .table_name(&self.config.records_table)
            .index_name(ISSUES_INDEX)
            .expression_attribute_names("#ik", attr::ISSUE_KEY)
            .expression_attribute_values(
                ":ik",
                AttributeValue::S(partition_key(portal, object_type)),
            )
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX));
        req = match after {
            Some(after) => req
                .key_condition_expression("#ik = :ik AND #sk > :after")
                .expression_attribute_names("#sk", attr::SK)
                .expression_attribute_values(":after", AttributeValue::S(sort_key(after))),
            None => req.key_condition_expression("#ik = :ik"),
        };
        let out = req.send().await.map_err(|e| sdk_error("Query", e))?;
        let mut records = Vec::new();
        for item in out.items.unwrap_or_default() {
            records.extend(issue_record(&item)?);
        }
        let next_after = out
            .last_evaluated_key
            .is_some()
            .then(|| records.last().map(|r| r.key.object_id))
            .flatten();
        Ok(IssuePage {
            records,
            next_after,
        })
    }
}

impl DynamoStore {
    /// The metadata attributes and the mapped `fields` (DynamoDB refuses
    /// overlapping paths: each field once, never a metadata attribute,
    /// which the projection has already).
    fn fields_projection(fields: &[String]) -> (String, HashMap<String, String>) {
        let (mut projection, mut names) = Self::meta_projection();
        let extra: BTreeSet<&str> = fields
            .iter()
            .map(String::as_str)
            .filter(|f| !attr::RESERVED.contains(f))
            .collect();
        for (i, field) in extra.into_iter().enumerate() {
            projection.push_str(&format!(", #x{i}"));
            names.insert(format!("#x{i}"), field.to_owned());
        }
        (projection, names)
    }

    /// One Query page of a partition in id order after `after`, whole
    /// items or `projection`ed; with where the next page starts.
    async fn query_partition(
        &self,
        portal: PortalId,
        object_type: ObjectType,
        after: Option<ObjectId>,
        limit: u32,
        projection: Option<(String, HashMap<String, String>)>,
    ) -> Result<(Vec<Item>, Option<ObjectId>), StoreError> {
        self.query_partition_in(portal, object_type, after, limit, projection, true)
            .await
    }

    /// One Query page of a partition, ascending from after `start` or
    /// descending from below it.
    async fn query_partition_in(
        &self,
        portal: PortalId,
        object_type: ObjectType,
        start: Option<ObjectId>,
        limit: u32,
        projection: Option<(String, HashMap<String, String>)>,
        ascending: bool,
    ) -> Result<(Vec<Item>, Option<ObjectId>), StoreError> {
        let pk = partition_key(portal, object_type);
        let mut names = HashMap::from([("#pk".to_owned(), attr::PK.to_owned())]);
        let mut req = self
            .client
            .query()
            .table_name(&self.config.records_table)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(pk.clone()))
            .scan_index_forward(ascending)
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX));
        if let Some((expression, projected)) = projection {
            names.extend(projected);
            req = req.projection_expression(expression);
        }
        req = req.set_expression_attribute_names(Some(names));
        if let Some(start) = start {
            req = req
                .exclusive_start_key(attr::PK, AttributeValue::S(pk))
                .exclusive_start_key(attr::SK, AttributeValue::S(sort_key(start)));
        }
        self.stats.count_read();
        let out = req.send().await.map_err(|e| sdk_error("Query", e))?;
        let next_after = out
            .last_evaluated_key
            .as_ref()
            .and_then(|k| k.get(attr::SK))
            .and_then(|v| v.as_s().ok())
            .and_then(|s| parse_sort_key(s));
        Ok((out.items.unwrap_or_default(), next_after))
    }
}
