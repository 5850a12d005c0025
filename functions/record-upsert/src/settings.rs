//! Typed configuration of the worker, read once at start-up.

use std::time::Duration;

use hubsync_hubspot::{ClientConfig, RateLimitConfig};
use hubsync_runtime::{optional_env, parsed_env, ConfigError};

#[derive(Debug, Clone)]
pub struct Settings {
    pub hubspot: ClientConfig,
    /// This instance's share of each portal's HubSpot budget.
    pub rate_limit: RateLimitConfig,
    /// Groups processed at once within one batch.
    pub concurrency: usize,
}

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        let mut hubspot = ClientConfig::new(
            optional_env("HUBSYNC_HUBSPOT_BASE_URL")
                .unwrap_or_else(|| "https://api.hubapi.com".into()),
        );
        if let Some(ms) = parsed_env::<u64>("HUBSYNC_HUBSPOT_TIMEOUT_MS")? {
            hubspot.request_timeout = Duration::from_millis(ms);
        }
        // Every concurrent worker instance takes an equal share of the
        // portal's 110 requests / 10 s (see README: rate limiting).
        let instances = parsed_env::<u32>("HUBSYNC_MAX_CONCURRENCY")?.unwrap_or(1);
        Ok(Self {
            hubspot,
            rate_limit: RateLimitConfig::default().per_instance_share(instances),
            concurrency: parsed_env("HUBSYNC_GROUP_CONCURRENCY")?.unwrap_or(4),
        })
    }
}
