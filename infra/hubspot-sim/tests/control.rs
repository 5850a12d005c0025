//! The `/_sim` control API over HTTP, seeding, and the in-process API.

mod common;

use common::{client, start, Behaviour, Receiver, PORTAL};
use hubspot_sim::{ObjectType, SeedSpec, SimConfig, Simulator};
use serde_json::{json, Value};

async fn call(method: reqwest::Method, url: String, body: Option<Value>) -> (u16, Value) {
    let mut rb = client().request(method, url);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let r = rb.send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn control_api_drives_portals_records_faults_clock_and_counters() {
    let rx = Receiver::start(Behaviour::default()).await;
    let sim = start(|c| c.rate_limit.enabled = false).await;
    let b = sim.base_url();
    use reqwest::Method as M;

    let (s, v) = call(M::GET, format!("{b}/_sim/health"), None).await;
    assert_eq!((s, v["ok"].as_bool()), (200, Some(true)));

    // Create a portal with data and a token.
    let (s, v) = call(
        M::POST,
        format!("{b}/_sim/portals"),
        Some(json!({"portal_id": 2000001, "install": true, "seed": {"companies": 12, "contacts": 20, "deals": 5, "seed": 3}})),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["portal"]["companies"], 12);
    let token = v["token"]["access_token"].as_str().unwrap().to_string();
    let (s, _) = call(
        M::POST,
        format!("{b}/_sim/portals"),
        Some(json!({"portal_id": 2000001})),
    )
    .await;
    assert_eq!(s, 409);
    let (_, v) = call(M::GET, format!("{b}/_sim/portals"), None).await;
    assert_eq!(v["results"].as_array().unwrap().len(), 3);

    // Webhook target through the control API.
    let (s, v) = call(
        M::PUT,
        format!("{b}/_sim/webhooks"),
        Some(json!({"target_url": rx.url, "batch_window_ms": 20})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["batch_window_ms"], 20);

    // Records: create, update, delete, restore, merge, privacy delete, associate.
    let (s, v) = call(
        M::POST,
        format!("{b}/_sim/portals/2000001/objects/companies"),
        Some(json!({"properties": {"name": "Ctl Co"}})),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let (s, v) = call(
        M::PATCH,
        format!("{b}/_sim/portals/2000001/objects/companies/{id}"),
        Some(json!({"properties": {"name": "Ctl Co 2", "city": "Oslo"}, "change_source": "API"})),
    )
    .await;
    assert_eq!((s, v["changed"].as_u64()), (200, Some(2)), "{v}");
    assert_eq!(v["events"][0]["changeSource"], "API");
    let (s, _) = call(
        M::PATCH,
        format!("{b}/_sim/portals/2000001/objects/companies/{id}"),
        Some(json!({"properties": {"no_such_prop": "x"}})),
    )
    .await;
    assert_eq!(s, 400);
    let (s, _) = call(
        M::DELETE,
        format!("{b}/_sim/portals/2000001/objects/companies/{id}"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (_, v) = call(
        M::GET,
        format!("{b}/_sim/portals/2000001/objects/companies?archived=true"),
        None,
    )
    .await;
    assert_eq!(v["total"], 1);
    let (s, _) = call(
        M::POST,
        format!("{b}/_sim/portals/2000001/objects/companies/{id}/restore"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (_, v) = call(
        M::GET,
        format!("{b}/_sim/portals/2000001/objects/companies/{id}"),
        None,
    )
    .await;
    assert_eq!(v["properties"]["name"], "Ctl Co 2");
    let ids = sim
        .state()
        .object_ids(2000001, ObjectType::Contacts, false)
        .unwrap();
    let (s, v) = call(
        M::POST,
        format!("{b}/_sim/portals/2000001/objects/contacts/merge"),
        Some(json!({"primary_id": ids[0], "merged_id": ids[1]})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, _) = call(
        M::POST,
        format!(
            "{b}/_sim/portals/2000001/objects/contacts/{}/privacy-delete",
            ids[2]
        ),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (s, v) = call(M::POST, format!("{b}/_sim/portals/2000001/associations"), Some(json!({"from_type": "contacts", "from_id": ids[3], "to_type": "companies", "to_id": id.parse::<u64>().unwrap(), "primary": true}))).await;
    assert_eq!(s, 200, "{v}");
    let (_, v) = call(
        M::GET,
        format!("{b}/_sim/portals/2000001/associations/companies/{id}/contacts"),
        None,
    )
    .await;
    assert!(v["results"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["id"] == ids[3]));
    let (s, v) = call(M::POST, format!("{b}/_sim/portals/2000001/changes"), Some(json!({"changes": [{"op": "update", "object_type": "contacts", "id": ids[4], "properties": {"firstname": "Zed"}}], "change_source": "INTEGRATION"}))).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["results"][0]["events"][0]["changeSource"], "INTEGRATION");
    let (s, v) = call(
        M::POST,
        format!("{b}/_sim/portals/2000001/random-changes"),
        Some(json!({"count": 50, "seed": 1})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert!(v["events"].as_u64().unwrap() > 0);
    let (s, _) = call(
        M::GET,
        format!("{b}/_sim/portals/2000001/objects/companies/1"),
        None,
    )
    .await;
    assert_eq!(s, 404);
    let (s, _) = call(
        M::GET,
        format!("{b}/_sim/portals/9/objects/companies"),
        None,
    )
    .await;
    assert_eq!(s, 404);

    // Events and webhook idle wait.
    let (_, v) = call(
        M::POST,
        format!("{b}/_sim/webhooks/wait"),
        Some(json!({"timeout_ms": 10000})),
    )
    .await;
    assert_eq!(v["idle"], true);
    let (_, v) = call(
        M::GET,
        format!("{b}/_sim/events?portal=2000001&type=contact.privacyDeletion"),
        None,
    )
    .await;
    assert_eq!(v["total"], 1);
    assert!(rx.count() > 0);

    // Properties.
    let (s, _) = call(M::POST, format!("{b}/_sim/portals/2000001/properties/deals"), Some(json!({"name": "region", "label": "Region", "type": "enumeration", "fieldType": "select", "options": [{"label": "EU", "value": "eu"}]}))).await;
    assert_eq!(s, 201);
    let (s, _) = call(
        M::DELETE,
        format!("{b}/_sim/portals/2000001/properties/deals/region"),
        None,
    )
    .await;
    assert_eq!(s, 200);

    // Faults: patch keeps other fields.
    let (s, v) = call(
        M::PATCH,
        format!("{b}/_sim/portals/2000001/faults"),
        Some(json!({"force_429_next": 1, "webhook_drop_rate": 0.5})),
    )
    .await;
    assert_eq!((s, v["force_429_next"].as_u64()), (200, Some(1)));
    let (_, v) = call(
        M::PATCH,
        format!("{b}/_sim/portals/2000001/faults"),
        Some(json!({"webhook_drop_rate": 0.0})),
    )
    .await;
    assert_eq!(v["force_429_next"], 1);
    let r = client()
        .get(format!("{b}/crm/v3/objects/companies"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let (s, _) = call(
        M::PATCH,
        format!("{b}/_sim/portals/2000001/faults"),
        Some(json!({"webhook_drop_rate": "lots"})),
    )
    .await;
    assert_eq!(s, 400);

    // Clock.
    let (_, v0) = call(M::GET, format!("{b}/_sim/clock"), None).await;
    let (_, v1) = call(
        M::POST,
        format!("{b}/_sim/clock/advance"),
        Some(json!({"seconds": 3600})),
    )
    .await;
    assert!(v1["now_ms"].as_i64().unwrap() - v0["now_ms"].as_i64().unwrap() >= 3_600_000);
    let r = client()
        .get(format!("{b}/crm/v3/objects/companies"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "token expired after an hour of sim time");
    let (_, v) = call(M::POST, format!("{b}/_sim/portals/2000001/token"), None).await;
    let token = v["access_token"].as_str().unwrap().to_string();
    let r = client()
        .get(format!("{b}/crm/v3/objects/companies"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Counters and reset.
    let (_, v) = call(M::GET, format!("{b}/_sim/counters"), None).await;
    assert!(
        v["requests"]["GET /crm/v3/objects/{type}"]
            .as_u64()
            .unwrap()
            >= 3
    );
    assert_eq!(
        v["requests_by_portal"]["2000001"]["GET /crm/v3/objects/{type}"],
        2
    );
    assert_eq!(v["injected_429"], 1);
    assert!(v["events_emitted"].as_u64().unwrap() > 5);
    let (_, v) = call(M::POST, format!("{b}/_sim/counters/reset"), None).await;
    assert_eq!(v["events_emitted"], 0);

    // Config patches; malformed JSON is a 400.
    let (s, v) = call(
        M::PUT,
        format!("{b}/_sim/rate-limit"),
        Some(json!({"enabled": true, "max_requests": 5})),
    )
    .await;
    assert_eq!((s, v["max_requests"].as_u64()), (200, Some(5)));
    let (s, v) = call(
        M::PUT,
        format!("{b}/_sim/oauth"),
        Some(json!({"include_hub_id": false})),
    )
    .await;
    assert_eq!((s, v["include_hub_id"].as_bool()), (200, Some(false)));
    let r = client()
        .post(format!("{b}/_sim/portals/2000001/faults"))
        .header("content-type", "application/json")
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let (s, _) = call(M::POST, format!("{b}/_sim/portals/2000001/uninstall"), None).await;
    assert_eq!(s, 200);
    let r = client()
        .get(format!("{b}/crm/v3/objects/companies"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let (s, v) = call(M::GET, format!("{b}/no/such/route"), None).await;
    assert_eq!((s, v["status"].as_str()), (404, Some("error")));
    sim.shutdown().await;
}

#[tokio::test]
async fn authorize_portal_can_be_chosen_through_the_control_api() {
    let sim = start(|_| {}).await;
    let b = sim.base_url();
    let (s, _) = call(
        reqwest::Method::POST,
        format!("{b}/_sim/oauth/next-portal"),
        Some(json!({"portal_id": PORTAL + 1})),
    )
    .await;
    assert_eq!(s, 200);
    let app = sim.state().config().app;
    let r = client()
        .get(format!(
            "{b}/oauth/authorize?client_id={}&redirect_uri=http://localhost/cb&scope=oauth&state=q",
            app.client_id
        ))
        .send()
        .await
        .unwrap();
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    let code = url::Url::parse(&loc)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let r = client()
        .post(format!("{b}/oauth/v1/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", &app.client_id),
            ("client_secret", &app.client_secret),
            ("redirect_uri", "http://localhost/cb"),
            ("code", &code),
        ])
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["hub_id"], PORTAL + 1);
    sim.shutdown().await;
}

async fn seeded(seed: u64) -> (Simulator, Vec<Vec<hubspot_sim::SimObject>>) {
    let sim = Simulator::start(SimConfig {
        initial_seed: SeedSpec {
            companies: 200,
            contacts: 1000,
            deals: 150,
            seed: Some(seed),
            ..Default::default()
        },
        ..Default::default()
    })
    .await
    .unwrap();
    let all = ObjectType::ALL
        .iter()
        .map(|t| sim.state().list_objects(PORTAL, *t, false).unwrap())
        .collect();
    (sim, all)
}

#[tokio::test]
async fn seeding_is_deterministic_and_realistic() {
    let (s1, a) = seeded(11).await;
    let (s2, b) = seeded(11).await;
    let (s3, c) = seeded(12).await;
    assert_eq!(a, b, "same seed, same data");
    assert_ne!(a, c, "another seed, other data");
    assert_eq!(
        s1.state().owners(PORTAL).unwrap(),
        s2.state().owners(PORTAL).unwrap()
    );
    for t in ObjectType::ALL {
        for o in ObjectType::ALL {
            if t != o {
                let ids = s1.state().object_ids(PORTAL, t, false).unwrap();
                let x: Vec<_> = ids
                    .iter()
                    .map(|i| s1.state().associations(PORTAL, t, *i, o).unwrap())
                    .collect();
                let y: Vec<_> = ids
                    .iter()
                    .map(|i| s2.state().associations(PORTAL, t, *i, o).unwrap())
                    .collect();
                assert_eq!(x, y);
            }
        }
    }
    let (companies, contacts, deals) = (&a[0], &a[1], &a[2]);
    assert_eq!(
        (companies.len(), contacts.len(), deals.len()),
        (200, 1000, 150)
    );
    let no_email = contacts
        .iter()
        .filter(|c| c.prop("email").is_none())
        .count();
    assert!(
        (20..=90).contains(&no_email),
        "~5% without email: {no_email}"
    );
    for c in companies {
        assert!(c.prop("name").is_some() && c.prop("domain").unwrap().contains('.'));
        assert!(c.prop("numberofemployees").unwrap().parse::<u32>().is_ok());
    }
    let pipelines: std::collections::HashSet<_> =
        deals.iter().filter_map(|d| d.prop("pipeline")).collect();
    assert_eq!(pipelines.len(), 2);
    assert!(deals
        .iter()
        .any(|d| d.prop("amount").is_some_and(|a| a.contains('.'))));
    for d in deals {
        let cd = d.prop("closedate").unwrap();
        assert!(cd.ends_with('Z') && cd.len() == 24, "{cd}");
        assert!(d.prop("hs_deal_stage_probability").is_some());
    }
    assert_eq!(s1.state().owners(PORTAL).unwrap().len(), 20);
    let with_company = contacts
        .iter()
        .filter(|c| {
            !s1.state()
                .associations(
                    PORTAL,
                    ObjectType::Contacts,
                    c.id.parse().unwrap(),
                    ObjectType::Companies,
                )
                .unwrap()
                .is_empty()
        })
        .count();
    assert!(with_company > 800);
    for s in [s1, s2, s3] {
        s.shutdown().await;
    }
}
