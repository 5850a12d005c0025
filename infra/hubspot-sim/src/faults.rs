//! Per-portal fault injection settings.

use serde::{Deserialize, Serialize};

/// Faults of one portal. All rates are probabilities in `0.0..=1.0`, drawn
/// from the portal's seeded ChaCha RNG.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Faults {
    /// Each event is silently dropped with this probability.
    pub webhook_drop_rate: f64,
    /// Each event is delivered twice (the copy lands later, maybe in another batch).
    pub webhook_duplicate_rate: f64,
    /// Shuffle the pending events of a portal before they are cut into batches.
    pub webhook_reorder: bool,
    /// Added delay before a batch's first attempt.
    pub webhook_delay_ms: u64,
    /// Added to `X-HubSpot-Request-Timestamp` (negative = stale signatures).
    pub webhook_timestamp_skew_ms: i64,
    /// Probability that an API call (CRM endpoints) fails with `api_error_status`.
    pub api_error_rate: f64,
    /// Status for injected API errors (0 = 500).
    pub api_error_status: u16,
    /// Latency added to every API call of the portal.
    pub api_latency_ms: u64,
    /// The next N API calls get a 429 (`TEN_SECONDLY_ROLLING`).
    pub force_429_next: u32,
    /// The next N token-endpoint calls resolving to this portal fail with `token_error_status`.
    pub token_error_next: u32,
    /// Probability of a token-endpoint failure.
    pub token_error_rate: f64,
    /// Status for token-endpoint faults (0 = 503; 429 gives HubSpot's rate-limit body).
    pub token_error_status: u16,
}

impl Faults {
    /// Applies a JSON patch (only the given fields change).
    pub fn patched(&self, patch: &serde_json::Value) -> Result<Faults, serde_json::Error> {
        let mut v = serde_json::to_value(self)?;
        if let (Some(obj), Some(p)) = (v.as_object_mut(), patch.as_object()) {
            for (k, val) in p {
                obj.insert(k.clone(), val.clone());
            }
        }
        serde_json::from_value(v)
    }
}
