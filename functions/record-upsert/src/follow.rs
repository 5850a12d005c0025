//! Scopes that follow companies: when a company starts or stops syncing
//! (created, restored, archived out of scope), the contacts and deals
//! associated with it are read again and decided in the same invocation —
//! archived `out_of_scope` when no synced company is left, restored when
//! one comes back. HubSpot sends no webhook for the followers themselves
//! (their properties did not change), so without this they would wait for
//! the nightly reconciliation.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use hubsync_hubspot::{ObjectId, ObjectType, PortalId};
use hubsync_sync::{ContextLoader, LoadCounts, ObjectReader, SyncError, SyncStore};

use crate::plan::{Plan, ReadIntent};
use crate::stats::BatchStats;
use crate::worker::{PortalMapping, Worker};

impl<R: ObjectReader, S: SyncStore> Worker<R, S> {
    /// Re-reads and decides the followers of `companies` (boxed: it runs
    /// the group pipeline, which called it).
    pub(crate) fn follow_companies<'a>(
        &'a self,
        portal: PortalId,
        companies: &'a [ObjectId],
        mapping: &'a PortalMapping,
        stats: &'a mut BatchStats,
    ) -> Pin<Box<dyn Future<Output = Result<(), SyncError>> + Send + 'a>> {
        Box::pin(async move {
            let loader = ContextLoader::new(self.reader(), self.store());
            for follower in mapping.config.company_followers() {
                let mut counts = LoadCounts::default();
                let links = loader
                    .associations(
                        portal,
                        ObjectType::Companies,
                        &[follower],
                        companies,
                        &mut counts,
                    )
                    .await;
                stats.absorb_load(portal, counts);
                let Some(links) = links? else { continue };
                let now = hubsync_sync::now_ms();
                let read: BTreeMap<ObjectId, ReadIntent> = companies
                    .iter()
                    .filter_map(|c| links.get(follower, *c))
                    .flat_map(|l| l.iter().map(|(id, _)| *id))
                    .map(|id| {
                        (
                            id,
                            // Linked from the company's side: the
                            // follower's own stored links may predate it.
                            ReadIntent {
                                deleted_at: None,
                                last_event_at: now,
                                links_may_change: true,
                                lists_may_change: false,
                                journal_only: false,
                            },
                        )
                    })
                    .collect();
                if read.is_empty() {
                    continue;
                }
                stats.followed += read.len();
                let plan = Plan {
                    read,
                    ..Plan::default()
                };
                self.apply((portal, follower), &plan, mapping, stats)
                    .await?;
            }
            Ok(())
        })
    }
}
