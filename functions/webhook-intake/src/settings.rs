//! Typed configuration of the intake, read once at start-up.

use hubsync_runtime::{ConfigError, Env, FromEnv};
use hubsync_store::StoreConfig;

use crate::IntakeConfig;

/// Everything the intake needs from its environment.
#[derive(Debug, Clone)]
pub struct Settings {
    pub store: StoreConfig,
    /// The webhook URL as HubSpot calls it (signatures are computed over it).
    pub public_webhook_url: String,
    /// Secrets Manager ARN (or name) of the app's client secret.
    pub client_secret_arn: String,
    pub events_queue_url: String,
    pub intake: IntakeConfig,
    /// How long a portal's connection state is cached per instance.
    pub directory_ttl_secs: u64,
}

impl FromEnv for Settings {
    fn from_vars(env: &Env) -> Result<Self, ConfigError> {
        let defaults = IntakeConfig::default();
        Ok(Self {
            store: StoreConfig::from_vars(env)?,
            public_webhook_url: env.required("HUBSYNC_PUBLIC_WEBHOOK_URL")?,
            client_secret_arn: env.required("HUBSYNC_CLIENT_SECRET_ARN")?,
            events_queue_url: env.required("HUBSYNC_EVENTS_QUEUE_URL")?,
            intake: IntakeConfig {
                max_body_bytes: env
                    .parsed("HUBSYNC_MAX_BODY_BYTES")?
                    .unwrap_or(defaults.max_body_bytes),
                max_message_bytes: defaults.max_message_bytes,
                app_id: env.parsed("HUBSYNC_HUBSPOT_APP_ID")?,
            },
            directory_ttl_secs: env.parsed("HUBSYNC_DIRECTORY_TTL_SECS")?.unwrap_or(30),
        })
    }
}
