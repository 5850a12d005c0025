//! HubSpot property definitions, as the properties API returns them (the
//! fields hubsync validates mapping configs with).

use serde::{Deserialize, Serialize};

/// A HubSpot property definition, as `GET /crm/v3/properties/{type}`
/// returns it (the fields validation needs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PropertyDefinition {
    pub name: String,
    /// The name HubSpot's UI shows.
    #[serde(default)]
    pub label: String,
    #[serde(rename = "type")]
    pub prop_type: String,
    #[serde(default)]
    pub field_type: String,
    #[serde(default)]
    pub options: Vec<PropertyOption>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referenced_object_type: Option<String>,
}

impl PropertyDefinition {
    /// Whether its values are owner ids.
    pub fn is_owner(&self) -> bool {
        self.name == "hubspot_owner_id"
            || self.referenced_object_type.as_deref() == Some("OWNER")
            || (self.name.ends_with("_owner_id") && self.prop_type != "date")
    }
}

/// One option of an enumeration property.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PropertyOption {
    pub value: String,
    #[serde(default)]
    pub label: String,
}
