//! The real-time path end to end: simulator mutation → signed webhook →
//! intake → SQS (moto) → worker → HubSpot re-read (simulator) → DynamoDB
//! (moto). Every wait has a deadline; none is a fixed sleep.

use std::time::Duration;

use hubspot_sim::{props, ObjectType as SimType, SimConfig};
use hubsync_hubspot::{ObjectId, ObjectType, PortalId};
use hubsync_local::{wait_for, Environment};
use hubsync_store::{RecordKey, RecordStore, StoredRecord};
use serde_json::json;

use crate::helpers;

const WAIT: Duration = Duration::from_secs(20);

async fn environment(name: &str) -> anyhow::Result<(Environment, u64)> {
    helpers::start_connected(helpers::options(name, SimConfig::default())).await
}

async fn record(
    env: &Environment,
    portal: u64,
    t: ObjectType,
    id: u64,
) -> anyhow::Result<Option<StoredRecord>> {
    Ok(env
        .runner
        .store()
        .get_record(&RecordKey::new(PortalId(portal), t, ObjectId(id)))
        .await?)
}

/// Wait until the stored record satisfies `pred`.
async fn until(
    env: &Environment,
    portal: u64,
    t: ObjectType,
    id: u64,
    what: &str,
    pred: impl Fn(&StoredRecord) -> bool,
) -> anyhow::Result<StoredRecord> {
    wait_for(what, WAIT, || async {
        Ok(record(env, portal, t, id).await?.filter(|r| pred(r)))
    })
    .await
}

#[tokio::test]
async fn company_is_created_updated_archived_and_restored() -> anyhow::Result<()> {
    let (env, portal) = environment("rt-company").await?;
    let sim = env.sim.state();
    let id = sim.create_object(
        portal,
        SimType::Companies,
        props([
            ("name", "Acme"),
            ("domain", "acme.io"),
            ("annualrevenue", "1250.50"),
        ]),
    )?;
    let rec = until(
        &env,
        portal,
        ObjectType::Companies,
        id,
        "company created",
        |_| true,
    )
    .await?;
    assert_eq!(rec.fields["name"], json!("Acme"));
    assert_eq!(rec.fields["annual_revenue_cents"], json!(125050));

    sim.update_object(
        portal,
        SimType::Companies,
        id,
        props([("name", "Acme Corp")]),
    )?;
    until(
        &env,
        portal,
        ObjectType::Companies,
        id,
        "company renamed",
        |r| r.fields["name"] == json!("Acme Corp"),
    )
    .await?;

    sim.delete_object(portal, SimType::Companies, id)?;
    let archived = until(
        &env,
        portal,
        ObjectType::Companies,
        id,
        "company archived",
        |r| r.meta.archived,
    )
    .await?;
    assert_eq!(archived.fields["name"], json!("Acme Corp"), "data kept");
    assert!(archived.meta.archived_at.is_some());

    sim.restore_object(portal, SimType::Companies, id)?;
    until(
        &env,
        portal,
        ObjectType::Companies,
        id,
        "company restored",
        |r| !r.meta.archived,
    )
    .await?;
    env.stop().await;
    Ok(())
}

#[tokio::test]
async fn deal_amount_lands_in_exact_cents_and_deletion_keeps_data() -> anyhow::Result<()> {
    let (env, portal) = environment("rt-deal").await?;
    let sim = env.sim.state();
    let id = sim.create_object(
        portal,
        SimType::Deals,
        props([
            ("dealname", "Big one"),
            ("amount", "19999.99"),
            ("pipeline", "default"),
            ("dealstage", "appointmentscheduled"),
        ]),
    )?;
    let rec = until(&env, portal, ObjectType::Deals, id, "deal created", |_| {
        true
    })
    .await?;
    assert_eq!(rec.fields["amount_cents"], json!(1999999));
    sim.delete_object(portal, SimType::Deals, id)?;
    let rec = until(&env, portal, ObjectType::Deals, id, "deal archived", |r| {
        r.meta.archived
    })
    .await?;
    assert_eq!(rec.fields["name"], json!("Big one"));
    env.stop().await;
    Ok(())
}

#[tokio::test]
async fn merged_contacts_archive_the_loser_and_keep_the_survivor_current() -> anyhow::Result<()> {
    let (env, portal) = environment("rt-merge").await?;
    let sim = env.sim.state();
    let a = sim.create_object(
        portal,
        SimType::Contacts,
        props([("email", "a@example.com"), ("firstname", "Ann")]),
    )?;
    let b = sim.create_object(
        portal,
        SimType::Contacts,
        props([("email", "b@example.com"), ("lastname", "Bee")]),
    )?;
    until(&env, portal, ObjectType::Contacts, a, "a created", |_| true).await?;
    until(&env, portal, ObjectType::Contacts, b, "b created", |_| true).await?;

    let merged = sim.merge_objects(portal, SimType::Contacts, a, b, Some(false))?;
    assert_eq!(merged.survivor_id, a);
    let loser = until(
        &env,
        portal,
        ObjectType::Contacts,
        b,
        "b merged away",
        |r| r.meta.archived,
    )
    .await?;
    assert_eq!(loser.meta.merged_into, Some(ObjectId(a)));
    let expected = sim
        .get_object(portal, SimType::Contacts, a)?
        .and_then(|o| o.prop("lastmodifieddate").map(str::to_string));
    let survivor = until(
        &env,
        portal,
        ObjectType::Contacts,
        a,
        "survivor current",
        |r| {
            expected
                .as_deref()
                .and_then(|v| chrono::DateTime::parse_from_rfc3339(v).ok())
                .map(|d| d.timestamp_millis())
                == Some(r.meta.source_version)
        },
    )
    .await?;
    assert!(!survivor.meta.archived);
    env.stop().await;
    Ok(())
}

#[tokio::test]
async fn merge_into_a_new_id_archives_both_and_creates_the_survivor() -> anyhow::Result<()> {
    let (env, portal) = environment("rt-merge-new").await?;
    let sim = env.sim.state();
    let a = sim.create_object(portal, SimType::Companies, props([("name", "A")]))?;
    let b = sim.create_object(portal, SimType::Companies, props([("name", "B")]))?;
    until(&env, portal, ObjectType::Companies, b, "b created", |_| {
        true
    })
    .await?;
    until(&env, portal, ObjectType::Companies, a, "a created", |_| {
        true
    })
    .await?;
    let merged = sim.merge_objects(portal, SimType::Companies, a, b, Some(true))?;
    let survivor = merged.survivor_id;
    assert_ne!(survivor, a);
    until(
        &env,
        portal,
        ObjectType::Companies,
        survivor,
        "new survivor",
        |r| !r.meta.archived,
    )
    .await?;
    for away in [a, b] {
        let r = until(
            &env,
            portal,
            ObjectType::Companies,
            away,
            "merged away",
            |r| r.meta.archived,
        )
        .await?;
        assert_eq!(r.meta.merged_into, Some(ObjectId(survivor)));
    }
    env.stop().await;
    Ok(())
}

#[tokio::test]
async fn privacy_deleted_contact_leaves_only_a_tombstone() -> anyhow::Result<()> {
    let (env, portal) = environment("rt-gdpr").await?;
    let sim = env.sim.state();
    let id = sim.create_object(
        portal,
        SimType::Contacts,
        props([
            ("email", "gdpr@example.com"),
            ("firstname", "Gina"),
            ("lastname", "Dpr"),
        ]),
    )?;
    until(
        &env,
        portal,
        ObjectType::Contacts,
        id,
        "contact created",
        |_| true,
    )
    .await?;
    sim.privacy_delete_contact(portal, id)?;
    let tomb = until(&env, portal, ObjectType::Contacts, id, "tombstone", |r| {
        r.meta.privacy_deleted
    })
    .await?;
    assert!(
        tomb.fields.is_empty(),
        "no field survives: {:?}",
        tomb.fields.keys().collect::<Vec<_>>()
    );
    // The raw item holds no PII attribute at all.
    let raw = aws_sdk_dynamodb::Client::new(&env.aws)
        .get_item()
        .table_name(&env.resources.store.records_table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("{portal}#contacts")),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("{id:020}")),
        )
        .send()
        .await?;
    let item = raw.item().cloned().unwrap_or_default();
    for pii in ["email", "name", "company_name"] {
        assert!(!item.contains_key(pii), "{pii} must be purged");
    }
    let text = format!("{item:?}");
    assert!(!text.contains("gdpr@example.com") && !text.contains("Gina"));
    env.stop().await;
    Ok(())
}
