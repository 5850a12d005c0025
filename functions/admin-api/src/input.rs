//! The admin API's inputs: path and query parameters validated against the
//! route table, and the JSON bodies (unknown fields refused). Every
//! problem is an [`AdminError::Invalid`] naming what and why.

use std::collections::BTreeMap;

use hubsync_admin::mapping::MappingConfig;
use hubsync_admin::{link, AdminError};
use hubsync_hubspot::{ObjectId, ObjectType, PortalId};
use hubsync_store::SyncJobKind;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::routes::Route;

/// Validated path and query parameters.
pub(crate) struct Params {
    pub(crate) tenant: String,
    pub(crate) portal: Option<PortalId>,
    pub(crate) object_type: Option<ObjectType>,
    pub(crate) record_id: Option<ObjectId>,
    pub(crate) run_id: Option<String>,
    pub(crate) query: BTreeMap<String, String>,
}

pub(crate) fn invalid(m: impl Into<String>) -> AdminError {
    AdminError::Invalid(m.into())
}

pub(crate) fn positive_id(name: &str, raw: &str) -> Result<u64, AdminError> {
    match raw.parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(invalid(format!(
            "{name} must be a positive integer, not {raw:?}"
        ))),
    }
}

pub(crate) fn object_type(raw: &str) -> Result<ObjectType, AdminError> {
    ObjectType::ALL
        .into_iter()
        .find(|t| t.as_api_path() == raw)
        .ok_or_else(|| {
            invalid(format!(
                "objectType must be companies, contacts or deals, not {raw:?}"
            ))
        })
}

pub(crate) fn parse_params(
    route: &Route,
    raw: BTreeMap<&'static str, String>,
    query: Option<&str>,
) -> Result<Params, AdminError> {
    let tenant = raw.get("tenant").cloned().unwrap_or_default();
    if !link::valid_tenant(&tenant) {
        return Err(invalid(
            "tenant must be 1 to 128 characters of A-Z, a-z, 0-9, '.', '_' and '-'",
        ));
    }
    let mut params = Params {
        tenant,
        portal: raw
            .get("portal")
            .map(|p| positive_id("portal", p))
            .transpose()?
            .map(PortalId),
        object_type: raw.get("objectType").map(|t| object_type(t)).transpose()?,
        record_id: raw
            .get("recordId")
            .map(|r| positive_id("recordId", r))
            .transpose()?
            .map(ObjectId),
        run_id: None,
        query: BTreeMap::new(),
    };
    if let Some(run) = raw.get("runId") {
        let ok = run.len() <= 64
            && run
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return Err(invalid(format!("{run:?} is not a run id")));
        }
        params.run_id = Some(run.clone());
    }
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let Some(spec) = route.query.iter().find(|q| q.name == k) else {
            let known: Vec<&str> = route.query.iter().map(|q| q.name).collect();
            return Err(invalid(if known.is_empty() {
                format!("this route takes no query parameter (got {k:?})")
            } else {
                format!(
                    "unknown query parameter {k:?} (this route takes {})",
                    known.join(", ")
                )
            }));
        };
        if !spec.values.is_empty() && !spec.values.contains(&v.as_ref()) {
            return Err(invalid(format!(
                "{k} must be one of {}, not {v:?}",
                spec.values.join(", ")
            )));
        }
        if params
            .query
            .insert(k.clone().into_owned(), v.into_owned())
            .is_some()
        {
            return Err(invalid(format!("query parameter {k:?} is given twice")));
        }
    }
    Ok(params)
}

pub(crate) fn body_json<B: DeserializeOwned>(body: &[u8]) -> Result<B, AdminError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(invalid("the request needs a JSON body"));
    }
    serde_json::from_slice(body).map_err(|e| invalid(format!("the body is not valid: {e}")))
}

/// `POST …/install-links`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct InstallLinkRequest {
    pub(crate) expires_in_secs: Option<u64>,
    /// Connect without starting the initial sync (`awaiting_setup`).
    #[serde(default)]
    pub(crate) defer_initial_sync: bool,
}

/// `POST …/mapping/preview`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PreviewRequest {
    pub(crate) config: Option<MappingConfig>,
    pub(crate) object_types: Option<Vec<ObjectType>>,
    pub(crate) sample: Option<u32>,
}

/// `POST …/mapping/suggest`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SuggestRequest {
    pub(crate) object_type: ObjectType,
    pub(crate) fields: Vec<hubsync_mapping::suggest::AppField>,
}

/// Most fields one suggestion request may carry.
pub(crate) const MAX_SUGGEST_FIELDS: usize = 200;

/// `POST …/syncs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StartSyncRequest {
    pub(crate) kind: SyncJobKind,
    #[serde(default)]
    pub(crate) object_types: Vec<ObjectType>,
}

pub(crate) fn mapping_body(body: &[u8]) -> Result<MappingConfig, AdminError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(invalid(
            "the request needs a mapping config as its JSON body",
        ));
    }
    let text = std::str::from_utf8(body).map_err(|_| invalid("the body is not UTF-8"))?;
    MappingConfig::from_json(text)
        .map_err(|e| invalid(format!("the body is not a mapping config: {e}")))
}
