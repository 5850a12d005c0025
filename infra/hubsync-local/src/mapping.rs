//! The admin operations on a portal's mapping config (show, validate, save,
//! preview) live in the production crate `hubsync-admin`
//! ([`hubsync_admin::mapping`]), shared with `hubsync-ops mapping …`; this
//! module re-exports them for the harness and its tests.

pub use hubsync_admin::mapping::*;
