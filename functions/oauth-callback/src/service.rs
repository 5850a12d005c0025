//! The connect flow: install → HubSpot consent → callback, and disconnect.
//! Generic over narrow traits ([`TokenEndpoint`], [`JobQueue`], the store's
//! [`OAuthStateStore`] + [`ConnectionStore`], the [`TokenCipher`]) so that
//! tests can drive it.
//!
//! The steps return typed errors ([`crate::error`]); each public route turns
//! one into its page (or JSON) and log line in one place. Logs carry ids
//! (tenant, portal) and error kinds, never a token, a code, a state or the
//! client secret.

use std::future::Future;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hubsync_auth::{expires_at, TokenCipher};
use hubsync_hubspot::{OAuthClient, OAuthError, PortalId, TokenGrant, TokenInfo};
use hubsync_store::{
    state_digest, ClaimOutcome, Connection, ConnectionStatus, ConnectionStore, OAuthStateStore,
    PendingAuth, StateOutcome, SyncJob,
};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use secrecy::SecretString;
use subtle::ConstantTimeEq;
use tracing::Instrument;

use hubsync_admin::connection::GrantRevoker;
use hubsync_messages::JobMessage;

use crate::error::{ConnectError, DisconnectError};
use crate::reply::Reply;
use crate::settings::FlowConfig;
use hubsync_admin::link::{self, Purpose};

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
        let span = tracing::info_span!("oauth_install", tenant = tracing::field::Empty);
        answer(self.start(query, now_epoch).instrument(span).await)
    }

    /// `GET /oauth/callback?code&state` (or `?error&error_description&state`),
    /// with the browser's `Cookie` header. Every answer clears the flow's
    /// cookie.
    pub async fn callback(&self, query: &Query, cookie: Option<&str>, now_epoch: i64) -> Reply {
        let span = tracing::info_span!(
            "oauth_callback",
            tenant = tracing::field::Empty,
            portal = tracing::field::Empty
        );
        let nonce = cookie.and_then(|c| cookie_value(c, BROWSER_COOKIE));
        answer(self.finish(query, nonce, now_epoch).instrument(span).await)
            .with_cookie(clear_browser_cookie())
    }

    /// `POST /oauth/disconnect?tenant&portal&expires&signature` (signed by
    /// the application): revokes the refresh token at HubSpot, deletes the
    /// tokens and marks the connection `disconnected`. Records are kept.
    pub async fn disconnect(&self, query: &Query, now_epoch: i64) -> Reply {
        let span = tracing::info_span!("oauth_disconnect", portal = tracing::field::Empty);
        match self.try_disconnect(query, now_epoch).instrument(span).await {
            Ok(reply) => reply,
            Err(e) => {
                e.log();
                e.reply()
            }
        }
    }

    /// A verified link → a stored state → the redirect to HubSpot.
    async fn start(&self, query: &Query, now_epoch: i64) -> Result<Reply, ConnectError> {
        // `defer=1` is part of what the link signs (its own purpose).
        let deferred_link = query.get("defer") == Some("1");
        let purpose = if deferred_link {
            Purpose::InstallDeferred
        } else {
            Purpose::Install
        };
        let tenant = link::verify(
            &self.config.link_secret,
            purpose,
            query.get("tenant"),
            query.get("expires"),
            query.get("signature"),
            now_epoch,
            self.max_lifetime(),
        )
        .map_err(ConnectError::Link)?;
        tracing::Span::current().record("tenant", tenant.as_str());
        // A link starts one flow: its second use is refused (a link left in
        // a chat or a browser history cannot mint states for someone else).
        let link = state_digest(&format!(
            "{tenant}:{}:{}",
            query.get("expires").unwrap_or_default(),
            query.get("signature").unwrap_or_default()
        ));
        let link_expiry = query
            .get("expires")
            .and_then(|e| e.parse::<i64>().ok())
            .unwrap_or(now_epoch);
        if !self.store.claim_install_link(&link, link_expiry).await? {
            return Err(ConnectError::LinkUsed);
        }
        let state = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
        // The state is bound to this browser: the callback must come back
        // with the cookie whose digest is stored with the state.
        let nonce = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
        let ttl = i64::try_from(self.config.state_ttl.as_secs()).unwrap_or(600);
        let pending = PendingAuth {
            tenant_id: tenant.clone(),
            expires_at_epoch: now_epoch.saturating_add(ttl),
            browser_digest: state_digest(&nonce),
            defer_initial_sync: deferred_link || self.config.defer_initial_sync,
        };
        self.store.put_oauth_state(&state, &pending).await?;
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
        Ok(Reply::redirect(location).with_cookie(browser_cookie(&nonce, ttl)))
    }

    /// The state used up, HubSpot's answer read, the portal connected.
    async fn finish(
        &self,
        query: &Query,
        nonce: Option<&str>,
        now_epoch: i64,
    ) -> Result<Reply, ConnectError> {
        let state = query.get("state").ok_or(ConnectError::MissingState)?;
        let (tenant, defer) = match self.store.consume_oauth_state(state, now_epoch).await? {
            StateOutcome::Consumed {
                tenant_id,
                browser_digest,
                defer_initial_sync,
            } => {
                // Login CSRF: a state minted in another browser (someone
                // else's install link) is refused before anything is stored.
                let same_browser = match (nonce, browser_digest) {
                    (Some(n), Some(d)) => {
                        bool::from(state_digest(n).as_bytes().ct_eq(d.as_bytes()))
                    }
                    _ => false,
                };
                if !same_browser {
                    return Err(ConnectError::OtherBrowser);
                }
                (tenant_id, defer_initial_sync)
            }
            StateOutcome::Unknown => return Err(ConnectError::UnknownState),
            StateOutcome::AlreadyUsed => return Err(ConnectError::StateUsed),
            StateOutcome::Expired => return Err(ConnectError::StateExpired),
        };
        tracing::Span::current().record("tenant", tenant.as_str());
        if let Some(error) = query.get("error") {
            return Err(if error == "access_denied" {
                ConnectError::AccessDenied
            } else {
                ConnectError::Authorization(truncate(error, 64))
            });
        }
        let code = query
            .get("code")
            .map(|c| SecretString::from(c.to_owned()))
            .ok_or(ConnectError::MissingCode)?;
        self.connect(&tenant, &code, defer).await
    }

    async fn connect(
        &self,
        tenant: &str,
        code: &SecretString,
        defer: bool,
    ) -> Result<Reply, ConnectError> {
        let grant = self
            .hubspot
            .exchange_code(code)
            .await
            .map_err(ConnectError::TokenEndpoint)?;
        // The granted scopes (declined optional ones are missing) decide
        // what the connection can do, e.g. list scope needs crm.lists.read.
        let (portal, scopes) = match (grant.hub_id, grant.scopes.clone()) {
            (Some(p), Some(scopes)) => (p, scopes),
            _ => match self
                .hubspot
                .introspect(&grant.access_token)
                .await
                .map_err(ConnectError::TokenEndpoint)?
            {
                TokenInfo {
                    hub_id: Some(p),
                    scopes,
                    ..
                } => (p, scopes),
                _ => return Err(ConnectError::NoPortal),
            },
        };
        tracing::Span::current().record("portal", portal.0);
        let existing = self.store.get_connection(portal).await?;
        if existing.as_ref().is_some_and(|c| c.tenant_id != tenant) {
            return Err(ConnectError::OtherTenant(portal));
        }
        let access = self.cipher.encrypt(portal, &grant.access_token).await?;
        let refresh = self.cipher.encrypt(portal, &grant.refresh_token).await?;
        let now = chrono::Utc::now();
        let connection = Connection {
            portal_id: portal,
            tenant_id: tenant.to_owned(),
            // Deferred: connected, nothing pulled until the application
            // has saved its mapping and scope and starts the sync.
            status: if defer {
                ConnectionStatus::AwaitingSetup
            } else {
                ConnectionStatus::Active
            },
            scopes,
            access_token_ciphertext: Some(access),
            refresh_token_ciphertext: Some(refresh),
            access_token_expires_at: Some(expires_at(grant.expires_in)),
            created_at: existing.as_ref().map_or(now, |c| c.created_at),
            updated_at: now,
            last_webhook_at: existing.as_ref().and_then(|c| c.last_webhook_at),
            status_reason: None,
        };
        if self.store.claim_connection(&connection).await? == ClaimOutcome::OtherTenant {
            return Err(ConnectError::OtherTenant(portal));
        }
        let reconnected = existing.is_some();
        tracing::info!(tenant = %tenant, portal = %portal, reconnected, deferred = defer, "HubSpot portal connected");
        if defer {
            tracing::info!(portal = %portal, "initial sync deferred: awaiting the application's setup");
        } else {
            let job = JobMessage::from(SyncJob::initial(portal));
            self.jobs
                .enqueue(std::slice::from_ref(&job))
                .await
                .map_err(ConnectError::NotQueued)?;
            tracing::info!(portal = %portal, "initial sync queued");
        }
        Ok(match &self.config.success_url {
            Some(url) => {
                let sep = if url.contains('?') { '&' } else { '?' };
                Reply::redirect(format!("{url}{sep}portalId={portal}"))
            }
            None if defer => Reply::page(
                200,
                "HubSpot connected",
                &format!(
                    "HubSpot account {portal} is connected. Nothing is synced yet: choose what to sync in the application, then start the first sync. You can close this page."
                ),
            ),
            None => Reply::page(
                200,
                "HubSpot connected",
                &format!(
                    "HubSpot account {portal} is connected. The first sync of your companies, contacts and deals has started; you can close this page."
                ),
            ),
        })
    }

    async fn try_disconnect(
        &self,
        query: &Query,
        now_epoch: i64,
    ) -> Result<Reply, DisconnectError> {
        let portal = query
            .get("portal")
            .and_then(|p| p.parse::<u64>().ok())
            .map(PortalId)
            .ok_or(DisconnectError::BadPortal)?;
        tracing::Span::current().record("portal", portal.0);
        let tenant = link::verify(
            &self.config.link_secret,
            Purpose::Disconnect { portal: portal.0 },
            query.get("tenant"),
            query.get("expires"),
            query.get("signature"),
            now_epoch,
            self.max_lifetime(),
        )
        .map_err(DisconnectError::Link)?;
        let connection = match self
            .store
            .get_connection(portal)
            .await
            .map_err(DisconnectError::Store)?
        {
            Some(c) if c.tenant_id == tenant => c,
            _ => return Err(DisconnectError::NotConnected),
        };
        let revoked = hubsync_admin::connection::disconnect(
            &self.store,
            &self.cipher,
            &self.hubspot,
            &connection,
        )
        .await
        .map_err(DisconnectError::Store)?
        .revoked_at_hubspot;
        tracing::info!(tenant = %tenant, "disconnect requested by the tenant's signed link");
        Ok(Reply::json(
            200,
            &serde_json::json!({
                "portalId": portal,
                "status": "disconnected",
                "revokedAtHubSpot": revoked,
            }),
        ))
    }
}

/// The flow's answer: its reply, or its error's page (logged).
fn answer(result: Result<Reply, ConnectError>) -> Reply {
    result.unwrap_or_else(|e| {
        e.log();
        e.reply()
    })
}

/// The cookie binding a connect flow to its browser. `__Host-`: only ever
/// set by this host, over HTTPS, for every path.
pub const BROWSER_COOKIE: &str = "__Host-hubsync_connect";

fn browser_cookie(nonce: &str, max_age_secs: i64) -> String {
    format!(
        "{BROWSER_COOKIE}={nonce}; Path=/; Max-Age={max_age_secs}; Secure; HttpOnly; SameSite=Lax"
    )
}

fn clear_browser_cookie() -> String {
    format!("{BROWSER_COOKIE}=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Lax")
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name && !v.is_empty()).then_some(v)
    })
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().filter(|c| !c.is_control()).take(max).collect()
}
