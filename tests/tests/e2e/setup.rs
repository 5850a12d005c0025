//! Scope before the first pull (Pivotal's flow): connect with the initial
//! sync deferred — the connection reads `awaiting_setup`, nothing is pulled
//! from HubSpot and webhooks are dropped — then save a list scope and start
//! the sync through the admin API: DynamoDB holds exactly the list's
//! companies and — with contacts and deals following the companies' scope
//! — exactly their contacts and deals, compared record by record with the
//! simulator.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context, Result};
use hubspot_sim::{props, ObjectType as SimType, SeedSpec, SimConfig};
use hubsync_hubspot::{ObjectType, PortalId};
use hubsync_local::admin::AdminClient;
use hubsync_local::reconcile::{drain, local_reconciler, take_sync_jobs, EngineConfig, SliceLimit};
use hubsync_local::Browser;
use hubsync_store::RecordStore;
use serde_json::json;

use crate::helpers::{options, start};

fn crm_calls(env: &hubsync_local::Environment, portal: u64) -> u64 {
    env.sim
        .state()
        .counters()
        .requests_by_portal
        .get(&portal)
        .map(|routes| {
            routes
                .iter()
                .filter(|(route, _)| route.contains(" /crm/"))
                .map(|(_, n)| n)
                .sum()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deferred_connect_pulls_nothing_until_the_scope_is_saved_and_the_sync_started(
) -> Result<()> {
    let sim = SimConfig {
        initial_seed: SeedSpec {
            companies: 30,
            contacts: 60,
            deals: 40,
            ..SeedSpec::default()
        },
        ..SimConfig::default()
    };
    let (env, portal) = start(options("deferred-setup", sim)).await?;
    let state = env.sim.state();
    let companies = state.object_ids(portal, SimType::Companies, false)?;
    let list = state.create_list(portal, SimType::Companies, "Customers / Active")?;
    let members: BTreeSet<u64> = companies.iter().step_by(4).copied().collect();
    state.add_to_list(portal, list, &members.iter().copied().collect::<Vec<_>>())?;

    // Connect with the initial sync deferred.
    let api = AdminClient::new(env.runner.base_url());
    let tenant = "pivotal";
    let conn = format!("/v1/tenants/{tenant}/connections/{portal}");
    let link = api
        .call(
            "POST",
            &format!("/v1/tenants/{tenant}/install-links"),
            Some(&json!({"defer_initial_sync": true})),
        )
        .await?;
    assert_eq!(link.status, 201, "{:?}", link.body);
    let url = link.body["url"].as_str().context("url")?;
    assert!(url.contains("defer=1"), "{url}");
    state.set_next_authorize_portal(Some(portal));
    let trace = Browser::new().follow(url).await?;
    assert_eq!(trace.status, 200);
    let status = api.get(&conn).await?;
    assert_eq!(status.body["state"], "awaiting_setup", "{:?}", status.body);
    assert!(
        take_sync_jobs(&env).await?.is_empty(),
        "no initial sync queued"
    );

    // While awaiting setup: webhooks are dropped, nothing is read.
    state.update_object(
        portal,
        SimType::Companies,
        companies[1],
        props([("name", "Changed")]),
    )?;
    state.wait_webhooks_idle(Duration::from_secs(20)).await;
    env.wait_quiet(Duration::from_secs(20)).await?;
    assert_eq!(
        crm_calls(&env, portal),
        0,
        "nothing pulled before the setup"
    );
    let mut scan =
        env.runner
            .store()
            .scan_portal_records(PortalId(portal), ObjectType::Companies, 100);
    assert!(scan.next_page().await?.is_none(), "nothing stored");

    // The application saves its scope (the list; contacts and deals follow
    // the companies) and starts the sync.
    let mut config = hubsync_local::reconcile::MappingConfig::default();
    config.object_mut(ObjectType::Companies).lists = vec![list.to_string()];
    config
        .object_mut(ObjectType::Contacts)
        .scope_follows_companies = true;
    config.object_mut(ObjectType::Deals).scope_follows_companies = true;
    let saved = api
        .call(
            "PUT",
            &format!("{conn}/mapping?resync=none"),
            Some(&serde_json::to_value(&config)?),
        )
        .await?;
    assert_eq!(saved.status, 200, "{:?}", saved.body);
    let started = api
        .call(
            "POST",
            &format!("{conn}/syncs"),
            Some(&json!({"kind": "initial_sync"})),
        )
        .await?;
    assert_eq!(started.status, 202, "{:?}", started.body);
    assert_eq!(api.get(&conn).await?.body["state"], "active");

    let rec = local_reconciler(&env, None, EngineConfig::default())?;
    for job in take_sync_jobs(&env).await? {
        rec.queue().enqueue_now(job);
    }
    drain(&rec, SliceLimit::unlimited()).await?;
    let mut stored = BTreeSet::new();
    let mut scan =
        env.runner
            .store()
            .scan_portal_records(PortalId(portal), ObjectType::Companies, 100);
    while let Some(page) = scan.next_page().await? {
        for r in page.iter().filter(|r| !r.meta.archived) {
            let id = r.meta.object_id.get();
            let object = state
                .get_object(portal, SimType::Companies, id)?
                .context("in HubSpot")?;
            assert_eq!(
                r.fields["name"].as_str(),
                object.prop("name"),
                "company {id} as HubSpot has it"
            );
            stored.insert(id);
        }
    }
    assert_eq!(stored, members, "exactly the list's companies");
    // Exactly the contacts and deals associated with them, every field as
    // HubSpot has it.
    for (t, sim_t) in [
        (ObjectType::Contacts, SimType::Contacts),
        (ObjectType::Deals, SimType::Deals),
    ] {
        let mut expected = BTreeSet::new();
        for id in state.object_ids(portal, sim_t, false)? {
            let companies = state.associations(portal, sim_t, id, SimType::Companies)?;
            let mapped = t != ObjectType::Contacts
                || state
                    .get_object(portal, sim_t, id)?
                    .and_then(|o| o.prop("email").map(str::to_owned))
                    .is_some_and(|e| e.contains('@'));
            if mapped && companies.iter().any(|(c, _)| members.contains(c)) {
                expected.insert(id);
            }
        }
        let mut got = BTreeSet::new();
        let mut scan = env
            .runner
            .store()
            .scan_portal_records(PortalId(portal), t, 100);
        while let Some(page) = scan.next_page().await? {
            got.extend(
                page.iter()
                    .filter(|r| !r.meta.archived)
                    .map(|r| r.meta.object_id.get()),
            );
        }
        assert!(
            !expected.is_empty(),
            "the seed associates {t} with the list's companies"
        );
        assert_eq!(got, expected, "exactly the list companies' {t}");
    }
    let d = hubsync_local::compare::compare_portal(state, env.runner.store(), portal).await?;
    assert!(
        d.is_empty(),
        "missing {:?}, different {:?}, should be archived {:?}",
        d.missing,
        d.different,
        d.should_be_archived
    );
    env.stop().await;
    Ok(())
}
