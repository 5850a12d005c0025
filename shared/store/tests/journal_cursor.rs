//! The journal reader's cursor and the count of the journal's repairs, the
//! same cases on `MemoryStore` and on `DynamoStore` (moto, fresh tables per
//! test).

use std::collections::BTreeSet;

use hubsync_mapping::ids::{ObjectId, ObjectType, PortalId};
use hubsync_store::{
    create_tables, DynamoStore, JournalCursor, JournalCursorStore, JournalFixStore, RelinkStore,
    StoreConfig,
};

async fn dynamo() -> DynamoStore {
    let sdk = hubsync_testkit::aws_config()
        .await
        .expect("local AWS stack");
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let config = StoreConfig::new(
        hubsync_testkit::unique_name("records"),
        hubsync_testkit::unique_name("control"),
    );
    create_tables(&client, &config).await.expect("tables");
    DynamoStore::new(client, config)
}

async fn a_cursor_moves_only_from_the_version_it_read<S: JournalCursorStore>(s: S) {
    let fresh = s.get_journal_cursor("global").await.unwrap();
    assert_eq!(fresh, JournalCursor::default());
    let first = JournalCursor {
        offset: Some("o-1".into()),
        newest_occurred_at_ms: Some(1_000),
        updated_at_ms: 5,
        version: 0,
    };
    assert!(s.put_journal_cursor("global", &first).await.unwrap());
    let read = s.get_journal_cursor("global").await.unwrap();
    assert_eq!(
        read,
        JournalCursor {
            version: 1,
            ..first.clone()
        }
    );

    // A second reader that read version 0 too loses; nothing changes.
    let stale = JournalCursor {
        offset: Some("o-0".into()),
        ..first.clone()
    };
    assert!(!s.put_journal_cursor("global", &stale).await.unwrap());
    assert_eq!(
        s.get_journal_cursor("global")
            .await
            .unwrap()
            .offset
            .as_deref(),
        Some("o-1")
    );

    let next = JournalCursor {
        offset: Some("o-2".into()),
        ..read
    };
    assert!(s.put_journal_cursor("global", &next).await.unwrap());
    let read = s.get_journal_cursor("global").await.unwrap();
    assert_eq!((read.offset.as_deref(), read.version), (Some("o-2"), 2));

    // A reset (expired offset) clears the offset; other journals are apart.
    let reset = JournalCursor {
        offset: None,
        ..read
    };
    assert!(s.put_journal_cursor("global", &reset).await.unwrap());
    assert_eq!(s.get_journal_cursor("global").await.unwrap().offset, None);
    assert_eq!(s.get_journal_cursor("42").await.unwrap().version, 0);
}

async fn subscription_fingerprints_are_kept_per_portal<S: JournalCursorStore>(s: S) {
    assert_eq!(s.get_subscriptions_fingerprint(7).await.unwrap(), None);
    s.put_subscriptions_fingerprint(7, Some("fp-1"))
        .await
        .unwrap();
    s.put_subscriptions_fingerprint(8, Some("fp-8"))
        .await
        .unwrap();
    s.put_subscriptions_fingerprint(7, Some("fp-2"))
        .await
        .unwrap();
    assert_eq!(
        s.get_subscriptions_fingerprint(7).await.unwrap().as_deref(),
        Some("fp-2")
    );
    s.put_subscriptions_fingerprint(7, None).await.unwrap();
    assert_eq!(s.get_subscriptions_fingerprint(7).await.unwrap(), None);
    assert_eq!(
        s.get_subscriptions_fingerprint(8).await.unwrap().as_deref(),
        Some("fp-8")
    );
    assert_eq!(
        s.get_journal_cursor("global").await.unwrap().version,
        0,
        "apart from cursors"
    );
}

async fn journal_fixes_add_up_per_portal_type_until_taken<
    S: JournalCursorStore + JournalFixStore,
>(
    s: S,
) {
    let (p, q) = (PortalId(7), PortalId(8));
    assert_eq!(
        s.take_journal_fixes(p, ObjectType::Contacts).await.unwrap(),
        0
    );
    s.add_journal_fixes(p, ObjectType::Contacts, 3)
        .await
        .unwrap();
    s.add_journal_fixes(p, ObjectType::Contacts, 4)
        .await
        .unwrap();
    s.add_journal_fixes(p, ObjectType::Deals, 1).await.unwrap();
    s.add_journal_fixes(q, ObjectType::Contacts, 0)
        .await
        .unwrap();
    s.add_journal_fixes(q, ObjectType::Contacts, 5)
        .await
        .unwrap();
    assert_eq!(
        s.take_journal_fixes(p, ObjectType::Contacts).await.unwrap(),
        7
    );
    // Taken means reset: the next count starts from 0.
    assert_eq!(
        s.take_journal_fixes(p, ObjectType::Contacts).await.unwrap(),
        0
    );
    s.add_journal_fixes(p, ObjectType::Contacts, 2)
        .await
        .unwrap();
    assert_eq!(
        s.take_journal_fixes(p, ObjectType::Contacts).await.unwrap(),
        2
    );
    assert_eq!(s.take_journal_fixes(p, ObjectType::Deals).await.unwrap(), 1);
    assert_eq!(
        s.take_journal_fixes(q, ObjectType::Contacts).await.unwrap(),
        5
    );
    assert_eq!(
        s.get_journal_cursor("global").await.unwrap().version,
        0,
        "apart from cursors"
    );
}

async fn gone_records_wait_until_exactly_they_are_cleared<S: RelinkStore>(s: S) {
    let (p, q) = (PortalId(7), PortalId(8));
    assert!(s.pending_gone(p, usize::MAX).await.unwrap().is_empty());
    s.add_gone(p, ObjectType::Companies, &[ObjectId(12), ObjectId(13)])
        .await
        .unwrap();
    s.add_gone(p, ObjectType::Contacts, &[ObjectId(12)])
        .await
        .unwrap();
    s.add_gone(p, ObjectType::Companies, &[ObjectId(12)])
        .await
        .unwrap();
    s.add_gone(q, ObjectType::Deals, &[]).await.unwrap();
    let pending = s.pending_gone(p, usize::MAX).await.unwrap();
    let expected: BTreeSet<_> = [
        (ObjectType::Companies, ObjectId(12)),
        (ObjectType::Companies, ObjectId(13)),
        (ObjectType::Contacts, ObjectId(12)),
    ]
    .into();
    assert_eq!(pending.gone, expected);
    assert_eq!(pending.items(), 3, "one item per addition");
    assert!(s.pending_gone(q, usize::MAX).await.unwrap().is_empty());
    // One added while the first lot was handled stays.
    s.add_gone(p, ObjectType::Deals, &[ObjectId(5)])
        .await
        .unwrap();
    s.clear_gone(p, &pending).await.unwrap();
    let left = s.pending_gone(p, usize::MAX).await.unwrap();
    assert_eq!(left.gone, [(ObjectType::Deals, ObjectId(5))].into());
    s.clear_gone(p, &left).await.unwrap();
    assert!(s.pending_gone(p, usize::MAX).await.unwrap().is_empty());
}

/// A mass deletion is many bounded items, read a bounded lot at a time.
async fn a_mass_deletion_is_split_into_items_and_read_a_lot_at_a_time<S: RelinkStore>(s: S) {
    let p = PortalId(9);
    let per_item = hubsync_store::relinks::GONE_PER_ITEM as u64;
    let ids: Vec<ObjectId> = (1..=2 * per_item + 500).map(ObjectId).collect();
    s.add_gone(p, ObjectType::Contacts, &ids).await.unwrap();
    let all = s.pending_gone(p, usize::MAX).await.unwrap();
    assert_eq!(all.items(), 3);
    assert_eq!(all.gone.len(), ids.len());
    // At least `max_ids`, in whole items.
    let first = s.pending_gone(p, 1).await.unwrap();
    assert_eq!(first.items(), 1);
    let lot = s.pending_gone(p, per_item as usize + 1).await.unwrap();
    assert_eq!(lot.items(), 2);
    assert_eq!(lot.gone.len(), 2 * per_item as usize);
    s.clear_gone(p, &lot).await.unwrap();
    let rest = s.pending_gone(p, usize::MAX).await.unwrap();
    assert_eq!(rest.items(), 1);
    assert_eq!(rest.gone.len(), 500);
    assert!(rest.gone.is_disjoint(&lot.gone));
    s.clear_gone(p, &rest).await.unwrap();
    assert!(s.pending_gone(p, usize::MAX).await.unwrap().is_empty());
}

macro_rules! both {
    ($($case:ident),*) => {
        mod memory {
            $( #[tokio::test] async fn $case() { super::$case(hubsync_store::MemoryStore::new()).await } )*
        }
        mod dynamo {
            $( #[tokio::test] async fn $case() { super::$case(super::dynamo().await).await } )*
        }
    };
}

both!(
    a_cursor_moves_only_from_the_version_it_read,
    subscription_fingerprints_are_kept_per_portal,
    journal_fixes_add_up_per_portal_type_until_taken,
    gone_records_wait_until_exactly_they_are_cleared,
    a_mass_deletion_is_split_into_items_and_read_a_lot_at_a_time
);
