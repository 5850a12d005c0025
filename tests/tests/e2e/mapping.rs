//! Admin-controlled mapping end to end (moto + simulator + the real
//! webhook path + the reconciliation engine): custom properties, a
//! pipeline scope, owner emails, associations, validation, schema drift
//! and the read-only preview.

use std::collections::BTreeSet;
use std::time::Duration;

use hubspot_sim::{props, ObjectType as SimType, PropertyDef, PropertyOption, SeedSpec, SimConfig};
use hubsync_hubspot::{ClientConfig, HubSpotClient, ObjectId, ObjectType, PortalId, StaticToken};
use hubsync_local::compare::compare_portal;
use hubsync_local::mapping::{preview, save_config, MappingError};
use hubsync_local::mapping::{
    AssociationRule, MappingConfig, Outcome as MapOutcome, Rule, ScopeFilter, SkipReason, Transform,
};
use hubsync_local::reconcile::{local_reconciler, run_job, EngineConfig, JobMessage, SliceLimit};
use hubsync_local::{wait_for, Environment};
use hubsync_store::{
    ArchiveReason, MappingConfigStore, RecordKey, RecordStore, RunReport, StoredRecord, SyncJobKind,
};
use serde_json::{json, Value};

use crate::helpers;

const WAIT: Duration = Duration::from_secs(30);

struct Setup {
    env: Environment,
    portal: u64,
    client: HubSpotClient,
    token: StaticToken,
}

async fn setup(name: &str) -> anyhow::Result<Setup> {
    let mut sim = SimConfig::default();
    sim.rate_limit.enabled = false;
    sim.initial_seed = SeedSpec {
        companies: 15,
        contacts: 30,
        deals: 30,
        owners: 6,
        ..SeedSpec::default()
    };
    let (env, portal) = helpers::start_connected(helpers::options(name, sim)).await?;
    let token = env.sim.state().issue_token(portal)?.access_token;
    let client = HubSpotClient::new(ClientConfig::new(env.sim.base_url()))?;
    // Custom deal properties the admin maps.
    let state = env.sim.state();
    state.create_property(
        portal,
        SimType::Deals,
        PropertyDef {
            name: "region".into(),
            label: "Region".into(),
            prop_type: "enumeration".into(),
            field_type: "select".into(),
            options: ["emea", "amer"]
                .iter()
                .enumerate()
                .map(|(i, v)| PropertyOption {
                    label: v.to_uppercase(),
                    value: (*v).into(),
                    display_order: i as i32,
                    hidden: false,
                })
                .collect(),
            ..PropertyDef::default()
        },
    )?;
    state.create_property(
        portal,
        SimType::Deals,
        PropertyDef {
            name: "contract_value".into(),
            label: "Contract value".into(),
            prop_type: "number".into(),
            field_type: "number".into(),
            ..PropertyDef::default()
        },
    )?;
    Ok(Setup {
        env,
        portal,
        client,
        token: StaticToken::new(token),
    })
}

async fn reconcile(s: &Setup, kind: SyncJobKind) -> anyhow::Result<RunReport> {
    let rec = local_reconciler(
        &s.env,
        None,
        EngineConfig {
            store_page_size: 1_000,
            ..EngineConfig::default()
        },
    )?;
    let (report, _) = run_job(
        &rec,
        JobMessage::new(kind, PortalId(s.portal), vec![]),
        SliceLimit::unlimited(),
    )
    .await?;
    Ok(report)
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

async fn until(
    s: &Setup,
    t: ObjectType,
    id: u64,
    what: &str,
    pred: impl Fn(&StoredRecord) -> bool,
) -> anyhow::Result<StoredRecord> {
    wait_for(what, WAIT, || async {
        Ok(record(s, t, id).await?.filter(|r| pred(r)))
    })
    .await
}

fn oid(o: &hubspot_sim::SimObject) -> u64 {
    o.id.parse().expect("simulator ids are numeric")
}

fn deal_ids(s: &Setup, pipeline: &str) -> anyhow::Result<Vec<u64>> {
    Ok(s.env
        .sim
        .state()
        .list_objects(s.portal, SimType::Deals, false)?
        .into_iter()
        .filter(|o| o.prop("pipeline") == Some(pipeline))
        .map(|o| oid(&o))
        .collect())
}

/// The admin's config: two custom deal properties, owner emails, the
/// default pipeline only, and associations on deals and contacts.
fn admin_config() -> MappingConfig {
    let mut c = MappingConfig::default();
    let deals = c.object_mut(ObjectType::Deals);
    deals.rules.push(Rule::new(
        "region",
        &["region"],
        Transform::Enumeration { values: vec![] },
    ));
    deals.rules.push(Rule::new(
        "contract_value_cents",
        &["contract_value"],
        Transform::Cents,
    ));
    deals.rules.push(Rule::new(
        "owner_email",
        &["hubspot_owner_id"],
        Transform::OwnerEmail,
    ));
    deals.scope.push(ScopeFilter {
        property: "pipeline".into(),
        values: vec!["default".into()],
    });
    deals.associations = vec![
        AssociationRule {
            target: "company_ids".into(),
            to: ObjectType::Companies,
            primary_only: false,
        },
        AssociationRule {
            target: "contact_ids".into(),
            to: ObjectType::Contacts,
            primary_only: false,
        },
    ];
    let contacts = c.object_mut(ObjectType::Contacts);
    contacts.rules.push(Rule::new(
        "owner_email",
        &["hubspot_owner_id"],
        Transform::OwnerEmail,
    ));
    contacts.rules.push(Rule::new(
        "owner_name",
        &["hubspot_owner_id"],
        Transform::OwnerName,
    ));
    contacts.associations.push(AssociationRule {
        target: "company_id".into(),
        to: ObjectType::Companies,
        primary_only: true,
    });
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_mapping_custom_fields_scope_owners_associations_drift() -> anyhow::Result<()> {
    let s = setup("mapping").await?;
    let sim = s.env.sim.state();
    let store = s.env.runner.store();
    let portal = PortalId(s.portal);

    // Initial sync with the defaults.
    reconcile(&s, SyncJobKind::Initial).await?;
    assert_converged(&s, "after the initial sync").await?;

    // Values for the custom properties (webhooks; the defaults ignore them).
    let default_deals = deal_ids(&s, "default")?;
    let enterprise_deals = deal_ids(&s, "enterprise")?;
    assert!(default_deals.len() >= 3 && enterprise_deals.len() >= 2);
    for (i, id) in default_deals.iter().enumerate() {
        let region = if i % 2 == 0 { " EMEA " } else { "amer" };
        sim.update_object(
            s.portal,
            SimType::Deals,
            *id,
            props([
                ("region", region.to_owned()),
                ("contract_value", format!("{i}000.50")),
            ]),
        )?;
    }
    let bad_deal = default_deals[1];
    sim.update_object(
        s.portal,
        SimType::Deals,
        bad_deal,
        props([("contract_value", "1,000.50")]),
    )?;
    s.env.wait_quiet(WAIT).await?;

    // Rejected configs name the rule, and store nothing.
    let mut missing = admin_config();
    missing.object_mut(ObjectType::Deals).rules.push(Rule::new(
        "segment",
        &["no_such_property"],
        Transform::String,
    ));
    let mut wrong = admin_config();
    wrong.object_mut(ObjectType::Deals).rules.push(Rule::new(
        "contract_date",
        &["contract_value"],
        Transform::Datetime,
    ));
    for (config, rule) in [
        (&missing, "deals.segment ← no_such_property (string)"),
        (&wrong, "deals.contract_date ← contract_value (datetime)"),
    ] {
        match save_config(store, &s.client, &s.token, portal, config).await {
            Err(MappingError::Rejected(e)) => {
                assert_eq!(e.0.len(), 1, "{e}");
                assert_eq!(e.0[0].rule, rule);
                assert!(e.to_string().contains(rule), "{e}");
            }
            other => panic!("expected a rejection naming {rule}, got {other:?}"),
        }
    }
    assert_eq!(store.get_mapping_config(portal).await?, None);

    // Preview: mapped samples and field errors, no write.
    let writes = store.stats().writes();
    let p = preview(
        &s.client,
        &s.token,
        portal,
        &admin_config(),
        &ObjectType::ALL,
        100,
    )
    .await?;
    assert_eq!(store.stats().writes(), writes, "the preview wrote");
    let deals = p
        .types
        .iter()
        .find(|t| t.object_type == ObjectType::Deals)
        .unwrap();
    assert!(deals.properties.contains(&"region".to_owned()));
    assert!(!deals.properties.contains(&"description".to_owned()));
    assert_eq!(
        deals.skipped.get("out_of_scope"),
        Some(&enterprise_deals.len())
    );
    let sample = |id: u64| {
        deals
            .records
            .iter()
            .find(|o| o.id() == ObjectId(id))
            .cloned()
            .unwrap()
    };
    let good = sample(default_deals[0]).into_mapped().unwrap();
    assert_eq!(good.record.str("region"), Some("emea"));
    assert_eq!(good.record.get("contract_value_cents"), Some(&json!(50)));
    let bad = sample(bad_deal).into_mapped().unwrap();
    assert_eq!(bad.record.get("contract_value_cents"), Some(&Value::Null));
    assert_eq!(bad.errors.len(), 1);
    assert_eq!(bad.errors[0].field, "contract_value_cents");
    assert!(matches!(
        sample(enterprise_deals[0]),
        MapOutcome::Skipped {
            reason: SkipReason::OutOfScope,
            ..
        }
    ));

    // Save; the next reconciliation maps the custom fields, owners and
    // associations, and archives the deals outside the pipeline.
    let saved = save_config(store, &s.client, &s.token, portal, &admin_config()).await?;
    assert_eq!(saved.revision, 1);
    let report = reconcile(&s, SyncJobKind::Resync).await?;
    let deals_report = report
        .types
        .iter()
        .find(|t| t.object_type == ObjectType::Deals)
        .unwrap();
    // The admin's config, not missed webhooks, moved these deals: remapped,
    // not drift.
    assert_eq!(deals_report.counters.archived_out_of_scope, 0);
    assert!(deals_report.counters.remapped >= enterprise_deals.len() as u64);
    assert_eq!(deals_report.drift, 0);
    assert!(deals_report.counters.schema_drift.is_empty());
    assert_converged(&s, "after the reconciliation with the admin's config").await?;
    for id in &enterprise_deals {
        let r = record(&s, ObjectType::Deals, *id).await?.unwrap();
        assert!(r.meta.archived);
        assert_eq!(r.meta.archive_reason, Some(ArchiveReason::OutOfScope));
    }
    let r = record(&s, ObjectType::Deals, default_deals[2])
        .await?
        .unwrap();
    assert!(!r.meta.archived);
    assert_eq!(r.fields["region"], json!("emea"));
    assert_eq!(r.fields["contract_value_cents"], json!(200_050));
    // Owner emails and associations, checked against the simulator.
    let owners = sim.owners(s.portal)?;
    let mut checked_owner = false;
    for o in sim.list_objects(s.portal, SimType::Contacts, false)? {
        let Some(r) = record(&s, ObjectType::Contacts, oid(&o)).await? else {
            continue;
        };
        if let Some(owner) = o
            .prop("hubspot_owner_id")
            .and_then(|id| owners.iter().find(|w| w.id == id))
        {
            assert_eq!(r.fields["owner_email"], json!(owner.email));
            checked_owner = true;
        }
        let primary: Vec<u64> = sim
            .associations(s.portal, SimType::Contacts, oid(&o), SimType::Companies)?
            .into_iter()
            .filter(|(_, p)| *p)
            .map(|(c, _)| c)
            .collect();
        match primary.first() {
            Some(c) => assert_eq!(r.fields["company_id"], json!(c.to_string())),
            None => assert_eq!(r.fields["company_id"], Value::Null),
        }
    }
    assert!(checked_owner);

    // Webhooks move deals out of and into the scope.
    let leaving = default_deals[0];
    let entering = enterprise_deals[0];
    sim.update_object(
        s.portal,
        SimType::Deals,
        leaving,
        props([("pipeline", "enterprise"), ("dealstage", "ent_discovery")]),
    )?;
    sim.update_object(
        s.portal,
        SimType::Deals,
        entering,
        props([("pipeline", "default"), ("dealstage", "qualifiedtobuy")]),
    )?;
    until(&s, ObjectType::Deals, leaving, "deal left the scope", |r| {
        r.meta.archived && r.meta.archive_reason == Some(ArchiveReason::OutOfScope)
    })
    .await?;
    let back = until(
        &s,
        ObjectType::Deals,
        entering,
        "deal entered the scope",
        |r| !r.meta.archived,
    )
    .await?;
    assert_eq!(back.fields["pipeline_id"], json!("default"));
    assert_eq!(back.fields["pipeline"], json!("Sales Pipeline"));

    // Owners and associations change through webhooks.
    let contact = sim
        .list_objects(s.portal, SimType::Contacts, false)?
        .into_iter()
        .find(|o| o.prop("email").is_some())
        .unwrap();
    let cid = oid(&contact);
    let companies = sim.object_ids(s.portal, SimType::Companies, false)?;
    let new_company = companies
        .iter()
        .copied()
        .find(|c| {
            !sim.associations(s.portal, SimType::Contacts, cid, SimType::Companies)
                .unwrap_or_default()
                .iter()
                .any(|(x, _)| x == c)
        })
        .unwrap();
    sim.associate(
        s.portal,
        SimType::Contacts,
        cid,
        SimType::Companies,
        new_company,
        true,
    )?;
    sim.update_object(
        s.portal,
        SimType::Contacts,
        cid,
        props([("hubspot_owner_id", owners[0].id.clone())]),
    )?;
    let deal = default_deals[2];
    sim.associate(
        s.portal,
        SimType::Deals,
        deal,
        SimType::Contacts,
        cid,
        false,
    )?;
    until(&s, ObjectType::Contacts, cid, "new primary company", |r| {
        r.fields.get("company_id") == Some(&json!(new_company.to_string()))
            && r.fields.get("owner_email") == Some(&json!(owners[0].email))
    })
    .await?;
    until(
        &s,
        ObjectType::Deals,
        deal,
        "deal ↔ contact association",
        |r| {
            r.fields
                .get("contact_ids")
                .and_then(Value::as_array)
                .is_some_and(|a| a.contains(&json!(cid.to_string())))
        },
    )
    .await?;
    s.env.wait_quiet(WAIT).await?;
    assert_converged(&s, "after the webhooks").await?;

    // Missed webhooks: the reconciliation repairs owners and associations.
    sim.update_faults(s.portal, |f| f.webhook_drop_rate = 1.0)?;
    sim.dissociate(s.portal, SimType::Deals, deal, SimType::Contacts, cid)?;
    sim.update_object(
        s.portal,
        SimType::Contacts,
        cid,
        props([("hubspot_owner_id", owners[1].id.clone())]),
    )?;
    s.env.wait_quiet(WAIT).await?;
    let before = compare_portal(sim, store, s.portal).await?;
    let differing: BTreeSet<(ObjectType, u64)> = before.different.iter().copied().collect();
    assert!(differing.contains(&(ObjectType::Deals, deal)), "{before:?}");
    assert!(
        differing.contains(&(ObjectType::Contacts, cid)),
        "{before:?}"
    );
    sim.update_faults(s.portal, |f| f.webhook_drop_rate = 0.0)?;
    reconcile(&s, SyncJobKind::Nightly).await?;
    assert_converged(&s, "after the nightly reconciliation").await?;

    // A mapped property deleted in HubSpot: schema drift in the next run
    // report, not a crash.
    assert!(sim.delete_property(s.portal, SimType::Deals, "contract_value")?);
    let report = reconcile(&s, SyncJobKind::Nightly).await?;
    let deals_report = report
        .types
        .iter()
        .find(|t| t.object_type == ObjectType::Deals)
        .unwrap();
    assert_eq!(deals_report.counters.schema_drift, ["contract_value"]);
    for t in &report.types {
        if t.object_type != ObjectType::Deals {
            assert!(t.counters.schema_drift.is_empty(), "{:?}", t.object_type);
        }
    }
    let r = record(&s, ObjectType::Deals, default_deals[2])
        .await?
        .unwrap();
    assert_eq!(r.fields["contract_value_cents"], Value::Null);
    assert_converged(&s, "after the drift run").await?;
    s.env.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_scope_is_applied_by_the_reconciliation() -> anyhow::Result<()> {
    let s = setup("mapping-lists").await?;
    let sim = s.env.sim.state();
    let store = s.env.runner.store();
    let portal = PortalId(s.portal);
    reconcile(&s, SyncJobKind::Initial).await?;

    let contacts: Vec<u64> = sim
        .list_objects(s.portal, SimType::Contacts, false)?
        .iter()
        .filter(|o| o.prop("email").is_some())
        .map(oid)
        .collect();
    assert!(contacts.len() >= 6);
    let list = sim.create_list(s.portal, SimType::Contacts, "Customers / Active")?;
    let deal_list = sim.create_list(s.portal, SimType::Deals, "Deals")?;
    let (members, others) = contacts.split_at(contacts.len() / 2);
    sim.add_to_list(s.portal, list, members)?;

    // A list that does not exist, or holds another type, is rejected.
    for (id, message) in [
        (
            "424242".to_owned(),
            "HubSpot has no list `424242`".to_owned(),
        ),
        (
            deal_list.to_string(),
            format!("list `{deal_list}` holds deals, not contacts"),
        ),
    ] {
        let mut c = MappingConfig::default();
        c.object_mut(ObjectType::Contacts).lists = vec![id.clone()];
        match save_config(store, &s.client, &s.token, portal, &c).await {
            Err(MappingError::Rejected(e)) => {
                assert_eq!(e.0.len(), 1, "{e}");
                assert_eq!(e.0[0].rule, format!("contacts scope list {id}"));
                assert_eq!(e.0[0].message, message);
            }
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    let mut config = MappingConfig::default();
    config.object_mut(ObjectType::Contacts).lists = vec![list.to_string()];
    save_config(store, &s.client, &s.token, portal, &config).await?;
    let report = reconcile(&s, SyncJobKind::Resync).await?;
    let contacts_report = report
        .types
        .iter()
        .find(|t| t.object_type == ObjectType::Contacts)
        .unwrap();
    // A config change: the non-members are archived (checked below), as
    // remapped, not drift.
    assert_eq!(contacts_report.counters.archived_out_of_scope, 0);
    assert!(contacts_report.counters.remapped >= others.len() as u64);
    assert_eq!(contacts_report.drift, 0);
    assert_converged(&s, "after the list-scoped reconciliation").await?;

    // Between runs: webhooks update members, never create non-members.
    let (member, other) = (members[0], others[0]);
    for id in [member, other] {
        sim.update_object(
            s.portal,
            SimType::Contacts,
            id,
            props([("jobtitle", "x"), ("company", "Renamed Inc")]),
        )?;
    }
    until(&s, ObjectType::Contacts, member, "member updated", |r| {
        r.fields.get("company_name") == Some(&json!("Renamed Inc"))
    })
    .await?;
    s.env.wait_quiet(WAIT).await?;
    let r = record(&s, ObjectType::Contacts, other).await?.unwrap();
    assert!(r.meta.archived, "a non-member stays out of scope");
    assert!(
        s.env
            .runner
            .stats()
            .worker
            .skipped
            .get("list_scope_pending")
            >= Some(&1)
    );

    // Membership changes (no webhooks) land with the next reconciliation.
    sim.add_to_list(s.portal, list, &[other])?;
    sim.remove_from_list(s.portal, list, &[members[1]])?;
    reconcile(&s, SyncJobKind::Nightly).await?;
    assert_converged(&s, "after membership changes").await?;
    let back = record(&s, ObjectType::Contacts, other).await?.unwrap();
    assert!(!back.meta.archived);
    assert_eq!(back.fields["company_name"], json!("Renamed Inc"));
    let gone = record(&s, ObjectType::Contacts, members[1]).await?.unwrap();
    assert!(gone.meta.archived);
    assert_eq!(gone.meta.archive_reason, Some(ArchiveReason::OutOfScope));
    s.env.stop().await;
    Ok(())
}
