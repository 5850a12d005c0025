//! Journal entries → the work the webhook path produces: per-portal
//! webhook events (the worker's input, so a journal entry and the webhook
//! it duplicates coalesce in the worker like any two webhooks), plus the
//! actions that have no webhook (uninstalls).

use std::collections::BTreeMap;

use hubsync_hubspot::events::SubscriptionType;
use hubsync_hubspot::journal::{JournalEntry, ObjectAction};
use hubsync_hubspot::{EventKind, ObjectId, ObjectType, PortalId, WebhookEvent};
use hubsync_messages::ListChange;

pub use hubsync_messages::JOURNAL_CHANGE_SOURCE;

/// What a file's entries ask for.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Work {
    /// Webhook events by portal, in journal order.
    pub events: BTreeMap<PortalId, Vec<WebhookEvent>>,
    /// Portals that uninstalled the app.
    pub uninstalls: Vec<PortalId>,
    /// Records that entered or left a list, by portal (the worker re-reads
    /// them and their memberships).
    pub list_changes: BTreeMap<PortalId, Vec<ListChange>>,
    /// How many of those.
    pub list_membership_changes: u64,
    /// Entries not understood (counted, never acted on).
    pub unrecognised: u64,
    /// The newest `occurredAt` among the entries (epoch ms).
    pub newest_occurred_at_ms: Option<i64>,
}

pub(crate) fn event(
    portal: PortalId,
    object: ObjectType,
    kind: EventKind,
    object_id: Option<ObjectId>,
    occurred_at: i64,
) -> WebhookEvent {
    WebhookEvent {
        event_id: 0,
        subscription_id: 0,
        portal_id: portal,
        app_id: 0,
        occurred_at,
        subscription_type: SubscriptionType::Known { object, kind },
        attempt_number: 0,
        object_id,
        change_source: Some(JOURNAL_CHANGE_SOURCE.to_owned()),
        change_flag: None,
        source_id: None,
        property_name: None,
        property_value: None,
        primary_object_id: None,
        merged_object_ids: Vec::new(),
        new_object_id: None,
        number_of_properties_moved: None,
        association_type: None,
        from_object_id: None,
        to_object_id: None,
        association_removed: None,
        is_primary_association: None,
        object_type_id: None,
        from_object_type_id: None,
        to_object_type_id: None,
        association_type_id: None,
    }
}

/// The classic association type name (`CONTACT_TO_COMPANY`).
fn association_type(from: ObjectType, to: ObjectType) -> String {
    format!(
        "{}_TO_{}",
        from.subscription_prefix().to_ascii_uppercase(),
        to.subscription_prefix().to_ascii_uppercase()
    )
}

/// Turns a file's entries into work.
pub fn to_work(entries: &[JournalEntry]) -> Work {
    let mut work = Work::default();
    for entry in entries {
        if let Some(t) = entry.occurred_at_ms() {
            work.newest_occurred_at_ms = Some(work.newest_occurred_at_ms.map_or(t, |n| n.max(t)));
        }
        let mut push = |portal: PortalId, e: WebhookEvent| {
            work.events.entry(portal).or_default().push(e);
        };
        match entry {
            JournalEntry::Object {
                portal,
                object_type,
                object_id,
                action,
                occurred_at_ms,
            } => {
                let at = *occurred_at_ms;
                let id = Some(*object_id);
                match action {
                    ObjectAction::Create => push(
                        *portal,
                        event(*portal, *object_type, EventKind::Creation, id, at),
                    ),
                    ObjectAction::Delete => push(
                        *portal,
                        event(*portal, *object_type, EventKind::Deletion, id, at),
                    ),
                    ObjectAction::Restore => push(
                        *portal,
                        event(*portal, *object_type, EventKind::Restore, id, at),
                    ),
                    ObjectAction::Update(changes) => {
                        for (name, value) in changes {
                            let mut e =
                                event(*portal, *object_type, EventKind::PropertyChange, id, at);
                            e.property_name = Some(name.clone());
                            e.property_value = Some(value.clone());
                            push(*portal, e);
                        }
                    }
                    ObjectAction::Merge { merged } => {
                        let mut e = event(*portal, *object_type, EventKind::Merge, id, at);
                        e.primary_object_id = id;
                        e.new_object_id = id;
                        e.merged_object_ids = merged.clone();
                        push(*portal, e);
                    }
                }
            }
            JournalEntry::Association {
                portal,
                object_type,
                object_id,
                associated_type,
                associated_id,
                removed,
                occurred_at_ms,
            } => {
                let mut e = event(
                    *portal,
                    *object_type,
                    EventKind::AssociationChange,
                    None,
                    *occurred_at_ms,
                );
                e.association_type = Some(association_type(*object_type, *associated_type));
                e.from_object_id = Some(*object_id);
                e.to_object_id = Some(*associated_id);
                e.association_removed = Some(*removed);
                push(*portal, e);
            }
            JournalEntry::PrivacyDeletion {
                portal,
                object_id,
                occurred_at_ms,
            } => push(
                *portal,
                event(
                    *portal,
                    ObjectType::Contacts,
                    EventKind::PrivacyDeletion,
                    Some(*object_id),
                    *occurred_at_ms,
                ),
            ),
            JournalEntry::AppLifecycle {
                portal,
                installed: false,
                ..
            } => work.uninstalls.push(*portal),
            // An install arrives through the OAuth callback.
            JournalEntry::AppLifecycle { .. } => {}
            JournalEntry::ListMembership {
                portal,
                list_id,
                object_type,
                object_id,
                added,
                occurred_at_ms,
            } => {
                work.list_membership_changes += 1;
                work.list_changes
                    .entry(*portal)
                    .or_default()
                    .push(ListChange {
                        object_type: *object_type,
                        object_id: *object_id,
                        list_id: list_id.to_string(),
                        added: *added,
                        occurred_at: *occurred_at_ms,
                    });
            }
            JournalEntry::Unrecognised { .. } => work.unrecognised += 1,
        }
    }
    work
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(action: ObjectAction) -> JournalEntry {
        JournalEntry::Object {
            portal: PortalId(7),
            object_type: ObjectType::Contacts,
            object_id: ObjectId(42),
            action,
            occurred_at_ms: 1_000,
        }
    }

    /// What the worker parses is what the intake would have queued.
    fn round_trip(e: &WebhookEvent) -> WebhookEvent {
        serde_json::from_str(&serde_json::to_string(e).unwrap()).unwrap()
    }

    #[test]
    fn object_entries_become_the_webhooks_hubspot_would_have_sent() {
        let work = to_work(&[
            object(ObjectAction::Create),
            object(ObjectAction::Update(
                [
                    ("email".to_string(), "a@b.example".to_string()),
                    ("firstname".into(), "A".into()),
                ]
                .into(),
            )),
            object(ObjectAction::Merge {
                merged: vec![ObjectId(43)],
            }),
            object(ObjectAction::Delete),
        ]);
        let events = &work.events[&PortalId(7)];
        let kinds: Vec<String> = events
            .iter()
            .map(|e| e.subscription_type.to_string())
            .collect();
        assert_eq!(
            kinds,
            [
                "contact.creation",
                "contact.propertyChange",
                "contact.propertyChange",
                "contact.merge",
                "contact.deletion"
            ]
        );
        assert_eq!(events[1].property_name.as_deref(), Some("email"));
        assert_eq!(events[3].merged_object_ids, vec![ObjectId(43)]);
        for e in events {
            assert_eq!(&round_trip(e), e);
            assert_eq!(e.object_type(), Some(ObjectType::Contacts));
        }
        assert_eq!(work.newest_occurred_at_ms, Some(1_000));
    }

    #[test]
    fn associations_uninstalls_and_the_rest() {
        let work = to_work(&[
            JournalEntry::Association {
                portal: PortalId(7),
                object_type: ObjectType::Deals,
                object_id: ObjectId(1),
                associated_type: ObjectType::Companies,
                associated_id: ObjectId(2),
                removed: true,
                occurred_at_ms: 5,
            },
            JournalEntry::AppLifecycle {
                portal: PortalId(8),
                installed: false,
                occurred_at_ms: 9,
            },
            JournalEntry::AppLifecycle {
                portal: PortalId(9),
                installed: true,
                occurred_at_ms: 3,
            },
            JournalEntry::ListMembership {
                portal: PortalId(7),
                list_id: 1,
                object_type: ObjectType::Contacts,
                object_id: ObjectId(3),
                added: true,
                occurred_at_ms: 4,
            },
            JournalEntry::Unrecognised {
                kind: "OBJECT".into(),
                action: "SNAPSHOT".into(),
            },
        ]);
        let a = &work.events[&PortalId(7)][0];
        assert_eq!(a.subscription_type.to_string(), "deal.associationChange");
        assert_eq!(a.association_type.as_deref(), Some("DEAL_TO_COMPANY"));
        assert_eq!(
            (a.from_object_id, a.to_object_id),
            (Some(ObjectId(1)), Some(ObjectId(2)))
        );
        assert_eq!(a.association_removed, Some(true));
        assert_eq!(&round_trip(a), a);
        assert_eq!(work.uninstalls, vec![PortalId(8)]);
        assert_eq!((work.list_membership_changes, work.unrecognised), (1, 1));
        let change = &work.list_changes[&PortalId(7)][0];
        assert_eq!(
            (change.object_id, change.list_id.as_str(), change.added),
            (ObjectId(3), "1", true)
        );
        assert_eq!(work.newest_occurred_at_ms, Some(9));
        assert!(!work.events.contains_key(&PortalId(9)));
    }
}
