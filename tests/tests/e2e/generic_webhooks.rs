//! HubSpot's generic webhook format (`object.creation` with `objectTypeId`,
//! the format of developer-platform apps' `crmObjects` subscriptions),
//! alone and mixed with the classic one in the same deliveries: hubsync
//! converges through webhooks alone — no reconciliation runs here — field
//! by field against the simulator.

use std::time::Duration;

use hubspot_sim::{props, ObjectType as SimType, SimConfig, WebhookFormat};
use hubsync_hubspot::{ObjectType, PortalId};
use hubsync_local::mapping::{AssociationRule, MappingConfig};
use hubsync_local::Environment;
use hubsync_store::MappingConfigStore;

use crate::helpers;

async fn environment(name: &str, format: WebhookFormat) -> anyhow::Result<(Environment, u64)> {
    let mut sim = SimConfig::default();
    sim.webhooks.format = format;
    helpers::start_connected(helpers::options(name, sim)).await
}

/// Every delivered event's subscription type, with how often it came.
fn delivered_types(env: &Environment) -> std::collections::BTreeMap<String, usize> {
    let mut m = std::collections::BTreeMap::new();
    for e in env.sim.state().events() {
        *m.entry(e.subscription_type).or_default() += 1;
    }
    m
}

/// Deals carry their companies and contacts, contacts their primary
/// company: association changes are then visible in DynamoDB.
fn association_config() -> MappingConfig {
    let mut c = MappingConfig::default();
    let deals = c.object_mut(ObjectType::Deals);
    deals.associations.push(AssociationRule {
        target: "company_ids".into(),
        to: ObjectType::Companies,
        primary_only: false,
    });
    deals.associations.push(AssociationRule {
        target: "contact_ids".into(),
        to: ObjectType::Contacts,
        primary_only: false,
    });
    c.object_mut(ObjectType::Contacts)
        .associations
        .push(AssociationRule {
            target: "company_id".into(),
            to: ObjectType::Companies,
            primary_only: true,
        });
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generic_webhooks_alone_converge_for_every_kind_of_change() -> anyhow::Result<()> {
    let (env, portal) = environment("generic-only", WebhookFormat::Generic).await?;
    env.runner
        .store()
        .put_mapping_config(PortalId(portal), &association_config())
        .await?;
    let sim = env.sim.state();
    let mut companies = Vec::new();
    let mut contacts = Vec::new();
    let mut deals = Vec::new();
    for i in 0..20 {
        companies.push(sim.create_object(
            portal,
            SimType::Companies,
            props([
                ("name", format!("Company {i}")),
                ("domain", format!("c{i}.example.com")),
            ]),
        )?);
    }
    for i in 0..40 {
        contacts.push(sim.create_object(
            portal,
            SimType::Contacts,
            props([
                ("email", format!("p{i}@example.com")),
                ("firstname", format!("P{i}")),
            ]),
        )?);
    }
    for i in 0..30 {
        deals.push(sim.create_object(
            portal,
            SimType::Deals,
            props([
                ("dealname", format!("Deal {i}")),
                ("amount", format!("{i}.50")),
            ]),
        )?);
    }
    env.wait_converged(portal, Duration::from_secs(60)).await?;

    // Association changes: contacts 0..30 get a primary company, deals a
    // company and two contacts (contacts 0..20 only, so 20..40 are never a
    // deal's association target); then some are removed or moved.
    for (i, &c) in contacts.iter().enumerate().take(30) {
        sim.associate(
            portal,
            SimType::Contacts,
            c,
            SimType::Companies,
            companies[i % 20],
            true,
        )?;
    }
    for (i, &d) in deals.iter().enumerate() {
        sim.associate(
            portal,
            SimType::Deals,
            d,
            SimType::Companies,
            companies[i % 20],
            false,
        )?;
        sim.associate(
            portal,
            SimType::Deals,
            d,
            SimType::Contacts,
            contacts[i % 20],
            false,
        )?;
        sim.associate(
            portal,
            SimType::Deals,
            d,
            SimType::Contacts,
            contacts[(i + 7) % 20],
            false,
        )?;
    }
    for &d in deals.iter().take(10) {
        let (first, _) = sim.associations(portal, SimType::Deals, d, SimType::Contacts)?[0];
        sim.dissociate(portal, SimType::Deals, d, SimType::Contacts, first)?;
    }
    for (i, &c) in contacts.iter().enumerate().take(5) {
        sim.dissociate(
            portal,
            SimType::Contacts,
            c,
            SimType::Companies,
            companies[i % 20],
        )?;
        sim.associate(
            portal,
            SimType::Contacts,
            c,
            SimType::Companies,
            companies[19 - i],
            true,
        )?;
    }
    // Property changes, deletions, a restore, merges (of records that are
    // no association target: HubSpot sends no association event for
    // those, see the README).
    for (i, &c) in companies.iter().enumerate() {
        sim.update_object(
            portal,
            SimType::Companies,
            c,
            props([("name", format!("Renamed {i}"))]),
        )?;
    }
    for &d in deals.iter().take(15) {
        sim.update_object(portal, SimType::Deals, d, props([("amount", "999.99")]))?;
    }
    sim.delete_object(portal, SimType::Deals, deals[20])?;
    sim.delete_object(portal, SimType::Deals, deals[21])?;
    sim.restore_object(portal, SimType::Deals, deals[21])?;
    sim.delete_object(portal, SimType::Contacts, contacts[35])?;
    sim.merge_objects(portal, SimType::Deals, deals[22], deals[23], None)?;
    sim.merge_objects(portal, SimType::Contacts, contacts[36], contacts[37], None)?;
    sim.merge_objects(
        portal,
        SimType::Contacts,
        contacts[38],
        contacts[39],
        Some(true),
    )?;
    let d = env.wait_converged(portal, Duration::from_secs(90)).await?;
    assert!(d.compared >= 80, "compared {}", d.compared);

    let types = delivered_types(&env);
    for kind in [
        "object.creation",
        "object.propertyChange",
        "object.deletion",
        "object.restore",
        "object.merge",
        "object.associationChange",
    ] {
        assert!(types.contains_key(kind), "no {kind} delivered: {types:?}");
    }
    assert!(
        types.keys().all(|t| t.starts_with("object.")),
        "only the generic format was delivered: {types:?}"
    );
    // Nothing was skipped as an unknown type on the way.
    let stats = env.runner.stats();
    assert_eq!(stats.worker.unknown_type_events, 0, "{stats:?}");
    env.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_classic_and_generic_deliveries_converge() -> anyhow::Result<()> {
    let (env, portal) = environment("generic-mixed", WebhookFormat::Mixed).await?;
    let sim = env.sim.state();
    for i in 0..60 {
        sim.create_object(
            portal,
            SimType::Companies,
            props([("name", format!("Co {i}"))]),
        )?;
        sim.create_object(
            portal,
            SimType::Contacts,
            props([("email", format!("m{i}@example.com"))]),
        )?;
        sim.create_object(
            portal,
            SimType::Deals,
            props([("dealname", format!("D {i}"))]),
        )?;
    }
    env.wait_converged(portal, Duration::from_secs(60)).await?;
    sim.update_faults(portal, |f| {
        f.webhook_duplicate_rate = 0.1;
        f.webhook_reorder = true;
    })?;
    let report = sim.random_changes(portal, 600, Some(11), &[])?;
    assert!(report.deleted > 0 && report.merged > 0, "{report:?}");
    let d = env.wait_converged(portal, Duration::from_secs(90)).await?;
    assert!(d.compared >= 150, "compared {}", d.compared);
    let types = delivered_types(&env);
    let generic: usize = types
        .iter()
        .filter(|(t, _)| t.starts_with("object."))
        .map(|(_, n)| n)
        .sum();
    let classic: usize = types.values().sum::<usize>() - generic;
    assert!(generic > 100 && classic > 100, "{types:?}");
    env.stop().await;
    Ok(())
}

/// HubSpot does not document what reading a merged-away id returns; with
/// the simulator answering with the survivor (instead of "not found"),
/// late and duplicated events of merged-away ids still converge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merged_away_ids_read_as_their_survivor_still_converge() -> anyhow::Result<()> {
    let (env, portal) = environment("generic-survivor", WebhookFormat::Generic).await?;
    let sim = env.sim.state();
    sim.update_config(|c| c.merged_id_reads = hubspot_sim::MergedIdReads::Survivor);
    for i in 0..50 {
        sim.create_object(
            portal,
            SimType::Companies,
            props([("name", format!("Co {i}"))]),
        )?;
        sim.create_object(
            portal,
            SimType::Contacts,
            props([("email", format!("s{i}@example.com"))]),
        )?;
    }
    env.wait_converged(portal, Duration::from_secs(60)).await?;
    sim.update_faults(portal, |f| {
        f.webhook_duplicate_rate = 0.2;
        f.webhook_reorder = true;
    })?;
    let report = sim.random_changes(
        portal,
        400,
        Some(5),
        &[SimType::Companies, SimType::Contacts],
    )?;
    assert!(report.merged > 5, "{report:?}");
    env.wait_converged(portal, Duration::from_secs(90)).await?;
    env.stop().await;
    Ok(())
}
