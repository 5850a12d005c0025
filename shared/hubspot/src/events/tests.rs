use super::*;

const DELIVERY: &str = r#"[
  {"eventId":1779000111,"subscriptionId":2501,"portalId":62515,"appId":1160452,
   "occurredAt":1714564800123,"subscriptionType":"contact.propertyChange",
   "attemptNumber":0,"objectId":123,"changeSource":"CRM",
   "propertyName":"email","propertyValue":"someone@example.com"},
  {"eventId":1779000112,"subscriptionId":2502,"portalId":62515,"appId":1160452,
   "occurredAt":1714564800456,"subscriptionType":"company.creation",
   "attemptNumber":2,"objectId":456,"changeFlag":"CREATED","changeSource":"API",
   "sourceId":"userId:42"},
  {"eventId":1779000113,"subscriptionId":2503,"portalId":62515,"appId":1160452,
   "occurredAt":1714564801000,"subscriptionType":"deal.merge","attemptNumber":0,
   "objectId":789,"changeSource":"CRM_UI","primaryObjectId":789,
   "mergedObjectIds":[790,791],"newObjectId":800,"numberOfPropertiesMoved":4},
  {"eventId":1779000114,"subscriptionId":2504,"portalId":62515,"appId":1160452,
   "occurredAt":1714564802000,"subscriptionType":"contact.associationChange",
   "attemptNumber":0,"changeSource":"USER","associationType":"CONTACT_TO_COMPANY",
   "fromObjectId":123,"toObjectId":456,"associationRemoved":false,
   "isPrimaryAssociation":true},
  {"eventId":1779000115,"subscriptionId":2505,"portalId":62515,"appId":1160452,
   "occurredAt":1714564803000,"subscriptionType":"contact.privacyDeletion",
   "attemptNumber":0,"objectId":123,"changeSource":"GDPR"},
  {"eventId":1779000116,"subscriptionId":2506,"portalId":62515,"appId":1160452,
   "occurredAt":1714564804000,"subscriptionType":"ticket.creation",
   "attemptNumber":0,"objectId":5,"someNewField":{"nested":true}}
]"#;

#[test]
fn realistic_delivery_parses() {
    let events = parse_delivery(DELIVERY.as_bytes()).unwrap();
    assert_eq!(events.len(), 6);

    let pc = &events[0];
    assert_eq!(pc.portal_id, PortalId(62515));
    assert_eq!(pc.object_id, Some(ObjectId(123)));
    assert_eq!(
        pc.subscription_type,
        SubscriptionType::Known {
            object: ObjectType::Contacts,
            kind: EventKind::PropertyChange
        }
    );
    assert_eq!(pc.property_name.as_deref(), Some("email"));
    assert_eq!(pc.occurred_at, 1_714_564_800_123);

    assert_eq!(events[1].attempt_number, 2);
    assert_eq!(
        events[1].subscription_type.kind(),
        Some(EventKind::Creation)
    );
    assert_eq!(
        events[1].subscription_type.object(),
        Some(ObjectType::Companies)
    );

    let merge = &events[2];
    assert_eq!(merge.merged_object_ids, vec![ObjectId(790), ObjectId(791)]);
    assert_eq!(merge.merge_survivor(), Some(ObjectId(800)));
    assert_eq!(merge.number_of_properties_moved, Some(4));
    assert_eq!(
        merge.touched_ids(),
        vec![ObjectId(789), ObjectId(790), ObjectId(791), ObjectId(800)]
    );

    let assoc = &events[3];
    assert_eq!(assoc.object_id, None);
    assert_eq!(assoc.subject_id(), Some(ObjectId(123)));
    assert_eq!(assoc.to_object_id, Some(ObjectId(456)));
    assert_eq!(
        assoc.association_type.as_deref(),
        Some("CONTACT_TO_COMPANY")
    );
    assert_eq!(assoc.is_primary_association, Some(true));
    assert_eq!(assoc.association_removed, Some(false));

    assert_eq!(
        events[4].subscription_type.kind(),
        Some(EventKind::PrivacyDeletion)
    );

    assert_eq!(
        events[5].subscription_type,
        SubscriptionType::Unknown("ticket.creation".into())
    );
    assert!(!events[5].subscription_type.is_known());
}

const GENERIC: &str = r#"[
  {"eventId":1,"subscriptionId":11,"portalId":62515,"appId":1160452,"occurredAt":1714564800000,
   "subscriptionType":"object.creation","attemptNumber":0,"objectId":501,"objectTypeId":"0-2",
   "changeFlag":"CREATED","changeSource":"CRM_UI","sourceId":"userId:7"},
  {"eventId":2,"subscriptionId":12,"portalId":62515,"appId":1160452,"occurredAt":1714564800001,
   "subscriptionType":"object.propertyChange","attemptNumber":0,"objectId":601,"objectTypeId":"0-1",
   "propertyName":"email","propertyValue":"x@example.com","changeSource":"API"},
  {"eventId":3,"subscriptionId":13,"portalId":62515,"appId":1160452,"occurredAt":1714564800002,
   "subscriptionType":"object.merge","attemptNumber":0,"objectId":701,"objectTypeId":"0-3",
   "primaryObjectId":701,"mergedObjectIds":[702],"newObjectId":703,"numberOfPropertiesMoved":2},
  {"eventId":4,"subscriptionId":14,"portalId":62515,"appId":1160452,"occurredAt":1714564800003,
   "subscriptionType":"object.associationChange","attemptNumber":0,
   "fromObjectTypeId":"0-3","fromObjectId":701,"toObjectTypeId":"0-2","toObjectId":501,
   "associationTypeId":5,"associationRemoved":false,"isPrimaryAssociation":true},
  {"eventId":5,"subscriptionId":15,"portalId":62515,"appId":1160452,"occurredAt":1714564800004,
   "subscriptionType":"object.deletion","attemptNumber":0,"objectId":9,"objectTypeId":"0-5"},
  {"eventId":6,"subscriptionId":16,"portalId":62515,"appId":1160452,"occurredAt":1714564800005,
   "subscriptionType":"object.restore","attemptNumber":0,"objectId":601,"objectTypeId":"0-1"},
  {"eventId":7,"subscriptionId":17,"portalId":62515,"appId":1160452,"occurredAt":1714564800006,
   "subscriptionType":"object.privacyDeletion","attemptNumber":0,"objectId":601,"objectTypeId":"0-1"}
]"#;

#[test]
fn generic_events_resolve_their_object_type_from_the_type_id() {
    let events = parse_delivery(GENERIC.as_bytes()).unwrap();
    let resolved: Vec<Option<(ObjectType, EventKind)>> =
        events.iter().map(WebhookEvent::resolved).collect();
    assert_eq!(
        resolved,
        vec![
            Some((ObjectType::Companies, EventKind::Creation)),
            Some((ObjectType::Contacts, EventKind::PropertyChange)),
            Some((ObjectType::Deals, EventKind::Merge)),
            Some((ObjectType::Deals, EventKind::AssociationChange)),
            None, // tickets (0-5) are not synced
            Some((ObjectType::Contacts, EventKind::Restore)),
            None, // privacy deletions exist only as contact.privacyDeletion
        ]
    );
    assert!(events[0].subscription_type.is_generic());
    assert_eq!(events[2].merge_survivor(), Some(ObjectId(703)));
    assert_eq!(events[3].subject_id(), Some(ObjectId(701)));
    assert_eq!(events[3].association_type_id, Some(5));
    assert_eq!(
        events[6].subscription_type,
        SubscriptionType::Unknown("object.privacyDeletion".into())
    );
    // Classic events resolve the same way.
    let classic = parse_delivery(DELIVERY.as_bytes()).unwrap();
    assert_eq!(
        classic[2].resolved(),
        Some((ObjectType::Deals, EventKind::Merge))
    );
    assert_eq!(classic[5].resolved(), None);
}

#[test]
fn generic_events_serialise_back_to_their_wire_form() {
    for e in parse_delivery(GENERIC.as_bytes()).unwrap() {
        let json = serde_json::to_value(&e).unwrap();
        assert!(json["subscriptionType"]
            .as_str()
            .unwrap()
            .starts_with("object."));
        let back: WebhookEvent = serde_json::from_value(json).unwrap();
        assert_eq!(back, e);
    }
}

#[test]
fn generic_event_without_a_type_id_is_not_resolved() {
    let e: WebhookEvent = serde_json::from_str(
        r#"{"eventId":1,"subscriptionId":1,"portalId":1,"appId":1,"occurredAt":1,
            "subscriptionType":"object.creation","objectId":10}"#,
    )
    .unwrap();
    assert_eq!(e.kind(), Some(EventKind::Creation));
    assert_eq!(e.object_type(), None);
}

#[test]
fn merge_survivor_falls_back_to_primary_then_object_id() {
    let mut e: WebhookEvent = serde_json::from_str(
        r#"{"eventId":1,"subscriptionId":1,"portalId":1,"appId":1,"occurredAt":1,
            "subscriptionType":"company.merge","objectId":10,"primaryObjectId":11}"#,
    )
    .unwrap();
    assert_eq!(e.merge_survivor(), Some(ObjectId(11)));
    e.primary_object_id = None;
    assert_eq!(e.merge_survivor(), Some(ObjectId(10)));
}

#[test]
fn subscription_types_parse_and_display_round_trip() {
    for object in ObjectType::ALL {
        for kind in EventKind::ALL {
            let s = format!("{}.{}", object.subscription_prefix(), kind.as_str());
            let parsed = SubscriptionType::parse(&s);
            if kind == EventKind::PrivacyDeletion && object != ObjectType::Contacts {
                assert_eq!(parsed, SubscriptionType::Unknown(s.clone()));
            } else {
                assert_eq!(parsed, SubscriptionType::Known { object, kind });
            }
            assert_eq!(parsed.to_string(), s);
        }
    }
    for odd in [
        "",
        "contact",
        "contact.",
        ".creation",
        "Contact.creation",
        "contact.creation.x",
    ] {
        assert!(!SubscriptionType::parse(odd).is_known(), "{odd}");
    }
}

#[test]
fn event_serializes_back_to_hubspot_shape() {
    let events = parse_delivery(DELIVERY.as_bytes()).unwrap();
    let json = serde_json::to_value(&events[0]).unwrap();
    assert_eq!(json["subscriptionType"], "contact.propertyChange");
    assert_eq!(json["portalId"], 62515);
    assert!(json.get("mergedObjectIds").is_none());
    let back: WebhookEvent = serde_json::from_value(json).unwrap();
    assert_eq!(back, events[0]);
}

#[test]
fn malformed_deliveries_are_rejected() {
    for body in [
        &b"{}"[..],
        b"not json",
        b"[{\"eventId\":1}]",
        b"[{\"eventId\":1,\"subscriptionId\":1,\"portalId\":-1,\"appId\":1,\"occurredAt\":1,\"subscriptionType\":\"x\"}]",
    ] {
        assert!(matches!(parse_delivery(body), Err(DeliveryError::Malformed { .. })));
    }
    assert!(parse_delivery(b"[]").unwrap().is_empty());
}

#[test]
fn oversized_delivery_is_rejected() {
    let one = r#"{"eventId":1,"subscriptionId":1,"portalId":1,"appId":1,"occurredAt":1,"subscriptionType":"deal.creation","objectId":1}"#;
    let body = format!("[{}]", vec![one; 101].join(","));
    assert!(matches!(
        parse_delivery(body.as_bytes()),
        Err(DeliveryError::TooManyEvents { count: 101 })
    ));
    let body = format!("[{}]", vec![one; 100].join(","));
    assert_eq!(parse_delivery(body.as_bytes()).unwrap().len(), 100);
}

#[test]
fn property_value_is_not_in_delivery_error_messages() {
    let body = br#"[{"eventId":1,"subscriptionId":1,"portalId":1,"appId":1,"occurredAt":1,
        "subscriptionType":"contact.propertyChange","objectId":1,"propertyName":"email",
        "propertyValue":["secret@example.com"]}]"#;
    let err = parse_delivery(body).unwrap_err().to_string();
    assert!(!err.contains("secret@example.com"), "{err}");
    let body = br#"[{"eventId":"secret@example.com"}]"#;
    let err = parse_delivery(body).unwrap_err().to_string();
    assert!(!err.contains("secret@example.com"), "{err}");
}

#[test]
fn non_string_property_values_are_kept_as_text() {
    let body = br#"[{"eventId":1,"subscriptionId":1,"portalId":1,"appId":1,"occurredAt":1,
        "subscriptionType":"deal.propertyChange","objectId":1,"propertyName":"amount",
        "propertyValue":1500.5},
        {"eventId":2,"subscriptionId":1,"portalId":1,"appId":1,"occurredAt":1,
        "subscriptionType":"deal.propertyChange","objectId":1,"propertyName":"amount",
        "propertyValue":null}]"#;
    let events = parse_delivery(body).unwrap();
    assert_eq!(events[0].property_value.as_deref(), Some("1500.5"));
    assert_eq!(events[1].property_value, None);
}
