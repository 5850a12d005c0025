//! The application's journey through the admin API, served by the local
//! runner with the admin-api handler code, on moto and the simulator:
//! install link → connect → status → mapping → syncs → progress →
//! disconnect, and the caller check. (Every route's 4xx are covered
//! route by route in `functions/admin-api/tests/api.rs`.)

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use hubspot_sim::{SeedSpec, SimConfig};
use hubsync_local::admin::AdminClient;
use hubsync_local::reconcile::{drain, local_reconciler, take_sync_jobs, EngineConfig, SliceLimit};
use hubsync_local::Browser;
use serde_json::{json, Value};

use crate::helpers::{options, start};

fn sim(companies: usize, contacts: usize, deals: usize) -> SimConfig {
    SimConfig {
        initial_seed: SeedSpec {
            companies,
            contacts,
            deals,
            ..SeedSpec::default()
        },
        ..SimConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_application_connects_configures_syncs_and_disconnects_through_the_api() -> Result<()> {
    let (env, portal) = start(options("admin-journey", sim(40, 60, 30))).await?;
    let api = AdminClient::new(env.runner.base_url());
    let tenant = "acme-inc";
    let conn = format!("/v1/tenants/{tenant}/connections/{portal}");

    // Only the application's role gets in.
    let unsigned = api
        .as_caller(None)
        .get(&format!("/v1/tenants/{tenant}/connections"))
        .await?;
    assert_eq!(
        (unsigned.status, unsigned.code()),
        (401, Some("unauthenticated"))
    );
    let stranger = api
        .as_caller(Some("arn:aws:sts::000000000000:assumed-role/intruder/x"))
        .get(&format!("/v1/tenants/{tenant}/connections"))
        .await?;
    assert_eq!((stranger.status, stranger.code()), (403, Some("forbidden")));

    // Nothing connected yet.
    let none = api
        .get(&format!("/v1/tenants/{tenant}/connections"))
        .await?;
    assert_eq!((none.status, &none.body["connections"]), (200, &json!([])));
    assert_eq!(api.get(&conn).await?.status, 404);

    // "Connect HubSpot": the API signs the link, the admin's browser walks it.
    let link = api
        .call(
            "POST",
            &format!("/v1/tenants/{tenant}/install-links"),
            Some(&json!({"expires_in_secs": 300})),
        )
        .await?;
    assert_eq!(link.status, 201, "{:?}", link.body);
    env.sim.state().set_next_authorize_portal(Some(portal));
    let url = link.body["url"].as_str().context("a url")?;
    let trace = Browser::new().follow(url).await?;
    assert_eq!(trace.status, 200, "connected: {trace:?}");
    let reused = Browser::new().follow(url).await?;
    assert_eq!(reused.status, 403, "an install link works once");

    let listed = api
        .get(&format!("/v1/tenants/{tenant}/connections"))
        .await?;
    let c = &listed.body["connections"][0];
    assert_eq!(c["portal_id"], json!(portal));
    assert_eq!(c["state"], "active");
    assert!(!c["scopes"].as_array().context("scopes")?.is_empty());

    // The initial sync the connect queued, run by the reconciliation.
    let rec = local_reconciler(&env, None, EngineConfig::default())?;
    let jobs = take_sync_jobs(&env).await?;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    for job in jobs {
        rec.queue().enqueue_now(job);
    }
    drain(&rec, SliceLimit::unlimited()).await?;
    let status = api.get(&conn).await?;
    let last = &status.body["last_completed_sync"];
    assert_eq!(last["kind"], "initial_sync", "{:?}", status.body);
    assert_eq!(last["done"], json!(130));
    assert_eq!(last["estimated_total"], json!(130));
    assert_eq!(status.body["running_sync"], Value::Null);
    let runs = api.get(&format!("{conn}/syncs")).await?;
    let run_id = runs.body["runs"][0]["run_id"]
        .as_str()
        .context("a run")?
        .to_owned();
    let one = api.get(&format!("{conn}/syncs/{run_id}")).await?;
    assert_eq!(
        (one.status, &one.body["status"]),
        (200, &json!("completed"))
    );

    // The field-map editor: HubSpot's properties, a rejected config, a
    // preview, a save that re-syncs the changed type.
    let props = api.get(&format!("{conn}/properties/deals")).await?;
    assert_eq!(props.status, 200);
    let mut bad = hubsync_local::reconcile::MappingConfig::default();
    bad.object_mut(hubsync_hubspot::ObjectType::Deals)
        .rules
        .push(hubsync_local::reconcile::Rule::new(
            "seats",
            &["no_such_property"],
            hubsync_local::reconcile::Transform::Integer,
        ));
    let bad = serde_json::to_value(&bad)?;
    let rejected = api
        .call("PUT", &format!("{conn}/mapping"), Some(&bad))
        .await?;
    assert_eq!(rejected.status, 422, "{:?}", rejected.body);
    assert!(rejected.body["error"]["errors"]
        .to_string()
        .contains("no_such_property"));
    assert_eq!(
        api.get(&format!("{conn}/mapping")).await?.body["default"],
        true,
        "nothing saved"
    );
    let mut config = hubsync_local::reconcile::MappingConfig::default();
    config
        .object_mut(hubsync_hubspot::ObjectType::Deals)
        .rules
        .push(hubsync_local::reconcile::Rule::new(
            "deal_type",
            &["dealtype"],
            hubsync_local::reconcile::Transform::String,
        ));
    let config = serde_json::to_value(&config)?;
    let preview = api
        .call(
            "POST",
            &format!("{conn}/mapping/preview"),
            Some(&json!({"config": config, "object_types": ["deals"], "sample": 3})),
        )
        .await?;
    assert_eq!(preview.status, 200, "{:?}", preview.body);
    let saved = api
        .call("PUT", &format!("{conn}/mapping"), Some(&config))
        .await?;
    assert_eq!(saved.status, 200, "{:?}", saved.body);
    assert_eq!(saved.body["resync"]["object_types"], json!(["deals"]));
    let jobs = take_sync_jobs(&env).await?;
    assert_eq!(jobs.len(), 1);
    assert_eq!(
        jobs[0].run_id.as_deref(),
        saved.body["resync"]["run_id"].as_str()
    );

    // "Retry sync".
    let retry = api
        .call(
            "POST",
            &format!("{conn}/syncs"),
            Some(&json!({"kind": "resync"})),
        )
        .await?;
    assert_eq!(retry.status, 202, "{:?}", retry.body);
    assert_eq!(take_sync_jobs(&env).await?.len(), 1);

    // Disconnect: tokens gone, records kept, syncs refused.
    let records_before = env.runner.store().stats().writes();
    let gone = api.call("DELETE", &conn, None).await?;
    assert_eq!(gone.status, 200, "{:?}", gone.body);
    assert_eq!(gone.body["revoked_at_hubspot"], true);
    let after = api.get(&conn).await?;
    assert_eq!(after.body["state"], "disconnected");
    let refused = api
        .call(
            "POST",
            &format!("{conn}/syncs"),
            Some(&json!({"kind": "resync"})),
        )
        .await?;
    assert_eq!((refused.status, refused.code()), (409, Some("conflict")));
    assert!(take_sync_jobs(&env).await?.is_empty());
    assert!(
        env.runner.store().stats().writes() - records_before <= 2,
        "no record was touched"
    );
    env.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sync_of_20000_records_reports_rising_progress_with_its_total_from_the_first_poll(
) -> Result<()> {
    let (env, portal) = start(options("admin-progress", sim(0, 20_000, 0))).await?;
    env.connect_portal(portal).await?;
    let tenant = format!("tenant-{portal}");
    let api = AdminClient::new(env.runner.base_url());
    let conn = format!("/v1/tenants/{tenant}/connections/{portal}");
    take_sync_jobs(&env).await?; // the connect's own initial sync

    let started = api
        .call(
            "POST",
            &format!("{conn}/syncs"),
            Some(&json!({"kind": "initial_sync", "object_types": ["contacts"]})),
        )
        .await?;
    assert_eq!(started.status, 202, "{:?}", started.body);
    let run_id = started.body["run_id"]
        .as_str()
        .context("run id")?
        .to_owned();
    let jobs = take_sync_jobs(&env).await?;
    assert_eq!(jobs.len(), 1);

    // Progress is checkpointed every 10 pages (1,000 records).
    let config = EngineConfig {
        checkpoint_every_pages: 10,
        ..EngineConfig::default()
    };
    let rec = local_reconciler(&env, None, config)?;
    for job in jobs {
        rec.queue().enqueue_now(job);
    }
    let sync = tokio::spawn(async move { drain(&rec, SliceLimit::unlimited()).await.map(|_| ()) });

    // The application polls the connection like a status screen would.
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut seen: Vec<(u64, Option<u64>)> = Vec::new();
    let final_done = loop {
        ensure!(
            Instant::now() < deadline,
            "the sync did not finish: {seen:?}"
        );
        let status = api.get(&conn).await?;
        ensure!(status.status == 200, "{:?}", status.body);
        let running = &status.body["running_sync"];
        let done_run = &status.body["last_completed_sync"];
        if running["run_id"] == json!(run_id) {
            let t = &running["types"][0];
            seen.push((
                t["done"].as_u64().context("done")?,
                t["estimated_total"].as_u64(),
            ));
        } else if done_run["run_id"] == json!(run_id) {
            break done_run["done"].as_u64().context("done")?;
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    };
    sync.await??;
    assert!(
        seen.len() >= 5,
        "polled the running sync {} times: {seen:?}",
        seen.len()
    );
    assert!(
        seen.iter().all(|(_, total)| *total == Some(20_000)),
        "the total is known from the first poll on: {seen:?}"
    );
    assert!(
        seen.windows(2).all(|w| w[0].0 <= w[1].0),
        "done never goes back: {seen:?}"
    );
    assert!(seen.first().map(|s| s.0) < Some(20_000), "{seen:?}");
    assert_eq!(final_done, 20_000);
    env.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_record_with_a_field_error_is_in_sync_health_until_it_syncs_cleanly() -> Result<()> {
    let (env, portal) = start(options("admin-health", sim(0, 0, 0))).await?;
    env.connect_portal(portal).await?;
    let api = AdminClient::new(env.runner.base_url());
    let health = format!("/v1/tenants/tenant-{portal}/connections/{portal}/health");
    let s = env.sim.state();
    // HubSpot takes a negative number; the default map's `employee_count`
    // is a count, so the value does not convert.
    let id = s.create_object(
        portal,
        hubspot_sim::ObjectType::Companies,
        hubspot_sim::props([("name", "Acme"), ("numberofemployees", "-5")]),
    )?;
    let report = hubsync_local::wait_for(
        "the issue in sync health",
        Duration::from_secs(30),
        || async {
            let h = api.get(&health).await?;
            Ok((h.body["records_with_issues"] == 1).then_some(h.body))
        },
    )
    .await?;
    let c = &report["categories"][0];
    assert_eq!(c["category"], "mapping", "{report}");
    assert_eq!(c["affected_records"], 1);
    assert_eq!(c["by_field"]["employee_count"], 1);
    let example = &c["examples"][0];
    assert_eq!(example["object_type"], "companies");
    assert_eq!(example["object_id"], id.to_string());
    assert_eq!(example["field"], "employee_count");
    assert!(
        !report.to_string().contains("-5"),
        "no values in sync health: {report}"
    );
    let deals_only = api.get(&format!("{health}?object_type=deals")).await?;
    assert_eq!(deals_only.body["records_with_issues"], 0);
    let refused = api.get(&format!("{health}?examples=1000")).await?;
    assert_eq!(
        (refused.status, refused.code()),
        (400, Some("invalid_request"))
    );

    // Fixed in HubSpot: the next clean sync of the record clears it.
    s.update_object(
        portal,
        hubspot_sim::ObjectType::Companies,
        id,
        hubspot_sim::props([("numberofemployees", "12")]),
    )?;
    hubsync_local::wait_for(
        "the record to leave sync health",
        Duration::from_secs(30),
        || async {
            let h = api.get(&health).await?;
            Ok(
                (h.body["records_with_issues"] == 0 && h.body["categories"] == json!([]))
                    .then_some(()),
            )
        },
    )
    .await?;
    env.stop().await;
    Ok(())
}
