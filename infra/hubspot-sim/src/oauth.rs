//! OAuth: authorize (auto consent), token (v1 and date-versioned), token info,
//! introspection and revocation.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use rand::Rng;
use serde_json::json;

use crate::config::OAuthErrorShape;
use crate::crm::St;
use crate::http::{correlation_id, json, query_get, query_pairs, rate_limited, Policy};
use crate::state::{hub_domain, AuthCode, SimState};

fn oauth_error(status: &str, error: &str, message: &str) -> Response {
    json(
        StatusCode::BAD_REQUEST,
        &json!({
            "status": status,
            "message": message,
            "correlationId": correlation_id(),
            "error": error,
            "error_description": message,
        }),
    )
}

/// A refused grant (`invalid_grant`) in the configured body shape.
fn grant_error(st: &SimState, status: &str, message: &str) -> Response {
    let body = match st.config_read().oauth.error_shape {
        OAuthErrorShape::Combined => return oauth_error(status, "invalid_grant", message),
        OAuthErrorShape::InvalidGrant => json!({
            "error": "invalid_grant",
            "error_description": message,
        }),
        OAuthErrorShape::Status => json!({
            "status": status,
            "message": message,
            "correlationId": correlation_id(),
        }),
        OAuthErrorShape::Generic => json!({
            "category": "VALIDATION_ERROR",
            "subCategory": "INVALID_TOKEN",
            "message": message,
            "correlationId": correlation_id(),
            "context": {"invalidToken": ["The provided token is invalid or expired"]},
            "links": {"knowledge-base": "https://developers.hubspot.com/docs/api/oauth"},
        }),
    };
    json(StatusCode::BAD_REQUEST, &body)
}

fn redirect(location: &str) -> Response {
    let mut r = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

fn valid_version(v: &str) -> bool {
    v == "v1"
        || (v.len() == 7
            && v.as_bytes()[4] == b'-'
            && v.chars().filter(|c| c.is_ascii_digit()).count() == 6)
}

/// `GET /oauth/authorize` — the "user" consents at once (or denies, per portal).
pub(crate) async fn authorize(State(st): St, RawQuery(raw): RawQuery) -> Response {
    st.counters.request("GET /oauth/authorize", None);
    let q = query_pairs(raw.as_deref());
    let client_id = query_get(&q, "client_id").unwrap_or("");
    if client_id != st.config_read().app.client_id {
        return crate::http::bad_request("Invalid client_id: the app does not exist");
    }
    let Some(redirect_uri) = query_get(&q, "redirect_uri") else {
        return crate::http::bad_request("redirect_uri is required");
    };
    let Ok(mut url) = url::Url::parse(redirect_uri) else {
        return crate::http::bad_request("redirect_uri is not a valid URL");
    };
    let state_param = query_get(&q, "state");
    let Some(portal_id) = st.pick_authorize_portal() else {
        return crate::http::bad_request("the simulator has no portal to install into");
    };
    let Ok(portal) = st.portal(portal_id) else {
        return crate::http::bad_request(format!("portal {portal_id} does not exist"));
    };
    let denied = portal.read().consent_denied.clone();
    {
        let mut qp = url.query_pairs_mut();
        match &denied {
            Some(desc) => {
                qp.append_pair("error", "access_denied");
                qp.append_pair(
                    "error_description",
                    if desc.is_empty() {
                        "The user denied access"
                    } else {
                        desc
                    },
                );
            }
            None => {
                // The installing user may decline optional scopes.
                let optional = if st.config_read().oauth.decline_optional_scopes {
                    ""
                } else {
                    query_get(&q, "optional_scope").unwrap_or("")
                };
                let mut scopes: Vec<String> = query_get(&q, "scope")
                    .unwrap_or("")
                    .split([' ', '+'])
                    .chain(optional.split([' ', '+']))
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect();
                if scopes.is_empty() {
                    scopes = st.config_read().oauth.default_scopes.clone();
                }
                if !scopes.iter().any(|s| s == "oauth") {
                    scopes.insert(0, "oauth".into());
                }
                let code = {
                    let mut rng = st.rng_lock();
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
                };
                let lifetime = st.config_read().oauth.code_lifetime_secs as i64;
                st.tokens_lock().codes.insert(
                    code.clone(),
                    AuthCode {
                        portal: portal_id,
                        redirect_uri: redirect_uri.to_string(),
                        scopes,
                        expires_ms: st.now_ms() + lifetime * 1000,
                        used: false,
                    },
                );
                portal.write().installed = true;
                qp.append_pair("code", &code);
            }
        }
        if let Some(s) = state_param {
            qp.append_pair("state", s);
        }
    }
    redirect(url.as_str())
}

fn form(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn check_client(st: &SimState, f: &[(String, String)]) -> Result<(), Response> {
    let app = st.config_read().app.clone();
    if query_get(f, "client_id") != Some(app.client_id.as_str()) {
        return Err(oauth_error(
            "BAD_CLIENT_ID",
            "invalid_client",
            "missing or unknown client id",
        ));
    }
    if query_get(f, "client_secret") != Some(app.client_secret.as_str()) {
        return Err(oauth_error(
            "BAD_CLIENT_SECRET",
            "invalid_client",
            "missing or invalid client secret",
        ));
    }
    Ok(())
}

fn token_fault(st: &SimState, portal: u64) -> Option<Response> {
    let p = st.portal(portal).ok()?;
    let status = {
        let mut f = p.faults_lock();
        let status = if f.faults.token_error_status == 0 {
            503
        } else {
            f.faults.token_error_status
        };
        let hit = if f.faults.token_error_next > 0 {
            f.faults.token_error_next -= 1;
            true
        } else {
            let rate = f.faults.token_error_rate;
            rate > 0.0 && f.rng.random::<f64>() < rate
        };
        if !hit {
            return None;
        }
        status
    };
    st.counters.update(|c| c.token_errors_injected += 1);
    if status == 429 {
        st.counters.rate_limited("SECONDLY", portal);
        return Some(rate_limited(Policy::Search, 1, None, None));
    }
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    Some(crate::http::hs_error(
        code,
        "INTERNAL_ERROR",
        "token endpoint unavailable (injected by hubspot-sim)",
    ))
}

/// `POST /oauth/{version}/token`
pub(crate) async fn token(State(st): St, Path(version): Path<String>, body: Bytes) -> Response {
    if !valid_version(&version) {
        return crate::http::not_found("unknown OAuth version");
    }
    if let Err(r) = crate::versions::check(&st, &version) {
        return r;
    }
    let route = if version == "v1" {
        "POST /oauth/v1/token"
    } else {
        "POST /oauth/{version}/token"
    };
    let f = form(&body);
    let grant = query_get(&f, "grant_type").unwrap_or("").to_string();
    st.counters.request(route, None);
    st.counters.update(|c| {
        *c.token_calls
            .entry(if grant.is_empty() {
                "missing".into()
            } else {
                grant.clone()
            })
            .or_default() += 1
    });
    if let Err(r) = check_client(&st, &f) {
        return r;
    }
    let now = st.now_ms();
    match grant.as_str() {
        "authorization_code" => {
            let code = query_get(&f, "code").unwrap_or("").to_string();
            let redirect_uri = query_get(&f, "redirect_uri").unwrap_or("").to_string();
            let portal = st.tokens_lock().codes.get(&code).map(|c| c.portal);
            if let Some(p) = portal {
                if let Some(r) = token_fault(&st, p) {
                    return r;
                }
            }
            let (portal, scopes) = {
                let mut t = st.tokens_lock();
                let Some(c) = t.codes.get_mut(&code) else {
                    return grant_error(&st, "BAD_AUTH_CODE", "missing or invalid auth code");
                };
                if c.used || c.expires_ms <= now {
                    return grant_error(
                        &st,
                        "BAD_AUTH_CODE",
                        "auth code is expired or has already been used",
                    );
                }
                if c.redirect_uri != redirect_uri {
                    return grant_error(
                        &st,
                        "BAD_REDIRECT_URI",
                        "redirect_uri does not match initial auth code URI",
                    );
                }
                c.used = true;
                (c.portal, c.scopes.clone())
            };
            issue(&st, &version, portal, scopes, None)
        }
        "refresh_token" => {
            let rt = query_get(&f, "refresh_token").unwrap_or("").to_string();
            let found = st
                .tokens_lock()
                .refresh
                .get(&rt)
                .map(|r| (r.portal, r.scopes.clone()));
            let Some((portal, scopes)) = found else {
                return grant_error(&st, "BAD_REFRESH_TOKEN", "missing or invalid refresh token");
            };
            if let Some(r) = token_fault(&st, portal) {
                return r;
            }
            issue(&st, &version, portal, scopes, Some(rt))
        }
        // The app's own token (Webhooks Journal): date-versioned endpoint
        // only, no refresh token, no portal.
        "client_credentials" if version != "v1" => {
            let requested: Vec<String> = query_get(&f, "scope")
                .unwrap_or("")
                .split_whitespace()
                .map(str::to_owned)
                .collect();
            if requested.is_empty() {
                return oauth_error(
                    "BAD_SCOPE",
                    "invalid_scope",
                    "client_credentials needs a scope",
                );
            }
            if let Some(bad) = requested
                .iter()
                .find(|s| !crate::journal::JOURNAL_SCOPES.contains(&s.as_str()))
            {
                return oauth_error(
                    "BAD_SCOPE",
                    "invalid_scope",
                    &format!("scope {bad} cannot be granted to client credentials"),
                );
            }
            let (token, lifetime) = st.mint_app_token(requested.clone());
            json(
                StatusCode::OK,
                &json!({
                    "token_type": "bearer",
                    "token_use": "access",
                    "access_token": token,
                    "expires_in": lifetime,
                    "scopes": requested,
                }),
            )
        }
        _ => oauth_error(
            "BAD_GRANT_TYPE",
            "unsupported_grant_type",
            if version == "v1" {
                "grant_type must be authorization_code or refresh_token"
            } else {
                "grant_type must be authorization_code, refresh_token or client_credentials"
            },
        ),
    }
}

fn issue(
    st: &SimState,
    version: &str,
    portal: u64,
    scopes: Vec<String>,
    refresh: Option<String>,
) -> Response {
    // Date-versioned token responses carry the granted scopes; v1's do not.
    let granted = (version != "v1").then(|| scopes.clone());
    let t = st.mint_tokens(portal, scopes, refresh);
    let mut body = json!({
        "token_type": "bearer",
        "refresh_token": t.refresh_token,
        "access_token": t.access_token,
        "expires_in": t.expires_in,
    });
    if st.config_read().oauth.include_hub_id {
        body["hub_id"] = json!(portal);
        if let Some(scopes) = granted {
            body["scopes"] = json!(scopes);
        }
    }
    json(StatusCode::OK, &body)
}

/// `GET /oauth/v1/access-tokens/{token}`
pub(crate) async fn access_token_info(State(st): St, Path(token): Path<String>) -> Response {
    st.counters
        .request("GET /oauth/v1/access-tokens/{token}", None);
    if let Err(r) = crate::versions::check(&st, "v1") {
        return r;
    }
    let now = st.now_ms();
    let info = st
        .tokens_lock()
        .access
        .get(&token)
        .map(|a| (a.portal, a.expires_ms, a.scopes.clone(), a.user_id));
    let app_id = st.config_read().app.app_id;
    match info {
        Some((portal, exp, scopes, user_id)) if exp > now => json(
            StatusCode::OK,
            &json!({
                "token": token,
                "user": format!("admin@{}", hub_domain(portal)),
                "hub_domain": hub_domain(portal),
                "scopes": scopes,
                "hub_id": portal,
                "app_id": app_id,
                "expires_in": (exp - now) / 1000,
                "user_id": user_id,
                "token_type": "access",
            }),
        ),
        Some(_) => crate::http::hs_error(
            StatusCode::UNAUTHORIZED,
            "EXPIRED_AUTHENTICATION",
            "The OAuth token used to make this call expired.",
        ),
        None => crate::http::not_found("Token not found"),
    }
}

/// `GET /oauth/v1/refresh-tokens/{token}`
pub(crate) async fn refresh_token_info(State(st): St, Path(token): Path<String>) -> Response {
    st.counters
        .request("GET /oauth/v1/refresh-tokens/{token}", None);
    if let Err(r) = crate::versions::check(&st, "v1") {
        return r;
    }
    let info = st
        .tokens_lock()
        .refresh
        .get(&token)
        .map(|r| (r.portal, r.scopes.clone(), r.user_id));
    let app = st.config_read().app.clone();
    match info {
        Some((portal, scopes, user_id)) => json(
            StatusCode::OK,
            &json!({
                "token": token,
                "user": format!("admin@{}", hub_domain(portal)),
                "hub_domain": hub_domain(portal),
                "scopes": scopes,
                "hub_id": portal,
                "client_id": app.client_id,
                "user_id": user_id,
                "token_type": "refresh",
            }),
        ),
        None => crate::http::not_found("Token not found"),
    }
}

/// `DELETE /oauth/v1/refresh-tokens/{token}`
pub(crate) async fn delete_refresh_token(State(st): St, Path(token): Path<String>) -> Response {
    st.counters
        .request("DELETE /oauth/v1/refresh-tokens/{token}", None);
    if let Err(r) = crate::versions::check(&st, "v1") {
        return r;
    }
    if st.revoke_refresh_token(&token) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        crate::http::not_found("Token not found")
    }
}

/// `POST /oauth/{version}/token/introspect`
pub(crate) async fn introspect(
    State(st): St,
    Path(version): Path<String>,
    body: Bytes,
) -> Response {
    if !valid_version(&version) {
        return crate::http::not_found("unknown OAuth version");
    }
    if let Err(r) = crate::versions::check(&st, &version) {
        return r;
    }
    st.counters
        .request("POST /oauth/{version}/token/introspect", None);
    let f = form(&body);
    if let Err(r) = check_client(&st, &f) {
        return r;
    }
    let token = query_get(&f, "token").unwrap_or("").to_string();
    let now = st.now_ms();
    let app_id = st.config_read().app.app_id;
    let t = st.tokens_lock();
    if let Some(a) = t.access.get(&token) {
        if a.expires_ms > now {
            return json(
                StatusCode::OK,
                &json!({
                    "active": true,
                    "hub_id": a.portal,
                    "app_id": app_id,
                    "user_id": a.user_id,
                    "scopes": a.scopes,
                    "expires_in": (a.expires_ms - now) / 1000,
                    "token_type": "access_token",
                }),
            );
        }
    }
    if let Some(r) = t.refresh.get(&token) {
        return json(
            StatusCode::OK,
            &json!({
                "active": true,
                "hub_id": r.portal,
                "app_id": app_id,
                "user_id": r.user_id,
                "scopes": r.scopes,
                "token_type": "refresh_token",
            }),
        );
    }
    json(StatusCode::OK, &json!({"active": false}))
}

/// `POST /oauth/{version}/token/revoke` (RFC 7009: 200 even for unknown tokens).
pub(crate) async fn revoke(State(st): St, Path(version): Path<String>, body: Bytes) -> Response {
    if !valid_version(&version) {
        return crate::http::not_found("unknown OAuth version");
    }
    if let Err(r) = crate::versions::check(&st, &version) {
        return r;
    }
    st.counters
        .request("POST /oauth/{version}/token/revoke", None);
    let f = form(&body);
    if let Err(r) = check_client(&st, &f) {
        return r;
    }
    let token = query_get(&f, "token").unwrap_or("").to_string();
    let mut t = st.tokens_lock();
    t.refresh.remove(&token);
    t.access.remove(&token);
    json(StatusCode::OK, &json!({}))
}
