//! Typed configuration of the worker, read once at start-up.

use hubsync_auth::wiring::TokenSettings;
use hubsync_ratelimit::{HubSpotSettings, PermitClass};
use hubsync_runtime::{ConfigError, Env, FromEnv};
use hubsync_store::StoreConfig;

#[derive(Debug, Clone)]
pub struct Settings {
    pub store: StoreConfig,
    /// Decrypting and refreshing the portals' tokens.
    pub tokens: TokenSettings,
    /// The HubSpot client and its rate limiter: the worker is the
    /// real-time class of the portal's shared budget (README: rate limits).
    pub hubspot: HubSpotSettings,
    /// Groups processed at once within one batch.
    pub concurrency: usize,
    /// No group starts this close to the invocation's deadline; their
    /// messages are returned as failures and received again.
    pub deadline_reserve: std::time::Duration,
    /// The events queue (to back off messages that failed transiently).
    pub events_queue_url: String,
    /// The back-off of those messages.
    pub retry_backoff: hubsync_messages::RetryBackoff,
}

impl FromEnv for Settings {
    fn from_vars(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            store: StoreConfig::from_vars(env)?,
            tokens: TokenSettings::from_vars(env)?,
            hubspot: HubSpotSettings::from_vars(env, PermitClass::Realtime)?,
            concurrency: env.parsed("HUBSYNC_GROUP_CONCURRENCY")?.unwrap_or(4),
            deadline_reserve: std::time::Duration::from_secs(
                env.parsed("HUBSYNC_DEADLINE_RESERVE_SECS")?.unwrap_or(10),
            ),
            events_queue_url: env.required("HUBSYNC_EVENTS_QUEUE_URL")?,
            retry_backoff: hubsync_messages::RetryBackoff {
                base: std::time::Duration::from_secs(
                    env.parsed("HUBSYNC_RETRY_BACKOFF_BASE_SECS")?.unwrap_or(30),
                ),
                max: std::time::Duration::from_secs(
                    env.parsed("HUBSYNC_RETRY_BACKOFF_MAX_SECS")?
                        .unwrap_or(7200),
                ),
            },
        })
    }
}
