//! The worker with a portal's saved mapping config: only the config's
//! properties are read, the scope archives and restores, owners are loaded
//! once per invocation, association changes re-read what the config maps.

use std::sync::atomic::Ordering;

use hubsync_hubspot::{ObjectId, ObjectType, PortalId};
use hubsync_mapping::{AssociationRule, MappingConfig, Owners, Rule, ScopeFilter, Transform};
use hubsync_store::{
    ArchiveReason, Connection, ConnectionStatus, ConnectionStore, MappingConfigStore, MemoryStore,
    RecordKey, RecordStore,
};
use hubsync_sync::fake::{FakeHubSpot, OwnersFailure};
use record_upsert::{InboundMessage, Worker};
use serde_json::{json, Value};

const PORTAL: u64 = 502;

type Fake = FakeHubSpot;

/// The portal's owners in HubSpot: Ada (71), and Bo (72) once added.
fn owners(with_72: bool) -> Owners {
    let mut o = Owners::new();
    o.insert("71", Some("ada@example.com"), Some("Ada"), Some("King"));
    if with_72 {
        o.insert("72", Some("bo@example.com"), Some("Bo"), None);
    }
    o
}

async fn worker(config: Option<MappingConfig>) -> Worker<Fake, MemoryStore> {
    let store = MemoryStore::new();
    let _now = chrono::Utc::now();
    store
        .put_connection(&Connection::active(PortalId(PORTAL), "t"))
        .await
        .unwrap();
    if let Some(c) = config {
        store
            .put_mapping_config(PortalId(PORTAL), &c)
            .await
            .unwrap();
    }
    let hubspot = Fake::default();
    hubspot.set_owners(owners(false));
    Worker::new(hubspot, store)
}

fn event(kind: &str, id: u64, at: i64) -> Value {
    json!({"eventId": 1, "subscriptionId": 1, "portalId": PORTAL, "appId": 1,
           "occurredAt": at, "subscriptionType": kind, "attemptNumber": 0, "objectId": id})
}

fn association_event(kind: &str, from: u64, to: u64, at: i64) -> Value {
    json!({"eventId": 2, "subscriptionId": 1, "portalId": PORTAL, "appId": 1,
           "occurredAt": at, "subscriptionType": kind, "attemptNumber": 0,
           "fromObjectId": from, "toObjectId": to, "associationType": "DEAL_TO_COMPANY",
           "associationRemoved": false, "isPrimaryAssociation": false})
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

fn config() -> MappingConfig {
    let mut c = MappingConfig::default();
    let deals = c.object_mut(ObjectType::Deals);
    deals.rules = vec![
        Rule::new("name", &["dealname"], Transform::String),
        Rule::new("seats", &["seats"], Transform::Integer),
        Rule::new("owner_email", &["hubspot_owner_id"], Transform::OwnerEmail),
    ];
    deals.scope.push(ScopeFilter {
        property: "pipeline".into(),
        values: vec!["default".into()],
    });
    deals.associations = vec![AssociationRule {
        target: "company_ids".into(),
        to: ObjectType::Companies,
        primary_only: false,
    }];
    // Companies without owner fields (to see when owners are not needed).
    c.object_mut(ObjectType::Companies)
        .rules
        .retain(|r| !r.transform.needs_owners());
    c.object_mut(ObjectType::Contacts).rules.push(Rule::new(
        "owner_name",
        &["hubspot_owner_id"],
        Transform::OwnerName,
    ));
    c
}

#[tokio::test]
async fn only_the_configs_properties_are_requested_and_custom_fields_map() {
    let w = worker(Some(config())).await;
    w.reader().put(
        ObjectType::Deals,
        1,
        1_000,
        &[
            ("dealname", "Big"),
            ("seats", "12"),
            ("pipeline", "default"),
            ("amount", "10"),
            ("hubspot_owner_id", "71"),
        ],
    );
    let out = w
        .process(vec![message("m", vec![event("deal.creation", 1, 1_000)])])
        .await;
    assert!(out.failed.is_empty());
    assert_eq!(out.stats.created, 1);
    assert_eq!(
        w.reader().requested.lock().unwrap()[0],
        [
            "dealname",
            "hs_lastmodifieddate",
            "hubspot_owner_id",
            "pipeline",
            "seats"
        ]
    );
    let r = w
        .store()
        .get_record(&key(ObjectType::Deals, 1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.fields["seats"], json!(12));
    assert_eq!(r.fields["owner_email"], json!("ada@example.com"));
    assert_eq!(r.fields["company_ids"], json!([]));
    assert!(!r.fields.contains_key("amount_cents"));
}

#[tokio::test]
async fn leaving_the_scope_archives_and_entering_it_restores() {
    let w = worker(Some(config())).await;
    w.reader()
        .put(ObjectType::Deals, 2, 1_000, &[("pipeline", "default")]);
    w.process(vec![message("a", vec![event("deal.creation", 2, 1_000)])])
        .await;
    w.reader()
        .put(ObjectType::Deals, 2, 2_000, &[("pipeline", "enterprise")]);
    let out = w
        .process(vec![message(
            "b",
            vec![event("deal.propertyChange", 2, 2_000)],
        )])
        .await;
    assert_eq!(out.stats.archived_out_of_scope, 1);
    assert_eq!(out.stats.skipped.get("out_of_scope"), Some(&1));
    let r = w
        .store()
        .get_record(&key(ObjectType::Deals, 2))
        .await
        .unwrap()
        .unwrap();
    assert!(r.meta.archived);
    assert_eq!(r.meta.archive_reason, Some(ArchiveReason::OutOfScope));

    w.reader()
        .put(ObjectType::Deals, 2, 3_000, &[("pipeline", "default")]);
    w.process(vec![message(
        "c",
        vec![event("deal.propertyChange", 2, 3_000)],
    )])
    .await;
    let r = w
        .store()
        .get_record(&key(ObjectType::Deals, 2))
        .await
        .unwrap()
        .unwrap();
    assert!(!r.meta.archived);
    // A deal never in scope costs nothing.
    w.reader()
        .put(ObjectType::Deals, 3, 1_000, &[("pipeline", "enterprise")]);
    let writes = w.store().stats().writes();
    w.process(vec![message("d", vec![event("deal.creation", 3, 1_000)])])
        .await;
    assert_eq!(w.store().stats().writes(), writes);
}

#[tokio::test]
async fn owners_are_loaded_once_per_invocation_and_only_when_needed() {
    let w = worker(Some(config())).await;
    w.reader().put(
        ObjectType::Deals,
        4,
        1_000,
        &[("pipeline", "default"), ("hubspot_owner_id", "71")],
    );
    w.reader().put(
        ObjectType::Contacts,
        5,
        1_000,
        &[("email", "c@example.com"), ("hubspot_owner_id", "99")],
    );
    w.reader()
        .put(ObjectType::Companies, 6, 1_000, &[("name", "Acme")]);
    let out = w
        .process(vec![message(
            "m",
            vec![
                event("deal.creation", 4, 1_000),
                event("contact.creation", 5, 1_000),
                event("company.creation", 6, 1_000),
            ],
        )])
        .await;
    assert!(out.failed.is_empty());
    assert_eq!(w.reader().owner_reads.load(Ordering::SeqCst), 1);
    // An owner id the portal does not have: a field error for each field
    // resolving it (`owner`, `owner_name`), the record lands.
    assert_eq!(out.stats.field_errors, 2);
    let c = w
        .store()
        .get_record(&key(ObjectType::Contacts, 5))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.fields["owner_name"], Value::Null);

    // Companies alone (no owner rule): no owners call.
    w.reader()
        .put(ObjectType::Companies, 6, 2_000, &[("name", "Acme 2")]);
    w.process(vec![message(
        "n",
        vec![event("company.propertyChange", 6, 2_000)],
    )])
    .await;
    assert_eq!(w.reader().owner_reads.load(Ordering::SeqCst), 1);
}

fn deal_with_owner(w: &Worker<Fake, MemoryStore>, id: u64, version: i64, owner: &str) {
    w.reader().put(
        ObjectType::Deals,
        id,
        version,
        &[("pipeline", "default"), ("hubspot_owner_id", owner)],
    );
}

#[tokio::test]
async fn owners_come_from_the_cache_and_an_unknown_owner_refreshes_it_at_most_once() {
    let w = worker(Some(config())).await;
    let owner_of = |id: u64| {
        let w = &w;
        async move {
            let r = w
                .store()
                .get_record(&key(ObjectType::Deals, id))
                .await
                .unwrap()
                .unwrap();
            r.fields["owner_email"].clone()
        }
    };
    // No cache yet: read once and cached.
    deal_with_owner(&w, 1, 1_000, "71");
    let out = w
        .process(vec![message("a", vec![event("deal.creation", 1, 1_000)])])
        .await;
    // A batch read, the deal's companies, the owners.
    assert_eq!((out.stats.hubspot_calls, out.stats.owner_refreshes), (3, 1));
    assert_eq!(owner_of(1).await, json!("ada@example.com"));

    // Steady state: the cache, no owners call.
    for (i, id) in [2u64, 3, 4].into_iter().enumerate() {
        deal_with_owner(&w, id, 1_000, "71");
        let out = w
            .process(vec![message(
                &format!("s{i}"),
                vec![event("deal.creation", id, 1_000)],
            )])
            .await;
        assert!(out.failed.is_empty());
        assert_eq!((out.stats.hubspot_calls, out.stats.owner_refreshes), (2, 0));
    }
    assert_eq!(w.reader().owner_reads.load(Ordering::SeqCst), 1);

    // A new owner in HubSpot: the first record naming it refreshes the
    // cache once for the whole batch.
    w.reader().set_owners(owners(true));
    deal_with_owner(&w, 5, 1_000, "72");
    deal_with_owner(&w, 6, 1_000, "72");
    let out = w
        .process(vec![message(
            "n",
            vec![
                event("deal.creation", 5, 1_000),
                event("deal.creation", 6, 1_000),
            ],
        )])
        .await;
    assert_eq!(out.stats.owner_refreshes, 1);
    assert_eq!(out.stats.field_errors, 0);
    assert_eq!(owner_of(5).await, json!("bo@example.com"));
    assert_eq!(owner_of(6).await, json!("bo@example.com"));
    assert_eq!(w.reader().owner_reads.load(Ordering::SeqCst), 2);

    // The refreshed cache serves the next invocation.
    deal_with_owner(&w, 7, 1_000, "72");
    let out = w
        .process(vec![message("c", vec![event("deal.creation", 7, 1_000)])])
        .await;
    assert_eq!(out.stats.owner_refreshes, 0);
    assert_eq!(owner_of(7).await, json!("bo@example.com"));

    // An owner HubSpot does not have either: within the refresh interval no
    // second refresh (a burst cannot hammer the owners API); a field error,
    // the record lands with a null owner.
    for (i, id) in [8u64, 9, 10].into_iter().enumerate() {
        deal_with_owner(&w, id, 1_000, "99");
        let out = w
            .process(vec![message(
                &format!("u{i}"),
                vec![event("deal.creation", id, 1_000)],
            )])
            .await;
        assert!(out.failed.is_empty());
        assert_eq!(out.stats.owner_refreshes, 0);
        assert_eq!(out.stats.field_errors, 1);
        assert_eq!(owner_of(id).await, Value::Null);
    }
    assert_eq!(w.reader().owner_reads.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn association_changes_reread_only_when_the_config_maps_them() {
    // No association fields → counted, no read.
    let mut plain = MappingConfig::default();
    plain.object_mut(ObjectType::Deals).associations.clear();
    let w = worker(Some(plain)).await;
    w.reader()
        .put(ObjectType::Deals, 7, 1_000, &[("dealname", "x")]);
    let out = w
        .process(vec![message(
            "a",
            vec![association_event("deal.associationChange", 7, 8, 1_500)],
        )])
        .await;
    assert_eq!(out.stats.deferred_events, 1);
    // The record is not read (only the portal's owners and pipelines, for
    // the invocation's mapping, as nothing is cached yet).
    assert_eq!(w.reader().batch_reads.load(Ordering::SeqCst), 0);
    assert_eq!(w.reader().association_reads.load(Ordering::SeqCst), 0);
    assert_eq!(out.stats.hubspot_calls, 2);

    // With association fields: the deal is re-read and its companies written.
    let w = worker(Some(config())).await;
    w.reader()
        .put(ObjectType::Deals, 7, 1_000, &[("pipeline", "default")]);
    w.process(vec![message("b", vec![event("deal.creation", 7, 1_000)])])
        .await;
    w.reader()
        .link(ObjectType::Deals, ObjectType::Companies, 7, 9, true);
    w.reader()
        .link(ObjectType::Deals, ObjectType::Companies, 7, 8, false);
    let out = w
        .process(vec![message(
            "c",
            vec![association_event("deal.associationChange", 7, 8, 1_500)],
        )])
        .await;
    assert!(out.failed.is_empty());
    // Same HubSpot version, new content: written (a remap, not stale).
    assert_eq!(out.stats.updated, 1);
    let r = w
        .store()
        .get_record(&key(ObjectType::Deals, 7))
        .await
        .unwrap()
        .unwrap();
    // The primary company first.
    assert_eq!(r.fields["company_ids"], json!(["9", "8"]));
    assert_eq!(w.reader().association_reads.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn owners_that_cannot_be_loaded_retry_or_stop_the_portal() {
    let w = worker(Some(config())).await;
    w.reader()
        .put(ObjectType::Deals, 10, 1_000, &[("pipeline", "default")]);
    let batch = vec![message("m", vec![event("deal.creation", 10, 1_000)])];
    // HubSpot down: the messages are retried, nothing is written.
    w.reader().fail_owners(Some(OwnersFailure::Server));
    let writes = w.store().stats().writes();
    let out = w.process(batch.clone()).await;
    assert_eq!(out.failed, ["m"]);
    assert_eq!(w.store().stats().writes(), writes);
    // Grant revoked: the connection needs re-authorisation, messages acked.
    w.reader().fail_owners(Some(OwnersFailure::Revoked));
    let out = w.process(batch).await;
    assert!(out.failed.is_empty());
    assert_eq!(out.stats.needs_reauth_groups, 1);
    let c = w
        .store()
        .get_connection(PortalId(PORTAL))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.status, ConnectionStatus::NeedsReauth);
}

#[tokio::test]
async fn a_record_over_the_item_limit_is_stored_without_its_largest_fields() {
    // Seven mapped notes at HubSpot's 65,536-character maximum make one
    // deal larger than a DynamoDB item may be.
    let mut cfg = MappingConfig::default();
    for i in 0..7 {
        let name = format!("notes_{i}");
        cfg.object_mut(ObjectType::Deals).rules.push(Rule::new(
            &name,
            &[name.as_str()],
            Transform::String,
        ));
    }
    let w = worker(Some(cfg)).await;
    let big = "n".repeat(65_536);
    let notes: Vec<(String, String)> = (0..7)
        .map(|i| (format!("notes_{i}"), big.clone()))
        .collect();
    let mut props: Vec<(&str, &str)> = notes
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    props.push(("dealname", "Huge"));
    w.reader().put(ObjectType::Deals, 1, 1_000, &props);
    w.reader().put(
        ObjectType::Deals,
        2,
        1_000,
        &[("dealname", "Small"), ("notes_0", "a")],
    );
    w.reader()
        .put(ObjectType::Deals, 3, 1_000, &[("dealname", "Tiny")]);
    let out = w
        .process(vec![message(
            "m",
            vec![
                event("deal.creation", 1, 1_000),
                event("deal.creation", 2, 1_000),
                event("deal.creation", 3, 1_000),
            ],
        )])
        .await;
    assert!(out.failed.is_empty(), "not retried: {:?}", out.stats);
    assert_eq!(out.stats.record_errors, 0);
    assert_eq!(
        out.stats.too_large, 1,
        "one record stored without what does not fit"
    );
    assert_eq!(out.stats.created, 3);
    let store = w.store();
    let huge = store
        .get_record(&key(ObjectType::Deals, 1))
        .await
        .unwrap()
        .expect("stored, without what does not fit");
    assert_eq!(huge.fields["name"], "Huge");
    assert!(huge.fields["notes_0"].is_null() || huge.fields["notes_6"].is_null());
    let issues = store
        .record_issues(PortalId(PORTAL), ObjectType::Deals, None, 10)
        .await
        .unwrap();
    assert_eq!(issues.records.len(), 1);
    assert_eq!(
        issues.records[0].issues[0].category,
        hubsync_store::TOO_LARGE
    );
    for id in [2, 3] {
        assert!(store
            .get_record(&key(ObjectType::Deals, id))
            .await
            .unwrap()
            .is_some());
    }
}
