//! HubSpot's Pipelines API (`GET /crm/pipelines/{version}/deals`, scope
//! `crm.objects.deals.read`): the labels of a portal's deal pipelines and
//! stages, so that a deal's `pipeline` and `dealstage` (ids) map to the
//! names an admin sees. HubSpot sends no webhook when a label is renamed;
//! hubsync caches the pipelines per portal and reads them again at each
//! reconciliation.

use std::collections::BTreeMap;

use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::client::{Call, HubSpotClient};
use crate::error::HubSpotError;
use crate::ids::{ObjectType, PortalId};
use crate::rate_limit::RateLimitKind;
use crate::token::AccessTokenSource;

/// A portal's pipelines of one object type: pipeline id → label, stage id
/// → (its pipeline's id, label). Stage ids are unique within a portal's
/// pipelines of a type.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pipelines {
    pub pipelines: BTreeMap<String, String>,
    pub stages: BTreeMap<String, StageInfo>,
}

/// A stage: its pipeline and label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageInfo {
    pub pipeline: String,
    pub label: String,
}

impl Pipelines {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a pipeline and its stages `(id, label)`.
    pub fn insert(&mut self, id: &str, label: &str, stages: &[(&str, &str)]) {
        self.pipelines.insert(id.to_owned(), label.to_owned());
        for (sid, slabel) in stages {
            self.stages.insert(
                (*sid).to_owned(),
                StageInfo {
                    pipeline: id.to_owned(),
                    label: (*slabel).to_owned(),
                },
            );
        }
    }

    /// A pipeline's label.
    pub fn pipeline_label(&self, id: &str) -> Option<&str> {
        self.pipelines.get(id.trim()).map(String::as_str)
    }

    /// A stage's label.
    pub fn stage_label(&self, id: &str) -> Option<&str> {
        self.stages.get(id.trim()).map(|s| s.label.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.pipelines.is_empty()
    }
}

#[derive(Deserialize)]
struct WirePipelines {
    results: Vec<WirePipeline>,
}

#[derive(Deserialize)]
struct WirePipeline {
    id: String,
    label: String,
    #[serde(default)]
    archived: bool,
    #[serde(default)]
    stages: Vec<WireStage>,
}

#[derive(Deserialize)]
struct WireStage {
    id: String,
    label: String,
    #[serde(default)]
    archived: bool,
}

impl HubSpotClient {
    /// Every live pipeline of `object_type` with its live stages (one call;
    /// HubSpot does not page pipelines).
    pub async fn pipelines(
        &self,
        tokens: &impl AccessTokenSource,
        portal: PortalId,
        object_type: ObjectType,
    ) -> Result<Pipelines, HubSpotError> {
        let call = Call {
            method: Method::GET,
            path: self.api_version().pipelines(object_type),
            query: Vec::new(),
            body: None,
            kind: RateLimitKind::Standard,
            what: "pipelines",
        };
        let wire: WirePipelines = self.execute(tokens, portal, call).await?;
        let mut out = Pipelines::new();
        for p in wire.results.into_iter().filter(|p| !p.archived) {
            let stages: Vec<(&str, &str)> = p
                .stages
                .iter()
                .filter(|s| !s.archived)
                .map(|s| (s.id.as_str(), s.label.as_str()))
                .collect();
            out.insert(&p.id, &p.label, &stages);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_by_id_trimmed() {
        let mut p = Pipelines::new();
        p.insert("default", "Sales Pipeline", &[("closedwon", "Closed Won")]);
        assert_eq!(p.pipeline_label(" default "), Some("Sales Pipeline"));
        assert_eq!(p.stage_label("closedwon"), Some("Closed Won"));
        assert_eq!(p.stages["closedwon"].pipeline, "default");
        assert_eq!(p.stage_label("nope"), None);
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<Pipelines>(&json).unwrap(), p);
    }
}
