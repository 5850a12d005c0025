//! Webhook events, signatures, batching and delivery.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::state::SimState;

/// One webhook event, serialised exactly as HubSpot does (camelCase, absent fields omitted).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEvent {
    pub event_id: u64,
    pub subscription_id: u64,
    pub portal_id: u64,
    pub app_id: u64,
    pub occurred_at: i64,
    pub subscription_type: String,
    pub attempt_number: u32,
    pub object_id: u64,
    pub change_source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_flag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property_value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_object_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_object_ids: Option<Vec<u64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_object_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_of_properties_moved: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub association_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_object_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_object_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub association_removed: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_primary_association: Option<bool>,
    /// Generic format: the object's type id (`0-1`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_type_id: Option<String>,
    /// Generic `object.associationChange`: the ends' type ids and the
    /// association type id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_object_type_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_object_type_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub association_type_id: Option<u32>,
}

impl WebhookEvent {
    /// Rewrites a classic event (`contact.creation`) into HubSpot's generic
    /// format (`object.creation`, `objectTypeId` `0-1`). Privacy deletions
    /// and anything not classic stay as they are.
    pub fn into_generic(mut self) -> Self {
        let sub = self.subscription_type.clone();
        let Some((prefix, kind)) = sub.split_once('.') else {
            return self;
        };
        let Some(ty) = crate::model::ObjectType::parse(prefix) else {
            return self;
        };
        if kind == "privacyDeletion" || prefix == "object" {
            return self;
        }
        self.subscription_type = format!("object.{kind}");
        if kind == "associationChange" {
            let to = self
                .association_type
                .as_deref()
                .and_then(|a| a.split_once("_TO_"))
                .and_then(|(_, to)| crate::model::ObjectType::parse(to));
            self.from_object_type_id = Some(ty.object_type_id().to_owned());
            if let Some(to) = to {
                self.to_object_type_id = Some(to.object_type_id().to_owned());
                self.association_type_id =
                    crate::state::association_type_ids(ty, to).map(|(_, plain)| plain);
            }
            self.association_type = None;
        } else {
            self.object_type_id = Some(ty.object_type_id().to_owned());
        }
        self
    }
}

/// HubSpot webhook signatures (independent oracle; no hubsync code involved).
pub mod signing {
    use super::*;

    type HmacSha256 = Hmac<Sha256>;

    /// v1: `hex(sha256(client_secret + body))`.
    pub fn v1(client_secret: &str, body: &[u8]) -> String {
        let mut h = Sha256::new();
        h.update(client_secret.as_bytes());
        h.update(body);
        hex::encode(h.finalize())
    }

    /// v2: `hex(sha256(client_secret + method + uri + body))`.
    pub fn v2(client_secret: &str, method: &str, uri: &str, body: &[u8]) -> String {
        let mut h = Sha256::new();
        h.update(client_secret.as_bytes());
        h.update(method.as_bytes());
        h.update(uri.as_bytes());
        h.update(body);
        hex::encode(h.finalize())
    }

    /// v3: `base64(hmac_sha256(client_secret, method + uri + body + timestamp_ms))`,
    /// with `uri` already decoded by [`decode_uri`].
    pub fn v3(
        client_secret: &str,
        method: &str,
        uri: &str,
        body: &[u8],
        timestamp_ms: i64,
    ) -> String {
        let mut mac = match HmacSha256::new_from_slice(client_secret.as_bytes()) {
            Ok(m) => m,
            Err(_) => return String::new(),
        };
        mac.update(method.as_bytes());
        mac.update(uri.as_bytes());
        mac.update(body);
        mac.update(timestamp_ms.to_string().as_bytes());
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    }

    /// Decodes the percent-escapes HubSpot decodes before signing v3.
    pub fn decode_uri(uri: &str) -> String {
        const MAP: &[(&str, &str)] = &[
            ("%3A", ":"),
            ("%2F", "/"),
            ("%3F", "?"),
            ("%40", "@"),
            ("%21", "!"),
            ("%24", "$"),
            ("%27", "'"),
            ("%28", "("),
            ("%29", ")"),
            ("%2A", "*"),
            ("%2C", ","),
            ("%3B", ";"),
        ];
        let mut out = String::with_capacity(uri.len());
        let mut rest = uri;
        'outer: while !rest.is_empty() {
            if rest.len() >= 3 && rest.as_bytes()[0] == b'%' {
                for (enc, dec) in MAP {
                    if rest[..3].eq_ignore_ascii_case(enc) {
                        out.push_str(dec);
                        rest = &rest[3..];
                        continue 'outer;
                    }
                }
            }
            let ch = rest.chars().next().unwrap_or('%');
            out.push(ch);
            rest = &rest[ch.len_utf8()..];
        }
        out
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        const SECRET: &str = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy";
        const URI: &str = "https://www.example.com/webhook_uri";
        const BODY: &[u8] = b"{'example_field':'example_value'}";

        #[test]
        fn v1_known_answer() {
            assert_eq!(
                v1(SECRET, BODY),
                "69fc6631a867edd4f9e9e627fc5c1148e3fbdd8b21837b6d2b8901c1fa57f750"
            );
        }

        #[test]
        fn v2_known_answer() {
            assert_eq!(
                v2(SECRET, "POST", URI, BODY),
                "4fe4e3a7d3cf09db53be39d0a58130e2aaba074ec123a9e355b876a689a1c383"
            );
        }

        #[test]
        fn v3_known_answer() {
            assert_eq!(
                v3(SECRET, "POST", URI, BODY, 1_693_657_560_000),
                "K36dawei4A+QBNolUOqo7s91KQDWQ5MXZ/QufNYuk/Y="
            );
        }

        #[test]
        fn uri_decoding() {
            assert_eq!(
                decode_uri("https://x.io/hook%3Fa%3Db%2Cc%20d"),
                "https://x.io/hook?a%3Db,c%20d"
            );
        }
    }
}

struct Pending {
    deadline: Instant,
    events: Vec<WebhookEvent>,
}

/// Groups events per portal for `batch_window_ms`, applies faults, and spawns deliveries.
pub(crate) async fn run_dispatcher(
    state: Arc<SimState>,
    mut rx: mpsc::UnboundedReceiver<WebhookEvent>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut pending: BTreeMap<u64, Pending> = BTreeMap::new();
    loop {
        let next = pending.values().map(|p| p.deadline).min();
        tokio::select! {
            ev = rx.recv() => {
                let Some(ev) = ev else { break };
                let (window, max_batch) = {
                    let c = state.config_read();
                    (c.webhooks.batch_window_ms, c.webhooks.max_batch_size.clamp(1, 100))
                };
                let portal = ev.portal_id;
                let p = pending.entry(portal).or_insert_with(|| Pending {
                    deadline: Instant::now() + Duration::from_millis(window),
                    events: Vec::new(),
                });
                p.events.push(ev);
                if p.events.len() >= max_batch * 10 {
                    if let Some(p) = pending.remove(&portal) {
                        flush(&state, portal, p.events);
                    }
                }
            }
            _ = sleep_until_opt(next) => {
                let now = Instant::now();
                let due: Vec<u64> = pending.iter().filter(|(_, p)| p.deadline <= now).map(|(k, _)| *k).collect();
                for portal in due {
                    if let Some(p) = pending.remove(&portal) {
                        flush(&state, portal, p.events);
                    }
                }
            }
            _ = shutdown.changed() => break,
        }
    }
}

async fn sleep_until_opt(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending::<()>().await,
    }
}

fn flush(state: &Arc<SimState>, portal_id: u64, mut events: Vec<WebhookEvent>) {
    let n = events.len();
    let (target, max_batch) = {
        let c = state.config_read();
        (
            c.webhooks.target_url.clone(),
            c.webhooks.max_batch_size.clamp(1, 100),
        )
    };
    let portal = match state.portal(portal_id) {
        Ok(p) => p,
        Err(_) => {
            state.events.pending.fetch_sub(n, Ordering::SeqCst);
            return;
        }
    };
    if target.is_none() {
        state
            .counters
            .update(|c| c.webhook_events_undeliverable += n as u64);
        state.events.pending.fetch_sub(n, Ordering::SeqCst);
        return;
    }
    let (delay_ms, skew_ms) = {
        let mut f = portal.faults_lock();
        let faults = f.faults.clone();
        let rng = &mut f.rng;
        let mut dropped = 0u64;
        let mut dups = Vec::new();
        if faults.webhook_drop_rate > 0.0 {
            events.retain(|_| {
                let keep = rng.random::<f64>() >= faults.webhook_drop_rate;
                if !keep {
                    dropped += 1;
                }
                keep
            });
        }
        if faults.webhook_duplicate_rate > 0.0 {
            for e in &events {
                if rng.random::<f64>() < faults.webhook_duplicate_rate {
                    dups.push(e.clone());
                }
            }
        }
        let dup_n = dups.len() as u64;
        events.extend(dups);
        if faults.webhook_reorder {
            events.shuffle(rng);
        }
        state.counters.update(|c| {
            c.webhook_events_dropped += dropped;
            c.webhook_events_duplicated += dup_n;
        });
        (faults.webhook_delay_ms, faults.webhook_timestamp_skew_ms)
    };
    let chunks: Vec<Vec<WebhookEvent>> = events.chunks(max_batch).map(|c| c.to_vec()).collect();
    state
        .events
        .inflight
        .fetch_add(chunks.len(), Ordering::SeqCst);
    state.events.pending.fetch_sub(n, Ordering::SeqCst);
    for chunk in chunks {
        let st = state.clone();
        let sem = portal.delivery_sem.clone();
        let jitter_seed: u64 = portal.faults_lock().rng.random();
        state.spawn_task(async move {
            deliver(&st, sem, chunk, delay_ms, skew_ms, jitter_seed).await;
            st.events.inflight.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

async fn deliver(
    state: &Arc<SimState>,
    sem: Arc<tokio::sync::Semaphore>,
    mut events: Vec<WebhookEvent>,
    delay_ms: u64,
    skew_ms: i64,
    jitter_seed: u64,
) {
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(jitter_seed);
    if delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    }
    let n = events.len() as u64;
    let mut attempt: u32 = 0;
    loop {
        let (cfg, secret) = {
            let c = state.config_read();
            (c.webhooks.clone(), c.app.client_secret.clone())
        };
        let Some(target) = cfg.target_url.clone() else {
            state
                .counters
                .update(|c| c.webhook_events_undeliverable += n);
            return;
        };
        for e in events.iter_mut() {
            e.attempt_number = attempt;
        }
        let body = match serde_json::to_vec(&events) {
            Ok(b) => b,
            Err(_) => return,
        };
        let ts = chrono::Utc::now().timestamp_millis() + skew_ms;
        let uri = signing::decode_uri(cfg.public_url.as_deref().unwrap_or(&target));
        let v1 = signing::v1(&secret, &body);
        let v3 = signing::v3(&secret, "POST", &uri, &body, ts);
        let ok = {
            let _permit = sem.acquire().await;
            state.counters.update(|c| {
                c.webhook_requests += 1;
                if attempt > 0 {
                    c.webhook_retries += 1;
                }
            });
            let res = state
                .http
                .post(&target)
                .timeout(Duration::from_millis(cfg.timeout_ms.max(1)))
                .header("Content-Type", "application/json")
                .header("X-HubSpot-Signature", v1)
                .header("X-HubSpot-Signature-Version", "v1")
                .header("X-HubSpot-Signature-v3", v3)
                .header("X-HubSpot-Request-Timestamp", ts.to_string())
                .body(body)
                .send()
                .await;
            match res {
                Ok(r) => r.status().is_success(),
                Err(e) => {
                    tracing::debug!(error = %e, "webhook delivery failed");
                    false
                }
            }
        };
        if ok {
            state.counters.update(|c| {
                c.webhook_batches_delivered += 1;
                c.webhook_events_delivered += n;
            });
            return;
        }
        attempt += 1;
        if attempt >= cfg.max_attempts.max(1) {
            tracing::debug!(events = n, "webhook batch given up");
            state.counters.update(|c| {
                c.webhook_batches_failed += 1;
                c.webhook_events_failed += n;
            });
            return;
        }
        let base = cfg.retry_base_secs * 2f64.powi(attempt as i32 - 1) * cfg.time_scale;
        let jitter = 0.75 + rng.random::<f64>() * 0.5;
        let secs = (base * jitter).clamp(0.0, 86_400.0);
        tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    }
}
