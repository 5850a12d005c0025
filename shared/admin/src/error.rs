//! The admin operations' one error type: what the admin API turns into a
//! status and a JSON problem, and the ops CLI into a message.

use hubsync_hubspot::{HubSpotError, TokenError};
use hubsync_mapping::ConfigErrors;
use hubsync_messages::QueueError;
use hubsync_store::StoreError;

use crate::mapping::MappingError;

/// Why an admin operation did nothing (or stopped).
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The input is malformed or out of range.
    #[error("{0}")]
    Invalid(String),
    /// The tenant, portal or record is unknown (or not the tenant's).
    #[error("{0}")]
    NotFound(String),
    /// The thing exists but is in a state that refuses the operation (an
    /// inactive connection, an active record).
    #[error("{0}")]
    Conflict(String),
    /// A mapping config that does not fit the portal (every bad rule).
    #[error("{0}")]
    Rejected(ConfigErrors),
    /// The portal's grant was revoked: an admin must reconnect.
    #[error("the portal's HubSpot grant was revoked; an admin must reconnect it")]
    NeedsReauth,
    /// HubSpot failed or refused the call.
    #[error("HubSpot: {0}")]
    HubSpot(HubSpotError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("sync-jobs queue: {0}")]
    Queue(#[from] QueueError),
}

impl AdminError {
    /// Whether the same call may succeed later unchanged.
    pub fn is_retryable(&self) -> bool {
        match self {
            AdminError::HubSpot(e) => e.is_retryable(),
            AdminError::Store(e) => e.is_retryable(),
            AdminError::Queue(_) => true,
            _ => false,
        }
    }
}

impl From<HubSpotError> for AdminError {
    fn from(e: HubSpotError) -> Self {
        match e {
            HubSpotError::Token(TokenError::NeedsReauth) => AdminError::NeedsReauth,
            e => AdminError::HubSpot(e),
        }
    }
}

impl From<MappingError> for AdminError {
    fn from(e: MappingError) -> Self {
        match e {
            MappingError::Rejected(errors) => AdminError::Rejected(errors),
            MappingError::HubSpot(e) => e.into(),
            MappingError::Store(e) => AdminError::Store(e),
        }
    }
}
