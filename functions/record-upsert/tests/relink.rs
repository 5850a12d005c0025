//! Links HubSpot does not announce: a company deleted or merged away, or a
//! contact privacy-deleted, leaves the records that named it with a stale
//! association field (HubSpot sends nothing about them). The worker finds
//! them in the store and re-reads them in the same invocation.

use std::sync::atomic::Ordering;

use hubsync_hubspot::{ObjectId, ObjectType, PortalId};
use hubsync_mapping::Owners;
use hubsync_store::{
    ArchiveReason, Connection, ConnectionStore, MemoryStore, RecordKey, RecordStore,
};
use hubsync_sync::fake::{stock_pipelines, FakeHubSpot};
use record_upsert::{InboundMessage, Worker};
use serde_json::{json, Value};

const PORTAL: u64 = 505;

type W = Worker<FakeHubSpot, MemoryStore>;

fn message(id: &str, events: Vec<Value>) -> InboundMessage {
    let events: Vec<Value> = events
        .into_iter()
        .enumerate()
        .map(|(i, mut e)| {
            e["eventId"] = json!(i);
            e["subscriptionId"] = json!(1);
            e["portalId"] = json!(PORTAL);
            e["appId"] = json!(1);
            e["attemptNumber"] = json!(0);
            e
        })
        .collect();
    InboundMessage {
        message_id: id.to_owned(),
        body: json!({"v": 1, "portalId": PORTAL, "receivedAt": 0, "events": events}).to_string(),
    }
}

fn event(kind: &str, id: u64, at: i64) -> Value {
    json!({"subscriptionType": kind, "objectId": id, "occurredAt": at})
}

fn key(t: ObjectType, id: u64) -> RecordKey {
    RecordKey::new(PortalId(PORTAL), t, ObjectId(id))
}

async fn field(w: &W, t: ObjectType, id: u64, name: &str) -> Value {
    let r = w.store().get_record(&key(t, id)).await.unwrap().unwrap();
    r.fields[name].clone()
}

/// Companies 11 and 12; contacts 201 (→ 11, 12), 202 (→ 11) and 203
/// (→ 12, archived); deal 301 (→ company 12, contact 201) — all synced.
async fn synced() -> W {
    let store = MemoryStore::new();
    store
        .put_connection(&Connection::active(PortalId(PORTAL), "t"))
        .await
        .unwrap();
    let hubspot = FakeHubSpot::default();
    hubspot.set_owners(Owners::new());
    *hubspot.pipelines.lock().unwrap() = Some(stock_pipelines());
    for id in [11, 12] {
        hubspot.put(ObjectType::Companies, id, 1_000, &[("name", "Co")]);
    }
    for id in [201, 202, 203] {
        let email = format!("c{id}@example.com");
        hubspot.put(ObjectType::Contacts, id, 1_000, &[("email", &email)]);
    }
    hubspot.put(ObjectType::Deals, 301, 1_000, &[("dealname", "Big")]);
    let links = [
        (ObjectType::Contacts, ObjectType::Companies, 201, 11),
        (ObjectType::Contacts, ObjectType::Companies, 201, 12),
        (ObjectType::Contacts, ObjectType::Companies, 202, 11),
        (ObjectType::Contacts, ObjectType::Companies, 203, 12),
        (ObjectType::Deals, ObjectType::Companies, 301, 12),
        (ObjectType::Deals, ObjectType::Contacts, 301, 201),
    ];
    for (from, to, a, b) in links {
        hubspot.link(from, to, a, b, false);
    }
    let w = Worker::new(hubspot, store);
    let created = |t: &str, ids: &[u64]| {
        ids.iter()
            .map(|id| event(&format!("{t}.creation"), *id, 1_000))
            .collect::<Vec<_>>()
    };
    let mut all = created("company", &[11, 12]);
    all.extend(created("contact", &[201, 202, 203]));
    all.extend(created("deal", &[301]));
    let out = w.process(vec![message("seed", all)]).await;
    assert!(out.failed.is_empty(), "{out:?}");
    assert_eq!(out.stats.created, 6);
    w.store()
        .archive_record(
            &key(ObjectType::Contacts, 203),
            1_500,
            ArchiveReason::OutOfScope,
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        field(&w, ObjectType::Contacts, 201, "company_ids").await,
        json!(["11", "12"])
    );
    w
}

/// HubSpot drops every association with `id` of `t`.
fn unlink_all(w: &W, t: ObjectType, id: u64) {
    w.reader().links.lock().unwrap().retain(|(from, to, l)| {
        !(*to == t && l.to == ObjectId(id) || *from == t && l.from == ObjectId(id))
    });
}

#[tokio::test]
async fn a_deleted_company_leaves_no_record_naming_it() {
    let w = synced().await;
    w.reader().remove(ObjectType::Companies, 12);
    unlink_all(&w, ObjectType::Companies, 12);
    let reads = w.reader().batch_reads.load(Ordering::SeqCst);

    let out = w
        .process(vec![message(
            "d",
            vec![event("company.deletion", 12, 2_000)],
        )])
        .await;
    assert!(out.failed.is_empty(), "{out:?}");
    assert_eq!(out.stats.archived_deleted, 1);
    // Contact 201 and deal 301 named it; 202 did not, 203 is archived.
    assert_eq!(out.stats.relinked, 2, "{:?}", out.stats);
    assert_eq!(
        field(&w, ObjectType::Contacts, 201, "company_ids").await,
        json!(["11"])
    );
    assert_eq!(
        field(&w, ObjectType::Deals, 301, "company_ids").await,
        json!([])
    );
    // The company read, then one read per linking type.
    assert_eq!(w.reader().batch_reads.load(Ordering::SeqCst) - reads, 3);

    // The same deletion again (HubSpot retries): already archived, the
    // links already right: the records re-read change nothing.
    let out = w
        .process(vec![message(
            "d2",
            vec![event("company.deletion", 12, 2_000)],
        )])
        .await;
    assert!(out.failed.is_empty());
    assert_eq!(
        (out.stats.updated, out.stats.created),
        (0, 0),
        "{:?}",
        out.stats
    );
    assert_eq!(out.stats.relinked, 0, "nothing names it any more");
}

#[tokio::test]
async fn a_merged_away_company_is_replaced_by_its_survivor_in_the_records_naming_it() {
    let w = synced().await;
    w.reader().remove(ObjectType::Companies, 12);
    {
        // HubSpot moves the merged company's associations to the survivor.
        let mut links = w.reader().links.lock().unwrap();
        for (_, to, l) in links.iter_mut() {
            if *to == ObjectType::Companies && l.to == ObjectId(12) {
                l.to = ObjectId(11);
            }
        }
        links.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1 && a.2 == b.2);
    }
    w.reader()
        .put(ObjectType::Companies, 11, 2_000, &[("name", "Co merged")]);
    let mut merge = event("company.merge", 11, 2_000);
    merge["primaryObjectId"] = json!(11);
    merge["mergedObjectIds"] = json!([12]);
    let out = w.process(vec![message("m", vec![merge])]).await;
    assert!(out.failed.is_empty(), "{out:?}");
    assert_eq!(out.stats.archived_merged, 1);
    assert_eq!(out.stats.relinked, 2);
    assert_eq!(
        field(&w, ObjectType::Contacts, 201, "company_ids").await,
        json!(["11"])
    );
    assert_eq!(
        field(&w, ObjectType::Deals, 301, "company_ids").await,
        json!(["11"])
    );
}

#[tokio::test]
async fn a_purged_contact_is_dropped_from_its_deals_and_a_gone_linker_cascades() {
    let w = synced().await;
    w.reader().remove(ObjectType::Contacts, 201);
    unlink_all(&w, ObjectType::Contacts, 201);
    let out = w
        .process(vec![message(
            "p",
            vec![event("contact.privacyDeletion", 201, 2_000)],
        )])
        .await;
    assert!(out.failed.is_empty(), "{out:?}");
    assert_eq!(out.stats.purged, 1);
    assert_eq!(out.stats.relinked, 1);
    assert_eq!(
        field(&w, ObjectType::Deals, 301, "contact_ids").await,
        json!([])
    );

    // Company 11 deleted, and contact 202 — which named it — deleted too
    // with its webhook lost: re-reading 202 finds it gone, archives it, and
    // what named 202 is looked for in turn.
    w.reader().remove(ObjectType::Companies, 11);
    unlink_all(&w, ObjectType::Companies, 11);
    w.reader().remove(ObjectType::Contacts, 202);
    unlink_all(&w, ObjectType::Contacts, 202);
    let out = w
        .process(vec![message(
            "d",
            vec![event("company.deletion", 11, 3_000)],
        )])
        .await;
    assert!(out.failed.is_empty(), "{out:?}");
    assert_eq!(out.stats.archived_deleted, 2, "{:?}", out.stats);
    let c202 = w
        .store()
        .get_record(&key(ObjectType::Contacts, 202))
        .await
        .unwrap()
        .unwrap();
    assert!(c202.meta.archived);
}

#[tokio::test]
async fn a_failed_relink_retries_the_message_and_the_retry_repairs_the_links() {
    let w = synced().await;
    w.reader().remove(ObjectType::Companies, 12);
    unlink_all(&w, ObjectType::Companies, 12);
    w.reader()
        .failing
        .lock()
        .unwrap()
        .push(ObjectType::Contacts);
    let out = w
        .process(vec![message(
            "d",
            vec![event("company.deletion", 12, 2_000)],
        )])
        .await;
    assert_eq!(out.failed, ["d"], "the group failed: retried");
    assert_eq!(
        field(&w, ObjectType::Contacts, 201, "company_ids").await,
        json!(["11", "12"])
    );

    // The retry: the company is already archived, the links are repaired.
    w.reader().failing.lock().unwrap().clear();
    let out = w
        .process(vec![message(
            "d",
            vec![event("company.deletion", 12, 2_000)],
        )])
        .await;
    assert!(out.failed.is_empty(), "{out:?}");
    assert_eq!(
        field(&w, ObjectType::Contacts, 201, "company_ids").await,
        json!(["11"])
    );
}
