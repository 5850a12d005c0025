//! `hubsync-local`: hubsync on this machine, against the local stack.
//!
//! `hubsync-local demo` (what `make demo` runs, inside
//! `infra/local/with-stack.sh` so that `AWS_ENDPOINT_URL` points at moto):
//! starts the HubSpot simulator, provisions the tables, queues, KMS key and
//! secret like the SAM template, runs the webhook intake and the worker with
//! their Lambda handler code, connects a portal, makes changes in HubSpot
//! and shows what landed in DynamoDB and how fast.
//!
//! Everything that operates a deployment (or the local stack as one) —
//! status, re-sync, mappings, DLQs, purge, disconnect, the HubSpot app — is
//! `hubsync-ops`; this binary only runs hubsync locally.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use hubspot_sim::{props, ObjectType as SimType, SimConfig, WebhookFormat};
use hubsync_hubspot::{ObjectId, ObjectType, PortalId};
use hubsync_local::compare::compare_portal;
use hubsync_local::{wait_for, EnvOptions, Environment, QueueSettings};
use hubsync_store::{RecordKey, RecordStore};

#[derive(Parser)]
#[command(
    version,
    about = "Run hubsync locally against moto and the HubSpot simulator"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// End-to-end demo of the real-time sync (needs AWS_ENDPOINT_URL).
    Demo {
        #[arg(long, default_value_t = 200)]
        companies: usize,
        #[arg(long, default_value_t = 500)]
        contacts: usize,
        #[arg(long, default_value_t = 100)]
        deals: usize,
        /// Random changes (updates, deletes, restores, merges) after the import.
        #[arg(long, default_value_t = 500)]
        changes: usize,
        /// Changes timed one by one (latency from HubSpot to DynamoDB).
        #[arg(long, default_value_t = 20)]
        timed: usize,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// The webhook format the simulator delivers: `generic` (object.*,
        /// what a developer-platform app subscribes to), `classic` or `mixed`.
        #[arg(long, default_value = "generic", value_parser = parse_format)]
        webhook_format: WebhookFormat,
    },
}

fn parse_format(s: &str) -> std::result::Result<WebhookFormat, String> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
        .map_err(|_| format!("{s:?} is not generic, classic or mixed"))
}

#[tokio::main]
async fn main() -> Result<()> {
    hubsync_runtime::init_tracing();
    // EMF metric lines are for CloudWatch; locally they would drown the
    // demo's report. Set HUBSYNC_PRINT_METRICS=1 to see them.
    if std::env::var_os("HUBSYNC_PRINT_METRICS").is_none() {
        hubsync_runtime::metrics::capture(|_| {});
    }
    match Cli::parse().command {
        Command::Demo {
            companies,
            contacts,
            deals,
            changes,
            timed,
            seed,
            webhook_format,
        } => {
            demo(
                companies,
                contacts,
                deals,
                changes,
                timed,
                seed,
                webhook_format,
            )
            .await
        }
    }
}

fn sim_type(t: ObjectType) -> SimType {
    match t {
        ObjectType::Companies => SimType::Companies,
        ObjectType::Contacts => SimType::Contacts,
        ObjectType::Deals => SimType::Deals,
    }
}

async fn demo(
    companies: usize,
    contacts: usize,
    deals: usize,
    changes: usize,
    timed: usize,
    seed: u64,
    webhook_format: WebhookFormat,
) -> Result<()> {
    if std::env::var_os("AWS_ENDPOINT_URL").is_none() {
        bail!("AWS_ENDPOINT_URL is not set: run `make demo` (it starts moto), or `infra/local/with-stack.sh cargo run -p hubsync-local -- demo`");
    }
    let aws = hubsync_runtime::aws_sdk_config().await;
    let mut sim = SimConfig {
        seed,
        ..SimConfig::default()
    };
    sim.webhooks.format = webhook_format;
    let started = Instant::now();
    let env = Environment::start(
        aws,
        EnvOptions {
            prefix: format!("hubsync-demo-{}", std::process::id()),
            sim,
            queues: QueueSettings::default(),
            batch_size: None,
        },
    )
    .await?;
    let portal = env.sim.state().portal_ids()[0];
    env.connect_portal(portal).await?;
    println!("hubsync local demo");
    println!("  HubSpot (simulator)  {}", env.sim.base_url());
    println!(
        "  AWS (moto)           {}",
        std::env::var("AWS_ENDPOINT_URL").unwrap_or_default()
    );
    println!(
        "  webhook intake       {} ({} webhook format)",
        env.runner.webhook_url(),
        serde_json::to_value(webhook_format)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    );
    println!("  portal {portal} connected through OAuth (install link → consent → callback; tokens KMS-encrypted)\n");

    let result = run(
        &env, portal, companies, contacts, deals, changes, timed, seed,
    )
    .await;
    env.stop().await;
    result?;
    println!("\ndone in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn run(
    env: &Environment,
    portal: u64,
    companies: usize,
    contacts: usize,
    deals: usize,
    changes: usize,
    timed: usize,
    seed: u64,
) -> Result<()> {
    let sim = env.sim.state();
    let store = env.runner.store();

    // 1. Records appear in HubSpot; webhooks bring them over.
    let t = Instant::now();
    for i in 0..companies {
        sim.create_object(
            portal,
            SimType::Companies,
            props([
                ("name", format!("Company {i}")),
                ("domain", format!("company{i}.example.com")),
                (
                    "annualrevenue",
                    format!("{}.{:02}", 10_000 + i * 37, i % 100),
                ),
                ("numberofemployees", format!("{}", 5 + i % 500)),
            ]),
        )?;
    }
    for i in 0..contacts {
        let email = if i % 20 == 19 {
            String::new()
        } else {
            format!("person{i}@example.com")
        };
        sim.create_object(
            portal,
            SimType::Contacts,
            props([
                ("email", email),
                ("firstname", format!("Person{i}")),
                ("lastname", "Example".to_string()),
                ("lifecyclestage", "lead".to_string()),
            ]),
        )?;
    }
    for i in 0..deals {
        sim.create_object(
            portal,
            SimType::Deals,
            props([
                ("dealname", format!("Deal {i}")),
                ("amount", format!("{}.{:02}", 1000 + i * 13, i % 100)),
                ("pipeline", "default".to_string()),
                ("dealstage", "appointmentscheduled".to_string()),
            ]),
        )?;
    }
    let created = companies + contacts + deals;
    env.wait_converged(portal, Duration::from_secs(120)).await?;
    println!(
        "1. {created} records created in HubSpot → all in DynamoDB after {:.2} s",
        t.elapsed().as_secs_f64()
    );

    // 2. Single changes, timed from HubSpot to DynamoDB.
    let ids = sim.object_ids(portal, SimType::Companies, false)?;
    let mut latencies = Vec::new();
    for (n, id) in ids.iter().take(timed).enumerate() {
        let name = format!("Renamed {n}");
        let t = Instant::now();
        sim.update_object(
            portal,
            SimType::Companies,
            *id,
            props([("name", name.clone())]),
        )?;
        let key = RecordKey::new(PortalId(portal), ObjectType::Companies, ObjectId(*id));
        wait_for("a change to land", Duration::from_secs(30), || async {
            let r = store.get_record(&key).await?;
            Ok(r.filter(|r| r.fields.get("name").and_then(|v| v.as_str()) == Some(name.as_str())))
        })
        .await?;
        latencies.push(t.elapsed());
    }
    if !latencies.is_empty() {
        latencies.sort();
        let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
        println!(
            "2. {} single changes, HubSpot → DynamoDB: p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms (target: within 10 s)",
            latencies.len(),
            pct(0.5).as_secs_f64() * 1e3,
            pct(0.95).as_secs_f64() * 1e3,
            pct(1.0).as_secs_f64() * 1e3
        );
    }

    // 3. A burst of random changes, with HubSpot's duplicates and reordering.
    sim.update_faults(portal, |f| {
        f.webhook_duplicate_rate = 0.1;
        f.webhook_reorder = true;
    })?;
    let t = Instant::now();
    let report = sim.random_changes(portal, changes, Some(seed), &[])?;
    env.wait_converged(portal, Duration::from_secs(120)).await?;
    println!(
        "3. {changes} random changes ({} updates, {} deletes, {} restores, {} merges, {} creates; 10 % duplicated, reordered) → converged after {:.2} s",
        report.updated, report.deleted, report.restored, report.merged, report.created,
        t.elapsed().as_secs_f64()
    );

    // 4. A GDPR deletion.
    let contact = sim
        .object_ids(portal, SimType::Contacts, false)?
        .into_iter()
        .find(|id| {
            sim.get_object(portal, SimType::Contacts, *id)
                .ok()
                .flatten()
                .and_then(|o| o.prop("email").map(|e| !e.is_empty()))
                .unwrap_or(false)
        })
        .context("no contact with an email")?;
    sim.privacy_delete_contact(portal, contact)?;
    let key = RecordKey::new(PortalId(portal), ObjectType::Contacts, ObjectId(contact));
    wait_for("the privacy deletion", Duration::from_secs(30), || async {
        Ok(store
            .get_record(&key)
            .await?
            .filter(|r| r.meta.privacy_deleted))
    })
    .await?;
    println!("4. contact {contact} privacy-deleted in HubSpot → only a PII-free tombstone left");

    // Summary.
    println!("\nDynamoDB now holds (portal {portal}):");
    println!(
        "  {:<10} {:>8} {:>9} {:>11}",
        "type", "active", "archived", "tombstones"
    );
    for t in ObjectType::ALL {
        let (mut active, mut archived, mut tombs) = (0, 0, 0);
        let mut scan = store.scan_portal_records(PortalId(portal), t, 500);
        while let Some(page) = scan.next_page().await? {
            for r in page {
                if r.meta.privacy_deleted {
                    tombs += 1;
                } else if r.meta.archived {
                    archived += 1;
                } else {
                    active += 1;
                }
            }
        }
        let live = sim.count(portal, sim_type(t), false)?;
        println!(
            "  {:<10} {active:>8} {archived:>9} {tombs:>11}   (HubSpot live: {live})",
            t.to_string()
        );
    }
    let stats = env.runner.stats();
    let w = &stats.worker;
    let c = sim.counters();
    println!(
        "\nwebhook events delivered {}, queue messages {}, worker batches {}, HubSpot batch reads {}, records written {} (created {}, updated {}), skipped {:?}, archived {}",
        c.webhook_events_delivered,
        stats.messages,
        stats.batches,
        w.hubspot_calls,
        w.created + w.updated,
        w.created,
        w.updated,
        w.skipped,
        w.archived_deleted + w.archived_merged + w.archived_out_of_scope,
    );
    let versions: Vec<String> = c
        .requests_by_api_version
        .iter()
        .map(|(v, n)| format!("{v} {n}"))
        .collect();
    println!(
        "HubSpot API calls by version: {} (legacy /crm/v3, /crm/v4, /oauth/v1: {})",
        versions.join(", "),
        c.legacy_requests()
    );
    let d = compare_portal(sim, store, portal).await?;
    println!(
        "check: {} live records compared field by field with HubSpot, {} differences",
        d.compared,
        d.total()
    );
    Ok(())
}
