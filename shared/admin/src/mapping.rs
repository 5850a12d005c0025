//! Admin operations on a portal's mapping config: show, validate, save and
//! preview ("Test sync"). Behind `hubsync-ops mapping
//! {show,validate,set,preview}` (production) and `hubsync-local mapping
//! {show-default,validate,set,preview}` (local harness).
//!
//! - [`show_config`]: the stored config with its revision, or the default
//!   (DESIGN.md's field map) when none is stored.
//! - [`validate_config`]: the config against the portal's current property
//!   definitions (`GET /crm/v3/properties/{type}`, one call per type); a
//!   rejected config names every bad rule.
//! - [`save_config`]: validate, then store (Control table). Nothing is
//!   stored when validation fails. The next reconciliation (or re-sync)
//!   remaps every record; webhooks use it at once. [`changed_types`] says
//!   which types a re-sync has to remap.
//! - [`preview`]: map a sample of real records with a config and return the
//!   app records and every field error. Read-only: it takes no store, so it
//!   cannot write one.

use std::collections::BTreeMap;

use hubsync_hubspot::PortalId;
use hubsync_hubspot::{AccessTokenSource, HubSpotClient, HubSpotError, ObjectId, ObjectType};
use hubsync_mapping::{
    map_with, validate, validate_lists, MapContext, MapOutcome, Owners, Pipelines, PropertyCatalog,
};
use hubsync_store::{MappingConfigStore, StoreError};
use hubsync_sync::{
    association_targets, ContextLoader, HubSpotSource, LoadCounts, ReadOwners, ReadPipelines,
    SyncError,
};
use serde::Serialize;

/// The config and outcome types, for callers of these functions.
pub use hubsync_mapping::{
    AssociationRule, ConfigErrors, FieldError, MapOutcome as Outcome, MappingConfig, ObjectConfig,
    Rule, RuleError, ScopeFilter, SkipReason, Transform,
};

/// Why a mapping operation failed.
#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    /// The config does not fit the portal's properties (every bad rule).
    #[error("{0}")]
    Rejected(ConfigErrors),
    #[error("HubSpot: {0}")]
    HubSpot(#[from] HubSpotError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

impl From<SyncError> for MappingError {
    fn from(e: SyncError) -> Self {
        match e {
            SyncError::HubSpot(e) => MappingError::HubSpot(e),
            SyncError::Store(e) => MappingError::Store(e),
        }
    }
}

/// Every type's property definitions (one call per type).
pub async fn property_catalog(
    client: &HubSpotClient,
    tokens: &impl AccessTokenSource,
    portal: PortalId,
) -> Result<PropertyCatalog, HubSpotError> {
    let mut catalog = PropertyCatalog::new();
    for t in ObjectType::ALL {
        catalog.insert(t, client.get_properties(tokens, portal, t).await?);
    }
    Ok(catalog)
}

/// Validates `config` against the portal's current properties and the
/// lists it scopes by (`GET /crm/v3/lists/{id}` each); returns it ready to
/// store (enumeration rules carry the property's options). Every problem
/// is reported.
pub async fn validate_config(
    client: &HubSpotClient,
    tokens: &impl AccessTokenSource,
    portal: PortalId,
    config: &MappingConfig,
) -> Result<MappingConfig, MappingError> {
    let catalog = property_catalog(client, tokens, portal).await?;
    let mut known: BTreeMap<String, Option<ObjectType>> = BTreeMap::new();
    // A token without the Lists API's scope cannot read any list: one
    // error naming the scope, not one per list.
    let mut missing_scope: Option<RuleError> = None;
    'lists: for t in ObjectType::ALL {
        for id in &config.object(t).lists {
            if known.contains_key(id) {
                continue;
            }
            match client.get_list(tokens, portal, id).await {
                Ok(Some(list)) => {
                    known.insert(id.clone(), list.object_type);
                }
                Ok(None) | Err(HubSpotError::InvalidArgument(_)) => {}
                Err(HubSpotError::Forbidden {
                    required_scopes, ..
                }) => {
                    let scopes = if required_scopes.is_empty() {
                        "crm.lists.read".to_owned()
                    } else {
                        required_scopes.join(" or ")
                    };
                    missing_scope = Some(RuleError {
                        rule: format!("{t} scope list {id}"),
                        message: format!(
                            "list scope needs the HubSpot scope {scopes}, which this portal's connection was not granted: \
                             add it to the app's scopes (HubSpotOptionalScopes) and have the admin reconnect"
                        ),
                    });
                    break 'lists;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    let list_errors = match missing_scope {
        Some(e) => vec![e],
        None => validate_lists(config, &known),
    };
    match validate(config, &catalog) {
        Ok(valid) if list_errors.is_empty() => Ok(valid),
        Ok(_) => Err(MappingError::Rejected(ConfigErrors(list_errors))),
        Err(mut e) => {
            e.0.extend(list_errors);
            Err(MappingError::Rejected(e))
        }
    }
}

/// The config a portal maps with.
#[derive(Debug, Clone, Serialize)]
pub struct Current {
    pub portal_id: PortalId,
    /// The stored revision; `None` when nothing is stored (the default
    /// applies).
    pub revision: Option<u64>,
    /// When the stored revision was saved (RFC 3339).
    pub updated_at: Option<String>,
    /// `true` when no config is stored and [`MappingConfig::default`] applies.
    pub default: bool,
    /// As written: complete, or additive (`"extends": "default"`, only
    /// what differs from the defaults).
    pub config: MappingConfig,
    /// Per type, the fields that are not defaults as they are (added or
    /// replaced), in rule order.
    pub custom_fields: BTreeMap<ObjectType, Vec<String>>,
}

fn custom_fields(config: &MappingConfig) -> BTreeMap<ObjectType, Vec<String>> {
    ObjectType::ALL
        .into_iter()
        .map(|t| (t, config.custom_fields(t)))
        .collect()
}

/// The portal's stored config and its revision, or the default when none
/// is stored. Reads the store only.
pub async fn show_config<S: MappingConfigStore>(
    store: &S,
    portal: PortalId,
) -> Result<Current, MappingError> {
    Ok(match store.get_mapping_config(portal).await? {
        Some(stored) => Current {
            portal_id: portal,
            revision: Some(stored.revision),
            updated_at: Some(stored.updated_at),
            default: false,
            custom_fields: custom_fields(&stored.config),
            config: stored.config,
        },
        None => Current {
            portal_id: portal,
            revision: None,
            updated_at: None,
            default: true,
            custom_fields: custom_fields(&MappingConfig::default()),
            config: MappingConfig::default(),
        },
    })
}

/// The object types whose section differs between two configs (in
/// [`ObjectType::ALL`] order): what a re-sync after a save has to remap.
pub fn changed_types(before: &MappingConfig, after: &MappingConfig) -> Vec<ObjectType> {
    ObjectType::ALL
        .into_iter()
        .filter(|t| before.object(*t) != after.object(*t))
        .collect()
}

/// A saved config.
#[derive(Debug, Clone, Serialize)]
pub struct Saved {
    pub revision: u64,
    pub config: MappingConfig,
    /// The revision it replaced (`None`: the default applied before).
    pub previous_revision: Option<u64>,
    /// The types whose mapping changed (compared with what applied before):
    /// their stored records change only when they are remapped (re-sync or
    /// the nightly reconciliation).
    pub changed_types: Vec<ObjectType>,
}

/// Validates and stores `config` for `portal`; nothing is stored when it
/// is rejected.
pub async fn save_config<S: MappingConfigStore>(
    store: &S,
    client: &HubSpotClient,
    tokens: &impl AccessTokenSource,
    portal: PortalId,
    config: &MappingConfig,
) -> Result<Saved, MappingError> {
    let config = validate_config(client, tokens, portal, config).await?;
    let before = show_config(store, portal).await?;
    let revision = store.put_mapping_config(portal, &config).await?;
    let changed = changed_types(&before.config, &config);
    tracing::info!(portal = %portal, revision, changed = changed.len(), "mapping config saved");
    Ok(Saved {
        revision,
        previous_revision: before.revision,
        changed_types: changed,
        config,
    })
}

/// The preview of one type.
#[derive(Debug, Clone, Serialize)]
pub struct TypePreview {
    pub object_type: ObjectType,
    /// The properties requested from HubSpot (only what the config needs).
    pub properties: Vec<String>,
    /// One outcome per sampled record: the app record and its field
    /// errors, or why it is not synced.
    pub records: Vec<MapOutcome>,
    pub mapped: usize,
    /// Not synced, by reason (`missing_email`, `out_of_scope`, …).
    pub skipped: BTreeMap<String, usize>,
    pub field_errors: usize,
}

/// A preview of a config on a portal's real records.
#[derive(Debug, Clone, Serialize)]
pub struct Preview {
    pub portal_id: PortalId,
    pub types: Vec<TypePreview>,
}

/// Most records a preview samples per type.
pub const MAX_PREVIEW_SAMPLE: u32 = 100;

/// Maps the first `sample` records (≤ 100) of each of `types` with
/// `config` — validated first, so a preview of a config that could not be
/// saved fails the same way — resolving owners and associations the way
/// the worker does (owners and pipeline labels too). Reads HubSpot only.
pub async fn preview(
    client: &HubSpotClient,
    tokens: &impl AccessTokenSource,
    portal: PortalId,
    config: &MappingConfig,
    types: &[ObjectType],
    sample: u32,
) -> Result<Preview, MappingError> {
    let config = validate_config(client, tokens, portal, config).await?;
    let limit = sample.clamp(1, MAX_PREVIEW_SAMPLE);
    let mut owners: Option<Owners> = None;
    let mut pipelines: Option<Pipelines> = None;
    let source = HubSpotSource::new(client.clone(), tokens);
    let loader = ContextLoader::new(&source, &());
    let mut out = Preview {
        portal_id: portal,
        types: Vec::new(),
    };
    for &t in types {
        let oc = config.object(t);
        if config.needs_owners(t) && owners.is_none() {
            owners = Some(source.owners(portal).await?);
        }
        if oc.needs_pipelines() && pipelines.is_none() {
            pipelines = Some(source.pipelines(portal).await?);
        }
        let properties = oc.properties(t);
        let refs: Vec<&str> = properties.iter().map(String::as_str).collect();
        let page = client
            .list_page(tokens, portal, t, None, limit, &refs, false)
            .await?;
        // Associations and list scope as the sync loads them (owners and
        // pipelines are read fresh above: a preview writes no cache).
        let ids: Vec<ObjectId> = page.results.iter().map(|o| o.id).collect();
        let mut counts = LoadCounts::default();
        let associations = loader
            .associations(portal, t, &association_targets(oc), &ids, &mut counts)
            .await?;
        let list_members = loader.list_members(portal, oc, &mut counts).await?;
        let ctx = MapContext {
            owners: owners.as_ref(),
            pipelines: pipelines.as_ref(),
            associations: associations.as_ref(),
            list_members: list_members.as_ref(),
            // A preview reads HubSpot only: a scope that follows companies
            // is not applied (which companies sync is the store's).
            companies_in_scope: None,
        };
        let mut tp = TypePreview {
            object_type: t,
            properties,
            records: Vec::with_capacity(page.results.len()),
            mapped: 0,
            skipped: BTreeMap::new(),
            field_errors: 0,
        };
        for object in &page.results {
            let outcome = map_with(oc, t, object, ctx);
            tp.field_errors += outcome.errors().len();
            match &outcome {
                MapOutcome::Mapped(_) => tp.mapped += 1,
                MapOutcome::Skipped { reason, .. } => {
                    *tp.skipped.entry(reason.to_string()).or_default() += 1
                }
            }
            tp.records.push(outcome);
        }
        out.types.push(tp);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hubsync_store::MemoryStore;

    #[tokio::test]
    async fn show_config_gives_the_stored_revision_or_says_it_is_the_default() {
        let store = MemoryStore::new();
        let portal = PortalId(7);
        let current = show_config(&store, portal).await.unwrap();
        assert!(current.default);
        assert_eq!(current.revision, None);
        assert_eq!(current.config, MappingConfig::default());

        let mut config = MappingConfig::default();
        config.object_mut(ObjectType::Deals).rules.push(Rule::new(
            "seat_count",
            &["seats"],
            Transform::Integer,
        ));
        store.put_mapping_config(portal, &config).await.unwrap();
        store.put_mapping_config(portal, &config).await.unwrap();
        let current = show_config(&store, portal).await.unwrap();
        assert!(!current.default);
        assert_eq!(current.revision, Some(2));
        assert!(current.updated_at.is_some());
        assert_eq!(current.config, config);
    }

    #[test]
    fn changed_types_names_only_the_sections_that_differ() {
        let default = MappingConfig::default();
        assert!(changed_types(&default, &default).is_empty());
        let mut config = MappingConfig::default();
        config
            .object_mut(ObjectType::Deals)
            .scope
            .push(ScopeFilter {
                property: "pipeline".into(),
                values: vec!["default".into()],
            });
        config
            .object_mut(ObjectType::Companies)
            .rules
            .push(Rule::new("industry", &["industry"], Transform::String));
        assert_eq!(
            changed_types(&default, &config),
            [ObjectType::Companies, ObjectType::Deals]
        );
        assert_eq!(
            changed_types(&config, &default),
            [ObjectType::Companies, ObjectType::Deals]
        );
    }
}
