//! The reconciliation engine against the simulator with the in-memory store
//! (fast): no-write reruns, hand-overs, crash resumption, the restore rule,
//! deleted vs merged, tombstones, HubSpot order violations, the run lock.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hubspot_sim::{props, ObjectType as SimType, SeedSpec};
use hubsync_hubspot::{
    BatchReadResult, HubSpotError, HubSpotObject, ObjectId, ObjectType, Page, PortalId, StaticToken,
};
use hubsync_local::compare::compare_portal;
use hubsync_local::reconcile::{
    run_job, sim_source, CrmSource, Engine, EngineConfig, HubSpotSource, JobMessage,
    MemoryJobQueue, Reconciler, SliceLimit, SliceOutcome,
};
use hubsync_store::{
    run_lock_name, ArchiveReason, JournalFixStore, MemoryStore, RecordKey, RecordStore,
    SyncJobKind, SyncStateStore, TokenStore,
};
use hubsync_sync::{
    BatchRead, CountObjects, ListPage, PortalStats, ReadAssociations, ReadListMembers, ReadOwners,
    ReadPipelines, ReadProperties, ReadRecordLists,
};

mod common;

use common::{assert_archived_as_deleted, assert_converged, Setup};

async fn setup(seed: SeedSpec) -> anyhow::Result<Setup> {
    common::setup_with(seed, |_| {}).await
}

fn config() -> EngineConfig {
    EngineConfig {
        checkpoint_every_pages: 2,
        lease_ttl: Duration::from_secs(2),
        ..EngineConfig::default()
    }
}

type SimReconciler<C> = Reconciler<C, MemoryStore, MemoryJobQueue>;

fn reconciler_with<C: CrmSource>(s: &Setup, source: C, config: EngineConfig) -> SimReconciler<C> {
    Reconciler::new(
        Engine::new(source, s.store.clone(), config),
        MemoryJobQueue::new(),
        Duration::from_secs(1),
    )
}

fn reconciler(s: &Setup) -> anyhow::Result<SimReconciler<HubSpotSource<StaticToken>>> {
    Ok(reconciler_with(
        s,
        sim_source(&s.sim.base_url(), &s.token, None)?,
        config(),
    ))
}

fn job(s: &Setup, kind: SyncJobKind) -> JobMessage {
    JobMessage::new(kind, PortalId(s.portal), vec![])
}

fn seed(companies: usize, contacts: usize, deals: usize) -> SeedSpec {
    SeedSpec {
        companies,
        contacts,
        deals,
        ..SeedSpec::default()
    }
}

#[tokio::test]
async fn initial_sync_creates_everything_and_a_rerun_writes_nothing() -> anyhow::Result<()> {
    let s = setup(seed(450, 600, 120)).await?;
    let rec = reconciler(&s)?;
    let (first, drained) =
        run_job(&rec, job(&s, SyncJobKind::Initial), SliceLimit::unlimited()).await?;
    assert_eq!(drained.hand_overs, 0);
    assert_eq!(first.types.len(), 3, "one report per type");
    let listed: u64 = first.types.iter().map(|t| t.counters.listed).sum();
    assert_eq!(listed, 1170);
    let created: u64 = first.types.iter().map(|t| t.counters.created).sum();
    let skipped: u64 = first
        .types
        .iter()
        .flat_map(|t| t.counters.skipped.values())
        .sum();
    assert_eq!(created + skipped, 1170);
    assert_eq!(first.estimated_total, Some(1170));
    assert_eq!(first.done, 1170);
    assert_converged(&s).await?;

    let before = s.store.stats().writes();
    let (second, _) = run_job(&rec, job(&s, SyncJobKind::Nightly), SliceLimit::unlimited()).await?;
    let writes = s.store.stats().writes() - before;
    let state_writes: u64 = second.types.iter().map(|t| t.counters.state_writes).sum();
    let record_writes: u64 = second.types.iter().map(|t| t.counters.record_writes).sum();
    assert_eq!(record_writes, 0, "{second:?}");
    assert_eq!(second.drift, 0);
    assert_eq!(
        writes, state_writes,
        "every store write of the rerun is a checkpoint, report or lease write"
    );
    let unchanged: u64 = second.types.iter().map(|t| t.counters.unchanged).sum();
    assert_eq!(unchanged, created);
    s.sim.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_run_reports_what_the_journal_repaired_since_the_previous_one() -> anyhow::Result<()> {
    let s = setup(seed(30, 20, 0)).await?;
    let rec = reconciler(&s)?;
    let portal = PortalId(s.portal);
    run_job(&rec, job(&s, SyncJobKind::Initial), SliceLimit::unlimited()).await?;
    // The worker counted repairs of events only the journal had.
    s.store
        .add_journal_fixes(portal, ObjectType::Companies, 4)
        .await?;
    s.store
        .add_journal_fixes(portal, ObjectType::Contacts, 2)
        .await?;
    let (nightly, _) =
        run_job(&rec, job(&s, SyncJobKind::Nightly), SliceLimit::unlimited()).await?;
    assert_eq!(
        (nightly.drift, nightly.journal_fixed),
        (0, 6),
        "{nightly:?}"
    );
    let fixed = |t: ObjectType| {
        nightly
            .types
            .iter()
            .find(|r| r.object_type == t)
            .map(|r| r.counters.journal_fixed)
    };
    assert_eq!(fixed(ObjectType::Companies), Some(4));
    assert_eq!(fixed(ObjectType::Contacts), Some(2));
    // Taken by the run: the next one reports only what came after.
    let (next, _) = run_job(&rec, job(&s, SyncJobKind::Nightly), SliceLimit::unlimited()).await?;
    assert_eq!(next.journal_fixed, 0);
    s.sim.shutdown().await;
    Ok(())
}

/// The store's records (metadata and fields) as comparable values.
async fn snapshot(store: &MemoryStore, portal: u64) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for t in ObjectType::ALL {
        let mut scan = store.scan_portal_records(PortalId(portal), t, 500);
        while let Some(page) = scan.next_page().await? {
            for r in page {
                // Versions are wall-clock times of each simulator's
                // changes: compare everything else.
                out.push(format!(
                    "{}/{} a{} {:?}",
                    t, r.meta.object_id, r.meta.archived, r.fields
                ));
            }
        }
    }
    Ok(out)
}

#[tokio::test]
async fn a_run_handing_over_every_two_pages_reaches_the_same_result() -> anyhow::Result<()> {
    let a = setup(seed(420, 530, 0)).await?;
    let b = setup(seed(420, 530, 0)).await?;
    for s in [&a, &b] {
        s.sim
            .state()
            .random_changes(s.portal, 150, Some(11), &[SimType::Companies])?;
    }
    let (whole, d1) = run_job(
        &reconciler(&a)?,
        job(&a, SyncJobKind::Initial),
        SliceLimit::unlimited(),
    )
    .await?;
    let limit = SliceLimit {
        deadline: None,
        max_pages: Some(2),
    };
    let (sliced, d2) = run_job(&reconciler(&b)?, job(&b, SyncJobKind::Initial), limit).await?;
    assert_eq!(d1.hand_overs, 0);
    assert!(d2.hand_overs >= 4, "hand-overs: {}", d2.hand_overs);
    let invocations: u32 = sliced.types.iter().map(|t| t.invocations).sum();
    assert_eq!(invocations as usize, d2.hand_overs + 3);
    assert_eq!(whole.drift, sliced.drift);
    assert_eq!(whole.done, sliced.done);
    let (sa, sb) = (
        snapshot(&a.store, a.portal).await?,
        snapshot(&b.store, b.portal).await?,
    );
    assert_eq!(sa.len(), sb.len());
    let first_difference = sa.iter().zip(&sb).find(|(x, y)| x != y);
    assert!(first_difference.is_none(), "{first_difference:?}");
    assert_converged(&b).await?;
    // A tiny time budget hands over too, and still converges.
    b.sim
        .state()
        .random_changes(b.portal, 100, Some(12), &[SimType::Companies])?;
    let rec = reconciler(&b)?;
    let tight = SliceLimit {
        deadline: Some(std::time::Instant::now()),
        max_pages: None,
    };
    // Deleted and restored companies also change contacts' `company_ids`
    // (the default map's associations): resync both.
    let (_, d3) = run_job(
        &rec,
        JobMessage::new(
            SyncJobKind::Resync,
            PortalId(b.portal),
            vec![ObjectType::Companies, ObjectType::Contacts],
        ),
        tight,
    )
    .await?;
    assert!(d3.hand_overs >= 4, "{d3:?}");
    assert_converged(&b).await?;
    a.sim.shutdown().await;
    b.sim.shutdown().await;
    Ok(())
}

/// Search and recycle-bin reads of a wrapping test source: the inner
/// source's.
macro_rules! delegate_search {
    ($wrapper:ident) => {
        impl<C: CrmSource> hubsync_sync::SearchObjects for $wrapper<C> {
            async fn search(
                &self,
                portal: PortalId,
                object_type: ObjectType,
                request: &hubsync_hubspot::SearchRequest,
            ) -> Result<hubsync_hubspot::SearchPage, HubSpotError> {
                self.inner.search(portal, object_type, request).await
            }
        }

        impl<C: CrmSource> hubsync_sync::BatchReadArchived for $wrapper<C> {
            async fn batch_read_archived(
                &self,
                portal: PortalId,
                object_type: ObjectType,
                ids: &[ObjectId],
            ) -> Result<BatchReadResult, HubSpotError> {
                self.inner
                    .batch_read_archived(portal, object_type, ids)
                    .await
            }
        }
    };
}

delegate_search!(HangAt);
delegate_search!(Unordered);

/// A source that never answers its `hang_at`-th live list call (a crash
/// mid-page, once the future is dropped).
struct HangAt<C> {
    inner: C,
    calls: Arc<AtomicU32>,
    hang_at: u32,
}

impl<C: CrmSource> ListPage for HangAt<C> {
    async fn list_page(
        &self,
        portal: PortalId,
        object_type: ObjectType,
        after: Option<&str>,
        limit: u32,
        properties: &[&str],
        archived: bool,
    ) -> Result<Page<HubSpotObject>, HubSpotError> {
        if !archived && self.calls.fetch_add(1, Ordering::SeqCst) + 1 == self.hang_at {
            std::future::pending::<()>().await;
        }
        self.inner
            .list_page(portal, object_type, after, limit, properties, archived)
            .await
    }
}

impl<C: CrmSource> BatchRead for HangAt<C> {
    async fn batch_read(
        &self,
        portal: PortalId,
        object_type: ObjectType,
        ids: &[ObjectId],
        properties: &[&str],
    ) -> Result<BatchReadResult, HubSpotError> {
        self.inner
            .batch_read(portal, object_type, ids, properties)
            .await
    }
}

impl<C: CrmSource> CountObjects for HangAt<C> {
    async fn count(
        &self,
        portal: PortalId,
        object_type: ObjectType,
    ) -> Result<Option<u64>, HubSpotError> {
        self.inner.count(portal, object_type).await
    }
}

impl<C: CrmSource> ReadPipelines for HangAt<C> {
    async fn pipelines(
        &self,
        portal: PortalId,
    ) -> Result<hubsync_mapping::Pipelines, HubSpotError> {
        self.inner.pipelines(portal).await
    }
}

impl<C: CrmSource> ReadOwners for HangAt<C> {
    async fn owners(
        &self,
        portal: PortalId,
    ) -> Result<hubsync_local::reconcile::Owners, HubSpotError> {
        self.inner.owners(portal).await
    }
}

impl<C: CrmSource> ReadProperties for HangAt<C> {
    async fn properties(
        &self,
        portal: PortalId,
        object_type: ObjectType,
    ) -> Result<Vec<hubsync_mapping::PropertyDefinition>, HubSpotError> {
        self.inner.properties(portal, object_type).await
    }
}

impl<C: CrmSource> ReadListMembers for HangAt<C> {
    async fn list_members(
        &self,
        portal: PortalId,
        list_id: &str,
    ) -> Result<Vec<ObjectId>, HubSpotError> {
        self.inner.list_members(portal, list_id).await
    }
}

impl<C: CrmSource> ReadAssociations for HangAt<C> {
    async fn associations(
        &self,
        portal: PortalId,
        from: ObjectType,
        to: ObjectType,
        ids: &[ObjectId],
    ) -> Result<Vec<hubsync_hubspot::AssociationLink>, HubSpotError> {
        self.inner.associations(portal, from, to, ids).await
    }
}

impl<C: CrmSource> ReadRecordLists for HangAt<C> {
    async fn record_lists(
        &self,
        portal: PortalId,
        object_type: ObjectType,
        id: ObjectId,
    ) -> Result<Vec<String>, HubSpotError> {
        self.inner.record_lists(portal, object_type, id).await
    }
}

impl<C: CrmSource> PortalStats for HangAt<C> {
    fn portal_stats(&self, portal: PortalId) -> hubsync_hubspot::ClientStats {
        self.inner.portal_stats(portal)
    }
}

#[tokio::test]
async fn a_run_killed_mid_page_resumes_from_its_checkpoint() -> anyhow::Result<()> {
    let s = setup(seed(1000, 0, 0)).await?;
    let calls = Arc::new(AtomicU32::new(0));
    let crashing = reconciler_with(
        &s,
        HangAt {
            inner: sim_source(&s.sim.base_url(), &s.token, None)?,
            calls: calls.clone(),
            hang_at: 6,
        },
        config(),
    );
    let job = JobMessage::new(
        SyncJobKind::Initial,
        PortalId(s.portal),
        vec![ObjectType::Companies],
    );
    let killed = tokio::time::timeout(
        Duration::from_millis(1500),
        crashing.handle_job(&job, "doomed", SliceLimit::unlimited()),
    )
    .await;
    assert!(killed.is_err(), "the slice hung and was killed");
    let ck = s
        .store
        .get_checkpoint(PortalId(s.portal), ObjectType::Companies)
        .await?
        .expect("a checkpoint was stored before the crash");
    assert!(!ck.finished);
    // Checkpoints every 2 pages; the 6th page hung (5 fetched, 4 checkpointed).
    assert_eq!(ck.counters.pages, 4, "{ck:?}");
    assert!(ck.hubspot_after.is_some());
    let records_before = s.store.stats().writes();

    // While the dead invocation's lease lasts, another job joins (refused).
    let rec = reconciler(&s)?;
    let busy = rec
        .engine()
        .run_slice(
            &job,
            ObjectType::Companies,
            "retry-1",
            SliceLimit::unlimited(),
        )
        .await?;
    assert_eq!(busy, SliceOutcome::Busy);

    // After the lease lapses, the retry resumes at the checkpoint.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let done = rec
        .engine()
        .run_slice(
            &job,
            ObjectType::Companies,
            "retry-2",
            SliceLimit::unlimited(),
        )
        .await?;
    let SliceOutcome::Finished(report) = done else {
        panic!("expected the run to finish: {done:?}");
    };
    assert_eq!(report.run_id, ck.run_id, "the same run continued");
    assert_eq!(report.invocations, 2);
    // 10 pages in all: 4 before the checkpoint, 6 after it (the 5th page,
    // fetched before the crash but not checkpointed, is read again).
    assert_eq!(report.counters.pages, 10);
    assert_eq!(report.counters.listed, 1000);
    assert_eq!(report.counters.created, 900);
    assert_eq!(
        report.counters.unchanged, 100,
        "the redone page wrote nothing"
    );
    assert!(s.store.stats().writes() - records_before < 700);
    assert_converged(&s).await?;
    s.sim.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn deletions_merges_out_of_scope_and_tombstones_are_classified() -> anyhow::Result<()> {
    let s = setup(seed(250, 150, 0)).await?;
    let rec = reconciler(&s)?;
    run_job(&rec, job(&s, SyncJobKind::Initial), SliceLimit::unlimited()).await?;
    let st = s.sim.state();
    let companies = st.object_ids(s.portal, SimType::Companies, false)?;
    let contacts = st.object_ids(s.portal, SimType::Contacts, false)?;
    let (deleted, survivor, merged) = (companies[10], companies[20], companies[30]);
    st.delete_object(s.portal, SimType::Companies, deleted)?;
    st.merge_objects(s.portal, SimType::Companies, survivor, merged, None)?;
    let (no_email, purged) = (contacts[3], contacts[4]);
    st.update_object(
        s.portal,
        SimType::Contacts,
        no_email,
        props([("email", "")]),
    )?;
    let purged_key = RecordKey::new(PortalId(s.portal), ObjectType::Contacts, ObjectId(purged));
    s.store.privacy_purge(&purged_key, 1).await?;

    let (report, _) = run_job(&rec, job(&s, SyncJobKind::Nightly), SliceLimit::unlimited()).await?;
    let c = |t: ObjectType| {
        report
            .types
            .iter()
            .find(|r| r.object_type == t)
            .map(|r| r.counters.clone())
            .unwrap_or_default()
    };
    let companies_c = c(ObjectType::Companies);
    assert_eq!(companies_c.archived_deleted, 1, "{companies_c:?}");
    assert_eq!(companies_c.archived_merged, 1, "{companies_c:?}");
    assert_eq!(
        companies_c.updated + companies_c.version_only,
        1,
        "the merge survivor"
    );
    assert_eq!(companies_c.confirm_reads, 1);
    let contacts_c = c(ObjectType::Contacts);
    assert_eq!(contacts_c.archived_out_of_scope, 1, "{contacts_c:?}");
    assert_eq!(contacts_c.tombstoned, 1);
    // Contacts of the deleted and merged companies lost them from their
    // `company_ids` (content HubSpot does not version): drift too.
    assert_eq!(
        report.drift,
        3 + companies_c.updated + contacts_c.updated,
        "{contacts_c:?}"
    );

    let key = |id: u64| RecordKey::new(PortalId(s.portal), ObjectType::Companies, ObjectId(id));
    assert_archived_as_deleted(&s, deleted).await?;
    let m = s.store.get_record(&key(merged)).await?.expect("kept");
    assert_eq!(m.meta.archive_reason, Some(ArchiveReason::Merged));
    let t = s.store.get_record(&purged_key).await?.expect("tombstone");
    assert!(t.meta.privacy_deleted && t.fields.is_empty());
    // Everything else equals HubSpot; the purged contact stays purged.
    let d = compare_portal(s.sim.state(), &s.store, s.portal).await?;
    assert_eq!(d.missing, vec![(ObjectType::Contacts, purged)]);
    assert!(d.different.is_empty() && d.should_be_archived.is_empty());
    s.sim.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn restore_rule_revives_records_listed_after_their_archive_only() -> anyhow::Result<()> {
    let s = setup(seed(30, 0, 0)).await?;
    let rec = reconciler(&s)?;
    run_job(&rec, job(&s, SyncJobKind::Initial), SliceLimit::unlimited()).await?;
    let ids = s
        .sim
        .state()
        .object_ids(s.portal, SimType::Companies, false)?;
    let key = |id: u64| RecordKey::new(PortalId(s.portal), ObjectType::Companies, ObjectId(id));
    // Archived after HubSpot's version, but before the listing: HubSpot
    // lists it live without a newer version (a restore that did not bump
    // the version, or a wrong archive): restored.
    let old = s.store.get_record_meta(&[key(ids[0])]).await?[0].clone();
    let archived_at = chrono::Utc::now().timestamp_millis() - 10_000;
    assert!(archived_at > old.source_version);
    s.store
        .archive_record(&key(ids[0]), archived_at, ArchiveReason::Deleted, None)
        .await?;
    // Archived at a time after the listing starts: the listing may predate
    // the deletion, so it is left alone.
    let future = chrono::Utc::now().timestamp_millis() + 600_000;
    s.store
        .archive_record(&key(ids[1]), future, ArchiveReason::Deleted, None)
        .await?;

    let (report, _) = run_job(
        &rec,
        JobMessage::new(
            SyncJobKind::Nightly,
            PortalId(s.portal),
            vec![ObjectType::Companies],
        ),
        SliceLimit::unlimited(),
    )
    .await?;
    let c = &report.types[0].counters;
    assert_eq!(c.unarchived, 1, "{c:?}");
    assert_eq!(c.restored_same_version, 1);
    assert_eq!(c.deferred_restores, 1);
    let restored = s.store.get_record(&key(ids[0])).await?.expect("stored");
    assert!(!restored.meta.archived);
    assert_eq!(restored.meta.source_version, archived_at + 1);
    // A late retry of the old deletion cannot archive it again.
    let again = s
        .store
        .archive_record(&key(ids[0]), archived_at, ArchiveReason::Deleted, None)
        .await?;
    assert_eq!(again, hubsync_store::ArchiveOutcome::Stale);
    assert!(
        s.store
            .get_record(&key(ids[1]))
            .await?
            .expect("stored")
            .meta
            .archived
    );
    // The next run changes nothing for the restored record.
    let (next, _) = run_job(
        &rec,
        JobMessage::new(
            SyncJobKind::Nightly,
            PortalId(s.portal),
            vec![ObjectType::Companies],
        ),
        SliceLimit::unlimited(),
    )
    .await?;
    assert_eq!(next.types[0].counters.record_writes, 0);
    s.sim.shutdown().await;
    Ok(())
}

/// A source whose second live page comes back reversed (ids out of order).
struct Unordered<C> {
    inner: C,
    calls: Arc<AtomicU32>,
}

impl<C: CrmSource> ListPage for Unordered<C> {
    async fn list_page(
        &self,
        portal: PortalId,
        object_type: ObjectType,
        after: Option<&str>,
        limit: u32,
        properties: &[&str],
        archived: bool,
    ) -> Result<Page<HubSpotObject>, HubSpotError> {
        let mut page = self
            .inner
            .list_page(portal, object_type, after, limit, properties, archived)
            .await?;
        if !archived && self.calls.fetch_add(1, Ordering::SeqCst) == 1 {
            page.results.reverse();
        }
        Ok(page)
    }
}

impl<C: CrmSource> BatchRead for Unordered<C> {
    async fn batch_read(
        &self,
        portal: PortalId,
        object_type: ObjectType,
        ids: &[ObjectId],
        properties: &[&str],
    ) -> Result<BatchReadResult, HubSpotError> {
        self.inner
            .batch_read(portal, object_type, ids, properties)
            .await
    }
}

impl<C: CrmSource> CountObjects for Unordered<C> {
    async fn count(
        &self,
        portal: PortalId,
        object_type: ObjectType,
    ) -> Result<Option<u64>, HubSpotError> {
        self.inner.count(portal, object_type).await
    }
}

impl<C: CrmSource> ReadPipelines for Unordered<C> {
    async fn pipelines(
        &self,
        portal: PortalId,
    ) -> Result<hubsync_mapping::Pipelines, HubSpotError> {
        self.inner.pipelines(portal).await
    }
}

impl<C: CrmSource> ReadOwners for Unordered<C> {
    async fn owners(
        &self,
        portal: PortalId,
    ) -> Result<hubsync_local::reconcile::Owners, HubSpotError> {
        self.inner.owners(portal).await
    }
}

impl<C: CrmSource> ReadProperties for Unordered<C> {
    async fn properties(
        &self,
        portal: PortalId,
        object_type: ObjectType,
    ) -> Result<Vec<hubsync_mapping::PropertyDefinition>, HubSpotError> {
        self.inner.properties(portal, object_type).await
    }
}

impl<C: CrmSource> ReadListMembers for Unordered<C> {
    async fn list_members(
        &self,
        portal: PortalId,
        list_id: &str,
    ) -> Result<Vec<ObjectId>, HubSpotError> {
        self.inner.list_members(portal, list_id).await
    }
}

impl<C: CrmSource> ReadAssociations for Unordered<C> {
    async fn associations(
        &self,
        portal: PortalId,
        from: ObjectType,
        to: ObjectType,
        ids: &[ObjectId],
    ) -> Result<Vec<hubsync_hubspot::AssociationLink>, HubSpotError> {
        self.inner.associations(portal, from, to, ids).await
    }
}

impl<C: CrmSource> ReadRecordLists for Unordered<C> {
    async fn record_lists(
        &self,
        portal: PortalId,
        object_type: ObjectType,
        id: ObjectId,
    ) -> Result<Vec<String>, HubSpotError> {
        self.inner.record_lists(portal, object_type, id).await
    }
}

impl<C: CrmSource> PortalStats for Unordered<C> {
    fn portal_stats(&self, portal: PortalId) -> hubsync_hubspot::ClientStats {
        self.inner.portal_stats(portal)
    }
}

#[tokio::test]
async fn hubspot_listing_out_of_order_falls_back_to_lookups_and_still_converges(
) -> anyhow::Result<()> {
    let s = setup(seed(500, 0, 0)).await?;
    let plain = reconciler(&s)?;
    run_job(
        &plain,
        job(&s, SyncJobKind::Initial),
        SliceLimit::unlimited(),
    )
    .await?;
    let st = s.sim.state();
    let ids = st.object_ids(s.portal, SimType::Companies, false)?;
    st.delete_object(s.portal, SimType::Companies, ids[450])?;
    st.update_object(
        s.portal,
        SimType::Companies,
        ids[150],
        props([("name", "Renamed")]),
    )?;
    st.merge_objects(s.portal, SimType::Companies, ids[160], ids[170], None)?;

    let rec = reconciler_with(
        &s,
        Unordered {
            inner: sim_source(&s.sim.base_url(), &s.token, None)?,
            calls: Arc::new(AtomicU32::new(0)),
        },
        config(),
    );
    let limit = SliceLimit {
        deadline: None,
        max_pages: Some(3),
    };
    let (report, drained) = run_job(
        &rec,
        JobMessage::new(
            SyncJobKind::Nightly,
            PortalId(s.portal),
            vec![ObjectType::Companies],
        ),
        limit,
    )
    .await?;
    assert!(drained.hand_overs > 0);
    let c = &report.types[0].counters;
    assert_eq!(c.order_violations, 1, "{c:?}");
    assert_eq!(c.archived_deleted, 1);
    assert_eq!(c.archived_merged, 1);
    assert_eq!(c.updated + c.version_only, 2, "renamed + merge survivor");
    assert!(c.confirm_reads >= 3, "the rest of the store was confirmed");
    assert_converged(&s).await?;
    s.sim.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_second_job_while_a_run_holds_the_lock_is_refused_and_a_duplicate_is_done(
) -> anyhow::Result<()> {
    let s = setup(seed(20, 0, 0)).await?;
    let rec = reconciler(&s)?;
    let name = run_lock_name(PortalId(s.portal), ObjectType::Companies);
    let lease = s
        .store
        .try_acquire_lease(&name, "someone-else", Duration::from_secs(60))
        .await?
        .expect("free");
    let mut nightly = JobMessage::new(
        SyncJobKind::Nightly,
        PortalId(s.portal),
        vec![ObjectType::Companies],
    );
    nightly.run_id = Some("0000000000001-nightly".into());
    let out = rec
        .engine()
        .run_slice(
            &nightly,
            ObjectType::Companies,
            "me",
            SliceLimit::unlimited(),
        )
        .await?;
    assert_eq!(out, SliceOutcome::Busy);
    s.store.release_lease(&lease).await?;
    let out = rec
        .engine()
        .run_slice(
            &nightly,
            ObjectType::Companies,
            "me",
            SliceLimit::unlimited(),
        )
        .await?;
    assert!(matches!(out, SliceOutcome::Finished(_)), "{out:?}");
    // The same firing delivered twice: the run is already done.
    let out = rec
        .engine()
        .run_slice(
            &nightly,
            ObjectType::Companies,
            "me-2",
            SliceLimit::unlimited(),
        )
        .await?;
    assert_eq!(
        out,
        SliceOutcome::AlreadyDone {
            run_id: "0000000000001-nightly".into()
        }
    );
    s.sim.shutdown().await;
    Ok(())
}

/// A mapping config change (a new rule, a narrower scope) rewrites and
/// archives records as `remapped`, never as drift — and back again; a change
/// the webhooks missed in the same run is still drift.
#[tokio::test]
async fn config_changes_are_remapped_not_drift_but_missed_changes_are() -> anyhow::Result<()> {
    use hubsync_local::reconcile::{MappingConfig, Rule, ScopeFilter, Transform};
    use hubsync_store::MappingConfigStore;
    let s = setup(seed(0, 0, 200)).await?;
    let rec = reconciler(&s)?;
    run_job(&rec, job(&s, SyncJobKind::Initial), SliceLimit::unlimited()).await?;
    let st = s.sim.state();
    let deals = st.list_objects(s.portal, SimType::Deals, false)?;
    let id = |o: &hubspot_sim::SimObject| -> u64 { o.id.parse().unwrap() };
    let (default, other): (Vec<_>, Vec<_>) = deals
        .iter()
        .partition(|o| o.prop("pipeline") == Some("default"));
    assert!(
        default.len() > 10 && other.len() > 10,
        "seed has both pipelines"
    );
    let deals_of = |r: &hubsync_store::RunReport| {
        r.types
            .iter()
            .find(|t| t.object_type == ObjectType::Deals)
            .cloned()
            .unwrap()
    };

    // Two changes whose webhooks never arrived: a deal renamed, a deal
    // moved out of the pipeline.
    let (renamed, moved) = (id(default[0]), id(default[1]));
    st.update_object(
        s.portal,
        SimType::Deals,
        renamed,
        props([("dealname", "Renamed")]),
    )?;
    st.update_object(
        s.portal,
        SimType::Deals,
        moved,
        props([("pipeline", other[0].prop("pipeline").unwrap())]),
    )?;

    // The admin adds a field and narrows deals to the default pipeline.
    let mut config = MappingConfig::default();
    let d = config.object_mut(ObjectType::Deals);
    d.rules
        .push(Rule::new("stage_label", &["dealstage"], Transform::String));
    d.scope.push(ScopeFilter {
        property: "pipeline".into(),
        values: vec!["default".into()],
    });
    s.store
        .put_mapping_config(PortalId(s.portal), &config)
        .await?;
    let (report, _) = run_job(&rec, job(&s, SyncJobKind::Nightly), SliceLimit::unlimited()).await?;
    let r = deals_of(&report);
    assert_eq!(r.drift, 2, "{:?}", r.counters);
    assert_eq!(report.drift, 2);
    assert_eq!(r.counters.updated, 1);
    assert_eq!(r.counters.archived_out_of_scope, 1);
    // Every other deal: the new field, or archived out of scope.
    assert_eq!(r.counters.remapped, deals.len() as u64 - 2);
    for o in &other {
        let key = RecordKey::new(PortalId(s.portal), ObjectType::Deals, ObjectId(id(o)));
        let rec = s.store.get_record(&key).await?.unwrap();
        assert_eq!(rec.meta.archive_reason, Some(ArchiveReason::OutOfScope));
    }
    assert_converged(&s).await?;

    // Nothing changed since: nothing written, no drift.
    let (again, _) = run_job(&rec, job(&s, SyncJobKind::Nightly), SliceLimit::unlimited()).await?;
    let r = deals_of(&again);
    assert_eq!(
        (r.drift, r.counters.remapped, r.counters.record_writes),
        (0, 0, 0)
    );

    // Back to the defaults: the deals come back into scope — remapped,
    // the field is gone — not drift.
    s.store.delete_mapping_config(PortalId(s.portal)).await?;
    let (back, _) = run_job(&rec, job(&s, SyncJobKind::Nightly), SliceLimit::unlimited()).await?;
    let r = deals_of(&back);
    assert_eq!(r.drift, 0, "{:?}", r.counters);
    assert_eq!(r.counters.unarchived, 0);
    assert_eq!(r.counters.remapped, deals.len() as u64);
    assert_converged(&s).await?;
    s.sim.shutdown().await;
    Ok(())
}

/// The run fills the portal's owners cache (the default companies map owner
/// emails), and a later run with the same owners writes no cache item.
#[tokio::test]
async fn the_run_fills_the_owners_cache_and_rewrites_it_only_when_owners_change(
) -> anyhow::Result<()> {
    use hubsync_store::OwnersCacheStore;
    let s = setup(seed(150, 0, 0)).await?;
    let rec = reconciler(&s)?;
    let companies = |r: &hubsync_store::RunReport| {
        r.types
            .iter()
            .find(|t| t.object_type == ObjectType::Companies)
            .cloned()
            .unwrap()
    };
    let (first, _) = run_job(&rec, job(&s, SyncJobKind::Initial), SliceLimit::unlimited()).await?;
    assert_eq!(companies(&first).counters.owner_refreshes, 1);
    let cached = s.store.get_owners_cache(PortalId(s.portal)).await?.unwrap();
    let sim_owners = s.sim.state().owners(s.portal)?;
    assert!(!sim_owners.is_empty());
    assert_eq!(cached.owners.len(), sim_owners.len());
    for o in &sim_owners {
        assert_eq!(
            cached.owners.get(&o.id).and_then(|i| i.email.as_deref()),
            Some(o.email.as_str())
        );
    }
    assert_converged(&s).await?;

    let (second, _) = run_job(&rec, job(&s, SyncJobKind::Nightly), SliceLimit::unlimited()).await?;
    let c = companies(&second);
    assert_eq!(
        (c.counters.owner_refreshes, c.counters.record_writes),
        (0, 0)
    );
    let again = s.store.get_owners_cache(PortalId(s.portal)).await?.unwrap();
    assert_eq!(again.refreshed_at_ms, cached.refreshed_at_ms);
    s.sim.shutdown().await;
    Ok(())
}
