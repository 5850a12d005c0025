//! OAuth states and the tenant-guarded connection write, the same cases on
//! `MemoryStore` and on `DynamoStore` (moto, fresh tables per test).

use hubsync_mapping::ids::PortalId;
use hubsync_store::{
    create_tables, ClaimOutcome, Connection, ConnectionStatus, ConnectionStore, DynamoStore,
    OAuthStateStore, PendingAuth, StateOutcome, StoreConfig,
};

async fn dynamo() -> DynamoStore {
    let sdk = hubsync_testkit::aws_config()
        .await
        .expect("local AWS stack");
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let config = StoreConfig::new(
        hubsync_testkit::unique_name("records"),
        hubsync_testkit::unique_name("control"),
    );
    create_tables(&client, &config).await.expect("tables");
    DynamoStore::new(client, config)
}

fn pending(tenant: &str, expires: i64) -> PendingAuth {
    PendingAuth {
        tenant_id: tenant.into(),
        expires_at_epoch: expires,
        browser_digest: hubsync_store::state_digest(&format!("nonce-{tenant}")),
        defer_initial_sync: tenant.ends_with("-deferred"),
    }
}

fn connection(tenant: &str) -> Connection {
    let now = chrono::Utc::now();
    Connection {
        portal_id: PortalId(42),
        tenant_id: tenant.into(),
        status: ConnectionStatus::Active,
        scopes: vec!["crm.objects.contacts.read".into()],
        access_token_ciphertext: Some(format!("ct-{tenant}")),
        refresh_token_ciphertext: Some("rt".into()),
        access_token_expires_at: Some(1),
        created_at: now,
        updated_at: now,
        last_webhook_at: None,
        status_reason: None,
    }
}

async fn a_state_is_used_once_then_reported_as_used<S: OAuthStateStore>(s: S) {
    s.put_oauth_state("s1", &pending("acme", 2_000))
        .await
        .unwrap();
    assert_eq!(
        s.consume_oauth_state("s1", 1_000).await.unwrap(),
        StateOutcome::Consumed {
            tenant_id: "acme".into(),
            browser_digest: Some(hubsync_store::state_digest("nonce-acme")),
            defer_initial_sync: false,
        }
    );
    assert_eq!(
        s.consume_oauth_state("s1", 1_000).await.unwrap(),
        StateOutcome::AlreadyUsed
    );
    assert_eq!(
        s.consume_oauth_state("never", 1_000).await.unwrap(),
        StateOutcome::Unknown
    );
    assert!(
        s.put_oauth_state("s1", &pending("evil", 2_000))
            .await
            .is_err(),
        "a state cannot be overwritten"
    );
}

async fn a_lapsed_state_is_expired_and_used_up<S: OAuthStateStore>(s: S) {
    s.put_oauth_state("s2", &pending("acme", 1_000))
        .await
        .unwrap();
    assert_eq!(
        s.consume_oauth_state("s2", 1_000).await.unwrap(),
        StateOutcome::Expired
    );
    assert_eq!(
        s.consume_oauth_state("s2", 999).await.unwrap(),
        StateOutcome::AlreadyUsed
    );
}

async fn a_connection_is_claimed_by_one_tenant_only<S: OAuthStateStore + ConnectionStore>(s: S) {
    assert_eq!(
        s.claim_connection(&connection("acme")).await.unwrap(),
        ClaimOutcome::Stored
    );
    assert_eq!(
        s.claim_connection(&connection("globex")).await.unwrap(),
        ClaimOutcome::OtherTenant
    );
    let stored = s.get_connection(PortalId(42)).await.unwrap().unwrap();
    assert_eq!(stored.tenant_id, "acme");
    assert_eq!(stored.access_token_ciphertext.as_deref(), Some("ct-acme"));
    // The same tenant replaces it (re-connect), whatever its status.
    s.set_connection_status(
        PortalId(42),
        ConnectionStatus::NeedsReauth,
        Some("invalid_grant"),
    )
    .await
    .unwrap();
    let mut again = connection("acme");
    again.access_token_ciphertext = Some("ct-new".into());
    assert_eq!(
        s.claim_connection(&again).await.unwrap(),
        ClaimOutcome::Stored
    );
    let stored = s.get_connection(PortalId(42)).await.unwrap().unwrap();
    assert_eq!(stored.status, ConnectionStatus::Active);
    assert_eq!(stored.access_token_ciphertext.as_deref(), Some("ct-new"));
}

async fn an_install_link_is_claimed_once<S: OAuthStateStore>(s: S) {
    let link = hubsync_store::state_digest("signature-of-a-link");
    assert!(s.claim_install_link(&link, 2_000).await.unwrap());
    assert!(
        !s.claim_install_link(&link, 2_000).await.unwrap(),
        "a second use"
    );
    let other = hubsync_store::state_digest("another-link");
    assert!(s.claim_install_link(&other, 2_000).await.unwrap());
}

macro_rules! both {
    ($($case:ident),*) => {
        mod memory {
            $( #[tokio::test] async fn $case() { super::$case(hubsync_store::MemoryStore::new()).await } )*
        }
        mod dynamo {
            $( #[tokio::test] async fn $case() { super::$case(super::dynamo().await).await } )*
        }
    };
}

both!(
    a_state_is_used_once_then_reported_as_used,
    a_lapsed_state_is_expired_and_used_up,
    a_connection_is_claimed_by_one_tenant_only,
    an_install_link_is_claimed_once
);
