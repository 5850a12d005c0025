//! OAuth endpoints and API authentication.

mod common;

use std::time::Duration;

use common::{client, start, PORTAL};
use serde_json::Value;

const REDIRECT: &str = "https://app.example.test/oauth/callback";

async fn authorize(base: &str, client_id: &str, state: &str) -> reqwest::Response {
    client()
        .get(format!("{base}/oauth/authorize"))
        .query(&[
            ("client_id", client_id),
            ("redirect_uri", REDIRECT),
            (
                "scope",
                "crm.objects.companies.read crm.objects.contacts.read",
            ),
            ("optional_scope", "crm.objects.deals.read"),
            ("state", state),
        ])
        .send()
        .await
        .unwrap()
}

fn location_params(r: &reqwest::Response) -> (String, Vec<(String, String)>) {
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    let u = url::Url::parse(&loc).unwrap();
    let q = u
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    (loc, q)
}

fn param<'a>(q: &'a [(String, String)], k: &str) -> Option<&'a str> {
    q.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str())
}

async fn exchange(base: &str, version: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let r = client()
        .post(format!("{base}/oauth/{version}/token"))
        .form(form)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn authorization_code_flow_yields_working_tokens() {
    let sim = start(|_| {}).await;
    let base = sim.base_url();
    let app = sim.state().config().app;
    sim.state().set_next_authorize_portal(Some(PORTAL + 1));
    let r = authorize(&base, &app.client_id, "st-123").await;
    assert_eq!(r.status(), 302);
    let (loc, q) = location_params(&r);
    assert!(loc.starts_with(REDIRECT), "{loc}");
    assert_eq!(param(&q, "state"), Some("st-123"));
    let code = param(&q, "code").unwrap().to_string();

    let (s, body) = exchange(
        &base,
        "v1",
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &app.client_id),
            ("client_secret", &app.client_secret),
            ("redirect_uri", REDIRECT),
            ("code", &code),
        ],
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 1800);
    assert_eq!(body["hub_id"], PORTAL + 1);
    let access = body["access_token"].as_str().unwrap().to_string();
    assert!(body["refresh_token"].as_str().is_some());

    // Token info (v1) and introspection (2026-03).
    let info: Value = client()
        .get(format!("{base}/oauth/v1/access-tokens/{access}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["hub_id"], PORTAL + 1);
    assert_eq!(info["app_id"], app.app_id);
    assert_eq!(info["token"], access.as_str());
    assert!(info["hub_domain"].as_str().is_some());
    assert!(info["user"].as_str().is_some());
    assert!(info["user_id"].as_u64().is_some());
    let scopes: Vec<String> = serde_json::from_value(info["scopes"].clone()).unwrap();
    assert!(scopes.contains(&"crm.objects.deals.read".to_string()));
    assert!(info["expires_in"].as_u64().unwrap() > 1700);

    let intro: Value = client()
        .post(format!("{base}/oauth/2026-03/token/introspect"))
        .form(&[
            ("token", access.as_str()),
            ("client_id", &app.client_id),
            ("client_secret", &app.client_secret),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(intro["active"], true);
    assert_eq!(intro["hub_id"], PORTAL + 1);
    assert_eq!(intro["app_id"], app.app_id);

    // The token serves the chosen portal's data.
    sim.state()
        .create_object(
            PORTAL + 1,
            hubspot_sim::ObjectType::Companies,
            hubspot_sim::props([("name", "Second Portal Co")]),
        )
        .unwrap();
    let list: Value = client()
        .get(format!("{base}/crm/v3/objects/companies"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["results"][0]["properties"]["name"], "Second Portal Co");
    assert_eq!(sim.state().counters().token_calls["authorization_code"], 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn code_reuse_expiry_and_wrong_redirect_are_invalid_grant() {
    let sim = start(|c| c.oauth.code_lifetime_secs = 60).await;
    let base = sim.base_url();
    let app = sim.state().config().app;
    let get_code = || async {
        let r = authorize(&base, &app.client_id, "s").await;
        let (_, q) = location_params(&r);
        param(&q, "code").unwrap().to_string()
    };
    let form = |code: &str, redirect: &str| {
        vec![
            ("grant_type".to_string(), "authorization_code".to_string()),
            ("client_id".to_string(), app.client_id.clone()),
            ("client_secret".to_string(), app.client_secret.clone()),
            ("redirect_uri".to_string(), redirect.to_string()),
            ("code".to_string(), code.to_string()),
        ]
    };
    let token_url = format!("{base}/oauth/v1/token");
    let post = |f: Vec<(String, String)>| {
        let url = token_url.clone();
        async move {
            let r = client().post(url).form(&f).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let code = get_code().await;
    assert_eq!(post(form(&code, REDIRECT)).await.0, 200);
    let (s, b) = post(form(&code, REDIRECT)).await;
    assert_eq!(s, 400);
    assert_eq!(b["error"], "invalid_grant");
    assert_eq!(b["status"], "BAD_AUTH_CODE");
    assert!(b["correlationId"].as_str().is_some());
    assert!(b["error_description"].as_str().is_some());
    assert!(b["message"].as_str().is_some());

    let code = get_code().await;
    sim.state().advance_clock(Duration::from_secs(61));
    let (s, b) = post(form(&code, REDIRECT)).await;
    assert_eq!((s, b["status"].as_str()), (400, Some("BAD_AUTH_CODE")));

    let code = get_code().await;
    let (s, b) = post(form(&code, "https://evil.test/cb")).await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_grant")));

    let mut f = form(&get_code().await, REDIRECT);
    f[2].1 = "wrong".into();
    let (s, b) = post(f).await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_client")));

    let (s, b) = post(form("no-such-code", REDIRECT)).await;
    assert_eq!((s, b["status"].as_str()), (400, Some("BAD_AUTH_CODE")));
    sim.shutdown().await;
}

#[tokio::test]
async fn denied_consent_redirects_with_access_denied() {
    let sim = start(|_| {}).await;
    sim.state()
        .set_consent_denied(PORTAL, Some("User cancelled".into()))
        .unwrap();
    let r = authorize(&sim.base_url(), &sim.state().config().app.client_id, "xyz").await;
    assert_eq!(r.status(), 302);
    let (_, q) = location_params(&r);
    assert_eq!(param(&q, "error"), Some("access_denied"));
    assert_eq!(param(&q, "error_description"), Some("User cancelled"));
    assert_eq!(param(&q, "state"), Some("xyz"));
    assert_eq!(param(&q, "code"), None);
    // Unknown client id is rejected outright.
    assert_eq!(authorize(&sim.base_url(), "nope", "s").await.status(), 400);
    sim.shutdown().await;
}

#[tokio::test]
async fn hub_id_can_be_left_out_of_token_responses() {
    let sim = start(|c| c.oauth.include_hub_id = false).await;
    let app = sim.state().config().app;
    let t = sim.issue_token(PORTAL).unwrap();
    let (s, b) = exchange(
        &sim.base_url(),
        "2026-03",
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &app.client_id),
            ("client_secret", &app.client_secret),
            ("refresh_token", &t.refresh_token),
        ],
    )
    .await;
    assert_eq!(s, 200);
    assert!(b.get("hub_id").is_none(), "{b}");
    assert_eq!(b["refresh_token"], t.refresh_token.as_str());
    sim.shutdown().await;
}

#[tokio::test]
async fn missing_invalid_and_expired_tokens_get_401() {
    let sim = start(|_| {}).await;
    let url = format!("{}/crm/v3/objects/contacts", sim.base_url());
    let r = client().get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["status"], "error");
    assert_eq!(b["category"], "INVALID_AUTHENTICATION");
    assert!(b["message"]
        .as_str()
        .unwrap()
        .starts_with("Authentication credentials not found."));
    assert!(b["correlationId"].as_str().is_some());

    let r = client()
        .get(&url)
        .bearer_auth("garbage")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let t = sim.issue_token(PORTAL).unwrap();
    assert_eq!(
        client()
            .get(&url)
            .bearer_auth(&t.access_token)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    sim.state().advance_clock(Duration::from_secs(1801));
    let r = client()
        .get(&url)
        .bearer_auth(&t.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["category"], "EXPIRED_AUTHENTICATION");
    // Refresh still works after expiry and gives a working token.
    let app = sim.state().config().app;
    let (s, b) = exchange(
        &sim.base_url(),
        "v1",
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &app.client_id),
            ("client_secret", &app.client_secret),
            ("refresh_token", &t.refresh_token),
        ],
    )
    .await;
    assert_eq!(s, 200);
    let fresh = b["access_token"].as_str().unwrap();
    assert_eq!(
        client()
            .get(&url)
            .bearer_auth(fresh)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(sim.state().counters().token_calls["refresh_token"], 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn uninstall_revokes_access_and_refresh_tokens() {
    let sim = start(|_| {}).await;
    let app = sim.state().config().app;
    let t = sim.issue_token(PORTAL).unwrap();
    let other = sim.issue_token(PORTAL + 1).unwrap();
    let url = format!("{}/crm/v3/objects/companies", sim.base_url());
    sim.state().uninstall(PORTAL).unwrap();
    let r = client()
        .get(&url)
        .bearer_auth(&t.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let (s, b) = exchange(
        &sim.base_url(),
        "v1",
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &app.client_id),
            ("client_secret", &app.client_secret),
            ("refresh_token", &t.refresh_token),
        ],
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(b["error"], "invalid_grant");
    assert_eq!(b["status"], "BAD_REFRESH_TOKEN");
    // The other portal is unaffected.
    assert_eq!(
        client()
            .get(&url)
            .bearer_auth(&other.access_token)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert!(!sim.state().portal_info(PORTAL).unwrap().installed);
    sim.shutdown().await;
}

#[tokio::test]
async fn revoke_endpoints_invalidate_refresh_tokens() {
    let sim = start(|_| {}).await;
    let app = sim.state().config().app;
    let base = sim.base_url();
    let refresh = |rt: String| {
        let app = app.clone();
        let base = base.clone();
        async move {
            exchange(
                &base,
                "2026-03",
                &[
                    ("grant_type", "refresh_token"),
                    ("client_id", &app.client_id),
                    ("client_secret", &app.client_secret),
                    ("refresh_token", &rt),
                ],
            )
            .await
        }
    };
    let t = sim.issue_token(PORTAL).unwrap();
    let r = client()
        .post(format!("{base}/oauth/2026-03/token/revoke"))
        .form(&[
            ("token", t.refresh_token.as_str()),
            ("client_id", &app.client_id),
            ("client_secret", &app.client_secret),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        refresh(t.refresh_token.clone()).await.1["status"],
        "BAD_REFRESH_TOKEN"
    );

    let t = sim.issue_token(PORTAL).unwrap();
    let info = client()
        .get(format!(
            "{base}/oauth/v1/refresh-tokens/{}",
            t.refresh_token
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(info.status(), 200);
    let r = client()
        .delete(format!(
            "{base}/oauth/v1/refresh-tokens/{}",
            t.refresh_token
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(refresh(t.refresh_token.clone()).await.0, 400);
    let intro: Value = client()
        .post(format!("{base}/oauth/2026-03/token/introspect"))
        .form(&[
            ("token", t.refresh_token.as_str()),
            ("client_id", &app.client_id),
            ("client_secret", &app.client_secret),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(intro["active"], false);
    sim.shutdown().await;
}

#[tokio::test]
async fn token_endpoint_faults_give_5xx_and_429() {
    let sim = start(|_| {}).await;
    let app = sim.state().config().app;
    let t = sim.issue_token(PORTAL).unwrap();
    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", app.client_id.as_str()),
        ("client_secret", app.client_secret.as_str()),
        ("refresh_token", t.refresh_token.as_str()),
    ];
    sim.state()
        .update_faults(PORTAL, |f| {
            f.token_error_next = 1;
            f.token_error_status = 502;
        })
        .unwrap();
    assert_eq!(exchange(&sim.base_url(), "v1", &form).await.0, 502);
    assert_eq!(exchange(&sim.base_url(), "v1", &form).await.0, 200);
    sim.state()
        .update_faults(PORTAL, |f| {
            f.token_error_next = 1;
            f.token_error_status = 429;
        })
        .unwrap();
    let r = client()
        .post(format!("{}/oauth/v1/token", sim.base_url()))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("retry-after").is_some());
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["errorType"], "RATE_LIMIT");
    let c = sim.state().counters();
    assert_eq!(c.token_calls["refresh_token"], 3);
    assert_eq!(c.token_errors_injected, 2);
    sim.shutdown().await;
}
