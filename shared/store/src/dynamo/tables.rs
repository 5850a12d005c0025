//! Creating the tables as the template declares them (local stack, tests).

use super::*;
use aws_sdk_dynamodb::types::{
    GlobalSecondaryIndex, Projection, ProjectionType, StreamSpecification, StreamViewType,
};

/// Creates the `Records` and `Control` tables as `template.yaml` declares
/// them (string `pk` HASH + `sk` RANGE, on-demand billing, new-and-old-image
/// streams; for Control, TTL on `expires_at_epoch` and the tenant index),
/// for the local stack and tests. Tables
/// that already exist are left as they are (TTL is still ensured).
pub async fn create_tables(client: &Client, config: &StoreConfig) -> Result<(), StoreError> {
    create_table(client, &config.records_table, false).await?;
    create_table(client, &config.control_table, true).await?;
    for table in [&config.records_table, &config.control_table] {
        wait_active(client, table).await?;
    }
    ensure_ttl(client, &config.control_table).await
}

async fn create_table(client: &Client, table: &str, tenant_index: bool) -> Result<(), StoreError> {
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
    if tenant_index {
        // The Control table's tenant index (see `TENANT_INDEX`).
        let index = GlobalSecondaryIndex::builder()
            .index_name(TENANT_INDEX)
            .key_schema(key_schema(TENANT_INDEX_KEY, KeyType::Hash)?)
            .key_schema(key_schema(attr::PK, KeyType::Range)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::KeysOnly)
                    .build(),
            )
            .build()
            .map_err(|e| build_error("CreateTable", e))?;
        request = request
            .attribute_definitions(key_attr(TENANT_INDEX_KEY)?)
            .global_secondary_indexes(index);
    }
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
