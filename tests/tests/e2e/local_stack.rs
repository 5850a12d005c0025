//! The local AWS stack answers the real SDK: DynamoDB and SQS round trips.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
use hubsync_testkit::{aws_config, unique_name};

#[tokio::test]
async fn dynamodb_round_trip_through_moto() -> anyhow::Result<()> {
    let ddb = aws_sdk_dynamodb::Client::new(&aws_config().await?);
    let table = unique_name("stack-smoke");
    ddb.create_table()
        .table_name(&table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()?,
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()?,
        )
        .send()
        .await?;
    ddb.put_item()
        .table_name(&table)
        .item("pk", AttributeValue::S("a".into()))
        .item("v", AttributeValue::N("1".into()))
        .send()
        .await?;
    // A conditional write that must fail: the item exists.
    let conflict = ddb
        .put_item()
        .table_name(&table)
        .item("pk", AttributeValue::S("a".into()))
        .condition_expression("attribute_not_exists(pk)")
        .send()
        .await;
    assert!(
        conflict
            .as_ref()
            .err()
            .and_then(|e| e.as_service_error())
            .is_some_and(|e| e.is_conditional_check_failed_exception()),
        "expected ConditionalCheckFailed, got {conflict:?}"
    );
    let got = ddb
        .get_item()
        .table_name(&table)
        .key("pk", AttributeValue::S("a".into()))
        .send()
        .await?;
    assert_eq!(
        got.item().and_then(|i| i.get("v")),
        Some(&AttributeValue::N("1".into()))
    );
    Ok(())
}

#[tokio::test]
async fn sqs_round_trip_through_moto() -> anyhow::Result<()> {
    let sqs = aws_sdk_sqs::Client::new(&aws_config().await?);
    let queue = sqs
        .create_queue()
        .queue_name(unique_name("stack-smoke"))
        .send()
        .await?;
    let url = queue.queue_url().unwrap_or_default().to_string();
    sqs.send_message()
        .queue_url(&url)
        .message_body("hello")
        .send()
        .await?;
    let got = sqs
        .receive_message()
        .queue_url(&url)
        .wait_time_seconds(1)
        .send()
        .await?;
    let bodies: Vec<_> = got.messages().iter().filter_map(|m| m.body()).collect();
    assert_eq!(bodies, vec!["hello"]);
    Ok(())
}
