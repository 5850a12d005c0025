use super::*;

#[test]
fn versions_parse() {
    assert_eq!("v1".parse::<OAuthVersion>().unwrap(), OAuthVersion::V1);
    assert_eq!(
        "2026-03".parse::<OAuthVersion>().unwrap(),
        OAuthVersion::current()
    );
    for bad in ["", "v2", "2026-3", "2026/03", "abcd-ef"] {
        assert!(bad.parse::<OAuthVersion>().is_err(), "{bad}");
    }
}

#[test]
fn refused_grants_are_recognised_in_every_shape() {
    let parse = |b: &str| {
        serde_json::from_str::<WireOAuthError>(b)
            .unwrap()
            .refused_grant()
    };
    // RFC 6749 only, and HubSpot's combined body.
    assert_eq!(
        parse(r#"{"error":"invalid_grant","error_description":"revoked"}"#),
        Some(GrantStatus::Other(String::new()))
    );
    assert_eq!(
        parse(r#"{"error":"invalid_grant","status":"BAD_REFRESH_TOKEN","message":"m"}"#),
        Some(GrantStatus::BadRefreshToken)
    );
    // OAuth v1: status without error.
    assert_eq!(
        parse(r#"{"status":"BAD_REFRESH_TOKEN","message":"missing or invalid refresh token"}"#),
        Some(GrantStatus::BadRefreshToken)
    );
    // The date-versioned generic error body.
    assert_eq!(
        parse(
            r#"{"category":"VALIDATION_ERROR","subCategory":"INVALID_TOKEN","message":"Invalid refresh token","correlationId":"c"}"#
        ),
        Some(GrantStatus::BadRefreshToken)
    );
    assert_eq!(
        parse(
            r#"{"category":"VALIDATION_ERROR","subCategory":"INVALID_TOKEN","message":"The provided token is invalid or expired"}"#
        ),
        Some(GrantStatus::Other("INVALID_TOKEN".into()))
    );
    // Not a refused grant: the app's credentials, a missing field, a
    // generic error about something else.
    for other in [
        r#"{"error":"invalid_client","status":"BAD_CLIENT_ID","message":"refresh token"}"#,
        r#"{"category":"VALIDATION_ERROR","message":"missing or invalid client secret for refresh token"}"#,
        r#"{"category":"VALIDATION_ERROR","message":"Invalid input (details will vary based on the error)"}"#,
        r#"{"status":"BAD_GRANT_TYPE","message":"grant_type must be refresh_token"}"#,
        r#"{}"#,
    ] {
        assert_eq!(parse(other), None, "{other}");
    }
}

#[test]
fn grant_status_parses() {
    assert_eq!(
        GrantStatus::parse(Some("BAD_REFRESH_TOKEN")),
        GrantStatus::BadRefreshToken
    );
    assert_eq!(
        GrantStatus::parse(Some("BAD_AUTH_CODE")),
        GrantStatus::BadAuthCode
    );
    assert_eq!(GrantStatus::parse(None).to_string(), "unknown");
}

#[test]
fn debug_output_redacts_secrets() {
    let cfg = OAuthConfig::new(
        "https://api.hubapi.com",
        "id",
        SecretString::from("top-secret-value".to_string()),
        "https://x/cb",
    );
    assert!(!format!("{cfg:?}").contains("top-secret-value"));
    let grant = TokenGrant {
        access_token: SecretString::from("access-secret-value".to_string()),
        refresh_token: SecretString::from("refresh-secret-value".to_string()),
        expires_in: 1800,
        hub_id: None,
        scopes: None,
    };
    let dbg = format!("{grant:?}");
    assert!(!dbg.contains("secret-value"), "{dbg}");
}
