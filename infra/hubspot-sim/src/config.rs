//! Simulator configuration (start-up values; most can be changed at run time
//! through [`crate::SimState`] or the `/_sim` control API).

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::faults::Faults;

/// The one public app the simulator knows.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct AppConfig {
    pub client_id: String,
    pub client_secret: String,
    pub app_id: u64,
}

impl Default for AppConfig {
    fn default() -> Self {
        Self {
            client_id: "5d2f3c1e-0000-4000-8000-00000000c1d0".into(),
            client_secret: "9a8b7c6d-0000-4000-8000-0000005ec4e7".into(),
            app_id: 4_242_424,
        }
    }
}

/// OAuth behaviour.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct OAuthConfig {
    /// Access-token lifetime in seconds (`expires_in`).
    pub token_lifetime_secs: u64,
    /// Authorization-code lifetime in seconds.
    pub code_lifetime_secs: u64,
    /// Whether token responses carry `hub_id` (older HubSpot responses do not).
    pub include_hub_id: bool,
    /// Issue a new refresh token on every refresh (HubSpot: unverified; default off).
    pub rotate_refresh_tokens: bool,
    /// Portal the "user" picks on `/oauth/authorize` when no one-shot choice is set.
    /// `None` = the lowest portal id.
    pub default_authorize_portal: Option<u64>,
    /// Scopes granted by `issue_token` (and by authorize when `scope` is empty).
    pub default_scopes: Vec<String>,
    /// The body shape of the token endpoint's grant errors.
    pub error_shape: OAuthErrorShape,
    /// The installing user declines the `optional_scope`s of the install
    /// URL (they are then absent from the token).
    pub decline_optional_scopes: bool,
}

/// How the token endpoint words a refused grant (HubSpot has used each).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OAuthErrorShape {
    /// `{"status":"BAD_REFRESH_TOKEN","message","correlationId","error":"invalid_grant","error_description"}`
    /// (HubSpot's standardized OAuth errors, 2026).
    #[default]
    Combined,
    /// `{"error":"invalid_grant","error_description"}` only (RFC 6749).
    InvalidGrant,
    /// `{"status":"BAD_REFRESH_TOKEN","message","correlationId"}` (OAuth v1).
    Status,
    /// The date-versioned APIs' generic error:
    /// `{"category":"VALIDATION_ERROR","subCategory":"INVALID_TOKEN","message","correlationId","context"}`.
    Generic,
}

impl Default for OAuthConfig {
    fn default() -> Self {
        Self {
            token_lifetime_secs: 1800,
            code_lifetime_secs: 300,
            include_hub_id: true,
            rotate_refresh_tokens: false,
            default_authorize_portal: None,
            default_scopes: [
                "oauth",
                "crm.objects.companies.read",
                "crm.objects.contacts.read",
                "crm.objects.deals.read",
                "crm.objects.owners.read",
                "crm.lists.read",
                "crm.schemas.companies.read",
                "crm.schemas.contacts.read",
                "crm.schemas.deals.read",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            error_shape: OAuthErrorShape::default(),
            decline_optional_scopes: false,
        }
    }
}

/// Per-portal API rate limits. Windows use real (monotonic) time, not the sim clock.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct RateLimitConfig {
    /// Master switch for both policies.
    pub enabled: bool,
    /// `TEN_SECONDLY_ROLLING` maximum (110 for public OAuth apps).
    pub max_requests: u32,
    /// Rolling window length in ms (10,000).
    pub window_ms: u64,
    /// Search `SECONDLY` maximum (5).
    pub search_per_second: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_requests: 110,
            window_ms: 10_000,
            search_per_second: 5,
        }
    }
}

/// Webhook delivery settings of the app.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct WebhookConfig {
    /// Where batches are POSTed. `None`: events are logged and counted as undeliverable.
    pub target_url: Option<String>,
    /// The public URL the signature is computed over (API Gateway URL); defaults to `target_url`.
    pub public_url: Option<String>,
    /// Events are grouped for this long (per portal) before a batch is sent.
    pub batch_window_ms: u64,
    /// Events per POST (clamped to 1..=100).
    pub max_batch_size: usize,
    /// A receiver slower than this counts as a failure (HubSpot: 5 s).
    pub timeout_ms: u64,
    /// Attempts per batch (HubSpot: 10).
    pub max_attempts: u32,
    /// Retry delay before attempt n (n ≥ 1) = `retry_base_secs * 2^(n-1) * time_scale`, ±25 % jitter.
    pub retry_base_secs: f64,
    /// Scales retry delays so tests run fast (1.0 = real HubSpot-like delays).
    pub time_scale: f64,
    /// In-flight POSTs per portal (HubSpot: 10).
    pub max_concurrent_per_portal: usize,
    /// The subscription format events are delivered in (a portal can
    /// override it: [`crate::SimState::set_webhook_format`]).
    pub format: WebhookFormat,
}

/// Which subscription format a portal's events use.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    /// `contact.creation`, `company.propertyChange`, … (legacy apps, and
    /// platform apps' `legacyCrmObjects`).
    #[default]
    Classic,
    /// `object.creation` with `objectTypeId`, … (platform apps'
    /// `crmObjects`). `contact.privacyDeletion` stays classic: it exists
    /// only as a `hubEvents` subscription.
    Generic,
    /// Both, as an app subscribed to both lists gets them: events
    /// alternate by `eventId` parity.
    Mixed,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            target_url: None,
            public_url: None,
            batch_window_ms: 100,
            max_batch_size: 100,
            timeout_ms: 5_000,
            max_attempts: 10,
            retry_base_secs: 60.0,
            time_scale: 0.001,
            max_concurrent_per_portal: 10,
            format: WebhookFormat::default(),
        }
    }
}

/// How many records to seed into a portal.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct SeedSpec {
    pub companies: usize,
    pub contacts: usize,
    pub deals: usize,
    /// Owners (only created when the portal has none yet). 0 = keep default of 20 on seeded portals.
    pub owners: usize,
    /// Seed for the data generator; `None` = derived from the simulator seed and portal id.
    pub seed: Option<u64>,
}

/// Everything the simulator needs at start.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct SimConfig {
    /// Listen address; default `127.0.0.1:0` (ephemeral loopback port).
    pub bind: SocketAddr,
    /// Master seed of every RNG (data, faults, merges, ids of events).
    pub seed: u64,
    pub app: AppConfig,
    pub oauth: OAuthConfig,
    pub rate_limit: RateLimitConfig,
    pub webhooks: WebhookConfig,
    /// Portals created at start (ids `first_portal_id`, +1, …), installed.
    pub portal_count: usize,
    pub first_portal_id: u64,
    /// Data seeded into every initial portal.
    pub initial_seed: SeedSpec,
    /// Faults every new portal starts with (initial ones and those created later).
    pub initial_faults: Faults,
    /// Probability that a merge produces a NEW survivor id (else the primary survives).
    pub merge_new_id_probability: f64,
    /// Emitted events kept for `/_sim/events` (ring buffer).
    pub event_log_capacity: usize,
    /// Base URL used in `paging.next.link`; default = the bound address.
    pub public_base_url: Option<String>,
    /// API versions answered with 410 as retired: `v1`, `v3`, `v4`, a date
    /// version, or `legacy` for the three numbered ones.
    pub refused_api_versions: Vec<String>,
    /// Associations per input object in one associations batch-read
    /// response; more are paged (`paging.next.after` per input).
    pub association_page_size: usize,
    /// Whether API calls need the token's scopes (403 `MISSING_SCOPES`
    /// otherwise), as HubSpot does.
    pub enforce_scopes: bool,
    /// What a batch read answers for a merged-away id (HubSpot does not
    /// document it).
    pub merged_id_reads: MergedIdReads,
    /// How far search's index trails writes (ms): a record created within
    /// it is not found yet, one deleted within it still is. HubSpot: "seconds
    /// to minutes", undocumented further. Default 0 (none).
    pub search_index_lag_ms: u64,
}

/// A batch read of an id that was merged into another record.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum MergedIdReads {
    /// Not found (a 207 error entry), like a deleted id.
    #[default]
    Missing,
    /// The surviving record, under the survivor's id.
    Survivor,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            seed: 42,
            app: AppConfig::default(),
            oauth: OAuthConfig::default(),
            rate_limit: RateLimitConfig::default(),
            webhooks: WebhookConfig::default(),
            portal_count: 1,
            first_portal_id: 1_000_001,
            initial_seed: SeedSpec::default(),
            initial_faults: Faults::default(),
            merge_new_id_probability: 0.0,
            event_log_capacity: 100_000,
            public_base_url: None,
            refused_api_versions: Vec::new(),
            association_page_size: 500,
            enforce_scopes: true,
            merged_id_reads: MergedIdReads::default(),
            search_index_lag_ms: 0,
        }
    }
}
