//! HubSpot properties → hubsync app records. Pure: no I/O, no clocks, no
//! panics on input.
//!
//! * [`ids`]: `PortalId`, `ObjectId`, `ObjectType`, shared by every crate.
//! * [`object::HubSpotObject`]: a CRM object as HubSpot returns it.
//! * [`map_object`] / [`map_company`] / [`map_contact`] / [`map_deal`]: the
//!   default field map, producing a [`MapOutcome`] — a [`MappedRecord`]
//!   (typed [`AppRecord`], source version, content hash, per-field errors) or
//!   a reported skip.
//! * [`properties_for`]: the HubSpot properties to request per type.
//! * [`values`]: the explicit string conversions (decimal, cents, dates, …).
#![forbid(unsafe_code)]

pub mod ids;
pub mod map;
pub mod object;
pub mod record;
pub mod values;

pub use ids::{IdParseError, ObjectId, ObjectType, PortalId};
pub use map::{map_company, map_contact, map_deal, map_object, properties_for};
pub use object::{HubSpotObject, Properties};
pub use record::{
    AppRecord, Company, Contact, ContentHash, Deal, FieldError, MapOutcome, MappedRecord,
    SkipReason, CONTENT_HASH_VERSION,
};
pub use values::{Cents, ConvError, Timestamp, ValueKind};
