//! A portal's connection (Control table, `CONN#{portal}`): its state,
//! tenant, scopes and KMS-encrypted tokens.

use std::collections::HashMap;
use std::fmt;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use hubsync_mapping::ids::PortalId;
use serde::{Deserialize, Serialize};

use super::{attr, Item, Redacted};
use crate::error::StoreError;

/// The state of a portal's connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStatus {
    /// Syncing.
    Active,
    /// Connected (tokens stored) with the initial sync deferred until the
    /// application (or ops) has saved its mapping and scope and starts the
    /// sync: nothing is pulled, webhooks are acknowledged and dropped.
    AwaitingSetup,
    /// The grant was revoked (`invalid_grant`): an admin must reconnect.
    NeedsReauth,
    /// Disconnected on purpose (uninstall or an explicit disconnect).
    Disconnected,
}

impl ConnectionStatus {
    /// Whether the connection keeps its tokens and may read HubSpot (to set
    /// the sync up, or to sync).
    pub fn holds_tokens(self) -> bool {
        matches!(
            self,
            ConnectionStatus::Active | ConnectionStatus::AwaitingSetup
        )
    }

    /// Its name in the API, the CLI and events.
    pub fn name(self) -> &'static str {
        match self {
            ConnectionStatus::Active => "active",
            ConnectionStatus::AwaitingSetup => "awaiting_setup",
            ConnectionStatus::NeedsReauth => "needs_reauth",
            ConnectionStatus::Disconnected => "disconnected",
        }
    }
}

/// A HubSpot portal connected to a tenant of the application. Stored in the
/// Control table at `pk = "CONN#{portal}"`, `sk = "CONN"`.
///
/// The token fields hold KMS ciphertext (opaque here) and never appear in
/// `Debug` output.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    /// The HubSpot portal.
    pub portal_id: PortalId,
    /// The application's tenant that installed it.
    pub tenant_id: String,
    /// Whether it syncs.
    pub status: ConnectionStatus,
    /// Scopes granted.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Encrypted access token.
    #[serde(default)]
    pub access_token_ciphertext: Option<String>,
    /// Encrypted refresh token.
    #[serde(default)]
    pub refresh_token_ciphertext: Option<String>,
    /// When the access token expires, epoch seconds.
    #[serde(default)]
    pub access_token_expires_at: Option<i64>,
    /// When the connection was first made.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// When the last webhook for the portal arrived.
    #[serde(default)]
    pub last_webhook_at: Option<DateTime<Utc>>,
    /// Why the status is what it is (e.g. `invalid_grant`); no PII.
    #[serde(default)]
    pub status_reason: Option<String>,
}

impl Connection {
    /// An active connection made now, without tokens or scopes yet (a
    /// starting point for tests, tools and the local stack).
    pub fn active(portal_id: PortalId, tenant_id: impl Into<String>) -> Self {
        let now = Utc::now();
        Self {
            portal_id,
            tenant_id: tenant_id.into(),
            status: ConnectionStatus::Active,
            scopes: Vec::new(),
            access_token_ciphertext: None,
            refresh_token_ciphertext: None,
            access_token_expires_at: None,
            created_at: now,
            updated_at: now,
            last_webhook_at: None,
            status_reason: None,
        }
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secret = |v: &Option<String>| v.as_ref().map(|_| Redacted);
        f.debug_struct("Connection")
            .field("portal_id", &self.portal_id)
            .field("tenant_id", &self.tenant_id)
            .field("status", &self.status)
            .field("scopes", &self.scopes)
            .field(
                "access_token_ciphertext",
                &secret(&self.access_token_ciphertext),
            )
            .field(
                "refresh_token_ciphertext",
                &secret(&self.refresh_token_ciphertext),
            )
            .field("access_token_expires_at", &self.access_token_expires_at)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .field("last_webhook_at", &self.last_webhook_at)
            .field("status_reason", &self.status_reason)
            .finish()
    }
}

/// Control-table key prefix of connections.
pub const CONNECTION_PK_PREFIX: &str = "CONN#";
/// Control-table sort key of a connection.
pub const CONNECTION_SK: &str = "CONN";

/// The Control-table key of a portal's connection.
pub fn connection_key(portal: PortalId) -> Item {
    HashMap::from([
        (
            attr::PK.to_owned(),
            AttributeValue::S(format!("{CONNECTION_PK_PREFIX}{portal}")),
        ),
        (
            attr::SK.to_owned(),
            AttributeValue::S(CONNECTION_SK.to_owned()),
        ),
    ])
}

/// The Control table's tenant index (`template.yaml`): a sparse, keys-only
/// global secondary index whose partition key, [`TENANT_INDEX_KEY`], only
/// connection items carry, and whose sort key is the table's `pk`. "The
/// connections of tenant T" is one Query on it, never a Scan.
pub const TENANT_INDEX: &str = "tenant-connections";
/// The tenant index's partition key: the connection's tenant id.
pub const TENANT_INDEX_KEY: &str = "tenant_key";

pub(crate) fn connection_item(conn: &Connection) -> Result<Item, StoreError> {
    let mut item: Item = serde_dynamo::aws_sdk_dynamodb_1::to_item(conn)?;
    item.extend(connection_key(conn.portal_id));
    item.insert(
        TENANT_INDEX_KEY.to_owned(),
        AttributeValue::S(conn.tenant_id.clone()),
    );
    Ok(item)
}

pub(crate) fn connection_from_item(mut item: Item) -> Result<Connection, StoreError> {
    item.remove(TENANT_INDEX_KEY);
    Ok(serde_dynamo::aws_sdk_dynamodb_1::from_item(item)?)
}

/// The portal of a connection's Control-table `pk` (`CONN#{portal}`).
pub(crate) fn portal_of_connection_pk(pk: &str) -> Option<PortalId> {
    pk.strip_prefix(CONNECTION_PK_PREFIX)?
        .parse::<u64>()
        .ok()
        .map(PortalId)
}
