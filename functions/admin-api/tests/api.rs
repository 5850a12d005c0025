//! The admin API's handler, route by route, against the HubSpot simulator
//! and the in-memory store: each happy path, each 4xx, and the caller
//! check. (The same handler behind the local runner, on moto, is driven by
//! `tests/tests/e2e/admin_api.rs`.)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use admin_api::{AdminApi, ApiConfig, ApiRequest, ApiResponse, CallerPolicy};
use hubspot_sim::{SeedSpec, SimConfig};
use hubsync_admin::connection::GrantRevoker;
use hubsync_auth::{CipherError, TokenCipher};
use hubsync_hubspot::{OAuthError, ObjectId, ObjectType, PortalId, StaticToken};
use hubsync_messages::MemoryJobQueue;
use hubsync_store::{
    ArchiveReason, Connection, ConnectionStatus, ConnectionStore, MemoryStore, RecordKey,
    RecordStore, RecordWrite, SyncJobKind,
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

const ROLE: &str = "arn:aws:iam::123456789012:role/AppBackend";
const CALLER: &str = "arn:aws:sts::123456789012:assumed-role/AppBackend/backend-1";
const TENANT: &str = "acme";

/// Tokens stored as they are.
struct Plain;

impl TokenCipher for Plain {
    async fn encrypt(&self, _: PortalId, t: &SecretString) -> Result<String, CipherError> {
        Ok(t.expose_secret().to_owned())
    }
    async fn decrypt(&self, _: PortalId, c: &str) -> Result<SecretString, CipherError> {
        Ok(SecretString::from(c.to_owned()))
    }
}

/// Counts revocations.
#[derive(Clone, Default)]
struct Revoker(Arc<AtomicUsize>);

impl GrantRevoker for Revoker {
    async fn revoke(&self, _: &SecretString) -> Result<(), OAuthError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

type Api = AdminApi<MemoryStore, StaticToken, MemoryJobQueue, Plain, Revoker>;

struct Setup {
    api: Api,
    portal: u64,
    jobs: MemoryJobQueue,
    revoked: Revoker,
    _sim: hubspot_sim::Simulator,
}

async fn setup() -> Setup {
    let config = SimConfig {
        initial_seed: SeedSpec {
            companies: 30,
            contacts: 40,
            deals: 20,
            ..SeedSpec::default()
        },
        ..SimConfig::default()
    };
    let sp = hubsync_local::reconcile::sim_portal(config).await.unwrap();
    let mut connection = Connection::active(PortalId(sp.portal), TENANT);
    connection.refresh_token_ciphertext = Some("refresh".into());
    connection.scopes = vec!["crm.objects.companies.read".into()];
    sp.store.put_connection(&connection).await.unwrap();
    let jobs = MemoryJobQueue::new();
    let revoked = Revoker::default();
    let config = ApiConfig::new(
        CallerPolicy::parse(ROLE).unwrap(),
        SecretString::from("link-secret".to_owned()),
        "https://hubsync.example.com".into(),
    );
    let api = AdminApi {
        config,
        store: sp.store.clone(),
        hubspot: hubsync_local::reconcile::sim_client(&sp.sim.base_url(), None).unwrap(),
        tokens: StaticToken::new(sp.token.clone()),
        jobs: jobs.clone(),
        cipher: Plain,
        revoker: revoked.clone(),
    };
    Setup {
        api,
        portal: sp.portal,
        jobs,
        revoked,
        _sim: sp.sim,
    }
}

impl Setup {
    async fn call_as(
        &self,
        caller: Option<&str>,
        method: &str,
        path: &str,
        body: &str,
    ) -> ApiResponse {
        let (path, query) = match path.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path, None),
        };
        self.api
            .handle(
                ApiRequest {
                    method,
                    path,
                    query,
                    body: body.as_bytes(),
                    caller,
                },
                chrono::Utc::now(),
            )
            .await
    }

    async fn call(&self, method: &str, path: &str, body: &str) -> ApiResponse {
        self.call_as(Some(CALLER), method, path, body).await
    }

    fn conn(&self, rest: &str) -> String {
        format!("/v1/tenants/{TENANT}/connections/{}{rest}", self.portal)
    }
}

fn body(r: &ApiResponse) -> &Value {
    r.body.as_ref().expect("a JSON body")
}

#[track_caller]
fn refused(r: &ApiResponse, status: u16, code: &str, says: &str) {
    assert_eq!(r.status, status, "{:?}", r.body);
    assert_eq!(r.error_code(), Some(code), "{:?}", r.body);
    let message = body(r)["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(says), "{message:?} should say {says:?}");
}

#[tokio::test]
async fn only_the_configured_role_may_call() {
    let s = setup().await;
    let path = format!("/v1/tenants/{TENANT}/connections");
    refused(
        &s.call_as(None, "GET", &path, "").await,
        401,
        "unauthenticated",
        "SigV4",
    );
    let other = "arn:aws:sts::123456789012:assumed-role/SomeoneElse/x";
    refused(
        &s.call_as(Some(other), "GET", &path, "").await,
        403,
        "forbidden",
        "may not",
    );
    assert_eq!(s.call("GET", &path, "").await.status, 200);
}

#[tokio::test]
async fn routes_and_inputs_are_checked_precisely() {
    let s = setup().await;
    refused(
        &s.call("GET", "/v1/nothing", "").await,
        404,
        "no_route",
        "/v1/nothing",
    );
    let r = s.call("PATCH", &s.conn(""), "").await;
    refused(&r, 405, "method_not_allowed", "GET, DELETE");
    assert_eq!(r.allow.as_deref(), Some("GET, DELETE"));
    refused(
        &s.call("GET", "/v1/tenants/a%20b/connections", "").await,
        400,
        "invalid_request",
        "tenant must be",
    );
    refused(
        &s.call("GET", &format!("/v1/tenants/{TENANT}/connections/0"), "")
            .await,
        400,
        "invalid_request",
        "portal must be a positive integer",
    );
    refused(
        &s.call("GET", &s.conn("/properties/tickets"), "").await,
        400,
        "invalid_request",
        "objectType must be companies, contacts or deals",
    );
    refused(
        &s.call("GET", &s.conn("/syncs?limit=0"), "").await,
        400,
        "invalid_request",
        "limit must be 1 to 50",
    );
    refused(
        &s.call("GET", &s.conn("/syncs?limit=5&limit=6"), "").await,
        400,
        "invalid_request",
        "given twice",
    );
    refused(
        &s.call("GET", &s.conn("?verbose=1"), "").await,
        400,
        "invalid_request",
        "takes no query parameter",
    );
    refused(
        &s.call("GET", &s.conn(""), "{}").await,
        400,
        "invalid_request",
        "takes no body",
    );
    refused(
        &s.call("POST", &s.conn("/syncs"), "{not json").await,
        400,
        "invalid_request",
        "the body is not valid",
    );
    refused(
        &s.call(
            "POST",
            &s.conn("/syncs"),
            r#"{"kind":"initial_sync","extra":1}"#,
        )
        .await,
        400,
        "invalid_request",
        "unknown field `extra`",
    );
    refused(
        &s.call("POST", &s.conn("/syncs"), r#"{"kind":"nightly"}"#)
            .await,
        400,
        "invalid_request",
        "initial_sync or resync",
    );
    let big = "x".repeat(300 * 1024);
    refused(
        &s.call("PUT", &s.conn("/mapping"), &big).await,
        413,
        "body_too_large",
        "exceeds",
    );
    refused(
        &s.call("PUT", &s.conn("/mapping"), r#"{"tickets": {}}"#)
            .await,
        400,
        "invalid_request",
        "not a mapping config",
    );
    refused(
        &s.call(
            "POST",
            &format!("/v1/tenants/{TENANT}/install-links"),
            r#"{"expires_in_secs": 5}"#,
        )
        .await,
        400,
        "invalid_request",
        "expires_in_secs must be 60 to 3600",
    );
    refused(
        &s.call("POST", &s.conn("/mapping/preview"), r#"{"sample": 101}"#)
            .await,
        400,
        "invalid_request",
        "sample must be 1 to 100",
    );
    assert!(s.jobs.is_empty(), "nothing was queued by refused requests");
}

#[tokio::test]
async fn another_tenants_portal_is_not_found_on_every_route() {
    let s = setup().await;
    let other = format!("/v1/tenants/globex/connections/{}", s.portal);
    for (method, rest, body) in [
        ("GET", "", ""),
        ("DELETE", "", ""),
        ("GET", "/mapping", ""),
        ("PUT", "/mapping", "{}"),
        ("POST", "/mapping/validate", "{}"),
        ("POST", "/mapping/preview", ""),
        ("GET", "/properties/deals", ""),
        ("POST", "/syncs", r#"{"kind":"resync"}"#),
        ("GET", "/syncs", ""),
        ("GET", "/syncs/1-resync", ""),
        ("DELETE", "/records/deals/1", ""),
        ("DELETE", "/records/deals", ""),
        ("GET", "/health", ""),
        ("POST", "/mapping/suggest", "{}"),
    ] {
        let r = s.call(method, &format!("{other}{rest}"), body).await;
        refused(&r, 404, "not_found", "tenant globex has no connection");
    }
    assert!(s.jobs.is_empty());
    assert_eq!(s.revoked.0.load(Ordering::SeqCst), 0);
    let listed = s.call("GET", "/v1/tenants/globex/connections", "").await;
    assert_eq!(body(&listed)["connections"], json!([]));
}

#[tokio::test]
async fn an_install_link_is_signed_for_the_tenant_and_expires() {
    let s = setup().await;
    let now = chrono::Utc::now().timestamp();
    let r = s
        .call(
            "POST",
            &format!("/v1/tenants/{TENANT}/install-links"),
            r#"{"expires_in_secs": 600}"#,
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let url = url::Url::parse(body(&r)["url"].as_str().unwrap()).unwrap();
    assert_eq!(url.path(), "/oauth/install");
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    let expires: i64 = q["expires"].parse().unwrap();
    assert!((now + 599..=now + 601).contains(&expires));
    let secret = SecretString::from("link-secret".to_owned());
    let verified = hubsync_admin::link::verify(
        &secret,
        hubsync_admin::link::Purpose::Install,
        q.get("tenant").map(String::as_str),
        q.get("expires").map(String::as_str),
        q.get("signature").map(String::as_str),
        now,
        3600,
    );
    assert_eq!(verified, Ok(TENANT.to_owned()));
    // No body: the default lifetime.
    let r = s
        .call("POST", &format!("/v1/tenants/{TENANT}/install-links"), "")
        .await;
    assert_eq!(r.status, 201);
}

#[tokio::test]
async fn connections_mapping_properties_and_preview() {
    let s = setup().await;
    let listed = s
        .call("GET", &format!("/v1/tenants/{TENANT}/connections"), "")
        .await;
    assert_eq!(listed.status, 200);
    let c = &body(&listed)["connections"][0];
    assert_eq!(c["portal_id"], json!(s.portal));
    assert_eq!(c["state"], "active");
    assert_eq!(c["scopes"], json!(["crm.objects.companies.read"]));
    assert_eq!(c["running_sync"], Value::Null);
    let one = s.call("GET", &s.conn(""), "").await;
    assert_eq!(body(&one), c);

    let mapping = s.call("GET", &s.conn("/mapping"), "").await;
    assert_eq!(mapping.status, 200);
    assert_eq!(body(&mapping)["default"], true);

    let props = s.call("GET", &s.conn("/properties/deals"), "").await;
    assert_eq!(props.status, 200);
    let names: Vec<&str> = body(&props)["properties"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(
        names.contains(&"dealname") && names.contains(&"amount"),
        "{names:?}"
    );

    // A config with a rule reading a property HubSpot does not have: 422,
    // every problem named, nothing saved.
    let mut config = hubsync_admin::mapping::MappingConfig::default();
    config
        .object_mut(ObjectType::Deals)
        .rules
        .push(hubsync_admin::mapping::Rule::new(
            "seats",
            &["no_such_property"],
            hubsync_admin::mapping::Transform::Integer,
        ));
    let bad = config.to_json_pretty();
    let r = s.call("POST", &s.conn("/mapping/validate"), &bad).await;
    refused(&r, 422, "mapping_rejected", "nothing was saved");
    let errors = body(&r)["error"]["errors"].as_array().unwrap();
    assert!(
        errors.iter().any(|e| e["message"]
            .as_str()
            .unwrap_or_default()
            .contains("no_such_property")),
        "{errors:?}"
    );
    refused(
        &s.call("PUT", &s.conn("/mapping"), &bad).await,
        422,
        "mapping_rejected",
        "",
    );
    assert_eq!(
        body(&s.call("GET", &s.conn("/mapping"), "").await)["default"],
        true
    );
    assert!(s.jobs.is_empty());

    // A good config: validates, previews on real records, saves and
    // re-syncs the changed type.
    let mut config = hubsync_admin::mapping::MappingConfig::default();
    config
        .object_mut(ObjectType::Deals)
        .rules
        .push(hubsync_admin::mapping::Rule::new(
            "deal_type",
            &["dealtype"],
            hubsync_admin::mapping::Transform::String,
        ));
    let good = config.to_json_pretty();
    let r = s.call("POST", &s.conn("/mapping/validate"), &good).await;
    assert_eq!(
        (r.status, &body(&r)["valid"]),
        (200, &json!(true)),
        "{:?}",
        r.body
    );
    let preview_body =
        json!({"config": config, "object_types": ["deals"], "sample": 5}).to_string();
    let r = s
        .call("POST", &s.conn("/mapping/preview"), &preview_body)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(body(&r)["types"][0]["object_type"], "deals");
    assert_eq!(body(&r)["types"][0]["records"].as_array().unwrap().len(), 5);
    assert!(s.jobs.is_empty(), "a preview queues nothing");
    let r = s.call("PUT", &s.conn("/mapping"), &good).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(body(&r)["saved"]["revision"], 1);
    assert_eq!(body(&r)["saved"]["changed_types"], json!(["deals"]));
    assert_eq!(body(&r)["resync"]["object_types"], json!(["deals"]));
    let job = s.jobs.pop().expect("the re-sync of deals");
    assert_eq!(
        (job.job.kind, job.types()),
        (SyncJobKind::Resync, vec![ObjectType::Deals])
    );
    let r = s.call("PUT", &s.conn("/mapping?resync=none"), &good).await;
    assert_eq!((r.status, &body(&r)["resync"]), (200, &Value::Null));
    assert!(s.jobs.is_empty());
    refused(
        &s.call("PUT", &s.conn("/mapping?resync=all"), &good).await,
        400,
        "invalid_request",
        "resync must be one of changed, none",
    );
}

#[tokio::test]
async fn syncs_are_started_and_reported() {
    let s = setup().await;
    let r = s
        .call(
            "POST",
            &s.conn("/syncs"),
            r#"{"kind":"initial_sync","object_types":["contacts"]}"#,
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    let run_id = body(&r)["run_id"].as_str().unwrap().to_owned();
    assert!(run_id.ends_with("-initial"), "{run_id}");
    let job = s.jobs.pop().unwrap();
    assert_eq!(job.run_id.as_deref(), Some(run_id.as_str()));
    assert_eq!(job.types(), vec![ObjectType::Contacts]);
    assert_eq!(
        body(&s.call("GET", &s.conn("/syncs"), "").await)["runs"],
        json!([])
    );
    refused(
        &s.call("GET", &s.conn(&format!("/syncs/{run_id}")), "")
            .await,
        404,
        "not_found",
        "has no run",
    );

    // An inactive connection refuses a sync (409) and HubSpot reads.
    s.api
        .store
        .set_connection_status(
            PortalId(s.portal),
            ConnectionStatus::NeedsReauth,
            Some("invalid_grant"),
        )
        .await
        .unwrap();
    refused(
        &s.call("POST", &s.conn("/syncs"), r#"{"kind":"resync"}"#)
            .await,
        409,
        "conflict",
        "needs_reauth",
    );
    refused(
        &s.call("GET", &s.conn("/properties/deals"), "").await,
        409,
        "conflict",
        "reconnected",
    );
    assert!(s.jobs.is_empty());
    let c = s.call("GET", &s.conn(""), "").await;
    assert_eq!(
        (
            body(&c)["state"].as_str(),
            body(&c)["state_reason"].as_str()
        ),
        (Some("needs_reauth"), Some("invalid_grant"))
    );
}

#[tokio::test]
async fn archived_records_are_deleted_and_active_ones_refused() {
    let s = setup().await;
    let portal = PortalId(s.portal);
    let key = |id| RecordKey::new(portal, ObjectType::Deals, ObjectId(id));
    for id in 1..=6u64 {
        let w = RecordWrite::from_fields(key(id), 10, "h", &json!({"name": "d"})).unwrap();
        s.api.store.upsert_record(&w).await.unwrap();
        if id <= 4 {
            let reason = if id % 2 == 0 {
                ArchiveReason::OutOfScope
            } else {
                ArchiveReason::Deleted
            };
            s.api
                .store
                .archive_record(&key(id), 20, reason, None)
                .await
                .unwrap();
        }
    }
    refused(
        &s.call("DELETE", &s.conn("/records/deals/5"), "").await,
        409,
        "conflict",
        "is active",
    );
    assert_eq!(
        s.call("DELETE", &s.conn("/records/deals/1"), "")
            .await
            .status,
        204
    );
    refused(
        &s.call("DELETE", &s.conn("/records/deals/1"), "").await,
        404,
        "not_found",
        "no deals record 1",
    );
    let r = s
        .call(
            "DELETE",
            &s.conn("/records/deals?archived_reason=out_of_scope"),
            "",
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        (body(&r)["deleted"].as_u64(), body(&r)["complete"].as_bool()),
        (Some(2), Some(true))
    );
    let r = s.call("DELETE", &s.conn("/records/deals"), "").await;
    assert_eq!(
        (body(&r)["deleted"].as_u64(), body(&r)["active"].as_u64()),
        (Some(1), Some(2))
    );
    for id in 5..=6 {
        assert!(
            s.api.store.get_record(&key(id)).await.unwrap().is_some(),
            "active {id} kept"
        );
    }
    refused(
        &s.call(
            "DELETE",
            &s.conn("/records/deals?archived_reason=deleted"),
            "",
        )
        .await,
        400,
        "invalid_request",
        "archived_reason must be one of out_of_scope",
    );
}

#[tokio::test]
async fn disconnect_revokes_deletes_tokens_and_keeps_the_connection_record() {
    let s = setup().await;
    let r = s.call("DELETE", &s.conn(""), "").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(body(&r)["previous_state"], "active");
    assert_eq!(body(&r)["revoked_at_hubspot"], true);
    assert_eq!(s.revoked.0.load(Ordering::SeqCst), 1);
    let c = s
        .api
        .store
        .get_connection(PortalId(s.portal))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.status, ConnectionStatus::Disconnected);
    assert_eq!(c.refresh_token_ciphertext, None);
    let again = s.call("DELETE", &s.conn(""), "").await;
    assert_eq!(
        (again.status, &body(&again)["previous_state"]),
        (200, &json!("disconnected"))
    );
    assert_eq!(
        s.revoked.0.load(Ordering::SeqCst),
        1,
        "no token left to revoke"
    );
}

#[tokio::test]
async fn mapping_suggestions_for_twenty_application_fields() {
    let s = setup().await;
    // (name, label, type, expected verdict, expected first candidate)
    let table: [(&str, &str, &str, &str, Option<&str>); 20] = [
        // Exact names: auto-mapped.
        ("email", "Email", "email", "auto_mapped", Some("email")),
        (
            "firstname",
            "First name",
            "string",
            "auto_mapped",
            Some("firstname"),
        ),
        (
            "lastname",
            "Last name",
            "string",
            "auto_mapped",
            Some("lastname"),
        ),
        (
            "jobtitle",
            "Job title",
            "string",
            "auto_mapped",
            Some("jobtitle"),
        ),
        ("phone", "Phone", "string", "auto_mapped", Some("phone")),
        (
            "lifecyclestage",
            "Stage",
            "enumeration",
            "auto_mapped",
            Some("lifecyclestage"),
        ),
        (
            "createdate",
            "Created",
            "datetime",
            "auto_mapped",
            Some("createdate"),
        ),
        (
            "lead_status",
            "Lead status",
            "enumeration",
            "auto_mapped",
            Some("hs_lead_status"),
        ),
        // Labels: suggested, the right property first.
        (
            "given_name",
            "First Name",
            "string",
            "suggested",
            Some("firstname"),
        ),
        (
            "surname",
            "Last Name",
            "string",
            "suggested",
            Some("lastname"),
        ),
        (
            "organisation",
            "Company Name",
            "string",
            "suggested",
            Some("company"),
        ),
        (
            "title",
            "Job Title",
            "string",
            "suggested",
            Some("jobtitle"),
        ),
        (
            "last_seen",
            "Last Activity Date",
            "datetime",
            "suggested",
            Some("notes_last_updated"),
        ),
        (
            "mobile",
            "Phone Number",
            "string",
            "suggested",
            Some("phone"),
        ),
        (
            "stage",
            "Lifecycle Stage",
            "enumeration",
            "suggested",
            Some("lifecyclestage"),
        ),
        (
            "account_manager",
            "Owner",
            "owner",
            "suggested",
            Some("hubspot_owner_id"),
        ),
        // Nonsense: unmapped.
        (
            "favourite_colour",
            "Favourite colour",
            "string",
            "unmapped",
            None,
        ),
        ("shoe_size", "Shoe size", "integer", "unmapped", None),
        (
            "zzz_internal_flag",
            "Internal flag",
            "boolean",
            "unmapped",
            None,
        ),
        ("nps_score", "NPS score", "decimal", "unmapped", None),
    ];
    let fields: Vec<Value> = table
        .iter()
        .map(|(n, l, t, _, _)| json!({"name": n, "label": l, "type": t}))
        .collect();
    let r = s
        .call(
            "POST",
            &s.conn("/mapping/suggest"),
            &json!({"object_type": "contacts", "fields": fields}).to_string(),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let got = body(&r)["suggestions"].as_array().unwrap().clone();
    for ((name, _, _, verdict, first), s) in table.iter().zip(&got) {
        assert_eq!(s["field"], *name);
        assert_eq!(s["verdict"], *verdict, "{name}: {s}");
        assert_eq!(
            s["candidates"][0]["property"].as_str(),
            *first,
            "{name}: {s}"
        );
        if *verdict != "unmapped" {
            let c = &s["candidates"][0];
            assert_eq!(c["type_compatible"], true);
            assert!(c["score"].as_f64().unwrap() >= 0.5, "{name}: {c}");
        }
    }
    // Deterministic: the same answer twice.
    let again = s
        .call(
            "POST",
            &s.conn("/mapping/suggest"),
            &json!({"object_type": "contacts", "fields": fields}).to_string(),
        )
        .await;
    assert_eq!(body(&again)["suggestions"], Value::Array(got));
    refused(
        &s.call(
            "POST",
            &s.conn("/mapping/suggest"),
            r#"{"object_type":"contacts","fields":[]}"#,
        )
        .await,
        400,
        "invalid_request",
        "fields must list 1 to 200 fields",
    );
    refused(
        &s.call(
            "POST",
            &s.conn("/mapping/suggest"),
            r#"{"object_type":"contacts","fields":[{"name":"x","type":"colour"}]}"#,
        )
        .await,
        400,
        "invalid_request",
        "unknown variant `colour`",
    );
}
