//! Typed configuration of the worker, read once at start-up.

use hubsync_ratelimit::{HubSpotSettings, PermitClass};
use hubsync_runtime::{parsed_env, ConfigError};

#[derive(Debug, Clone)]
pub struct Settings {
    /// The HubSpot client and its rate limiter: the worker is the
    /// real-time class of the portal's shared budget (README: rate limits).
    pub hubspot: HubSpotSettings,
    /// Groups processed at once within one batch.
    pub concurrency: usize,
}

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            hubspot: HubSpotSettings::from_env(PermitClass::Realtime)?,
            concurrency: parsed_env("HUBSYNC_GROUP_CONCURRENCY")?.unwrap_or(4),
        })
    }
}
