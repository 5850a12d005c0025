//! The seeds' default map end to end: deals carry their pipeline's and
//! stage's labels (HubSpot's pipelines API) beside the ids and
//! `close_probability` as a number; a label renamed in HubSpot's pipeline
//! settings — no webhook — reaches the records with the next
//! reconciliation. And an additive config that adds one custom field and
//! nothing else validates, previews and syncs that field beside every
//! default, through the admin API.

use std::time::Duration;

use anyhow::{Context, Result};
use hubspot_sim::{props, ObjectType as SimType, PropertyDef, SeedSpec, SimConfig};
use hubsync_hubspot::{ObjectId, ObjectType, PortalId};
use hubsync_local::admin::AdminClient;
use hubsync_local::reconcile::{
    drain, local_reconciler, run_job, take_sync_jobs, EngineConfig, JobMessage, SliceLimit,
};
use hubsync_local::Environment;
use hubsync_store::{RecordKey, RecordStore, StoredRecord, SyncJobKind};
use serde_json::{json, Value};

use crate::helpers::{assert_converged, options, start};

const WAIT: Duration = Duration::from_secs(30);

async fn deal(env: &Environment, portal: u64, id: u64) -> Result<StoredRecord> {
    env.runner
        .store()
        .get_record(&RecordKey::new(
            PortalId(portal),
            ObjectType::Deals,
            ObjectId(id),
        ))
        .await?
        .context("deal stored")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deals_show_pipeline_and_stage_labels_and_a_renamed_label_arrives_with_the_next_run(
) -> Result<()> {
    let mut sim = SimConfig::default();
    sim.rate_limit.enabled = false;
    sim.initial_seed = SeedSpec {
        companies: 10,
        contacts: 20,
        deals: 25,
        ..SeedSpec::default()
    };
    let (env, portal) = start(options("default-map-labels", sim)).await?;
    env.connect_portal(portal).await?;
    let state = env.sim.state();
    let id = state.object_ids(portal, SimType::Deals, false)?[0];
    state.update_object(
        portal,
        SimType::Deals,
        id,
        props([
            ("pipeline", "default"),
            ("dealstage", "qualifiedtobuy"),
            ("hs_deal_stage_probability", "0.4"),
        ]),
    )?;
    env.wait_quiet(WAIT).await?;
    let rec = local_reconciler(&env, None, EngineConfig::default())?;
    run_job(
        &rec,
        JobMessage::new(SyncJobKind::Initial, PortalId(portal), vec![]),
        SliceLimit::unlimited(),
    )
    .await?;
    assert_converged(&env, portal, "after the initial sync").await?;
    let r = deal(&env, portal, id).await?;
    assert_eq!(r.fields["pipeline"], json!("Sales Pipeline"));
    assert_eq!(r.fields["pipeline_id"], json!("default"));
    assert_eq!(r.fields["stage"], json!("Qualified To Buy"));
    assert_eq!(r.fields["stage_id"], json!("qualifiedtobuy"));
    assert_eq!(r.fields["close_probability"], json!(0.4));
    assert!(r.fields["company_ids"].is_array() && r.fields["contact_ids"].is_array());

    // Renamed in HubSpot's pipeline settings: no webhook, no deal changes.
    state.rename_pipeline(portal, "default", "New Business")?;
    state.rename_stage(portal, "default", "qualifiedtobuy", "Qualified")?;
    env.wait_quiet(WAIT).await?;
    assert_eq!(
        deal(&env, portal, id).await?.fields["stage"],
        json!("Qualified To Buy"),
        "nothing told hubsync yet"
    );
    let (report, _) = run_job(
        &rec,
        JobMessage::new(SyncJobKind::Nightly, PortalId(portal), vec![]),
        SliceLimit::unlimited(),
    )
    .await?;
    let r = deal(&env, portal, id).await?;
    assert_eq!(r.fields["pipeline"], json!("New Business"));
    assert_eq!(r.fields["stage"], json!("Qualified"));
    assert_eq!(r.fields["stage_id"], json!("qualifiedtobuy"));
    let deals = report
        .types
        .iter()
        .find(|t| t.object_type == ObjectType::Deals)
        .context("deals in the report")?;
    assert!(deals.counters.updated > 0, "{:?}", deals.counters);
    assert_converged(&env, portal, "after the nightly run").await?;
    env.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_config_adding_one_custom_field_validates_previews_and_syncs_it_beside_the_defaults(
) -> Result<()> {
    let mut sim = SimConfig::default();
    sim.rate_limit.enabled = false;
    sim.initial_seed = SeedSpec {
        companies: 8,
        contacts: 20,
        deals: 10,
        ..SeedSpec::default()
    };
    let (env, portal) = start(options("default-map-additive", sim)).await?;
    let state = env.sim.state();
    state.create_property(
        portal,
        SimType::Contacts,
        PropertyDef {
            name: "plan_tier".into(),
            label: "Plan tier".into(),
            prop_type: "string".into(),
            field_type: "text".into(),
            ..PropertyDef::default()
        },
    )?;
    let contacts = state.object_ids(portal, SimType::Contacts, false)?;
    for (i, id) in contacts.iter().enumerate() {
        let tier = if i % 2 == 0 { "gold" } else { "silver" };
        state.update_object(portal, SimType::Contacts, *id, props([("plan_tier", tier)]))?;
    }
    state.wait_webhooks_idle(WAIT).await;
    let tenant = "pulse";
    let trace = env.connect_portal_as(portal, tenant).await?;
    assert_eq!(trace.status, 200);
    let rec = local_reconciler(&env, None, EngineConfig::default())?;
    for job in take_sync_jobs(&env).await? {
        rec.queue().enqueue_now(job);
    }
    drain(&rec, SliceLimit::unlimited()).await?;

    let api = AdminClient::new(env.runner.base_url());
    let conn = format!("/v1/tenants/{tenant}/connections/{portal}");
    let config = json!({"extends": "default",
        "contacts": {"rules": [{"target": "plan", "source": "plan_tier", "transform": {"type": "string"}}]}});
    let valid = api
        .call("POST", &format!("{conn}/mapping/validate"), Some(&config))
        .await?;
    assert_eq!(valid.status, 200, "{:?}", valid.body);
    let preview = api
        .call(
            "POST",
            &format!("{conn}/mapping/preview"),
            Some(&json!({"config": config, "object_types": ["contacts"], "sample": 5})),
        )
        .await?;
    assert_eq!(preview.status, 200, "{:?}", preview.body);
    let first = preview.body["types"][0]["records"]
        .as_array()
        .and_then(|r| r.iter().find(|o| o.get("record").is_some()))
        .context("a mapped contact in the preview")?
        .clone();
    let fields = &first["record"];
    assert!(fields["plan"].is_string(), "{first}");
    assert!(fields["email"].is_string() && fields.get("last_activity_at").is_some());

    let saved = api
        .call("PUT", &format!("{conn}/mapping"), Some(&config))
        .await?;
    assert_eq!(saved.status, 200, "{:?}", saved.body);
    assert_eq!(saved.body["resync"]["object_types"], json!(["contacts"]));
    // The stored form is what was written: only the custom field.
    let shown = api.get(&format!("{conn}/mapping")).await?;
    assert_eq!(shown.body["config"], config, "{:?}", shown.body);
    assert_eq!(shown.body["custom_fields"]["contacts"], json!(["plan"]));
    for job in take_sync_jobs(&env).await? {
        rec.queue().enqueue_now(job);
    }
    drain(&rec, SliceLimit::unlimited()).await?;
    assert_converged(&env, portal, "after the re-sync").await?;
    let stored = env
        .runner
        .store()
        .get_record(&RecordKey::new(
            PortalId(portal),
            ObjectType::Contacts,
            ObjectId(contacts[0]),
        ))
        .await?;
    if let Some(r) = stored.filter(|r| !r.meta.archived) {
        assert_eq!(r.fields["plan"], Value::from("gold"));
        assert!(r.fields.contains_key("owner") && r.fields.contains_key("company_ids"));
    }
    env.stop().await;
    Ok(())
}
