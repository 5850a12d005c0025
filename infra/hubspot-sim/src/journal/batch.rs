//! The Webhooks Journal's batch reads: up to 100 file pointers per call —
//! the earliest, the latest, those after an offset, or the files at given
//! offsets. The answer is HubSpot's batch response (`status`, `results`,
//! `startedAt`, `completedAt`; for `batch/read`, `errors` and `numErrors`
//! with a 207 when some offsets are not retained).

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use super::http::readable_journal;
use super::{Position, ReadMiss};
use crate::clock::iso_ms;
use crate::crm::St;
use crate::http::{bad_request, correlation_id, json, not_found, parse_body};
use crate::state::SimState;

/// HubSpot's bound on a batch's size.
pub const MAX_BATCH: usize = 100;

pub(crate) fn router() -> Router<Arc<SimState>> {
    Router::new()
        .route(
            "/webhooks-journal/{journal}/{version}/batch/earliest/{count}",
            get(earliest),
        )
        .route(
            "/webhooks-journal/{journal}/{version}/batch/latest/{count}",
            get(latest),
        )
        .route(
            "/webhooks-journal/{journal}/{version}/batch/{offset}/next/{count}",
            get(next),
        )
        .route(
            "/webhooks-journal/{journal}/{version}/batch/read",
            post(read_offsets),
        )
}

fn count_of(raw: &str) -> Result<usize, Response> {
    match raw.parse::<usize>() {
        Ok(n) if (1..=MAX_BATCH).contains(&n) => Ok(n),
        _ => Err(bad_request(format!(
            "count must be a number from 1 to {MAX_BATCH}, got {raw}"
        ))),
    }
}

/// HubSpot's batch envelope around `results`.
fn envelope(
    st: &SimState,
    started_ms: i64,
    results: Vec<super::JournalPointer>,
) -> serde_json::Value {
    let now = iso_ms(st.now_ms());
    serde_json::json!({
        "status": "COMPLETE",
        "results": results,
        "requestedAt": iso_ms(started_ms),
        "startedAt": iso_ms(started_ms),
        "completedAt": now,
    })
}

fn batch(
    st: &SimState,
    headers: &HeaderMap,
    (journal, version): (&str, &str),
    q: Option<&str>,
    (at, count): (Position<'_>, &str),
    route: &str,
) -> Response {
    let portal = match readable_journal(st, headers, (journal, version), q, route) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let count = match count_of(count) {
        Ok(n) => n,
        Err(r) => return r,
    };
    let started = st.now_ms();
    let files = st.journal_lock().read_many(at, portal, started, count);
    match files {
        Ok(files) => {
            let results = files
                .iter()
                .map(|f| st.journal_pointer(f, portal))
                .collect();
            json(StatusCode::OK, &envelope(st, started, results))
        }
        Err(ReadMiss::UnknownOffset) | Err(ReadMiss::Empty) => not_found(
            "The offset has expired (older than the journal's retention) or does not exist",
        ),
    }
}

async fn earliest(
    State(st): St,
    Path((journal, version, count)): Path<(String, String, String)>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let route = "GET /webhooks-journal/{journal}/{version}/batch/earliest/{count}";
    let at = (Position::Earliest, count.as_str());
    batch(&st, &headers, (&journal, &version), q.as_deref(), at, route)
}

async fn latest(
    State(st): St,
    Path((journal, version, count)): Path<(String, String, String)>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let route = "GET /webhooks-journal/{journal}/{version}/batch/latest/{count}";
    let at = (Position::Latest, count.as_str());
    batch(&st, &headers, (&journal, &version), q.as_deref(), at, route)
}

async fn next(
    State(st): St,
    Path((journal, version, offset, count)): Path<(String, String, String, String)>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let route = "GET /webhooks-journal/{journal}/{version}/batch/{offset}/next/{count}";
    let at = (Position::After(&offset), count.as_str());
    batch(&st, &headers, (&journal, &version), q.as_deref(), at, route)
}

#[derive(Debug, Deserialize)]
struct ReadOffsets {
    inputs: Vec<String>,
}

async fn read_offsets(
    State(st): St,
    Path((journal, version)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: axum::body::Bytes,
) -> Response {
    let route = "POST /webhooks-journal/{journal}/{version}/batch/read";
    let portal = match readable_journal(&st, &headers, (&journal, &version), q.as_deref(), route) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let b: ReadOffsets = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    if b.inputs.is_empty() || b.inputs.len() > MAX_BATCH {
        return bad_request(format!(
            "inputs must hold 1 to {MAX_BATCH} offsets, got {}",
            b.inputs.len()
        ));
    }
    let started = st.now_ms();
    let (found, missing): (Vec<_>, Vec<String>) = {
        let mut j = st.journal_lock();
        j.refresh(started);
        let mut found = Vec::new();
        let mut missing = Vec::new();
        for offset in &b.inputs {
            match j.at_offset(offset) {
                Some(f) => found.push(f.clone()),
                None => missing.push(offset.clone()),
            }
        }
        (found, missing)
    };
    let results = found
        .iter()
        .map(|f| st.journal_pointer(f, portal))
        .collect();
    let mut body = envelope(&st, started, results);
    if missing.is_empty() {
        return json(StatusCode::OK, &body);
    }
    body["numErrors"] = serde_json::json!(missing.len());
    body["errors"] = serde_json::json!(missing
        .iter()
        .map(|o| serde_json::json!({
            "status": "error",
            "category": "OBJECT_NOT_FOUND",
            "message": format!("No journal entry at offset {o} (expired or never existed)"),
            "context": {"offset": [o]},
            "id": correlation_id(),
        }))
        .collect::<Vec<_>>());
    json(StatusCode::MULTI_STATUS, &body)
}
