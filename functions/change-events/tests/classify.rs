//! Stream changes → events, case by case, and the publisher's batching,
//! retries and partial failures.

use change_events::classify::classify;
use change_events::image::{ChangeKind, Image, StreamChange, Table};
use change_events::{MemorySink, Publisher};
use hubsync_hubspot::PortalId;
use hubsync_store::{Connection, ConnectionStore, MemoryStore};
use serde_json::{json, Value};

fn s(v: &str) -> Value {
    json!({ "S": v })
}
fn n(v: i64) -> Value {
    json!({ "N": v.to_string() })
}
fn b(v: bool) -> Value {
    json!({ "BOOL": v })
}
fn null() -> Value {
    json!({ "NULL": true })
}

/// A stored company as the store writes it.
fn company(name: &str, version: i64) -> Image {
    [
        ("pk", s("42#companies")),
        ("sk", s("00000000000000000007")),
        ("portal_id", n(42)),
        ("object_type", s("companies")),
        ("object_id", s("7")),
        ("record_type", s("company")),
        ("source_version", n(version)),
        ("content_hash", s(&format!("h-{name}"))),
        (
            "synced_at",
            s(&format!("2026-12-07T00:00:{:02}Z", version % 60)),
        ),
        ("archived", b(false)),
        ("archived_at", null()),
        ("archive_reason", null()),
        ("merged_into", null()),
        ("privacy_deleted", b(false)),
        ("name", s(name)),
        ("domain", s("acme.example")),
        ("owner_id", null()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn archived(mut i: Image, reason: &str, merged_into: Option<&str>) -> Image {
    i.insert("archived".into(), b(true));
    i.insert("archived_at".into(), s("2026-12-07T01:00:00Z"));
    i.insert("archive_reason".into(), s(reason));
    i.insert(
        "merged_into".into(),
        merged_into.map(s).unwrap_or_else(null),
    );
    i
}

fn tombstone() -> Image {
    [
        ("pk", s("42#contacts")),
        ("sk", s("00000000000000000009")),
        ("portal_id", n(42)),
        ("object_type", s("contacts")),
        ("object_id", s("9")),
        ("source_version", n(i64::MAX)),
        ("archived", b(true)),
        ("privacy_deleted", b(true)),
        ("purged_at", s("2026-12-07T02:00:00Z")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn change(table: Table, kind: ChangeKind, old: Option<Image>, new: Option<Image>) -> StreamChange {
    StreamChange {
        table,
        kind,
        sequence: "100".into(),
        at: chrono::Utc::now(),
        old,
        new,
    }
}

fn record(kind: ChangeKind, old: Option<Image>, new: Option<Image>) -> Option<Value> {
    classify(&change(Table::Records, kind, old, new), Some("acme")).map(|e| {
        assert_eq!(e.detail_type, "record.changed");
        e.detail
    })
}

fn fields(detail: &Value) -> Vec<&str> {
    detail["changed_fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect()
}

#[test]
fn a_new_record_is_created_with_its_non_empty_fields() {
    let d = record(ChangeKind::Insert, None, Some(company("Acme", 1))).unwrap();
    assert_eq!(d["kind"], "created");
    assert_eq!(
        fields(&d),
        ["domain", "name"],
        "no bookkeeping, no empty field"
    );
    assert_eq!(
        (
            d["portal_id"].as_u64(),
            d["tenant_id"].as_str(),
            d["object_type"].as_str(),
            d["object_id"].as_str()
        ),
        (Some(42), Some("acme"), Some("companies"), Some("7"))
    );
    assert_eq!(d["schema_version"], 1);
    assert!(d["event_id"].as_str().unwrap().len() == 32);
    assert!(!d.to_string().contains("Acme"), "no values in events");
}

#[test]
fn an_update_names_only_the_fields_that_changed() {
    let d = record(
        ChangeKind::Modify,
        Some(company("Acme", 1)),
        Some(company("Acme Inc", 2)),
    )
    .unwrap();
    assert_eq!(d["kind"], "updated");
    assert_eq!(fields(&d), ["name"]);
    assert_eq!(d["source_version"], 2);
    let mut with_owner = company("Acme", 3);
    with_owner.insert("owner_id".into(), s("55"));
    let d = record(
        ChangeKind::Modify,
        Some(company("Acme", 1)),
        Some(with_owner),
    )
    .unwrap();
    assert_eq!(fields(&d), ["owner_id"]);
}

#[test]
fn a_bookkeeping_only_write_is_no_event() {
    let mut remapped = company("Acme", 5);
    remapped.insert("mapping_fp".into(), s("fp2"));
    remapped.insert("content_hash".into(), s("h-Acme"));
    assert_eq!(
        record(ChangeKind::Modify, Some(company("Acme", 1)), Some(remapped)),
        None
    );
}

#[test]
fn archive_merge_restore_purge_and_delete_have_their_kinds() {
    let d = record(
        ChangeKind::Modify,
        Some(company("Acme", 1)),
        Some(archived(company("Acme", 2), "deleted", None)),
    )
    .unwrap();
    assert_eq!(
        (d["kind"].as_str(), d["archive_reason"].as_str()),
        (Some("archived"), Some("deleted"))
    );
    assert_eq!(fields(&d), ["archive_reason", "archived", "archived_at"]);

    let d = record(
        ChangeKind::Modify,
        Some(company("Acme", 1)),
        Some(archived(company("Acme", 2), "out_of_scope", None)),
    )
    .unwrap();
    assert_eq!(
        (d["kind"].as_str(), d["archive_reason"].as_str()),
        (Some("archived"), Some("out_of_scope"))
    );

    let d = record(
        ChangeKind::Modify,
        Some(company("Acme", 1)),
        Some(archived(company("Acme", 2), "merged", Some("8"))),
    )
    .unwrap();
    assert_eq!(
        (d["kind"].as_str(), d["merged_into"].as_str()),
        (Some("merged"), Some("8"))
    );

    let d = record(
        ChangeKind::Modify,
        Some(archived(company("Acme", 2), "deleted", None)),
        Some(company("Acme", 3)),
    )
    .unwrap();
    assert_eq!(d["kind"], "restored");
    assert_eq!(fields(&d), ["archive_reason", "archived", "archived_at"]);

    let mut contact = company("Ada", 1);
    contact.insert("pk".into(), s("42#contacts"));
    contact.insert("object_type".into(), s("contacts"));
    contact.insert("object_id".into(), s("9"));
    let d = record(ChangeKind::Modify, Some(contact), Some(tombstone())).unwrap();
    assert_eq!(d["kind"], "purged");
    assert!(fields(&d).contains(&"name") && fields(&d).contains(&"privacy_deleted"));
    let d = record(ChangeKind::Insert, None, Some(tombstone())).unwrap();
    assert_eq!(d["kind"], "purged");
    assert_eq!(
        record(ChangeKind::Modify, Some(tombstone()), Some(tombstone())),
        None
    );

    let d = record(
        ChangeKind::Remove,
        Some(archived(company("Acme", 2), "deleted", None)),
        None,
    )
    .unwrap();
    assert_eq!(d["kind"], "deleted");
    assert_eq!(fields(&d), Vec::<&str>::new());
    assert_eq!(record(ChangeKind::Remove, Some(tombstone()), None), None);
}

fn report(status: &str, done: i64, total: Option<i64>) -> Image {
    let mut i: Image = [
        ("pk", s("RUN#42")),
        ("sk", s("1700000000000-resync#contacts")),
        ("portal_id", n(42)),
        ("run_id", s("1700000000000-resync")),
        ("kind", s("resync")),
        ("object_type", s("contacts")),
        ("status", s(status)),
        ("done", n(done)),
        ("drift", n(3)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    if let Some(t) = total {
        i.insert("estimated_total".into(), n(t));
    }
    i
}

fn control(kind: ChangeKind, old: Option<Image>, new: Option<Image>) -> Option<(String, Value)> {
    classify(&change(Table::Control, kind, old, new), None)
        .map(|e| (e.detail_type.to_owned(), e.detail))
}

#[test]
fn sync_progress_is_throttled_to_five_percent_steps_and_ends_once() {
    let (t, d) = control(
        ChangeKind::Insert,
        None,
        Some(report("running", 0, Some(1000))),
    )
    .unwrap();
    assert_eq!(
        (t.as_str(), d["estimated_total"].as_u64()),
        ("sync.progress", Some(1000))
    );
    assert_eq!(
        control(
            ChangeKind::Modify,
            Some(report("running", 0, Some(1000))),
            Some(report("running", 40, Some(1000)))
        ),
        None
    );
    let (t, d) = control(
        ChangeKind::Modify,
        Some(report("running", 40, Some(1000))),
        Some(report("running", 60, Some(1000))),
    )
    .unwrap();
    assert_eq!(
        (t.as_str(), d["done"].as_u64()),
        ("sync.progress", Some(60))
    );
    let (t, _) = control(
        ChangeKind::Modify,
        Some(report("running", 10, None)),
        Some(report("running", 11, None)),
    )
    .unwrap();
    assert_eq!(t, "sync.progress", "without a total, every report");
    let (t, d) = control(
        ChangeKind::Modify,
        Some(report("running", 990, Some(1000))),
        Some(report("completed", 1000, Some(1000))),
    )
    .unwrap();
    assert_eq!(
        (t.as_str(), d["drift"].as_u64(), d["run_id"].as_str()),
        ("sync.completed", Some(3), Some("1700000000000-resync"))
    );
    assert_eq!(
        control(
            ChangeKind::Modify,
            Some(report("completed", 1000, Some(1000))),
            Some(report("completed", 1000, Some(1000)))
        ),
        None
    );
    let mut failed = report("failed", 10, Some(1000));
    failed.insert("error".into(), s("needs_reauth"));
    let (t, d) = control(
        ChangeKind::Modify,
        Some(report("running", 10, Some(1000))),
        Some(failed),
    )
    .unwrap();
    assert_eq!(
        (t.as_str(), d["error"].as_str()),
        ("sync.failed", Some("needs_reauth"))
    );
}

fn connection(status: &str, token: &str) -> Image {
    [
        ("pk", s("CONN#42")),
        ("sk", s("CONN")),
        ("portal_id", n(42)),
        ("tenant_id", s("acme")),
        ("status", s(status)),
        ("access_token_ciphertext", s(token)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

#[test]
fn connection_events_follow_state_changes_only() {
    let (t, d) = control(ChangeKind::Insert, None, Some(connection("active", "a"))).unwrap();
    assert_eq!(
        (t.as_str(), d["tenant_id"].as_str()),
        ("connection.connected", Some("acme"))
    );
    assert_eq!(
        control(
            ChangeKind::Modify,
            Some(connection("active", "a")),
            Some(connection("active", "b"))
        ),
        None,
        "a token refresh is no event"
    );
    let (t, _) = control(
        ChangeKind::Modify,
        Some(connection("active", "b")),
        Some(connection("needs_reauth", "")),
    )
    .unwrap();
    assert_eq!(t, "connection.needs_reauth");
    let (t, _) = control(
        ChangeKind::Modify,
        Some(connection("needs_reauth", "")),
        Some(connection("active", "c")),
    )
    .unwrap();
    assert_eq!(t, "connection.connected");
    let (t, _) = control(
        ChangeKind::Modify,
        Some(connection("active", "c")),
        Some(connection("disconnected", "")),
    )
    .unwrap();
    assert_eq!(t, "connection.disconnected");
    // A deferred connect is a connection; its setup's end is not another.
    let (t, d) = control(
        ChangeKind::Insert,
        None,
        Some(connection("awaiting_setup", "a")),
    )
    .unwrap();
    assert_eq!(
        (t.as_str(), d["state"].as_str()),
        ("connection.connected", Some("awaiting_setup"))
    );
    assert_eq!(
        control(
            ChangeKind::Modify,
            Some(connection("awaiting_setup", "a")),
            Some(connection("active", "a"))
        ),
        None
    );
    let mut lease = connection("active", "a");
    lease.insert("pk".into(), s("RATE#42"));
    assert_eq!(
        control(ChangeKind::Insert, None, Some(lease)),
        None,
        "other Control items are no events"
    );
}

fn numbered(i: usize) -> StreamChange {
    let mut c = change(
        Table::Records,
        ChangeKind::Insert,
        None,
        Some(company(&format!("c{i}"), i as i64)),
    );
    c.sequence = format!("{:05}", i);
    c
}

async fn publisher(sink: MemorySink) -> Publisher<MemorySink, MemoryStore> {
    let store = MemoryStore::new();
    store
        .put_connection(&Connection::active(PortalId(42), "acme"))
        .await
        .unwrap();
    let mut p = Publisher::new(sink, store);
    p.backoff = std::time::Duration::from_millis(1);
    p
}

#[tokio::test]
async fn a_batch_goes_out_in_order_ten_per_request_with_refused_entries_retried() {
    let sink = MemorySink::new();
    let p = publisher(sink.clone()).await;
    let changes: Vec<StreamChange> = (0..25).map(numbered).collect();
    sink.refuse_entries(3);
    sink.fail_requests(1);
    let out = p.publish(&changes).await;
    assert_eq!((out.events, out.handled, out.failed_at), (25, 25, None));
    let events = sink.events();
    assert_eq!(events.len(), 25);
    assert!(events
        .iter()
        .all(|(t, d)| t == "record.changed" && d["tenant_id"] == "acme"));
}

#[tokio::test]
async fn an_event_that_cannot_be_published_stops_the_batch_at_its_change() {
    let sink = MemorySink::new();
    let mut p = publisher(sink.clone()).await;
    p.attempts = 2;
    let changes: Vec<StreamChange> = (0..15).map(numbered).collect();
    // The second request (changes 10..15) fails on every attempt.
    let first = p.publish(&changes[..10]).await;
    assert_eq!(first.failed_at, None);
    sink.fail_requests(2);
    let out = p.publish(&changes[10..]).await;
    assert_eq!(
        out.failed_at.as_deref(),
        Some("00010"),
        "the stream resumes there"
    );
    assert_eq!(sink.events().len(), 10);
    // The stream hands the rest over again: nothing lost.
    let again = p.publish(&changes[10..]).await;
    assert_eq!(again.failed_at, None);
    assert_eq!(sink.events().len(), 15);
}
