//! HubSpot's Webhooks Journal (2026-03): three days of the app's
//! subscribed events, read by offset, outside the CRM rate limits
//! (`../shared/HUBSPOT-2026.md` §6).
//!
//! * Authentication is the **app's** client-credentials token (no portal,
//!   no refresh token). [`JournalClient`] caches it, fetches a new one
//!   [`TOKEN_MARGIN`] before it expires, and makes the fetch single-flight:
//!   concurrent callers wait for one token call. A 401 drops the cached
//!   token (only if it is still the rejected one) and retries once.
//! * Reads return a [`JournalPointer`] (`{url, expiresAt, currentOffset}`)
//!   or `None` when there is nothing (further) — HubSpot's 204. An offset
//!   past the retention is [`JournalError::OffsetExpired`] (HubSpot's 404),
//!   for which the caller must re-sync: events are gone.
//! * [`JournalClient::fetch`] downloads the pre-signed file (no auth) and
//!   parses it with [`parse_file`] — the one place the (unverified) file
//!   format is known.
//! * 429, 5xx, timeouts and transport errors are retried a bounded number
//!   of times, honouring `Retry-After` up to a cap. Tokens and pre-signed
//!   URLs are never logged or part of an error.

mod batch;
mod file;
mod subscriptions;

use std::fmt;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

pub use batch::{OffsetsRead, MAX_BATCH};
pub use file::{parse_file, FileError, JournalEntry, JournalFile, ObjectAction};
pub use subscriptions::{Subscription, SubscriptionKind, SubscriptionRequest, OBJECT_ACTIONS};

use crate::error::truncate;
use crate::ids::PortalId;
use crate::oauth::{OAuthClient, OAuthError, OAuthRetry};

/// The journal API version this client calls.
pub const JOURNAL_VERSION: &str = "2026-03";
/// The scopes the app's token is requested with.
pub const JOURNAL_SCOPES: [&str; 3] = [
    "developer.webhooks_journal.read",
    "developer.webhooks_journal.subscriptions.read",
    "developer.webhooks_journal.subscriptions.write",
];
/// A cached token is replaced this long before it expires.
pub const TOKEN_MARGIN: Duration = Duration::from_secs(300);

/// Which journal to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Journal {
    /// Every install's events (`/webhooks-journal/journal/…`).
    Global,
    /// One install's (`/webhooks-journal/journal-local/…?installPortalId=`).
    Local(PortalId),
}

/// Where a journal file is. `Debug` redacts the pre-signed URL.
#[derive(Clone)]
pub struct JournalPointer {
    pub url: SecretString,
    /// Epoch ms after which `url` no longer works.
    pub expires_at_ms: Option<i64>,
    /// The file's offset: read on from here.
    pub current_offset: String,
}

impl fmt::Debug for JournalPointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JournalPointer")
            .field("url", &"<pre-signed>")
            .field("expires_at_ms", &self.expires_at_ms)
            .field("current_offset", &self.current_offset)
            .finish()
    }
}

/// Why a journal call failed. Never carries a token or a pre-signed URL.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// HubSpot's 404 on `offset/{offset}/next`: the offset is older than
    /// the journal's retention (or never existed). Events may be lost:
    /// re-sync the portals it covered.
    #[error("the journal offset has expired or does not exist (404)")]
    OffsetExpired,
    /// The pre-signed file URL expired (or was refused) before the fetch;
    /// read the offset again for a fresh URL.
    #[error("the journal file's pre-signed URL was refused ({status})")]
    FileUrlRefused { status: u16 },
    #[error("could not get the app's client-credentials token")]
    Token(#[source] OAuthError),
    #[error("HubSpot refused the app's client-credentials token (401)")]
    Unauthorized,
    #[error("the app's token lacks a Webhooks Journal scope (403)")]
    MissingScope,
    #[error("HubSpot's Webhooks Journal is rate limiting")]
    RateLimited { retry_after: Option<Duration> },
    #[error("HubSpot's Webhooks Journal failed with {status}")]
    Server { status: u16 },
    #[error("HubSpot's Webhooks Journal timed out")]
    Timeout,
    #[error("transport error talking to HubSpot's Webhooks Journal")]
    Transport(#[source] reqwest::Error),
    /// Another 4xx, with HubSpot's category and short message.
    #[error("HubSpot rejected the journal call with {status} ({category}): {message}")]
    Rejected {
        status: u16,
        category: String,
        message: String,
    },
    #[error("could not decode HubSpot's {what} response")]
    Decode { what: &'static str },
    #[error(transparent)]
    File(#[from] FileError),
}

impl JournalError {
    /// Whether the same call may succeed later.
    pub fn is_retryable(&self) -> bool {
        match self {
            JournalError::RateLimited { .. }
            | JournalError::Server { .. }
            | JournalError::Timeout
            | JournalError::Transport(_) => true,
            JournalError::Token(e) => e.is_retryable(),
            _ => false,
        }
    }
}

struct CachedToken {
    token: SecretString,
    renew_at: Instant,
}

/// The Webhooks Journal client of one app. Share it (`Arc`): the token
/// cache is inside.
pub struct JournalClient {
    http: reqwest::Client,
    base_url: String,
    oauth: OAuthClient,
    retry: OAuthRetry,
    token: tokio::sync::Mutex<Option<CachedToken>>,
}

impl fmt::Debug for JournalClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JournalClient")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WirePointer {
    url: String,
    #[serde(default)]
    expires_at: Option<serde_json::Value>,
    current_offset: serde_json::Value,
}

#[derive(Deserialize, Default)]
struct WireError {
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

impl WirePointer {
    fn into_pointer(self, what: &'static str) -> Result<JournalPointer, JournalError> {
        let current_offset = match self.current_offset {
            serde_json::Value::String(s) if !s.is_empty() => s,
            serde_json::Value::Number(n) => n.to_string(),
            _ => return Err(JournalError::Decode { what }),
        };
        let expires_at_ms = self.expires_at.and_then(|v| match v {
            serde_json::Value::Number(n) => n.as_i64(),
            serde_json::Value::String(s) => chrono::DateTime::parse_from_rfc3339(&s)
                .ok()
                .map(|d| d.timestamp_millis()),
            _ => None,
        });
        Ok(JournalPointer {
            url: SecretString::from(self.url),
            expires_at_ms,
            current_offset,
        })
    }
}

#[derive(Clone, Copy)]
enum Auth {
    AppToken,
    None,
}

impl JournalClient {
    /// `base_url` is HubSpot's API (`https://api.hubapi.com`); the token
    /// comes from `oauth` (its client id and secret, a dated version).
    pub fn new(base_url: &str, oauth: OAuthClient) -> Self {
        Self {
            http: oauth.http().clone(),
            base_url: base_url.trim_end_matches('/').to_owned(),
            retry: oauth.config().retry,
            oauth,
            token: tokio::sync::Mutex::new(None),
        }
    }

    /// The app's token: cached, renewed [`TOKEN_MARGIN`] before expiry,
    /// one fetch at a time.
    async fn token(&self) -> Result<SecretString, JournalError> {
        let mut cached = self.token.lock().await;
        if let Some(c) = cached.as_ref().filter(|c| Instant::now() < c.renew_at) {
            return Ok(c.token.clone());
        }
        let grant = self
            .oauth
            .client_credentials(&JOURNAL_SCOPES)
            .await
            .map_err(JournalError::Token)?;
        let lifetime = Duration::from_secs(grant.expires_in);
        let renew_at = Instant::now() + lifetime.saturating_sub(TOKEN_MARGIN.min(lifetime / 2));
        *cached = Some(CachedToken {
            token: grant.access_token.clone(),
            renew_at,
        });
        Ok(grant.access_token)
    }

    /// Drops the cached token if it is still `rejected`.
    async fn forget(&self, rejected: &SecretString) {
        let mut cached = self.token.lock().await;
        if cached
            .as_ref()
            .is_some_and(|c| c.token.expose_secret() == rejected.expose_secret())
        {
            *cached = None;
        }
    }

    // ------------------------------------------------------------ reads

    fn journal_path(journal: Journal, tail: &str) -> String {
        match journal {
            Journal::Global => format!("/webhooks-journal/journal/{JOURNAL_VERSION}/{tail}"),
            Journal::Local(p) => format!(
                "/webhooks-journal/journal-local/{JOURNAL_VERSION}/{tail}?installPortalId={}",
                p.0
            ),
        }
    }

    /// The oldest retained file, `None` when the journal is empty.
    pub async fn earliest(&self, journal: Journal) -> Result<Option<JournalPointer>, JournalError> {
        self.pointer(&Self::journal_path(journal, "earliest"), "earliest")
            .await
    }

    /// The newest file, `None` when the journal is empty.
    pub async fn latest(&self, journal: Journal) -> Result<Option<JournalPointer>, JournalError> {
        self.pointer(&Self::journal_path(journal, "latest"), "latest")
            .await
    }

    /// The file after `offset`, `None` when there is none yet.
    pub async fn next(
        &self,
        journal: Journal,
        offset: &str,
    ) -> Result<Option<JournalPointer>, JournalError> {
        let offset =
            percent_encoding::utf8_percent_encode(offset, percent_encoding::NON_ALPHANUMERIC);
        let path = Self::journal_path(journal, &format!("offset/{offset}/next"));
        match self.pointer(&path, "next").await {
            Err(JournalError::Rejected { status: 404, .. }) => Err(JournalError::OffsetExpired),
            other => other,
        }
    }

    async fn pointer(
        &self,
        path: &str,
        what: &'static str,
    ) -> Result<Option<JournalPointer>, JournalError> {
        let url = format!("{}{path}", self.base_url);
        let (status, bytes) = self
            .send(what, Method::GET, &url, None, Auth::AppToken)
            .await?;
        if status == StatusCode::NO_CONTENT || bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        let wire: WirePointer =
            serde_json::from_slice(&bytes).map_err(|_| JournalError::Decode { what })?;
        wire.into_pointer(what).map(Some)
    }

    /// Downloads and parses the file `pointer` names.
    pub async fn fetch(&self, pointer: &JournalPointer) -> Result<JournalFile, JournalError> {
        let url = pointer.url.expose_secret().to_owned();
        match self
            .send("journal file", Method::GET, &url, None, Auth::None)
            .await
        {
            Ok((_, bytes)) => Ok(parse_file(&bytes)?),
            Err(JournalError::Rejected { status, .. }) if matches!(status, 403 | 404) => {
                Err(JournalError::FileUrlRefused { status })
            }
            Err(e) => Err(e),
        }
    }

    // ---------------------------------------------------- subscriptions

    fn subscriptions_url(&self, tail: &str) -> String {
        format!(
            "{}/webhooks-journal/subscriptions/{JOURNAL_VERSION}{tail}",
            self.base_url
        )
    }

    pub async fn create_subscription(
        &self,
        request: &SubscriptionRequest,
    ) -> Result<Subscription, JournalError> {
        let what = "subscription";
        let body = serde_json::to_vec(request).map_err(|_| JournalError::Decode { what })?;
        let (_, bytes) = self
            .send(
                what,
                Method::POST,
                &self.subscriptions_url(""),
                Some(body),
                Auth::AppToken,
            )
            .await?;
        serde_json::from_slice(&bytes).map_err(|_| JournalError::Decode { what })
    }

    /// The subscriptions of `portal` (every one of the app's with `None`).
    pub async fn subscriptions(
        &self,
        portal: Option<PortalId>,
    ) -> Result<Vec<Subscription>, JournalError> {
        let what = "subscriptions";
        let tail = portal.map_or(String::new(), |p| format!("?portalId={}", p.0));
        let (_, bytes) = self
            .send(
                what,
                Method::GET,
                &self.subscriptions_url(&tail),
                None,
                Auth::AppToken,
            )
            .await?;
        let list: subscriptions::SubscriptionList =
            serde_json::from_slice(&bytes).map_err(|_| JournalError::Decode { what })?;
        Ok(list.results)
    }

    /// Deletes one subscription (an unknown one counts as deleted).
    pub async fn delete_subscription(&self, id: u64) -> Result<(), JournalError> {
        let url = self.subscriptions_url(&format!("/{id}"));
        match self
            .send(
                "subscription delete",
                Method::DELETE,
                &url,
                None,
                Auth::AppToken,
            )
            .await
        {
            Ok(_) | Err(JournalError::Rejected { status: 404, .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Deletes every subscription of `portal` (disconnect).
    pub async fn delete_portal_subscriptions(&self, portal: PortalId) -> Result<(), JournalError> {
        let url = self.subscriptions_url(&format!("/portals/{}", portal.0));
        self.send(
            "subscriptions delete",
            Method::DELETE,
            &url,
            None,
            Auth::AppToken,
        )
        .await
        .map(|_| ())
    }

    // ------------------------------------------------------------ calls

    /// One call with bounded retries and one token renewal on a 401; the
    /// status and body of a 2xx.
    async fn send(
        &self,
        what: &'static str,
        method: Method,
        url: &str,
        body: Option<Vec<u8>>,
        auth: Auth,
    ) -> Result<(StatusCode, Vec<u8>), JournalError> {
        let renewed = std::sync::atomic::AtomicBool::new(false);
        let body = body.as_deref();
        self.retry
            .run(
                what,
                || async {
                    match self.attempt(&method, url, body, auth).await {
                        // HubSpot no longer takes the cached token: once
                        // per call, drop it and send again with a new one.
                        Err((JournalError::Unauthorized, Some(token)))
                            if !renewed.swap(true, std::sync::atomic::Ordering::SeqCst) =>
                        {
                            self.forget(&token).await;
                            self.attempt(&method, url, body, auth)
                                .await
                                .map_err(|(e, _)| e)
                        }
                        other => other.map_err(|(e, _)| e),
                    }
                },
                JournalError::is_retryable,
                |e| match e {
                    JournalError::RateLimited { retry_after } => *retry_after,
                    _ => None,
                },
            )
            .await
    }

    /// One request; a failure comes with the app token it used.
    async fn attempt(
        &self,
        method: &Method,
        url: &str,
        body: Option<&[u8]>,
        auth: Auth,
    ) -> Result<(StatusCode, Vec<u8>), (JournalError, Option<SecretString>)> {
        let mut req = self
            .http
            .request(method.clone(), url)
            .header(reqwest::header::ACCEPT, "application/json");
        let token = match auth {
            Auth::AppToken => {
                let t = self.token().await.map_err(|e| (e, None))?;
                req = req.bearer_auth(t.expose_secret());
                Some(t)
            }
            Auth::None => None,
        };
        if let Some(b) = body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(b.to_vec());
        }
        self.once(req).await.map_err(|e| (e, token))
    }

    async fn once(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<(StatusCode, Vec<u8>), JournalError> {
        let classify = |e: reqwest::Error| {
            if e.is_timeout() {
                JournalError::Timeout
            } else {
                JournalError::Transport(e.without_url())
            }
        };
        let resp = req.send().await.map_err(classify)?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = resp.bytes().await.map_err(classify)?.to_vec();
        if status.is_success() {
            return Ok((status, bytes));
        }
        let body: WireError = serde_json::from_slice(&bytes).unwrap_or_default();
        Err(match status {
            StatusCode::UNAUTHORIZED => JournalError::Unauthorized,
            StatusCode::FORBIDDEN if body.category.as_deref() == Some("MISSING_SCOPES") => {
                JournalError::MissingScope
            }
            StatusCode::TOO_MANY_REQUESTS => JournalError::RateLimited { retry_after },
            s if s.is_server_error() => JournalError::Server { status: s.as_u16() },
            s => JournalError::Rejected {
                status: s.as_u16(),
                category: truncate(body.category.as_deref().unwrap_or(""), 64),
                message: truncate(body.message.as_deref().unwrap_or(""), 200),
            },
        })
    }
}
