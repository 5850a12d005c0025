//! HubSpot API client for hubsync: webhook signatures and events, CRM v3
//! reads (date-versioned APIs) with per-portal rate limiting, retries and token refresh.
//!
//! * [`signature`]: v3 (and v1/v2) webhook signatures, pure functions.
//! * [`events`]: the webhook event model.
//! * [`client::HubSpotClient`]: batch read, list, search, owners, lists;
//!   [`associations`]: the associations batch read with per-input paging.
//! * [`api_version::ApiVersion`]: date-versioned paths (default) or legacy.
//! * [`rate_limit`]: the [`RateLimiter`] trait and the in-process limiter.
//! * [`token::AccessTokenSource`]: where access tokens come from.
//! * [`oauth::OAuthClient`]: the OAuth token endpoint (code exchange,
//!   refresh, introspection, revocation, client credentials; `v1` or
//!   date-versioned).
//! * [`journal`]: the Webhooks Journal (subscriptions, offset reads, the
//!   journal file's parser) with the app's client-credentials token.
#![forbid(unsafe_code)]

pub mod api_version;
pub mod associations;
pub mod client;
pub mod error;
pub mod events;
pub mod ids;
pub mod journal;
pub mod lists;
pub mod model;
pub mod oauth;
pub mod object;
pub mod owners;
pub mod pipelines;
pub mod properties;
pub mod rate_limit;
pub mod signature;
pub mod time;
pub mod token;

pub use api_version::ApiVersion;
pub use associations::{AssociationLink, MAX_ASSOCIATION_INPUTS};
pub use client::{ClientConfig, ClientStats, HubSpotClient, RetryConfig};
pub use error::{HubSpotError, RateLimitPolicy, TokenError};
pub use events::{parse_delivery, DeliveryError, EventKind, SubscriptionType, WebhookEvent};
pub use ids::{ObjectId, ObjectType, PortalId};
pub use lists::ListInfo;
pub use model::{
    BatchReadResult, Filter, FilterGroup, Owner, Page, SearchPage, SearchRequest, Sort,
    MAX_BATCH_READ_INPUTS, MAX_PAGE_LIMIT, MAX_SEARCH_LIMIT, MAX_SEARCH_RESULTS,
};
pub use oauth::{
    AppGrant, GrantStatus, OAuthClient, OAuthConfig, OAuthError, OAuthRetry, OAuthVersion,
    TokenGrant, TokenInfo,
};
pub use object::{HubSpotObject, Properties};
pub use owners::{OwnerInfo, Owners};
pub use pipelines::{Pipelines, StageInfo};
pub use properties::{PropertyDefinition, PropertyOption};
pub use rate_limit::{
    InProcessRateLimiter, RateLimitConfig, RateLimitKind, RateLimiter, RatePermit, Unlimited,
    WindowLimit,
};
pub use signature::{verify_v3, SignatureError, Tolerance, WebhookVerifier};
pub use time::{TimeError, Timestamp};
pub use token::{AccessTokenSource, StaticToken};
