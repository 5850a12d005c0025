//! Where the client gets a portal's access token.
//!
//! The client asks [`AccessTokenSource::access_token`] before a call. If
//! HubSpot answers 401, it calls [`AccessTokenSource::refresh`] **once**,
//! passing the token that was rejected, retries with the new token, and
//! fails with `Unauthorized` if that is rejected too.
//!
//! Passing the rejected token lets an implementation make the refresh
//! single-flight across many workers: refresh only if the stored token is
//! still the rejected one (a DynamoDB lease or conditional write), otherwise
//! return the token another worker already obtained. (HubSpot: a 401 is not
//! by itself proof of expiry; proactive refresh on `expires_at` with a margin
//! belongs in `access_token`.)

use std::future::Future;

use secrecy::SecretString;

use crate::error::TokenError;
use crate::ids::PortalId;

/// Supplies (and on a 401, refreshes) access tokens per portal.
pub trait AccessTokenSource: Send + Sync {
    /// A currently valid access token for `portal`.
    fn access_token(
        &self,
        portal: PortalId,
    ) -> impl Future<Output = Result<SecretString, TokenError>> + Send;

    /// HubSpot rejected `rejected` with 401: return a fresh token (or the one
    /// another worker already refreshed to).
    fn refresh(
        &self,
        portal: PortalId,
        rejected: &SecretString,
    ) -> impl Future<Output = Result<SecretString, TokenError>> + Send;
}

/// A fixed token (private apps, tests). It cannot refresh: a 401 is final.
#[derive(Clone)]
pub struct StaticToken(pub SecretString);

impl std::fmt::Debug for StaticToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StaticToken([REDACTED])")
    }
}

impl StaticToken {
    pub fn new(token: impl Into<String>) -> Self {
        Self(SecretString::from(token.into()))
    }
}

impl AccessTokenSource for StaticToken {
    async fn access_token(&self, _portal: PortalId) -> Result<SecretString, TokenError> {
        Ok(self.0.clone())
    }

    async fn refresh(
        &self,
        _portal: PortalId,
        _rejected: &SecretString,
    ) -> Result<SecretString, TokenError> {
        Err(TokenError::RefreshUnsupported)
    }
}

impl AccessTokenSource for SecretString {
    async fn access_token(&self, _portal: PortalId) -> Result<SecretString, TokenError> {
        Ok(self.clone())
    }

    async fn refresh(
        &self,
        _portal: PortalId,
        _rejected: &SecretString,
    ) -> Result<SecretString, TokenError> {
        Err(TokenError::RefreshUnsupported)
    }
}

impl<T: AccessTokenSource> AccessTokenSource for &T {
    fn access_token(
        &self,
        portal: PortalId,
    ) -> impl Future<Output = Result<SecretString, TokenError>> + Send {
        (**self).access_token(portal)
    }

    fn refresh(
        &self,
        portal: PortalId,
        rejected: &SecretString,
    ) -> impl Future<Output = Result<SecretString, TokenError>> + Send {
        (**self).refresh(portal, rejected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_token_debug_is_redacted() {
        assert!(!format!("{:?}", StaticToken::new("pat-na1-secret")).contains("secret"));
    }
}
