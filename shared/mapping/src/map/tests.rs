use super::*;
use crate::config::{AssociationRule, Rule, ScopeFilter};
use crate::transform::Transform;
use proptest::prelude::*;
use serde_json::json;

fn owners() -> Owners {
    let mut owners = Owners::new();
    owners.insert("7001", Some("owner@example.com"), Some("O"), Some("Wner"));
    owners
}

fn pipelines() -> Pipelines {
    let mut p = Pipelines::new();
    p.insert(
        "default",
        "Sales Pipeline",
        &[
            ("closedwon", "Closed Won"),
            ("qualifiedtobuy", "Qualified To Buy"),
        ],
    );
    p
}

/// Contact 201 → companies 12 and 11 (primary); deal 301 → contact 201,
/// companies 13 and 11 (primary).
fn associations() -> Associations {
    let mut a = Associations::new();
    a.insert(ObjectType::Companies, ObjectId(201), ObjectId(12), false);
    a.insert(ObjectType::Companies, ObjectId(201), ObjectId(11), true);
    a.insert(ObjectType::Contacts, ObjectId(301), ObjectId(201), false);
    a.insert(ObjectType::Companies, ObjectId(301), ObjectId(13), false);
    a.insert(ObjectType::Companies, ObjectId(301), ObjectId(11), true);
    for t in ObjectType::ALL {
        a.mark_loaded(t);
    }
    a
}

/// The default map with the portal's owners, pipelines and the records'
/// associations (shadows the crate's `map_object`, which has none).
fn map_object(t: ObjectType, obj: &HubSpotObject) -> MapOutcome {
    let (owners, pipelines, assoc) = (owners(), pipelines(), associations());
    let ctx = MapContext {
        owners: Some(&owners),
        pipelines: Some(&pipelines),
        associations: Some(&assoc),
        list_members: None,
        companies_in_scope: None,
    };
    map_with(MappingConfig::default().object(t), t, obj, ctx)
}

fn map_contact(obj: &HubSpotObject) -> MapOutcome {
    map_object(ObjectType::Contacts, obj)
}

fn map_deal(obj: &HubSpotObject) -> MapOutcome {
    map_object(ObjectType::Deals, obj)
}

fn map_company(obj: &HubSpotObject) -> MapOutcome {
    map_object(ObjectType::Companies, obj)
}

#[test]
fn default_owner_email_needs_the_owners() {
    let o = company_obj();
    let without = super::map_company(&o).into_mapped().unwrap();
    assert_eq!(without.record.get("owner"), Some(&Value::Null));
    let fields: Vec<_> = without.errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["owner", "owner_email"]);
    let mut unknown = o.clone();
    unknown
        .properties
        .insert("hubspot_owner_id".into(), Some("9999".into()));
    let m = map_company(&unknown).into_mapped().unwrap();
    assert_eq!(m.record.str("owner_id"), Some("9999"));
    assert_eq!(m.record.get("owner"), Some(&Value::Null));
    assert_eq!(m.errors.len(), 2);
}

#[test]
fn default_deal_labels_and_associations_need_their_context() {
    let without = super::map_deal(&deal_obj()).into_mapped().unwrap();
    let fields: Vec<_> = without.errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        ["stage", "pipeline", "owner", "contact_ids", "company_ids"]
    );
    assert_eq!(without.record.str("stage_id"), Some("closedwon"));
    assert_eq!(without.record.get("stage"), Some(&Value::Null));
}

fn mapped(o: MapOutcome) -> MappedRecord {
    match o {
        MapOutcome::Mapped(m) => m,
        MapOutcome::Skipped { reason, .. } => panic!("unexpectedly skipped: {reason}"),
    }
}

fn company_obj() -> HubSpotObject {
    HubSpotObject::new(
        101,
        [
            ("name", "Acme Corp"),
            ("domain", "acme.test"),
            ("hubspot_owner_id", "7001"),
            ("annualrevenue", "1250000.50"),
            ("industry", "COMPUTER_SOFTWARE"),
            ("numberofemployees", "250"),
            ("hs_last_sales_activity_date", "2024-04-30T09:15:00Z"),
            ("hs_lastmodifieddate", "2024-05-01T12:00:00.123Z"),
            ("unmapped_property", "ignored"),
        ],
    )
}

#[test]
fn company_maps_every_default_field() {
    let m = mapped(map_company(&company_obj()));
    assert_eq!(m.object_type, ObjectType::Companies);
    assert_eq!(m.id.get(), 101);
    assert!(m.errors.is_empty());
    assert_eq!(m.source_version, Some(1_714_564_800_123));
    assert_eq!(
        serde_json::to_value(&m.record).unwrap(),
        json!({
            "record_type": "company",
            "name": "Acme Corp",
            "domain": "acme.test",
            "owner_id": "7001",
            "owner": "owner@example.com",
            "owner_email": "owner@example.com",
            "arr": "1250000.5",
            "industry": "COMPUTER_SOFTWARE",
            "employee_count": 250,
            "annual_revenue_cents": 125_000_050,
            "last_activity_at": "2024-04-30T09:15:00.000Z",
        })
    );
}

#[test]
fn bad_annual_revenue_is_a_field_error_and_the_rest_still_maps() {
    let mut o = company_obj();
    o.properties
        .insert("annualrevenue".into(), Some("1,000.50".into()));
    o.properties
        .insert("numberofemployees".into(), Some("abc".into()));
    let m = mapped(map_company(&o));
    let c = &m.record;
    assert_eq!(c.get("arr"), Some(&Value::Null));
    assert_eq!(c.get("annual_revenue_cents"), Some(&Value::Null));
    assert_eq!(c.get("employee_count"), Some(&Value::Null));
    assert_eq!(c.str("name"), Some("Acme Corp"));
    let fields: Vec<_> = m.errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["arr", "employee_count", "annual_revenue_cents"]);
    assert_eq!(m.errors[0].source_property, "annualrevenue");
    assert_eq!(m.errors[0].value_kind, ValueKind::Decimal);
    assert!(!m.errors[0].to_string().contains("1,000.50"));
}

#[test]
fn revenue_too_large_for_cents_keeps_the_exact_arr() {
    let mut o = company_obj();
    o.properties
        .insert("annualrevenue".into(), Some("99999999999999999999".into()));
    let m = mapped(map_company(&o));
    let c = &m.record;
    assert_eq!(c.str("arr"), Some("99999999999999999999"));
    assert_eq!(c.get("annual_revenue_cents"), Some(&Value::Null));
    assert_eq!(m.errors.len(), 1);
    assert_eq!(m.errors[0].field, "annual_revenue_cents");
}

#[test]
fn empty_strings_mean_no_value() {
    let o = HubSpotObject::new(
        5,
        [
            ("name", ""),
            ("domain", "  "),
            ("annualrevenue", ""),
            ("numberofemployees", " "),
            ("hs_lastmodifieddate", ""),
        ],
    );
    let m = mapped(map_company(&o));
    assert!(m.errors.is_empty(), "{:?}", m.errors);
    assert!(m.record.fields().values().all(Value::is_null));
    assert_eq!(m.record.fields().len(), 10);
    assert_eq!(m.source_version, None);
}

#[test]
fn source_version_falls_back_to_updated_at() {
    let mut o = HubSpotObject::new(5, [("name", "x")]);
    o.updated_at = Some("2024-05-02T00:00:00Z".into());
    assert_eq!(
        mapped(map_company(&o)).source_version,
        Some(1_714_608_000_000)
    );
    o.properties
        .insert("hs_lastmodifieddate".into(), Some("1714564800123".into()));
    assert_eq!(
        mapped(map_company(&o)).source_version,
        Some(1_714_564_800_123)
    );
    o.properties
        .insert("hs_lastmodifieddate".into(), Some("garbage".into()));
    let m = mapped(map_company(&o));
    assert_eq!(m.source_version, Some(1_714_608_000_000));
    assert_eq!(m.errors[0].field, "source_version");
}

fn contact_obj() -> HubSpotObject {
    HubSpotObject::new(
        201,
        [
            ("email", "ada@example.com"),
            ("firstname", "  Ada "),
            ("lastname", "Lovelace"),
            ("company", "Analytical Engines"),
            ("lifecyclestage", "customer"),
            ("hs_lead_status", "CONNECTED"),
            ("hubspot_owner_id", "7001"),
            ("createdate", "2024-01-15"),
            ("hs_last_sales_activity_date", "1714564800123"),
            ("lastmodifieddate", "2024-05-01T12:00:00.123Z"),
        ],
    )
}

#[test]
fn contact_maps_every_default_field() {
    let m = mapped(map_contact(&contact_obj()));
    assert!(m.errors.is_empty());
    assert_eq!(m.source_version, Some(1_714_564_800_123));
    let c = m.record;
    assert_eq!(c.str("email"), Some("ada@example.com"));
    assert_eq!(c.str("name"), Some("Ada Lovelace"));
    assert_eq!(c.str("company_name"), Some("Analytical Engines"));
    assert_eq!(c.str("lifecycle_stage"), Some("customer"));
    assert_eq!(c.str("lead_status"), Some("CONNECTED"));
    assert_eq!(c.str("owner_id"), Some("7001"));
    assert_eq!(c.str("owner"), Some("owner@example.com"));
    assert_eq!(c.str("first_seen_at"), Some("2024-01-15T00:00:00.000Z"));
    assert_eq!(c.str("last_activity_at"), Some("2024-05-01T12:00:00.123Z"));
    // Primary company first, then the rest in id order.
    assert_eq!(c.get("company_ids"), Some(&json!(["11", "12"])));
}

#[test]
fn contact_name_handles_missing_parts() {
    let name = |f: Option<&str>, l: Option<&str>| {
        let mut o = contact_obj();
        o.properties
            .insert("firstname".into(), f.map(str::to_owned));
        o.properties.insert("lastname".into(), l.map(str::to_owned));
        mapped(map_contact(&o))
            .record
            .str("name")
            .map(str::to_owned)
    };
    assert_eq!(name(Some("Ada"), None).as_deref(), Some("Ada"));
    assert_eq!(name(None, Some(" Lovelace ")).as_deref(), Some("Lovelace"));
    assert_eq!(name(Some(" "), Some("")), None);
    assert_eq!(
        name(Some(" Ada  "), Some("  King ")).as_deref(),
        Some("Ada King")
    );
}

#[test]
fn contact_without_email_is_skipped_and_reported() {
    let mut o = contact_obj();
    o.properties.insert("email".into(), Some(String::new()));
    let out = map_contact(&o);
    assert_eq!(
        out,
        MapOutcome::Skipped {
            object_type: ObjectType::Contacts,
            id: o.id,
            reason: SkipReason::MissingEmail,
            errors: vec![],
        }
    );
    o.properties.remove("email");
    assert!(matches!(
        map_contact(&o),
        MapOutcome::Skipped {
            reason: SkipReason::MissingEmail,
            ..
        }
    ));
}

#[test]
fn contact_with_invalid_email_is_skipped_without_leaking_it() {
    let mut o = contact_obj();
    o.properties
        .insert("email".into(), Some("ada at example".into()));
    let out = map_contact(&o);
    assert!(matches!(
        out,
        MapOutcome::Skipped {
            reason: SkipReason::InvalidEmail,
            ..
        }
    ));
    assert_eq!(out.errors().len(), 1);
    let msg = out.errors()[0].to_string();
    assert!(!msg.contains("ada at example"), "{msg}");
    assert!(!format!("{out:?}").contains("ada at example"));
}

#[test]
fn contact_debug_redacts_personal_data() {
    let m = mapped(map_contact(&contact_obj()));
    let dbg = format!("{m:?}");
    assert!(
        !dbg.contains("ada@example.com") && !dbg.contains("Lovelace"),
        "{dbg}"
    );
}

#[test]
fn contact_bad_dates_are_field_errors() {
    let mut o = contact_obj();
    o.properties
        .insert("createdate".into(), Some("yesterday".into()));
    o.properties.insert(
        "hs_last_sales_activity_date".into(),
        Some("99999999999999999".into()),
    );
    let m = mapped(map_contact(&o));
    let fields: Vec<_> = m.errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["first_seen_at", "last_activity_at"]);
    assert_eq!(m.record.str("email"), Some("ada@example.com"));
}

fn deal_obj() -> HubSpotObject {
    HubSpotObject::new(
        301,
        [
            ("dealname", "Big Deal"),
            ("dealstage", "closedwon"),
            ("pipeline", "default"),
            ("amount", "15000.255"),
            ("closedate", "2024-06-30T00:00:00Z"),
            ("hs_deal_stage_probability", "1.0"),
            ("hubspot_owner_id", "7001"),
            ("hs_lastmodifieddate", "1714564800123"),
        ],
    )
}

#[test]
fn deal_maps_every_default_field() {
    let m = mapped(map_deal(&deal_obj()));
    assert!(m.errors.is_empty());
    assert_eq!(m.source_version, Some(1_714_564_800_123));
    let d = m.record;
    assert_eq!(d.str("name"), Some("Big Deal"));
    assert_eq!(d.str("stage"), Some("Closed Won"));
    assert_eq!(d.str("stage_id"), Some("closedwon"));
    assert_eq!(d.str("pipeline"), Some("Sales Pipeline"));
    assert_eq!(d.str("pipeline_id"), Some("default"));
    assert_eq!(d.str("owner"), Some("owner@example.com"));
    assert_eq!(d.str("owner_id"), Some("7001"));
    assert_eq!(d.get("contact_ids"), Some(&json!(["201"])));
    assert_eq!(d.get("company_ids"), Some(&json!(["11", "13"])));
    // 15000.255 → banker's rounding to 15000.26 (6 is even) → 1_500_026 cents.
    assert_eq!(d.get("amount_cents"), Some(&json!(1_500_026)));
    assert_eq!(d.str("closed_at"), Some("2024-06-30T00:00:00.000Z"));
    assert_eq!(d.get("close_probability"), Some(&json!(1)));
}

#[test]
fn deal_malformed_amounts_are_field_errors() {
    for bad in ["abc", "1e5", "1,000.50", "92233720368547758.08", "--1"] {
        let mut o = deal_obj();
        o.properties.insert("amount".into(), Some(bad.into()));
        let m = mapped(map_deal(&o));
        assert_eq!(m.errors.len(), 1, "{bad}");
        assert_eq!(m.errors[0].field, "amount_cents");
        assert_eq!(m.errors[0].value_kind, ValueKind::Money);
        assert_eq!(m.record.get("amount_cents"), Some(&Value::Null));
        assert_eq!(m.record.str("name"), Some("Big Deal"));
    }
}

#[test]
fn archived_flag_and_time_are_carried() {
    let mut o = deal_obj();
    o.archived = true;
    o.archived_at = Some("2024-07-01T00:00:00Z".into());
    let m = mapped(map_deal(&o));
    assert!(m.archived);
    assert_eq!(m.archived_at.unwrap().epoch_ms(), 1_719_792_000_000);
}

#[test]
fn properties_for_lists_every_mapped_property_and_the_version() {
    for t in ObjectType::ALL {
        let props = properties_for(t);
        assert!(props.contains(&t.last_modified_property()));
        let mut sorted = props.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), props.len(), "duplicates for {t}");
    }
    // Mapping an object with only the listed properties loses nothing:
    // every property the default map reads is listed.
    let all = [company_obj(), contact_obj(), deal_obj()];
    for (t, o) in ObjectType::ALL.into_iter().zip(all) {
        let mut trimmed = o.clone();
        trimmed
            .properties
            .retain(|k, _| properties_for(t).contains(&k.as_str()));
        assert_eq!(map_object(t, &trimmed), map_object(t, &o));
    }
}

#[test]
fn content_hash_ignores_unmapped_properties_and_tracks_mapped_ones() {
    let base = mapped(map_company(&company_obj()));
    let mut o = company_obj();
    o.properties
        .insert("unmapped_property".into(), Some("changed".into()));
    o.properties
        .insert("hs_lastmodifieddate".into(), Some("2025-01-01".into()));
    assert_eq!(mapped(map_company(&o)).content_hash, base.content_hash);
    // Same amount, different text form: same hash.
    o.properties
        .insert("annualrevenue".into(), Some("1250000.500".into()));
    assert_eq!(mapped(map_company(&o)).content_hash, base.content_hash);
    o.properties
        .insert("name".into(), Some("Acme Corporation".into()));
    assert_ne!(mapped(map_company(&o)).content_hash, base.content_hash);
    assert_eq!(base.content_hash.as_str().len(), 64);
}

#[test]
fn records_serialize_with_a_type_tag_and_round_trip() {
    for (t, o) in ObjectType::ALL
        .into_iter()
        .zip([company_obj(), contact_obj(), deal_obj()])
    {
        let m = mapped(map_object(t, &o));
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(json["object_type"], t.as_api_path());
        let back: MappedRecord = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, m);
    }
    let d = mapped(map_deal(&deal_obj()));
    let json = serde_json::to_value(&d.record).unwrap();
    assert_eq!(json["record_type"], "deal");
    assert_eq!(json["amount_cents"], 1_500_026);
    assert_eq!(json["close_probability"], 1);
    assert_eq!(json["closed_at"], "2024-06-30T00:00:00.000Z");
}

#[test]
fn a_config_maps_custom_properties_scope_owners_and_associations() {
    let mut cfg = MappingConfig::default();
    let deals = cfg.object_mut(ObjectType::Deals);
    deals.rules.push(Rule::new(
        "region",
        &["region"],
        Transform::Enumeration {
            values: vec!["emea".into(), "amer".into()],
        },
    ));
    deals
        .rules
        .push(Rule::new("seats", &["seats"], Transform::Integer));
    deals.rules.push(Rule::new(
        "owner_email",
        &["hubspot_owner_id"],
        Transform::OwnerEmail,
    ));
    deals.scope.push(ScopeFilter {
        property: "pipeline".into(),
        values: vec!["default".into()],
    });
    deals.associations.push(AssociationRule {
        target: "company_id".into(),
        to: ObjectType::Companies,
        primary_only: true,
    });
    deals.associations.push(AssociationRule {
        target: "contact_ids".into(),
        to: ObjectType::Contacts,
        primary_only: false,
    });
    let owners = owners();
    let pipelines = pipelines();
    let mut assoc = Associations::new();
    assoc.insert(ObjectType::Companies, ObjectId(301), ObjectId(12), false);
    assoc.insert(ObjectType::Companies, ObjectId(301), ObjectId(11), true);
    assoc.mark_loaded(ObjectType::Contacts);
    let ctx = MapContext {
        owners: Some(&owners),
        pipelines: Some(&pipelines),
        associations: Some(&assoc),
        list_members: None,
        companies_in_scope: None,
    };
    let mut o = deal_obj();
    o.properties.insert("region".into(), Some(" EMEA ".into()));
    o.properties.insert("seats".into(), Some("abc".into()));
    o.properties
        .insert("hubspot_owner_id".into(), Some("7001".into()));
    let m = mapped(map_with(
        cfg.object(ObjectType::Deals),
        ObjectType::Deals,
        &o,
        ctx,
    ));
    assert_eq!(m.record.str("region"), Some("emea"));
    assert_eq!(m.record.get("seats"), Some(&Value::Null));
    assert_eq!(m.record.str("owner_email"), Some("owner@example.com"));
    assert_eq!(m.record.str("company_id"), Some("11"));
    assert_eq!(m.record.get("contact_ids"), Some(&json!([])));
    assert_eq!(m.record.str("name"), Some("Big Deal"));
    assert_eq!(m.errors.len(), 1);
    assert_eq!(m.errors[0].field, "seats");

    // Outside the pipeline: skipped as out of scope.
    o.properties
        .insert("pipeline".into(), Some("enterprise".into()));
    let out = map_with(cfg.object(ObjectType::Deals), ObjectType::Deals, &o, ctx);
    assert!(matches!(
        out,
        MapOutcome::Skipped {
            reason: SkipReason::OutOfScope,
            ..
        }
    ));
    // Without owners or associations loaded: field errors, still mapped.
    o.properties
        .insert("pipeline".into(), Some("default".into()));
    let m = mapped(map_with(
        cfg.object(ObjectType::Deals),
        ObjectType::Deals,
        &o,
        MapContext::default(),
    ));
    let fields: Vec<&str> = m.errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "stage",
            "pipeline",
            "owner",
            "seats",
            "owner_email",
            "contact_ids",
            "company_ids",
            "company_id",
            "contact_ids"
        ]
    );
    assert_eq!(m.record.str("name"), Some("Big Deal"));
}

#[test]
fn list_scope_applies_only_when_membership_is_loaded() {
    let mut cfg = MappingConfig::default();
    cfg.object_mut(ObjectType::Deals).lists = vec!["7".into()];
    let o = deal_obj();
    let members: BTreeSet<ObjectId> = [ObjectId(1)].into();
    fn ctx(m: Option<&BTreeSet<ObjectId>>) -> MapContext<'_> {
        MapContext {
            list_members: m,
            ..MapContext::default()
        }
    }
    let oc = cfg.object(ObjectType::Deals);
    assert!(matches!(
        map_with(oc, ObjectType::Deals, &o, ctx(Some(&members))),
        MapOutcome::Skipped {
            reason: SkipReason::OutOfScope,
            ..
        }
    ));
    let with_it: BTreeSet<ObjectId> = [o.id].into();
    assert!(map_with(oc, ObjectType::Deals, &o, ctx(Some(&with_it)))
        .mapped()
        .is_some());
    assert!(map_with(oc, ObjectType::Deals, &o, ctx(None))
        .mapped()
        .is_some());
}

/// Property tests: arbitrary values never panic and touch only their fields.
mod props;
