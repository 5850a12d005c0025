//! HubSpot properties → hubsync app records. Pure: no I/O, no clocks.
#![forbid(unsafe_code)]

pub mod ids;

pub use ids::{IdParseError, ObjectId, ObjectType, PortalId};
