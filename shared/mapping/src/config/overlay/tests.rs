use super::*;
use crate::config::tests::catalog;
use crate::config::validate;
use crate::transform::Transform;

const ONE_FIELD: &str = r#"{"extends": "default",
  "contacts": {"rules": [{"target": "vip", "source": "vip", "transform": {"type": "boolean"}}]}}"#;

#[test]
fn one_custom_field_is_added_after_every_default() {
    let c = MappingConfig::from_json(ONE_FIELD).unwrap();
    let defaults = MappingConfig::default();
    assert_eq!(c.companies, defaults.companies);
    assert_eq!(c.deals, defaults.deals);
    let mut expected = defaults.contacts.clone();
    expected
        .rules
        .push(Rule::new("vip", &["vip"], Transform::Boolean));
    assert_eq!(c.contacts, expected);
    assert_eq!(c.custom_fields(ObjectType::Contacts), ["vip"]);
    assert!(c.custom_fields(ObjectType::Deals).is_empty());
    // It validates against HubSpot's definitions like a complete config.
    validate(&c, &catalog()).unwrap();
}

#[test]
fn the_stored_form_is_only_the_differences() {
    let c = MappingConfig::from_json(ONE_FIELD).unwrap();
    let json: serde_json::Value = serde_json::to_value(&c).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"extends": "default",
            "contacts": {"rules": [{"target": "vip", "source": "vip", "transform": {"type": "boolean"}}]}})
    );
    assert_eq!(MappingConfig::from_json(&json.to_string()).unwrap(), c);
}

#[test]
fn overrides_replace_in_place_and_removals_drop_defaults() {
    let c = MappingConfig::from_json(
        r#"{"extends": "default",
            "deals": {"rules": [{"target": "stage", "source": "dealstage", "transform": {"type": "string"}}],
                      "remove": ["owner", "contact_ids"],
                      "scope": [{"property": "pipeline", "values": ["default"]}]}}"#,
    )
    .unwrap();
    let deals = &c.deals;
    let defaults = MappingConfig::default().deals;
    assert_eq!(
        deals.rules[1],
        Rule::new("stage", &["dealstage"], Transform::String)
    );
    assert_eq!(deals.rules.len(), defaults.rules.len() - 1);
    assert!(!deals.rules.iter().any(|r| r.target == "owner"));
    assert_eq!(
        deals
            .associations
            .iter()
            .map(|a| a.target.as_str())
            .collect::<Vec<_>>(),
        ["company_ids"]
    );
    assert_eq!(deals.scope.len(), 1);
    assert_eq!(c.custom_fields(ObjectType::Deals), ["stage"]);
    // Round trip: the same differences.
    let back = MappingConfig::from_json(&c.to_json_pretty()).unwrap();
    assert_eq!(back, c);
    let json: serde_json::Value = serde_json::to_value(&c).unwrap();
    assert_eq!(
        json["deals"]["remove"],
        serde_json::json!(["owner", "contact_ids"])
    );
}

#[test]
fn bad_additive_configs_are_refused_with_a_precise_message() {
    for (json, message) in [
        (
            r#"{"extends": "default", "contacts": {"remove": ["nope"]}}"#,
            "contacts: cannot remove `nope`: it is not a default field of contacts",
        ),
        (
            r#"{"contacts": {"remove": ["lead_status"], "rules": []}}"#,
            "contacts: `remove` needs `\"extends\": \"default\"`",
        ),
        (
            r#"{"contacts": {"scope": []}}"#,
            "contacts: missing field `rules`",
        ),
        (
            r#"{"extends": "default", "contacts": {"remove": ["name"],
                "rules": [{"target": "name", "source": "firstname", "transform": {"type": "string"}}]}}"#,
            "contacts: `name` is both removed and mapped",
        ),
        (r#"{"extends": "other"}"#, "unknown variant `other`"),
        (
            r#"{"extends": "default", "tickets": {}}"#,
            "unknown field `tickets`",
        ),
    ] {
        let err = MappingConfig::from_json(json).unwrap_err().to_string();
        assert!(err.contains(message), "{json}: {err}");
    }
}

#[test]
fn complete_configs_keep_their_form() {
    let full = MappingConfig::default();
    let json = serde_json::to_value(&full).unwrap();
    assert!(json.get("extends").is_none());
    assert!(json["contacts"]["rules"].is_array());
    assert_eq!(MappingConfig::from_json(&json.to_string()).unwrap(), full);
    // A bare `extends` is the defaults, stored as just that.
    let bare = MappingConfig::from_json(r#"{"extends": "default"}"#).unwrap();
    assert_eq!(bare.contacts, full.contacts);
    assert_eq!(
        serde_json::to_value(&bare).unwrap(),
        serde_json::json!({"extends": "default"})
    );
}
