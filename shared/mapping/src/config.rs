//! A portal's mapping configuration: per object type, the `target ←
//! source` rules with their transform, the sync scope, and the association
//! fields — and its validation against HubSpot's property definitions
//! (`GET /crm/v3/properties/{type}`).
//!
//! A portal without a saved config uses [`MappingConfig::default`], the
//! DESIGN.md default field map (exactly what [`crate::map_object`] maps).
//! Custom HubSpot properties are mapped like built-in ones: a rule names
//! any property the portal defines.
//!
//! ```json
//! {"deals": {
//!    "rules": [{"target": "name", "source": "dealname", "transform": {"type": "string"}},
//!              {"target": "amount_cents", "source": "amount", "transform": {"type": "cents"}}],
//!    "scope": [{"property": "pipeline", "values": ["default"]}],
//!    "associations": [{"target": "company_ids", "to": "companies"}]}}
//! ```
//! A type left out keeps its default rules.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ids::ObjectType;
use crate::transform::Transform;

/// The mapping of every object type of one portal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingConfig {
    #[serde(default = "default_companies")]
    pub companies: ObjectConfig,
    #[serde(default = "default_contacts")]
    pub contacts: ObjectConfig,
    #[serde(default = "default_deals")]
    pub deals: ObjectConfig,
}

impl Default for MappingConfig {
    fn default() -> Self {
        Self {
            companies: default_companies(),
            contacts: default_contacts(),
            deals: default_deals(),
        }
    }
}

impl MappingConfig {
    /// The config of one type.
    pub fn object(&self, t: ObjectType) -> &ObjectConfig {
        match t {
            ObjectType::Companies => &self.companies,
            ObjectType::Contacts => &self.contacts,
            ObjectType::Deals => &self.deals,
        }
    }

    pub fn object_mut(&mut self, t: ObjectType) -> &mut ObjectConfig {
        match t {
            ObjectType::Companies => &mut self.companies,
            ObjectType::Contacts => &mut self.contacts,
            ObjectType::Deals => &mut self.deals,
        }
    }

    /// Parses a config from JSON (missing types keep their defaults).
    pub fn from_json(s: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(s)
    }

    pub fn to_json_pretty(&self) -> String {
        // A struct of strings, vectors and enums always serializes.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Whether any type maps owner ids to owner emails or names.
    pub fn needs_owners(&self, t: ObjectType) -> bool {
        self.object(t)
            .rules
            .iter()
            .any(|r| r.transform.needs_owners())
    }

    /// Whether some object type resolves owners.
    pub fn needs_any_owners(&self) -> bool {
        ObjectType::ALL.iter().any(|t| self.needs_owners(*t))
    }
}

/// The mapping of one object type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectConfig {
    /// App fields, in order (field errors are reported in this order).
    pub rules: Vec<Rule>,
    /// Which records sync: all filters must match (empty = every record).
    /// A record that does not match is skipped, and a stored copy is
    /// archived with reason `out_of_scope`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scope: Vec<ScopeFilter>,
    /// Association fields (associations v4).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub associations: Vec<AssociationRule>,
    /// List scope: HubSpot list ids (Lists API, scope `crm.lists.read`); a
    /// record syncs only while it is a member of at least one (and matches
    /// `scope`). HubSpot sends no webhook for list membership, so the
    /// reconciliation applies it: between runs the worker keeps updating
    /// records already synced but creates none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lists: Vec<String>,
}

impl ObjectConfig {
    /// A fingerprint of this type's mapping (rules, scope, lists,
    /// associations) and of the content-hash version: stored with each
    /// record, so that the reconciliation tells a record remapped because
    /// an admin changed the config from one the webhooks missed.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        hasher.update(crate::record::CONTENT_HASH_VERSION.as_bytes());
        hasher.update([0]);
        // A struct of strings, vectors and enums always serializes.
        hasher.update(serde_json::to_vec(self).unwrap_or_default());
        hex::encode(&hasher.finalize()[..8])
    }

    /// The distinct owner ids `object` names in properties that rules
    /// resolve to owner emails or names (trimmed, non-empty).
    pub fn owner_ids<'a>(&self, object: &'a crate::HubSpotObject) -> Vec<&'a str> {
        let mut ids: Vec<&str> = self
            .rules
            .iter()
            .filter(|r| r.transform.needs_owners())
            .flat_map(|r| r.source.iter())
            .filter_map(|p| object.property(p))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// The HubSpot properties mapping this type needs: every rule source,
    /// every scope property, the last-modified property (the version), and
    /// contacts' `email`; sorted, without duplicates. Only these are
    /// requested from HubSpot.
    pub fn properties(&self, t: ObjectType) -> Vec<String> {
        let mut set: BTreeSet<String> = BTreeSet::new();
        for r in &self.rules {
            set.extend(r.source.iter().cloned());
        }
        for s in &self.scope {
            set.insert(s.property.clone());
        }
        set.insert(t.last_modified_property().to_owned());
        if t == ObjectType::Contacts {
            set.insert("email".to_owned());
        }
        set.into_iter().collect()
    }

    /// Whether `obj`'s properties put it inside the scope.
    pub fn in_scope(&self, property: impl Fn(&str) -> Option<String>) -> bool {
        self.scope.iter().all(|f| {
            property(&f.property).is_some_and(|v| f.values.iter().any(|w| w.trim() == v.trim()))
        })
    }
}

/// `target ← source` with a transform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// The app field (a top-level attribute of the stored record).
    pub target: String,
    /// The HubSpot properties read (one, or several for `concat`). A single
    /// property may be written as a string.
    #[serde(
        serialize_with = "one_or_many_ser",
        deserialize_with = "one_or_many_de"
    )]
    pub source: Vec<String>,
    pub transform: Transform,
}

impl Rule {
    pub fn new(target: &str, source: &[&str], transform: Transform) -> Self {
        Self {
            target: target.to_owned(),
            source: source.iter().map(|s| (*s).to_owned()).collect(),
            transform,
        }
    }

    /// How messages name the rule: `deals.amount_cents ← amount (cents)`.
    pub fn describe(&self, t: ObjectType) -> String {
        format!(
            "{t}.{} ← {} ({})",
            self.target,
            self.source.join(" + "),
            self.transform.name()
        )
    }
}

fn one_or_many_ser<S: Serializer>(v: &[String], s: S) -> Result<S::Ok, S::Error> {
    match v {
        [one] => s.serialize_str(one),
        many => many.serialize(s),
    }
}

fn one_or_many_de<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

/// A scope filter: the property's (trimmed) value must be one of `values`
/// (e.g. `pipeline` in `["default"]`, `lifecyclestage` in `["customer"]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeFilter {
    pub property: String,
    pub values: Vec<String>,
}

/// An association field: the ids of the associated records of type `to`
/// (a sorted list of id strings), or with `primary_only` the primary one
/// (an id string or null) — e.g. a contact's primary company.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssociationRule {
    pub target: String,
    pub to: ObjectType,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub primary_only: bool,
}

impl AssociationRule {
    pub fn describe(&self, t: ObjectType) -> String {
        format!(
            "{t}.{} ← associations to {}{}",
            self.target,
            self.to,
            if self.primary_only { " (primary)" } else { "" }
        )
    }
}

fn text() -> Transform {
    Transform::String
}

fn default_companies() -> ObjectConfig {
    ObjectConfig {
        rules: vec![
            Rule::new("name", &["name"], text()),
            Rule::new("domain", &["domain"], text()),
            Rule::new("owner_id", &["hubspot_owner_id"], text()),
            Rule::new("owner_email", &["hubspot_owner_id"], Transform::OwnerEmail),
            Rule::new("arr", &["annualrevenue"], Transform::Decimal),
            Rule::new("industry", &["industry"], text()),
            Rule::new("employee_count", &["numberofemployees"], Transform::Count),
            Rule::new("annual_revenue_cents", &["annualrevenue"], Transform::Cents),
        ],
        scope: Vec::new(),
        associations: Vec::new(),
        lists: Vec::new(),
    }
}

fn default_contacts() -> ObjectConfig {
    ObjectConfig {
        rules: vec![
            Rule::new("email", &["email"], Transform::Email),
            Rule::new(
                "name",
                &["firstname", "lastname"],
                Transform::Concat {
                    separator: " ".into(),
                },
            ),
            Rule::new("company_name", &["company"], text()),
            Rule::new("lifecycle_stage", &["lifecyclestage"], text()),
            Rule::new("lead_status", &["hs_lead_status"], text()),
            Rule::new("owner_id", &["hubspot_owner_id"], text()),
            Rule::new("first_seen_at", &["createdate"], Transform::Datetime),
            Rule::new(
                "last_activity_at",
                &["notes_last_updated"],
                Transform::Datetime,
            ),
        ],
        scope: Vec::new(),
        associations: Vec::new(),
        lists: Vec::new(),
    }
}

fn default_deals() -> ObjectConfig {
    ObjectConfig {
        rules: vec![
            Rule::new("name", &["dealname"], text()),
            Rule::new("stage", &["dealstage"], text()),
            Rule::new("pipeline", &["pipeline"], text()),
            Rule::new("amount_cents", &["amount"], Transform::Cents),
            Rule::new("closed_at", &["closedate"], Transform::Datetime),
            Rule::new(
                "close_probability",
                &["hs_deal_stage_probability"],
                Transform::Probability,
            ),
            Rule::new("owner_id", &["hubspot_owner_id"], text()),
        ],
        scope: Vec::new(),
        associations: Vec::new(),
        lists: Vec::new(),
    }
}

/// A HubSpot property definition, as `GET /crm/v3/properties/{type}`
/// returns it (the fields validation needs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PropertyDefinition {
    pub name: String,
    #[serde(rename = "type")]
    pub prop_type: String,
    #[serde(default)]
    pub field_type: String,
    #[serde(default)]
    pub options: Vec<PropertyOption>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referenced_object_type: Option<String>,
}

impl PropertyDefinition {
    /// Whether its values are owner ids.
    pub fn is_owner(&self) -> bool {
        self.name == "hubspot_owner_id"
            || self.referenced_object_type.as_deref() == Some("OWNER")
            || (self.name.ends_with("_owner_id") && self.prop_type != "date")
    }
}

/// One option of an enumeration property.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PropertyOption {
    pub value: String,
    #[serde(default)]
    pub label: String,
}

/// The property definitions of a portal, per type.
pub type PropertyCatalog = BTreeMap<ObjectType, Vec<PropertyDefinition>>;

/// One rejected rule (or scope filter, or association).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{rule}: {message}")]
pub struct RuleError {
    /// The rule, as [`Rule::describe`] names it.
    pub rule: String,
    pub message: String,
}

/// Every problem of a config (never empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigErrors(pub Vec<RuleError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "mapping config rejected: ")?;
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// App field names the store or the record tag own.
pub const RESERVED_TARGETS: &[&str] = &[
    "record_type",
    "pk",
    "sk",
    "portal_id",
    "object_type",
    "object_id",
    "source_version",
    "content_hash",
    "archived",
    "archived_at",
    "archive_reason",
    "merged_into",
    "privacy_deleted",
    "purged_at",
    "synced_at",
    "mapping_fp",
    "expires_at_epoch",
];

/// Most characters in a target name.
pub const MAX_TARGET_LEN: usize = 64;

fn check_target(target: &str) -> Option<String> {
    if target.is_empty() || target.len() > MAX_TARGET_LEN {
        return Some(format!(
            "the target must have 1 to {MAX_TARGET_LEN} characters"
        ));
    }
    if !target
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Some("the target may use only a-z, 0-9 and _".to_owned());
    }
    if RESERVED_TARGETS.contains(&target) {
        return Some(format!(
            "the target `{target}` is reserved for hubsync's own attributes"
        ));
    }
    None
}

/// Validates `config` against the portal's property definitions and
/// returns it ready to store: enumeration rules without values get the
/// property's option values. Every problem is reported, each naming its
/// rule:
/// - a source property the portal does not define;
/// - a transform that does not fit the property's type (`cents` on a text
///   property, `owner_email` on a non-owner property, …);
/// - several sources for a one-source transform; no source;
/// - a bad, reserved or duplicate target;
/// - contacts without the `email ← email (email)` rule (contacts without an
///   email are never synced);
/// - a scope filter on an unknown property, without values, or with a value
///   that is not one of the property's options;
/// - an association to the same type.
pub fn validate(
    config: &MappingConfig,
    catalog: &PropertyCatalog,
) -> Result<MappingConfig, ConfigErrors> {
    let mut out = config.clone();
    let mut errors = Vec::new();
    for t in ObjectType::ALL {
        let defs: BTreeMap<&str, &PropertyDefinition> = catalog
            .get(&t)
            .map(|v| v.iter().map(|d| (d.name.as_str(), d)).collect())
            .unwrap_or_default();
        let oc = out.object_mut(t);
        let mut targets: BTreeSet<String> = BTreeSet::new();
        for rule in &mut oc.rules {
            let name = rule.describe(t);
            let mut err = |message: String| {
                errors.push(RuleError {
                    rule: name.clone(),
                    message,
                })
            };
            if let Some(m) = check_target(&rule.target) {
                err(m);
            }
            if !targets.insert(rule.target.clone()) {
                err(format!("the target `{}` is mapped twice", rule.target));
            }
            if rule.source.is_empty() {
                err("the rule names no HubSpot property".to_owned());
            }
            if rule.source.len() > 1 && !rule.transform.takes_many() {
                err(format!(
                    "the `{}` transform reads one property; use `concat` to combine several",
                    rule.transform.name()
                ));
            }
            for source in &rule.source {
                let Some(def) = defs.get(source.as_str()) else {
                    err(format!("HubSpot has no {t} property `{source}`"));
                    continue;
                };
                if !rule
                    .transform
                    .fits(&def.prop_type, &def.field_type, def.is_owner())
                {
                    err(format!(
                        "the `{}` transform does not fit `{source}`, a HubSpot {} property (field type {})",
                        rule.transform.name(),
                        def.prop_type,
                        if def.field_type.is_empty() { "unknown" } else { &def.field_type },
                    ));
                    continue;
                }
                if let Transform::Enumeration { values } = &mut rule.transform {
                    if values.is_empty() {
                        *values = def.options.iter().map(|o| o.value.clone()).collect();
                    }
                }
            }
        }
        if t == ObjectType::Contacts
            && !oc.rules.iter().any(|r| {
                r.target == "email" && r.source == ["email"] && r.transform == Transform::Email
            })
        {
            errors.push(RuleError {
                rule: "contacts.email".to_owned(),
                message: "contacts must map `email ← email (email)`: contacts without an email are not synced".to_owned(),
            });
        }
        for f in &oc.scope {
            let rule = format!("{t} scope {} in [{}]", f.property, f.values.join(", "));
            let mut err = |message: String| {
                errors.push(RuleError {
                    rule: rule.clone(),
                    message,
                })
            };
            if f.values.is_empty() {
                err("a scope filter needs at least one value".to_owned());
            }
            match defs.get(f.property.as_str()) {
                None => err(format!("HubSpot has no {t} property `{}`", f.property)),
                Some(def) if !def.options.is_empty() => {
                    for v in &f.values {
                        if !def.options.iter().any(|o| o.value == v.trim()) {
                            err(format!(
                                "`{}` is not an option of `{}`",
                                v.trim(),
                                f.property
                            ));
                        }
                    }
                }
                Some(_) => {}
            }
        }
        for a in &oc.associations {
            let name = a.describe(t);
            if let Some(m) = check_target(&a.target) {
                errors.push(RuleError {
                    rule: name.clone(),
                    message: m,
                });
            }
            if !targets.insert(a.target.clone()) {
                errors.push(RuleError {
                    rule: name.clone(),
                    message: format!("the target `{}` is mapped twice", a.target),
                });
            }
            if a.to == t {
                errors.push(RuleError {
                    rule: name,
                    message: "associations between records of the same type are not mapped"
                        .to_owned(),
                });
            }
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(ConfigErrors(errors))
    }
}

/// Checks the list scopes against the portal's lists (`list id → the
/// object type its records are, None for other types`, only for the ids
/// the config names that HubSpot knows): every list must exist and hold
/// records of the type it scopes.
pub fn validate_lists(
    config: &MappingConfig,
    known: &BTreeMap<String, Option<ObjectType>>,
) -> Vec<RuleError> {
    let mut errors = Vec::new();
    for t in ObjectType::ALL {
        for id in &config.object(t).lists {
            let rule = format!("{t} scope list {id}");
            match known.get(id) {
                None => errors.push(RuleError {
                    rule,
                    message: format!("HubSpot has no list `{id}`"),
                }),
                Some(Some(holds)) if *holds == t => {}
                Some(other) => errors.push(RuleError {
                    rule,
                    message: format!(
                        "list `{id}` holds {}, not {t}",
                        other.map_or("another object type".to_owned(), |o| o.to_string())
                    ),
                }),
            }
        }
    }
    errors
}

/// Schema drift: the properties `config` reads for `t` that the portal no
/// longer defines (deleted in HubSpot after the config was saved). Their
/// fields map to null until the config is fixed.
pub fn missing_properties(
    config: &MappingConfig,
    t: ObjectType,
    defs: &[PropertyDefinition],
) -> Vec<String> {
    let defined: BTreeSet<&str> = defs.iter().map(|d| d.name.as_str()).collect();
    config
        .object(t)
        .properties(t)
        .into_iter()
        .filter(|p| p != t.last_modified_property() && !defined.contains(p.as_str()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(name: &str, prop_type: &str, field_type: &str, options: &[&str]) -> PropertyDefinition {
        PropertyDefinition {
            name: name.into(),
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
        let v = validate(&c, &catalog()).unwrap();
        assert_eq!(v.deals.rules.last().unwrap().transform, Transform::Cents);
        assert_eq!(
            v.deals.rules[v.deals.rules.len() - 2].transform,
            Transform::Enumeration {
                values: vec!["emea".into(), "amer".into()]
            }
        );
        assert!(v.needs_owners(ObjectType::Contacts));
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
}
