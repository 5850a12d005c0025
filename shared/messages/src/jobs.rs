//! The sync-jobs queue's message: a [`SyncJob`] (what the OAuth callback,
//! ops and the application queue: a portal and its types), optionally
//! with the run it belongs to and whether it continues a handed-over run
//! ([`JobMessage`], what the reconcile function reads). A plain `SyncJob`
//! body parses as a `JobMessage` of a new run.
//!
//! ```json
//! {"kind":"initial_sync","portalId":1000001,"objectTypes":["companies","contacts","deals"]}
//! {"kind":"nightly","portalId":1000001,"objectTypes":["contacts"],"runId":"1767232800000-nightly","continuation":true}
//! ```
//! `objectTypes` may be omitted or empty, meaning every type.

use hubsync_hubspot::{ObjectType, PortalId};
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

/// A sync job plus its run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobMessage {
    #[serde(flatten)]
    pub job: SyncJob,
    /// The run this job belongs to. Producers set it when duplicates must
    /// collapse into one run (the schedule uses the firing's time; splits
    /// and continuations carry it on); absent, the job starts a new run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// Continues a run that handed over (resumes from its checkpoint).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub continuation: bool,
    /// Every type of the run this job is part of (set when a job is split
    /// per type), so that a run's report knows the types still to start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub run_types: Vec<ObjectType>,
}

impl JobMessage {
    /// A job of a new run.
    pub fn new(kind: SyncJobKind, portal_id: PortalId, object_types: Vec<ObjectType>) -> Self {
        Self::from(SyncJob {
            kind,
            portal_id,
            object_types,
        })
    }

    /// The same job, for one type of run `run_id`.
    pub fn for_type(&self, object_type: ObjectType, run_id: &str, continuation: bool) -> Self {
        Self {
            job: SyncJob {
                object_types: vec![object_type],
                ..self.job.clone()
            },
            run_id: Some(run_id.to_owned()),
            continuation,
            run_types: if self.run_types.is_empty() {
                self.types()
            } else {
                self.run_types.clone()
            },
        }
    }

    /// The types, each once, in [`ObjectType::ALL`] order.
    pub fn types(&self) -> Vec<ObjectType> {
        let asked = self.job.types();
        ObjectType::ALL
            .into_iter()
            .filter(|t| asked.contains(t))
            .collect()
    }

    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }

    pub fn from_json(body: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(body)
    }
}

impl From<SyncJob> for JobMessage {
    fn from(job: SyncJob) -> Self {
        Self {
            job,
            run_id: None,
            continuation: false,
            run_types: Vec::new(),
        }
    }
}

/// `initial`, `resync`, `nightly`: the kind in run ids and logs.
pub fn kind_name(kind: SyncJobKind) -> &'static str {
    match kind {
        SyncJobKind::Initial => "initial",
        SyncJobKind::Resync => "resync",
        SyncJobKind::Nightly => "nightly",
    }
}

/// A new run's id (`runId`): sortable by start time, then the kind.
pub fn new_run_id(kind: SyncJobKind, at_ms: i64) -> String {
    format!("{at_ms:013}-{}", kind_name(kind))
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

    #[test]
    fn a_plain_sync_job_is_a_job_of_a_new_run_and_continuations_round_trip() {
        let plain = serde_json::to_string(&SyncJob::initial(PortalId(5))).unwrap();
        let m = JobMessage::from_json(&plain).unwrap();
        assert_eq!(m.job.kind, SyncJobKind::Initial);
        assert_eq!(m.run_id, None);
        assert!(!m.continuation);
        assert_eq!(
            m.to_json().unwrap(),
            plain,
            "no extra fields on a plain job"
        );

        let next = m.for_type(ObjectType::Deals, "r-1", true);
        let back = JobMessage::from_json(&next.to_json().unwrap()).unwrap();
        assert_eq!(back, next);
        assert_eq!(back.types(), vec![ObjectType::Deals]);
        assert_eq!(
            JobMessage::new(
                SyncJobKind::Resync,
                PortalId(1),
                vec![ObjectType::Deals, ObjectType::Companies, ObjectType::Deals]
            )
            .types(),
            vec![ObjectType::Companies, ObjectType::Deals]
        );
    }
}
