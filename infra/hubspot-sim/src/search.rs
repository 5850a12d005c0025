//! `POST /crm/v3/objects/{type}/search`.

use std::cmp::Ordering;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::clock::parse_ts;
use crate::crm::{parse_type, St};
use crate::http::{bad_request, gate, json, parse_body, read_scope, Policy};
use crate::model::{derived_prop, Interner, ObjectType, PropRef, Record};
use crate::state::{render, ObjectStore, PortalData};

/// HubSpot's hard cap on results reachable by paging one query.
pub const SEARCH_RESULT_CAP: usize = 10_000;

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct SearchRequest {
    filter_groups: Vec<FilterGroup>,
    sorts: Vec<Value>,
    properties: Vec<String>,
    limit: Option<Value>,
    after: Option<Value>,
    query: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct FilterGroup {
    filters: Vec<Filter>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Filter {
    property_name: String,
    operator: String,
    value: Option<Value>,
    high_value: Option<Value>,
    values: Option<Vec<Value>>,
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Date,
    Number,
    Text,
}

#[derive(Clone, Debug, PartialEq, PartialOrd)]
enum Key {
    Num(f64),
    Text(String),
}

fn cmp_keys(a: &Key, b: &Key) -> Option<Ordering> {
    match (a, b) {
        (Key::Num(x), Key::Num(y)) => x.partial_cmp(y),
        (Key::Text(x), Key::Text(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn parse_key(kind: Kind, s: &str) -> Option<Key> {
    match kind {
        Kind::Date => parse_ts(s).map(|v| Key::Num(v as f64)),
        Kind::Number => s.trim().parse::<f64>().ok().map(Key::Num),
        Kind::Text => Some(Key::Text(s.to_lowercase())),
    }
}

struct Prop {
    r: Option<PropRef>,
    kind: Kind,
}

fn resolve_prop(d: &PortalData, ty: ObjectType, name: &str, interner: &Interner) -> Prop {
    // Contacts keep their modification time in `lastmodifieddate`; HubSpot's
    // search on their `hs_lastmodifieddate` matches nothing.
    if ty == ObjectType::Contacts && name == "hs_lastmodifieddate" {
        return Prop {
            r: None,
            kind: Kind::Date,
        };
    }
    let def = d.defs[ty.index()].iter().find(|x| x.name == name);
    let kind = match def.map(|x| x.prop_type.as_str()) {
        Some("datetime") | Some("date") => Kind::Date,
        Some("number") => Kind::Number,
        _ => Kind::Text,
    };
    let r = def.map(|_| {
        derived_prop(ty, name)
            .unwrap_or_else(|| PropRef::Stored(interner.get(name).unwrap_or(u16::MAX)))
    });
    Prop { r, kind }
}

fn record_key(id: u64, rec: &Record, p: &Prop) -> Option<Key> {
    match p.r? {
        PropRef::Id => Some(Key::Num(id as f64)),
        PropRef::Created => Some(Key::Num(rec.created_ms as f64)),
        PropRef::Modified => Some(Key::Num(rec.updated_ms as f64)),
        PropRef::Stored(i) => rec
            .props
            .get(i)
            .filter(|s| !s.is_empty())
            .and_then(|s| parse_key(p.kind, s)),
    }
}

enum Op {
    Cmp(Ordering, bool, Key),
    Eq(Key),
    Neq(Key),
    Has,
    NotHas,
    In(Vec<Key>),
    NotIn(Vec<Key>),
    Between(Key, Key),
    Contains(String),
}

struct Compiled {
    prop: Prop,
    op: Op,
}

fn compile(
    d: &PortalData,
    ty: ObjectType,
    f: &Filter,
    interner: &Interner,
) -> Result<Compiled, Response> {
    let prop = resolve_prop(d, ty, &f.property_name, interner);
    let val = || -> Result<Key, Response> {
        let s = f.value.as_ref().and_then(scalar).ok_or_else(|| {
            bad_request(format!(
                "Filter on {} with operator {} needs a value",
                f.property_name, f.operator
            ))
        })?;
        parse_key(prop.kind, &s).ok_or_else(|| {
            bad_request(format!(
                "Invalid value '{s}' for property {}",
                f.property_name
            ))
        })
    };
    let list = || -> Result<Vec<Key>, Response> {
        f.values
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|v| {
                scalar(v)
                    .and_then(|s| parse_key(prop.kind, &s))
                    .ok_or_else(|| {
                        bad_request(format!("Invalid value in values for {}", f.property_name))
                    })
            })
            .collect()
    };
    let op = match f.operator.to_ascii_uppercase().as_str() {
        "EQ" => Op::Eq(val()?),
        "NEQ" => Op::Neq(val()?),
        "GT" => Op::Cmp(Ordering::Greater, false, val()?),
        "GTE" => Op::Cmp(Ordering::Greater, true, val()?),
        "LT" => Op::Cmp(Ordering::Less, false, val()?),
        "LTE" => Op::Cmp(Ordering::Less, true, val()?),
        "HAS_PROPERTY" => Op::Has,
        "NOT_HAS_PROPERTY" => Op::NotHas,
        "IN" => Op::In(list()?),
        "NOT_IN" => Op::NotIn(list()?),
        "BETWEEN" => {
            let lo = val()?;
            let hs = f
                .high_value
                .as_ref()
                .and_then(scalar)
                .and_then(|s| parse_key(prop.kind, &s))
                .ok_or_else(|| bad_request("BETWEEN needs a valid highValue"))?;
            Op::Between(lo, hs)
        }
        "CONTAINS_TOKEN" => Op::Contains(
            f.value
                .as_ref()
                .and_then(scalar)
                .unwrap_or_default()
                .trim_matches('*')
                .to_lowercase(),
        ),
        other => return Err(bad_request(format!("Unsupported filter operator: {other}"))),
    };
    Ok(Compiled { prop, op })
}

fn matches(c: &Compiled, id: u64, rec: &Record) -> bool {
    let v = record_key(id, rec, &c.prop);
    match (&c.op, v) {
        (Op::Has, v) => v.is_some(),
        (Op::NotHas, v) => v.is_none(),
        (Op::Neq(k), Some(v)) => v != *k,
        (Op::Neq(_), None) => true,
        (Op::NotIn(ks), Some(v)) => !ks.contains(&v),
        (Op::NotIn(_), None) => true,
        (_, None) => false,
        (Op::Eq(k), Some(v)) => v == *k,
        (Op::Cmp(ord, inclusive, k), Some(v)) => match cmp_keys(&v, k) {
            Some(Ordering::Equal) => *inclusive,
            Some(o) => o == *ord,
            None => false,
        },
        (Op::In(ks), Some(v)) => ks.contains(&v),
        (Op::Between(lo, hi), Some(v)) => {
            matches!(cmp_keys(&v, lo), Some(Ordering::Greater | Ordering::Equal))
                && matches!(cmp_keys(&v, hi), Some(Ordering::Less | Ordering::Equal))
        }
        (Op::Contains(t), Some(Key::Text(s))) => s.contains(t.as_str()),
        (Op::Contains(_), Some(_)) => false,
    }
}

/// The records search finds when its index has caught up to
/// `indexed_at_ms` (HubSpot's search results lag writes by seconds to
/// minutes, [`crate::SimConfig::search_index_lag_ms`]): those created by
/// then, live now or deleted after it. Property values are the current
/// ones (the simulator keeps no history of them); records merged away
/// since are not found.
fn indexed(store: &ObjectStore, indexed_at_ms: i64) -> impl Iterator<Item = (&u64, &Record)> {
    let created = move |r: &Record| r.created_ms <= indexed_at_ms;
    store.live.iter().filter(move |(_, r)| created(r)).chain(
        store
            .archived
            .iter()
            .filter(move |(_, r)| created(r) && r.archived_ms.is_some_and(|at| at > indexed_at_ms)),
    )
}

/// `POST /crm/v3/objects/{type}/search`
pub(crate) async fn search(
    State(st): St,
    Path(ty): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let g = match gate(
        &st,
        &headers,
        "POST /crm/v3/objects/{type}/search",
        Policy::Search,
        &[read_scope(&ty)],
    )
    .await
    {
        Ok(g) => g,
        Err(r) => return r,
    };
    let resp = (|| {
        let ty = parse_type(&ty)?;
        let req: SearchRequest = parse_body(&body)?;
        let limit = match req.limit.as_ref().map(scalar) {
            None => 10,
            Some(Some(s)) => match s.parse::<i64>() {
                Ok(n) if (0..=200).contains(&n) => n as usize,
                Ok(n) => return Err(bad_request(format!("limit must be between 0 and 200, got {n}"))),
                Err(_) => return Err(bad_request(format!("Invalid limit: {s}"))),
            },
            Some(None) => return Err(bad_request("Invalid limit")),
        };
        let after = match req.after.as_ref().map(scalar) {
            None => 0,
            Some(Some(s)) if s.is_empty() => 0,
            Some(Some(s)) => s.parse::<usize>().map_err(|_| bad_request(format!("Invalid after: {s}")))?,
            Some(None) => return Err(bad_request("Invalid after")),
        };
        if after >= SEARCH_RESULT_CAP {
            return Err(bad_request(format!(
                "Search results are limited to {SEARCH_RESULT_CAP}; cannot page to after={after}. Narrow the query (e.g. by {}).",
                ty.modified_property()
            )));
        }
        if req.filter_groups.len() > 5 {
            return Err(bad_request("Too many filter groups (maximum 5)"));
        }
        let total_filters: usize = req.filter_groups.iter().map(|g| g.filters.len()).sum();
        if req.filter_groups.iter().any(|g| g.filters.len() > 6) || total_filters > 18 {
            return Err(bad_request("Too many filters (maximum 6 per group, 18 in total)"));
        }
        let lag_ms = i64::try_from(st.config_read().search_index_lag_ms).unwrap_or(i64::MAX);
        let d = g.portal.read();
        let interner = st.interner_read();
        let groups: Vec<Vec<Compiled>> = req
            .filter_groups
            .iter()
            .map(|grp| grp.filters.iter().map(|f| compile(&d, ty, f, &interner)).collect::<Result<Vec<_>, _>>())
            .collect::<Result<_, _>>()?;
        let mut sorts: Vec<(Prop, bool)> = Vec::new();
        for s in &req.sorts {
            let (name, desc) = match s {
                Value::String(s) => match s.strip_prefix('-') {
                    Some(n) => (n.to_string(), true),
                    None => (s.clone(), false),
                },
                Value::Object(o) => (
                    o.get("propertyName").and_then(Value::as_str).unwrap_or("").to_string(),
                    o.get("direction")
                        .and_then(Value::as_str)
                        .is_some_and(|d| d.eq_ignore_ascii_case("DESCENDING")),
                ),
                _ => return Err(bad_request("Invalid sort")),
            };
            sorts.push((resolve_prop(&d, ty, &name, &interner), desc));
        }
        let text_props: Vec<u16> = ["name", "domain", "email", "firstname", "lastname", "dealname", "phone"]
            .iter()
            .filter_map(|n| interner.get(n))
            .collect();
        let q = req.query.as_deref().map(str::to_lowercase).filter(|q| !q.is_empty());
        let visible = indexed(d.store(ty), st.clock.now_ms() - lag_ms);
        let mut hits: Vec<(u64, &Record)> = visible
            .filter(|(id, r)| groups.is_empty() || groups.iter().any(|grp| grp.iter().all(|c| matches(c, **id, r))))
            .filter(|(_, r)| match &q {
                None => true,
                Some(q) => text_props.iter().any(|i| r.props.get(*i).is_some_and(|v| v.to_lowercase().contains(q.as_str()))),
            })
            .map(|(id, r)| (*id, r))
            .collect();
        if sorts.is_empty() {
            hits.sort_by_key(|(id, _)| *id);
        } else {
            let keyed: Vec<(Vec<Option<Key>>, u64, &Record)> = hits
                .iter()
                .map(|(id, r)| (sorts.iter().map(|(p, _)| record_key(*id, r, p)).collect(), *id, *r))
                .collect();
            let mut keyed = keyed;
            keyed.sort_by(|a, b| {
                for (i, (_, desc)) in sorts.iter().enumerate() {
                    let o = match (&a.0[i], &b.0[i]) {
                        (Some(x), Some(y)) => cmp_keys(x, y).unwrap_or(Ordering::Equal),
                        (Some(_), None) => Ordering::Less,
                        (None, Some(_)) => Ordering::Greater,
                        (None, None) => Ordering::Equal,
                    };
                    let o = if *desc { o.reverse() } else { o };
                    if o != Ordering::Equal {
                        return o;
                    }
                }
                a.1.cmp(&b.1)
            });
            hits = keyed.into_iter().map(|(_, id, r)| (id, r)).collect();
        }
        let total = hits.len();
        let names = ty.effective_properties(&req.properties);
        let resolved = d.resolve(ty, &names, &interner);
        let page: Vec<_> = hits
            .iter()
            .skip(after)
            .take(limit)
            .map(|(id, r)| {
                // The index saw it live: a deletion since is not in it yet,
                // nor the deletion's modification time.
                let before;
                let r = match r.live_updated_ms {
                    Some(at) if r.archived_ms.is_some() => {
                        before = Record { updated_ms: at, ..(*r).clone() };
                        &before
                    }
                    _ => *r,
                };
                let mut o = render(*id, r, &resolved);
                o.archived = false;
                o.archived_at = None;
                o
            })
            .collect();
        let mut body = json!({"total": total, "results": page});
        let next = after + limit;
        if limit > 0 && next < total {
            body["paging"] = json!({"next": {"after": next.to_string()}});
        }
        Ok(json(StatusCode::OK, &body))
    })()
    .unwrap_or_else(|e: Response| e);
    g.finish(resp)
}
