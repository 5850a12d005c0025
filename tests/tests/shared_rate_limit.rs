//! The shared per-portal HubSpot budget (`hubsync_ratelimit::shared_limit`) on
//! the local stack: the ledger's wire format and basic behaviour on moto's
//! DynamoDB, and a nightly-style reconciliation running while the worker
//! handles a webhook burst for the same portal, against the simulator's
//! 110 / 10 s limit: zero rate-limit 429s while both make progress.
//!
//! Races between instances are tested on the in-memory ledger store (unit
//! tests of the limiter): moto checks a conditional write's condition and
//! then applies it without a lock, so two concurrent swaps of one version
//! can both succeed there (DynamoDB applies them atomically). The two
//! limiters here share the moto ledger through [`AtomicSwaps`], which makes
//! their swaps take turns; without it this test saw 1–2 429s a run, from
//! grants one swap silently overwrote.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use hubspot_sim::{SeedSpec, SimConfig};
use hubsync_hubspot::{
    ClientConfig, HubSpotClient, HubSpotError, PortalId, RateLimitKind, RateLimiter, StaticToken,
};
use hubsync_local::reconcile::worker::{HubSpotSource, InboundMessage, Worker};
use hubsync_local::reconcile::{
    run_job, sim_portal, EngineConfig, JobMessage, MemoryJobQueue, Reconciler, SimPortal,
    SliceLimit,
};
use hubsync_ratelimit::{PermitClass, SharedLimitConfig, SharedRateLimiter};
use hubsync_store::{
    create_tables, DynamoStore, LedgerSwap, RateGrant, RateLedger, RateLedgerStore, RunStatus,
    StoreConfig, SyncJobKind,
};

const BOUND: Duration = Duration::from_secs(300);

/// The moto ledger with its compare-and-swaps made atomic: moto checks a
/// write's condition and then applies it without a lock, so two writes of
/// the same version from concurrent requests can both succeed (DynamoDB
/// applies a conditional write atomically). The limiters of one process
/// here swap one at a time; reads and the swaps' wire format stay moto's.
#[derive(Clone)]
struct AtomicSwaps {
    store: DynamoStore,
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl AtomicSwaps {
    fn new(store: DynamoStore) -> Self {
        Self {
            store,
            lock: Arc::default(),
        }
    }
}

impl RateLedgerStore for AtomicSwaps {
    async fn get_rate_ledger(
        &self,
        portal: PortalId,
        lane: &str,
    ) -> Result<Option<RateLedger>, hubsync_store::StoreError> {
        self.store.get_rate_ledger(portal, lane).await
    }

    async fn swap_rate_ledger(
        &self,
        portal: PortalId,
        lane: &str,
        ledger: &RateLedger,
    ) -> Result<LedgerSwap, hubsync_store::StoreError> {
        let _one_at_a_time = self.lock.lock().await;
        self.store.swap_rate_ledger(portal, lane, ledger).await
    }
}

async fn ledger_store() -> anyhow::Result<(DynamoStore, aws_sdk_dynamodb::Client, StoreConfig)> {
    let sdk = hubsync_testkit::aws_config().await?;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let config = StoreConfig::new(
        hubsync_testkit::unique_name("records"),
        hubsync_testkit::unique_name("control"),
    );
    create_tables(&client, &config).await?;
    Ok((
        DynamoStore::new(client.clone(), config.clone()),
        client,
        config,
    ))
}

fn ledger(version: u64, at_ms: i64) -> RateLedger {
    RateLedger {
        version,
        grants: vec![
            RateGrant {
                at_ms: at_ms - 1,
                permits: 7,
                class: 0,
                owner: u64::MAX,
                used_until_ms: Some(at_ms),
            },
            RateGrant {
                at_ms,
                permits: 10,
                class: 1,
                owner: 42,
                used_until_ms: None,
            },
        ],
        paused_until_ms: 0,
        seen_ms: vec![0, at_ms],
        ..RateLedger::default()
    }
}

#[tokio::test]
async fn the_rate_ledger_is_one_control_item_per_portal_and_lane_swapped_by_version(
) -> anyhow::Result<()> {
    tokio::time::timeout(BOUND, async {
        let (store, client, config) = ledger_store().await?;
        let p = PortalId(4242);
        assert_eq!(store.get_rate_ledger(p, "standard").await?, None);
        assert_eq!(
            store.swap_rate_ledger(p, "standard", &ledger(2, 5)).await?,
            LedgerSwap::Conflict(None),
            "version 2 needs version 1 stored"
        );
        assert_eq!(
            store.swap_rate_ledger(p, "standard", &ledger(1, 5)).await?,
            LedgerSwap::Swapped
        );
        // The item as stored.
        let item = client
            .get_item()
            .table_name(&config.control_table)
            .key("pk", AttributeValue::S("RATE#4242#standard".into()))
            .key("sk", AttributeValue::S("LEDGER".into()))
            .consistent_read(true)
            .send()
            .await?
            .item
            .expect("the ledger item");
        assert_eq!(item.get("version"), Some(&AttributeValue::N("1".into())));
        assert_eq!(
            item.get("paused_until_ms"),
            Some(&AttributeValue::N("0".into()))
        );
        let grants = item
            .get("grants")
            .and_then(|g| g.as_l().ok())
            .expect("grants list");
        assert_eq!(grants.len(), 2);
        let closed = grants[0].as_m().expect("a grant map");
        assert_eq!(closed.get("permits"), Some(&AttributeValue::N("7".into())));
        assert_eq!(
            closed.get("owner"),
            Some(&AttributeValue::N(u64::MAX.to_string()))
        );
        assert_eq!(
            closed.get("used_until_ms"),
            Some(&AttributeValue::N("5".into()))
        );
        let open = grants[1].as_m().expect("a grant map");
        assert_eq!(open.get("permits"), Some(&AttributeValue::N("10".into())));
        assert_eq!(open.get("at_ms"), Some(&AttributeValue::N("5".into())));
        assert_eq!(open.get("used_until_ms"), None, "an open block has none");
        let ttl = item
            .get(hubsync_store::CONTROL_TTL_ATTRIBUTE)
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<i64>().ok())
            .expect("a TTL");
        assert!(ttl > chrono::Utc::now().timestamp());

        // A stale writer gets the stored ledger back.
        assert_eq!(
            store.swap_rate_ledger(p, "standard", &ledger(1, 9)).await?,
            LedgerSwap::Conflict(Some(ledger(1, 5)))
        );
        assert_eq!(
            store.swap_rate_ledger(p, "standard", &ledger(2, 9)).await?,
            LedgerSwap::Swapped
        );
        assert_eq!(
            store.get_rate_ledger(p, "standard").await?,
            Some(ledger(2, 9))
        );
        assert_eq!(store.get_rate_ledger(p, "search").await?, None);
        anyhow::Ok(())
    })
    .await?
}

#[tokio::test]
async fn instances_share_one_budget_and_a_429_pause_through_dynamodb() -> anyhow::Result<()> {
    tokio::time::timeout(BOUND, async {
        let (store, _, _) = ledger_store().await?;
        let p = PortalId(77);
        let a =
            SharedRateLimiter::new(store.clone(), SharedLimitConfig::new(PermitClass::Realtime));
        let b =
            SharedRateLimiter::new(store.clone(), SharedLimitConfig::new(PermitClass::Realtime));
        for _ in 0..110 {
            let _ = a.acquire(p, RateLimitKind::Standard).await?;
        }
        // One conditional write per block of 10.
        assert_eq!(a.stats().ledger_calls, 11);
        let stored = store.get_rate_ledger(p, "standard").await?.expect("ledger");
        assert_eq!(stored.grants.iter().map(|g| g.permits).sum::<u32>(), 110);
        assert_eq!(stored.version, 11);
        // The budget is used up: another instance gets nothing for the
        // rest of the span (about 11 s).
        let waited = tokio::time::timeout(
            Duration::from_secs(2),
            b.acquire(p, RateLimitKind::Standard),
        )
        .await;
        assert!(waited.is_err(), "b was granted a permit over the budget");
        // Another portal has its own budget.
        let _ = b.acquire(PortalId(78), RateLimitKind::Standard).await?;

        // A 429 seen by `a` (an hour's pause) stops `b` on that portal.
        a.on_rate_limited(
            PortalId(78),
            RateLimitKind::Standard,
            Duration::from_secs(3600),
        );
        let mut shared = false;
        for _ in 0..100 {
            let l = store.get_rate_ledger(PortalId(78), "standard").await?;
            if l.is_some_and(|l| l.paused_until_ms > chrono::Utc::now().timestamp_millis()) {
                shared = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(shared, "the pause never reached the ledger");
        // b still holds permits of its last block; once they are gone (or
        // expired) its next lease sees the pause and fails fast.
        tokio::time::sleep(Duration::from_millis(600)).await;
        let err = b
            .acquire(PortalId(78), RateLimitKind::Standard)
            .await
            .expect_err("b must be paused");
        assert!(matches!(err, HubSpotError::RateLimited { .. }), "{err:?}");
        anyhow::Ok(())
    })
    .await?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconciliation_and_a_webhook_burst_together_stay_under_the_portal_limit(
) -> anyhow::Result<()> {
    tokio::time::timeout(BOUND, async {
        let mut sim_config = SimConfig::default();
        sim_config.rate_limit.enabled = true;
        sim_config.initial_seed = SeedSpec {
            companies: 1_000,
            contacts: 20_000,
            deals: 1_000,
            owners: 0,
            seed: Some(11),
        };
        let SimPortal {
            sim,
            store,
            portal,
            token,
        } = sim_portal(sim_config).await?;
        // The shared budget lives in moto's Control table.
        let (ledgers, _, _) = ledger_store().await?;
        let ledgers = AtomicSwaps::new(ledgers);
        // The production defaults, guard (150 ms) included: the simulator
        // counts a request when its handler runs, in this very process.
        let config = SharedLimitConfig::new;
        let background = Arc::new(SharedRateLimiter::new(
            ledgers.clone(),
            config(PermitClass::Background),
        ));
        let realtime = Arc::new(SharedRateLimiter::new(
            ledgers.clone(),
            config(PermitClass::Realtime),
        ));
        let client = |limiter: Arc<dyn RateLimiter>| {
            HubSpotClient::with_rate_limiter(ClientConfig::new(sim.base_url()), limiter)
        };
        let reconciler = Reconciler::new(
            hubsync_local::reconcile::Engine::new(
                HubSpotSource::new(client(background.clone())?, StaticToken::new(token.clone())),
                store.clone(),
                EngineConfig::default(),
            ),
            MemoryJobQueue::new(),
            Duration::from_secs(1),
        );
        let worker = Worker::new(
            HubSpotSource::new(client(realtime.clone())?, StaticToken::new(token.clone())),
            store.clone(),
        );

        // Changes whose webhooks the worker gets as a burst.
        sim.state()
            .random_changes(portal, 6_000, Some(3), &[])?;
        let events: Vec<serde_json::Value> = sim
            .state()
            .events()
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<_, _>>()?;
        let messages: Vec<InboundMessage> = events
            .chunks(100)
            .enumerate()
            .map(|(i, batch)| InboundMessage {
                message_id: format!("m{i}"),
                body: serde_json::json!({
                    "v": 1, "portalId": portal, "receivedAt": chrono::Utc::now().timestamp_millis(),
                    "events": batch,
                })
                .to_string(),
            })
            .collect();
        sim.state().reset_counters();

        let job = JobMessage::new(SyncJobKind::Nightly, PortalId(portal), vec![]);
        let reconciliation = run_job(&reconciler, job, SliceLimit::unlimited());
        let burst = async {
            // The nightly run has the portal to itself for a while.
            tokio::time::sleep(Duration::from_secs(4)).await;
            let run_before = background.stats().permits_used;
            let mut failed = Vec::new();
            let mut calls = 0;
            for batch in messages.chunks(10) {
                let out = worker.process(batch.to_vec()).await;
                failed.extend(out.failed);
                calls += out.stats.hubspot_calls;
            }
            let run_during = background.stats().permits_used - run_before;
            (failed, calls, run_during)
        };
        let (reconciled, (failed, worker_calls, run_during_burst)) =
            tokio::join!(reconciliation, burst);
        let (report, _) = reconciled?;

        let counters = sim.state().counters();
        let requests: u64 = counters
            .requests_by_portal
            .get(&portal)
            .map(|r| r.values().sum())
            .unwrap_or(0);
        let limited = counters.rate_limited_by_portal.get(&portal).copied().unwrap_or(0);
        println!(
            "{requests} HubSpot requests: reconciliation {} permits, worker {} permits ({worker_calls} batch reads, the run took {run_during_burst} permits during the burst); 429s {limited}; ledger calls {} + {}",
            background.stats().permits_used,
            realtime.stats().permits_used,
            background.stats().ledger_calls,
            realtime.stats().ledger_calls,
        );
        assert_eq!(limited, 0, "the simulator answered 429");
        // The limit was in play: several windows' worth of requests.
        assert!(requests > 2 * 110, "only {requests} requests");
        // Both made progress: the run finished, the burst was handled,
        // and the run kept going while the burst was on.
        assert_eq!(report.status, RunStatus::Completed);
        assert!(report.done >= 18_000, "the run listed {}", report.done);
        assert!(failed.is_empty(), "worker failed messages: {failed:?}");
        assert!(worker_calls >= 20, "the burst made {worker_calls} HubSpot calls");
        assert!(run_during_burst > 0, "the run was starved during the burst");
        sim.shutdown().await;
        anyhow::Ok(())
    })
    .await?
}
