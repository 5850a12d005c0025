//! Typed configuration of the intake, read once at start-up.

use hubsync_runtime::{optional_env, parsed_env, required_env, ConfigError};

use crate::IntakeConfig;

/// Everything the intake needs from its environment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The webhook URL as HubSpot calls it (signatures are computed over it).
    pub public_webhook_url: String,
    /// Secrets Manager ARN (or name) of the app's client secret.
    pub client_secret_arn: String,
    pub events_queue_url: String,
    pub intake: IntakeConfig,
    /// How long a portal's connection state is cached per instance.
    pub directory_ttl_secs: u64,
}

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        let defaults = IntakeConfig::default();
        Ok(Self {
            public_webhook_url: required_env("HUBSYNC_PUBLIC_WEBHOOK_URL")?,
            client_secret_arn: required_env("HUBSYNC_CLIENT_SECRET_ARN")?,
            events_queue_url: required_env("HUBSYNC_EVENTS_QUEUE_URL")?,
            intake: IntakeConfig {
                max_body_bytes: parsed_env("HUBSYNC_MAX_BODY_BYTES")?
                    .unwrap_or(defaults.max_body_bytes),
                max_message_bytes: defaults.max_message_bytes,
                app_id: optional_env("HUBSYNC_HUBSPOT_APP_ID")
                    .map(|v| {
                        v.parse().map_err(|_| ConfigError::Invalid {
                            name: "HUBSYNC_HUBSPOT_APP_ID",
                            reason: "not a number".into(),
                        })
                    })
                    .transpose()?,
            },
            directory_ttl_secs: parsed_env("HUBSYNC_DIRECTORY_TTL_SECS")?.unwrap_or(30),
        })
    }
}
