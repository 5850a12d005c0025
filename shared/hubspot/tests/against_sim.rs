//! The client against the real simulator (`infra/hubspot-sim`), in process:
//! listing, batch reads with missing ids, search, owners, fault injection
//! (forced 429s, 5xx), token refresh on 401, and the in-process limiter
//! keeping a portal under the simulator's rate limit.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hubspot_sim::{Faults, SeedSpec, SimConfig, Simulator};
use hubsync_hubspot::{
    AccessTokenSource, ClientConfig, FilterGroup, HubSpotClient, HubSpotError,
    InProcessRateLimiter, ObjectId, ObjectType, PortalId, RateLimitConfig, RetryConfig,
    SearchRequest, Sort, StaticToken, TokenError, Unlimited, WindowLimit,
};
use hubsync_mapping::{
    map_object, map_with, properties_for, MapContext, MapOutcome, MappingConfig, Owners,
};
use secrecy::SecretString;

const PORTAL: u64 = 1_000_001;

async fn sim(f: impl FnOnce(&mut SimConfig)) -> Simulator {
    let mut cfg = SimConfig {
        initial_seed: SeedSpec {
            companies: 250,
            contacts: 40,
            deals: 40,
            owners: 0,
            seed: Some(7),
        },
        ..SimConfig::default()
    };
    f(&mut cfg);
    Simulator::start(cfg).await.expect("simulator starts")
}

fn fast_retry() -> RetryConfig {
    RetryConfig {
        max_attempts: 3,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        max_elapsed: Duration::from_secs(5),
        secondly_wait: Duration::from_millis(50),
        rolling_window_wait: Duration::from_millis(50),
    }
}

fn client_for(sim: &Simulator) -> HubSpotClient {
    let mut config = ClientConfig::new(sim.base_url());
    config.retry = fast_retry();
    HubSpotClient::with_rate_limiter(config, Arc::new(Unlimited)).expect("client")
}

fn token_for(sim: &Simulator) -> StaticToken {
    StaticToken::new(sim.issue_token(PORTAL).expect("token").access_token)
}

#[tokio::test]
async fn lists_every_company_and_maps_it() {
    let sim = sim(|_| {}).await;
    let client = client_for(&sim);
    let tokens = token_for(&sim);
    let props = properties_for(ObjectType::Companies);
    // The default company map resolves owner ids to emails: map with the
    // portal's owners, as the worker and the reconciliation do.
    let owners = client
        .owners(&tokens, PortalId(PORTAL))
        .await
        .expect("owners");
    assert!(!owners.is_empty(), "the seeded portal has owners");
    let mut after: Option<String> = None;
    let mut ids = BTreeSet::new();
    let mut pages = 0;
    loop {
        let page = client
            .list_page(
                &tokens,
                PortalId(PORTAL),
                ObjectType::Companies,
                after.as_deref(),
                100,
                props,
                false,
            )
            .await
            .expect("page");
        pages += 1;
        for o in &page.results {
            assert!(ids.insert(o.id), "duplicate id across pages");
            match with_owners(ObjectType::Companies, o, &owners) {
                MapOutcome::Mapped(m) => {
                    assert!(m.source_version.is_some());
                    assert!(m.errors.is_empty(), "{:?}", m.errors);
                }
                MapOutcome::Skipped { reason, .. } => panic!("company skipped: {reason}"),
            }
        }
        match page.next_after {
            Some(a) => after = Some(a),
            None => break,
        }
    }
    assert_eq!(ids.len(), 250);
    assert_eq!(pages, 3);
    assert_eq!(
        client.stats().requests,
        1 + 3,
        "one owners page, three list pages"
    );

    // Contacts and deals also map associations, and deals resolve their
    // pipeline and stage labels: read both as the sync does.
    let pipelines = client
        .pipelines(&tokens, PortalId(PORTAL), ObjectType::Deals)
        .await
        .expect("pipelines");
    assert_eq!(pipelines.pipeline_label("default"), Some("Sales Pipeline"));
    assert_eq!(pipelines.stage_label("ent_proposal"), Some("Proposal"));
    for t in [ObjectType::Contacts, ObjectType::Deals] {
        let page = client
            .list_page(
                &tokens,
                PortalId(PORTAL),
                t,
                None,
                100,
                properties_for(t),
                false,
            )
            .await
            .expect("page");
        assert_eq!(page.results.len(), 40);
        let ids: Vec<_> = page.results.iter().map(|o| o.id).collect();
        let mut assoc = hubsync_mapping::Associations::new();
        for a in &MappingConfig::default().object(t).associations {
            assoc.mark_loaded(a.to);
            for l in client
                .batch_read_associations(&tokens, PortalId(PORTAL), t, a.to, &ids)
                .await
                .expect("associations")
            {
                assoc.insert(a.to, l.from, l.to, l.primary);
            }
        }
        let ctx = MapContext {
            owners: Some(&owners),
            pipelines: Some(&pipelines),
            associations: Some(&assoc),
            list_members: None,
            companies_in_scope: None,
        };
        for o in &page.results {
            if let MapOutcome::Mapped(m) = map_with(MappingConfig::default().object(t), t, o, ctx) {
                assert!(m.errors.is_empty(), "{t}: {:?}", m.errors);
                assert!(m.source_version.is_some());
            }
        }
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn batch_read_returns_found_and_missing_ids() {
    let sim = sim(|_| {}).await;
    let client = client_for(&sim);
    let tokens = token_for(&sim);
    let first = client
        .list_page(
            &tokens,
            PortalId(PORTAL),
            ObjectType::Contacts,
            None,
            3,
            &["email"],
            false,
        )
        .await
        .expect("page");
    let mut wanted: Vec<ObjectId> = first.results.iter().map(|o| o.id).collect();
    wanted.push(ObjectId(9_999_999_999));
    let r = client
        .batch_read(
            &tokens,
            PortalId(PORTAL),
            ObjectType::Contacts,
            &wanted,
            properties_for(ObjectType::Contacts),
        )
        .await
        .expect("batch read");
    assert_eq!(r.found.len(), 3);
    assert_eq!(r.missing, vec![ObjectId(9_999_999_999)]);
    for o in &r.found {
        let _ = map_object(ObjectType::Contacts, o);
        assert!(o.properties.contains_key("lastmodifieddate"));
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn a_recycle_bin_batch_read_finds_deleted_ids_with_their_deletion_time() {
    let sim = sim(|_| {}).await;
    let client = client_for(&sim);
    let tokens = token_for(&sim);
    let st = sim.state();
    let ids = st
        .object_ids(PORTAL, hubspot_sim::ObjectType::Companies, false)
        .unwrap();
    let (deleted, live) = (ids[1], ids[2]);
    st.delete_object(PORTAL, hubspot_sim::ObjectType::Companies, deleted)
        .unwrap();
    let r = client
        .batch_read_archived(
            &tokens,
            PortalId(PORTAL),
            ObjectType::Companies,
            &[ObjectId(deleted), ObjectId(live), ObjectId(9_999_999_999)],
            &["hs_lastmodifieddate"],
        )
        .await
        .expect("recycle-bin batch read");
    assert_eq!(
        r.found.iter().map(|o| o.id).collect::<Vec<_>>(),
        vec![ObjectId(deleted)]
    );
    assert!(r.found[0].archived && r.found[0].archived_at.is_some());
    assert_eq!(r.missing, vec![ObjectId(live), ObjectId(9_999_999_999)]);
    sim.shutdown().await;
}

#[tokio::test]
async fn search_windows_by_id_walk_downwards() {
    let sim = sim(|_| {}).await;
    let client = client_for(&sim);
    let tokens = token_for(&sim);
    let all = sim
        .state()
        .object_ids(PORTAL, hubspot_sim::ObjectType::Deals, false)
        .unwrap();
    let below = all[30];
    let req = SearchRequest {
        filter_groups: vec![FilterGroup {
            filters: vec![
                hubsync_hubspot::Filter::new("hs_object_id", "LT", below.to_string()),
                hubsync_hubspot::Filter::new("hs_object_id", "GT", all[4].to_string()),
            ],
        }],
        sorts: vec![Sort::descending("hs_object_id")],
        properties: vec!["dealname".into()],
        limit: 20,
        after: None,
    };
    let page = client
        .search(&tokens, PortalId(PORTAL), ObjectType::Deals, &req)
        .await
        .expect("search");
    let got: Vec<u64> = page.results.iter().map(|o| o.id.0).collect();
    let want: Vec<u64> = all[11..30].iter().rev().copied().chain([all[10]]).collect();
    assert_eq!(got, want, "the 20 highest ids below the window's top");
    assert_eq!(page.total, 25);
    sim.shutdown().await;
}

#[tokio::test]
async fn search_and_owners_work() {
    let sim = sim(|_| {}).await;
    let client = client_for(&sim);
    let tokens = token_for(&sim);
    let req = SearchRequest {
        filter_groups: vec![FilterGroup {
            filters: vec![hubsync_hubspot::Filter::new(
                "hs_lastmodifieddate",
                "GTE",
                "0",
            )],
        }],
        sorts: vec![
            Sort::ascending("hs_lastmodifieddate"),
            Sort::ascending("hs_object_id"),
        ],
        properties: vec!["dealname".into(), "hs_lastmodifieddate".into()],
        limit: 10,
        after: None,
    };
    let page = client
        .search(&tokens, PortalId(PORTAL), ObjectType::Deals, &req)
        .await
        .expect("search");
    assert_eq!(page.total, 40);
    assert_eq!(page.results.len(), 10);
    assert!(page.next_after.is_some());

    let owners = client
        .get_owners_page(&tokens, PortalId(PORTAL), None, 100)
        .await
        .expect("owners");
    assert!(!owners.results.is_empty());
    assert!(owners.results.iter().all(|o| !o.id.is_empty()));
    sim.shutdown().await;
}

#[tokio::test]
async fn forced_429_is_honoured_and_counted() {
    let sim = sim(|_| {}).await;
    let client = client_for(&sim);
    let tokens = token_for(&sim);
    sim.state()
        .set_faults(
            PORTAL,
            Faults {
                force_429_next: 1,
                ..Faults::default()
            },
        )
        .expect("faults");
    let page = client
        .list_page(
            &tokens,
            PortalId(PORTAL),
            ObjectType::Deals,
            None,
            5,
            &["dealname"],
            false,
        )
        .await
        .expect("retried after the 429");
    assert_eq!(page.results.len(), 5);
    let stats = client.stats();
    assert_eq!(
        (stats.requests, stats.rate_limited, stats.retries),
        (2, 1, 1)
    );
    assert_eq!(sim.state().counters().injected_429, 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn injected_5xx_are_retried_then_surface_as_server_errors() {
    let sim = sim(|_| {}).await;
    let client = client_for(&sim);
    let tokens = token_for(&sim);
    sim.state()
        .set_faults(
            PORTAL,
            Faults {
                api_error_rate: 1.0,
                api_error_status: 503,
                ..Faults::default()
            },
        )
        .expect("faults");
    let err = client
        .batch_read(
            &tokens,
            PortalId(PORTAL),
            ObjectType::Companies,
            &[ObjectId(1)],
            &["name"],
        )
        .await
        .unwrap_err();
    assert!(matches!(err, HubSpotError::Server { status: 503 }), "{err}");
    assert!(err.is_retryable());
    assert_eq!(sim.state().counters().injected_errors, 3);

    sim.state()
        .set_faults(PORTAL, Faults::default())
        .expect("faults");
    client
        .list_page(
            &tokens,
            PortalId(PORTAL),
            ObjectType::Companies,
            None,
            1,
            &[],
            false,
        )
        .await
        .expect("healthy again");
    sim.shutdown().await;
}

/// Starts with a bogus token; a refresh asks the simulator for a real one.
struct SimTokens<'a> {
    sim: &'a Simulator,
    refreshes: AtomicU32,
}

impl AccessTokenSource for SimTokens<'_> {
    async fn access_token(&self, _portal: PortalId) -> Result<SecretString, TokenError> {
        Ok(SecretString::from("expired-or-bogus"))
    }

    async fn refresh(
        &self,
        portal: PortalId,
        _rejected: &SecretString,
    ) -> Result<SecretString, TokenError> {
        self.refreshes.fetch_add(1, Ordering::SeqCst);
        let t = self
            .sim
            .issue_token(portal.get())
            .map_err(|_| TokenError::Unavailable("sim".into()))?;
        Ok(SecretString::from(t.access_token))
    }
}

#[tokio::test]
async fn a_rejected_token_is_refreshed_exactly_once() {
    let sim = sim(|_| {}).await;
    let client = client_for(&sim);
    let tokens = SimTokens {
        sim: &sim,
        refreshes: AtomicU32::new(0),
    };
    client
        .list_page(
            &tokens,
            PortalId(PORTAL),
            ObjectType::Companies,
            None,
            1,
            &[],
            false,
        )
        .await
        .expect("works after refresh");
    assert_eq!(tokens.refreshes.load(Ordering::SeqCst), 1);
    assert_eq!(sim.state().counters().auth_failures, 1);

    // A static bad token: 401, no retry.
    let err = client
        .list_page(
            &StaticToken::new("nope"),
            PortalId(PORTAL),
            ObjectType::Companies,
            None,
            1,
            &[],
            false,
        )
        .await
        .unwrap_err();
    match err {
        HubSpotError::Unauthorized { category } => {
            assert_eq!(category.as_deref(), Some("INVALID_AUTHENTICATION"))
        }
        other => panic!("unexpected {other}"),
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn the_in_process_limiter_keeps_a_portal_under_the_simulators_limit() {
    // A small window so the test runs in ~1 s: 5 requests per second.
    let sim = sim(|c| {
        c.rate_limit.max_requests = 5;
        c.rate_limit.window_ms = 1_000;
    })
    .await;
    let mut config = ClientConfig::new(sim.base_url());
    config.retry = fast_retry();
    let limiter = InProcessRateLimiter::new(RateLimitConfig {
        standard: WindowLimit {
            max_requests: 5,
            interval: Duration::from_secs(1),
        },
        guard: Duration::from_millis(200),
        ..RateLimitConfig::default()
    });
    let client = HubSpotClient::with_rate_limiter(config, Arc::new(limiter)).expect("client");
    let tokens = token_for(&sim);
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let client = client.clone();
        let tokens = tokens.clone();
        tasks.push(tokio::spawn(async move {
            client
                .list_page(
                    &tokens,
                    PortalId(PORTAL),
                    ObjectType::Companies,
                    None,
                    1,
                    &[],
                    false,
                )
                .await
                .map(|_| ())
        }));
    }
    for t in tasks {
        t.await.expect("task").expect("request");
    }
    assert_eq!(client.stats().requests, 10);
    assert_eq!(client.stats().rate_limited, 0);
    assert!(sim
        .state()
        .counters()
        .rate_limited
        .values()
        .all(|n| *n == 0));
    sim.shutdown().await;
}

/// The default map of `t` with the portal's owners loaded.
fn with_owners(t: ObjectType, o: &hubsync_hubspot::HubSpotObject, owners: &Owners) -> MapOutcome {
    map_with(
        MappingConfig::default().object(t),
        t,
        o,
        MapContext {
            owners: Some(owners),
            ..MapContext::default()
        },
    )
}

#[tokio::test]
async fn every_api_version_reads_the_same_and_2026_09_batch_200s_report_missing_ids() {
    let sim = sim(|c| c.rate_limit.enabled = false).await;
    let token = token_for(&sim);
    let mut found = Vec::new();
    for api in hubsync_hubspot::ApiVersion::ALL {
        let mut config = ClientConfig::new(sim.base_url());
        config.api = api;
        let client = HubSpotClient::with_rate_limiter(config, Arc::new(Unlimited)).unwrap();
        let page = client
            .list_page(
                &token,
                PortalId(PORTAL),
                ObjectType::Companies,
                None,
                5,
                &["name"],
                false,
            )
            .await
            .unwrap();
        let ids: Vec<ObjectId> = page.results.iter().map(|o| o.id).collect();
        let mut asked = ids.clone();
        asked.push(ObjectId(999));
        let read = client
            .batch_read(
                &token,
                PortalId(PORTAL),
                ObjectType::Companies,
                &asked,
                &["name"],
            )
            .await
            .unwrap();
        assert_eq!(read.missing, vec![ObjectId(999)], "{api}");
        assert_eq!(read.found.len(), 5, "{api}");
        found.push(ids);
    }
    assert!(found.windows(2).all(|w| w[0] == w[1]));
    let c = sim.state().counters();
    for v in ["v3", "2026-03", "2026-09"] {
        assert_eq!(c.requests_by_api_version.get(v), Some(&2), "{v}");
    }
    sim.shutdown().await;
}
