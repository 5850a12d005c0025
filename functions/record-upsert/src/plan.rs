//! From a batch of webhook events to the work on one portal and object
//! type: pure, no I/O.
//!
//! Correctness does not come from event order (HubSpot guarantees none) but
//! from re-reading HubSpot and the store's version guard. The plan only
//! decides *which* ids to look at and with what evidence:
//!
//! * `contact.privacyDeletion` → **purge** (PII-free tombstone). Wins over
//!   everything else about the same id.
//! * `*.merge` → the merged-away ids are **archived** with `merged_into` =
//!   the survivor (`newObjectId` else `primaryObjectId` else `objectId`); the
//!   survivor is **re-read** (a merge sends no propertyChange for the fields
//!   it changed). When HubSpot made a new id, the primary is merged away too.
//! * `*.deletion` → re-read; if HubSpot no longer returns the id it is
//!   archived at the deletion's `occurredAt` (if it does, a restore won).
//! * `*.creation`, `*.propertyChange`, `*.restore` → re-read.
//! * `*.associationChange` → the `fromObjectId` is noted; the worker
//!   re-reads it when the portal's mapping has association fields for the
//!   type (HubSpot sends one event per direction, so both ends are
//!   covered), and otherwise only counts it.
//! * a list change (the journal reader's `listChanges`: a record entered or
//!   left a HubSpot list) → re-read, with its list memberships when the
//!   type has a list scope.

use std::collections::BTreeMap;

use hubsync_hubspot::{EventKind, ObjectId, ObjectType, PortalId, WebhookEvent};
use hubsync_messages::{ListChange, JOURNAL_CHANGE_SOURCE};

/// What to do about one id that needs a fresh read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReadIntent {
    /// The latest deletion event seen, if any (epoch ms).
    pub deleted_at: Option<i64>,
    /// The latest event about this id (epoch ms).
    pub last_event_at: i64,
    /// Whether an event may have changed its associations (a creation, a
    /// restore, a merge, a deletion that did not happen, an
    /// association change): only then are they read from HubSpot; after
    /// property changes alone, the stored ones are carried forward.
    pub links_may_change: bool,
    /// Whether it entered or left a list: its memberships are read (for a
    /// list scope) instead of the list scope being left to the nightly run.
    pub lists_may_change: bool,
    /// Whether every event about it came from the Webhooks Journal (none
    /// by webhook): a write it causes is a change the webhooks missed.
    pub journal_only: bool,
}

/// A merged-away id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MergedAway {
    pub into: ObjectId,
    pub occurred_at: i64,
}

/// The work for one `(portal, object type)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub purge: BTreeMap<ObjectId, i64>,
    pub merged_away: BTreeMap<ObjectId, MergedAway>,
    pub read: BTreeMap<ObjectId, ReadIntent>,
    /// Ids whose associations changed, with the latest change (epoch ms).
    pub association_changed: BTreeMap<ObjectId, i64>,
    /// Events that need no work (counted by the worker for association
    /// changes the mapping does not use).
    pub deferred_events: usize,
    /// Events that lacked the id their kind needs.
    pub invalid_events: usize,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.purge.is_empty()
            && self.merged_away.is_empty()
            && self.read.is_empty()
            && self.association_changed.is_empty()
    }

    fn read(&mut self, id: ObjectId, at: i64, links_may_change: bool, from_journal: bool) {
        let first = !self.read.contains_key(&id);
        let intent = self.read.entry(id).or_default();
        intent.last_event_at = intent.last_event_at.max(at);
        intent.links_may_change |= links_may_change;
        intent.journal_only = from_journal && (first || intent.journal_only);
    }

    fn add(&mut self, event: &WebhookEvent, kind: EventKind) {
        let at = event.occurred_at;
        let journal = event.change_source.as_deref() == Some(JOURNAL_CHANGE_SOURCE);
        match kind {
            EventKind::PrivacyDeletion => match event.object_id {
                Some(id) => {
                    let purge_at = self.purge.entry(id).or_insert(at);
                    *purge_at = (*purge_at).max(at);
                }
                None => self.invalid_events += 1,
            },
            EventKind::Merge => {
                let Some(survivor) = event.merge_survivor() else {
                    self.invalid_events += 1;
                    return;
                };
                let mut away: Vec<ObjectId> = event.merged_object_ids.clone();
                if let Some(primary) = event.primary_object_id {
                    away.push(primary);
                }
                if let Some(object) = event.object_id {
                    away.push(object);
                }
                for id in away.into_iter().filter(|id| *id != survivor) {
                    let entry = self.merged_away.entry(id).or_insert(MergedAway {
                        into: survivor,
                        occurred_at: at,
                    });
                    if at >= entry.occurred_at {
                        *entry = MergedAway {
                            into: survivor,
                            occurred_at: at,
                        };
                    }
                }
                self.read(survivor, at, true, journal);
            }
            EventKind::Deletion => match event.object_id {
                Some(id) => {
                    self.read(id, at, true, journal);
                    let intent = self.read.entry(id).or_default();
                    intent.deleted_at = Some(intent.deleted_at.map_or(at, |d| d.max(at)));
                }
                None => self.invalid_events += 1,
            },
            EventKind::Creation | EventKind::PropertyChange | EventKind::Restore => {
                match event.object_id {
                    Some(id) => self.read(id, at, kind != EventKind::PropertyChange, journal),
                    None => self.invalid_events += 1,
                }
            }
            EventKind::AssociationChange => match event.from_object_id.or(event.object_id) {
                Some(id) => {
                    let last = self.association_changed.entry(id).or_insert(at);
                    *last = (*last).max(at);
                }
                None => self.invalid_events += 1,
            },
        }
    }

    /// Settle conflicts once all events are in: a purged id is neither read
    /// nor merge-archived; a merged-away id is not read (HubSpot no longer
    /// has it), even if it survived an earlier merge.
    fn settle(&mut self) {
        for id in self.purge.keys() {
            self.read.remove(id);
            self.merged_away.remove(id);
            self.association_changed.remove(id);
        }
        for id in self.merged_away.keys() {
            self.read.remove(id);
            self.association_changed.remove(id);
        }
    }
}

/// Events that could not be planned at all (unknown type).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unplanned {
    pub unknown_type: usize,
}

/// Adds a portal's list changes to the plans (after [`plan`]).
pub fn plan_list_changes<'a>(
    plans: &mut BTreeMap<(PortalId, ObjectType), Plan>,
    portal: PortalId,
    changes: impl IntoIterator<Item = &'a ListChange>,
) {
    for c in changes {
        let plan = plans.entry((portal, c.object_type)).or_default();
        plan.read(c.object_id, c.occurred_at, true, true);
        if let Some(intent) = plan.read.get_mut(&c.object_id) {
            intent.lists_may_change = true;
        }
        plan.settle();
    }
}

/// Group events per `(portal, object type)` and plan each group.
pub fn plan<'a>(
    events: impl IntoIterator<Item = &'a WebhookEvent>,
) -> (BTreeMap<(PortalId, ObjectType), Plan>, Unplanned) {
    let mut plans: BTreeMap<(PortalId, ObjectType), Plan> = BTreeMap::new();
    let mut unplanned = Unplanned::default();
    for event in events {
        let Some((object, kind)) = event.resolved() else {
            unplanned.unknown_type += 1;
            continue;
        };
        plans
            .entry((event.portal_id, object))
            .or_default()
            .add(event, kind);
    }
    for plan in plans.values_mut() {
        plan.settle();
    }
    (plans, unplanned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const P: u64 = 77;

    #[test]
    fn list_changes_read_the_record_and_its_lists_unless_it_is_gone() {
        let (mut plans, _) = plan(&[ev(
            json!({"subscriptionType":"contact.privacyDeletion","objectId":4,"occurredAt":10}),
        )]);
        let change = |id: u64| ListChange {
            object_type: ObjectType::Contacts,
            object_id: ObjectId(id),
            list_id: "3".into(),
            added: true,
            occurred_at: 20,
        };
        plan_list_changes(&mut plans, PortalId(P), &[change(4), change(5)]);
        let p = &plans[&(PortalId(P), ObjectType::Contacts)];
        assert!(
            !p.read.contains_key(&ObjectId(4)),
            "purged ids are not read"
        );
        let intent = p.read[&ObjectId(5)];
        assert!(intent.lists_may_change && intent.links_may_change && intent.journal_only);
        assert_eq!(intent.last_event_at, 20);
    }

    #[test]
    fn an_id_is_journal_only_while_no_webhook_names_it() {
        let journal = |at: i64| {
            ev(
                json!({"subscriptionType":"deal.propertyChange","objectId":5,"occurredAt":at,
                "changeSource": JOURNAL_CHANGE_SOURCE, "propertyName":"amount","propertyValue":"1"}),
            )
        };
        let webhook = ev(
            json!({"subscriptionType":"deal.propertyChange","objectId":5,"occurredAt":3,
            "propertyName":"amount","propertyValue":"1"}),
        );
        let (plans, _) = plan(&[journal(1), journal(2)]);
        assert!(plans[&(PortalId(P), ObjectType::Deals)].read[&ObjectId(5)].journal_only);
        for events in [
            vec![journal(1), webhook.clone()],
            vec![webhook.clone(), journal(1)],
        ] {
            let (plans, _) = plan(&events);
            assert!(!plans[&(PortalId(P), ObjectType::Deals)].read[&ObjectId(5)].journal_only);
        }
    }

    fn ev(v: serde_json::Value) -> WebhookEvent {
        let mut base = json!({
            "eventId": 1, "subscriptionId": 1, "portalId": P, "appId": 1,
            "occurredAt": 1000, "attemptNumber": 0
        });
        if let (Some(b), Some(extra)) = (base.as_object_mut(), v.as_object()) {
            for (k, val) in extra {
                b.insert(k.clone(), val.clone());
            }
        }
        serde_json::from_value(base).unwrap()
    }

    fn one(events: &[WebhookEvent], object: ObjectType) -> Plan {
        let (plans, _) = plan(events);
        plans
            .get(&(PortalId(P), object))
            .cloned()
            .unwrap_or_default()
    }

    #[test]
    fn duplicate_changes_to_one_record_cost_one_read() {
        let events: Vec<_> = (0..5)
            .map(|i| {
                ev(
                    json!({"subscriptionType":"company.propertyChange","objectId":9,
                          "occurredAt": 1000 + i, "propertyName":"name","propertyValue":"x"}),
                )
            })
            .collect();
        let p = one(&events, ObjectType::Companies);
        assert_eq!(p.read.len(), 1);
        assert_eq!(p.read[&ObjectId(9)].last_event_at, 1004);
        assert_eq!(p.read[&ObjectId(9)].deleted_at, None);
    }

    #[test]
    fn generic_events_plan_like_their_classic_twins() {
        let classic = [
            ev(json!({"subscriptionType":"deal.deletion","objectId":5,"occurredAt":2000})),
            ev(json!({"subscriptionType":"deal.propertyChange","objectId":6,"occurredAt":2100})),
            ev(
                json!({"subscriptionType":"deal.merge","objectId":7,"primaryObjectId":7,
                "mergedObjectIds":[8],"newObjectId":9,"occurredAt":2200}),
            ),
            ev(json!({"subscriptionType":"deal.restore","objectId":10,"occurredAt":2300})),
            ev(
                json!({"subscriptionType":"deal.associationChange","fromObjectId":11,
                "toObjectId":1,"associationType":"DEAL_TO_COMPANY","occurredAt":2400}),
            ),
        ];
        let generic: Vec<WebhookEvent> = classic
            .iter()
            .map(|e| {
                let mut v = serde_json::to_value(e).unwrap();
                let kind = e.kind().unwrap().as_str();
                v["subscriptionType"] = json!(format!("object.{kind}"));
                if kind == "associationChange" {
                    v["fromObjectTypeId"] = json!("0-3");
                    v["toObjectTypeId"] = json!("0-2");
                    v["associationTypeId"] = json!(5);
                    v.as_object_mut().unwrap().remove("associationType");
                } else {
                    v["objectTypeId"] = json!("0-3");
                }
                serde_json::from_value(v).unwrap()
            })
            .collect();
        let a = one(&classic, ObjectType::Deals);
        let b = one(&generic, ObjectType::Deals);
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        assert_eq!(b.read.len(), 4, "{b:?}");
        assert_eq!(b.merged_away[&ObjectId(8)].into, ObjectId(9));
        assert_eq!(b.association_changed.get(&ObjectId(11)), Some(&2400));
        // Mixed in one batch, they coalesce into one plan.
        let mixed: Vec<WebhookEvent> = classic[..2]
            .iter()
            .chain(generic[2..].iter())
            .cloned()
            .collect();
        assert_eq!(
            format!("{:?}", one(&mixed, ObjectType::Deals)),
            format!("{a:?}")
        );
        // A generic event of an object type hubsync does not sync is not planned.
        let ticket =
            ev(json!({"subscriptionType":"object.creation","objectId":1,"objectTypeId":"0-5"}));
        let (plans, unplanned) = plan(&[ticket]);
        assert!(plans.is_empty());
        assert_eq!(unplanned.unknown_type, 1);
    }

    #[test]
    fn deletion_is_read_with_its_time_whatever_the_order() {
        let del = ev(json!({"subscriptionType":"deal.deletion","objectId":5,"occurredAt":2000}));
        let upd =
            ev(json!({"subscriptionType":"deal.propertyChange","objectId":5,"occurredAt":3000}));
        for events in [vec![del.clone(), upd.clone()], vec![upd, del]] {
            let p = one(&events, ObjectType::Deals);
            assert_eq!(p.read[&ObjectId(5)].deleted_at, Some(2000));
            assert_eq!(p.read[&ObjectId(5)].last_event_at, 3000);
        }
    }

    #[test]
    fn merge_archives_the_merged_away_ids_and_reads_the_survivor() {
        let m = ev(json!({"subscriptionType":"contact.merge","objectId":1,
            "primaryObjectId":1,"mergedObjectIds":[2,3],"occurredAt":5000}));
        let del = ev(json!({"subscriptionType":"contact.deletion","objectId":2,"occurredAt":5001}));
        let p = one(&[del, m], ObjectType::Contacts);
        assert_eq!(p.merged_away.len(), 2);
        assert_eq!(p.merged_away[&ObjectId(2)].into, ObjectId(1));
        assert_eq!(p.merged_away[&ObjectId(3)].into, ObjectId(1));
        assert_eq!(
            p.read.keys().copied().collect::<Vec<_>>(),
            vec![ObjectId(1)]
        );
    }

    #[test]
    fn merge_into_a_new_id_archives_the_primary_too() {
        let m = ev(json!({"subscriptionType":"company.merge","objectId":1,
            "primaryObjectId":1,"mergedObjectIds":[2],"newObjectId":10,"occurredAt":5000}));
        let p = one(&[m], ObjectType::Companies);
        assert_eq!(
            p.merged_away.keys().copied().collect::<Vec<_>>(),
            vec![ObjectId(1), ObjectId(2)]
        );
        assert!(p.merged_away.values().all(|m| m.into == ObjectId(10)));
        assert_eq!(
            p.read.keys().copied().collect::<Vec<_>>(),
            vec![ObjectId(10)]
        );
    }

    #[test]
    fn a_survivor_merged_away_later_is_not_read() {
        let first = ev(json!({"subscriptionType":"company.merge","objectId":1,
            "primaryObjectId":1,"mergedObjectIds":[2],"occurredAt":5000}));
        let second = ev(json!({"subscriptionType":"company.merge","objectId":3,
            "primaryObjectId":3,"mergedObjectIds":[1],"occurredAt":6000}));
        let p = one(&[second, first], ObjectType::Companies);
        // 1 survived the first merge but was merged into 3 later.
        assert_eq!(p.merged_away[&ObjectId(1)].into, ObjectId(3));
        assert_eq!(p.merged_away[&ObjectId(2)].into, ObjectId(1));
        assert!(p.read.contains_key(&ObjectId(3)));
    }

    #[test]
    fn privacy_deletion_wins_over_every_other_event() {
        let events = vec![
            ev(
                json!({"subscriptionType":"contact.propertyChange","objectId":4,"occurredAt":9000,
                      "propertyName":"email","propertyValue":"a@b.c"}),
            ),
            ev(
                json!({"subscriptionType":"contact.privacyDeletion","objectId":4,"occurredAt":8000}),
            ),
            ev(json!({"subscriptionType":"contact.deletion","objectId":4,"occurredAt":8000})),
        ];
        let p = one(&events, ObjectType::Contacts);
        assert_eq!(p.purge.get(&ObjectId(4)), Some(&8000));
        assert!(p.read.is_empty());
        assert!(p.merged_away.is_empty());
    }

    #[test]
    fn events_are_grouped_by_portal_and_type_and_unknown_types_counted() {
        let events = vec![
            ev(json!({"subscriptionType":"company.creation","objectId":1})),
            ev(json!({"subscriptionType":"deal.creation","objectId":1})),
            ev(json!({"subscriptionType":"company.creation","objectId":2,"portalId":78})),
            ev(json!({"subscriptionType":"ticket.creation","objectId":3})),
            ev(
                json!({"subscriptionType":"contact.associationChange","fromObjectId":1,"toObjectId":2,
                      "associationType":"CONTACT_TO_COMPANY"}),
            ),
        ];
        let (plans, unplanned) = plan(&events);
        assert_eq!(unplanned.unknown_type, 1);
        assert_eq!(plans.len(), 4);
        let contacts = &plans[&(PortalId(P), ObjectType::Contacts)];
        assert_eq!(contacts.deferred_events, 0);
        assert!(contacts.read.is_empty());
        assert_eq!(
            contacts
                .association_changed
                .keys()
                .copied()
                .collect::<Vec<_>>(),
            [ObjectId(1)]
        );
        assert!(!contacts.is_empty());
    }

    #[test]
    fn event_without_its_id_is_counted_invalid() {
        let p = one(
            &[ev(json!({"subscriptionType":"company.deletion"}))],
            ObjectType::Companies,
        );
        assert_eq!(p.invalid_events, 1);
        assert!(p.is_empty());
    }
}
