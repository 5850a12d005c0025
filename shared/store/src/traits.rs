//! The narrow traits handlers are generic over (STYLE.md): a handler that
//! only reads connections takes `&impl ConnectionStore`, a worker takes
//! `&impl RecordStore`. Both [`crate::DynamoStore`] and
//! [`crate::MemoryStore`] implement them with the same semantics.
//!
//! Every returned future is `Send`, so the calls can run in spawned tasks.

use std::future::Future;

use chrono::{DateTime, Utc};

use futures::Stream;
use hubsync_mapping::ids::{ObjectId, ObjectType, PortalId};

use crate::error::StoreError;
use crate::model::{
    ArchiveOutcome, ArchiveReason, Connection, ConnectionStatus, DeleteOutcome, FieldsPage,
    IssuePage, Lease, MetaWithFields, PurgeOutcome, RecordKey, RecordPage, RecordWrite, StoredMeta,
    StoredRecord, TokenSwap, TokenUpdate, UpsertOutcome,
};

/// Connections of portals (Control table).
pub trait ConnectionStore: Send + Sync {
    /// The portal's connection, if any (strongly consistent).
    fn get_connection(
        &self,
        portal: PortalId,
    ) -> impl Future<Output = Result<Option<Connection>, StoreError>> + Send;

    /// Writes the whole connection (creates or replaces it).
    fn put_connection(
        &self,
        connection: &Connection,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Sets the status and its reason, and `updated_at` to now, on an
    /// existing connection ([`StoreError::ConnectionNotFound`] otherwise).
    /// Any status other than `Active` and `AwaitingSetup` also **removes the
    /// token ciphertexts**: a revoked or disconnected portal keeps no tokens
    /// (DESIGN.md flow 5); reactivation goes through `put_connection` with
    /// fresh tokens.
    fn set_connection_status(
        &self,
        portal: PortalId,
        status: ConnectionStatus,
        reason: Option<&str>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Every stored connection, in portal order (a Scan of the Control
    /// table; meant for the nightly fan-out over portals).
    fn list_connections(&self) -> impl Future<Output = Result<Vec<Connection>, StoreError>> + Send;

    /// The connections of one tenant of the application, in portal order:
    /// one Query on the Control table's tenant index, then a strongly
    /// consistent read of each (the index is eventually consistent; a
    /// connection it lists that no longer belongs to the tenant is left
    /// out).
    fn tenant_connections(
        &self,
        tenant: &str,
    ) -> impl Future<Output = Result<Vec<Connection>, StoreError>> + Send;

    /// Records that a webhook for the portal arrived at `at` (sets
    /// `last_webhook_at`, nothing else). [`StoreError::ConnectionNotFound`]
    /// when the portal has no connection: a delivery never creates one.
    fn record_webhook_seen(
        &self,
        portal: PortalId,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The primitives that make a token refresh happen once across many
/// concurrent workers (DESIGN.md "Tokens refresh once"): a lease, so only
/// one worker calls HubSpot's token endpoint, and a compare-and-swap of the
/// tokens, so a late refresher cannot overwrite a newer token.
///
/// Typical use on an expired or rejected token `T`:
/// 1. `try_acquire_lease(&token_refresh_lease(portal), invocation_id, ttl)`;
///    if `None`, wait briefly and re-read the connection (someone else is
///    refreshing);
/// 2. re-read the connection: if its access token is no longer `T`, use the
///    new one and release the lease;
/// 3. refresh at HubSpot, `swap_tokens(portal, T, &update)`, release.
pub trait TokenStore: Send + Sync {
    /// Stores new tokens (and `updated_at`) only if the connection exists,
    /// holds tokens (`Active` or `AwaitingSetup`), and its access-token ciphertext is still
    /// `expected_access_ciphertext`. [`StoreError::ConnectionNotFound`] when
    /// there is no connection.
    fn swap_tokens(
        &self,
        portal: PortalId,
        expected_access_ciphertext: &str,
        update: &TokenUpdate,
    ) -> impl Future<Output = Result<TokenSwap, StoreError>> + Send;

    /// Takes the named lease for `holder` until now + `ttl`, if it is free,
    /// lapsed, or already `holder`'s (renewal). `None` when someone else
    /// holds it. Lease items carry the Control table's TTL attribute, so
    /// lapsed ones are eventually removed.
    fn try_acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: std::time::Duration,
    ) -> impl Future<Output = Result<Option<Lease>, StoreError>> + Send;

    /// Gives a lease back; `false` when it was no longer `lease.holder`'s
    /// (lapsed and taken by another), in which case nothing is removed.
    fn release_lease(&self, lease: &Lease)
        -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// Records (Records table), guarded by their source version.
pub trait RecordStore: Send + Sync {
    /// Metadata of the stored records among `keys` (absent ones are left
    /// out), sorted by key. Duplicates are read once. Reads ≤ 100 keys per
    /// `BatchGetItem`, retrying unprocessed keys; strongly consistent.
    fn get_record_meta(
        &self,
        keys: &[RecordKey],
    ) -> impl Future<Output = Result<Vec<StoredMeta>, StoreError>> + Send {
        async move {
            Ok(self
                .get_record_meta_fields(keys, &[])
                .await?
                .into_iter()
                .map(|(meta, _)| meta)
                .collect())
        }
    }

    /// [`RecordStore::get_record_meta`] with the mapped `fields` of each
    /// record that it has (for carrying values forward): the same requests,
    /// the fields ride in the projection.
    fn get_record_meta_fields(
        &self,
        keys: &[RecordKey],
        fields: &[String],
    ) -> impl Future<Output = Result<Vec<MetaWithFields>, StoreError>> + Send;

    /// One whole record, if stored (strongly consistent).
    fn get_record(
        &self,
        key: &RecordKey,
    ) -> impl Future<Output = Result<Option<StoredRecord>, StoreError>> + Send;

    /// Writes the record if it is absent, or if the stored version is older
    /// and the record is not a privacy tombstone — one conditional write.
    /// The written record is active: an upsert un-archives (callers upsert
    /// only what HubSpot currently has). A refused write is classified as
    /// `Unchanged`, `Stale` or `Tombstoned`. Use [`crate::needs_write`]
    /// first to skip writes that would change nothing.
    fn upsert_record(
        &self,
        write: &RecordWrite,
    ) -> impl Future<Output = Result<UpsertOutcome, StoreError>> + Send;

    /// Archives a record, keeping its data: sets `archived`, `archived_at`
    /// (from `occurred_at_ms`), the reason, `merged_into`, and moves
    /// `source_version` to `occurred_at_ms`. Refused (`Stale` /
    /// `AlreadyArchived`) when the stored version is not older than the
    /// deletion, `NotFound` when absent, `Tombstoned` on a tombstone.
    fn archive_record(
        &self,
        key: &RecordKey,
        occurred_at_ms: i64,
        reason: ArchiveReason,
        merged_into: Option<ObjectId>,
    ) -> impl Future<Output = Result<ArchiveOutcome, StoreError>> + Send {
        self.archive_record_mapped(key, occurred_at_ms, reason, merged_into, None)
    }

    /// [`RecordStore::archive_record`], also storing the fingerprint of the
    /// mapping config that decided it (an out-of-scope archive), so that a
    /// later config change is told from drift.
    fn archive_record_mapped(
        &self,
        key: &RecordKey,
        occurred_at_ms: i64,
        reason: ArchiveReason,
        merged_into: Option<ObjectId>,
        mapping_fp: Option<&str>,
    ) -> impl Future<Output = Result<ArchiveOutcome, StoreError>> + Send;

    /// GDPR deletion: replaces the record, unconditionally, by a PII-free
    /// tombstone (key, `portal_id`, `object_type`, `object_id`,
    /// `privacy_deleted = true`, `purged_at` = the event's time,
    /// `source_version = i64::MAX`, `archived = true`). Creates it even
    /// when nothing was stored, so late events cannot resurrect the
    /// contact: later upserts and archives return `Tombstoned`.
    fn privacy_purge(
        &self,
        key: &RecordKey,
        occurred_at_ms: i64,
    ) -> impl Future<Output = Result<PurgeOutcome, StoreError>> + Send;

    /// Ops purge of an archived record. An active record is refused with
    /// [`StoreError::NotArchived`]; a tombstone is kept
    /// ([`DeleteOutcome::TombstoneKept`]).
    fn delete_record_permanently(
        &self,
        key: &RecordKey,
    ) -> impl Future<Output = Result<DeleteOutcome, StoreError>> + Send;

    /// One page (≤ `limit` records) of a portal's records of one type, in
    /// ascending id order, starting after `after` (exclusive). Includes
    /// archived records and tombstones (check `meta`). Eventually
    /// consistent.
    fn scan_page(
        &self,
        portal: PortalId,
        object_type: ObjectType,
        after: Option<ObjectId>,
        limit: u32,
    ) -> impl Future<Output = Result<RecordPage, StoreError>> + Send;

    /// [`RecordStore::scan_page`] in descending id order: ≤ `limit` records
    /// with ids below `before` (exclusive; `None`: from the highest). A
    /// full page carries a continuation (its last, lowest id). Eventually
    /// consistent.
    fn scan_page_descending(
        &self,
        portal: PortalId,
        object_type: ObjectType,
        before: Option<ObjectId>,
        limit: u32,
    ) -> impl Future<Output = Result<RecordPage, StoreError>> + Send;

    /// [`RecordStore::scan_page`] with only each record's metadata and the
    /// mapped `fields` it has (a projection: what finding the records that
    /// link to a deleted one costs). The same reads as a full page: a
    /// projection saves transfer, not capacity.
    fn scan_fields_page(
        &self,
        portal: PortalId,
        object_type: ObjectType,
        fields: &[String],
        after: Option<ObjectId>,
        limit: u32,
    ) -> impl Future<Output = Result<FieldsPage, StoreError>> + Send {
        async move {
            let page = self.scan_page(portal, object_type, after, limit).await?;
            let records = page
                .records
                .into_iter()
                .map(|r| {
                    let kept = r
                        .fields
                        .into_iter()
                        .filter(|(name, _)| fields.contains(name))
                        .collect();
                    (r.meta, kept)
                })
                .collect();
            Ok(FieldsPage {
                records,
                next_after: page.next_after,
            })
        }
    }

    /// One page (≤ `limit`) of a portal's records of one type that have
    /// sync issues, in id order after `after`: a Query of the sparse
    /// record-issues index, which holds only such records. Eventually
    /// consistent.
    fn record_issues(
        &self,
        portal: PortalId,
        object_type: ObjectType,
        after: Option<ObjectId>,
        limit: u32,
    ) -> impl Future<Output = Result<IssuePage, StoreError>> + Send;

    /// A paged scan of a whole partition in id order, for merge-joining
    /// against HubSpot's id-ordered listing. Memory stays flat: one page at
    /// a time.
    fn scan_portal_records(
        &self,
        portal: PortalId,
        object_type: ObjectType,
        page_size: u32,
    ) -> RecordScan<'_, Self>
    where
        Self: Sized,
    {
        RecordScan::new(self, portal, object_type, page_size)
    }

    /// [`RecordStore::scan_portal_records`] from the highest id down (for
    /// merge-joining against a search walked in descending id order).
    fn scan_portal_records_descending(
        &self,
        portal: PortalId,
        object_type: ObjectType,
        page_size: u32,
    ) -> RecordScan<'_, Self>
    where
        Self: Sized,
    {
        let mut scan = RecordScan::new(self, portal, object_type, page_size);
        scan.descending = true;
        scan
    }
}

/// A resumable, paged scan of one partition (see
/// [`RecordStore::scan_portal_records`]).
#[derive(Debug)]
pub struct RecordScan<'a, S> {
    store: &'a S,
    portal: PortalId,
    object_type: ObjectType,
    page_size: u32,
    /// The last id yielded (ascending: resume after it; descending:
    /// resume below it).
    after: Option<ObjectId>,
    descending: bool,
    done: bool,
}

impl<'a, S: RecordStore> RecordScan<'a, S> {
    /// A scan from the first id. `page_size` is at least 1.
    pub fn new(store: &'a S, portal: PortalId, object_type: ObjectType, page_size: u32) -> Self {
        Self {
            store,
            portal,
            object_type,
            page_size: page_size.max(1),
            after: None,
            descending: false,
            done: false,
        }
    }

    /// Resumes after `id` (a checkpoint from [`RecordScan::position`]);
    /// a descending scan resumes below it.
    pub fn resume_after(mut self, id: Option<ObjectId>) -> Self {
        self.after = id;
        self
    }

    /// The last id yielded (the checkpoint to resume from).
    pub fn position(&self) -> Option<ObjectId> {
        self.after
    }

    /// Whether the scan has reached the end.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The next non-empty page, or `None` at the end. After an error the
    /// scan stays where it was and the call can be retried.
    pub async fn next_page(&mut self) -> Result<Option<Vec<StoredRecord>>, StoreError> {
        while !self.done {
            let page = if self.descending {
                self.store
                    .scan_page_descending(self.portal, self.object_type, self.after, self.page_size)
                    .await?
            } else {
                self.store
                    .scan_page(self.portal, self.object_type, self.after, self.page_size)
                    .await?
            };
            match page.next_after {
                Some(next) => self.after = Some(next),
                None => {
                    self.done = true;
                    if let Some(last) = page.records.last() {
                        self.after = Some(last.meta.object_id);
                    }
                }
            }
            if !page.records.is_empty() {
                return Ok(Some(page.records));
            }
        }
        Ok(None)
    }

    /// The scan as a stream of pages; it ends after the first error.
    pub fn into_stream(
        self,
    ) -> impl Stream<Item = Result<Vec<StoredRecord>, StoreError>> + Send + 'a {
        futures::stream::try_unfold(self, |mut scan| async move {
            Ok(scan.next_page().await?.map(|page| (page, scan)))
        })
    }
}
