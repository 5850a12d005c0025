//! Creating the tables as the template declares them (local stack, tests).

use super::*;
use crate::model::{ISSUES_INDEX, ISSUE_PROJECTION};
use aws_sdk_dynamodb::types::{
    GlobalSecondaryIndex, Projection, ProjectionType, StreamSpecification, StreamViewType,
};

/// Creates the `Records` and `Control` tables as `template.yaml` declares
/// them (string `pk` HASH + `sk` RANGE, on-demand billing, new-and-old-image
/// streams; for Control, TTL on `expires_at_epoch` and the tenant index),
/// for the local stack and tests. Tables
/// that already exist are left as they are (TTL is still ensured).
pub async fn create_tables(client: &Client, config: &StoreConfig) -> Result<(), StoreError> {
    create_table(client, &config.records_table, Index::RecordIssues).await?;
    create_table(client, &config.control_table, Index::Tenant).await?;
    for table in [&config.records_table, &config.control_table] {
        wait_active(client, table).await?;
    }
    ensure_ttl(client, &config.control_table).await
}

/// The global secondary index a table carries.
enum Index {
    /// Records: the sparse record-issues index (`issue_key`, `sk`).
    RecordIssues,
    /// Control: the sparse, keys-only tenant index (`tenant_key`, `pk`).
    Tenant,
}

async fn create_table(client: &Client, table: &str, index: Index) -> Result<(), StoreError> {
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
    let mut request = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(key_attr(attr::PK)?)
        .attribute_definitions(key_attr(attr::SK)?)
        .key_schema(key_schema(attr::PK, KeyType::Hash)?)
        .key_schema(key_schema(attr::SK, KeyType::Range)?)
        // The change feed reads both tables' streams.
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()
                .map_err(|e| build_error("CreateTable", e))?,
        );
    let (name, hash, range, projection) = match index {
        Index::Tenant => (
            TENANT_INDEX,
            TENANT_INDEX_KEY,
            attr::PK,
            Projection::builder()
                .projection_type(ProjectionType::KeysOnly)
                .build(),
        ),
        Index::RecordIssues => (
            ISSUES_INDEX,
            attr::ISSUE_KEY,
            attr::SK,
            Projection::builder()
                .projection_type(ProjectionType::Include)
                .set_non_key_attributes(Some(
                    ISSUE_PROJECTION.iter().map(|a| (*a).to_owned()).collect(),
                ))
                .build(),
        ),
    };
    let gsi = GlobalSecondaryIndex::builder()
        .index_name(name)
        .key_schema(key_schema(hash, KeyType::Hash)?)
        .key_schema(key_schema(range, KeyType::Range)?)
        .projection(projection)
        .build()
        .map_err(|e| build_error("CreateTable", e))?;
    request = request
        .attribute_definitions(key_attr(hash)?)
        .global_secondary_indexes(gsi);
    let result = request.send().await;
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
