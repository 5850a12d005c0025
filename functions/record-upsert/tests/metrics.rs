//! The worker emits CloudWatch EMF metrics: parse the lines it prints.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use hubsync_hubspot::PortalId;
use record_upsert::BatchStats;
use serde_json::{json, Value};

#[test]
fn batch_stats_become_emf_lines_with_per_portal_hubspot_calls() {
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = lines.clone();
    hubsync_runtime::metrics::capture(move |l| sink.lock().unwrap().push(l.to_string()));

    let mut stats = BatchStats {
        messages: 3,
        events: 250,
        created: 10,
        updated: 5,
        unchanged: 2,
        archived_deleted: 1,
        archived_merged: 2,
        purged: 1,
        needs_reauth_groups: 1,
        ..BatchStats::default()
    };
    stats.skipped.insert("missing_email".into(), 4);
    stats.hubspot_calls_by_portal.insert(PortalId(77), 3);
    stats.emit_metrics(&BTreeMap::from([(PortalId(77), 1)]));

    let parsed: Vec<Value> = lines
        .lock()
        .unwrap()
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let totals = parsed
        .iter()
        .find(|v| v.get("RecordsWritten").is_some())
        .expect("a totals line");
    assert_eq!(totals["Function"], "record-upsert");
    assert_eq!(totals["RecordsWritten"], json!(15.0));
    assert_eq!(totals["RecordsSkipped"], json!(4.0));
    assert_eq!(totals["RecordsArchived"], json!(3.0));
    assert_eq!(totals["RecordsPurged"], json!(1.0));
    assert_eq!(totals["NeedsReauth"], json!(1.0));
    let portal = parsed
        .iter()
        .find(|v| v.get("HubSpotCalls").is_some())
        .expect("a per-portal line");
    assert_eq!(portal["PortalId"], "77");
    assert_eq!(portal["HubSpotCalls"], json!(3.0));
    assert_eq!(portal["HubSpot429s"], json!(1.0));
    assert_eq!(
        portal["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([["Function", "PortalId"]])
    );
}
