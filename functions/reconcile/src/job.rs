//! What the reconcile function reads from the sync-jobs queue: the shared
//! [`SyncJob`] message (as the OAuth callback queues it), optionally with
//! the run it belongs to and whether it continues a handed-over run. A
//! plain `SyncJob` body parses as a [`JobMessage`] of a new run.
//!
//! ```json
//! {"kind":"nightly","portalId":1000001,"objectTypes":["contacts"],"runId":"1767232800000-nightly","continuation":true}
//! ```

use hubsync_hubspot::ObjectType;
use hubsync_store::{SyncJob, SyncJobKind};
use serde::{Deserialize, Serialize};

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
}

impl JobMessage {
    /// A job of a new run.
    pub fn new(
        kind: SyncJobKind,
        portal_id: hubsync_hubspot::PortalId,
        object_types: Vec<ObjectType>,
    ) -> Self {
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

#[cfg(test)]
mod tests {
    use super::*;
    use hubsync_hubspot::PortalId;

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
