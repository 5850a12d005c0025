//! The `admin-api` function's routes in the local runner (`/v1/*`), with
//! the same handler code as the Lambda, and a small client for tests and
//! the demo.
//!
//! API Gateway authenticates `/v1/*` with IAM and hands the function the
//! caller's ARN; locally the runner plays the gateway and takes the
//! caller's ARN from the [`CALLER_HEADER`] request header (loopback only).
//! [`LOCAL_APP_ROLE`] is the role the local runner's API answers.

use std::sync::Arc;

use admin_api::{AdminApi, ApiRequest, ApiResponse};
use anyhow::{Context, Result};
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use hubsync_auth::{ConnectionTokens, KmsCipher};
use hubsync_hubspot::OAuthClient;
use hubsync_messages::SqsJobQueue;
use hubsync_store::DynamoStore;
use serde_json::Value;

/// The admin API as the local runner runs it.
pub type LocalAdmin = AdminApi<
    DynamoStore,
    ConnectionTokens<DynamoStore, KmsCipher, OAuthClient>,
    SqsJobQueue,
    KmsCipher,
    OAuthClient,
>;

/// The application's role in the local stack (the template's
/// `ApplicationRoleArn`).
pub const LOCAL_APP_ROLE: &str = "arn:aws:iam::000000000000:role/hubsync-local-app";
/// A session of [`LOCAL_APP_ROLE`], as API Gateway would report it.
pub const LOCAL_APP_CALLER: &str =
    "arn:aws:sts::000000000000:assumed-role/hubsync-local-app/local-app";
/// Where the local runner reads the authenticated caller (what API
/// Gateway's IAM authorizer puts in the request context).
pub const CALLER_HEADER: &str = "x-hubsync-local-iam-caller";

/// `/v1/*`, served by `api`.
pub fn routes(api: Arc<LocalAdmin>) -> Router {
    Router::new()
        .route("/v1/{*rest}", any(handle))
        .with_state(api)
}

async fn handle(
    State(api): State<Arc<LocalAdmin>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let caller = headers.get(CALLER_HEADER).and_then(|v| v.to_str().ok());
    let reply = api
        .handle(
            ApiRequest {
                method: method.as_str(),
                path: uri.path(),
                query: query.as_deref(),
                body: &body,
                caller,
            },
            chrono::Utc::now(),
        )
        .await;
    into_response(reply)
}

fn into_response(r: ApiResponse) -> Response {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = match r.body {
        Some(body) => (status, body.to_string()).into_response(),
        None => status.into_response(),
    };
    let headers = response.headers_mut();
    if headers.contains_key(axum::http::header::CONTENT_LENGTH) && status != StatusCode::NO_CONTENT
    {
        headers.insert(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    if let Some(v) = r
        .retry_after
        .and_then(|s| HeaderValue::from_str(&s.to_string()).ok())
    {
        headers.insert(axum::http::header::RETRY_AFTER, v);
    }
    if let Some(v) = r.allow.and_then(|a| HeaderValue::from_str(&a).ok()) {
        headers.insert(axum::http::header::ALLOW, v);
    }
    response
}

/// A client of the local admin API, calling as `caller` (the
/// application's backend by default).
#[derive(Debug, Clone)]
pub struct AdminClient {
    base_url: String,
    caller: Option<String>,
    http: reqwest::Client,
}

/// An answer: status and JSON body (`Null` when empty).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    /// The error code of a refusal.
    pub fn code(&self) -> Option<&str> {
        self.body["error"]["code"].as_str()
    }
}

impl AdminClient {
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            caller: Some(LOCAL_APP_CALLER.to_owned()),
            http: reqwest::Client::new(),
        }
    }

    /// The same client calling as another principal (`None`: unsigned).
    pub fn as_caller(&self, caller: Option<&str>) -> Self {
        Self {
            caller: caller.map(str::to_owned),
            ..self.clone()
        }
    }

    /// Calls `method path` (path from `/v1/`) with an optional JSON body.
    pub async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Answer> {
        let method = reqwest::Method::from_bytes(method.as_bytes())?;
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base_url));
        if let Some(caller) = &self.caller {
            req = req.header(CALLER_HEADER, caller);
        }
        if let Some(body) = body {
            req = req
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let res = req
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = res.status().as_u16();
        let text = res.text().await?;
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).with_context(|| format!("{method} {path}: not JSON"))?
        };
        Ok(Answer { status, body })
    }

    pub async fn get(&self, path: &str) -> Result<Answer> {
        self.call("GET", path, None).await
    }
}
