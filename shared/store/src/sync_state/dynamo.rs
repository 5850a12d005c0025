//! Sync state on DynamoDB (the Control table).

use super::*;

fn key_item((pk, sk): (String, String)) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (attr::PK.to_owned(), AttributeValue::S(pk)),
        (attr::SK.to_owned(), AttributeValue::S(sk)),
    ])
}

impl SyncStateStore for DynamoStore {
    async fn get_checkpoint(
        &self,
        portal: PortalId,
        object_type: ObjectType,
    ) -> Result<Option<Checkpoint>, StoreError> {
        self.stats().count_read();
        let out = self
            .client()
            .get_item()
            .table_name(&self.config().control_table)
            .set_key(Some(key_item(checkpoint_key(portal, object_type))))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", e))?;
        Ok(out
            .item
            .filter(|i| !i.is_empty())
            .map(|i| serde_dynamo::aws_sdk_dynamodb_1::from_item(strip(i)))
            .transpose()?)
    }

    async fn put_checkpoint(&self, checkpoint: &Checkpoint) -> Result<bool, StoreError> {
        if checkpoint.seq == 0 {
            return Err(StoreError::InvalidInput(
                "checkpoint seq starts at 1".into(),
            ));
        }
        let item = checkpoint_item(checkpoint)?;
        let req = self
            .client()
            .put_item()
            .table_name(&self.config().control_table)
            .set_item(Some(item));
        let req = if checkpoint.seq == 1 {
            req.condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", attr::PK)
        } else {
            req.condition_expression("#seq = :prev")
                .expression_attribute_names("#seq", "seq")
                .expression_attribute_values(
                    ":prev",
                    AttributeValue::N((checkpoint.seq - 1).to_string()),
                )
        };
        self.stats().count_write();
        match req.send().await {
            Ok(_) => Ok(true),
            Err(err) => match err.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(_)) => Ok(false),
                _ if err.code() == Some("ConditionalCheckFailedException") => Ok(false),
                _ => Err(sdk_error("PutItem", err)),
            },
        }
    }

    async fn put_run_report(&self, report: &TypeRunReport) -> Result<(), StoreError> {
        let item = report_item(report)?;
        self.stats().count_write();
        self.client()
            .put_item()
            .table_name(&self.config().control_table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| sdk_error("PutItem", e))?;
        Ok(())
    }

    async fn get_run_report(
        &self,
        portal: PortalId,
        run_id: &str,
    ) -> Result<Option<RunReport>, StoreError> {
        let mut types = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            self.stats().count_read();
            let out = self
                .client()
                .query()
                .table_name(&self.config().control_table)
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :run)")
                .expression_attribute_names("#pk", attr::PK)
                .expression_attribute_names("#sk", attr::SK)
                .expression_attribute_values(
                    ":pk",
                    AttributeValue::S(format!("{RUN_PK_PREFIX}{portal}")),
                )
                .expression_attribute_values(":run", AttributeValue::S(format!("{run_id}#")))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk_error("Query", e))?;
            for item in out.items.unwrap_or_default() {
                types.push(serde_dynamo::aws_sdk_dynamodb_1::from_item(strip(item))?);
            }
            match out.last_evaluated_key.filter(|k| !k.is_empty()) {
                Some(k) => start = Some(k),
                None => break,
            }
        }
        Ok(RunReport::from_types(types))
    }

    /// A descending Query of the portal's report items that stops once a
    /// further run appears.
    async fn list_run_reports(
        &self,
        portal: PortalId,
        max_runs: usize,
    ) -> Result<Vec<RunReport>, StoreError> {
        if max_runs == 0 {
            return Ok(Vec::new());
        }
        let mut types: Vec<TypeRunReport> = Vec::new();
        let mut runs_seen = 0usize;
        let mut start: Option<Item> = None;
        'pages: loop {
            self.stats().count_read();
            let out = self
                .client()
                .query()
                .table_name(&self.config().control_table)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", attr::PK)
                .expression_attribute_values(
                    ":pk",
                    AttributeValue::S(format!("{RUN_PK_PREFIX}{portal}")),
                )
                .scan_index_forward(false)
                .limit(50)
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk_error("Query", e))?;
            for item in out.items.unwrap_or_default() {
                let t: TypeRunReport = serde_dynamo::aws_sdk_dynamodb_1::from_item(strip(item))?;
                if types.last().is_none_or(|last| last.run_id != t.run_id) {
                    if runs_seen == max_runs {
                        break 'pages;
                    }
                    runs_seen += 1;
                }
                types.push(t);
            }
            match out.last_evaluated_key.filter(|k| !k.is_empty()) {
                Some(k) => start = Some(k),
                None => break,
            }
        }
        Ok(newest_runs(types, max_runs))
    }
}
