//! Links HubSpot does not announce. When a record is deleted, merged away
//! or privacy-deleted, HubSpot drops its associations (or, for a merge,
//! moves them to the survivor) but says nothing about the records on the
//! other end: no `associationChange` webhook reaches them and, as far as
//! HubSpot documents it, no journal entry either. A contact would keep
//! naming a deleted company until the nightly reconciliation.
//!
//! So, once a group has archived or purged records, the worker looks in
//! the store for the records of every type whose association fields point
//! at that type and that name one of the gone ids, and re-reads them with
//! their associations in the same invocation. HubSpot is not asked who
//! linked to a record it no longer has (it cannot say); the store is.
//!
//! Cost: a Query of each linking type's partition projected to the
//! metadata and the linking fields (DynamoDB reads, no HubSpot call), then
//! the usual batch reads for the records that match. Bounded: after
//! [`RELINK_SCAN_MAX`] records of one type the rest of the partition is
//! left to the nightly run (`relinks_deferred`, logged).

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;

use hubsync_hubspot::{ObjectId, ObjectType, PortalId};
use hubsync_mapping::{fields_linking_to, names_any};
use hubsync_sync::{ObjectReader, SyncError, SyncStore};

use crate::plan::{Plan, ReadIntent};
use crate::stats::BatchStats;
use crate::worker::{PortalMapping, Worker};

/// Records per Query page (DynamoDB stops earlier at 1 MB read).
const RELINK_PAGE: u32 = 1_000;

/// Records of one linking type looked through per group, at most.
pub const RELINK_SCAN_MAX: usize = 100_000;

impl<R: ObjectReader, S: SyncStore> Worker<R, S> {
    /// Re-reads the live records that name one of `gone` (records of
    /// `gone_type` HubSpot no longer has) in an association field (boxed:
    /// it runs the group pipeline, which called it).
    pub(crate) fn relink<'a>(
        &'a self,
        portal: PortalId,
        gone_type: ObjectType,
        gone: &'a BTreeSet<ObjectId>,
        mapping: &'a PortalMapping,
        stats: &'a mut BatchStats,
    ) -> Pin<Box<dyn Future<Output = Result<(), SyncError>> + Send + 'a>> {
        Box::pin(async move {
            for linker in ObjectType::ALL {
                let fields = fields_linking_to(mapping.config.object(linker), gone_type);
                if fields.is_empty() || gone.is_empty() {
                    continue;
                }
                let read = self.naming(portal, linker, &fields, gone, stats).await?;
                if read.is_empty() {
                    continue;
                }
                stats.relinked += read.len();
                let plan = Plan {
                    read,
                    ..Plan::default()
                };
                self.apply((portal, linker), &plan, mapping, stats).await?;
            }
            Ok(())
        })
    }

    /// The live records of `linker` whose `fields` name one of `gone`, as
    /// reads that take their associations from HubSpot.
    async fn naming(
        &self,
        portal: PortalId,
        linker: ObjectType,
        fields: &[String],
        gone: &BTreeSet<ObjectId>,
        stats: &mut BatchStats,
    ) -> Result<BTreeMap<ObjectId, ReadIntent>, SyncError> {
        let now = hubsync_sync::now_ms();
        let mut read = BTreeMap::new();
        let mut after = None;
        let mut scanned = 0usize;
        loop {
            let page = self
                .store()
                .scan_fields_page(portal, linker, fields, after, RELINK_PAGE)
                .await?;
            scanned += page.records.len();
            for (meta, values) in &page.records {
                if meta.archived || meta.privacy_deleted || !names_any(values, gone) {
                    continue;
                }
                read.insert(
                    meta.object_id,
                    ReadIntent {
                        last_event_at: now,
                        links_may_change: true,
                        ..ReadIntent::default()
                    },
                );
            }
            after = page.next_after;
            if after.is_none() {
                break;
            }
            if scanned >= RELINK_SCAN_MAX {
                stats.relinks_deferred += 1;
                tracing::warn!(portal = %portal, object_type = %linker, scanned,
                    "links to deleted records: partition too large to look through now; the nightly run repairs the rest");
                break;
            }
        }
        Ok(read)
    }
}
