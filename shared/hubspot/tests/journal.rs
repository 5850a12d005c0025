//! The Webhooks Journal client against the simulator (in process): the
//! client-credentials token (single-flight, renewed on a 401), subscriptions,
//! reading every file from the earliest on, the journal keeping what the
//! webhook drop fault loses, list membership and uninstall entries, expired
//! offsets and file URLs, and journal calls staying out of the portal's CRM
//! budget.

use std::sync::Arc;
use std::time::Duration;

use hubspot_sim::{props, Faults, SeedSpec, SimConfig, Simulator};
use hubsync_hubspot::journal::{
    Journal, JournalClient, JournalEntry, JournalError, ObjectAction, SubscriptionKind,
    SubscriptionRequest,
};
use hubsync_hubspot::{OAuthClient, OAuthConfig, OAuthRetry, ObjectId, ObjectType, PortalId};
use secrecy::SecretString;

const PORTAL: u64 = 1_000_001;

async fn sim() -> Simulator {
    Simulator::start(SimConfig {
        initial_seed: SeedSpec {
            companies: 5,
            contacts: 5,
            deals: 0,
            owners: 0,
            seed: Some(3),
        },
        ..SimConfig::default()
    })
    .await
    .expect("simulator starts")
}

fn client(sim: &Simulator) -> JournalClient {
    JournalClient::new(&sim.base_url(), oauth(sim))
}

fn oauth(sim: &Simulator) -> OAuthClient {
    let app = sim.state().config().app;
    let mut config = OAuthConfig::new(
        sim.base_url(),
        app.client_id.clone(),
        SecretString::from(app.client_secret.clone()),
        "https://hooks.example/oauth/callback",
    );
    config.retry = OAuthRetry {
        max_attempts: 3,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
    };
    OAuthClient::new(config).expect("oauth")
}

fn hubspot_type(t: ObjectType) -> hubspot_sim::ObjectType {
    match t {
        ObjectType::Companies => hubspot_sim::ObjectType::Companies,
        ObjectType::Contacts => hubspot_sim::ObjectType::Contacts,
        ObjectType::Deals => hubspot_sim::ObjectType::Deals,
    }
}

/// Every entry from the earliest file on; the last offset.
async fn read_all(c: &JournalClient, journal: Journal) -> (Vec<JournalEntry>, Option<String>) {
    let mut entries = Vec::new();
    let mut pointer = c.earliest(journal).await.expect("earliest");
    let mut last = None;
    while let Some(p) = pointer {
        let file = c.fetch(&p).await.expect("file");
        assert_eq!(file.offset, p.current_offset);
        entries.extend(file.entries);
        last = Some(p.current_offset.clone());
        pointer = c.next(journal, &p.current_offset).await.expect("next");
    }
    (entries, last)
}

#[tokio::test]
async fn the_journal_keeps_what_dropped_webhooks_lose() {
    let sim = sim().await;
    let c = client(&sim);
    let portal = PortalId(PORTAL);
    for req in [
        SubscriptionRequest::object(portal, ObjectType::Contacts, vec!["email".into()]),
        SubscriptionRequest::association(portal, ObjectType::Contacts, vec![ObjectType::Companies]),
        SubscriptionRequest::app_lifecycle(portal),
    ] {
        let s = c.create_subscription(&req).await.expect("create");
        assert!(s.satisfies(&req), "{s:?} vs {req:?}");
    }
    assert_eq!(c.subscriptions(Some(portal)).await.unwrap().len(), 3);
    assert!(
        c.earliest(Journal::Global).await.unwrap().is_none(),
        "an empty journal is HubSpot's 204"
    );

    // Every webhook is lost; the journal has them all.
    sim.state().update_config(|c| {
        // Nothing listens there: the drop fault loses every event first.
        c.webhooks.target_url = Some("http://127.0.0.1:9/webhooks".into());
    });
    sim.state()
        .set_faults(
            PORTAL,
            Faults {
                webhook_drop_rate: 1.0,
                ..Faults::default()
            },
        )
        .unwrap();
    let st = sim.state();
    let contacts = hubspot_type(ObjectType::Contacts);
    let mut ids = Vec::new();
    for i in 0..150 {
        let id = st
            .create_object(
                PORTAL,
                contacts,
                props([("email", format!("p{i}@example.com").as_str())]),
            )
            .unwrap();
        ids.push(id);
    }
    st.update_object(
        PORTAL,
        contacts,
        ids[0],
        props([("email", "new@example.com")]),
    )
    .unwrap();
    st.update_object(PORTAL, contacts, ids[1], props([("firstname", "Ann")]))
        .unwrap();
    st.delete_object(PORTAL, contacts, ids[2]).unwrap();
    st.uninstall(PORTAL).unwrap();

    let (entries, last) = read_all(&c, Journal::Global).await;
    let creates = entries
        .iter()
        .filter(|e| {
            matches!(
                e,
                JournalEntry::Object {
                    action: ObjectAction::Create,
                    ..
                }
            )
        })
        .count();
    assert_eq!(creates, 150, "more than one file's worth, all read");
    let updates: Vec<_> = entries
        .iter()
        .filter_map(|e| match e {
            JournalEntry::Object {
                object_id,
                action: ObjectAction::Update(p),
                ..
            } => Some((*object_id, p.clone())),
            _ => None,
        })
        .collect();
    assert!(updates.contains(&(
        ObjectId(ids[0]),
        [("email".to_string(), "new@example.com".to_string())].into()
    )));
    assert!(
        updates.iter().all(|(id, _)| *id != ObjectId(ids[1])),
        "firstname is not a subscribed property"
    );
    assert!(entries.iter().any(|e| matches!(e, JournalEntry::Object { object_id, action: ObjectAction::Delete, .. } if *object_id == ObjectId(ids[2]))));
    assert!(entries
        .iter()
        .any(|e| matches!(e, JournalEntry::AppLifecycle { installed: false, portal: p, .. } if *p == portal)));
    assert!(
        sim.state()
            .wait_webhooks_idle(Duration::from_secs(10))
            .await
    );
    let counters = sim.state().counters();
    assert!(counters.webhook_events_dropped >= 152, "{counters:?}");
    assert_eq!(counters.webhook_events_delivered, 0);

    // Reading on from the last offset: nothing new yet, then the new event.
    let last = last.expect("files were read");
    assert!(c.next(Journal::Global, &last).await.unwrap().is_none());
    st.install(PORTAL).unwrap();
    let p = c
        .next(Journal::Global, &last)
        .await
        .unwrap()
        .expect("a new file");
    let file = c.fetch(&p).await.unwrap();
    assert!(matches!(
        file.entries[..],
        [JournalEntry::AppLifecycle {
            installed: true,
            ..
        }]
    ));

    // Journal calls are outside the portal's CRM budget.
    let counters = sim.state().counters();
    assert_eq!(
        counters.portal_total(PORTAL),
        0,
        "{:?}",
        counters.requests_by_portal
    );
    assert!(counters.journal_requests.values().sum::<u64>() > 5);
    sim.shutdown().await;
}

#[tokio::test]
async fn list_membership_is_journaled_for_subscribed_lists_only() {
    let sim = sim().await;
    let c = client(&sim);
    let st = sim.state();
    let contacts = hubspot_type(ObjectType::Contacts);
    let scoped = st.create_list(PORTAL, contacts, "scoped").unwrap();
    let other = st.create_list(PORTAL, contacts, "other").unwrap();
    c.create_subscription(&SubscriptionRequest::list_membership(
        PortalId(PORTAL),
        vec![scoped],
    ))
    .await
    .unwrap();
    let id = st
        .create_object(PORTAL, contacts, props([("email", "a@example.com")]))
        .unwrap();
    st.add_to_list(PORTAL, scoped, &[id]).unwrap();
    st.add_to_list(PORTAL, scoped, &[id]).unwrap(); // already a member: no entry
    st.add_to_list(PORTAL, other, &[id]).unwrap();
    st.remove_from_list(PORTAL, scoped, &[id]).unwrap();
    let (entries, _) = read_all(&c, Journal::Local(PortalId(PORTAL))).await;
    let seen: Vec<(u64, bool)> = entries
        .iter()
        .filter_map(|e| match e {
            JournalEntry::ListMembership {
                list_id,
                object_id,
                added,
                ..
            } => {
                assert_eq!(*object_id, ObjectId(id));
                Some((*list_id, *added))
            }
            _ => None,
        })
        .collect();
    assert_eq!(seen, vec![(scoped, true), (scoped, false)]);
    sim.shutdown().await;
}

#[tokio::test]
async fn the_local_journal_holds_one_install_only() {
    let sim = Simulator::start(SimConfig {
        portal_count: 2,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let c = client(&sim);
    let st = sim.state();
    let [a, b] = [PORTAL, PORTAL + 1];
    for p in [a, b] {
        c.create_subscription(&SubscriptionRequest::object(
            PortalId(p),
            ObjectType::Companies,
            vec![],
        ))
        .await
        .unwrap();
        st.create_object(
            p,
            hubspot_sim::ObjectType::Companies,
            props([("name", "x")]),
        )
        .unwrap();
    }
    let (global, _) = read_all(&c, Journal::Global).await;
    let (local, _) = read_all(&c, Journal::Local(PortalId(b))).await;
    assert_eq!(global.len(), 2);
    assert_eq!(local.len(), 1);
    assert_eq!(local[0].portal(), Some(PortalId(b)));
    c.delete_portal_subscriptions(PortalId(a)).await.unwrap();
    let left = c.subscriptions(None).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].portal_id, Some(PortalId(b)));
    c.delete_subscription(left[0].id).await.unwrap();
    c.delete_subscription(left[0].id)
        .await
        .expect("an unknown id counts as deleted");
    assert!(c.subscriptions(None).await.unwrap().is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn expired_offsets_and_file_urls_are_told_apart() {
    let sim = sim().await;
    let c = client(&sim);
    let st = sim.state();
    c.create_subscription(&SubscriptionRequest::object(
        PortalId(PORTAL),
        ObjectType::Companies,
        vec![],
    ))
    .await
    .unwrap();
    st.create_object(
        PORTAL,
        hubspot_sim::ObjectType::Companies,
        props([("name", "x")]),
    )
    .unwrap();
    let p = c.earliest(Journal::Global).await.unwrap().expect("a file");

    // The URL lives 15 minutes; the offset stays readable.
    st.advance_clock(Duration::from_secs(16 * 60));
    let err = c.fetch(&p).await.unwrap_err();
    assert!(
        matches!(err, JournalError::FileUrlRefused { status: 403 }),
        "{err:?}"
    );
    let again = c
        .earliest(Journal::Global)
        .await
        .unwrap()
        .expect("same file");
    assert_eq!(again.current_offset, p.current_offset);
    c.fetch(&again).await.expect("a fresh URL works");

    // Three days later the offset is gone: the caller must re-sync.
    st.advance_clock(Duration::from_secs(3 * 86_400 + 60));
    let err = c
        .next(Journal::Global, &p.current_offset)
        .await
        .unwrap_err();
    assert!(matches!(err, JournalError::OffsetExpired), "{err:?}");
    assert!(c.earliest(Journal::Global).await.unwrap().is_none());
    sim.shutdown().await;
}

#[tokio::test]
async fn the_app_token_is_single_flight_and_renewed_on_401() {
    let sim = sim().await;
    let c = Arc::new(client(&sim));
    let calls = || {
        sim.state()
            .counters()
            .token_calls
            .get("client_credentials")
            .copied()
            .unwrap_or(0)
    };
    let reads: Vec<_> = (0..8)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.earliest(Journal::Global).await })
        })
        .collect();
    for r in reads {
        r.await.unwrap().expect("read");
    }
    assert_eq!(calls(), 1, "eight concurrent reads, one token call");

    // HubSpot's clock passes the token's expiry: a 401, one renewal.
    sim.state().advance_clock(Duration::from_secs(31 * 60));
    c.subscriptions(None).await.expect("renewed");
    assert_eq!(calls(), 2);

    // Bad app credentials: a token error, not a journal answer.
    let app = sim.state().config().app;
    let bad = JournalClient::new(
        &sim.base_url(),
        OAuthClient::new(OAuthConfig::new(
            sim.base_url(),
            app.client_id.clone(),
            SecretString::from("wrong".to_string()),
            "https://hooks.example/oauth/callback",
        ))
        .unwrap(),
    );
    let err = bad.earliest(Journal::Global).await.unwrap_err();
    assert!(matches!(err, JournalError::Token(_)), "{err:?}");
    sim.shutdown().await;
}

#[tokio::test]
async fn bad_subscriptions_get_hubspot_validation_errors() {
    let sim = sim().await;
    let c = client(&sim);
    let mut req = SubscriptionRequest::list_membership(PortalId(PORTAL), vec![]);
    let err = c.create_subscription(&req).await.unwrap_err();
    assert!(
        matches!(&err, JournalError::Rejected { status: 400, category, .. } if category == "VALIDATION_ERROR"),
        "{err:?}"
    );
    req.list_ids = Some(vec![1]);
    req.actions = vec!["CREATE".into()];
    let err = c.create_subscription(&req).await.unwrap_err();
    assert!(
        matches!(&err, JournalError::Rejected { status: 400, .. }),
        "{err:?}"
    );
    let unknown_portal = SubscriptionRequest::privacy_deletion(PortalId(9));
    assert!(c.create_subscription(&unknown_portal).await.is_err());
    assert_eq!(
        c.create_subscription(&SubscriptionRequest::privacy_deletion(PortalId(PORTAL)))
            .await
            .unwrap()
            .subscription_type,
        SubscriptionKind::GdprPrivacyDeletion
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn batch_reads_point_at_the_files_single_reads_do() {
    let sim = sim().await;
    let c = client(&sim);
    let st = sim.state();
    c.create_subscription(&SubscriptionRequest::object(
        PortalId(PORTAL),
        ObjectType::Companies,
        vec![],
    ))
    .await
    .unwrap();
    // Five files: a read publishes what was recorded before it.
    for round in 0..5 {
        st.create_object(
            PORTAL,
            hubspot_sim::ObjectType::Companies,
            props([("name", format!("r{round}").as_str())]),
        )
        .unwrap();
        c.latest(Journal::Global).await.unwrap().expect("a file");
    }
    let mut singles = Vec::new();
    let mut p = c.earliest(Journal::Global).await.unwrap();
    while let Some(pointer) = p {
        singles.push(pointer.current_offset.clone());
        p = c
            .next(Journal::Global, &pointer.current_offset)
            .await
            .unwrap();
    }
    assert_eq!(singles.len(), 5);
    let offsets = |ps: &[hubsync_hubspot::journal::JournalPointer]| {
        ps.iter()
            .map(|p| p.current_offset.clone())
            .collect::<Vec<_>>()
    };

    let calls = |sim: &Simulator| {
        sim.state()
            .counters()
            .journal_requests
            .values()
            .sum::<u64>()
    };
    let before = calls(&sim);
    let first = c.earliest_batch(Journal::Global, 3).await.unwrap();
    assert_eq!(offsets(&first), singles[..3]);
    let rest = c
        .next_batch(Journal::Global, &first[2].current_offset, 100)
        .await
        .unwrap();
    assert_eq!(offsets(&rest), singles[3..]);
    assert_eq!(calls(&sim) - before, 2, "one call per batch");
    assert!(c
        .next_batch(Journal::Global, &singles[4], 10)
        .await
        .unwrap()
        .is_empty());
    let newest = c.latest_batch(Journal::Global, 2).await.unwrap();
    assert_eq!(offsets(&newest), singles[3..], "the newest, oldest first");
    for p in first.iter().chain(&rest) {
        let file = c.fetch(p).await.expect("a batch pointer's file");
        assert_eq!(file.offset, p.current_offset);
        assert_eq!(file.entries.len(), 1);
    }
    // A count out of HubSpot's 1–100 is kept within it.
    assert_eq!(c.earliest_batch(Journal::Global, 0).await.unwrap().len(), 1);
    assert_eq!(
        c.earliest_batch(Journal::Global, 500).await.unwrap().len(),
        5
    );

    // Offsets by name: HubSpot's 207 names the ones it no longer has.
    let read = c
        .read_offsets(Journal::Global, &[singles[1].clone(), "gone".into()])
        .await
        .unwrap();
    assert_eq!(offsets(&read.found), [singles[1].clone()]);
    assert_eq!(read.missing, ["gone"]);
    let too_many: Vec<String> = (0..101).map(|i| i.to_string()).collect();
    let before = calls(&sim);
    let err = c
        .read_offsets(Journal::Global, &too_many)
        .await
        .unwrap_err();
    assert!(
        matches!(err, JournalError::Rejected { status: 400, .. }),
        "{err:?}"
    );
    assert_eq!(calls(&sim), before, "refused before any call");

    // The simulator holds callers to HubSpot's bounds, as HubSpot does.
    let token = oauth(&sim)
        .client_credentials(&hubsync_hubspot::journal::JOURNAL_SCOPES)
        .await
        .unwrap()
        .access_token;
    let http = reqwest::Client::new();
    let base = format!("{}/webhooks-journal/journal/2026-03/batch", sim.base_url());
    for (method, url, body) in [
        (reqwest::Method::GET, format!("{base}/earliest/0"), None),
        (
            reqwest::Method::GET,
            format!("{base}/{}/next/101", singles[0]),
            None,
        ),
        (
            reqwest::Method::POST,
            format!("{base}/read"),
            Some(r#"{"inputs":[]}"#),
        ),
        (
            reqwest::Method::POST,
            format!("{base}/read"),
            Some(r#"{"offsets":["a"]}"#),
        ),
    ] {
        let mut req = http
            .request(method, &url)
            .bearer_auth(secrecy::ExposeSecret::expose_secret(&token));
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 400, "{url}");
        let v: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(v["category"], "VALIDATION_ERROR", "{url}: {v}");
    }

    // Past retention the batch's offset is gone, as a single read's.
    st.advance_clock(Duration::from_secs(3 * 86_400 + 60));
    let err = c
        .next_batch(Journal::Global, &singles[0], 10)
        .await
        .unwrap_err();
    assert!(matches!(err, JournalError::OffsetExpired), "{err:?}");
    sim.shutdown().await;
}
