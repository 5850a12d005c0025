//! Where the Webhooks Journal reader left off (Control table).
//!
//! One item per journal at `pk = "JOURNAL#{journal}"` (`global`, or a
//! portal id for a local journal), `sk = "CURSOR"`: the last offset whose
//! events are queued, the newest `occurredAt` read (the lag metric) and a
//! version. A write names the version it read: two readers that raced
//! cannot move the cursor back (the loser's write fails and it stops; what
//! it queued is harmless duplicates). The reader stores the offset only
//! after the events are queued, so a crash between the two re-reads and
//! never skips.
//!
//! Beside it, per portal (`pk = "JOURNAL#subs#{portal}"`): the fingerprint
//! of the journal subscriptions last made to match the portal's
//! connection and config, so that a pass calls HubSpot's subscriptions API
//! only when something changed.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use aws_sdk_dynamodb::types::AttributeValue;

use crate::dynamo::{sdk_error, DynamoStore};
use crate::error::StoreError;
use crate::memory::MemoryStore;

/// Control-table key prefix of journal cursors.
pub const JOURNAL_PK_PREFIX: &str = "JOURNAL#";
const CURSOR_SK: &str = "CURSOR";

/// A journal reader's position.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JournalCursor {
    /// The offset of the last file whose events are queued (`None`: start
    /// from the earliest retained file).
    pub offset: Option<String>,
    /// The newest event time read (epoch ms).
    pub newest_occurred_at_ms: Option<i64>,
    /// When the cursor was written (epoch ms).
    pub updated_at_ms: i64,
    /// Bumped by every write; 0 = never written.
    pub version: u64,
}

/// Storage of journal cursors.
pub trait JournalCursorStore: Send + Sync {
    /// The cursor of `journal`; a default (version 0) when never written.
    fn get_journal_cursor(
        &self,
        journal: &str,
    ) -> impl Future<Output = Result<JournalCursor, StoreError>> + Send;

    /// Writes `cursor` (its `version` is the one read) as version + 1.
    /// `Ok(false)`: another reader wrote first; nothing changed.
    fn put_journal_cursor(
        &self,
        journal: &str,
        cursor: &JournalCursor,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The fingerprint of the portal's journal subscriptions as last made.
    fn get_subscriptions_fingerprint(
        &self,
        portal: u64,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    /// Records (or with `None` forgets) the portal's fingerprint.
    fn put_subscriptions_fingerprint(
        &self,
        portal: u64,
        fingerprint: Option<&str>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

fn subscriptions_key(portal: u64) -> HashMap<String, AttributeValue> {
    key(&format!("subs#{portal}"))
}

fn key(journal: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (
            "pk".to_owned(),
            AttributeValue::S(format!("{JOURNAL_PK_PREFIX}{journal}")),
        ),
        ("sk".to_owned(), AttributeValue::S(CURSOR_SK.to_owned())),
    ])
}

fn number<T: std::str::FromStr>(
    item: &HashMap<String, AttributeValue>,
    name: &str,
) -> Result<Option<T>, StoreError> {
    match item.get(name) {
        None => Ok(None),
        Some(AttributeValue::N(n)) => n
            .parse()
            .map(Some)
            .map_err(|_| StoreError::InvalidInput(format!("journal cursor has a bad {name}"))),
        Some(_) => Err(StoreError::InvalidInput(format!(
            "journal cursor's {name} is not a number"
        ))),
    }
}

impl JournalCursorStore for DynamoStore {
    async fn get_journal_cursor(&self, journal: &str) -> Result<JournalCursor, StoreError> {
        self.stats().count_read();
        let out = self
            .client()
            .get_item()
            .table_name(&self.config().control_table)
            .set_key(Some(key(journal)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", e))?;
        let Some(item) = out.item else {
            return Ok(JournalCursor::default());
        };
        Ok(JournalCursor {
            offset: match item.get("journal_offset") {
                Some(AttributeValue::S(s)) => Some(s.clone()),
                _ => None,
            },
            newest_occurred_at_ms: number(&item, "newest_occurred_at_ms")?,
            updated_at_ms: number(&item, "updated_at_ms")?.unwrap_or(0),
            version: number(&item, "version")?.unwrap_or(0),
        })
    }

    async fn put_journal_cursor(
        &self,
        journal: &str,
        cursor: &JournalCursor,
    ) -> Result<bool, StoreError> {
        self.stats().count_write();
        let mut item = key(journal);
        if let Some(o) = &cursor.offset {
            item.insert("journal_offset".into(), AttributeValue::S(o.clone()));
        }
        if let Some(t) = cursor.newest_occurred_at_ms {
            item.insert(
                "newest_occurred_at_ms".into(),
                AttributeValue::N(t.to_string()),
            );
        }
        item.insert(
            "updated_at_ms".into(),
            AttributeValue::N(cursor.updated_at_ms.to_string()),
        );
        item.insert(
            "version".into(),
            AttributeValue::N((cursor.version + 1).to_string()),
        );
        let put = self
            .client()
            .put_item()
            .table_name(&self.config().control_table)
            .set_item(Some(item));
        let put = if cursor.version == 0 {
            put.condition_expression("attribute_not_exists(pk)")
        } else {
            put.condition_expression("version = :v")
                .expression_attribute_values(":v", AttributeValue::N(cursor.version.to_string()))
        };
        match put.send().await {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(sdk_error("PutItem", e)),
        }
    }

    async fn get_subscriptions_fingerprint(
        &self,
        portal: u64,
    ) -> Result<Option<String>, StoreError> {
        self.stats().count_read();
        let out = self
            .client()
            .get_item()
            .table_name(&self.config().control_table)
            .set_key(Some(subscriptions_key(portal)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", e))?;
        Ok(match out.item.as_ref().and_then(|i| i.get("fingerprint")) {
            Some(AttributeValue::S(f)) => Some(f.clone()),
            _ => None,
        })
    }

    async fn put_subscriptions_fingerprint(
        &self,
        portal: u64,
        fingerprint: Option<&str>,
    ) -> Result<(), StoreError> {
        self.stats().count_write();
        match fingerprint {
            Some(f) => {
                let mut item = subscriptions_key(portal);
                item.insert("fingerprint".into(), AttributeValue::S(f.to_owned()));
                self.client()
                    .put_item()
                    .table_name(&self.config().control_table)
                    .set_item(Some(item))
                    .send()
                    .await
                    .map_err(|e| sdk_error("PutItem", e))?;
            }
            None => {
                self.client()
                    .delete_item()
                    .table_name(&self.config().control_table)
                    .set_key(Some(subscriptions_key(portal)))
                    .send()
                    .await
                    .map_err(|e| sdk_error("DeleteItem", e))?;
            }
        }
        Ok(())
    }
}

/// The memory store's cursors and subscription fingerprints.
#[derive(Debug, Default, Clone)]
pub(crate) struct CursorItems(
    Arc<Mutex<BTreeMap<String, JournalCursor>>>,
    Arc<Mutex<BTreeMap<u64, String>>>,
);

impl JournalCursorStore for MemoryStore {
    async fn get_journal_cursor(&self, journal: &str) -> Result<JournalCursor, StoreError> {
        self.stats().count_read();
        let g = self
            .cursors
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Ok(g.get(journal).cloned().unwrap_or_default())
    }

    async fn put_journal_cursor(
        &self,
        journal: &str,
        cursor: &JournalCursor,
    ) -> Result<bool, StoreError> {
        self.stats().count_write();
        let mut g = self
            .cursors
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let current = g.get(journal).map_or(0, |c| c.version);
        if current != cursor.version {
            return Ok(false);
        }
        g.insert(
            journal.to_owned(),
            JournalCursor {
                version: cursor.version + 1,
                ..cursor.clone()
            },
        );
        Ok(true)
    }

    async fn get_subscriptions_fingerprint(
        &self,
        portal: u64,
    ) -> Result<Option<String>, StoreError> {
        self.stats().count_read();
        let g = self
            .cursors
            .1
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Ok(g.get(&portal).cloned())
    }

    async fn put_subscriptions_fingerprint(
        &self,
        portal: u64,
        fingerprint: Option<&str>,
    ) -> Result<(), StoreError> {
        self.stats().count_write();
        let mut g = self
            .cursors
            .1
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match fingerprint {
            Some(f) => g.insert(portal, f.to_owned()),
            None => g.remove(&portal),
        };
        Ok(())
    }
}
