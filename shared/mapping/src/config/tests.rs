use crate::PropertyOption;

use super::*;

fn def(name: &str, prop_type: &str, field_type: &str, options: &[&str]) -> PropertyDefinition {
    PropertyDefinition {
        name: name.into(),
        label: name.into(),
        prop_type: prop_type.into(),
        field_type: field_type.into(),
        options: options
            .iter()
            .map(|v| PropertyOption {
                value: (*v).into(),
                label: v.to_uppercase(),
            })
            .collect(),
        referenced_object_type: None,
    }
}

/// The simulator's (and HubSpot's) default properties the default
/// config reads.
pub(crate) fn catalog() -> PropertyCatalog {
    let owner = def("hubspot_owner_id", "enumeration", "select", &[]);
    let modified = def("hs_lastmodifieddate", "datetime", "date", &[]);
    BTreeMap::from([
        (
            ObjectType::Companies,
            vec![
                def("name", "string", "text", &[]),
                def("domain", "string", "text", &[]),
                owner.clone(),
                def("annualrevenue", "number", "number", &[]),
                def("industry", "enumeration", "select", &["COMPUTER_SOFTWARE"]),
                def("numberofemployees", "number", "number", &[]),
                def("hs_last_sales_activity_date", "datetime", "date", &[]),
                modified.clone(),
            ],
        ),
        (
            ObjectType::Contacts,
            vec![
                def("email", "string", "text", &[]),
                def("firstname", "string", "text", &[]),
                def("lastname", "string", "text", &[]),
                def("company", "string", "text", &[]),
                def(
                    "lifecyclestage",
                    "enumeration",
                    "radio",
                    &["lead", "customer"],
                ),
                def(
                    "hs_lead_status",
                    "enumeration",
                    "radio",
                    &["NEW", "CONNECTED"],
                ),
                owner.clone(),
                def("createdate", "datetime", "date", &[]),
                def("notes_last_updated", "datetime", "date", &[]),
                def("hs_last_sales_activity_date", "datetime", "date", &[]),
                def("lastmodifieddate", "datetime", "date", &[]),
                def("vip", "bool", "booleancheckbox", &["true", "false"]),
            ],
        ),
        (
            ObjectType::Deals,
            vec![
                def("dealname", "string", "text", &[]),
                def("dealstage", "enumeration", "radio", &["closedwon"]),
                def(
                    "pipeline",
                    "enumeration",
                    "select",
                    &["default", "enterprise"],
                ),
                def("amount", "number", "number", &[]),
                def("closedate", "datetime", "date", &[]),
                def("hs_deal_stage_probability", "number", "number", &[]),
                owner,
                modified,
                def("region", "enumeration", "select", &["emea", "amer"]),
                def("contract_value", "number", "number", &[]),
            ],
        ),
    ])
}

#[test]
fn the_default_config_is_valid_and_round_trips() {
    let c = MappingConfig::default();
    assert_eq!(validate(&c, &catalog()), Ok(c.clone()));
    let json = c.to_json_pretty();
    assert_eq!(MappingConfig::from_json(&json).unwrap(), c);
    assert_eq!(MappingConfig::from_json("{}").unwrap(), c);
}

#[test]
fn a_partial_config_keeps_other_types_default() {
    let c = MappingConfig::from_json(
        r#"{"deals":{"rules":[{"target":"name","source":"dealname","transform":{"type":"string"}}],
            "scope":[{"property":"pipeline","values":["default"]}]}}"#,
    )
    .unwrap();
    assert_eq!(c.companies, MappingConfig::default().companies);
    assert_eq!(c.deals.rules.len(), 1);
    assert_eq!(c.deals.scope[0].property, "pipeline");
    assert_eq!(
        c.deals.properties(ObjectType::Deals),
        ["dealname", "hs_lastmodifieddate", "pipeline"]
    );
    assert!(MappingConfig::from_json(r#"{"tickets":{}}"#).is_err());
}

#[test]
fn custom_properties_validate_and_enumerations_get_their_options() {
    let mut c = MappingConfig::default();
    c.deals.rules.push(Rule::new(
        "region",
        &["region"],
        Transform::Enumeration { values: vec![] },
    ));
    c.deals.rules.push(Rule::new(
        "contract_cents",
        &["contract_value"],
        Transform::Cents,
    ));
    c.contacts
        .rules
        .push(Rule::new("vip", &["vip"], Transform::Boolean));
    c.contacts.rules.push(Rule::new(
        "owner_email",
        &["hubspot_owner_id"],
        Transform::OwnerEmail,
    ));
    let mut v = validate(&c, &catalog()).unwrap();
    assert_eq!(v.deals.rules.last().unwrap().transform, Transform::Cents);
    assert_eq!(
        v.deals.rules[v.deals.rules.len() - 2].transform,
        Transform::Enumeration {
            values: vec!["emea".into(), "amer".into()]
        }
    );
    assert!(v.needs_owners(ObjectType::Contacts));
    assert!(v.deals.needs_pipelines());
    assert!(!v.contacts.needs_pipelines());
    v.deals.rules.retain(|r| !r.transform.needs_owners());
    assert!(!v.needs_owners(ObjectType::Deals));
}

#[test]
fn unknown_properties_and_wrong_transforms_are_rejected_naming_the_rule() {
    let mut c = MappingConfig::default();
    c.deals
        .rules
        .push(Rule::new("region", &["no_such_prop"], Transform::String));
    c.deals
        .rules
        .push(Rule::new("name_cents", &["dealname"], Transform::Cents));
    c.companies.rules.push(Rule::new(
        "domain_owner",
        &["domain"],
        Transform::OwnerEmail,
    ));
    let e = validate(&c, &catalog()).unwrap_err();
    let msgs: Vec<String> = e.0.iter().map(ToString::to_string).collect();
    assert_eq!(msgs.len(), 3, "{msgs:?}");
    assert!(msgs.iter().any(|m| m.starts_with(
        "deals.region ← no_such_prop (string): HubSpot has no deals property `no_such_prop`"
    )));
    assert!(msgs.iter().any(|m| m.starts_with(
        "deals.name_cents ← dealname (cents): the `cents` transform does not fit `dealname`, a HubSpot string property"
    )));
    assert!(msgs
        .iter()
        .any(|m| m.starts_with("companies.domain_owner ← domain (owner_email)")));
    assert!(e.to_string().contains("deals.region"));
}

#[test]
fn structural_problems_are_rejected() {
    let mut c = MappingConfig::default();
    c.deals
        .rules
        .push(Rule::new("name", &["dealname"], Transform::String));
    c.deals
        .rules
        .push(Rule::new("pk", &["dealname"], Transform::String));
    c.deals
        .rules
        .push(Rule::new("Bad-Name", &["dealname"], Transform::String));
    c.deals.rules.push(Rule::new(
        "two",
        &["dealname", "pipeline"],
        Transform::String,
    ));
    c.deals
        .rules
        .push(Rule::new("none", &[], Transform::String));
    c.deals.scope.push(ScopeFilter {
        property: "pipeline".into(),
        values: vec!["nonexistent".into()],
    });
    c.deals.associations.push(AssociationRule {
        target: "deal_ids".into(),
        to: ObjectType::Deals,
        primary_only: false,
    });
    c.contacts.rules.retain(|r| r.target != "email");
    let e = validate(&c, &catalog()).unwrap_err();
    let rules: Vec<&str> = e.0.iter().map(|e| e.rule.as_str()).collect();
    assert_eq!(e.0.len(), 8, "{e}");
    assert!(rules.contains(&"contacts.email"));
    assert!(rules.contains(&"deals scope pipeline in [nonexistent]"));
    assert!(rules.contains(&"deals.deal_ids ← associations to deals"));
}

#[test]
fn list_scopes_must_exist_and_hold_the_type() {
    let mut c = MappingConfig::default();
    c.deals.lists = vec!["1".into(), "2".into(), "3".into()];
    let known = BTreeMap::from([
        ("1".to_owned(), Some(ObjectType::Deals)),
        ("2".to_owned(), Some(ObjectType::Contacts)),
    ]);
    let e = validate_lists(&c, &known);
    let msgs: Vec<String> = e.iter().map(ToString::to_string).collect();
    assert_eq!(
        msgs,
        [
            "deals scope list 2: list `2` holds contacts, not deals",
            "deals scope list 3: HubSpot has no list `3`"
        ]
    );
    let json = serde_json::to_string(&c).unwrap();
    assert_eq!(MappingConfig::from_json(&json).unwrap(), c);
}

#[test]
fn scope_and_drift() {
    let mut c = MappingConfig::default();
    c.deals.scope.push(ScopeFilter {
        property: "pipeline".into(),
        values: vec!["default".into()],
    });
    fn props(v: Option<&'static str>) -> impl Fn(&str) -> Option<String> {
        move |_| v.map(str::to_owned)
    }
    assert!(c.deals.in_scope(props(Some(" default "))));
    assert!(!c.deals.in_scope(props(Some("enterprise"))));
    assert!(!c.deals.in_scope(props(None)));
    assert!(c.companies.in_scope(props(None)));

    let mut defs = catalog()[&ObjectType::Deals].clone();
    assert!(missing_properties(&c, ObjectType::Deals, &defs).is_empty());
    defs.retain(|d| d.name != "amount" && d.name != "hs_lastmodifieddate");
    assert_eq!(missing_properties(&c, ObjectType::Deals, &defs), ["amount"]);
}

#[test]
fn properties_of_the_default_config_match_the_static_lists() {
    for t in ObjectType::ALL {
        let mut fixed: Vec<String> = crate::properties_for(t)
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        fixed.sort();
        assert_eq!(
            MappingConfig::default().object(t).properties(t),
            fixed,
            "{t}"
        );
    }
}

/// The default map, field by field, as DESIGN.md and the seeds state it
/// (PulseScore's tables; Pivotal's `owner` shown as an email).
#[test]
fn every_default_field_is_pinned_to_its_seed_source() {
    use ObjectType::*;
    let expected: &[(ObjectType, &str, &str, &str)] = &[
        (Companies, "name", "name", "string"),
        (Companies, "domain", "domain", "string"),
        (Companies, "owner", "hubspot_owner_id", "owner_email"),
        (Companies, "owner_id", "hubspot_owner_id", "string"),
        (Companies, "owner_email", "hubspot_owner_id", "owner_email"),
        (Companies, "arr", "annualrevenue", "decimal"),
        (Companies, "industry", "industry", "string"),
        (Companies, "employee_count", "numberofemployees", "count"),
        (Companies, "annual_revenue_cents", "annualrevenue", "cents"),
        (
            Companies,
            "last_activity_at",
            "hs_last_sales_activity_date",
            "datetime",
        ),
        (Contacts, "email", "email", "email"),
        (Contacts, "name", "firstname + lastname", "concat"),
        (Contacts, "company_name", "company", "string"),
        (Contacts, "lifecycle_stage", "lifecyclestage", "string"),
        (Contacts, "lead_status", "hs_lead_status", "string"),
        (Contacts, "owner", "hubspot_owner_id", "owner_email"),
        (Contacts, "owner_id", "hubspot_owner_id", "string"),
        (Contacts, "first_seen_at", "createdate", "datetime"),
        (
            Contacts,
            "last_activity_at",
            "hs_last_sales_activity_date",
            "datetime",
        ),
        (Deals, "name", "dealname", "string"),
        (Deals, "stage", "dealstage", "stage_label"),
        (Deals, "stage_id", "dealstage", "string"),
        (Deals, "pipeline", "pipeline", "pipeline_label"),
        (Deals, "pipeline_id", "pipeline", "string"),
        (Deals, "amount_cents", "amount", "cents"),
        (Deals, "closed_at", "closedate", "datetime"),
        (
            Deals,
            "close_probability",
            "hs_deal_stage_probability",
            "probability",
        ),
        (Deals, "owner", "hubspot_owner_id", "owner_email"),
        (Deals, "owner_id", "hubspot_owner_id", "string"),
    ];
    let config = MappingConfig::default();
    let actual: Vec<(ObjectType, String, String, &str)> = ObjectType::ALL
        .into_iter()
        .flat_map(|t| {
            config.object(t).rules.iter().map(move |r| {
                (
                    t,
                    r.target.clone(),
                    r.source.join(" + "),
                    r.transform.name(),
                )
            })
        })
        .collect();
    let expected: Vec<(ObjectType, String, String, &str)> = expected
        .iter()
        .map(|(t, target, source, transform)| (*t, (*target).into(), (*source).into(), *transform))
        .collect();
    assert_eq!(actual, expected);
    // Default associations: contact → company, deal → contact and company,
    // lists with the primary record first.
    let assoc: Vec<(ObjectType, &str, ObjectType, bool)> = ObjectType::ALL
        .into_iter()
        .flat_map(|t| {
            config
                .object(t)
                .associations
                .iter()
                .map(move |a| (t, a.target.as_str(), a.to, a.primary_only))
        })
        .collect();
    assert_eq!(
        assoc,
        [
            (Contacts, "company_ids", Companies, false),
            (Deals, "contact_ids", Contacts, false),
            (Deals, "company_ids", Companies, false),
        ]
    );
}

#[test]
fn unknown_pipeline_ids_are_found_only_in_label_rules() {
    let config = MappingConfig::default();
    let mut p = crate::Pipelines::new();
    p.insert("default", "Sales", &[("closedwon", "Won")]);
    let deal =
        |stage: &str| crate::HubSpotObject::new(1, [("pipeline", "default"), ("dealstage", stage)]);
    assert!(!config
        .deals
        .names_unknown_pipeline_ids(&deal("closedwon"), &p));
    assert!(config
        .deals
        .names_unknown_pipeline_ids(&deal("brand_new"), &p));
    assert!(!config.deals.names_unknown_pipeline_ids(&deal(" "), &p));
    // Companies resolve no labels.
    assert!(!config
        .companies
        .names_unknown_pipeline_ids(&deal("brand_new"), &p));
}

#[test]
fn company_followers_are_the_types_that_say_so() {
    let mut config = MappingConfig::default();
    assert!(config.company_followers().is_empty());
    config.deals.scope_follows_companies = true;
    assert_eq!(config.company_followers(), [ObjectType::Deals]);
    config.contacts.scope_follows_companies = true;
    assert_eq!(
        config.company_followers(),
        [ObjectType::Contacts, ObjectType::Deals]
    );
}
