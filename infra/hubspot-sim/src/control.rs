//! The `/_sim/...` control API (JSON, unauthenticated: bind to loopback).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::clock::iso_ms;
use crate::config::SeedSpec;
use crate::crm::St;
use crate::faults::Faults;
use crate::http::{bad_request, hs_error, json, parse_body, query_bool, query_get, query_pairs};
use crate::model::{ObjectType, PropertyDef};
use crate::state::{Change, Props, SimError, SimState};

mod records;
use records::*;

fn sim_err(e: SimError) -> Response {
    match e {
        SimError::UnknownPortal(_) | SimError::NotFound { .. } => {
            hs_error(StatusCode::NOT_FOUND, "OBJECT_NOT_FOUND", e.to_string())
        }
        SimError::PortalExists(_) => hs_error(StatusCode::CONFLICT, "CONFLICT", e.to_string()),
        SimError::Invalid(_) => {
            hs_error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", e.to_string())
        }
    }
}

fn ok<T: serde::Serialize>(r: Result<T, SimError>) -> Response {
    match r {
        Ok(v) => json(StatusCode::OK, &v),
        Err(e) => sim_err(e),
    }
}

fn ty(s: &str) -> Result<ObjectType, Response> {
    ObjectType::parse(s).ok_or_else(|| bad_request(format!("unknown object type {s}")))
}

fn body_or_empty<T: serde::de::DeserializeOwned + Default>(b: &[u8]) -> Result<T, Response> {
    if b.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        parse_body(b)
    }
}

/// Deep merge of JSON objects (`patch` wins).
pub(crate) fn merge_json(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                match b.get_mut(k) {
                    Some(bv) if bv.is_object() && v.is_object() => merge_json(bv, v),
                    _ => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, p) => *b = p.clone(),
    }
}

fn patch_config(st: &SimState, section: Option<&str>, patch: &Value) -> Response {
    let cur = st.config();
    let Ok(mut v) = serde_json::to_value(&cur) else {
        return hs_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
            "config",
        );
    };
    match section {
        Some(s) => {
            if let Some(target) = v.get_mut(s) {
                merge_json(target, patch);
            }
        }
        None => merge_json(&mut v, patch),
    }
    match serde_json::from_value::<crate::config::SimConfig>(v) {
        Ok(new) => {
            st.update_config(|c| *c = new.clone());
            let full = serde_json::to_value(&new).unwrap_or(Value::Null);
            match section {
                Some(s) => json(StatusCode::OK, &full[s]),
                None => json(StatusCode::OK, &full),
            }
        }
        Err(e) => bad_request(format!("invalid configuration: {e}")),
    }
}

pub(crate) fn router() -> Router<Arc<SimState>> {
    Router::new()
        .route(
            "/_sim/health",
            get(|| async { json(StatusCode::OK, &json!({"ok": true})) }),
        )
        .route(
            "/_sim/config",
            get(|State(st): St| async move { json(StatusCode::OK, &st.config()) }).patch(
                |State(st): St, b: Bytes| async move {
                    match parse_body::<Value>(&b) {
                        Ok(p) => patch_config(&st, None, &p),
                        Err(r) => r,
                    }
                },
            ),
        )
        .route(
            "/_sim/webhooks",
            get(|State(st): St| async move { json(StatusCode::OK, &st.config().webhooks) }).put(
                |State(st): St, b: Bytes| async move {
                    match parse_body::<Value>(&b) {
                        Ok(p) => patch_config(&st, Some("webhooks"), &p),
                        Err(r) => r,
                    }
                },
            ),
        )
        .route(
            "/_sim/rate-limit",
            get(|State(st): St| async move { json(StatusCode::OK, &st.config().rate_limit) }).put(
                |State(st): St, b: Bytes| async move {
                    match parse_body::<Value>(&b) {
                        Ok(p) => patch_config(&st, Some("rate_limit"), &p),
                        Err(r) => r,
                    }
                },
            ),
        )
        .route(
            "/_sim/oauth",
            get(|State(st): St| async move { json(StatusCode::OK, &st.config().oauth) }).put(
                |State(st): St, b: Bytes| async move {
                    match parse_body::<Value>(&b) {
                        Ok(p) => patch_config(&st, Some("oauth"), &p),
                        Err(r) => r,
                    }
                },
            ),
        )
        .route("/_sim/oauth/next-portal", post(next_portal))
        .route(
            "/_sim/counters",
            get(|State(st): St| async move { json(StatusCode::OK, &st.counters()) }),
        )
        .route(
            "/_sim/counters/reset",
            post(|State(st): St| async move {
                st.reset_counters();
                json(StatusCode::OK, &st.counters())
            }),
        )
        .route("/_sim/clock", get(clock))
        .route("/_sim/clock/advance", post(advance))
        .route(
            "/_sim/events",
            get(events).delete(|State(st): St| async move {
                st.clear_events();
                json(StatusCode::OK, &json!({"cleared": true}))
            }),
        )
        .route("/_sim/webhooks/wait", post(wait_idle))
        .route("/_sim/portals", get(list_portals).post(create_portal))
        .route(
            "/_sim/portals/{id}",
            get(|State(st): St, Path(id): Path<u64>| async move { ok(st.portal_info(id)) }),
        )
        .route(
            "/_sim/portals/{id}/install",
            post(|State(st): St, Path(id): Path<u64>| async move {
                ok(st.install(id).and_then(|_| st.portal_info(id)))
            }),
        )
        .route(
            "/_sim/portals/{id}/uninstall",
            post(|State(st): St, Path(id): Path<u64>| async move {
                ok(st.uninstall(id).and_then(|_| st.portal_info(id)))
            }),
        )
        .route(
            "/_sim/portals/{id}/token",
            post(|State(st): St, Path(id): Path<u64>| async move { ok(st.issue_token(id)) }),
        )
        .route("/_sim/portals/{id}/seed", post(seed))
        .route(
            "/_sim/portals/{id}/faults",
            get(get_faults)
                .put(put_faults)
                .patch(patch_faults)
                .post(patch_faults),
        )
        .route("/_sim/portals/{id}/consent", post(consent))
        .route(
            "/_sim/portals/{id}/webhook-format",
            get(get_webhook_format).put(put_webhook_format),
        )
        .route(
            "/_sim/portals/{id}/rate-limit/reset",
            post(|State(st): St, Path(id): Path<u64>| async move {
                ok(st.reset_rate_limits(id).map(|_| json!({"reset": true})))
            }),
        )
        .route("/_sim/portals/{id}/changes", post(changes))
        .route("/_sim/portals/{id}/random-changes", post(random_changes))
        .route(
            "/_sim/portals/{id}/objects/{type}",
            get(list_objects).post(create_object),
        )
        .route("/_sim/portals/{id}/objects/{type}/merge", post(merge))
        .route(
            "/_sim/portals/{id}/objects/{type}/{oid}",
            get(get_object).patch(update_object).delete(delete_object),
        )
        .route(
            "/_sim/portals/{id}/objects/{type}/{oid}/restore",
            post(restore_object),
        )
        .route(
            "/_sim/portals/{id}/objects/{type}/{oid}/privacy-delete",
            post(privacy_delete),
        )
        .route("/_sim/portals/{id}/associations", post(associate))
        .route(
            "/_sim/portals/{id}/associations/{from}/{oid}/{to}",
            get(get_associations),
        )
        .route(
            "/_sim/portals/{id}/owners",
            get(|State(st): St, Path(id): Path<u64>| async move { ok(st.owners(id)) }),
        )
        .route(
            "/_sim/portals/{id}/properties/{type}",
            get(list_props).post(create_prop),
        )
        .route(
            "/_sim/portals/{id}/properties/{type}/{name}",
            axum::routing::delete(delete_prop),
        )
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NextPortal {
    portal_id: Option<u64>,
}

async fn next_portal(State(st): St, b: Bytes) -> Response {
    match body_or_empty::<NextPortal>(&b) {
        Ok(n) => {
            st.set_next_authorize_portal(n.portal_id);
            json(StatusCode::OK, &json!({"next_portal": n.portal_id}))
        }
        Err(r) => r,
    }
}

async fn clock(State(st): St) -> Response {
    let now = st.now_ms();
    json(
        StatusCode::OK,
        &json!({"now_ms": now, "now": iso_ms(now), "offset_ms": st.clock.offset_ms()}),
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Advance {
    seconds: f64,
    ms: i64,
}

async fn advance(State(st): St, b: Bytes) -> Response {
    match parse_body::<Advance>(&b) {
        Ok(a) => {
            st.clock.advance_ms((a.seconds * 1000.0) as i64 + a.ms);
            clock(State(st)).await
        }
        Err(r) => r,
    }
}

async fn events(State(st): St, RawQuery(raw): RawQuery) -> Response {
    let q = query_pairs(raw.as_deref());
    let portal = query_get(&q, "portal").and_then(|s| s.parse::<u64>().ok());
    let sub = query_get(&q, "type").map(str::to_string);
    let since = query_get(&q, "since_event_id")
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(0);
    let ev: Vec<_> = st
        .events()
        .into_iter()
        .filter(|e| portal.is_none_or(|p| e.portal_id == p))
        .filter(|e| sub.as_deref().is_none_or(|s| e.subscription_type == s))
        .filter(|e| e.event_id > since)
        .collect();
    json(StatusCode::OK, &json!({"total": ev.len(), "results": ev}))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Wait {
    timeout_ms: Option<u64>,
}

async fn wait_idle(State(st): St, b: Bytes) -> Response {
    match body_or_empty::<Wait>(&b) {
        Ok(w) => {
            let idle = st
                .wait_webhooks_idle(Duration::from_millis(w.timeout_ms.unwrap_or(10_000)))
                .await;
            json(
                StatusCode::OK,
                &json!({"idle": idle, "counters": st.counters()}),
            )
        }
        Err(r) => r,
    }
}

async fn list_portals(State(st): St) -> Response {
    let infos: Vec<_> = st
        .portal_ids()
        .into_iter()
        .filter_map(|id| st.portal_info(id).ok())
        .collect();
    json(StatusCode::OK, &json!({"results": infos}))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CreatePortal {
    portal_id: Option<u64>,
    install: bool,
    seed: Option<SeedSpec>,
    faults: Option<Faults>,
}

async fn create_portal(State(st): St, b: Bytes) -> Response {
    let req: CreatePortal = match body_or_empty(&b) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let run = || -> Result<Value, SimError> {
        let id = st.create_portal(req.portal_id)?;
        if let Some(s) = req.seed {
            st.seed_portal(id, s)?;
        }
        if let Some(f) = req.faults.clone() {
            st.set_faults(id, f)?;
        }
        let token = if req.install {
            Some(st.issue_token(id)?)
        } else {
            None
        };
        Ok(json!({"portal": st.portal_info(id)?, "token": token}))
    };
    match run() {
        Ok(v) => json(StatusCode::CREATED, &v),
        Err(e) => sim_err(e),
    }
}

async fn seed(State(st): St, Path(id): Path<u64>, b: Bytes) -> Response {
    match body_or_empty::<SeedSpec>(&b) {
        Ok(s) => {
            let st2 = st.clone();
            let r = tokio::task::spawn_blocking(move || st2.seed_portal(id, s)).await;
            match r {
                Ok(r) => ok(r.and_then(|_| st.portal_info(id))),
                Err(_) => hs_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "INTERNAL_ERROR",
                    "seeding failed",
                ),
            }
        }
        Err(r) => r,
    }
}

async fn get_faults(State(st): St, Path(id): Path<u64>) -> Response {
    ok(st.faults(id))
}

async fn put_faults(State(st): St, Path(id): Path<u64>, b: Bytes) -> Response {
    match parse_body::<Faults>(&b) {
        Ok(f) => ok(st.set_faults(id, f).and_then(|_| st.faults(id))),
        Err(r) => r,
    }
}

async fn patch_faults(State(st): St, Path(id): Path<u64>, b: Bytes) -> Response {
    let patch: Value = match parse_body(&b) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let cur = match st.faults(id) {
        Ok(f) => f,
        Err(e) => return sim_err(e),
    };
    match cur.patched(&patch) {
        Ok(f) => ok(st.set_faults(id, f).and_then(|_| st.faults(id))),
        Err(e) => bad_request(format!("invalid faults: {e}")),
    }
}

#[derive(Deserialize, Serialize)]
struct FormatBody {
    /// `classic`, `generic`, `mixed`; `null` = the configured default.
    format: Option<crate::config::WebhookFormat>,
}

async fn get_webhook_format(State(st): St, Path(id): Path<u64>) -> Response {
    match st.portal(id) {
        Ok(_) => json(
            StatusCode::OK,
            &FormatBody {
                format: Some(st.webhook_format(id)),
            },
        ),
        Err(e) => sim_err(e),
    }
}

async fn put_webhook_format(State(st): St, Path(id): Path<u64>, b: Bytes) -> Response {
    match parse_body::<FormatBody>(&b) {
        Ok(f) => match st.set_webhook_format(id, f.format) {
            Ok(()) => get_webhook_format(State(st), Path(id)).await,
            Err(e) => sim_err(e),
        },
        Err(r) => r,
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Consent {
    deny: bool,
    description: Option<String>,
}

async fn consent(State(st): St, Path(id): Path<u64>, b: Bytes) -> Response {
    match body_or_empty::<Consent>(&b) {
        Ok(c) => {
            let d = c.deny.then(|| {
                c.description
                    .unwrap_or_else(|| "The user denied access".into())
            });
            ok(st
                .set_consent_denied(id, d)
                .and_then(|_| st.portal_info(id)))
        }
        Err(r) => r,
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ChangesBody {
    Many {
        changes: Vec<Change>,
        #[serde(default)]
        change_source: Option<String>,
    },
    One(Change),
}

async fn changes(State(st): St, Path(id): Path<u64>, b: Bytes) -> Response {
    let (list, source) = match parse_body::<ChangesBody>(&b) {
        Ok(ChangesBody::Many {
            changes,
            change_source,
        }) => (changes, change_source),
        Ok(ChangesBody::One(c)) => (vec![c], None),
        Err(r) => return r,
    };
    let source = source.unwrap_or_else(|| "CRM_UI".into());
    let mut out = Vec::new();
    for c in list {
        match st.apply(id, c, &source) {
            Ok(o) => out.push(o),
            Err(e) => return sim_err(e),
        }
    }
    json(StatusCode::OK, &json!({"results": out}))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RandomReq {
    count: usize,
    seed: Option<u64>,
    types: Vec<ObjectType>,
}

async fn random_changes(State(st): St, Path(id): Path<u64>, b: Bytes) -> Response {
    match body_or_empty::<RandomReq>(&b) {
        Ok(r) => ok(st.random_changes(id, r.count, r.seed, &r.types)),
        Err(r) => r,
    }
}
