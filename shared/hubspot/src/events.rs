//! The webhook event model: the JSON array HubSpot POSTs to the webhook URL.
//!
//! Two formats arrive at the same URL, often in one delivery:
//! * **classic** types name the object: `contact.propertyChange`,
//!   `company.merge`, `contact.privacyDeletion`, …;
//! * **generic** types (developer-platform apps' `crmObjects`
//!   subscriptions) name only the change, `object.creation`,
//!   `object.propertyChange`, …, and carry the object in `objectTypeId`
//!   (`0-1` contacts, `0-2` companies, `0-3` deals); a generic
//!   `object.associationChange` carries `fromObjectTypeId`/`fromObjectId`
//!   and `toObjectTypeId`/`toObjectId` instead.
//!
//! [`WebhookEvent::object_type`] and [`WebhookEvent::kind`] resolve both to
//! the same meaning; the event keeps its wire fields, so that it serialises
//! back to what HubSpot sent.
//!
//! HubSpot gives no ordering and no exactly-once guarantee, and `eventId` is
//! not guaranteed unique: consumers order by `occurredAt` and re-read the
//! object instead of trusting the event's content. Unknown subscription types
//! parse into [`SubscriptionType::Unknown`] so that they can be skipped and
//! counted instead of failing the whole delivery.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ids::{ObjectId, ObjectType, PortalId};

/// Most events HubSpot puts in one delivery.
pub const MAX_EVENTS_PER_DELIVERY: usize = 100;

/// What happened to the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    Creation,
    Deletion,
    PropertyChange,
    Merge,
    Restore,
    AssociationChange,
    /// GDPR delete (`contact.privacyDeletion` only). Also followed by a
    /// `contact.deletion`, in any order.
    PrivacyDeletion,
}

impl EventKind {
    const ALL: [EventKind; 7] = [
        EventKind::Creation,
        EventKind::Deletion,
        EventKind::PropertyChange,
        EventKind::Merge,
        EventKind::Restore,
        EventKind::AssociationChange,
        EventKind::PrivacyDeletion,
    ];

    /// The suffix in the subscription type (`propertyChange`).
    pub const fn as_str(self) -> &'static str {
        match self {
            EventKind::Creation => "creation",
            EventKind::Deletion => "deletion",
            EventKind::PropertyChange => "propertyChange",
            EventKind::Merge => "merge",
            EventKind::Restore => "restore",
            EventKind::AssociationChange => "associationChange",
            EventKind::PrivacyDeletion => "privacyDeletion",
        }
    }
}

/// A parsed `subscriptionType` such as `contact.propertyChange`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SubscriptionType {
    Known {
        object: ObjectType,
        kind: EventKind,
    },
    /// A generic `object.{kind}`: the object type is in the event's
    /// `objectTypeId` (`fromObjectTypeId` for association changes).
    Generic(EventKind),
    /// Anything else (new HubSpot event types, other objects): kept verbatim
    /// so it can be counted and skipped.
    Unknown(String),
}

/// The prefix of generic subscription types.
pub const GENERIC_PREFIX: &str = "object";

impl SubscriptionType {
    /// Parse a subscription type string. Never fails.
    pub fn parse(s: &str) -> Self {
        if let Some(kind) = s
            .strip_prefix(GENERIC_PREFIX)
            .and_then(|rest| rest.strip_prefix('.'))
            .and_then(|suffix| EventKind::ALL.into_iter().find(|k| k.as_str() == suffix))
            .filter(|k| *k != EventKind::PrivacyDeletion)
        {
            return SubscriptionType::Generic(kind);
        }
        let known = s.split_once('.').and_then(|(prefix, suffix)| {
            let object = ObjectType::from_subscription_prefix(prefix)?;
            let kind = EventKind::ALL.into_iter().find(|k| k.as_str() == suffix)?;
            // Only contacts have privacy deletions.
            if kind == EventKind::PrivacyDeletion && object != ObjectType::Contacts {
                return None;
            }
            Some(SubscriptionType::Known { object, kind })
        });
        known.unwrap_or_else(|| SubscriptionType::Unknown(s.to_owned()))
    }

    /// The object type a classic type names (generic ones name none: see
    /// [`WebhookEvent::object_type`]).
    pub fn object(&self) -> Option<ObjectType> {
        match self {
            SubscriptionType::Known { object, .. } => Some(*object),
            SubscriptionType::Generic(_) | SubscriptionType::Unknown(_) => None,
        }
    }

    /// The event kind, for classic and generic types.
    pub fn kind(&self) -> Option<EventKind> {
        match self {
            SubscriptionType::Known { kind, .. } | SubscriptionType::Generic(kind) => Some(*kind),
            SubscriptionType::Unknown(_) => None,
        }
    }

    /// A classic or generic type hubsync handles (a generic event's object
    /// type may still be unsupported: see [`WebhookEvent::object_type`]).
    pub fn is_known(&self) -> bool {
        !matches!(self, SubscriptionType::Unknown(_))
    }

    /// A generic `object.*` type.
    pub fn is_generic(&self) -> bool {
        matches!(self, SubscriptionType::Generic(_))
    }
}

impl fmt::Display for SubscriptionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubscriptionType::Known { object, kind } => {
                write!(f, "{}.{}", object.subscription_prefix(), kind.as_str())
            }
            SubscriptionType::Generic(kind) => write!(f, "{GENERIC_PREFIX}.{}", kind.as_str()),
            SubscriptionType::Unknown(s) => f.write_str(s),
        }
    }
}

impl Serialize for SubscriptionType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SubscriptionType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<str>::deserialize(d)?;
        Ok(SubscriptionType::parse(&s))
    }
}

/// One event of a webhook delivery. Field names follow HubSpot's JSON
/// (camelCase); fields that only some event kinds carry are optional.
/// Unknown JSON fields are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEvent {
    /// Not guaranteed unique: never dedupe on it alone.
    pub event_id: u64,
    pub subscription_id: u64,
    pub portal_id: PortalId,
    pub app_id: u64,
    /// Epoch milliseconds.
    pub occurred_at: i64,
    pub subscription_type: SubscriptionType,
    /// Delivery attempt, from 0.
    #[serde(default)]
    pub attempt_number: u32,
    /// Absent on association-change events (they carry from/to ids).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_id: Option<ObjectId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_flag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_id: Option<String>,
    // propertyChange
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property_name: Option<String>,
    /// May hold PII (an email, a name): never log it. Non-string scalars
    /// are kept as their JSON text.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "scalar_as_string"
    )]
    pub property_value: Option<String>,
    // merge
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_object_id: Option<ObjectId>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_object_ids: Vec<ObjectId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_object_id: Option<ObjectId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_of_properties_moved: Option<u64>,
    // associationChange
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub association_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_object_id: Option<ObjectId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_object_id: Option<ObjectId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub association_removed: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_primary_association: Option<bool>,
    // generic format
    /// `0-1`, `0-2`, `0-3`, … on generic events other than association
    /// changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_type_id: Option<String>,
    /// The association's ends on a generic `object.associationChange`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_object_type_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_object_type_id: Option<String>,
    /// HubSpot's association type id (generic association changes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub association_type_id: Option<u64>,
}

impl WebhookEvent {
    /// The object type the event is about: named by a classic type, else
    /// the generic event's `objectTypeId` (`fromObjectTypeId` for an
    /// association change). `None` for unknown types and for object types
    /// hubsync does not sync (tickets, custom objects, …).
    pub fn object_type(&self) -> Option<ObjectType> {
        match &self.subscription_type {
            SubscriptionType::Known { object, .. } => Some(*object),
            SubscriptionType::Generic(kind) => {
                let id = if *kind == EventKind::AssociationChange {
                    self.from_object_type_id
                        .as_deref()
                        .or(self.object_type_id.as_deref())
                } else {
                    self.object_type_id.as_deref()
                }?;
                ObjectType::from_object_type_id(id.trim())
            }
            SubscriptionType::Unknown(_) => None,
        }
    }

    /// What happened, for classic and generic types.
    pub fn kind(&self) -> Option<EventKind> {
        self.subscription_type.kind()
    }

    /// The object type and kind when hubsync handles the event (a known
    /// type, about companies, contacts or deals).
    pub fn resolved(&self) -> Option<(ObjectType, EventKind)> {
        Some((self.object_type()?, self.kind()?))
    }

    /// The object the event is about: `objectId`, or `fromObjectId` for
    /// association changes.
    pub fn subject_id(&self) -> Option<ObjectId> {
        self.object_id.or(self.from_object_id)
    }

    /// For merges, the surviving record: `newObjectId`, else
    /// `primaryObjectId`, else `objectId`.
    pub fn merge_survivor(&self) -> Option<ObjectId> {
        self.new_object_id
            .or(self.primary_object_id)
            .or(self.object_id)
    }

    /// Every object id the event touches (deduplicated, sorted): the subject,
    /// merge participants, and association endpoints.
    pub fn touched_ids(&self) -> Vec<ObjectId> {
        let mut ids: Vec<ObjectId> = [
            self.object_id,
            self.primary_object_id,
            self.new_object_id,
            self.from_object_id,
        ]
        .into_iter()
        .flatten()
        .chain(self.merged_object_ids.iter().copied())
        .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

fn scalar_as_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    use serde::de::Error as _;
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::Null => Ok(None),
        serde_json::Value::String(s) => Ok(Some(s)),
        serde_json::Value::Number(n) => Ok(Some(n.to_string())),
        serde_json::Value::Bool(b) => Ok(Some(b.to_string())),
        _ => Err(D::Error::custom("propertyValue is not a scalar")),
    }
}

/// Why a delivery body could not be parsed.
///
/// Messages carry a position, never a value from the body (values may be PII).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    #[error("webhook body is not a valid JSON array of events ({category} error at line {line}, column {column})")]
    Malformed {
        category: &'static str,
        line: usize,
        column: usize,
    },
    #[error("webhook body holds {count} events, more than {MAX_EVENTS_PER_DELIVERY}")]
    TooManyEvents { count: usize },
}

/// Parse a delivery body (the raw bytes HubSpot POSTed) into events.
/// Unknown subscription types are kept as [`SubscriptionType::Unknown`]; a
/// structurally invalid event (missing `portalId`, wrong types) fails the
/// delivery, which the intake answers with 400.
pub fn parse_delivery(raw_body: &[u8]) -> Result<Vec<WebhookEvent>, DeliveryError> {
    let events: Vec<WebhookEvent> =
        serde_json::from_slice(raw_body).map_err(|e| DeliveryError::Malformed {
            category: match e.classify() {
                serde_json::error::Category::Io => "io",
                serde_json::error::Category::Syntax => "syntax",
                serde_json::error::Category::Data => "data",
                serde_json::error::Category::Eof => "eof",
            },
            line: e.line(),
            column: e.column(),
        })?;
    if events.len() > MAX_EVENTS_PER_DELIVERY {
        return Err(DeliveryError::TooManyEvents {
            count: events.len(),
        });
    }
    Ok(events)
}

#[cfg(test)]
mod tests;
