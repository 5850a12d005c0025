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
//! A type left out keeps its default rules. With `"extends": "default"` a
//! config states only what it adds, replaces or removes ([`overlay`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ids::ObjectType;
use crate::transform::Transform;
use hubsync_hubspot::PropertyDefinition;

pub mod overlay;
mod validate;
pub use overlay::Base;
pub use validate::*;

/// The mapping of every object type of one portal, always complete in
/// memory; written complete or additive (`"extends": "default"`, see
/// [`overlay`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "overlay::Written", into = "overlay::Written")]
pub struct MappingConfig {
    /// `Some`: written as its differences from the defaults.
    pub extends: Option<Base>,
    pub companies: ObjectConfig,
    pub contacts: ObjectConfig,
    pub deals: ObjectConfig,
}

impl Default for MappingConfig {
    fn default() -> Self {
        Self {
            extends: None,
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

    /// The types whose scope follows the companies' (contacts and deals
    /// with `scope_follows_companies`), in [`ObjectType::ALL`] order.
    pub fn company_followers(&self) -> Vec<ObjectType> {
        [ObjectType::Contacts, ObjectType::Deals]
            .into_iter()
            .filter(|t| self.object(*t).scope_follows_companies)
            .collect()
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
    /// `scope`). HubSpot sends no webhook for list membership: the
    /// reconciliation applies it, and between runs the worker applies it
    /// to the records the Webhooks Journal says entered or left a list
    /// (reading their memberships); other records it keeps updating if
    /// already synced but creates none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lists: Vec<String>,
    /// Contacts and deals only: a record syncs only while it is associated
    /// with at least one company that syncs (in the companies' scope);
    /// otherwise it is skipped, and a stored copy archived `out_of_scope`
    /// — restored when an association or the company's scope brings it
    /// back.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub scope_follows_companies: bool,
}

impl ObjectConfig {
    /// No rules, scope, associations or lists.
    pub fn empty() -> Self {
        Self {
            rules: Vec::new(),
            scope: Vec::new(),
            associations: Vec::new(),
            lists: Vec::new(),
            scope_follows_companies: false,
        }
    }

    /// Whether mapping needs the records' associations (association fields
    /// or a scope that follows companies).
    pub fn reads_associations(&self) -> bool {
        !self.associations.is_empty() || self.scope_follows_companies
    }

    /// Whether any rule resolves pipeline or stage labels.
    pub fn needs_pipelines(&self) -> bool {
        self.rules.iter().any(|r| r.transform.needs_pipelines())
    }

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

    /// Whether `object` names a pipeline or stage id in a property a rule
    /// resolves to its label that `pipelines` lacks.
    pub fn names_unknown_pipeline_ids(
        &self,
        object: &crate::HubSpotObject,
        pipelines: &crate::Pipelines,
    ) -> bool {
        self.rules.iter().any(|r| {
            let known = |id: &str| match r.transform {
                Transform::PipelineLabel => pipelines.pipeline_label(id).is_some(),
                Transform::StageLabel => pipelines.stage_label(id).is_some(),
                _ => true,
            };
            r.source
                .iter()
                .filter_map(|p| object.property(p))
                .map(str::trim)
                .any(|id| !id.is_empty() && !known(id))
        })
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
/// (a list of id strings: the primary one first, then the others in id
/// order), or with `primary_only` the primary one (an id string or null)
/// — e.g. a contact's primary company.
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

fn owner_rules() -> [Rule; 2] {
    [
        Rule::new("owner", &["hubspot_owner_id"], Transform::OwnerEmail),
        Rule::new("owner_id", &["hubspot_owner_id"], text()),
    ]
}

fn associations(list: &[(&str, ObjectType)]) -> Vec<AssociationRule> {
    list.iter()
        .map(|(target, to)| AssociationRule {
            target: (*target).to_owned(),
            to: *to,
            primary_only: false,
        })
        .collect()
}

fn default_companies() -> ObjectConfig {
    let mut rules = vec![
        Rule::new("name", &["name"], text()),
        Rule::new("domain", &["domain"], text()),
    ];
    rules.extend(owner_rules());
    // Records contract v1's name for `owner`, kept for its readers.
    rules.push(Rule::new(
        "owner_email",
        &["hubspot_owner_id"],
        Transform::OwnerEmail,
    ));
    rules.extend([
        Rule::new("arr", &["annualrevenue"], Transform::Decimal),
        Rule::new("industry", &["industry"], text()),
        Rule::new("employee_count", &["numberofemployees"], Transform::Count),
        Rule::new("annual_revenue_cents", &["annualrevenue"], Transform::Cents),
        Rule::new(
            "last_activity_at",
            &["hs_last_sales_activity_date"],
            Transform::Datetime,
        ),
    ]);
    ObjectConfig {
        rules,
        ..ObjectConfig::empty()
    }
}

fn default_contacts() -> ObjectConfig {
    let mut rules = vec![
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
    ];
    rules.extend(owner_rules());
    rules.extend([
        Rule::new("first_seen_at", &["createdate"], Transform::Datetime),
        Rule::new(
            "last_activity_at",
            &["hs_last_sales_activity_date"],
            Transform::Datetime,
        ),
    ]);
    ObjectConfig {
        rules,
        associations: associations(&[("company_ids", ObjectType::Companies)]),
        ..ObjectConfig::empty()
    }
}

fn default_deals() -> ObjectConfig {
    let mut rules = vec![
        Rule::new("name", &["dealname"], text()),
        Rule::new("stage", &["dealstage"], Transform::StageLabel),
        Rule::new("stage_id", &["dealstage"], text()),
        Rule::new("pipeline", &["pipeline"], Transform::PipelineLabel),
        Rule::new("pipeline_id", &["pipeline"], text()),
        Rule::new("amount_cents", &["amount"], Transform::Cents),
        Rule::new("closed_at", &["closedate"], Transform::Datetime),
        Rule::new(
            "close_probability",
            &["hs_deal_stage_probability"],
            Transform::Probability,
        ),
    ];
    rules.extend(owner_rules());
    ObjectConfig {
        rules,
        associations: associations(&[
            ("contact_ids", ObjectType::Contacts),
            ("company_ids", ObjectType::Companies),
        ]),
        ..ObjectConfig::empty()
    }
}

/// The property definitions of a portal, per type.
pub type PropertyCatalog = BTreeMap<ObjectType, Vec<PropertyDefinition>>;

#[cfg(test)]
mod tests;
