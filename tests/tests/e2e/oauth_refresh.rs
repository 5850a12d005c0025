//! Token lifecycle against the simulator: many concurrent callers with an
//! expired token cause exactly one refresh at HubSpot (the simulator's
//! `token_calls` counter), within one instance and across instances; a 401
//! refreshes once and retries.

use std::sync::Arc;

use futures::future::join_all;
use hubspot_sim::SimConfig;
use hubsync_auth::{AccessTokenSource, ConnectionTokens, KmsCipher};
use hubsync_hubspot::{
    ClientConfig, HubSpotClient, OAuthClient, OAuthConfig, ObjectType, PortalId, Unlimited,
};
use hubsync_local::Environment;
use hubsync_store::{ConnectionStore, MemoryStore};
use secrecy::{ExposeSecret, SecretString};

use crate::helpers;

async fn connected(name: &str) -> anyhow::Result<(Environment, u64)> {
    helpers::start_connected(helpers::options(name, SimConfig::default())).await
}

fn oauth_client(env: &Environment) -> anyhow::Result<OAuthClient> {
    let app = env.sim.state().config().app;
    Ok(OAuthClient::new(OAuthConfig::new(
        env.sim.base_url(),
        app.client_id,
        SecretString::from(app.client_secret),
        format!("{}/oauth/callback", env.runner.base_url()),
    ))?)
}

fn cipher(env: &Environment) -> KmsCipher {
    KmsCipher::new(
        aws_sdk_kms::Client::new(&env.aws),
        env.resources.kms_key_id.clone(),
    )
}

/// Expire the token at HubSpot (sim clock) and in the connection.
async fn expire(
    env: &Environment,
    store: &impl ConnectionStore,
    portal: u64,
) -> anyhow::Result<()> {
    env.sim
        .state()
        .advance_clock(std::time::Duration::from_secs(1801));
    let mut conn = store
        .get_connection(PortalId(portal))
        .await?
        .ok_or_else(|| anyhow::anyhow!("no connection"))?;
    conn.access_token_expires_at = Some(chrono::Utc::now().timestamp() - 10);
    store.put_connection(&conn).await?;
    env.sim.state().reset_counters();
    Ok(())
}

fn refresh_calls(env: &Environment) -> u64 {
    env.sim
        .state()
        .counters()
        .token_calls
        .get("refresh_token")
        .copied()
        .unwrap_or(0)
}

async fn works_at_hubspot(env: &Environment, portal: u64, token: &SecretString) -> bool {
    let Ok(client) = HubSpotClient::with_rate_limiter(
        ClientConfig::new(env.sim.base_url()),
        Arc::new(Unlimited),
    ) else {
        return false;
    };
    client
        .list_page(
            token,
            PortalId(portal),
            ObjectType::Companies,
            None,
            1,
            &[],
            false,
        )
        .await
        .is_ok()
}

#[tokio::test]
async fn fifty_concurrent_callers_with_an_expired_token_cause_exactly_one_refresh(
) -> anyhow::Result<()> {
    let (env, portal) = connected("refresh-50").await?;
    let store = env.runner.store().clone();
    let old = {
        let tokens = ConnectionTokens::new(store.clone(), cipher(&env));
        tokens.access_token(PortalId(portal)).await?
    };
    expire(&env, &store, portal).await?;
    let tokens =
        ConnectionTokens::new(store.clone(), cipher(&env)).with_refresher(oauth_client(&env)?);

    let results = join_all((0..50).map(|_| tokens.access_token(PortalId(portal)))).await;
    assert_eq!(refresh_calls(&env), 1, "exactly one refresh at HubSpot");
    let tokens_seen: Vec<String> = results
        .into_iter()
        .map(|r| r.map(|t| t.expose_secret().to_owned()))
        .collect::<Result<_, _>>()?;
    assert_eq!(tokens_seen.len(), 50);
    assert!(
        tokens_seen.iter().all(|t| t == &tokens_seen[0]),
        "all 50 get the same token"
    );
    assert_ne!(tokens_seen[0], old.expose_secret(), "a new token");
    let new = SecretString::from(tokens_seen[0].clone());
    assert!(works_at_hubspot(&env, portal, &new).await);
    assert!(!works_at_hubspot(&env, portal, &old).await);

    let conn = store
        .get_connection(PortalId(portal))
        .await?
        .expect("connection");
    let now = chrono::Utc::now().timestamp();
    assert!(conn.access_token_expires_at.unwrap_or_default() > now + 1700);
    assert!(conn.refresh_token_ciphertext.is_some());
    env.stop().await;
    Ok(())
}

#[tokio::test]
async fn refresh_is_single_flight_across_instances_through_the_lease() -> anyhow::Result<()> {
    let (env, portal) = connected("refresh-instances").await?;
    // Ten "Lambda instances" (separate token sources, no shared memory but
    // the store) with five concurrent callers each. The memory store has
    // DynamoDB's conditional-write semantics, atomically (moto's are not
    // atomic under races).
    let shared = MemoryStore::new();
    let conn = env
        .runner
        .store()
        .get_connection(PortalId(portal))
        .await?
        .expect("connection");
    shared.put_connection(&conn).await?;
    expire(&env, &shared, portal).await?;
    let client = oauth_client(&env)?;
    let instances: Vec<_> = (0..10)
        .map(|_| ConnectionTokens::new(shared.clone(), cipher(&env)).with_refresher(client.clone()))
        .collect();
    let calls = instances
        .iter()
        .flat_map(|t| (0..5).map(move |_| t.access_token(PortalId(portal))));
    let results: Vec<String> = join_all(calls)
        .await
        .into_iter()
        .map(|r| r.map(|t| t.expose_secret().to_owned()))
        .collect::<Result<_, _>>()?;
    assert_eq!(refresh_calls(&env), 1, "one refresh for ten instances");
    assert_eq!(results.len(), 50);
    assert!(results.iter().all(|t| t == &results[0]));
    env.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_401_refreshes_once_and_the_call_succeeds() -> anyhow::Result<()> {
    let (env, portal) = connected("refresh-401").await?;
    // Expired at HubSpot only: the stored expiry still looks fine, so the
    // first call is sent with the old token and gets a 401.
    env.sim
        .state()
        .advance_clock(std::time::Duration::from_secs(1801));
    env.sim.state().reset_counters();
    let tokens = ConnectionTokens::new(env.runner.store().clone(), cipher(&env))
        .with_refresher(oauth_client(&env)?);
    let client = HubSpotClient::with_rate_limiter(
        ClientConfig::new(env.sim.base_url()),
        Arc::new(Unlimited),
    )?;
    client
        .list_page(
            &tokens,
            PortalId(portal),
            ObjectType::Companies,
            None,
            1,
            &[],
            false,
        )
        .await?;
    assert_eq!(client.stats().token_refreshes, 1);
    assert_eq!(refresh_calls(&env), 1);
    assert_eq!(env.sim.state().counters().auth_failures, 1);
    env.stop().await;
    Ok(())
}
