//! The default field map (DESIGN.md "Field mapping" and the seeds'
//! tables; [`MappingConfig::default`] is its one definition).
//!
//! | app field | HubSpot property | conversion |
//! |---|---|---|
//! | company `name`, `domain`, `industry` | `name`, `domain`, `industry` | text |
//! | `owner` (companies, contacts, deals) | `hubspot_owner_id` | the owner's email (owners API) |
//! | `owner_id` (companies, contacts, deals) | `hubspot_owner_id` | text (raw owner id) |
//! | company `arr` | `annualrevenue` | exact decimal |
//! | company `annual_revenue_cents` | `annualrevenue` | cents, banker's rounding |
//! | company `employee_count` | `numberofemployees` | non-negative integer |
//! | company and contact `last_activity_at` | `hs_last_sales_activity_date` | timestamp |
//! | contact `email` | `email` | required; else skipped |
//! | contact `name` | `firstname` + `lastname` | trimmed, one space |
//! | contact `company_name` | `company` | text |
//! | contact `lifecycle_stage`, `lead_status` | `lifecyclestage`, `hs_lead_status` | text |
//! | contact `first_seen_at` | `createdate` | timestamp |
//! | contact `company_ids` | associations to companies | ids, primary first |
//! | deal `name` | `dealname` | text |
//! | deal `stage`, `pipeline` | `dealstage`, `pipeline` | labels (pipelines API) |
//! | deal `stage_id`, `pipeline_id` | `dealstage`, `pipeline` | text (raw ids) |
//! | deal `amount_cents` | `amount` | cents, banker's rounding |
//! | deal `closed_at` | `closedate` | timestamp |
//! | deal `close_probability` | `hs_deal_stage_probability` | number in [0, 1] |
//! | deal `contact_ids`, `company_ids` | associations | ids, primary first |
//!
//! Source version: `hs_lastmodifieddate` (companies, deals) /
//! `lastmodifieddate` (contacts) as epoch ms, falling back to the object's
//! `updatedAt`.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use crate::config::{MappingConfig, ObjectConfig};
use crate::ids::{ObjectId, ObjectType};
use crate::object::HubSpotObject;
use crate::record::{AppRecord, ContentHash, FieldError, MapOutcome, MappedRecord, SkipReason};
use crate::transform::Lookups;
use crate::values::{parse_email, parse_timestamp, ConvError, ValueKind};
use crate::{Owners, Pipelines};

const COMPANY_PROPERTIES: &[&str] = &[
    "name",
    "domain",
    "hubspot_owner_id",
    "annualrevenue",
    "industry",
    "numberofemployees",
    "hs_last_sales_activity_date",
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
    "hs_last_sales_activity_date",
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
/// source-version property), so fetches request only these. A portal with
/// a config requests [`ObjectConfig::properties`] instead.
pub fn properties_for(object_type: ObjectType) -> &'static [&'static str] {
    match object_type {
        ObjectType::Companies => COMPANY_PROPERTIES,
        ObjectType::Contacts => CONTACT_PROPERTIES,
        ObjectType::Deals => DEAL_PROPERTIES,
    }
}

/// The associations of a set of records, as associations v4 returned them:
/// per target type, per record id, the associated ids with their primary
/// flag. A target type that was not loaded is reported as a field error
/// rather than mapped as "no associations".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Associations {
    loaded: BTreeSet<ObjectType>,
    links: HashMap<(ObjectType, ObjectId), Vec<(ObjectId, bool)>>,
}

impl Associations {
    pub fn new() -> Self {
        Self::default()
    }

    /// Marks associations to `to` as loaded (ids without links have none).
    pub fn mark_loaded(&mut self, to: ObjectType) {
        self.loaded.insert(to);
    }

    /// Records one link `from → target` of type `to`.
    pub fn insert(&mut self, to: ObjectType, from: ObjectId, target: ObjectId, primary: bool) {
        self.loaded.insert(to);
        let v = self.links.entry((to, from)).or_default();
        match v.iter_mut().find(|(id, _)| *id == target) {
            Some(existing) => existing.1 |= primary,
            None => v.push((target, primary)),
        }
    }

    /// The links of `from` to type `to`, or `None` when not loaded.
    pub fn get(&self, to: ObjectType, from: ObjectId) -> Option<&[(ObjectId, bool)]> {
        if !self.loaded.contains(&to) {
            return None;
        }
        Some(
            self.links
                .get(&(to, from))
                .map(Vec::as_slice)
                .unwrap_or(&[]),
        )
    }
}

/// What mapping needs besides the object: the portal's owners (for
/// `owner_email` / `owner_name`), the records' associations, and the
/// members of the config's scope lists.
#[derive(Debug, Clone, Copy, Default)]
pub struct MapContext<'a> {
    pub owners: Option<&'a Owners>,
    /// The portal's deal pipelines (for `pipeline_label` / `stage_label`).
    pub pipelines: Option<&'a Pipelines>,
    pub associations: Option<&'a Associations>,
    /// The union of the members of the config's `lists`; `None` when not
    /// loaded, in which case the list scope is **not** applied and the
    /// caller must not create records from the outcome (the worker only
    /// updates records already synced).
    pub list_members: Option<&'a BTreeSet<ObjectId>>,
    /// For a config whose scope follows companies: the companies (among
    /// those the records are associated with) that sync. `None`: not
    /// loaded — that scope is not applied.
    pub companies_in_scope: Option<&'a BTreeSet<ObjectId>>,
}

/// Map one HubSpot object of the given type with the default field map.
pub fn map_object(object_type: ObjectType, obj: &HubSpotObject) -> MapOutcome {
    let config = MappingConfig::default();
    map_with(
        config.object(object_type),
        object_type,
        obj,
        MapContext::default(),
    )
}

/// Companies with the default map.
pub fn map_company(obj: &HubSpotObject) -> MapOutcome {
    map_object(ObjectType::Companies, obj)
}

/// Contacts with the default map.
pub fn map_contact(obj: &HubSpotObject) -> MapOutcome {
    map_object(ObjectType::Contacts, obj)
}

/// Deals with the default map.
pub fn map_deal(obj: &HubSpotObject) -> MapOutcome {
    map_object(ObjectType::Deals, obj)
}

/// Map one object with a portal's config for its type:
///
/// 1. contacts: no email → `Skipped { MissingEmail }`, an email that is not
///    an address → `Skipped { InvalidEmail }`;
/// 2. outside the scope (property filters; list membership when
///    `ctx.list_members` is loaded; no association to a company that
///    syncs when the scope follows companies and `ctx.companies_in_scope`
///    is loaded) → `Skipped { OutOfScope }`;
/// 3. every rule's transform, in order; a bad value is a [`FieldError`]
///    for that field (left null, or kept for an unknown enumeration value)
///    and the rest of the record still maps;
/// 4. association fields from `ctx.associations`;
/// 5. source version (`hs_lastmodifieddate` / `lastmodifieddate`, else
///    `updatedAt`) and content hash.
pub fn map_with(
    config: &ObjectConfig,
    object_type: ObjectType,
    obj: &HubSpotObject,
    ctx: MapContext<'_>,
) -> MapOutcome {
    let mut errors: Vec<FieldError> = Vec::new();
    if object_type == ObjectType::Contacts {
        let outcome = parse_email(obj.property("email"));
        if !matches!(outcome, Ok(Some(_))) {
            let reason = match outcome {
                Ok(_) => SkipReason::MissingEmail,
                Err(e) => {
                    errors.push(field_error("email", "email", ValueKind::Email, &e));
                    SkipReason::InvalidEmail
                }
            };
            return MapOutcome::Skipped {
                object_type,
                id: obj.id,
                reason,
                errors,
            };
        }
    }
    let in_lists = config.lists.is_empty()
        || ctx
            .list_members
            .is_none_or(|members| members.contains(&obj.id));
    let follows = !config.scope_follows_companies
        || match (
            ctx.associations
                .and_then(|a| a.get(ObjectType::Companies, obj.id)),
            ctx.companies_in_scope,
        ) {
            (Some(links), Some(synced)) => links.iter().any(|(c, _)| synced.contains(c)),
            _ => true,
        };
    if !in_lists || !follows || !config.in_scope(|p| obj.property(p).map(str::to_owned)) {
        return MapOutcome::Skipped {
            object_type,
            id: obj.id,
            reason: SkipReason::OutOfScope,
            errors,
        };
    }
    let mut record = AppRecord::new(object_type);
    for rule in &config.rules {
        let inputs: Vec<Option<&str>> = rule.source.iter().map(|p| obj.property(p)).collect();
        let out = rule.transform.apply(
            &inputs,
            Lookups {
                owners: ctx.owners,
                pipelines: ctx.pipelines,
            },
        );
        if let Some(e) = &out.error {
            errors.push(field_error(
                &rule.target,
                &rule.source.join("+"),
                rule.transform.value_kind(),
                e,
            ));
        }
        record.set(rule.target.clone(), out.value);
    }
    for a in &config.associations {
        let value = match ctx.associations.and_then(|x| x.get(a.to, obj.id)) {
            None => {
                errors.push(field_error(
                    &a.target,
                    &format!("associations:{}", a.to),
                    ValueKind::Association,
                    &ConvError::AssociationsUnavailable,
                ));
                Value::Null
            }
            Some(links) if a.primary_only => primary_of(links)
                .map(|id| Value::String(id.to_string()))
                .unwrap_or(Value::Null),
            Some(links) => {
                // The primary one first (the lowest, should HubSpot flag
                // several), then the rest in id order.
                let primary = primary_of(links);
                let mut rest: Vec<ObjectId> = links
                    .iter()
                    .map(|(id, _)| *id)
                    .filter(|id| Some(*id) != primary)
                    .collect();
                rest.sort_unstable();
                rest.dedup();
                Value::Array(
                    primary
                        .into_iter()
                        .chain(rest)
                        .map(|id| Value::String(id.to_string()))
                        .collect(),
                )
            }
        };
        record.set(a.target.clone(), value);
    }

    // Source version: `HubSpotObject::version` (the one rule); a
    // last-modified value that does not parse is reported as well.
    let prop = object_type.last_modified_property();
    if let Err(e) = parse_timestamp(obj.property(prop).unwrap_or("")) {
        errors.push(field_error(
            "source_version",
            prop,
            ValueKind::Timestamp,
            &e,
        ));
    }
    let source_version = obj.version(object_type);
    let archived_at = obj
        .archived_at
        .as_deref()
        .and_then(|s| parse_timestamp(s).ok().flatten());
    let content_hash = ContentHash::of(&record);
    MapOutcome::Mapped(MappedRecord {
        object_type,
        id: obj.id,
        archived: obj.archived,
        archived_at,
        source_version,
        record,
        content_hash,
        errors,
    })
}

/// The primary association (the lowest id, should several be flagged).
fn primary_of(links: &[(ObjectId, bool)]) -> Option<ObjectId> {
    links
        .iter()
        .filter(|(_, primary)| *primary)
        .map(|(id, _)| *id)
        .min()
}

fn field_error(field: &str, prop: &str, kind: ValueKind, e: &ConvError) -> FieldError {
    FieldError {
        field: field.to_owned(),
        source_property: prop.to_owned(),
        value_kind: kind,
        message: e.to_string(),
    }
}

pub mod stored_links;

#[cfg(test)]
mod tests;
