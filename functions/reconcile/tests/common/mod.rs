//! What the engine's simulator tests share: a simulator portal with an
//! in-memory store, and the record-by-record convergence check.

use hubspot_sim::{ObjectType as SimType, SeedSpec, SimConfig, Simulator};
use hubsync_hubspot::{ObjectId, ObjectType, PortalId};
use hubsync_local::compare::{compare_portal, describe};
use hubsync_local::reconcile::{sim_portal, SimPortal};
use hubsync_store::{ArchiveReason, MemoryStore, RecordKey, RecordStore};

pub struct Setup {
    pub sim: Simulator,
    pub store: MemoryStore,
    pub portal: u64,
    pub token: String,
}

/// A simulator (rate limit off, then `configure`) seeded with `seed`, its
/// portal connected in a fresh in-memory store.
pub async fn setup_with(
    seed: SeedSpec,
    configure: impl FnOnce(&mut SimConfig),
) -> anyhow::Result<Setup> {
    let mut config = SimConfig::default();
    config.rate_limit.enabled = false;
    config.initial_seed = seed;
    configure(&mut config);
    let SimPortal {
        sim,
        store,
        portal,
        token,
    } = sim_portal(config).await?;
    Ok(Setup {
        sim,
        store,
        portal,
        token,
    })
}

/// The store holds exactly what HubSpot (the simulator) holds.
pub async fn assert_converged(s: &Setup) -> anyhow::Result<()> {
    let d = compare_portal(s.sim.state(), &s.store, s.portal).await?;
    assert!(
        d.is_empty(),
        "missing [{}], different [{}], should be archived [{}]",
        describe(&d.missing, 10),
        describe(&d.different, 10),
        describe(&d.should_be_archived, 10)
    );
    Ok(())
}

/// The company `id` is stored archived as deleted, with its data, at the
/// time HubSpot's recycle bin gives.
pub async fn assert_archived_as_deleted(s: &Setup, id: u64) -> anyhow::Result<()> {
    let key = RecordKey::new(PortalId(s.portal), ObjectType::Companies, ObjectId(id));
    let r = s.store.get_record(&key).await?.expect("kept");
    assert!(r.meta.archived && !r.fields.is_empty(), "{id}");
    assert_eq!(r.meta.archive_reason, Some(ArchiveReason::Deleted), "{id}");
    let in_bin = s
        .sim
        .state()
        .get_object(s.portal, SimType::Companies, id)?
        .and_then(|o| o.archived_at)
        .expect("in the recycle bin");
    let stored = r.meta.archived_at.expect("archived_at");
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(&stored)?.timestamp_millis(),
        chrono::DateTime::parse_from_rfc3339(&in_bin)?.timestamp_millis(),
        "{id}: archived at HubSpot's deletion time"
    );
    Ok(())
}
