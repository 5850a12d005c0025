//! DynamoDB-specific behaviour the shared suite cannot express: table
//! creation as `template.yaml` declares it, and SDK error classification.

use std::time::Duration;

use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::types::{BillingMode, KeyType, ScalarAttributeType, TimeToLiveStatus};
use hubsync_mapping::ids::{ObjectId, ObjectType, PortalId};
use hubsync_store::{
    create_tables, ConnectionStore, DynamoStore, RecordKey, RecordStore, RecordWrite, StoreConfig,
    StoreError, CONTROL_TTL_ATTRIBUTE,
};
use serde_json::Map;

const BOUND: Duration = Duration::from_secs(120);

async fn client() -> aws_sdk_dynamodb::Client {
    let sdk = hubsync_testkit::aws_config()
        .await
        .expect("local AWS stack");
    aws_sdk_dynamodb::Client::new(&sdk)
}

fn fresh_config() -> StoreConfig {
    StoreConfig::new(
        hubsync_testkit::unique_name("records"),
        hubsync_testkit::unique_name("control"),
    )
}

#[tokio::test]
async fn tables_match_the_template_and_creation_is_idempotent() {
    tokio::time::timeout(BOUND, async {
        let client = client().await;
        let config = fresh_config();
        create_tables(&client, &config).await.unwrap();
        create_tables(&client, &config)
            .await
            .expect("second run is a no-op");

        for table in [&config.records_table, &config.control_table] {
            let t = client
                .describe_table()
                .table_name(table)
                .send()
                .await
                .unwrap()
                .table
                .unwrap();
            let keys: Vec<(String, KeyType)> = t
                .key_schema()
                .iter()
                .map(|k| (k.attribute_name().to_owned(), k.key_type().clone()))
                .collect();
            assert_eq!(
                keys,
                [
                    ("pk".to_owned(), KeyType::Hash),
                    ("sk".to_owned(), KeyType::Range)
                ]
            );
            for def in t.attribute_definitions() {
                assert_eq!(def.attribute_type(), &ScalarAttributeType::S);
            }
            assert_eq!(
                t.billing_mode_summary().and_then(|b| b.billing_mode()),
                Some(&BillingMode::PayPerRequest)
            );
        }
        let ttl = client
            .describe_time_to_live()
            .table_name(&config.control_table)
            .send()
            .await
            .unwrap()
            .time_to_live_description
            .unwrap();
        assert_eq!(ttl.attribute_name(), Some(CONTROL_TTL_ATTRIBUTE));
        assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn a_missing_table_is_a_precise_non_retryable_error() {
    tokio::time::timeout(BOUND, async {
        let store = DynamoStore::new(client().await, fresh_config()); // tables never created
        let key = RecordKey::new(PortalId(1), ObjectType::Deals, ObjectId(1));
        let err = store
            .upsert_record(&RecordWrite::new(key, 1, "h", Map::new()))
            .await
            .unwrap_err();
        match &err {
            StoreError::Sdk {
                operation,
                code,
                retryable,
                ..
            } => {
                assert_eq!(*operation, "PutItem");
                assert_eq!(code.as_deref(), Some("ResourceNotFoundException"));
                assert!(!retryable);
            }
            other => panic!("expected Sdk, got {other:?}"),
        }
        assert!(!err.is_retryable());
        assert!(
            std::error::Error::source(&err).is_some(),
            "the SDK error is kept"
        );
        assert_eq!(store.stats().writes(), 1, "the failed request is counted");
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn an_unreachable_endpoint_is_retryable() {
    tokio::time::timeout(BOUND, async {
        let sdk = hubsync_testkit::aws_config()
            .await
            .expect("local AWS stack");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port(); // bound then dropped: nothing listens there
        let conf = aws_sdk_dynamodb::config::Builder::from(&sdk)
            .endpoint_url(format!("http://127.0.0.1:{port}"))
            .retry_config(RetryConfig::disabled())
            .build();
        let store = DynamoStore::new(aws_sdk_dynamodb::Client::from_conf(conf), fresh_config());
        let err = store.get_connection(PortalId(1)).await.unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Sdk {
                    retryable: true,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.is_retryable());
    })
    .await
    .expect("bounded");
}

fn owners(n: usize, domain: &str) -> hubsync_mapping::Owners {
    let mut o = hubsync_mapping::Owners::new();
    for i in 0..n {
        o.insert(
            format!("{}", 10_000 + i),
            Some(&format!("owner.number{i}@{domain}")),
            Some("Firstname"),
            Some("Lastname"),
        );
    }
    o
}

#[tokio::test]
async fn owners_cache_is_chunked_replaced_and_claims_are_spaced() {
    use hubsync_store::OwnersCacheStore;
    tokio::time::timeout(BOUND, async {
        let client = client().await;
        let config = fresh_config();
        create_tables(&client, &config).await.unwrap();
        let store = DynamoStore::new(client.clone(), config.clone());
        let p = PortalId(77);
        assert_eq!(store.get_owners_cache(p).await.unwrap(), None);

        // ~8,000 owners are more than one 400 KB item can hold.
        let big = owners(8_000, "big.example.com");
        store.put_owners_cache(p, &big, 1_000).await.unwrap();
        let got = store.get_owners_cache(p).await.unwrap().unwrap();
        assert_eq!(got.refreshed_at_ms, 1_000);
        assert_eq!(got.owners, big);
        let items = |c: aws_sdk_dynamodb::Client, t: String| async move {
            c.query()
                .table_name(t)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(
                    ":pk",
                    aws_sdk_dynamodb::types::AttributeValue::S("OWNERS#77".into()),
                )
                .send()
                .await
                .unwrap()
                .count()
        };
        let first = items(client.clone(), config.control_table.clone()).await;
        assert!(first >= 3, "{first} items: expected ≥ 2 chunks and META");

        // A refresh replaces the owners and removes the old chunks; an
        // older refresh finishing late changes nothing.
        let small = owners(3, "small.example.com");
        store.put_owners_cache(p, &small, 2_000).await.unwrap();
        store.put_owners_cache(p, &big, 1_500).await.unwrap();
        let got = store.get_owners_cache(p).await.unwrap().unwrap();
        assert_eq!((got.owners, got.refreshed_at_ms), (small, 2_000));
        assert_eq!(items(client.clone(), config.control_table.clone()).await, 2);

        assert!(store
            .claim_owners_refresh(p, 10_000, 300_000)
            .await
            .unwrap());
        assert!(!store
            .claim_owners_refresh(p, 20_000, 300_000)
            .await
            .unwrap());
        assert!(store
            .claim_owners_refresh(p, 310_000, 300_000)
            .await
            .unwrap());
        // A claim leaves the cache as it is.
        assert_eq!(
            store
                .get_owners_cache(p)
                .await
                .unwrap()
                .unwrap()
                .refreshed_at_ms,
            2_000
        );
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn pipelines_cache_moves_forward_and_claims_are_spaced() {
    use hubsync_store::PipelinesCacheStore;
    tokio::time::timeout(BOUND, async {
        let client = client().await;
        let config = fresh_config();
        create_tables(&client, &config).await.unwrap();
        let store = DynamoStore::new(client, config);
        let p = PortalId(78);
        let labelled = |label: &str| {
            let mut x = hubsync_mapping::Pipelines::new();
            x.insert("default", label, &[("closedwon", "Closed Won")]);
            x
        };
        assert_eq!(store.get_pipelines_cache(p).await.unwrap(), None);
        // A claim alone is no cache.
        assert!(store
            .claim_pipelines_refresh(p, 10_000, 300_000)
            .await
            .unwrap());
        assert!(!store
            .claim_pipelines_refresh(p, 20_000, 300_000)
            .await
            .unwrap());
        assert_eq!(store.get_pipelines_cache(p).await.unwrap(), None);
        store
            .put_pipelines_cache(p, &labelled("Sales"), 1_000)
            .await
            .unwrap();
        store
            .put_pipelines_cache(p, &labelled("Renamed"), 2_000)
            .await
            .unwrap();
        // An older read finishing late changes nothing.
        store
            .put_pipelines_cache(p, &labelled("Stale"), 1_500)
            .await
            .unwrap();
        let got = store.get_pipelines_cache(p).await.unwrap().unwrap();
        assert_eq!(got.refreshed_at_ms, 2_000);
        assert_eq!(got.pipelines, labelled("Renamed"));
        assert!(store
            .claim_pipelines_refresh(p, 310_000, 300_000)
            .await
            .unwrap());
    })
    .await
    .expect("bounded");
}

/// A connection stored before the tenant index existed (no `tenant_key`)
/// joins the index at its next update; the Control table carries the index
/// as the template declares it.
#[tokio::test]
async fn connections_stored_before_the_tenant_index_join_it_at_their_next_update() {
    tokio::time::timeout(BOUND, async {
        let client = client().await;
        let config = fresh_config();
        create_tables(&client, &config).await.unwrap();
        let control = client
            .describe_table()
            .table_name(&config.control_table)
            .send()
            .await
            .unwrap()
            .table
            .unwrap();
        let index = &control.global_secondary_indexes()[0];
        assert_eq!(index.index_name(), Some("tenant-connections"));
        let store = DynamoStore::new(client.clone(), config.clone());
        for portal in [71u64, 72, 73] {
            let c = hubsync_store::Connection::active(PortalId(portal), "old-tenant");
            store.put_connection(&c).await.unwrap();
            // As an older hubsync wrote it: without the index key.
            client
                .update_item()
                .table_name(&config.control_table)
                .key(
                    "pk",
                    aws_sdk_dynamodb::types::AttributeValue::S(format!("CONN#{portal}")),
                )
                .key(
                    "sk",
                    aws_sdk_dynamodb::types::AttributeValue::S("CONN".into()),
                )
                .update_expression("REMOVE tenant_key")
                .send()
                .await
                .unwrap();
        }
        assert!(store
            .tenant_connections("old-tenant")
            .await
            .unwrap()
            .is_empty());
        store
            .record_webhook_seen(PortalId(71), chrono::Utc::now())
            .await
            .unwrap();
        store
            .set_connection_status(
                PortalId(72),
                hubsync_store::ConnectionStatus::NeedsReauth,
                None,
            )
            .await
            .unwrap();
        let portals: Vec<u64> = store
            .tenant_connections("old-tenant")
            .await
            .unwrap()
            .iter()
            .map(|c| c.portal_id.0)
            .collect();
        assert_eq!(portals, [71, 72], "73 has not changed since");
    })
    .await
    .expect("bounded");
}
