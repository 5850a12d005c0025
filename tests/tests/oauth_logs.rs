//! With every log line captured at `debug` (hubsync, the AWS SDK, HTTP
//! crates and the simulator alike):
//! * the whole OAuth life of a portal (install → consent → callback →
//!   worker sync → refresh → disconnect) never logs an access token, a
//!   refresh token, the code, the state, the client secret or the link
//!   secret;
//! * an uninstalled app turns into `invalid_grant` → the connection is
//!   `needs_reauth`, a clear error line is logged, the worker acknowledges
//!   the portal's messages (nothing retried or dead-lettered) and HubSpot is
//!   not called again for it.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use hubspot_sim::{props, ObjectType as SimType, SimConfig};
use hubsync_auth::{AccessTokenSource, ConnectionTokens, KmsCipher, TokenCipher};
use hubsync_hubspot::{OAuthClient, OAuthConfig, ObjectId, ObjectType, PortalId};
use hubsync_local::{wait_for, EnvOptions, Environment, QueueSettings};
use hubsync_store::{ConnectionStatus, ConnectionStore, RecordKey, RecordStore};
use secrecy::{ExposeSecret, SecretString};

const WAIT: Duration = Duration::from_secs(30);

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut b) = self.0.lock() {
            b.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The process-wide capture (one subscriber per test binary).
fn logs() -> &'static Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .try_init();
        captured
    })
}

fn log_text() -> String {
    logs()
        .0
        .lock()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

async fn environment(name: &str) -> anyhow::Result<(Environment, u64)> {
    logs();
    let env = Environment::start(
        hubsync_testkit::aws_config().await?,
        EnvOptions {
            prefix: hubsync_testkit::unique_name(name),
            sim: SimConfig::default(),
            queues: QueueSettings::default(),
            batch_size: None,
        },
    )
    .await?;
    let portal = env.sim.state().portal_ids()[0];
    Ok((env, portal))
}

fn cipher(env: &Environment) -> KmsCipher {
    KmsCipher::new(
        aws_sdk_kms::Client::new(&env.aws),
        env.resources.kms_key_id.clone(),
    )
}

async fn stored_tokens(env: &Environment, portal: u64) -> anyhow::Result<Vec<String>> {
    let conn = env
        .runner
        .store()
        .get_connection(PortalId(portal))
        .await?
        .ok_or_else(|| anyhow::anyhow!("no connection"))?;
    let mut out = Vec::new();
    for ct in [conn.access_token_ciphertext, conn.refresh_token_ciphertext]
        .into_iter()
        .flatten()
    {
        out.push(
            cipher(env)
                .decrypt(PortalId(portal), &ct)
                .await?
                .expose_secret()
                .to_owned(),
        );
    }
    Ok(out)
}

fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[tokio::test]
async fn the_whole_oauth_flow_logs_no_token_code_or_secret() -> anyhow::Result<()> {
    let (env, portal) = environment("logscan").await?;
    let mut secrets: Vec<String> = Vec::new();
    let app = env.sim.state().config().app;
    secrets.push(app.client_secret.clone());
    secrets.push(
        env.runner
            .oauth()
            .config
            .link_secret
            .expose_secret()
            .to_owned(),
    );

    // Connect.
    let trace = env.connect_portal_as(portal, "acme").await?;
    assert_eq!(trace.status, 200, "{}", trace.body);
    let callback = trace.callback_url().unwrap_or_default().to_owned();
    secrets.extend(query_param(&callback, "code"));
    secrets.extend(query_param(&callback, "state"));
    secrets.extend(stored_tokens(&env, portal).await?);

    // Sync a change through the worker.
    let id = env.sim.state().create_object(
        portal,
        SimType::Companies,
        props([("name", "Logged Co")]),
    )?;
    let key = RecordKey::new(PortalId(portal), ObjectType::Companies, ObjectId(id));
    wait_for("the company", WAIT, || async {
        Ok(env.runner.store().get_record(&key).await?)
    })
    .await?;

    // Refresh (expired at HubSpot and in the connection).
    env.sim.state().advance_clock(Duration::from_secs(1801));
    let mut conn = env
        .runner
        .store()
        .get_connection(PortalId(portal))
        .await?
        .expect("connection");
    conn.access_token_expires_at = Some(chrono::Utc::now().timestamp() - 1);
    env.runner.store().put_connection(&conn).await?;
    let tokens = ConnectionTokens::new(env.runner.store().clone(), cipher(&env)).with_refresher(
        OAuthClient::new(OAuthConfig::new(
            env.sim.base_url(),
            app.client_id.clone(),
            SecretString::from(app.client_secret.clone()),
            format!("{}/oauth/callback", env.runner.base_url()),
        ))?,
    );
    let fresh = tokens.access_token(PortalId(portal)).await?;
    secrets.push(fresh.expose_secret().to_owned());
    secrets.extend(stored_tokens(&env, portal).await?);

    // Disconnect (revokes the refresh token).
    let resp = reqwest::Client::new()
        .post(env.disconnect_link("acme", portal))
        .send()
        .await?;
    assert_eq!(resp.status(), 200);
    env.stop().await;

    secrets.sort();
    secrets.dedup();
    secrets.retain(|s| s.len() >= 8);
    assert!(secrets.len() >= 7, "collected {} secrets", secrets.len());
    let text = log_text();
    assert!(
        text.contains("HubSpot portal connected") && text.contains("access token refreshed"),
        "the capture works"
    );
    assert!(text.contains("DEBUG"), "captured at debug");
    for secret in &secrets {
        assert!(
            !text.contains(secret.as_str()),
            "a secret ({} chars) appears in the logs",
            secret.len()
        );
    }
    Ok(())
}

#[tokio::test]
async fn an_uninstalled_app_marks_the_portal_needs_reauth_and_its_messages_are_acknowledged(
) -> anyhow::Result<()> {
    let (env, portal) = environment("revoked").await?;
    env.connect_portal(portal).await?;
    let sim = env.sim.state();
    let first = sim.create_object(portal, SimType::Companies, props([("name", "Before")]))?;
    wait_for("the first company", WAIT, || async {
        Ok(env
            .runner
            .store()
            .get_record(&RecordKey::new(
                PortalId(portal),
                ObjectType::Companies,
                ObjectId(first),
            ))
            .await?)
    })
    .await?;

    // The admin uninstalls the app in HubSpot: every token is revoked.
    sim.uninstall(portal)?;
    sim.reset_counters();
    sim.create_object(portal, SimType::Companies, props([("name", "After")]))?;
    let conn = wait_for("needs_reauth", WAIT, || async {
        Ok(env
            .runner
            .store()
            .get_connection(PortalId(portal))
            .await?
            .filter(|c| c.status == ConnectionStatus::NeedsReauth))
    })
    .await?;
    assert_eq!(conn.status_reason.as_deref(), Some("invalid_grant"));
    assert!(conn.access_token_ciphertext.is_none() && conn.refresh_token_ciphertext.is_none());
    assert!(sim.wait_webhooks_idle(WAIT).await);
    let counters = sim.counters();
    assert_eq!(
        counters.token_calls.get("refresh_token"),
        Some(&1),
        "one refresh attempt, refused"
    );

    // Further changes cost no HubSpot call and are not retried.
    sim.reset_counters();
    sim.create_object(portal, SimType::Companies, props([("name", "Later")]))?;
    assert!(sim.wait_webhooks_idle(WAIT).await);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let counters = sim.counters();
    assert!(
        counters
            .requests
            .keys()
            .all(|route| !route.starts_with("POST /crm") && !route.starts_with("GET /crm")),
        "no CRM call for a portal that needs reauth: {:?}",
        counters.requests
    );
    assert!(counters.token_calls.is_empty(), "no token call either");
    let stats = env.runner.stats();
    assert_eq!(
        stats.failed_messages, 0,
        "messages acknowledged, not retried"
    );
    assert_eq!(env.dlq_depth().await?, 0, "nothing dead-lettered");
    let text = log_text();
    // One span per unit of work, carrying ids (never record data).
    for span in [
        "delivery{bytes=",
        "sqs_batch{messages=",
        "portal_group{portal=",
    ] {
        assert!(text.contains(span), "no `{span}` span in the logs");
    }
    assert!(
        text.contains(&format!(
            "portal_group{{portal={portal} object_type=companies}}"
        )),
        "the group span names its portal and type"
    );
    let line = text
        .lines()
        .find(|l| {
            l.contains("HubSpot refused the refresh token")
                && l.contains(&format!("portal={portal}"))
        })
        .unwrap_or_default();
    assert!(line.contains("ERROR"), "a clear error line: {line}");
    assert!(line.contains("needs_reauth"), "{line}");

    // Using the source again fails fast without calling HubSpot.
    let tokens = ConnectionTokens::new(env.runner.store().clone(), cipher(&env));
    assert_eq!(
        tokens.access_token(PortalId(portal)).await.unwrap_err(),
        hubsync_hubspot::TokenError::NeedsReauth
    );
    env.stop().await;
    Ok(())
}
