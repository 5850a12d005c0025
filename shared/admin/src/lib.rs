//! Admin operations of a hubsync deployment, for the ops CLI
//! (`hubsync-ops mapping …`, `disconnect`) and the OAuth function's
//! disconnect route. Depends only on the shared crates: the caller brings the
//! store, the HubSpot client and the token source (in production the KMS
//! tokens with single-flight refresh, `hubsync_auth::wiring`).
//!
//! - [`mapping`]: a portal's mapping config — show, validate, save,
//!   preview ("Test sync");
//! - [`link`]: the signed install and disconnect links;
//! - [`connection`]: disconnecting a portal (revoke, delete tokens, mark
//!   `disconnected`), for the OAuth function's disconnect route and ops.
#![forbid(unsafe_code)]

pub mod connection;
pub mod link;
pub mod mapping;
