//! The change feed end to end: HubSpot changes (simulator) → webhooks →
//! worker → DynamoDB (moto) → the tables' streams → change-events'
//! publisher → EventBridge (moto) → the application's inbox (an SQS queue
//! a rule on the bus fills). The events received equal the changes applied
//! — one per change, the right kind and field names — also when the
//! worker's batches fail half-way and are redelivered.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::Result;
use hubspot_sim::{props, Faults, ObjectType as SimType, SeedSpec, SimConfig};
use hubsync_hubspot::{ObjectId, ObjectType, PortalId};
use hubsync_local::inbox::Inbox;
use hubsync_local::reconcile::{drain, local_reconciler, take_sync_jobs, EngineConfig, SliceLimit};
use hubsync_local::{wait_for, Environment};
use hubsync_store::{RecordKey, RecordStore, StoredRecord};
use serde_json::Value;

use crate::helpers;

const WAIT: Duration = Duration::from_secs(30);

/// A stack with the change feed running, its first portal connected.
async fn start_with_feed(name: &str, sim: SimConfig) -> Result<(Environment, u64)> {
    let env = Environment::start_with(
        hubsync_testkit::aws_config().await?,
        helpers::options(name, sim),
        |c| c.change_events = true,
    )
    .await?;
    let portal = env.sim.state().portal_ids()[0];
    env.connect_portal(portal).await?;
    Ok((env, portal))
}

async fn until(
    env: &Environment,
    portal: u64,
    t: ObjectType,
    id: u64,
    what: &str,
    pred: impl Fn(&StoredRecord) -> bool,
) -> Result<()> {
    wait_for(what, WAIT, || async {
        Ok(env
            .runner
            .store()
            .get_record(&RecordKey::new(PortalId(portal), t, ObjectId(id)))
            .await?
            .filter(|r| pred(r))
            .map(|_| ()))
    })
    .await
}

fn sim(companies: usize) -> SimConfig {
    SimConfig {
        initial_seed: SeedSpec {
            companies,
            ..SeedSpec::default()
        },
        ..SimConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_applied_change_becomes_one_event_of_its_kind() -> Result<()> {
    let (env, portal) = start_with_feed("events-kinds", sim(3)).await?;
    let mut inbox = Inbox::new(&env);

    // The initial sync the connect queued.
    let rec = local_reconciler(&env, None, EngineConfig::default())?;
    for job in take_sync_jobs(&env).await? {
        rec.queue().enqueue_now(job);
    }
    drain(&rec, SliceLimit::unlimited()).await?;
    inbox.drain(Duration::from_secs(2), WAIT).await?;
    let connected = inbox.of_type("connection.connected");
    assert_eq!(connected.len(), 1, "{:?}", inbox.events);
    assert_eq!(connected[0]["tenant_id"], format!("tenant-{portal}"));
    let created: Vec<&Value> = inbox
        .of_type("record.changed")
        .into_iter()
        .filter(|d| d["kind"] == "created")
        .collect();
    assert_eq!(created.len(), 3, "the three seeded companies");
    let completed = inbox.of_type("sync.completed");
    assert_eq!(completed.len(), 3, "one per object type");
    assert!(completed.iter().all(|d| d["kind"] == "initial_sync"));
    assert!(!inbox.of_type("sync.progress").is_empty());

    // Scripted changes, each stored before the next.
    let s = env.sim.state();
    let a = s.create_object(
        portal,
        SimType::Companies,
        props([("name", "Acme"), ("domain", "acme.io")]),
    )?;
    until(&env, portal, ObjectType::Companies, a, "created", |_| true).await?;
    s.update_object(
        portal,
        SimType::Companies,
        a,
        props([("name", "Acme Corp")]),
    )?;
    until(&env, portal, ObjectType::Companies, a, "renamed", |r| {
        r.fields["name"] == "Acme Corp"
    })
    .await?;
    s.delete_object(portal, SimType::Companies, a)?;
    until(&env, portal, ObjectType::Companies, a, "archived", |r| {
        r.meta.archived
    })
    .await?;
    s.restore_object(portal, SimType::Companies, a)?;
    until(&env, portal, ObjectType::Companies, a, "restored", |r| {
        !r.meta.archived
    })
    .await?;
    let c = s.create_object(
        portal,
        SimType::Contacts,
        props([("email", "ada@example.com"), ("firstname", "Ada")]),
    )?;
    until(&env, portal, ObjectType::Contacts, c, "contact", |_| true).await?;
    s.privacy_delete_contact(portal, c)?;
    until(&env, portal, ObjectType::Contacts, c, "purged", |r| {
        r.meta.privacy_deleted
    })
    .await?;

    inbox.drain(Duration::from_secs(2), WAIT).await?;
    let kinds =
        |evs: Vec<(String, Vec<String>)>| evs.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
    let company = inbox.of_record(portal, "companies", a);
    assert_eq!(
        kinds(company.clone()),
        ["created", "updated", "archived", "restored"],
        "{company:?}"
    );
    assert!(
        company[0].1.contains(&"name".to_owned()) && company[0].1.contains(&"domain".to_owned())
    );
    assert_eq!(company[1].1, ["name"], "only the renamed field");
    assert_eq!(company[2].1, ["archive_reason", "archived", "archived_at"]);
    let contact = inbox.of_record(portal, "contacts", c);
    assert_eq!(kinds(contact.clone()), ["created", "purged"], "{contact:?}");
    assert!(
        !inbox
            .events
            .iter()
            .any(|(_, d)| d.to_string().contains("ada@example.com")
                || d.to_string().contains("Acme")),
        "events carry names of fields, never values"
    );
    env.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_change_is_without_its_event_when_a_worker_batch_fails_half_way() -> Result<()> {
    // Two portals whose webhooks reach the worker together: one portal's
    // group is written, the other's fails (HubSpot answers 500) and its
    // message comes back after the visibility timeout, until HubSpot
    // recovers.
    let config = SimConfig {
        portal_count: 2,
        ..sim(0)
    };
    let (env, healthy) = start_with_feed("events-crash", config).await?;
    let failing = env.sim.state().portal_ids()[1];
    env.connect_portal(failing).await?;
    take_sync_jobs(&env).await?;
    let mut inbox = Inbox::new(&env);
    let s = env.sim.state();
    s.set_faults(
        failing,
        Faults {
            api_error_rate: 1.0,
            api_error_status: 500,
            ..Faults::default()
        },
    )?;
    let mut ids = Vec::new();
    for i in 0..10 {
        for portal in [healthy, failing] {
            let id = s.create_object(
                portal,
                SimType::Companies,
                props([("name", format!("co {i}").as_str())]),
            )?;
            ids.push((portal, id));
        }
    }
    for &(portal, id) in ids.iter().filter(|(p, _)| *p == healthy) {
        until(&env, portal, ObjectType::Companies, id, "stored", |_| true).await?;
    }
    wait_for("the failing portal's message to fail", WAIT, || async {
        let stats = env.runner.stats();
        Ok((stats.failed_messages > 0 && stats.worker.failed_groups > 0).then_some(()))
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}: {:?}", env.runner.stats()))?;
    s.set_faults(failing, Faults::default())?;
    for &(portal, id) in &ids {
        until(&env, portal, ObjectType::Companies, id, "stored", |_| true).await?;
    }
    inbox.drain(Duration::from_secs(3), WAIT).await?;
    for &(portal, id) in &ids {
        let kinds: Vec<String> = inbox
            .of_record(portal, "companies", id)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(
            kinds,
            ["created"],
            "portal {portal} company {id}: one write, one event"
        );
    }
    let portals: BTreeSet<u64> = inbox
        .of_type("record.changed")
        .iter()
        .filter_map(|d| d["portal_id"].as_u64())
        .collect();
    assert_eq!(portals, BTreeSet::from([healthy, failing]));
    env.stop().await;
    Ok(())
}
