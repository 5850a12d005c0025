//! Tokens at rest, against KMS served by the local stack.

use hubsync_auth::{AccessTokenSource, ConnectionTokens, KmsCipher, TokenCipher};
use hubsync_hubspot::{PortalId, TokenError};
use hubsync_store::{Connection, ConnectionStatus, ConnectionStore, MemoryStore};
use secrecy::{ExposeSecret, SecretString};

async fn cipher() -> anyhow::Result<KmsCipher> {
    let kms = aws_sdk_kms::Client::new(&hubsync_testkit::aws_config().await?);
    let key = kms.create_key().description("hubsync test").send().await?;
    let key_id = key
        .key_metadata()
        .map(|m| m.key_id().to_string())
        .ok_or_else(|| anyhow::anyhow!("no key id"))?;
    Ok(KmsCipher::new(kms, key_id))
}

#[tokio::test]
async fn token_round_trips_and_the_ciphertext_does_not_contain_it() -> anyhow::Result<()> {
    let cipher = cipher().await?;
    let token = SecretString::from("pat-na1-secret-access-token".to_string());
    let ct = cipher.encrypt(PortalId(1), &token).await?;
    assert!(!ct.contains("secret-access-token"));
    let back = cipher.decrypt(PortalId(1), &ct).await?;
    assert_eq!(back.expose_secret(), token.expose_secret());
    Ok(())
}

#[tokio::test]
async fn ciphertext_of_one_portal_does_not_decrypt_for_another() -> anyhow::Result<()> {
    let cipher = cipher().await?;
    let ct = cipher
        .encrypt(PortalId(1), &SecretString::from("t".to_string()))
        .await?;
    assert!(cipher.decrypt(PortalId(2), &ct).await.is_err());
    assert!(cipher.decrypt(PortalId(1), "not base64!").await.is_err());
    Ok(())
}

fn connection(status: ConnectionStatus, ciphertext: Option<String>) -> Connection {
    let now = chrono::Utc::now();
    Connection {
        portal_id: PortalId(7),
        tenant_id: "t".into(),
        status,
        scopes: vec![],
        access_token_ciphertext: ciphertext,
        refresh_token_ciphertext: None,
        access_token_expires_at: None,
        created_at: now,
        updated_at: now,
        last_webhook_at: None,
        status_reason: None,
    }
}

#[tokio::test]
async fn connection_tokens_decrypt_for_active_portals_only() -> anyhow::Result<()> {
    let cipher = cipher().await?;
    let ct = cipher
        .encrypt(PortalId(7), &SecretString::from("tok".to_string()))
        .await?;
    let store = MemoryStore::new();
    let tokens = ConnectionTokens::new(store, cipher);
    assert_eq!(
        tokens.access_token(PortalId(7)).await.unwrap_err(),
        TokenError::NeedsReauth,
        "no connection"
    );
    tokens
        .store()
        .put_connection(&connection(ConnectionStatus::Active, Some(ct.clone())))
        .await?;
    assert_eq!(
        tokens.access_token(PortalId(7)).await?.expose_secret(),
        "tok"
    );
    tokens
        .store()
        .put_connection(&connection(ConnectionStatus::NeedsReauth, Some(ct)))
        .await?;
    assert_eq!(
        tokens.access_token(PortalId(7)).await.unwrap_err(),
        TokenError::NeedsReauth
    );
    Ok(())
}
