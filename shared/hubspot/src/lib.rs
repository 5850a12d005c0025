//! HubSpot API client for hubsync: webhook signatures and events, CRM v3
//! reads, rate limiting and retries.
#![forbid(unsafe_code)]

pub mod events;
pub mod signature;

/// Id newtypes, shared with `hubsync-mapping` (defined there so the mapping
/// crate stays free of HTTP).
pub mod ids {
    pub use hubsync_mapping::ids::*;
}

pub use events::{parse_delivery, DeliveryError, EventKind, SubscriptionType, WebhookEvent};
pub use ids::{ObjectId, ObjectType, PortalId};
pub use signature::{verify_v3, SignatureError, Tolerance, WebhookVerifier};
