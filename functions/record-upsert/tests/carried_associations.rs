//! Associations carried forward: after property changes alone, a record's
//! association fields are read back from the store (no associations v4
//! call); a creation, an association change, a changed config, or a stored
//! record whose associations were unavailable read them from HubSpot.

use std::sync::atomic::Ordering;

use hubsync_hubspot::{ObjectId, ObjectType, PortalId};
use hubsync_mapping::{MappingConfig, Owners};
use hubsync_store::{
    Connection, ConnectionStore, JournalFixStore, MappingConfigStore, MemoryStore, RecordKey,
    RecordStore, RecordWrite,
};
use hubsync_sync::fake::{stock_pipelines, FakeHubSpot};
use record_upsert::{InboundMessage, Worker};
use serde_json::{json, Value};

const PORTAL: u64 = 504;
const CONTACT: u64 = 201;

fn message(id: &str, events: &[(&str, i64)]) -> InboundMessage {
    let events: Vec<Value> = events
        .iter()
        .enumerate()
        .map(|(i, (kind, at))| {
            let mut e = json!({"eventId": i, "subscriptionId": 1, "portalId": PORTAL, "appId": 1,
                "occurredAt": at, "subscriptionType": kind, "attemptNumber": 0, "objectId": CONTACT});
            if kind.ends_with("associationChange") {
                e["fromObjectId"] = json!(CONTACT);
                e["toObjectId"] = json!(12);
                e["associationType"] = json!("CONTACT_TO_COMPANY");
            }
            if kind.ends_with("propertyChange") {
                e["propertyName"] = json!("firstname");
                e["propertyValue"] = json!("x");
            }
            e
        })
        .collect();
    InboundMessage {
        message_id: id.to_owned(),
        body: json!({"v": 1, "portalId": PORTAL, "receivedAt": 0, "events": events}).to_string(),
    }
}

async fn company_ids(w: &Worker<FakeHubSpot, MemoryStore>) -> Value {
    let key = RecordKey::new(PortalId(PORTAL), ObjectType::Contacts, ObjectId(CONTACT));
    let r = w.store().get_record(&key).await.unwrap().unwrap();
    r.fields["company_ids"].clone()
}

/// A worker of an active portal whose owners and pipelines HubSpot has.
async fn worker() -> Worker<FakeHubSpot, MemoryStore> {
    let store = MemoryStore::new();
    store
        .put_connection(&Connection::active(PortalId(PORTAL), "t"))
        .await
        .unwrap();
    let hubspot = FakeHubSpot::default();
    hubspot.set_owners(Owners::new());
    *hubspot.pipelines.lock().unwrap() = Some(stock_pipelines());
    Worker::new(hubspot, store)
}

fn contact(w: &Worker<FakeHubSpot, MemoryStore>, version: i64, name: &str) {
    w.reader().put(
        ObjectType::Contacts,
        CONTACT,
        version,
        &[("firstname", name), ("email", "a@example.com")],
    );
}

#[tokio::test]
async fn property_changes_carry_the_stored_associations_and_link_changes_read_them() {
    let w = worker().await;
    let reads =
        |w: &Worker<FakeHubSpot, MemoryStore>| w.reader().association_reads.load(Ordering::SeqCst);
    w.reader().link(
        ObjectType::Contacts,
        ObjectType::Companies,
        CONTACT,
        11,
        true,
    );

    // Created: its associations are read.
    contact(&w, 1_000, "Ada");
    let out = w
        .process(vec![message("a", &[("contact.creation", 1_000)])])
        .await;
    assert!(out.failed.is_empty());
    assert_eq!(reads(&w), 1);
    assert_eq!(out.stats.associations_carried, 0);
    assert_eq!(company_ids(&w).await, json!(["11"]));

    // A property change: one batch read, the stored associations carried.
    let batch_reads = w.reader().batch_reads.load(Ordering::SeqCst);
    contact(&w, 2_000, "Ada B");
    let out = w
        .process(vec![message("b", &[("contact.propertyChange", 2_000)])])
        .await;
    assert!(out.failed.is_empty());
    assert_eq!(out.stats.updated, 1);
    assert_eq!(out.stats.associations_carried, 1);
    assert_eq!(reads(&w), 1, "no associations call");
    assert_eq!(
        w.reader().batch_reads.load(Ordering::SeqCst),
        batch_reads + 1
    );
    assert_eq!(out.stats.hubspot_calls, 1);
    assert_eq!(company_ids(&w).await, json!(["11"]));

    // Linked to another company: the association change reads them, even
    // with a property change in the same delivery.
    w.reader().link(
        ObjectType::Contacts,
        ObjectType::Companies,
        CONTACT,
        12,
        false,
    );
    contact(&w, 3_000, "Ada C");
    let out = w
        .process(vec![message(
            "c",
            &[
                ("contact.propertyChange", 3_000),
                ("contact.associationChange", 3_000),
            ],
        )])
        .await;
    assert!(out.failed.is_empty());
    assert_eq!(out.stats.associations_carried, 0);
    assert_eq!(reads(&w), 2);
    assert_eq!(company_ids(&w).await, json!(["11", "12"]));

    // A new mapping config: the stored fields were made by another one,
    // so they are read.
    let mut config = MappingConfig::default();
    config
        .object_mut(ObjectType::Contacts)
        .rules
        .retain(|r| r.target != "last_activity_at");
    w.store()
        .put_mapping_config(PortalId(PORTAL), &config)
        .await
        .unwrap();
    contact(&w, 4_000, "Ada D");
    let out = w
        .process(vec![message("d", &[("contact.propertyChange", 4_000)])])
        .await;
    assert!(out.failed.is_empty(), "{:?}", out.stats);
    assert_eq!(out.stats.associations_carried, 0);
    assert_eq!(reads(&w), 3);
    // … and carried again from then on.
    contact(&w, 5_000, "Ada E");
    let out = w
        .process(vec![message("e", &[("contact.propertyChange", 5_000)])])
        .await;
    assert_eq!(out.stats.associations_carried, 1);
    assert_eq!(reads(&w), 3);
    assert_eq!(company_ids(&w).await, json!(["11", "12"]));
}

#[tokio::test]
async fn a_record_stored_without_its_associations_reads_them() {
    let w = worker().await;
    w.reader().link(
        ObjectType::Contacts,
        ObjectType::Companies,
        CONTACT,
        11,
        true,
    );
    contact(&w, 1_000, "Bo");
    let out = w
        .process(vec![message("a", &[("contact.creation", 1_000)])])
        .await;
    assert!(out.failed.is_empty());
    // As stored when its associations were unavailable: null.
    let key = RecordKey::new(PortalId(PORTAL), ObjectType::Contacts, ObjectId(CONTACT));
    let stored = w.store().get_record(&key).await.unwrap().unwrap();
    let mut fields = stored.fields.clone();
    fields.insert("company_ids".into(), Value::Null);
    let mut write = RecordWrite::new(key, 1_000, "without-associations", fields);
    write.mapping_fp = stored.meta.mapping_fp.clone();
    w.store().upsert_record(&write).await.unwrap();
    assert_eq!(company_ids(&w).await, Value::Null);

    contact(&w, 2_000, "Bo B");
    let out = w
        .process(vec![message("b", &[("contact.propertyChange", 2_000)])])
        .await;
    assert!(out.failed.is_empty());
    assert_eq!(out.stats.associations_carried, 0);
    assert_eq!(w.reader().association_reads.load(Ordering::SeqCst), 2);
    assert_eq!(company_ids(&w).await, json!(["11"]));
}

#[tokio::test]
async fn a_record_the_mapping_skips_anyway_costs_no_associations_read() {
    let w = worker().await;
    // No email: the default map skips the contact, links or not.
    w.reader()
        .put(ObjectType::Contacts, CONTACT, 1_000, &[("firstname", "Cy")]);
    let out = w
        .process(vec![message("a", &[("contact.creation", 1_000)])])
        .await;
    assert!(out.failed.is_empty());
    assert_eq!(
        out.stats.skipped.values().sum::<usize>(),
        1,
        "{:?}",
        out.stats
    );
    assert_eq!(w.reader().association_reads.load(Ordering::SeqCst), 0);
    assert_eq!(w.reader().batch_reads.load(Ordering::SeqCst), 1);
}

/// A message whose events the journal reader queued.
fn from_journal(id: &str, events: &[(&str, i64)]) -> InboundMessage {
    let mut m = message(id, events);
    let mut body: Value = serde_json::from_str(&m.body).unwrap();
    for e in body["events"].as_array_mut().unwrap() {
        e["changeSource"] = json!(hubsync_messages::JOURNAL_CHANGE_SOURCE);
    }
    m.body = body.to_string();
    m
}

#[tokio::test]
async fn a_write_only_the_journal_asked_for_counts_as_recovered() {
    let w = worker().await;
    contact(&w, 1_000, "Ada");
    let out = w
        .process(vec![message("a", &[("contact.creation", 1_000)])])
        .await;
    assert_eq!(out.stats.journal_recovered, 0, "a webhook's write");

    // A change the webhooks missed, from the journal: recovered.
    contact(&w, 2_000, "Ada B");
    let out = w
        .process(vec![from_journal(
            "b",
            &[("contact.propertyChange", 2_000)],
        )])
        .await;
    assert_eq!((out.stats.updated, out.stats.journal_recovered), (1, 1));

    // The journal's copy of what a webhook already brought: nothing to do.
    let out = w
        .process(vec![from_journal(
            "c",
            &[("contact.propertyChange", 2_000)],
        )])
        .await;
    assert_eq!((out.stats.unchanged, out.stats.journal_recovered), (1, 0));

    // A webhook and the journal about the same change: the webhook's.
    contact(&w, 3_000, "Ada C");
    let out = w
        .process(vec![
            from_journal("d", &[("contact.propertyChange", 3_000)]),
            message("e", &[("contact.propertyChange", 3_000)]),
        ])
        .await;
    assert_eq!((out.stats.updated, out.stats.journal_recovered), (1, 0));

    // The one repair is counted for the next reconciliation's report.
    let fixes = w
        .store()
        .take_journal_fixes(PortalId(PORTAL), ObjectType::Contacts)
        .await
        .unwrap();
    assert_eq!(fixes, 1);
}
