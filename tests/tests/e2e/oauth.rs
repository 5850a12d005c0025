//! "Connect HubSpot" end to end: the app's signed install link → HubSpot's
//! consent (the simulator) → `/oauth/callback` (the local runner, same
//! handler code as the Lambda) → DynamoDB (moto) with KMS-encrypted tokens
//! → the initial sync job on the sync-jobs queue (moto). Every bad path
//! ends on a clear page with the right status and stores nothing.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use hubspot_sim::{props, ObjectType as SimType, SimConfig};
use hubsync_auth::{KmsCipher, TokenCipher};
use hubsync_hubspot::{OAuthVersion, ObjectId, ObjectType, PortalId};
use hubsync_local::{
    follow, wait_for, Browser, EnvOptions, Environment, QueueSettings, RunnerConfig,
};
use hubsync_store::{Connection, ConnectionStatus, ConnectionStore, RecordKey, RecordStore};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

async fn environment_with(
    name: &str,
    configure: impl FnOnce(&mut RunnerConfig),
) -> anyhow::Result<(Environment, u64)> {
    let aws = hubsync_testkit::aws_config().await?;
    let env = Environment::start_with(
        aws,
        EnvOptions {
            prefix: hubsync_testkit::unique_name(name),
            sim: SimConfig {
                portal_count: 2,
                ..SimConfig::default()
            },
            queues: QueueSettings::default(),
            batch_size: None,
        },
        configure,
    )
    .await?;
    let portal = env.sim.state().portal_ids()[0];
    Ok((env, portal))
}

async fn environment(name: &str) -> anyhow::Result<(Environment, u64)> {
    environment_with(name, |_| {}).await
}

async fn connection(env: &Environment, portal: u64) -> anyhow::Result<Option<Connection>> {
    Ok(env.runner.store().get_connection(PortalId(portal)).await?)
}

/// The connection's item exactly as DynamoDB holds it.
async fn raw_connection_item(env: &Environment, portal: u64) -> anyhow::Result<String> {
    let out = env
        .runner
        .store()
        .client()
        .get_item()
        .table_name(&env.resources.store.control_table)
        .key("pk", AttributeValue::S(format!("CONN#{portal}")))
        .key("sk", AttributeValue::S("CONN".into()))
        .consistent_read(true)
        .send()
        .await?;
    let sorted: std::collections::BTreeMap<_, _> =
        out.item.unwrap_or_default().into_iter().collect();
    Ok(format!("{sorted:?}"))
}

/// Every Control-table item whose key starts with `prefix`.
async fn control_items(env: &Environment, prefix: &str) -> anyhow::Result<usize> {
    let out = env
        .runner
        .store()
        .client()
        .scan()
        .table_name(&env.resources.store.control_table)
        .send()
        .await?;
    Ok(out
        .items()
        .iter()
        .filter(|i| matches!(i.get("pk"), Some(AttributeValue::S(pk)) if pk.starts_with(prefix)))
        .count())
}

/// Drains the sync-jobs queue.
async fn sync_jobs(env: &Environment) -> anyhow::Result<Vec<Value>> {
    let sqs = aws_sdk_sqs::Client::new(&env.aws);
    let mut jobs = Vec::new();
    loop {
        let out = sqs
            .receive_message()
            .queue_url(&env.resources.sync_jobs_queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await?;
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            return Ok(jobs);
        }
        for m in messages {
            jobs.push(serde_json::from_str(m.body().unwrap_or("null"))?);
            sqs.delete_message()
                .queue_url(&env.resources.sync_jobs_queue_url)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .send()
                .await?;
        }
    }
}

fn cipher(env: &Environment) -> KmsCipher {
    KmsCipher::new(
        aws_sdk_kms::Client::new(&env.aws),
        env.resources.kms_key_id.clone(),
    )
}

fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Asks the simulator's consent page for a code (as the browser would),
/// with `state`, without calling the callback.
async fn authorize(env: &Environment, portal: u64, state: &str) -> anyhow::Result<String> {
    env.sim.state().set_next_authorize_portal(Some(portal));
    let app = env.sim.state().config().app;
    let mut url = url::Url::parse(&format!("{}/oauth/authorize", env.sim.base_url()))?;
    url.query_pairs_mut()
        .append_pair("client_id", &app.client_id)
        .append_pair(
            "redirect_uri",
            &format!("{}/oauth/callback", env.runner.base_url()),
        )
        .append_pair("scope", "crm.objects.companies.read")
        .append_pair("state", state);
    let trace = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?
        .get(url)
        .send()
        .await?;
    let location = trace
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    query_param(&location, "code").ok_or_else(|| anyhow::anyhow!("no code in {location}"))
}

/// A browser that followed a fresh install link up to HubSpot's consent
/// page (not visited), and the state in that redirect: the browser holds
/// the flow's cookie.
async fn fresh_state(env: &Environment, tenant: &str) -> anyhow::Result<(String, Browser)> {
    let browser = Browser::new();
    let trace = browser
        .follow_until(&env.install_link(tenant), |next| {
            next.contains("/oauth/authorize")
        })
        .await?;
    assert_eq!(trace.status, 302, "{}", trace.body);
    let location = trace
        .hops
        .last()
        .and_then(|h| h.location.clone())
        .unwrap_or_default();
    let state = query_param(&location, "state")
        .ok_or_else(|| anyhow::anyhow!("no state in the redirect"))?;
    Ok((state, browser))
}

async fn get(url: &str) -> anyhow::Result<(u16, String)> {
    let trace = follow(url).await?;
    Ok((trace.status, trace.body))
}

/// Nothing stored for the portal and no job queued.
async fn assert_nothing_stored(env: &Environment, portal: u64) -> anyhow::Result<()> {
    assert!(
        connection(env, portal).await?.is_none(),
        "no connection may be stored"
    );
    assert_eq!(
        control_items(env, "CONN#").await?,
        0,
        "no connection at all"
    );
    assert!(
        sync_jobs(env).await?.is_empty(),
        "no sync job may be queued"
    );
    Ok(())
}

#[tokio::test]
async fn install_authorize_callback_stores_encrypted_tokens_and_queues_the_initial_sync(
) -> anyhow::Result<()> {
    let (env, portal) = environment("oauth-happy").await?;
    let trace = env.connect_portal_as(portal, "acme").await?;
    assert_eq!(trace.status, 200, "{}", trace.body);
    assert!(trace.body.contains("HubSpot connected"), "{}", trace.body);

    // install → 302 to the consent page with the configured parameters.
    let authorize = trace.hops[0].location.clone().unwrap_or_default();
    assert_eq!(trace.hops[0].status, 302);
    assert!(authorize.starts_with(&format!("{}/oauth/authorize?", env.sim.base_url())));
    let app = env.sim.state().config().app;
    assert_eq!(
        query_param(&authorize, "client_id").as_deref(),
        Some(app.client_id.as_str())
    );
    assert_eq!(
        query_param(&authorize, "redirect_uri"),
        Some(format!("{}/oauth/callback", env.runner.base_url()))
    );
    assert!(authorize.contains("scope=crm.objects.companies.read%20crm.objects.contacts.read"));
    let state = query_param(&authorize, "state").unwrap_or_default();
    assert_eq!(
        state.len(),
        43,
        "256 random bits, base64url without padding"
    );

    // The connection: tenant, scopes, active, encrypted tokens, expiry.
    let conn = connection(&env, portal)
        .await?
        .expect("a connection is stored");
    assert_eq!(conn.tenant_id, "acme");
    assert_eq!(conn.status, ConnectionStatus::Active);
    assert!(conn.scopes.iter().any(|s| s == "crm.objects.deals.read"));
    let now = chrono::Utc::now().timestamp();
    let expires = conn.access_token_expires_at.unwrap_or_default();
    assert!((now + 1700..=now + 1800).contains(&expires), "{expires}");
    let kms = cipher(&env);
    let access = kms
        .decrypt(
            PortalId(portal),
            conn.access_token_ciphertext.as_deref().unwrap_or_default(),
        )
        .await?;
    let refresh = kms
        .decrypt(
            PortalId(portal),
            conn.refresh_token_ciphertext.as_deref().unwrap_or_default(),
        )
        .await?;
    assert!(!access.expose_secret().is_empty() && !refresh.expose_secret().is_empty());
    let raw = raw_connection_item(&env, portal).await?;
    assert!(raw.contains("access_token_ciphertext"));
    assert!(
        !raw.contains(access.expose_secret()),
        "the raw item holds the access token in plaintext"
    );
    assert!(
        !raw.contains(refresh.expose_secret()),
        "the raw item holds the refresh token in plaintext"
    );
    // The state is stored only as a digest.
    assert!(!format!("{:?}", env.runner.store().list_connections().await?).contains(&state));

    // The initial full sync is queued.
    let jobs = sync_jobs(&env).await?;
    assert_eq!(
        jobs,
        vec![json!({
            "kind": "initial_sync",
            "portalId": portal,
            "objectTypes": ["companies", "contacts", "deals"],
        })]
    );
    let counters = env.sim.state().counters();
    assert_eq!(counters.token_calls.get("authorization_code"), Some(&1));
    assert!(counters
        .requests
        .contains_key("POST /oauth/{version}/token"));

    // And the tokens sync: a change lands through the worker.
    let id = env.sim.state().create_object(
        portal,
        SimType::Companies,
        props([("name", "Acme"), ("domain", "acme.io")]),
    )?;
    wait_for("the company", Duration::from_secs(20), || async {
        Ok(env
            .runner
            .store()
            .get_record(&RecordKey::new(
                PortalId(portal),
                ObjectType::Companies,
                ObjectId(id),
            ))
            .await?)
    })
    .await?;
    env.stop().await;
    Ok(())
}

#[tokio::test]
async fn v1_endpoint_and_introspection_fallback_when_hub_id_is_missing() -> anyhow::Result<()> {
    let (env, portal) =
        environment_with("oauth-v1", |c| c.oauth_version = OAuthVersion::V1).await?;
    env.sim
        .state()
        .update_config(|c| c.oauth.include_hub_id = false);
    let trace = env.connect_portal_as(portal, "acme").await?;
    assert_eq!(trace.status, 200, "{}", trace.body);
    assert_eq!(
        connection(&env, portal).await?.map(|c| c.tenant_id),
        Some("acme".into())
    );
    let counters = env.sim.state().counters();
    assert_eq!(counters.requests.get("POST /oauth/v1/token"), Some(&1));
    assert_eq!(
        counters.requests.get("GET /oauth/v1/access-tokens/{token}"),
        Some(&1),
        "the portal came from the v1 token info"
    );
    env.stop().await;

    // The date-versioned endpoint falls back to introspection.
    let (env, portal) = environment("oauth-introspect").await?;
    env.sim
        .state()
        .update_config(|c| c.oauth.include_hub_id = false);
    let trace = env.connect_portal_as(portal, "acme").await?;
    assert_eq!(trace.status, 200, "{}", trace.body);
    assert!(connection(&env, portal).await?.is_some());
    assert_eq!(
        env.sim
            .state()
            .counters()
            .requests
            .get("POST /oauth/{version}/token/introspect"),
        Some(&1)
    );
    env.stop().await;
    Ok(())
}

#[tokio::test]
async fn unsigned_tampered_and_expired_install_links_are_refused() -> anyhow::Result<()> {
    let (env, portal) = environment("oauth-links").await?;
    let base = env.runner.base_url();

    let (status, body) = get(&format!("{base}/oauth/install?tenant=acme")).await?;
    assert_eq!(status, 401);
    assert!(body.contains("missing its signature"), "{body}");

    let link = env.install_link("acme");
    let (status, body) = get(&link.replace("tenant=acme", "tenant=evil")).await?;
    assert_eq!(status, 403);
    assert!(body.contains("signature does not match"), "{body}");

    let expires = query_param(&link, "expires").unwrap_or_default();
    let later: i64 = expires.parse::<i64>()? + 1;
    let (status, _) =
        get(&link.replace(&format!("expires={expires}"), &format!("expires={later}"))).await?;
    assert_eq!(status, 403, "a changed expiry breaks the signature");

    let expired = oauth_callback::install_url(
        &base,
        &env.runner.oauth().config.link_secret,
        "acme",
        chrono::Utc::now().timestamp() - 1,
    );
    let (status, body) = get(&expired).await?;
    assert_eq!(status, 403);
    assert!(body.contains("expired"), "{body}");

    let wrong_key = oauth_callback::install_url(
        &base,
        &SecretString::from("not-the-link-secret".to_string()),
        "acme",
        chrono::Utc::now().timestamp() + 60,
    );
    assert_eq!(get(&wrong_key).await?.0, 403);

    assert_eq!(control_items(&env, "OAUTH_STATE#").await?, 0, "no state");
    assert!(!body.contains("panicked") && !body.contains("Error {"));
    assert_nothing_stored(&env, portal).await?;
    assert_eq!(
        env.sim
            .state()
            .counters()
            .requests
            .get("GET /oauth/authorize"),
        None,
        "nobody was sent to HubSpot"
    );
    env.stop().await;
    Ok(())
}

#[tokio::test]
async fn missing_unknown_expired_and_reused_states_are_refused() -> anyhow::Result<()> {
    let (env, portal) = environment("oauth-states").await?;
    let base = env.runner.base_url();

    // Missing.
    let code = authorize(&env, portal, "ignored").await?;
    let (status, body) = get(&format!("{base}/oauth/callback?code={code}")).await?;
    assert_eq!(status, 400);
    assert!(body.contains("without the security token"), "{body}");

    // Unknown.
    let (status, body) = get(&format!(
        "{base}/oauth/callback?code={code}&state=never-issued"
    ))
    .await?;
    assert_eq!(status, 400);
    assert!(body.contains("unknown"), "{body}");

    // Expired: a state whose TTL has passed (DynamoDB's TTL removal is lazy).
    use hubsync_store::{OAuthStateStore, PendingAuth};
    env.runner
        .store()
        .put_oauth_state(
            "an-expired-state",
            &PendingAuth {
                tenant_id: "acme".into(),
                expires_at_epoch: chrono::Utc::now().timestamp() - 1,
                browser_digest: hubsync_store::state_digest("no-browser-has-it"),
                defer_initial_sync: false,
            },
        )
        .await?;
    let code = authorize(&env, portal, "an-expired-state").await?;
    let (status, body) = get(&format!(
        "{base}/oauth/callback?code={code}&state=an-expired-state"
    ))
    .await?;
    assert_eq!(status, 400);
    assert!(body.contains("expired"), "{body}");
    assert_eq!(
        env.sim
            .state()
            .counters()
            .token_calls
            .get("authorization_code"),
        None,
        "no code was exchanged for a bad state"
    );
    assert_nothing_stored(&env, portal).await?;

    // Reused: a completed callback replayed.
    let trace = env.connect_portal_as(portal, "acme").await?;
    assert_eq!(trace.status, 200);
    let before = raw_connection_item(&env, portal).await?;
    let jobs = sync_jobs(&env).await?.len();
    assert_eq!(jobs, 1);
    let callback = trace.callback_url().unwrap_or_default().to_owned();
    let (status, body) = get(&callback).await?;
    assert_eq!(status, 400);
    assert!(body.contains("already"), "{body}");
    assert_eq!(
        raw_connection_item(&env, portal).await?,
        before,
        "unchanged"
    );
    assert!(sync_jobs(&env).await?.is_empty());
    env.stop().await;
    Ok(())
}

#[tokio::test]
async fn access_denied_and_other_hubspot_errors_end_on_a_clear_page() -> anyhow::Result<()> {
    let (env, portal) = environment("oauth-denied").await?;
    env.sim
        .state()
        .set_consent_denied(portal, Some(String::new()))?;
    let trace = env.connect_portal_as(portal, "acme").await?;
    assert_eq!(trace.status, 403, "{}", trace.body);
    assert!(trace.body.contains("declined"), "{}", trace.body);
    assert!(trace.body.contains("<h1>"), "an HTML page");

    let (state, browser) = fresh_state(&env, "acme").await?;
    let trace = browser
        .follow(&format!(
            "{}/oauth/callback?error=server_error&error_description=boom&state={state}",
            env.runner.base_url()
        ))
        .await?;
    let (status, body) = (trace.status, trace.body);
    assert_eq!(status, 400);
    assert!(body.contains("server_error"), "{body}");
    assert_nothing_stored(&env, portal).await?;
    env.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_code_used_twice_is_refused_and_changes_nothing() -> anyhow::Result<()> {
    let (env, portal) = environment("oauth-code-twice").await?;
    let base = env.runner.base_url();
    let (first, browser) = fresh_state(&env, "acme").await?;
    let code = authorize(&env, portal, &first).await?;
    let trace = browser
        .follow(&format!("{base}/oauth/callback?code={code}&state={first}"))
        .await?;
    assert_eq!(trace.status, 200, "{}", trace.body);
    let before = raw_connection_item(&env, portal).await?;
    assert_eq!(sync_jobs(&env).await?.len(), 1);

    let (second, browser) = fresh_state(&env, "acme").await?;
    let trace = browser
        .follow(&format!("{base}/oauth/callback?code={code}&state={second}"))
        .await?;
    let (status, body) = (trace.status, trace.body);
    assert_eq!(status, 400);
    assert!(body.contains("already used"), "{body}");
    assert_eq!(raw_connection_item(&env, portal).await?, before);
    assert!(sync_jobs(&env).await?.is_empty());
    env.stop().await;
    Ok(())
}

#[tokio::test]
async fn token_endpoint_5xx_and_429_are_retried_then_reported() -> anyhow::Result<()> {
    let (env, portal) = environment("oauth-faults").await?;

    // Persistent 503: a clear 502 page, nothing stored.
    env.sim.state().update_faults(portal, |f| {
        f.token_error_next = 10;
        f.token_error_status = 503;
    })?;
    let trace = env.connect_portal_as(portal, "acme").await?;
    assert_eq!(trace.status, 502, "{}", trace.body);
    assert!(
        trace.body.contains("HubSpot is not responding"),
        "{}",
        trace.body
    );
    assert_eq!(
        env.sim.state().counters().token_errors_injected,
        3,
        "bounded retries: three attempts"
    );
    assert_nothing_stored(&env, portal).await?;

    // Persistent 429: a clear 503 page, nothing stored.
    env.sim.state().update_faults(portal, |f| {
        f.token_error_next = 10;
        f.token_error_status = 429;
    })?;
    let trace = env.connect_portal_as(portal, "acme").await?;
    assert_eq!(trace.status, 503, "{}", trace.body);
    assert!(trace.body.contains("HubSpot is busy"), "{}", trace.body);
    assert_nothing_stored(&env, portal).await?;

    // One 503 is absorbed by a retry.
    env.sim.state().update_faults(portal, |f| {
        f.token_error_next = 1;
        f.token_error_status = 503;
    })?;
    let trace = env.connect_portal_as(portal, "acme").await?;
    assert_eq!(trace.status, 200, "{}", trace.body);
    assert!(connection(&env, portal).await?.is_some());
    env.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_portal_bound_to_another_tenant_is_refused_and_reconnecting_reactivates(
) -> anyhow::Result<()> {
    let (env, portal) = environment("oauth-tenants").await?;
    assert_eq!(env.connect_portal_as(portal, "acme").await?.status, 200);
    assert_eq!(sync_jobs(&env).await?.len(), 1);
    let before = raw_connection_item(&env, portal).await?;

    let trace = env.connect_portal_as(portal, "globex").await?;
    assert_eq!(trace.status, 409, "{}", trace.body);
    assert!(
        trace
            .body
            .contains("already connected to another workspace"),
        "{}",
        trace.body
    );
    assert_eq!(
        raw_connection_item(&env, portal).await?,
        before,
        "unchanged"
    );
    assert!(sync_jobs(&env).await?.is_empty());

    // The same tenant reconnects a portal that needs re-authorisation.
    let created = connection(&env, portal).await?.map(|c| c.created_at);
    env.runner
        .store()
        .set_connection_status(
            PortalId(portal),
            ConnectionStatus::NeedsReauth,
            Some("invalid_grant"),
        )
        .await?;
    assert_eq!(env.connect_portal_as(portal, "acme").await?.status, 200);
    let conn = connection(&env, portal).await?.expect("connection");
    assert_eq!(conn.status, ConnectionStatus::Active);
    assert_eq!(conn.status_reason, None);
    assert!(conn.access_token_ciphertext.is_some() && conn.refresh_token_ciphertext.is_some());
    assert_eq!(Some(conn.created_at), created, "created_at is kept");
    assert_eq!(sync_jobs(&env).await?.len(), 1, "a new initial sync");
    env.stop().await;
    Ok(())
}

#[tokio::test]
async fn disconnect_revokes_at_hubspot_deletes_tokens_and_keeps_records() -> anyhow::Result<()> {
    let (env, portal) = environment("oauth-disconnect").await?;
    env.connect_portal(portal).await?;
    let refresh = {
        let conn = connection(&env, portal).await?.expect("connection");
        cipher(&env)
            .decrypt(
                PortalId(portal),
                conn.refresh_token_ciphertext.as_deref().unwrap_or_default(),
            )
            .await?
    };
    let id =
        env.sim
            .state()
            .create_object(portal, SimType::Companies, props([("name", "Kept Inc")]))?;
    let key = RecordKey::new(PortalId(portal), ObjectType::Companies, ObjectId(id));
    wait_for("the company", Duration::from_secs(20), || async {
        Ok(env.runner.store().get_record(&key).await?)
    })
    .await?;

    let http = reqwest::Client::new();
    let tenant = format!("tenant-{portal}");
    // Unsigned, tampered, wrong tenant, wrong method.
    let url = env.disconnect_link(&tenant, portal);
    let unsigned = format!(
        "{}/oauth/disconnect?tenant={tenant}&portal={portal}",
        env.runner.base_url()
    );
    assert_eq!(http.post(&unsigned).send().await?.status(), 401);
    let other_portal = url.replace(&format!("portal={portal}"), "portal=1");
    assert_eq!(http.post(&other_portal).send().await?.status(), 403);
    let wrong_tenant = env.disconnect_link("globex", portal);
    assert_eq!(http.post(&wrong_tenant).send().await?.status(), 404);
    assert_eq!(http.get(&url).send().await?.status(), 405);
    assert_eq!(
        connection(&env, portal).await?.map(|c| c.status),
        Some(ConnectionStatus::Active)
    );

    let resp = http.post(&url).send().await?;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await?;
    assert_eq!(
        body,
        json!({"portalId": portal, "status": "disconnected", "revokedAtHubSpot": true})
    );
    let conn = connection(&env, portal)
        .await?
        .expect("the connection is kept");
    assert_eq!(conn.status, ConnectionStatus::Disconnected);
    assert!(conn.access_token_ciphertext.is_none() && conn.refresh_token_ciphertext.is_none());
    assert!(
        env.runner.store().get_record(&key).await?.is_some(),
        "records are kept"
    );
    // The grant is gone at HubSpot.
    let mut oauth = hubsync_hubspot::OAuthConfig::new(
        env.sim.base_url(),
        env.sim.state().config().app.client_id,
        SecretString::from(env.sim.state().config().app.client_secret),
        format!("{}/oauth/callback", env.runner.base_url()),
    );
    oauth.retry.max_attempts = 1;
    let err = hubsync_hubspot::OAuthClient::new(oauth)?
        .refresh(&refresh)
        .await
        .expect_err("revoked");
    assert!(err.is_revoked_grant(), "{err}");
    // Disconnecting again is harmless.
    assert_eq!(http.post(&url).send().await?.status(), 200);
    env.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_state_minted_in_another_browser_is_refused_and_an_install_link_works_once(
) -> anyhow::Result<()> {
    let (env, portal) = environment("oauth-csrf").await?;

    // Tenant A's admin mints a state with his own install link and sends
    // HubSpot's consent URL (carrying his state) to a victim.
    let attacker = Browser::new();
    let trace = attacker
        .follow_until(&env.install_link("tenant-a"), |next| {
            next.contains("/oauth/authorize")
        })
        .await?;
    let consent_url = trace
        .hops
        .last()
        .and_then(|h| h.location.clone())
        .ok_or_else(|| anyhow::anyhow!("no consent redirect"))?;

    // The victim approves in her browser — without the flow's cookie, and
    // with a cookie of a flow of her own: refused both times, nothing
    // stored, no code exchanged.
    env.sim.state().set_next_authorize_portal(Some(portal));
    let victim = Browser::new();
    let refused = victim.follow(&consent_url).await?;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.body.contains("another browser"), "{}", refused.body);
    let own = victim
        .follow_until(&env.install_link("tenant-b"), |next| {
            next.contains("/oauth/authorize")
        })
        .await?;
    assert_eq!(own.status, 302);
    env.sim.state().set_next_authorize_portal(Some(portal));
    let refused = victim.follow(&consent_url).await?;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_nothing_stored(&env, portal).await?;
    assert_eq!(
        env.sim
            .state()
            .counters()
            .token_calls
            .get("authorization_code"),
        None,
        "no code was exchanged"
    );

    // The normal flow still connects.
    let trace = env.connect_portal_as(portal, "tenant-b").await?;
    assert_eq!(trace.status, 200, "{}", trace.body);
    assert_eq!(
        env.runner
            .store()
            .get_connection(PortalId(portal))
            .await?
            .map(|c| c.tenant_id),
        Some("tenant-b".to_owned())
    );

    // An install link starts one flow: its second use is refused and
    // mints no state.
    let link = env.install_link("tenant-b");
    let first = Browser::new()
        .follow_until(&link, |next| next.contains("/oauth/authorize"))
        .await?;
    assert_eq!(first.status, 302);
    let states = control_items(&env, "OAUTH_STATE#").await?;
    let (status, body) = get(&link).await?;
    assert_eq!(status, 403);
    assert!(body.contains("already used"), "{body}");
    assert_eq!(control_items(&env, "OAUTH_STATE#").await?, states);
    env.stop().await;
    Ok(())
}
