//! The committed OpenAPI document is the one the code generates, parses as
//! OpenAPI 3.1, lists every route and nothing else, and every route it
//! lists is answered by the router. `UPDATE_OPENAPI=1 cargo test -p
//! admin-api --test openapi` rewrites the committed copy.

use std::collections::BTreeSet;
use std::path::PathBuf;

use admin_api::openapi::{document, document_text};
use admin_api::routes::{route, Matched, ROUTES};
use serde_json::Value;

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/admin-api.openapi.json")
}

#[test]
fn the_committed_document_is_the_generated_one() {
    let generated = document_text();
    let path = committed_path();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).expect("write the document");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is stale: run `UPDATE_OPENAPI=1 cargo test -p admin-api --test openapi` and commit it",
        path.display()
    );
}

#[test]
fn the_document_is_valid_openapi_3_1_with_every_route() {
    let spec = oas3::from_json(document_text()).expect("the document parses as OpenAPI 3.1");
    assert!(spec.openapi.starts_with("3.1"), "{}", spec.openapi);
    let paths = spec.paths.as_ref().expect("paths");
    let mut documented = BTreeSet::new();
    for (path, item) in paths {
        for (method, op) in item.methods() {
            documented.insert((method.as_str().to_owned(), path.clone()));
            assert!(
                op.operation_id.is_some(),
                "{method} {path} has an operationId"
            );
        }
    }
    let routes: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.method.to_owned(), r.path.to_owned()))
        .collect();
    assert_eq!(documented, routes, "the document lists exactly the routes");
    assert!(routes.iter().all(|(_, p)| p.starts_with("/v1/")));
}

#[test]
fn every_documented_route_is_answered_by_the_router() {
    let doc = document();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let concrete = path
            .replace("{tenant}", "acme")
            .replace("{portal}", "42")
            .replace("{objectType}", "deals")
            .replace("{recordId}", "7")
            .replace("{runId}", "1-resync");
        for method in item.as_object().unwrap().keys() {
            let method = method.to_ascii_uppercase();
            match route(&method, &concrete) {
                Matched::Route(r, _) => {
                    assert_eq!((r.method, r.path), (method.as_str(), path.as_str()))
                }
                other => panic!("{method} {path}: {other:?}"),
            }
        }
    }
}

fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => refs(v, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[test]
fn every_reference_resolves() {
    let doc = document();
    let mut found = Vec::new();
    refs(&doc, &mut found);
    assert!(!found.is_empty());
    for r in found {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("{r} is not a schema reference"));
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "{r} does not resolve"
        );
    }
}
