//! The Webhooks Journal's HTTP surface: subscriptions, reads and the
//! pre-signed file downloads. Every call is counted in
//! `journal_requests`, never against a portal's CRM budget.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::Router;
use serde::Deserialize;
use std::sync::Arc;

use super::{sign_file_url, JournalSubscription, Position, ReadMiss};
use crate::clock::iso_ms;
use crate::crm::St;
use crate::http::{
    bad_request, bearer, hs_error, json, not_found, parse_body, query_get, query_pairs,
};
use crate::model::ObjectType;
use crate::state::SimState;

/// The versions the journal answers on (`2027-03-beta` has the same shapes).
const VERSIONS: [&str; 2] = ["2026-03", "2027-03-beta"];
pub(super) const READ_SCOPE: &str = "developer.webhooks_journal.read";
const SUBSCRIPTIONS_READ: &str = "developer.webhooks_journal.subscriptions.read";
const SUBSCRIPTIONS_WRITE: &str = "developer.webhooks_journal.subscriptions.write";

pub(crate) fn router() -> Router<Arc<SimState>> {
    Router::new()
        .route(
            "/webhooks-journal/subscriptions/{version}",
            get(list_subscriptions).post(create_subscription),
        )
        .route(
            "/webhooks-journal/subscriptions/{version}/{id}",
            get(get_subscription).delete(delete_subscription),
        )
        .route(
            "/webhooks-journal/subscriptions/{version}/portals/{portal}",
            delete(delete_portal_subscriptions),
        )
        .route(
            "/webhooks-journal/{journal}/{version}/earliest",
            get(earliest),
        )
        .route("/webhooks-journal/{journal}/{version}/latest", get(latest))
        .route(
            "/webhooks-journal/{journal}/{version}/offset/{offset}/next",
            get(next),
        )
        .route("/_journal/files/{seq}", get(file))
}

/// Version, then the app's client-credentials token with `scope`.
pub(super) fn authorize(
    st: &SimState,
    headers: &HeaderMap,
    version: &str,
    scope: &str,
    route: &str,
) -> Result<(), Response> {
    st.counters.journal_request(route);
    if !VERSIONS.contains(&version) {
        return Err(not_found(format!(
            "no Webhooks Journal API version {version}"
        )));
    }
    let Some(token) = bearer(headers) else {
        st.counters.update(|c| c.auth_failures += 1);
        return Err(hs_error(
            StatusCode::UNAUTHORIZED,
            "INVALID_AUTHENTICATION",
            "Authentication credentials not found. The Webhooks Journal needs a client credentials token.",
        ));
    };
    let scopes = st.check_app_token(token).map_err(|why| {
        st.counters.update(|c| c.auth_failures += 1);
        hs_error(StatusCode::UNAUTHORIZED, "INVALID_AUTHENTICATION", why)
    })?;
    if !scopes.iter().any(|s| s == scope) {
        st.counters.update(|c| c.missing_scope += 1);
        return Err(json(
            StatusCode::FORBIDDEN,
            &serde_json::json!({
                "status": "error",
                "message": "This app hasn't been granted all required scopes to make this call.",
                "correlationId": crate::http::correlation_id(),
                "errors": [{"message": "One or more of the following scopes are required.",
                            "context": {"requiredGranularScopes": [scope]}}],
                "category": "MISSING_SCOPES",
            }),
        ));
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateSubscription {
    subscription_type: String,
    portal_id: Option<u64>,
    object_type_id: Option<String>,
    #[serde(default)]
    actions: Vec<String>,
    properties: Option<Vec<String>>,
    object_ids: Option<Vec<u64>>,
    associated_object_type_ids: Option<Vec<String>>,
    list_ids: Option<Vec<u64>>,
    event_type_id: Option<String>,
}

/// The actions each subscription type allows.
fn allowed_actions(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "OBJECT" => &["CREATE", "UPDATE", "DELETE", "MERGE", "RESTORE", "SNAPSHOT"],
        "ASSOCIATION" => &["ASSOCIATION_ADDED", "ASSOCIATION_REMOVED"],
        "LIST_MEMBERSHIP" => &["ADDED_TO_LIST", "REMOVED_FROM_LIST"],
        "APP_LIFECYCLE_EVENT" => &["APP_INSTALL", "APP_UNINSTALL"],
        "GDPR_PRIVACY_DELETION" => &["GDPR_DELETE"],
        _ => return None,
    })
}

fn validate(st: &SimState, b: &CreateSubscription) -> Result<(), String> {
    let allowed = allowed_actions(&b.subscription_type).ok_or_else(|| {
        format!(
            "subscriptionType {} is not one of OBJECT, ASSOCIATION, LIST_MEMBERSHIP, APP_LIFECYCLE_EVENT, GDPR_PRIVACY_DELETION",
            b.subscription_type
        )
    })?;
    if b.actions.is_empty() {
        return Err("actions must not be empty".into());
    }
    if let Some(bad) = b.actions.iter().find(|a| !allowed.contains(&a.as_str())) {
        return Err(format!(
            "action {bad} is not valid for a {} subscription",
            b.subscription_type
        ));
    }
    let needs_portal = b.subscription_type != "APP_LIFECYCLE_EVENT";
    match b.portal_id {
        Some(p) if st.portal(p).is_err() => {
            return Err(format!("the app is not installed in portal {p}"))
        }
        None if needs_portal => return Err("portalId is required".into()),
        _ => {}
    }
    if matches!(b.subscription_type.as_str(), "OBJECT" | "ASSOCIATION") {
        let ty = b
            .object_type_id
            .as_deref()
            .ok_or("objectTypeId is required")?;
        if ObjectType::parse(ty).is_none() {
            return Err(format!("objectTypeId {ty} is not supported"));
        }
    }
    if b.subscription_type == "LIST_MEMBERSHIP" && b.list_ids.as_ref().is_none_or(|l| l.is_empty())
    {
        return Err("listIds must name at least one list".into());
    }
    Ok(())
}

async fn create_subscription(
    State(st): St,
    Path(version): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let route = "POST /webhooks-journal/subscriptions/{version}";
    if let Err(r) = authorize(&st, &headers, &version, SUBSCRIPTIONS_WRITE, route) {
        return r;
    }
    let b: CreateSubscription = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    if let Err(msg) = validate(&st, &b) {
        return bad_request(msg);
    }
    let now = iso_ms(st.now_ms());
    let app_id = st.config_read().app.app_id;
    let sub = {
        let mut j = st.journal_lock();
        j.next_subscription_id += 1;
        let sub = JournalSubscription {
            id: j.next_subscription_id,
            app_id,
            subscription_type: b.subscription_type,
            portal_id: b.portal_id,
            object_type_id: b
                .object_type_id
                .as_deref()
                .and_then(ObjectType::parse)
                .map(|t| t.object_type_id().to_owned()),
            actions: b.actions,
            properties: b.properties,
            object_ids: b.object_ids,
            associated_object_type_ids: b.associated_object_type_ids,
            list_ids: b.list_ids,
            event_type_id: b.event_type_id,
            created_at: now.clone(),
            updated_at: now,
        };
        j.subscriptions.insert(sub.id, sub.clone());
        sub
    };
    json(StatusCode::CREATED, &sub)
}

async fn list_subscriptions(
    State(st): St,
    Path(version): Path<String>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let route = "GET /webhooks-journal/subscriptions/{version}";
    if let Err(r) = authorize(&st, &headers, &version, SUBSCRIPTIONS_READ, route) {
        return r;
    }
    let q = query_pairs(q.as_deref());
    let portal = match query_get(&q, "portalId").map(str::parse::<u64>) {
        None => None,
        Some(Ok(p)) => Some(p),
        Some(Err(_)) => return bad_request("portalId must be a number"),
    };
    let results: Vec<JournalSubscription> = st
        .journal_lock()
        .subscriptions
        .values()
        .filter(|s| portal.is_none() || s.portal_id == portal)
        .cloned()
        .collect();
    json(StatusCode::OK, &serde_json::json!({ "results": results }))
}

async fn get_subscription(
    State(st): St,
    Path((version, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let route = "GET /webhooks-journal/subscriptions/{version}/{id}";
    if let Err(r) = authorize(&st, &headers, &version, SUBSCRIPTIONS_READ, route) {
        return r;
    }
    let found = id
        .parse::<u64>()
        .ok()
        .and_then(|id| st.journal_lock().subscriptions.get(&id).cloned());
    match found {
        Some(s) => json(StatusCode::OK, &s),
        None => not_found(format!("no subscription {id}")),
    }
}

async fn delete_subscription(
    State(st): St,
    Path((version, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let route = "DELETE /webhooks-journal/subscriptions/{version}/{id}";
    if let Err(r) = authorize(&st, &headers, &version, SUBSCRIPTIONS_WRITE, route) {
        return r;
    }
    let removed = id
        .parse::<u64>()
        .ok()
        .and_then(|id| st.journal_lock().subscriptions.remove(&id));
    match removed {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => not_found(format!("no subscription {id}")),
    }
}

async fn delete_portal_subscriptions(
    State(st): St,
    Path((version, portal)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let route = "DELETE /webhooks-journal/subscriptions/{version}/portals/{portalId}";
    if let Err(r) = authorize(&st, &headers, &version, SUBSCRIPTIONS_WRITE, route) {
        return r;
    }
    let Ok(portal) = portal.parse::<u64>() else {
        return bad_request("portalId must be a number");
    };
    st.journal_lock()
        .subscriptions
        .retain(|_, s| s.portal_id != Some(portal));
    StatusCode::NO_CONTENT.into_response()
}

/// The journal a read may see: the caller needs the read scope, and the
/// path names the global journal (`None`) or one local to
/// `installPortalId`.
pub(super) fn readable_journal(
    st: &SimState,
    headers: &HeaderMap,
    (journal, version): (&str, &str),
    q: Option<&str>,
    route: &str,
) -> Result<Option<u64>, Response> {
    authorize(st, headers, version, READ_SCOPE, route)?;
    which_journal(journal, q)
}

/// The journal a path names: global (`None`) or local to `installPortalId`.
fn which_journal(journal: &str, q: Option<&str>) -> Result<Option<u64>, Response> {
    match journal {
        "journal" => Ok(None),
        "journal-local" => {
            let q = query_pairs(q);
            match query_get(&q, "installPortalId") {
                None => Ok(None),
                Some(p) => p
                    .parse::<u64>()
                    .map(Some)
                    .map_err(|_| bad_request("installPortalId must be a number")),
            }
        }
        _ => Err(not_found("resource not found")),
    }
}

fn read(
    st: &SimState,
    headers: &HeaderMap,
    (journal, version): (&str, &str),
    q: Option<&str>,
    at: Position<'_>,
    route: &str,
) -> Response {
    let portal = match readable_journal(st, headers, (journal, version), q, route) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let now = st.now_ms();
    let mut j = st.journal_lock();
    match j.read(at, portal, now) {
        Ok(file) => {
            let file = file.clone();
            drop(j);
            json(StatusCode::OK, &st.journal_pointer(&file, portal))
        }
        Err(ReadMiss::Empty) => StatusCode::NO_CONTENT.into_response(),
        Err(ReadMiss::UnknownOffset) => not_found(
            "The offset has expired (older than the journal's retention) or does not exist",
        ),
    }
}

async fn earliest(
    State(st): St,
    Path((journal, version)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let route = "GET /webhooks-journal/{journal}/{version}/earliest";
    read(
        &st,
        &headers,
        (&journal, &version),
        q.as_deref(),
        Position::Earliest,
        route,
    )
}

async fn latest(
    State(st): St,
    Path((journal, version)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let route = "GET /webhooks-journal/{journal}/{version}/latest";
    read(
        &st,
        &headers,
        (&journal, &version),
        q.as_deref(),
        Position::Latest,
        route,
    )
}

async fn next(
    State(st): St,
    Path((journal, version, offset)): Path<(String, String, String)>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let route = "GET /webhooks-journal/{journal}/{version}/offset/{offset}/next";
    read(
        &st,
        &headers,
        (&journal, &version),
        q.as_deref(),
        Position::After(&offset),
        route,
    )
}

/// S3's answer for a bad pre-signed URL.
fn s3_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        [("content-type", "application/xml")],
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>"),
    )
        .into_response()
}

/// `GET` of a pre-signed file URL (no auth header; the signature is it).
async fn file(State(st): St, Path(seq): Path<String>, RawQuery(q): RawQuery) -> Response {
    st.counters.journal_request("GET /_journal/files/{seq}");
    let q = query_pairs(q.as_deref());
    let num = |k: &str| query_get(&q, k).and_then(|v| v.parse::<i64>().ok());
    let (Ok(seq), Some(portal), Some(expires)) =
        (seq.parse::<u64>(), num("portal"), num("expires"))
    else {
        return s3_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "Malformed pre-signed URL",
        );
    };
    let secret = st.config_read().app.client_secret.clone();
    let expected = sign_file_url(&secret, seq, portal as u64, expires);
    if query_get(&q, "signature") != Some(expected.as_str()) {
        return s3_error(
            StatusCode::FORBIDDEN,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        );
    }
    if st.now_ms() > expires {
        return s3_error(StatusCode::FORBIDDEN, "AccessDenied", "Request has expired");
    }
    let j = st.journal_lock();
    let Some(f) = j.file(seq) else {
        return s3_error(
            StatusCode::NOT_FOUND,
            "NoSuchKey",
            "The specified key does not exist.",
        );
    };
    let events: Vec<_> = f
        .events
        .iter()
        .filter(|e| portal == 0 || e.portal_id == portal as u64)
        .cloned()
        .collect();
    json(
        StatusCode::OK,
        &serde_json::json!({
            "offset": f.offset,
            "journalEvents": events,
            "publishedAt": iso_ms(f.published_ms),
        }),
    )
}
