//! The HubSpot CRM HTTP client (date-versioned paths, `api_version`); its
//! associations and lists calls live in `associations.rs` and `lists.rs`.
//!
//! * The base URL and timeouts come from [`ClientConfig`] (never from a
//!   request).
//! * Every call goes through the [`RateLimiter`] for its portal, carries a
//!   bearer token from an [`AccessTokenSource`] (401 → one refresh and one
//!   retry), and is retried per [`RetryConfig`]: jittered exponential backoff
//!   for 5xx, timeouts and transport errors; 429 honoured by `Retry-After`,
//!   else by policy (`TEN_SECONDLY_ROLLING` → wait for the window to slide,
//!   `SECONDLY` → ~1 s, `DAILY` → give up at once). Attempts and total time
//!   are bounded; a wait that would overrun the budget is not started, the
//!   error is returned instead (e.g. for SQS to redeliver later).
//! * Calls, 429s, retries and refreshes are counted ([`ClientStats`]).

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::time::Instant;

use crate::api_version::ApiVersion;
use crate::error::{truncate, HubSpotError, RateLimitPolicy, TokenError};
use crate::ids::{ObjectId, ObjectType, PortalId};
use crate::model::{
    BatchReadResult, Owner, Page, SearchPage, SearchRequest, WireBatchReadInput,
    WireBatchReadRequest, WireBatchReadResponse, WireError, WirePage, MAX_BATCH_READ_INPUTS,
    MAX_PAGE_LIMIT, MAX_SEARCH_LIMIT, MAX_SEARCH_RESULTS,
};
use crate::object::HubSpotObject;
use crate::owners::Owners;
use crate::properties::PropertyDefinition;
use crate::rate_limit::{InProcessRateLimiter, RateLimitConfig, RateLimitKind, RateLimiter};
use crate::token::AccessTokenSource;

mod config;
mod stats;
pub use config::*;
pub use stats::ClientStats;
use stats::{Stats, Tally};

/// One HTTP call, before auth and retries.
pub(crate) struct Call {
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) query: Vec<(&'static str, String)>,
    pub(crate) body: Option<Vec<u8>>,
    pub(crate) kind: RateLimitKind,
    pub(crate) what: &'static str,
}

/// The HubSpot CRM client. Cheap to clone (shares connections, limiter and
/// counters).
#[derive(Clone)]
pub struct HubSpotClient {
    http: reqwest::Client,
    base_url: String,
    retry: RetryConfig,
    api: ApiVersion,
    limiter: Arc<dyn RateLimiter>,
    stats: Arc<Stats>,
}

impl std::fmt::Debug for HubSpotClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubSpotClient")
            .field("base_url", &self.base_url)
            .field("retry", &self.retry)
            .field("api", &self.api)
            .finish_non_exhaustive()
    }
}

impl HubSpotClient {
    /// A client with an [`InProcessRateLimiter`] using the default budgets.
    pub fn new(config: ClientConfig) -> Result<Self, HubSpotError> {
        Self::with_rate_limiter(
            config,
            Arc::new(InProcessRateLimiter::new(RateLimitConfig::default())),
        )
    }

    /// A client with the given limiter (e.g. a per-instance share, a shared
    /// DynamoDB bucket, or [`crate::rate_limit::Unlimited`]).
    pub fn with_rate_limiter(
        config: ClientConfig,
        limiter: Arc<dyn RateLimiter>,
    ) -> Result<Self, HubSpotError> {
        let base_url = validate_base_url(&config.base_url)?;
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(config.connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(config.user_agent.clone())
            .build()
            .map_err(|e| HubSpotError::Transport(e.without_url()))?;
        Ok(Self {
            http,
            base_url,
            retry: config.retry,
            api: config.api,
            limiter,
            stats: Arc::new(Stats::default()),
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The API generation this client calls.
    pub fn api_version(&self) -> ApiVersion {
        self.api
    }

    /// Counters so far, all portals.
    pub fn stats(&self) -> ClientStats {
        self.stats.total.snapshot()
    }

    /// Counters so far for one portal (zero if it was never called), e.g.
    /// for a reconciliation report while other portals run concurrently.
    pub fn stats_for(&self, portal: PortalId) -> ClientStats {
        let map = match self.stats.by_portal.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.get(&portal).map(|c| c.snapshot()).unwrap_or_default()
    }

    /// `POST /crm/v3/objects/{type}/batch/read?archived=false` with up to
    /// 100 ids (more is an error before any request; duplicates are sent
    /// once; no ids → no request). Handles 200 and 207: ids HubSpot did not
    /// return are in `missing`.
    pub async fn batch_read(
        &self,
        tokens: &impl AccessTokenSource,
        portal: PortalId,
        object_type: ObjectType,
        ids: &[ObjectId],
        properties: &[&str],
    ) -> Result<BatchReadResult, HubSpotError> {
        self.batch_read_in(tokens, portal, object_type, ids, properties, false)
            .await
    }

    /// [`HubSpotClient::batch_read`] of the recycle bin
    /// (`?archived=true`): `found` holds the ids HubSpot archived
    /// (deleted), each with its `archivedAt`; `missing` the ids not in the
    /// bin (live, merged away, purged, or never there).
    pub async fn batch_read_archived(
        &self,
        tokens: &impl AccessTokenSource,
        portal: PortalId,
        object_type: ObjectType,
        ids: &[ObjectId],
        properties: &[&str],
    ) -> Result<BatchReadResult, HubSpotError> {
        self.batch_read_in(tokens, portal, object_type, ids, properties, true)
            .await
    }

    async fn batch_read_in(
        &self,
        tokens: &impl AccessTokenSource,
        portal: PortalId,
        object_type: ObjectType,
        ids: &[ObjectId],
        properties: &[&str],
        archived: bool,
    ) -> Result<BatchReadResult, HubSpotError> {
        if ids.len() > MAX_BATCH_READ_INPUTS {
            return Err(HubSpotError::InvalidArgument(format!(
                "batch read takes at most {MAX_BATCH_READ_INPUTS} ids, got {}",
                ids.len()
            )));
        }
        let mut unique: Vec<ObjectId> = Vec::with_capacity(ids.len());
        for id in ids {
            if !unique.contains(id) {
                unique.push(*id);
            }
        }
        if unique.is_empty() {
            return Ok(BatchReadResult::default());
        }
        let body = WireBatchReadRequest {
            inputs: unique
                .iter()
                .map(|id| WireBatchReadInput { id: id.to_string() })
                .collect(),
            properties,
        };
        let call = Call {
            method: Method::POST,
            path: self.api.batch_read(object_type),
            query: vec![("archived", archived.to_string())],
            body: Some(to_json(&body)?),
            kind: RateLimitKind::Standard,
            what: "batch read",
        };
        let resp: WireBatchReadResponse = self.execute(tokens, portal, call).await?;
        Ok(BatchReadResult::from_found(&unique, resp.results))
    }

    /// `GET /crm/v3/objects/{type}?limit&after&properties&archived`: one page
    /// (limit 1..=100). `archived = true` lists the recycle bin.
    #[allow(clippy::too_many_arguments)]
    pub async fn list_page(
        &self,
        tokens: &impl AccessTokenSource,
        portal: PortalId,
        object_type: ObjectType,
        after: Option<&str>,
        limit: u32,
        properties: &[&str],
        archived: bool,
    ) -> Result<Page<HubSpotObject>, HubSpotError> {
        check_limit(limit, MAX_PAGE_LIMIT)?;
        let mut query = vec![("limit", limit.to_string())];
        if let Some(after) = after {
            query.push(("after", after.to_owned()));
        }
        if !properties.is_empty() {
            query.push(("properties", properties.join(",")));
        }
        query.push(("archived", archived.to_string()));
        let call = Call {
            method: Method::GET,
            path: self.api.objects(object_type),
            query,
            body: None,
            kind: RateLimitKind::Standard,
            what: "list",
        };
        let page: WirePage<HubSpotObject> = self.execute(tokens, portal, call).await?;
        Ok(page.into_page())
    }

    /// `POST /crm/v3/objects/{type}/search` (limit 1..=200; paging past
    /// HubSpot's 10,000-result cap is refused before the request). Counts
    /// against the search limit.
    pub async fn search(
        &self,
        tokens: &impl AccessTokenSource,
        portal: PortalId,
        object_type: ObjectType,
        request: &SearchRequest,
    ) -> Result<SearchPage, HubSpotError> {
        check_limit(request.limit, MAX_SEARCH_LIMIT)?;
        if let Some(after) = &request.after {
            let offset: u64 = after.parse().map_err(|_| {
                HubSpotError::InvalidArgument("search `after` must be a numeric offset".into())
            })?;
            if offset + u64::from(request.limit) > u64::from(MAX_SEARCH_RESULTS) {
                return Err(HubSpotError::InvalidArgument(format!(
                    "search cannot page past {MAX_SEARCH_RESULTS} results; narrow the query"
                )));
            }
        }
        let call = Call {
            method: Method::POST,
            path: self.api.search(object_type),
            query: Vec::new(),
            body: Some(to_json(request)?),
            kind: RateLimitKind::Search,
            what: "search",
        };
        let page: WirePage<HubSpotObject> = self.execute(tokens, portal, call).await?;
        let total = page.total.unwrap_or(0);
        let page = page.into_page();
        Ok(SearchPage {
            total,
            results: page.results,
            next_after: page.next_after,
        })
    }

    /// `GET /crm/v3/owners?limit&after`: one page of owners (limit 1..=100).
    pub async fn get_owners_page(
        &self,
        tokens: &impl AccessTokenSource,
        portal: PortalId,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Page<Owner>, HubSpotError> {
        check_limit(limit, MAX_PAGE_LIMIT)?;
        let mut query = vec![("limit", limit.to_string())];
        if let Some(after) = after {
            query.push(("after", after.to_owned()));
        }
        let call = Call {
            method: Method::GET,
            path: self.api.owners(),
            query,
            body: None,
            kind: RateLimitKind::Standard,
            what: "owners",
        };
        let page: WirePage<Owner> = self.execute(tokens, portal, call).await?;
        Ok(page.into_page())
    }

    /// Every owner of the portal (`GET /crm/v3/owners`, all pages of 100).
    pub async fn list_all_owners(
        &self,
        tokens: &impl AccessTokenSource,
        portal: PortalId,
    ) -> Result<Vec<Owner>, HubSpotError> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .get_owners_page(tokens, portal, after.as_deref(), MAX_PAGE_LIMIT)
                .await?;
            out.extend(page.results);
            match page.next_after {
                Some(next) if Some(&next) != after.as_ref() => after = Some(next),
                _ => return Ok(out),
            }
        }
    }

    /// Every owner of the portal (all pages), keyed the way the mapping
    /// resolves `owner_email` / `owner_name` rules.
    pub async fn owners(
        &self,
        tokens: &impl AccessTokenSource,
        portal: PortalId,
    ) -> Result<Owners, HubSpotError> {
        let mut owners = Owners::new();
        for o in self.list_all_owners(tokens, portal).await? {
            owners.insert(
                o.id,
                o.email.as_deref(),
                o.first_name.as_deref(),
                o.last_name.as_deref(),
            );
        }
        Ok(owners)
    }

    /// `GET /crm/v3/properties/{type}`: the portal's property definitions
    /// (built-in and custom) of a type.
    pub async fn get_properties(
        &self,
        tokens: &impl AccessTokenSource,
        portal: PortalId,
        object_type: ObjectType,
    ) -> Result<Vec<PropertyDefinition>, HubSpotError> {
        let call = Call {
            method: Method::GET,
            path: self.api.properties(object_type),
            query: Vec::new(),
            body: None,
            kind: RateLimitKind::Standard,
            what: "properties",
        };
        let page: WirePage<PropertyDefinition> = self.execute(tokens, portal, call).await?;
        Ok(page.results)
    }

    /// Run one call with limiter, auth, 401-refresh and retries; decode a
    /// 2xx body as `T`.
    pub(crate) async fn execute<T: DeserializeOwned>(
        &self,
        tokens: &impl AccessTokenSource,
        portal: PortalId,
        call: Call,
    ) -> Result<T, HubSpotError> {
        let start = Instant::now();
        let tally = self.stats.tally(portal);
        let mut token = tokens.access_token(portal).await?;
        let mut refreshed = false;
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let _permit = self.limiter.acquire(portal, call.kind).await?;
            let err = match self.send_once(&call, &token, &tally).await {
                Ok(bytes) => {
                    return serde_json::from_slice(&bytes)
                        .map_err(|e| HubSpotError::decode(call.what, &e));
                }
                Err(e) => e,
            };
            let wait = match &err {
                HubSpotError::Unauthorized { .. } if !refreshed => {
                    refreshed = true;
                    tally.bump(|c| &c.token_refreshes);
                    tracing::info!(portal = %portal, op = call.what, "401 from HubSpot; refreshing the access token once");
                    token = match tokens.refresh(portal, &token).await {
                        Ok(t) => t,
                        Err(TokenError::RefreshUnsupported) => return Err(err),
                        Err(e) => return Err(e.into()),
                    };
                    // The refresh-retry does not use up a retry attempt.
                    attempt -= 1;
                    continue;
                }
                HubSpotError::RateLimited {
                    policy,
                    retry_after,
                } => {
                    let wait = self.retry.rate_limit_wait(policy, *retry_after);
                    tracing::warn!(portal = %portal, op = call.what, policy = %policy,
                        wait_ms = wait.map(|w| w.as_millis() as u64), "HubSpot rate limit hit");
                    if let Some(w) = wait {
                        self.limiter.on_rate_limited(portal, call.kind, w);
                    }
                    wait
                }
                e if e.is_retryable() => Some(self.retry.backoff(attempt)),
                _ => None,
            };
            let Some(wait) = wait else {
                return Err(err);
            };
            if attempt >= self.retry.max_attempts
                || start.elapsed().saturating_add(wait) > self.retry.max_elapsed
            {
                tracing::warn!(portal = %portal, op = call.what, attempt, error = %err, "giving up on HubSpot call");
                return Err(err);
            }
            tally.bump(|c| &c.retries);
            tracing::debug!(portal = %portal, op = call.what, attempt, wait_ms = wait.as_millis() as u64, error = %err, "retrying HubSpot call");
            tokio::time::sleep(wait).await;
        }
    }

    /// One HTTP attempt: the body of a 2xx, or the classified error.
    async fn send_once(
        &self,
        call: &Call,
        token: &SecretString,
        tally: &Tally<'_>,
    ) -> Result<Vec<u8>, HubSpotError> {
        let url = format!("{}{}", self.base_url, call.path);
        let mut req = self
            .http
            .request(call.method.clone(), url)
            .bearer_auth(token.expose_secret())
            .header(reqwest::header::ACCEPT, "application/json");
        if !call.query.is_empty() {
            req = req.query(&call.query);
        }
        if let Some(body) = &call.body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        tally.bump(|c| &c.requests);
        let resp = req.send().await.map_err(|e| classify(e, tally))?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = resp.bytes().await.map_err(|e| classify(e, tally))?.to_vec();
        tracing::debug!(op = call.what, status = status.as_u16(), "HubSpot response");
        if status.is_success() {
            return Ok(bytes);
        }
        let body: WireError = serde_json::from_slice(&bytes).unwrap_or_default();
        Err(match status {
            StatusCode::TOO_MANY_REQUESTS => {
                tally.bump(|c| &c.rate_limited);
                HubSpotError::RateLimited {
                    policy: RateLimitPolicy::parse(body.policy_name.as_deref()),
                    retry_after,
                }
            }
            StatusCode::UNAUTHORIZED => HubSpotError::Unauthorized {
                category: body.category.map(|c| truncate(&c, 64)),
            },
            StatusCode::FORBIDDEN => HubSpotError::Forbidden {
                required_scopes: body.required_scopes(),
                category: body.category.map(|c| truncate(&c, 64)),
            },
            StatusCode::NOT_FOUND => HubSpotError::NotFound,
            s if s.is_server_error() => {
                tally.bump(|c| &c.server_errors);
                HubSpotError::Server { status: s.as_u16() }
            }
            s => HubSpotError::BadRequest {
                status: s.as_u16(),
                message: truncate(body.message.as_deref().unwrap_or(""), 300),
            },
        })
    }
}

fn classify(e: reqwest::Error, tally: &Tally<'_>) -> HubSpotError {
    if e.is_timeout() {
        tally.bump(|c| &c.timeouts);
        HubSpotError::Timeout
    } else {
        tally.bump(|c| &c.transport_errors);
        HubSpotError::Transport(e.without_url())
    }
}

pub(crate) fn to_json<T: Serialize + ?Sized>(v: &T) -> Result<Vec<u8>, HubSpotError> {
    serde_json::to_vec(v)
        .map_err(|_| HubSpotError::InvalidArgument("request body could not be serialized".into()))
}

fn check_limit(limit: u32, max: u32) -> Result<(), HubSpotError> {
    if limit == 0 || limit > max {
        return Err(HubSpotError::InvalidArgument(format!(
            "limit must be between 1 and {max}, got {limit}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
