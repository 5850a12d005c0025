//! Client behaviour against a tiny scripted HTTP server: each test queues the
//! responses the server gives, in order, and inspects the requests it saw.
//! Covers 200/207, 429 (each policy, Retry-After), 5xx, timeouts, transport
//! errors, 401 refresh-and-retry, decode errors and argument checks.
//! No test depends on wall-clock timing.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use hubsync_hubspot::{
    AccessTokenSource, ClientConfig, HubSpotClient, HubSpotError, ObjectId, ObjectType, PortalId,
    RateLimitPolicy, RetryConfig, SearchRequest, StaticToken, TokenError, Unlimited,
};
use secrecy::{ExposeSecret, SecretString};

#[derive(Clone)]
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    delay: Duration,
}

fn reply(status: u16, body: &str) -> Reply {
    Reply {
        status,
        headers: Vec::new(),
        body: body.to_owned(),
        delay: Duration::ZERO,
    }
}

fn rate_limited(policy: &str) -> Reply {
    reply(
        429,
        &format!(
            r#"{{"status":"error","message":"You have reached your limit.","errorType":"RATE_LIMIT","policyName":"{policy}","correlationId":"c-1"}}"#
        ),
    )
}

#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    query: Option<String>,
    auth: Option<String>,
    body: String,
}

#[derive(Clone, Default)]
struct Script {
    replies: Arc<Mutex<VecDeque<Reply>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

async fn handle(
    State(s): State<Script>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    s.seen.lock().unwrap().push(Seen {
        method,
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        auth: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let next = s.replies.lock().unwrap().pop_front();
    let Some(r) = next else {
        return (StatusCode::IM_A_TEAPOT, "script exhausted").into_response();
    };
    if !r.delay.is_zero() {
        tokio::time::sleep(r.delay).await;
    }
    let mut resp = (
        StatusCode::from_u16(r.status).unwrap(),
        [("content-type", "application/json")],
        r.body,
    )
        .into_response();
    for (k, v) in r.headers {
        resp.headers_mut().insert(k, v.parse().unwrap());
    }
    resp
}

struct Harness {
    client: HubSpotClient,
    script: Script,
}

impl Harness {
    async fn start(replies: Vec<Reply>) -> Self {
        Self::start_with(replies, |_| {}).await
    }

    async fn start_with(replies: Vec<Reply>, tweak: impl FnOnce(&mut ClientConfig)) -> Self {
        let script = Script::default();
        script.replies.lock().unwrap().extend(replies);
        let app = Router::new().fallback(handle).with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let mut config = ClientConfig::new(format!("http://{addr}"));
        config.request_timeout = Duration::from_millis(500);
        config.retry = fast_retry();
        tweak(&mut config);
        let client = HubSpotClient::with_rate_limiter(config, Arc::new(Unlimited)).unwrap();
        Self { client, script }
    }

    fn seen(&self) -> Vec<Seen> {
        self.script.seen.lock().unwrap().clone()
    }
}

fn fast_retry() -> RetryConfig {
    RetryConfig {
        max_attempts: 3,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        max_elapsed: Duration::from_secs(5),
        secondly_wait: Duration::from_millis(5),
        rolling_window_wait: Duration::from_millis(10),
    }
}

const PORTAL: PortalId = PortalId(62515);

fn token() -> StaticToken {
    StaticToken::new("test-access-token")
}

fn ids(v: &[u64]) -> Vec<ObjectId> {
    v.iter().copied().map(ObjectId).collect()
}

fn object_json(id: u64, name: &str) -> String {
    format!(
        r#"{{"id":"{id}","properties":{{"name":"{name}","hs_lastmodifieddate":"2024-05-01T12:00:00.123Z","hs_object_id":"{id}"}},"createdAt":"2024-01-01T00:00:00Z","updatedAt":"2024-05-01T12:00:00.123Z","archived":false}}"#
    )
}

const OK_LIST: &str = r#"{"results":[],"paging":null}"#;

#[tokio::test]
async fn batch_read_returns_all_objects_on_200() {
    let body = format!(
        r#"{{"status":"COMPLETE","results":[{},{}],"startedAt":"x","completedAt":"y"}}"#,
        object_json(1, "Acme"),
        object_json(2, "Globex")
    );
    let h = Harness::start(vec![reply(200, &body)]).await;
    let r = h
        .client
        .batch_read(
            &token(),
            PORTAL,
            ObjectType::Companies,
            &ids(&[1, 2, 2]),
            &["name", "domain"],
        )
        .await
        .unwrap();
    assert_eq!(r.found.len(), 2);
    assert_eq!(r.found[0].property("name"), Some("Acme"));
    assert!(r.missing.is_empty());

    let seen = h.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, Method::POST);
    assert_eq!(seen[0].path, "/crm/objects/2026-03/companies/batch/read");
    assert_eq!(seen[0].query.as_deref(), Some("archived=false"));
    assert_eq!(seen[0].auth.as_deref(), Some("Bearer test-access-token"));
    let sent: serde_json::Value = serde_json::from_str(&seen[0].body).unwrap();
    assert_eq!(
        sent,
        serde_json::json!({"inputs":[{"id":"1"},{"id":"2"}],"properties":["name","domain"]}),
        "duplicates are sent once, ids as strings"
    );
    assert_eq!(h.client.stats().requests, 1);
}

#[tokio::test]
async fn batch_read_reports_missing_ids_on_207() {
    let body = format!(
        r#"{{"status":"COMPLETE","results":[{}],"numErrors":1,"errors":[{{"status":"error","category":"OBJECT_NOT_FOUND","message":"Could not get some CONTACT objects, they may be deleted or not exist.","context":{{"ids":["8","9"]}}}}]}}"#,
        object_json(7, "x")
    );
    let h = Harness::start(vec![reply(207, &body)]).await;
    let r = h
        .client
        .batch_read(
            &token(),
            PORTAL,
            ObjectType::Contacts,
            &ids(&[7, 8, 9]),
            &["email"],
        )
        .await
        .unwrap();
    assert_eq!(r.found.iter().map(|o| o.id).collect::<Vec<_>>(), ids(&[7]));
    assert_eq!(r.missing, ids(&[8, 9]));
    assert_eq!(h.seen()[0].path, "/crm/objects/2026-03/contacts/batch/read");
}

#[tokio::test]
async fn batch_read_of_more_than_100_ids_fails_before_any_request() {
    let h = Harness::start(vec![]).await;
    let many: Vec<ObjectId> = (1..=101).map(ObjectId).collect();
    let err = h
        .client
        .batch_read(&token(), PORTAL, ObjectType::Deals, &many, &["dealname"])
        .await
        .unwrap_err();
    assert!(matches!(err, HubSpotError::InvalidArgument(_)), "{err}");
    assert!(!err.is_retryable());
    assert!(h.seen().is_empty());
    assert_eq!(h.client.stats().requests, 0);
}

#[tokio::test]
async fn batch_read_of_no_ids_sends_nothing() {
    let h = Harness::start(vec![]).await;
    let r = h
        .client
        .batch_read(&token(), PORTAL, ObjectType::Deals, &[], &["dealname"])
        .await
        .unwrap();
    assert!(r.found.is_empty() && r.missing.is_empty());
    assert!(h.seen().is_empty());
}

#[tokio::test]
async fn ten_secondly_429_without_retry_after_waits_and_retries() {
    let h = Harness::start(vec![
        rate_limited("TEN_SECONDLY_ROLLING"),
        reply(200, OK_LIST),
    ])
    .await;
    let page = h
        .client
        .list_page(
            &token(),
            PORTAL,
            ObjectType::Companies,
            None,
            100,
            &["name"],
            false,
        )
        .await
        .unwrap();
    assert!(page.results.is_empty());
    assert_eq!(page.next_after, None);
    let stats = h.client.stats();
    assert_eq!(
        (stats.requests, stats.rate_limited, stats.retries),
        (2, 1, 1)
    );
}

#[tokio::test]
async fn secondly_429_is_retried() {
    let h = Harness::start(vec![
        rate_limited("SECONDLY"),
        reply(200, r#"{"total":0,"results":[]}"#),
    ])
    .await;
    let req = SearchRequest {
        limit: 10,
        ..SearchRequest::default()
    };
    let page = h
        .client
        .search(&token(), PORTAL, ObjectType::Contacts, &req)
        .await
        .unwrap();
    assert_eq!(page.total, 0);
    assert_eq!(h.client.stats().rate_limited, 1);
}

#[tokio::test]
async fn retry_after_zero_is_honoured_and_retried() {
    let mut r429 = rate_limited("TEN_SECONDLY_ROLLING");
    r429.headers.push(("retry-after", "0".into()));
    let h = Harness::start(vec![r429, reply(200, OK_LIST)]).await;
    h.client
        .list_page(&token(), PORTAL, ObjectType::Deals, None, 10, &[], false)
        .await
        .unwrap();
    assert_eq!(h.seen().len(), 2);
}

#[tokio::test]
async fn retry_after_beyond_the_time_budget_surfaces_the_429_without_waiting() {
    let mut r429 = rate_limited("TEN_SECONDLY_ROLLING");
    r429.headers.push(("retry-after", "3600".into()));
    let h = Harness::start(vec![r429]).await;
    let err = h
        .client
        .list_page(&token(), PORTAL, ObjectType::Deals, None, 10, &[], false)
        .await
        .unwrap_err();
    match &err {
        HubSpotError::RateLimited {
            policy,
            retry_after,
        } => {
            assert_eq!(*policy, RateLimitPolicy::TenSecondlyRolling);
            assert_eq!(*retry_after, Some(Duration::from_secs(3600)));
        }
        other => panic!("unexpected {other}"),
    }
    assert!(err.is_retryable());
    assert_eq!(h.seen().len(), 1);
}

#[tokio::test]
async fn daily_429_is_not_retried() {
    let h = Harness::start(vec![rate_limited("DAILY"), reply(200, OK_LIST)]).await;
    let err = h
        .client
        .list_page(
            &token(),
            PORTAL,
            ObjectType::Companies,
            None,
            10,
            &[],
            false,
        )
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        HubSpotError::RateLimited {
            policy: RateLimitPolicy::Daily,
            ..
        }
    ));
    assert!(!err.is_retryable());
    assert_eq!(h.seen().len(), 1);
}

#[tokio::test]
async fn persistent_429s_stop_after_max_attempts() {
    let h = Harness::start(vec![
        rate_limited("TEN_SECONDLY_ROLLING"),
        rate_limited("TEN_SECONDLY_ROLLING"),
        rate_limited("TEN_SECONDLY_ROLLING"),
        reply(200, OK_LIST),
    ])
    .await;
    let err = h
        .client
        .list_page(
            &token(),
            PORTAL,
            ObjectType::Companies,
            None,
            10,
            &[],
            false,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, HubSpotError::RateLimited { .. }));
    assert_eq!(h.seen().len(), 3);
    assert_eq!(h.client.stats().rate_limited, 3);
}

#[tokio::test]
async fn server_error_is_retried_then_succeeds() {
    let body = format!(r#"{{"results":[{}]}}"#, object_json(3, "x"));
    let h = Harness::start(vec![
        reply(502, "bad gateway"),
        reply(503, "{}"),
        reply(200, &body),
    ])
    .await;
    let r = h
        .client
        .batch_read(
            &token(),
            PORTAL,
            ObjectType::Companies,
            &ids(&[3]),
            &["name"],
        )
        .await
        .unwrap();
    assert_eq!(r.found.len(), 1);
    let s = h.client.stats();
    assert_eq!((s.requests, s.server_errors, s.retries), (3, 2, 2));
    assert_eq!(h.client.stats_for(PORTAL), s);
    assert_eq!(h.client.stats_for(PortalId(1)), Default::default());
}

#[tokio::test]
async fn stats_are_kept_per_portal() {
    let h = Harness::start(vec![
        reply(200, OK_LIST),
        reply(500, "{}"),
        reply(200, OK_LIST),
    ])
    .await;
    let other = PortalId(99);
    h.client
        .list_page(&token(), PORTAL, ObjectType::Deals, None, 10, &[], false)
        .await
        .unwrap();
    h.client
        .list_page(&token(), other, ObjectType::Deals, None, 10, &[], false)
        .await
        .unwrap();
    assert_eq!(h.client.stats().requests, 3);
    assert_eq!(h.client.stats_for(PORTAL).requests, 1);
    let o = h.client.stats_for(other);
    assert_eq!((o.requests, o.server_errors, o.retries), (2, 1, 1));
}

#[tokio::test]
async fn persistent_server_errors_give_up_with_the_status() {
    let h = Harness::start(vec![
        reply(500, "{}"),
        reply(500, "{}"),
        reply(500, "{}"),
        reply(200, OK_LIST),
    ])
    .await;
    let err = h
        .client
        .list_page(&token(), PORTAL, ObjectType::Contacts, None, 10, &[], false)
        .await
        .unwrap_err();
    assert!(matches!(err, HubSpotError::Server { status: 500 }), "{err}");
    assert!(err.is_retryable());
    assert_eq!(h.seen().len(), 3);
}

#[tokio::test]
async fn slow_responses_time_out_and_are_retried_within_bounds() {
    let slow = Reply {
        delay: Duration::from_secs(3),
        ..reply(200, OK_LIST)
    };
    let h = Harness::start_with(vec![slow.clone(), slow], |c| {
        c.request_timeout = Duration::from_millis(100);
        c.retry.max_attempts = 2;
    })
    .await;
    let err = h
        .client
        .list_page(&token(), PORTAL, ObjectType::Contacts, None, 10, &[], false)
        .await
        .unwrap_err();
    assert!(matches!(err, HubSpotError::Timeout), "{err}");
    assert!(err.is_retryable());
    assert_eq!(h.client.stats().timeouts, 2);
}

#[tokio::test]
async fn connection_refused_is_a_retryable_transport_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut config = ClientConfig::new(format!("http://{addr}"));
    config.retry = fast_retry();
    let client = HubSpotClient::with_rate_limiter(config, Arc::new(Unlimited)).unwrap();
    let err = client
        .list_page(&token(), PORTAL, ObjectType::Contacts, None, 10, &[], false)
        .await
        .unwrap_err();
    assert!(matches!(err, HubSpotError::Transport(_)), "{err}");
    assert!(err.is_retryable());
    assert_eq!(client.stats().transport_errors, 3);
}

/// Hands out "old-token" until refreshed, then "new-token"; counts refreshes.
#[derive(Default)]
struct RefreshingTokens {
    refreshes: AtomicU32,
    fail_refresh_with: Option<TokenError>,
}

impl AccessTokenSource for RefreshingTokens {
    async fn access_token(&self, _portal: PortalId) -> Result<SecretString, TokenError> {
        Ok(SecretString::from("old-token"))
    }

    async fn refresh(
        &self,
        _portal: PortalId,
        rejected: &SecretString,
    ) -> Result<SecretString, TokenError> {
        assert_eq!(rejected.expose_secret(), "old-token");
        self.refreshes.fetch_add(1, Ordering::SeqCst);
        match &self.fail_refresh_with {
            Some(e) => Err(e.clone()),
            None => Ok(SecretString::from("new-token")),
        }
    }
}

const EXPIRED: &str = r#"{"status":"error","message":"The OAuth token used to make this call expired 5 second(s) ago.","category":"EXPIRED_AUTHENTICATION","correlationId":"c"}"#;

#[tokio::test]
async fn a_401_refreshes_once_and_retries_with_the_new_token() {
    let h = Harness::start(vec![reply(401, EXPIRED), reply(200, OK_LIST)]).await;
    let tokens = RefreshingTokens::default();
    h.client
        .list_page(&tokens, PORTAL, ObjectType::Companies, None, 10, &[], false)
        .await
        .unwrap();
    assert_eq!(tokens.refreshes.load(Ordering::SeqCst), 1);
    let seen = h.seen();
    assert_eq!(seen[0].auth.as_deref(), Some("Bearer old-token"));
    assert_eq!(seen[1].auth.as_deref(), Some("Bearer new-token"));
    assert_eq!(h.client.stats().token_refreshes, 1);
}

#[tokio::test]
async fn a_second_401_after_refresh_is_final() {
    let h = Harness::start(vec![
        reply(401, EXPIRED),
        reply(401, EXPIRED),
        reply(200, OK_LIST),
    ])
    .await;
    let tokens = RefreshingTokens::default();
    let err = h
        .client
        .list_page(&tokens, PORTAL, ObjectType::Companies, None, 10, &[], false)
        .await
        .unwrap_err();
    match &err {
        HubSpotError::Unauthorized { category } => {
            assert_eq!(category.as_deref(), Some("EXPIRED_AUTHENTICATION"))
        }
        other => panic!("unexpected {other}"),
    }
    assert!(!err.is_retryable());
    assert_eq!(tokens.refreshes.load(Ordering::SeqCst), 1);
    assert_eq!(h.seen().len(), 2);
}

#[tokio::test]
async fn a_401_with_a_revoked_refresh_token_reports_needs_reauth() {
    let h = Harness::start(vec![reply(401, EXPIRED)]).await;
    let tokens = RefreshingTokens {
        fail_refresh_with: Some(TokenError::NeedsReauth),
        ..Default::default()
    };
    let err = h
        .client
        .list_page(&tokens, PORTAL, ObjectType::Companies, None, 10, &[], false)
        .await
        .unwrap_err();
    assert!(
        matches!(err, HubSpotError::Token(TokenError::NeedsReauth)),
        "{err}"
    );
    assert_eq!(h.seen().len(), 1);
}

#[tokio::test]
async fn a_401_with_a_static_token_is_final_without_retry() {
    let h = Harness::start(vec![reply(401, EXPIRED), reply(200, OK_LIST)]).await;
    let err = h
        .client
        .list_page(
            &token(),
            PORTAL,
            ObjectType::Companies,
            None,
            10,
            &[],
            false,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, HubSpotError::Unauthorized { .. }));
    assert_eq!(h.seen().len(), 1);
}

#[tokio::test]
async fn undecodable_success_body_is_a_decode_error_and_not_retried() {
    let h = Harness::start(vec![
        reply(
            200,
            r#"{"results":[{"id":"not-a-number","properties":{"email":"pii@example.com"}}]}"#,
        ),
        reply(200, OK_LIST),
    ])
    .await;
    let err = h
        .client
        .list_page(&token(), PORTAL, ObjectType::Contacts, None, 10, &[], false)
        .await
        .unwrap_err();
    assert!(matches!(err, HubSpotError::Decode { .. }), "{err}");
    assert!(!err.is_retryable());
    let msg = err.to_string();
    assert!(
        !msg.contains("pii@example.com") && !msg.contains("not-a-number"),
        "{msg}"
    );
    assert_eq!(h.seen().len(), 1);
}

#[tokio::test]
async fn not_found_and_bad_request_are_typed_and_final() {
    let h = Harness::start(vec![
        reply(404, r#"{"status":"error","message":"not found","category":"OBJECT_NOT_FOUND"}"#),
        reply(400, r#"{"status":"error","message":"Property \"nope\" does not exist","category":"VALIDATION_ERROR"}"#),
        reply(403, r#"{"status":"error","message":"missing scopes","category":"MISSING_SCOPES"}"#),
        reply(403, r#"{"status":"error","message":"This app hasn't been granted all required scopes to make this call.","correlationId":"c","errors":[{"message":"One or more of the following scopes are required.","context":{"requiredGranularScopes":["crm.lists.read"]}}],"links":{"scopes":"https://developers.hubspot.com/scopes"},"category":"MISSING_SCOPES"}"#),
    ])
    .await;
    let tok = token();
    let list = || {
        h.client
            .list_page(&tok, PORTAL, ObjectType::Contacts, None, 10, &[], false)
    };
    assert!(matches!(list().await.unwrap_err(), HubSpotError::NotFound));
    match list().await.unwrap_err() {
        HubSpotError::BadRequest { status, message } => {
            assert_eq!(status, 400);
            assert!(message.contains("does not exist"));
        }
        other => panic!("unexpected {other}"),
    }
    match list().await.unwrap_err() {
        HubSpotError::Forbidden {
            category,
            required_scopes,
        } => {
            assert_eq!(category.as_deref(), Some("MISSING_SCOPES"));
            assert!(required_scopes.is_empty());
        }
        other => panic!("unexpected {other}"),
    }
    let err = list().await.unwrap_err();
    match &err {
        HubSpotError::Forbidden {
            required_scopes, ..
        } => assert_eq!(required_scopes, &["crm.lists.read"]),
        other => panic!("unexpected {other}"),
    }
    assert!(err.to_string().contains("crm.lists.read"), "{err}");
    assert!(!err.is_retryable());
    assert_eq!(h.seen().len(), 4);
}

#[tokio::test]
async fn list_page_sends_the_query_and_returns_the_cursor() {
    let body = format!(
        r#"{{"results":[{}],"paging":{{"next":{{"after":"MTAx","link":"https://api.hubapi.com/crm/v3/objects/companies?after=MTAx"}}}}}}"#,
        object_json(5, "x")
    );
    let h = Harness::start(vec![reply(200, &body)]).await;
    let page = h
        .client
        .list_page(
            &token(),
            PORTAL,
            ObjectType::Companies,
            Some("abc=&"),
            100,
            &["name", "domain"],
            true,
        )
        .await
        .unwrap();
    assert_eq!(page.results.len(), 1);
    assert_eq!(page.next_after.as_deref(), Some("MTAx"));
    let seen = h.seen();
    assert_eq!(seen[0].method, Method::GET);
    assert_eq!(seen[0].path, "/crm/objects/2026-03/companies");
    assert_eq!(
        seen[0].query.as_deref(),
        Some("limit=100&after=abc%3D%26&properties=name%2Cdomain&archived=true")
    );
}

#[tokio::test]
async fn page_limits_are_checked_before_any_request() {
    let h = Harness::start(vec![]).await;
    for limit in [0, 101] {
        let err = h
            .client
            .list_page(
                &token(),
                PORTAL,
                ObjectType::Companies,
                None,
                limit,
                &[],
                false,
            )
            .await
            .unwrap_err();
        assert!(matches!(err, HubSpotError::InvalidArgument(_)));
        let err = h
            .client
            .get_owners_page(&token(), PORTAL, None, limit)
            .await
            .unwrap_err();
        assert!(matches!(err, HubSpotError::InvalidArgument(_)));
    }
    let past_cap = SearchRequest {
        limit: 200,
        after: Some("9900".into()),
        ..SearchRequest::default()
    };
    let err = h
        .client
        .search(&token(), PORTAL, ObjectType::Deals, &past_cap)
        .await
        .unwrap_err();
    assert!(matches!(err, HubSpotError::InvalidArgument(_)));
    assert!(h.seen().is_empty());
}

#[tokio::test]
async fn search_posts_filters_and_sorts() {
    let body = format!(
        r#"{{"total":1,"results":[{}],"paging":{{"next":{{"after":"1"}}}}}}"#,
        object_json(9, "x")
    );
    let h = Harness::start(vec![reply(200, &body)]).await;
    let req = SearchRequest {
        filter_groups: vec![hubsync_hubspot::FilterGroup {
            filters: vec![hubsync_hubspot::Filter::new(
                "hs_lastmodifieddate",
                "GTE",
                "1714564800000",
            )],
        }],
        sorts: vec![hubsync_hubspot::Sort::ascending("hs_lastmodifieddate")],
        properties: vec!["name".into()],
        limit: 200,
        after: None,
    };
    let page = h
        .client
        .search(&token(), PORTAL, ObjectType::Companies, &req)
        .await
        .unwrap();
    assert_eq!(
        (page.total, page.results.len(), page.next_after.as_deref()),
        (1, 1, Some("1"))
    );
    let seen = h.seen();
    assert_eq!(seen[0].path, "/crm/objects/2026-03/companies/search");
    let sent: serde_json::Value = serde_json::from_str(&seen[0].body).unwrap();
    assert_eq!(
        sent,
        serde_json::json!({
            "filterGroups":[{"filters":[{"propertyName":"hs_lastmodifieddate","operator":"GTE","value":"1714564800000"}]}],
            "sorts":[{"propertyName":"hs_lastmodifieddate","direction":"ASCENDING"}],
            "properties":["name"],
            "limit":200
        })
    );
}

#[tokio::test]
async fn owners_page_parses_and_redacts_emails_in_debug() {
    let h = Harness::start(vec![reply(
        200,
        r#"{"results":[{"id":"7001","email":"owner@example.com","firstName":"Olive","lastName":"Owner","userId":42,"createdAt":"2024-01-01T00:00:00Z","archived":false}],"paging":{"next":{"after":"7002"}}}"#,
    )])
    .await;
    let page = h
        .client
        .get_owners_page(&token(), PORTAL, Some("7001"), 100)
        .await
        .unwrap();
    assert_eq!(page.results[0].id, "7001");
    assert_eq!(page.results[0].email.as_deref(), Some("owner@example.com"));
    assert_eq!(page.results[0].user_id, Some(42));
    assert_eq!(page.next_after.as_deref(), Some("7002"));
    assert!(!format!("{:?}", page.results[0]).contains("owner@example.com"));
    assert_eq!(h.seen()[0].query.as_deref(), Some("limit=100&after=7001"));
}

#[tokio::test]
async fn errors_and_debug_output_never_contain_the_token() {
    let h = Harness::start(vec![reply(401, EXPIRED)]).await;
    let err = h
        .client
        .list_page(
            &token(),
            PORTAL,
            ObjectType::Companies,
            None,
            10,
            &[],
            false,
        )
        .await
        .unwrap_err();
    assert!(!format!("{err} {err:?}").contains("test-access-token"));
    assert!(!format!("{:?}", h.client).contains("test-access-token"));
}

#[tokio::test]
async fn association_paging_is_followed_per_input_until_it_ends() {
    // Company 1 has three pages of contacts, company 2 one page; the second
    // request resends only company 1 with its cursor, and so does the third.
    let h = Harness::start(vec![
        reply(
            200,
            r#"{"status":"COMPLETE","results":[
              {"from":{"id":"1"},"to":[{"toObjectId":"10","associationTypes":[{"category":"HUBSPOT_DEFINED","typeId":280,"label":null}]}],
               "paging":{"next":{"after":"c1-p2","link":null}}},
              {"from":{"id":"2"},"to":[{"toObjectId":20,"associationTypes":[{"category":"HUBSPOT_DEFINED","typeId":2,"label":"Primary"}]}]}]}"#,
        ),
        reply(
            200,
            r#"{"status":"COMPLETE","results":[
              {"from":{"id":"1"},"to":[{"toObjectId":"11","associationTypes":[]}],"paging":{"next":{"after":"c1-p3"}}}]}"#,
        ),
        reply(
            200,
            r#"{"status":"COMPLETE","results":[{"from":{"id":"1"},"to":[{"toObjectId":"12","associationTypes":[]},{"toObjectId":"10","associationTypes":[]}]}]}"#,
        ),
    ])
    .await;
    let links = h
        .client
        .batch_read_associations(
            &token(),
            PORTAL,
            ObjectType::Companies,
            ObjectType::Contacts,
            &[ObjectId(2), ObjectId(1), ObjectId(2)],
        )
        .await
        .unwrap();
    let got: Vec<(u64, u64, bool)> = links
        .iter()
        .map(|l| (l.from.0, l.to.0, l.primary))
        .collect();
    assert_eq!(
        got,
        vec![
            (1, 10, false),
            (1, 11, false),
            (1, 12, false),
            (2, 20, true)
        ]
    );
    let seen = h.seen();
    assert_eq!(seen.len(), 3);
    assert_eq!(
        seen[0].path,
        "/crm/associations/2026-03/companies/contacts/batch/read"
    );
    let bodies: Vec<serde_json::Value> = seen
        .iter()
        .map(|s| serde_json::from_str(&s.body).unwrap())
        .collect();
    assert_eq!(
        bodies[0],
        serde_json::json!({"inputs":[{"id":"1"},{"id":"2"}]})
    );
    assert_eq!(
        bodies[1],
        serde_json::json!({"inputs":[{"id":"1","after":"c1-p2"}]})
    );
    assert_eq!(
        bodies[2],
        serde_json::json!({"inputs":[{"id":"1","after":"c1-p3"}]})
    );
}

#[tokio::test]
async fn an_association_cursor_that_does_not_move_ends_the_paging() {
    let page = r#"{"results":[{"from":{"id":"1"},"to":[{"toObjectId":"10","associationTypes":[]}],"paging":{"next":{"after":"same"}}}]}"#;
    let h = Harness::start(vec![reply(200, page), reply(200, page), reply(200, page)]).await;
    let links = h
        .client
        .batch_read_associations(
            &token(),
            PORTAL,
            ObjectType::Companies,
            ObjectType::Deals,
            &[ObjectId(1)],
        )
        .await
        .unwrap();
    assert_eq!(links.len(), 1);
    assert_eq!(
        h.seen().len(),
        2,
        "the repeated cursor is not asked for again"
    );
}

#[tokio::test]
async fn legacy_setting_calls_the_numbered_paths() {
    let h = Harness::start_with(
        vec![
            reply(200, r#"{"results":[]}"#),
            reply(200, r#"{"results":[]}"#),
            reply(200, r#"{"results":[]}"#),
        ],
        |c| c.api = hubsync_hubspot::ApiVersion::Legacy,
    )
    .await;
    let tok = token();
    h.client
        .list_page(&tok, PORTAL, ObjectType::Deals, None, 10, &[], false)
        .await
        .unwrap();
    h.client.list_all_owners(&tok, PORTAL).await.unwrap();
    h.client
        .batch_read_associations(
            &tok,
            PORTAL,
            ObjectType::Deals,
            ObjectType::Companies,
            &[ObjectId(5)],
        )
        .await
        .unwrap();
    let paths: Vec<String> = h.seen().into_iter().map(|s| s.path).collect();
    assert_eq!(
        paths,
        [
            "/crm/v3/objects/deals",
            "/crm/v3/owners",
            "/crm/v4/associations/deals/companies/batch/read"
        ]
    );
}
