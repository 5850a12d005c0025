//! A scope that follows associations: contacts and deals sync only while
//! associated with a company that syncs. Moving a company out of the
//! companies' scope archives its contacts and deals (`out_of_scope`), and
//! moving it back restores them — through webhooks alone (the worker
//! re-reads a moved company's followers) and through a reconciliation
//! alone (companies first, then the types that follow them). Every step is
//! compared field by field with the simulator.

use std::collections::BTreeSet;
use std::time::Duration;

use hubspot_sim::{props, ObjectType as SimType, SeedSpec, SimConfig};
use hubsync_hubspot::{ObjectId, ObjectType, PortalId};
use hubsync_local::reconcile::{
    local_reconciler, run_job, EngineConfig, JobMessage, MappingConfig, ScopeFilter, SliceLimit,
};
use hubsync_local::Environment;
use hubsync_store::{
    ArchiveReason, MappingConfigStore, RecordKey, RecordStore, StoredRecord, SyncJobKind,
};

use crate::helpers;

const WAIT: Duration = Duration::from_secs(30);

struct Setup {
    env: Environment,
    portal: u64,
}

/// 12 companies, all `customer` but the first three; the companies' scope
/// is `lifecyclestage = customer`, and contacts and deals follow it.
async fn setup(name: &str) -> anyhow::Result<Setup> {
    let mut sim = SimConfig::default();
    sim.rate_limit.enabled = false;
    sim.initial_seed = SeedSpec {
        companies: 12,
        contacts: 40,
        deals: 30,
        owners: 4,
        ..SeedSpec::default()
    };
    let (env, portal) = helpers::start(helpers::options(name, sim)).await?;
    let state = env.sim.state();
    for (i, id) in state
        .object_ids(portal, SimType::Companies, false)?
        .into_iter()
        .enumerate()
    {
        let stage = if i < 3 { "lead" } else { "customer" };
        state.update_object(
            portal,
            SimType::Companies,
            id,
            props([("lifecyclestage", stage)]),
        )?;
    }
    state.wait_webhooks_idle(WAIT).await;
    env.connect_portal(portal).await?;
    let mut config = MappingConfig::default();
    config
        .object_mut(ObjectType::Companies)
        .scope
        .push(ScopeFilter {
            property: "lifecyclestage".into(),
            values: vec!["customer".into()],
        });
    config
        .object_mut(ObjectType::Contacts)
        .scope_follows_companies = true;
    config.object_mut(ObjectType::Deals).scope_follows_companies = true;
    env.runner
        .store()
        .put_mapping_config(PortalId(portal), &config)
        .await?;
    let s = Setup { env, portal };
    reconcile(&s).await?;
    assert_converged(&s, "after the initial sync").await?;
    Ok(s)
}

async fn reconcile(s: &Setup) -> anyhow::Result<()> {
    let rec = local_reconciler(&s.env, None, EngineConfig::default())?;
    let (report, drained) = run_job(
        &rec,
        JobMessage::new(SyncJobKind::Nightly, PortalId(s.portal), vec![]),
        SliceLimit::unlimited(),
    )
    .await?;
    anyhow::ensure!(
        drained.jobs >= 4,
        "split, companies, then followers: {drained:?}"
    );
    anyhow::ensure!(report.types.len() == 3, "{report:?}");
    Ok(())
}

async fn assert_converged(s: &Setup, when: &str) -> anyhow::Result<()> {
    helpers::assert_converged(&s.env, s.portal, when).await
}

async fn record(s: &Setup, t: ObjectType, id: u64) -> anyhow::Result<Option<StoredRecord>> {
    Ok(s.env
        .runner
        .store()
        .get_record(&RecordKey::new(PortalId(s.portal), t, ObjectId(id)))
        .await?)
}

/// A synced company with contacts and deals associated with it and with
/// no other company: (company, its contacts, its deals).
fn pick_company(s: &Setup) -> anyhow::Result<(u64, Vec<u64>, Vec<u64>)> {
    let state = s.env.sim.state();
    let only_company = |t: SimType, id: u64, company: u64| -> anyhow::Result<bool> {
        let companies = state.associations(s.portal, t, id, SimType::Companies)?;
        Ok(companies.iter().all(|(c, _)| *c == company))
    };
    for company in state
        .object_ids(s.portal, SimType::Companies, false)?
        .into_iter()
        .skip(3)
    {
        let mut followers = Vec::new();
        for t in [SimType::Contacts, SimType::Deals] {
            let mut ids = Vec::new();
            for (id, _) in state.associations(s.portal, SimType::Companies, company, t)? {
                if only_company(t, id, company)? {
                    ids.push(id);
                }
            }
            followers.push(ids);
        }
        if followers.iter().all(|f| !f.is_empty()) {
            let deals = followers.pop().unwrap_or_default();
            let contacts = followers.pop().unwrap_or_default();
            return Ok((company, contacts, deals));
        }
    }
    anyhow::bail!("no synced company with its own contacts and deals in the seed")
}

/// Whether every record is active (`true`) or archived out of scope.
async fn all_in(s: &Setup, t: ObjectType, ids: &[u64], active: bool) -> anyhow::Result<()> {
    for id in ids {
        let r = record(s, t, *id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("{t}/{id} never stored"))?;
        if active {
            anyhow::ensure!(!r.meta.archived, "{t}/{id} should be active");
        } else {
            anyhow::ensure!(
                r.meta.archived && r.meta.archive_reason == Some(ArchiveReason::OutOfScope),
                "{t}/{id} should be archived out of scope: {:?}",
                r.meta
            );
        }
    }
    Ok(())
}

fn move_company(s: &Setup, company: u64, stage: &str) -> anyhow::Result<()> {
    s.env.sim.state().update_object(
        s.portal,
        SimType::Companies,
        company,
        props([("lifecyclestage", stage)]),
    )?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_company_leaving_and_rejoining_the_scope_moves_its_contacts_and_deals_by_webhooks(
) -> anyhow::Result<()> {
    let s = setup("follow-webhooks").await?;
    // The initial sync kept exactly the followers of synced companies.
    let store = s.env.runner.store();
    let state = s.env.sim.state();
    let synced: BTreeSet<u64> = state
        .object_ids(s.portal, SimType::Companies, false)?
        .into_iter()
        .skip(3)
        .collect();
    for t in [ObjectType::Contacts, ObjectType::Deals] {
        let sim_t = if t == ObjectType::Contacts {
            SimType::Contacts
        } else {
            SimType::Deals
        };
        let mut scan = store.scan_portal_records(PortalId(s.portal), t, 500);
        while let Some(page) = scan.next_page().await? {
            for r in page.iter().filter(|r| !r.meta.archived) {
                let companies = state.associations(
                    s.portal,
                    sim_t,
                    r.meta.object_id.get(),
                    SimType::Companies,
                )?;
                anyhow::ensure!(
                    companies.iter().any(|(c, _)| synced.contains(c)),
                    "{t}/{} has no synced company",
                    r.meta.object_id
                );
            }
        }
    }

    let (company, contacts, deals) = pick_company(&s)?;
    move_company(&s, company, "lead")?;
    s.env.wait_quiet(WAIT).await?;
    assert_converged(&s, "after the company left the scope").await?;
    all_in(&s, ObjectType::Contacts, &contacts, false).await?;
    all_in(&s, ObjectType::Deals, &deals, false).await?;

    move_company(&s, company, "customer")?;
    s.env.wait_quiet(WAIT).await?;
    assert_converged(&s, "after the company came back").await?;
    all_in(&s, ObjectType::Contacts, &contacts, true).await?;
    all_in(&s, ObjectType::Deals, &deals, true).await?;

    // An association change moves a contact on its own: dissociated from
    // its only company it leaves, associated again it comes back.
    let contact = contacts[0];
    state.dissociate(
        s.portal,
        SimType::Contacts,
        contact,
        SimType::Companies,
        company,
    )?;
    s.env.wait_quiet(WAIT).await?;
    all_in(&s, ObjectType::Contacts, &[contact], false).await?;
    state.associate(
        s.portal,
        SimType::Contacts,
        contact,
        SimType::Companies,
        company,
        true,
    )?;
    s.env.wait_quiet(WAIT).await?;
    all_in(&s, ObjectType::Contacts, &[contact], true).await?;
    assert_converged(&s, "after the association changes").await?;
    s.env.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_company_leaving_and_rejoining_the_scope_moves_its_contacts_and_deals_by_reconciliation(
) -> anyhow::Result<()> {
    let s = setup("follow-reconcile").await?;
    let state = s.env.sim.state();
    state.update_faults(s.portal, |f| f.webhook_drop_rate = 1.0)?;
    let (company, contacts, deals) = pick_company(&s)?;

    move_company(&s, company, "lead")?;
    s.env.wait_quiet(WAIT).await?;
    all_in(&s, ObjectType::Contacts, &contacts, true).await?;
    reconcile(&s).await?;
    assert_converged(&s, "after the reconciliation (company out)").await?;
    all_in(&s, ObjectType::Contacts, &contacts, false).await?;
    all_in(&s, ObjectType::Deals, &deals, false).await?;

    move_company(&s, company, "customer")?;
    s.env.wait_quiet(WAIT).await?;
    reconcile(&s).await?;
    assert_converged(&s, "after the reconciliation (company back)").await?;
    all_in(&s, ObjectType::Contacts, &contacts, true).await?;
    all_in(&s, ObjectType::Deals, &deals, true).await?;
    s.env.stop().await;
    Ok(())
}
