//! Typed configuration, read once at start-up from the environment (the
//! link key from Secrets Manager by `main.rs`).

use std::time::Duration;

use hubsync_auth::wiring::TokenSettings;
use hubsync_ratelimit::{HubSpotSettings, PermitClass};
use hubsync_runtime::{ConfigError, Env, FromEnv};
use hubsync_store::StoreConfig;
use secrecy::SecretString;

use crate::api::ApiConfig;
use crate::caller::CallerPolicy;

/// The variable naming the roles allowed to call the API.
pub const CALLERS_VAR: &str = "HUBSYNC_ADMIN_CALLER_ROLE_ARNS";

/// Everything `main.rs` reads from the environment.
#[derive(Debug, Clone)]
pub struct Settings {
    pub store: StoreConfig,
    /// The app's identity, token endpoint and the tokens' KMS key (to call
    /// HubSpot for a portal, and to revoke at disconnect).
    pub tokens: TokenSettings,
    /// HubSpot's client; the admin waits, so its calls take realtime
    /// permits of the shared budget.
    pub hubspot: HubSpotSettings,
    pub sync_jobs_queue_url: String,
    pub link_secret_arn: String,
    pub callers: CallerPolicy,
    /// Where install links point: the deployment's public base URL
    /// (`HUBSYNC_PUBLIC_BASE_URL`, the template's `PublicBaseUrl`).
    pub public_base_url: String,
    pub link_max_lifetime: Duration,
}

impl FromEnv for Settings {
    fn from_vars(env: &Env) -> Result<Self, ConfigError> {
        let tokens = TokenSettings::from_vars(env)?;
        let public_base_url = env
            .required("HUBSYNC_PUBLIC_BASE_URL")?
            .trim_end_matches('/')
            .to_owned();
        let callers = CallerPolicy::parse(&env.required(CALLERS_VAR)?).map_err(|reason| {
            ConfigError::Invalid {
                name: CALLERS_VAR,
                reason,
            }
        })?;
        Ok(Self {
            store: StoreConfig::from_vars(env)?,
            hubspot: HubSpotSettings::from_vars(env, PermitClass::Realtime)?,
            tokens,
            sync_jobs_queue_url: env.required("HUBSYNC_SYNC_JOBS_QUEUE_URL")?,
            link_secret_arn: env.required("HUBSYNC_LINK_SECRET_ARN")?,
            callers,
            public_base_url,
            link_max_lifetime: Duration::from_secs(
                env.parsed("HUBSYNC_LINK_MAX_LIFETIME_SECS")?
                    .unwrap_or(3600),
            ),
        })
    }
}

impl Settings {
    /// The API's configuration with the link key read at start-up.
    pub fn api(&self, link_secret: SecretString) -> ApiConfig {
        let mut config = ApiConfig::new(
            self.callers.clone(),
            link_secret,
            self.public_base_url.clone(),
        );
        config.link_max_lifetime = self.link_max_lifetime;
        config.link_lifetime = config.link_lifetime.min(self.link_max_lifetime);
        config
    }
}
