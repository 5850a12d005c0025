//! API generations: HubSpot serves the same CRM reads on the legacy
//! numbered paths (`/crm/v3/…`, `/crm/v4/associations/…`, `/oauth/v1/…`)
//! and on date-versioned ones (`/crm/objects/2026-03/…`,
//! `/crm/associations/2026-09/…`, `/oauth/2026-03/…`). The simulator
//! serves both from one set of handlers: a request on a date-versioned path
//! is rewritten to the numbered route before routing and tagged with its
//! version, which the gate counts ([`crate::CounterSnapshot::requests_by_api_version`])
//! and refuses when the version is configured as retired
//! ([`crate::SimConfig::refused_api_versions`]), as HubSpot will after its
//! sunset dates.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::Response;

use crate::http::hs_error;
use crate::state::SimState;

/// The date versions the simulator serves.
pub const DATE_VERSIONS: [&str; 2] = ["2026-03", "2026-09"];

/// Legacy generations, as counted.
pub const LEGACY_VERSIONS: [&str; 3] = ["v1", "v3", "v4"];

/// The header the rewrite tags a CRM request with (never trusted from a
/// client: any incoming one is replaced).
pub(crate) const VERSION_HEADER: &str = "x-hubspot-sim-api-version";

/// `/crm/{family}/{date}/{rest}` → (`/crm/v3/{family}/{rest}` or
/// `/crm/v4/associations/{rest}`, date).
fn rewrite(path: &str) -> Option<(String, &'static str)> {
    let rest = path.strip_prefix("/crm/")?;
    let (family, rest) = rest.split_once('/')?;
    let (date, tail) = match rest.split_once('/') {
        Some((d, t)) => (d, Some(t)),
        None => (rest, None),
    };
    let date = DATE_VERSIONS.into_iter().find(|v| *v == date)?;
    let base = match family {
        "objects" | "properties" | "owners" | "lists" | "pipelines" => format!("/crm/v3/{family}"),
        "associations" => "/crm/v4/associations".to_owned(),
        _ => return None,
    };
    Some((
        match tail {
            Some(t) => format!("{base}/{t}"),
            None => base,
        },
        date,
    ))
}

/// The version a numbered CRM path belongs to.
fn numbered(path: &str) -> Option<&'static str> {
    if path.starts_with("/crm/v3/") {
        Some("v3")
    } else if path.starts_with("/crm/v4/") {
        Some("v4")
    } else {
        None
    }
}

/// Middleware (before routing): rewrites date-versioned CRM paths and tags
/// every CRM request with its version.
pub(crate) async fn tag_version(mut req: Request) -> Request {
    req.headers_mut().remove(VERSION_HEADER);
    let path = req.uri().path().to_owned();
    let version = match rewrite(&path) {
        Some((legacy, date)) => {
            let pq = match req.uri().query() {
                Some(q) => format!("{legacy}?{q}"),
                None => legacy,
            };
            if let Ok(uri) = pq.parse::<Uri>() {
                *req.uri_mut() = uri;
            }
            Some(date)
        }
        None => numbered(&path),
    };
    if let Some(v) = version {
        req.headers_mut()
            .insert(VERSION_HEADER, HeaderValue::from_static(v));
    }
    req
}

/// The version the rewrite tagged a CRM request with.
pub(crate) fn crm_version(headers: &HeaderMap) -> &str {
    headers
        .get(VERSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("v3")
}

/// Counts a call of `version`; refuses it (410, HubSpot's error body) when
/// that version is retired.
pub(crate) fn check(st: &SimState, version: &str) -> Result<(), Response> {
    st.counters.update(|c| {
        *c.requests_by_api_version
            .entry(version.to_owned())
            .or_default() += 1
    });
    let refused = st
        .config_read()
        .refused_api_versions
        .iter()
        .any(|v| v == version || (v == "legacy" && LEGACY_VERSIONS.contains(&version)));
    if refused {
        st.counters.update(|c| c.refused_api_calls += 1);
        return Err(hs_error(
            StatusCode::GONE,
            "API_VERSION_NOT_SUPPORTED",
            format!(
                "API version {version} is no longer supported; use a current date-versioned API."
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_paths_map_to_the_numbered_routes() {
        assert_eq!(
            rewrite("/crm/objects/2026-03/companies/batch/read"),
            Some(("/crm/v3/objects/companies/batch/read".into(), "2026-03"))
        );
        assert_eq!(
            rewrite("/crm/owners/2026-09"),
            Some(("/crm/v3/owners".into(), "2026-09"))
        );
        assert_eq!(
            rewrite("/crm/associations/2026-03/deals/companies/batch/read"),
            Some((
                "/crm/v4/associations/deals/companies/batch/read".into(),
                "2026-03"
            ))
        );
        assert_eq!(
            rewrite("/crm/lists/2026-03/12/memberships"),
            Some(("/crm/v3/lists/12/memberships".into(), "2026-03"))
        );
        for unknown in [
            "/crm/objects/2025-09/companies",
            "/crm/v3/objects/companies",
            "/crm/things/2026-03/x",
            "/oauth/2026-03/token",
        ] {
            assert_eq!(rewrite(unknown), None, "{unknown}");
        }
        assert_eq!(numbered("/crm/v4/associations/a/b/batch/read"), Some("v4"));
    }
}
