//! The written form of a mapping config. Either complete — every type
//! listed states all its rules (a type left out keeps its defaults) — or
//! additive, on top of the defaults:
//!
//! ```json
//! {"extends": "default",
//!  "contacts": {"rules": [{"target": "plan", "source": "plan_tier", "transform": {"type": "string"}}],
//!               "remove": ["lead_status"]}}
//! ```
//!
//! In an additive config a rule whose target is a default field replaces
//! it (in place), any other rule is added after the defaults, `remove`
//! drops default fields or association fields by target, and `scope`,
//! `lists` and `associations` add to the defaults. In memory a config is
//! always complete ([`MappingConfig`]: what validation, preview, mapping
//! and drift detection read); written out, an additive config is again
//! only its differences from the defaults — the stored form says which
//! fields are custom.

use serde::{Deserialize, Serialize};

use super::{AssociationRule, MappingConfig, ObjectConfig, Rule, ScopeFilter};
use crate::ids::ObjectType;

/// What a config builds on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Base {
    /// hubsync's default field map ([`MappingConfig::default`]).
    Default,
}

/// A config as written.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Written {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    extends: Option<Base>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    companies: Option<WrittenType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    contacts: Option<WrittenType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deals: Option<WrittenType>,
}

/// One type as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WrittenType {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rules: Option<Vec<Rule>>,
    /// Default fields (rule or association targets) an additive config
    /// drops.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    remove: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    scope: Vec<ScopeFilter>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    associations: Vec<AssociationRule>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    lists: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    scope_follows_companies: bool,
}

impl TryFrom<Written> for MappingConfig {
    type Error = String;

    fn try_from(w: Written) -> Result<Self, String> {
        let mut out = MappingConfig {
            extends: w.extends,
            ..MappingConfig::default()
        };
        for (t, written) in [
            (ObjectType::Companies, w.companies),
            (ObjectType::Contacts, w.contacts),
            (ObjectType::Deals, w.deals),
        ] {
            let Some(written) = written else { continue };
            let resolved = match w.extends {
                None => complete(t, written)?,
                Some(Base::Default) => on_defaults(t, written)?,
            };
            *out.object_mut(t) = resolved;
        }
        Ok(out)
    }
}

/// A type stated in full.
fn complete(t: ObjectType, w: WrittenType) -> Result<ObjectConfig, String> {
    if !w.remove.is_empty() {
        return Err(format!(
            "{t}: `remove` needs `\"extends\": \"default\"` (a complete config lists only the fields it keeps)"
        ));
    }
    let Some(rules) = w.rules else {
        return Err(format!(
            "{t}: missing field `rules` (state every field, or add `\"extends\": \"default\"` to add to the defaults)"
        ));
    };
    Ok(ObjectConfig {
        rules,
        scope: w.scope,
        associations: w.associations,
        lists: w.lists,
        scope_follows_companies: w.scope_follows_companies,
    })
}

/// A type's additions to, replacements of and removals from its defaults.
fn on_defaults(t: ObjectType, w: WrittenType) -> Result<ObjectConfig, String> {
    let mut out = MappingConfig::default().object(t).clone();
    for target in &w.remove {
        let before = out.rules.len() + out.associations.len();
        out.rules.retain(|r| &r.target != target);
        out.associations.retain(|a| &a.target != target);
        if out.rules.len() + out.associations.len() == before {
            return Err(format!(
                "{t}: cannot remove `{target}`: it is not a default field of {t}"
            ));
        }
    }
    for rule in w.rules.unwrap_or_default() {
        if w.remove.contains(&rule.target) {
            return Err(format!("{t}: `{}` is both removed and mapped", rule.target));
        }
        match out.rules.iter_mut().find(|r| r.target == rule.target) {
            Some(existing) => *existing = rule,
            None => out.rules.push(rule),
        }
    }
    for a in w.associations {
        match out.associations.iter_mut().find(|x| x.target == a.target) {
            Some(existing) => *existing = a,
            None => out.associations.push(a),
        }
    }
    out.scope.extend(w.scope);
    out.lists.extend(w.lists);
    out.scope_follows_companies |= w.scope_follows_companies;
    Ok(out)
}

impl From<MappingConfig> for Written {
    fn from(c: MappingConfig) -> Self {
        let pick = |t: ObjectType| -> Option<WrittenType> {
            let config = c.object(t).clone();
            match c.extends {
                None => Some(WrittenType {
                    rules: Some(config.rules),
                    remove: Vec::new(),
                    scope: config.scope,
                    associations: config.associations,
                    lists: config.lists,
                    scope_follows_companies: config.scope_follows_companies,
                }),
                Some(Base::Default) => {
                    let w = differences(t, config);
                    (w != WrittenType::default()).then_some(w)
                }
            }
        };
        Written {
            extends: c.extends,
            companies: pick(ObjectType::Companies),
            contacts: pick(ObjectType::Contacts),
            deals: pick(ObjectType::Deals),
        }
    }
}

/// What a complete type adds to, replaces in and drops from its defaults.
fn differences(t: ObjectType, c: ObjectConfig) -> WrittenType {
    let defaults = MappingConfig::default().object(t).clone();
    let rules: Vec<Rule> = c
        .rules
        .iter()
        .filter(|r| !defaults.rules.contains(r))
        .cloned()
        .collect();
    let mut remove: Vec<String> = defaults
        .rules
        .iter()
        .map(|r| &r.target)
        .filter(|target| !c.rules.iter().any(|r| &r.target == *target))
        .cloned()
        .collect();
    remove.extend(
        defaults
            .associations
            .iter()
            .map(|a| &a.target)
            .filter(|target| !c.associations.iter().any(|a| &a.target == *target))
            .cloned(),
    );
    let associations = c
        .associations
        .iter()
        .filter(|a| !defaults.associations.contains(a))
        .cloned()
        .collect();
    WrittenType {
        rules: (!rules.is_empty()).then_some(rules),
        remove,
        scope: c.scope,
        associations,
        lists: c.lists,
        scope_follows_companies: c.scope_follows_companies,
    }
}

impl MappingConfig {
    /// The fields of `t` this config adds to or changes in the defaults
    /// (targets, in rule order): for an additive config what it states,
    /// for a complete one every field that is not a default as is.
    pub fn custom_fields(&self, t: ObjectType) -> Vec<String> {
        let defaults = MappingConfig::default();
        let d = defaults.object(t);
        let c = self.object(t);
        c.rules
            .iter()
            .filter(|r| !d.rules.contains(r))
            .map(|r| r.target.clone())
            .chain(
                c.associations
                    .iter()
                    .filter(|a| !d.associations.contains(a))
                    .map(|a| a.target.clone()),
            )
            .collect()
    }
}

#[cfg(test)]
mod tests;
