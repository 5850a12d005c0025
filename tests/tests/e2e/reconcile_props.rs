//! Property: whatever happens to the webhooks of random changes (dropped,
//! duplicated, reordered, split into odd batches), the worker plus ONE
//! reconciliation leave the store equal to HubSpot. A seeded loop of 60
//! small cases on the simulator and the in-memory store.

use std::time::Duration;

use hubspot_sim::{SeedSpec, SimConfig};
use hubsync_hubspot::{PortalId, StaticToken};
use hubsync_local::compare::{compare_portal, describe};
use hubsync_local::reconcile::worker::{HubSpotSource, InboundMessage, Worker};
use hubsync_local::reconcile::{
    run_job, sim_client, sim_portal, sim_source, Engine, EngineConfig, JobMessage, MemoryJobQueue,
    Reconciler, SimPortal, SliceLimit,
};
use hubsync_store::SyncJobKind;

/// xorshift64*: a tiny seeded generator (the loop must be reproducible).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 > 1.0 - p
    }
}

async fn case(seed: u64) -> anyhow::Result<()> {
    let mut rng = Rng::new(seed);
    let mut config = SimConfig {
        seed,
        merge_new_id_probability: 0.2,
        ..SimConfig::default()
    };
    config.rate_limit.enabled = false;
    config.initial_seed = SeedSpec {
        companies: 5 + rng.below(40) as usize,
        contacts: 5 + rng.below(60) as usize,
        deals: rng.below(20) as usize,
        ..SeedSpec::default()
    };
    let SimPortal {
        sim,
        store,
        portal,
        token,
    } = sim_portal(config).await?;
    let rec = Reconciler::new(
        Engine::new(
            sim_source(&sim.base_url(), &token, None)?,
            store.clone(),
            EngineConfig {
                page_limit: 1 + rng.below(100) as u32,
                checkpoint_every_pages: 1 + rng.below(3) as u32,
                ..EngineConfig::default()
            },
        ),
        MemoryJobQueue::new(),
        Duration::from_secs(1),
    );
    let job = |kind| JobMessage::new(kind, PortalId(portal), vec![]);
    let limit = SliceLimit {
        deadline: None,
        max_pages: Some(1 + rng.below(4) as u32),
    };
    run_job(&rec, job(SyncJobKind::Initial), limit).await?;

    // Random changes; their webhooks mangled and replayed through the
    // worker.
    sim.state().clear_events();
    let changes = 10 + rng.below(60) as usize;
    sim.state()
        .random_changes(portal, changes, Some(seed), &[])?;
    let drop = rng.below(40) as f64 / 100.0;
    let duplicate = rng.below(30) as f64 / 100.0;
    let mut events = Vec::new();
    for e in sim.state().events() {
        if rng.chance(drop) {
            continue;
        }
        let value = serde_json::to_value(&e)?;
        if rng.chance(duplicate) {
            events.push(value.clone());
        }
        events.push(value);
    }
    if rng.chance(0.7) {
        for i in (1..events.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            events.swap(i, j);
        }
    }
    let worker = Worker::new(
        HubSpotSource::new(
            sim_client(&sim.base_url(), None)?,
            StaticToken::new(token.clone()),
        ),
        store.clone(),
    );
    let mut messages = Vec::new();
    let mut rest = events.as_slice();
    while !rest.is_empty() {
        let n = (1 + rng.below(30) as usize).min(rest.len());
        let (batch, tail) = rest.split_at(n);
        rest = tail;
        let body = serde_json::json!({
            "v": 1, "portalId": portal, "receivedAt": chrono::Utc::now().timestamp_millis(), "events": batch,
        });
        messages.push(InboundMessage {
            message_id: format!("m{}", messages.len()),
            body: body.to_string(),
        });
    }
    for chunk in messages.chunks(1 + rng.below(10) as usize) {
        let out = worker.process(chunk.to_vec()).await;
        anyhow::ensure!(out.failed.is_empty(), "worker failed: {:?}", out.failed);
    }

    run_job(&rec, job(SyncJobKind::Nightly), limit).await?;
    let d = compare_portal(sim.state(), &store, portal).await?;
    anyhow::ensure!(
        d.is_empty(),
        "seed {seed}: missing [{}], different [{}], should be archived [{}]",
        describe(&d.missing, 10),
        describe(&d.different, 10),
        describe(&d.should_be_archived, 10)
    );
    sim.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_plus_one_reconciliation_always_converge() -> anyhow::Result<()> {
    let cases: u64 = std::env::var("HUBSYNC_PROP_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    for seed in 0..cases {
        case(seed).await?;
    }
    Ok(())
}
