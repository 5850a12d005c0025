//! HTTP helpers: HubSpot-style bodies, query parsing, the auth / fault / rate-limit gate.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use rand::Rng;
use serde::Serialize;

use crate::ratelimit::Verdict;
use crate::state::{Portal, SimState, TokenCheck};

pub(crate) fn correlation_id() -> String {
    let mut rng = rand::rng();
    let b: [u8; 16] = rng.random();
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

pub(crate) fn json<T: Serialize>(status: StatusCode, v: &T) -> Response {
    match serde_json::to_vec(v) {
        Ok(b) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json;charset=utf-8"),
            )],
            b,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// `{"status":"error","message":…,"correlationId":…,"category":…}`
pub(crate) fn hs_error(status: StatusCode, category: &str, message: impl Into<String>) -> Response {
    json(
        status,
        &serde_json::json!({
            "status": "error",
            "message": message.into(),
            "correlationId": correlation_id(),
            "category": category,
        }),
    )
}

pub(crate) fn bad_request(message: impl Into<String>) -> Response {
    hs_error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", message)
}

pub(crate) fn not_found(message: impl Into<String>) -> Response {
    hs_error(StatusCode::NOT_FOUND, "OBJECT_NOT_FOUND", message)
}

/// Query pairs, percent-decoded, repeated keys kept.
pub(crate) fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub(crate) fn query_get<'a>(q: &'a [(String, String)], key: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// `properties=a,b&properties=c` → `[a, b, c]`.
pub(crate) fn query_list(q: &[(String, String)], key: &str) -> Vec<String> {
    q.iter()
        .filter(|(k, _)| k == key)
        .flat_map(|(_, v)| v.split(','))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

pub(crate) fn query_bool(q: &[(String, String)], key: &str) -> Result<bool, Response> {
    match query_get(q, key) {
        None => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("false") || v.is_empty() => Ok(false),
        Some(v) => Err(bad_request(format!("Invalid boolean value for {key}: {v}"))),
    }
}

/// Parses a JSON body; malformed → HubSpot-style 400.
pub(crate) fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Response> {
    serde_json::from_slice(body).map_err(|e| {
        bad_request(format!(
            "Invalid input JSON on line {}, column {}: {}",
            e.line(),
            e.column(),
            e
        ))
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Policy {
    TenSecondly,
    Search,
}

/// A request that passed auth, faults and rate limits.
pub(crate) struct Gate {
    pub portal: Arc<Portal>,
    rl_headers: Option<(u64, u32, u32)>,
}

impl Gate {
    /// Adds the rate-limit headers (non-search responses).
    pub fn finish(self, mut resp: Response) -> Response {
        if let Some((interval, max, remaining)) = self.rl_headers {
            add_rl_headers(resp.headers_mut(), interval, max, remaining);
        }
        resp
    }
}

fn add_rl_headers(h: &mut HeaderMap, interval: u64, max: u32, remaining: u32) {
    h.insert(
        "X-HubSpot-RateLimit-Interval-Milliseconds",
        HeaderValue::from(interval),
    );
    h.insert("X-HubSpot-RateLimit-Max", HeaderValue::from(max));
    h.insert(
        "X-HubSpot-RateLimit-Remaining",
        HeaderValue::from(remaining),
    );
}

/// HubSpot's 429. `group` is the limit's group (`groupName`: the app and
/// the installing account), when the limit is per portal.
pub(crate) fn rate_limited(
    policy: Policy,
    retry_after: u64,
    rl: Option<(u64, u32)>,
    group: Option<String>,
) -> Response {
    let (name, msg) = match policy {
        Policy::TenSecondly => (
            "TEN_SECONDLY_ROLLING",
            "You have reached your ten_secondly_rolling limit.",
        ),
        Policy::Search => ("SECONDLY", "You have reached your secondly limit."),
    };
    let mut body = serde_json::json!({
        "status": "error",
        "message": msg,
        "errorType": "RATE_LIMIT",
        "correlationId": correlation_id(),
        "policyName": name,
    });
    if let Some(g) = group {
        body["groupName"] = serde_json::Value::String(g);
    }
    let mut r = json(StatusCode::TOO_MANY_REQUESTS, &body);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    if let Some((interval, max)) = rl {
        add_rl_headers(r.headers_mut(), interval, max, 0);
    }
    r
}

/// The `groupName` of a portal's limits: one budget per app and
/// installing account.
fn limit_group(st: &SimState, portal: u64) -> String {
    format!("publicapi:oauth:{}:{portal}", st.config_read().app.app_id)
}

fn unauthorized(st: &SimState, category: &str, msg: String) -> Response {
    st.counters.update(|c| c.auth_failures += 1);
    hs_error(StatusCode::UNAUTHORIZED, category, msg)
}

const NO_CREDS: &str = "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview";

pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, tok) = v.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") && !tok.trim().is_empty() {
        Some(tok.trim())
    } else {
        None
    }
}

/// The scope a read of `ty` (a path segment) needs; `None` for an unknown
/// type (the handler answers 400 for it).
pub(crate) fn read_scope(ty: &str) -> Option<String> {
    crate::model::ObjectType::parse(ty).map(|t| format!("crm.objects.{}.read", t.plural()))
}

/// HubSpot's 403 for a token without a scope the call needs.
fn missing_scopes(st: &SimState, portal: u64, required: &[String]) -> Response {
    st.counters.update(|c| c.missing_scope += 1);
    tracing::debug!(portal, ?required, "missing scopes");
    json(
        StatusCode::FORBIDDEN,
        &serde_json::json!({
            "status": "error",
            "message": "This app hasn't been granted all required scopes to make this call. Read more about required scopes here: https://developers.hubspot.com/scopes.",
            "correlationId": correlation_id(),
            "errors": [{
                "message": "One or more of the following scopes are required.",
                "context": {"requiredGranularScopes": required},
            }],
            "links": {"scopes": "https://developers.hubspot.com/scopes"},
            "category": "MISSING_SCOPES",
        }),
    )
}

/// Version → auth → scopes → counters → latency → forced 429 → rate limit
/// → injected 5xx. `scopes` are all required (HubSpot's granular scopes).
pub(crate) async fn gate(
    st: &Arc<SimState>,
    headers: &HeaderMap,
    route: &'static str,
    policy: Policy,
    scopes: &[Option<String>],
) -> Result<Gate, Response> {
    crate::versions::check(st, crate::versions::crm_version(headers))?;
    let Some(token) = bearer(headers) else {
        st.counters.request(route, None);
        return Err(unauthorized(
            st,
            "INVALID_AUTHENTICATION",
            NO_CREDS.to_string(),
        ));
    };
    let (portal_id, granted) = match st.check_access_token(token) {
        TokenCheck::Valid { portal, scopes } => (portal, scopes),
        TokenCheck::Expired { ago_ms } => {
            st.counters.request(route, None);
            let ago = chrono::Duration::milliseconds(ago_ms);
            return Err(unauthorized(
                st,
                "EXPIRED_AUTHENTICATION",
                format!(
                    "The OAuth token used to make this call expired {} second(s) ago.",
                    ago.num_seconds()
                ),
            ));
        }
        TokenCheck::Invalid => {
            st.counters.request(route, None);
            return Err(unauthorized(
                st,
                "INVALID_AUTHENTICATION",
                NO_CREDS.to_string(),
            ));
        }
    };
    let portal = match st.portal(portal_id) {
        Ok(p) => p,
        Err(_) => {
            st.counters.request(route, None);
            return Err(unauthorized(
                st,
                "INVALID_AUTHENTICATION",
                NO_CREDS.to_string(),
            ));
        }
    };
    st.counters.request(route, Some(portal_id));
    if st.config_read().enforce_scopes {
        let missing: Vec<String> = scopes
            .iter()
            .flatten()
            .filter(|s| !granted.contains(s))
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Err(missing_scopes(st, portal_id, &missing));
        }
    }
    let (latency, forced, injected) = {
        let mut f = portal.faults_lock();
        let latency = f.faults.api_latency_ms;
        let forced = if f.faults.force_429_next > 0 {
            f.faults.force_429_next -= 1;
            true
        } else {
            false
        };
        let rate = f.faults.api_error_rate;
        let status = if f.faults.api_error_status == 0 {
            500
        } else {
            f.faults.api_error_status
        };
        let injected = (rate > 0.0 && f.rng.random::<f64>() < rate).then_some(status);
        (latency, forced, injected)
    };
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    let rl = st.config_read().rate_limit.clone();
    let rl_hdr =
        (policy == Policy::TenSecondly && rl.enabled).then_some((rl.window_ms, rl.max_requests));
    if forced {
        st.counters.update(|c| c.injected_429 += 1);
        st.counters.rate_limited("TEN_SECONDLY_ROLLING", portal_id);
        return Err(rate_limited(
            Policy::TenSecondly,
            1,
            rl_hdr,
            Some(limit_group(st, portal_id)),
        ));
    }
    let mut remaining = rl.max_requests;
    if rl.enabled {
        let verdict = {
            let mut l = portal.limiter_lock();
            let now = Instant::now();
            match policy {
                Policy::TenSecondly => l.ten_secondly.check(
                    now,
                    Duration::from_millis(rl.window_ms.max(1)),
                    rl.max_requests,
                ),
                Policy::Search => l
                    .search
                    .check(now, Duration::from_secs(1), rl.search_per_second),
            }
        };
        match verdict {
            Verdict::Allowed { remaining: r } => remaining = r,
            Verdict::Limited { retry_after_secs } => {
                let name = match policy {
                    Policy::TenSecondly => "TEN_SECONDLY_ROLLING",
                    Policy::Search => "SECONDLY",
                };
                st.counters.rate_limited(name, portal_id);
                tracing::debug!(portal = portal_id, policy = name, route, "rate limited");
                return Err(rate_limited(
                    policy,
                    retry_after_secs,
                    rl_hdr,
                    Some(limit_group(st, portal_id)),
                ));
            }
        }
    }
    if let Some(status) = injected {
        st.counters.update(|c| c.injected_errors += 1);
        tracing::debug!(portal = portal_id, status, route, "injected API error");
        let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut r = hs_error(
            code,
            "INTERNAL_ERROR",
            "internal error (injected by hubspot-sim)",
        );
        if let Some((interval, max)) = rl_hdr {
            add_rl_headers(r.headers_mut(), interval, max, remaining);
        }
        return Err(r);
    }
    Ok(Gate {
        portal,
        rl_headers: rl_hdr.map(|(i, m)| (i, m, remaining)),
    })
}
