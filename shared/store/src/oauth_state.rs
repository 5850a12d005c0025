//! The OAuth connect flow's storage (Control table): single-use, expiring
//! `state` values bound to a tenant, and the tenant-guarded write of a
//! connection.
//!
//! * A state is stored at `pk = "OAUTH_STATE#{sha256(state) hex}"`,
//!   `sk = "STATE"`: only its hash is kept, so reading the table does not
//!   reveal a usable state. The item carries the table's TTL attribute
//!   `expires_at_epoch`, so DynamoDB removes it after it lapses (TTL is lazy:
//!   the expiry is checked on use as well).
//! * Consuming a state is one conditional update (`SET consumed_at` only if
//!   the item exists and has no `consumed_at`): of two concurrent callbacks
//!   with the same state exactly one gets [`StateOutcome::Consumed`].
//! * A state is bound to the browser that asked for it: the digest of a
//!   nonce the install route sets as a cookie is stored with it and handed
//!   back on consumption, for the callback to compare.
//! * Install links are single-use: [`OAuthStateStore::claim_install_link`]
//!   records a link (by digest, `pk = "OAUTH_LINK#…"`, with the link's
//!   expiry as TTL) with one conditional put.
//! * [`OAuthStateStore::claim_connection`] writes a connection only if the
//!   portal has none or it belongs to the same tenant (one conditional put).

use std::collections::HashMap;
use std::future::Future;

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::dynamo::{sdk_error, DynamoStore};
use crate::error::StoreError;
use crate::memory::MemoryStore;
use crate::model::{attr, connection_from_item, connection_item, Connection, Item};

/// Control-table key prefix of OAuth states.
pub const OAUTH_STATE_PK_PREFIX: &str = "OAUTH_STATE#";
/// Control-table sort key of an OAuth state.
pub const OAUTH_STATE_SK: &str = "STATE";
/// Control-table key prefix of used install links.
pub const OAUTH_LINK_PK_PREFIX: &str = "OAUTH_LINK#";
/// Control-table sort key of a used install link.
pub const OAUTH_LINK_SK: &str = "LINK";

/// A pending authorisation: the tenant that asked to connect, until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingAuth {
    /// The application's tenant.
    pub tenant_id: String,
    /// When the state lapses, epoch seconds (also the TTL attribute).
    pub expires_at_epoch: i64,
    /// [`state_digest`] of the nonce set as a cookie in the browser that
    /// started the flow.
    pub browser_digest: String,
    /// Connect without starting the initial sync (`awaiting_setup`).
    pub defer_initial_sync: bool,
}

/// What [`OAuthStateStore::consume_oauth_state`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateOutcome {
    /// The state was valid; it is now used up.
    Consumed {
        /// The tenant it was issued for.
        tenant_id: String,
        /// The browser binding stored with it (`None`: a state stored
        /// before states were bound, which no browser can match).
        browser_digest: Option<String>,
        /// Whether the connect defers the initial sync.
        defer_initial_sync: bool,
    },
    /// The state existed but has lapsed (it is now used up as well).
    Expired,
    /// The state was already used by an earlier callback.
    AlreadyUsed,
    /// No such state (never issued, or removed by TTL).
    Unknown,
}

/// What [`OAuthStateStore::claim_connection`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The connection is stored (created, or replaced for the same tenant).
    Stored,
    /// The portal is connected to another tenant: nothing was written.
    OtherTenant,
}

/// Storage of the OAuth connect flow.
pub trait OAuthStateStore: Send + Sync {
    /// Stores a new state (a random value the caller generated).
    fn put_oauth_state(
        &self,
        state: &str,
        pending: &PendingAuth,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Uses up a state, atomically: exactly one caller ever gets
    /// [`StateOutcome::Consumed`] for a given state. `now_epoch` decides
    /// expiry.
    fn consume_oauth_state(
        &self,
        state: &str,
        now_epoch: i64,
    ) -> impl Future<Output = Result<StateOutcome, StoreError>> + Send;

    /// Records the first use of an install link (by its digest), kept until
    /// the link's own expiry: `true` the first time, `false` ever after.
    fn claim_install_link(
        &self,
        link_digest: &str,
        expires_at_epoch: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Writes the whole connection if the portal has no connection or one
    /// of the same tenant (any status): one conditional put.
    fn claim_connection(
        &self,
        connection: &Connection,
    ) -> impl Future<Output = Result<ClaimOutcome, StoreError>> + Send;
}

/// The hex SHA-256 of a state: what the table holds instead of the state.
pub fn state_digest(state: &str) -> String {
    hex::encode(Sha256::digest(state.as_bytes()))
}

fn state_key(state: &str) -> Item {
    HashMap::from([
        (
            attr::PK.to_owned(),
            AttributeValue::S(format!("{OAUTH_STATE_PK_PREFIX}{}", state_digest(state))),
        ),
        (
            attr::SK.to_owned(),
            AttributeValue::S(OAUTH_STATE_SK.to_owned()),
        ),
    ])
}

#[derive(Serialize, Deserialize)]
struct StateItem {
    tenant_id: String,
    expires_at_epoch: i64,
    #[serde(default)]
    browser_digest: Option<String>,
    #[serde(default)]
    defer_initial_sync: bool,
    created_at: DateTime<Utc>,
    #[serde(default)]
    consumed_at: Option<DateTime<Utc>>,
}

const CONSUMED_AT: &str = "consumed_at";
const TENANT_ID: &str = "tenant_id";

fn state_item(state: &str, pending: &PendingAuth) -> Result<Item, StoreError> {
    let mut item: Item = serde_dynamo::aws_sdk_dynamodb_1::to_item(StateItem {
        tenant_id: pending.tenant_id.clone(),
        expires_at_epoch: pending.expires_at_epoch,
        browser_digest: Some(pending.browser_digest.clone()),
        defer_initial_sync: pending.defer_initial_sync,
        created_at: Utc::now(),
        consumed_at: None,
    })?;
    item.remove(CONSUMED_AT);
    item.extend(state_key(state));
    Ok(item)
}

fn parse_state(item: Item) -> Result<StateItem, StoreError> {
    Ok(serde_dynamo::aws_sdk_dynamodb_1::from_item(item)?)
}

/// The outcome of a state that was just marked used.
fn classify_consumed(stored: StateItem, now_epoch: i64) -> StateOutcome {
    if stored.expires_at_epoch <= now_epoch {
        StateOutcome::Expired
    } else {
        StateOutcome::Consumed {
            tenant_id: stored.tenant_id,
            browser_digest: stored.browser_digest,
            defer_initial_sync: stored.defer_initial_sync,
        }
    }
}

fn link_item(link_digest: &str, expires_at_epoch: i64) -> Item {
    HashMap::from([
        (
            attr::PK.to_owned(),
            AttributeValue::S(format!("{OAUTH_LINK_PK_PREFIX}{link_digest}")),
        ),
        (
            attr::SK.to_owned(),
            AttributeValue::S(OAUTH_LINK_SK.to_owned()),
        ),
        (
            "expires_at_epoch".to_owned(),
            AttributeValue::N(expires_at_epoch.to_string()),
        ),
    ])
}

fn claim_allowed(stored: Option<&Connection>, tenant_id: &str) -> bool {
    stored.is_none_or(|c| c.tenant_id == tenant_id)
}

impl DynamoStore {
    /// Puts a Control item unless its key exists: `false` when it did.
    async fn put_if_absent(&self, item: Item) -> Result<bool, StoreError> {
        self.stats().count_write();
        let result = self
            .client()
            .put_item()
            .table_name(&self.config().control_table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", attr::PK)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) => match err.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(_)) => Ok(false),
                _ => Err(sdk_error("PutItem", err)),
            },
        }
    }
}

impl OAuthStateStore for DynamoStore {
    async fn put_oauth_state(&self, state: &str, pending: &PendingAuth) -> Result<(), StoreError> {
        if self.put_if_absent(state_item(state, pending)?).await? {
            Ok(())
        } else {
            Err(StoreError::ConditionFailed {
                operation: "put_oauth_state",
            })
        }
    }

    async fn consume_oauth_state(
        &self,
        state: &str,
        now_epoch: i64,
    ) -> Result<StateOutcome, StoreError> {
        use serde_dynamo::aws_sdk_dynamodb_1::to_attribute_value as av;
        self.stats().count_write();
        let result = self
            .client()
            .update_item()
            .table_name(&self.config().control_table)
            .set_key(Some(state_key(state)))
            .condition_expression("attribute_exists(#pk) AND attribute_not_exists(#used)")
            .update_expression("SET #used = :now")
            .expression_attribute_names("#pk", attr::PK)
            .expression_attribute_names("#used", CONSUMED_AT)
            .expression_attribute_values(":now", av(Utc::now())?)
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => {
                let item = out.attributes.filter(|i| !i.is_empty()).ok_or(
                    StoreError::ConditionFailed {
                        operation: "consume_oauth_state",
                    },
                )?;
                Ok(classify_consumed(parse_state(item)?, now_epoch))
            }
            Err(err) => match err.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(e)) => {
                    let exists = e.item().is_some_and(|i| !i.is_empty());
                    Ok(if exists {
                        StateOutcome::AlreadyUsed
                    } else {
                        StateOutcome::Unknown
                    })
                }
                _ => Err(sdk_error("UpdateItem", err)),
            },
        }
    }

    async fn claim_install_link(
        &self,
        link_digest: &str,
        expires_at_epoch: i64,
    ) -> Result<bool, StoreError> {
        self.put_if_absent(link_item(link_digest, expires_at_epoch))
            .await
    }

    async fn claim_connection(&self, connection: &Connection) -> Result<ClaimOutcome, StoreError> {
        let item = connection_item(connection)?;
        self.stats().count_write();
        let result = self
            .client()
            .put_item()
            .table_name(&self.config().control_table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk) OR #tenant = :tenant")
            .expression_attribute_names("#pk", attr::PK)
            .expression_attribute_names("#tenant", TENANT_ID)
            .expression_attribute_values(":tenant", AttributeValue::S(connection.tenant_id.clone()))
            .send()
            .await;
        match result {
            Ok(_) => {
                tracing::info!(portal = %connection.portal_id, "connection stored");
                Ok(ClaimOutcome::Stored)
            }
            Err(err) => match err.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(_)) => {
                    Ok(ClaimOutcome::OtherTenant)
                }
                _ => Err(sdk_error("PutItem", err)),
            },
        }
    }
}

impl OAuthStateStore for MemoryStore {
    async fn put_oauth_state(&self, state: &str, pending: &PendingAuth) -> Result<(), StoreError> {
        let item = state_item(state, pending)?;
        self.stats().count_write();
        let digest = state_digest(state);
        let mut guard = self.lock();
        if guard.oauth_states.contains_key(&digest) {
            return Err(StoreError::ConditionFailed {
                operation: "put_oauth_state",
            });
        }
        guard.oauth_states.insert(digest, item);
        Ok(())
    }

    async fn consume_oauth_state(
        &self,
        state: &str,
        now_epoch: i64,
    ) -> Result<StateOutcome, StoreError> {
        use serde_dynamo::aws_sdk_dynamodb_1::to_attribute_value as av;
        let now = av(Utc::now())?;
        self.stats().count_write();
        let mut guard = self.lock();
        let Some(item) = guard.oauth_states.get_mut(&state_digest(state)) else {
            return Ok(StateOutcome::Unknown);
        };
        if item.contains_key(CONSUMED_AT) {
            return Ok(StateOutcome::AlreadyUsed);
        }
        item.insert(CONSUMED_AT.to_owned(), now);
        let stored = parse_state(item.clone())?;
        Ok(classify_consumed(stored, now_epoch))
    }

    async fn claim_install_link(
        &self,
        link_digest: &str,
        expires_at_epoch: i64,
    ) -> Result<bool, StoreError> {
        self.stats().count_write();
        let key = format!("{OAUTH_LINK_PK_PREFIX}{link_digest}");
        let mut guard = self.lock();
        if guard.oauth_states.contains_key(&key) {
            return Ok(false);
        }
        guard
            .oauth_states
            .insert(key, link_item(link_digest, expires_at_epoch));
        Ok(true)
    }

    async fn claim_connection(&self, connection: &Connection) -> Result<ClaimOutcome, StoreError> {
        let item = connection_item(connection)?;
        self.stats().count_write();
        let mut guard = self.lock();
        let stored = guard
            .connections
            .get(&connection.portal_id)
            .cloned()
            .map(connection_from_item)
            .transpose()?;
        if !claim_allowed(stored.as_ref(), &connection.tenant_id) {
            return Ok(ClaimOutcome::OtherTenant);
        }
        guard.connections.insert(connection.portal_id, item);
        Ok(ClaimOutcome::Stored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_digest_of_a_state_is_in_its_key() {
        let key = state_key("my-secret-state");
        let pk = match &key[attr::PK] {
            AttributeValue::S(s) => s.clone(),
            _ => String::new(),
        };
        assert!(pk.starts_with(OAUTH_STATE_PK_PREFIX));
        assert!(!pk.contains("my-secret-state"));
        assert_eq!(pk.len(), OAUTH_STATE_PK_PREFIX.len() + 64);
    }

    #[test]
    fn a_lapsed_state_is_expired() {
        let item = |exp| StateItem {
            tenant_id: "t".into(),
            expires_at_epoch: exp,
            browser_digest: None,
            defer_initial_sync: false,
            created_at: Utc::now(),
            consumed_at: None,
        };
        assert_eq!(classify_consumed(item(100), 100), StateOutcome::Expired);
        assert_eq!(
            classify_consumed(item(101), 100),
            StateOutcome::Consumed {
                tenant_id: "t".into(),
                browser_digest: None,
                defer_initial_sync: false,
            }
        );
    }
}
