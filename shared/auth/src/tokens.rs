//! The access-token source backed by the connections table, with
//! single-flight refresh.
//!
//! * [`AccessTokenSource::access_token`] reads the portal's connection,
//!   refuses portals that are not active ([`TokenError::NeedsReauth`]) and
//!   decrypts the access token. With a refresher, a token within
//!   [`RefreshPolicy::margin`] of `access_token_expires_at` is refreshed
//!   first.
//! * [`AccessTokenSource::refresh`] (HubSpot answered 401): if the stored
//!   token is no longer the rejected one, another caller already refreshed
//!   and its token is returned; otherwise the token is refreshed.
//! * A refresh is **single-flight**: callers of one instance queue on a
//!   per-portal mutex, and across instances (Lambda) the store's lease
//!   ([`token_refresh_lease`]) admits one refresher while the others poll
//!   the connection for the winner's token, for at most
//!   [`RefreshPolicy::wait`]. The winner stores the new tokens with a
//!   compare-and-swap on the old access-token ciphertext
//!   ([`TokenStore::swap_tokens`]) — always with the refresh token HubSpot
//!   returned.
//! * `invalid_grant` on refresh (app uninstalled, grant revoked): the
//!   connection becomes `needs_reauth` (its tokens are deleted), an error is
//!   logged with the portal id only, and [`TokenError::NeedsReauth`] is
//!   returned, so callers stop syncing the portal.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hubsync_hubspot::{
    AccessTokenSource, OAuthClient, OAuthError, PortalId, TokenError, TokenGrant,
};
use hubsync_runtime::metrics::Metrics;
use hubsync_store::{
    token_refresh_lease, Connection, ConnectionStatus, ConnectionStore, TokenStore, TokenSwap,
    TokenUpdate,
};
use secrecy::{ExposeSecret, SecretString};

use crate::cipher::TokenCipher;

/// The `Function` dimension of the token lifecycle's EMF metrics
/// (`TokenRefreshes`, `TokenRefreshFailures`, `ConnectionsNeedsReauth`). The
/// refresh runs inside record-upsert and reconcile; one name for both lets
/// one alarm watch every connection that flips to `needs_reauth`.
pub const METRICS_FUNCTION: &str = "token-refresh";

/// Obtains new tokens from a refresh token (HubSpot's token endpoint).
pub trait TokenRefresher: Send + Sync {
    /// Whether this refresher can refresh at all ([`NoRefresh`] cannot).
    fn enabled(&self) -> bool {
        true
    }

    /// `grant_type=refresh_token`.
    fn refresh_grant(
        &self,
        refresh_token: &SecretString,
    ) -> impl Future<Output = Result<TokenGrant, OAuthError>> + Send;
}

impl TokenRefresher for OAuthClient {
    fn refresh_grant(
        &self,
        refresh_token: &SecretString,
    ) -> impl Future<Output = Result<TokenGrant, OAuthError>> + Send {
        self.refresh(refresh_token)
    }
}

/// No refresher: the stored access token is used as it is, and a 401 is
/// final ([`TokenError::RefreshUnsupported`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRefresh;

impl TokenRefresher for NoRefresh {
    fn enabled(&self) -> bool {
        false
    }

    async fn refresh_grant(&self, _refresh_token: &SecretString) -> Result<TokenGrant, OAuthError> {
        Err(OAuthError::Config("token refresh is not configured".into()))
    }
}

/// Timing of the refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshPolicy {
    /// Refresh when the access token expires within this margin.
    pub margin: Duration,
    /// How long the refresh lease is held at most (a crashed holder frees
    /// it after this).
    pub lease_ttl: Duration,
    /// How long a caller waits for another instance's refresh.
    pub wait: Duration,
    /// How often a waiting caller re-reads the connection.
    pub poll: Duration,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        Self {
            margin: Duration::from_secs(300),
            lease_ttl: Duration::from_secs(30),
            wait: Duration::from_secs(15),
            poll: Duration::from_millis(100),
        }
    }
}

type PortalLocks = Mutex<HashMap<PortalId, Arc<tokio::sync::Mutex<()>>>>;

/// Reads a portal's connection, decrypts its access token and (with a
/// [`TokenRefresher`]) refreshes it once for all concurrent callers.
pub struct ConnectionTokens<S, C, R = NoRefresh> {
    store: S,
    cipher: C,
    refresher: R,
    policy: RefreshPolicy,
    /// This instance's lease-holder id.
    holder: String,
    local: Arc<PortalLocks>,
}

impl<S, C> ConnectionTokens<S, C, NoRefresh> {
    /// A source that does not refresh (see [`ConnectionTokens::with_refresher`]).
    pub fn new(store: S, cipher: C) -> Self {
        Self {
            store,
            cipher,
            refresher: NoRefresh,
            policy: RefreshPolicy::default(),
            holder: format!("tokens-{:032x}", rand::random::<u128>()),
            local: Arc::default(),
        }
    }
}

impl<S, C, R> ConnectionTokens<S, C, R> {
    /// Refresh with `refresher` (e.g. the [`OAuthClient`]).
    pub fn with_refresher<R2: TokenRefresher>(self, refresher: R2) -> ConnectionTokens<S, C, R2> {
        ConnectionTokens {
            store: self.store,
            cipher: self.cipher,
            refresher,
            policy: self.policy,
            holder: self.holder,
            local: self.local,
        }
    }

    pub fn with_policy(mut self, policy: RefreshPolicy) -> Self {
        self.policy = policy;
        self
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn cipher(&self) -> &C {
        &self.cipher
    }

    pub fn refresher(&self) -> &R {
        &self.refresher
    }

    fn local_lock(&self, portal: PortalId) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.local.lock().unwrap_or_else(PoisonError::into_inner);
        map.entry(portal).or_default().clone()
    }
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> TokenError {
    TokenError::Unavailable(format!("{what}: {e}"))
}

impl<S, C, R> ConnectionTokens<S, C, R>
where
    S: ConnectionStore + TokenStore,
    C: TokenCipher,
    R: TokenRefresher,
{
    /// The active connection and its access-token ciphertext.
    async fn active(&self, portal: PortalId) -> Result<(Connection, String), TokenError> {
        let connection = self
            .store
            .get_connection(portal)
            .await
            .map_err(|e| unavailable("connection lookup failed", e))?
            .ok_or(TokenError::NeedsReauth)?;
        if !connection.status.holds_tokens() {
            return Err(TokenError::NeedsReauth);
        }
        let ciphertext = connection
            .access_token_ciphertext
            .clone()
            .ok_or(TokenError::NeedsReauth)?;
        Ok((connection, ciphertext))
    }

    async fn decrypt(
        &self,
        portal: PortalId,
        ciphertext: &str,
    ) -> Result<SecretString, TokenError> {
        self.cipher
            .decrypt(portal, ciphertext)
            .await
            .map_err(|e| unavailable("token decryption failed", e))
    }

    fn is_due(&self, connection: &Connection) -> bool {
        let margin = i64::try_from(self.policy.margin.as_secs()).unwrap_or(i64::MAX);
        connection
            .access_token_expires_at
            .is_some_and(|exp| exp.saturating_sub(margin) <= chrono::Utc::now().timestamp())
    }

    /// Replace the access token whose ciphertext is `stale`, once for all
    /// concurrent callers; returns the new (or the winner's) token.
    async fn refresh_from(
        &self,
        portal: PortalId,
        stale: &str,
    ) -> Result<SecretString, TokenError> {
        let local = self.local_lock(portal);
        let _turn = local.lock().await;
        let deadline = tokio::time::Instant::now() + self.policy.wait;
        let lease_name = token_refresh_lease(portal);
        loop {
            let (_, current) = self.active(portal).await?;
            if current != stale {
                return self.decrypt(portal, &current).await;
            }
            let lease = self
                .store
                .try_acquire_lease(&lease_name, &self.holder, self.policy.lease_ttl)
                .await
                .map_err(|e| unavailable("refresh lease unavailable", e))?;
            if let Some(lease) = lease {
                let result = self.refresh_holding_lease(portal, stale).await;
                if let Err(e) = self.store.release_lease(&lease).await {
                    tracing::warn!(portal = %portal, error = %e, "could not release the refresh lease; it lapses by itself");
                }
                return result;
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(portal = %portal, "gave up waiting for another instance's token refresh");
                return Err(TokenError::Unavailable(
                    "another instance is refreshing the token; try again later".into(),
                ));
            }
            tracing::debug!(portal = %portal, "another instance is refreshing the token; waiting");
            tokio::time::sleep(self.policy.poll).await;
        }
    }

    async fn refresh_holding_lease(
        &self,
        portal: PortalId,
        stale: &str,
    ) -> Result<SecretString, TokenError> {
        // Re-read under the lease: the previous holder may have finished
        // between our read and our acquisition.
        let (connection, current) = self.active(portal).await?;
        if current != stale {
            return self.decrypt(portal, &current).await;
        }
        let refresh_ciphertext = connection
            .refresh_token_ciphertext
            .as_deref()
            .ok_or(TokenError::NeedsReauth)?;
        let refresh_token = self.decrypt(portal, refresh_ciphertext).await?;
        let grant = match self.refresher.refresh_grant(&refresh_token).await {
            Ok(grant) => grant,
            Err(e) if e.is_revoked_grant() => {
                tracing::error!(
                    portal = %portal,
                    error = %e,
                    metric = "hubsync.connection.needs_reauth",
                    "HubSpot refused the refresh token (app uninstalled or access revoked): connection marked needs_reauth, syncing stopped until an admin reconnects"
                );
                self.store
                    .set_connection_status(
                        portal,
                        ConnectionStatus::NeedsReauth,
                        Some("invalid_grant"),
                    )
                    .await
                    .map_err(|e| unavailable("could not mark the connection needs_reauth", e))?;
                Metrics::new(METRICS_FUNCTION)
                    .count("TokenRefreshFailures", 1)
                    .count("ConnectionsNeedsReauth", 1)
                    .emit();
                return Err(TokenError::NeedsReauth);
            }
            Err(e) => {
                tracing::warn!(portal = %portal, error = %e, "token refresh failed");
                Metrics::new(METRICS_FUNCTION)
                    .count("TokenRefreshFailures", 1)
                    .emit();
                return Err(unavailable("token refresh failed", e));
            }
        };
        let update = TokenUpdate {
            access_token_ciphertext: self.encrypt(portal, &grant.access_token).await?,
            refresh_token_ciphertext: self.encrypt(portal, &grant.refresh_token).await?,
            access_token_expires_at: expires_at(grant.expires_in),
        };
        match self
            .store
            .swap_tokens(portal, stale, &update)
            .await
            .map_err(|e| unavailable("storing the refreshed tokens failed", e))?
        {
            TokenSwap::Swapped => {
                tracing::info!(portal = %portal, expires_in = grant.expires_in, "access token refreshed");
                Metrics::new(METRICS_FUNCTION)
                    .count("TokenRefreshes", 1)
                    .emit();
                Ok(grant.access_token)
            }
            TokenSwap::Superseded => {
                let (_, current) = self.active(portal).await?;
                self.decrypt(portal, &current).await
            }
            TokenSwap::NotActive => Err(TokenError::NeedsReauth),
        }
    }

    async fn encrypt(&self, portal: PortalId, token: &SecretString) -> Result<String, TokenError> {
        self.cipher
            .encrypt(portal, token)
            .await
            .map_err(|e| unavailable("token encryption failed", e))
    }
}

/// Epoch seconds at which a token that lives `expires_in` seconds expires.
pub fn expires_at(expires_in: u64) -> i64 {
    chrono::Utc::now()
        .timestamp()
        .saturating_add(i64::try_from(expires_in).unwrap_or(i64::MAX))
}

impl<S, C, R> AccessTokenSource for ConnectionTokens<S, C, R>
where
    S: ConnectionStore + TokenStore,
    C: TokenCipher,
    R: TokenRefresher,
{
    async fn access_token(&self, portal: PortalId) -> Result<SecretString, TokenError> {
        let (connection, ciphertext) = self.active(portal).await?;
        if self.refresher.enabled() && self.is_due(&connection) {
            tracing::debug!(portal = %portal, "access token expires soon; refreshing ahead");
            return self.refresh_from(portal, &ciphertext).await;
        }
        self.decrypt(portal, &ciphertext).await
    }

    async fn refresh(
        &self,
        portal: PortalId,
        rejected: &SecretString,
    ) -> Result<SecretString, TokenError> {
        if !self.refresher.enabled() {
            return Err(TokenError::RefreshUnsupported);
        }
        let (_, ciphertext) = self.active(portal).await?;
        let current = self.decrypt(portal, &ciphertext).await?;
        if current.expose_secret() != rejected.expose_secret() {
            return Ok(current);
        }
        self.refresh_from(portal, &ciphertext).await
    }
}

#[cfg(test)]
mod metric_tests {
    //! The token lifecycle's EMF lines, which the `needs_reauth` alarm and
    //! the dashboard read (`template.yaml`).

    use std::sync::Arc;

    use chrono::Utc;
    use hubsync_hubspot::GrantStatus;
    use hubsync_store::MemoryStore;

    use super::*;
    use crate::cipher::CipherError;

    /// Stores tokens as they are (the KMS cipher is tested against moto).
    struct Plain;

    impl TokenCipher for Plain {
        async fn encrypt(&self, _: PortalId, token: &SecretString) -> Result<String, CipherError> {
            Ok(token.expose_secret().to_owned())
        }

        async fn decrypt(
            &self,
            _: PortalId,
            ciphertext: &str,
        ) -> Result<SecretString, CipherError> {
            Ok(SecretString::from(ciphertext.to_owned()))
        }
    }

    /// HubSpot's token endpoint refusing every refresh with this error.
    struct Refuses(fn() -> OAuthError);

    impl TokenRefresher for Refuses {
        fn refresh_grant(
            &self,
            _: &SecretString,
        ) -> impl Future<Output = Result<TokenGrant, OAuthError>> + Send {
            let error = (self.0)();
            async move { Err(error) }
        }
    }

    async fn expired_connection(store: &MemoryStore, portal: PortalId) {
        let now = Utc::now();
        store
            .put_connection(&Connection {
                portal_id: portal,
                tenant_id: "tenant".into(),
                status: ConnectionStatus::Active,
                scopes: Vec::new(),
                access_token_ciphertext: Some("old-access".into()),
                refresh_token_ciphertext: Some("old-refresh".into()),
                access_token_expires_at: Some(now.timestamp() - 10),
                created_at: now,
                updated_at: now,
                last_webhook_at: None,
                status_reason: None,
            })
            .await
            .expect("store the connection");
    }

    /// The token lifecycle's lines since the last call (this crate does
    /// not depend on a JSON parser: the lines' shape is tested in
    /// `hubsync_runtime::metrics`).
    fn token_lines(lines: &Mutex<Vec<String>>) -> Vec<String> {
        let function = format!("\"Function\":\"{METRICS_FUNCTION}\"");
        std::mem::take(&mut *lines.lock().unwrap())
            .into_iter()
            .filter(|l| l.contains(&function))
            .collect()
    }

    #[tokio::test]
    async fn refresh_failures_and_needs_reauth_flips_are_emitted() {
        let lines = Arc::new(Mutex::new(Vec::<String>::new()));
        let sink = lines.clone();
        hubsync_runtime::metrics::capture(move |l| sink.lock().unwrap().push(l.to_string()));
        let store = MemoryStore::new();

        // A revoked grant: the connection flips, once, and says so.
        let revoked = PortalId(7);
        expired_connection(&store, revoked).await;
        let tokens = ConnectionTokens::new(store.clone(), Plain).with_refresher(Refuses(|| {
            OAuthError::InvalidGrant {
                status: GrantStatus::BadRefreshToken,
            }
        }));
        assert_eq!(
            tokens.access_token(revoked).await.unwrap_err(),
            TokenError::NeedsReauth
        );
        let conn = store.get_connection(revoked).await.unwrap().unwrap();
        assert_eq!(conn.status, ConnectionStatus::NeedsReauth);
        let seen = token_lines(&lines);
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert!(
            seen[0].contains("\"ConnectionsNeedsReauth\":1.0"),
            "{seen:?}"
        );
        assert!(seen[0].contains("\"TokenRefreshFailures\":1.0"), "{seen:?}");
        assert!(
            seen[0].contains("\"Dimensions\":[[\"Function\"]]"),
            "{seen:?}"
        );
        // Already needs_reauth: refused without a refresh, not counted again.
        assert_eq!(
            tokens.access_token(revoked).await.unwrap_err(),
            TokenError::NeedsReauth
        );
        assert!(token_lines(&lines).is_empty());

        // Any other refresh failure is retried later: no flip.
        let misconfigured = PortalId(8);
        expired_connection(&store, misconfigured).await;
        let tokens = ConnectionTokens::new(store.clone(), Plain)
            .with_refresher(Refuses(|| OAuthError::InvalidClient));
        assert!(matches!(
            tokens.access_token(misconfigured).await.unwrap_err(),
            TokenError::Unavailable(_)
        ));
        let seen = token_lines(&lines);
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert!(seen[0].contains("\"TokenRefreshFailures\":1.0"), "{seen:?}");
        assert!(!seen[0].contains("ConnectionsNeedsReauth"), "{seen:?}");
        let conn = store.get_connection(misconfigured).await.unwrap().unwrap();
        assert_eq!(conn.status, ConnectionStatus::Active);
    }
}
