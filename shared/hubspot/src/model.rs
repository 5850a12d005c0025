//! Request and response shapes of the CRM v3 endpoints the client uses.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::ids::ObjectId;
use crate::object::HubSpotObject;

/// Most ids in one batch read.
pub const MAX_BATCH_READ_INPUTS: usize = 100;
/// Largest `limit` of a list page or owners page.
pub const MAX_PAGE_LIMIT: u32 = 100;
/// Largest `limit` of a search page.
pub const MAX_SEARCH_LIMIT: u32 = 200;
/// HubSpot returns at most this many results per search query (paging past
/// it is a 400); narrow the window instead.
pub const MAX_SEARCH_RESULTS: u32 = 10_000;

/// One page of a paged listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub results: Vec<T>,
    /// Cursor for the next page; `None` on the last page.
    pub next_after: Option<String>,
}

/// Result of a batch read: the objects found, and the requested ids that
/// HubSpot did not return (deleted, merged away, or never existed).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BatchReadResult {
    pub found: Vec<HubSpotObject>,
    pub missing: Vec<ObjectId>,
}

/// A HubSpot user who can own records. `Debug` redacts the email and names.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Owner {
    pub id: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub user_id: Option<u64>,
    #[serde(default)]
    pub archived: bool,
}

impl std::fmt::Debug for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Owner")
            .field("id", &self.id)
            .field("email", &self.email.as_ref().map(|_| "[REDACTED]"))
            .field("user_id", &self.user_id)
            .field("archived", &self.archived)
            .finish_non_exhaustive()
    }
}

/// A search filter (`{propertyName, operator, value}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    pub property_name: String,
    /// `EQ`, `GT`, `GTE`, `LT`, `LTE`, `BETWEEN`, `HAS_PROPERTY`, …
    pub operator: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high_value: Option<String>,
}

impl Filter {
    pub fn new(property: &str, operator: &str, value: impl Into<String>) -> Self {
        Self {
            property_name: property.to_owned(),
            operator: operator.to_owned(),
            value: Some(value.into()),
            high_value: None,
        }
    }
}

/// Filters in a group are ANDed; groups are ORed.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FilterGroup {
    pub filters: Vec<Filter>,
}

/// A sort (`{propertyName, direction}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sort {
    pub property_name: String,
    /// `ASCENDING` or `DESCENDING`.
    pub direction: String,
}

impl Sort {
    pub fn ascending(property: &str) -> Self {
        Self {
            property_name: property.to_owned(),
            direction: "ASCENDING".to_owned(),
        }
    }

    pub fn descending(property: &str) -> Self {
        Self {
            property_name: property.to_owned(),
            direction: "DESCENDING".to_owned(),
        }
    }
}

/// Body of `POST /crm/v3/objects/{type}/search`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchRequest {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filter_groups: Vec<FilterGroup>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sorts: Vec<Sort>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub properties: Vec<String>,
    pub limit: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

/// One page of search results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchPage {
    /// Total matches (capped by HubSpot's view of the query).
    pub total: u64,
    pub results: Vec<HubSpotObject>,
    pub next_after: Option<String>,
}

// ---- wire shapes (private) ----

#[derive(Debug, Deserialize)]
pub(crate) struct WirePaging {
    #[serde(default)]
    pub next: Option<WireNext>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct WireNext {
    pub after: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct WirePage<T> {
    #[serde(default = "Vec::new")]
    pub results: Vec<T>,
    #[serde(default)]
    pub paging: Option<WirePaging>,
    #[serde(default)]
    pub total: Option<u64>,
}

impl<T> WirePage<T> {
    pub(crate) fn into_page(self) -> Page<T> {
        Page {
            results: self.results,
            next_after: self.paging.and_then(|p| p.next).map(|n| n.after),
        }
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct WireBatchReadInput {
    pub id: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct WireBatchReadRequest<'a> {
    pub inputs: Vec<WireBatchReadInput>,
    pub properties: &'a [&'a str],
}

#[derive(Debug, Deserialize)]
pub(crate) struct WireBatchReadResponse {
    #[serde(default)]
    pub results: Vec<HubSpotObject>,
}

/// HubSpot's error body (`{status, message, category, policyName, …}`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireError {
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub policy_name: Option<String>,
    #[serde(default)]
    pub errors: Vec<WireErrorDetail>,
}

/// One entry of an error body's `errors` (its `context` names, for a
/// missing scope, `requiredGranularScopes`).
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct WireErrorDetail {
    #[serde(default)]
    pub context: Option<serde_json::Value>,
}

impl WireError {
    /// The scopes a 403 names as required (sorted, deduplicated, at most 10,
    /// each a short token of scope characters).
    pub(crate) fn required_scopes(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .errors
            .iter()
            .filter_map(|e| e.context.as_ref())
            .flat_map(|c| {
                ["requiredGranularScopes", "requiredScopes"]
                    .into_iter()
                    .filter_map(|k| c.get(k).and_then(|v| v.as_array()))
                    .flatten()
                    .filter_map(|v| v.as_str())
                    .collect::<Vec<_>>()
            })
            .filter(|s| {
                !s.is_empty()
                    && s.len() <= 100
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            })
            .map(str::to_owned)
            .collect();
        out.sort();
        out.dedup();
        out.truncate(10);
        out
    }
}

impl BatchReadResult {
    /// Split `requested` into found and missing by the ids in `found`.
    pub(crate) fn from_found(requested: &[ObjectId], found: Vec<HubSpotObject>) -> Self {
        let found_ids: BTreeSet<ObjectId> = found.iter().map(|o| o.id).collect();
        let missing = requested
            .iter()
            .copied()
            .filter(|id| !found_ids.contains(id))
            .collect();
        Self { found, missing }
    }
}
