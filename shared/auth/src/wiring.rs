//! Start-up wiring of the token source for functions that call HubSpot
//! (the worker and the reconciliation): KMS cipher + OAuth refresh client,
//! configured from the environment, the client secret from Secrets Manager.
//! The HubSpot client and its rate limiter are wired by
//! `hubsync_ratelimit::HubSpotSettings`.

use hubsync_hubspot::{OAuthClient, OAuthConfig, OAuthVersion};
use hubsync_runtime::{optional_env, parsed_env, required_env, ConfigError};

use crate::cipher::KmsCipher;
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
