use super::*;

#[test]
fn base_url_is_validated_and_normalized() {
    assert_eq!(
        validate_base_url("https://api.hubapi.com/").unwrap(),
        "https://api.hubapi.com"
    );
    assert_eq!(
        validate_base_url("http://127.0.0.1:8080/sim").unwrap(),
        "http://127.0.0.1:8080/sim"
    );
    for bad in [
        "",
        "api.hubapi.com",
        "ftp://x",
        "https://x/?a=1",
        "https://u:p@x",
        "https://x/#f",
    ] {
        assert!(validate_base_url(bad).is_err(), "{bad}");
    }
}

#[test]
fn backoff_grows_is_capped_and_jittered_within_bounds() {
    let r = RetryConfig {
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_millis(1000),
        ..RetryConfig::default()
    };
    for _ in 0..50 {
        let d1 = r.backoff(1);
        assert!(d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100));
        let d3 = r.backoff(3);
        assert!(d3 >= Duration::from_millis(200) && d3 <= Duration::from_millis(400));
        let d30 = r.backoff(30);
        assert!(d30 >= Duration::from_millis(500) && d30 <= Duration::from_millis(1000));
    }
}

#[test]
fn rate_limit_waits_follow_the_policy() {
    let r = RetryConfig::default();
    assert_eq!(
        r.rate_limit_wait(&RateLimitPolicy::Daily, Some(Duration::from_secs(1))),
        None
    );
    assert_eq!(
        r.rate_limit_wait(&RateLimitPolicy::Secondly, None),
        Some(r.secondly_wait)
    );
    assert_eq!(
        r.rate_limit_wait(&RateLimitPolicy::TenSecondlyRolling, None),
        Some(r.rolling_window_wait)
    );
    assert_eq!(
        r.rate_limit_wait(
            &RateLimitPolicy::TenSecondlyRolling,
            Some(Duration::from_secs(2))
        ),
        Some(Duration::from_secs(2))
    );
}

#[test]
fn stats_since_subtracts() {
    let a = ClientStats {
        requests: 10,
        rate_limited: 2,
        ..Default::default()
    };
    let b = ClientStats {
        requests: 4,
        rate_limited: 1,
        ..Default::default()
    };
    assert_eq!(
        a.since(&b),
        ClientStats {
            requests: 6,
            rate_limited: 1,
            ..Default::default()
        }
    );
}
