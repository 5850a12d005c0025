//! Lists (HubSpot's Lists API v3, scope `crm.lists.read`): static lists of
//! records of one object type, and the two reads hubsync uses.
//!
//! * `GET /crm/v3/lists/{listId}` → `{"list": {"listId", "name",
//!   "objectTypeId", "processingType": "MANUAL", "size"}}`; 404 when unknown.
//! * `GET /crm/v3/lists/{listId}/memberships?limit&after` → `{"results":
//!   [{"recordId", "membershipTimestamp"}], "paging": {"next": {"after"}},
//!   "total"}` in record-id order, `limit` 1–250 (default 100); only live
//!   records (deleted ones drop out of lists).
//!
//! Membership changes send no webhook (HubSpot's CRM webhooks have no list
//! events); the Webhooks Journal records them (`LIST_MEMBERSHIP`
//! subscriptions).

use std::collections::BTreeMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::clock::iso_ms;
use crate::crm::St;
use crate::http::{bad_request, gate, json, not_found, query_get, query_pairs, Policy};

/// The scope HubSpot's Lists API needs.
pub(crate) const LISTS_SCOPE: &str = "crm.lists.read";
use crate::model::ObjectType;
use crate::state::{SimError, SimState};

/// A static list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimList {
    pub list_id: u64,
    pub name: String,
    pub object_type: ObjectType,
    /// Record id → when it was added (epoch ms).
    pub members: BTreeMap<u64, i64>,
}

fn object_type_id(t: ObjectType) -> &'static str {
    match t {
        ObjectType::Contacts => "0-1",
        ObjectType::Companies => "0-2",
        ObjectType::Deals => "0-3",
    }
}

impl SimState {
    /// Creates an empty static list of `ty` records; returns its id.
    pub fn create_list(&self, portal: u64, ty: ObjectType, name: &str) -> Result<u64, SimError> {
        let p = self.portal(portal)?;
        let mut d = p.write();
        let id = d.lists.keys().next_back().map_or(1, |last| last + 1);
        d.lists.insert(
            id,
            SimList {
                list_id: id,
                name: name.to_owned(),
                object_type: ty,
                members: BTreeMap::new(),
            },
        );
        Ok(id)
    }

    /// Adds records to a list (no webhook, as in HubSpot; the journal
    /// records `ADDED_TO_LIST` for the ids that were not members).
    pub fn add_to_list(&self, portal: u64, list_id: u64, ids: &[u64]) -> Result<(), SimError> {
        let now = self.now_ms();
        let p = self.portal(portal)?;
        let (ty, added) = {
            let mut d = p.write();
            let list = d
                .lists
                .get_mut(&list_id)
                .ok_or_else(|| SimError::Invalid(format!("no list {list_id}")))?;
            let mut added = Vec::new();
            for id in ids {
                if let std::collections::btree_map::Entry::Vacant(v) = list.members.entry(*id) {
                    v.insert(now);
                    added.push(*id);
                }
            }
            (list.object_type, added)
        };
        self.journal_list_membership(portal, list_id, ty, &added, true);
        Ok(())
    }

    /// Removes records from a list (no webhook; the journal records
    /// `REMOVED_FROM_LIST` for the ids that were members).
    pub fn remove_from_list(&self, portal: u64, list_id: u64, ids: &[u64]) -> Result<(), SimError> {
        let p = self.portal(portal)?;
        let (ty, removed) = {
            let mut d = p.write();
            let list = d
                .lists
                .get_mut(&list_id)
                .ok_or_else(|| SimError::Invalid(format!("no list {list_id}")))?;
            let removed: Vec<u64> = ids
                .iter()
                .copied()
                .filter(|id| list.members.remove(id).is_some())
                .collect();
            (list.object_type, removed)
        };
        self.journal_list_membership(portal, list_id, ty, &removed, false);
        Ok(())
    }

    /// The live members of a list, in id order.
    pub fn list_members(&self, portal: u64, list_id: u64) -> Result<Vec<u64>, SimError> {
        let p = self.portal(portal)?;
        let d = p.read();
        let list = d
            .lists
            .get(&list_id)
            .ok_or_else(|| SimError::Invalid(format!("no list {list_id}")))?;
        let live = &d.store(list.object_type).live;
        Ok(list
            .members
            .keys()
            .copied()
            .filter(|id| live.contains_key(id))
            .collect())
    }
}

fn parse_list_id(s: &str) -> Result<u64, Response> {
    s.parse::<u64>()
        .map_err(|_| bad_request(format!("Invalid list id: {s}")))
}

/// `GET /crm/v3/lists/{listId}`
pub(crate) async fn get_list(
    State(st): St,
    Path(list_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let g = match gate(
        &st,
        &headers,
        "GET /crm/v3/lists/{listId}",
        Policy::TenSecondly,
        &[Some(LISTS_SCOPE.to_owned())],
    )
    .await
    {
        Ok(g) => g,
        Err(r) => return r,
    };
    let resp = (|| {
        let id = parse_list_id(&list_id)?;
        let d = g.portal.read();
        let Some(list) = d.lists.get(&id) else {
            return Err(not_found(format!("List {id} does not exist.")));
        };
        let live = &d.store(list.object_type).live;
        let size = list.members.keys().filter(|m| live.contains_key(m)).count();
        Ok(json(
            StatusCode::OK,
            &json!({"list": {
                "listId": id.to_string(),
                "name": list.name,
                "objectTypeId": object_type_id(list.object_type),
                "processingType": "MANUAL",
                "size": size,
            }}),
        ))
    })()
    .unwrap_or_else(|e: Response| e);
    g.finish(resp)
}

/// `GET /crm/v3/lists/{listId}/memberships`
pub(crate) async fn list_memberships(
    State(st): St,
    Path(list_id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let g = match gate(
        &st,
        &headers,
        "GET /crm/v3/lists/{listId}/memberships",
        Policy::TenSecondly,
        &[Some(LISTS_SCOPE.to_owned())],
    )
    .await
    {
        Ok(g) => g,
        Err(r) => return r,
    };
    let resp = (|| {
        let id = parse_list_id(&list_id)?;
        let q = query_pairs(raw.as_deref());
        let limit = match query_get(&q, "limit") {
            None | Some("") => 100usize,
            Some(v) => match v.parse::<usize>() {
                Ok(n) if (1..=250).contains(&n) => n,
                _ => {
                    return Err(bad_request(format!(
                        "limit must be between 1 and 250, got {v}"
                    )))
                }
            },
        };
        let after = match query_get(&q, "after") {
            None | Some("") => 0,
            Some(v) => v
                .parse::<u64>()
                .map_err(|_| bad_request(format!("Invalid after: {v}")))?,
        };
        let d = g.portal.read();
        let Some(list) = d.lists.get(&id) else {
            return Err(not_found(format!("List {id} does not exist.")));
        };
        let live = &d.store(list.object_type).live;
        let members: Vec<(u64, i64)> = list
            .members
            .range(after..)
            .filter(|(m, _)| live.contains_key(m))
            .map(|(m, at)| (*m, *at))
            .collect();
        let page: Vec<_> = members.iter().take(limit).collect();
        let results: Vec<_> = page
            .iter()
            .map(|(m, at)| json!({"recordId": m.to_string(), "membershipTimestamp": iso_ms(*at)}))
            .collect();
        let mut body = json!({"results": results, "total": members.len()});
        if members.len() > limit {
            if let Some((last, _)) = page.last() {
                body["paging"] = json!({"next": {"after": (last + 1).to_string()}});
            }
        }
        Ok(json(StatusCode::OK, &body))
    })()
    .unwrap_or_else(|e: Response| e);
    g.finish(resp)
}

/// `GET /crm/v3/lists/records/{objectTypeId}/{recordId}/memberships` (and
/// `/crm/lists/2026-03/records/…`): the lists a live record is a member of
/// → `{"results": [{"listId", "firstAddedTimestamp", "lastAddedTimestamp",
/// "listVersion", "isPublicList"}], "total"}`; none for a record that is not
/// live (deleted records drop out of lists).
pub(crate) async fn record_memberships(
    State(st): St,
    Path((type_id, record_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let g = match gate(
        &st,
        &headers,
        "GET /crm/v3/lists/records/{objectTypeId}/{recordId}/memberships",
        Policy::TenSecondly,
        &[Some(LISTS_SCOPE.to_owned())],
    )
    .await
    {
        Ok(g) => g,
        Err(r) => return r,
    };
    let resp = (|| {
        let ty = ObjectType::parse(&type_id)
            .ok_or_else(|| bad_request(format!("Unable to infer object type from: {type_id}")))?;
        let id = record_id
            .parse::<u64>()
            .map_err(|_| bad_request(format!("Invalid record id: {record_id}")))?;
        let d = g.portal.read();
        let live = d.store(ty).live.contains_key(&id);
        let results: Vec<serde_json::Value> = d
            .lists
            .values()
            .filter(|l| live && l.object_type == ty)
            .filter_map(|l| {
                let at = *l.members.get(&id)?;
                Some(json!({
                    "listId": l.list_id.to_string(),
                    "firstAddedTimestamp": iso_ms(at),
                    "lastAddedTimestamp": iso_ms(at),
                    "listVersion": 1,
                    "isPublicList": false,
                }))
            })
            .collect();
        Ok(json(
            StatusCode::OK,
            &json!({"results": results, "total": results.len()}),
        ))
    })()
    .unwrap_or_else(|e: Response| e);
    g.finish(resp)
}
