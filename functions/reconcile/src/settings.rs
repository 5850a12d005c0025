//! Typed configuration of the function, read once at start-up.

use std::time::Duration;

use hubsync_hubspot::{ClientConfig, RateLimitConfig};
use hubsync_runtime::{optional_env, parsed_env, required_env, ConfigError};

use crate::engine::EngineConfig;

#[derive(Debug, Clone)]
pub struct Settings {
    pub hubspot: ClientConfig,
    /// This instance's share of each portal's HubSpot budget.
    pub rate_limit: RateLimitConfig,
    pub jobs_queue_url: String,
    pub engine: EngineConfig,
    pub handover_reserve: Duration,
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
        // Every concurrent instance of every HubSpot-calling function takes
        // an equal share of a portal's 110 requests / 10 s.
        let instances = parsed_env::<u32>("HUBSYNC_MAX_CONCURRENCY")?.unwrap_or(1);
        let mut engine = EngineConfig::default();
        if let Some(n) = parsed_env::<u64>("HUBSYNC_DRIFT_ALERT_THRESHOLD")? {
            engine.drift_alert_threshold = n;
        }
        if let Some(n) = parsed_env::<u32>("HUBSYNC_CHECKPOINT_EVERY_PAGES")? {
            engine.checkpoint_every_pages = n.max(1);
        }
        Ok(Self {
            hubspot,
            rate_limit: RateLimitConfig::default().per_instance_share(instances),
            jobs_queue_url: required_env("HUBSYNC_SYNC_JOBS_QUEUE_URL")?,
            engine,
            handover_reserve: Duration::from_secs(
                parsed_env::<u64>("HUBSYNC_HANDOVER_RESERVE_SECS")?.unwrap_or(60),
            ),
        })
    }
}
