//! HubSpot properties → hubsync app records. Pure: no I/O, no clocks, no
//! panics on input.
//!
//! * [`ids`]: `PortalId`, `ObjectId`, `ObjectType`, shared by every crate.
//! * [`object::HubSpotObject`]: a CRM object as HubSpot returns it.
//! * [`map_object`] / [`map_company`] / [`map_contact`] / [`map_deal`]: the
//!   default field map ([`MappingConfig::default`]), producing a [`MapOutcome`] — a [`MappedRecord`]
//!   (typed [`AppRecord`], source version, content hash, per-field errors) or
//!   a reported skip.
//! * [`properties_for`]: the HubSpot properties to request per type.
//! * [`values`]: the explicit string conversions (decimal, cents, dates, …).
//! * [`transform`]: the per-field transforms of a mapping rule.
//! * [`config`]: a portal's mapping config (rules, scope, associations),
//!   its defaults and its validation against HubSpot's property
//!   definitions; [`map_with`] maps with it.
#![forbid(unsafe_code)]

pub mod config;
pub mod ids;
pub mod map;
pub mod object;
pub mod record;
pub mod transform;
pub mod values;

pub use config::{
    missing_properties, validate, validate_lists, AssociationRule, ConfigErrors, MappingConfig,
    ObjectConfig, PropertyCatalog, PropertyDefinition, PropertyOption, Rule, RuleError,
    ScopeFilter,
};
pub use ids::{IdParseError, ObjectId, ObjectType, PortalId};
pub use map::{
    map_company, map_contact, map_deal, map_object, map_with, properties_for, Associations,
    MapContext,
};
pub use object::{HubSpotObject, Properties};
pub use record::{
    AppRecord, ContentHash, FieldError, MapOutcome, MappedRecord, SkipReason, CONTENT_HASH_VERSION,
    RECORD_TYPE_FIELD,
};
pub use transform::{OwnerInfo, Owners, Transform};
pub use values::{Cents, ConvError, Timestamp, ValueKind};
