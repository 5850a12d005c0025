//! The app side: typed records, mapping outcomes and errors.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::ids::{ObjectId, ObjectType};
use crate::values::{Timestamp, ValueKind};

/// One mapped record: the object type and the app fields the portal's
/// mapping config produced (`target` → JSON value; `null` when HubSpot has
/// no value or the value did not convert).
///
/// Serialized as one flat JSON object: `record_type` (`company` /
/// `contact` / `deal`) next to the fields, which is how the store writes it
/// (every field a top-level attribute). `Debug` shows field names only:
/// values may be personal data.
#[derive(Clone, PartialEq, Eq)]
pub struct AppRecord {
    object_type: ObjectType,
    fields: BTreeMap<String, Value>,
}

/// The key of the type tag in a serialized record.
pub const RECORD_TYPE_FIELD: &str = "record_type";

fn record_type_name(t: ObjectType) -> &'static str {
    match t {
        ObjectType::Companies => "company",
        ObjectType::Contacts => "contact",
        ObjectType::Deals => "deal",
    }
}

impl AppRecord {
    /// An empty record of a type.
    pub fn new(object_type: ObjectType) -> Self {
        Self {
            object_type,
            fields: BTreeMap::new(),
        }
    }

    /// A record with the given fields.
    pub fn with_fields(
        object_type: ObjectType,
        fields: impl IntoIterator<Item = (String, Value)>,
    ) -> Self {
        Self {
            object_type,
            fields: fields.into_iter().collect(),
        }
    }

    pub fn object_type(&self) -> ObjectType {
        self.object_type
    }

    /// One field's value (`None` when the record has no such field).
    pub fn get(&self, field: &str) -> Option<&Value> {
        self.fields.get(field)
    }

    /// A text field's value.
    pub fn str(&self, field: &str) -> Option<&str> {
        self.fields.get(field).and_then(Value::as_str)
    }

    /// Sets a field.
    pub fn set(&mut self, field: impl Into<String>, value: Value) {
        self.fields.insert(field.into(), value);
    }

    /// Every field, by name.
    pub fn fields(&self) -> &BTreeMap<String, Value> {
        &self.fields
    }

    /// The content hash of this record's mapped fields.
    pub fn content_hash(&self) -> ContentHash {
        ContentHash::of(self)
    }
}

impl fmt::Debug for AppRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppRecord")
            .field("object_type", &self.object_type)
            .field("fields", &self.fields.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Serialize for AppRecord {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.fields.len() + 1))?;
        map.serialize_entry(RECORD_TYPE_FIELD, record_type_name(self.object_type))?;
        for (k, v) in &self.fields {
            if k != RECORD_TYPE_FIELD {
                map.serialize_entry(k, v)?;
            }
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for AppRecord {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let mut fields: BTreeMap<String, Value> = BTreeMap::deserialize(d)?;
        let tag = fields
            .remove(RECORD_TYPE_FIELD)
            .ok_or_else(|| D::Error::missing_field(RECORD_TYPE_FIELD))?;
        let object_type = ObjectType::ALL
            .into_iter()
            .find(|t| tag.as_str() == Some(record_type_name(*t)))
            .ok_or_else(|| D::Error::custom("unknown record_type"))?;
        Ok(Self {
            object_type,
            fields,
        })
    }
}

/// Version tag mixed into every content hash: bump it when the mapping's
/// output changes meaning, so every record is rewritten once.
/// v3: probabilities are JSON numbers, association lists put the primary
/// record first.
pub const CONTENT_HASH_VERSION: &str = "hubsync-mapping/v3";

/// Hex SHA-256 over a canonical serialization of the mapped fields (JSON of
/// the [`AppRecord`], fields in name order, decimals normalized,
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
        // Serializing a string-keyed map of JSON values cannot fail; should
        // it ever, the
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
    /// Outside the portal's sync scope (lifecycle stage, pipeline, …).
    OutOfScope,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SkipReason::MissingEmail => "missing_email",
            SkipReason::InvalidEmail => "invalid_email",
            SkipReason::OutOfScope => "out_of_scope",
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
