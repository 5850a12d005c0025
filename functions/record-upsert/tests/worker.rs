//! The worker against a fake HubSpot and the in-memory store (same
//! semantics as DynamoDB: one suite in `hubsync-store` runs on both).

use std::sync::atomic::Ordering;

use hubsync_hubspot::{ObjectId, ObjectType, PortalId};
use hubsync_store::{
    Connection, ConnectionStatus, ConnectionStore, MemoryStore, RecordKey, RecordStore,
};
use hubsync_sync::fake::FakeHubSpot;
use record_upsert::{InboundMessage, Worker};
use serde_json::{json, Value};

const PORTAL: u64 = 501;

fn connection(portal: u64, status: ConnectionStatus) -> Connection {
    let now = chrono::Utc::now();
    Connection {
        portal_id: PortalId(portal),
        tenant_id: format!("tenant-{portal}"),
        status,
        scopes: vec![],
        access_token_ciphertext: None,
        refresh_token_ciphertext: None,
        access_token_expires_at: None,
        created_at: now,
        updated_at: now,
        last_webhook_at: None,
        status_reason: None,
    }
}

async fn worker() -> Worker<FakeHubSpot, MemoryStore> {
    let store = MemoryStore::new();
    store
        .put_connection(&connection(PORTAL, ConnectionStatus::Active))
        .await
        .unwrap();
    // The reconciliation fills the owners cache (the default companies map
    // owner emails); these companies name no owner.
    hubsync_store::OwnersCacheStore::put_owners_cache(
        &store,
        PortalId(PORTAL),
        &hubsync_mapping::Owners::new(),
        1,
    )
    .await
    .unwrap();
    Worker::new(FakeHubSpot::default(), store)
}

fn event(kind: &str, id: u64, at: i64) -> Value {
    json!({"eventId": 1, "subscriptionId": 1, "portalId": PORTAL, "appId": 1,
           "occurredAt": at, "subscriptionType": kind, "attemptNumber": 0, "objectId": id})
}

fn message(id: &str, events: Vec<Value>) -> InboundMessage {
    InboundMessage {
        message_id: id.to_string(),
        body: json!({"v": 1, "portalId": PORTAL, "receivedAt": 0, "events": events}).to_string(),
    }
}

fn key(t: ObjectType, id: u64) -> RecordKey {
    RecordKey::new(PortalId(PORTAL), t, ObjectId(id))
}

#[tokio::test]
async fn created_company_lands_and_a_replay_writes_nothing() {
    let w = worker().await;
    w.reader().put(
        ObjectType::Companies,
        7,
        1_000,
        &[
            ("name", "Acme"),
            ("domain", "acme.io"),
            ("annualrevenue", "1250.50"),
        ],
    );
    let batch = vec![message("m1", vec![event("company.creation", 7, 1_000)])];
    let out = w.process(batch.clone()).await;
    assert!(out.failed.is_empty(), "{out:?}");
    assert_eq!(out.stats.created, 1);
    let rec = w
        .store()
        .get_record(&key(ObjectType::Companies, 7))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.fields["name"], json!("Acme"));
    assert_eq!(rec.fields["annual_revenue_cents"], json!(125050));

    let writes = w.store().stats().writes();
    let again = w.process(batch).await;
    assert_eq!(again.stats.unchanged, 1);
    assert_eq!(
        w.store().stats().writes(),
        writes,
        "a replay costs no write"
    );
}

#[tokio::test]
async fn many_events_for_one_record_cost_one_read_and_one_write() {
    let w = worker().await;
    w.reader().put(
        ObjectType::Deals,
        9,
        5_000,
        &[("dealname", "Big"), ("amount", "10.00")],
    );
    let events: Vec<Value> = (0..50)
        .map(|i| event("deal.propertyChange", 9, 4_000 + i))
        .collect();
    let out = w.process(vec![message("a", events)]).await;
    assert_eq!(w.reader().batch_reads.load(Ordering::SeqCst), 1);
    assert_eq!(out.stats.created, 1);
}

#[tokio::test]
async fn thousand_changed_records_cost_ten_batch_reads() {
    let w = worker().await;
    let mut messages = Vec::new();
    for m in 0..10u64 {
        let events = (0..100u64)
            .map(|i| {
                let id = m * 100 + i + 1;
                w.reader()
                    .put(ObjectType::Companies, id, 1_000, &[("name", "X")]);
                event("company.propertyChange", id, 1_000)
            })
            .collect();
        messages.push(message(&format!("m{m}"), events));
    }
    let out = w.process(messages).await;
    assert!(out.failed.is_empty());
    assert_eq!(out.stats.created, 1000);
    assert_eq!(w.reader().batch_reads.load(Ordering::SeqCst), 10);
}

#[tokio::test]
async fn deleted_company_is_archived_not_removed() {
    let w = worker().await;
    w.reader()
        .put(ObjectType::Companies, 3, 1_000, &[("name", "Gone Inc")]);
    w.process(vec![message(
        "1",
        vec![event("company.creation", 3, 1_000)],
    )])
    .await;
    w.reader().remove(ObjectType::Companies, 3);
    let out = w
        .process(vec![message(
            "2",
            vec![event("company.deletion", 3, 2_000)],
        )])
        .await;
    assert_eq!(out.stats.archived_deleted, 1);
    let rec = w
        .store()
        .get_record(&key(ObjectType::Companies, 3))
        .await
        .unwrap()
        .unwrap();
    assert!(rec.meta.archived);
    assert_eq!(rec.fields["name"], json!("Gone Inc"), "data is kept");
}

#[tokio::test]
async fn restored_record_becomes_active_again() {
    let w = worker().await;
    w.reader()
        .put(ObjectType::Companies, 3, 1_000, &[("name", "Back")]);
    w.process(vec![message(
        "1",
        vec![event("company.creation", 3, 1_000)],
    )])
    .await;
    w.reader().remove(ObjectType::Companies, 3);
    w.process(vec![message(
        "2",
        vec![event("company.deletion", 3, 2_000)],
    )])
    .await;
    w.reader()
        .put(ObjectType::Companies, 3, 3_000, &[("name", "Back")]);
    let out = w
        .process(vec![message("3", vec![event("company.restore", 3, 3_000)])])
        .await;
    assert_eq!(out.stats.updated, 1);
    let rec = w
        .store()
        .get_record(&key(ObjectType::Companies, 3))
        .await
        .unwrap()
        .unwrap();
    assert!(!rec.meta.archived);
}

#[tokio::test]
async fn merged_away_contact_points_at_the_survivor() {
    let w = worker().await;
    for id in [1, 2] {
        w.reader().put(
            ObjectType::Contacts,
            id,
            1_000,
            &[("email", "a@example.com")],
        );
    }
    w.process(vec![message(
        "1",
        vec![
            event("contact.creation", 1, 1_000),
            event("contact.creation", 2, 1_000),
        ],
    )])
    .await;
    w.reader().remove(ObjectType::Contacts, 2);
    w.reader().put(
        ObjectType::Contacts,
        1,
        2_000,
        &[("email", "a@example.com"), ("firstname", "Ada")],
    );
    let mut merge = event("contact.merge", 1, 2_000);
    merge["primaryObjectId"] = json!(1);
    merge["mergedObjectIds"] = json!([2]);
    let out = w
        .process(vec![message(
            "2",
            vec![merge, event("contact.deletion", 2, 2_000)],
        )])
        .await;
    assert!(out.failed.is_empty(), "{out:?}");
    let away = w
        .store()
        .get_record(&key(ObjectType::Contacts, 2))
        .await
        .unwrap()
        .unwrap();
    assert!(away.meta.archived);
    assert_eq!(away.meta.merged_into, Some(ObjectId(1)));
    let survivor = w
        .store()
        .get_record(&key(ObjectType::Contacts, 1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(survivor.fields["name"], json!("Ada"));
}

#[tokio::test]
async fn privacy_deleted_contact_is_purged_and_never_resurrected() {
    let w = worker().await;
    w.reader().put(
        ObjectType::Contacts,
        5,
        1_000,
        &[("email", "p@example.com"), ("firstname", "Pat")],
    );
    w.process(vec![message(
        "1",
        vec![event("contact.creation", 5, 1_000)],
    )])
    .await;
    w.process(vec![message(
        "2",
        vec![event("contact.privacyDeletion", 5, 2_000)],
    )])
    .await;
    let item = w
        .store()
        .raw_record_item(&key(ObjectType::Contacts, 5))
        .unwrap();
    assert!(
        !item.contains_key("email") && !item.contains_key("name"),
        "no PII left"
    );
    // A late, stale update (HubSpot still had it when the event was sent).
    let out = w
        .process(vec![message(
            "3",
            vec![event("contact.propertyChange", 5, 1_500)],
        )])
        .await;
    assert!(out.failed.is_empty());
    let item = w
        .store()
        .raw_record_item(&key(ObjectType::Contacts, 5))
        .unwrap();
    assert!(
        !item.contains_key("email"),
        "a tombstone is never resurrected"
    );
}

#[tokio::test]
async fn contact_without_email_is_skipped_and_counted() {
    let w = worker().await;
    w.reader()
        .put(ObjectType::Contacts, 8, 1_000, &[("firstname", "NoMail")]);
    let out = w
        .process(vec![message(
            "1",
            vec![event("contact.creation", 8, 1_000)],
        )])
        .await;
    assert_eq!(out.stats.skipped.get("missing_email"), Some(&1));
    assert!(w
        .store()
        .get_record(&key(ObjectType::Contacts, 8))
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn poisoned_message_fails_alone() {
    let w = worker().await;
    w.reader()
        .put(ObjectType::Companies, 1, 1_000, &[("name", "Fine")]);
    let poisoned = InboundMessage {
        message_id: "bad".into(),
        body: "{not json".into(),
    };
    let out = w
        .process(vec![
            poisoned,
            message("good", vec![event("company.creation", 1, 1_000)]),
        ])
        .await;
    assert_eq!(out.failed, vec!["bad".to_string()]);
    assert_eq!(out.stats.created, 1);
}

#[tokio::test]
async fn hubspot_failure_fails_only_the_messages_of_that_group() {
    let w = worker().await;
    w.reader()
        .put(ObjectType::Companies, 1, 1_000, &[("name", "Fine")]);
    w.reader()
        .put(ObjectType::Deals, 2, 1_000, &[("dealname", "Blocked")]);
    w.reader().failing.lock().unwrap().push(ObjectType::Deals);
    let out = w
        .process(vec![
            message("companies", vec![event("company.creation", 1, 1_000)]),
            message("deals", vec![event("deal.creation", 2, 1_000)]),
        ])
        .await;
    assert_eq!(out.failed, vec!["deals".to_string()]);
    assert_eq!(out.stats.created, 1);
}

#[tokio::test]
async fn events_of_a_portal_that_needs_reauth_are_acknowledged_without_calls() {
    let w = worker().await;
    w.store()
        .put_connection(&connection(PORTAL, ConnectionStatus::NeedsReauth))
        .await
        .unwrap();
    let out = w
        .process(vec![message(
            "1",
            vec![event("company.creation", 1, 1_000)],
        )])
        .await;
    assert!(out.failed.is_empty(), "not retried forever");
    assert_eq!(out.stats.inactive_portal_events, 1);
    assert_eq!(w.reader().batch_reads.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn older_read_never_overwrites_newer_state() {
    let w = worker().await;
    w.reader()
        .put(ObjectType::Companies, 4, 5_000, &[("name", "New")]);
    w.process(vec![message(
        "1",
        vec![event("company.propertyChange", 4, 5_000)],
    )])
    .await;
    w.reader()
        .put(ObjectType::Companies, 4, 4_000, &[("name", "Old")]);
    let out = w
        .process(vec![message(
            "2",
            vec![event("company.propertyChange", 4, 4_000)],
        )])
        .await;
    assert_eq!(out.stats.stale, 1);
    let rec = w
        .store()
        .get_record(&key(ObjectType::Companies, 4))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.fields["name"], json!("New"));
}

#[tokio::test]
async fn revoked_access_marks_the_connection_and_acknowledges_the_messages() {
    let w = worker().await;
    w.reader().revoked.store(true, Ordering::SeqCst);
    let out = w
        .process(vec![message(
            "1",
            vec![event("company.creation", 1, 1_000)],
        )])
        .await;
    assert!(out.failed.is_empty(), "not retried forever: {out:?}");
    assert_eq!(out.stats.needs_reauth_groups, 1);
    let conn = w
        .store()
        .get_connection(PortalId(PORTAL))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(conn.status, ConnectionStatus::NeedsReauth);
    // The next batch for the portal makes no HubSpot call at all.
    let calls = w.reader().batch_reads.load(Ordering::SeqCst);
    w.process(vec![message(
        "2",
        vec![event("company.creation", 2, 1_000)],
    )])
    .await;
    assert_eq!(w.reader().batch_reads.load(Ordering::SeqCst), calls);
}

#[tokio::test]
async fn contact_whose_email_is_cleared_is_archived_out_of_scope() {
    let w = worker().await;
    w.reader().put(
        ObjectType::Contacts,
        6,
        1_000,
        &[("email", "x@example.com")],
    );
    w.process(vec![message(
        "1",
        vec![event("contact.creation", 6, 1_000)],
    )])
    .await;
    w.reader()
        .put(ObjectType::Contacts, 6, 2_000, &[("email", "")]);
    let out = w
        .process(vec![message(
            "2",
            vec![event("contact.propertyChange", 6, 2_000)],
        )])
        .await;
    assert_eq!(out.stats.archived_out_of_scope, 1);
    let rec = w
        .store()
        .get_record(&key(ObjectType::Contacts, 6))
        .await
        .unwrap()
        .unwrap();
    assert!(rec.meta.archived);
    assert_eq!(
        rec.meta.archive_reason,
        Some(hubsync_store::ArchiveReason::OutOfScope)
    );
}

#[tokio::test]
async fn contact_without_email_costs_no_write_at_all() {
    let w = worker().await;
    w.reader()
        .put(ObjectType::Contacts, 9, 1_000, &[("firstname", "NoMail")]);
    let before = w.store().stats().writes();
    for n in 0..3 {
        w.process(vec![message(
            &n.to_string(),
            vec![event("contact.propertyChange", 9, 1_000)],
        )])
        .await;
    }
    assert_eq!(
        w.store().stats().writes(),
        before,
        "nothing stored, nothing written"
    );
}

#[tokio::test]
async fn groups_not_started_before_the_deadline_are_returned_as_failures() {
    // One group per type, one at a time, each batch read taking a second;
    // the deadline falls while the second group runs.
    let w = worker().await.with_concurrency(1);
    w.reader()
        .put(ObjectType::Companies, 1, 2_000, &[("name", "Acme")]);
    w.reader().put(
        ObjectType::Contacts,
        2,
        2_000,
        &[("email", "a@example.com")],
    );
    w.reader()
        .put(ObjectType::Deals, 3, 2_000, &[("dealname", "Big")]);
    *w.reader().read_delay.lock().unwrap() = std::time::Duration::from_millis(1_000);
    let messages = vec![
        message("c", vec![event("company.creation", 1, 1_000)]),
        message("k", vec![event("contact.creation", 2, 1_000)]),
        message("d", vec![event("deal.creation", 3, 1_000)]),
    ];
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(1_500);
    let out = w.process_before(messages.clone(), Some(deadline)).await;

    assert!(out.stats.deferred_groups >= 1, "{:?}", out.stats);
    assert!(
        !out.failed.is_empty(),
        "the late group's message is retried"
    );
    assert!(
        out.retry_later.is_empty(),
        "a deferred group comes back at once, not backed off"
    );
    let by_message = [
        ("c", ObjectType::Companies, 1),
        ("k", ObjectType::Contacts, 2),
        ("d", ObjectType::Deals, 3),
    ];
    let mut finished = 0;
    for (id, t, object) in by_message {
        let stored = w
            .store()
            .get_record(&key(t, object))
            .await
            .unwrap()
            .is_some();
        let failed = out.failed.iter().any(|f| f == id);
        assert_ne!(
            stored, failed,
            "message {id}: stored exactly when not returned"
        );
        finished += usize::from(stored);
    }
    assert!(finished >= 1, "work before the deadline finishes");

    // The returned messages, received again, complete the batch.
    *w.reader().read_delay.lock().unwrap() = std::time::Duration::ZERO;
    let again: Vec<InboundMessage> = messages
        .into_iter()
        .filter(|m| out.failed.contains(&m.message_id))
        .collect();
    let out = w.process(again).await;
    assert!(out.failed.is_empty(), "{:?}", out.stats);
    for (t, object) in [
        (ObjectType::Companies, 1),
        (ObjectType::Contacts, 2),
        (ObjectType::Deals, 3),
    ] {
        assert!(w
            .store()
            .get_record(&key(t, object))
            .await
            .unwrap()
            .is_some());
    }
}

#[tokio::test]
async fn a_deadline_already_past_still_lets_the_first_group_run() {
    let w = worker().await.with_concurrency(1);
    w.reader()
        .put(ObjectType::Companies, 1, 2_000, &[("name", "Acme")]);
    w.reader().put(
        ObjectType::Contacts,
        2,
        2_000,
        &[("email", "a@example.com")],
    );
    let out = w
        .process_before(
            vec![
                message("c", vec![event("company.creation", 1, 1_000)]),
                message("k", vec![event("contact.creation", 2, 1_000)]),
            ],
            Some(std::time::Instant::now()),
        )
        .await;
    // Progress every invocation: one group done, the other returned.
    assert_eq!(out.stats.deferred_groups, 1, "{:?}", out.stats);
    assert_eq!(out.failed.len(), 1);
    assert_eq!(out.stats.created, 1);
}
