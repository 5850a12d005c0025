//! `oauth-callback`: "Connect HubSpot".
//!
//! * `GET /oauth/install?tenant&expires&signature` — a link signed by the
//!   application or the admin API ([`link`]); stores a single-use, expiring `state` bound to
//!   the tenant and redirects (302) to HubSpot's consent page.
//! * `GET /oauth/callback` — checks and uses up the state, exchanges the
//!   code, learns the portal, stores the KMS-encrypted tokens (refusing a
//!   portal bound to another tenant), queues the initial full sync
//!   ([`hubsync_store::SyncJob`]) and shows a success page (or redirects to
//!   the application).
//! * `POST /oauth/disconnect?tenant&portal&expires&signature` — revokes the
//!   grant at HubSpot, deletes the tokens, marks the connection
//!   `disconnected` (records are kept).
//!
//! [`service::OAuthService`] holds the logic, generic over narrow traits; its
//! steps return typed errors that [`error`] turns into pages (and log
//! lines) in one place; [`http::respond`] routes for both the Lambda and the
//! local runner.
#![forbid(unsafe_code)]

pub mod error;
pub mod http;
pub mod reply;
pub mod service;
pub mod settings;

pub use error::{ConnectError, DisconnectError};
pub use http::respond;
pub use hubsync_admin::link::{self, disconnect_url, install_url};
pub use hubsync_messages::SqsJobQueue;
pub use reply::Reply;
pub use service::{JobQueue, OAuthService, Query, QueueError, TokenEndpoint};
pub use settings::{FlowConfig, Settings};
