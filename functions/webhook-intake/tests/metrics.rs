//! The intake emits CloudWatch EMF metrics: parse the lines it prints.

use std::sync::{Arc, Mutex};

use http::HeaderMap;
use hubsync_hubspot::signature::{sign_v3, WebhookVerifier};
use hubsync_hubspot::PortalId;
use secrecy::SecretString;
use serde_json::{json, Value};
use webhook_intake::directory::StaticDirectory;
use webhook_intake::http::respond;
use webhook_intake::sink::MemorySink;
use webhook_intake::{Intake, IntakeConfig};

const URL: &str = "https://hooks.example.com/webhooks/hubspot";
const NOW: i64 = 1_700_000_000_000;

fn metric_lines(lines: &[String], name: &str) -> Vec<Value> {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| {
            v["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .is_some_and(|m| m.iter().any(|d| d["Name"] == name))
        })
        .collect()
}

#[tokio::test]
async fn accepted_and_rejected_deliveries_emit_emf_metrics() {
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = lines.clone();
    hubsync_runtime::metrics::capture(move |l| sink.lock().unwrap().push(l.to_string()));

    let secret = SecretString::from("s".to_string());
    let intake = Intake::new(
        WebhookVerifier::new(secret.clone(), URL),
        IntakeConfig::default(),
        MemorySink::default(),
        StaticDirectory {
            active: vec![PortalId(1)],
            inactive: vec![],
        },
    );
    let body = serde_json::to_vec(&json!([
        {"eventId":1,"subscriptionId":1,"portalId":1,"appId":1,"occurredAt":NOW,
         "subscriptionType":"company.creation","objectId":5},
        {"eventId":2,"subscriptionId":1,"portalId":9,"appId":1,"occurredAt":NOW,
         "subscriptionType":"company.creation","objectId":6}
    ]))
    .unwrap();
    let mut h = HeaderMap::new();
    h.insert(
        "X-HubSpot-Signature-v3",
        sign_v3(&secret, "POST", URL, &body, NOW).parse().unwrap(),
    );
    h.insert(
        "X-HubSpot-Request-Timestamp",
        NOW.to_string().parse().unwrap(),
    );
    assert_eq!(
        respond(&intake, "POST", &h, None, &body, NOW).await.status,
        200
    );
    h.insert("X-HubSpot-Signature-v3", "AAAA".parse().unwrap());
    assert_eq!(
        respond(&intake, "POST", &h, None, &body, NOW).await.status,
        401
    );

    // SQS unavailable: 503 (HubSpot retries), counted by reason and in total.
    h.insert(
        "X-HubSpot-Signature-v3",
        sign_v3(&secret, "POST", URL, &body, NOW).parse().unwrap(),
    );
    intake
        .sink()
        .fail
        .store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        respond(&intake, "POST", &h, None, &body, NOW).await.status,
        503
    );

    let lines = lines.lock().unwrap().clone();
    let errors = metric_lines(&lines, "IntakeErrors");
    let dimensions: Vec<&Value> = errors
        .iter()
        .map(|v| &v["_aws"]["CloudWatchMetrics"][0]["Dimensions"])
        .collect();
    assert_eq!(
        dimensions,
        [&json!([["Function", "Reason"]]), &json!([["Function"]])],
        "{errors:?}"
    );
    assert!(errors.iter().all(|v| v["IntakeErrors"] == json!(1.0)));
    let received = metric_lines(&lines, "EventsReceived");
    assert_eq!(received.len(), 1, "{lines:?}");
    assert_eq!(received[0]["Function"], "webhook-intake");
    assert_eq!(received[0]["EventsReceived"], json!(2.0));
    assert_eq!(received[0]["EventsEnqueued"], json!(1.0));
    assert_eq!(received[0]["SqsRequests"], json!(1.0));
    let skipped = metric_lines(&lines, "EventsSkipped");
    assert_eq!(skipped[0]["Reason"], "unknown_portal");
    let rejected = metric_lines(&lines, "DeliveriesRejected");
    assert_eq!(rejected.len(), 2, "the 401 and the 503");
    assert_eq!(rejected[0]["Reason"], "bad_signature");
    assert_eq!(
        rejected[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([["Function", "Reason"]])
    );
    assert_eq!(
        rejected[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        "hubsync"
    );
}
