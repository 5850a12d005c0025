//! Token updates (compare-and-swap on the old access token) and leases
//! (Control table, `LEASE#{name}`): the single-flight token refresh and the
//! run locks.

use std::collections::HashMap;
use std::fmt;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;
use hubsync_mapping::ids::PortalId;
use serde::Serialize;

use super::connections::{Connection, ConnectionStatus};
use super::{attr, Item, Redacted};
use crate::error::StoreError;

/// Fresh tokens from a refresh, already encrypted. `Debug` redacts them.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenUpdate {
    /// The new access token's ciphertext.
    pub access_token_ciphertext: String,
    /// The refresh token's ciphertext from the same response (HubSpot may
    /// or may not rotate it: always store the one returned).
    pub refresh_token_ciphertext: String,
    /// When the new access token expires, epoch seconds.
    pub access_token_expires_at: i64,
}

impl fmt::Debug for TokenUpdate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenUpdate")
            .field("access_token_ciphertext", &Redacted)
            .field("refresh_token_ciphertext", &Redacted)
            .field("access_token_expires_at", &self.access_token_expires_at)
            .finish()
    }
}

/// What [`crate::TokenStore::swap_tokens`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenSwap {
    /// The new tokens are stored.
    Swapped,
    /// The stored access token is no longer the expected one: another
    /// worker refreshed first. Re-read the connection and use its token.
    Superseded,
    /// The connection is not active (reauth needed or disconnected):
    /// nothing was written.
    NotActive,
}

/// A lease held in the Control table until `expires_at_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The lease's name (e.g. [`token_refresh_lease`]).
    pub name: String,
    /// Who holds it (an invocation id).
    pub holder: String,
    /// When it lapses, epoch ms (wall clock of the acquirer).
    pub expires_at_ms: i64,
}

/// Connection attribute names the store updates in place.
pub(crate) mod conn_attr {
    pub const STATUS: &str = "status";
    pub const STATUS_REASON: &str = "status_reason";
    pub const UPDATED_AT: &str = "updated_at";
    pub const LAST_WEBHOOK_AT: &str = "last_webhook_at";
    pub const TENANT: &str = "tenant_id";
    pub const ACCESS: &str = "access_token_ciphertext";
    pub const REFRESH: &str = "refresh_token_ciphertext";
    pub const EXPIRES: &str = "access_token_expires_at";
    /// Removed when a connection stops being active.
    pub const TOKENS: [&str; 3] = [ACCESS, REFRESH, EXPIRES];
}

/// The attributes a status change sets.
pub(crate) fn status_attributes(
    status: ConnectionStatus,
    reason: Option<&str>,
) -> Result<Vec<(&'static str, AttributeValue)>, StoreError> {
    use serde_dynamo::aws_sdk_dynamodb_1::to_attribute_value as av;
    Ok(vec![
        (conn_attr::STATUS, av(status)?),
        (conn_attr::STATUS_REASON, av(reason)?),
        (conn_attr::UPDATED_AT, av(Utc::now())?),
    ])
}

/// The attributes a token swap sets.
pub(crate) fn token_attributes(
    update: &TokenUpdate,
) -> Result<Vec<(&'static str, AttributeValue)>, StoreError> {
    use serde_dynamo::aws_sdk_dynamodb_1::to_attribute_value as av;
    Ok(vec![
        (
            conn_attr::ACCESS,
            AttributeValue::S(update.access_token_ciphertext.clone()),
        ),
        (
            conn_attr::REFRESH,
            AttributeValue::S(update.refresh_token_ciphertext.clone()),
        ),
        (conn_attr::EXPIRES, av(update.access_token_expires_at)?),
        (conn_attr::UPDATED_AT, av(Utc::now())?),
    ])
}

/// Classifies a refused token swap from the stored connection.
pub(crate) fn classify_refused_swap(
    portal: PortalId,
    stored: Option<&Connection>,
) -> Result<TokenSwap, StoreError> {
    match stored {
        None => Err(StoreError::ConnectionNotFound { portal }),
        Some(c) if !c.status.holds_tokens() => Ok(TokenSwap::NotActive),
        Some(_) => Ok(TokenSwap::Superseded),
    }
}

#[derive(Serialize)]
struct LeaseItem<'a> {
    pk: String,
    sk: &'static str,
    holder: &'a str,
    expires_at_ms: i64,
    /// The Control table's TTL attribute (epoch seconds): lapsed leases
    /// are cleaned up by DynamoDB.
    expires_at_epoch: i64,
}

pub(crate) fn lease_item(lease: &Lease) -> Result<Item, StoreError> {
    Ok(serde_dynamo::aws_sdk_dynamodb_1::to_item(LeaseItem {
        pk: format!("{LEASE_PK_PREFIX}{}", lease.name),
        sk: LEASE_SK,
        holder: &lease.holder,
        expires_at_ms: lease.expires_at_ms,
        expires_at_epoch: lease.expires_at_ms.div_euclid(1000) + 1,
    })?)
}

/// The name of the lease that makes a portal's token refresh single-flight.
pub fn token_refresh_lease(portal: PortalId) -> String {
    format!("token-refresh#{portal}")
}

/// Control-table key prefix of leases.
pub const LEASE_PK_PREFIX: &str = "LEASE#";
/// Control-table sort key of a lease.
pub const LEASE_SK: &str = "LEASE";

pub(crate) fn lease_key(name: &str) -> Item {
    HashMap::from([
        (
            attr::PK.to_owned(),
            AttributeValue::S(format!("{LEASE_PK_PREFIX}{name}")),
        ),
        (attr::SK.to_owned(), AttributeValue::S(LEASE_SK.to_owned())),
    ])
}

pub(crate) fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// A random, non-zero tag, a new one per call: it tells apart writers (or
/// items they write) across instances and processes.
pub fn unique_tag() -> u64 {
    use std::hash::BuildHasher;
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    std::hash::RandomState::new()
        .hash_one((seq, std::process::id()))
        .max(1)
}

/// A lease is free for `holder` when absent, lapsed, or already theirs.
pub(crate) fn lease_available(stored: Option<&Lease>, holder: &str, now_ms: i64) -> bool {
    stored.is_none_or(|l| l.expires_at_ms < now_ms || l.holder == holder)
}
