//! The intake records when a portal's webhooks last arrived (shown by
//! `hubsync-ops status`): once per portal per cache window, only for
//! connected portals, only after the events are safely queued, and never at
//! the price of a refused delivery.

use std::time::Duration;

use chrono::{DateTime, Utc};
use http::HeaderMap;
use hubsync_hubspot::signature::{sign_v3, WebhookVerifier};
use hubsync_hubspot::PortalId;
use hubsync_store::{Connection, ConnectionStatus, ConnectionStore, MemoryStore};
use secrecy::SecretString;
use serde_json::{json, Value};
use webhook_intake::http::respond;
use webhook_intake::sink::MemorySink;
use webhook_intake::{CachedDirectory, Intake, IntakeConfig, StoreDirectory};

const SECRET: &str = "test-client-secret";
const URL: &str = "https://hooks.example.com/webhooks/hubspot";
const NOW: i64 = 1_700_000_000_000;
const ACTIVE: PortalId = PortalId(1001);
const REVOKED: PortalId = PortalId(1002);
const UNKNOWN: PortalId = PortalId(1003);

type StoreIntake = Intake<MemorySink, CachedDirectory<StoreDirectory<MemoryStore>>>;

fn connection(portal: PortalId, status: ConnectionStatus) -> Connection {
    let now = Utc::now();
    Connection {
        portal_id: portal,
        tenant_id: "tenant".into(),
        status,
        scopes: Vec::new(),
        access_token_ciphertext: None,
        refresh_token_ciphertext: None,
        access_token_expires_at: None,
        created_at: now,
        updated_at: now,
        last_webhook_at: None,
        status_reason: None,
    }
}

async fn setup(ttl: Duration) -> (MemoryStore, StoreIntake) {
    let store = MemoryStore::new();
    store
        .put_connection(&connection(ACTIVE, ConnectionStatus::Active))
        .await
        .unwrap();
    store
        .put_connection(&connection(REVOKED, ConnectionStatus::NeedsReauth))
        .await
        .unwrap();
    let intake = Intake::new(
        WebhookVerifier::new(SecretString::from(SECRET.to_string()), URL),
        IntakeConfig::default(),
        MemorySink::default(),
        CachedDirectory::new(StoreDirectory::new(store.clone()), ttl),
    );
    (store, intake)
}

async fn deliver(intake: &StoreIntake, portals: &[PortalId], at_ms: i64) -> u16 {
    let events: Vec<Value> = portals
        .iter()
        .enumerate()
        .map(|(i, p)| {
            json!({
                "eventId": i + 1, "subscriptionId": 7, "portalId": p.0, "appId": 4242,
                "occurredAt": at_ms - 1000, "subscriptionType": "company.propertyChange",
                "attemptNumber": 0, "objectId": 500 + i, "changeSource": "CRM_UI",
                "propertyName": "name", "propertyValue": "Acme"
            })
        })
        .collect();
    let body = serde_json::to_vec(&events).unwrap();
    let secret = SecretString::from(SECRET.to_string());
    let mut headers = HeaderMap::new();
    headers.insert(
        "X-HubSpot-Signature-v3",
        sign_v3(&secret, "POST", URL, &body, at_ms).parse().unwrap(),
    );
    headers.insert(
        "X-HubSpot-Request-Timestamp",
        at_ms.to_string().parse().unwrap(),
    );
    respond(intake, "POST", &headers, None, &body, at_ms)
        .await
        .status
}

async fn last_webhook(store: &MemoryStore, portal: PortalId) -> Option<DateTime<Utc>> {
    store
        .get_connection(portal)
        .await
        .unwrap()
        .and_then(|c| c.last_webhook_at)
}

#[tokio::test]
async fn an_accepted_delivery_records_the_last_webhook_of_connected_portals_only() {
    let (store, intake) = setup(Duration::from_secs(60)).await;
    assert_eq!(
        deliver(&intake, &[ACTIVE, REVOKED, UNKNOWN], NOW).await,
        200
    );

    assert_eq!(
        last_webhook(&store, ACTIVE).await,
        DateTime::from_timestamp_millis(NOW)
    );
    assert_eq!(
        last_webhook(&store, REVOKED).await,
        None,
        "dropped events are not a sync heartbeat"
    );
    assert!(
        store.get_connection(UNKNOWN).await.unwrap().is_none(),
        "a delivery never creates a connection"
    );
    assert_eq!(
        intake.sink().messages().len(),
        1,
        "the active portal's events"
    );
}

#[tokio::test]
async fn the_last_webhook_is_written_once_per_portal_per_cache_window() {
    let (store, intake) = setup(Duration::from_secs(60)).await;
    let before = store.stats().writes();
    for i in 0..20 {
        assert_eq!(deliver(&intake, &[ACTIVE], NOW + i * 100).await, 200);
    }
    assert_eq!(
        store.stats().writes() - before,
        1,
        "one write for 20 deliveries"
    );
    assert_eq!(
        last_webhook(&store, ACTIVE).await,
        DateTime::from_timestamp_millis(NOW)
    );

    // With no window, every delivery moves it forward.
    let (store, intake) = setup(Duration::ZERO).await;
    assert_eq!(deliver(&intake, &[ACTIVE], NOW).await, 200);
    assert_eq!(deliver(&intake, &[ACTIVE], NOW + 5_000).await, 200);
    assert_eq!(
        last_webhook(&store, ACTIVE).await,
        DateTime::from_timestamp_millis(NOW + 5_000)
    );
}

#[tokio::test]
async fn a_refused_delivery_records_nothing() {
    let (store, intake) = setup(Duration::ZERO).await;
    let before = store.stats().writes();
    // Signed for another time than the one it claims: 401.
    let body = b"[]";
    let mut headers = HeaderMap::new();
    headers.insert(
        "X-HubSpot-Signature-v3",
        "bm90LWEtc2lnbmF0dXJl".parse().unwrap(),
    );
    headers.insert(
        "X-HubSpot-Request-Timestamp",
        NOW.to_string().parse().unwrap(),
    );
    let reply = respond(&intake, "POST", &headers, None, body, NOW).await;
    assert_eq!(reply.status, 401);
    assert_eq!(store.stats().writes(), before);
    assert_eq!(last_webhook(&store, ACTIVE).await, None);
}

#[tokio::test]
async fn a_portal_that_connects_gets_its_next_delivery_queued_at_once() {
    // A delivery just before the connect must not be remembered as
    // "unknown" (or "needs reauth") for the cache window.
    let (store, intake) = setup(Duration::from_secs(60)).await;
    assert_eq!(deliver(&intake, &[UNKNOWN, REVOKED], NOW).await, 200);
    assert!(intake.sink().messages().is_empty());
    store
        .put_connection(&connection(UNKNOWN, ConnectionStatus::Active))
        .await
        .unwrap();
    store
        .put_connection(&connection(REVOKED, ConnectionStatus::Active))
        .await
        .unwrap();
    assert_eq!(deliver(&intake, &[UNKNOWN, REVOKED], NOW + 100).await, 200);
    assert_eq!(
        intake.sink().messages().len(),
        2,
        "both portals' events are queued"
    );
    // Active answers stay cached: a burst costs one read per window.
    let reads = store.stats().reads();
    for i in 0..10 {
        assert_eq!(deliver(&intake, &[ACTIVE], NOW + 200 + i).await, 200);
    }
    assert!(store.stats().reads() - reads <= 1);
}
