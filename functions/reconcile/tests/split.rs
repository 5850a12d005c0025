//! List + search runs against the simulator: the listing walks up, the
//! search walks down by `hs_object_id` windows, each id is diffed once,
//! changes on both halves are found, and the search index's lag never
//! archives a live record nor restores a deleted one.

use std::time::Duration;

use hubspot_sim::{props, ObjectType as SimType, SeedSpec};
use hubsync_hubspot::{ObjectId, ObjectType, PortalId, RateLimitConfig, StaticToken, WindowLimit};
use hubsync_local::compare::compare_portal;
use hubsync_local::reconcile::{
    run_job, sim_source, Engine, EngineConfig, HubSpotSource, JobMessage, MemoryJobQueue,
    Reconciler, SliceLimit,
};
use hubsync_store::{
    ArchiveReason, MemoryStore, RecordKey, RecordStore, RunReport, SyncJobKind, TypeCounters,
};

mod common;

use common::{assert_archived_as_deleted, assert_converged, Setup};

async fn setup(seed: SeedSpec, search_index_lag_ms: u64) -> anyhow::Result<Setup> {
    common::setup_with(seed, |c| c.search_index_lag_ms = search_index_lag_ms).await
}

/// Every run split (the portals here are small), small search pages so that
/// a run reads many windows.
fn split_config() -> EngineConfig {
    EngineConfig {
        checkpoint_every_pages: 3,
        lease_ttl: Duration::from_secs(2),
        search_split_min_records: Some(1),
        search_page_limit: 60,
        ..EngineConfig::default()
    }
}

type SimReconciler = Reconciler<HubSpotSource<StaticToken>, MemoryStore, MemoryJobQueue>;

fn reconciler(s: &Setup, config: EngineConfig) -> anyhow::Result<SimReconciler> {
    limited_reconciler(s, config, None)
}

fn limited_reconciler(
    s: &Setup,
    config: EngineConfig,
    limits: Option<RateLimitConfig>,
) -> anyhow::Result<SimReconciler> {
    Ok(Reconciler::new(
        Engine::new(
            sim_source(&s.sim.base_url(), &s.token, limits)?,
            s.store.clone(),
            config,
        ),
        MemoryJobQueue::new(),
        Duration::from_secs(1),
    ))
}

async fn run(rec: &SimReconciler, s: &Setup, kind: SyncJobKind) -> anyhow::Result<RunReport> {
    let job = JobMessage::new(kind, PortalId(s.portal), vec![]);
    Ok(run_job(rec, job, SliceLimit::unlimited()).await?.0)
}

fn counters(report: &RunReport, t: ObjectType) -> TypeCounters {
    report
        .types
        .iter()
        .find(|r| r.object_type == t)
        .map(|r| r.counters.clone())
        .unwrap_or_default()
}

fn sim_type(t: ObjectType) -> SimType {
    match t {
        ObjectType::Companies => SimType::Companies,
        ObjectType::Contacts => SimType::Contacts,
        ObjectType::Deals => SimType::Deals,
    }
}

fn key(s: &Setup, id: u64) -> RecordKey {
    RecordKey::new(PortalId(s.portal), ObjectType::Companies, ObjectId(id))
}

#[tokio::test]
async fn the_halves_meet_with_every_id_diffed_once_and_a_rerun_writes_nothing() -> anyhow::Result<()>
{
    let s = setup(
        SeedSpec {
            companies: 1_500,
            contacts: 1_200,
            deals: 300,
            ..SeedSpec::default()
        },
        0,
    )
    .await?;
    let rec = reconciler(&s, split_config())?;
    let first = run(&rec, &s, SyncJobKind::Initial).await?;
    for t in ObjectType::ALL {
        let c = counters(&first, t);
        let live = s.sim.state().count(s.portal, sim_type(t), false)? as u64;
        assert!(
            c.pages > 0 && c.search_pages > 0,
            "{t}: both halves read: {c:?}"
        );
        assert_eq!(c.listed, live, "{t}: every live id diffed exactly once");
        let skipped: u64 = c.skipped.values().sum();
        assert_eq!(c.created + skipped, live, "{t}: {c:?}");
        assert_eq!(c.confirm_reads, 0, "{t}: nothing was absent");
        assert_eq!(c.order_violations, 0);
    }
    assert_converged(&s).await?;

    let again = run(&rec, &s, SyncJobKind::Nightly).await?;
    for t in ObjectType::ALL {
        let c = counters(&again, t);
        assert_eq!(c.record_writes, 0, "{t}: a rerun writes no record: {c:?}");
        assert_eq!(c.unchanged, c.listed - c.skipped.values().sum::<u64>());
    }
    assert_eq!(again.drift, 0);
    s.sim.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn changes_on_both_halves_are_found_and_classified() -> anyhow::Result<()> {
    let s = setup(
        SeedSpec {
            companies: 1_200,
            ..SeedSpec::default()
        },
        0,
    )
    .await?;
    let rec = reconciler(&s, split_config())?;
    run(&rec, &s, SyncJobKind::Initial).await?;

    // Missed webhooks at both ends of the id space.
    let st = s.sim.state();
    let ids = st.object_ids(s.portal, SimType::Companies, false)?;
    let n = ids.len();
    let (low_deleted, high_deleted) = (ids[5], ids[n - 5]);
    let (survivor, merged) = (ids[n - 40], ids[n - 30]);
    let renamed = ids[n - 100];
    st.delete_object(s.portal, SimType::Companies, low_deleted)?;
    st.delete_object(s.portal, SimType::Companies, high_deleted)?;
    st.merge_objects(s.portal, SimType::Companies, survivor, merged, None)?;
    st.update_object(
        s.portal,
        SimType::Companies,
        renamed,
        props([("name", "Renamed Co")]),
    )?;
    let mut created = Vec::new();
    for i in 0..3 {
        created.push(st.create_object(
            s.portal,
            SimType::Companies,
            props([("name", format!("New {i}").as_str())]),
        )?);
    }

    // The burst's modification times run a few ms ahead of the clock.
    tokio::time::sleep(Duration::from_millis(100)).await;

    let report = run(&rec, &s, SyncJobKind::Nightly).await?;
    let c = counters(&report, ObjectType::Companies);
    assert!(c.search_pages > 0, "{c:?}");
    assert_eq!(c.archived_deleted, 2, "{c:?}");
    assert_eq!(c.archived_merged, 1, "{c:?}");
    assert_eq!(c.created, 3, "{c:?}");
    assert_eq!(
        c.updated + c.version_only,
        2,
        "renamed + merge survivor: {c:?}"
    );
    // The high one through a recycle-bin batch read (search half), the low
    // one through the listing's recycle-bin pages.
    for id in [low_deleted, high_deleted] {
        assert_archived_as_deleted(&s, id).await?;
    }
    let m = s.store.get_record(&key(&s, merged)).await?.expect("kept");
    assert_eq!(m.meta.archive_reason, Some(ArchiveReason::Merged));
    assert_converged(&s).await?;
    s.sim.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn the_index_lag_never_archives_a_live_record_nor_restores_a_deleted_one(
) -> anyhow::Result<()> {
    // Search sees writes a minute late; the seeded records are older.
    let s = setup(
        SeedSpec {
            companies: 900,
            ..SeedSpec::default()
        },
        60_000,
    )
    .await?;
    let split = reconciler(&s, split_config())?;
    run(&split, &s, SyncJobKind::Initial).await?;

    // Records created just now are not in the index yet (they have the
    // highest ids: the search half's first window). The webhooks brought
    // them into the store (here: a list-only run).
    let st = s.sim.state();
    let mut fresh = Vec::new();
    for i in 0..5 {
        fresh.push(st.create_object(
            s.portal,
            SimType::Companies,
            props([("name", format!("Fresh {i}").as_str())]),
        )?);
    }
    let list_only = reconciler(
        &s,
        EngineConfig {
            search_split_min_records: None,
            ..split_config()
        },
    )?;
    let synced = run(&list_only, &s, SyncJobKind::Nightly).await?;
    assert_eq!(counters(&synced, ObjectType::Companies).created, 5);
    // Records deleted just now: the index still shows them live. Two of
    // the deletions reached the store (their webhooks came), one did not.
    let ids = st.object_ids(s.portal, SimType::Companies, false)?;
    let n = ids.len();
    let (archived_a, archived_b, missed) = (ids[n - 20], ids[n - 21], ids[n - 22]);
    for id in [archived_a, archived_b, missed] {
        st.delete_object(s.portal, SimType::Companies, id)?;
    }
    for id in [archived_a, archived_b] {
        let at = chrono::Utc::now().timestamp_millis();
        s.store
            .archive_record_mapped(&key(&s, id), at, ArchiveReason::Deleted, None, None)
            .await?;
    }

    let report = run(&split, &s, SyncJobKind::Nightly).await?;
    let c = counters(&report, ObjectType::Companies);
    assert!(c.search_pages > 0, "{c:?}");
    // The fresh records were not in their search window: confirmed live
    // by a batch read, left as they are.
    assert!(c.confirm_reads >= 1, "{c:?}");
    for id in &fresh {
        let r = s.store.get_record(&key(&s, *id)).await?.expect("stored");
        assert!(!r.meta.archived, "{id} is live in HubSpot: never archived");
    }
    assert_eq!(c.archived_deleted + c.archived_merged, 0, "{c:?}");
    assert_eq!(c.unarchived, 0, "no restore on search evidence: {c:?}");
    for id in [archived_a, archived_b] {
        let r = s.store.get_record(&key(&s, id)).await?.expect("kept");
        assert!(r.meta.archived, "{id}: deleted in HubSpot, stays archived");
    }
    // The one deletion no webhook brought is left for the next run (the
    // index still shows it); nothing else differs.
    let d = compare_portal(s.sim.state(), &s.store, s.portal).await?;
    assert_eq!(d.should_be_archived, vec![(ObjectType::Companies, missed)]);
    assert!(d.missing.is_empty() && d.different.is_empty(), "{d:?}");

    // Once the index has caught up, the next run archives it.
    st.update_config(|c| c.search_index_lag_ms = 0);
    let next = run(&split, &s, SyncJobKind::Nightly).await?;
    assert_eq!(counters(&next, ObjectType::Companies).archived_deleted, 1);
    assert_converged(&s).await?;
    s.sim.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_split_run_hands_over_and_resumes_both_halves() -> anyhow::Result<()> {
    let s = setup(
        SeedSpec {
            companies: 1_000,
            ..SeedSpec::default()
        },
        0,
    )
    .await?;
    let rec = reconciler(&s, split_config())?;
    let job = JobMessage::new(
        SyncJobKind::Initial,
        PortalId(s.portal),
        vec![ObjectType::Companies],
    );
    // Three pages a slice: many invocations, each resuming both halves
    // from the checkpoint.
    let limit = SliceLimit {
        deadline: None,
        max_pages: Some(3),
    };
    let (report, drained) = run_job(&rec, job, limit).await?;
    assert!(drained.hand_overs >= 3, "{drained:?}");
    let c = counters(&report, ObjectType::Companies);
    assert!(c.search_pages > 0 && c.pages > 0, "{c:?}");
    let live = s.sim.state().count(s.portal, SimType::Companies, false)? as u64;
    assert_eq!(c.listed, live, "each id once across hand-overs: {c:?}");
    assert_eq!(c.created + c.skipped.values().sum::<u64>(), live);
    assert_converged(&s).await?;
    s.sim.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_rate_limited_run_confirms_search_absences_while_the_listing_waits_for_permits(
) -> anyhow::Result<()> {
    let s = setup(
        SeedSpec {
            companies: 2_500,
            ..SeedSpec::default()
        },
        0,
    )
    .await?;
    run(&reconciler(&s, split_config())?, &s, SyncJobKind::Initial).await?;
    // Deletions all over the id space: the search half confirms its
    // absences with batch reads on the list budget, which its listing
    // request (waiting for a permit of that budget) holds meanwhile.
    let st = s.sim.state();
    let ids = st.object_ids(s.portal, SimType::Companies, false)?;
    let deleted: Vec<u64> = ids.iter().copied().step_by(4).collect();
    for id in &deleted {
        st.delete_object(s.portal, SimType::Companies, *id)?;
    }
    // Modification times never repeat: a burst of changes runs ahead of
    // the clock (1 ms a change), and the index shows them once the clock is
    // there.
    tokio::time::sleep(Duration::from_millis(deleted.len() as u64 + 200)).await;
    // A tight list budget (every request waits) and a loose search one.
    let limits = RateLimitConfig {
        standard: WindowLimit {
            max_requests: 5,
            interval: Duration::from_millis(250),
        },
        search: WindowLimit {
            max_requests: 50,
            interval: Duration::from_millis(250),
        },
        guard: Duration::ZERO,
        ..RateLimitConfig::default()
    };
    let rec = limited_reconciler(&s, split_config(), Some(limits))?;
    let report = tokio::time::timeout(Duration::from_secs(60), run(&rec, &s, SyncJobKind::Nightly))
        .await
        .map_err(|_| anyhow::anyhow!("the run stalled"))??;
    let c = counters(&report, ObjectType::Companies);
    assert!(c.search_pages > 0 && c.confirm_reads > 0, "{c:?}");
    assert_eq!(c.archived_deleted, deleted.len() as u64, "{c:?}");
    assert_converged(&s).await?;
    s.sim.shutdown().await;
    Ok(())
}
