//! Start-up wiring of the token source for functions that call HubSpot
//! (the worker and the reconciliation): KMS cipher + OAuth refresh client,
//! configured from the environment, the client secret from Secrets Manager.
//! The HubSpot client and its rate limiter are wired by
//! `hubsync_ratelimit::HubSpotSettings`.

use hubsync_hubspot::{OAuthClient, OAuthConfig, OAuthVersion};
use hubsync_runtime::{ConfigError, Env, FromEnv};

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

/// The app's own credentials, for a function that calls HubSpot as the
/// app (the Webhooks Journal's client-credentials token) and holds no
/// portal tokens (so no KMS key).
#[derive(Debug, Clone)]
pub struct AppCredentials {
    pub hubspot_base_url: String,
    pub client_id: String,
    pub client_secret_arn: String,
    /// Unused by the client-credentials grant; `TokenSettings` sets it.
    pub redirect_uri: String,
    pub oauth_version: OAuthVersion,
}

impl FromEnv for AppCredentials {
    /// `HUBSYNC_HUBSPOT_BASE_URL` (default `https://api.hubapi.com`),
    /// `HUBSYNC_HUBSPOT_CLIENT_ID`, `HUBSYNC_CLIENT_SECRET_ARN`,
    /// `HUBSYNC_OAUTH_VERSION` (a date version: client credentials have
    /// no v1 endpoint).
    fn from_vars(env: &Env) -> Result<Self, ConfigError> {
        let oauth_version = env
            .parsed("HUBSYNC_OAUTH_VERSION")?
            .unwrap_or_else(OAuthVersion::current);
        if oauth_version == OAuthVersion::V1 {
            return Err(ConfigError::Invalid {
                name: "HUBSYNC_OAUTH_VERSION",
                reason: "client credentials need a date version such as 2026-03, not v1".into(),
            });
        }
        Ok(Self {
            hubspot_base_url: env
                .optional("HUBSYNC_HUBSPOT_BASE_URL")
                .unwrap_or_else(|| "https://api.hubapi.com".into()),
            client_id: env.required("HUBSYNC_HUBSPOT_CLIENT_ID")?,
            client_secret_arn: env.required("HUBSYNC_CLIENT_SECRET_ARN")?,
            redirect_uri: String::new(),
            oauth_version,
        })
    }
}

impl AppCredentials {
    /// HubSpot's OAuth endpoints with the app's client secret (read from
    /// Secrets Manager here, once per cold start).
    pub async fn oauth_client(
        &self,
        aws: &aws_config::SdkConfig,
    ) -> Result<OAuthClient, Box<dyn std::error::Error + Send + Sync>> {
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
        Ok(OAuthClient::new(config)?)
    }
}

impl FromEnv for TokenSettings {
    /// `HUBSYNC_HUBSPOT_BASE_URL` (default `https://api.hubapi.com`),
    /// `HUBSYNC_TOKEN_KEY_ID`, `HUBSYNC_HUBSPOT_CLIENT_ID`,
    /// `HUBSYNC_CLIENT_SECRET_ARN`, `HUBSYNC_OAUTH_REDIRECT_URI`,
    /// `HUBSYNC_OAUTH_VERSION` (default: the current date-versioned API).
    fn from_vars(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            hubspot_base_url: env
                .optional("HUBSYNC_HUBSPOT_BASE_URL")
                .unwrap_or_else(|| "https://api.hubapi.com".into()),
            token_key_id: env.required("HUBSYNC_TOKEN_KEY_ID")?,
            client_id: env.required("HUBSYNC_HUBSPOT_CLIENT_ID")?,
            client_secret_arn: env.required("HUBSYNC_CLIENT_SECRET_ARN")?,
            redirect_uri: env.required("HUBSYNC_OAUTH_REDIRECT_URI")?,
            oauth_version: env
                .parsed("HUBSYNC_OAUTH_VERSION")?
                .unwrap_or_else(OAuthVersion::current),
        })
    }
}

impl TokenSettings {
    /// HubSpot's OAuth endpoints with the app's client secret (read from
    /// Secrets Manager here, once per cold start).
    pub async fn oauth_client(
        &self,
        aws: &aws_config::SdkConfig,
    ) -> Result<OAuthClient, Box<dyn std::error::Error + Send + Sync>> {
        AppCredentials {
            hubspot_base_url: self.hubspot_base_url.clone(),
            client_id: self.client_id.clone(),
            client_secret_arn: self.client_secret_arn.clone(),
            redirect_uri: self.redirect_uri.clone(),
            oauth_version: self.oauth_version.clone(),
        }
        .oauth_client(aws)
        .await
    }

    /// The KMS cipher of the tokens at rest.
    pub fn cipher(&self, aws: &aws_config::SdkConfig) -> KmsCipher {
        KmsCipher::new(aws_sdk_kms::Client::new(aws), self.token_key_id.clone())
    }

    /// The token source: decrypts with KMS, refreshes through HubSpot's
    /// token endpoint (single-flight through the store's lease).
    pub async fn connection_tokens<S>(
        &self,
        aws: &aws_config::SdkConfig,
        store: S,
    ) -> Result<ConnectionTokens<S, KmsCipher, OAuthClient>, Box<dyn std::error::Error + Send + Sync>>
    {
        let refresher = self.oauth_client(aws).await?;
        Ok(ConnectionTokens::new(store, self.cipher(aws)).with_refresher(refresher))
    }
}
