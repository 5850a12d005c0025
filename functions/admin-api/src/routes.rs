//! The route table: the one list of the API's routes. The router matches
//! requests against it and the OpenAPI document ([`crate::openapi`]) is
//! generated from it, so the two cannot disagree.

use std::collections::BTreeMap;

/// An operation of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    CreateInstallLink,
    ListConnections,
    GetConnection,
    Disconnect,
    GetMapping,
    SaveMapping,
    ValidateMapping,
    PreviewMapping,
    ListProperties,
    StartSync,
    ListSyncs,
    GetSync,
    DeleteRecord,
    PurgeRecords,
    GetHealth,
    SuggestMapping,
}

/// A query parameter a route accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryParam {
    pub name: &'static str,
    pub description: &'static str,
    /// JSON-schema type (`string`, `integer`, `boolean`).
    pub schema_type: &'static str,
    /// Allowed values, when enumerated.
    pub values: &'static [&'static str],
}

/// One route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub op: Op,
    pub operation_id: &'static str,
    pub method: &'static str,
    /// The path template; `{name}` segments are parameters.
    pub path: &'static str,
    pub summary: &'static str,
    /// The request body's schema (components/schemas), if it takes one.
    pub request: Option<&'static str>,
    pub query: &'static [QueryParam],
    /// The success status and its body's schema (`None`: no body).
    pub success: (u16, Option<&'static str>),
    /// The error statuses it can answer besides 400, 401, 403 and 5xx.
    pub errors: &'static [u16],
}

/// Every route of the API.
pub const ROUTES: &[Route] = &[
    Route {
        op: Op::CreateInstallLink,
        operation_id: "createInstallLink",
        method: "POST",
        path: "/v1/tenants/{tenant}/install-links",
        summary: "Create a signed, single-use install link (\"Connect HubSpot\") for a tenant",
        request: Some("InstallLinkRequest"),
        query: &[],
        success: (201, Some("InstallLink")),
        errors: &[],
    },
    Route {
        op: Op::ListConnections,
        operation_id: "listConnections",
        method: "GET",
        path: "/v1/tenants/{tenant}/connections",
        summary: "The tenant's HubSpot connections, with the running sync's progress",
        request: None,
        query: &[],
        success: (200, Some("ConnectionList")),
        errors: &[],
    },
    Route {
        op: Op::GetConnection,
        operation_id: "getConnection",
        method: "GET",
        path: "/v1/tenants/{tenant}/connections/{portal}",
        summary: "One connection: state, scopes, last webhook, last completed sync, running sync's progress per object type",
        request: None,
        query: &[],
        success: (200, Some("Connection")),
        errors: &[404],
    },
    Route {
        op: Op::Disconnect,
        operation_id: "disconnect",
        method: "DELETE",
        path: "/v1/tenants/{tenant}/connections/{portal}",
        summary: "Disconnect: revoke the grant at HubSpot, delete the tokens, keep the records",
        request: None,
        query: &[],
        success: (200, Some("Disconnected")),
        errors: &[404],
    },
    Route {
        op: Op::GetMapping,
        operation_id: "getMapping",
        method: "GET",
        path: "/v1/tenants/{tenant}/connections/{portal}/mapping",
        summary: "The mapping config the portal syncs with (the default when none is saved)",
        request: None,
        query: &[],
        success: (200, Some("MappingCurrent")),
        errors: &[404],
    },
    Route {
        op: Op::SaveMapping,
        operation_id: "saveMapping",
        method: "PUT",
        path: "/v1/tenants/{tenant}/connections/{portal}/mapping",
        summary: "Validate and save a mapping config, then re-sync the object types whose mapping changed",
        request: Some("MappingConfig"),
        query: &[QueryParam {
            name: "resync",
            description: "`changed` (default): re-sync the types whose mapping changed; `none`: save only (stored records change at the next reconciliation)",
            schema_type: "string",
            values: &["changed", "none"],
        }],
        success: (200, Some("MappingSaved")),
        errors: &[404, 409, 422],
    },
    Route {
        op: Op::ValidateMapping,
        operation_id: "validateMapping",
        method: "POST",
        path: "/v1/tenants/{tenant}/connections/{portal}/mapping/validate",
        summary: "Validate a mapping config against the portal's HubSpot properties and lists (stores nothing)",
        request: Some("MappingConfig"),
        query: &[],
        success: (200, Some("MappingValid")),
        errors: &[404, 409, 422],
    },
    Route {
        op: Op::PreviewMapping,
        operation_id: "previewMapping",
        method: "POST",
        path: "/v1/tenants/{tenant}/connections/{portal}/mapping/preview",
        summary: "Test sync: map a sample of the portal's real records with a config, writing nothing",
        request: Some("PreviewRequest"),
        query: &[],
        success: (200, Some("Preview")),
        errors: &[404, 409, 422],
    },
    Route {
        op: Op::SuggestMapping,
        operation_id: "suggestMapping",
        method: "POST",
        path: "/v1/tenants/{tenant}/connections/{portal}/mapping/suggest",
        summary: "Suggest mappings: the application's fields against HubSpot's properties — auto-mapped, suggested (scored candidates) or unmapped",
        request: Some("SuggestRequest"),
        query: &[],
        success: (200, Some("Suggestions")),
        errors: &[404, 409],
    },
    Route {
        op: Op::ListProperties,
        operation_id: "listProperties",
        method: "GET",
        path: "/v1/tenants/{tenant}/connections/{portal}/properties/{objectType}",
        summary: "The properties HubSpot offers for an object type (what a mapping can read)",
        request: None,
        query: &[],
        success: (200, Some("PropertyList")),
        errors: &[404, 409],
    },
    Route {
        op: Op::StartSync,
        operation_id: "startSync",
        method: "POST",
        path: "/v1/tenants/{tenant}/connections/{portal}/syncs",
        summary: "Start an initial sync or a re-sync (every object type, or the ones named)",
        request: Some("StartSyncRequest"),
        query: &[],
        success: (202, Some("SyncQueued")),
        errors: &[404, 409],
    },
    Route {
        op: Op::ListSyncs,
        operation_id: "listSyncs",
        method: "GET",
        path: "/v1/tenants/{tenant}/connections/{portal}/syncs",
        summary: "The portal's recent sync runs, newest first, with their reports",
        request: None,
        query: &[QueryParam {
            name: "limit",
            description: "Runs to return, 1 to 50 (default 10)",
            schema_type: "integer",
            values: &[],
        }],
        success: (200, Some("SyncList")),
        errors: &[404],
    },
    Route {
        op: Op::GetSync,
        operation_id: "getSync",
        method: "GET",
        path: "/v1/tenants/{tenant}/connections/{portal}/syncs/{runId}",
        summary: "One sync run's report (its progress while it runs)",
        request: None,
        query: &[],
        success: (200, Some("SyncReport")),
        errors: &[404],
    },
    Route {
        op: Op::DeleteRecord,
        operation_id: "deleteRecord",
        method: "DELETE",
        path: "/v1/tenants/{tenant}/connections/{portal}/records/{objectType}/{recordId}",
        summary: "Delete one archived record permanently (an active record or a privacy tombstone is refused)",
        request: None,
        query: &[],
        success: (204, None),
        errors: &[404, 409],
    },
    Route {
        op: Op::PurgeRecords,
        operation_id: "purgeRecords",
        method: "DELETE",
        path: "/v1/tenants/{tenant}/connections/{portal}/records/{objectType}",
        summary: "Delete every archived record of a type permanently (optionally only those out of scope); resumable",
        request: None,
        query: &[
            QueryParam {
                name: "archived_reason",
                description: "Only records archived for this reason (`out_of_scope`); default: every archived record",
                schema_type: "string",
                values: &["out_of_scope"],
            },
            QueryParam {
                name: "resume_after",
                description: "Continue after this record id (the `resume_after` of an incomplete answer)",
                schema_type: "string",
                values: &[],
            },
        ],
        success: (200, Some("PurgeReport")),
        errors: &[404],
    },
    Route {
        op: Op::GetHealth,
        operation_id: "getHealth",
        method: "GET",
        path: "/v1/tenants/{tenant}/connections/{portal}/health",
        summary: "Sync health: records that did not sync cleanly, by category, with counts and examples (ids and field names, no values)",
        request: None,
        query: &[
            QueryParam {
                name: "object_type",
                description: "Only this object type (default: every type)",
                schema_type: "string",
                values: &["companies", "contacts", "deals"],
            },
            QueryParam {
                name: "examples",
                description: "Examples per category, 0 to 100 (default 10)",
                schema_type: "integer",
                values: &[],
            },
        ],
        success: (200, Some("Health")),
        errors: &[404],
    },
];

/// What matching a request against the table gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Matched {
    /// The route and its path parameters (raw, not yet validated).
    Route(&'static Route, BTreeMap<&'static str, String>),
    /// The path exists but not with this method; the allowed methods.
    MethodNotAllowed(Vec<&'static str>),
    NotFound,
}

fn captures(template: &'static str, path: &str) -> Option<BTreeMap<&'static str, String>> {
    let want: Vec<&'static str> = template.trim_matches('/').split('/').collect();
    let got: Vec<&str> = path
        .trim_end_matches('/')
        .trim_start_matches('/')
        .split('/')
        .collect();
    if want.len() != got.len() {
        return None;
    }
    let mut params = BTreeMap::new();
    for (w, g) in want.into_iter().zip(got) {
        if let Some(name) = w.strip_prefix('{').and_then(|n| n.strip_suffix('}')) {
            let value = url::form_urlencoded::parse(format!("v={g}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            if value.is_empty() {
                return None;
            }
            params.insert(name, value);
        } else if w != g {
            return None;
        }
    }
    Some(params)
}

/// Matches `method` and `path` against [`ROUTES`].
pub fn route(method: &str, path: &str) -> Matched {
    let mut allowed = Vec::new();
    for r in ROUTES {
        if let Some(params) = captures(r.path, path) {
            if r.method.eq_ignore_ascii_case(method) {
                return Matched::Route(r, params);
            }
            allowed.push(r.method);
        }
    }
    if allowed.is_empty() {
        Matched::NotFound
    } else {
        Matched::MethodNotAllowed(allowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_unique_and_under_v1() {
        let mut seen = std::collections::BTreeSet::new();
        for r in ROUTES {
            assert!(r.path.starts_with("/v1/"), "{}", r.path);
            assert!(
                seen.insert((r.method, r.path)),
                "{} {} twice",
                r.method,
                r.path
            );
        }
        let ids: std::collections::BTreeSet<_> = ROUTES.iter().map(|r| r.operation_id).collect();
        assert_eq!(ids.len(), ROUTES.len(), "operation ids are unique");
    }

    #[test]
    fn paths_match_with_their_parameters() {
        match route("GET", "/v1/tenants/acme/connections/42/syncs/123-resync") {
            Matched::Route(r, p) => {
                assert_eq!(r.op, Op::GetSync);
                assert_eq!(p["tenant"], "acme");
                assert_eq!(p["portal"], "42");
                assert_eq!(p["runId"], "123-resync");
            }
            other => panic!("{other:?}"),
        }
        match route("delete", "/v1/tenants/acme/connections/42/records/deals") {
            Matched::Route(r, _) => assert_eq!(r.op, Op::PurgeRecords),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            route("PATCH", "/v1/tenants/acme/connections/42"),
            Matched::MethodNotAllowed(vec!["GET", "DELETE"])
        );
        assert_eq!(route("GET", "/v1/tenants/acme"), Matched::NotFound);
        assert_eq!(route("GET", "/v1/tenants//connections"), Matched::NotFound);
        assert_eq!(route("GET", "/oauth/install"), Matched::NotFound);
    }
}
