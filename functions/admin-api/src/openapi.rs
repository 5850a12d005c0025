//! The OpenAPI 3.1 document of the API, generated from the route table
//! ([`crate::routes::ROUTES`]) and the schemas below. It is committed as
//! `docs/admin-api.openapi.json`; a test regenerates it and fails when the
//! committed copy differs (`UPDATE_OPENAPI=1 cargo test -p admin-api`
//! rewrites it).

use serde_json::{json, Map, Value};

use crate::routes::{Route, ROUTES};

fn path_parameter(name: &str) -> Value {
    let (description, schema) = match name {
        "tenant" => (
            "The application's tenant id",
            json!({"type": "string", "pattern": "^[A-Za-z0-9._-]{1,128}$"}),
        ),
        "portal" => (
            "The HubSpot portal (hub) id",
            json!({"type": "integer", "format": "int64", "minimum": 1}),
        ),
        "objectType" => (
            "The object type",
            json!({"type": "string", "enum": ["companies", "contacts", "deals"]}),
        ),
        "recordId" => (
            "The HubSpot record id",
            json!({"type": "integer", "format": "int64", "minimum": 1}),
        ),
        "runId" => (
            "A sync run's id (as `startSync` and `listSyncs` return it)",
            json!({"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}),
        ),
        other => ("", json!({"type": "string", "x-unknown-parameter": other})),
    };
    json!({
        "name": name,
        "in": "path",
        "required": true,
        "description": description,
        "schema": schema,
    })
}

fn error_response(status: u16) -> Value {
    let description = match status {
        400 => "The input is invalid (the message names what and why)",
        401 => "The request is not signed with SigV4",
        403 => "The IAM principal may not call the API",
        404 => "No such tenant connection, record or run (or no such route)",
        405 => "The path does not accept this method",
        409 => "The connection's or record's state refuses the operation",
        413 => "The body is too large",
        422 => "The mapping config does not fit the portal (every rule's problem in `errors`)",
        500 => "An unexpected failure (logged)",
        502 => "HubSpot refused the call",
        503 => "HubSpot or AWS is unavailable or rate limited; retry after `Retry-After` seconds",
        _ => "Error",
    };
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    })
}

fn operation(route: &Route) -> Value {
    let mut parameters: Vec<Value> = route
        .path
        .split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(path_parameter)
        .collect();
    for q in route.query {
        let mut schema = json!({"type": q.schema_type});
        if !q.values.is_empty() {
            schema["enum"] = json!(q.values);
        }
        parameters.push(json!({
            "name": q.name,
            "in": "query",
            "required": false,
            "description": q.description,
            "schema": schema,
        }));
    }
    let mut responses = Map::new();
    let (status, schema) = route.success;
    let mut ok = json!({"description": "Success"});
    if let Some(schema) = schema {
        ok["content"] = json!({"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}});
    }
    responses.insert(status.to_string(), ok);
    let mut errors = vec![400, 401, 403, 413, 500, 502, 503];
    errors.extend(route.errors);
    errors.sort_unstable();
    errors.dedup();
    for e in errors {
        responses.insert(e.to_string(), error_response(e));
    }
    let mut op = json!({
        "operationId": route.operation_id,
        "summary": route.summary,
        "parameters": parameters,
        "responses": responses,
    });
    if let Some(body) = route.request {
        op["requestBody"] = json!({
            "required": body != "PreviewRequest" && body != "InstallLinkRequest",
            "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{body}")}}},
        });
    }
    op
}

fn object(properties: Value, required: &[&str]) -> Value {
    json!({"type": "object", "properties": properties, "required": required})
}

fn schemas() -> Value {
    let ts = json!({"type": "string", "format": "date-time"});
    let opt_ts = json!({"type": ["string", "null"], "format": "date-time"});
    let id = json!({"type": "integer", "format": "int64"});
    let object_type = json!({"type": "string", "enum": ["companies", "contacts", "deals"]});
    let run_status = json!({"type": "string", "enum": ["running", "completed", "failed"]});
    let kind = json!({"type": "string", "enum": ["initial_sync", "resync", "nightly"]});
    let opt_count = json!({"type": ["integer", "null"], "format": "int64"});
    let summary_ref =
        json!({"oneOf": [{"$ref": "#/components/schemas/SyncSummary"}, {"type": "null"}]});
    let free = json!({"type": "object", "additionalProperties": true});
    json!({
        "Error": object(json!({
            "error": object(json!({
                "code": {"type": "string"},
                "message": {"type": "string"},
                "errors": {"type": "array", "items": object(json!({"rule": {"type": "string"}, "message": {"type": "string"}}), &["rule", "message"])},
                "allowed": {"type": "array", "items": {"type": "string"}},
            }), &["code", "message"]),
        }), &["error"]),
        "InstallLinkRequest": object(json!({
            "expires_in_secs": {"type": "integer", "minimum": 60, "description": "Lifetime (default 900, at most the deployment's link maximum)"},
            "defer_initial_sync": {"type": "boolean", "description": "Connect without starting the initial sync: the connection reads `awaiting_setup` until a sync is started (after saving the mapping and scope)"},
        }), &[]),
        "InstallLink": object(json!({
            "tenant_id": {"type": "string"},
            "url": {"type": "string", "format": "uri", "description": "Send the admin's browser here; usable once"},
            "expires_at": ts,
            "defer_initial_sync": {"type": "boolean"},
        }), &["tenant_id", "url", "expires_at", "defer_initial_sync"]),
        "TypeProgress": object(json!({
            "object_type": object_type,
            "status": run_status,
            "done": {"type": "integer", "format": "int64"},
            "estimated_total": opt_count,
            "error": {"type": ["string", "null"]},
        }), &["object_type", "status", "done"]),
        "SyncSummary": object(json!({
            "run_id": {"type": "string"},
            "kind": kind,
            "status": run_status,
            "started_at": ts,
            "finished_at": opt_ts,
            "done": {"type": "integer", "format": "int64"},
            "estimated_total": opt_count,
            "drift": {"type": "integer", "format": "int64"},
            "journal_fixed": {"type": "integer", "format": "int64", "description": "Records the Webhooks Journal had already repaired since the previous run (not drift)"},
            "types": {"type": "array", "items": {"$ref": "#/components/schemas/TypeProgress"}},
            "pending_types": {"type": "array", "items": object_type, "description": "Types of the run not started yet (the total is known once none is pending)"},
        }), &["run_id", "kind", "status", "started_at", "done", "drift", "journal_fixed", "types", "pending_types"]),
        "Connection": object(json!({
            "tenant_id": {"type": "string"},
            "portal_id": id,
            "state": {"type": "string", "enum": ["active", "awaiting_setup", "needs_reauth", "disconnected"]},
            "state_reason": {"type": ["string", "null"]},
            "scopes": {"type": "array", "items": {"type": "string"}},
            "connected_at": ts,
            "updated_at": ts,
            "last_webhook_at": opt_ts,
            "last_completed_sync": summary_ref,
            "running_sync": summary_ref,
            "failed_sync": summary_ref,
        }), &["tenant_id", "portal_id", "state", "scopes", "connected_at", "updated_at"]),
        "ConnectionList": object(json!({
            "connections": {"type": "array", "items": {"$ref": "#/components/schemas/Connection"}},
        }), &["connections"]),
        "Disconnected": object(json!({
            "portal_id": id,
            "state": {"const": "disconnected"},
            "previous_state": {"type": "string"},
            "revoked_at_hubspot": {"type": "boolean"},
        }), &["portal_id", "state", "previous_state", "revoked_at_hubspot"]),
        "MappingConfig": {
            "type": "object",
            "description": "A mapping config (README \"Mapping configs\"): per object type, its rules, scope filters, lists, associations and scope_follows_companies; types left out keep their defaults. With \"extends\": \"default\" a type states only what it adds or replaces (rules, associations, scope, lists) and removes (\"remove\": default field names)",
            "properties": {
                "extends": {"enum": ["default"]},
                "companies": free, "contacts": free, "deals": free,
            },
            "additionalProperties": false,
        },
        "MappingCurrent": object(json!({
            "portal_id": id,
            "revision": opt_count,
            "updated_at": {"type": ["string", "null"]},
            "default": {"type": "boolean"},
            "config": {"$ref": "#/components/schemas/MappingConfig"},
            "custom_fields": {
                "type": "object",
                "description": "Per object type, the fields that are not defaults as they are (added or replaced)",
                "additionalProperties": {"type": "array", "items": {"type": "string"}},
            },
        }), &["portal_id", "default", "config", "custom_fields"]),
        "MappingValid": object(json!({
            "valid": {"const": true},
            "config": {"$ref": "#/components/schemas/MappingConfig"},
        }), &["valid", "config"]),
        "MappingSaved": object(json!({
            "saved": object(json!({
                "revision": {"type": "integer"},
                "previous_revision": opt_count,
                "changed_types": {"type": "array", "items": object_type},
                "config": {"$ref": "#/components/schemas/MappingConfig"},
            }), &["revision", "changed_types", "config"]),
            "resync": {"oneOf": [{"$ref": "#/components/schemas/SyncQueued"}, {"type": "null"}]},
        }), &["saved", "resync"]),
        "PreviewRequest": object(json!({
            "config": {"$ref": "#/components/schemas/MappingConfig"},
            "object_types": {"type": "array", "items": object_type, "minItems": 1},
            "sample": {"type": "integer", "minimum": 1, "maximum": 100},
        }), &[]),
        "Preview": object(json!({
            "portal_id": id,
            "types": {"type": "array", "items": object(json!({
                "object_type": object_type,
                "properties": {"type": "array", "items": {"type": "string"}},
                "records": {"type": "array", "items": free},
                "mapped": {"type": "integer"},
                "skipped": {"type": "object", "additionalProperties": {"type": "integer"}},
                "field_errors": {"type": "integer"},
            }), &["object_type", "records", "mapped", "skipped", "field_errors"])},
        }), &["portal_id", "types"]),
        "PropertyList": object(json!({
            "object_type": object_type,
            "properties": {"type": "array", "items": object(json!({
                "name": {"type": "string"},
                "type": {"type": "string"},
                "fieldType": {"type": "string"},
                "options": {"type": "array", "items": free},
            }), &["name", "type"])},
        }), &["object_type", "properties"]),
        "StartSyncRequest": object(json!({
            "kind": {"type": "string", "enum": ["initial_sync", "resync"]},
            "object_types": {"type": "array", "items": object_type, "description": "Default: every type"},
        }), &["kind"]),
        "SyncQueued": object(json!({
            "portal_id": id,
            "run_id": {"type": "string"},
            "kind": kind,
            "object_types": {"type": "array", "items": object_type},
        }), &["portal_id", "run_id", "kind", "object_types"]),
        "SyncReport": {
            "type": "object",
            "description": "A run's report: status, done / estimated_total, drift, HubSpot calls, and per type its counters (created, updated, archived, restored, unchanged, errors, …)",
            "properties": {
                "portal_id": id,
                "run_id": {"type": "string"},
                "kind": kind,
                "status": run_status,
                "started_at_ms": {"type": "integer", "format": "int64"},
                "finished_at_ms": opt_count,
                "done": {"type": "integer", "format": "int64"},
                "estimated_total": opt_count,
                "drift": {"type": "integer", "format": "int64"},
                "journal_fixed": {"type": "integer", "format": "int64"},
                "types": {"type": "array", "items": free},
            },
            "required": ["portal_id", "run_id", "kind", "status", "done", "types"],
        },
        "SyncList": object(json!({
            "runs": {"type": "array", "items": {"$ref": "#/components/schemas/SyncReport"}},
        }), &["runs"]),
        "Health": health_schema(&id, &object_type),
        "SuggestRequest": suggest_request_schema(&object_type),
        "Suggestions": suggestions_schema(&object_type),
        "PurgeReport": object(json!({
            "examined": {"type": "integer"},
            "deleted": {"type": "integer"},
            "kept": {"type": "integer"},
            "tombstones": {"type": "integer"},
            "active": {"type": "integer"},
            "complete": {"type": "boolean", "description": "false: call again with resume_after"},
            "resume_after": opt_count,
        }), &["examined", "deleted", "kept", "tombstones", "active", "complete"]),
    })
}

/// The sync-health answer (its own function: one `json!` for every schema
/// exceeds the macro's recursion limit).
fn health_schema(id: &Value, object_type: &Value) -> Value {
    object(
        json!({
            "portal_id": id.clone(),
            "records_with_issues": {"type": "integer", "description": "Live records with at least one issue"},
            "categories": {"type": "array", "items": object(json!({
                "category": {"type": "string", "description": "`mapping` (a field's HubSpot value did not convert; stored empty) and `too_large` (a value over DynamoDB's item limit; stored empty), per record until it syncs cleanly; `permission`, `hubspot_4xx`, `rate_limit`, `hubspot_unavailable`, `storage`: records held up by a failed group, until the type syncs cleanly"},
                "affected_records": {"type": "integer"},
                "incidents": {"type": "array", "items": object(json!({
                    "object_type": object_type.clone(),
                    "message": {"type": "string"},
                    "occurrences": {"type": "integer"},
                    "first_at_ms": {"type": "integer", "format": "int64"},
                    "last_at_ms": {"type": "integer", "format": "int64"},
                }), &["object_type", "message", "occurrences"])},
                "by_field": {"type": "object", "additionalProperties": {"type": "integer"}},
                "examples": {"type": "array", "items": object(json!({
                    "object_type": object_type.clone(),
                    "object_id": {"type": "string"},
                    "field": {"type": ["string", "null"]},
                    "message": {"type": "string"},
                    "synced_at": {"type": ["string", "null"]},
                }), &["object_type", "object_id", "message"])},
            }), &["category", "affected_records", "incidents", "by_field", "examples"])},
        }),
        &["portal_id", "records_with_issues", "categories"],
    )
}

const FIELD_TYPES: [&str; 10] = [
    "string",
    "email",
    "integer",
    "decimal",
    "money",
    "date",
    "datetime",
    "boolean",
    "enumeration",
    "owner",
];

fn suggest_request_schema(object_type: &Value) -> Value {
    object(
        json!({
            "object_type": object_type.clone(),
            "fields": {"type": "array", "minItems": 1, "maxItems": 200, "items": object(json!({
                "name": {"type": "string"},
                "label": {"type": "string"},
                "type": {"type": "string", "enum": FIELD_TYPES},
            }), &["name", "type"])},
        }),
        &["object_type", "fields"],
    )
}

fn suggestions_schema(object_type: &Value) -> Value {
    let candidate = object(
        json!({
            "property": {"type": "string"},
            "label": {"type": "string"},
            "score": {"type": "number", "description": "max(name_similarity, 0.85 × label_similarity)"},
            "name_similarity": {"type": "number"},
            "label_similarity": {"type": "number"},
            "type_compatible": {"type": "boolean"},
        }),
        &[
            "property",
            "score",
            "name_similarity",
            "label_similarity",
            "type_compatible",
        ],
    );
    object(
        json!({
            "object_type": object_type.clone(),
            "suggestions": {"type": "array", "items": object(json!({
                "field": {"type": "string"},
                "verdict": {"type": "string", "enum": ["auto_mapped", "suggested", "unmapped"]},
                "candidates": {"type": "array", "items": candidate},
                "transform": {"description": "The rule's transform for this field type"},
            }), &["field", "verdict", "candidates", "transform"])},
        }),
        &["object_type", "suggestions"],
    )
}

/// The document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for route in ROUTES {
        let entry = paths
            .entry(route.path.to_owned())
            .or_insert_with(|| json!({}));
        entry[route.method.to_ascii_lowercase()] = operation(route);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "hubsync admin API",
            "version": "1.0.0",
            "description": "The application's way into hubsync: install links, connections and sync progress, mapping configs, syncs, permanent deletes, disconnect. Every route is authorized with IAM (SigV4, `execute-api:Invoke`); the stack's managed policy `AdminApiAccessPolicy` grants it. Errors are `{\"error\": {\"code\", \"message\"}}`.",
        },
        "security": [{"sigv4": []}],
        "components": {
            "securitySchemes": {
                "sigv4": {
                    "type": "apiKey",
                    "name": "Authorization",
                    "in": "header",
                    "description": "AWS Signature Version 4 (service `execute-api`)",
                    "x-amazon-apigateway-authtype": "awsSigv4",
                },
            },
            "schemas": schemas(),
        },
        "paths": paths,
    })
}

/// The document as committed (pretty JSON, trailing newline).
pub fn document_text() -> String {
    let mut text = serde_json::to_string_pretty(&document()).unwrap_or_default();
    text.push('\n');
    text
}
