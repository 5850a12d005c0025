//! The reconciliation emits the CloudWatch EMF metrics its alarms watch
//! (`template.yaml`): parse the lines it prints.

use std::sync::{Arc, Mutex};

use hubsync_store::{MemoryStore, TypeRunReport};
use reconcile::handler::{emit_finished_metrics, FUNCTION};
use reconcile::MemoryJobQueue;
use reconcile::{fan_out, ScheduleEvent};
use serde_json::{json, Value};

fn emf(lines: &Mutex<Vec<String>>) -> Vec<Value> {
    lines
        .lock()
        .unwrap()
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "hubsync")
        .collect()
}

/// The line that carries `metric` with exactly `dimensions`.
fn line_with<'a>(lines: &'a [Value], metric: &str, dimensions: &[&str]) -> &'a Value {
    lines
        .iter()
        .find(|v| {
            let cw = &v["_aws"]["CloudWatchMetrics"][0];
            cw["Dimensions"] == json!([dimensions])
                && cw["Metrics"]
                    .as_array()
                    .is_some_and(|m| m.iter().any(|m| m["Name"] == metric))
        })
        .unwrap_or_else(|| panic!("no EMF line with {metric} by {dimensions:?} in {lines:#?}"))
}

#[tokio::test]
async fn fan_out_and_finished_runs_emit_the_metrics_the_alarms_watch() {
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = lines.clone();
    hubsync_runtime::metrics::capture(move |l| sink.lock().unwrap().push(l.to_string()));

    // The heartbeat is emitted even when no portal is connected, so the
    // "not started" alarm does not fire for an empty installation.
    let store = MemoryStore::new();
    let queue = MemoryJobQueue::default();
    let event: ScheduleEvent = serde_json::from_value(
        json!({"schedule": "nightly", "scheduled_time": "2026-01-02T02:00:00Z"}),
    )
    .unwrap();
    let out = fan_out(&store, &queue, &event).await.unwrap();
    assert_eq!(out.jobs, 0);
    let seen = emf(&lines);
    let beat = line_with(&seen, "NightlyJobsQueued", &["Function"]);
    assert_eq!(beat["Function"], FUNCTION);
    assert_eq!(beat["Function"], "reconcile");
    assert_eq!(beat["NightlyJobsQueued"], json!(0.0));
    assert_eq!(beat["NightlyPortals"], json!(0.0));

    let report: TypeRunReport = serde_json::from_value(json!({
        "portal_id": 4242,
        "run_id": "nightly-1767319200000",
        "kind": "nightly",
        "object_type": "contacts",
        "status": "completed",
        "started_at_ms": 1_767_319_200_000i64,
        "finished_at_ms": 1_767_319_260_000i64,
        "updated_at_ms": 1_767_319_260_000i64,
        "duration_ms": 60_000,
        "active_ms": 59_000,
        "done": 1500,
        "drift": 7,
        "counters": {"hubspot_calls": 16, "rate_limited": 2},
        "invocations": 1
    }))
    .expect("a run report");
    emit_finished_metrics(&report);
    let seen = emf(&lines);

    let by_kind = line_with(&seen, "ReconcileDrift", &["Function", "Kind"]);
    assert_eq!(by_kind["Function"], "reconcile");
    assert_eq!(by_kind["Kind"], "nightly");
    assert_eq!(by_kind["ReconcileDrift"], json!(7.0));
    assert_eq!(by_kind["ReconcileRunsFinished"], json!(1.0));
    assert_eq!(by_kind["ReconcileRecords"], json!(1500.0));
    assert_eq!(by_kind["ReconcileDuration"], json!(60_000.0));
    let units: Vec<(String, String)> = by_kind["_aws"]["CloudWatchMetrics"][0]["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["Name"].as_str().unwrap().to_string(),
                m["Unit"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(units.contains(&("ReconcileDuration".into(), "Milliseconds".into())));

    let by_type = line_with(&seen, "ReconcileDrift", &["Function", "Kind", "ObjectType"]);
    assert_eq!(by_type["ObjectType"], "contacts");
    assert_eq!(by_type["ReconcileDrift"], json!(7.0));

    let by_portal = line_with(&seen, "HubSpotCalls", &["Function", "PortalId"]);
    assert_eq!(by_portal["Function"], "reconcile");
    assert_eq!(by_portal["PortalId"], "4242");
    assert_eq!(by_portal["HubSpotCalls"], json!(16.0));
    assert_eq!(by_portal["HubSpot429s"], json!(2.0));
}
