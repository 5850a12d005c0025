//! One behavioural suite, run against both stores: `memory::*` on
//! `MemoryStore`, `dynamo::*` on `DynamoStore` over the local stack (moto,
//! started by `hubsync_testkit` if `AWS_ENDPOINT_URL` is unset), with a
//! fresh pair of tables per test. The same cases on both keep their
//! semantics from drifting apart.

use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

use futures::TryStreamExt;
use hubsync_mapping::ids::{ObjectId, ObjectType, PortalId};
use hubsync_store::{
    create_tables, needs_write, token_refresh_lease, ArchiveOutcome, ArchiveReason, Connection,
    ConnectionStatus, ConnectionStore, DeleteOutcome, DynamoStore, Item, MemoryStore, PurgeOutcome,
    RecordKey, RecordStore, RecordWrite, StoreConfig, StoreError, StoreStats, TokenStore,
    TokenSwap, TokenUpdate, UpsertOutcome, WriteDecision,
};
use serde_json::{json, Map, Value};

const PORTAL: PortalId = PortalId(1_000_001);
const TEST_TIMEOUT: Duration = Duration::from_secs(120);

/// What the cases need beyond the traits: counters and raw items.
trait Harness:
    RecordStore + ConnectionStore + TokenStore + hubsync_store::IncidentStore + Clone + 'static
{
    fn counters(&self) -> &StoreStats;
    fn raw(&self, key: &RecordKey) -> impl Future<Output = Option<Item>> + Send;
}

impl Harness for MemoryStore {
    fn counters(&self) -> &StoreStats {
        self.stats()
    }
    async fn raw(&self, key: &RecordKey) -> Option<Item> {
        self.raw_record_item(key)
    }
}

impl Harness for DynamoStore {
    fn counters(&self) -> &StoreStats {
        self.stats()
    }
    async fn raw(&self, key: &RecordKey) -> Option<Item> {
        self.raw_record_item(key).await.expect("raw GetItem")
    }
}

async fn memory_store() -> MemoryStore {
    MemoryStore::new()
}

async fn dynamo_store() -> DynamoStore {
    let sdk = hubsync_testkit::aws_config()
        .await
        .expect("local AWS stack (moto)");
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let config = StoreConfig::new(
        hubsync_testkit::unique_name("records"),
        hubsync_testkit::unique_name("control"),
    );
    create_tables(&client, &config)
        .await
        .expect("create the test tables");
    DynamoStore::new(client, config)
}

async fn bounded(case: impl Future<Output = ()>) {
    tokio::time::timeout(TEST_TIMEOUT, case)
        .await
        .expect("test case exceeded its time bound");
}

macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $case() {
                    super::bounded(async { super::$case(super::memory_store().await).await }).await
                }
            )*
        }
        mod dynamo {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::bounded(async { super::$case(super::dynamo_store().await).await }).await
                }
            )*
        }
    };
}

suite!(
    upsert_creates_then_updates_and_reports_unchanged,
    older_version_after_newer_is_stale_and_newer_data_stays,
    same_version_with_other_content_is_written,
    store_guard_agrees_with_needs_write,
    fields_round_trip_with_their_types,
    archive_keeps_data_and_sets_archived_at,
    archive_older_than_the_stored_version_is_refused,
    archive_of_a_missing_record_is_not_found,
    upsert_with_newer_version_restores_an_archived_record,
    merge_archive_points_at_the_survivor,
    privacy_purge_leaves_only_a_pii_free_tombstone,
    privacy_purge_of_an_unknown_record_blocks_late_events,
    permanent_delete_refuses_an_active_record,
    batch_meta_read_of_150_keys_takes_two_calls,
    batch_meta_read_leaves_out_missing_keys,
    batch_meta_read_carries_the_named_fields_only,
    a_fields_scan_pages_the_partition_with_the_named_fields_only,
    scan_yields_records_in_numeric_id_order_across_pages,
    scan_resumes_from_a_checkpoint,
    a_descending_scan_walks_down_and_resumes_below_its_checkpoint,
    no_change_run_costs_no_writes,
    spawned_writers_converge_on_the_newest_version,
    write_counter_counts_every_write_request,
    connection_round_trip_and_status_change,
    records_with_issues_are_listed_until_written_clean,
    incidents_accumulate_per_type_and_category_and_clear_per_type,
    a_tenants_connections_come_from_the_tenant_index,
    status_change_of_an_unknown_connection_is_not_found,
    webhook_seen_sets_only_last_webhook_at,
    reserved_field_names_are_refused_without_a_write,
    token_swap_succeeds_only_against_the_expected_token,
    a_lease_has_one_holder_until_released_or_lapsed,
);

// ------------------------------------------------------------------ helpers

fn key(id: u64) -> RecordKey {
    RecordKey::new(PORTAL, ObjectType::Companies, ObjectId(id))
}

fn fields(name: &str) -> Map<String, Value> {
    match json!({ "name": name, "domain": format!("{}.example.com", name.to_lowercase()) }) {
        Value::Object(m) => m,
        _ => unreachable!(),
    }
}

fn write(id: u64, version: i64, name: &str) -> RecordWrite {
    RecordWrite::new(key(id), version, format!("hash-{name}"), fields(name))
}

fn attribute_names(item: &Item) -> BTreeSet<&str> {
    item.keys().map(String::as_str).collect()
}

// -------------------------------------------------------------------- cases

async fn upsert_creates_then_updates_and_reports_unchanged<S: Harness>(s: S) {
    assert_eq!(
        s.upsert_record(&write(1, 100, "Acme")).await.unwrap(),
        UpsertOutcome::Created
    );
    assert_eq!(
        s.upsert_record(&write(1, 100, "Acme")).await.unwrap(),
        UpsertOutcome::Unchanged
    );
    assert_eq!(
        s.upsert_record(&write(1, 200, "Acme Inc")).await.unwrap(),
        UpsertOutcome::Updated
    );

    let rec = s.get_record(&key(1)).await.unwrap().expect("stored");
    assert_eq!(rec.meta.source_version, 200);
    assert_eq!(rec.meta.content_hash.as_deref(), Some("hash-Acme Inc"));
    assert_eq!(rec.fields, fields("Acme Inc"));
    assert!(!rec.meta.archived);
    assert!(rec.synced_at.is_some());

    let raw = s.raw(&key(1)).await.expect("raw item");
    assert_eq!(raw["pk"].as_s().unwrap(), "1000001#companies");
    assert_eq!(raw["sk"].as_s().unwrap(), "00000000000000000001");
    assert_eq!(raw["object_id"].as_s().unwrap(), "1");
    assert_eq!(raw["source_version"].as_n().unwrap(), "200");
    assert_eq!(
        raw["name"].as_s().unwrap(),
        "Acme Inc",
        "fields are top-level attributes"
    );
}

async fn older_version_after_newer_is_stale_and_newer_data_stays<S: Harness>(s: S) {
    assert_eq!(
        s.upsert_record(&write(7, 3, "Three")).await.unwrap(),
        UpsertOutcome::Created
    );
    assert_eq!(
        s.upsert_record(&write(7, 2, "Two")).await.unwrap(),
        UpsertOutcome::Stale
    );
    let rec = s.get_record(&key(7)).await.unwrap().expect("stored");
    assert_eq!(rec.meta.source_version, 3);
    assert_eq!(rec.fields, fields("Three"));
}

/// A mapping change (or a derived value such as an owner's email) changes
/// the content without a new HubSpot version: it must still be written, or
/// DynamoDB would never converge.
async fn same_version_with_other_content_is_written<S: Harness>(s: S) {
    s.upsert_record(&write(8, 5, "Five")).await.unwrap();
    assert_eq!(
        s.upsert_record(&write(8, 5, "Other")).await.unwrap(),
        UpsertOutcome::Updated
    );
    let rec = s.get_record(&key(8)).await.unwrap().expect("stored");
    assert_eq!(rec.fields, fields("Other"));
    assert_eq!(rec.meta.source_version, 5);
    // An older version with any content stays refused.
    assert_eq!(
        s.upsert_record(&write(8, 4, "Four")).await.unwrap(),
        UpsertOutcome::Stale
    );
}

/// The DynamoDB condition expression and the pure `needs_write` must agree
/// on every combination, or read-before-write would skip writes the store
/// would accept (or the reverse).
async fn store_guard_agrees_with_needs_write<S: Harness>(s: S) {
    #[derive(Clone, Copy, Debug)]
    enum State {
        Active,
        Archived,
        Tombstone,
    }
    let mut id = 1000;
    for state in [State::Active, State::Archived, State::Tombstone] {
        for v in [4i64, 5, 6] {
            for h in ["hash-Five", "hash-Other"] {
                id += 1;
                match state {
                    State::Active => {
                        s.upsert_record(&write(id, 5, "Five")).await.unwrap();
                    }
                    State::Archived => {
                        s.upsert_record(&write(id, 3, "Five")).await.unwrap();
                        s.archive_record(&key(id), 5, ArchiveReason::Deleted, None)
                            .await
                            .unwrap();
                    }
                    State::Tombstone => {
                        s.privacy_purge(&key(id), 5).await.unwrap();
                    }
                }
                let meta = s.get_record_meta(&[key(id)]).await.unwrap().pop();
                let decision = needs_write(meta.as_ref(), v, h);
                let w = RecordWrite::new(key(id), v, h, fields("X"));
                let outcome = s.upsert_record(&w).await.unwrap();
                let expected = match decision {
                    WriteDecision::Write => UpsertOutcome::Updated,
                    WriteDecision::SkipUnchanged => UpsertOutcome::Unchanged,
                    WriteDecision::SkipStale => UpsertOutcome::Stale,
                    WriteDecision::SkipTombstoned => UpsertOutcome::Tombstoned,
                };
                assert_eq!(outcome, expected, "{state:?}, version {v}, {h}");
            }
        }
    }
}

async fn fields_round_trip_with_their_types<S: Harness>(s: S) {
    let value = json!({
        "name": "Åcme — ünïcode",
        "amount_cents": 123_456_789_012_i64,
        "close_probability": 0.25,
        "is_customer": true,
        "industry": null,
        "empty": "",
        "tags": ["a", "b"],
        "address": { "city": "Berlin", "zip": "10115" },
    });
    #[derive(serde::Serialize)]
    struct AppRecord<'a> {
        #[serde(flatten)]
        inner: &'a Value,
    }
    let w = RecordWrite::from_fields(key(9), 1, "h", &AppRecord { inner: &value }).unwrap();
    s.upsert_record(&w).await.unwrap();
    let rec = s.get_record(&key(9)).await.unwrap().expect("stored");
    assert_eq!(Value::Object(rec.fields), value);
}

async fn archive_keeps_data_and_sets_archived_at<S: Harness>(s: S) {
    s.upsert_record(&write(2, 1_700_000_000_000, "Acme"))
        .await
        .unwrap();
    let occurred = 1_700_000_100_000;
    assert_eq!(
        s.archive_record(&key(2), occurred, ArchiveReason::Deleted, None)
            .await
            .unwrap(),
        ArchiveOutcome::Archived
    );
    let rec = s
        .get_record(&key(2))
        .await
        .unwrap()
        .expect("archived, not deleted");
    assert!(rec.meta.archived);
    assert_eq!(
        rec.meta.archived_at.as_deref(),
        Some("2023-11-14T22:15:00.000Z")
    );
    assert_eq!(rec.meta.archive_reason, Some(ArchiveReason::Deleted));
    assert_eq!(rec.meta.merged_into, None);
    assert_eq!(rec.meta.source_version, occurred);
    assert_eq!(rec.meta.content_hash.as_deref(), Some("hash-Acme"));
    assert_eq!(rec.fields, fields("Acme"), "archiving keeps the data");

    // The same deletion delivered again changes nothing.
    assert_eq!(
        s.archive_record(&key(2), occurred, ArchiveReason::Deleted, None)
            .await
            .unwrap(),
        ArchiveOutcome::AlreadyArchived
    );
}

async fn archive_older_than_the_stored_version_is_refused<S: Harness>(s: S) {
    s.upsert_record(&write(3, 500, "Acme")).await.unwrap();
    for occurred in [400, 500] {
        assert_eq!(
            s.archive_record(&key(3), occurred, ArchiveReason::Deleted, None)
                .await
                .unwrap(),
            ArchiveOutcome::Stale
        );
    }
    let rec = s.get_record(&key(3)).await.unwrap().expect("stored");
    assert!(!rec.meta.archived);
    assert_eq!(rec.meta.source_version, 500);
}

async fn archive_of_a_missing_record_is_not_found<S: Harness>(s: S) {
    assert_eq!(
        s.archive_record(&key(404), 1, ArchiveReason::Deleted, None)
            .await
            .unwrap(),
        ArchiveOutcome::NotFound
    );
    assert!(
        s.get_record(&key(404)).await.unwrap().is_none(),
        "no item is created"
    );
}

async fn upsert_with_newer_version_restores_an_archived_record<S: Harness>(s: S) {
    s.upsert_record(&write(4, 100, "Acme")).await.unwrap();
    s.archive_record(&key(4), 200, ArchiveReason::Deleted, None)
        .await
        .unwrap();
    // A read made before the deletion must not resurrect it.
    assert_eq!(
        s.upsert_record(&write(4, 150, "Acme")).await.unwrap(),
        UpsertOutcome::Stale
    );
    assert!(s.get_record(&key(4)).await.unwrap().unwrap().meta.archived);

    assert_eq!(
        s.upsert_record(&write(4, 300, "Acme Back")).await.unwrap(),
        UpsertOutcome::Updated
    );
    let rec = s.get_record(&key(4)).await.unwrap().expect("stored");
    assert!(!rec.meta.archived);
    assert_eq!(rec.meta.archived_at, None);
    assert_eq!(rec.meta.archive_reason, None);
    assert_eq!(rec.meta.source_version, 300);
    assert_eq!(rec.fields, fields("Acme Back"));
}

async fn merge_archive_points_at_the_survivor<S: Harness>(s: S) {
    s.upsert_record(&write(5, 100, "Dup")).await.unwrap();
    assert_eq!(
        s.archive_record(&key(5), 200, ArchiveReason::Merged, Some(ObjectId(55)))
            .await
            .unwrap(),
        ArchiveOutcome::Archived
    );
    let meta = s
        .get_record_meta(&[key(5)])
        .await
        .unwrap()
        .pop()
        .expect("stored");
    assert!(meta.archived);
    assert_eq!(meta.archive_reason, Some(ArchiveReason::Merged));
    assert_eq!(meta.merged_into, Some(ObjectId(55)));
    let raw = s.raw(&key(5)).await.unwrap();
    assert_eq!(raw["merged_into"].as_s().unwrap(), "55");
    assert_eq!(raw["archive_reason"].as_s().unwrap(), "merged");
}

async fn privacy_purge_leaves_only_a_pii_free_tombstone<S: Harness>(s: S) {
    let k = RecordKey::new(PORTAL, ObjectType::Contacts, ObjectId(77));
    let pii = match json!({ "email": "jane@example.com", "name": "Jane Doe", "company_name": "Acme" })
    {
        Value::Object(m) => m,
        _ => unreachable!(),
    };
    s.upsert_record(&RecordWrite::new(k, 100, "h", pii))
        .await
        .unwrap();
    assert_eq!(
        s.privacy_purge(&k, 1_700_000_000_000).await.unwrap(),
        PurgeOutcome::Purged
    );

    let raw = s.raw(&k).await.expect("a tombstone remains");
    assert_eq!(
        attribute_names(&raw),
        BTreeSet::from([
            "pk",
            "sk",
            "portal_id",
            "object_type",
            "object_id",
            "privacy_deleted",
            "purged_at",
            "source_version",
            "archived",
        ])
    );
    assert!(
        !format!("{raw:?}").contains("jane"),
        "no personal data left"
    );
    assert_eq!(raw["source_version"].as_n().unwrap(), &i64::MAX.to_string());
    assert_eq!(
        raw["privacy_deleted"],
        aws_sdk_dynamodb::types::AttributeValue::Bool(true)
    );

    let meta = s
        .get_record_meta(&[k])
        .await
        .unwrap()
        .pop()
        .expect("tombstone meta");
    assert!(meta.privacy_deleted && meta.archived);

    // Late events cannot resurrect it.
    let late = RecordWrite::new(k, i64::MAX - 1, "h2", fields("Jane"));
    assert_eq!(
        s.upsert_record(&late).await.unwrap(),
        UpsertOutcome::Tombstoned
    );
    assert_eq!(
        s.archive_record(&k, 4_000_000_000_000, ArchiveReason::Deleted, None)
            .await
            .unwrap(),
        ArchiveOutcome::Tombstoned
    );
    assert_eq!(
        s.privacy_purge(&k, 1_700_000_000_000).await.unwrap(),
        PurgeOutcome::AlreadyPurged
    );
    assert_eq!(attribute_names(&s.raw(&k).await.unwrap()).len(), 9);
}

async fn privacy_purge_of_an_unknown_record_blocks_late_events<S: Harness>(s: S) {
    let k = RecordKey::new(PORTAL, ObjectType::Contacts, ObjectId(78));
    assert_eq!(
        s.privacy_purge(&k, 1).await.unwrap(),
        PurgeOutcome::TombstoneCreated
    );
    assert_eq!(
        s.upsert_record(&RecordWrite::new(k, 2, "h", fields("Jane")))
            .await
            .unwrap(),
        UpsertOutcome::Tombstoned
    );
    assert!(s.get_record(&k).await.unwrap().unwrap().fields.is_empty());
}

async fn permanent_delete_refuses_an_active_record<S: Harness>(s: S) {
    s.upsert_record(&write(6, 100, "Acme")).await.unwrap();
    match s.delete_record_permanently(&key(6)).await {
        Err(StoreError::NotArchived { key: k }) => assert_eq!(k, key(6)),
        other => panic!("expected NotArchived, got {other:?}"),
    }
    assert!(s.get_record(&key(6)).await.unwrap().is_some());

    s.archive_record(&key(6), 200, ArchiveReason::Deleted, None)
        .await
        .unwrap();
    assert_eq!(
        s.delete_record_permanently(&key(6)).await.unwrap(),
        DeleteOutcome::Deleted
    );
    assert!(s.get_record(&key(6)).await.unwrap().is_none());
    assert_eq!(
        s.delete_record_permanently(&key(6)).await.unwrap(),
        DeleteOutcome::NotFound
    );

    s.privacy_purge(&key(60), 1).await.unwrap();
    assert_eq!(
        s.delete_record_permanently(&key(60)).await.unwrap(),
        DeleteOutcome::TombstoneKept
    );
    assert!(s.raw(&key(60)).await.is_some());
}

async fn batch_meta_read_of_150_keys_takes_two_calls<S: Harness>(s: S) {
    for id in 1..=150u64 {
        s.upsert_record(&write(id, id as i64 * 10, "Co"))
            .await
            .unwrap();
    }
    let mut keys: Vec<RecordKey> = (1..=150).rev().map(key).collect();
    keys.extend((1..=20).map(key)); // duplicates are read once
    let reads = s.counters().reads();
    let metas = s.get_record_meta(&keys).await.unwrap();
    assert_eq!(s.counters().reads() - reads, 2, "two BatchGetItem calls");
    assert_eq!(metas.len(), 150);
    for (i, m) in metas.iter().enumerate() {
        let id = i as u64 + 1;
        assert_eq!(m.key(), key(id), "sorted by key");
        assert_eq!(m.source_version, id as i64 * 10);
        assert_eq!(m.content_hash.as_deref(), Some("hash-Co"));
    }
    assert!(s.get_record_meta(&[]).await.unwrap().is_empty());
    assert_eq!(s.counters().reads() - reads, 2, "no keys, no call");
}

async fn batch_meta_read_carries_the_named_fields_only<S: Harness>(s: S) {
    let mut w = write(7, 70, "Co");
    w.fields.insert("company_ids".into(), json!(["11", "12"]));
    w.fields.insert("owner".into(), Value::Null);
    s.upsert_record(&w).await.unwrap();
    s.upsert_record(&write(8, 80, "Other")).await.unwrap();
    let names: Vec<String> = ["company_ids", "owner", "absent", "source_version", "owner"]
        .map(String::from)
        .to_vec();
    let reads = s.counters().reads();
    let rows = s
        .get_record_meta_fields(&[key(8), key(7), key(9)], &names)
        .await
        .unwrap();
    assert_eq!(s.counters().reads() - reads, 1, "one BatchGetItem");
    assert_eq!(rows.len(), 2);
    let (meta, fields) = &rows[0];
    assert_eq!(meta.key(), key(7));
    assert_eq!(meta.source_version, 70);
    // The named fields it has (a null included); never a reserved
    // attribute, never another field.
    assert_eq!(
        Value::Object(fields.clone()),
        json!({"company_ids": ["11", "12"], "owner": null})
    );
    let (meta, fields) = &rows[1];
    assert_eq!(meta.key(), key(8));
    assert!(fields.is_empty(), "{fields:?}");
    // No names: the metadata alone, as get_record_meta.
    let rows = s.get_record_meta_fields(&[key(7)], &[]).await.unwrap();
    assert!(rows[0].1.is_empty());
}

async fn a_fields_scan_pages_the_partition_with_the_named_fields_only<S: Harness>(s: S) {
    for id in 1..=7u64 {
        let mut w = write(id, 10, "Co");
        w.fields
            .insert("company_ids".into(), json!([format!("{}", id * 100)]));
        s.upsert_record(&w).await.unwrap();
    }
    s.archive_record(&key(3), 20, ArchiveReason::Deleted, None)
        .await
        .unwrap();
    // Another partition never leaks in.
    s.upsert_record(&RecordWrite::new(
        RecordKey::new(PORTAL, ObjectType::Contacts, ObjectId(2)),
        1,
        "h",
        fields("X"),
    ))
    .await
    .unwrap();
    let names: Vec<String> = ["company_ids", "absent", "archived"]
        .map(String::from)
        .to_vec();
    let mut after = None;
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let page = s
            .scan_fields_page(PORTAL, ObjectType::Companies, &names, after, 3)
            .await
            .unwrap();
        pages += 1;
        assert!(page.records.len() <= 3);
        for (meta, fields) in &page.records {
            // The named fields it has, never a reserved attribute.
            assert_eq!(
                Value::Object(fields.clone()),
                json!({"company_ids": [format!("{}", meta.object_id.get() * 100)]}),
                "{meta:?}"
            );
            seen.push((meta.object_id.get(), meta.archived));
        }
        after = page.next_after;
        if after.is_none() {
            break;
        }
        assert!(pages < 10, "the scan ends");
    }
    let expected: Vec<(u64, bool)> = (1..=7u64).map(|id| (id, id == 3)).collect();
    assert_eq!(
        seen, expected,
        "every record once, in id order, with its metadata"
    );
}

async fn batch_meta_read_leaves_out_missing_keys<S: Harness>(s: S) {
    s.upsert_record(&write(10, 1, "A")).await.unwrap();
    s.upsert_record(&write(30, 1, "C")).await.unwrap();
    let metas = s
        .get_record_meta(&[key(30), key(20), key(10)])
        .await
        .unwrap();
    let ids: Vec<u64> = metas.iter().map(|m| m.object_id.get()).collect();
    assert_eq!(ids, [10, 30]);
}

/// 250 ids of very different magnitudes, so that string order of unpadded
/// ids would differ from numeric order.
fn scattered_ids() -> Vec<u64> {
    (0..250u64)
        .map(|i| (i * 7919 + 13) % 1000 * 10u64.pow((i % 12) as u32) + i)
        .collect()
}

async fn scan_yields_records_in_numeric_id_order_across_pages<S: Harness>(s: S) {
    let ids = scattered_ids();
    for &id in &ids {
        s.upsert_record(&write(id, 1, "Co")).await.unwrap();
    }
    // Neighbouring partitions must not leak into the scan.
    s.upsert_record(&RecordWrite::new(
        RecordKey::new(PORTAL, ObjectType::Contacts, ObjectId(5)),
        1,
        "h",
        fields("X"),
    ))
    .await
    .unwrap();
    s.upsert_record(&RecordWrite::new(
        RecordKey::new(
            PortalId(PORTAL.get() + 1),
            ObjectType::Companies,
            ObjectId(5),
        ),
        1,
        "h",
        fields("X"),
    ))
    .await
    .unwrap();

    let mut expected: Vec<u64> = ids.clone();
    expected.sort_unstable();
    expected.dedup();

    let mut scan = s.scan_portal_records(PORTAL, ObjectType::Companies, 40);
    let mut seen = Vec::new();
    let mut pages = 0;
    while let Some(page) = scan.next_page().await.unwrap() {
        assert!(!page.is_empty() && page.len() <= 40);
        pages += 1;
        seen.extend(page.iter().map(|r| r.meta.object_id.get()));
    }
    assert!(scan.is_done());
    assert_eq!(pages, expected.len().div_ceil(40));
    assert_eq!(seen, expected);

    // The same through the stream adapter.
    let streamed: Vec<u64> = s
        .scan_portal_records(PORTAL, ObjectType::Companies, 64)
        .into_stream()
        .map_ok(|page| {
            page.into_iter()
                .map(|r| r.meta.object_id.get())
                .collect::<Vec<_>>()
        })
        .try_concat()
        .await
        .unwrap();
    assert_eq!(streamed, expected);
}

async fn scan_resumes_from_a_checkpoint<S: Harness>(s: S) {
    for id in 1..=25u64 {
        s.upsert_record(&write(id, 1, "Co")).await.unwrap();
    }
    let mut scan = s.scan_portal_records(PORTAL, ObjectType::Companies, 10);
    let first = scan.next_page().await.unwrap().unwrap();
    assert_eq!(first.len(), 10);
    let checkpoint = scan.position();
    assert_eq!(checkpoint, Some(ObjectId(10)));

    // A later invocation resumes from the stored checkpoint.
    let mut resumed = s
        .scan_portal_records(PORTAL, ObjectType::Companies, 10)
        .resume_after(checkpoint);
    let mut rest = Vec::new();
    while let Some(page) = resumed.next_page().await.unwrap() {
        rest.extend(page.into_iter().map(|r| r.meta.object_id.get()));
    }
    assert_eq!(rest, (11..=25).collect::<Vec<_>>());
    // An empty partition yields nothing.
    let mut empty = s.scan_portal_records(PortalId(9), ObjectType::Deals, 10);
    assert!(empty.next_page().await.unwrap().is_none());
}

async fn a_descending_scan_walks_down_and_resumes_below_its_checkpoint<S: Harness>(s: S) {
    // Ids of different widths: the order is numeric, not textual.
    let ids = [3u64, 9, 10, 11, 99, 100, 101, 1_000, 12_345, 99_999];
    for id in ids {
        s.upsert_record(&write(id, 1, "Co")).await.unwrap();
    }
    // Another type of the same portal is not in the partition.
    let mut deal = write(50, 1, "Deal");
    deal.key.object_type = ObjectType::Deals;
    s.upsert_record(&deal).await.unwrap();

    let mut scan = s.scan_portal_records_descending(PORTAL, ObjectType::Companies, 4);
    let first = scan.next_page().await.unwrap().unwrap();
    let first: Vec<u64> = first.iter().map(|r| r.meta.object_id.get()).collect();
    assert_eq!(first, vec![99_999, 12_345, 1_000, 101]);
    assert_eq!(scan.position(), Some(ObjectId(101)));

    let mut resumed = s
        .scan_portal_records_descending(PORTAL, ObjectType::Companies, 4)
        .resume_after(scan.position());
    let mut rest = Vec::new();
    while let Some(page) = resumed.next_page().await.unwrap() {
        assert!(page.len() <= 4);
        rest.extend(page.into_iter().map(|r| r.meta.object_id.get()));
    }
    assert!(resumed.is_done());
    assert_eq!(rest, vec![100, 99, 11, 10, 9, 3]);
    // An empty partition yields nothing.
    let mut empty = s.scan_portal_records_descending(PortalId(9), ObjectType::Deals, 10);
    assert!(empty.next_page().await.unwrap().is_none());
}

async fn no_change_run_costs_no_writes<S: Harness>(s: S) {
    let batch: Vec<RecordWrite> = (1..=120u64)
        .map(|id| write(id, 1_000 + id as i64, "Co"))
        .collect();
    let sync = |s: S, batch: Vec<RecordWrite>| async move {
        let keys: Vec<RecordKey> = batch.iter().map(|w| w.key).collect();
        let stored = s.get_record_meta(&keys).await.unwrap();
        let mut written = 0;
        for w in &batch {
            let meta = stored.iter().find(|m| m.key() == w.key);
            if needs_write(meta, w.source_version, &w.content_hash).is_write() {
                s.upsert_record(w).await.unwrap();
                written += 1;
            }
        }
        written
    };
    assert_eq!(sync(s.clone(), batch.clone()).await, 120);
    let writes = s.counters().writes();
    assert_eq!(sync(s.clone(), batch).await, 0);
    assert_eq!(
        s.counters().writes(),
        writes,
        "DynamoDB writes for a no-change run: 0"
    );
}

/// Store calls run in spawned tasks (their futures are `Send`): many keys
/// written in parallel, and one key written from tasks in shuffled version
/// order (one after another: moto does not make a conditional write atomic
/// under contention — two racing `attribute_not_exists` puts were both seen
/// to succeed — so same-item contention is tested on the memory store only,
/// in `memory_contention`).
async fn spawned_writers_converge_on_the_newest_version<S: Harness>(s: S) {
    let mut tasks = Vec::new();
    for id in 100..120u64 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.upsert_record(&write(id, 1, "Par")).await
        }));
    }
    for t in tasks {
        assert_eq!(
            t.await.expect("task").expect("upsert"),
            UpsertOutcome::Created
        );
    }

    let mut outcomes = Vec::new();
    for v in [5i64, 9, 1, 7, 3, 8, 2, 6, 4] {
        let s = s.clone();
        let task =
            tokio::spawn(async move { s.upsert_record(&write(42, v, &format!("v{v}"))).await });
        outcomes.push(task.await.expect("task").expect("upsert"));
    }
    use UpsertOutcome::*;
    assert_eq!(
        outcomes,
        [Created, Updated, Stale, Stale, Stale, Stale, Stale, Stale, Stale]
    );
    let rec = s.get_record(&key(42)).await.unwrap().expect("stored");
    assert_eq!(rec.meta.source_version, 9);
    assert_eq!(rec.fields, fields("v9"));
}

async fn write_counter_counts_every_write_request<S: Harness>(s: S) {
    let c = s.counters().clone();
    assert_eq!(c.writes(), 0);
    s.upsert_record(&write(1, 10, "A")).await.unwrap(); // created
    assert_eq!(c.writes(), 1);
    s.upsert_record(&write(1, 10, "A")).await.unwrap(); // unchanged: refused, still billed
    s.upsert_record(&write(1, 5, "A")).await.unwrap(); // stale
    assert_eq!(c.writes(), 3);
    s.archive_record(&key(1), 5, ArchiveReason::Deleted, None)
        .await
        .unwrap(); // stale
    s.archive_record(&key(2), 5, ArchiveReason::Deleted, None)
        .await
        .unwrap(); // not found
    assert_eq!(c.writes(), 5);
    let _ = s.delete_record_permanently(&key(1)).await; // NotArchived, still a request
    assert_eq!(c.writes(), 6);
    s.privacy_purge(&key(3), 1).await.unwrap();
    assert_eq!(c.writes(), 7);

    // Reads are not writes.
    s.get_record_meta(&[key(1), key(2)]).await.unwrap();
    s.get_record(&key(1)).await.unwrap();
    s.scan_page(PORTAL, ObjectType::Companies, None, 10)
        .await
        .unwrap();
    assert_eq!(c.writes(), 7);

    s.put_connection(&connection(PORTAL)).await.unwrap();
    let _ = s
        .set_connection_status(PortalId(4), ConnectionStatus::Disconnected, None)
        .await;
    assert_eq!(c.writes(), 9);

    // Invalid input is refused before any request.
    let mut bad = fields("A");
    bad.insert("archived".into(), Value::Bool(false));
    assert!(s
        .upsert_record(&RecordWrite::new(key(1), 99, "h", bad))
        .await
        .is_err());
    assert_eq!(c.writes(), 9);
}

fn connection(portal: PortalId) -> Connection {
    let now = chrono::DateTime::from_timestamp(1_700_000_000, 123_000_000).unwrap();
    Connection {
        portal_id: portal,
        tenant_id: "tenant-1".into(),
        status: ConnectionStatus::Active,
        scopes: vec![
            "crm.objects.companies.read".into(),
            "crm.objects.contacts.read".into(),
        ],
        access_token_ciphertext: Some("AQICAHaccessCIPHERTEXT".into()),
        refresh_token_ciphertext: Some("AQICAHrefreshCIPHERTEXT".into()),
        access_token_expires_at: Some(1_700_001_800),
        created_at: now,
        updated_at: now,
        last_webhook_at: None,
        status_reason: None,
    }
}

async fn connection_round_trip_and_status_change<S: Harness>(s: S) {
    assert!(s.get_connection(PORTAL).await.unwrap().is_none());
    let conn = connection(PORTAL);
    s.put_connection(&conn).await.unwrap();
    assert_eq!(s.get_connection(PORTAL).await.unwrap(), Some(conn.clone()));

    let other = Connection {
        scopes: vec![],
        last_webhook_at: Some(conn.created_at),
        ..connection(PortalId(42))
    };
    s.put_connection(&other).await.unwrap();
    let all = s.list_connections().await.unwrap();
    assert_eq!(all, vec![other.clone(), conn.clone()], "in portal order");

    s.set_connection_status(PORTAL, ConnectionStatus::NeedsReauth, Some("invalid_grant"))
        .await
        .unwrap();
    let changed = s
        .get_connection(PORTAL)
        .await
        .unwrap()
        .expect("still stored");
    assert_eq!(changed.status, ConnectionStatus::NeedsReauth);
    assert_eq!(changed.status_reason.as_deref(), Some("invalid_grant"));
    assert!(changed.updated_at > conn.updated_at);
    assert_eq!(changed.access_token_ciphertext, None, "tokens are deleted");
    assert_eq!(changed.refresh_token_ciphertext, None);
    assert_eq!(changed.access_token_expires_at, None);
    assert_eq!(changed.created_at, conn.created_at);
    assert_eq!(changed.scopes, conn.scopes);

    let dbg = format!("{conn:?}");
    assert!(!dbg.contains("CIPHERTEXT"), "{dbg}");
    assert!(
        dbg.contains("<redacted>") && dbg.contains("1000001"),
        "{dbg}"
    );
}

async fn records_with_issues_are_listed_until_written_clean<S: Harness>(s: S) {
    let issue = |field: &str| hubsync_store::RecordIssue {
        category: "mapping".into(),
        field: Some(field.into()),
        message: "not a number".into(),
    };
    for id in 1..=5u64 {
        let w = write(id, 10, "x");
        let w = if id % 2 == 1 {
            w.with_issues(vec![issue("amount_cents")])
        } else {
            w
        };
        s.upsert_record(&w).await.unwrap();
    }
    // Eventually consistent index (moto's is immediate).
    let mut page = hubsync_store::IssuePage::default();
    for _ in 0..50 {
        page = s
            .record_issues(PORTAL, ObjectType::Companies, None, 10)
            .await
            .unwrap();
        if page.records.len() == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let ids: Vec<u64> = page.records.iter().map(|r| r.key.object_id.get()).collect();
    assert_eq!(ids, [1, 3, 5]);
    assert_eq!(page.records[0].issues, vec![issue("amount_cents")]);
    assert!(!page.records[0].archived);
    let stored = s.get_record(&key(1)).await.unwrap().unwrap();
    assert!(
        !stored.fields.contains_key("sync_issues"),
        "issues are not a mapped field"
    );
    let two = s
        .record_issues(PORTAL, ObjectType::Companies, None, 2)
        .await
        .unwrap();
    assert_eq!(two.records.len(), 2);
    let rest = s
        .record_issues(PORTAL, ObjectType::Companies, two.next_after, 2)
        .await
        .unwrap();
    assert_eq!(
        rest.records
            .iter()
            .map(|r| r.key.object_id.get())
            .collect::<Vec<_>>(),
        [5]
    );
    // A clean write takes record 3 out.
    s.upsert_record(&write(3, 11, "y")).await.unwrap();
    let mut left = Vec::new();
    for _ in 0..50 {
        left = s
            .record_issues(PORTAL, ObjectType::Companies, None, 10)
            .await
            .unwrap()
            .records
            .iter()
            .map(|r| r.key.object_id.get())
            .collect();
        if left.len() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(left, [1, 5]);
}

async fn incidents_accumulate_per_type_and_category_and_clear_per_type<S: Harness>(s: S) {
    let ids = |r: std::ops::RangeInclusive<u64>| r.map(ObjectId).collect::<Vec<_>>();
    assert!(s.list_incidents(PORTAL).await.unwrap().is_empty());
    s.record_incident(
        PORTAL,
        ObjectType::Deals,
        "permission",
        "403 first",
        &ids(1..=30),
    )
    .await
    .unwrap();
    s.record_incident(
        PORTAL,
        ObjectType::Deals,
        "permission",
        "403 again",
        &ids(31..=32),
    )
    .await
    .unwrap();
    s.record_incident(
        PORTAL,
        ObjectType::Contacts,
        "storage",
        "throttled",
        &ids(5..=5),
    )
    .await
    .unwrap();
    s.record_incident(
        PortalId(9),
        ObjectType::Deals,
        "storage",
        "other portal",
        &ids(1..=1),
    )
    .await
    .unwrap();
    let all = s.list_incidents(PORTAL).await.unwrap();
    assert_eq!(all.len(), 2);
    let deals = all
        .iter()
        .find(|i| i.object_type == ObjectType::Deals)
        .unwrap();
    assert_eq!((deals.occurrences, deals.affected_records), (2, 32));
    assert_eq!(deals.message, "403 again");
    assert_eq!(
        deals.example_ids,
        ids(31..=32),
        "the latest occurrence's records"
    );
    assert!(deals.first_at_ms <= deals.last_at_ms);
    assert_eq!(
        s.clear_incidents(PORTAL, ObjectType::Deals).await.unwrap(),
        1
    );
    let left = s.list_incidents(PORTAL).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].category, "storage");
    assert_eq!(s.list_incidents(PortalId(9)).await.unwrap().len(), 1);
}

async fn a_tenants_connections_come_from_the_tenant_index<S: Harness>(s: S) {
    assert!(s.tenant_connections("acme").await.unwrap().is_empty());
    let of = |portal: u64, tenant: &str| Connection {
        tenant_id: tenant.into(),
        ..connection(PortalId(portal))
    };
    for c in [of(30, "acme"), of(10, "acme"), of(20, "globex")] {
        s.put_connection(&c).await.unwrap();
    }
    s.set_connection_status(PortalId(10), ConnectionStatus::NeedsReauth, None)
        .await
        .unwrap();
    // The index is eventually consistent (moto's is immediate; DynamoDB's
    // usually is within a second): poll briefly.
    let mut acme = Vec::new();
    for _ in 0..50 {
        acme = s.tenant_connections("acme").await.unwrap();
        if acme.len() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let portals: Vec<u64> = acme.iter().map(|c| c.portal_id.0).collect();
    assert_eq!(portals, [10, 30], "the tenant's portals, in portal order");
    assert_eq!(acme[0].status, ConnectionStatus::NeedsReauth, "read whole");
    assert_eq!(
        acme[1],
        of(30, "acme"),
        "the index key stays out of the connection"
    );
    let globex = s.tenant_connections("globex").await.unwrap();
    assert_eq!(globex, vec![of(20, "globex")]);
    assert!(
        s.tenant_connections("acm").await.unwrap().is_empty(),
        "exact match"
    );
}

async fn webhook_seen_sets_only_last_webhook_at<S: Harness>(s: S) {
    let conn = connection(PORTAL);
    s.put_connection(&conn).await.unwrap();
    let at = chrono::DateTime::from_timestamp_millis(1_700_000_123_456).unwrap();
    let writes = s.counters().writes();
    s.record_webhook_seen(PORTAL, at).await.unwrap();
    assert_eq!(s.counters().writes(), writes + 1, "one write");
    let stored = s.get_connection(PORTAL).await.unwrap().unwrap();
    assert_eq!(
        stored,
        Connection {
            last_webhook_at: Some(at),
            ..conn
        },
        "only last_webhook_at changes; tokens and status stay"
    );

    match s.record_webhook_seen(PortalId(6), at).await {
        Err(StoreError::ConnectionNotFound { portal }) => assert_eq!(portal, PortalId(6)),
        other => panic!("a delivery must not create a connection: {other:?}"),
    }
    assert!(s.get_connection(PortalId(6)).await.unwrap().is_none());
}

async fn status_change_of_an_unknown_connection_is_not_found<S: Harness>(s: S) {
    match s
        .set_connection_status(
            PortalId(5),
            ConnectionStatus::Disconnected,
            Some("uninstalled"),
        )
        .await
    {
        Err(StoreError::ConnectionNotFound { portal }) => assert_eq!(portal, PortalId(5)),
        other => panic!("expected ConnectionNotFound, got {other:?}"),
    }
    assert!(
        s.get_connection(PortalId(5)).await.unwrap().is_none(),
        "no item is created"
    );
}

async fn reserved_field_names_are_refused_without_a_write<S: Harness>(s: S) {
    let mut bad = fields("A");
    bad.insert("source_version".into(), json!(1));
    let err = s
        .upsert_record(&RecordWrite::new(key(1), 1, "h", bad))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput(_)), "{err:?}");
    assert!(!err.is_retryable());
    assert_eq!(s.counters().writes(), 0);
    assert!(s.get_record(&key(1)).await.unwrap().is_none());
}

fn new_tokens(n: u32) -> TokenUpdate {
    TokenUpdate {
        access_token_ciphertext: format!("AQICAHaccess{n}CIPHERTEXT"),
        refresh_token_ciphertext: format!("AQICAHrefresh{n}CIPHERTEXT"),
        access_token_expires_at: 1_700_000_000 + i64::from(n),
    }
}

async fn token_swap_succeeds_only_against_the_expected_token<S: Harness>(s: S) {
    let conn = connection(PORTAL);
    s.put_connection(&conn).await.unwrap();
    let old = conn.access_token_ciphertext.clone().unwrap();

    assert_eq!(
        s.swap_tokens(PORTAL, &old, &new_tokens(1)).await.unwrap(),
        TokenSwap::Swapped
    );
    let stored = s.get_connection(PORTAL).await.unwrap().unwrap();
    assert_eq!(
        stored.access_token_ciphertext.as_deref(),
        Some("AQICAHaccess1CIPHERTEXT")
    );
    assert_eq!(
        stored.refresh_token_ciphertext.as_deref(),
        Some("AQICAHrefresh1CIPHERTEXT")
    );
    assert_eq!(stored.access_token_expires_at, Some(1_700_000_001));
    assert!(stored.updated_at > conn.updated_at);

    // A second refresher that also saw the old token loses.
    assert_eq!(
        s.swap_tokens(PORTAL, &old, &new_tokens(2)).await.unwrap(),
        TokenSwap::Superseded
    );
    let still = s.get_connection(PORTAL).await.unwrap().unwrap();
    assert_eq!(
        still.access_token_ciphertext.as_deref(),
        Some("AQICAHaccess1CIPHERTEXT")
    );

    s.set_connection_status(PORTAL, ConnectionStatus::NeedsReauth, Some("invalid_grant"))
        .await
        .unwrap();
    assert_eq!(
        s.swap_tokens(PORTAL, "AQICAHaccess1CIPHERTEXT", &new_tokens(3))
            .await
            .unwrap(),
        TokenSwap::NotActive
    );
    assert!(matches!(
        s.swap_tokens(PortalId(3), &old, &new_tokens(4)).await,
        Err(StoreError::ConnectionNotFound { portal }) if portal == PortalId(3)
    ));
    assert!(!format!("{:?}", new_tokens(5)).contains("CIPHERTEXT"));
}

async fn a_lease_has_one_holder_until_released_or_lapsed<S: Harness>(s: S) {
    let name = token_refresh_lease(PORTAL);
    let ttl = Duration::from_secs(30);
    let a = s
        .try_acquire_lease(&name, "a", ttl)
        .await
        .unwrap()
        .expect("free");
    assert_eq!(a.holder, "a");
    assert!(s
        .try_acquire_lease(&name, "b", ttl)
        .await
        .unwrap()
        .is_none());
    assert!(
        s.try_acquire_lease(&name, "a", ttl)
            .await
            .unwrap()
            .is_some(),
        "renewal"
    );

    let b_lease = hubsync_store::Lease {
        holder: "b".into(),
        ..a.clone()
    };
    assert!(
        !s.release_lease(&b_lease).await.unwrap(),
        "only the holder releases"
    );
    assert!(s.release_lease(&a).await.unwrap());
    assert!(!s.release_lease(&a).await.unwrap(), "already released");

    let b = s
        .try_acquire_lease(&name, "b", Duration::from_millis(50))
        .await
        .unwrap();
    assert!(b.is_some());
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert!(
        s.try_acquire_lease(&name, "c", ttl)
            .await
            .unwrap()
            .is_some(),
        "a lapsed lease can be taken"
    );
    // Other names are independent.
    assert!(s
        .try_acquire_lease(&token_refresh_lease(PortalId(2)), "b", ttl)
        .await
        .unwrap()
        .is_some());
}

/// Same-item contention, where the memory store's lock plays DynamoDB's
/// per-item atomicity (moto cannot be trusted with it, see above).
mod memory_contention {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn racing_writers_create_once_and_converge_on_the_newest_version() {
        let s = MemoryStore::new();
        let mut tasks = Vec::new();
        for v in [5i64, 9, 1, 7, 3, 8, 2, 6, 4] {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                s.upsert_record(&write(42, v, &format!("v{v}"))).await
            }));
        }
        let mut created = 0;
        for t in tasks {
            if t.await.expect("task").expect("upsert") == UpsertOutcome::Created {
                created += 1;
            }
        }
        assert_eq!(created, 1);
        let rec = s.get_record(&key(42)).await.unwrap().expect("stored");
        assert_eq!(rec.meta.source_version, 9);
        assert_eq!(rec.fields, fields("v9"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn racing_refreshers_get_exactly_one_lease() {
        let s = MemoryStore::new();
        let name = token_refresh_lease(PORTAL);
        let mut tasks = Vec::new();
        for i in 0..8 {
            let s = s.clone();
            let name = name.clone();
            tasks.push(tokio::spawn(async move {
                s.try_acquire_lease(&name, &format!("worker-{i}"), Duration::from_secs(30))
                    .await
            }));
        }
        let mut winners = 0;
        for t in tasks {
            if t.await.expect("task").expect("lease call").is_some() {
                winners += 1;
            }
        }
        assert_eq!(winners, 1);
        assert_eq!(s.stats().writes(), 8, "every attempt is a (billed) write");
    }
}
