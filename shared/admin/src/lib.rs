//! Admin operations of a hubsync deployment: the service layer under the
//! admin API (`functions/admin-api`), the ops CLI (`hubsync-ops`) and the
//! OAuth function's disconnect route — each operation written once. Depends only on the shared crates: the caller brings the
//! store, the HubSpot client and the token source (in production the KMS
//! tokens with single-flight refresh, `hubsync_auth::wiring`).
//!
//! - [`mapping`]: a portal's mapping config — show, validate, save,
//!   preview ("Test sync");
//! - [`link`]: the signed install and disconnect links;
//! - [`tenant`]: a tenant's connections with their sync progress;
//! - [`sync`]: starting an initial sync or a re-sync;
//! - [`health`]: records that did not sync cleanly, by category;
//! - [`records`]: deleting archived records permanently (one, or all of a
//!   type);
//! - [`connection`]: disconnecting a portal (revoke, delete tokens, mark
//!   `disconnected`), for the OAuth function's disconnect route and ops.
#![forbid(unsafe_code)]

pub mod connection;
pub mod error;
pub mod health;
pub mod link;
pub mod mapping;
pub mod records;
pub mod sync;
pub mod tenant;

pub use error::AdminError;
