//! Everything that ends the connect flow or a disconnect short of success,
//! typed, and the one place each becomes an answer ([`ConnectError::reply`],
//! [`DisconnectError::reply`]) and a log line. Pages carry a title and a
//! plain message for the person who clicked "Connect HubSpot"; the log
//! carries the error chain (ids and kinds, never a token, code or state).

use hubsync_auth::CipherError;
use hubsync_hubspot::{GrantStatus, OAuthError, PortalId};
use hubsync_messages::QueueError;
use hubsync_store::StoreError;

use crate::link::LinkError;
use crate::reply::Reply;

/// Why an install or callback did not connect a portal.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("link refused")]
    Link(#[source] LinkError),
    #[error("callback without a state")]
    MissingState,
    #[error("callback with an unknown state")]
    UnknownState,
    #[error("callback with a state that was already used")]
    StateUsed,
    #[error("callback with an expired state")]
    StateExpired,
    #[error("install link already used")]
    LinkUsed,
    #[error("callback from another browser than the one that started the flow")]
    OtherBrowser,
    #[error("the user declined access at HubSpot")]
    AccessDenied,
    /// HubSpot's `error` parameter (control characters removed, ≤ 64
    /// characters).
    #[error("HubSpot returned the authorization error {0:?}")]
    Authorization(String),
    #[error("callback without a code")]
    MissingCode,
    #[error("HubSpot's token endpoint failed")]
    TokenEndpoint(#[source] OAuthError),
    #[error("token introspection did not name the portal")]
    NoPortal,
    #[error("portal {0} is connected to another tenant")]
    OtherTenant(PortalId),
    #[error("the store failed")]
    Store(#[from] StoreError),
    #[error("token encryption failed")]
    Cipher(#[from] CipherError),
    /// Connected, but the initial sync was not queued.
    #[error("the initial sync could not be queued")]
    NotQueued(#[source] QueueError),
}

impl ConnectError {
    /// Logs the error (with its chain) at the level its cause deserves.
    pub fn log(&self) {
        let chain = chain(self);
        match self {
            ConnectError::Store(_) | ConnectError::Cipher(_) | ConnectError::NotQueued(_) => {
                tracing::error!(error = %chain, "connect flow failed")
            }
            ConnectError::NoPortal => tracing::error!(error = %chain, "connect flow failed"),
            ConnectError::Authorization(_) | ConnectError::AccessDenied => {
                tracing::info!(error = %chain, "connect flow ended at HubSpot")
            }
            _ => tracing::warn!(error = %chain, "connect flow refused"),
        }
    }

    /// The page (status, title, message) for the person connecting.
    pub fn reply(&self) -> Reply {
        match self {
            ConnectError::Link(e) => link_refused(e),
            ConnectError::MissingState => restart(
                400,
                "Connection link not valid",
                "This page was opened without the security token HubSpot sends back.",
            ),
            ConnectError::UnknownState => restart(
                400,
                "Connection link not valid",
                "This connection attempt is unknown (or has lapsed).",
            ),
            ConnectError::StateUsed => restart(
                400,
                "Connection link already used",
                "This connection attempt was already completed or used once.",
            ),
            ConnectError::StateExpired => restart(
                400,
                "Connection link expired",
                "This connection attempt took too long and has expired.",
            ),
            ConnectError::LinkUsed => Reply::page(
                403,
                "Link already used",
                "This link was already used to start a connection. Open \"Connect HubSpot\" from the application again.",
            ),
            ConnectError::OtherBrowser => restart(
                400,
                "Connection not started in this browser",
                "This connection was started in another browser, or this browser blocked the cookie it needs.",
            ),
            ConnectError::AccessDenied => restart(
                403,
                "HubSpot access was declined",
                "You declined to give the application access to your HubSpot account.",
            ),
            ConnectError::Authorization(error) => restart(
                400,
                "HubSpot did not authorize the connection",
                &format!("HubSpot answered with \"{error}\"."),
            ),
            ConnectError::MissingCode => restart(
                400,
                "Connection failed",
                "HubSpot did not send an authorization code.",
            ),
            ConnectError::TokenEndpoint(e) => token_endpoint_failed(e),
            ConnectError::NoPortal => restart(
                502,
                "Connection failed",
                "HubSpot did not tell us which account was connected.",
            ),
            ConnectError::OtherTenant(portal) => Reply::page(
                409,
                "HubSpot account already connected",
                &format!(
                    "HubSpot account {portal} is already connected to another workspace of the application. Nothing was changed. Disconnect it there first, or connect a different HubSpot account."
                ),
            ),
            ConnectError::Store(_) | ConnectError::Cipher(_) => Reply::page(
                503,
                "Temporarily unavailable",
                "HubSpot could not be connected right now because of a temporary problem on our side. Please try again in a few minutes.",
            ),
            ConnectError::NotQueued(_) => Reply::page(
                503,
                "Connected, sync not started",
                "Your HubSpot account is connected, but the first sync could not be started. Please connect again in a few minutes to start it.",
            ),
        }
    }
}

/// Why a disconnect request was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum DisconnectError {
    #[error("portal is missing or not a number")]
    BadPortal,
    #[error("disconnect link refused")]
    Link(#[source] LinkError),
    #[error("this portal is not connected to this tenant")]
    NotConnected,
    #[error("the store failed")]
    Store(#[source] StoreError),
}

impl DisconnectError {
    pub fn log(&self) {
        let chain = chain(self);
        match self {
            DisconnectError::Store(_) => tracing::error!(error = %chain, "disconnect failed"),
            _ => tracing::warn!(error = %chain, "disconnect request refused"),
        }
    }

    /// The JSON answer for the application.
    pub fn reply(&self) -> Reply {
        let (status, message) = match self {
            DisconnectError::BadPortal => (400, self.to_string()),
            DisconnectError::Link(LinkError::Missing) => (401, link_message(self)),
            DisconnectError::Link(_) => (403, link_message(self)),
            DisconnectError::NotConnected => (404, self.to_string()),
            DisconnectError::Store(_) => (503, "temporarily unavailable".to_owned()),
        };
        Reply::json(status, &serde_json::json!({ "error": message }))
    }
}

fn link_message(e: &DisconnectError) -> String {
    match e {
        DisconnectError::Link(l) => l.to_string(),
        other => other.to_string(),
    }
}

/// `error: cause: cause …`, for one log field.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

fn link_refused(e: &LinkError) -> Reply {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_connect_error_has_a_page_without_its_chain() {
        let errors = [
            ConnectError::Link(LinkError::Expired),
            ConnectError::MissingState,
            ConnectError::UnknownState,
            ConnectError::StateUsed,
            ConnectError::StateExpired,
            ConnectError::LinkUsed,
            ConnectError::OtherBrowser,
            ConnectError::AccessDenied,
            ConnectError::Authorization("server_error".into()),
            ConnectError::MissingCode,
            ConnectError::TokenEndpoint(OAuthError::Timeout),
            ConnectError::NoPortal,
            ConnectError::OtherTenant(PortalId(42)),
            ConnectError::Store(StoreError::InvalidInput("secret detail".into())),
        ];
        for e in errors {
            let page = e.reply();
            assert!(page.status >= 400, "{e}: {}", page.status);
            assert!(page.body.contains("<h1>"), "{e}: an HTML page");
            assert!(
                !page.body.contains("secret detail"),
                "{e}: no error chain on a page"
            );
        }
        assert_eq!(ConnectError::OtherTenant(PortalId(42)).reply().status, 409);
        assert_eq!(ConnectError::Link(LinkError::Missing).reply().status, 401);
    }

    #[test]
    fn disconnect_errors_are_json_with_the_documented_statuses() {
        let cases = [
            (DisconnectError::BadPortal, 400),
            (DisconnectError::Link(LinkError::Missing), 401),
            (DisconnectError::Link(LinkError::BadSignature), 403),
            (DisconnectError::NotConnected, 404),
            (
                DisconnectError::Store(StoreError::InvalidInput("x".into())),
                503,
            ),
        ];
        for (e, status) in cases {
            let r = e.reply();
            assert_eq!(r.status, status, "{e}");
            let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
            assert!(v["error"].is_string(), "{e}");
        }
    }

    #[test]
    fn the_chain_names_every_cause() {
        let e = ConnectError::Link(LinkError::Expired);
        assert_eq!(chain(&e), "link refused: the link has expired");
    }
}
