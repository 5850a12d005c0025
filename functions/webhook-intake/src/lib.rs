//! `webhook-intake`: HubSpot POSTs signed batches of change events here.
//!
//! The handler does as little as it safely can, because HubSpot retries any
//! delivery that takes longer than 5 s:
//!
//! 1. refuse bodies over the size limit (400) before hashing anything;
//! 2. verify the v3 signature over the **raw body** against the configured
//!    public URL, with a 5-minute window (401 on any failure);
//! 3. parse the event array (400 when malformed or over 100 events);
//! 4. drop — and count — events of unknown type (classic `contact.*` and
//!    generic `object.*` types of companies, contacts and deals are known), of another app, and of
//!    portals that are not connected (answering 2xx: a 4xx would make HubSpot
//!    retry them for a day);
//! 5. put the rest on SQS, grouped by portal, in as few requests as possible
//!    (one per delivery unless the 256 KiB limit forces a split). If SQS
//!    fails the answer is 503 so that HubSpot retries: nothing is lost behind
//!    a 200.
//!
//! The logic is generic over [`EventSink`] and [`PortalDirectory`] so tests
//! drive it without AWS; `main.rs` wires the SQS and DynamoDB versions.

pub mod directory;
pub mod http;
pub mod settings;
/// The events queue (one place: `hubsync_messages::event_sink`).
pub use hubsync_messages::event_sink as sink;

use std::collections::BTreeMap;

use hubsync_hubspot::signature::WebhookVerifier;
use hubsync_hubspot::{parse_delivery, DeliveryError, PortalId, SignatureError, WebhookEvent};
use serde::Serialize;
use tracing::Instrument;

pub use directory::{
    CachedDirectory, DirectoryError, PortalDirectory, PortalState, StoreDirectory,
};
/// The queue message (the contract with `record-upsert`).
pub use hubsync_messages::{EventBatch, MessageError};
pub use sink::{EventSink, OutboundMessage, SinkError};

/// Limits and identity checks of the intake.
#[derive(Debug, Clone)]
pub struct IntakeConfig {
    /// Larger bodies are refused before any work (HubSpot's 100 events are
    /// far below this).
    pub max_body_bytes: usize,
    /// Largest SQS message body we produce (SQS allows 256 KiB per message
    /// and per `SendMessageBatch` request).
    pub max_message_bytes: usize,
    /// Events whose `appId` differs are skipped (another app's subscription
    /// pointed at this URL). `None` accepts any app.
    pub app_id: Option<u64>,
}

impl Default for IntakeConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            max_message_bytes: sink::SQS_MAX_REQUEST_BYTES - sink::MESSAGE_ATTRIBUTE_BYTES,
            app_id: None,
        }
    }
}

/// What a delivery looks like to the handler, independent of Lambda or axum.
#[derive(Debug, Clone, Copy)]
pub struct IntakeRequest<'a> {
    pub method: &'a str,
    /// The raw query string (without `?`), part of the signed URI.
    pub raw_query: Option<&'a str>,
    pub body: &'a [u8],
    pub timestamp: Option<&'a str>,
    pub signature_v3: Option<&'a str>,
    /// Receive time, epoch milliseconds.
    pub now_ms: i64,
}

/// Why a delivery was refused. Messages never include body content.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    #[error("method {0} is not allowed; HubSpot webhooks are POSTed")]
    MethodNotAllowed(String),
    #[error("request body is {size} bytes, over the {limit}-byte limit")]
    BodyTooLarge { size: usize, limit: usize },
    #[error("signature rejected: {0}")]
    Signature(#[from] SignatureError),
    #[error("{0}")]
    Delivery(#[from] DeliveryError),
    #[error("webhook body holds no events")]
    Empty,
    #[error("could not look up the portal's connection: {0}")]
    Directory(#[from] DirectoryError),
    #[error("could not queue the events: {0}")]
    Queue(#[from] SinkError),
    #[error("{0}")]
    Message(#[from] MessageError),
}

impl Rejection {
    /// The HTTP status HubSpot gets.
    pub fn status(&self) -> u16 {
        match self {
            Rejection::MethodNotAllowed(_) => 405,
            Rejection::BodyTooLarge { .. }
            | Rejection::Delivery(_)
            | Rejection::Empty
            | Rejection::Message(_) => 400,
            Rejection::Signature(_) => 401,
            // Transient: HubSpot retries, and the events are not lost.
            Rejection::Directory(_) | Rejection::Queue(_) => 503,
        }
    }

    /// A stable short reason for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::MethodNotAllowed(_) => "method",
            Rejection::BodyTooLarge { .. } => "body_too_large",
            Rejection::Signature(SignatureError::TimestampTooOld { .. })
            | Rejection::Signature(SignatureError::TimestampInFuture { .. }) => "stale_timestamp",
            Rejection::Signature(_) => "bad_signature",
            Rejection::Delivery(DeliveryError::TooManyEvents { .. }) => "too_many_events",
            Rejection::Delivery(_) => "malformed",
            Rejection::Empty => "empty",
            Rejection::Message(_) => "event_too_large",
            Rejection::Directory(_) => "directory_unavailable",
            Rejection::Queue(_) => "queue_unavailable",
        }
    }
}

/// The counts of one accepted delivery (the 200 body, and the metrics).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Accepted {
    pub received: usize,
    pub enqueued: usize,
    pub sqs_messages: usize,
    pub sqs_requests: usize,
    /// Events of portals that are not connected (or no longer active).
    pub skipped_unknown_portal: usize,
    pub skipped_inactive_portal: usize,
    pub skipped_unknown_type: usize,
    pub skipped_foreign_app: usize,
}

/// The intake: verifier + limits + where events go.
pub struct Intake<S, D> {
    verifier: WebhookVerifier,
    config: IntakeConfig,
    sink: S,
    directory: D,
}

impl<S: EventSink, D: PortalDirectory> Intake<S, D> {
    pub fn new(verifier: WebhookVerifier, config: IntakeConfig, sink: S, directory: D) -> Self {
        Self {
            verifier,
            config,
            sink,
            directory,
        }
    }

    pub fn sink(&self) -> &S {
        &self.sink
    }

    /// Handle one delivery (in a `delivery` span: sizes only, no content).
    pub async fn handle(&self, req: IntakeRequest<'_>) -> Result<Accepted, Rejection> {
        let span = tracing::info_span!("delivery", bytes = req.body.len());
        self.handle_delivery(req).instrument(span).await
    }

    async fn handle_delivery(&self, req: IntakeRequest<'_>) -> Result<Accepted, Rejection> {
        if !req.method.eq_ignore_ascii_case("POST") {
            return Err(Rejection::MethodNotAllowed(req.method.to_string()));
        }
        if req.body.len() > self.config.max_body_bytes {
            return Err(Rejection::BodyTooLarge {
                size: req.body.len(),
                limit: self.config.max_body_bytes,
            });
        }
        self.verifier.verify(
            "POST",
            req.raw_query,
            req.body,
            req.timestamp,
            req.signature_v3,
            req.now_ms,
        )?;
        let events = parse_delivery(req.body)?;
        if events.is_empty() {
            return Err(Rejection::Empty);
        }

        let mut accepted = Accepted {
            received: events.len(),
            ..Accepted::default()
        };
        let mut by_portal: BTreeMap<PortalId, Vec<WebhookEvent>> = BTreeMap::new();
        for event in events {
            // Classic (`contact.creation`) and generic (`object.creation`
            // with `objectTypeId`) alike; other types and objects are skipped.
            if event.resolved().is_none() {
                accepted.skipped_unknown_type += 1;
                continue;
            }
            if self.config.app_id.is_some_and(|app| app != event.app_id) {
                accepted.skipped_foreign_app += 1;
                continue;
            }
            by_portal.entry(event.portal_id).or_default().push(event);
        }

        let mut messages = Vec::new();
        let mut queued_portals = Vec::new();
        for (portal, events) in by_portal {
            match self.directory.state(portal).await? {
                PortalState::Active => {}
                PortalState::Unknown => {
                    accepted.skipped_unknown_portal += events.len();
                    continue;
                }
                PortalState::Inactive => {
                    accepted.skipped_inactive_portal += events.len();
                    continue;
                }
            }
            accepted.enqueued += events.len();
            queued_portals.push(portal);
            let batch = EventBatch::new(portal, req.now_ms, events);
            messages.extend(batch.into_messages(self.config.max_message_bytes)?);
        }
        accepted.sqs_messages = messages.len();
        if !messages.is_empty() {
            accepted.sqs_requests = self.sink.send(messages).await?;
        }
        for portal in queued_portals {
            self.directory.webhook_seen(portal, req.now_ms).await;
        }
        Ok(accepted)
    }
}
