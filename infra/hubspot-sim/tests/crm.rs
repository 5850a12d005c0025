//! CRM v3 objects, search, properties, owners, associations, rate limits.

mod common;

use std::collections::HashSet;

use common::{client, start, PORTAL};
use hubspot_sim::{props, ObjectType, SeedSpec, Simulator};
use serde_json::{json, Value};

struct Api {
    base: String,
    token: String,
}

impl Api {
    fn new(sim: &Simulator, portal: u64) -> Api {
        Api {
            base: sim.base_url(),
            token: sim.issue_token(portal).unwrap().access_token,
        }
    }
    async fn get(&self, path: &str) -> reqwest::Response {
        client()
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
    }
    async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        client()
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .unwrap()
    }
}

async fn body(r: reqwest::Response) -> (u16, Value) {
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn sim_no_limits(seed: SeedSpec) -> Simulator {
    let sim = start(|c| c.rate_limit.enabled = false).await;
    sim.state().seed_portal(PORTAL, seed).unwrap();
    sim
}

#[tokio::test]
async fn list_pagination_covers_every_record_exactly_once() {
    let sim = sim_no_limits(SeedSpec {
        companies: 1234,
        ..Default::default()
    })
    .await;
    let api = Api::new(&sim, PORTAL);
    let mut seen = HashSet::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    let mut last_id = 0u64;
    loop {
        let path = match &after {
            Some(a) => {
                format!("/crm/v3/objects/companies?limit=100&after={a}&properties=name,domain")
            }
            None => "/crm/v3/objects/companies?limit=100&properties=name,domain".to_string(),
        };
        let (s, b) = body(api.get(&path).await).await;
        assert_eq!(s, 200, "{b}");
        pages += 1;
        for r in b["results"].as_array().unwrap() {
            let id: u64 = r["id"].as_str().unwrap().parse().unwrap();
            assert!(id > last_id, "ordered by id ascending");
            last_id = id;
            assert!(seen.insert(id), "duplicate {id}");
            assert!(r["properties"]["name"].is_string());
            assert_eq!(r["properties"]["hs_object_id"], r["id"]);
        }
        match b["paging"]["next"]["after"].as_str() {
            Some(a) => {
                let link = b["paging"]["next"]["link"].as_str().unwrap();
                assert!(link.contains(&format!("after={a}")), "{link}");
                after = Some(a.to_string());
            }
            None => break,
        }
    }
    assert_eq!(seen.len(), 1234);
    assert_eq!(pages, 13);
    let ids: HashSet<u64> = sim
        .state()
        .object_ids(PORTAL, ObjectType::Companies, false)
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(ids, seen);
    sim.shutdown().await;
}

#[tokio::test]
async fn list_limits_defaults_and_property_selection() {
    let sim = sim_no_limits(SeedSpec {
        companies: 30,
        contacts: 30,
        deals: 30,
        ..Default::default()
    })
    .await;
    let api = Api::new(&sim, PORTAL);
    let (s, b) = body(api.get("/crm/v3/objects/companies?limit=101").await).await;
    assert_eq!(s, 400);
    assert_eq!(b["category"], "VALIDATION_ERROR");
    assert_eq!(b["status"], "error");
    assert_eq!(
        body(api.get("/crm/v3/objects/companies?limit=abc").await)
            .await
            .0,
        400
    );
    assert_eq!(
        body(api.get("/crm/v3/objects/companies?after=x").await)
            .await
            .0,
        400
    );

    let (s, b) = body(api.get("/crm/v3/objects/companies").await).await;
    assert_eq!(s, 200);
    let results = b["results"].as_array().unwrap();
    assert_eq!(results.len(), 10);
    let keys: Vec<&String> = results[0]["properties"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(
        keys,
        [
            "createdate",
            "domain",
            "hs_lastmodifieddate",
            "hs_object_id",
            "name"
        ]
    );
    let r0 = &results[0];
    assert_eq!(r0["properties"]["hs_object_id"], r0["id"]);
    assert_eq!(r0["archived"], false);
    assert!(r0.get("archivedAt").is_none());
    for k in ["createdAt", "updatedAt"] {
        let ts = r0[k].as_str().unwrap();
        assert_eq!(ts.len(), 24, "{ts}");
        assert!(ts.ends_with('Z') && ts.as_bytes()[19] == b'.', "{ts}");
    }
    assert_eq!(r0["properties"]["createdate"], r0["createdAt"]);

    // Repeatable + comma-separated, unknown omitted, defined-but-empty = null.
    let (_, b) = body(
        api.get("/crm/v3/objects/deals?properties=amount,nope&properties=description&limit=1")
            .await,
    )
    .await;
    let p = b["results"][0]["properties"].as_object().unwrap();
    assert!(p.contains_key("amount"));
    assert!(!p.contains_key("nope"));
    assert_eq!(p["description"], Value::Null);
    for v in p.values() {
        assert!(v.is_string() || v.is_null());
    }
    let (_, b) = body(api.get("/crm/v3/objects/contacts?limit=1").await).await;
    assert!(b["results"][0]["properties"]
        .get("lastmodifieddate")
        .is_some());

    // Unknown object type.
    let (s, b) = body(api.get("/crm/v3/objects/widgets").await).await;
    assert_eq!(s, 400, "{b}");
    sim.shutdown().await;
}

#[tokio::test]
async fn single_get_and_404() {
    let sim = sim_no_limits(SeedSpec::default()).await;
    let id = sim
        .state()
        .create_object(
            PORTAL,
            ObjectType::Contacts,
            props([("email", "a@b.test"), ("firstname", "Ann")]),
        )
        .unwrap();
    let api = Api::new(&sim, PORTAL);
    let (s, b) = body(
        api.get(&format!("/crm/v3/objects/contacts/{id}?properties=email"))
            .await,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(b["id"], id.to_string());
    assert_eq!(b["properties"]["email"], "a@b.test");
    let (s, b) = body(
        api.get("/crm/v3/objects/contacts/a@b.test?idProperty=email")
            .await,
    )
    .await;
    assert_eq!((s, b["id"].as_str()), (200, Some(id.to_string().as_str())));
    let (s, b) = body(api.get("/crm/v3/objects/contacts/999").await).await;
    assert_eq!(s, 404);
    assert_eq!(b["category"], "OBJECT_NOT_FOUND");
    assert!(b["correlationId"].is_string());
    sim.shutdown().await;
}

#[tokio::test]
async fn batch_read_limits_missing_ids_and_bad_json() {
    let sim = sim_no_limits(SeedSpec {
        companies: 120,
        ..Default::default()
    })
    .await;
    let api = Api::new(&sim, PORTAL);
    let ids = sim
        .state()
        .object_ids(PORTAL, ObjectType::Companies, false)
        .unwrap();
    let inputs = |n: usize| -> Vec<Value> {
        ids.iter()
            .take(n)
            .map(|i| json!({"id": i.to_string()}))
            .collect()
    };

    let (s, b) = body(
        api.post(
            "/crm/v3/objects/companies/batch/read",
            &json!({"inputs": inputs(101), "properties": ["name"]}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(b["category"], "VALIDATION_ERROR");

    let (s, b) = body(
        api.post(
            "/crm/v3/objects/companies/batch/read?archived=false",
            &json!({"inputs": inputs(100), "properties": ["name", "industry"]}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(b["status"], "COMPLETE");
    assert_eq!(b["results"].as_array().unwrap().len(), 100);
    assert!(b["startedAt"].is_string() && b["completedAt"].is_string());
    assert!(b["results"][0]["properties"]["industry"].is_string());

    let mut inp = inputs(3);
    inp.push(json!({"id": "77"}));
    inp.push(json!({"id": "88"}));
    let (s, b) = body(
        api.post(
            "/crm/v3/objects/companies/batch/read",
            &json!({"inputs": inp, "properties": ["name"]}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 207);
    assert_eq!(b["results"].as_array().unwrap().len(), 3);
    assert_eq!(b["numErrors"], 1);
    let e = &b["errors"][0];
    assert_eq!(e["status"], "error");
    assert_eq!(e["category"], "OBJECT_NOT_FOUND");
    assert_eq!(
        e["message"],
        "Could not get some COMPANY objects, they may be deleted or not exist. Check that ids are valid."
    );
    assert_eq!(e["context"]["ids"], json!(["77", "88"]));

    let r = client()
        .post(format!("{}/crm/v3/objects/companies/batch/read", api.base))
        .bearer_auth(&api.token)
        .header("content-type", "application/json")
        .body("{\"inputs\": [")
        .send()
        .await
        .unwrap();
    let (s, b) = body(r).await;
    assert_eq!(s, 400);
    assert_eq!(b["category"], "VALIDATION_ERROR");
    sim.shutdown().await;
}

#[tokio::test]
async fn delete_then_restore_moves_between_listings() {
    let sim = sim_no_limits(SeedSpec {
        deals: 5,
        ..Default::default()
    })
    .await;
    let api = Api::new(&sim, PORTAL);
    let id = sim
        .state()
        .object_ids(PORTAL, ObjectType::Deals, false)
        .unwrap()[2];
    let before = sim
        .state()
        .get_object(PORTAL, ObjectType::Deals, id)
        .unwrap()
        .unwrap();
    sim.state()
        .delete_object(PORTAL, ObjectType::Deals, id)
        .unwrap();
    let (_, live) = body(api.get("/crm/v3/objects/deals?limit=100").await).await;
    assert_eq!(live["results"].as_array().unwrap().len(), 4);
    let (_, bin) = body(
        api.get("/crm/v3/objects/deals?archived=true&properties=dealname")
            .await,
    )
    .await;
    let bin = bin["results"].as_array().unwrap();
    assert_eq!(bin.len(), 1);
    assert_eq!(bin[0]["id"], id.to_string());
    assert_eq!(bin[0]["archived"], true);
    assert!(bin[0]["archivedAt"].is_string());
    assert_eq!(
        bin[0]["properties"]["dealname"],
        before.properties["dealname"].clone().unwrap()
    );
    assert_eq!(
        body(api.get(&format!("/crm/v3/objects/deals/{id}")).await)
            .await
            .0,
        404
    );
    assert_eq!(
        body(
            api.get(&format!("/crm/v3/objects/deals/{id}?archived=true"))
                .await
        )
        .await
        .0,
        200
    );
    let (s, _) = body(
        api.post(
            "/crm/v3/objects/deals/batch/read?archived=true",
            &json!({"inputs": [{"id": id.to_string()}]}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 200);

    sim.state()
        .restore_object(PORTAL, ObjectType::Deals, id)
        .unwrap();
    let (_, live) = body(api.get("/crm/v3/objects/deals?limit=100").await).await;
    assert_eq!(live["results"].as_array().unwrap().len(), 5);
    let (_, bin) = body(api.get("/crm/v3/objects/deals?archived=true").await).await;
    assert_eq!(bin["results"].as_array().unwrap().len(), 0);
    let after = sim
        .state()
        .get_object(PORTAL, ObjectType::Deals, id)
        .unwrap()
        .unwrap();
    assert!(after.updated_at > before.updated_at);
    sim.shutdown().await;
}

#[tokio::test]
async fn modification_timestamps_strictly_advance() {
    let sim = sim_no_limits(SeedSpec::default()).await;
    let st = sim.state();
    let id = st
        .create_object(PORTAL, ObjectType::Companies, props([("name", "A")]))
        .unwrap();
    let mut last = st
        .get_object(PORTAL, ObjectType::Companies, id)
        .unwrap()
        .unwrap()
        .properties["hs_lastmodifieddate"]
        .clone()
        .unwrap();
    for i in 0..20 {
        st.update_object(
            PORTAL,
            ObjectType::Companies,
            id,
            props([("name", format!("A{i}"))]),
        )
        .unwrap();
        let now = st
            .get_object(PORTAL, ObjectType::Companies, id)
            .unwrap()
            .unwrap()
            .properties["hs_lastmodifieddate"]
            .clone()
            .unwrap();
        assert!(now > last, "{now} > {last}");
        last = now;
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn search_filters_sorts_pages_and_caps() {
    let sim = sim_no_limits(SeedSpec {
        contacts: 300,
        companies: 50,
        ..Default::default()
    })
    .await;
    let api = Api::new(&sim, PORTAL);
    let st = sim.state();
    let ids = st.object_ids(PORTAL, ObjectType::Contacts, false).unwrap();
    let cutoff = st.now_ms();
    for id in ids.iter().take(25) {
        st.update_object(
            PORTAL,
            ObjectType::Contacts,
            *id,
            props([("jobtitle", "Changed")]),
        )
        .unwrap();
    }
    let req = |after: Option<&str>| {
        json!({
            "filterGroups": [{"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": cutoff.to_string()}]}],
            "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}, {"propertyName": "hs_object_id", "direction": "ASCENDING"}],
            "properties": ["email", "jobtitle"],
            "limit": 10,
            "after": after,
        })
    };
    let mut got = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let r = api
            .post("/crm/v3/objects/contacts/search", &req(after.as_deref()))
            .await;
        assert!(
            r.headers().get("x-hubspot-ratelimit-max").is_none(),
            "no rate-limit headers on search"
        );
        let (s, b) = body(r).await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["total"], 25);
        for r in b["results"].as_array().unwrap() {
            assert_eq!(r["properties"]["jobtitle"], "Changed");
            assert!(r["properties"]["hs_object_id"].is_string());
            assert!(r["properties"]["lastmodifieddate"].is_string());
            got.push(r["id"].as_str().unwrap().parse::<u64>().unwrap());
        }
        match b["paging"]["next"]["after"].as_str() {
            Some(a) => after = Some(a.to_string()),
            None => break,
        }
    }
    assert_eq!(
        got,
        ids[..25].to_vec(),
        "modification order == update order"
    );

    // ISO values, EQ on hs_object_id, LT, string sorts, descending.
    let iso = hubspot_sim::clock::iso_ms(cutoff);
    let (s, b) = body(api.post("/crm/v3/objects/contacts/search", &json!({"filterGroups": [{"filters": [{"propertyName": "lastmodifieddate", "operator": "LT", "value": iso}]}], "limit": 0})).await).await;
    assert_eq!((s, b["total"].as_u64()), (200, Some(275)));
    let (_, b) = body(api.post("/crm/v3/objects/contacts/search", &json!({"filterGroups": [{"filters": [{"propertyName": "hs_object_id", "operator": "EQ", "value": ids[7]}]}]})).await).await;
    assert_eq!(b["total"], 1);
    let (_, b) = body(api.post("/crm/v3/objects/companies/search", &json!({"sorts": ["-hs_object_id"], "limit": 3, "filterGroups": [{"filters": [{"propertyName": "hs_lastmodifieddate", "operator": "GT", "value": "0"}]}]})).await).await;
    let first: u64 = b["results"][0]["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        first,
        *st.object_ids(PORTAL, ObjectType::Companies, false)
            .unwrap()
            .last()
            .unwrap()
    );
    assert_eq!(b["total"], 50);

    // Limits.
    let (s, b) = body(
        api.post("/crm/v3/objects/contacts/search", &json!({"limit": 201}))
            .await,
    )
    .await;
    assert_eq!((s, b["category"].as_str()), (400, Some("VALIDATION_ERROR")));
    let (s, b) = body(
        api.post(
            "/crm/v3/objects/contacts/search",
            &json!({"limit": 100, "after": "10000"}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(b["category"], "VALIDATION_ERROR");
    assert!(b["correlationId"].is_string());
    let (s, _) = body(
        api.post(
            "/crm/v3/objects/contacts/search",
            &json!({"limit": 100, "after": "9900"}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = body(api.post("/crm/v3/objects/contacts/search", &json!({"filterGroups": [{"filters": [{"propertyName": "email", "operator": "FOO", "value": "x"}]}]})).await).await;
    assert_eq!(s, 400);
    sim.shutdown().await;
}

#[tokio::test]
async fn search_has_its_own_secondly_limit() {
    let sim = start(|_| {}).await;
    let api = Api::new(&sim, PORTAL);
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let r = api
            .post("/crm/v3/objects/companies/search", &json!({}))
            .await;
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            assert!(r.headers().get("retry-after").is_some());
            assert!(r.headers().get("x-hubspot-ratelimit-max").is_none());
            let b: Value = r.json().await.unwrap();
            assert_eq!(b["policyName"], "SECONDLY");
            assert_eq!(b["errorType"], "RATE_LIMIT");
        }
    }
    // Five fit in one second; the sixth (if still within the second) is limited.
    assert_eq!(&statuses[..5], &[200; 5]);
    // Non-search calls are unaffected.
    assert_eq!(api.get("/crm/v3/objects/companies").await.status(), 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn the_111th_request_in_ten_seconds_is_rate_limited_per_portal() {
    let sim = start(|_| {}).await;
    let a = Api::new(&sim, PORTAL);
    let b = Api::new(&sim, PORTAL + 1);
    let started = std::time::Instant::now();
    for i in 0..110u32 {
        let r = a.get("/crm/v3/objects/companies?limit=1").await;
        assert_eq!(r.status(), 200, "request {i}");
        let h = r.headers();
        assert_eq!(h["x-hubspot-ratelimit-max"], "110");
        assert_eq!(h["x-hubspot-ratelimit-interval-milliseconds"], "10000");
        assert_eq!(
            h["x-hubspot-ratelimit-remaining"].to_str().unwrap(),
            (109 - i).to_string()
        );
    }
    let r = a.get("/crm/v3/objects/companies?limit=1").await;
    assert!(
        started.elapsed().as_secs() < 10,
        "test must run inside one window"
    );
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=10).contains(&retry));
    assert_eq!(r.headers()["x-hubspot-ratelimit-remaining"], "0");
    assert_eq!(r.headers()["x-hubspot-ratelimit-max"], "110");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "error");
    assert_eq!(
        body["message"],
        "You have reached your ten_secondly_rolling limit."
    );
    assert_eq!(body["errorType"], "RATE_LIMIT");
    assert_eq!(body["policyName"], "TEN_SECONDLY_ROLLING");
    assert!(body["correlationId"].is_string());
    // Another portal is unaffected.
    assert_eq!(
        b.get("/crm/v3/objects/companies?limit=1").await.status(),
        200
    );
    let c = sim.state().counters();
    assert_eq!(c.rate_limited["TEN_SECONDLY_ROLLING"], 1);
    assert_eq!(c.rate_limited_by_portal[&PORTAL], 1);
    assert_eq!(c.portal_requests(PORTAL, "GET /crm/v3/objects/{type}"), 111);
    sim.shutdown().await;
}

#[tokio::test]
async fn forced_429s_injected_errors_and_latency() {
    let sim = start(|c| c.rate_limit.enabled = false).await;
    let api = Api::new(&sim, PORTAL);
    sim.state()
        .update_faults(PORTAL, |f| f.force_429_next = 2)
        .unwrap();
    assert_eq!(api.get("/crm/v3/objects/deals").await.status(), 429);
    assert_eq!(api.get("/crm/v3/objects/deals").await.status(), 429);
    assert_eq!(api.get("/crm/v3/objects/deals").await.status(), 200);
    sim.state()
        .update_faults(PORTAL, |f| {
            f.api_error_rate = 1.0;
            f.api_error_status = 503;
        })
        .unwrap();
    assert_eq!(api.get("/crm/v3/objects/deals").await.status(), 503);
    sim.state()
        .update_faults(PORTAL, |f| {
            f.api_error_rate = 0.0;
            f.api_latency_ms = 150;
        })
        .unwrap();
    let t = std::time::Instant::now();
    assert_eq!(api.get("/crm/v3/objects/deals").await.status(), 200);
    assert!(t.elapsed().as_millis() >= 150);
    let c = sim.state().counters();
    assert_eq!(c.injected_429, 2);
    assert_eq!(c.injected_errors, 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn properties_owners_and_custom_property_drift() {
    let sim = sim_no_limits(SeedSpec {
        companies: 5,
        ..Default::default()
    })
    .await;
    let api = Api::new(&sim, PORTAL);
    let (s, b) = body(api.get("/crm/v3/properties/deals").await).await;
    assert_eq!(s, 200);
    let res = b["results"].as_array().unwrap();
    let stage = res.iter().find(|p| p["name"] == "dealstage").unwrap();
    assert_eq!(stage["type"], "enumeration");
    assert!(stage["options"]
        .as_array()
        .unwrap()
        .iter()
        .any(|o| o["value"] == "closedwon"));
    for k in [
        "label",
        "fieldType",
        "groupName",
        "hidden",
        "calculated",
        "hasUniqueValue",
        "modificationMetadata",
    ] {
        assert!(stage.get(k).is_some(), "{k}");
    }
    sim.state()
        .create_property(
            PORTAL,
            ObjectType::Companies,
            hubspot_sim::PropertyDef {
                name: "tier".into(),
                label: "Tier".into(),
                ..Default::default()
            },
        )
        .unwrap();
    let (_, b) = body(api.get("/crm/v3/properties/companies").await).await;
    assert!(b["results"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "tier"));
    let id = sim
        .state()
        .object_ids(PORTAL, ObjectType::Companies, false)
        .unwrap()[0];
    sim.state()
        .update_object(PORTAL, ObjectType::Companies, id, props([("tier", "gold")]))
        .unwrap();
    let (_, b) = body(
        api.get(&format!("/crm/v3/objects/companies/{id}?properties=tier"))
            .await,
    )
    .await;
    assert_eq!(b["properties"]["tier"], "gold");
    assert!(sim
        .state()
        .delete_property(PORTAL, ObjectType::Companies, "tier")
        .unwrap());
    let (_, b) = body(
        api.get(&format!("/crm/v3/objects/companies/{id}?properties=tier"))
            .await,
    )
    .await;
    assert!(b["properties"].get("tier").is_none());

    let (s, b) = body(api.get("/crm/v3/owners?limit=15").await).await;
    assert_eq!(s, 200);
    assert_eq!(b["results"].as_array().unwrap().len(), 15);
    let o = &b["results"][0];
    for k in [
        "id",
        "email",
        "firstName",
        "lastName",
        "userId",
        "createdAt",
        "updatedAt",
        "archived",
    ] {
        assert!(o.get(k).is_some(), "{k}");
    }
    let after = b["paging"]["next"]["after"].as_str().unwrap().to_string();
    let (_, b2) = body(
        api.get(&format!("/crm/v3/owners?limit=15&after={after}"))
            .await,
    )
    .await;
    assert_eq!(b2["results"].as_array().unwrap().len(), 5);
    assert!(b2.get("paging").is_none());
    let email = o["email"].as_str().unwrap();
    let (_, b3) = body(api.get(&format!("/crm/v3/owners?email={email}")).await).await;
    assert_eq!(b3["results"].as_array().unwrap().len(), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn associations_v4_batch_read_uses_hubspot_type_ids() {
    let sim = sim_no_limits(SeedSpec::default()).await;
    let st = sim.state();
    let co = st
        .create_object(PORTAL, ObjectType::Companies, props([("name", "Co")]))
        .unwrap();
    let co2 = st
        .create_object(PORTAL, ObjectType::Companies, props([("name", "Co2")]))
        .unwrap();
    let ct = st
        .create_object(PORTAL, ObjectType::Contacts, props([("email", "x@y.test")]))
        .unwrap();
    let lonely = st
        .create_object(PORTAL, ObjectType::Contacts, props([("email", "l@y.test")]))
        .unwrap();
    let deal = st
        .create_object(PORTAL, ObjectType::Deals, props([("dealname", "D")]))
        .unwrap();
    st.associate(
        PORTAL,
        ObjectType::Contacts,
        ct,
        ObjectType::Companies,
        co,
        true,
    )
    .unwrap();
    st.associate(
        PORTAL,
        ObjectType::Contacts,
        ct,
        ObjectType::Companies,
        co2,
        false,
    )
    .unwrap();
    st.associate(
        PORTAL,
        ObjectType::Deals,
        deal,
        ObjectType::Companies,
        co,
        true,
    )
    .unwrap();
    st.associate(
        PORTAL,
        ObjectType::Deals,
        deal,
        ObjectType::Contacts,
        ct,
        false,
    )
    .unwrap();
    let api = Api::new(&sim, PORTAL);

    let (s, b) = body(
        api.post(
            "/crm/v4/associations/contacts/companies/batch/read",
            &json!({"inputs": [{"id": ct.to_string()}, {"id": lonely.to_string()}]}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 207, "{b}");
    let to = b["results"][0]["to"].as_array().unwrap();
    assert_eq!(b["results"][0]["from"]["id"], ct.to_string());
    let prim = to.iter().find(|t| t["toObjectId"] == co).unwrap();
    let ids: Vec<u64> = prim["associationTypes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["typeId"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [1, 279]);
    assert_eq!(prim["associationTypes"][0]["category"], "HUBSPOT_DEFINED");
    let other = to.iter().find(|t| t["toObjectId"] == co2).unwrap();
    assert_eq!(other["associationTypes"].as_array().unwrap().len(), 1);
    assert_eq!(other["associationTypes"][0]["typeId"], 279);
    assert_eq!(b["errors"].as_array().unwrap().len(), 1);

    let check = |from: &'static str, to: &'static str, id: u64, want: Vec<u64>| {
        let api = &api;
        async move {
            let (s, b) = body(
                api.post(
                    &format!("/crm/v4/associations/{from}/{to}/batch/read"),
                    &json!({"inputs": [{"id": id.to_string()}]}),
                )
                .await,
            )
            .await;
            assert_eq!(s, 200, "{from}->{to}: {b}");
            let mut got: Vec<u64> = b["results"][0]["to"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|t| {
                    t["associationTypes"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|x| x["typeId"].as_u64().unwrap())
                })
                .collect();
            got.sort();
            assert_eq!(got, want, "{from}->{to}");
        }
    };
    check("companies", "contacts", co, vec![2, 280]).await;
    check("deals", "companies", deal, vec![5, 341]).await;
    check("companies", "deals", co, vec![6, 342]).await;
    check("deals", "contacts", deal, vec![3]).await;
    check("contacts", "deals", ct, vec![4]).await;

    let many: Vec<Value> = (0..1001).map(|i| json!({"id": i.to_string()})).collect();
    let (s, _) = body(
        api.post(
            "/crm/v4/associations/contacts/companies/batch/read",
            &json!({"inputs": many}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 400);
    sim.shutdown().await;
}

#[tokio::test]
async fn paging_a_search_past_10000_results_gets_400() {
    let sim = sim_no_limits(SeedSpec {
        contacts: 10_050,
        ..Default::default()
    })
    .await;
    let api = Api::new(&sim, PORTAL);
    let mut after: Option<String> = None;
    let mut seen = 0usize;
    let last = loop {
        let req = json!({
            "filterGroups": [{"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": "0"}]}],
            "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
            "properties": ["email"],
            "limit": 200,
            "after": after,
        });
        let (s, b) = body(api.post("/crm/v3/objects/contacts/search", &req).await).await;
        if s != 200 {
            break (s, b);
        }
        assert_eq!(b["total"], 10_050);
        seen += b["results"].as_array().unwrap().len();
        after = Some(
            b["paging"]["next"]["after"]
                .as_str()
                .expect("more pages")
                .to_string(),
        );
    };
    assert_eq!(seen, 10_000, "exactly the first 10,000 are reachable");
    assert_eq!(after.as_deref(), Some("10000"));
    assert_eq!(last.0, 400);
    assert_eq!(last.1["category"], "VALIDATION_ERROR");
    sim.shutdown().await;
}

/// Search's index trails writes: a record created within the lag is not
/// found yet, one deleted within it still is (shown live), and once the
/// lag has passed search agrees with the listing.
#[tokio::test]
async fn search_results_lag_writes_by_the_index_lag() {
    let sim = start(|c| {
        c.rate_limit.enabled = false;
        c.search_index_lag_ms = 60_000;
    })
    .await;
    let s = sim.state();
    let old: Vec<u64> = (0..3)
        .map(|i| {
            s.create_object(
                PORTAL,
                ObjectType::Companies,
                props([("name", format!("old {i}").as_str())]),
            )
            .unwrap()
        })
        .collect();
    s.advance_clock(std::time::Duration::from_secs(120));
    let new = s
        .create_object(PORTAL, ObjectType::Companies, props([("name", "new")]))
        .unwrap();
    s.delete_object(PORTAL, ObjectType::Companies, old[1])
        .unwrap();
    let api = Api::new(&sim, PORTAL);
    let found = |b: &Value| -> Vec<(u64, bool)> {
        b["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["id"].as_str().unwrap().parse().unwrap(),
                    r["archived"].as_bool().unwrap(),
                )
            })
            .collect()
    };
    let req = json!({"sorts": ["hs_object_id"], "properties": ["name"], "limit": 200});
    let (status, b) = body(api.post("/crm/v3/objects/companies/search", &req).await).await;
    assert_eq!(status, 200);
    assert_eq!(
        found(&b),
        old.iter().map(|id| (*id, false)).collect::<Vec<_>>(),
        "the new one not yet, the deleted one still"
    );
    assert_eq!(b["total"], 3);
    // The deleted one shows its last modification before the deletion
    // (the index has not seen the deletion), not the deletion's time.
    let modified = |b: &Value, id: u64| -> String {
        b["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"].as_str() == Some(id.to_string().as_str()))
            .map(|r| {
                r["properties"]["hs_lastmodifieddate"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .unwrap()
    };
    let req_modified =
        json!({"sorts": ["hs_object_id"], "properties": ["hs_lastmodifieddate"], "limit": 200});
    let (_, m) = body(
        api.post("/crm/v3/objects/companies/search", &req_modified)
            .await,
    )
    .await;
    let (_, bin) = body(
        api.get(&format!(
            "/crm/v3/objects/companies/{}?archived=true&properties=hs_lastmodifieddate",
            old[1]
        ))
        .await,
    )
    .await;
    let deleted_at = bin["properties"]["hs_lastmodifieddate"].as_str().unwrap();
    assert!(modified(&m, old[1]).as_str() < deleted_at, "{m} / {bin}");
    assert_eq!(modified(&m, old[0]), {
        let (_, live) = body(
            api.get(&format!(
                "/crm/v3/objects/companies/{}?properties=hs_lastmodifieddate",
                old[0]
            ))
            .await,
        )
        .await;
        live["properties"]["hs_lastmodifieddate"]
            .as_str()
            .unwrap()
            .to_owned()
    });
    // The listing is current.
    let (_, listed) = body(api.get("/crm/v3/objects/companies?limit=100").await).await;
    let listed: Vec<u64> = listed["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(listed, vec![old[0], old[2], new]);
    // The index catches up.
    s.advance_clock(std::time::Duration::from_secs(61));
    let (_, b) = body(api.post("/crm/v3/objects/companies/search", &req).await).await;
    assert_eq!(
        found(&b),
        vec![(old[0], false), (old[2], false), (new, false)]
    );
    sim.shutdown().await;
}
