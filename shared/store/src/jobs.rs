//! Sync jobs: the messages on the sync-jobs queue that start a full sync of
//! one portal (the reconciliation engine consumes them).
//!
//! JSON (camelCase fields, snake_case kinds):
//! ```json
//! {"kind":"initial_sync","portalId":1000001,"objectTypes":["companies","contacts","deals"]}
//! ```
//! `objectTypes` may be omitted or empty, meaning every type.

use hubsync_mapping::ids::{ObjectType, PortalId};
use serde::{Deserialize, Serialize};

/// Why a full sync of a portal was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SyncJobKind {
    /// The first sync after a portal was connected (or re-connected).
    #[serde(rename = "initial_sync")]
    Initial,
    /// A manual re-sync asked for by ops or the application.
    #[serde(rename = "resync")]
    Resync,
    /// The nightly reconciliation.
    #[serde(rename = "nightly")]
    Nightly,
}

/// One full-sync job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncJob {
    /// What started it.
    pub kind: SyncJobKind,
    /// The portal to sync.
    pub portal_id: PortalId,
    /// The object types to sync; empty means all of them.
    #[serde(default)]
    pub object_types: Vec<ObjectType>,
}

impl SyncJob {
    /// The initial full sync of a newly connected portal (every type).
    pub fn initial(portal_id: PortalId) -> Self {
        Self {
            kind: SyncJobKind::Initial,
            portal_id,
            object_types: ObjectType::ALL.to_vec(),
        }
    }

    /// The types to sync (all when none are listed).
    pub fn types(&self) -> Vec<ObjectType> {
        if self.object_types.is_empty() {
            ObjectType::ALL.to_vec()
        } else {
            self.object_types.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_sync_job_json_is_stable() {
        let job = SyncJob::initial(PortalId(1_000_001));
        let json = serde_json::to_value(&job).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "kind": "initial_sync",
                "portalId": 1000001,
                "objectTypes": ["companies", "contacts", "deals"]
            })
        );
        let back: SyncJob = serde_json::from_str(r#"{"kind":"resync","portalId":"7"}"#).unwrap();
        assert_eq!(back.kind, SyncJobKind::Resync);
        assert_eq!(back.portal_id, PortalId(7));
        assert_eq!(back.types(), ObjectType::ALL.to_vec());
    }
}
