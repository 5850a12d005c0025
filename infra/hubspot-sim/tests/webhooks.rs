//! Webhook events, batching, signatures, retries and delivery faults.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{start, Behaviour, Receiver, PORTAL};
use hubspot_sim::{props, signing, ObjectType, SeedSpec, WebhookEvent};

const PUBLIC_URL: &str = "https://abc123.execute-api.eu-west-1.amazonaws.com/prod/webhooks/hubspot";

fn events_of(sim: &hubspot_sim::Simulator, portal: u64) -> Vec<WebhookEvent> {
    sim.state()
        .events()
        .into_iter()
        .filter(|e| e.portal_id == portal)
        .collect()
}

#[tokio::test]
async fn batches_hold_at_most_100_events_and_carry_valid_signatures() {
    let rx = Receiver::start(Behaviour::default()).await;
    let url = rx.url.clone();
    let sim = start(|c| {
        c.webhooks.target_url = Some(url);
        c.webhooks.public_url = Some(PUBLIC_URL.into());
        c.webhooks.batch_window_ms = 50;
    })
    .await;
    let st = sim.state();
    for i in 0..350 {
        st.create_object(
            PORTAL,
            ObjectType::Companies,
            props([("name", format!("Co {i}"))]),
        )
        .unwrap();
    }
    assert!(st.wait_webhooks_idle(Duration::from_secs(20)).await);
    let secret = st.config().app.client_secret;
    let app_id = st.config().app.app_id;
    let mut total = 0;
    let mut object_ids = std::collections::HashSet::new();
    for d in rx.all() {
        let evs = d.events();
        assert!(
            !evs.is_empty() && evs.len() <= 100,
            "batch of {}",
            evs.len()
        );
        total += evs.len();
        assert_eq!(d.header("content-type"), "application/json");
        assert_eq!(d.header("x-hubspot-signature-version"), "v1");
        let ts: i64 = d.header("x-hubspot-request-timestamp").parse().unwrap();
        assert!((chrono::Utc::now().timestamp_millis() - ts).abs() < 60_000);
        // v3 over the configured public URL (not the real target), raw body, ms timestamp.
        let expected = signing::v3(&secret, "POST", PUBLIC_URL, &d.body, ts);
        assert_eq!(d.header("x-hubspot-signature-v3"), expected);
        assert_eq!(
            d.header("x-hubspot-signature"),
            signing::v1(&secret, &d.body)
        );
        // Independent check with hmac/sha2 directly.
        use base64::Engine as _;
        use hmac::Mac;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("POST{PUBLIC_URL}").as_bytes());
        mac.update(&d.body);
        mac.update(ts.to_string().as_bytes());
        assert_eq!(
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()),
            d.header("x-hubspot-signature-v3")
        );
        for e in evs {
            assert_eq!(e["subscriptionType"], "company.creation");
            assert_eq!(e["portalId"], PORTAL);
            assert_eq!(e["appId"], app_id);
            assert_eq!(e["attemptNumber"], 0);
            assert_eq!(e["changeSource"], "CRM_UI");
            assert!(e["occurredAt"].as_i64().unwrap() > 1_700_000_000_000);
            assert!(e["eventId"].is_u64() && e["subscriptionId"].is_u64());
            assert!(e.get("propertyName").is_none());
            object_ids.insert(e["objectId"].as_u64().unwrap());
        }
    }
    assert_eq!(total, 350);
    assert_eq!(object_ids.len(), 350);
    assert!(rx.count() >= 4);
    let c = st.counters();
    assert_eq!(c.events_emitted, 350);
    assert_eq!(c.webhook_events_delivered, 350);
    sim.shutdown().await;
}

#[tokio::test]
async fn failed_deliveries_are_retried_with_incremented_attempt_number() {
    let rx = Receiver::start(Behaviour {
        fail_first: 2,
        fail_status: 500,
        ..Default::default()
    })
    .await;
    let url = rx.url.clone();
    let sim = start(|c| {
        c.webhooks.target_url = Some(url);
        c.webhooks.batch_window_ms = 20;
        c.webhooks.time_scale = 0.0005;
    })
    .await;
    let id = sim
        .state()
        .create_object(PORTAL, ObjectType::Contacts, props([("email", "r@x.test")]))
        .unwrap();
    assert!(
        sim.state()
            .wait_webhooks_idle(Duration::from_secs(20))
            .await
    );
    let all = rx.all();
    assert_eq!(all.len(), 3);
    let attempts: Vec<i64> = all
        .iter()
        .map(|d| d.events()[0]["attemptNumber"].as_i64().unwrap())
        .collect();
    assert_eq!(attempts, [0, 1, 2]);
    for d in &all {
        assert_eq!(d.events()[0]["objectId"], id);
    }
    let c = sim.state().counters();
    assert_eq!(c.webhook_requests, 3);
    assert_eq!(c.webhook_retries, 2);
    assert_eq!(c.webhook_batches_delivered, 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_slow_receiver_counts_as_failure_and_is_retried() {
    let rx = Receiver::start(Behaviour {
        fail_first: 1,
        slow_first_ms: 800,
        ..Default::default()
    })
    .await;
    let url = rx.url.clone();
    let sim = start(|c| {
        c.webhooks.target_url = Some(url);
        c.webhooks.batch_window_ms = 20;
        c.webhooks.timeout_ms = 200;
        c.webhooks.time_scale = 0.0005;
    })
    .await;
    sim.state()
        .create_object(PORTAL, ObjectType::Deals, props([("dealname", "Slow")]))
        .unwrap();
    assert!(
        sim.state()
            .wait_webhooks_idle(Duration::from_secs(20))
            .await
    );
    let all = rx.all();
    assert_eq!(all.len(), 2);
    assert_eq!(all[1].events()[0]["attemptNumber"], 1);
    assert_eq!(sim.state().counters().webhook_retries, 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn batches_are_given_up_after_max_attempts_and_connection_errors_retry() {
    // Nothing listens on this port: connection refused on every attempt.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}/hook", l.local_addr().unwrap());
    drop(l);
    let sim = start(|c| {
        c.webhooks.target_url = Some(dead);
        c.webhooks.batch_window_ms = 10;
        c.webhooks.max_attempts = 4;
        c.webhooks.time_scale = 0.0002;
    })
    .await;
    sim.state()
        .create_object(PORTAL, ObjectType::Deals, props([("dealname", "X")]))
        .unwrap();
    assert!(
        sim.state()
            .wait_webhooks_idle(Duration::from_secs(20))
            .await
    );
    let c = sim.state().counters();
    assert_eq!(c.webhook_requests, 4);
    assert_eq!(c.webhook_retries, 3);
    assert_eq!(c.webhook_batches_failed, 1);
    assert_eq!(c.webhook_events_failed, 1);
    sim.shutdown().await;
}

async fn fault_run(drop_rate: f64, dup_rate: f64) -> (usize, hubspot_sim::CounterSnapshot) {
    let rx = Receiver::start(Behaviour::default()).await;
    let url = rx.url.clone();
    let sim = start(|c| {
        c.webhooks.target_url = Some(url);
        c.webhooks.batch_window_ms = 30;
        c.seed = 7;
    })
    .await;
    sim.state()
        .update_faults(PORTAL, |f| {
            f.webhook_drop_rate = drop_rate;
            f.webhook_duplicate_rate = dup_rate;
            f.webhook_reorder = true;
        })
        .unwrap();
    let id = sim
        .state()
        .create_object(PORTAL, ObjectType::Companies, props([("name", "n")]))
        .unwrap();
    sim.state()
        .wait_webhooks_idle(Duration::from_secs(10))
        .await;
    sim.state().reset_counters();
    rx.got.lock().unwrap().clear();
    for i in 0..1000 {
        // Two property changes per update = 2,000 events.
        sim.state()
            .update_object(
                PORTAL,
                ObjectType::Companies,
                id,
                props([("name", format!("n{i}")), ("city", format!("c{i}"))]),
            )
            .unwrap();
    }
    assert!(
        sim.state()
            .wait_webhooks_idle(Duration::from_secs(30))
            .await
    );
    let delivered: usize = rx.all().iter().map(|d| d.events().len()).sum();
    for d in rx.all() {
        assert!(d.events().len() <= 100);
    }
    let c = sim.state().counters();
    sim.shutdown().await;
    (delivered, c)
}

#[tokio::test]
async fn drop_fault_loses_about_the_configured_share() {
    let (delivered, c) = fault_run(0.10, 0.0).await;
    assert_eq!(c.events_emitted, 2000);
    let dropped = c.webhook_events_dropped as usize;
    assert!((140..=260).contains(&dropped), "dropped {dropped}");
    assert_eq!(delivered, 2000 - dropped);
}

#[tokio::test]
async fn duplicate_fault_repeats_about_the_configured_share() {
    let (delivered, c) = fault_run(0.0, 0.10).await;
    let dups = c.webhook_events_duplicated as usize;
    assert!((140..=260).contains(&dups), "duplicated {dups}");
    assert_eq!(delivered, 2000 + dups);
}

#[tokio::test]
async fn updates_emit_one_property_change_per_changed_property() {
    let sim = start(|_| {}).await;
    let st = sim.state();
    let id = st
        .create_object(PORTAL, ObjectType::Contacts, props([("email", "a@b.test")]))
        .unwrap();
    st.clear_events();
    let n = st
        .update_object(
            PORTAL,
            ObjectType::Contacts,
            id,
            props([("firstname", "A"), ("lastname", "B"), ("email", "a@b.test")]),
        )
        .unwrap();
    assert_eq!(n, 2, "unchanged email emits nothing");
    let ev = events_of(&sim, PORTAL);
    assert_eq!(ev.len(), 2);
    let mut by: HashMap<String, String> = HashMap::new();
    for e in &ev {
        assert_eq!(e.subscription_type, "contact.propertyChange");
        assert_eq!(e.object_id, id);
        by.insert(
            e.property_name.clone().unwrap(),
            e.property_value.clone().unwrap(),
        );
    }
    assert_eq!(by["firstname"], "A");
    assert_eq!(by["lastname"], "B");
    // Clearing a value emits an empty propertyValue.
    st.clear_events();
    st.update_object(
        PORTAL,
        ObjectType::Contacts,
        id,
        props([("lastname", None::<String>)]),
    )
    .unwrap();
    let ev = events_of(&sim, PORTAL);
    assert_eq!(ev[0].property_value.as_deref(), Some(""));
    // JSON shape of a propertyChange.
    let j = serde_json::to_value(&ev[0]).unwrap();
    for k in [
        "eventId",
        "subscriptionId",
        "portalId",
        "appId",
        "occurredAt",
        "subscriptionType",
        "attemptNumber",
        "objectId",
        "changeSource",
        "propertyName",
        "propertyValue",
    ] {
        assert!(j.get(k).is_some(), "{k}");
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn merge_emits_merge_and_deletion_events() {
    let sim = start(|_| {}).await;
    let st = sim.state();
    let a = st
        .create_object(PORTAL, ObjectType::Companies, props([("name", "A")]))
        .unwrap();
    let b = st
        .create_object(
            PORTAL,
            ObjectType::Companies,
            props([("name", "B"), ("domain", "b.test"), ("city", "Paris")]),
        )
        .unwrap();
    let ct = st
        .create_object(PORTAL, ObjectType::Contacts, props([("email", "c@b.test")]))
        .unwrap();
    st.associate(
        PORTAL,
        ObjectType::Contacts,
        ct,
        ObjectType::Companies,
        b,
        true,
    )
    .unwrap();
    st.clear_events();
    let m = st
        .merge_objects(PORTAL, ObjectType::Companies, a, b, Some(false))
        .unwrap();
    assert_eq!(m.survivor_id, a);
    assert_eq!(m.properties_moved, 2);
    let ev = events_of(&sim, PORTAL);
    assert_eq!(ev.len(), 2, "{ev:?}");
    let merge = ev
        .iter()
        .find(|e| e.subscription_type == "company.merge")
        .unwrap();
    assert_eq!(merge.primary_object_id, Some(a));
    assert_eq!(merge.merged_object_ids, Some(vec![b]));
    assert_eq!(merge.new_object_id, Some(a));
    assert_eq!(merge.number_of_properties_moved, Some(2));
    let del = ev
        .iter()
        .find(|e| e.subscription_type == "company.deletion")
        .unwrap();
    assert_eq!(del.object_id, b);
    assert!(!ev
        .iter()
        .any(|e| e.subscription_type.ends_with("propertyChange")));
    let surv = st
        .get_object(PORTAL, ObjectType::Companies, a)
        .unwrap()
        .unwrap();
    assert_eq!(surv.prop("name"), Some("A"));
    assert_eq!(surv.prop("domain"), Some("b.test"));
    assert!(st
        .get_object(PORTAL, ObjectType::Companies, b)
        .unwrap()
        .is_none());
    assert_eq!(
        st.associations(PORTAL, ObjectType::Contacts, ct, ObjectType::Companies)
            .unwrap(),
        vec![(a, true)]
    );

    // A merge that creates a new id deletes both old ids.
    let c = st
        .create_object(PORTAL, ObjectType::Companies, props([("name", "C")]))
        .unwrap();
    st.clear_events();
    let m = st
        .merge_objects(PORTAL, ObjectType::Companies, a, c, Some(true))
        .unwrap();
    assert!(m.new_id && m.survivor_id != a && m.survivor_id != c);
    let ev = events_of(&sim, PORTAL);
    let merge = ev
        .iter()
        .find(|e| e.subscription_type == "company.merge")
        .unwrap();
    assert_eq!(merge.new_object_id, Some(m.survivor_id));
    let mut deleted: Vec<u64> = ev
        .iter()
        .filter(|e| e.subscription_type == "company.deletion")
        .map(|e| e.object_id)
        .collect();
    deleted.sort();
    assert_eq!(deleted, vec![a, c]);
    assert_eq!(
        st.get_object(PORTAL, ObjectType::Companies, m.survivor_id)
            .unwrap()
            .unwrap()
            .prop("name"),
        Some("A")
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn privacy_deletion_emits_both_events_and_removes_the_contact() {
    let sim = start(|_| {}).await;
    let st = sim.state();
    let id = st
        .create_object(
            PORTAL,
            ObjectType::Contacts,
            props([("email", "gdpr@x.test")]),
        )
        .unwrap();
    st.clear_events();
    st.privacy_delete_contact(PORTAL, id).unwrap();
    let mut types: Vec<String> = events_of(&sim, PORTAL)
        .into_iter()
        .map(|e| {
            assert_eq!(e.object_id, id);
            e.subscription_type
        })
        .collect();
    types.sort();
    assert_eq!(types, ["contact.deletion", "contact.privacyDeletion"]);
    assert!(st
        .get_object(PORTAL, ObjectType::Contacts, id)
        .unwrap()
        .is_none());
    assert_eq!(
        st.count(PORTAL, ObjectType::Contacts, true).unwrap(),
        0,
        "not in the recycle bin"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn delete_restore_and_association_events() {
    let sim = start(|_| {}).await;
    let st = sim.state();
    let co = st
        .create_object(PORTAL, ObjectType::Companies, props([("name", "Co")]))
        .unwrap();
    let d = st
        .create_object(PORTAL, ObjectType::Deals, props([("dealname", "D")]))
        .unwrap();
    st.clear_events();
    st.associate(
        PORTAL,
        ObjectType::Deals,
        d,
        ObjectType::Companies,
        co,
        true,
    )
    .unwrap();
    st.dissociate(PORTAL, ObjectType::Deals, d, ObjectType::Companies, co)
        .unwrap();
    st.delete_object(PORTAL, ObjectType::Deals, d).unwrap();
    st.restore_object(PORTAL, ObjectType::Deals, d).unwrap();
    let ev = events_of(&sim, PORTAL);
    let kinds: Vec<(&str, Option<&str>, Option<bool>)> = ev
        .iter()
        .map(|e| {
            (
                e.subscription_type.as_str(),
                e.association_type.as_deref(),
                e.association_removed,
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            (
                "deal.associationChange",
                Some("DEAL_TO_COMPANY"),
                Some(false)
            ),
            (
                "company.associationChange",
                Some("COMPANY_TO_DEAL"),
                Some(false)
            ),
            (
                "deal.associationChange",
                Some("DEAL_TO_COMPANY"),
                Some(true)
            ),
            (
                "company.associationChange",
                Some("COMPANY_TO_DEAL"),
                Some(true)
            ),
            ("deal.deletion", None, None),
            ("deal.restore", None, None),
        ]
    );
    assert_eq!(ev[0].is_primary_association, Some(true));
    assert_eq!(
        (ev[0].from_object_id, ev[0].to_object_id),
        (Some(d), Some(co))
    );
    assert_eq!(
        (ev[1].from_object_id, ev[1].to_object_id),
        (Some(co), Some(d))
    );
    // occurredAt never goes backwards for successive changes.
    for w in ev.windows(2) {
        assert!(w[1].occurred_at >= w[0].occurred_at);
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn random_changes_are_seeded_and_emit_events() {
    let run = || async {
        let sim = start(|_| {}).await;
        sim.state()
            .seed_portal(
                PORTAL,
                SeedSpec {
                    companies: 40,
                    contacts: 80,
                    deals: 30,
                    seed: Some(5),
                    ..Default::default()
                },
            )
            .unwrap();
        let r = sim
            .state()
            .random_changes(PORTAL, 300, Some(99), &[])
            .unwrap();
        let ids: Vec<Vec<u64>> = ObjectType::ALL
            .iter()
            .map(|t| sim.state().object_ids(PORTAL, *t, false).unwrap())
            .collect();
        let kinds: Vec<String> = sim
            .state()
            .events()
            .into_iter()
            .map(|e| e.subscription_type)
            .collect();
        sim.shutdown().await;
        (r, ids, kinds)
    };
    let (r1, ids1, k1) = run().await;
    let (r2, ids2, k2) = run().await;
    assert_eq!(r1, r2);
    assert_eq!(ids1, ids2);
    assert_eq!(k1, k2);
    assert!(
        r1.updated > 100 && r1.created > 10 && r1.deleted > 5,
        "{r1:?}"
    );
    assert!(r1.merged > 0 && r1.associations > 0, "{r1:?}");
    assert_eq!(r1.events as usize, k1.len());
}
