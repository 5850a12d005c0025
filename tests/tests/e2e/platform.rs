//! hubsync on HubSpot's current platform, end to end:
//! * a full flow — OAuth connect, a list-scoped mapping config validated
//!   against the portal, the initial sync, webhooks (records, owners,
//!   associations), a nightly reconciliation — calls only date-versioned
//!   APIs: the simulator refuses the legacy ones (`/crm/v3`, `/crm/v4`,
//!   `/oauth/v1`) as HubSpot will after their sunset, and its counters show
//!   none was called;
//! * a company with 1,000 associated contacts and 1,000 deals ends with all
//!   of them in DynamoDB, through a webhook and through a re-sync
//!   (associations are paged per input, 500 a page).

use std::time::Duration;

use hubspot_sim::{props, ObjectType as SimType, SeedSpec, SimConfig, WebhookFormat};
use hubsync_hubspot::{ObjectId, ObjectType, PortalId};
use hubsync_local::mapping::{validate_config, AssociationRule, MappingConfig, Rule, Transform};
use hubsync_local::reconcile::{local_reconciler, run_job, EngineConfig, JobMessage, SliceLimit};
use hubsync_local::{wait_for, Environment};
use hubsync_store::{MappingConfigStore, RecordKey, RecordStore, RunStatus, SyncJobKind};
use serde_json::Value;

use crate::helpers;
use crate::helpers::assert_converged;

const WAIT: Duration = Duration::from_secs(60);

async fn environment(name: &str, sim: SimConfig) -> anyhow::Result<(Environment, u64)> {
    helpers::start(helpers::options(name, sim)).await
}

async fn run(env: &Environment, portal: u64, kind: SyncJobKind) -> anyhow::Result<()> {
    let rec = local_reconciler(
        env,
        None,
        EngineConfig {
            store_page_size: 1_000,
            ..EngineConfig::default()
        },
    )?;
    let (report, _) = run_job(
        &rec,
        JobMessage::new(kind, PortalId(portal), vec![]),
        SliceLimit::unlimited(),
    )
    .await?;
    anyhow::ensure!(
        report.status == RunStatus::Completed,
        "{kind:?} run did not complete: {report:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_flow_calls_no_legacy_api() -> anyhow::Result<()> {
    let mut sim = SimConfig {
        refused_api_versions: vec!["legacy".into()],
        ..SimConfig::default()
    };
    sim.webhooks.format = WebhookFormat::Generic;
    sim.rate_limit.enabled = false;
    sim.initial_seed = SeedSpec {
        companies: 20,
        contacts: 40,
        deals: 20,
        owners: 5,
        ..SeedSpec::default()
    };
    let (env, portal) = environment("platform-flow", sim).await?;
    let state = env.sim.state();
    env.connect_portal(portal).await?;

    // A config with owner emails, associations and a list scope, validated
    // against the portal (properties and the Lists API) like `mapping set`.
    let contacts: Vec<u64> = state
        .list_objects(portal, SimType::Contacts, false)?
        .iter()
        .filter_map(|o| o.id.parse().ok())
        .collect();
    let list = state.create_list(portal, SimType::Contacts, "Customers / Active")?;
    state.add_to_list(portal, list, &contacts[..30])?;
    let mut config = MappingConfig::default();
    let c = config.object_mut(ObjectType::Contacts);
    c.lists = vec![list.to_string()];
    c.rules.push(Rule::new(
        "owner_email",
        &["hubspot_owner_id"],
        Transform::OwnerEmail,
    ));
    c.associations.push(AssociationRule {
        target: "company_id".into(),
        to: ObjectType::Companies,
        primary_only: true,
    });
    // Deals map `company_ids` by default.
    assert!(config
        .object(ObjectType::Deals)
        .associations
        .iter()
        .any(|a| a.target == "company_ids" && a.to == ObjectType::Companies));
    let client = hubsync_local::reconcile::sim_client(&env.sim.base_url(), None)?;
    let tokens = hubsync_auth::ConnectionTokens::new(
        env.runner.store().clone(),
        hubsync_auth::KmsCipher::new(
            aws_sdk_kms::Client::new(&env.aws),
            env.resources.kms_key_id.clone(),
        ),
    );
    let valid = validate_config(&client, &tokens, PortalId(portal), &config).await?;
    env.runner
        .store()
        .put_mapping_config(PortalId(portal), &valid)
        .await?;

    // The initial sync, then webhooks.
    run(&env, portal, SyncJobKind::Initial).await?;
    assert_converged(&env, portal, "after the initial sync").await?;
    let companies: Vec<u64> = state
        .list_objects(portal, SimType::Companies, false)?
        .iter()
        .filter_map(|o| o.id.parse().ok())
        .collect();
    for (i, &contact) in contacts.iter().enumerate().take(10) {
        state.associate(
            portal,
            SimType::Contacts,
            contact,
            SimType::Companies,
            companies[i],
            true,
        )?;
        state.update_object(
            portal,
            SimType::Contacts,
            contact,
            props([("firstname", format!("Renamed {i}"))]),
        )?;
    }
    let created = state.create_object(
        portal,
        SimType::Deals,
        props([("dealname", "New deal"), ("amount", "10")]),
    )?;
    state.associate(
        portal,
        SimType::Deals,
        created,
        SimType::Companies,
        companies[0],
        false,
    )?;
    env.wait_converged(portal, WAIT).await?;

    // The nightly run finds nothing to do and still calls no legacy API.
    run(&env, portal, SyncJobKind::Nightly).await?;
    assert_converged(&env, portal, "after the nightly run").await?;

    let counters = state.counters();
    assert_eq!(
        counters.legacy_requests(),
        0,
        "legacy API calls: {:?}",
        counters.requests_by_api_version
    );
    assert_eq!(counters.refused_api_calls, 0);
    let dated = counters
        .requests_by_api_version
        .get("2026-03")
        .copied()
        .unwrap_or(0);
    assert!(dated > 10, "{:?}", counters.requests_by_api_version);
    for route in [
        "POST /crm/v3/objects/{type}/batch/read",
        "GET /crm/v3/objects/{type}",
        "GET /crm/v3/owners",
        "POST /crm/v4/associations/{fromObjectType}/{toObjectType}/batch/read",
        "GET /crm/v3/lists/{listId}",
        "GET /crm/v3/lists/{listId}/memberships",
        "GET /crm/v3/properties/{type}",
        "POST /oauth/{version}/token",
    ] {
        assert!(
            counters.requests.get(route).copied().unwrap_or(0) > 0,
            "{route} (served on its date-versioned path) was called: {:?}",
            counters.requests
        );
    }
    env.stop().await;
    Ok(())
}

fn ids_of(record: &hubsync_store::StoredRecord, field: &str) -> usize {
    record
        .fields
        .get(field)
        .and_then(Value::as_array)
        .map_or(0, Vec::len)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_company_with_a_thousand_contacts_and_deals_syncs_completely() -> anyhow::Result<()> {
    let mut sim = SimConfig {
        association_page_size: 500,
        ..SimConfig::default()
    };
    sim.rate_limit.enabled = false;
    let (env, portal) = environment("platform-assoc", sim).await?;
    let state = env.sim.state();
    let mut config = MappingConfig::default();
    let co = config.object_mut(ObjectType::Companies);
    co.associations.push(AssociationRule {
        target: "contact_ids".into(),
        to: ObjectType::Contacts,
        primary_only: false,
    });
    co.associations.push(AssociationRule {
        target: "deal_ids".into(),
        to: ObjectType::Deals,
        primary_only: false,
    });
    env.runner
        .store()
        .put_mapping_config(PortalId(portal), &config)
        .await?;

    // Built before the portal is connected: these webhooks are skipped.
    let big = state.create_object(portal, SimType::Companies, props([("name", "Big")]))?;
    let twin = state.create_object(portal, SimType::Companies, props([("name", "Twin")]))?;
    for i in 0..1_000 {
        let c = state.create_object(
            portal,
            SimType::Contacts,
            props([("email", format!("c{i}@big.example.com"))]),
        )?;
        let d = state.create_object(
            portal,
            SimType::Deals,
            props([("dealname", format!("Deal {i}"))]),
        )?;
        for company in [big, twin] {
            state.associate(
                portal,
                SimType::Companies,
                company,
                SimType::Contacts,
                c,
                false,
            )?;
            state.associate(
                portal,
                SimType::Companies,
                company,
                SimType::Deals,
                d,
                false,
            )?;
        }
    }
    assert!(state.wait_webhooks_idle(WAIT).await);
    env.connect_portal(portal).await?;

    // Through a webhook: the company changes, the worker re-reads it with
    // every page of its associations.
    state.update_object(portal, SimType::Companies, big, props([("name", "Bigger")]))?;
    let key = RecordKey::new(PortalId(portal), ObjectType::Companies, ObjectId(big));
    let stored = wait_for("the big company with its associations", WAIT, || async {
        Ok(env
            .runner
            .store()
            .get_record(&key)
            .await?
            .filter(|r| r.fields.get("name") == Some(&Value::from("Bigger"))))
    })
    .await?;
    assert_eq!(ids_of(&stored, "contact_ids"), 1_000);
    assert_eq!(ids_of(&stored, "deal_ids"), 1_000);

    // Through a re-sync: the twin (never seen by a webhook) and every
    // contact and deal.
    run(&env, portal, SyncJobKind::Resync).await?;
    let twin = env
        .runner
        .store()
        .get_record(&RecordKey::new(
            PortalId(portal),
            ObjectType::Companies,
            ObjectId(twin),
        ))
        .await?
        .expect("the twin company was synced");
    assert_eq!(ids_of(&twin, "contact_ids"), 1_000);
    assert_eq!(ids_of(&twin, "deal_ids"), 1_000);
    assert_converged(&env, portal, "after the re-sync").await?;
    let counters = state.counters();
    let assoc = counters
        .requests
        .get("POST /crm/v4/associations/{fromObjectType}/{toObjectType}/batch/read")
        .copied()
        .unwrap_or(0);
    assert!(assoc >= 4, "association pages were followed: {assoc}");
    env.stop().await;
    Ok(())
}
