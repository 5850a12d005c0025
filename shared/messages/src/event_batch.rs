//! The SQS message contract between `webhook-intake` and `record-upsert`.
//!
//! One message carries the events of one portal from one delivery:
//! `{"v":1,"portalId":123,"receivedAt":1700000000000,"events":[…]}`, with the
//! events re-serialised from the parsed form (the signature was checked on
//! the raw body before). A delivery whose events do not fit one message is
//! split at event boundaries.
//!
//! The journal reader also queues what no webhook says: records that
//! entered or left a HubSpot list (`listChanges`, in messages of their own,
//! [`LIST_CHANGES_PER_MESSAGE`] at most). The worker re-reads those records
//! and their list memberships.

use hubsync_hubspot::{ObjectId, ObjectType, PortalId, WebhookEvent};
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

/// `changeSource` of the events the journal reader queues (what HubSpot's
/// Webhooks Journal had and the webhooks may not have delivered).
pub const JOURNAL_CHANGE_SOURCE: &str = "WEBHOOKS_JOURNAL";

/// The `changeSource` of the association changes hubsync queues itself for
/// the records that named one HubSpot deleted, merged away or purged
/// (HubSpot sends no event for them; see `hubsync_store::relinks`).
pub const RELINK_CHANGE_SOURCE: &str = "HUBSYNC_RELINK";

/// List changes per message (each serialises to ~120 bytes).
pub const LIST_CHANGES_PER_MESSAGE: usize = 500;

/// A record entered or left a HubSpot list (the Webhooks Journal's
/// `ADDED_TO_LIST` / `REMOVED_FROM_LIST`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListChange {
    pub object_type: ObjectType,
    pub object_id: ObjectId,
    pub list_id: String,
    pub added: bool,
    /// Epoch ms.
    pub occurred_at: i64,
}

/// The events of one portal, as queued.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventBatch {
    pub v: u32,
    pub portal_id: PortalId,
    /// When the intake received the delivery (epoch ms).
    pub received_at: i64,
    pub events: Vec<WebhookEvent>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub list_changes: Vec<ListChange>,
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
            list_changes: Vec::new(),
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
        for chunk in self.list_changes.chunks(LIST_CHANGES_PER_MESSAGE) {
            let batch = EventBatch {
                events: Vec::new(),
                list_changes: chunk.to_vec(),
                ..EventBatch::new(self.portal_id, self.received_at, Vec::new())
            };
            let body = serde_json::to_string(&batch).map_err(|source| MessageError::Encode {
                portal: self.portal_id,
                source,
            })?;
            messages.push(OutboundMessage::new(self.portal_id, body));
        }
        Ok(messages)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(id: u64) -> ListChange {
        ListChange {
            object_type: ObjectType::Contacts,
            object_id: ObjectId(id),
            list_id: "3".into(),
            added: id % 2 == 0,
            occurred_at: 1_000 + id as i64,
        }
    }

    #[test]
    fn list_changes_travel_in_messages_of_their_own_and_parse_back() {
        let changes: Vec<ListChange> = (0..(LIST_CHANGES_PER_MESSAGE as u64 + 3))
            .map(change)
            .collect();
        let batch = EventBatch {
            list_changes: changes.clone(),
            ..EventBatch::new(PortalId(7), 5, Vec::new())
        };
        let messages = batch.into_messages(256 * 1024 - 64).unwrap();
        assert_eq!(messages.len(), 2);
        let mut back = Vec::new();
        for m in &messages {
            assert!(m.body.len() < 256 * 1024 - 64);
            let parsed = EventBatch::from_json(&m.body).unwrap();
            assert_eq!((parsed.portal_id, parsed.received_at), (PortalId(7), 5));
            assert!(parsed.events.is_empty());
            back.extend(parsed.list_changes);
        }
        assert_eq!(back, changes);
    }

    #[test]
    fn a_batch_without_list_changes_serialises_as_before() {
        let json = serde_json::to_string(&EventBatch::new(PortalId(7), 5, Vec::new())).unwrap();
        assert_eq!(json, r#"{"v":1,"portalId":7,"receivedAt":5,"events":[]}"#);
        assert!(EventBatch::from_json(&json)
            .unwrap()
            .list_changes
            .is_empty());
    }
}
