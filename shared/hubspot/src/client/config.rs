//! The client's configuration: base URL, timeouts, retries, the limiter's rates.

use super::*;

/// Retry policy. All waits are bounded by `max_elapsed` per call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryConfig {
    /// Most HTTP attempts per call (the 401 refresh-retry is extra).
    pub max_attempts: u32,
    /// First backoff for 5xx / timeout / transport errors.
    pub base_delay: Duration,
    /// Backoff cap.
    pub max_delay: Duration,
    /// Total time budget of one call, waits included.
    pub max_elapsed: Duration,
    /// Wait after a `SECONDLY` 429 without `Retry-After`.
    pub secondly_wait: Duration,
    /// Wait after a `TEN_SECONDLY_ROLLING` (or unnamed) 429 without
    /// `Retry-After`: the window length, after which it has fully slid.
    pub rolling_window_wait: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(4),
            max_elapsed: Duration::from_secs(25),
            secondly_wait: Duration::from_secs(1),
            rolling_window_wait: Duration::from_secs(10),
        }
    }
}

impl RetryConfig {
    /// Jittered exponential backoff before attempt `attempt + 1`
    /// (`attempt` ≥ 1): uniformly in `[d/2, d]`, `d = base · 2^(attempt-1)`
    /// capped at `max_delay`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(20);
        let d = self
            .base_delay
            .saturating_mul(1u32 << exp)
            .min(self.max_delay);
        let half = d / 2;
        let jitter_ms = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
        let extra = if jitter_ms == 0 {
            0
        } else {
            rand::random_range(0..=jitter_ms)
        };
        half + Duration::from_millis(extra)
    }

    pub(super) fn rate_limit_wait(
        &self,
        policy: &RateLimitPolicy,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        if *policy == RateLimitPolicy::Daily {
            return None;
        }
        Some(retry_after.unwrap_or(match policy {
            RateLimitPolicy::Secondly => self.secondly_wait,
            _ => self.rolling_window_wait,
        }))
    }
}

/// Client configuration, read once at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// `https://api.hubapi.com` in production; the simulator locally.
    pub base_url: String,
    /// Whole-request timeout (connect + send + body).
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    pub retry: RetryConfig,
    pub user_agent: String,
    /// Which API generation to call (date-versioned by default).
    pub api: ApiVersion,
}

impl ClientConfig {
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(3),
            retry: RetryConfig::default(),
            user_agent: concat!("hubsync/", env!("CARGO_PKG_VERSION")).to_owned(),
            api: ApiVersion::default(),
        }
    }
}

/// The base URL checked: `http(s)://host[:port][/path]` without query or
/// fragment; returned without a trailing slash.
pub(super) fn validate_base_url(raw: &str) -> Result<String, HubSpotError> {
    let url = url::Url::parse(raw)
        .map_err(|_| HubSpotError::InvalidArgument("base_url is not a valid URL".into()))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(HubSpotError::InvalidArgument(
            "base_url must be an http(s) URL with a host".into(),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(HubSpotError::InvalidArgument(
            "base_url must not carry a query, fragment or credentials".into(),
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}
