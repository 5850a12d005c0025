//! HubSpot's current platform: date-versioned paths beside the legacy ones
//! (counted per version, refusable), scopes enforced with HubSpot's 403,
//! associations paged per input, refused grants in each body shape, and
//! webhooks in the generic format.

mod common;

use common::{client, start, PORTAL};
use hubspot_sim::{props, OAuthErrorShape, ObjectType, SeedSpec, WebhookFormat};
use serde_json::{json, Value};

async fn get(base: &str, token: &str, path: &str) -> (u16, Value) {
    let r = client()
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn post(base: &str, token: &str, path: &str, body: &Value) -> (u16, Value) {
    let r = client()
        .post(format!("{base}{path}"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn date_versioned_and_legacy_paths_serve_the_same_records_and_are_counted_apart() {
    let sim = start(|c| c.rate_limit.enabled = false).await;
    sim.state()
        .seed_portal(
            PORTAL,
            SeedSpec {
                companies: 30,
                ..Default::default()
            },
        )
        .unwrap();
    let token = sim.issue_token(PORTAL).unwrap().access_token;
    let base = sim.base_url();
    let (s1, legacy) = get(&base, &token, "/crm/v3/objects/companies?limit=10").await;
    let (s2, dated) = get(&base, &token, "/crm/objects/2026-03/companies?limit=10").await;
    let (s3, newer) = get(&base, &token, "/crm/objects/2026-09/companies?limit=10").await;
    assert_eq!((s1, s2, s3), (200, 200, 200));
    assert_eq!(legacy["results"], dated["results"]);
    assert_eq!(dated["results"], newer["results"]);
    let (s, owners) = get(&base, &token, "/crm/owners/2026-03?limit=5").await;
    assert_eq!(s, 200);
    assert!(!owners["results"].as_array().unwrap().is_empty());
    let (s, props) = get(&base, &token, "/crm/properties/2026-03/deals").await;
    assert_eq!(s, 200, "{props}");
    // An unknown date is not a route.
    let (s, _) = get(&base, &token, "/crm/objects/2025-01/companies").await;
    assert_eq!(s, 404);
    let c = sim.state().counters();
    assert_eq!(c.requests_by_api_version.get("v3"), Some(&1));
    assert_eq!(c.requests_by_api_version.get("2026-03"), Some(&3));
    assert_eq!(c.requests_by_api_version.get("2026-09"), Some(&1));
    assert_eq!(c.legacy_requests(), 1);
    // A client cannot forge the version tag.
    let r = client()
        .get(format!("{base}/crm/v3/objects/companies?limit=1"))
        .bearer_auth(&token)
        .header("x-hubspot-sim-api-version", "2026-03")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(sim.state().counters().legacy_requests(), 2);
    sim.shutdown().await;
}

#[tokio::test]
async fn retired_versions_are_refused_as_hubspot_will_after_the_sunset() {
    let sim = start(|c| {
        c.rate_limit.enabled = false;
        c.refused_api_versions = vec!["legacy".into()];
    })
    .await;
    let token = sim.issue_token(PORTAL).unwrap().access_token;
    let base = sim.base_url();
    let (s, body) = get(&base, &token, "/crm/v3/objects/deals").await;
    assert_eq!(s, 410);
    assert_eq!(body["category"], "API_VERSION_NOT_SUPPORTED");
    let (s, _) = post(
        &base,
        &token,
        "/crm/v4/associations/deals/companies/batch/read",
        &json!({"inputs": [{"id": "1"}]}),
    )
    .await;
    assert_eq!(s, 410);
    let r = client()
        .post(format!("{base}/oauth/v1/token"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 410);
    let (s, _) = get(&base, &token, "/crm/objects/2026-03/deals").await;
    assert_eq!(s, 200);
    // A date version can be retired too.
    sim.state()
        .update_config(|c| c.refused_api_versions = vec!["2026-03".into()]);
    let (s, _) = get(&base, &token, "/crm/objects/2026-03/deals").await;
    assert_eq!(s, 410);
    let (s, _) = get(&base, &token, "/crm/objects/2026-09/deals").await;
    assert_eq!(s, 200);
    assert_eq!(sim.state().counters().refused_api_calls, 4);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_token_without_a_scope_gets_hubspots_missing_scopes_403() {
    let sim = start(|c| c.rate_limit.enabled = false).await;
    let list = sim
        .state()
        .create_list(PORTAL, ObjectType::Companies, "Customers")
        .unwrap();
    let base = sim.base_url();
    let scopes: Vec<String> = sim
        .state()
        .config()
        .oauth
        .default_scopes
        .into_iter()
        .filter(|s| s != "crm.lists.read")
        .collect();
    let narrow = sim
        .state()
        .issue_token_with_scopes(PORTAL, scopes)
        .unwrap()
        .access_token;
    let (s, body) = get(&base, &narrow, &format!("/crm/lists/2026-03/{list}")).await;
    assert_eq!(s, 403, "{body}");
    assert_eq!(body["category"], "MISSING_SCOPES");
    assert_eq!(
        body["errors"][0]["context"]["requiredGranularScopes"],
        json!(["crm.lists.read"])
    );
    let (s, _) = get(&base, &narrow, "/crm/objects/2026-03/companies").await;
    assert_eq!(s, 200, "other calls still work");
    let full = sim.issue_token(PORTAL).unwrap().access_token;
    let (s, _) = get(&base, &full, &format!("/crm/lists/2026-03/{list}")).await;
    assert_eq!(s, 200);
    let contacts_only = sim
        .state()
        .issue_token_with_scopes(
            PORTAL,
            vec!["oauth".into(), "crm.objects.contacts.read".into()],
        )
        .unwrap()
        .access_token;
    let (s, body) = post(
        &base,
        &contacts_only,
        "/crm/associations/2026-03/contacts/companies/batch/read",
        &json!({"inputs": [{"id": "1"}]}),
    )
    .await;
    assert_eq!(s, 403);
    assert_eq!(
        body["errors"][0]["context"]["requiredGranularScopes"],
        json!(["crm.objects.companies.read"])
    );
    let (s, _) = get(&base, &contacts_only, "/crm/owners/2026-03").await;
    assert_eq!(s, 403);
    assert_eq!(sim.state().counters().missing_scope, 3);
    sim.shutdown().await;
}

#[tokio::test]
async fn associations_are_paged_per_input_like_hubspot() {
    let sim = start(|c| {
        c.rate_limit.enabled = false;
        c.association_page_size = 500;
    })
    .await;
    let st = sim.state();
    let big = st
        .create_object(PORTAL, ObjectType::Companies, props([("name", "Big")]))
        .unwrap();
    let small = st
        .create_object(PORTAL, ObjectType::Companies, props([("name", "Small")]))
        .unwrap();
    let mut contacts = Vec::new();
    for i in 0..1_200 {
        let c = st
            .create_object(
                PORTAL,
                ObjectType::Contacts,
                props([("email", format!("p{i}@example.com"))]),
            )
            .unwrap();
        st.associate(
            PORTAL,
            ObjectType::Companies,
            big,
            ObjectType::Contacts,
            c,
            false,
        )
        .unwrap();
        contacts.push(c);
    }
    st.associate(
        PORTAL,
        ObjectType::Companies,
        small,
        ObjectType::Contacts,
        contacts[0],
        false,
    )
    .unwrap();
    let token = sim.issue_token(PORTAL).unwrap().access_token;
    let base = sim.base_url();
    let path = "/crm/associations/2026-03/companies/contacts/batch/read";
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut input = json!({"id": big.to_string()});
        if let Some(a) = &after {
            input["after"] = json!(a);
        }
        let inputs = if after.is_none() {
            json!([input, {"id": small.to_string()}])
        } else {
            json!([input])
        };
        let (s, body) = post(&base, &token, path, &json!({ "inputs": inputs })).await;
        assert_eq!(s, 200, "{body}");
        pages += 1;
        for r in body["results"].as_array().unwrap() {
            let from = r["from"]["id"].as_str().unwrap();
            let to = r["to"].as_array().unwrap();
            if from == small.to_string() {
                assert_eq!(to.len(), 1);
                assert!(r.get("paging").is_none());
                continue;
            }
            assert!(to.len() <= 500);
            // The 2026-03 spec types toObjectId as a string.
            seen.extend(
                to.iter()
                    .map(|t| t["toObjectId"].as_str().unwrap().parse::<u64>().unwrap()),
            );
            after = r["paging"]["next"]["after"].as_str().map(str::to_owned);
        }
        if after.is_none() {
            break;
        }
    }
    assert_eq!(pages, 3);
    seen.sort_unstable();
    assert_eq!(seen, contacts);
    // v4 sends numbers.
    let (_, body) = post(
        &base,
        &token,
        "/crm/v4/associations/companies/contacts/batch/read",
        &json!({"inputs": [{"id": small.to_string()}]}),
    )
    .await;
    assert!(body["results"][0]["to"][0]["toObjectId"].is_u64(), "{body}");
    sim.shutdown().await;
}

#[tokio::test]
async fn refused_refresh_tokens_are_answered_in_the_configured_shape() {
    let sim = start(|_| {}).await;
    let app = sim.state().config().app;
    let base = sim.base_url();
    let refresh = |version: &'static str| {
        let app = app.clone();
        let base = base.clone();
        async move {
            let r = client()
                .post(format!("{base}/oauth/{version}/token"))
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("client_id", app.client_id.as_str()),
                    ("client_secret", app.client_secret.as_str()),
                    ("refresh_token", "na1-revoked"),
                ])
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (s, b) = refresh("2026-03").await;
    assert_eq!(s, 400);
    assert_eq!(
        (b["error"].as_str(), b["status"].as_str()),
        (Some("invalid_grant"), Some("BAD_REFRESH_TOKEN"))
    );
    for (shape, check) in [
        (
            OAuthErrorShape::InvalidGrant,
            json!({"error": "invalid_grant"}),
        ),
        (
            OAuthErrorShape::Status,
            json!({"status": "BAD_REFRESH_TOKEN"}),
        ),
        (
            OAuthErrorShape::Generic,
            json!({"category": "VALIDATION_ERROR", "subCategory": "INVALID_TOKEN"}),
        ),
    ] {
        sim.state().update_config(|c| c.oauth.error_shape = shape);
        let (s, b) = refresh("2026-03").await;
        assert_eq!(s, 400, "{shape:?}");
        for (k, v) in check.as_object().unwrap() {
            assert_eq!(&b[k], v, "{shape:?}: {b}");
        }
        let others = ["error", "status", "category"]
            .into_iter()
            .filter(|k| !check.as_object().unwrap().contains_key(*k))
            .filter(|k| b.get(*k).is_some())
            .count();
        assert_eq!(others, 0, "{shape:?} carries only its own fields: {b}");
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn events_use_the_portals_webhook_format() {
    let sim = start(|c| c.rate_limit.enabled = false).await;
    let st = sim.state();
    assert_eq!(st.webhook_format(PORTAL), WebhookFormat::Classic);
    st.set_webhook_format(PORTAL, Some(WebhookFormat::Generic))
        .unwrap();
    let company = st
        .create_object(PORTAL, ObjectType::Companies, props([("name", "Acme")]))
        .unwrap();
    let contact = st
        .create_object(
            PORTAL,
            ObjectType::Contacts,
            props([("email", "a@example.com")]),
        )
        .unwrap();
    st.associate(
        PORTAL,
        ObjectType::Contacts,
        contact,
        ObjectType::Companies,
        company,
        true,
    )
    .unwrap();
    st.privacy_delete_contact(PORTAL, contact).unwrap();
    let events = st.events();
    let types: Vec<&str> = events
        .iter()
        .map(|e| e.subscription_type.as_str())
        .collect();
    assert_eq!(
        &types[..4],
        [
            "object.creation",
            "object.creation",
            "object.associationChange",
            "object.associationChange"
        ]
    );
    assert!(types.contains(&"contact.privacyDeletion"), "{types:?}");
    assert_eq!(events[0].object_type_id.as_deref(), Some("0-2"));
    assert_eq!(events[1].object_type_id.as_deref(), Some("0-1"));
    let assoc = &events[2];
    assert_eq!(assoc.from_object_type_id.as_deref(), Some("0-1"));
    assert_eq!(assoc.to_object_type_id.as_deref(), Some("0-2"));
    assert_eq!(assoc.from_object_id, Some(contact));
    assert_eq!(assoc.to_object_id, Some(company));
    assert!(assoc.association_type.is_none());
    assert!(assoc.association_type_id.is_some());
    // Portal 2 still gets the configured default; mixed alternates.
    let other = PORTAL + 1;
    st.create_object(other, ObjectType::Deals, props([("dealname", "D")]))
        .unwrap();
    assert_eq!(
        st.events().last().unwrap().subscription_type,
        "deal.creation"
    );
    st.set_webhook_format(other, Some(WebhookFormat::Mixed))
        .unwrap();
    for i in 0..4 {
        st.create_object(
            other,
            ObjectType::Deals,
            props([("dealname", format!("D{i}"))]),
        )
        .unwrap();
    }
    let last: Vec<String> = st
        .events()
        .iter()
        .rev()
        .take(4)
        .map(|e| e.subscription_type.clone())
        .collect();
    assert_eq!(
        last.iter()
            .filter(|t| t.as_str() == "object.creation")
            .count(),
        2
    );
    assert_eq!(
        last.iter()
            .filter(|t| t.as_str() == "deal.creation")
            .count(),
        2
    );
    // Through the control API.
    let r = client()
        .put(format!(
            "{}/_sim/portals/{other}/webhook-format",
            sim.base_url()
        ))
        .json(&json!({"format": "generic"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(st.webhook_format(other), WebhookFormat::Generic);
    sim.shutdown().await;
}

#[tokio::test]
async fn fidelity_contacts_search_batch_errors_merged_ids_owners_and_429s() {
    let sim = start(|c| {
        c.rate_limit.max_requests = 3;
        c.initial_seed = SeedSpec {
            companies: 5,
            contacts: 5,
            owners: 2,
            ..Default::default()
        };
    })
    .await;
    let st = sim.state();
    let base = sim.base_url();
    let token = sim.issue_token(PORTAL).unwrap().access_token;
    // Contacts' modification time is `lastmodifieddate`.
    let since = |prop: &str| {
        json!({"filterGroups": [{"filters": [
            {"propertyName": prop, "operator": "GTE", "value": "0"}]}], "limit": 10})
    };
    let (_, hs) = post(
        &base,
        &token,
        "/crm/objects/2026-03/contacts/search",
        &since("hs_lastmodifieddate"),
    )
    .await;
    assert_eq!(hs["total"], 0, "{hs}");
    let (_, plain) = post(
        &base,
        &token,
        "/crm/objects/2026-03/contacts/search",
        &since("lastmodifieddate"),
    )
    .await;
    assert_eq!(plain["total"], 5, "{plain}");
    // Owners carry their type.
    let (_, owners) = get(&base, &token, "/crm/owners/2026-03").await;
    assert_eq!(owners["results"][0]["type"], "PERSON", "{owners}");
    // The rate limit's 429 names its group.
    let mut limited = None;
    for _ in 0..5 {
        let (s, body) = get(&base, &token, "/crm/objects/2026-03/deals").await;
        if s == 429 {
            limited = Some(body);
            break;
        }
    }
    let body = limited.expect("the fourth call in the window is limited");
    assert_eq!(body["policyName"], "TEN_SECONDLY_ROLLING");
    assert_eq!(
        body["groupName"],
        format!("publicapi:oauth:{}:{PORTAL}", st.config().app.app_id)
    );
    st.update_config(|c| c.rate_limit.enabled = false);

    // A batch read with a missing id: 207 with HubSpot's error fields, or
    // 200 on 2026-09.
    let a = st
        .create_object(PORTAL, ObjectType::Companies, props([("name", "A")]))
        .unwrap();
    let b = st
        .create_object(PORTAL, ObjectType::Companies, props([("name", "B")]))
        .unwrap();
    let read =
        json!({"inputs": [{"id": a.to_string()}, {"id": b.to_string()}], "properties": ["name"]});
    st.merge_objects(PORTAL, ObjectType::Companies, a, b, Some(false))
        .unwrap();
    let (s, body) = post(
        &base,
        &token,
        "/crm/objects/2026-03/companies/batch/read",
        &read,
    )
    .await;
    assert_eq!(s, 207, "{body}");
    let e = &body["errors"][0];
    for field in [
        "status", "category", "message", "context", "links", "errors",
    ] {
        assert!(e.get(field).is_some(), "{field} in {e}");
    }
    assert_eq!(e["context"]["ids"], json!([b.to_string()]));
    let (s, body) = post(
        &base,
        &token,
        "/crm/objects/2026-09/companies/batch/read",
        &read,
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["numErrors"], 1);
    // Reading the merged-away id as the survivor, when so configured.
    st.update_config(|c| c.merged_id_reads = hubspot_sim::MergedIdReads::Survivor);
    let (s, body) = post(
        &base,
        &token,
        "/crm/objects/2026-03/companies/batch/read",
        &read,
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let ids: Vec<&str> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [a.to_string()], "the survivor, once");
    sim.shutdown().await;
}
