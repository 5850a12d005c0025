//! Typed errors of the HubSpot client, each classified as retryable or not.
//!
//! Messages never contain access tokens, and never echo response bodies
//! verbatim except HubSpot's own short error `message` (truncated), which
//! describes the request, not personal data.

use std::fmt;
use std::time::Duration;

/// Which rate-limit policy a 429 names (`policyName` in the body).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RateLimitPolicy {
    /// The per-account rolling window (110 requests / 10 s for OAuth apps).
    TenSecondlyRolling,
    /// Per-second limit (search: ~5/s).
    Secondly,
    /// Daily quota (private apps): retrying today is pointless.
    Daily,
    /// No or an unrecognised `policyName`.
    Other(String),
}

impl RateLimitPolicy {
    pub fn parse(name: Option<&str>) -> Self {
        match name.map(str::trim) {
            Some(n) if n.eq_ignore_ascii_case("TEN_SECONDLY_ROLLING") => Self::TenSecondlyRolling,
            Some(n) if n.eq_ignore_ascii_case("SECONDLY") => Self::Secondly,
            Some(n) if n.eq_ignore_ascii_case("DAILY") => Self::Daily,
            Some(n) => Self::Other(truncate(n, 64)),
            None => Self::Other(String::new()),
        }
    }
}

impl fmt::Display for RateLimitPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TenSecondlyRolling => f.write_str("TEN_SECONDLY_ROLLING"),
            Self::Secondly => f.write_str("SECONDLY"),
            Self::Daily => f.write_str("DAILY"),
            Self::Other(s) if s.is_empty() => f.write_str("unknown"),
            Self::Other(s) => f.write_str(s),
        }
    }
}

/// Failure of an access-token source ([`crate::AccessTokenSource`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The refresh token was rejected (`invalid_grant`, app uninstalled):
    /// stop syncing the portal and ask for re-authorisation.
    #[error("the connection needs re-authorisation")]
    NeedsReauth,
    /// This source cannot refresh (e.g. a fixed token).
    #[error("token refresh is not supported by this token source")]
    RefreshUnsupported,
    /// The token store or token endpoint is temporarily unavailable.
    #[error("access token unavailable: {0}")]
    Unavailable(String),
}

fn fmt_scopes(scopes: &[String]) -> String {
    if scopes.is_empty() {
        String::new()
    } else {
        format!(
            ": the app's token lacks the scope {} (grant it in the app's scopes and have the portal reconnect)",
            scopes.join(" or ")
        )
    }
}

impl TokenError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, TokenError::Unavailable(_))
    }
}

/// Everything a HubSpot call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum HubSpotError {
    /// HTTP 429. `retry_after` is the `Retry-After` header, when sent.
    #[error("rate limited by HubSpot (policy {policy}{})", fmt_retry_after(*.retry_after))]
    RateLimited {
        policy: RateLimitPolicy,
        retry_after: Option<Duration>,
    },
    /// HTTP 401 (after one refresh-and-retry). `category` is HubSpot's
    /// error category (e.g. `EXPIRED_AUTHENTICATION`), when sent.
    #[error("HubSpot rejected the access token ({})", .category.as_deref().unwrap_or("no category"))]
    Unauthorized { category: Option<String> },
    /// HTTP 403: the token lacks a scope (`MISSING_SCOPES`, with the scopes
    /// HubSpot names in `required_scopes`), or the portal has no access.
    #[error("HubSpot denied access ({}){}", .category.as_deref().unwrap_or("no category"), fmt_scopes(.required_scopes))]
    Forbidden {
        category: Option<String>,
        /// The scopes HubSpot says the call needs (`requiredGranularScopes`).
        required_scopes: Vec<String>,
    },
    /// HTTP 404.
    #[error("not found")]
    NotFound,
    /// Any other 4xx. `message` is HubSpot's error message, truncated.
    #[error("HubSpot rejected the request with {status}: {message}")]
    BadRequest { status: u16, message: String },
    /// HTTP 5xx.
    #[error("HubSpot server error {status}")]
    Server { status: u16 },
    /// The request did not complete within the configured timeout.
    #[error("request to HubSpot timed out")]
    Timeout,
    /// Connection or protocol failure (no HTTP status).
    #[error("transport error talking to HubSpot")]
    Transport(#[source] reqwest::Error),
    /// A 2xx response whose body did not have the expected shape. Carries a
    /// position, never the body (it may hold PII).
    #[error("could not decode HubSpot {what} response ({category} error at line {line}, column {column})")]
    Decode {
        what: &'static str,
        category: &'static str,
        line: usize,
        column: usize,
    },
    /// The call was rejected before any request was sent (e.g. more than
    /// 100 ids in a batch read).
    #[error("invalid request: {0}")]
    InvalidArgument(String),
    /// The access-token source failed.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The rate limiter refused (e.g. a shared bucket is unavailable).
    #[error("rate limiter unavailable: {0}")]
    RateLimiter(String),
}

fn fmt_retry_after(d: Option<Duration>) -> String {
    match d {
        Some(d) => format!(", retry after {} ms", d.as_millis()),
        None => String::new(),
    }
}

impl HubSpotError {
    /// Whether retrying the same call later can succeed. Callers use it to
    /// decide between "return the SQS message for redelivery" and "report
    /// and move on".
    pub fn is_retryable(&self) -> bool {
        match self {
            HubSpotError::RateLimited { policy, .. } => *policy != RateLimitPolicy::Daily,
            HubSpotError::Server { .. }
            | HubSpotError::Timeout
            | HubSpotError::Transport(_)
            | HubSpotError::RateLimiter(_) => true,
            HubSpotError::Token(e) => e.is_retryable(),
            HubSpotError::Unauthorized { .. }
            | HubSpotError::Forbidden { .. }
            | HubSpotError::NotFound
            | HubSpotError::BadRequest { .. }
            | HubSpotError::Decode { .. }
            | HubSpotError::InvalidArgument(_) => false,
        }
    }

    pub(crate) fn decode(what: &'static str, e: &serde_json::Error) -> Self {
        HubSpotError::Decode {
            what,
            category: match e.classify() {
                serde_json::error::Category::Io => "io",
                serde_json::error::Category::Syntax => "syntax",
                serde_json::error::Category::Data => "data",
                serde_json::error::Category::Eof => "eof",
            },
            line: e.line(),
            column: e.column(),
        }
    }
}

pub(crate) fn truncate(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((idx, _)) => format!("{}…", &s[..idx]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryability_follows_the_error_kind() {
        let rl = |p| HubSpotError::RateLimited {
            policy: p,
            retry_after: None,
        };
        assert!(rl(RateLimitPolicy::TenSecondlyRolling).is_retryable());
        assert!(rl(RateLimitPolicy::Secondly).is_retryable());
        assert!(!rl(RateLimitPolicy::Daily).is_retryable());
        assert!(HubSpotError::Server { status: 503 }.is_retryable());
        assert!(HubSpotError::Timeout.is_retryable());
        assert!(!HubSpotError::Unauthorized { category: None }.is_retryable());
        assert!(!HubSpotError::NotFound.is_retryable());
        assert!(!HubSpotError::BadRequest {
            status: 400,
            message: String::new()
        }
        .is_retryable());
        assert!(!HubSpotError::InvalidArgument("x".into()).is_retryable());
        assert!(!HubSpotError::Token(TokenError::NeedsReauth).is_retryable());
        assert!(HubSpotError::Token(TokenError::Unavailable("x".into())).is_retryable());
    }

    #[test]
    fn policy_names_parse() {
        assert_eq!(
            RateLimitPolicy::parse(Some("TEN_SECONDLY_ROLLING")),
            RateLimitPolicy::TenSecondlyRolling
        );
        assert_eq!(
            RateLimitPolicy::parse(Some("secondly")),
            RateLimitPolicy::Secondly
        );
        assert_eq!(
            RateLimitPolicy::parse(Some("DAILY")),
            RateLimitPolicy::Daily
        );
        assert_eq!(RateLimitPolicy::parse(None).to_string(), "unknown");
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "hé…");
        assert_eq!(truncate("hi", 5), "hi");
    }
}
