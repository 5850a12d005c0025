//! Validation of a mapping config against HubSpot's property definitions and lists.

use super::*;

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
    "sync_issues",
    "issue_key",
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
                if !rule.transform.fits(def) {
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
        if oc.scope_follows_companies && t == ObjectType::Companies {
            errors.push(RuleError {
                rule: format!("{t} scope_follows_companies"),
                message: "only contacts and deals can follow the companies' scope".to_owned(),
            });
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
