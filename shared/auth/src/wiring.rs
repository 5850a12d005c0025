//! Start-up wiring of the token source for functions that call HubSpot
//! (the worker and the reconciliation): KMS cipher + OAuth refresh client,
//! configured from the environment, the client secret from Secrets Manager;
//! and the HubSpot client with its rate limiter ([`HubSpotSettings`]).

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use hubsync_hubspot::{
    ApiVersion, ClientConfig, HubSpotClient, HubSpotError, InProcessRateLimiter, OAuthClient,
    OAuthConfig, OAuthVersion, RateLimitConfig, RateLimiter,
};
use hubsync_runtime::{optional_env, parsed_env, required_env, ConfigError};
use hubsync_store::RateLedgerStore;

use crate::cipher::KmsCipher;
use crate::shared_limit::{PermitClass, SharedLimitConfig, SharedRateLimiter};
use crate::tokens::ConnectionTokens;

/// What a HubSpot-calling function needs to decrypt and refresh tokens.
#[derive(Debug, Clone)]
pub struct TokenSettings {
    pub hubspot_base_url: String,
    pub token_key_id: String,
    pub client_id: String,
    pub client_secret_arn: String,
    pub redirect_uri: String,
    pub oauth_version: OAuthVersion,
}

impl TokenSettings {
    /// `HUBSYNC_HUBSPOT_BASE_URL` (default `https://api.hubapi.com`),
    /// `HUBSYNC_TOKEN_KEY_ID`, `HUBSYNC_HUBSPOT_CLIENT_ID`,
    /// `HUBSYNC_CLIENT_SECRET_ARN`, `HUBSYNC_OAUTH_REDIRECT_URI`,
    /// `HUBSYNC_OAUTH_VERSION` (default: the current date-versioned API).
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            hubspot_base_url: optional_env("HUBSYNC_HUBSPOT_BASE_URL")
                .unwrap_or_else(|| "https://api.hubapi.com".into()),
            token_key_id: required_env("HUBSYNC_TOKEN_KEY_ID")?,
            client_id: required_env("HUBSYNC_HUBSPOT_CLIENT_ID")?,
            client_secret_arn: required_env("HUBSYNC_CLIENT_SECRET_ARN")?,
            redirect_uri: required_env("HUBSYNC_OAUTH_REDIRECT_URI")?,
            oauth_version: parsed_env("HUBSYNC_OAUTH_VERSION")?
                .unwrap_or_else(OAuthVersion::current),
        })
    }

    /// The token source: decrypts with KMS, refreshes through HubSpot's
    /// token endpoint (single-flight through the store's lease).
    pub async fn connection_tokens<S>(
        &self,
        aws: &aws_config::SdkConfig,
        store: S,
    ) -> Result<ConnectionTokens<S, KmsCipher, OAuthClient>, Box<dyn std::error::Error + Send + Sync>>
    {
        let secret = hubsync_runtime::load_secret(
            &aws_sdk_secretsmanager::Client::new(aws),
            &self.client_secret_arn,
        )
        .await?;
        let mut config = OAuthConfig::new(
            self.hubspot_base_url.clone(),
            self.client_id.clone(),
            secret,
            self.redirect_uri.clone(),
        );
        config.version = self.oauth_version.clone();
        let cipher = KmsCipher::new(aws_sdk_kms::Client::new(aws), self.token_key_id.clone());
        Ok(ConnectionTokens::new(store, cipher).with_refresher(OAuthClient::new(config)?))
    }
}

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
    /// `HUBSYNC_RATE_LIMIT_BACKGROUND_RESERVE`.
    pub fn from_env(class: PermitClass) -> Result<Self, ConfigError> {
        let mut client = ClientConfig::new(
            optional_env("HUBSYNC_HUBSPOT_BASE_URL")
                .unwrap_or_else(|| "https://api.hubapi.com".into()),
        );
        if let Some(ms) = parsed_env::<u64>("HUBSYNC_HUBSPOT_TIMEOUT_MS")? {
            client.request_timeout = Duration::from_millis(ms);
        }
        if let Some(api) = parsed_env::<ApiVersion>("HUBSYNC_HUBSPOT_API_VERSION")? {
            client.api = api;
        }
        let instances = parsed_env::<u32>("HUBSYNC_MAX_CONCURRENCY")?.unwrap_or(1);
        let mut shared = SharedLimitConfig::new(class);
        if let Some(n) = parsed_env::<u32>("HUBSYNC_RATE_LIMIT_BLOCK")? {
            shared.block = n.max(1);
        }
        if let Some(n) = parsed_env::<u32>("HUBSYNC_RATE_LIMIT_REALTIME_RESERVE")? {
            shared.realtime_reserve = n;
        }
        if let Some(n) = parsed_env::<u32>("HUBSYNC_RATE_LIMIT_BACKGROUND_RESERVE")? {
            shared.background_reserve = n;
        }
        Ok(Self {
            client,
            mode: parsed_env("HUBSYNC_RATE_LIMITER")?.unwrap_or(RateLimitMode::Shared),
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
