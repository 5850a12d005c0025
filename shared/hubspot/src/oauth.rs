//! HubSpot's OAuth token endpoint: code exchange, refresh, token info /
//! introspection and revocation.
//!
//! * The endpoint version is configuration ([`OAuthVersion`]): `v1`
//!   (`/oauth/v1/token`, retired 2027-02-16) or a date version such as
//!   `2026-03` (`/oauth/2026-03/token`, `/token/introspect`,
//!   `/token/revoke`).
//! * Errors are typed ([`OAuthError`]): `invalid_grant` carries HubSpot's
//!   `status` (`BAD_AUTH_CODE`, `BAD_REFRESH_TOKEN`, ...) parsed from the
//!   body; 429, 5xx, timeouts and transport errors are retried a bounded
//!   number of times ([`OAuthRetry`]), honouring `Retry-After` up to a cap.
//! * Tokens, codes and the client secret are [`SecretString`]s. They are
//!   never logged, never part of an error, and `Debug` output redacts them.
//!   Transport errors are stripped of their URL (the v1 token-info route
//!   carries the token in its path).

use std::fmt;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::error::truncate;
use crate::ids::PortalId;

mod config;
pub use config::*;

/// HubSpot's `status` in an `invalid_grant` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantStatus {
    /// The code is unknown, expired or already used.
    BadAuthCode,
    /// The refresh token is revoked or unknown (app uninstalled).
    BadRefreshToken,
    /// The redirect URI differs from the authorize request's.
    BadRedirectUri,
    /// Another or no status (truncated).
    Other(String),
}

impl GrantStatus {
    fn parse(s: Option<&str>) -> Self {
        match s.map(str::trim) {
            Some("BAD_AUTH_CODE") => Self::BadAuthCode,
            Some("BAD_REFRESH_TOKEN") => Self::BadRefreshToken,
            Some("BAD_REDIRECT_URI") => Self::BadRedirectUri,
            Some(other) => Self::Other(truncate(other, 64)),
            None => Self::Other(String::new()),
        }
    }
}

impl fmt::Display for GrantStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadAuthCode => f.write_str("BAD_AUTH_CODE"),
            Self::BadRefreshToken => f.write_str("BAD_REFRESH_TOKEN"),
            Self::BadRedirectUri => f.write_str("BAD_REDIRECT_URI"),
            Self::Other(s) if s.is_empty() => f.write_str("unknown"),
            Self::Other(s) => f.write_str(s),
        }
    }
}

/// Why a token-endpoint call failed. Never carries a token, a code or the
/// client secret.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// `invalid_grant`: the code or refresh token is no good. For a refresh
    /// token this means the grant is gone: re-authorisation is needed.
    #[error("HubSpot refused the grant (invalid_grant, {status})")]
    InvalidGrant { status: GrantStatus },
    /// `invalid_client`: the client id or secret is wrong (configuration).
    #[error("HubSpot refused the app's credentials (invalid_client)")]
    InvalidClient,
    /// 429 after the retries.
    #[error("HubSpot's token endpoint is rate limiting")]
    RateLimited { retry_after: Option<Duration> },
    /// 5xx after the retries.
    #[error("HubSpot's token endpoint failed with {status}")]
    Server { status: u16 },
    #[error("HubSpot's token endpoint timed out")]
    Timeout,
    #[error("transport error talking to HubSpot's token endpoint")]
    Transport(#[source] reqwest::Error),
    /// Another 4xx (`error` code and HubSpot's short message, truncated).
    #[error("HubSpot rejected the OAuth request with {status} ({error}): {message}")]
    Rejected {
        status: u16,
        error: String,
        message: String,
    },
    /// A 2xx whose body did not have the expected shape (no body echoed).
    #[error("could not decode HubSpot's {what} response")]
    Decode { what: &'static str },
    /// The configuration is unusable (e.g. a bad base URL).
    #[error("invalid OAuth configuration: {0}")]
    Config(String),
}

impl OAuthError {
    /// Whether the same call may succeed later.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            OAuthError::RateLimited { .. }
                | OAuthError::Server { .. }
                | OAuthError::Timeout
                | OAuthError::Transport(_)
        )
    }

    /// `invalid_grant` on a refresh: the portal must be re-authorised.
    pub fn is_revoked_grant(&self) -> bool {
        matches!(self, OAuthError::InvalidGrant { .. })
    }
}

/// Tokens from the token endpoint. `Debug` redacts them.
#[derive(Clone)]
pub struct TokenGrant {
    pub access_token: SecretString,
    /// The refresh token of this response (always store it: HubSpot may
    /// rotate it).
    pub refresh_token: SecretString,
    /// Seconds the access token lives (1800 today; follow the field).
    pub expires_in: u64,
    /// The portal, on newer responses.
    pub hub_id: Option<PortalId>,
    /// The scopes granted (`scopes` on 2026 responses): declined optional
    /// scopes are absent. `None` when the response does not say.
    pub scopes: Option<Vec<String>>,
}

impl fmt::Debug for TokenGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenGrant")
            .field("access_token", &"<redacted>")
            .field("refresh_token", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .field("hub_id", &self.hub_id)
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// What HubSpot says about an access token (v1 token info or 2026-03
/// introspection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub active: bool,
    pub hub_id: Option<PortalId>,
    pub scopes: Vec<String>,
    pub expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct WireGrant {
    access_token: String,
    refresh_token: String,
    expires_in: u64,
    #[serde(default)]
    hub_id: Option<PortalId>,
    #[serde(default)]
    scopes: Option<Vec<String>>,
    /// RFC 6749's space-separated form, if that is what is sent.
    #[serde(default)]
    scope: Option<String>,
}

/// A client-credentials token. `Debug` redacts it.
#[derive(Clone)]
pub struct AppGrant {
    pub access_token: SecretString,
    pub expires_in: u64,
}

impl fmt::Debug for AppGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppGrant")
            .field("access_token", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

#[derive(Deserialize)]
struct WireAppGrant {
    access_token: String,
    expires_in: u64,
}

#[derive(Deserialize)]
struct WireInfo {
    #[serde(default)]
    active: Option<bool>,
    #[serde(default)]
    hub_id: Option<PortalId>,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize, Default)]
struct WireOAuthError {
    #[serde(default)]
    error: Option<String>,
    /// The date-versioned APIs' generic error body.
    #[serde(default)]
    category: Option<String>,
    #[serde(default, rename = "subCategory")]
    sub_category: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

impl WireOAuthError {
    /// A refused grant in any shape HubSpot answers with:
    /// * RFC 6749's `{"error":"invalid_grant"}` (with or without `status`);
    /// * OAuth v1's `{"status":"BAD_REFRESH_TOKEN","message"}` (no `error`);
    /// * the date-versioned generic error `{"category","subCategory",
    ///   "message"}` naming an invalid or expired token (`subCategory`
    ///   `INVALID_TOKEN`/`EXPIRED_TOKEN`/a grant status, or a message about
    ///   the refresh token or auth code).
    ///
    /// An `invalid_client` (the app's credentials) is not a refused grant.
    fn refused_grant(&self) -> Option<GrantStatus> {
        const GRANT_STATUSES: [&str; 3] =
            ["BAD_REFRESH_TOKEN", "BAD_AUTH_CODE", "BAD_REDIRECT_URI"];
        if self.error.as_deref() == Some("invalid_client") {
            return None;
        }
        if self.error.as_deref() == Some("invalid_grant") {
            return Some(GrantStatus::parse(self.status.as_deref()));
        }
        let status = self.status.as_deref().map(str::trim);
        if let Some(s) = status.filter(|s| GRANT_STATUSES.contains(s)) {
            return Some(GrantStatus::parse(Some(s)));
        }
        self.category.as_ref()?;
        let sub = self.sub_category.as_deref().map(str::trim).unwrap_or("");
        if GRANT_STATUSES.contains(&sub) {
            return Some(GrantStatus::parse(Some(sub)));
        }
        let message = self
            .message
            .as_deref()
            .or(self.error_description.as_deref())
            .unwrap_or("")
            .to_ascii_lowercase();
        let names_client = message.contains("client");
        if message.contains("refresh token") && !names_client {
            return Some(GrantStatus::BadRefreshToken);
        }
        if message.contains("auth code") || message.contains("authorization code") {
            return Some(GrantStatus::BadAuthCode);
        }
        matches!(sub, "INVALID_TOKEN" | "EXPIRED_TOKEN").then(|| GrantStatus::Other(sub.to_owned()))
    }
}

/// The token endpoint client. Cheap to clone.
#[derive(Clone)]
pub struct OAuthClient {
    http: reqwest::Client,
    base_url: String,
    config: OAuthConfig,
}

impl fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthClient")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

enum Body {
    None,
    Form(Vec<(&'static str, String)>),
}

impl OAuthClient {
    pub fn new(config: OAuthConfig) -> Result<Self, OAuthError> {
        let url = url::Url::parse(&config.base_url)
            .map_err(|_| OAuthError::Config("base_url is not a valid URL".into()))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(OAuthError::Config(
                "base_url must be an http(s) URL with a host".into(),
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(Duration::from_secs(3))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("hubsync/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| OAuthError::Transport(e.without_url()))?;
        Ok(Self {
            http,
            base_url: url.as_str().trim_end_matches('/').to_owned(),
            config,
        })
    }

    pub fn config(&self) -> &OAuthConfig {
        &self.config
    }

    /// The HTTP client (timeouts, no redirects, user agent), for the other
    /// clients that call HubSpot as the app.
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    fn version(&self) -> &str {
        self.config.version.as_str()
    }

    fn credentials(&self) -> [(&'static str, String); 2] {
        [
            ("client_id", self.config.client_id.clone()),
            (
                "client_secret",
                self.config.client_secret.expose_secret().to_owned(),
            ),
        ]
    }

    /// `grant_type=authorization_code`: the code from the callback.
    pub async fn exchange_code(&self, code: &SecretString) -> Result<TokenGrant, OAuthError> {
        let mut form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("redirect_uri", self.config.redirect_uri.clone()),
            ("code", code.expose_secret().to_owned()),
        ];
        form.extend(self.credentials());
        self.grant("code exchange", form).await
    }

    /// `grant_type=refresh_token`.
    pub async fn refresh(&self, refresh_token: &SecretString) -> Result<TokenGrant, OAuthError> {
        let mut form = vec![
            ("grant_type", "refresh_token".to_owned()),
            ("redirect_uri", self.config.redirect_uri.clone()),
            ("refresh_token", refresh_token.expose_secret().to_owned()),
        ];
        form.extend(self.credentials());
        self.grant("token refresh", form).await
    }

    /// `grant_type=client_credentials`: the app's own token (no portal, no
    /// refresh token), for the Webhooks Journal. Date-versioned endpoints
    /// only.
    pub async fn client_credentials(&self, scopes: &[&str]) -> Result<AppGrant, OAuthError> {
        if self.config.version == OAuthVersion::V1 {
            return Err(OAuthError::Config(
                "client credentials need a date-versioned token endpoint (e.g. 2026-03), not v1"
                    .into(),
            ));
        }
        let mut form = vec![
            ("grant_type", "client_credentials".to_owned()),
            ("scope", scopes.join(" ")),
        ];
        form.extend(self.credentials());
        let what = "client credentials";
        let path = format!("/oauth/{}/token", self.version());
        let bytes = self
            .send(what, Method::POST, &path, Body::Form(form))
            .await?;
        let wire: WireAppGrant =
            serde_json::from_slice(&bytes).map_err(|_| OAuthError::Decode { what })?;
        Ok(AppGrant {
            access_token: SecretString::from(wire.access_token),
            expires_in: wire.expires_in,
        })
    }

    async fn grant(
        &self,
        what: &'static str,
        form: Vec<(&'static str, String)>,
    ) -> Result<TokenGrant, OAuthError> {
        let path = format!("/oauth/{}/token", self.version());
        let bytes = self
            .send(what, Method::POST, &path, Body::Form(form))
            .await?;
        let wire: WireGrant =
            serde_json::from_slice(&bytes).map_err(|_| OAuthError::Decode { what })?;
        Ok(TokenGrant {
            access_token: SecretString::from(wire.access_token),
            refresh_token: SecretString::from(wire.refresh_token),
            expires_in: wire.expires_in,
            hub_id: wire.hub_id,
            scopes: wire.scopes.or_else(|| {
                wire.scope
                    .map(|s| s.split_whitespace().map(str::to_owned).collect())
            }),
        })
    }

    /// What HubSpot knows about an access token, with the configured
    /// version: `POST /oauth/{date}/token/introspect`, or for `v1`
    /// [`OAuthClient::access_token_info`].
    pub async fn introspect(&self, token: &SecretString) -> Result<TokenInfo, OAuthError> {
        if self.config.version == OAuthVersion::V1 {
            return self.access_token_info(token).await;
        }
        let mut form = vec![("token", token.expose_secret().to_owned())];
        form.extend(self.credentials());
        let path = format!("/oauth/{}/token/introspect", self.version());
        let bytes = self
            .send("introspection", Method::POST, &path, Body::Form(form))
            .await?;
        let wire: WireInfo = serde_json::from_slice(&bytes).map_err(|_| OAuthError::Decode {
            what: "introspection",
        })?;
        Ok(TokenInfo {
            active: wire.active.unwrap_or(false),
            hub_id: wire.hub_id,
            scopes: wire.scopes,
            expires_in: wire.expires_in,
        })
    }

    /// `GET /oauth/v1/access-tokens/{token}` (v1 token info).
    pub async fn access_token_info(&self, token: &SecretString) -> Result<TokenInfo, OAuthError> {
        let path = format!(
            "/oauth/v1/access-tokens/{}",
            percent_encoding::utf8_percent_encode(
                token.expose_secret(),
                percent_encoding::NON_ALPHANUMERIC
            )
        );
        let bytes = self
            .send("token info", Method::GET, &path, Body::None)
            .await?;
        let wire: WireInfo = serde_json::from_slice(&bytes)
            .map_err(|_| OAuthError::Decode { what: "token info" })?;
        Ok(TokenInfo {
            active: wire.active.unwrap_or(true),
            hub_id: wire.hub_id,
            scopes: wire.scopes,
            expires_in: wire.expires_in,
        })
    }

    /// Revokes a refresh token (and so the grant): `POST
    /// /oauth/{date}/token/revoke`, or `DELETE /oauth/v1/refresh-tokens/{t}`.
    /// An unknown token counts as revoked.
    pub async fn revoke(&self, refresh_token: &SecretString) -> Result<(), OAuthError> {
        let result = if self.config.version == OAuthVersion::V1 {
            let path = format!(
                "/oauth/v1/refresh-tokens/{}",
                percent_encoding::utf8_percent_encode(
                    refresh_token.expose_secret(),
                    percent_encoding::NON_ALPHANUMERIC
                )
            );
            self.send("revocation", Method::DELETE, &path, Body::None)
                .await
        } else {
            let mut form = vec![("token", refresh_token.expose_secret().to_owned())];
            form.extend(self.credentials());
            let path = format!("/oauth/{}/token/revoke", self.version());
            self.send("revocation", Method::POST, &path, Body::Form(form))
                .await
        };
        match result {
            Ok(_) => Ok(()),
            Err(OAuthError::Rejected { status: 404, .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// One call with bounded retries; the body of a 2xx.
    async fn send(
        &self,
        what: &'static str,
        method: Method,
        path: &str,
        body: Body,
    ) -> Result<Vec<u8>, OAuthError> {
        let url = format!("{}{path}", self.base_url);
        let form = match &body {
            Body::None => None,
            Body::Form(pairs) => Some(
                url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str())))
                    .finish(),
            ),
        };
        self.config
            .retry
            .run(
                what,
                || {
                    let mut req = self
                        .http
                        .request(method.clone(), &url)
                        .header(reqwest::header::ACCEPT, "application/json");
                    if let Some(form) = &form {
                        req = req
                            .header(
                                reqwest::header::CONTENT_TYPE,
                                "application/x-www-form-urlencoded",
                            )
                            .body(form.clone());
                    }
                    self.once(req, what)
                },
                OAuthError::is_retryable,
                |e| match e {
                    OAuthError::RateLimited { retry_after } => *retry_after,
                    _ => None,
                },
            )
            .await
    }

    async fn once(
        &self,
        req: reqwest::RequestBuilder,
        what: &'static str,
    ) -> Result<Vec<u8>, OAuthError> {
        let resp = req.send().await.map_err(classify)?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = resp.bytes().await.map_err(classify)?.to_vec();
        tracing::debug!(
            op = what,
            status = status.as_u16(),
            "HubSpot OAuth response"
        );
        if status.is_success() {
            return Ok(bytes);
        }
        let body: WireOAuthError = serde_json::from_slice(&bytes).unwrap_or_default();
        Err(match status {
            StatusCode::TOO_MANY_REQUESTS => OAuthError::RateLimited { retry_after },
            s if s.is_server_error() => OAuthError::Server { status: s.as_u16() },
            s => match (body.refused_grant(), body.error.as_deref()) {
                (Some(status), _) => OAuthError::InvalidGrant { status },
                (None, Some("invalid_client")) => OAuthError::InvalidClient,
                (None, error) => OAuthError::Rejected {
                    status: s.as_u16(),
                    error: truncate(error.or(body.status.as_deref()).unwrap_or(""), 64),
                    message: truncate(
                        body.message
                            .as_deref()
                            .or(body.error_description.as_deref())
                            .unwrap_or(""),
                        200,
                    ),
                },
            },
        })
    }
}

fn classify(e: reqwest::Error) -> OAuthError {
    if e.is_timeout() {
        OAuthError::Timeout
    } else {
        OAuthError::Transport(e.without_url())
    }
}

#[cfg(test)]
mod tests;
