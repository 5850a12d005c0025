//! A record over DynamoDB's item limit, end to end (simulator → worker and
//! nightly reconciliation → moto): seven mapped notes of 70,000 characters
//! on a deal among 100 normal ones (and on a second one whose webhooks are
//! lost). Every record is stored — the big ones without the notes that do
//! not fit, reported `too_large` by the worker's counters, the nightly run
//! report and sync health — the DLQ stays empty and the nightly run
//! finishes.

use std::time::Duration;

use hubspot_sim::{props, ObjectType as SimType, PropertyDef, SeedSpec, SimConfig};
use hubsync_hubspot::{ObjectId, ObjectType, PortalId};
use hubsync_local::reconcile::{local_reconciler, run_job, EngineConfig, SliceLimit};
use hubsync_local::wait_for;
use hubsync_store::{
    MappingConfigStore, RecordKey, RecordStore, RunStatus, SyncJobKind, TOO_LARGE,
};

use crate::helpers;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deal_over_the_item_limit_is_stored_without_its_biggest_notes() -> anyhow::Result<()> {
    let sim_config = SimConfig {
        initial_seed: SeedSpec {
            deals: 100,
            ..SeedSpec::default()
        },
        ..SimConfig::default()
    };
    let (env, portal) = helpers::start_connected(helpers::options("oversized", sim_config)).await?;
    let sim = env.sim.state();
    let mut config = hubsync_local::reconcile::MappingConfig::default();
    for i in 0..7 {
        let name = format!("notes_{i}");
        sim.create_property(
            portal,
            SimType::Deals,
            PropertyDef {
                name: name.clone(),
                prop_type: "string".into(),
                field_type: "textarea".into(),
                group_name: "dealinformation".into(),
                ..PropertyDef::default()
            },
        )?;
        config
            .object_mut(ObjectType::Deals)
            .rules
            .push(hubsync_local::reconcile::Rule::new(
                &name,
                &[name.as_str()],
                hubsync_local::reconcile::Transform::String,
            ));
    }
    env.runner
        .store()
        .put_mapping_config(PortalId(portal), &config)
        .await?;

    // Real time: the worker stores the big deal without what does not fit.
    let big = "n".repeat(70_000);
    let mut p: Vec<(String, String)> = (0..7)
        .map(|i| (format!("notes_{i}"), big.clone()))
        .collect();
    p.push(("dealname".into(), "Huge".into()));
    let id = sim.create_object(
        portal,
        SimType::Deals,
        props(p.iter().map(|(k, v)| (k.as_str(), v.clone()))),
    )?;
    let key = RecordKey::new(PortalId(portal), ObjectType::Deals, ObjectId(id));
    let stored = wait_for("the big deal", Duration::from_secs(30), || async {
        Ok(env.runner.store().get_record(&key).await?)
    })
    .await?;
    assert_eq!(stored.fields["name"], "Huge");
    let emptied = (0..7)
        .filter(|i| stored.fields[format!("notes_{i}").as_str()].is_null())
        .count();
    assert!(
        (1..7).contains(&emptied),
        "only what does not fit: {emptied} emptied"
    );
    assert!(env.runner.stats().worker.too_large >= 1);

    // A second one whose webhooks are lost: the nightly run finds it.
    sim.update_faults(portal, |f| f.webhook_drop_rate = 1.0)?;
    let missed = sim.create_object(
        portal,
        SimType::Deals,
        props(p.iter().map(|(k, v)| (k.as_str(), v.clone()))),
    )?;
    sim.wait_webhooks_idle(Duration::from_secs(30)).await;

    // The nightly run: all 102 deals stored, the big one reported, done.
    let rec = local_reconciler(&env, None, EngineConfig::default())?;
    let mut job = hubsync_local::reconcile::JobMessage::new(
        SyncJobKind::Nightly,
        PortalId(portal),
        vec![ObjectType::Deals],
    );
    job.run_id = Some(hubsync_messages::new_run_id(
        SyncJobKind::Nightly,
        chrono::Utc::now().timestamp_millis(),
    ));
    let (report, _) = run_job(&rec, job, SliceLimit::unlimited()).await?;
    assert_eq!(report.status, RunStatus::Completed);
    assert_eq!(report.done, 102);
    assert_eq!(
        report.types[0].counters.too_large, 1,
        "the run report says so"
    );
    let mut stored_deals = 0;
    let mut scan = env
        .runner
        .store()
        .scan_portal_records(PortalId(portal), ObjectType::Deals, 200);
    while let Some(page) = scan.next_page().await? {
        stored_deals += page.iter().filter(|r| !r.meta.archived).count();
    }
    assert_eq!(stored_deals, 102);

    let health = hubsync_admin::health::report(
        env.runner.store(),
        PortalId(portal),
        &[ObjectType::Deals],
        10,
    )
    .await?;
    let too_large = health
        .categories
        .iter()
        .find(|c| c.category == TOO_LARGE)
        .expect("a too_large category");
    assert_eq!(too_large.affected_records, 2);
    let ids: Vec<&str> = too_large
        .examples
        .iter()
        .map(|e| e.object_id.as_str())
        .collect();
    assert!(
        ids.contains(&id.to_string().as_str()) && ids.contains(&missed.to_string().as_str()),
        "{ids:?}"
    );
    assert_eq!(env.dlq_depth().await?, 0, "nothing dead-lettered");
    env.stop().await;
    Ok(())
}
