//! Rate limiting of hubsync's HubSpot calls, in one crate:
//!
//! * [`SharedRateLimiter`]: one budget per portal for every Lambda instance
//!   of every function, leased in blocks from a ledger in the Control table
//!   (`hubsync_store::rate_ledger`), with a fair share between realtime
//!   (webhook worker) and background (reconciliation) callers, and a 429
//!   pausing everyone;
//! * [`HubSpotSettings`]: the client and the limiter a function runs with
//!   (`HUBSYNC_RATE_LIMITER=shared`, the default, or `instance`: the
//!   client's in-process limiter, `hubsync_hubspot::InProcessRateLimiter`,
//!   with a per-instance share).
//!
//! The limiter trait itself (`hubsync_hubspot::RateLimiter`) is the
//! client's: it asks for a permit before every request.
#![forbid(unsafe_code)]

pub mod settings;
pub mod shared_limit;

pub use settings::{HubSpotSettings, RateLimitMode};
pub use shared_limit::{PermitClass, SharedLimitConfig, SharedRateLimiter};
