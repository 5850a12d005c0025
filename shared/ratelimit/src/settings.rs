//! The HubSpot client and the limiter that keeps a function's calls under
//! each portal's limit, configured from the environment.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use hubsync_hubspot::{
    ApiVersion, ClientConfig, HubSpotClient, HubSpotError, InProcessRateLimiter, RateLimitConfig,
    RateLimiter,
};
use hubsync_runtime::{ConfigError, Env};
use hubsync_store::RateLedgerStore;

use crate::shared_limit::{PermitClass, SharedLimitConfig, SharedRateLimiter};

/// Which limiter keeps a function's HubSpot calls under a portal's limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimitMode {
    /// One budget per portal for every instance of every function, in the
    /// Control table ([`SharedRateLimiter`]). The default.
    Shared,
    /// Each instance takes `limit / HUBSYNC_MAX_CONCURRENCY` in process
    /// ([`InProcessRateLimiter`]); no DynamoDB calls.
    Instance,
}

impl FromStr for RateLimitMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "shared" => Ok(Self::Shared),
            "instance" => Ok(Self::Instance),
            other => Err(format!("{other:?} is not `shared` or `instance`")),
        }
    }
}

/// The HubSpot client and rate-limit settings shared by the worker and the
/// reconciliation.
#[derive(Debug, Clone)]
pub struct HubSpotSettings {
    pub client: ClientConfig,
    pub mode: RateLimitMode,
    /// Used in [`RateLimitMode::Instance`]: this instance's share.
    pub instance: RateLimitConfig,
    /// Used in [`RateLimitMode::Shared`].
    pub shared: SharedLimitConfig,
}

impl HubSpotSettings {
    /// `HUBSYNC_HUBSPOT_BASE_URL` (default `https://api.hubapi.com`),
    /// `HUBSYNC_HUBSPOT_TIMEOUT_MS`, `HUBSYNC_HUBSPOT_API_VERSION` (`2026-03`,
    /// the default, `2026-09` or `legacy`), `HUBSYNC_RATE_LIMITER` (`shared`, the
    /// default, or `instance`), `HUBSYNC_MAX_CONCURRENCY` (the instance
    /// share's divisor, default 1), and the shared limiter's
    /// `HUBSYNC_RATE_LIMIT_BLOCK`, `HUBSYNC_RATE_LIMIT_REALTIME_RESERVE`,
    /// `HUBSYNC_RATE_LIMIT_BACKGROUND_RESERVE`, `HUBSYNC_RATE_LIMIT_GUARD_MS`
    /// and `HUBSYNC_RATE_LIMIT_MAX_SKEW_MS` (every instance must agree).
    pub fn from_vars(env: &Env, class: PermitClass) -> Result<Self, ConfigError> {
        let mut client = ClientConfig::new(
            env.optional("HUBSYNC_HUBSPOT_BASE_URL")
                .unwrap_or_else(|| "https://api.hubapi.com".into()),
        );
        if let Some(ms) = env.parsed::<u64>("HUBSYNC_HUBSPOT_TIMEOUT_MS")? {
            client.request_timeout = Duration::from_millis(ms);
        }
        if let Some(api) = env.parsed::<ApiVersion>("HUBSYNC_HUBSPOT_API_VERSION")? {
            client.api = api;
        }
        let instances = env.parsed::<u32>("HUBSYNC_MAX_CONCURRENCY")?.unwrap_or(1);
        let mut shared = SharedLimitConfig::new(class);
        if let Some(n) = env.parsed::<u32>("HUBSYNC_RATE_LIMIT_BLOCK")? {
            shared.block = n.max(1);
        }
        if let Some(n) = env.parsed::<u32>("HUBSYNC_RATE_LIMIT_REALTIME_RESERVE")? {
            shared.realtime_reserve = n;
        }
        if let Some(n) = env.parsed::<u32>("HUBSYNC_RATE_LIMIT_BACKGROUND_RESERVE")? {
            shared.background_reserve = n;
        }
        if let Some(ms) = env.parsed::<u64>("HUBSYNC_RATE_LIMIT_GUARD_MS")? {
            shared.guard = Duration::from_millis(ms);
        }
        if let Some(ms) = env.parsed::<u64>("HUBSYNC_RATE_LIMIT_MAX_SKEW_MS")? {
            shared.max_skew = Duration::from_millis(ms);
        }
        Ok(Self {
            client,
            mode: env
                .parsed("HUBSYNC_RATE_LIMITER")?
                .unwrap_or(RateLimitMode::Shared),
            instance: RateLimitConfig::default().per_instance_share(instances),
            shared,
        })
    }

    /// The limiter for the configured mode; `ledgers` holds the shared
    /// budget (the Control table).
    pub fn rate_limiter<S>(&self, ledgers: S) -> Arc<dyn RateLimiter>
    where
        S: RateLedgerStore + Clone + 'static,
    {
        match self.mode {
            RateLimitMode::Shared => Arc::new(SharedRateLimiter::new(ledgers, self.shared)),
            RateLimitMode::Instance => Arc::new(InProcessRateLimiter::new(self.instance)),
        }
    }

    /// The HubSpot client with [`HubSpotSettings::rate_limiter`].
    pub fn client<S>(&self, ledgers: S) -> Result<HubSpotClient, HubSpotError>
    where
        S: RateLedgerStore + Clone + 'static,
    {
        HubSpotClient::with_rate_limiter(self.client.clone(), self.rate_limiter(ledgers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_modes_parse_and_unknown_ones_are_refused() {
        assert_eq!("shared".parse(), Ok(RateLimitMode::Shared));
        assert_eq!(" instance ".parse(), Ok(RateLimitMode::Instance));
        assert!("dynamo".parse::<RateLimitMode>().is_err());
    }
}
