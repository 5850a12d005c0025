//! Typed configuration of the function, read once at start-up.

use std::time::Duration;

use hubsync_auth::wiring::TokenSettings;
use hubsync_ratelimit::{HubSpotSettings, PermitClass};
use hubsync_runtime::{ConfigError, Env, FromEnv};
use hubsync_store::StoreConfig;

use crate::engine::EngineConfig;

#[derive(Debug, Clone)]
pub struct Settings {
    pub store: StoreConfig,
    /// Decrypting and refreshing the portals' tokens.
    pub tokens: TokenSettings,
    /// The HubSpot client and its rate limiter: reconciliation is the
    /// background class of the portal's shared budget, so a webhook burst
    /// keeps its reserve (README: rate limits).
    pub hubspot: HubSpotSettings,
    pub jobs_queue_url: String,
    pub engine: EngineConfig,
    pub handover_reserve: Duration,
    /// How jobs that failed are backed off on the sync-jobs queue (instead
    /// of waiting out its 90-minute visibility timeout).
    pub retry_backoff: hubsync_messages::RetryBackoff,
}

impl FromEnv for Settings {
    fn from_vars(env: &Env) -> Result<Self, ConfigError> {
        let mut engine = EngineConfig::default();
        if let Some(n) = env.parsed::<u64>("HUBSYNC_DRIFT_ALERT_THRESHOLD")? {
            engine.drift_alert_threshold = n;
        }
        if let Some(n) = env.parsed::<u32>("HUBSYNC_CHECKPOINT_EVERY_PAGES")? {
            engine.checkpoint_every_pages = n.max(1);
        }
        if let Some(s) = env.parsed::<u64>("HUBSYNC_CHECKPOINT_INTERVAL_SECS")? {
            engine.checkpoint_interval = Duration::from_secs(s.max(1));
        }
        Ok(Self {
            store: StoreConfig::from_vars(env)?,
            tokens: TokenSettings::from_vars(env)?,
            hubspot: HubSpotSettings::from_vars(env, PermitClass::Background)?,
            jobs_queue_url: env.required("HUBSYNC_SYNC_JOBS_QUEUE_URL")?,
            engine,
            handover_reserve: Duration::from_secs(
                env.parsed::<u64>("HUBSYNC_HANDOVER_RESERVE_SECS")?
                    .unwrap_or(60),
            ),
            retry_backoff: hubsync_messages::RetryBackoff {
                base: Duration::from_secs(
                    env.parsed::<u64>("HUBSYNC_RETRY_BACKOFF_BASE_SECS")?
                        .unwrap_or(60),
                ),
                max: Duration::from_secs(
                    env.parsed::<u64>("HUBSYNC_RETRY_BACKOFF_MAX_SECS")?
                        .unwrap_or(7200),
                ),
            },
        })
    }
}
