//! Which OAuth endpoints the client calls, and how (timeouts, retries).

use super::*;

/// Which generation of HubSpot's OAuth endpoints to call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OAuthVersion {
    /// `/oauth/v1/token`, `/oauth/v1/access-tokens/{t}`,
    /// `DELETE /oauth/v1/refresh-tokens/{t}`.
    V1,
    /// `/oauth/{YYYY-MM}/token`, `/token/introspect`, `/token/revoke`.
    Dated(String),
}

impl OAuthVersion {
    /// The date-versioned endpoints this project was built against.
    pub fn current() -> Self {
        OAuthVersion::Dated("2026-03".into())
    }

    /// The path segment (`v1` or `2026-03`).
    pub fn as_str(&self) -> &str {
        match self {
            OAuthVersion::V1 => "v1",
            OAuthVersion::Dated(d) => d,
        }
    }
}

impl std::str::FromStr for OAuthVersion {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s == "v1" {
            return Ok(OAuthVersion::V1);
        }
        let b = s.as_bytes();
        let dated = b.len() == 7
            && b[4] == b'-'
            && b.iter()
                .enumerate()
                .all(|(i, c)| i == 4 || c.is_ascii_digit());
        if dated {
            Ok(OAuthVersion::Dated(s.to_owned()))
        } else {
            Err(format!(
                "OAuth version must be `v1` or a date version like `2026-03`, got `{s}`"
            ))
        }
    }
}

impl fmt::Display for OAuthVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Bounded retries of the token endpoint (429, 5xx, timeout, transport).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OAuthRetry {
    /// Most attempts per call (≥ 1).
    pub max_attempts: u32,
    /// First backoff; doubles per attempt.
    pub base_delay: Duration,
    /// Cap of any single wait, `Retry-After` included.
    pub max_delay: Duration,
}

impl OAuthRetry {
    /// The wait before attempt `attempt + 1`: HubSpot's `Retry-After` when
    /// it sent one, else the doubling backoff; never over `max_delay`.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        retry_after
            .unwrap_or_else(|| {
                self.base_delay
                    .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            })
            .min(self.max_delay)
    }

    /// Runs `attempt` until it succeeds, fails for good (`retryable` says
    /// no) or `max_attempts` are spent, sleeping [`OAuthRetry::delay`]
    /// between attempts (`retry_after` reads HubSpot's `Retry-After` off
    /// an error). `what` names the call in the logs; errors are logged,
    /// never a request or response.
    pub async fn run<T, E, Fut>(
        &self,
        what: &'static str,
        mut attempt: impl FnMut() -> Fut,
        retryable: impl Fn(&E) -> bool,
        retry_after: impl Fn(&E) -> Option<Duration>,
    ) -> Result<T, E>
    where
        E: std::fmt::Display,
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        let mut n = 0u32;
        loop {
            n += 1;
            let err = match attempt().await {
                Ok(ok) => return Ok(ok),
                Err(e) => e,
            };
            if !retryable(&err) || n >= self.max_attempts.max(1) {
                tracing::warn!(op = what, attempt = n, error = %err, "HubSpot call failed");
                return Err(err);
            }
            let wait = self.delay(n, retry_after(&err));
            tracing::debug!(op = what, attempt = n, wait_ms = wait.as_millis() as u64, error = %err, "retrying HubSpot call");
            tokio::time::sleep(wait).await;
        }
    }
}

impl Default for OAuthRetry {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(2),
        }
    }
}

/// The app's OAuth credentials and where the token endpoint lives.
#[derive(Clone)]
pub struct OAuthConfig {
    /// `https://api.hubapi.com` (the simulator locally). Never from a request.
    pub base_url: String,
    pub client_id: String,
    pub client_secret: SecretString,
    /// The redirect URI registered with the app (sent with the code).
    pub redirect_uri: String,
    pub version: OAuthVersion,
    pub request_timeout: Duration,
    pub retry: OAuthRetry,
}

impl OAuthConfig {
    pub fn new(
        base_url: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: SecretString,
        redirect_uri: impl Into<String>,
    ) -> Self {
        Self {
            base_url: base_url.into(),
            client_id: client_id.into(),
            client_secret,
            redirect_uri: redirect_uri.into(),
            version: OAuthVersion::current(),
            request_timeout: Duration::from_secs(10),
            retry: OAuthRetry::default(),
        }
    }
}

impl fmt::Debug for OAuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthConfig")
            .field("base_url", &self.base_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("redirect_uri", &self.redirect_uri)
            .field("version", &self.version)
            .field("request_timeout", &self.request_timeout)
            .field("retry", &self.retry)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[derive(Debug, PartialEq)]
    enum E {
        Busy(Option<Duration>),
        Refused,
    }

    impl std::fmt::Display for E {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{self:?}")
        }
    }

    fn retry() -> OAuthRetry {
        OAuthRetry {
            max_attempts: 3,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        }
    }

    async fn run(script: &[Result<u32, E>]) -> (Result<u32, E>, u32, Duration) {
        let calls = AtomicU32::new(0);
        let started = tokio::time::Instant::now();
        let out = retry()
            .run(
                "test",
                || {
                    let n = calls.fetch_add(1, Ordering::SeqCst) as usize;
                    let step = match &script[n.min(script.len() - 1)] {
                        Ok(v) => Ok(*v),
                        Err(E::Busy(d)) => Err(E::Busy(*d)),
                        Err(E::Refused) => Err(E::Refused),
                    };
                    async move { step }
                },
                |e| matches!(e, E::Busy(_)),
                |e| match e {
                    E::Busy(d) => *d,
                    E::Refused => None,
                },
            )
            .await;
        (out, calls.load(Ordering::SeqCst), started.elapsed())
    }

    #[tokio::test(start_paused = true)]
    async fn retries_what_may_pass_with_backoff_or_retry_after_and_stops_at_the_budget() {
        // Busy, busy (HubSpot says wait 700 ms), then through.
        let (out, calls, waited) = run(&[
            Err(E::Busy(None)),
            Err(E::Busy(Some(Duration::from_millis(700)))),
            Ok(7),
        ])
        .await;
        assert_eq!((out, calls), (Ok(7), 3));
        assert_eq!(waited, Duration::from_millis(100 + 700));

        // Refused for good: no second attempt, no wait.
        let (out, calls, waited) = run(&[Err(E::Refused), Ok(1)]).await;
        assert_eq!((out, calls, waited), (Err(E::Refused), 1, Duration::ZERO));

        // Always busy: three attempts, then the last error.
        let (out, calls, waited) = run(&[Err(E::Busy(None))]).await;
        assert_eq!((out, calls), (Err(E::Busy(None)), 3));
        assert_eq!(waited, Duration::from_millis(100 + 200));
    }
}
