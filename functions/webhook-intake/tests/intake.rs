//! The intake's contract with HubSpot, driven without AWS: a memory sink
//! stands for SQS and a static directory for the connections table.

use std::sync::atomic::Ordering;

use http::HeaderMap;
use hubsync_hubspot::signature::{sign_v1, sign_v3, WebhookVerifier};
use hubsync_hubspot::PortalId;
use secrecy::SecretString;
use serde_json::{json, Value};
use webhook_intake::directory::StaticDirectory;
use webhook_intake::http::respond;
use webhook_intake::sink::MemorySink;
use webhook_intake::{EventBatch, Intake, IntakeConfig};

const SECRET: &str = "test-client-secret";
const URL: &str = "https://hooks.example.com/webhooks/hubspot";
const NOW: i64 = 1_700_000_000_000;
const APP: u64 = 4242;
const ACTIVE: u64 = 1001;
const INACTIVE: u64 = 1002;

fn secret() -> SecretString {
    SecretString::from(SECRET.to_string())
}

fn intake() -> Intake<MemorySink, StaticDirectory> {
    Intake::new(
        WebhookVerifier::new(secret(), URL),
        IntakeConfig {
            app_id: Some(APP),
            ..IntakeConfig::default()
        },
        MemorySink::default(),
        StaticDirectory {
            active: vec![PortalId(ACTIVE), PortalId(2001)],
            inactive: vec![PortalId(INACTIVE)],
        },
    )
}

fn event(portal: u64, id: u64, kind: &str) -> Value {
    json!({
        "eventId": id, "subscriptionId": 7, "portalId": portal, "appId": APP,
        "occurredAt": NOW - 1000, "subscriptionType": kind, "attemptNumber": 0,
        "objectId": id, "changeSource": "CRM_UI",
        "propertyName": "name", "propertyValue": "Acme"
    })
}

fn body_of(events: &[Value]) -> Vec<u8> {
    serde_json::to_vec(events).unwrap()
}

fn signed_headers(body: &[u8], ts: i64) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        "X-HubSpot-Signature-v3",
        sign_v3(&secret(), "POST", URL, body, ts).parse().unwrap(),
    );
    h.insert(
        "X-HubSpot-Request-Timestamp",
        ts.to_string().parse().unwrap(),
    );
    h.insert(
        "X-HubSpot-Signature",
        sign_v1(&secret(), body).parse().unwrap(),
    );
    h.insert("X-HubSpot-Signature-Version", "v1".parse().unwrap());
    h
}

async fn post(
    intake: &Intake<MemorySink, StaticDirectory>,
    headers: &HeaderMap,
    body: &[u8],
) -> (u16, Value) {
    let reply = respond(intake, "POST", headers, None, body, NOW).await;
    (reply.status, serde_json::from_str(&reply.body).unwrap())
}

#[tokio::test]
async fn signed_delivery_is_queued_in_one_request() {
    let intake = intake();
    let events: Vec<Value> = (1..=100)
        .map(|i| event(ACTIVE, i, "company.propertyChange"))
        .collect();
    let body = body_of(&events);
    let (status, reply) = post(&intake, &signed_headers(&body, NOW - 2_000), &body).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["received"], 100);
    assert_eq!(reply["enqueued"], 100);
    assert_eq!(reply["sqs_requests"], 1);
    let sent = intake.sink().messages();
    assert_eq!(sent.len(), 1);
    let batch = EventBatch::from_json(&sent[0].body).unwrap();
    assert_eq!(batch.portal_id, PortalId(ACTIVE));
    assert_eq!(batch.events.len(), 100);
    assert_eq!(batch.received_at, NOW);
}

#[tokio::test]
async fn events_of_several_portals_become_one_message_each_in_one_request() {
    let intake = intake();
    let body = body_of(&[
        event(ACTIVE, 1, "contact.creation"),
        event(2001, 2, "deal.deletion"),
        event(ACTIVE, 3, "contact.propertyChange"),
    ]);
    let (status, reply) = post(&intake, &signed_headers(&body, NOW), &body).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["sqs_messages"], 2);
    assert_eq!(reply["sqs_requests"], 1);
    let portals: Vec<PortalId> = intake.sink().messages().iter().map(|m| m.portal).collect();
    assert_eq!(portals, vec![PortalId(ACTIVE), PortalId(2001)]);
}

async fn assert_rejected(headers: HeaderMap, body: &[u8], status: u16, reason: &str) {
    let intake = intake();
    let (got, reply) = post(&intake, &headers, body).await;
    assert_eq!(got, status, "{reply}");
    assert_eq!(reply["reason"], reason, "{reply}");
    assert!(intake.sink().messages().is_empty(), "nothing may reach SQS");
}

#[tokio::test]
async fn wrong_signature_is_rejected_with_401() {
    let body = body_of(&[event(ACTIVE, 1, "company.creation")]);
    let mut h = signed_headers(&body, NOW);
    let other = sign_v3(
        &SecretString::from("another-secret".to_string()),
        "POST",
        URL,
        &body,
        NOW,
    );
    h.insert("X-HubSpot-Signature-v3", other.parse().unwrap());
    assert_rejected(h, &body, 401, "bad_signature").await;
}

#[tokio::test]
async fn v1_only_delivery_is_rejected_with_401() {
    let body = body_of(&[event(ACTIVE, 1, "company.creation")]);
    let mut h = signed_headers(&body, NOW);
    h.remove("X-HubSpot-Signature-v3");
    assert_rejected(h, &body, 401, "bad_signature").await;
}

#[tokio::test]
async fn signature_over_another_url_is_rejected() {
    let body = body_of(&[event(ACTIVE, 1, "company.creation")]);
    let mut h = signed_headers(&body, NOW);
    let sig = sign_v3(&secret(), "POST", "https://evil.example.com/x", &body, NOW);
    h.insert("X-HubSpot-Signature-v3", sig.parse().unwrap());
    assert_rejected(h, &body, 401, "bad_signature").await;
}

#[tokio::test]
async fn stale_timestamp_is_rejected_with_401() {
    let body = body_of(&[event(ACTIVE, 1, "company.creation")]);
    let h = signed_headers(&body, NOW - 5 * 60 * 1000 - 1);
    assert_rejected(h, &body, 401, "stale_timestamp").await;
}

#[tokio::test]
async fn future_timestamp_is_rejected_with_401() {
    let body = body_of(&[event(ACTIVE, 1, "company.creation")]);
    let h = signed_headers(&body, NOW + 5 * 60 * 1000 + 1);
    assert_rejected(h, &body, 401, "stale_timestamp").await;
}

#[tokio::test]
async fn missing_timestamp_is_rejected_with_401() {
    let body = body_of(&[event(ACTIVE, 1, "company.creation")]);
    let mut h = signed_headers(&body, NOW);
    h.remove("X-HubSpot-Request-Timestamp");
    assert_rejected(h, &body, 401, "bad_signature").await;
}

#[tokio::test]
async fn tampered_body_is_rejected_with_401() {
    let body = body_of(&[event(ACTIVE, 1, "company.creation")]);
    let h = signed_headers(&body, NOW);
    let tampered = body_of(&[event(ACTIVE, 2, "company.creation")]);
    assert_rejected(h, &tampered, 401, "bad_signature").await;
}

#[tokio::test]
async fn non_json_body_is_rejected_with_400() {
    let body = b"this is not json".to_vec();
    let h = signed_headers(&body, NOW);
    assert_rejected(h, &body, 400, "malformed").await;
}

#[tokio::test]
async fn json_that_is_not_an_event_array_is_rejected_with_400() {
    let body = br#"{"portalId": 1001}"#.to_vec();
    let h = signed_headers(&body, NOW);
    assert_rejected(h, &body, 400, "malformed").await;
}

#[tokio::test]
async fn empty_event_array_is_rejected_with_400() {
    let body = b"[]".to_vec();
    let h = signed_headers(&body, NOW);
    assert_rejected(h, &body, 400, "empty").await;
}

#[tokio::test]
async fn more_than_100_events_are_rejected_with_400() {
    let events: Vec<Value> = (1..=101)
        .map(|i| event(ACTIVE, i, "company.creation"))
        .collect();
    let body = body_of(&events);
    let h = signed_headers(&body, NOW);
    assert_rejected(h, &body, 400, "too_many_events").await;
}

#[tokio::test]
async fn two_megabyte_body_is_rejected_before_verification() {
    let body = vec![b' '; 2 * 1024 * 1024];
    // Unsigned: the size check comes first, so no HMAC work is spent on it.
    assert_rejected(HeaderMap::new(), &body, 400, "body_too_large").await;
}

#[tokio::test]
async fn get_is_not_allowed() {
    let intake = intake();
    let reply = respond(&intake, "GET", &HeaderMap::new(), None, b"", NOW).await;
    assert_eq!(reply.status, 405);
}

#[tokio::test]
async fn unknown_subscription_type_is_skipped_and_counted() {
    let intake = intake();
    let body = body_of(&[
        event(ACTIVE, 1, "ticket.creation"),
        event(ACTIVE, 2, "company.creation"),
    ]);
    let (status, reply) = post(&intake, &signed_headers(&body, NOW), &body).await;
    assert_eq!(status, 200);
    assert_eq!(reply["skipped_unknown_type"], 1);
    assert_eq!(reply["enqueued"], 1);
    let batch = EventBatch::from_json(&intake.sink().messages()[0].body).unwrap();
    assert_eq!(batch.events.len(), 1);
}

fn generic(portal: u64, id: u64, kind: &str, type_id: &str) -> Value {
    let mut e = event(portal, id, &format!("object.{kind}"));
    e["objectTypeId"] = json!(type_id);
    e
}

#[tokio::test]
async fn generic_and_classic_events_of_one_delivery_are_queued_together() {
    let intake = intake();
    let assoc = json!({
        "eventId": 9, "subscriptionId": 8, "portalId": ACTIVE, "appId": APP,
        "occurredAt": NOW - 500, "subscriptionType": "object.associationChange",
        "attemptNumber": 0, "fromObjectTypeId": "0-3", "fromObjectId": 30,
        "toObjectTypeId": "0-2", "toObjectId": 20, "associationTypeId": 5,
        "associationRemoved": false, "isPrimaryAssociation": true
    });
    let body = body_of(&[
        generic(ACTIVE, 1, "creation", "0-2"),
        generic(ACTIVE, 2, "propertyChange", "0-1"),
        event(ACTIVE, 3, "deal.deletion"),
        generic(ACTIVE, 4, "creation", "0-5"), // a ticket: not synced
        generic(ACTIVE, 5, "creation", "2-12345"), // a custom object
        event(ACTIVE, 6, "object.creation"),   // no objectTypeId
        assoc,
    ]);
    let (status, reply) = post(&intake, &signed_headers(&body, NOW), &body).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["received"], 7);
    assert_eq!(reply["enqueued"], 4);
    assert_eq!(reply["skipped_unknown_type"], 3);
    let batch = EventBatch::from_json(&intake.sink().messages()[0].body).unwrap();
    let types: Vec<String> = batch
        .events
        .iter()
        .map(|e| e.subscription_type.to_string())
        .collect();
    assert_eq!(
        types,
        [
            "object.creation",
            "object.propertyChange",
            "deal.deletion",
            "object.associationChange"
        ]
    );
    // The queued form keeps what the worker needs to resolve the type.
    assert_eq!(batch.events[0].object_type_id.as_deref(), Some("0-2"));
    assert_eq!(batch.events[3].from_object_type_id.as_deref(), Some("0-3"));
    assert_eq!(
        batch.events[3].resolved(),
        Some((
            hubsync_hubspot::ObjectType::Deals,
            hubsync_hubspot::EventKind::AssociationChange
        ))
    );
}

#[tokio::test]
async fn unknown_and_inactive_portals_are_accepted_but_not_queued() {
    let intake = intake();
    let body = body_of(&[
        event(9999, 1, "company.creation"),
        event(INACTIVE, 2, "company.creation"),
    ]);
    let (status, reply) = post(&intake, &signed_headers(&body, NOW), &body).await;
    assert_eq!(status, 200, "HubSpot would retry a 4xx for a day");
    assert_eq!(reply["skipped_unknown_portal"], 1);
    assert_eq!(reply["skipped_inactive_portal"], 1);
    assert_eq!(reply["enqueued"], 0);
    assert_eq!(reply["sqs_requests"], 0);
    assert!(intake.sink().messages().is_empty());
}

#[tokio::test]
async fn events_of_another_app_are_skipped() {
    let intake = intake();
    let mut foreign = event(ACTIVE, 1, "company.creation");
    foreign["appId"] = json!(1);
    let body = body_of(&[foreign]);
    let (status, reply) = post(&intake, &signed_headers(&body, NOW), &body).await;
    assert_eq!(status, 200);
    assert_eq!(reply["skipped_foreign_app"], 1);
    assert!(intake.sink().messages().is_empty());
}

#[tokio::test]
async fn sqs_failure_answers_503_so_hubspot_retries() {
    let intake = intake();
    intake.sink().fail.store(true, Ordering::SeqCst);
    let body = body_of(&[event(ACTIVE, 1, "company.creation")]);
    let (status, reply) = post(&intake, &signed_headers(&body, NOW), &body).await;
    assert_eq!(status, 503, "never a silent 200");
    assert_eq!(reply["reason"], "queue_unavailable");
}

#[tokio::test]
async fn delivery_over_256_kib_is_split_at_event_boundaries() {
    let intake = intake();
    let big = "x".repeat(4_000);
    let events: Vec<Value> = (1..=100)
        .map(|i| {
            let mut e = event(ACTIVE, i, "contact.propertyChange");
            e["propertyValue"] = json!(big);
            e
        })
        .collect();
    let body = body_of(&events);
    let (status, reply) = post(&intake, &signed_headers(&body, NOW), &body).await;
    assert_eq!(status, 200, "{reply}");
    let sent = intake.sink().messages();
    assert!(sent.len() >= 2, "400 KB of events need two messages");
    let mut total = 0;
    for m in &sent {
        assert!(m.body.len() <= 256 * 1024);
        total += EventBatch::from_json(&m.body).unwrap().events.len();
    }
    assert_eq!(total, 100, "every event is queued exactly once");
    assert_eq!(reply["sqs_requests"], sent.len() as u64);
}

#[tokio::test]
async fn query_string_is_part_of_the_signed_uri() {
    let intake = intake();
    let body = body_of(&[event(ACTIVE, 1, "company.creation")]);
    let mut h = HeaderMap::new();
    let sig = sign_v3(&secret(), "POST", &format!("{URL}?tenant=a"), &body, NOW);
    h.insert("X-HubSpot-Signature-v3", sig.parse().unwrap());
    h.insert(
        "X-HubSpot-Request-Timestamp",
        NOW.to_string().parse().unwrap(),
    );
    let ok = respond(&intake, "POST", &h, Some("tenant=a"), &body, NOW).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let bad = respond(&intake, "POST", &h, Some("tenant=b"), &body, NOW).await;
    assert_eq!(bad.status, 401);
}
