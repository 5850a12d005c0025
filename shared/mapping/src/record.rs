//! The app side: typed records, mapping outcomes and errors.

use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ids::{ObjectId, ObjectType};
use crate::values::{Cents, Timestamp, ValueKind};

/// A company as the app reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Company {
    /// `name`
    pub name: Option<String>,
    /// `domain`
    pub domain: Option<String>,
    /// `hubspot_owner_id`, the raw HubSpot owner id. Resolving it to the
    /// owner's email (the app's `owner` field) needs the owners API and is
    /// done outside this pure crate.
    pub owner_id: Option<String>,
    /// `annualrevenue`, exact decimal.
    pub arr: Option<Decimal>,
    /// `industry`
    pub industry: Option<String>,
    /// `numberofemployees`, a non-negative integer.
    pub employee_count: Option<i64>,
    /// `annualrevenue` in cents (banker's rounding below a cent).
    pub annual_revenue_cents: Option<Cents>,
}

/// A contact as the app reads it. Only mapped when it has an email.
///
/// `Debug` redacts personal data (email, name).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// `email` (required: contacts without one are skipped).
    pub email: String,
    /// `firstname` + `lastname`, each trimmed, joined by one space; either
    /// may be missing.
    pub name: Option<String>,
    /// `company` (the free-text company name on the contact).
    pub company_name: Option<String>,
    /// `lifecyclestage`
    pub lifecycle_stage: Option<String>,
    /// `hs_lead_status`
    pub lead_status: Option<String>,
    /// `hubspot_owner_id`
    pub owner_id: Option<String>,
    /// `createdate`
    pub first_seen_at: Option<Timestamp>,
    /// `notes_last_updated` — HubSpot's "Last Activity Date" (last call,
    /// email, meeting or note logged). Chosen over `hs_last_activity_date`
    /// because it is the long-standing default property present in every
    /// portal; no fallback between the two, so the value has one meaning.
    pub last_activity_at: Option<Timestamp>,
}

impl fmt::Debug for Contact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Contact")
            .field("email", &"[REDACTED]")
            .field("name", &self.name.as_ref().map(|_| "[REDACTED]"))
            .field("company_name", &self.company_name)
            .field("lifecycle_stage", &self.lifecycle_stage)
            .field("lead_status", &self.lead_status)
            .field("owner_id", &self.owner_id)
            .field("first_seen_at", &self.first_seen_at)
            .field("last_activity_at", &self.last_activity_at)
            .finish()
    }
}

/// A deal as the app reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deal {
    /// `dealname`
    pub name: Option<String>,
    /// `dealstage` (the stage id)
    pub stage: Option<String>,
    /// `pipeline` (the pipeline id)
    pub pipeline: Option<String>,
    /// `amount` in cents (banker's rounding below a cent).
    pub amount_cents: Option<Cents>,
    /// `closedate`
    pub closed_at: Option<Timestamp>,
    /// `hs_deal_stage_probability`, a decimal in `[0, 1]`.
    pub close_probability: Option<Decimal>,
    /// `hubspot_owner_id`
    pub owner_id: Option<String>,
}

/// One mapped record. Serialized with a `record_type` tag
/// (`company` / `contact` / `deal`) next to the fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "record_type", rename_all = "snake_case")]
pub enum AppRecord {
    Company(Company),
    Contact(Contact),
    Deal(Deal),
}

impl AppRecord {
    pub fn object_type(&self) -> ObjectType {
        match self {
            AppRecord::Company(_) => ObjectType::Companies,
            AppRecord::Contact(_) => ObjectType::Contacts,
            AppRecord::Deal(_) => ObjectType::Deals,
        }
    }

    /// The content hash of this record's mapped fields.
    pub fn content_hash(&self) -> ContentHash {
        ContentHash::of(self)
    }
}

/// Version tag mixed into every content hash: bump it when the mapping's
/// output changes meaning, so every record is rewritten once.
pub const CONTENT_HASH_VERSION: &str = "hubsync-mapping/v1";

/// Hex SHA-256 over a canonical serialization of the mapped fields (JSON of
/// the [`AppRecord`], fields in declaration order, decimals normalized,
/// timestamps in one format), prefixed by [`CONTENT_HASH_VERSION`].
///
/// It covers the mapped fields only — not `archived`, `archived_at`, the
/// source version or merge pointers — so the store compares those
/// separately when deciding whether a write can be skipped.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ContentHash(pub String);

impl ContentHash {
    pub fn of(record: &AppRecord) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(CONTENT_HASH_VERSION.as_bytes());
        hasher.update(b"\n");
        // Serializing these plain structs to JSON cannot fail (no maps with
        // non-string keys, no fallible Serialize impls); should it ever, the
        // hash still differs from any successful one because nothing more is
        // fed in after the version tag.
        if let Ok(json) = serde_json::to_vec(record) {
            hasher.update(&json);
        }
        ContentHash(hex::encode(hasher.finalize()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One field that could not be mapped. The rest of the record still maps;
/// the field is left empty. Never contains the offending value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error(
    "field `{field}` (from HubSpot property `{source_property}`, expected {value_kind}): {message}"
)]
pub struct FieldError {
    /// The app field (`amount_cents`).
    pub field: String,
    /// The HubSpot property it comes from (`amount`).
    pub source_property: String,
    /// What kind of value was expected.
    pub value_kind: ValueKind,
    /// What was wrong, without the value.
    pub message: String,
}

/// Why a HubSpot object produced no app record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// A contact without an email.
    MissingEmail,
    /// A contact whose email is not an address at all.
    InvalidEmail,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SkipReason::MissingEmail => "missing_email",
            SkipReason::InvalidEmail => "invalid_email",
        })
    }
}

/// A successfully mapped object, with everything the store needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MappedRecord {
    pub object_type: ObjectType,
    pub id: ObjectId,
    /// HubSpot's `archived` flag (recycle bin).
    pub archived: bool,
    pub archived_at: Option<Timestamp>,
    /// Epoch ms of the last modification in HubSpot (`hs_lastmodifieddate`
    /// for companies and deals, `lastmodifieddate` for contacts, else the
    /// object's `updatedAt`); the store's monotonic version guard.
    pub source_version: Option<i64>,
    pub record: AppRecord,
    pub content_hash: ContentHash,
    /// Fields that failed to convert (left empty in `record`).
    pub errors: Vec<FieldError>,
}

/// The result of mapping one object.
// Skips are rare; boxing the common variant would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum MapOutcome {
    Mapped(MappedRecord),
    /// Not synced; reported and counted, not silently dropped.
    Skipped {
        object_type: ObjectType,
        id: ObjectId,
        reason: SkipReason,
        errors: Vec<FieldError>,
    },
}

impl MapOutcome {
    pub fn id(&self) -> ObjectId {
        match self {
            MapOutcome::Mapped(r) => r.id,
            MapOutcome::Skipped { id, .. } => *id,
        }
    }

    pub fn mapped(&self) -> Option<&MappedRecord> {
        match self {
            MapOutcome::Mapped(r) => Some(r),
            MapOutcome::Skipped { .. } => None,
        }
    }

    pub fn into_mapped(self) -> Option<MappedRecord> {
        match self {
            MapOutcome::Mapped(r) => Some(r),
            MapOutcome::Skipped { .. } => None,
        }
    }

    /// Field errors, whether mapped or skipped.
    pub fn errors(&self) -> &[FieldError] {
        match self {
            MapOutcome::Mapped(r) => &r.errors,
            MapOutcome::Skipped { errors, .. } => errors,
        }
    }
}
