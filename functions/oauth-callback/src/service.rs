//! The connect flow: install → HubSpot consent → callback, and disconnect.
//! Generic over narrow traits ([`TokenEndpoint`], [`JobQueue`], the store's
//! [`OAuthStateStore`] + [`ConnectionStore`], the [`TokenCipher`]) so that
//! tests can drive it.
//!
//! Every failure ends on a [`Reply`] with a clear message and the right
//! status; logs carry ids (tenant, portal) and error kinds, never a token,
//! a code, a state or the client secret.

use std::future::Future;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hubsync_auth::{expires_at, TokenCipher};
use hubsync_hubspot::{GrantStatus, OAuthClient, OAuthError, PortalId, TokenGrant, TokenInfo};
use hubsync_store::{
    ClaimOutcome, Connection, ConnectionStatus, ConnectionStore, OAuthStateStore, PendingAuth,
    StateOutcome, SyncJob,
};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use secrecy::SecretString;

use hubsync_admin::connection::GrantRevoker;
use hubsync_messages::JobMessage;

use crate::link::{self, LinkError, Purpose};
use crate::reply::Reply;
use crate::settings::FlowConfig;

/// HubSpot's token endpoint, as the flow needs it (revocation, for the
/// disconnect route, through the shared [`GrantRevoker`]).
pub trait TokenEndpoint: GrantRevoker + Send + Sync {
    fn exchange_code(
        &self,
        code: &SecretString,
    ) -> impl Future<Output = Result<TokenGrant, OAuthError>> + Send;

    fn introspect(
        &self,
        access_token: &SecretString,
    ) -> impl Future<Output = Result<TokenInfo, OAuthError>> + Send;
}

impl TokenEndpoint for OAuthClient {
    fn exchange_code(
        &self,
        code: &SecretString,
    ) -> impl Future<Output = Result<TokenGrant, OAuthError>> + Send {
        OAuthClient::exchange_code(self, code)
    }

    fn introspect(
        &self,
        access_token: &SecretString,
    ) -> impl Future<Output = Result<TokenInfo, OAuthError>> + Send {
        OAuthClient::introspect(self, access_token)
    }
}

/// Where sync jobs go: the sync-jobs queue, through the one queue
/// contract every producer uses.
pub use hubsync_messages::{JobQueue, QueueError};

/// The flow's dependencies.
pub struct OAuthService<S, T, C, Q> {
    pub config: FlowConfig,
    pub store: S,
    pub hubspot: T,
    pub cipher: C,
    pub jobs: Q,
}

/// Query parameters, decoded.
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(raw: Option<&str>) -> Self {
        Self(
            url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The first value of `name`, if present and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

/// Characters escaped in the authorize URL's query values (RFC 3986
/// unreserved characters stay; spaces become `%20`).
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn link_refused(e: LinkError) -> Reply {
    let (status, message) = match e {
        LinkError::Missing => (
            401,
            "This link is missing its signature. Open \"Connect HubSpot\" from the application again.",
        ),
        LinkError::BadTenant | LinkError::BadSignature => (
            403,
            "This link is not valid (its signature does not match). Open \"Connect HubSpot\" from the application again.",
        ),
        LinkError::Expired => (
            403,
            "This link has expired. Open \"Connect HubSpot\" from the application again.",
        ),
        LinkError::TooLong => (
            403,
            "This link is not valid (its expiry is too far away). Open \"Connect HubSpot\" from the application again.",
        ),
    };
    Reply::page(status, "Link not valid", message)
}

fn unavailable() -> Reply {
    Reply::page(
        503,
        "Temporarily unavailable",
        "HubSpot could not be connected right now because of a temporary problem on our side. Please try again in a few minutes.",
    )
}

fn restart(status: u16, title: &str, why: &str) -> Reply {
    Reply::page(
        status,
        title,
        &format!("{why} Nothing was connected. Please start again from \"Connect HubSpot\" in the application."),
    )
}

/// The page for a failed token-endpoint call.
fn token_endpoint_failed(e: &OAuthError) -> Reply {
    match e {
        OAuthError::InvalidGrant {
            status: GrantStatus::BadAuthCode,
        } => restart(
            400,
            "Authorization code not valid",
            "HubSpot's authorization code has expired or was already used.",
        ),
        OAuthError::InvalidGrant { .. } => restart(
            400,
            "Authorization refused",
            "HubSpot refused the authorization.",
        ),
        OAuthError::RateLimited { .. } => restart(
            503,
            "HubSpot is busy",
            "HubSpot asked us to slow down while connecting your account.",
        ),
        OAuthError::Server { .. } | OAuthError::Timeout | OAuthError::Transport(_) => restart(
            502,
            "HubSpot is not responding",
            "HubSpot did not answer while connecting your account.",
        ),
        OAuthError::InvalidClient
        | OAuthError::Rejected { .. }
        | OAuthError::Decode { .. }
        | OAuthError::Config(_) => restart(
            502,
            "Connection failed",
            "HubSpot rejected the connection request (a configuration problem on our side has been logged).",
        ),
    }
}

impl<S, T, C, Q> OAuthService<S, T, C, Q>
where
    S: OAuthStateStore + ConnectionStore,
    T: TokenEndpoint,
    C: TokenCipher,
    Q: JobQueue,
{
    fn max_lifetime(&self) -> i64 {
        i64::try_from(self.config.link_max_lifetime.as_secs()).unwrap_or(i64::MAX)
    }

    /// `GET /oauth/install?tenant&expires&signature`.
    pub async fn install(&self, query: &Query, now_epoch: i64) -> Reply {
        let tenant = match link::verify(
            &self.config.link_secret,
            Purpose::Install,
            query.get("tenant"),
            query.get("expires"),
            query.get("signature"),
            now_epoch,
            self.max_lifetime(),
        ) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(reason = %e, "install link refused");
                return link_refused(e);
            }
        };
        let state = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
        let ttl = i64::try_from(self.config.state_ttl.as_secs()).unwrap_or(600);
        let pending = PendingAuth {
            tenant_id: tenant.clone(),
            expires_at_epoch: now_epoch.saturating_add(ttl),
        };
        if let Err(e) = self.store.put_oauth_state(&state, &pending).await {
            tracing::error!(tenant = %tenant, error = %e, "could not store the OAuth state");
            return unavailable();
        }
        let scopes = self.config.scopes.join(" ");
        let sep = if self.config.authorize_url.contains('?') {
            '&'
        } else {
            '?'
        };
        let optional = if self.config.optional_scopes.is_empty() {
            String::new()
        } else {
            format!(
                "&optional_scope={}",
                utf8_percent_encode(&self.config.optional_scopes.join(" "), QUERY_VALUE)
            )
        };
        let location = format!(
            "{}{sep}client_id={}&redirect_uri={}&scope={}{optional}&state={}",
            self.config.authorize_url,
            utf8_percent_encode(&self.config.client_id, QUERY_VALUE),
            utf8_percent_encode(&self.config.redirect_uri, QUERY_VALUE),
            utf8_percent_encode(&scopes, QUERY_VALUE),
            utf8_percent_encode(&state, QUERY_VALUE),
        );
        tracing::info!(tenant = %tenant, "install: redirecting to HubSpot's consent page");
        Reply::redirect(location)
    }

    /// `GET /oauth/callback?code&state` (or `?error&error_description&state`).
    pub async fn callback(&self, query: &Query, now_epoch: i64) -> Reply {
        let Some(state) = query.get("state") else {
            tracing::warn!("callback without a state");
            return restart(
                400,
                "Connection link not valid",
                "This page was opened without the security token HubSpot sends back.",
            );
        };
        let tenant = match self.store.consume_oauth_state(state, now_epoch).await {
            Ok(StateOutcome::Consumed { tenant_id }) => tenant_id,
            Ok(StateOutcome::Unknown) => {
                tracing::warn!("callback with an unknown state");
                return restart(
                    400,
                    "Connection link not valid",
                    "This connection attempt is unknown (or has lapsed).",
                );
            }
            Ok(StateOutcome::AlreadyUsed) => {
                tracing::warn!("callback with a state that was already used");
                return restart(
                    400,
                    "Connection link already used",
                    "This connection attempt was already completed or used once.",
                );
            }
            Ok(StateOutcome::Expired) => {
                tracing::warn!("callback with an expired state");
                return restart(
                    400,
                    "Connection link expired",
                    "This connection attempt took too long and has expired.",
                );
            }
            Err(e) => {
                tracing::error!(error = %e, "could not check the OAuth state");
                return unavailable();
            }
        };
        if let Some(error) = query.get("error") {
            tracing::info!(tenant = %tenant, error = %truncate(error, 64), "HubSpot returned an authorization error");
            return if error == "access_denied" {
                restart(
                    403,
                    "HubSpot access was declined",
                    "You declined to give the application access to your HubSpot account.",
                )
            } else {
                restart(
                    400,
                    "HubSpot did not authorize the connection",
                    &format!("HubSpot answered with \"{}\".", truncate(error, 64)),
                )
            };
        }
        let Some(code) = query.get("code").map(|c| SecretString::from(c.to_owned())) else {
            tracing::warn!(tenant = %tenant, "callback without a code");
            return restart(
                400,
                "Connection failed",
                "HubSpot did not send an authorization code.",
            );
        };
        self.connect(&tenant, &code).await
    }

    async fn connect(&self, tenant: &str, code: &SecretString) -> Reply {
        let grant = match self.hubspot.exchange_code(code).await {
            Ok(g) => g,
            Err(e) => {
                tracing::warn!(tenant = %tenant, error = %e, "code exchange failed");
                return token_endpoint_failed(&e);
            }
        };
        // The granted scopes (declined optional ones are missing) decide
        // what the connection can do, e.g. list scope needs crm.lists.read.
        let (portal, scopes) = match (grant.hub_id, grant.scopes.clone()) {
            (Some(p), Some(scopes)) => (p, scopes),
            _ => match self.hubspot.introspect(&grant.access_token).await {
                Ok(TokenInfo {
                    hub_id: Some(p),
                    scopes,
                    ..
                }) => (p, scopes),
                Ok(_) => {
                    tracing::error!(tenant = %tenant, "introspection did not name the portal");
                    return restart(
                        502,
                        "Connection failed",
                        "HubSpot did not tell us which account was connected.",
                    );
                }
                Err(e) => {
                    tracing::warn!(tenant = %tenant, error = %e, "token introspection failed");
                    return token_endpoint_failed(&e);
                }
            },
        };
        let existing = match self.store.get_connection(portal).await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(tenant = %tenant, portal = %portal, error = %e, "connection lookup failed");
                return unavailable();
            }
        };
        if existing.as_ref().is_some_and(|c| c.tenant_id != tenant) {
            return self.other_tenant(tenant, portal);
        }
        let (access, refresh) = match (
            self.cipher.encrypt(portal, &grant.access_token).await,
            self.cipher.encrypt(portal, &grant.refresh_token).await,
        ) {
            (Ok(a), Ok(r)) => (a, r),
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!(tenant = %tenant, portal = %portal, error = %e, "token encryption failed");
                return unavailable();
            }
        };
        let now = chrono::Utc::now();
        let connection = Connection {
            portal_id: portal,
            tenant_id: tenant.to_owned(),
            status: ConnectionStatus::Active,
            scopes,
            access_token_ciphertext: Some(access),
            refresh_token_ciphertext: Some(refresh),
            access_token_expires_at: Some(expires_at(grant.expires_in)),
            created_at: existing.as_ref().map_or(now, |c| c.created_at),
            updated_at: now,
            last_webhook_at: existing.as_ref().and_then(|c| c.last_webhook_at),
            status_reason: None,
        };
        match self.store.claim_connection(&connection).await {
            Ok(ClaimOutcome::Stored) => {}
            Ok(ClaimOutcome::OtherTenant) => return self.other_tenant(tenant, portal),
            Err(e) => {
                tracing::error!(tenant = %tenant, portal = %portal, error = %e, "could not store the connection");
                return unavailable();
            }
        }
        let reconnected = existing.is_some();
        tracing::info!(tenant = %tenant, portal = %portal, reconnected, "HubSpot portal connected");
        let job = JobMessage::from(SyncJob::initial(portal));
        if let Err(e) = self.jobs.enqueue(std::slice::from_ref(&job)).await {
            tracing::error!(tenant = %tenant, portal = %portal, error = %e, "connected, but the initial sync could not be queued");
            return Reply::page(
                503,
                "Connected, sync not started",
                "Your HubSpot account is connected, but the first sync could not be started. Please connect again in a few minutes to start it.",
            );
        }
        tracing::info!(portal = %portal, "initial sync queued");
        match &self.config.success_url {
            Some(url) => {
                let sep = if url.contains('?') { '&' } else { '?' };
                Reply::redirect(format!("{url}{sep}portalId={portal}"))
            }
            None => Reply::page(
                200,
                "HubSpot connected",
                &format!(
                    "HubSpot account {portal} is connected. The first sync of your companies, contacts and deals has started; you can close this page."
                ),
            ),
        }
    }

    fn other_tenant(&self, tenant: &str, portal: PortalId) -> Reply {
        tracing::warn!(tenant = %tenant, portal = %portal, "portal is connected to another tenant: refused");
        Reply::page(
            409,
            "HubSpot account already connected",
            &format!(
                "HubSpot account {portal} is already connected to another workspace of the application. Nothing was changed. Disconnect it there first, or connect a different HubSpot account."
            ),
        )
    }

    /// `POST /oauth/disconnect?tenant&portal&expires&signature` (signed by
    /// the application): revokes the refresh token at HubSpot, deletes the
    /// tokens and marks the connection `disconnected`. Records are kept.
    pub async fn disconnect(&self, query: &Query, now_epoch: i64) -> Reply {
        let Some(portal) = query
            .get("portal")
            .and_then(|p| p.parse::<u64>().ok())
            .map(PortalId)
        else {
            return Reply::json(
                400,
                &serde_json::json!({"error": "portal is missing or not a number"}),
            );
        };
        let tenant = match link::verify(
            &self.config.link_secret,
            Purpose::Disconnect { portal: portal.0 },
            query.get("tenant"),
            query.get("expires"),
            query.get("signature"),
            now_epoch,
            self.max_lifetime(),
        ) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(portal = %portal, reason = %e, "disconnect request refused");
                let status = if e == LinkError::Missing { 401 } else { 403 };
                return Reply::json(status, &serde_json::json!({"error": e.to_string()}));
            }
        };
        let connection = match self.store.get_connection(portal).await {
            Ok(Some(c)) if c.tenant_id == tenant => c,
            Ok(_) => {
                return Reply::json(
                    404,
                    &serde_json::json!({"error": "this portal is not connected to this tenant"}),
                )
            }
            Err(e) => {
                tracing::error!(portal = %portal, error = %e, "connection lookup failed");
                return Reply::json(
                    503,
                    &serde_json::json!({"error": "temporarily unavailable"}),
                );
            }
        };
        let revoked = match hubsync_admin::connection::disconnect(
            &self.store,
            &self.cipher,
            &self.hubspot,
            &connection,
        )
        .await
        {
            Ok(d) => d.revoked_at_hubspot,
            Err(e) => {
                tracing::error!(portal = %portal, error = %e, "could not mark the connection disconnected");
                return Reply::json(
                    503,
                    &serde_json::json!({"error": "temporarily unavailable"}),
                );
            }
        };
        tracing::info!(tenant = %tenant, "disconnect requested by the tenant's signed link");
        Reply::json(
            200,
            &serde_json::json!({
                "portalId": portal,
                "status": "disconnected",
                "revokedAtHubSpot": revoked,
            }),
        )
    }
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().filter(|c| !c.is_control()).take(max).collect()
}

/// For the application and tests: a complete signed install URL.
pub fn install_url(base_url: &str, secret: &SecretString, tenant: &str, expires: i64) -> String {
    format!(
        "{}/oauth/install?{}",
        base_url.trim_end_matches('/'),
        link::signed_query(secret, Purpose::Install, tenant, expires)
    )
}

/// For the application and tests: a complete signed disconnect URL (POST).
pub fn disconnect_url(
    base_url: &str,
    secret: &SecretString,
    tenant: &str,
    portal: u64,
    expires: i64,
) -> String {
    format!(
        "{}/oauth/disconnect?{}",
        base_url.trim_end_matches('/'),
        link::signed_query(secret, Purpose::Disconnect { portal }, tenant, expires)
    )
}
