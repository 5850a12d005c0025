//! The inverse of the association fields: a record's associations read
//! back from the fields it was stored with, so that a change that cannot
//! have moved its associations (a property change) maps it again without
//! asking HubSpot for them.
//!
//! Association fields are rendered (`super::map_with`) as
//! - a list: the primary id first (the lowest, should HubSpot flag
//!   several), then the rest in id order — every associated id;
//! - `primary_only`: the primary id, or `null`.
//!
//! Read back with the first listed id flagged primary (unless a
//! `primary_only` field of the same target says otherwise), they render
//! the very same values: without a primary the list is in id order, so its
//! first id is the lowest and stays first. What cannot be read back
//! exactly — a target with only `primary_only` fields when the scope
//! follows companies (which needs every company), a `null` or malformed
//! list (its associations were unavailable) — is `None`: read HubSpot.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::config::ObjectConfig;
use crate::ids::{ObjectId, ObjectType};

/// The links of one record, per target type, as [`super::Associations`]
/// takes them.
pub type StoredLinks = Vec<(ObjectType, Vec<(ObjectId, bool)>)>;

/// The stored fields [`stored_links`] reads.
pub fn association_fields(config: &ObjectConfig) -> Vec<String> {
    config
        .associations
        .iter()
        .map(|a| a.target.clone())
        .collect()
}

fn id_of(v: &Value) -> Option<ObjectId> {
    v.as_str()?.parse::<u64>().ok().map(ObjectId)
}

/// The record's associations, from `fields` as stored with `config`
/// (`None`: they cannot be read back exactly).
pub fn stored_links(config: &ObjectConfig, fields: &Map<String, Value>) -> Option<StoredLinks> {
    let mut targets: BTreeSet<ObjectType> = config.associations.iter().map(|a| a.to).collect();
    if config.scope_follows_companies {
        targets.insert(ObjectType::Companies);
    }
    let mut out = Vec::with_capacity(targets.len());
    for to in targets {
        let rules = || config.associations.iter().filter(move |a| a.to == to);
        // `Some(None)`: a primary_only field says there is no primary.
        let mut primary: Option<Option<ObjectId>> = None;
        for rule in rules().filter(|a| a.primary_only) {
            let stated = match fields.get(&rule.target)? {
                Value::Null => None,
                v => Some(id_of(v)?),
            };
            if primary.is_some_and(|p| p != stated) {
                return None;
            }
            primary = Some(stated);
        }
        let list = match rules().find(|a| !a.primary_only) {
            Some(rule) => {
                let ids = fields
                    .get(&rule.target)?
                    .as_array()?
                    .iter()
                    .map(id_of)
                    .collect::<Option<Vec<ObjectId>>>()?;
                Some(ids)
            }
            // Following companies needs all of them, not the primary.
            None if to == ObjectType::Companies && config.scope_follows_companies => return None,
            None => None,
        };
        let links = match (list, primary) {
            (Some(ids), stated) => {
                let primary = match stated {
                    Some(p) => p,
                    None => ids.first().copied(),
                };
                if primary.is_some_and(|p| ids.first() != Some(&p)) {
                    return None;
                }
                ids.iter().map(|id| (*id, Some(*id) == primary)).collect()
            }
            (None, Some(Some(p))) => vec![(p, true)],
            (None, _) => Vec::new(),
        };
        out.push((to, links));
    }
    Some(out)
}

/// The stored fields of `config` that name records of `to` (its
/// association fields to that type).
pub fn fields_linking_to(config: &ObjectConfig, to: ObjectType) -> Vec<String> {
    config
        .associations
        .iter()
        .filter(|a| a.to == to)
        .map(|a| a.target.clone())
        .collect()
}

/// Whether any of a record's stored association field `values` (the
/// fields [`fields_linking_to`] names) names one of `ids` — a list holding
/// one, or a primary-only value equal to one. Values that are not ids name
/// nothing.
pub fn names_any<'a>(
    values: impl IntoIterator<Item = &'a Value>,
    ids: &BTreeSet<ObjectId>,
) -> bool {
    let named = |v: &Value| id_of(v).is_some_and(|id| ids.contains(&id));
    values.into_iter().any(|v| match v {
        Value::Array(items) => items.iter().any(named),
        v => named(v),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AssociationRule, MappingConfig};
    use crate::map::{map_with, Associations, MapContext};
    use crate::object::HubSpotObject;
    use proptest::prelude::*;
    use serde_json::json;

    const DEAL: ObjectId = ObjectId(301);

    fn deal() -> HubSpotObject {
        HubSpotObject::new(
            301,
            [
                ("dealname", "Big Deal"),
                ("hs_lastmodifieddate", "1714564800123"),
            ],
        )
    }

    #[test]
    fn stored_fields_name_the_ids_they_list_or_hold() {
        let c = config(
            vec![
                rule("company_ids", ObjectType::Companies, false),
                rule("company", ObjectType::Companies, true),
                rule("contact_ids", ObjectType::Contacts, false),
            ],
            false,
        );
        assert_eq!(
            fields_linking_to(&c, ObjectType::Companies),
            ["company_ids", "company"]
        );
        assert!(fields_linking_to(&c, ObjectType::Deals).is_empty());
        let ids: BTreeSet<ObjectId> = [ObjectId(12), ObjectId(40)].into();
        let fields = |v: Value| v.as_object().cloned().unwrap();
        assert!(names_any(
            fields(json!({"company_ids": ["3", "12"]})).values(),
            &ids
        ));
        assert!(names_any(fields(json!({"company": "40"})).values(), &ids));
        // Not a substring match, not a number, not another id.
        assert!(!names_any(fields(json!({"company": "120"})).values(), &ids));
        assert!(!names_any(
            fields(json!({"company_ids": [12, "4"]})).values(),
            &ids
        ));
        assert!(!names_any(
            fields(json!({"company": null, "company_ids": []})).values(),
            &ids
        ));
    }

    fn rule(target: &str, to: ObjectType, primary_only: bool) -> AssociationRule {
        AssociationRule {
            target: target.into(),
            to,
            primary_only,
        }
    }

    /// The deals config with these association fields.
    fn config(rules: Vec<AssociationRule>, follows: bool) -> ObjectConfig {
        let mut c = MappingConfig::default().object(ObjectType::Deals).clone();
        c.associations = rules;
        c.scope_follows_companies = follows;
        c
    }

    fn render(c: &ObjectConfig, assoc: &Associations) -> Map<String, Value> {
        let ctx = MapContext {
            associations: Some(assoc),
            ..MapContext::default()
        };
        let m = map_with(c, ObjectType::Deals, &deal(), ctx)
            .into_mapped()
            .expect("mapped");
        m.record
            .fields()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn assoc_of(links: &[(ObjectType, Vec<(ObjectId, bool)>)]) -> Associations {
        let mut a = Associations::new();
        for (to, l) in links {
            a.mark_loaded(*to);
            for (id, primary) in l {
                a.insert(*to, DEAL, *id, *primary);
            }
        }
        a
    }

    fn configs() -> Vec<ObjectConfig> {
        use ObjectType::{Companies, Contacts};
        vec![
            config(
                vec![
                    rule("company_ids", Companies, false),
                    rule("contact_ids", Contacts, false),
                ],
                false,
            ),
            config(
                vec![
                    rule("company_id", Companies, true),
                    rule("company_ids", Companies, false),
                    rule("contact_id", Contacts, true),
                ],
                true,
            ),
            config(vec![rule("company_id", Companies, true)], false),
        ]
    }

    proptest! {
        /// Read back and rendered again, the fields are the same.
        #[test]
        fn stored_association_fields_render_the_same_values(
            companies in proptest::collection::vec((1u64..30, proptest::bool::weighted(0.3)), 0..6),
            contacts in proptest::collection::vec((1u64..30, proptest::bool::weighted(0.3)), 0..6),
        ) {
            let links = vec![
                (ObjectType::Companies, companies.iter().map(|(i, p)| (ObjectId(*i), *p)).collect()),
                (ObjectType::Contacts, contacts.iter().map(|(i, p)| (ObjectId(*i), *p)).collect()),
            ];
            for c in configs() {
                let stored = render(&c, &assoc_of(&links));
                let back = stored_links(&c, &stored).expect("readable");
                prop_assert_eq!(render(&c, &assoc_of(&back)), stored);
            }
        }
    }

    #[test]
    fn what_cannot_be_read_back_exactly_is_none() {
        use ObjectType::Companies;
        let list = config(vec![rule("company_ids", Companies, false)], false);
        // Unavailable associations were stored as null.
        assert_eq!(stored_links(&list, &Map::new()), None);
        let fields = |v: Value| -> Map<String, Value> {
            [("company_ids".to_owned(), v)].into_iter().collect()
        };
        assert_eq!(stored_links(&list, &fields(Value::Null)), None);
        assert_eq!(stored_links(&list, &fields(json!(["x"]))), None);
        assert_eq!(stored_links(&list, &fields(json!([7]))), None);
        assert_eq!(
            stored_links(&list, &fields(json!(["7", "3"]))),
            Some(vec![(
                Companies,
                vec![(ObjectId(7), true), (ObjectId(3), false)]
            )])
        );
        // Following companies needs every company, not the primary.
        let primary = config(vec![rule("company_id", Companies, true)], true);
        let one: Map<String, Value> = [("company_id".to_owned(), json!("7"))]
            .into_iter()
            .collect();
        assert_eq!(stored_links(&primary, &one), None);
        // A primary field that disagrees with its list.
        let both = config(
            vec![
                rule("company_id", Companies, true),
                rule("company_ids", Companies, false),
            ],
            false,
        );
        let mut f = fields(json!(["3", "7"]));
        f.insert("company_id".into(), json!("7"));
        assert_eq!(stored_links(&both, &f), None);
        assert_eq!(association_fields(&both), vec!["company_id", "company_ids"]);
    }
}
