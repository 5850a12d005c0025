//! The `oauth-callback` function's routes in the local runner
//! (`/oauth/install`, `/oauth/callback`, `/oauth/disconnect`), with the
//! same handler code as the Lambda, and a client-side helper that walks
//! the browser's part of the flow (install link → HubSpot's authorize
//! redirect → callback) with reqwest.

use std::sync::Arc;

use anyhow::{Context, Result};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use hubsync_auth::KmsCipher;
use hubsync_hubspot::OAuthClient;
use hubsync_store::DynamoStore;
use oauth_callback::{OAuthService, Reply, SqsJobQueue};

/// The connect flow as the local runner runs it.
pub type LocalOAuth = OAuthService<DynamoStore, OAuthClient, KmsCipher, SqsJobQueue>;

/// The three routes, served by `service`.
pub fn routes(service: Arc<LocalOAuth>) -> Router {
    Router::new()
        .route("/oauth/install", get(handle))
        .route("/oauth/callback", get(handle))
        .route("/oauth/disconnect", post(handle))
        .with_state(service)
}

async fn handle(
    State(service): State<Arc<LocalOAuth>>,
    method: Method,
    uri: Uri,
    headers: axum::http::HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let cookie = headers
        .get(axum::http::header::COOKIE)
        .and_then(|v| v.to_str().ok());
    let reply = oauth_callback::respond(
        &service,
        method.as_str(),
        uri.path(),
        query.as_deref(),
        cookie,
        chrono::Utc::now().timestamp(),
    )
    .await;
    into_response(reply)
}

fn into_response(reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, reply.body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static(reply.content_type),
    );
    for (name, value) in Reply::COMMON_HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if let Some(location) = reply.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        headers.insert(axum::http::header::LOCATION, location);
    }
    if let Some(cookie) = reply
        .set_cookie
        .and_then(|c| HeaderValue::from_str(&c).ok())
    {
        headers.insert(axum::http::header::SET_COOKIE, cookie);
    }
    response
}

/// One request of a walked flow.
#[derive(Debug, Clone)]
pub struct Hop {
    pub url: String,
    pub status: u16,
    pub location: Option<String>,
}

/// The browser's walk through a flow: every request and the final page.
#[derive(Debug, Clone)]
pub struct FlowTrace {
    pub hops: Vec<Hop>,
    /// The last response's status and body.
    pub status: u16,
    pub body: String,
}

impl FlowTrace {
    /// The callback URL HubSpot redirected to, if the walk got there.
    pub fn callback_url(&self) -> Option<&str> {
        self.hops
            .iter()
            .map(|h| h.url.as_str())
            .find(|u| u.contains("/oauth/callback"))
    }
}

/// A browser for walking flows: it follows redirects by hand and keeps the
/// cookies the local runner sets (name → value; one host, so no domain
/// matching), sending them back like a browser would — `Secure` cookies
/// included, as a browser does for `localhost`.
#[derive(Debug, Default)]
pub struct Browser {
    cookies: std::sync::Mutex<std::collections::BTreeMap<String, String>>,
}

impl Browser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Follows `url` and its redirects (at most 5) with GET requests.
    pub async fn follow(&self, url: &str) -> Result<FlowTrace> {
        self.walk(url, |_| false).await
    }

    /// Follows `url` until the next hop would be a request matching
    /// `stop` (not sent); returns the walk so far.
    pub async fn follow_until(&self, url: &str, stop: impl Fn(&str) -> bool) -> Result<FlowTrace> {
        self.walk(url, stop).await
    }

    fn cookie_header(&self) -> Option<String> {
        let jar = self.cookies.lock().ok()?;
        (!jar.is_empty()).then(|| {
            jar.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    fn keep(&self, set_cookie: &str) {
        let Some((pair, attrs)) = set_cookie.split_once(';').or(Some((set_cookie, ""))) else {
            return;
        };
        let Some((name, value)) = pair.trim().split_once('=') else {
            return;
        };
        let expired = attrs
            .split(';')
            .any(|a| a.trim().eq_ignore_ascii_case("max-age=0"));
        if let Ok(mut jar) = self.cookies.lock() {
            if expired || value.is_empty() {
                jar.remove(name);
            } else {
                jar.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    async fn walk(&self, url: &str, stop: impl Fn(&str) -> bool) -> Result<FlowTrace> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("build the browser client")?;
        let mut hops: Vec<Hop> = Vec::new();
        let mut next = url.to_owned();
        for _ in 0..6 {
            let mut request = http.get(&next);
            if let Some(cookie) = self.cookie_header() {
                request = request.header(reqwest::header::COOKIE, cookie);
            }
            let resp = request
                .send()
                .await
                .with_context(|| format!("GET hop {}", hops.len() + 1))?;
            let status = resp.status().as_u16();
            for c in resp.headers().get_all(reqwest::header::SET_COOKIE) {
                if let Ok(c) = c.to_str() {
                    self.keep(c);
                }
            }
            let location = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = resp.text().await.unwrap_or_default();
            hops.push(Hop {
                url: next.clone(),
                status,
                location: location.clone(),
            });
            match (status, location) {
                (301 | 302 | 303 | 307 | 308, Some(loc)) if stop(&loc) => {
                    return Ok(FlowTrace { hops, status, body })
                }
                (301 | 302 | 303 | 307 | 308, Some(loc)) => next = loc,
                _ => return Ok(FlowTrace { hops, status, body }),
            }
        }
        anyhow::bail!("too many redirects ({} hops)", hops.len())
    }
}

/// Follows `url` and its redirects (at most 5) like a browser would, with
/// GET requests — a fresh browser, its cookies kept for the walk.
pub async fn follow(url: &str) -> Result<FlowTrace> {
    Browser::new().follow(url).await
}
