//! What the journal records: the events mutations emit (classic webhook
//! events, before any webhook fault), list membership changes and app
//! lifecycle events — each only when a subscription of its portal asks for
//! it.

use std::collections::BTreeMap;

use super::{JournalEvent, JournalSubscription, APP_LIFECYCLE_EVENT_TYPE_ID};
use crate::clock::iso_ms;
use crate::model::ObjectType;
use crate::state::{association_type_ids, SimState};
use crate::webhooks::WebhookEvent;

/// An event before filtering: what it is and what a subscription must
/// allow for it to be recorded.
struct Candidate {
    event: JournalEvent,
    /// `UPDATE`: the property (a subscription's `properties` filter).
    property: Option<String>,
}

fn matches(sub: &JournalSubscription, c: &Candidate) -> bool {
    let e = &c.event;
    if sub.subscription_type != e.kind || !sub.actions.contains(&e.action) {
        return false;
    }
    if sub.portal_id.is_some_and(|p| p != e.portal_id) {
        return false;
    }
    if sub.object_type_id.is_some()
        && e.object_type_id.is_some()
        && sub.object_type_id != e.object_type_id
    {
        return false;
    }
    let allows = |filter: &Option<Vec<u64>>, v: Option<u64>| match (filter, v) {
        (Some(f), Some(v)) if !f.is_empty() => f.contains(&v),
        _ => true,
    };
    if !allows(&sub.object_ids, e.object_id) || !allows(&sub.list_ids, e.list_id) {
        return false;
    }
    if let (Some(f), Some(to)) = (
        &sub.associated_object_type_ids,
        &e.associated_object_type_id,
    ) {
        if !f.is_empty() && !f.contains(to) {
            return false;
        }
    }
    if let (Some(f), Some(p)) = (&sub.properties, &c.property) {
        if !f.is_empty() && !f.contains(p) {
            return false;
        }
    }
    true
}

/// The journal entry of a webhook event (classic or generic form).
fn from_webhook(e: &WebhookEvent) -> Option<Candidate> {
    let (prefix, kind) = e.subscription_type.split_once('.')?;
    let ty = if prefix == "object" {
        e.object_type_id
            .as_deref()
            .or(e.from_object_type_id.as_deref())
            .and_then(ObjectType::parse)?
    } else {
        ObjectType::parse(prefix)?
    };
    let mut event = JournalEvent {
        kind: "OBJECT".into(),
        portal_id: e.portal_id,
        occurred_at: iso_ms(e.occurred_at),
        object_type_id: Some(ty.object_type_id().into()),
        object_id: Some(e.object_id),
        ..JournalEvent::default()
    };
    let mut property = None;
    event.action = match kind {
        "creation" => "CREATE".into(),
        "deletion" => "DELETE".into(),
        "restore" => "RESTORE".into(),
        "propertyChange" => {
            let name = e.property_name.clone()?;
            event.property_changes = Some(BTreeMap::from([(
                name.clone(),
                e.property_value.clone().unwrap_or_default(),
            )]));
            property = Some(name);
            "UPDATE".into()
        }
        "merge" => {
            event.object_id = Some(e.new_object_id.unwrap_or(e.object_id));
            let mut merged = e.merged_object_ids.clone().unwrap_or_default();
            if let Some(primary) = e.primary_object_id {
                if Some(primary) != event.object_id {
                    merged.push(primary);
                }
            }
            event.merged_object_ids = Some(merged);
            "MERGE".into()
        }
        "associationChange" => {
            let to = match &e.association_type {
                Some(a) => a
                    .split_once("_TO_")
                    .and_then(|(_, to)| ObjectType::parse(to)),
                None => e.to_object_type_id.as_deref().and_then(ObjectType::parse),
            }?;
            event.kind = "ASSOCIATION".into();
            event.object_id = Some(e.from_object_id.unwrap_or(e.object_id));
            event.associated_object_type_id = Some(to.object_type_id().into());
            event.associated_object_id = e.to_object_id;
            event.association_type_id = e
                .association_type_id
                .or_else(|| association_type_ids(ty, to).map(|(_, plain)| plain));
            if e.association_removed == Some(true) {
                "ASSOCIATION_REMOVED".into()
            } else {
                "ASSOCIATION_ADDED".into()
            }
        }
        "privacyDeletion" => {
            event.kind = "GDPR_PRIVACY_DELETION".into();
            "GDPR_DELETE".into()
        }
        _ => return None,
    };
    Some(Candidate { event, property })
}

impl SimState {
    fn journal_record(&self, candidates: impl IntoIterator<Item = Candidate>) {
        let now = self.now_ms();
        let mut recorded = 0u64;
        {
            let mut j = self.journal_lock();
            for c in candidates {
                if j.subscriptions.values().any(|s| matches(s, &c)) {
                    j.push(c.event, now);
                    recorded += 1;
                }
            }
        }
        if recorded > 0 {
            self.counters
                .update(|c| c.journal_events_recorded += recorded);
        }
    }

    /// Journals the events a mutation emitted (called before delivery and
    /// its faults).
    pub(crate) fn journal_webhook_events(&self, events: &[WebhookEvent]) {
        self.journal_record(events.iter().filter_map(from_webhook));
    }

    /// Journals list membership changes (`ADDED_TO_LIST`,
    /// `REMOVED_FROM_LIST`).
    pub(crate) fn journal_list_membership(
        &self,
        portal: u64,
        list_id: u64,
        ty: ObjectType,
        ids: &[u64],
        added: bool,
    ) {
        let occurred_at = iso_ms(self.now_ms());
        self.journal_record(ids.iter().map(|id| {
            Candidate {
                event: JournalEvent {
                    kind: "LIST_MEMBERSHIP".into(),
                    portal_id: portal,
                    occurred_at: occurred_at.clone(),
                    action: if added {
                        "ADDED_TO_LIST"
                    } else {
                        "REMOVED_FROM_LIST"
                    }
                    .into(),
                    object_type_id: Some(ty.object_type_id().into()),
                    object_id: Some(*id),
                    list_id: Some(list_id),
                    ..JournalEvent::default()
                },
                property: None,
            }
        }));
    }

    /// Journals an app install or uninstall on `portal`.
    pub(crate) fn journal_app_lifecycle(&self, portal: u64, installed: bool) {
        self.journal_record([Candidate {
            event: JournalEvent {
                kind: "APP_LIFECYCLE_EVENT".into(),
                portal_id: portal,
                occurred_at: iso_ms(self.now_ms()),
                action: if installed {
                    "APP_INSTALL"
                } else {
                    "APP_UNINSTALL"
                }
                .into(),
                event_type_id: Some(APP_LIFECYCLE_EVENT_TYPE_ID.into()),
                ..JournalEvent::default()
            },
            property: None,
        }]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(kind: &str, actions: &[&str]) -> JournalSubscription {
        JournalSubscription {
            id: 1,
            app_id: 1,
            subscription_type: kind.into(),
            portal_id: Some(7),
            object_type_id: Some("0-1".into()),
            actions: actions.iter().map(|a| a.to_string()).collect(),
            properties: None,
            object_ids: None,
            associated_object_type_ids: None,
            list_ids: None,
            event_type_id: None,
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    fn webhook(kind: &str) -> WebhookEvent {
        WebhookEvent {
            portal_id: 7,
            object_id: 42,
            occurred_at: 1_700_000_000_000,
            subscription_type: kind.into(),
            ..WebhookEvent::default()
        }
    }

    #[test]
    fn property_changes_respect_the_property_filter() {
        let mut e = webhook("contact.propertyChange");
        e.property_name = Some("email".into());
        e.property_value = Some("a@b.example".into());
        let c = from_webhook(&e).unwrap();
        assert_eq!(c.event.action, "UPDATE");
        assert_eq!(
            c.event.property_changes.as_ref().unwrap()["email"],
            "a@b.example"
        );
        let mut s = sub("OBJECT", &["UPDATE"]);
        assert!(matches(&s, &c));
        s.properties = Some(vec!["firstname".into()]);
        assert!(!matches(&s, &c));
        s.properties = Some(vec![]);
        assert!(matches(&s, &c), "an empty filter matches all");
        s.portal_id = Some(8);
        assert!(!matches(&s, &c), "another portal's subscription");
    }

    #[test]
    fn generic_and_classic_events_journal_alike() {
        let classic = webhook("contact.creation");
        let generic = classic.clone().into_generic();
        let a = from_webhook(&classic).unwrap().event;
        let b = from_webhook(&generic).unwrap().event;
        assert_eq!(a, b);
        assert_eq!(a.action, "CREATE");
        assert!(matches(
            &sub("OBJECT", &["CREATE"]),
            &from_webhook(&generic).unwrap()
        ));
        assert!(!matches(
            &sub("OBJECT", &["DELETE"]),
            &from_webhook(&generic).unwrap()
        ));
    }

    #[test]
    fn associations_carry_both_ends() {
        let mut e = webhook("contact.associationChange");
        e.association_type = Some("CONTACT_TO_COMPANY".into());
        e.from_object_id = Some(42);
        e.to_object_id = Some(9);
        e.association_removed = Some(true);
        let c = from_webhook(&e).unwrap();
        assert_eq!(c.event.kind, "ASSOCIATION");
        assert_eq!(c.event.action, "ASSOCIATION_REMOVED");
        assert_eq!(c.event.associated_object_type_id.as_deref(), Some("0-2"));
        assert_eq!(c.event.associated_object_id, Some(9));
        assert_eq!(c.event.association_type_id, Some(279));
        let mut s = sub("ASSOCIATION", &["ASSOCIATION_ADDED", "ASSOCIATION_REMOVED"]);
        s.associated_object_type_ids = Some(vec!["0-3".into()]);
        assert!(!matches(&s, &c));
        s.associated_object_type_ids = Some(vec!["0-2".into()]);
        assert!(matches(&s, &c));
    }

    #[test]
    fn merges_name_the_survivor_and_the_merged() {
        let mut e = webhook("company.merge");
        e.primary_object_id = Some(42);
        e.merged_object_ids = Some(vec![43]);
        e.new_object_id = Some(50);
        let c = from_webhook(&e).unwrap().event;
        assert_eq!(c.action, "MERGE");
        assert_eq!(c.object_id, Some(50));
        assert_eq!(c.merged_object_ids, Some(vec![43, 42]));
    }
}
