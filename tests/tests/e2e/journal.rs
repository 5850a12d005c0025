//! The Webhooks Journal end to end on the local stack (moto + simulator +
//! the real webhook path + the journal reader's pass): a burst of random
//! changes with a fifth of the webhooks dropped converges field by field
//! through the journal — no reconciliation — including the links HubSpot
//! never announces (a contact still naming a company that was deleted or
//! merged away: the reader finds those in the store), and the nightly run
//! afterwards finds no drift. A record entering or leaving a scope list
//! moves within one pass. An uninstall disconnects the portal within one
//! pass and keeps its records.

use std::time::{Duration, Instant};

use hubspot_sim::{SeedSpec, SimConfig};
use hubsync_hubspot::PortalId;
use hubsync_local::compare::{compare_portal, describe, Divergence};
use hubsync_local::reconcile::{local_reconciler, run_job, EngineConfig, JobMessage, SliceLimit};
use hubsync_store::{ConnectionStatus, ConnectionStore, SyncJobKind};

use crate::helpers;

const PASS: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_webhooks_converge_through_the_journal_without_a_reconciliation(
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut sim = SimConfig::default();
    sim.rate_limit.enabled = false;
    sim.initial_seed = SeedSpec {
        companies: 300,
        contacts: 1_000,
        deals: 200,
        ..SeedSpec::default()
    };
    let (env, portal) = helpers::start_connected(helpers::options("journal", sim)).await?;
    let rec = local_reconciler(&env, None, EngineConfig::default())?;
    let job = |kind| JobMessage::new(kind, PortalId(portal), vec![]);
    let (initial, _) = run_job(&rec, job(SyncJobKind::Initial), SliceLimit::unlimited()).await?;
    assert_eq!(initial.done, 1_500);

    // The first pass subscribes the connected portal (nothing to read).
    let journal = env.journal_client()?;
    let first = env.journal_pass(&journal, PASS).await?;
    assert_eq!(first.subscriptions.portals_changed, 1, "{first:?}");

    // 1,000 changes; one webhook in five is lost.
    env.sim
        .state()
        .update_faults(portal, |f| f.webhook_drop_rate = 0.20)?;
    let changes = env
        .sim
        .state()
        .random_changes(portal, 1_000, Some(11), &[])?;
    env.wait_quiet(Duration::from_secs(120)).await?;
    let dropped = env.sim.state().counters().webhook_events_dropped;
    assert!(dropped > 100, "dropped {dropped} events");
    let before = compare_portal(env.sim.state(), env.runner.store(), portal).await?;
    let lost = before.total();
    assert!(lost > 20, "{lost} differences the dropped webhooks caused");

    // Reader periods, each followed by the worker draining the queue.
    let converged = |d: &Divergence| {
        d.missing.is_empty() && d.should_be_archived.is_empty() && d.different.is_empty()
    };
    assert_eq!(
        env.runner.stats().worker.journal_recovered,
        0,
        "no journal events yet"
    );
    let mut passes = Vec::new();
    let mut after = before.clone();
    for _ in 0..2 {
        let report = env.journal_pass(&journal, PASS).await?;
        env.wait_quiet(Duration::from_secs(120)).await?;
        passes.push(report);
        after = compare_portal(env.sim.state(), env.runner.store(), portal).await?;
        if converged(&after) {
            break;
        }
    }
    assert!(
        converged(&after),
        "after the journal passes: missing [{}], different [{}] (unannounced links [{}]), should be archived [{}]",
        describe(&after.missing, 10),
        describe(&after.different, 10),
        describe(&after.unannounced_links, 10),
        describe(&after.should_be_archived, 10)
    );
    assert!(
        passes[0].events_queued > 0 && passes[0].caught_up,
        "{:?}",
        passes[0]
    );
    assert_eq!(
        passes[0].lag_ms,
        Some(0),
        "the pass read everything there was"
    );
    // The worker saw which writes only the journal asked for (merges and
    // restores of records a webhook also named are not among them).
    let recovered = env.runner.stats().worker.journal_recovered;
    assert!(recovered > 0, "recovered {recovered}");

    // The links to deleted and merged-away records were repaired from the
    // store (the reader queued the records naming them for a fresh read).
    let relinked: u64 = passes.iter().map(|p| p.relinks.linkers_queued).sum();
    assert!(relinked > 0, "relinked {relinked}");

    // The nightly run afterwards finds nothing to repair.
    let (nightly, _) = run_job(&rec, job(SyncJobKind::Nightly), SliceLimit::unlimited()).await?;
    assert_eq!(nightly.drift, 0, "{nightly:?}");
    // Its report says what the journal had repaired before it.
    assert_eq!(nightly.journal_fixed, recovered as u64, "{nightly:?}");
    helpers::assert_converged(&env, portal, "after the nightly run").await?;

    // Journal calls stayed out of the portal's CRM budget: the portal's
    // counted calls are the worker's and the reconciliation's reads.
    let counters = env.sim.state().counters();
    assert!(counters.journal_requests.values().sum::<u64>() > 0);
    assert!(counters
        .requests_by_portal
        .get(&portal)
        .is_none_or(|routes| routes.keys().all(|r| !r.contains("journal"))));
    eprintln!(
        "journal: {changes:?}; dropped {dropped}; {lost} differences from drops (of which {} unannounced links) before; recovered {recovered}; relinked {relinked}; passes {:?}; total {:.1?}",
        before.unannounced_links.len(),
        passes
            .iter()
            .map(|p| (p.files, p.entries, p.events_queued))
            .collect::<Vec<_>>(),
        started.elapsed()
    );
    env.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uninstall_disconnects_within_one_pass_and_keeps_the_records() -> anyhow::Result<()> {
    let sim = SimConfig {
        initial_seed: SeedSpec {
            companies: 20,
            contacts: 0,
            deals: 0,
            ..SeedSpec::default()
        },
        ..SimConfig::default()
    };
    let (env, portal) = helpers::start_connected(helpers::options("uninstall", sim)).await?;
    let rec = local_reconciler(&env, None, EngineConfig::default())?;
    let job = JobMessage::new(SyncJobKind::Initial, PortalId(portal), vec![]);
    run_job(&rec, job, SliceLimit::unlimited()).await?;
    let journal = env.journal_client()?;
    env.journal_pass(&journal, PASS).await?;
    helpers::assert_converged(&env, portal, "after the initial sync").await?;

    env.sim.state().uninstall(portal)?;
    let report = env.journal_pass(&journal, PASS).await?;
    assert_eq!(report.uninstalls, 1, "{report:?}");
    let c = env
        .runner
        .store()
        .get_connection(PortalId(portal))
        .await?
        .expect("connection");
    assert_eq!(c.status, ConnectionStatus::Disconnected);
    assert!(c.access_token_ciphertext.is_none() && c.refresh_token_ciphertext.is_none());
    helpers::assert_converged(&env, portal, "after the uninstall: records stay").await?;
    env.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_entering_and_leaving_a_scope_list_move_within_one_pass() -> anyhow::Result<()> {
    use hubsync_local::mapping::MappingConfig;
    use hubsync_store::{MappingConfigStore, RecordKey, RecordStore};

    let sim = SimConfig {
        initial_seed: SeedSpec {
            companies: 5,
            contacts: 30,
            deals: 0,
            ..SeedSpec::default()
        },
        ..SimConfig::default()
    };
    let (env, portal) = helpers::start_connected(helpers::options("journal-lists", sim)).await?;
    let st = env.sim.state();
    let contacts = st.object_ids(portal, hubspot_sim::ObjectType::Contacts, false)?;
    let list = st.create_list(portal, hubspot_sim::ObjectType::Contacts, "Customers")?;
    st.add_to_list(portal, list, &contacts[..10])?;
    let mut config = MappingConfig::default();
    config
        .object_mut(hubsync_hubspot::ObjectType::Contacts)
        .lists = vec![list.to_string()];
    env.runner
        .store()
        .put_mapping_config(PortalId(portal), &config)
        .await?;
    let rec = local_reconciler(&env, None, EngineConfig::default())?;
    let job = JobMessage::new(SyncJobKind::Initial, PortalId(portal), vec![]);
    run_job(&rec, job, SliceLimit::unlimited()).await?;
    helpers::assert_converged(&env, portal, "after the initial sync").await?;
    let journal = env.journal_client()?;
    env.journal_pass(&journal, PASS).await?;

    // One contact enters the list, one leaves it: no webhook says so.
    let (entering, leaving) = (contacts[20], contacts[0]);
    st.add_to_list(portal, list, &[entering])?;
    st.remove_from_list(portal, list, &[leaving])?;
    let report = env.journal_pass(&journal, PASS).await?;
    assert_eq!(report.list_membership_changes, 2, "{report:?}");
    env.wait_quiet(Duration::from_secs(60)).await?;
    let record = |id: u64| {
        let store = env.runner.store().clone();
        async move {
            store
                .get_record(&RecordKey::new(
                    PortalId(portal),
                    hubsync_hubspot::ObjectType::Contacts,
                    hubsync_hubspot::ObjectId(id),
                ))
                .await
        }
    };
    let came = record(entering)
        .await?
        .expect("the contact that entered is stored");
    assert!(!came.meta.archived);
    let went = record(leaving)
        .await?
        .expect("the contact that left is kept");
    assert!(went.meta.archived, "archived out of scope");
    helpers::assert_converged(&env, portal, "after one pass").await?;
    env.stop().await;
    Ok(())
}
