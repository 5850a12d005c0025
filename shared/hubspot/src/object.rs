//! The HubSpot side: a CRM object as the v3 objects API returns it.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use crate::ids::{ObjectId, ObjectType};

/// Property name → value. HubSpot sends every value as a string or null.
pub type Properties = BTreeMap<String, Option<String>>;

/// One CRM object from a list, batch-read or search response:
/// `{id, properties:{…}, createdAt, updatedAt, archived, archivedAt?}`.
///
/// `Debug` prints property *names* only: values may be PII.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HubSpotObject {
    pub id: ObjectId,
    #[serde(default, deserialize_with = "lenient_properties")]
    pub properties: Properties,
    #[serde(default)]
    pub archived: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archived_at: Option<String>,
}

impl HubSpotObject {
    /// An object with the given properties (for tests and fakes).
    pub fn new<K, V>(id: u64, props: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        Self {
            id: ObjectId(id),
            properties: props
                .into_iter()
                .map(|(k, v)| (k.into(), Some(v.into())))
                .collect(),
            archived: false,
            created_at: None,
            updated_at: None,
            archived_at: None,
        }
    }

    /// The raw value of a property (`None` if absent or null).
    pub fn property(&self, name: &str) -> Option<&str> {
        self.properties.get(name).and_then(|v| v.as_deref())
    }

    /// The object's version, epoch ms — **the** version rule of hubsync:
    /// its last-modified property (`hs_lastmodifieddate`, contacts'
    /// `lastmodifieddate`) when that parses, else HubSpot's `updatedAt`.
    /// The store's guard orders writes by it, so the worker, the
    /// reconciliation and the mapping all use this one function.
    pub fn version(&self, object_type: ObjectType) -> Option<i64> {
        let parse = |raw: &str| {
            crate::time::parse_timestamp(raw)
                .ok()
                .flatten()
                .map(|t| t.epoch_ms())
        };
        self.property(object_type.last_modified_property())
            .and_then(parse)
            .or_else(|| self.updated_at.as_deref().and_then(parse))
    }
}

impl fmt::Debug for HubSpotObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubSpotObject")
            .field("id", &self.id)
            .field("properties", &self.properties.keys().collect::<Vec<_>>())
            .field("archived", &self.archived)
            .field("updated_at", &self.updated_at)
            .finish_non_exhaustive()
    }
}

/// Accept string or null values, and tolerate numbers/booleans (kept as
/// their JSON text) from less careful producers.
fn lenient_properties<'de, D: Deserializer<'de>>(d: D) -> Result<Properties, D::Error> {
    let raw: Option<BTreeMap<String, serde_json::Value>> = Option::deserialize(d)?;
    let mut out = Properties::new();
    for (k, v) in raw.unwrap_or_default() {
        let value = match v {
            serde_json::Value::Null => None,
            serde_json::Value::String(s) => Some(s),
            serde_json::Value::Number(n) => Some(n.to_string()),
            serde_json::Value::Bool(b) => Some(b.to_string()),
            _ => {
                return Err(serde::de::Error::custom(
                    "property values must be strings or null",
                ))
            }
        };
        out.insert(k, value);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crm_v3_object_json_deserializes() {
        let json = r#"{"id":"512","properties":{"name":"Acme","domain":"acme.test",
            "annualrevenue":null,"numberofemployees":250,"hs_lastmodifieddate":"2024-05-01T12:00:00.123Z"},
            "createdAt":"2024-01-01T00:00:00Z","updatedAt":"2024-05-01T12:00:00.123Z","archived":false}"#;
        let o: HubSpotObject = serde_json::from_str(json).unwrap();
        assert_eq!(o.id, ObjectId(512));
        assert_eq!(o.property("name"), Some("Acme"));
        assert_eq!(o.property("annualrevenue"), None);
        assert_eq!(o.property("numberofemployees"), Some("250"));
        assert!(!o.archived);
        assert_eq!(o.updated_at.as_deref(), Some("2024-05-01T12:00:00.123Z"));
    }

    #[test]
    fn debug_hides_property_values() {
        let o = HubSpotObject::new(1, [("email", "someone@example.com")]);
        let dbg = format!("{o:?}");
        assert!(
            dbg.contains("email") && !dbg.contains("someone@example.com"),
            "{dbg}"
        );
    }
}
