//! Pipelines (HubSpot's Pipelines API, `GET /crm/v3/pipelines/{objectType}`
//! and `/crm/pipelines/2026-03/{objectType}`): each portal starts with the
//! deal pipelines of [`crate::model::PIPELINES`] and keeps its
//! own copy, so that a label renamed in "pipeline settings" is what the
//! next read returns. Renames change no deal (HubSpot sends no webhook and
//! moves no `hs_lastmodifieddate`).
//!
//! Response (HubSpot's shape): `{"results": [{"id", "label",
//! "displayOrder", "createdAt", "updatedAt", "archived", "stages": [{"id",
//! "label", "displayOrder", "metadata": {"isClosed", "probability"},
//! "createdAt", "updatedAt", "archived", "writePermissions"}]}]}` — no
//! paging. Deals need `crm.objects.deals.read`; companies and contacts
//! have no pipelines (400).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::clock::iso_ms;
use crate::crm::{parse_type, St};
use crate::http::{bad_request, gate, json, read_scope, Policy};
use crate::model::ObjectType;
use crate::model::PIPELINES;
use crate::state::{SimError, SimState};

/// A deal stage as a portal holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimStage {
    pub id: String,
    pub label: String,
    pub probability: String,
    pub updated_ms: i64,
}

/// A deal pipeline as a portal holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimPipeline {
    pub id: String,
    pub label: String,
    pub stages: Vec<SimStage>,
    pub updated_ms: i64,
}

/// The pipelines a new portal starts with.
pub(crate) fn initial_pipelines() -> Vec<SimPipeline> {
    PIPELINES
        .iter()
        .map(|(id, label, stages)| SimPipeline {
            id: (*id).to_owned(),
            label: (*label).to_owned(),
            stages: stages
                .iter()
                .map(|(id, label, p)| SimStage {
                    id: (*id).to_owned(),
                    label: (*label).to_owned(),
                    probability: (*p).to_owned(),
                    updated_ms: 0,
                })
                .collect(),
            updated_ms: 0,
        })
        .collect()
}

impl SimState {
    /// A portal's deal pipelines.
    pub fn pipelines(&self, portal: u64) -> Result<Vec<SimPipeline>, SimError> {
        Ok(self.portal(portal)?.read().pipelines.clone())
    }

    /// Renames a pipeline (as an admin does in HubSpot's pipeline
    /// settings; no record changes).
    pub fn rename_pipeline(
        &self,
        portal: u64,
        pipeline: &str,
        label: &str,
    ) -> Result<(), SimError> {
        let now = self.now_ms();
        let p = self.portal(portal)?;
        let mut d = p.write();
        let pl = d
            .pipelines
            .iter_mut()
            .find(|x| x.id == pipeline)
            .ok_or_else(|| SimError::Invalid(format!("no pipeline {pipeline}")))?;
        pl.label = label.to_owned();
        pl.updated_ms = now;
        Ok(())
    }

    /// Renames a stage of a pipeline (no record changes).
    pub fn rename_stage(
        &self,
        portal: u64,
        pipeline: &str,
        stage: &str,
        label: &str,
    ) -> Result<(), SimError> {
        let now = self.now_ms();
        let p = self.portal(portal)?;
        let mut d = p.write();
        let st = d
            .pipelines
            .iter_mut()
            .find(|x| x.id == pipeline)
            .and_then(|pl| pl.stages.iter_mut().find(|s| s.id == stage))
            .ok_or_else(|| SimError::Invalid(format!("no stage {stage} in {pipeline}")))?;
        st.label = label.to_owned();
        st.updated_ms = now;
        Ok(())
    }
}

fn render(pipelines: &[SimPipeline]) -> serde_json::Value {
    let results: Vec<_> = pipelines
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let stages: Vec<_> = p
                .stages
                .iter()
                .enumerate()
                .map(|(j, s)| {
                    let closed = s.probability == "1.0" || s.probability == "0.0";
                    json!({
                        "id": s.id,
                        "label": s.label,
                        "displayOrder": j,
                        "metadata": {"isClosed": closed.to_string(), "probability": s.probability},
                        "createdAt": iso_ms(0),
                        "updatedAt": iso_ms(s.updated_ms),
                        "archived": false,
                        "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
                    })
                })
                .collect();
            json!({
                "id": p.id,
                "label": p.label,
                "displayOrder": i,
                "createdAt": iso_ms(0),
                "updatedAt": iso_ms(p.updated_ms),
                "archived": false,
                "stages": stages,
            })
        })
        .collect();
    json!({ "results": results })
}

/// `GET /crm/v3/pipelines/{objectType}`
pub(crate) async fn list_pipelines(
    State(st): St,
    Path(ty): Path<String>,
    headers: HeaderMap,
) -> Response {
    let g = match gate(
        &st,
        &headers,
        "GET /crm/v3/pipelines/{objectType}",
        Policy::TenSecondly,
        &[read_scope(&ty)],
    )
    .await
    {
        Ok(g) => g,
        Err(r) => return r,
    };
    let resp = match parse_type(&ty) {
        Err(r) => r,
        Ok(ObjectType::Deals) => json(StatusCode::OK, &render(&g.portal.read().pipelines)),
        Ok(other) => bad_request(format!(
            "Object type {} does not support pipelines.",
            other.plural()
        )),
    };
    g.finish(resp)
}
