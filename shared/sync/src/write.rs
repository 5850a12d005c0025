//! Writing a decided record: the store's guarded upsert, and — when the
//! record is over DynamoDB's item limit — the same record with its largest
//! fields emptied and a `too_large` sync issue each, instead of no record
//! at all. The worker and the reconciliation write through this one path.

use hubsync_store::{RecordStore, RecordWrite, StoreError, UpsertOutcome};

/// What writing a record did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub outcome: UpsertOutcome,
    /// Fields were emptied to fit the item limit (each is a sync issue).
    pub shrunk: bool,
}

/// Upserts `write`; an item over the limit is written again with its
/// largest fields emptied (see [`RecordWrite::shrunk_to_fit`]).
pub async fn upsert<S: RecordStore>(store: &S, write: &RecordWrite) -> Result<Written, StoreError> {
    match store.upsert_record(write).await {
        Ok(outcome) => Ok(Written {
            outcome,
            shrunk: false,
        }),
        Err(StoreError::ItemTooLarge { bytes, limit }) => {
            let Some(smaller) = write.shrunk_to_fit() else {
                return Err(StoreError::ItemTooLarge { bytes, limit });
            };
            let emptied: Vec<&str> = smaller
                .issues
                .iter()
                .filter_map(|i| i.field.as_deref())
                .collect();
            tracing::warn!(key = %write.key, bytes, fields = ?emptied, "record over the item limit: stored with these fields empty");
            Ok(Written {
                outcome: store.upsert_record(&smaller).await?,
                shrunk: true,
            })
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hubsync_hubspot::{ObjectId, ObjectType, PortalId};
    use hubsync_store::{MemoryStore, RecordKey, TOO_LARGE};

    #[tokio::test]
    async fn an_oversized_record_is_stored_without_its_largest_field_and_says_so() {
        let store = MemoryStore::new();
        let key = RecordKey::new(PortalId(1), ObjectType::Companies, ObjectId(5));
        let big = "x".repeat(450 * 1024);
        let write = RecordWrite::from_fields(
            key,
            10,
            "h",
            &serde_json::json!({"name": "Acme", "notes": big, "domain": "acme.io"}),
        )
        .unwrap();
        assert!(matches!(
            store.upsert_record(&write).await,
            Err(StoreError::ItemTooLarge { .. })
        ));
        let written = upsert(&store, &write).await.unwrap();
        assert_eq!(
            written,
            Written {
                outcome: UpsertOutcome::Created,
                shrunk: true
            }
        );
        let stored = store.get_record(&key).await.unwrap().unwrap();
        assert_eq!(stored.fields["name"], "Acme");
        assert_eq!(stored.fields["domain"], "acme.io");
        assert_eq!(stored.fields["notes"], serde_json::Value::Null);
        let issues = store
            .record_issues(PortalId(1), ObjectType::Companies, None, 10)
            .await
            .unwrap();
        let issue = &issues.records[0].issues[0];
        assert_eq!(
            (issue.category.as_str(), issue.field.as_deref()),
            (TOO_LARGE, Some("notes"))
        );
        // The same content again is unchanged (the hash is the record's).
        assert_eq!(
            upsert(&store, &write).await.unwrap().outcome,
            UpsertOutcome::Unchanged
        );
    }
}
