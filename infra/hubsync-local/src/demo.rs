//! `make demo`: the application's journey through hubsync, on the local
//! stack, every step through the admin API (`/v1`, the admin-api handler
//! code) the way the application's backend calls it:
//!
//! 1. create an install link, walk it in a browser (HubSpot's consent),
//!    read the connection;
//! 2. save a field map with a custom field (validated against HubSpot);
//! 3. the initial sync, its count ticking up from the status route;
//! 4. changes in HubSpot: timed to DynamoDB, and their `record.changed`
//!    events as the application receives them;
//! 5. a burst with 10 % of webhooks dropped, and the nightly
//!    reconciliation's report fixing the drift;
//! 6. a privacy deletion;
//! 7. sync health: a value that does not convert, and the record listed.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use hubspot_sim::{props, ObjectType as SimType, SeedSpec, SimConfig, WebhookFormat};
use hubsync_hubspot::{ObjectId, ObjectType, PortalId};
use hubsync_store::{RecordKey, RecordStore, SyncJobKind};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{json, Value};

use crate::admin::AdminClient;
use crate::compare::compare_portal;
use crate::inbox::Inbox;
use crate::reconcile::{drain, local_reconciler, take_sync_jobs, EngineConfig, SliceLimit};
use crate::{wait_for, Browser, EnvOptions, Environment, QueueSettings};

/// What the demo does.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub companies: usize,
    pub contacts: usize,
    pub deals: usize,
    pub changes: usize,
    pub timed: usize,
    pub seed: u64,
    pub webhook_format: WebhookFormat,
}

const TENANT: &str = "acme-app";

/// Runs the demo against the local stack (`AWS_ENDPOINT_URL`).
pub async fn run(o: DemoOptions) -> Result<()> {
    if std::env::var_os("AWS_ENDPOINT_URL").is_none() {
        bail!("AWS_ENDPOINT_URL is not set: run `make demo` (it starts moto), or `infra/local/with-stack.sh cargo run -p hubsync-local -- demo`");
    }
    let aws = hubsync_runtime::aws_sdk_config().await;
    let mut sim = SimConfig {
        seed: o.seed,
        initial_seed: SeedSpec {
            companies: o.companies,
            contacts: o.contacts,
            deals: o.deals,
            ..SeedSpec::default()
        },
        ..SimConfig::default()
    };
    sim.webhooks.format = o.webhook_format;
    let started = Instant::now();
    let env = Environment::start_with(
        aws,
        EnvOptions {
            prefix: format!("hubsync-demo-{}", std::process::id()),
            sim,
            queues: QueueSettings::default(),
            batch_size: None,
        },
        |c| c.change_events = true,
    )
    .await?;
    println!("hubsync local demo — the application's journey through the admin API");
    println!("  HubSpot (simulator)  {}", env.sim.base_url());
    println!(
        "  AWS (moto)           {}",
        std::env::var("AWS_ENDPOINT_URL").unwrap_or_default()
    );
    println!(
        "  hubsync API          {}/v1 (IAM-authorized in AWS; here the runner plays the gateway)\n",
        env.runner.base_url()
    );
    let result = journey(&env, &o).await;
    env.stop().await;
    result?;
    println!("\ndone in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

async fn journey(env: &Environment, o: &DemoOptions) -> Result<()> {
    let api = AdminClient::new(env.runner.base_url());
    let portal = env.sim.state().portal_ids()[0];
    let conn = format!("/v1/tenants/{TENANT}/connections/{portal}");
    let mut inbox = Inbox::new(env);

    // 1. Connect HubSpot.
    let link = api
        .call(
            "POST",
            &format!("/v1/tenants/{TENANT}/install-links"),
            Some(&json!({"expires_in_secs": 600})),
        )
        .await?;
    ensure!(link.status == 201, "install link: {:?}", link.body);
    env.sim.state().set_next_authorize_portal(Some(portal));
    let trace = Browser::new()
        .follow(link.body["url"].as_str().context("a link")?)
        .await?;
    ensure!(
        trace.status == 200,
        "the connect flow ended with {}",
        trace.status
    );
    let status = api.get(&conn).await?;
    println!(
        "1. POST /install-links → the admin clicks \"Connect HubSpot\" → consent → GET /connections/{portal}: {} (portal {}, {} scopes)",
        status.body["state"].as_str().unwrap_or("?"),
        status.body["portal_id"],
        status.body["scopes"].as_array().map_or(0, Vec::len)
    );

    // 2. The field map: the defaults plus one custom field.
    let mut config = crate::reconcile::MappingConfig::default();
    config
        .object_mut(ObjectType::Deals)
        .rules
        .push(crate::reconcile::Rule::new(
            "deal_type",
            &["dealtype"],
            crate::reconcile::Transform::String,
        ));
    let saved = api
        .call(
            "PUT",
            &format!("{conn}/mapping?resync=none"),
            Some(&serde_json::to_value(&config)?),
        )
        .await?;
    ensure!(saved.status == 200, "save mapping: {:?}", saved.body);
    println!(
        "2. PUT /mapping → revision {} saved (validated against HubSpot's properties; deals get a custom `deal_type`)",
        saved.body["saved"]["revision"]
    );

    // 3. The initial sync the connect queued, watched from the status route.
    let rec = local_reconciler(
        env,
        None,
        EngineConfig {
            checkpoint_every_pages: 5,
            ..EngineConfig::default()
        },
    )?;
    // As in Lambda, the job is split per type and the types run side by
    // side (one reconcile instance each).
    for job in take_sync_jobs(env).await? {
        let run_id = job.run_id.clone().unwrap_or_else(|| {
            hubsync_messages::new_run_id(job.job.kind, chrono::Utc::now().timestamp_millis())
        });
        for t in job.types() {
            rec.queue().enqueue_now(job.for_type(t, &run_id, false));
        }
    }
    let t = Instant::now();
    let rec = std::sync::Arc::new(rec);
    let workers: Vec<_> = (0..ObjectType::ALL.len())
        .map(|_| {
            let rec = rec.clone();
            tokio::spawn(async move { drain(&rec, SliceLimit::unlimited()).await.map(|_| ()) })
        })
        .collect();
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("   [{bar:40}] {pos}/{len} records") {
        bar.set_style(style.progress_chars("=> "));
    }
    let mut polls = 0;
    let mut counted_from: Option<usize> = None;
    let last = loop {
        let s = api.get(&conn).await?;
        polls += 1;
        if let Some(run) = s.body.get("running_sync").filter(|r| !r.is_null()) {
            if let Some(total) = run["estimated_total"].as_u64() {
                bar.set_length(total);
                if counted_from.is_none() {
                    counted_from = Some(polls);
                }
            }
            bar.set_position(run["done"].as_u64().unwrap_or(0));
        } else if s.body["last_completed_sync"]["kind"] == "initial_sync" {
            break s.body["last_completed_sync"].clone();
        }
        ensure!(
            t.elapsed() < Duration::from_secs(600),
            "the initial sync did not finish"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for w in workers {
        w.await??;
    }
    bar.finish_and_clear();
    let per_type: Vec<String> = last["types"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| format!("{} {}", t["done"], t["object_type"].as_str().unwrap_or("?")))
        .collect();
    println!(
        "3. initial sync: GET /connections/{portal} polled {polls} times while the count ticked up (total known from poll {}) → \"Sync complete — {}\" in {:.1} s",
        counted_from.map_or("-".to_owned(), |p| p.to_string()),
        per_type.join(", "),
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let imported = inbox
        .drain(Duration::from_secs(2), Duration::from_secs(600))
        .await?;
    println!(
        "   the application received {imported} events for it (record.changed created, sync.progress, sync.completed, connection.connected) within {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // 4. Changes in HubSpot, timed to DynamoDB, and their events.
    let sim = env.sim.state();
    let store = env.runner.store();
    let ids = sim.object_ids(portal, SimType::Companies, false)?;
    let mut latencies = Vec::new();
    for (n, id) in ids.iter().take(o.timed).enumerate() {
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
            Ok(r.filter(|r| r.fields.get("name").and_then(Value::as_str) == Some(name.as_str())))
        })
        .await?;
        latencies.push(t.elapsed());
    }
    if !latencies.is_empty() {
        latencies.sort();
        let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
        println!(
            "4. {} renames in HubSpot → DynamoDB: p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms",
            latencies.len(),
            pct(0.5).as_secs_f64() * 1e3,
            pct(0.95).as_secs_f64() * 1e3,
            pct(1.0).as_secs_f64() * 1e3
        );
        inbox
            .drain(Duration::from_secs(1), Duration::from_secs(60))
            .await?;
        for id in ids.iter().take(o.timed.min(3)) {
            for (kind, fields) in inbox.of_record(portal, "companies", *id) {
                if kind == "updated" {
                    println!("   event record.changed: companies {id} {kind} {fields:?}");
                }
            }
        }
    }

    // 5. A burst with dropped webhooks; the nightly reconciliation fixes it.
    sim.update_faults(portal, |f| {
        f.webhook_drop_rate = 0.1;
        f.webhook_duplicate_rate = 0.1;
        f.webhook_reorder = true;
    })?;
    let report = sim.random_changes(portal, o.changes, Some(o.seed), &[])?;
    env.wait_quiet(Duration::from_secs(120)).await?;
    let drift_before = compare_portal(sim, store, portal).await?;
    println!(
        "5. {} random changes in HubSpot ({} updates, {} deletes, {} restores, {} merges, {} creates), 10 % of webhooks dropped → {} differences from HubSpot (missing, different, not archived)",
        o.changes, report.updated, report.deleted, report.restored, report.merged, report.created,
        drift_before.total()
    );
    sim.update_faults(portal, |f| {
        f.webhook_drop_rate = 0.0;
        f.webhook_duplicate_rate = 0.0;
        f.webhook_reorder = false;
    })?;
    let nightly = local_reconciler(env, None, EngineConfig::default())?;
    let mut job =
        crate::reconcile::JobMessage::new(SyncJobKind::Nightly, PortalId(portal), Vec::new());
    let run_id =
        hubsync_messages::new_run_id(SyncJobKind::Nightly, chrono::Utc::now().timestamp_millis());
    job.run_id = Some(run_id.clone());
    nightly.queue().enqueue_now(job);
    drain(&nightly, SliceLimit::unlimited()).await?;
    let run = api.get(&format!("{conn}/syncs/{run_id}")).await?;
    let after = compare_portal(sim, store, portal).await?;
    println!(
        "   02:00 UTC reconciliation: GET /syncs/{run_id} → {}, {} records checked, {} records fixed → now {} differences",
        run.body["status"].as_str().unwrap_or("?"),
        run.body["done"],
        run.body["drift"],
        after.total()
    );

    // 6. A privacy deletion.
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
    inbox
        .drain(Duration::from_secs(1), Duration::from_secs(60))
        .await?;
    let purged = inbox
        .of_record(portal, "contacts", contact)
        .iter()
        .any(|(k, _)| k == "purged");
    println!("6. contact {contact} privacy-deleted in HubSpot → a PII-free tombstone, event record.changed purged: {purged}");

    // 7. Sync health.
    let bad = sim.create_object(
        portal,
        SimType::Companies,
        props([("name", "Negative Inc"), ("numberofemployees", "-5")]),
    )?;
    let health = wait_for(
        "the issue in sync health",
        Duration::from_secs(30),
        || async {
            let h = api.get(&format!("{conn}/health")).await?;
            Ok((h.body["records_with_issues"].as_u64() > Some(0)).then_some(h.body))
        },
    )
    .await?;
    let c = &health["categories"][0];
    println!(
        "7. GET /health → {} record(s) with issues; category {}: {} ({}), e.g. companies {bad}: {}",
        health["records_with_issues"],
        c["category"].as_str().unwrap_or("?"),
        c["affected_records"],
        c["by_field"],
        c["examples"][0]["message"].as_str().unwrap_or("?")
    );

    // Summary.
    let counts: Vec<String> = [
        "record.changed",
        "sync.progress",
        "sync.completed",
        "connection.connected",
    ]
    .iter()
    .map(|t| format!("{} {t}", inbox.of_type(t).len()))
    .collect();
    println!(
        "\nevents the application received (EventBridge → its queue): {}",
        counts.join(", ")
    );
    let c = sim.counters();
    println!(
        "HubSpot API calls: {} (legacy endpoints: {}); webhook events delivered {}",
        c.requests_by_api_version.values().sum::<u64>(),
        c.legacy_requests(),
        c.webhook_events_delivered
    );
    Ok(())
}
