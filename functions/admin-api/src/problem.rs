//! Answers: a status and a JSON body. Every refusal is
//! `{"error": {"code", "message"}}` (plus `errors` for a rejected mapping,
//! `allowed` for a wrong method), with a status that says whose problem it
//! is: 4xx for the caller's input, 409 for a state that refuses the
//! operation, 502/503 when HubSpot or AWS failed (retry later), 500 only
//! for what should not happen.

use hubsync_admin::AdminError;
use hubsync_hubspot::HubSpotError;
use serde::Serialize;
use serde_json::{json, Value};

/// An answer of the API.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiResponse {
    pub status: u16,
    /// The JSON body (`None`: no body, e.g. 204).
    pub body: Option<Value>,
    /// `Retry-After` seconds, on a 503 worth retrying.
    pub retry_after: Option<u64>,
    /// `Allow`, on a 405.
    pub allow: Option<String>,
}

impl ApiResponse {
    pub fn json(status: u16, body: &impl Serialize) -> Self {
        match serde_json::to_value(body) {
            Ok(v) => Self {
                status,
                body: Some(v),
                retry_after: None,
                allow: None,
            },
            Err(e) => {
                tracing::error!(error = %e, "answer did not serialize");
                Self::error(500, "internal", "the answer could not be encoded")
            }
        }
    }

    pub fn no_content() -> Self {
        Self {
            status: 204,
            body: None,
            retry_after: None,
            allow: None,
        }
    }

    pub fn error(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self::error_with(status, code, message, None)
    }

    fn error_with(
        status: u16,
        code: &str,
        message: impl Into<String>,
        extra: Option<(&str, Value)>,
    ) -> Self {
        let mut error = json!({"code": code, "message": message.into()});
        if let (Some((k, v)), Some(obj)) = (extra, error.as_object_mut()) {
            obj.insert(k.to_owned(), v);
        }
        Self {
            status,
            body: Some(json!({ "error": error })),
            retry_after: None,
            allow: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::error(400, "invalid_request", message)
    }

    pub fn method_not_allowed(allowed: &[&str]) -> Self {
        let allow = allowed.join(", ");
        let mut r = Self::error_with(
            405,
            "method_not_allowed",
            format!("this path accepts {allow}"),
            Some(("allowed", json!(allowed))),
        );
        r.allow = Some(allow);
        r
    }

    fn unavailable(code: &str, message: impl Into<String>, retry_after: u64) -> Self {
        let mut r = Self::error(503, code, message);
        r.retry_after = Some(retry_after);
        r
    }

    /// The code of an error answer (tests, logs).
    pub fn error_code(&self) -> Option<&str> {
        self.body.as_ref()?.get("error")?.get("code")?.as_str()
    }
}

/// The answer to a failed operation.
pub fn from_admin_error(e: &AdminError) -> ApiResponse {
    match e {
        AdminError::Invalid(m) => ApiResponse::bad_request(m.clone()),
        AdminError::NotFound(m) => ApiResponse::error(404, "not_found", m.clone()),
        AdminError::Conflict(m) => ApiResponse::error(409, "conflict", m.clone()),
        AdminError::Rejected(errors) => ApiResponse::error_with(
            422,
            "mapping_rejected",
            format!(
                "the mapping config has {} problem(s); nothing was saved",
                errors.0.len()
            ),
            Some(("errors", json!(errors.0))),
        ),
        AdminError::NeedsReauth => ApiResponse::error(
            409,
            "needs_reauth",
            "the portal's HubSpot grant was revoked; an admin must reconnect it",
        ),
        AdminError::HubSpot(h) => from_hubspot(h),
        AdminError::Store(s) if s.is_retryable() => {
            ApiResponse::unavailable("storage_unavailable", "storage is busy; retry shortly", 2)
        }
        AdminError::Store(_) => {
            ApiResponse::error(500, "internal", "a storage operation failed; see the logs")
        }
        AdminError::Queue(_) => ApiResponse::unavailable(
            "queue_unavailable",
            "the sync could not be queued; retry shortly",
            2,
        ),
    }
}

fn from_hubspot(e: &HubSpotError) -> ApiResponse {
    match e {
        HubSpotError::RateLimited { retry_after, .. } => ApiResponse::unavailable(
            "hubspot_rate_limited",
            "HubSpot's rate limit for the portal is reached; retry shortly",
            retry_after.map(|d| d.as_secs().max(1)).unwrap_or(10),
        ),
        HubSpotError::Forbidden { .. } | HubSpotError::Unauthorized { .. } => {
            ApiResponse::error(409, "hubspot_access_denied", format!("{e}"))
        }
        e if e.is_retryable() => ApiResponse::unavailable(
            "hubspot_unavailable",
            format!("HubSpot did not answer ({e}); retry shortly"),
            5,
        ),
        e => ApiResponse::error(502, "hubspot_error", format!("{e}")),
    }
}
