//! Keys, write decisions and item round trips.
use super::*;
use chrono::Utc;

fn key(id: u64) -> RecordKey {
    RecordKey::new(PortalId(1000001), ObjectType::Companies, ObjectId(id))
}

fn meta(version: i64, hash: &str) -> StoredMeta {
    StoredMeta {
        portal_id: PortalId(1000001),
        object_type: ObjectType::Companies,
        object_id: ObjectId(7),
        source_version: version,
        content_hash: Some(hash.into()),
        archived: false,
        archived_at: None,
        archive_reason: None,
        merged_into: None,
        privacy_deleted: false,
        mapping_fp: None,
    }
}

#[test]
fn keys_sort_numerically_as_strings() {
    assert_eq!(key(42).pk(), "1000001#companies");
    assert_eq!(key(42).sk(), "00000000000000000042");
    assert_eq!(key(u64::MAX).sk(), u64::MAX.to_string());
    let mut ids = [9u64, 10, 100, 2, u64::MAX, 0];
    let mut sks: Vec<String> = ids.iter().map(|&i| sort_key(ObjectId(i))).collect();
    sks.sort();
    ids.sort();
    let back: Vec<u64> = sks
        .iter()
        .map(|s| parse_sort_key(s).map(ObjectId::get).unwrap())
        .collect();
    assert_eq!(back, ids);
}

#[test]
fn needs_write_follows_the_guard() {
    assert_eq!(needs_write(None, 1, "h"), WriteDecision::Write);
    let m = meta(5, "h");
    assert_eq!(needs_write(Some(&m), 5, "h"), WriteDecision::SkipUnchanged);
    // Same version, other content (mapping change): write.
    assert_eq!(needs_write(Some(&m), 5, "x"), WriteDecision::Write);
    assert_eq!(needs_write(Some(&m), 4, "h"), WriteDecision::SkipStale);
    assert_eq!(needs_write(Some(&m), 6, "x"), WriteDecision::Write);
    // Same content, newer version: the version must still move forward.
    assert_eq!(needs_write(Some(&m), 6, "h"), WriteDecision::Write);
    let tomb = StoredMeta {
        privacy_deleted: true,
        source_version: i64::MAX,
        content_hash: None,
        ..m
    };
    assert_eq!(
        needs_write(Some(&tomb), i64::MAX, "h"),
        WriteDecision::SkipTombstoned
    );
}

#[test]
fn needs_write_agrees_with_the_store_guard() {
    let stored = [
        None,
        Some(meta(5, "h")),
        Some(StoredMeta {
            archived: true,
            ..meta(5, "h")
        }),
        Some(StoredMeta {
            privacy_deleted: true,
            ..meta(5, "h")
        }),
    ];
    for s in &stored {
        for v in [4, 5, 6] {
            for h in ["h", "x"] {
                let write = RecordWrite::new(key(7), v, h, Map::new());
                let allowed = upsert_allowed(s.as_ref(), v, h);
                assert_eq!(needs_write(s.as_ref(), v, h).is_write(), allowed);
                if let (false, Some(m)) = (allowed, s) {
                    let outcome = classify_refused_upsert(m, &write);
                    assert_ne!(outcome, UpsertOutcome::Created);
                }
            }
        }
    }
}

#[test]
fn reserved_and_empty_field_names_are_refused() {
    for name in ["archived", "pk", "source_version", ""] {
        let mut fields = Map::new();
        fields.insert(name.into(), Value::Bool(true));
        let w = RecordWrite::new(key(1), 1, "h", fields);
        assert!(matches!(
            record_item(&w, now_rfc3339()),
            Err(StoreError::InvalidInput(_))
        ));
    }
    assert!(matches!(
        RecordWrite::from_fields(key(1), 1, "h", &[1, 2]),
        Err(StoreError::InvalidInput(_))
    ));
}

#[test]
fn debug_output_hides_field_values_and_tokens() {
    let mut fields = Map::new();
    fields.insert("email".into(), Value::String("jane@example.com".into()));
    let w = RecordWrite::new(key(1), 1, "h", fields);
    let dbg = format!("{w:?}");
    assert!(
        dbg.contains("email") && !dbg.contains("jane@example.com"),
        "{dbg}"
    );

    let now = Utc::now();
    let conn = Connection {
        portal_id: PortalId(1),
        tenant_id: "t".into(),
        status: ConnectionStatus::Active,
        scopes: vec![],
        access_token_ciphertext: Some("AQICAHsecretaccess".into()),
        refresh_token_ciphertext: Some("AQICAHsecretrefresh".into()),
        access_token_expires_at: Some(1),
        created_at: now,
        updated_at: now,
        last_webhook_at: None,
        status_reason: None,
    };
    let dbg = format!("{conn:?}");
    assert!(!dbg.contains("secret"), "{dbg}");
    assert!(dbg.contains("<redacted>"), "{dbg}");
}

#[test]
fn record_items_round_trip_through_serde_dynamo() {
    let mut fields = Map::new();
    fields.insert("name".into(), Value::String("Acme".into()));
    fields.insert("amount_cents".into(), Value::from(123_456_i64));
    fields.insert("domain".into(), Value::Null);
    let w = RecordWrite::new(key(99), 1_700_000_000_000, "abc", fields.clone());
    let item = record_item(&w, now_rfc3339()).unwrap();
    assert_eq!(item["object_id"], AttributeValue::S("99".into()));
    let rec = StoredRecord::from_item(item).unwrap();
    assert_eq!(rec.key(), key(99));
    assert_eq!(rec.meta.source_version, 1_700_000_000_000);
    assert_eq!(rec.meta.content_hash.as_deref(), Some("abc"));
    assert!(!rec.meta.archived);
    assert_eq!(rec.fields, fields);
}

#[test]
fn an_item_over_dynamodbs_limit_is_refused_permanently_before_any_request() {
    // Seven text properties at HubSpot's 65,536-character maximum: over
    // 400 KB together.
    let big = "x".repeat(65_536);
    let fields: Map<String, Value> = (0..7)
        .map(|i| (format!("field_{i}"), Value::String(big.clone())))
        .collect();
    let w = RecordWrite::new(key(1), 1, "h", fields);
    match record_item(&w, "2026-01-01T00:00:00Z".into()) {
        Err(e @ StoreError::ItemTooLarge { bytes, limit }) => {
            assert!(bytes > limit && limit == MAX_ITEM_BYTES);
            assert!(!e.is_retryable(), "a retry would fail the same way");
        }
        other => panic!("{other:?}"),
    }
    // Six fit: the size counts names and values like DynamoDB.
    let fields: Map<String, Value> = (0..6)
        .map(|i| (format!("field_{i}"), Value::String(big.clone())))
        .collect();
    let item = record_item(&RecordWrite::new(key(1), 1, "h", fields), "t".into()).unwrap();
    let size = item_size(&item);
    assert!(size > 6 * 65_536 && size < MAX_ITEM_BYTES, "{size}");
}
