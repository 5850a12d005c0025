//! The tests' AWS clients honour the service-specific endpoint variables
//! the way production code does: with `AWS_ENDPOINT_URL` at one stack and
//! `AWS_ENDPOINT_URL_DYNAMODB` at a second moto, DynamoDB calls go to the
//! second. (A binary of its own: it sets process environment variables.)

#[tokio::test]
async fn aws_endpoint_url_dynamodb_sends_dynamodb_calls_to_its_endpoint() -> anyhow::Result<()> {
    let stack = hubsync_testkit::aws_endpoint()?;
    let other = hubsync_testkit::start_moto()?;
    assert_ne!(stack, other);
    // One test in this binary: nothing else reads the environment.
    std::env::set_var("AWS_ENDPOINT_URL", &stack);
    std::env::set_var("AWS_ENDPOINT_URL_DYNAMODB", &other);

    let config = hubsync_testkit::aws_config().await?;
    let table = hubsync_testkit::unique_name("endpoint-probe");
    let dynamo = aws_sdk_dynamodb::Client::new(&config);
    dynamo
        .create_table()
        .table_name(&table)
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .attribute_definitions(
            aws_sdk_dynamodb::types::AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(aws_sdk_dynamodb::types::ScalarAttributeType::S)
                .build()?,
        )
        .key_schema(
            aws_sdk_dynamodb::types::KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(aws_sdk_dynamodb::types::KeyType::Hash)
                .build()?,
        )
        .send()
        .await?;

    // Ask each server directly which tables it has.
    let tables_at = |url: String| {
        let config = config.clone();
        async move {
            let client = aws_sdk_dynamodb::Client::from_conf(
                aws_sdk_dynamodb::config::Builder::from(&config)
                    .endpoint_url(url)
                    .build(),
            );
            anyhow::Ok(client.list_tables().send().await?.table_names().to_vec())
        }
    };
    assert!(
        tables_at(other.clone()).await?.contains(&table),
        "the table is at AWS_ENDPOINT_URL_DYNAMODB"
    );
    assert!(
        !tables_at(stack.clone()).await?.contains(&table),
        "not at AWS_ENDPOINT_URL"
    );
    Ok(())
}
