//! record-upsert worker: HubSpot calls per 1,000 changed-record events and
//! records/s through the worker (figures printed as tables, not asserted;
//! budgets in DESIGN.md "Budgets").
//!
//! ```sh
//! CARGO_PROFILE_BENCH_LTO=false CARGO_PROFILE_BENCH_CODEGEN_UNITS=16 \
//!     cargo bench -p hubsync-local --bench worker
//! ```
//!
//! Everything is started here: the HubSpot simulator in-process (rate limit
//! off, so raw throughput is measured) and, for the DynamoDB figures, moto via
//! `hubsync-testkit` (when `AWS_ENDPOINT_URL` is unset). The worker uses the
//! real `HubSpotClient` (`Unlimited` limiter, `StaticToken` from
//! `sim.issue_token`).
//!
//! Queue messages are made the way production makes them: the records are
//! changed in the simulator, its webhook events are cut into deliveries,
//! signed and passed through the real intake (`webhook-intake`, memory sink);
//! the resulting SQS bodies are handed to `Worker::process` in Lambda-sized
//! batches.
//!
//! Knobs: `HUBSYNC_BENCH_RECORDS_MEMORY` (default 10000),
//! `HUBSYNC_BENCH_RECORDS_DYNAMO` (default 2000), `HUBSYNC_BENCH_SKIP_MOTO=1`.

mod trickle;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderName, HeaderValue};
use hubspot_sim::{props, ObjectType as SimType, RateLimitConfig, SeedSpec, SimConfig, Simulator};
use hubsync_hubspot::signature::{
    public_request_uri, sign_v3, WebhookVerifier, HEADER_REQUEST_TIMESTAMP, HEADER_SIGNATURE_V3,
};
use hubsync_hubspot::{ClientConfig, HubSpotClient, PortalId, StaticToken, Unlimited};
use hubsync_store::{
    Connection, ConnectionStore, DynamoStore, MemoryStore, StoreConfig, StoreStats,
};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use record_upsert::{BatchStats, HubSpotSource, InboundMessage, Worker};
use secrecy::SecretString;
use webhook_intake::directory::StaticDirectory;
use webhook_intake::sink::MemorySink;
use webhook_intake::{Intake, IntakeConfig};

const SECRET: &str = "bench-client-secret";
const PUBLIC_URL: &str = "https://hooks.example.com/prod/webhooks/hubspot";

type Reader = HubSpotSource<StaticToken>;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The steady state: the owners cache the initial sync fills (read here,
/// before anything is counted), so the worker makes no owners call.
/// The steady state: the portal's owners and pipelines cached (as the
/// first invocation or the nightly run leaves them).
pub(crate) async fn warm_owners<
    S: hubsync_store::OwnersCacheStore + hubsync_store::PipelinesCacheStore,
>(
    reader: &Reader,
    store: &S,
    portal: u64,
) -> anyhow::Result<()> {
    let now = chrono::Utc::now().timestamp_millis();
    let owners = hubsync_sync::ReadOwners::owners(reader, PortalId(portal)).await?;
    store
        .put_owners_cache(PortalId(portal), &owners, now)
        .await?;
    let pipelines = hubsync_sync::ReadPipelines::pipelines(reader, PortalId(portal)).await?;
    store
        .put_pipelines_cache(PortalId(portal), &pipelines, now)
        .await?;
    Ok(())
}

pub(crate) fn connection(portal: u64) -> Connection {
    let _now = chrono::Utc::now();
    Connection::active(PortalId(portal), format!("tenant-{portal}"))
}

pub(crate) struct Bench {
    sim: Simulator,
    portal: u64,
    client: HubSpotClient,
    token: StaticToken,
    intake: Intake<MemorySink, StaticDirectory>,
    message_seq: usize,
}

impl Bench {
    async fn start(seed: SeedSpec) -> anyhow::Result<Self> {
        let sim = Simulator::start(SimConfig {
            rate_limit: RateLimitConfig {
                enabled: false,
                ..Default::default()
            },
            initial_seed: seed,
            ..Default::default()
        })
        .await?;
        let portal = sim.state().portal_ids()[0];
        let token = StaticToken::new(sim.issue_token(portal)?.access_token);
        let client = HubSpotClient::with_rate_limiter(
            ClientConfig::new(sim.base_url()),
            Arc::new(Unlimited),
        )?;
        let intake = Intake::new(
            WebhookVerifier::new(SecretString::from(SECRET), PUBLIC_URL),
            IntakeConfig::default(),
            MemorySink::default(),
            StaticDirectory {
                active: vec![PortalId(portal)],
                inactive: vec![],
            },
        );
        Ok(Self {
            sim,
            portal,
            client,
            token,
            intake,
            message_seq: 0,
        })
    }

    fn reader(&self) -> Reader {
        HubSpotSource::new(self.client.clone(), self.token.clone())
    }

    fn ids(&self, ty: SimType) -> Vec<u64> {
        self.sim
            .state()
            .object_ids(self.portal, ty, false)
            .expect("sim ids")
    }

    /// Change `records` distinct records (a seeded mix of types), each with
    /// `props_per_record` property changes (one webhook event each); returns
    /// the simulator's webhook events, in emission order.
    fn change_records(
        &self,
        records: &[(SimType, u64)],
        props_per_record: usize,
        round: usize,
    ) -> Vec<hubspot_sim::WebhookEvent> {
        let st = self.sim.state();
        st.clear_events();
        for (n, (ty, id)) in records.iter().enumerate() {
            let names: &[&str] = match ty {
                SimType::Contacts => &["firstname", "lastname", "jobtitle"],
                SimType::Companies => &["name", "city", "description"],
                SimType::Deals => &["dealname", "description", "amount"],
            };
            let changes = names.iter().take(props_per_record).map(|name| {
                let value = if *name == "amount" {
                    format!("{}.{:02}", 1_000 + n, round % 100)
                } else {
                    format!("{name} {n} r{round}")
                };
                (name.to_string(), value)
            });
            st.update_object(self.portal, *ty, *id, props(changes))
                .expect("sim update");
        }
        st.events()
    }

    /// Cut events into HubSpot deliveries of `per_delivery`, sign them, run
    /// them through the intake and return the SQS messages it queued.
    async fn queue_messages(
        &mut self,
        events: &[hubspot_sim::WebhookEvent],
        per_delivery: usize,
    ) -> Vec<InboundMessage> {
        let secret = SecretString::from(SECRET);
        let uri = public_request_uri(PUBLIC_URL, None);
        let now_ms = chrono::Utc::now().timestamp_millis();
        for chunk in events.chunks(per_delivery) {
            let body = serde_json::to_vec(chunk).expect("delivery json");
            let mut headers = HeaderMap::new();
            headers.insert(
                HeaderName::from_bytes(HEADER_SIGNATURE_V3.as_bytes()).expect("name"),
                HeaderValue::from_str(&sign_v3(&secret, "POST", &uri, &body, now_ms))
                    .expect("value"),
            );
            headers.insert(
                HeaderName::from_bytes(HEADER_REQUEST_TIMESTAMP.as_bytes()).expect("name"),
                HeaderValue::from_str(&now_ms.to_string()).expect("value"),
            );
            let reply =
                webhook_intake::http::respond(&self.intake, "POST", &headers, None, &body, now_ms)
                    .await;
            assert_eq!(reply.status, 200, "intake refused: {}", reply.body);
        }
        let sent = std::mem::take(&mut *self.intake.sink().sent.lock().expect("sink"));
        sent.into_iter()
            .map(|m| {
                self.message_seq += 1;
                InboundMessage {
                    message_id: format!("msg-{:06}", self.message_seq),
                    body: m.body,
                }
            })
            .collect()
    }

    /// CRM requests the simulator served whose route contains `part`.
    fn sim_crm(&self, part: &str) -> u64 {
        self.sim
            .state()
            .counters()
            .requests
            .iter()
            .filter(|(route, _)| route.contains(" /crm/") && route.contains(part))
            .map(|(_, n)| n)
            .sum()
    }

    fn sim_requests(&self) -> u64 {
        self.sim.state().counters().requests.values().sum()
    }
}

/// Feed messages to the worker `batch_size` at a time (as the SQS event
/// source would); return the summed stats, invocations and elapsed time.
async fn drive<S: hubsync_sync::SyncStore>(
    worker: &Worker<Reader, S>,
    messages: &[InboundMessage],
    batch_size: usize,
) -> (BatchStats, usize, Duration) {
    let mut total = BatchStats::default();
    let mut invocations = 0;
    let started = Instant::now();
    for batch in messages.chunks(batch_size) {
        let out = worker.process(batch.to_vec()).await;
        assert!(
            out.failed.is_empty(),
            "worker failed messages: {:?}",
            out.stats
        );
        total.absorb(&out.stats);
        invocations += 1;
    }
    (total, invocations, started.elapsed())
}

pub(crate) fn pick_records(
    b: &Bench,
    contacts: usize,
    companies: usize,
    deals: usize,
) -> Vec<(SimType, u64)> {
    let mut records: Vec<(SimType, u64)> = Vec::new();
    for (ty, n) in [
        (SimType::Contacts, contacts),
        (SimType::Companies, companies),
        (SimType::Deals, deals),
    ] {
        let ids = b.ids(ty);
        assert!(ids.len() >= n, "sim seeded too few {ty:?}");
        records.extend(ids.into_iter().take(n).map(|id| (ty, id)));
    }
    // Changes to different types interleave in real portals.
    records.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(7));
    records
}

// ------------------------------------------------------------------ (a)

async fn hubspot_calls_per_1000() -> anyhow::Result<()> {
    println!("== (a) HubSpot calls per 1,000 changed-record events (budget ≤ 12) ==");
    println!("1,000 distinct records changed in the simulator (600 contacts, 250 companies, 150 deals, interleaved);");
    println!("its webhook events cut into deliveries, queued by the real intake, processed in Lambda batches.");
    println!("calls = CRM requests counted by the simulator (= worker stats.hubspot_calls = client requests): batch reads,");
    println!("and the default map's association reads (assoc: contacts → companies, deals → contacts and companies) — none");
    println!("when the records are stored already (the steady state, set up uncounted): property changes carry the stored");
    println!("associations; owners and pipelines come from their caches (warmed, as in the steady state).");
    println!();
    let mut b = Bench::start(SeedSpec {
        companies: 300,
        contacts: 700,
        deals: 200,
        seed: Some(11),
        ..Default::default()
    })
    .await?;
    let records = pick_records(&b, 600, 250, 150);

    println!(
        "{:<46} {:>6} {:>6} {:>5} {:>7} {:>6} {:>6} {:>6} {:>12} {:>12}",
        "scenario",
        "events",
        "ev/msg",
        "msgs",
        "batch",
        "invoc",
        "calls",
        "assoc",
        "calls/1k ev",
        "calls/1k rec"
    );
    struct Scenario {
        name: &'static str,
        props_per_record: usize,
        per_delivery: usize,
        /// Every `n`th delivery is delivered again (HubSpot retry after a
        /// slow/failed answer, or its at-least-once duplicates), appended at
        /// the end so the copies land in later Lambda batches.
        redeliver_every: Option<usize>,
    }
    let scenarios = [
        Scenario {
            name: "1 change/record, 100-event deliveries",
            props_per_record: 1,
            per_delivery: 100,
            redeliver_every: None,
        },
        Scenario {
            name: "1 change/record, 10-event deliveries",
            props_per_record: 1,
            per_delivery: 10,
            redeliver_every: None,
        },
        Scenario {
            name: "1 change/record, 1-event deliveries",
            props_per_record: 1,
            per_delivery: 1,
            redeliver_every: None,
        },
        Scenario {
            name: "3 changes/record (dup ids), 100-ev deliveries",
            props_per_record: 3,
            per_delivery: 100,
            redeliver_every: None,
        },
        Scenario {
            name: "1 change/rec + 1 in 5 deliveries redelivered",
            props_per_record: 1,
            per_delivery: 100,
            redeliver_every: Some(5),
        },
        Scenario {
            name: "1 change/rec, 10-ev deliv. + 1 in 5 redeliv.",
            props_per_record: 1,
            per_delivery: 10,
            redeliver_every: Some(5),
        },
    ];
    for (round, s) in scenarios.iter().enumerate() {
        let events = b.change_records(&records, s.props_per_record, round);
        let mut messages = b.queue_messages(&events, s.per_delivery).await;
        if let Some(every) = s.redeliver_every {
            let copies: Vec<InboundMessage> = messages
                .iter()
                .step_by(every)
                .map(|m| InboundMessage {
                    message_id: format!("{}-again", m.message_id),
                    body: m.body.clone(),
                })
                .collect();
            messages.extend(copies);
        }
        let queued_events: usize = messages
            .iter()
            .map(|m| {
                webhook_intake::EventBatch::from_json(&m.body)
                    .map(|b| b.events.len())
                    .unwrap_or(0)
            })
            .sum();
        for batch_size in [10usize, 100] {
            let store = MemoryStore::new();
            store.put_connection(&connection(b.portal)).await?;
            warm_owners(&b.reader(), &store, b.portal).await?;
            let worker = Worker::new(b.reader(), store);
            // The steady state: every record stored already (as the
            // initial sync leaves them), not counted.
            drive(&worker, &messages, 100).await;
            let (sim0, assoc0) = (b.sim_crm(""), b.sim_crm("/v4/associations"));
            let client0 = b.client.stats();
            let (stats, invocations, _) = drive(&worker, &messages, batch_size).await;
            let sim_calls = b.sim_crm("") - sim0;
            let assoc_calls = b.sim_crm("/v4/associations") - assoc0;
            let client_calls = b.client.stats().since(&client0).requests;
            assert_eq!(sim_calls, stats.hubspot_calls as u64, "sim vs worker count");
            assert_eq!(sim_calls, client_calls, "sim vs client count");
            assert_eq!(stats.events, queued_events);
            let distinct: BTreeSet<_> = records.iter().collect();
            println!(
                "{:<46} {:>6} {:>6} {:>5} {:>7} {:>6} {:>6} {:>6} {:>12.1} {:>12.1}",
                s.name,
                stats.events,
                s.per_delivery,
                messages.len(),
                batch_size,
                invocations,
                sim_calls,
                assoc_calls,
                sim_calls as f64 * 1000.0 / stats.events as f64,
                sim_calls as f64 * 1000.0 / distinct.len() as f64,
            );
        }
    }
    println!();
    b.sim.shutdown().await;
    Ok(())
}

// ------------------------------------------------------------------ (b)

struct Pass {
    label: String,
    records: usize,
    elapsed: Duration,
    stats: BatchStats,
    invocations: usize,
    hubspot_calls: u64,
    writes: u64,
    reads: u64,
}

fn print_pass_header() {
    println!(
        "{:<42} {:>7} {:>9} {:>10} {:>6} {:>8} {:>9} {:>8} {:>9} {:>7} {:>7}",
        "pass",
        "records",
        "time",
        "records/s",
        "invoc",
        "created",
        "unchanged",
        "skipped",
        "HS calls",
        "writes",
        "reads"
    );
}

fn print_pass(p: &Pass) {
    println!(
        "{:<42} {:>7} {:>8.2}s {:>10.0} {:>6} {:>8} {:>9} {:>8} {:>9} {:>7} {:>7}",
        p.label,
        p.records,
        p.elapsed.as_secs_f64(),
        p.records as f64 / p.elapsed.as_secs_f64(),
        p.invocations,
        p.stats.created + p.stats.updated,
        p.stats.unchanged,
        p.stats.skipped.values().sum::<usize>(),
        p.hubspot_calls,
        p.writes,
        p.reads
    );
}

async fn passes<S: hubsync_sync::SyncStore>(
    b: &Bench,
    worker: &Worker<Reader, S>,
    stats: &StoreStats,
    messages: &[InboundMessage],
    records: usize,
    batch_size: usize,
    store_name: &str,
) -> Vec<Pass> {
    let mut out = Vec::new();
    for (label, first_pass) in [("create pass", true), ("no-change replay", false)] {
        let (w0, r0) = (stats.writes(), stats.reads());
        let calls0 = b.sim_crm("");
        let (s, invocations, elapsed) = drive(worker, messages, batch_size).await;
        let pass = Pass {
            label: format!("{store_name}, batch {batch_size}: {label}"),
            records,
            elapsed,
            invocations,
            hubspot_calls: b.sim_crm("") - calls0,
            writes: stats.writes() - w0,
            reads: stats.reads() - r0,
            stats: s,
        };
        // Figures, not assertions: a pass that lost records shows it here.
        let skipped: usize = pass.stats.skipped.values().sum();
        let accounted = if first_pass {
            pass.stats.created + pass.stats.updated
        } else {
            pass.stats.unchanged
        };
        if accounted + skipped != records || pass.stats.failed_groups > 0 {
            println!("!! {label}: records unaccounted for: {:?}", pass.stats);
        }
        print_pass(&pass);
        out.push(pass);
    }
    out
}

/// `n` seeded records (60 % contacts, 25 % companies, 15 % deals), one
/// `*.creation` event each as HubSpot sends for new records, 100 events per
/// delivery.
async fn creation_messages(b: &mut Bench, n: usize) -> Vec<InboundMessage> {
    let contacts = n * 60 / 100;
    let companies = n * 25 / 100;
    let deals = n - contacts - companies;
    let records = pick_records(b, contacts, companies, deals);
    let now = b.sim.state().now_ms();
    let events: Vec<hubspot_sim::WebhookEvent> = records
        .iter()
        .enumerate()
        .map(|(i, (ty, id))| hubspot_sim::WebhookEvent {
            event_id: 5_000_000 + i as u64,
            subscription_id: 1,
            portal_id: b.portal,
            app_id: 1,
            occurred_at: now,
            subscription_type: format!(
                "{}.creation",
                match ty {
                    SimType::Contacts => "contact",
                    SimType::Companies => "company",
                    SimType::Deals => "deal",
                }
            ),
            attempt_number: 0,
            object_id: *id,
            change_source: "CRM_UI".into(),
            ..Default::default()
        })
        .collect();
    b.queue_messages(&events, 100).await
}

async fn records_per_second(n_memory: usize, n_dynamo: usize, moto: bool) -> anyhow::Result<()> {
    println!(
        "== (b) records/s through the worker (HubSpot = simulator on loopback, rate limit off) =="
    );
    println!("create pass: every record new to the store; replay: the same messages again (store writes should be 0).");
    println!("records/s = distinct records / wall time of the pass (batch reads + mapping + store), 100-event messages.");
    println!("skipped = records the mapping refuses (seeded contacts without email); writes = store write requests, refused conditional writes included.");
    println!();
    let n_max = n_memory.max(n_dynamo);
    let mut b = Bench::start(SeedSpec {
        contacts: n_max * 60 / 100 + 1,
        companies: n_max * 25 / 100 + 1,
        deals: n_max * 15 / 100 + 2,
        seed: Some(23),
        ..Default::default()
    })
    .await?;
    print_pass_header();

    let messages = creation_messages(&mut b, n_memory).await;
    for batch_size in [10usize, 100] {
        let store = MemoryStore::new();
        store.put_connection(&connection(b.portal)).await?;
        warm_owners(&b.reader(), &store, b.portal).await?;
        let stats = store.stats().clone();
        let worker = Worker::new(b.reader(), store);
        passes(
            &b,
            &worker,
            &stats,
            &messages,
            n_memory,
            batch_size,
            "MemoryStore",
        )
        .await;
    }

    if moto {
        let aws = hubsync_testkit::aws_config().await?;
        let client = aws_sdk_dynamodb::Client::new(&aws);
        let config = StoreConfig::new(
            hubsync_testkit::unique_name("bench-records"),
            hubsync_testkit::unique_name("bench-control"),
        );
        hubsync_store::create_tables(&client, &config).await?;
        let store = DynamoStore::new(client, config);
        store.put_connection(&connection(b.portal)).await?;
        warm_owners(&b.reader(), &store, b.portal).await?;
        let stats = store.stats().clone();
        let worker = Worker::new(b.reader(), store);
        let messages = creation_messages(&mut b, n_dynamo).await;
        passes(
            &b,
            &worker,
            &stats,
            &messages,
            n_dynamo,
            10,
            "DynamoStore (moto)",
        )
        .await;
    } else {
        println!("(DynamoStore on moto skipped: HUBSYNC_BENCH_SKIP_MOTO=1)");
    }
    println!("(simulator requests during (b): {})", b.sim_requests());
    println!();
    b.sim.shutdown().await;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let moto = std::env::var_os("HUBSYNC_BENCH_SKIP_MOTO").is_none_or(|v| v != "1");
    let n_memory = env_usize("HUBSYNC_BENCH_RECORDS_MEMORY", 10_000);
    let n_dynamo = env_usize("HUBSYNC_BENCH_RECORDS_DYNAMO", 2_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let started = Instant::now();
    rt.block_on(hubspot_calls_per_1000())?;
    rt.block_on(trickle::trickle_curve())?;
    rt.block_on(records_per_second(n_memory, n_dynamo, moto))?;
    println!("total bench time: {:.1?}", started.elapsed());
    Ok(())
}
