//! The default field map (DESIGN.md, "Field mapping").
//!
//! | app field | HubSpot property | conversion |
//! |---|---|---|
//! | company `name`, `domain`, `industry` | `name`, `domain`, `industry` | text |
//! | company `owner_id` | `hubspot_owner_id` | text (raw owner id) |
//! | company `arr` | `annualrevenue` | exact decimal |
//! | company `annual_revenue_cents` | `annualrevenue` | cents, banker's rounding |
//! | company `employee_count` | `numberofemployees` | non-negative integer |
//! | contact `email` | `email` | required; else skipped |
//! | contact `name` | `firstname` + `lastname` | trimmed, one space |
//! | contact `company_name` | `company` | text |
//! | contact `lifecycle_stage`, `lead_status`, `owner_id` | `lifecyclestage`, `hs_lead_status`, `hubspot_owner_id` | text |
//! | contact `first_seen_at` | `createdate` | timestamp |
//! | contact `last_activity_at` | `notes_last_updated` | timestamp |
//! | deal `name`, `stage`, `pipeline`, `owner_id` | `dealname`, `dealstage`, `pipeline`, `hubspot_owner_id` | text |
//! | deal `amount_cents` | `amount` | cents, banker's rounding |
//! | deal `closed_at` | `closedate` | timestamp |
//! | deal `close_probability` | `hs_deal_stage_probability` | decimal in [0, 1] |
//!
//! Source version: `hs_lastmodifieddate` (companies, deals) /
//! `lastmodifieddate` (contacts) as epoch ms, falling back to the object's
//! `updatedAt`.

use crate::ids::ObjectType;
use crate::object::HubSpotObject;
use crate::record::{
    AppRecord, Company, Contact, ContentHash, Deal, FieldError, MapOutcome, MappedRecord,
    SkipReason,
};
use crate::values::{
    non_empty, parse_cents, parse_count, parse_decimal, parse_email, parse_probability, parse_text,
    parse_timestamp, ConvError, Timestamp, ValueKind,
};

const COMPANY_PROPERTIES: &[&str] = &[
    "name",
    "domain",
    "hubspot_owner_id",
    "annualrevenue",
    "industry",
    "numberofemployees",
    "hs_lastmodifieddate",
];

const CONTACT_PROPERTIES: &[&str] = &[
    "email",
    "firstname",
    "lastname",
    "company",
    "lifecyclestage",
    "hs_lead_status",
    "hubspot_owner_id",
    "createdate",
    "notes_last_updated",
    "lastmodifieddate",
];

const DEAL_PROPERTIES: &[&str] = &[
    "dealname",
    "dealstage",
    "pipeline",
    "amount",
    "closedate",
    "hs_deal_stage_probability",
    "hubspot_owner_id",
    "hs_lastmodifieddate",
];

/// The HubSpot properties the default map reads for a type (including the
/// source-version property), so fetches request only these.
pub fn properties_for(object_type: ObjectType) -> &'static [&'static str] {
    match object_type {
        ObjectType::Companies => COMPANY_PROPERTIES,
        ObjectType::Contacts => CONTACT_PROPERTIES,
        ObjectType::Deals => DEAL_PROPERTIES,
    }
}

/// Map one HubSpot object of the given type with the default field map.
pub fn map_object(object_type: ObjectType, obj: &HubSpotObject) -> MapOutcome {
    match object_type {
        ObjectType::Companies => map_company(obj),
        ObjectType::Contacts => map_contact(obj),
        ObjectType::Deals => map_deal(obj),
    }
}

/// Collects per-field errors while reading properties.
struct Reader<'a> {
    obj: &'a HubSpotObject,
    errors: Vec<FieldError>,
}

impl<'a> Reader<'a> {
    fn new(obj: &'a HubSpotObject) -> Self {
        Self {
            obj,
            errors: Vec::new(),
        }
    }

    fn raw(&self, prop: &str) -> Option<&'a str> {
        self.obj.property(prop)
    }

    fn record<T>(
        &mut self,
        field: &str,
        prop: &str,
        kind: ValueKind,
        r: Result<Option<T>, ConvError>,
    ) -> Option<T> {
        match r {
            Ok(v) => v,
            Err(e) => {
                self.errors.push(FieldError {
                    field: field.to_owned(),
                    source_property: prop.to_owned(),
                    value_kind: kind,
                    message: e.to_string(),
                });
                None
            }
        }
    }

    fn text(&self, prop: &str) -> Option<String> {
        parse_text(self.raw(prop))
    }

    fn decimal(&mut self, field: &str, prop: &str) -> Option<rust_decimal::Decimal> {
        let r = parse_decimal(self.raw(prop));
        self.record(field, prop, ValueKind::Decimal, r)
    }

    fn cents(&mut self, field: &str, prop: &str) -> Option<crate::values::Cents> {
        let r = parse_cents(self.raw(prop));
        self.record(field, prop, ValueKind::Money, r)
    }

    fn count(&mut self, field: &str, prop: &str) -> Option<i64> {
        let r = parse_count(self.raw(prop));
        self.record(field, prop, ValueKind::Integer, r)
    }

    fn probability(&mut self, field: &str, prop: &str) -> Option<rust_decimal::Decimal> {
        let r = parse_probability(self.raw(prop));
        self.record(field, prop, ValueKind::Probability, r)
    }

    fn timestamp(&mut self, field: &str, prop: &str) -> Option<Timestamp> {
        let r = parse_timestamp(self.raw(prop).unwrap_or(""));
        self.record(field, prop, ValueKind::Timestamp, r)
    }

    /// Source version from the last-modified property, else `updatedAt`.
    fn source_version(&mut self, object_type: ObjectType) -> Option<i64> {
        let prop = object_type.last_modified_property();
        let from_prop = self.timestamp("source_version", prop);
        from_prop
            .or_else(|| {
                self.obj
                    .updated_at
                    .as_deref()
                    .and_then(|s| parse_timestamp(s).ok().flatten())
            })
            .map(Timestamp::epoch_ms)
    }

    fn finish(mut self, object_type: ObjectType, record: AppRecord) -> MapOutcome {
        let source_version = self.source_version(object_type);
        let archived_at = self
            .obj
            .archived_at
            .as_deref()
            .and_then(|s| parse_timestamp(s).ok().flatten());
        let content_hash = ContentHash::of(&record);
        MapOutcome::Mapped(MappedRecord {
            object_type,
            id: self.obj.id,
            archived: self.obj.archived,
            archived_at,
            source_version,
            record,
            content_hash,
            errors: self.errors,
        })
    }
}

/// Companies: see the module table.
pub fn map_company(obj: &HubSpotObject) -> MapOutcome {
    let mut r = Reader::new(obj);
    let company = Company {
        name: r.text("name"),
        domain: r.text("domain"),
        owner_id: r.text("hubspot_owner_id"),
        arr: r.decimal("arr", "annualrevenue"),
        industry: r.text("industry"),
        employee_count: r.count("employee_count", "numberofemployees"),
        annual_revenue_cents: r.cents("annual_revenue_cents", "annualrevenue"),
    };
    r.finish(ObjectType::Companies, AppRecord::Company(company))
}

/// `firstname` + `lastname`, each trimmed, joined with one space.
fn full_name(first: Option<&str>, last: Option<&str>) -> Option<String> {
    match (non_empty(first), non_empty(last)) {
        (Some(f), Some(l)) => Some(format!("{f} {l}")),
        (Some(one), None) | (None, Some(one)) => Some(one.to_owned()),
        (None, None) => None,
    }
}

/// Contacts: see the module table. No email → `Skipped { MissingEmail }`;
/// an email that is not an address → `Skipped { InvalidEmail }`.
pub fn map_contact(obj: &HubSpotObject) -> MapOutcome {
    let mut r = Reader::new(obj);
    let email_raw = r.raw("email");
    let email = match parse_email(email_raw) {
        Ok(Some(e)) => e,
        outcome => {
            let reason = if outcome.is_ok() {
                SkipReason::MissingEmail
            } else {
                SkipReason::InvalidEmail
            };
            let _ = r.record("email", "email", ValueKind::Email, outcome);
            return MapOutcome::Skipped {
                object_type: ObjectType::Contacts,
                id: obj.id,
                reason,
                errors: r.errors,
            };
        }
    };
    let contact = Contact {
        email,
        name: full_name(r.raw("firstname"), r.raw("lastname")),
        company_name: r.text("company"),
        lifecycle_stage: r.text("lifecyclestage"),
        lead_status: r.text("hs_lead_status"),
        owner_id: r.text("hubspot_owner_id"),
        first_seen_at: r.timestamp("first_seen_at", "createdate"),
        last_activity_at: r.timestamp("last_activity_at", "notes_last_updated"),
    };
    r.finish(ObjectType::Contacts, AppRecord::Contact(contact))
}

/// Deals: see the module table.
pub fn map_deal(obj: &HubSpotObject) -> MapOutcome {
    let mut r = Reader::new(obj);
    let deal = Deal {
        name: r.text("dealname"),
        stage: r.text("dealstage"),
        pipeline: r.text("pipeline"),
        amount_cents: r.cents("amount_cents", "amount"),
        closed_at: r.timestamp("closed_at", "closedate"),
        close_probability: r.probability("close_probability", "hs_deal_stage_probability"),
        owner_id: r.text("hubspot_owner_id"),
    };
    r.finish(ObjectType::Deals, AppRecord::Deal(deal))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::Cents;
    use proptest::prelude::*;
    use rust_decimal::Decimal;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str_exact(s).unwrap()
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
        let AppRecord::Company(c) = m.record else {
            panic!("not a company")
        };
        assert_eq!(
            c,
            Company {
                name: Some("Acme Corp".into()),
                domain: Some("acme.test".into()),
                owner_id: Some("7001".into()),
                arr: Some(dec("1250000.5")),
                industry: Some("COMPUTER_SOFTWARE".into()),
                employee_count: Some(250),
                annual_revenue_cents: Some(Cents(125_000_050)),
            }
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
        let AppRecord::Company(c) = &m.record else {
            panic!()
        };
        assert_eq!(c.arr, None);
        assert_eq!(c.annual_revenue_cents, None);
        assert_eq!(c.employee_count, None);
        assert_eq!(c.name.as_deref(), Some("Acme Corp"));
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
        let AppRecord::Company(c) = &m.record else {
            panic!()
        };
        assert_eq!(c.arr, Some(dec("99999999999999999999")));
        assert_eq!(c.annual_revenue_cents, None);
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
        assert_eq!(m.record, AppRecord::Company(Company::default()));
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
                ("notes_last_updated", "1714564800123"),
                ("lastmodifieddate", "2024-05-01T12:00:00.123Z"),
            ],
        )
    }

    #[test]
    fn contact_maps_every_default_field() {
        let m = mapped(map_contact(&contact_obj()));
        assert!(m.errors.is_empty());
        assert_eq!(m.source_version, Some(1_714_564_800_123));
        let AppRecord::Contact(c) = m.record else {
            panic!("not a contact")
        };
        assert_eq!(c.email, "ada@example.com");
        assert_eq!(c.name.as_deref(), Some("Ada Lovelace"));
        assert_eq!(c.company_name.as_deref(), Some("Analytical Engines"));
        assert_eq!(c.lifecycle_stage.as_deref(), Some("customer"));
        assert_eq!(c.lead_status.as_deref(), Some("CONNECTED"));
        assert_eq!(c.owner_id.as_deref(), Some("7001"));
        assert_eq!(
            c.first_seen_at.unwrap().to_rfc3339(),
            "2024-01-15T00:00:00.000Z"
        );
        assert_eq!(
            c.last_activity_at.unwrap().to_rfc3339(),
            "2024-05-01T12:00:00.123Z"
        );
    }

    #[test]
    fn contact_name_handles_missing_parts() {
        assert_eq!(full_name(Some("Ada"), None).as_deref(), Some("Ada"));
        assert_eq!(
            full_name(None, Some(" Lovelace ")).as_deref(),
            Some("Lovelace")
        );
        assert_eq!(full_name(Some(" "), Some("")), None);
        assert_eq!(
            full_name(Some(" Ada  "), Some("  King ")).as_deref(),
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
            "notes_last_updated".into(),
            Some("99999999999999999".into()),
        );
        let m = mapped(map_contact(&o));
        let fields: Vec<_> = m.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["first_seen_at", "last_activity_at"]);
        let AppRecord::Contact(c) = &m.record else {
            panic!()
        };
        assert_eq!(c.email, "ada@example.com");
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
                ("hs_lastmodifieddate", "1714564800123"),
            ],
        )
    }

    #[test]
    fn deal_maps_every_default_field() {
        let m = mapped(map_deal(&deal_obj()));
        assert!(m.errors.is_empty());
        assert_eq!(m.source_version, Some(1_714_564_800_123));
        let AppRecord::Deal(d) = m.record else {
            panic!("not a deal")
        };
        assert_eq!(d.name.as_deref(), Some("Big Deal"));
        assert_eq!(d.stage.as_deref(), Some("closedwon"));
        assert_eq!(d.pipeline.as_deref(), Some("default"));
        // 15000.255 → banker's rounding to 15000.26 (6 is even) → 1_500_026 cents.
        assert_eq!(d.amount_cents, Some(Cents(1_500_026)));
        assert_eq!(
            d.closed_at.unwrap().to_rfc3339(),
            "2024-06-30T00:00:00.000Z"
        );
        assert_eq!(d.close_probability, Some(Decimal::ONE));
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
            let AppRecord::Deal(d) = &m.record else {
                panic!()
            };
            assert_eq!(d.amount_cents, None);
            assert_eq!(d.name.as_deref(), Some("Big Deal"));
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
        assert_eq!(json["close_probability"], "1");
        assert_eq!(json["closed_at"], "2024-06-30T00:00:00.000Z");
    }

    const FIELDS: &[(&str, &[&str])] = &[
        ("companies", COMPANY_PROPERTIES),
        ("contacts", CONTACT_PROPERTIES),
        ("deals", DEAL_PROPERTIES),
    ];

    proptest! {
        #[test]
        fn arbitrary_strings_in_any_field_never_panic_and_other_fields_still_map(
            value in prop_oneof![
                any::<String>(),
                Just(String::new()),
                Just("  ".to_owned()),
                "[-+0-9.,eE ]{0,30}",
                "[0-9]{10,25}",
                "[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?Z)?",
            ],
        ) {
            for (name, props) in FIELDS {
                let t: ObjectType = name.parse().unwrap();
                let base = match t {
                    ObjectType::Companies => company_obj(),
                    ObjectType::Contacts => contact_obj(),
                    ObjectType::Deals => deal_obj(),
                };
                let base_json = serde_json::to_value(&mapped(map_object(t, &base)).record).unwrap();
                for prop in props.iter().copied() {
                    let mut o = base.clone();
                    o.properties.insert(prop.to_owned(), Some(value.clone()));
                    let out = map_object(t, &o);
                    // Errors only for the touched property (`annualrevenue` feeds two fields).
                    let fed = if prop == "annualrevenue" { 2 } else { 1 };
                    prop_assert!(out.errors().len() <= fed);
                    for e in out.errors() {
                        prop_assert_eq!(e.source_property.as_str(), prop);
                        if value.trim().len() >= 8 {
                            prop_assert!(!e.to_string().contains(value.trim()));
                        }
                    }
                    if prop == "email" {
                        continue;
                    }
                    // Still mapped, and every field not fed by `prop` is unchanged.
                    let m = out.into_mapped();
                    prop_assert!(m.is_some());
                    let json = serde_json::to_value(&m.unwrap().record).unwrap();
                    let changed = base_json
                        .as_object()
                        .unwrap()
                        .iter()
                        .filter(|(k, v)| json.get(k.as_str()) != Some(*v))
                        .count();
                    prop_assert!(changed <= fed, "{prop} changed {changed} fields");
                }
            }
        }

        #[test]
        fn all_properties_arbitrary_never_panic(
            values in proptest::collection::vec(proptest::option::of(any::<String>()), 10),
            archived in any::<bool>(),
        ) {
            for t in ObjectType::ALL {
                let mut o = HubSpotObject::new(1, std::iter::empty::<(String, String)>());
                o.archived = archived;
                for (p, v) in properties_for(t).iter().zip(values.iter()) {
                    o.properties.insert((*p).to_owned(), v.clone());
                }
                let out = map_object(t, &o);
                if let Some(m) = out.mapped() {
                    prop_assert_eq!(m.content_hash.clone(), m.record.content_hash());
                    prop_assert_eq!(m.archived, archived);
                }
            }
        }
    }
}
