//! HubSpot properties → hubsync app records. Pure: no I/O, no clocks, no
//! panics on input. HubSpot's own types — ids, [`HubSpotObject`] (with the
//! version rule), owners, property definitions, timestamps — are
//! `hubsync-hubspot`'s; this crate reads them (and re-exports them).
//!
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
//! * [`suggest`]: "Suggest mappings" — the application's fields against
//!   HubSpot's properties, scored and explained.
#![forbid(unsafe_code)]

pub mod config;
pub mod map;
pub mod record;
pub mod suggest;
pub mod transform;
pub mod values;

pub use config::{
    missing_properties, validate, validate_lists, AssociationRule, ConfigErrors, MappingConfig,
    ObjectConfig, PropertyCatalog, Rule, RuleError, ScopeFilter,
};
/// HubSpot's own types (ids, objects, owners, property definitions, timestamps)
/// are the HubSpot crate's; the mapping reads them.
pub use hubsync_hubspot::{ids, object};
pub use hubsync_hubspot::{
    OwnerInfo, Owners, Pipelines, PropertyDefinition, PropertyOption, StageInfo,
};
pub use ids::{IdParseError, ObjectId, ObjectType, PortalId};
pub use map::stored_links::{
    association_fields, fields_linking_to, names_any, stored_links, StoredLinks,
};
pub use map::{
    map_company, map_contact, map_deal, map_object, map_with, properties_for, Associations,
    MapContext,
};
pub use object::{HubSpotObject, Properties};
pub use record::{
    AppRecord, ContentHash, FieldError, MapOutcome, MappedRecord, SkipReason, CONTENT_HASH_VERSION,
    RECORD_TYPE_FIELD,
};
pub use transform::{Lookups, Transform};
pub use values::{Cents, ConvError, Timestamp, ValueKind};
