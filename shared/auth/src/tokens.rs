//! The access-token source backed by the connections table.

use hubsync_hubspot::{AccessTokenSource, PortalId, TokenError};
use hubsync_store::{ConnectionStatus, ConnectionStore};
use secrecy::SecretString;

use crate::cipher::TokenCipher;

/// Reads a portal's connection and decrypts its access token.
///
/// Refreshing (one refresh for many concurrent callers, `invalid_grant` →
/// `needs_reauth`) belongs to the OAuth connect flow; until a refresh token
/// path is wired here, a 401 after the stored token is final for the call
/// and the message is retried later.
pub struct ConnectionTokens<S, C> {
    store: S,
    cipher: C,
}

impl<S, C> ConnectionTokens<S, C> {
    pub fn new(store: S, cipher: C) -> Self {
        Self { store, cipher }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn cipher(&self) -> &C {
        &self.cipher
    }
}

impl<S: ConnectionStore, C: TokenCipher> AccessTokenSource for ConnectionTokens<S, C> {
    async fn access_token(&self, portal: PortalId) -> Result<SecretString, TokenError> {
        let connection = self
            .store
            .get_connection(portal)
            .await
            .map_err(|e| TokenError::Unavailable(format!("connection lookup failed: {e}")))?
            .ok_or(TokenError::NeedsReauth)?;
        if connection.status != ConnectionStatus::Active {
            return Err(TokenError::NeedsReauth);
        }
        let ciphertext = connection
            .access_token_ciphertext
            .as_deref()
            .ok_or(TokenError::NeedsReauth)?;
        self.cipher
            .decrypt(portal, ciphertext)
            .await
            .map_err(|e| TokenError::Unavailable(format!("token decryption failed: {e}")))
    }

    async fn refresh(
        &self,
        _portal: PortalId,
        _rejected: &SecretString,
    ) -> Result<SecretString, TokenError> {
        Err(TokenError::RefreshUnsupported)
    }
}
