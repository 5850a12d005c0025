//! CRM v3 objects, properties, owners, and v4 associations.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::clock::iso_ms;
use crate::http::{
    bad_request, gate, json, not_found, parse_body, query_bool, query_get, query_list, query_pairs,
    read_scope, Policy,
};
use crate::model::ObjectType;
use crate::state::{association_type_ids, render, SimObject, SimState};

pub(crate) type St = State<Arc<SimState>>;

/// The scope HubSpot's owners API needs.
pub(crate) const OWNERS_SCOPE: &str = "crm.objects.owners.read";

pub(crate) fn parse_type(s: &str) -> Result<ObjectType, Response> {
    ObjectType::parse(s)
        .ok_or_else(|| bad_request(format!("Unable to infer object type from: {s}")))
}

#[derive(Serialize)]
pub(crate) struct Next {
    pub after: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

#[derive(Serialize)]
pub(crate) struct Paging {
    pub next: Next,
}

#[derive(Serialize)]
struct ListResponse {
    results: Vec<SimObject>,
    #[serde(skip_serializing_if = "Option::is_none")]
    paging: Option<Paging>,
}

fn parse_limit(q: &[(String, String)], default: u32, max: u32) -> Result<u32, Response> {
    match query_get(q, "limit") {
        None | Some("") => Ok(default),
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n >= 1 && n <= max as i64 => Ok(n as u32),
            Ok(n) => Err(bad_request(format!(
                "limit must be between 1 and {max}, got {n}"
            ))),
            Err(_) => Err(bad_request(format!("Invalid limit: {v}"))),
        },
    }
}

fn requested_props(ty: ObjectType, q: &[(String, String)]) -> Vec<String> {
    ty.effective_properties(&query_list(q, "properties"))
}

/// `GET /crm/v3/objects/{type}`
pub(crate) async fn list_objects(
    State(st): St,
    Path(ty): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let g = match gate(
        &st,
        &headers,
        "GET /crm/v3/objects/{type}",
        Policy::TenSecondly,
        &[read_scope(&ty)],
    )
    .await
    {
        Ok(g) => g,
        Err(r) => return r,
    };
    let resp = (|| {
        let ty = parse_type(&ty)?;
        let q = query_pairs(raw.as_deref());
        let limit = parse_limit(&q, 10, 100)?;
        let archived = query_bool(&q, "archived")?;
        let after = match query_get(&q, "after") {
            None | Some("") => 0,
            Some(v) => v
                .parse::<u64>()
                .map_err(|_| bad_request(format!("Invalid after: {v}")))?,
        };
        let names = requested_props(ty, &q);
        let d = g.portal.read();
        let interner = st.interner_read();
        let resolved = d.resolve(ty, &names, &interner);
        let s = d.store(ty);
        let m = if archived { &s.archived } else { &s.live };
        let mut it = m.range(after..);
        let results: Vec<SimObject> = it
            .by_ref()
            .take(limit as usize)
            .map(|(id, r)| render(*id, r, &resolved))
            .collect();
        let paging = match (it.next(), results.last()) {
            (Some(_), Some(last)) => {
                let next_after = last.id.parse::<u64>().unwrap_or(0) + 1;
                let mut link = format!(
                    "{}/crm/v3/objects/{}?limit={}&after={}",
                    st.public_base_url(),
                    ty.plural(),
                    limit,
                    next_after
                );
                let asked = query_list(&q, "properties");
                if !asked.is_empty() {
                    link.push_str("&properties=");
                    link.push_str(
                        &url::form_urlencoded::byte_serialize(asked.join(",").as_bytes())
                            .collect::<String>(),
                    );
                }
                if archived {
                    link.push_str("&archived=true");
                }
                Some(Paging {
                    next: Next {
                        after: next_after.to_string(),
                        link: Some(link),
                    },
                })
            }
            _ => None,
        };
        Ok(json(StatusCode::OK, &ListResponse { results, paging }))
    })()
    .unwrap_or_else(|e: Response| e);
    g.finish(resp)
}

/// `GET /crm/v3/objects/{type}/{id}`
pub(crate) async fn get_object(
    State(st): St,
    Path((ty, id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let g = match gate(
        &st,
        &headers,
        "GET /crm/v3/objects/{type}/{id}",
        Policy::TenSecondly,
        &[read_scope(&ty)],
    )
    .await
    {
        Ok(g) => g,
        Err(r) => return r,
    };
    let resp = (|| {
        let ty = parse_type(&ty)?;
        let q = query_pairs(raw.as_deref());
        let archived = query_bool(&q, "archived")?;
        let names = requested_props(ty, &q);
        let d = g.portal.read();
        let interner = st.interner_read();
        let resolved = d.resolve(ty, &names, &interner);
        let s = d.store(ty);
        let m = if archived { &s.archived } else { &s.live };
        let found = match query_get(&q, "idProperty").filter(|p| *p != "hs_object_id") {
            Some(prop) => {
                find_by_property(m, &interner, prop, std::slice::from_ref(&id)).remove(&id)
            }
            None => id.parse::<u64>().ok(),
        };
        match found.and_then(|i| m.get(&i).map(|r| (i, r))) {
            Some((i, r)) => Ok(json(StatusCode::OK, &render(i, r, &resolved))),
            None => Err(not_found("resource not found")),
        }
    })()
    .unwrap_or_else(|e: Response| e);
    g.finish(resp)
}

fn find_by_property(
    m: &BTreeMap<u64, crate::model::Record>,
    interner: &crate::model::Interner,
    prop: &str,
    values: &[String],
) -> HashMap<String, u64> {
    let mut out = HashMap::new();
    let Some(idx) = interner.get(prop) else {
        return out;
    };
    let wanted: std::collections::HashSet<&str> = values.iter().map(String::as_str).collect();
    for (id, r) in m {
        if let Some(v) = r.props.get(idx) {
            if wanted.contains(v) {
                out.entry(v.to_string()).or_insert(*id);
            }
        }
    }
    out
}

#[derive(Deserialize)]
pub(crate) struct IdInput {
    pub id: Value,
}

impl IdInput {
    pub fn as_string(&self) -> String {
        match &self.id {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BatchReadRequest {
    inputs: Vec<IdInput>,
    #[serde(default)]
    properties: Vec<String>,
    #[serde(default)]
    id_property: Option<String>,
}

/// `POST /crm/v3/objects/{type}/batch/read`
pub(crate) async fn batch_read(
    State(st): St,
    Path(ty): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let g = match gate(
        &st,
        &headers,
        "POST /crm/v3/objects/{type}/batch/read",
        Policy::TenSecondly,
        &[read_scope(&ty)],
    )
    .await
    {
        Ok(g) => g,
        Err(r) => return r,
    };
    let resp = (|| {
        let ty = parse_type(&ty)?;
        let q = query_pairs(raw.as_deref());
        let archived = query_bool(&q, "archived")?;
        let req: BatchReadRequest = parse_body(&body)?;
        if req.inputs.len() > 100 {
            return Err(bad_request(format!(
                "Batch input size ({}) exceeds the maximum of 100 inputs.",
                req.inputs.len()
            )));
        }
        let started = iso_ms(st.now_ms());
        let names = ty.effective_properties(&req.properties);
        let d = g.portal.read();
        let interner = st.interner_read();
        let resolved = d.resolve(ty, &names, &interner);
        let s = d.store(ty);
        let m = if archived { &s.archived } else { &s.live };
        let keys: Vec<String> = req.inputs.iter().map(IdInput::as_string).collect();
        let by_prop = req
            .id_property
            .as_deref()
            .filter(|p| *p != "hs_object_id")
            .map(|p| find_by_property(m, &interner, p, &keys));
        let survivor_reads =
            st.config_read().merged_id_reads == crate::config::MergedIdReads::Survivor;
        let mut seen = std::collections::HashSet::new();
        let mut rendered = std::collections::HashSet::new();
        let mut results = Vec::new();
        let mut missing = Vec::new();
        for k in keys {
            if !seen.insert(k.clone()) {
                continue;
            }
            let id = match &by_prop {
                Some(map) => map.get(&k).copied(),
                None => k.parse::<u64>().ok(),
            };
            // A merged-away id: the survivor, when so configured.
            let id = id.map(|i| match (m.contains_key(&i), survivor_reads && !archived) {
                (false, true) => s.survivor_of(i).unwrap_or(i),
                _ => i,
            });
            match id.and_then(|i| m.get(&i).map(|r| (i, r))) {
                Some((i, r)) if rendered.insert(i) => results.push(render(i, r, &resolved)),
                Some(_) => {}
                None => missing.push(k),
            }
        }
        let completed = iso_ms(st.now_ms());
        // 2026-09 answers a batch with 200 only, errors included (no 207).
        let partial = if crate::versions::crm_version(&headers) == "2026-09" {
            StatusCode::OK
        } else {
            StatusCode::MULTI_STATUS
        };
        if missing.is_empty() {
            Ok(json(
                StatusCode::OK,
                &json!({"status": "COMPLETE", "results": results, "startedAt": started, "completedAt": completed}),
            ))
        } else {
            Ok(json(
                partial,
                &json!({
                    "status": "COMPLETE",
                    "results": results,
                    "numErrors": 1,
                    "errors": [{
                        "status": "error",
                        "category": "OBJECT_NOT_FOUND",
                        "message": format!("Could not get some {} objects, they may be deleted or not exist. Check that ids are valid.", ty.upper()),
                        "context": {"ids": missing},
                        "links": {},
                        "errors": [],
                    }],
                    "startedAt": started,
                    "completedAt": completed,
                }),
            ))
        }
    })()
    .unwrap_or_else(|e: Response| e);
    g.finish(resp)
}

/// `GET /crm/v3/properties/{type}`
pub(crate) async fn list_properties(
    State(st): St,
    Path(ty): Path<String>,
    headers: HeaderMap,
) -> Response {
    let g = match gate(
        &st,
        &headers,
        "GET /crm/v3/properties/{type}",
        Policy::TenSecondly,
        &[read_scope(&ty)],
    )
    .await
    {
        Ok(g) => g,
        Err(r) => return r,
    };
    let resp = match parse_type(&ty) {
        Ok(ty) => json(
            StatusCode::OK,
            &json!({"results": g.portal.read().defs[ty.index()]}),
        ),
        Err(e) => e,
    };
    g.finish(resp)
}

/// `GET /crm/v3/properties/{type}/{name}`
pub(crate) async fn get_property(
    State(st): St,
    Path((ty, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let g = match gate(
        &st,
        &headers,
        "GET /crm/v3/properties/{type}/{name}",
        Policy::TenSecondly,
        &[read_scope(&ty)],
    )
    .await
    {
        Ok(g) => g,
        Err(r) => return r,
    };
    let resp = match parse_type(&ty) {
        Ok(ty) => match g.portal.read().defs[ty.index()]
            .iter()
            .find(|d| d.name == name)
        {
            Some(d) => json(StatusCode::OK, d),
            None => not_found(format!("Unable to find property {name}")),
        },
        Err(e) => e,
    };
    g.finish(resp)
}

/// `GET /crm/v3/owners`
pub(crate) async fn list_owners(
    State(st): St,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let g = match gate(
        &st,
        &headers,
        "GET /crm/v3/owners",
        Policy::TenSecondly,
        &[Some(OWNERS_SCOPE.to_owned())],
    )
    .await
    {
        Ok(g) => g,
        Err(r) => return r,
    };
    let resp = (|| {
        let q = query_pairs(raw.as_deref());
        let limit = parse_limit(&q, 100, 500)?;
        let archived = query_bool(&q, "archived")?;
        let after = match query_get(&q, "after") {
            None | Some("") => 0,
            Some(v) => v.parse::<u64>().map_err(|_| bad_request(format!("Invalid after: {v}")))?,
        };
        let email = query_get(&q, "email").map(str::to_ascii_lowercase);
        let d = g.portal.read();
        let mut owners: Vec<_> = d
            .owners
            .iter()
            .filter(|o| o.archived == archived)
            .filter(|o| email.as_deref().is_none_or(|e| o.email.to_ascii_lowercase() == e))
            .filter(|o| o.id.parse::<u64>().unwrap_or(0) >= after)
            .collect();
        owners.sort_by_key(|o| o.id.parse::<u64>().unwrap_or(0));
        let more = owners.len() > limit as usize;
        owners.truncate(limit as usize);
        let mut body = json!({"results": owners});
        if more {
            if let Some(last) = owners.last() {
                let next = last.id.parse::<u64>().unwrap_or(0) + 1;
                body["paging"] = json!({"next": {"after": next.to_string(), "link": format!("{}/crm/v3/owners?limit={}&after={}", st.public_base_url(), limit, next)}});
            }
        }
        Ok(json(StatusCode::OK, &body))
    })()
    .unwrap_or_else(|e: Response| e);
    g.finish(resp)
}

/// `GET /crm/v3/owners/{id}`
pub(crate) async fn get_owner(
    State(st): St,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let g = match gate(
        &st,
        &headers,
        "GET /crm/v3/owners/{ownerId}",
        Policy::TenSecondly,
        &[Some(OWNERS_SCOPE.to_owned())],
    )
    .await
    {
        Ok(g) => g,
        Err(r) => return r,
    };
    let resp = match g.portal.read().owners.iter().find(|o| o.id == id) {
        Some(o) => json(StatusCode::OK, o),
        None => not_found("resource not found"),
    };
    g.finish(resp)
}

#[derive(Deserialize)]
struct AssocRequest {
    inputs: Vec<AssocInput>,
}

/// `{"id", "after"?}`: `after` asks for the next page of that input's
/// associations.
#[derive(Deserialize)]
struct AssocInput {
    #[serde(flatten)]
    id: IdInput,
    #[serde(default)]
    after: Option<String>,
}

/// `POST /crm/v4/associations/{from}/{to}/batch/read`
pub(crate) async fn assoc_batch_read(
    State(st): St,
    Path((from, to)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let g = match gate(
        &st,
        &headers,
        "POST /crm/v4/associations/{fromObjectType}/{toObjectType}/batch/read",
        Policy::TenSecondly,
        &[read_scope(&from), read_scope(&to)],
    )
    .await
    {
        Ok(g) => g,
        Err(r) => return r,
    };
    let resp = (|| {
        let from = parse_type(&from)?;
        let to = parse_type(&to)?;
        let req: AssocRequest = parse_body(&body)?;
        if req.inputs.len() > 1000 {
            return Err(bad_request(format!(
                "Batch input size ({}) exceeds the maximum of 1000 inputs.",
                req.inputs.len()
            )));
        }
        let started = iso_ms(st.now_ms());
        let (prim_id, plain_id) = association_type_ids(from, to).unwrap_or((None, 0));
        let page_size = st.config_read().association_page_size.max(1);
        // The 2026-03 spec types `toObjectId` as a string; v4 sends a number.
        let string_ids = crate::versions::crm_version(&headers) != "v4";
        let d = g.portal.read();
        let mut results = Vec::new();
        let mut errors = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for inp in &req.inputs {
            let k = inp.id.as_string();
            if !seen.insert(k.clone()) {
                continue;
            }
            let offset = match inp.after.as_deref() {
                None | Some("") => 0,
                Some(a) => a
                    .parse::<usize>()
                    .map_err(|_| bad_request(format!("Invalid after: {a}")))?,
            };
            let mut targets: Vec<(u64, bool)> = match k.parse::<u64>() {
                Ok(id) if d.store(from).live.contains_key(&id) => d
                    .assoc
                    .targets(from, to, id)
                    .into_iter()
                    .filter(|(t, _)| d.store(to).live.contains_key(t))
                    .collect(),
                _ => Vec::new(),
            };
            targets.sort_unstable();
            let more = targets.len() > offset + page_size;
            let targets: Vec<(u64, bool)> = targets
                .into_iter()
                .skip(offset)
                .take(page_size)
                .collect();
            if targets.is_empty() {
                errors.push(json!({
                    "status": "error",
                    "category": "OBJECT_NOT_FOUND",
                    "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
                    "context": {"fromObjectId": [k]},
                    "message": format!("No {} is associated with {} {}.", to.singular(), from.singular(), k),
                }));
                continue;
            }
            let to_json: Vec<Value> = targets
                .into_iter()
                .map(|(t, primary)| {
                    let mut types = Vec::new();
                    if primary {
                        if let Some(p) = prim_id {
                            types.push(json!({"category": "HUBSPOT_DEFINED", "typeId": p, "label": "Primary"}));
                        }
                    }
                    types.push(json!({"category": "HUBSPOT_DEFINED", "typeId": plain_id, "label": Value::Null}));
                    let id = if string_ids { json!(t.to_string()) } else { json!(t) };
                    json!({"toObjectId": id, "associationTypes": types})
                })
                .collect();
            let mut result = json!({"from": {"id": k}, "to": to_json});
            if more {
                result["paging"] = json!({"next": {"after": (offset + page_size).to_string()}});
            }
            results.push(result);
        }
        let completed = iso_ms(st.now_ms());
        let mut body = json!({"status": "COMPLETE", "results": results, "startedAt": started, "completedAt": completed});
        let status = if errors.is_empty() {
            StatusCode::OK
        } else {
            body["numErrors"] = json!(errors.len());
            body["errors"] = Value::Array(errors);
            StatusCode::MULTI_STATUS
        };
        Ok(json(status, &body))
    })()
    .unwrap_or_else(|e: Response| e);
    g.finish(resp)
}
