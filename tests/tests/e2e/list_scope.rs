//! List scope needs HubSpot's `crm.lists.read`, which the install link asks
//! for as an optional scope. An admin who declines it gets a connection
//! without it (recorded from the token response), and a list-scoped config
//! is then refused by validation with a message naming the scope — the
//! simulator answers the Lists API with HubSpot's 403 `MISSING_SCOPES`, as
//! HubSpot does. Reconnecting with the scope granted makes it valid.

use hubspot_sim::{ObjectType as SimType, SimConfig};
use hubsync_auth::{ConnectionTokens, KmsCipher};
use hubsync_hubspot::{ClientConfig, HubSpotClient, ObjectType, PortalId};
use hubsync_local::mapping::{validate_config, MappingConfig, MappingError};
use hubsync_store::ConnectionStore;

use crate::helpers;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_scope_without_crm_lists_read_is_refused_naming_the_scope() -> anyhow::Result<()> {
    let mut sim = SimConfig::default();
    sim.oauth.decline_optional_scopes = true;
    let (env, portal) = helpers::start(helpers::options("list-scope", sim)).await?;
    let trace = env.connect_portal_as(portal, "tenant-lists").await?;
    assert_eq!(trace.status, 200);
    let install = trace
        .hops
        .iter()
        .map(|h| h.url.as_str())
        .find(|u| u.contains("/oauth/authorize"))
        .unwrap_or_default();
    assert!(
        install.contains("optional_scope=crm.lists.read"),
        "the install link asks for the Lists API's scope: {install}"
    );
    let store = env.runner.store().clone();
    let conn = store.get_connection(PortalId(portal)).await?.unwrap();
    assert!(
        !conn.scopes.iter().any(|s| s == "crm.lists.read"),
        "declined: {:?}",
        conn.scopes
    );
    assert!(conn.scopes.iter().any(|s| s == "crm.objects.contacts.read"));

    let list = env
        .sim
        .state()
        .create_list(portal, SimType::Contacts, "Customers / Active")?;
    let mut config = MappingConfig::default();
    config.object_mut(ObjectType::Contacts).lists = vec![list.to_string()];
    let client = HubSpotClient::new(ClientConfig::new(env.sim.base_url()))?;
    let cipher = KmsCipher::new(
        aws_sdk_kms::Client::new(&env.aws),
        env.resources.kms_key_id.clone(),
    );
    let tokens = ConnectionTokens::new(store.clone(), cipher.clone());
    match validate_config(&client, &tokens, PortalId(portal), &config).await {
        Err(MappingError::Rejected(e)) => {
            assert_eq!(e.0.len(), 1, "{e}");
            assert_eq!(e.0[0].rule, format!("contacts scope list {list}"));
            assert!(e.0[0].message.contains("crm.lists.read"), "{e}");
            assert!(e.0[0].message.contains("reconnect"), "{e}");
        }
        other => panic!("expected a rejection naming the scope, got {other:?}"),
    }
    assert_eq!(env.sim.state().counters().missing_scope, 1);

    // The admin reconnects and grants the scope: the config is valid.
    env.sim
        .state()
        .update_config(|c| c.oauth.decline_optional_scopes = false);
    let trace = env.connect_portal_as(portal, "tenant-lists").await?;
    assert_eq!(trace.status, 200);
    let conn = store.get_connection(PortalId(portal)).await?.unwrap();
    assert!(conn.scopes.iter().any(|s| s == "crm.lists.read"));
    let tokens = ConnectionTokens::new(store.clone(), cipher);
    let valid = validate_config(&client, &tokens, PortalId(portal), &config).await?;
    assert_eq!(
        valid.object(ObjectType::Contacts).lists,
        vec![list.to_string()]
    );
    env.stop().await;
    Ok(())
}
