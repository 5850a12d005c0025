//! The journal file behind a pre-signed URL, parsed into typed entries.
//!
//! **Unverified format.** HubSpot documents the API that points at a file
//! (`{url, expiresAt, currentOffset}`) but not the file itself. This parser
//! accepts the shape third-party code shows — `{offset, journalEvents:
//! [...], publishedAt}`, each event `{type, portalId, occurredAt, action,
//! objectTypeId, objectId, propertyChanges?, associatedObjectTypeId?,
//! associatedObjectId?, ...}` — and nothing in hubsync reads the file
//! anywhere else, so a correction lands here only. It is tolerant where the
//! shape is least certain: `occurredAt` as ISO-8601 or epoch ms, ids as
//! numbers or strings, unknown fields ignored, and an event it does not
//! understand becomes [`JournalEntry::Unrecognised`] (counted, not fatal).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::ids::{ObjectId, ObjectType, PortalId};

/// A parsed journal file.
#[derive(Debug, Clone, PartialEq)]
pub struct JournalFile {
    pub offset: String,
    /// Epoch ms, when the file says.
    pub published_at_ms: Option<i64>,
    pub entries: Vec<JournalEntry>,
}

/// What happened to a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectAction {
    Create,
    /// The properties that changed, with their new values.
    Update(BTreeMap<String, String>),
    Delete,
    /// The survivor is the entry's object; these were merged into it.
    Merge {
        merged: Vec<ObjectId>,
    },
    Restore,
}

/// One journal event.
#[derive(Debug, Clone, PartialEq)]
pub enum JournalEntry {
    Object {
        portal: PortalId,
        object_type: ObjectType,
        object_id: ObjectId,
        action: ObjectAction,
        occurred_at_ms: i64,
    },
    Association {
        portal: PortalId,
        object_type: ObjectType,
        object_id: ObjectId,
        associated_type: ObjectType,
        associated_id: ObjectId,
        removed: bool,
        occurred_at_ms: i64,
    },
    ListMembership {
        portal: PortalId,
        list_id: u64,
        object_type: ObjectType,
        object_id: ObjectId,
        added: bool,
        occurred_at_ms: i64,
    },
    /// `APP_INSTALL` / `APP_UNINSTALL`.
    AppLifecycle {
        portal: PortalId,
        installed: bool,
        occurred_at_ms: i64,
    },
    /// `GDPR_DELETE` of a contact.
    PrivacyDeletion {
        portal: PortalId,
        object_id: ObjectId,
        occurred_at_ms: i64,
    },
    /// An event this parser does not understand (another object type, a
    /// new action): kept for counting, never acted on.
    Unrecognised { kind: String, action: String },
}

impl JournalEntry {
    /// The portal the entry belongs to (none for an unrecognised one).
    pub fn portal(&self) -> Option<PortalId> {
        match self {
            JournalEntry::Object { portal, .. }
            | JournalEntry::Association { portal, .. }
            | JournalEntry::ListMembership { portal, .. }
            | JournalEntry::AppLifecycle { portal, .. }
            | JournalEntry::PrivacyDeletion { portal, .. } => Some(*portal),
            JournalEntry::Unrecognised { .. } => None,
        }
    }

    /// When it happened (epoch ms; none for an unrecognised one).
    pub fn occurred_at_ms(&self) -> Option<i64> {
        match self {
            JournalEntry::Object { occurred_at_ms, .. }
            | JournalEntry::Association { occurred_at_ms, .. }
            | JournalEntry::ListMembership { occurred_at_ms, .. }
            | JournalEntry::AppLifecycle { occurred_at_ms, .. }
            | JournalEntry::PrivacyDeletion { occurred_at_ms, .. } => Some(*occurred_at_ms),
            JournalEntry::Unrecognised { .. } => None,
        }
    }
}

/// Why a file could not be parsed at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    #[error("the journal file is not JSON: {0}")]
    NotJson(String),
    #[error("the journal file has no `{0}`")]
    Missing(&'static str),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireFile {
    offset: Option<Value>,
    journal_events: Option<Vec<Value>>,
    published_at: Option<Value>,
}

/// Parses a journal file's body.
pub fn parse_file(body: &[u8]) -> Result<JournalFile, FileError> {
    let wire: WireFile = serde_json::from_slice(body).map_err(|e| {
        // Position only: the body may hold record values.
        FileError::NotJson(format!("line {} column {}", e.line(), e.column()))
    })?;
    let offset = wire
        .offset
        .as_ref()
        .and_then(text)
        .ok_or(FileError::Missing("offset"))?;
    let events = wire
        .journal_events
        .ok_or(FileError::Missing("journalEvents"))?;
    Ok(JournalFile {
        offset,
        published_at_ms: wire.published_at.as_ref().and_then(epoch_ms),
        entries: events.iter().map(parse_entry).collect(),
    })
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn number(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// ISO-8601 or epoch ms.
fn epoch_ms(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse::<i64>().ok().or_else(|| {
            chrono::DateTime::parse_from_rfc3339(s.trim())
                .ok()
                .map(|d| d.timestamp_millis())
        }),
        _ => None,
    }
}

fn type_id(v: Option<&Value>) -> Option<ObjectType> {
    ObjectType::from_object_type_id(v?.as_str()?.trim())
}

fn parse_entry(v: &Value) -> JournalEntry {
    let kind = v
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let action = v
        .get("action")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    known_entry(v, &kind, &action).unwrap_or(JournalEntry::Unrecognised { kind, action })
}

fn known_entry(v: &Value, kind: &str, action: &str) -> Option<JournalEntry> {
    let portal = PortalId(number(v.get("portalId"))?);
    let occurred_at_ms = v.get("occurredAt").and_then(epoch_ms)?;
    let object = || -> Option<(ObjectType, ObjectId)> {
        Some((
            type_id(v.get("objectTypeId"))?,
            ObjectId(number(v.get("objectId"))?),
        ))
    };
    Some(match (kind, action) {
        ("OBJECT", _) => {
            let (object_type, object_id) = object()?;
            let action = match action {
                "CREATE" => ObjectAction::Create,
                "DELETE" => ObjectAction::Delete,
                "RESTORE" => ObjectAction::Restore,
                "UPDATE" => ObjectAction::Update(property_changes(v.get("propertyChanges"))),
                "MERGE" => ObjectAction::Merge {
                    merged: v
                        .get("mergedObjectIds")
                        .and_then(Value::as_array)
                        .map(|ids| {
                            ids.iter()
                                .filter_map(|i| number(Some(i)))
                                .map(ObjectId)
                                .collect()
                        })
                        .unwrap_or_default(),
                },
                _ => return None,
            };
            JournalEntry::Object {
                portal,
                object_type,
                object_id,
                action,
                occurred_at_ms,
            }
        }
        ("ASSOCIATION", "ASSOCIATION_ADDED" | "ASSOCIATION_REMOVED") => {
            let (object_type, object_id) = object()?;
            JournalEntry::Association {
                portal,
                object_type,
                object_id,
                associated_type: type_id(v.get("associatedObjectTypeId"))?,
                associated_id: ObjectId(number(v.get("associatedObjectId"))?),
                removed: action == "ASSOCIATION_REMOVED",
                occurred_at_ms,
            }
        }
        ("LIST_MEMBERSHIP", "ADDED_TO_LIST" | "REMOVED_FROM_LIST") => {
            let (object_type, object_id) = object()?;
            JournalEntry::ListMembership {
                portal,
                list_id: number(v.get("listId"))?,
                object_type,
                object_id,
                added: action == "ADDED_TO_LIST",
                occurred_at_ms,
            }
        }
        ("APP_LIFECYCLE_EVENT", "APP_INSTALL" | "APP_UNINSTALL") => JournalEntry::AppLifecycle {
            portal,
            installed: action == "APP_INSTALL",
            occurred_at_ms,
        },
        ("GDPR_PRIVACY_DELETION", "GDPR_DELETE") => JournalEntry::PrivacyDeletion {
            portal,
            object_id: ObjectId(number(v.get("objectId"))?),
            occurred_at_ms,
        },
        _ => return None,
    })
}

/// `propertyChanges` as `{name: value}` or `[{propertyName, propertyValue}]`.
fn property_changes(v: Option<&Value>) -> BTreeMap<String, String> {
    let scalar = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    match v {
        Some(Value::Object(map)) => map.iter().map(|(k, v)| (k.clone(), scalar(v))).collect(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|i| {
                let name = i.get("propertyName")?.as_str()?.to_owned();
                Some((name, i.get("propertyValue").map(scalar).unwrap_or_default()))
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(events: Value) -> Vec<JournalEntry> {
        let body = serde_json::json!({"offset": "o-1", "journalEvents": events, "publishedAt": "2026-12-07T10:00:00.000Z"});
        parse_file(body.to_string().as_bytes()).unwrap().entries
    }

    #[test]
    fn every_kind_parses() {
        let entries = file(serde_json::json!([
            {"type":"OBJECT","portalId":7,"occurredAt":"2026-12-07T10:00:00.000Z","action":"UPDATE","objectTypeId":"0-1","objectId":42,"propertyChanges":{"email":"a@b.example"}},
            {"type":"OBJECT","portalId":"7","occurredAt":1765101600000i64,"action":"MERGE","objectTypeId":"0-2","objectId":"50","mergedObjectIds":[43, "44"]},
            {"type":"ASSOCIATION","portalId":7,"occurredAt":1,"action":"ASSOCIATION_REMOVED","objectTypeId":"0-1","objectId":42,"associatedObjectTypeId":"0-2","associatedObjectId":9},
            {"type":"LIST_MEMBERSHIP","portalId":7,"occurredAt":1,"action":"ADDED_TO_LIST","objectTypeId":"0-1","objectId":42,"listId":3},
            {"type":"APP_LIFECYCLE_EVENT","portalId":7,"occurredAt":1,"action":"APP_UNINSTALL","eventTypeId":"4-1916193"},
            {"type":"GDPR_PRIVACY_DELETION","portalId":7,"occurredAt":1,"action":"GDPR_DELETE","objectTypeId":"0-1","objectId":42}
        ]));
        assert_eq!(
            entries[0],
            JournalEntry::Object {
                portal: PortalId(7),
                object_type: ObjectType::Contacts,
                object_id: ObjectId(42),
                action: ObjectAction::Update(BTreeMap::from([(
                    "email".into(),
                    "a@b.example".into()
                )])),
                occurred_at_ms: 1_796_637_600_000,
            }
        );
        assert!(
            matches!(&entries[1], JournalEntry::Object { action: ObjectAction::Merge { merged }, object_id: ObjectId(50), .. } if merged == &vec![ObjectId(43), ObjectId(44)])
        );
        assert!(matches!(
            entries[2],
            JournalEntry::Association {
                removed: true,
                associated_type: ObjectType::Companies,
                associated_id: ObjectId(9),
                ..
            }
        ));
        assert!(matches!(
            entries[3],
            JournalEntry::ListMembership {
                list_id: 3,
                added: true,
                ..
            }
        ));
        assert!(matches!(
            entries[4],
            JournalEntry::AppLifecycle {
                installed: false,
                portal: PortalId(7),
                ..
            }
        ));
        assert!(matches!(
            entries[5],
            JournalEntry::PrivacyDeletion {
                object_id: ObjectId(42),
                ..
            }
        ));
    }

    #[test]
    fn what_it_does_not_understand_is_kept_as_unrecognised() {
        let entries = file(serde_json::json!([
            {"type":"OBJECT","portalId":7,"occurredAt":1,"action":"SNAPSHOT","objectTypeId":"0-1","objectId":1},
            {"type":"OBJECT","portalId":7,"occurredAt":1,"action":"CREATE","objectTypeId":"0-5","objectId":1},
            {"type":"OBJECT","occurredAt":1,"action":"CREATE","objectTypeId":"0-1","objectId":1},
            {"type":"OBJECT","portalId":7,"occurredAt":"yesterday","action":"CREATE","objectTypeId":"0-1","objectId":1},
            "not an object"
        ]));
        assert_eq!(entries.len(), 5);
        assert!(entries
            .iter()
            .all(|e| matches!(e, JournalEntry::Unrecognised { .. })));
    }

    #[test]
    fn property_changes_in_list_form() {
        let entries = file(serde_json::json!([
            {"type":"OBJECT","portalId":7,"occurredAt":1,"action":"UPDATE","objectTypeId":"0-3","objectId":5,
             "propertyChanges":[{"propertyName":"amount","propertyValue":12.5},{"propertyName":"dealname","propertyValue":null}]}
        ]));
        let JournalEntry::Object {
            action: ObjectAction::Update(p),
            ..
        } = &entries[0]
        else {
            panic!("{entries:?}")
        };
        assert_eq!(p["amount"], "12.5");
        assert_eq!(p["dealname"], "");
    }

    #[test]
    fn a_file_without_its_envelope_is_an_error_without_its_content() {
        assert_eq!(
            parse_file(br#"{"journalEvents":[]}"#),
            Err(FileError::Missing("offset"))
        );
        assert_eq!(
            parse_file(br#"{"offset":"x"}"#),
            Err(FileError::Missing("journalEvents"))
        );
        let err = parse_file(b"{\"offset\":\"secret@example.com").unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
    }
}
