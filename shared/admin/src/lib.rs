//! Admin operations of a hubsync deployment, shared by the production ops
//! CLI (`hubsync-ops mapping …`) and the local harness (`hubsync-local
//! mapping …`). Depends only on the shared crates: the caller brings the
//! store, the HubSpot client and the token source (in production the KMS
//! tokens with single-flight refresh, `hubsync_auth::wiring`).
//!
//! - [`mapping`]: a portal's mapping config — show, validate, save,
//!   preview ("Test sync").
#![forbid(unsafe_code)]

pub mod mapping;
