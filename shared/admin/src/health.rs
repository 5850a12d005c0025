//! Sync health: which records did not sync cleanly, by category, with how
//! many records each category affects and a page of examples (ids, field
//! names and messages — never a value). A record's issues are kept on its
//! stored item and listed through the Records table's sparse record-issues
//! index; a clean write of the record removes them, so a record leaves the
//! report as soon as it syncs cleanly again.

use std::collections::BTreeMap;

use hubsync_hubspot::{ObjectType, PortalId};
use hubsync_store::{IncidentStore, RecordStore};
use serde::Serialize;

use crate::AdminError;

/// Records read per page of the issues index.
const PAGE: u32 = 500;
/// Most examples a category may ask for.
pub const MAX_EXAMPLES: usize = 100;

/// One affected record, as an example.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Example {
    pub object_type: ObjectType,
    pub object_id: String,
    pub field: Option<String>,
    pub message: String,
    /// When the record was last written (with this issue).
    pub synced_at: Option<String>,
}

/// One category of issues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Category {
    /// `mapping` (a field's value did not convert), …
    pub category: String,
    /// Records with at least one issue of the category (for a group
    /// failure: the records it held up, each retry counted).
    pub affected_records: u64,
    /// Group failures of the category, per object type.
    pub incidents: Vec<GroupIncident>,
    /// Affected records per app field.
    pub by_field: BTreeMap<String, u64>,
    pub examples: Vec<Example>,
}

/// An object type that could not sync as a group (HubSpot refused or
/// was unavailable, rate limits, storage), until it syncs cleanly again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupIncident {
    pub object_type: ObjectType,
    /// The latest error (no data).
    pub message: String,
    pub occurrences: u64,
    pub first_at_ms: i64,
    pub last_at_ms: i64,
}

/// A portal's sync health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Health {
    pub portal_id: PortalId,
    /// Live records with at least one issue.
    pub records_with_issues: u64,
    /// By category: `mapping` and `too_large` (per record, until the
    /// record is written cleanly), `permission`, `hubspot_4xx`,
    /// `rate_limit`, `hubspot_unavailable` and `storage` (records held up
    /// by a failed group, until the type syncs cleanly).
    pub categories: Vec<Category>,
}

/// The health of `portal`'s records of `types`, with up to `examples`
/// examples per category. Archived records are left out (they no longer
/// sync).
pub async fn report<S: RecordStore + IncidentStore>(
    store: &S,
    portal: PortalId,
    types: &[ObjectType],
    examples: usize,
) -> Result<Health, AdminError> {
    let examples = examples.min(MAX_EXAMPLES);
    let mut categories: BTreeMap<String, Category> = BTreeMap::new();
    let mut records = 0u64;
    for &t in types {
        let mut after = None;
        loop {
            let page = store.record_issues(portal, t, after, PAGE).await?;
            for r in page.records.iter().filter(|r| !r.archived) {
                records += 1;
                let mut counted: Vec<&str> = Vec::new();
                for issue in &r.issues {
                    let c = categories
                        .entry(issue.category.clone())
                        .or_insert_with(|| Category {
                            category: issue.category.clone(),
                            affected_records: 0,
                            incidents: Vec::new(),
                            by_field: BTreeMap::new(),
                            examples: Vec::new(),
                        });
                    if !counted.contains(&issue.category.as_str()) {
                        counted.push(&issue.category);
                        c.affected_records += 1;
                    }
                    if let Some(field) = &issue.field {
                        *c.by_field.entry(field.clone()).or_default() += 1;
                    }
                    if c.examples.len() < examples {
                        c.examples.push(Example {
                            object_type: t,
                            object_id: r.key.object_id.to_string(),
                            field: issue.field.clone(),
                            message: issue.message.clone(),
                            synced_at: r.synced_at.clone(),
                        });
                    }
                }
            }
            match page.next_after {
                Some(next) => after = Some(next),
                None => break,
            }
        }
    }
    for incident in store.list_incidents(portal).await? {
        if !types.contains(&incident.object_type) {
            continue;
        }
        let c = categories
            .entry(incident.category.clone())
            .or_insert_with(|| Category {
                category: incident.category.clone(),
                affected_records: 0,
                incidents: Vec::new(),
                by_field: BTreeMap::new(),
                examples: Vec::new(),
            });
        c.affected_records += incident.affected_records;
        for id in &incident.example_ids {
            if c.examples.len() < examples {
                c.examples.push(Example {
                    object_type: incident.object_type,
                    object_id: id.to_string(),
                    field: None,
                    message: incident.message.clone(),
                    synced_at: None,
                });
            }
        }
        c.incidents.push(GroupIncident {
            object_type: incident.object_type,
            message: incident.message,
            occurrences: incident.occurrences,
            first_at_ms: incident.first_at_ms,
            last_at_ms: incident.last_at_ms,
        });
    }
    Ok(Health {
        portal_id: portal,
        records_with_issues: records,
        categories: categories.into_values().collect(),
    })
}
