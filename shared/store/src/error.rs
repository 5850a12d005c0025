//! The store's error type. Variants say what happened and whether a retry
//! can help; SDK errors are kept as typed sources, never flattened to text.
//! No variant carries record contents: only ids, operation names and AWS
//! error codes (see DESIGN.md, "no PII in logs").

use hubsync_mapping::ids::PortalId;

use crate::model::RecordKey;
use hubsync_runtime::ConfigError;

/// A boxed error source (the AWS SDK error of the failed call).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything a store operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A conditional write was refused for a reason the operation does not
    /// turn into an outcome (the record operations classify theirs).
    #[error("conditional check failed in {operation}")]
    ConditionFailed {
        /// The store operation, e.g. `"set_connection_status"`.
        operation: &'static str,
    },

    /// No connection is stored for this portal.
    #[error("no connection stored for portal {portal}")]
    ConnectionNotFound {
        /// The portal asked for.
        portal: PortalId,
    },

    /// A permanent delete was asked for a record that is not archived.
    /// Only archived records can be purged permanently.
    #[error("record {key} is not archived; only archived records can be deleted permanently")]
    NotArchived {
        /// The record's key (ids only).
        key: RecordKey,
    },

    /// DynamoDB throttled the request (or left keys unprocessed after every
    /// retry). Always retryable, later.
    #[error("DynamoDB throttled {operation}")]
    Throttled {
        /// The DynamoDB operation, e.g. `"BatchGetItem"`.
        operation: &'static str,
        /// The SDK error, when there is one.
        #[source]
        source: Option<BoxError>,
    },

    /// Any other AWS SDK failure: a service error, a timeout, a dispatch
    /// failure. `retryable` says whether the same request may succeed later.
    #[error("DynamoDB {operation} failed (code: {code:?}, retryable: {retryable})")]
    Sdk {
        /// The DynamoDB operation, e.g. `"PutItem"`.
        operation: &'static str,
        /// The AWS error code, when the service answered with one.
        code: Option<String>,
        /// Whether retrying the same request can succeed.
        retryable: bool,
        /// The SDK error itself.
        #[source]
        source: BoxError,
    },

    /// An item could not be converted to or from DynamoDB's attribute form.
    #[error("DynamoDB item (de)serialization failed")]
    Serde(#[from] serde_dynamo::Error),

    /// A record's fields could not be turned into a JSON object.
    #[error("record fields could not be serialized")]
    Fields(#[source] serde_json::Error),

    /// The caller passed something the store cannot write (a reserved or
    /// empty field name, fields that are not an object, a timestamp out of
    /// range). The message names the problem, never a value.
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// The item would exceed DynamoDB's item size limit: it is refused
    /// before any request, by both stores alike.
    #[error("item of {bytes} bytes is over DynamoDB's {limit}-byte item limit")]
    ItemTooLarge { bytes: usize, limit: usize },

    /// Missing or empty configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

impl StoreError {
    /// Whether retrying the same operation later can succeed. Throttling and
    /// transient SDK failures are retryable; everything else is not (a
    /// retry would fail the same way).
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::Throttled { .. } => true,
            StoreError::Sdk { retryable, .. } => *retryable,
            StoreError::ConditionFailed { .. }
            | StoreError::ConnectionNotFound { .. }
            | StoreError::NotArchived { .. }
            | StoreError::Serde(_)
            | StoreError::Fields(_)
            | StoreError::InvalidInput(_)
            | StoreError::ItemTooLarge { .. }
            | StoreError::Config(_) => false,
        }
    }
}
