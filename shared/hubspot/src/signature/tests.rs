use super::*;
use proptest::prelude::*;

const SECRET: &str = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy";
const URL: &str = "https://www.example.com/webhook_uri";
const BODY: &[u8] = b"{'example_field':'example_value'}";
const TS: i64 = 1_693_657_560_000;
const V3: &str = "K36dawei4A+QBNolUOqo7s91KQDWQ5MXZ/QufNYuk/Y=";
const V1: &str = "69fc6631a867edd4f9e9e627fc5c1148e3fbdd8b21837b6d2b8901c1fa57f750";
const V2: &str = "4fe4e3a7d3cf09db53be39d0a58130e2aaba074ec123a9e355b876a689a1c383";

fn secret() -> SecretString {
    SecretString::from(SECRET)
}

fn verify(
    body: &[u8],
    ts: Option<&str>,
    sig: Option<&str>,
    now: i64,
) -> Result<(), SignatureError> {
    verify_v3(&secret(), "POST", URL, body, ts, sig, now)
}

#[test]
fn v3_known_answer_vector_signs_and_verifies() {
    assert_eq!(sign_v3(&secret(), "POST", URL, BODY, TS), V3);
    assert_eq!(
        verify(BODY, Some("1693657560000"), Some(V3), TS + 1_000),
        Ok(())
    );
}

#[test]
fn v1_known_answer_vector_signs_and_verifies() {
    assert_eq!(sign_v1(&secret(), BODY), V1);
    assert_eq!(verify_v1(&secret(), BODY, Some(V1)), Ok(()));
    assert_eq!(verify_v1(&secret(), BODY, Some(&V1.to_uppercase())), Ok(()));
    assert_eq!(
        verify_v1(&secret(), b"{}", Some(V1)),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        verify_v1(&secret(), BODY, None),
        Err(SignatureError::MissingSignature)
    );
    assert_eq!(
        verify_v1(&secret(), BODY, Some("zz")),
        Err(SignatureError::InvalidSignatureEncoding)
    );
    assert_eq!(
        verify_v1(&secret(), BODY, Some("abcd")),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn v2_known_answer_vector_signs_and_verifies() {
    assert_eq!(sign_v2(&secret(), "POST", URL, BODY), V2);
    assert_eq!(verify_v2(&secret(), "POST", URL, BODY, Some(V2)), Ok(()));
    assert_eq!(
        verify_v2(&secret(), "GET", URL, BODY, Some(V2)),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn tampered_body_is_rejected() {
    let body = b"{'example_field':'example_valuf'}";
    assert_eq!(
        verify(body, Some("1693657560000"), Some(V3), TS),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn reserialised_body_is_rejected() {
    // Same JSON value, different bytes: the raw bytes are what is signed.
    let body = br#"{"example_field":"example_value"}"#;
    let sig = sign_v3(&secret(), "POST", URL, body, TS);
    let spaced = br#"{"example_field": "example_value"}"#;
    assert_eq!(
        verify(spaced, Some("1693657560000"), Some(&sig), TS),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn wrong_secret_is_rejected() {
    let other = SecretString::from("zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz");
    assert_eq!(
        verify_v3(
            &other,
            "POST",
            URL,
            BODY,
            Some("1693657560000"),
            Some(V3),
            TS
        ),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn wrong_method_or_uri_is_rejected() {
    let ts = Some("1693657560000");
    assert_eq!(
        verify_v3(&secret(), "PUT", URL, BODY, ts, Some(V3), TS),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        verify_v3(
            &secret(),
            "POST",
            "https://www.example.com/other",
            BODY,
            ts,
            Some(V3),
            TS
        ),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn stale_timestamp_is_rejected() {
    let now = TS + 5 * 60 * 1000 + 1;
    assert_eq!(
        verify(BODY, Some("1693657560000"), Some(V3), now),
        Err(SignatureError::TimestampTooOld { age_ms: 300_001 })
    );
    // Exactly at the edge is still accepted.
    assert_eq!(
        verify(BODY, Some("1693657560000"), Some(V3), TS + 300_000),
        Ok(())
    );
}

#[test]
fn future_timestamp_is_rejected() {
    let now = TS - 5 * 60 * 1000 - 1;
    assert_eq!(
        verify(BODY, Some("1693657560000"), Some(V3), now),
        Err(SignatureError::TimestampInFuture { ahead_ms: 300_001 })
    );
    assert_eq!(
        verify(BODY, Some("1693657560000"), Some(V3), TS - 300_000),
        Ok(())
    );
}

#[test]
fn tolerance_is_configurable() {
    let tight = Tolerance {
        max_age: Duration::from_secs(10),
        max_future: Duration::from_secs(1),
    };
    let check = |now| {
        verify_v3_with_tolerance(
            &secret(),
            "POST",
            URL,
            BODY,
            Some("1693657560000"),
            Some(V3),
            now,
            tight,
        )
    };
    assert_eq!(check(TS + 10_000), Ok(()));
    assert!(matches!(
        check(TS + 10_001),
        Err(SignatureError::TimestampTooOld { .. })
    ));
    assert!(matches!(
        check(TS - 1_001),
        Err(SignatureError::TimestampInFuture { .. })
    ));
}

#[test]
fn stale_timestamp_is_rejected_before_the_signature_is_looked_at() {
    assert!(matches!(
        verify(BODY, Some("1"), Some("not base64!"), TS),
        Err(SignatureError::TimestampTooOld { .. })
    ));
}

#[test]
fn missing_headers_are_rejected() {
    assert_eq!(
        verify(BODY, None, Some(V3), TS),
        Err(SignatureError::MissingTimestamp)
    );
    assert_eq!(
        verify(BODY, Some(""), Some(V3), TS),
        Err(SignatureError::MissingTimestamp)
    );
    assert_eq!(
        verify(BODY, Some("1693657560000"), None, TS),
        Err(SignatureError::MissingSignature)
    );
    assert_eq!(
        verify(BODY, Some("1693657560000"), Some("  "), TS),
        Err(SignatureError::MissingSignature)
    );
}

#[test]
fn non_numeric_timestamp_is_rejected() {
    for ts in [
        "abc",
        "1693657560000.0",
        "-1693657560000",
        "1e12",
        "99999999999999999999999",
        "+1",
    ] {
        assert_eq!(
            verify(BODY, Some(ts), Some(V3), TS),
            Err(SignatureError::InvalidTimestamp),
            "{ts}"
        );
    }
}

#[test]
fn timestamp_in_seconds_is_rejected_as_stale() {
    assert!(matches!(
        verify(BODY, Some("1693657560"), Some(V3), TS),
        Err(SignatureError::TimestampTooOld { .. })
    ));
}

#[test]
fn bad_base64_signature_is_rejected() {
    assert_eq!(
        verify(BODY, Some("1693657560000"), Some("K36daw%%%"), TS),
        Err(SignatureError::InvalidSignatureEncoding)
    );
    // Valid base64 of the wrong length is a mismatch.
    assert_eq!(
        verify(BODY, Some("1693657560000"), Some("AAAA"), TS),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn uri_decoding_handles_exactly_the_documented_escapes() {
    assert_eq!(
        decode_uri("https://x.test/a%3Ab%2Fc%3Fd%40e%21f%24g%27h%28i%29j%2Ak%2Cl%3Bm"),
        "https://x.test/a:b/c?d@e!f$g'h(i)j*k,l;m"
    );
    // Other escapes are kept.
    assert_eq!(
        decode_uri("https://x.test/a%20b%25c%3D%26"),
        "https://x.test/a%20b%25c%3D%26"
    );
    // Lower-case hex is not in HubSpot's table.
    assert_eq!(decode_uri("https://x.test/a%3ab"), "https://x.test/a%3ab");
    // Not double-decoded: %253A is "%25" + "3A".
    assert_eq!(decode_uri("https://x.test/%253A"), "https://x.test/%253A");
    // Truncated escapes and non-ASCII survive.
    assert_eq!(decode_uri("https://x.test/é%3"), "https://x.test/é%3");
    assert_eq!(decode_uri("%"), "%");
    assert!(matches!(
        decode_uri("https://x.test/plain"),
        Cow::Borrowed(_)
    ));
}

#[test]
fn encoded_uri_verifies_against_decoded_signature() {
    let encoded = "https://www.example.com/webhook_uri?tenant%3Aid=a%2Cb";
    let decoded = "https://www.example.com/webhook_uri?tenant:id=a,b";
    let sig = sign_v3(&secret(), "POST", decoded, BODY, TS);
    assert_eq!(sign_v3(&secret(), "POST", encoded, BODY, TS), sig);
    assert_eq!(
        verify_v3(
            &secret(),
            "POST",
            encoded,
            BODY,
            Some("1693657560000"),
            Some(&sig),
            TS
        ),
        Ok(())
    );
}

#[test]
fn verifier_uses_configured_url_and_request_query() {
    let v = WebhookVerifier::new(secret(), URL);
    assert_eq!(
        v.verify("POST", None, BODY, Some("1693657560000"), Some(V3), TS),
        Ok(())
    );
    assert_eq!(
        v.verify("POST", Some(""), BODY, Some("1693657560000"), Some(V3), TS),
        Ok(())
    );
    let sig = sign_v3(&secret(), "POST", &format!("{URL}?a=1"), BODY, TS);
    assert_eq!(
        v.verify(
            "POST",
            Some("a=1"),
            BODY,
            Some("1693657560000"),
            Some(&sig),
            TS
        ),
        Ok(())
    );
    assert_eq!(
        v.verify("POST", None, BODY, Some("1693657560000"), Some(&sig), TS),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn debug_output_redacts_the_secret() {
    let v = WebhookVerifier::new(secret(), URL);
    let dbg = format!("{v:?}");
    assert!(!dbg.contains("yyyy"), "{dbg}");
    assert!(dbg.contains("REDACTED"));
}

#[test]
fn errors_never_echo_inputs() {
    let e = verify(BODY, Some("1693657560000"), Some("AAAA"), TS).unwrap_err();
    let msg = e.to_string();
    assert!(!msg.contains("AAAA") && !msg.contains(SECRET));
}

proptest! {
    #[test]
    fn sign_then_verify_round_trips(
        body in proptest::collection::vec(any::<u8>(), 0..512),
        ts in 0i64..4_000_000_000_000,
        skew in -300_000i64..=300_000,
        path in "[a-zA-Z0-9/_%:?=&-]{0,40}",
        secret in "[ -~]{1,64}",
    ) {
        let secret = SecretString::from(secret);
        let uri = format!("https://h.test/{path}");
        let sig = sign_v3(&secret, "POST", &uri, &body, ts);
        let ts_s = ts.to_string();
        prop_assert_eq!(
            verify_v3(&secret, "POST", &uri, &body, Some(&ts_s), Some(&sig), ts + skew),
            Ok(())
        );
    }

    #[test]
    fn any_single_byte_change_fails(
        body in proptest::collection::vec(any::<u8>(), 1..256),
        idx in any::<proptest::sample::Index>(),
        delta in 1u8..=255,
    ) {
        let s = secret();
        let sig = sign_v3(&s, "POST", URL, &body, TS);
        let mut tampered = body.clone();
        let i = idx.index(tampered.len());
        tampered[i] = tampered[i].wrapping_add(delta);
        prop_assert_eq!(
            verify_v3(&s, "POST", URL, &tampered, Some("1693657560000"), Some(&sig), TS),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn decode_uri_is_a_fixed_point(s in "[a-z%0-9A-F:/?]{0,40}") {
        let once = decode_uri(&s).into_owned();
        prop_assert_eq!(decode_uri(&once).into_owned(), once);
    }

    #[test]
    fn verify_never_panics_on_arbitrary_headers(
        ts in proptest::option::of(any::<String>()),
        sig in proptest::option::of(any::<String>()),
        now in any::<i64>(),
    ) {
        let _ = verify_v3(&secret(), "POST", URL, BODY, ts.as_deref(), sig.as_deref(), now);
        let _ = verify_v1(&secret(), BODY, sig.as_deref());
    }
}
