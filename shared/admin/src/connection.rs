//! Disconnecting a portal: revoke the grant at HubSpot (best effort),
//! delete the tokens and mark the connection `disconnected`; records are
//! kept. The OAuth function's signed `/oauth/disconnect` (after checking
//! the link and the tenant) and `hubsync-ops disconnect` both end here.

use std::future::Future;

use hubsync_auth::TokenCipher;
use hubsync_hubspot::{OAuthClient, OAuthError};
use hubsync_store::{Connection, ConnectionStatus, ConnectionStore, StoreError};
use secrecy::SecretString;

/// Revokes a refresh token (and so the grant) at HubSpot.
pub trait GrantRevoker: Send + Sync {
    fn revoke(
        &self,
        refresh_token: &SecretString,
    ) -> impl Future<Output = Result<(), OAuthError>> + Send;
}

impl GrantRevoker for OAuthClient {
    fn revoke(
        &self,
        refresh_token: &SecretString,
    ) -> impl Future<Output = Result<(), OAuthError>> + Send {
        OAuthClient::revoke(self, refresh_token)
    }
}

/// What a disconnect did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Disconnected {
    /// Whether HubSpot confirmed the revocation (no token, or a refusal,
    /// leaves it `false`; the tokens are deleted here anyway).
    pub revoked_at_hubspot: bool,
    /// The connection's state before.
    pub was: ConnectionStatus,
}

/// Disconnects `connection`'s portal. Only the store's write can fail it
/// (the caller answers "try again"); revocation problems are logged.
pub async fn disconnect<S, C, R>(
    store: &S,
    cipher: &C,
    revoker: &R,
    connection: &Connection,
) -> Result<Disconnected, StoreError>
where
    S: ConnectionStore,
    C: TokenCipher,
    R: GrantRevoker,
{
    let portal = connection.portal_id;
    let mut revoked = false;
    if let Some(ct) = connection.refresh_token_ciphertext.as_deref() {
        match cipher.decrypt(portal, ct).await {
            Ok(refresh) => match revoker.revoke(&refresh).await {
                Ok(()) => revoked = true,
                Err(e) => {
                    tracing::warn!(portal = %portal, error = %e, "could not revoke the refresh token at HubSpot; tokens are deleted here anyway")
                }
            },
            Err(e) => {
                tracing::warn!(portal = %portal, error = %e, "could not decrypt the refresh token to revoke it")
            }
        }
    }
    if connection.status != ConnectionStatus::Disconnected
        || connection.access_token_ciphertext.is_some()
    {
        store
            .set_connection_status(
                portal,
                ConnectionStatus::Disconnected,
                Some("disconnected_by_app"),
            )
            .await?;
    }
    tracing::info!(portal = %portal, revoked, "HubSpot portal disconnected; records kept");
    Ok(Disconnected {
        revoked_at_hubspot: revoked,
        was: connection.status,
    })
}
