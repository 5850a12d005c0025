//! The SQS message contract between `webhook-intake` and `record-upsert`.
//!
//! One message carries the events of one portal from one delivery:
//! `{"v":1,"portalId":123,"receivedAt":1700000000000,"events":[…]}`, with the
//! events re-serialised from the parsed form (the signature was checked on
//! the raw body before). A delivery whose events do not fit one message is
//! split at event boundaries.

use hubsync_hubspot::{PortalId, WebhookEvent};
use serde::{Deserialize, Serialize};

/// One queue message of a portal's events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundMessage {
    pub portal: PortalId,
    pub body: String,
}

impl OutboundMessage {
    pub fn new(portal: PortalId, body: String) -> Self {
        Self { portal, body }
    }
}

/// Version of the message format.
pub const MESSAGE_VERSION: u32 = 1;

/// The events of one portal, as queued.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventBatch {
    pub v: u32,
    pub portal_id: PortalId,
    /// When the intake received the delivery (epoch ms).
    pub received_at: i64,
    pub events: Vec<WebhookEvent>,
}

/// A batch that cannot become queue messages.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    /// One event alone is larger than an SQS message.
    #[error("an event of portal {portal} serialises to {size} bytes, over the {limit}-byte message limit")]
    Event {
        portal: PortalId,
        size: usize,
        limit: usize,
    },
    #[error("an event of portal {portal} could not be serialised: {source}")]
    Encode {
        portal: PortalId,
        source: serde_json::Error,
    },
}

impl EventBatch {
    pub fn new(portal_id: PortalId, received_at: i64, events: Vec<WebhookEvent>) -> Self {
        Self {
            v: MESSAGE_VERSION,
            portal_id,
            received_at,
            events,
        }
    }

    /// Parse a queued message body.
    pub fn from_json(body: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(body)
    }

    fn envelope_prefix(&self) -> String {
        format!(
            "{{\"v\":{},\"portalId\":{},\"receivedAt\":{},\"events\":[",
            self.v, self.portal_id, self.received_at
        )
    }

    /// Serialise into as few message bodies as fit `max_bytes` each.
    pub fn into_messages(self, max_bytes: usize) -> Result<Vec<OutboundMessage>, MessageError> {
        let prefix = self.envelope_prefix();
        const SUFFIX: &str = "]}";
        let overhead = prefix.len() + SUFFIX.len();
        let mut messages = Vec::new();
        let mut body = prefix.clone();
        let mut count = 0usize;
        for event in &self.events {
            let json = serde_json::to_string(event).map_err(|source| MessageError::Encode {
                portal: self.portal_id,
                source,
            })?;
            if overhead + json.len() > max_bytes {
                return Err(MessageError::Event {
                    portal: self.portal_id,
                    size: overhead + json.len(),
                    limit: max_bytes,
                });
            }
            let separator = usize::from(count > 0);
            if body.len() + separator + json.len() + SUFFIX.len() > max_bytes {
                body.push_str(SUFFIX);
                messages.push(OutboundMessage::new(self.portal_id, body));
                body = prefix.clone();
                count = 0;
            }
            if count > 0 {
                body.push(',');
            }
            body.push_str(&json);
            count += 1;
        }
        if count > 0 {
            body.push_str(SUFFIX);
            messages.push(OutboundMessage::new(self.portal_id, body));
        }
        Ok(messages)
    }
}
