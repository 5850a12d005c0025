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
mod tests {
    use super::*;

    const DELIVERY: &str = r#"[
      {"eventId":1779000111,"subscriptionId":2501,"portalId":62515,"appId":1160452,
       "occurredAt":1714564800123,"subscriptionType":"contact.propertyChange",
       "attemptNumber":0,"objectId":123,"changeSource":"CRM",
       "propertyName":"email","propertyValue":"someone@example.com"},
      {"eventId":1779000112,"subscriptionId":2502,"portalId":62515,"appId":1160452,
       "occurredAt":1714564800456,"subscriptionType":"company.creation",
       "attemptNumber":2,"objectId":456,"changeFlag":"CREATED","changeSource":"API",
       "sourceId":"userId:42"},
      {"eventId":1779000113,"subscriptionId":2503,"portalId":62515,"appId":1160452,
       "occurredAt":1714564801000,"subscriptionType":"deal.merge","attemptNumber":0,
       "objectId":789,"changeSource":"CRM_UI","primaryObjectId":789,
       "mergedObjectIds":[790,791],"newObjectId":800,"numberOfPropertiesMoved":4},
      {"eventId":1779000114,"subscriptionId":2504,"portalId":62515,"appId":1160452,
       "occurredAt":1714564802000,"subscriptionType":"contact.associationChange",
       "attemptNumber":0,"changeSource":"USER","associationType":"CONTACT_TO_COMPANY",
       "fromObjectId":123,"toObjectId":456,"associationRemoved":false,
       "isPrimaryAssociation":true},
      {"eventId":1779000115,"subscriptionId":2505,"portalId":62515,"appId":1160452,
       "occurredAt":1714564803000,"subscriptionType":"contact.privacyDeletion",
       "attemptNumber":0,"objectId":123,"changeSource":"GDPR"},
      {"eventId":1779000116,"subscriptionId":2506,"portalId":62515,"appId":1160452,
       "occurredAt":1714564804000,"subscriptionType":"ticket.creation",
       "attemptNumber":0,"objectId":5,"someNewField":{"nested":true}}
    ]"#;

    #[test]
    fn realistic_delivery_parses() {
        let events = parse_delivery(DELIVERY.as_bytes()).unwrap();
        assert_eq!(events.len(), 6);

        let pc = &events[0];
        assert_eq!(pc.portal_id, PortalId(62515));
        assert_eq!(pc.object_id, Some(ObjectId(123)));
        assert_eq!(
            pc.subscription_type,
            SubscriptionType::Known {
                object: ObjectType::Contacts,
                kind: EventKind::PropertyChange
            }
        );
        assert_eq!(pc.property_name.as_deref(), Some("email"));
        assert_eq!(pc.occurred_at, 1_714_564_800_123);

        assert_eq!(events[1].attempt_number, 2);
        assert_eq!(
            events[1].subscription_type.kind(),
            Some(EventKind::Creation)
        );
        assert_eq!(
            events[1].subscription_type.object(),
            Some(ObjectType::Companies)
        );

        let merge = &events[2];
        assert_eq!(merge.merged_object_ids, vec![ObjectId(790), ObjectId(791)]);
        assert_eq!(merge.merge_survivor(), Some(ObjectId(800)));
        assert_eq!(merge.number_of_properties_moved, Some(4));
        assert_eq!(
            merge.touched_ids(),
            vec![ObjectId(789), ObjectId(790), ObjectId(791), ObjectId(800)]
        );

        let assoc = &events[3];
        assert_eq!(assoc.object_id, None);
        assert_eq!(assoc.subject_id(), Some(ObjectId(123)));
        assert_eq!(assoc.to_object_id, Some(ObjectId(456)));
        assert_eq!(
            assoc.association_type.as_deref(),
            Some("CONTACT_TO_COMPANY")
        );
        assert_eq!(assoc.is_primary_association, Some(true));
        assert_eq!(assoc.association_removed, Some(false));

        assert_eq!(
            events[4].subscription_type.kind(),
            Some(EventKind::PrivacyDeletion)
        );

        assert_eq!(
            events[5].subscription_type,
            SubscriptionType::Unknown("ticket.creation".into())
        );
        assert!(!events[5].subscription_type.is_known());
    }

    const GENERIC: &str = r#"[
      {"eventId":1,"subscriptionId":11,"portalId":62515,"appId":1160452,"occurredAt":1714564800000,
       "subscriptionType":"object.creation","attemptNumber":0,"objectId":501,"objectTypeId":"0-2",
       "changeFlag":"CREATED","changeSource":"CRM_UI","sourceId":"userId:7"},
      {"eventId":2,"subscriptionId":12,"portalId":62515,"appId":1160452,"occurredAt":1714564800001,
       "subscriptionType":"object.propertyChange","attemptNumber":0,"objectId":601,"objectTypeId":"0-1",
       "propertyName":"email","propertyValue":"x@example.com","changeSource":"API"},
      {"eventId":3,"subscriptionId":13,"portalId":62515,"appId":1160452,"occurredAt":1714564800002,
       "subscriptionType":"object.merge","attemptNumber":0,"objectId":701,"objectTypeId":"0-3",
       "primaryObjectId":701,"mergedObjectIds":[702],"newObjectId":703,"numberOfPropertiesMoved":2},
      {"eventId":4,"subscriptionId":14,"portalId":62515,"appId":1160452,"occurredAt":1714564800003,
       "subscriptionType":"object.associationChange","attemptNumber":0,
       "fromObjectTypeId":"0-3","fromObjectId":701,"toObjectTypeId":"0-2","toObjectId":501,
       "associationTypeId":5,"associationRemoved":false,"isPrimaryAssociation":true},
      {"eventId":5,"subscriptionId":15,"portalId":62515,"appId":1160452,"occurredAt":1714564800004,
       "subscriptionType":"object.deletion","attemptNumber":0,"objectId":9,"objectTypeId":"0-5"},
      {"eventId":6,"subscriptionId":16,"portalId":62515,"appId":1160452,"occurredAt":1714564800005,
       "subscriptionType":"object.restore","attemptNumber":0,"objectId":601,"objectTypeId":"0-1"},
      {"eventId":7,"subscriptionId":17,"portalId":62515,"appId":1160452,"occurredAt":1714564800006,
       "subscriptionType":"object.privacyDeletion","attemptNumber":0,"objectId":601,"objectTypeId":"0-1"}
    ]"#;

    #[test]
    fn generic_events_resolve_their_object_type_from_the_type_id() {
        let events = parse_delivery(GENERIC.as_bytes()).unwrap();
        let resolved: Vec<Option<(ObjectType, EventKind)>> =
            events.iter().map(WebhookEvent::resolved).collect();
        assert_eq!(
            resolved,
            vec![
                Some((ObjectType::Companies, EventKind::Creation)),
                Some((ObjectType::Contacts, EventKind::PropertyChange)),
                Some((ObjectType::Deals, EventKind::Merge)),
                Some((ObjectType::Deals, EventKind::AssociationChange)),
                None, // tickets (0-5) are not synced
                Some((ObjectType::Contacts, EventKind::Restore)),
                None, // privacy deletions exist only as contact.privacyDeletion
            ]
        );
        assert!(events[0].subscription_type.is_generic());
        assert_eq!(events[2].merge_survivor(), Some(ObjectId(703)));
        assert_eq!(events[3].subject_id(), Some(ObjectId(701)));
        assert_eq!(events[3].association_type_id, Some(5));
        assert_eq!(
            events[6].subscription_type,
            SubscriptionType::Unknown("object.privacyDeletion".into())
        );
        // Classic events resolve the same way.
        let classic = parse_delivery(DELIVERY.as_bytes()).unwrap();
        assert_eq!(
            classic[2].resolved(),
            Some((ObjectType::Deals, EventKind::Merge))
        );
        assert_eq!(classic[5].resolved(), None);
    }

    #[test]
    fn generic_events_serialise_back_to_their_wire_form() {
        for e in parse_delivery(GENERIC.as_bytes()).unwrap() {
            let json = serde_json::to_value(&e).unwrap();
            assert!(json["subscriptionType"]
                .as_str()
                .unwrap()
                .starts_with("object."));
            let back: WebhookEvent = serde_json::from_value(json).unwrap();
            assert_eq!(back, e);
        }
    }

    #[test]
    fn generic_event_without_a_type_id_is_not_resolved() {
        let e: WebhookEvent = serde_json::from_str(
            r#"{"eventId":1,"subscriptionId":1,"portalId":1,"appId":1,"occurredAt":1,
                "subscriptionType":"object.creation","objectId":10}"#,
        )
        .unwrap();
        assert_eq!(e.kind(), Some(EventKind::Creation));
        assert_eq!(e.object_type(), None);
    }

    #[test]
    fn merge_survivor_falls_back_to_primary_then_object_id() {
        let mut e: WebhookEvent = serde_json::from_str(
            r#"{"eventId":1,"subscriptionId":1,"portalId":1,"appId":1,"occurredAt":1,
                "subscriptionType":"company.merge","objectId":10,"primaryObjectId":11}"#,
        )
        .unwrap();
        assert_eq!(e.merge_survivor(), Some(ObjectId(11)));
        e.primary_object_id = None;
        assert_eq!(e.merge_survivor(), Some(ObjectId(10)));
    }

    #[test]
    fn subscription_types_parse_and_display_round_trip() {
        for object in ObjectType::ALL {
            for kind in EventKind::ALL {
                let s = format!("{}.{}", object.subscription_prefix(), kind.as_str());
                let parsed = SubscriptionType::parse(&s);
                if kind == EventKind::PrivacyDeletion && object != ObjectType::Contacts {
                    assert_eq!(parsed, SubscriptionType::Unknown(s.clone()));
                } else {
                    assert_eq!(parsed, SubscriptionType::Known { object, kind });
                }
                assert_eq!(parsed.to_string(), s);
            }
        }
        for odd in [
            "",
            "contact",
            "contact.",
            ".creation",
            "Contact.creation",
            "contact.creation.x",
        ] {
            assert!(!SubscriptionType::parse(odd).is_known(), "{odd}");
        }
    }

    #[test]
    fn event_serializes_back_to_hubspot_shape() {
        let events = parse_delivery(DELIVERY.as_bytes()).unwrap();
        let json = serde_json::to_value(&events[0]).unwrap();
        assert_eq!(json["subscriptionType"], "contact.propertyChange");
        assert_eq!(json["portalId"], 62515);
        assert!(json.get("mergedObjectIds").is_none());
        let back: WebhookEvent = serde_json::from_value(json).unwrap();
        assert_eq!(back, events[0]);
    }

    #[test]
    fn malformed_deliveries_are_rejected() {
        for body in [
            &b"{}"[..],
            b"not json",
            b"[{\"eventId\":1}]",
            b"[{\"eventId\":1,\"subscriptionId\":1,\"portalId\":-1,\"appId\":1,\"occurredAt\":1,\"subscriptionType\":\"x\"}]",
        ] {
            assert!(matches!(parse_delivery(body), Err(DeliveryError::Malformed { .. })));
        }
        assert!(parse_delivery(b"[]").unwrap().is_empty());
    }

    #[test]
    fn oversized_delivery_is_rejected() {
        let one = r#"{"eventId":1,"subscriptionId":1,"portalId":1,"appId":1,"occurredAt":1,"subscriptionType":"deal.creation","objectId":1}"#;
        let body = format!("[{}]", vec![one; 101].join(","));
        assert!(matches!(
            parse_delivery(body.as_bytes()),
            Err(DeliveryError::TooManyEvents { count: 101 })
        ));
        let body = format!("[{}]", vec![one; 100].join(","));
        assert_eq!(parse_delivery(body.as_bytes()).unwrap().len(), 100);
    }

    #[test]
    fn property_value_is_not_in_delivery_error_messages() {
        let body = br#"[{"eventId":1,"subscriptionId":1,"portalId":1,"appId":1,"occurredAt":1,
            "subscriptionType":"contact.propertyChange","objectId":1,"propertyName":"email",
            "propertyValue":["secret@example.com"]}]"#;
        let err = parse_delivery(body).unwrap_err().to_string();
        assert!(!err.contains("secret@example.com"), "{err}");
        let body = br#"[{"eventId":"secret@example.com"}]"#;
        let err = parse_delivery(body).unwrap_err().to_string();
        assert!(!err.contains("secret@example.com"), "{err}");
    }

    #[test]
    fn non_string_property_values_are_kept_as_text() {
        let body = br#"[{"eventId":1,"subscriptionId":1,"portalId":1,"appId":1,"occurredAt":1,
            "subscriptionType":"deal.propertyChange","objectId":1,"propertyName":"amount",
            "propertyValue":1500.5},
            {"eventId":2,"subscriptionId":1,"portalId":1,"appId":1,"occurredAt":1,
            "subscriptionType":"deal.propertyChange","objectId":1,"propertyName":"amount",
            "propertyValue":null}]"#;
        let events = parse_delivery(body).unwrap();
        assert_eq!(events[0].property_value.as_deref(), Some("1500.5"));
        assert_eq!(events[1].property_value, None);
    }
}
