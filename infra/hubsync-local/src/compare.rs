//! Compare what hubsync stored with what the simulator holds: the
//! convergence check of the tests, the demo and the reconciliation.
//!
//! The expected records are the simulator's live objects mapped with the
//! portal's mapping config (saved, else the defaults), its owners and its
//! associations (live targets only), reading only the properties the
//! simulator still defines — exactly what the API would serve.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;
use hubspot_sim::{ObjectType as SimType, SimObject, SimState};
use hubsync_hubspot::{HubSpotObject, ObjectId, ObjectType, PortalId};
use hubsync_mapping::{map_with, Associations, MapContext, MapOutcome, Owners, Pipelines};
use hubsync_store::{MappingConfigStore, RecordStore, StoredRecord};

/// Differences between HubSpot (the simulator) and DynamoDB for one portal.
#[derive(Debug, Default, Clone)]
pub struct Divergence {
    /// Live in HubSpot (and mappable) but absent or archived in DynamoDB.
    pub missing: Vec<(ObjectType, u64)>,
    /// Stored content differs from HubSpot's current mapped content.
    pub different: Vec<(ObjectType, u64)>,
    /// Active in DynamoDB but not live (deleted, merged away) or no longer
    /// qualifying (contact without email) in HubSpot.
    pub should_be_archived: Vec<(ObjectType, u64)>,
    /// Of `different`: the records whose only differences are association
    /// fields still naming records that are no longer live (a deleted or
    /// merged-away company). HubSpot announces the deletion, not the links
    /// it removed, so neither a webhook nor the journal carries them; the
    /// nightly reconciliation repairs them.
    pub unannounced_links: Vec<(ObjectType, u64)>,
    /// Records compared.
    pub compared: usize,
}

impl Divergence {
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.different.is_empty() && self.should_be_archived.is_empty()
    }

    pub fn total(&self) -> usize {
        self.missing.len() + self.different.len() + self.should_be_archived.len()
    }
}

fn sim_type(t: ObjectType) -> SimType {
    match t {
        ObjectType::Companies => SimType::Companies,
        ObjectType::Contacts => SimType::Contacts,
        ObjectType::Deals => SimType::Deals,
    }
}

fn to_hubspot(o: &SimObject) -> Result<HubSpotObject> {
    Ok(serde_json::from_value(serde_json::to_value(o)?)?)
}

/// The simulator's owners as the mapping resolves them.
pub fn sim_owners(sim: &SimState, portal: u64) -> Result<Owners> {
    let mut owners = Owners::new();
    for o in sim.owners(portal)? {
        owners.insert(
            o.id,
            Some(o.email.as_str()),
            Some(o.first_name.as_str()),
            Some(o.last_name.as_str()),
        );
    }
    Ok(owners)
}

/// The simulator's deal pipelines, as the pipelines API returns them.
pub fn sim_pipelines(sim: &SimState, portal: u64) -> Result<Pipelines> {
    let mut out = Pipelines::new();
    for p in sim.pipelines(portal)? {
        let stages: Vec<(&str, &str)> = p
            .stages
            .iter()
            .map(|s| (s.id.as_str(), s.label.as_str()))
            .collect();
        out.insert(&p.id, &p.label, &stages);
    }
    Ok(out)
}

/// Every mapped field of every live record, and the archived flag of every
/// stored record, compared.
pub async fn compare_portal<S: RecordStore + MappingConfigStore>(
    sim: &SimState,
    store: &S,
    portal: u64,
) -> Result<Divergence> {
    let mut out = Divergence::default();
    let config = store.effective_mapping_config(PortalId(portal)).await?;
    let owners = sim_owners(sim, portal)?;
    let pipelines = sim_pipelines(sim, portal)?;
    let mut live: BTreeMap<ObjectType, BTreeSet<u64>> = BTreeMap::new();
    for t in ObjectType::ALL {
        live.insert(
            t,
            sim.object_ids(portal, sim_type(t), false)?
                .into_iter()
                .collect(),
        );
    }
    // The companies that sync (companies come first): the scope of
    // contacts and deals that follow them.
    let mut companies_in_scope: BTreeSet<ObjectId> = BTreeSet::new();
    for t in ObjectType::ALL {
        let oc = config.object(t);
        let defined: BTreeSet<String> = sim
            .properties(portal, sim_type(t))?
            .into_iter()
            .map(|d| d.name)
            .collect();
        let list_members: Option<BTreeSet<ObjectId>> = if oc.lists.is_empty() {
            None
        } else {
            let mut members = BTreeSet::new();
            for list in &oc.lists {
                let id: u64 = list.parse()?;
                members.extend(sim.list_members(portal, id)?.into_iter().map(ObjectId));
            }
            Some(members)
        };
        let mut expected: BTreeMap<u64, serde_json::Map<String, serde_json::Value>> =
            BTreeMap::new();
        for o in sim.list_objects(portal, sim_type(t), false)? {
            let mut object = to_hubspot(&o)?;
            object.properties.retain(|k, _| defined.contains(k));
            let mut assoc = Associations::new();
            for to in hubsync_sync::association_targets(oc) {
                assoc.mark_loaded(to);
                for (target, primary) in
                    sim.associations(portal, sim_type(t), object.id.get(), sim_type(to))?
                {
                    if live[&to].contains(&target) {
                        assoc.insert(to, object.id, ObjectId(target), primary);
                    }
                }
            }
            let ctx = MapContext {
                owners: Some(&owners),
                pipelines: Some(&pipelines),
                associations: Some(&assoc),
                list_members: list_members.as_ref(),
                companies_in_scope: Some(&companies_in_scope),
            };
            if let MapOutcome::Mapped(m) = map_with(oc, t, &object, ctx) {
                let fields = match serde_json::to_value(&m.record)? {
                    serde_json::Value::Object(map) => map,
                    _ => serde_json::Map::new(),
                };
                expected.insert(object.id.get(), fields);
            }
        }
        let mut stored: BTreeMap<u64, StoredRecord> = BTreeMap::new();
        let mut scan = store.scan_portal_records(PortalId(portal), t, 500);
        while let Some(page) = scan.next_page().await? {
            for r in page {
                stored.insert(r.meta.object_id.get(), r);
            }
        }
        if t == ObjectType::Companies {
            companies_in_scope = expected.keys().map(|id| ObjectId(*id)).collect();
        }
        for (id, fields) in &expected {
            out.compared += 1;
            match stored.get(id) {
                Some(r) if !r.meta.archived => {
                    if &r.fields != fields {
                        let survivor = |gone: u64| {
                            ObjectType::ALL.into_iter().find_map(|to| {
                                sim.merge_survivor(portal, sim_type(to), gone)
                                    .ok()
                                    .flatten()
                            })
                        };
                        if only_gone_links(&r.fields, fields, &live, survivor) {
                            out.unannounced_links.push((t, *id));
                        }
                        out.different.push((t, *id));
                    }
                }
                _ => out.missing.push((t, *id)),
            }
        }
        for (id, r) in &stored {
            if !r.meta.archived && !expected.contains_key(id) {
                out.should_be_archived.push((t, *id));
            }
        }
    }
    Ok(out)
}

/// Whether every difference is an id list whose stored ids that HubSpot
/// no longer lists are all gone (deleted or merged away), and whose ids
/// HubSpot lists that are not stored are all merge survivors of those.
fn only_gone_links(
    stored: &serde_json::Map<String, serde_json::Value>,
    expected: &serde_json::Map<String, serde_json::Value>,
    live: &BTreeMap<ObjectType, BTreeSet<u64>>,
    survivor: impl Fn(u64) -> Option<u64>,
) -> bool {
    let ids = |v: Option<&serde_json::Value>| -> Option<Vec<u64>> {
        v?.as_array()?
            .iter()
            .map(|i| i.as_str()?.parse().ok())
            .collect()
    };
    let keys: BTreeSet<&String> = stored.keys().chain(expected.keys()).collect();
    keys.into_iter()
        .filter(|k| stored.get(*k) != expected.get(*k))
        .all(|k| match (ids(stored.get(k)), ids(expected.get(k))) {
            (Some(have), Some(want)) => {
                let gone: Vec<u64> = have.iter().copied().filter(|i| !want.contains(i)).collect();
                let survivors: Vec<Option<u64>> = gone.iter().map(|g| survivor(*g)).collect();
                !gone.is_empty()
                    && gone
                        .iter()
                        .all(|i| live.values().all(|ids| !ids.contains(i)))
                    && want
                        .iter()
                        .filter(|w| !have.contains(w))
                        .all(|w| survivors.contains(&Some(*w)))
            }
            _ => false,
        })
}

/// Ids by type, for messages.
pub fn describe(list: &[(ObjectType, u64)], max: usize) -> String {
    let mut s: Vec<String> = list
        .iter()
        .take(max)
        .map(|(t, id)| format!("{t}/{}", ObjectId(*id)))
        .collect();
    if list.len() > max {
        s.push(format!("… {} more", list.len() - max));
    }
    s.join(", ")
}
